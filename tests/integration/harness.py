"""Real parts for integration tests: a mosquitto broker on 127.0.0.1 at a free port, a subscriber,
and the real homecare-gw binary. Every wait is on an event (a log line, a message) with a deadline;
nothing sleeps to synchronise."""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import paho.mqtt.client as paho

GW = os.environ.get('HOMECARE_GW', os.path.join(os.path.dirname(__file__), '..', '..', 'build', 'homecare-gw'))
MOSQUITTO = shutil.which('mosquitto') or '/usr/sbin/mosquitto'
DEFAULT_TIMEOUT = float(os.environ.get('HCGW_TEST_TIMEOUT', '30'))
# ./scripts/test --valgrind: every gateway runs under memcheck; an error or a leak makes its exit status
# 99, which fails the test at its SIGTERM like a crash.
VALGRIND = (['valgrind', '-q', '--error-exitcode=99', '--leak-check=full', '--errors-for-leak-kinds=definite',
             '--track-fds=no', '--suppressions=' + os.path.join(os.path.dirname(os.path.abspath(__file__)), '..',
                                                               'valgrind.supp')]
            if os.environ.get('HCGW_VALGRIND') else [])
STOP_TIMEOUT = 60 if VALGRIND else 10  # memcheck runs the gateway some 20 times slower


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


