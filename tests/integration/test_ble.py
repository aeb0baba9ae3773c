#!/usr/bin/python3
"""The gateway's BlueZ client against a private dbus-daemon with a fake org.bluez (python3-dbusmock's
bluez5 template), and a real mosquitto."""
import os
import re
import signal
import subprocess
import time
import unittest

import dbus

from harness import TestCase, config

KEY = '231d39c1d7cc1ab1aee224cd096db932'
CLIMATE = '54:48:E6:8F:80:A5'   # the address the reference frame below was encrypted for
MOTION = 'A4:C1:38:00:00:01'
BTHOME_UUID = '0000fcd2-0000-1000-8000-00805f9b34fb'
FRAME = bytes.fromhex('41a47266c95f730011223378237214')  # 25.06 C, 50.55 %, counter 0x33221100


def dev_path(addr):
    return '/org/bluez/hci0/dev_' + addr.replace(':', '_')


class FakeBluez:
    """A private bus with dbusmock's bluez5 template on it; can be killed and started again."""

    def __init__(self, workdir):
        self.bus_proc = subprocess.Popen(['dbus-daemon', '--session', '--print-address=1', '--nofork'],
                                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.address = self.bus_proc.stdout.readline().strip()
        self.bus = dbus.bus.BusConnection(self.address)
        self.mock = None

    def start(self, adapter=True, fail_discovery_once=False):
        env = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=self.address)
        self.mock = subprocess.Popen(['/usr/bin/python3', '-m', 'dbusmock', '--system', '--template', 'bluez5'],
                                     env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while not self.bus.name_has_owner('org.bluez'):  # a condition with a deadline
            if time.monotonic() > deadline or self.mock.poll() is not None:
                raise AssertionError('the fake bluetoothd did not come up')
            time.sleep(0.02)
        bluez = self.bus.get_object('org.bluez', '/org/bluez')
        if adapter:
            bluez.AddAdapter('hci0', 'homecare-test', dbus_interface='org.bluez.Mock')
            if fail_discovery_once:
                # As bluetoothd does when another client is starting discovery at the same time.
                a = self.bus.get_object('org.bluez', '/org/bluez/hci0')
                a.AddMethod('org.bluez.Adapter1', 'StartDiscovery', '', '',
                            'self.tries = getattr(self, "tries", 0) + 1\n'
                            'if self.tries == 1:\n'
                            '    raise dbus.exceptions.DBusException("busy", name="org.bluez.Error.InProgress")\n'
                            'self.Set("org.bluez.Adapter1", "Discovering", dbus.Boolean(True))\n',
                            dbus_interface='org.freedesktop.DBus.Mock')
            for addr, alias in ((MOTION, 'motion'), (CLIMATE, 'climate')):
                bluez.AddDevice('hci0', addr, alias, dbus_interface='org.bluez.Mock')

    # Methods of the fake's root object (/org/bluez, org.bluez.Mock) for a device whose Connect calls
    # are held unanswered until the test answers them, as bluetoothd's Connect to a device that is away
    # answers only when it advertises again or its own time-outs run out. dbusmock's methods answer
    # when their code returns; this one keeps the D-Bus reply callbacks instead (async_callbacks), in
    # self.held on the root object, where they outlive the device object they were called on.
    HELD_DEVICE_METHODS = [
        ('AddHeldDevice', 'ss', 'o',
         # Added and armed in one call: the gateway's Connect, sent when it sees InterfacesAdded, can
         # only reach the fake after this returns.
         'path = self.AddDevice("hci0", args[0], args[1])\n'
         'self.held = getattr(self, "held", [])\n'
         'def held_connect(device, ok, err):\n'
         '    objects["/org/bluez"].held.append((device.path, ok, err))\n'
         'connect = dbus.service.method("org.bluez.Device1", async_callbacks=("ok", "err"))(held_connect)\n'
         'objects[path].methods["org.bluez.Device1"]["Connect"] = ("", "", "", connect)\n'
         'ret = dbus.ObjectPath(path)\n'),
        ('AnswerConnect', 'is', '',
         # The n-th held Connect: an error of that name, or success for ''.
         'path, ok, err = self.held[args[0]]\n'
         'if args[1]:\n'
         '    err(dbus.exceptions.DBusException("held Connect failed", name=args[1]))\n'
         'else:\n'
         '    ok()\n'),
        ('HeldConnects', '', 'ao', 'ret = [dbus.ObjectPath(h[0]) for h in getattr(self, "held", [])]'),
    ]

    def add_held_device(self, addr, alias):
        """A device (again) whose Connect calls are held until answer_connect(); returns its path."""
        bluez = self.bus.get_object('org.bluez', '/org/bluez')
        if getattr(self, 'held_methods_of', None) is not self.mock:  # once for each fake started
            bluez.AddMethods('org.bluez.Mock', self.HELD_DEVICE_METHODS, dbus_interface='org.freedesktop.DBus.Mock')
            self.held_methods_of = self.mock
        return bluez.AddHeldDevice(addr, alias, dbus_interface='org.bluez.Mock')

    def held_connects(self):
        """The paths the Connect calls held so far were made on, in the order they came."""
        return [str(p) for p in self.bus.get_object('org.bluez', '/org/bluez').HeldConnects(
            dbus_interface='org.bluez.Mock')]

    def wait_held_connects(self, n, timeout=20):
        deadline = time.monotonic() + timeout
        while len(self.held_connects()) < n:  # a condition with a deadline
            if time.monotonic() > deadline:
                raise AssertionError('only %d Connect calls held, waited for %d' % (len(self.held_connects()), n))
            time.sleep(0.02)

    def answer_connect(self, n, error=''):
        self.bus.get_object('org.bluez', '/org/bluez').AnswerConnect(n, error, dbus_interface='org.bluez.Mock')

    def add_cuff(self, addr, difficult=False):
        """A blood-pressure cuff with its Blood Pressure service and indicating measurement. A difficult one
        fails its first Connect, needs bonding before it indicates, and has a Current Time Service."""
        bluez = self.bus.get_object('org.bluez', '/org/bluez')
        bluez.AddDevice('hci0', addr, 'bp-cuff', dbus_interface='org.bluez.Mock')
        dev = dev_path(addr)
        ch = self.add_service(dev, 0x10, '1810', '2a35', ['indicate'],
                              [('StartNotify', '', '',
                                ('d = objects["%s"]\n'
                                 'if not d.props["org.bluez.Device1"]["Paired"]:\n'
                                 '    raise dbus.exceptions.DBusException("encryption needed", name="org.bluez.Error.NotPermitted")\n'
                                 % dev if difficult else '') +
                                # bluetoothd keeps a session over a reconnect and signals only a change
                                'if not self.props["org.bluez.GattCharacteristic1"]["Notifying"]:\n'
                                '    self.Set("org.bluez.GattCharacteristic1", "Notifying", True)'),
                               ('StopNotify', '', '', 'self.Set("org.bluez.GattCharacteristic1", "Notifying", False)')])
        if difficult:
            d = self.bus.get_object('org.bluez', dev)
            d.AddMethod('org.bluez.Device1', 'Connect', '', '',
                        'self.tries = getattr(self, "tries", 0) + 1\n'
                        'if self.tries == 1:\n'
                        '    raise dbus.exceptions.DBusException("page timeout", name="org.bluez.Error.Failed")\n'
                        'self.Set("org.bluez.Device1", "Connected", dbus.Boolean(True))\n',
                        dbus_interface='org.freedesktop.DBus.Mock')
            self.add_service(dev, 0x30, '1805', '2a2b', ['read', 'write'],
                             [('WriteValue', 'aya{sv}', '', 'self.written = bytes(args[0])'),
                              ('Written', '', 'ay', 'ret = dbus.Array(getattr(self, "written", b""), signature="y")')])
        return dev, ch

    def add_strap(self, addr, flap=False, device=True, held=0):
        """A heart-rate strap whose measurement notifies; AcquireNotify hands out a socket, as bluetoothd
        does, and Push (ours) writes one notification to the latest one; DropFirst (ours) closes the
        first, as bluetoothd does when that link is gone. With flap, the first
        AcquireNotify sees the link drop and come back before it answers, as a strap at the edge of
        range does: the gateway asks again while the first answer is on its way. With held=N, the first
        N subscriptions (AcquireNotify or StartNotify) are refused as bluetoothd refuses them while it
        still holds an earlier AcquireNotify session: NotPermitted "Notify acquired"."""
        refuse = ('self.refused = getattr(self, "refused", 0) + 1\n'
                  'if self.refused <= %d:\n'
                  '    raise dbus.exceptions.DBusException("Notify acquired", name="org.bluez.Error.NotPermitted")\n'
                  % held)
        if device:  # else: only its GATT objects, for a device that is there already
            bluez = self.bus.get_object('org.bluez', '/org/bluez')
            bluez.AddDevice('hci0', addr, 'hr-strap', dbus_interface='org.bluez.Mock')
        dev = dev_path(addr)
        ch = self.add_service(dev, 0x20, '180d', '2a37', ['notify'],
                              [('AcquireNotify', 'a{sv}', 'hq',
                                refuse +
                                'import socket\n'
                                'a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)\n'
                                'self.peers = getattr(self, "peers", []) + [b]\n'
                                'n = getattr(self, "acquired", 0)\n'
                                'self.acquired = n + 1\n'
                                'if %r and n == 0:\n'
                                '    import dbusmock\n'
                                '    d = dbusmock.get_object(%r)\n'
                                '    for p, v in (("Connected", False), ("ServicesResolved", False),\n'
                                '                 ("Connected", True), ("ServicesResolved", True)):\n'
                                '        d.Set("org.bluez.Device1", p, dbus.Boolean(v))\n'
                                'ret = (dbus.types.UnixFd(a.fileno()), dbus.UInt16(23))\n'
                                'a.close()\n' % (flap, dev)),
                               ('Push', 'ay', '', 'self.peers[-1].send(bytes(args[0]))'),
                               ('DropFirst', '', '', 'self.peers[0].close()'),
                               ('StartNotify', '', '',
                                refuse + 'self.Set("org.bluez.GattCharacteristic1", "Notifying", True)')])
        return dev, ch

    def add_service(self, dev, handle, service16, char16, flags, methods):
        """A primary service at handle with one characteristic after it, as bluetoothd names them;
        returns the characteristic's path."""
        svc, ch = '%s/service%04x' % (dev, handle), '%s/service%04x/char%04x' % (dev, handle, handle + 1)
        uuid = '0000%s-0000-1000-8000-00805f9b34fb'
        self.add_object(svc, 'org.bluez.GattService1',
                        {'UUID': uuid % service16, 'Device': dbus.ObjectPath(dev), 'Primary': True}, [])
        self.add_object(ch, 'org.bluez.GattCharacteristic1',
                        {'UUID': uuid % char16, 'Service': dbus.ObjectPath(svc),
                         'Flags': dbus.Array(flags, signature='s'), 'Notifying': False,
                         'Value': dbus.Array([], signature='y')}, methods)
        return ch

    def add_object(self, path, iface, props, methods):
        """A GATT object, announced with InterfacesAdded as bluetoothd does while it resolves services
        (dbusmock's AddObject alone announces nothing)."""
        root = self.bus.get_object('org.bluez', '/')
        root.AddObject(path, iface, props, methods, dbus_interface='org.freedesktop.DBus.Mock')
        root.EmitSignal('org.freedesktop.DBus.ObjectManager', 'InterfacesAdded', 'oa{sa{sv}}',
                        [dbus.ObjectPath(path), dbus.Dictionary({iface: dbus.Dictionary(props, signature='sv')},
                                                                signature='sa{sv}')],
                        dbus_interface='org.freedesktop.DBus.Mock')

    def get(self, path, iface, prop):
        return self.bus.get_object('org.bluez', path).Get(iface, prop, dbus_interface='org.freedesktop.DBus.Properties')

    def set(self, path, iface, prop, value):
        self.bus.get_object('org.bluez', path).Set(iface, prop, value, dbus_interface='org.freedesktop.DBus.Properties')

    def wait_prop(self, path, iface, prop, value, timeout=20):
        deadline = time.monotonic() + timeout
        while self.get(path, iface, prop) != value:  # a condition with a deadline
            if time.monotonic() > deadline:
                raise AssertionError('%s %s never became %r' % (path, prop, value))
            time.sleep(0.02)

    def advertise(self, addr, data):
        dev = self.bus.get_object('org.bluez', dev_path(addr))
        value = dbus.Dictionary({BTHOME_UUID: dbus.Array(data, signature='y')}, signature='sv')
        # dbusmock 0.28 cannot wrap a dictionary in UpdateProperties; Set emits the same PropertiesChanged.
        dev.Set('org.bluez.Device1', 'ServiceData', value, dbus_interface='org.freedesktop.DBus.Properties')

    def kill(self):
        self.mock.kill()
        self.mock.wait()

    def stop(self):
        if self.mock and self.mock.poll() is None:
            self.kill()
        self.bus.close()
        self.bus_proc.terminate()
        self.bus_proc.wait()


CUFF = 'A4:C1:38:10:00:01'
STRAP = 'A4:C1:38:10:00:05'
# 121/80/93 mmHg, pulse 72, user 1, measured 2026-03-02 08:31:00 on the cuff's clock
BP_VALUE = bytes.fromhex('0E 79 00 50 00 5D 00 EA 07 03 02 08 1F 00 48 00 01')

SENSORS = """[Sensor "bp-cuff"]
Type=blood-pressure
Address=A4:C1:38:10:00:01
Passkey=123456
[Sensor "hr-strap"]
Type=heart-rate
Address=A4:C1:38:10:00:05
[Sensor "bedroom-motion"]
Type=bthome
Address=%s
Role=bedroom
[Sensor "climate"]
Type=bthome
Address=%s
Key=%s
Role=living-room
[Bluetooth]
Adapter=hci0
"""


class Ble(TestCase):
    def start(self, key=KEY, fail_discovery_once=False, cuff=False, strap=False, difficult=False, flap=False,
              bond=False, silent_connect=False, held_cuff=False, strap_held=0):
        self.b = self.broker()
        self.sub = self.subscriber(self.b.port)
        self.fake = FakeBluez(self.dir)
        self.cleanups.append(self.fake.stop)
        self.fake.start(fail_discovery_once=fail_discovery_once)
        if held_cuff:
            self.cuff = self.fake.add_held_device(CUFF, 'bp-cuff')
        if cuff:
            self.cuff, self.cuff_char = self.fake.add_cuff(CUFF, difficult=difficult)
        if strap:
            self.strap, self.strap_char = self.fake.add_strap(STRAP, flap=flap, held=strap_held)
            if silent_connect:
                self.fake.bus.get_object('org.bluez', self.strap).AddMethod(
                    'org.bluez.Device1', 'Connect', '', '', '', dbus_interface='org.freedesktop.DBus.Mock')
        os.environ['DBUS_SYSTEM_BUS_ADDRESS'] = self.fake.address
        try:
            sensors = SENSORS % (MOTION, CLIMATE, key)
            if bond:
                sensors = sensors.replace('Passkey=123456\n', 'Passkey=123456\nBond=yes\n')
            self.gw = self.gateway(config(self.b.port, self.state, sim=False, extra=sensors))
        finally:
            del os.environ['DBUS_SYSTEM_BUS_ADDRESS']
        self.gw.log.wait(r'Bluetooth LE discovery running on /org/bluez/hci0')

    def items(self, sensor):
        return [it for lane, it in self.sub.items if it.get('sensor') == sensor]

    def test_advertisements_become_events_and_encrypted_readings(self):
        self.start()
        self.fake.advertise(MOTION, bytes.fromhex('40 00 01 21 01'))
        self.sub.wait(lambda: self.items('bedroom-motion'), 'the motion event')
        self.assertEqual(self.items('bedroom-motion')[0]['event'], 'motion')
        self.assertEqual(self.items('bedroom-motion')[0]['value'], 1)
        self.fake.advertise(CLIMATE, FRAME)
        self.sub.wait(lambda: len(self.items('climate')) >= 2, 'the decrypted readings')
        self.assertEqual([(i['metric'], i['value']) for i in self.items('climate')],
                         [('temperature', 25.06), ('humidity', 50.55)])
        # The same frame again is a replay: refused, logged, nothing sent.
        mark = self.gw.log.count()
        self.fake.advertise(CLIMATE, FRAME[:-1] + bytes([FRAME[-1]]))
        self.fake.advertise(MOTION, bytes.fromhex('40 00 02 21 00'))
        self.sub.wait(lambda: len(self.items('bedroom-motion')) >= 2, 'the second motion event')
        self.assertEqual(len(self.items('climate')), 2)

    def test_reload_sets_up_a_sensor_added_to_the_configuration(self):
        # fails on fb6d774: SIGHUP ignored [Sensor] changes; the new sensor's advertisements stayed those
        # of an unprovisioned device and nothing reached the broker.
        self.start()
        hall = 'A4:C1:38:00:00:02'
        bluez = self.fake.bus.get_object('org.bluez', '/org/bluez')
        bluez.AddDevice('hci0', hall, 'hall-motion', dbus_interface='org.bluez.Mock')
        with open(self.gw.config, 'a') as f:
            f.write('[Sensor "hall-motion"]\nType=bthome\nAddress=%s\nRole=hall\n' % hall)
        mark = self.gw.log.count()
        self.gw.signal(signal.SIGHUP)
        self.gw.log.wait(r'Configuration reloaded', start=mark)
        self.gw.log.wait(r'Bluetooth LE discovery running on /org/bluez/hci0', start=mark)
        self.fake.advertise(hall, bytes.fromhex('40 00 07 21 01'))
        self.sub.wait(lambda: self.items('hall-motion'), "the new sensor's motion event")
        self.assertEqual(self.items('hall-motion')[0]['event'], 'motion')
        # The sensors that were there before still work.
        self.fake.advertise(MOTION, bytes.fromhex('40 00 08 21 01'))
        self.sub.wait(lambda: self.items('bedroom-motion'), "the old sensor's motion event")

    def test_status_shows_each_sensor_and_unprovisioned_devices(self):
        self.start()
        bluez = self.fake.bus.get_object('org.bluez', '/org/bluez')
        bluez.AddDevice('hci0', '11:22:33:44:55:66', 'neighbours-scale', dbus_interface='org.bluez.Mock')
        self.fake.advertise(MOTION, bytes.fromhex('40 00 01 01 5D 21 01'))
        self.sub.wait(lambda: self.items('bedroom-motion'), 'the motion event')
        n = len(self.sub.status)
        self.sub.publish('cmd/status', '{}')
        self.sub.wait(lambda: len(self.sub.status) > n, 'a fresh status')
        st = self.sub.status[-1]
        motion = st['sensors']['bedroom-motion']
        self.assertEqual(motion['last_value'], {'event': 'motion', 'value': 1})
        self.assertEqual(motion['battery'], 93)
        self.assertEqual((motion['frames'], motion['rejected'], motion['connected']), (1, 0, False))
        self.assertRegex(motion['last_seen'], r'^\d{4}-\d\d-\d\dT')
        self.assertIsNone(st['sensors']['climate']['last_seen'])
        self.assertIn({'address': '11:22:33:44:55:66', 'name': 'neighbours-scale', 'bthome': False},
                      [{k: v for k, v in u.items() if k in ('address', 'name', 'bthome')} for u in st['unprovisioned']])

    def test_wrong_key_is_a_logged_rejection_and_nothing_else(self):
        self.start(key='00' * 16)
        self.fake.advertise(CLIMATE, FRAME)
        self.gw.log.wait(r'Rejected a frame from climate .*decryption failed')
        self.fake.advertise(MOTION, bytes.fromhex('40 00 01 21 01'))
        self.sub.wait(lambda: self.items('bedroom-motion'), 'the motion event after it')
        self.assertEqual(self.items('climate'), [])

    def test_bluetoothd_goes_away_and_comes_back(self):
        self.start()
        self.fake.advertise(MOTION, bytes.fromhex('40 00 01 21 01'))
        self.sub.wait(lambda: self.items('bedroom-motion'), 'the first event')
        mark = self.gw.log.count()
        self.fake.kill()
        self.gw.log.wait(r'bluetoothd went away', start=mark)
        self.fake.start()
        self.gw.log.wait(r'bluetoothd is there', start=mark)
        self.gw.log.wait(r'Bluetooth LE discovery running on /org/bluez/hci0', start=mark)
        self.fake.advertise(MOTION, bytes.fromhex('40 00 02 21 00'))
        self.sub.wait(lambda: len(self.items('bedroom-motion')) >= 2, 'data again')
        self.assertEqual(self.items('bedroom-motion')[-1]['value'], 0)

    def test_bluetoothd_killed_while_a_strap_streams(self):
        # SIGKILL, as the real bluetoothd showed it: the AcquireNotify socket hangs up first, then the
        # name goes; no InterfacesRemoved, no Connected=false. After the restart the strap is read again.
        self.start(strap=True)
        self.gw.log.wait(r'Connected to hr-strap')
        self.fake.set(self.strap, 'org.bluez.Device1', 'ServicesResolved', True)
        self.gw.log.wait(r'Acquired notifications from .*char0021')
        mark = self.gw.log.count()
        self.fake.kill()
        self.gw.log.wait(r'bluetoothd went away', start=mark)
        self.fake.start()
        self.strap, self.strap_char = self.fake.add_strap(STRAP)
        self.gw.log.wait(r'Connected to hr-strap', start=mark)
        self.fake.set(self.strap, 'org.bluez.Device1', 'ServicesResolved', True)
        self.gw.log.wait(r'Acquired notifications from .*char0021', start=mark)
        strap = self.fake.bus.get_object('org.bluez', self.strap_char)
        strap.Push(dbus.Array(bytes.fromhex('00 48'), signature='y'), dbus_interface='org.bluez.GattCharacteristic1')
        self.sub.wait(lambda: self.items('hr-strap'), 'the notification after the restart')
        self.assertEqual(self.gw.proc.poll(), None)

    def test_discovery_in_progress_is_retried(self):
        self.start(fail_discovery_once=True)
        self.assertIn('org.bluez.Error.InProgress; trying again', self.gw.log.text())
        self.fake.advertise(MOTION, bytes.fromhex('40 00 01 21 01'))
        self.sub.wait(lambda: self.items('bedroom-motion'), 'the motion event')
        n = len(self.sub.status)
        self.sub.publish('cmd/status', '{}')
        self.sub.wait(lambda: len(self.sub.status) > n, 'a fresh status')
        self.assertEqual(self.sub.status[-1]['bluetooth'],
                         {'adapter': '/org/bluez/hci0', 'discovering': True, 'unknown_devices': 0})
        self.assertEqual(self.sub.status[-1]['unprovisioned'], [])

    def test_discovery_restarted_by_bluetoothd_after_another_client_stops(self):
        # As the real bluetoothd does when another client stops its discovery: Discovering goes false
        # while it restarts discovery for the clients left, and a StartDiscovery from a client it still
        # counts (the gateway) is answered with InProgress until Discovering is true again.
        self.start()
        adapter = self.fake.bus.get_object('org.bluez', '/org/bluez/hci0')
        adapter.AddMethod('org.bluez.Adapter1', 'StartDiscovery', '', '',
                          'raise dbus.exceptions.DBusException("busy", name="org.bluez.Error.InProgress")',
                          dbus_interface='org.freedesktop.DBus.Mock')
        mark = self.gw.log.count()
        self.fake.set('/org/bluez/hci0', 'org.bluez.Adapter1', 'Discovering', False)
        self.gw.log.wait(r'Bluetooth discovery: it stopped', start=mark)
        self.gw.log.wait(r'org.bluez.Error.InProgress; trying again', start=mark)
        self.fake.set('/org/bluez/hci0', 'org.bluez.Adapter1', 'Discovering', True)
        self.fake.advertise(MOTION, bytes.fromhex('40 00 01 21 01'))
        self.sub.wait(lambda: self.items('bedroom-motion'), 'the motion event')
        n = len(self.sub.status)
        self.sub.publish('cmd/status', '{}')
        self.sub.wait(lambda: len(self.sub.status) > n, 'a fresh status')
        self.assertTrue(self.sub.status[-1]['bluetooth']['discovering'])

    def test_adapter_powered_off_is_powered_on_and_discovers_again(self):
        # As after bluetoothd was stopped (SIGTERM powers the adapters off): the gateway powers it on.
        # Powered=true comes before the answer to Set, as with the real bluetoothd and with the fake.
        self.start()
        mark = self.gw.log.count()
        adapter = self.fake.bus.get_object('org.bluez', '/org/bluez/hci0')
        adapter.UpdateProperties('org.bluez.Adapter1', {'Powered': False, 'Discovering': False},
                                 dbus_interface='org.freedesktop.DBus.Mock')
        self.gw.log.wait(r'Powering Bluetooth adapter /org/bluez/hci0 on', start=mark)
        self.gw.log.wait(r'Bluetooth LE discovery running on /org/bluez/hci0', start=mark)
        self.assertTrue(self.fake.get('/org/bluez/hci0', 'org.bluez.Adapter1', 'Powered'))

    def test_blood_pressure_cuff_is_connected_subscribed_and_read(self):
        os.environ['TZ'] = 'CET-1'
        try:
            self.start(cuff=True)
        finally:
            del os.environ['TZ']
        # The gateway connects to the cuff as soon as it is there; bluetoothd then resolves services.
        # (dbusmock's Connect signals Connected=true without setting the property: wait on the gateway.)
        self.gw.log.wait(r'Connected to bp-cuff')
        self.fake.set(self.cuff, 'org.bluez.Device1', 'ServicesResolved', True)
        self.fake.wait_prop(self.cuff_char, 'org.bluez.GattCharacteristic1', 'Notifying', True)
        self.fake.set(self.cuff_char, 'org.bluez.GattCharacteristic1', 'Value', dbus.Array(BP_VALUE, signature='y'))
        self.sub.wait(lambda: len(self.items('bp-cuff')) >= 4, 'the measurement')
        got = {i['metric']: i for i in self.items('bp-cuff')}
        self.assertEqual({m: got[m]['value'] for m in got},
                         {'systolic': 121, 'diastolic': 80, 'mean_arterial_pressure': 93, 'pulse_rate': 72})
        self.assertEqual(got['systolic']['time'], '2026-03-02T07:31:00.000Z')  # the device's own time, in UTC
        self.assertEqual(got['systolic']['time_quality'], 'device')
        self.assertEqual(got['systolic']['user'], 1)
        # The cuff sends its stored measurement again: stored once. A new one goes through.
        self.fake.set(self.cuff_char, 'org.bluez.GattCharacteristic1', 'Value', dbus.Array(b'', signature='y'))
        self.fake.set(self.cuff_char, 'org.bluez.GattCharacteristic1', 'Value', dbus.Array(BP_VALUE, signature='y'))
        newer = bytearray(BP_VALUE)
        newer[13] = 0x2F  # 08:47
        self.fake.set(self.cuff_char, 'org.bluez.GattCharacteristic1', 'Value', dbus.Array(bytes(newer), signature='y'))
        self.sub.wait(lambda: len(self.items('bp-cuff')) >= 8, 'the newer measurement')
        self.assertEqual(len([i for i in self.items('bp-cuff') if i['time'] == '2026-03-02T07:31:00.000Z']), 4)
        self.gw.log.wait(r'Subscribed to service0010/char0011 of bp-cuff')

    def test_cuff_that_comes_back_is_read_through_the_kept_subscription(self):
        self.start(cuff=True)
        self.gw.log.wait(r'Connected to bp-cuff')
        self.fake.set(self.cuff, 'org.bluez.Device1', 'ServicesResolved', True)
        self.fake.wait_prop(self.cuff_char, 'org.bluez.GattCharacteristic1', 'Notifying', True)
        self.gw.log.wait(r'Subscribed to service0010/char0011 of bp-cuff')
        # The cuff walks away. The real bluetoothd keeps the subscription (Notifying stays true, no
        # signal), subscribes again by itself when the cuff is back, and answers another StartNotify
        # with no signal either.
        mark = self.gw.log.count()
        self.fake.set(self.cuff, 'org.bluez.Device1', 'ServicesResolved', False)
        self.fake.set(self.cuff, 'org.bluez.Device1', 'Connected', False)
        self.gw.log.wait(r'bp-cuff disconnected', start=mark)
        self.gw.log.wait(r'Connected to bp-cuff', start=mark)
        self.fake.set(self.cuff, 'org.bluez.Device1', 'Connected', True)
        self.fake.set(self.cuff, 'org.bluez.Device1', 'ServicesResolved', True)
        self.fake.set(self.cuff_char, 'org.bluez.GattCharacteristic1', 'Value', dbus.Array(BP_VALUE, signature='y'))
        self.sub.wait(lambda: len(self.items('bp-cuff')) >= 4, 'the measurement after it came back')
        self.assertEqual(self.items('bp-cuff')[0]['time'], '2026-03-02T08:31:00.000Z')

    def test_cuff_with_bond_is_paired_by_the_gateway_first_and_only_once(self):
        self.start(cuff=True, bond=True)
        self.gw.log.wait(r'Connected to bp-cuff')
        self.fake.set(self.cuff, 'org.bluez.Device1', 'ServicesResolved', True)
        self.gw.log.wait(r'Pairing with bp-cuff \(Bond=yes\)')
        self.gw.log.wait(r'Subscribed to service0010/char0011 of bp-cuff')
        text = self.gw.log.text()
        self.assertLess(text.index('Paired with bp-cuff'), text.index('Subscribed to'))
        self.assertTrue(self.fake.get(self.cuff, 'org.bluez.Device1', 'Paired'))
        # It comes back later: bonded already, so no pairing again.
        mark = self.gw.log.count()
        self.fake.set(self.cuff, 'org.bluez.Device1', 'ServicesResolved', False)
        self.fake.set(self.cuff, 'org.bluez.Device1', 'Connected', False)
        self.gw.log.wait(r'Connected to bp-cuff', start=mark)
        self.fake.set(self.cuff, 'org.bluez.Device1', 'Connected', True)
        self.fake.set(self.cuff, 'org.bluez.Device1', 'ServicesResolved', True)
        self.fake.set(self.cuff_char, 'org.bluez.GattCharacteristic1', 'Value', dbus.Array(BP_VALUE, signature='y'))
        self.sub.wait(lambda: len(self.items('bp-cuff')) >= 4, 'the measurement after it came back')
        self.assertEqual(self.gw.log.text().count('Pairing with bp-cuff'), 1)

    def test_cuff_that_is_away_is_tried_again_quietly(self):
        self.start(cuff=True)
        self.gw.log.wait(r'Connected to bp-cuff')
        # It walks away: bluetoothd's Connect fails three times before the cuff is back.
        self.fake.bus.get_object('org.bluez', self.cuff).AddMethod(
            'org.bluez.Device1', 'Connect', '', '',
            'self.tries = getattr(self, "tries", 0) + 1\n'
            'if self.tries <= 3:\n'
            '    raise dbus.exceptions.DBusException("page timeout", name="org.bluez.Error.Failed")\n'
            'self.Set("org.bluez.Device1", "Connected", dbus.Boolean(True))\n',
            dbus_interface='org.freedesktop.DBus.Mock')
        mark = self.gw.log.count()
        self.fake.set(self.cuff, 'org.bluez.Device1', 'Connected', False)
        self.gw.log.wait(r'Connected to bp-cuff', start=mark)  # after 1 + 2 + 4 s of back-off
        said = [line for line in self.gw.log.lines[mark:] if 'Could not connect to bp-cuff' in line]
        self.assertEqual(len(said), 1, said)  # once, not at every try
        self.assertIn('trying again in 1 s', said[0])

    def test_late_connect_answer_of_a_removed_device_does_not_touch_the_new_one(self):
        """The cuff leaves bluetoothd's list (InterfacesRemoved) while the gateway's Connect to it is
        under way, and is added again at the same path (it came back); the gateway connects to the new
        object. Then the first Connect's answer arrives, late: an error. It belongs to an object that is
        gone and must not touch the new one: no "Could not connect" with its back-off, no `connecting`
        cleared while the new object's own Connect is still under way (which would let a retry send a
        second Connect beside it, and so on at every back-off), and no crash.

        fails on 2939c3e (checked): its calls found their object again by path, so the late error
        landed on the new object, logged "Could not connect to bp-cuff (org.bluez.Error.Failed); trying
        again in 1 s" and cleared its `connecting` while its Connect was under way; the retry a second
        later would have sent the second Connect. The test stops at the log line, which comes at once;
        it answers the new object's Connect before that second, so the count of Connect calls checks
        only that none went out beside it until then. Since the split (9f54d9a, merged in 54863b1)
        each call holds a reference to its own object, and one detached from the mirror ignores its
        answers: passes."""
        self.start(held_cuff=True)
        self.fake.wait_held_connects(1)  # the gateway's Connect, unanswered
        self.fake.bus.get_object('org.bluez', '/org/bluez/hci0').RemoveDevice(
            dbus.ObjectPath(self.cuff), dbus_interface='org.bluez.Adapter1')
        self.assertEqual(self.fake.add_held_device(CUFF, 'bp-cuff'), self.cuff)
        self.fake.wait_held_connects(2)  # the new object's own Connect
        self.fake.answer_connect(0, 'org.bluez.Error.Failed')  # the late answer, for the object that left
        self.fake.answer_connect(1)  # the new object's: connected
        # One sender, one pipe: whatever the late answer made the gateway log is before this line.
        self.gw.log.wait(r'Connected to bp-cuff')
        self.assertNotIn('Could not connect to bp-cuff', self.gw.log.text())
        self.assertEqual(self.fake.held_connects(), [self.cuff, self.cuff])  # no Connect beside its own
        n = len(self.sub.status)
        self.sub.publish('cmd/status', '{}')
        self.sub.wait(lambda: len(self.sub.status) > n, 'a fresh status')
        self.assertTrue(self.sub.status[-1]['sensors']['bp-cuff']['connected'])
        self.assertIsNone(self.gw.proc.poll())

    def test_difficult_cuff_retried_bonded_and_clock_set(self):
        os.environ['TZ'] = 'CET-1'
        try:
            self.start(cuff=True, difficult=True)
        finally:
            del os.environ['TZ']
        self.gw.log.wait(r'Could not connect to bp-cuff \(org.bluez.Error.Failed\); trying again in 1 s')
        self.gw.log.wait(r'Connected to bp-cuff')           # by the retry timer, with no new advertisement
        self.fake.set(self.cuff, 'org.bluez.Device1', 'ServicesResolved', True)
        self.gw.log.wait(r'bp-cuff needs bonding \(org.bluez.Error.NotPermitted\); pairing')
        self.gw.log.wait(r'Paired with bp-cuff')
        self.assertTrue(self.fake.get(self.cuff, 'org.bluez.Device1', 'Paired'))
        self.fake.wait_prop(self.cuff_char, 'org.bluez.GattCharacteristic1', 'Notifying', True)
        self.fake.set(self.cuff_char, 'org.bluez.GattCharacteristic1', 'Value', dbus.Array(BP_VALUE, signature='y'))
        self.sub.wait(lambda: len(self.items('bp-cuff')) >= 4, 'the measurement after bonding')
        # The cuff's clock was set to the gateway's local time (CET here) through the Current Time Service.
        cts = self.fake.bus.get_object('org.bluez', self.cuff + '/service0030/char0031')
        written = bytes(cts.Written(dbus_interface='org.bluez.GattCharacteristic1'))
        self.assertEqual(len(written), 10)
        now = time.gmtime(time.time() + 3600)
        self.assertEqual((written[0] | written[1] << 8, written[2], written[3]), (now.tm_year, now.tm_mon, now.tm_mday))
        self.assertEqual(written[7], now.tm_wday + 1)        # 1 = Monday
        self.gw.log.wait(r'Set the clock of bp-cuff')

    def test_agent_answers_with_the_configured_passkey(self):
        self.start(cuff=True)
        self.gw.log.wait(r'Bluetooth LE discovery running')
        # bluetoothd would call the agent while pairing; call it the same way, at the gateway's name.
        dbus_obj = self.fake.bus.get_object('org.freedesktop.DBus', '/org/freedesktop/DBus')
        name = [n for n in dbus_obj.ListNames(dbus_interface='org.freedesktop.DBus') if n.startswith(':') and
                dbus_obj.GetConnectionUnixProcessID(n, dbus_interface='org.freedesktop.DBus') == self.gw.proc.pid][0]
        agent = self.fake.bus.get_object(name, '/org/homecare/agent')
        self.assertEqual(agent.RequestPasskey(dbus.ObjectPath(self.cuff), dbus_interface='org.bluez.Agent1'), 123456)
        self.assertEqual(agent.RequestPinCode(dbus.ObjectPath(self.cuff), dbus_interface='org.bluez.Agent1'), '123456')
        with self.assertRaises(dbus.exceptions.DBusException) as e:
            agent.RequestPasskey(dbus.ObjectPath(dev_path(MOTION)), dbus_interface='org.bluez.Agent1')
        self.assertEqual(e.exception.get_dbus_name(), 'org.bluez.Error.Rejected')
        agent.RequestConfirmation(dbus.ObjectPath(self.cuff), dbus.UInt32(4711), dbus_interface='org.bluez.Agent1')
        agent.RequestAuthorization(dbus.ObjectPath(self.cuff), dbus_interface='org.bluez.Agent1')
        # A device that is not one of this home's sensors does not get to pair ("just works" included).
        bluez = self.fake.bus.get_object('org.bluez', '/org/bluez')
        bluez.AddDevice('hci0', '11:22:33:44:55:66', 'neighbours-phone', dbus_interface='org.bluez.Mock')
        for call in (lambda p: agent.RequestAuthorization(p, dbus_interface='org.bluez.Agent1'),
                     lambda p: agent.RequestConfirmation(p, dbus.UInt32(4711), dbus_interface='org.bluez.Agent1'),
                     lambda p: agent.AuthorizeService(p, '0000110b-0000-1000-8000-00805f9b34fb',
                                                      dbus_interface='org.bluez.Agent1')):
            with self.assertRaises(dbus.exceptions.DBusException) as e:
                call(dbus.ObjectPath(dev_path('11:22:33:44:55:66')))
            self.assertEqual(e.exception.get_dbus_name(), 'org.bluez.Error.Rejected')
        self.gw.log.wait(r'Refused pairing with /org/bluez/hci0/dev_11_22_33_44_55_66')  # the log is read by a thread

    def test_adapter_goes_away_and_comes_back(self):
        self.start()
        bluez = self.fake.bus.get_object('org.bluez', '/org/bluez')
        mark = self.gw.log.count()
        bluez.RemoveAdapter('hci0', dbus_interface='org.bluez.Mock')
        self.gw.log.wait(r'Bluetooth adapter /org/bluez/hci0 went away', start=mark)
        bluez.AddAdapter('hci0', 'homecare-test', dbus_interface='org.bluez.Mock')
        self.gw.log.wait(r'Bluetooth LE discovery running on /org/bluez/hci0', start=mark)
        self.fake.advertise(MOTION, bytes.fromhex('40 00 07 21 01'))
        self.sub.wait(lambda: self.items('bedroom-motion'), 'data on the returned adapter')

    def test_heart_rate_strap_through_acquire_notify(self):
        self.start(strap=True)
        self.gw.log.wait(r'Connected to hr-strap')
        self.fake.set(self.strap, 'org.bluez.Device1', 'ServicesResolved', True)
        self.gw.log.wait(r'Acquired notifications from .*char0021')
        strap = self.fake.bus.get_object('org.bluez', self.strap_char)
        for value in ('00 48', '10 49 00 04'):  # 72 /min; 73 /min with an RR interval of 1 s
            strap.Push(dbus.Array(bytes.fromhex(value), signature='y'), dbus_interface='org.bluez.GattCharacteristic1')
        self.sub.wait(lambda: len(self.items('hr-strap')) >= 3, 'the notifications')
        self.assertEqual([(i['metric'], i['value']) for i in self.items('hr-strap')],
                         [('heart_rate', 72), ('heart_rate', 73), ('rr_interval', 1)])

    def test_notify_still_held_is_waited_out_not_paired(self):
        """fails on c28a02e: bluetoothd refuses a subscription with NotPermitted "Notify acquired" while it
        still holds an earlier AcquireNotify session (after a reconnect or its own restart); the gateway
        read every NotPermitted as "needs bonding" and called Pair (a strap went into a Pair,
        AuthenticationFailed, disconnect loop once a second in the VM tier). Now it waits and
        subscribes again, and never pairs."""
        self.start(strap=True, strap_held=2)
        self.gw.log.wait(r'Connected to hr-strap')
        self.fake.set(self.strap, 'org.bluez.Device1', 'ServicesResolved', True)
        self.gw.log.wait(r'hr-strap: notifications of .*char0021 are still held by an earlier session')
        self.gw.log.wait(r'(Acquired notifications from|Subscribed to) .*char0021', timeout=30)
        strap = self.fake.bus.get_object('org.bluez', self.strap_char)
        strap.Push(dbus.Array(bytes.fromhex('00 48'), signature='y'), dbus_interface='org.bluez.GattCharacteristic1')
        self.sub.wait(lambda: len(self.items('hr-strap')) >= 1, 'a notification')
        self.assertNotRegex(self.gw.log.text(), r'needs bonding|Pairing with')
        self.assertEqual(len(re.findall(r'still held by an earlier session', self.gw.log.text())), 1,
                         'said once per episode')

    def test_link_lost_is_connected_again_after_a_grace_second(self):
        # fails on fb6d774: Connect went out at once on Connected=false. When the link drops because
        # bluetoothd is stopping (SIGTERM powers the adapters off), that Connect leaves a half-made
        # connection, and Debian 6.1's kernel BUGs in hci_chan_del as bluetoothd exits (docs/bluetooth.md).
        self.start(strap=True)
        self.gw.log.wait(r'Connected to hr-strap')
        mark = self.gw.log.count()
        lost = time.monotonic()
        self.fake.set(self.strap, 'org.bluez.Device1', 'Connected', False)
        self.gw.log.wait(r'hr-strap disconnected', start=mark)
        self.gw.log.wait(r'Connected to hr-strap', start=mark)  # the fake's Connect answers at once
        # The gateway cannot be early, only late: at least the grace second after the loss.
        self.assertGreaterEqual(time.monotonic() - lost, 0.9)

    def test_strap_whose_connected_signal_is_missing_is_still_read(self):
        # Seen with the real bluetoothd just after it restarted: Connect answers, services resolve, and
        # Connected=true is never signalled (the property is true when asked later).
        self.start(strap=True, silent_connect=True)
        self.gw.log.wait(r'Connected to hr-strap')
        self.fake.set(self.strap, 'org.bluez.Device1', 'ServicesResolved', True)
        self.gw.log.wait(r'Acquired notifications from .*char0021')
        strap = self.fake.bus.get_object('org.bluez', self.strap_char)
        strap.Push(dbus.Array(bytes.fromhex('00 48'), signature='y'), dbus_interface='org.bluez.GattCharacteristic1')
        self.sub.wait(lambda: self.items('hr-strap'), 'the notification')
        self.assertNotIn('answered after a disconnect', self.gw.log.text())

    def test_device_whose_measurement_never_shows_is_dropped_and_read_again(self):
        # Resolved services without the measurement (a device whose GATT server came up late): do not
        # sit connected and silent; drop the link and read the services again on the next connection.
        self.start()
        bluez = self.fake.bus.get_object('org.bluez', '/org/bluez')
        bluez.AddDevice('hci0', STRAP, 'hr-strap', dbus_interface='org.bluez.Mock')
        strap = dev_path(STRAP)
        self.gw.log.wait(r'Connected to hr-strap')
        mark = self.gw.log.count()
        self.fake.set(strap, 'org.bluez.Device1', 'ServicesResolved', True)
        self.gw.log.wait(r'hr-strap shows no measurement characteristic 10 s after its services were resolved',
                         start=mark)
        self.gw.log.wait(r'hr-strap disconnected', start=mark)
        self.gw.log.wait(r'Connected to hr-strap', start=mark)
        _, ch = self.fake.add_strap(STRAP, device=False)
        self.fake.set(strap, 'org.bluez.Device1', 'ServicesResolved', True)
        self.gw.log.wait(r'Acquired notifications from .*char0021', start=mark)
        self.fake.bus.get_object('org.bluez', ch).Push(dbus.Array(bytes.fromhex('00 48'), signature='y'),
                                                       dbus_interface='org.bluez.GattCharacteristic1')
        self.sub.wait(lambda: self.items('hr-strap'), 'the notification on the second connection')

    def test_strap_that_drops_while_acquiring_keeps_the_latest_socket(self):
        self.start(strap=True, flap=True)
        self.gw.log.wait(r'Connected to hr-strap')
        self.fake.set(self.strap, 'org.bluez.Device1', 'ServicesResolved', True)
        self.gw.log.wait_n(r'Acquired notifications from .*char0021', 2)
        strap = self.fake.bus.get_object('org.bluez', self.strap_char)
        # The socket of the dropped link closes; the gateway must keep listening on the new one.
        strap.DropFirst(dbus_interface='org.bluez.GattCharacteristic1')
        self.fake.advertise(MOTION, bytes.fromhex('40 00 01 21 01'))  # the loop has seen the close by then
        self.sub.wait(lambda: self.items('bedroom-motion'), 'the motion event')
        strap.Push(dbus.Array(bytes.fromhex('00 48'), signature='y'), dbus_interface='org.bluez.GattCharacteristic1')
        self.sub.wait(lambda: self.items('hr-strap'), 'the notification on the second socket')
        self.assertEqual([(i['metric'], i['value']) for i in self.items('hr-strap')], [('heart_rate', 72)])

    def test_no_system_bus_the_rest_runs(self):
        self.b = self.broker()
        self.sub = self.subscriber(self.b.port)
        os.environ['DBUS_SYSTEM_BUS_ADDRESS'] = 'unix:path=/nonexistent/bus'
        try:
            gw = self.gateway(config(self.b.port, self.state, speed=20000, extra=SENSORS % (MOTION, CLIMATE, KEY)))
        finally:
            del os.environ['DBUS_SYSTEM_BUS_ADDRESS']
        gw.log.wait(r'Bluetooth does not work, no system bus')
        self.sub.wait(lambda: len(self.sub.items) >= 10, 'the simulated home still flows')
        status = [s for s in self.sub.status if s['state'] == 'online'][-1]
        self.assertIn('no system bus', status['bluetooth']['error'])


if __name__ == '__main__':
    unittest.main(verbosity=2)
