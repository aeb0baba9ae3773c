#!/usr/bin/python3
"""Fault suite, the network between gateway and broker: the gateway runs in a network namespace of
its own (ip netns exec), joined by a veth pair to the broker in the test's namespace; the link is
dropped, then a blackhole route eats the broker's address. Needs root; skipped (with the reason) only
where `ip netns add` is not permitted. Every address is on the veth pair this test makes."""
import os
import signal
import subprocess
import unittest

from harness import GW, Broker, Gateway, Lines, TestCase, config, free_port

ALERTS = '[Medication]\nSchedule=11:00\nGraceMinutes=60\n'
BROKER_ADDR, GW_ADDR = '10.213.7.1', '10.213.7.2'


def ip(*args, check=True):
    return subprocess.run(['ip', *args], check=check, capture_output=True, text=True)


class NetnsGateway(Gateway):
    """The real gateway, run inside a network namespace."""

    def __init__(self, ns, *args, **kw):
        super().__init__(*args, **kw)
        self.ns = ns

    def start(self):
        self.proc = subprocess.Popen(['ip', 'netns', 'exec', self.ns, GW, 'run', '--config', self.config],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.log = Lines(self.proc.stderr, logfile=open(self.logpath, 'a'))
        return self


class NetworkFaults(TestCase):
    def setUp(self):
        super().setUp()
        tag = '%d' % (os.getpid() % 100000)
        self.ns, self.veth_b, self.veth_g = 'hcgw-gw-' + tag, 'hcb' + tag, 'hcg' + tag
        r = ip('netns', 'add', self.ns, check=False)
        if r.returncode != 0:
            self.skipTest('ip netns add is not permitted here: %s' % r.stderr.strip())
        # Deleting the namespace deletes the veth pair with it, whatever state the test left.
        self.cleanups.append(lambda: ip('netns', 'del', self.ns, check=False))
        ip('link', 'add', self.veth_b, 'type', 'veth', 'peer', 'name', self.veth_g, 'netns', self.ns)
        ip('addr', 'add', BROKER_ADDR + '/30', 'dev', self.veth_b)
        ip('link', 'set', self.veth_b, 'up')
        ip('-n', self.ns, 'addr', 'add', GW_ADDR + '/30', 'dev', self.veth_g)
        ip('-n', self.ns, 'link', 'set', self.veth_g, 'up')
        ip('-n', self.ns, 'link', 'set', 'lo', 'up')

    def complete(self, gw, sub):
        gw.signal(signal.SIGTERM)
        self.assertEqual(gw.wait_exit(timeout=15), 0, 'clean exit')
        sub.wait(lambda: sub.status and sub.status[-1]['state'] == 'offline', 'offline status')
        last = sub.status[-1]['last_seq']
        sub.wait(lambda: sub.seq_set() >= set(range(1, last + 1)), 'every seq up to %d' % last, timeout=90)
        return last

    # fails on fb6d774: the keepalive time-out after the link drop aborts the gateway
    # ("Assertion 'e' failed ... event_pid_changed" from on_misc_timer).
    def test_link_down_and_blackhole_route(self):
        port = free_port()
        b = Broker(self.dir)
        with open(b.conf, 'a') as f:
            f.write('listener %d %s\n' % (port, BROKER_ADDR))
        b.start()
        self.cleanups.append(b.stop)
        sub = self.subscriber(b.port, client_id='sub-netns')
        gw = NetnsGateway(self.ns, self.dir, config(port, self.state, speed=40000, broker='mqtt://%s:%d' % (BROKER_ADDR, port),
                                                    extra='[Uplink]\nKeepaliveSec=5\n' + ALERTS)).start()
        self.cleanups.append(gw.stop)
        gw.log.wait(r'Connected to broker %s' % BROKER_ADDR)
        sub.wait(lambda: len(sub.seq_set()) >= 50, 'first items')

        # 1. The link goes down (the broker's end): no RST, no FIN, packets vanish, as with Wi-Fi gone.
        mark = gw.log.count()
        ip('link', 'set', self.veth_b, 'down')
        try:
            gw.log.wait(r'Disconnected from broker', start=mark, timeout=40)
            gw.log.wait(r'Reconnecting to the broker in', start=mark)
            self.assertIsNone(gw.proc.poll(), 'the gateway runs while the link is down')
        finally:
            ip('link', 'set', self.veth_b, 'up')
        gw.log.wait(r'Connected to broker', start=mark, timeout=90)

        # 2. A blackhole route to the broker in the gateway's namespace.
        mark = gw.log.count()
        ip('-n', self.ns, 'route', 'add', 'blackhole', BROKER_ADDR + '/32')
        try:
            gw.log.wait(r'Disconnected from broker', start=mark, timeout=40)
            gw.log.wait(r'Could not connect to broker', start=mark, timeout=40)
            self.assertIsNone(gw.proc.poll(), 'the gateway runs behind the blackhole')
        finally:
            ip('-n', self.ns, 'route', 'del', 'blackhole', BROKER_ADDR + '/32')
        gw.log.wait(r'Connected to broker', start=mark, timeout=90)

        last = self.complete(gw, sub)
        print('FAULT network link down past the keepalive, then a blackhole route (gateway in its own netns): '
              'survived, no crash, reconnected each time, all %d seqs arrived' % last)


if __name__ == '__main__':
    unittest.main(verbosity=2)