class Lines:
    """Collects the lines of a pipe in a thread; wait() blocks on a condition with a deadline."""

    def __init__(self, pipe, echo_prefix=None, logfile=None):
        self.lines = []
        self.cond = threading.Condition()
        self.closed = False
        self.echo_prefix = echo_prefix
        self.logfile = logfile
        self.thread = threading.Thread(target=self._read, args=(pipe,), daemon=True)
        self.thread.start()

    def _read(self, pipe):
        for raw in iter(pipe.readline, b''):
            line = raw.decode('utf-8', 'replace').rstrip('\n')
            if self.logfile:
                self.logfile.write(line + '\n')
                self.logfile.flush()
            with self.cond:
                self.lines.append(line)
                self.cond.notify_all()
        with self.cond:
            self.closed = True
            self.cond.notify_all()

    def _until(self, find, what, timeout):
        """Returns find()'s first answer that is not None, tried at each new line; fails the test with
        'no WHAT' if none comes within timeout or the log ends."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                found = find()
                if found is not None:
                    return found
                left = deadline - time.monotonic()
                if left <= 0 or self.closed:
                    raise AssertionError('no %s within %.0f s (closed=%s); last lines:\n%s' %
                                         (what, timeout, self.closed, '\n'.join(self.lines[-20:])))
                self.cond.wait(left)

    def wait(self, pattern, timeout=DEFAULT_TIMEOUT, start=0):
        """Returns the first line at index >= start matching pattern; fails the test on timeout."""
        rx = re.compile(pattern)
        return self._until(lambda: next((line for line in self.lines[start:] if rx.search(line)), None),
                           'line matching %r' % pattern, timeout)

    def wait_n(self, pattern, n, timeout=DEFAULT_TIMEOUT):
        """Waits until n lines match pattern; fails the test on timeout."""
        rx = re.compile(pattern)
        self._until(lambda: True if sum(1 for line in self.lines if rx.search(line)) >= n else None,
                    '%d lines matching %r' % (n, pattern), timeout)

    def count(self):
        with self.cond:
            return len(self.lines)

    def text(self):
        with self.cond:
            return '\n'.join(self.lines)


class Broker:
    """mosquitto on 127.0.0.1; can be stopped and started again on the same port."""

    def __init__(self, workdir, port=None, tls=None, persistence=True):
        self.workdir = workdir
        self.port = port or free_port()
        self.tls = tls  # dict(port, cafile, certfile, keyfile, require_certificate)
        self.persistence = persistence
        self.proc = None
        self.conf = os.path.join(workdir, 'mosquitto-%d.conf' % self.port)
        lines = ['per_listener_settings false', 'allow_anonymous true', 'log_dest stderr',
                 'log_type error', 'log_type warning', 'log_type notice', 'log_type information',
                 'log_type subscribe',  # so a test can wait until the gateway listens for commands
                 'connection_messages true',
                 # mosquitto drops QoS 1 messages for slow subscribers above this (default 1000)
                 'max_queued_messages 1000000', 'max_inflight_messages 100',
                 'user root', 'listener %d 127.0.0.1' % self.port]
        if persistence:
            lines += ['persistence true', 'persistence_location %s/' % workdir, 'autosave_interval 3600']
        if tls:
            lines += ['listener %d 127.0.0.1' % tls['port'], 'cafile ' + tls['cafile'],
                      'certfile ' + tls['certfile'], 'keyfile ' + tls['keyfile']]
            if tls.get('require_certificate'):
                lines += ['require_certificate true']
        with open(self.conf, 'w') as f:
            f.write('\n'.join(lines) + '\n')

    def start(self):
        self.proc = subprocess.Popen([MOSQUITTO, '-c', self.conf], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        self.log = Lines(self.proc.stderr, logfile=open(os.path.join(self.workdir, 'mosquitto.log'), 'a'))
        self.log.wait(r'mosquitto version .* running', timeout=10)
        return self

    def wait_subscribed(self, topic_part='/cmd/', start=0, timeout=DEFAULT_TIMEOUT):
        """Waits until a client has subscribed to a topic containing topic_part (from log line start)."""
        return self.log.wait(r' \d ' + re.escape('homecare/v1/') + r'\S*' + re.escape(topic_part), timeout=timeout,
                             start=start)

    def stop(self, sig=signal.SIGTERM):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=10)
        self.proc = None


class Subscriber:
    """A paho client that records every message on homecare/v1/<gw>/#; items are indexed by seq."""

    def __init__(self, port, gw='home-0042', client_id=None, persistent=False, tls=None):
        self.cond = threading.Condition()
        self.messages = []  # (topic, payload dict or str, retain)
        self.items = []     # (lane, item) in arrival order
        self.status = []
        self.subscribed = False
        self.gw = gw
        self.prefix = 'homecare/v1/%s/' % gw
        self.client = paho.Client(client_id=client_id or 'test-sub-%d' % os.getpid(),
                                  clean_session=not persistent, protocol=paho.MQTTv311)
        self.client.max_queued_messages_set(0)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(min_delay=0.05, max_delay=0.2)
        self.client.connect_async('127.0.0.1', port, keepalive=30)
        self.client.loop_start()
        self.wait(lambda: self.subscribed, 'SUBACK')

    def _on_connect(self, client, userdata, flags, rc):
        client.subscribe(self.prefix + '#', qos=1)

    def _on_subscribe(self, client, userdata, mid, granted):
        with self.cond:
            self.subscribed = True
            self.cond.notify_all()

    def _on_message(self, client, userdata, msg):
        try:
            payload = json.loads(msg.payload.decode())
        except ValueError:
            payload = msg.payload.decode('utf-8', 'replace')
        lane = msg.topic[len(self.prefix):]
        with self.cond:
            self.messages.append((msg.topic, payload, msg.retain))
            if lane in ('telemetry', 'events'):
                for it in payload['items']:
                    self.items.append((lane, it))
            elif lane == 'alerts':
                self.items.append((lane, payload))
            elif lane == 'status':
                self.status.append(payload)
            self.cond.notify_all()

    def wait(self, predicate, what, timeout=DEFAULT_TIMEOUT):
        deadline = time.monotonic() + timeout
        with self.cond:
            while not predicate():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError('timed out after %.0f s waiting for %s' % (timeout, what))
                self.cond.wait(left)

    def seqs(self):
        with self.cond:
            return [it['seq'] for _, it in self.items]

    def seq_set(self):
        return set(self.seqs())

    def publish(self, topic, payload):
        info = self.client.publish(self.prefix + topic, payload, qos=1)
        info.wait_for_publish()

    def close(self):
        self.client.loop_stop()
        self.client.disconnect()


class Gateway:
    def __init__(self, workdir, config_text, name='gw'):
        self.workdir = workdir
        self.config = os.path.join(workdir, name + '.conf')
        self.logpath = os.path.join(workdir, name + '.log')
        with open(self.config, 'w') as f:
            f.write(config_text)
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(VALGRIND + [GW, 'run'] + (['-v'] if os.environ.get('HCGW_VERBOSE') else []) +
                                     ['--config', self.config], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.log = Lines(self.proc.stderr, logfile=open(self.logpath, 'a'))
        return self

    def signal(self, sig):
        self.proc.send_signal(sig)

    def kill9(self):
        self.proc.kill()
        self.proc.wait(timeout=10)

    def wait_exit(self, timeout=STOP_TIMEOUT):
        return self.proc.wait(timeout=timeout)

    def stop(self):
        """Stops a gateway that still runs with SIGTERM; returns its exit status then (None if it had
        already ended). Anything but 0 (a crash, a sanitizer report) fails the test."""
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                return self.proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                return 'no exit within 10 s of SIGTERM'
        return None


def config(port, state, broker=None, sim=True, speed='max', limit=0, extra=''):
    text = '[Gateway]\nId=home-0042\nStateDirectory=%s\n' % state
    text += '[Uplink]\nBroker=%s\n' % (broker or 'mqtt://127.0.0.1:%d' % port)
    text += '[Store]\nCommitDelayMs=50\n'
    if sim:
        text += '[Simulation]\nEnabled=yes\nSpeed=%s\nStart=2026-03-02T06:00:00Z\n' % speed
        if limit:
            text += 'Limit=%d\n' % limit
    if '[Web]' not in extra:
        # The technician's page is on by default (0.0.0.0:8443); tests that do not test it run without,
        # so that gateways running side by side do not compete for its port.
        text += '[Web]\nListen=\n'
    return text + extra


class TestCase(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix='hcgw-it-')
        self.state = os.path.join(self.dir, 'state')
        self.cleanups = []

    def tearDown(self):
        bad = []
        for fn in reversed(self.cleanups):
            try:
                rc = fn()
                if isinstance(fn, type(self.tearDown)) and isinstance(fn.__self__, Gateway) and rc not in (None, 0):
                    with open(fn.__self__.logpath) as f:
                        bad.append('gateway %s exited %s at SIGTERM; log tail:\n%s' %
                                   (fn.__self__.config, rc, ''.join(f.readlines()[-30:])))
            except Exception as e:  # noqa: cleanup must go on
                print('cleanup:', e, file=sys.stderr)
        if os.environ.get('HCGW_KEEP') or bad:
            print('kept', self.dir, file=sys.stderr)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)
        if bad:
            raise AssertionError('\n'.join(bad))

    def setenv(self, **values):
        """Sets environment variables for this test (the gateways it starts inherit them); the old
        values come back after it, set or unset as they were."""
        for k, v in values.items():
            old = os.environ.get(k)
            self.cleanups.append(lambda k=k, old=old: os.environ.pop(k, None) if old is None
                                 else os.environ.__setitem__(k, old))
            os.environ[k] = v

    def broker(self, **kw):
        b = Broker(self.dir, **kw).start()
        self.cleanups.append(b.stop)
        return b

    def subscriber(self, port, **kw):
        s = Subscriber(port, **kw)
        self.cleanups.append(s.close)
        return s

    def gateway(self, text, name='gw'):
        g = Gateway(self.dir, text, name).start()
        self.cleanups.append(g.stop)
        return g

    def assert_lane_order(self, sub):
        """Within each lane, items arrive in seq order (before any resend)."""
        last = {}
        for lane, it in sub.items:
            self.assertGreater(it['seq'], last.get(lane, 0), 'out of order in %s' % lane)
            last[lane] = it['seq']
