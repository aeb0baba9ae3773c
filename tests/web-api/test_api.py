#!/usr/bin/python3
"""The technician's page's API against the real gateway: the simulated home, a real mosquitto, HTTPS
with the certificate the gateway makes. Every status code of the API table in issue 13, the Origin
refusal, the cookie's attributes, the headers every answer carries, the setup code spent after use,
the lockout, and no secret in any log line."""
import hashlib
import http.client
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'integration'))
import harness  # noqa: E402

PASSWORD = 'correct horse battery staple'


class Page:
    """A client of the page that keeps its session cookie and CSRF token, as a browser would."""

    def __init__(self, port, plain=False):
        self.port = port
        self.plain = plain
        self.cookie = None
        self.csrf = None
        self.host = '127.0.0.1:%d' % port

    def connect(self, timeout=30):
        if self.plain:
            return http.client.HTTPConnection('127.0.0.1', self.port, timeout=timeout)
        return http.client.HTTPSConnection('127.0.0.1', self.port, timeout=timeout,
                                           context=ssl._create_unverified_context())

    def request(self, method, path, body=None, headers=None, session=True, csrf=True, timeout=30):
        """Returns (status, headers with lower-case names, body bytes); a JSON body is a dict or str."""
        h = {}
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
            h['Content-Type'] = 'application/json'
        if session and self.cookie:
            h['Cookie'] = 'hcgw_session=' + self.cookie
        if csrf and self.csrf and method == 'POST':
            h['X-CSRF-Token'] = self.csrf
        h.update(headers or {})
        c = self.connect(timeout)
        try:
            c.request(method, path, body=body.encode() if isinstance(body, str) else body, headers=h)
            r = c.getresponse()
            data = r.read()
            hdrs = {}
            for k, v in r.getheaders():
                hdrs.setdefault(k.lower(), v)
            return r.status, hdrs, data
        finally:
            c.close()

    def json(self, *a, **kw):
        status, hdrs, data = self.request(*a, **kw)
        return status, hdrs, json.loads(data) if data else None

    def take_session(self, hdrs, body):
        m = re.match(r'hcgw_session=([0-9a-f]{64});', hdrs.get('set-cookie', ''))
        assert m, 'no session cookie in %r' % hdrs
        self.cookie = m.group(1)
        self.csrf = body['csrf_token']

    def login(self, password=PASSWORD):
        status, hdrs, body = self.json('POST', '/api/login', {'password': password})
        assert status == 200, (status, body)
        self.take_session(hdrs, body)


def setup_code(state):
    with open(os.path.join(state, 'web-setup-code')) as f:
        return f.read().strip()


class PageCase(harness.TestCase):
    plain = False

    def start(self, extra='', speed='600', name='gw'):
        self.port = harness.free_port()
        self.broker_ = self.broker()
        text = harness.config(self.broker_.port, self.state, speed=speed,
                              extra='[Web]\nListen=127.0.0.1:%d\n%s%s' % (
                                  self.port, 'Plain=yes\n' if self.plain else '', extra))
        self.gw = self.gateway(text, name=name)
        self.gw.log.wait(r"Technician's page on http", timeout=60)
        self.page = Page(self.port, plain=self.plain)
        return self.gw

    def set_up_password(self):
        status, hdrs, body = self.page.json('POST', '/api/setup',
                                            {'setup_code': setup_code(self.state), 'password': PASSWORD})
        self.assertEqual(status, 200, body)
        self.page.take_session(hdrs, body)

    def assert_common_headers(self, hdrs, api, what):
        csp = hdrs.get('content-security-policy', '')
        self.assertIn("frame-ancestors 'none'", csp, what)
        self.assertNotIn('unsafe-inline', csp, what)
        self.assertIn("script-src 'self'", csp, what)
        self.assertIn("style-src 'self'", csp, what)
        self.assertEqual(hdrs.get('x-content-type-options'), 'nosniff', what)
        self.assertEqual(hdrs.get('referrer-policy'), 'no-referrer', what)
        if api:
            self.assertEqual(hdrs.get('cache-control'), 'no-store', what)


class TestFirstBoot(PageCase):
    def test_setup_login_logout_and_the_code_spent(self):
        gw = self.start()
        p = self.page
        # The code is logged beside the certificate's fingerprint, and it is the one in the state directory.
        code = setup_code(self.state)
        self.assertRegex(code, r'^\d{4}-\d{4}-\d{4}-\d{4}$')
        line = gw.log.wait(r'setup code')
        self.assertIn(code, line)
        fp = re.search(r'certificate SHA-256 ([0-9A-F:]{95})', line).group(1)
        # ... and the fingerprint is that of the certificate the page serves.
        der = ssl.get_server_certificate(('127.0.0.1', self.port))
        served = hashlib.sha256(ssl.PEM_cert_to_DER_cert(der)).hexdigest().upper()
        self.assertEqual(fp.replace(':', ''), served)
        self.assertEqual(os.stat(os.path.join(self.state, 'web-setup-code')).st_mode & 0o777, 0o600)
        self.assertEqual(os.stat(os.path.join(self.state, 'web.key')).st_mode & 0o777, 0o600)

        # GET /api/setup: needed while no password exists; every page but setup's goes to setup.
        status, hdrs, body = p.json('GET', '/api/setup')
        self.assertEqual((status, body), (200, {'needed': True}))
        status, hdrs, _ = p.request('GET', '/')
        self.assertEqual((status, hdrs.get('location')), (303, '/setup'))
        self.assertEqual(p.request('GET', '/setup')[0], 200)
        # Without a session the rest of the API answers 401.
        for method, path in (('GET', '/api/status'), ('GET', '/api/events'), ('POST', '/api/logout'),
                             ('POST', '/api/test-alarm'), ('GET', '/api/nothing-here')):
            status, hdrs, _ = p.request(method, path)
            self.assertEqual(status, 401, path)
            self.assert_common_headers(hdrs, True, path)
        # Login before a password exists: there is nothing to log in with.
        self.assertEqual(p.json('POST', '/api/login', {'password': PASSWORD})[0], 409)

        # A wrong code: 403. A right code with a short password: 400, and the code is not spent.
        status, _, body = p.json('POST', '/api/setup', {'setup_code': '0000-0000-0000-0000', 'password': PASSWORD})
        self.assertEqual(status, 403, body)
        status, _, body = p.json('POST', '/api/setup', {'setup_code': code, 'password': 'short'})
        self.assertEqual(status, 400)
        self.assertIn('10 characters', body['error'])
        self.assertTrue(os.path.exists(os.path.join(self.state, 'web-setup-code')))

        # The right code: 200 and a session, as a login gives.
        status, hdrs, body = p.json('POST', '/api/setup', {'setup_code': code.replace('-', ' '), 'password': PASSWORD})
        self.assertEqual(status, 200, body)
        self.assertRegex(body['csrf_token'], r'^[0-9a-f]{64}$')
        cookie = hdrs['set-cookie']
        self.assertRegex(cookie, r'^hcgw_session=[0-9a-f]{64}; ')
        attrs = [a.strip() for a in cookie.split(';')[1:]]
        self.assertEqual(sorted(attrs), sorted(['HttpOnly', 'Secure', 'SameSite=Strict', 'Path=/']))
        p.take_session(hdrs, body)
        self.assertEqual(p.json('GET', '/api/status')[0], 200)

        # The code is spent: gone from the state directory, refused (409), and setup-code says so.
        self.assertFalse(os.path.exists(os.path.join(self.state, 'web-setup-code')))
        status, _, body = p.json('POST', '/api/setup', {'setup_code': code, 'password': PASSWORD + 'x'},
                                 session=False)
        self.assertEqual(status, 409, body)
        r = subprocess.run([harness.GW, 'setup-code', '--config', gw.config], capture_output=True, text=True)
        self.assertEqual(r.returncode, 1)
        self.assertIn('spent', r.stderr)
        self.assertEqual(p.json('GET', '/api/setup')[2], {'needed': False})
        status, hdrs, _ = p.request('GET', '/')
        self.assertEqual(status, 200)
        self.assert_common_headers(hdrs, False, 'the page')
        with open(os.path.join(self.state, 'web-password')) as f:
            stored = f.read()
        self.assertTrue(stored.startswith('$y$'), 'not a yescrypt hash')
        self.assertNotIn(PASSWORD, stored)

        # Login: 200 with a CSRF token and the cookie; wrong: 401.
        status, _, body = p.json('POST', '/api/login', {'password': 'wrong password!'}, session=False)
        self.assertEqual(status, 401, body)
        old = p.cookie
        p.login()
        self.assertNotEqual(p.cookie, old)
        # Logout: 204; the session is over.
        status, hdrs, _ = p.request('POST', '/api/logout')
        self.assertEqual(status, 204)
        self.assertIn('Max-Age=0', hdrs.get('set-cookie', ''))
        self.assertEqual(p.request('GET', '/api/status')[0], 401)

        # reset-password on the box: a new code, the password and every session gone.
        p.login()
        r = subprocess.run([harness.GW, 'reset-password', '--config', gw.config], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        new_code = r.stdout.strip().splitlines()[-1]
        self.assertEqual(new_code, setup_code(self.state))
        self.assertNotEqual(new_code, code)
        self.assertEqual(p.request('GET', '/api/status')[0], 401)
        self.assertEqual(p.json('GET', '/api/setup')[2], {'needed': True})
        status, _, body = p.json('POST', '/api/setup', {'setup_code': code, 'password': PASSWORD}, session=False)
        self.assertEqual(status, 403, 'the old code works again')
        status, hdrs, body = p.json('POST', '/api/setup', {'setup_code': new_code, 'password': PASSWORD + '2'})
        self.assertEqual(status, 200, body)

        self.check_no_secrets(gw, [PASSWORD, PASSWORD + '2', 'wrong password!', old, p.cookie, p.csrf],
                              codes=[code, new_code])

    def check_no_secrets(self, gw, secrets, codes):
        """No password or token in any log line; a setup code only in the line that announces it."""
        self.assertEqual(gw.stop(), 0)
        with open(gw.logpath) as f:
            lines = f.read().splitlines()
        self.assertTrue(lines)
        for line in lines:
            for s in secrets:
                self.assertNotIn(s, line)
            for c in codes:
                for form in (c, c.replace('-', ''), c.replace('-', ' ')):
                    if form in line:
                        self.assertRegex(line, r"Technician's page: setup code ")
        self.assertTrue(any(codes[0] in line for line in lines), 'the setup code was never logged')
        self.assertTrue(any('login from 127.0.0.1' in line for line in lines))
        self.assertTrue(any('failed login from 127.0.0.1' in line for line in lines))


class TestApi(PageCase):
    def setUp(self):
        super().setUp()
        self.start()
        self.set_up_password()

    def test_checks_before_any_handler(self):
        p = self.page
        # 413: a body over 64 KiB, announced or sent.
        big = json.dumps({'message': 'x' * (70 * 1024)})
        status, hdrs, body = p.json('POST', '/api/test-alarm', big, headers={'Content-Type': 'application/json'})
        self.assertEqual(status, 413, body)
        self.assert_common_headers(hdrs, True, '413')
        # 415: a body that is not JSON by its type.
        status, hdrs, body = p.json('POST', '/api/test-alarm', 'message=hi',
                                    headers={'Content-Type': 'application/x-www-form-urlencoded'})
        self.assertEqual(status, 415, body)
        status, _, body = p.json('POST', '/api/login', '{"password":"x"}', headers={'Content-Type': 'text/plain'})
        self.assertEqual(status, 415, body)
        # 400: malformed JSON, named.
        status, _, body = p.json('POST', '/api/login', '{"password": ', headers={'Content-Type': 'application/json'})
        self.assertEqual(status, 400)
        self.assertIn('malformed JSON at line 1', body['error'])
        status, _, body = p.json('POST', '/api/login', {'passwort': PASSWORD})
        self.assertEqual(status, 400)
        self.assertIn('"password"', body['error'])
        status, _, body = p.json('POST', '/api/login', [PASSWORD])
        self.assertEqual(status, 400)
        self.assertIn('JSON object', body['error'])
        status, _, body = p.json('POST', '/api/test-alarm', {'message': 42})
        self.assertEqual(status, 400)
        self.assertIn('"message"', body['error'])
        # 403: a state-changing request without its CSRF token, or with a wrong one.
        status, _, body = p.json('POST', '/api/test-alarm', {'message': 'x'}, csrf=False)
        self.assertEqual(status, 403, body)
        self.assertIn('CSRF', body['error'])
        status, _, body = p.json('POST', '/api/logout', headers={'X-CSRF-Token': '0' * 64}, csrf=False)
        self.assertEqual(status, 403, body)
        self.assertEqual(p.request('GET', '/api/status')[0], 200, 'the refused logout logged out')
        # 403: an Origin that is not the page's own; the page's own passes.
        for origin in ('https://evil.example', 'http://%s' % p.host, 'null', 'https://%s.evil.example' % p.host):
            status, _, body = p.json('GET', '/api/status', headers={'Origin': origin})
            self.assertEqual(status, 403, origin)
            self.assertIn('cross-origin', body['error'])
        status, _, body = p.json('POST', '/api/login', {'password': PASSWORD}, headers={'Origin': 'https://evil.example'})
        self.assertEqual(status, 403, 'a cross-origin login')
        self.assertEqual(p.request('GET', '/api/status', headers={'Origin': 'https://' + p.host})[0], 200)
        # 404 and 405.
        self.assertEqual(p.request('GET', '/api/nothing-here')[0], 404)
        status, hdrs, _ = p.request('DELETE', '/api/status')
        self.assertEqual((status, hdrs.get('allow')), (405, 'GET'))
        status, hdrs, _ = p.request('GET', '/no-such-file.js')
        self.assertEqual(status, 404)
        self.assert_common_headers(hdrs, False, '404')

    def test_status_and_events(self):
        p = self.page
        status, hdrs, s = p.json('GET', '/api/status')
        self.assertEqual(status, 200)
        self.assert_common_headers(hdrs, True, 'status')
        for key in ('state', 'gateway', 'version', 'backlog', 'backlog_by_lane', 'dropped', 'store', 'open_alerts',
                    'uplink', 'clock', 'disk', 'web', 'time'):
            self.assertIn(key, s)
        self.assertEqual(s['gateway'], 'home-0042')
        self.assertTrue(s['web']['up'])
        self.assertTrue(s['web']['tls'])
        self.assertRegex(s['web']['fingerprint'], r'^([0-9A-F]{2}:){31}[0-9A-F]{2}$')
        self.assertIn('synchronized', s['clock'])
        self.assertGreater(s['disk']['used_bytes'], 0)

        # The event stream: a status at once, and another when the simulated home's items move the
        # backlog or the broker acknowledges them.
        c = p.connect(timeout=30)
        c.request('GET', '/api/events', headers={'Cookie': 'hcgw_session=' + p.cookie})
        r = c.getresponse()
        self.assertEqual(r.status, 200)
        self.assertEqual(r.getheader('Content-Type'), 'text/event-stream')
        self.assertEqual(r.getheader('Cache-Control'), 'no-store')
        events = []
        deadline = time.monotonic() + 60
        heard = lambda e: any(v.get('last_seen') for v in e.get('sensors', {}).values())
        while (len(events) < 3 or not heard(events[-1])) and time.monotonic() < deadline:
            line = r.fp.readline().decode()
            if line.startswith('data: '):
                events.append(json.loads(line[6:]))
            elif line.startswith('event: '):
                self.assertEqual(line.strip(), 'event: status')
        c.close()
        self.assertGreaterEqual(len(events), 3, 'fewer than 3 status events within 60 s')
        # Each sensor of the simulated home, as the device registry heard it.
        self.assertTrue(heard(events[-1]), 'no sensor heard within 60 s: %s' % events[-1].get('sensors'))
        self.assertIn('last_value', next(v for v in events[-1]['sensors'].values() if v.get('last_seen')))
        self.assertIn('open_alerts', events[0])
        self.assertNotEqual(events[0]['time'], events[-1]['time'])

        # The stream ends with its session: after logout, at the next change, the server closes it.
        c = p.connect(timeout=60)
        c.request('GET', '/api/events', headers={'Cookie': 'hcgw_session=' + p.cookie})
        r = c.getresponse()
        self.assertEqual(r.status, 200)
        self.assertEqual(p.request('POST', '/api/logout')[0], 204)
        # read() returns at the end of the chunked body (a timeout fails the test).
        self.assertIn(b'event: status', r.read())
        c.close()

    def test_test_alarm_acknowledged(self):
        p = self.page
        sub = self.subscriber(self.broker_.port)
        t0 = time.monotonic()
        status, hdrs, body = p.json('POST', '/api/test-alarm', {'message': 'from the page'})
        self.assertEqual(status, 200, body)
        self.assert_common_headers(hdrs, True, 'test-alarm')
        self.assertTrue(body['acked'], body)
        self.assertLess(time.monotonic() - t0, 10)
        self.assertRegex(body['acked_at'], r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$')
        # The broker has it, with that id.
        sub.wait(lambda: any(lane == 'alerts' and it.get('id') == body['alert_id'] for lane, it in sub.items),
                 'the test alarm on alerts')
        # Rate-limited after 3: 429 with Retry-After.
        for _ in range(2):
            self.assertEqual(p.json('POST', '/api/test-alarm', {})[0], 200)
        status, hdrs, body = p.json('POST', '/api/test-alarm', {'message': 'one too many'})
        self.assertEqual(status, 429, body)
        self.assertGreater(int(hdrs['retry-after']), 0)

    def test_test_alarm_not_acknowledged(self):
        # The broker is gone: the alert waits in the outbox, and the page hears "acked": false after 10 s.
        self.broker_.stop()
        self.gw.log.wait(r'Disconnected from broker', timeout=60)
        t0 = time.monotonic()
        status, _, body = self.page.json('POST', '/api/test-alarm', {'message': 'nobody listens'})
        elapsed = time.monotonic() - t0
        self.assertEqual(status, 200, body)
        self.assertEqual(body['acked'], False)
        self.assertNotIn('acked_at', body)
        self.assertGreater(elapsed, 9)
        self.assertLess(elapsed, 30)

    def test_stop_with_a_stream_open_and_an_alarm_waiting(self):
        # SIGTERM while a page listens to its event stream (suspended between events) and another waits
        # for a test alarm's acknowledgement: the gateway stops cleanly (exit 0; under ASan, no leak).
        p = self.page
        c = p.connect(timeout=30)
        c.request('GET', '/api/events', headers={'Cookie': 'hcgw_session=' + p.cookie})
        r = c.getresponse()
        self.assertEqual(r.status, 200)
        while not r.fp.readline().startswith(b'event: status'):  # past the chunk sizes
            pass
        self.broker_.stop()
        self.gw.log.wait(r'Disconnected from broker', timeout=60)
        waiting = p.connect(timeout=30)
        waiting.request('POST', '/api/test-alarm', body=b'{"message":"at shutdown"}',
                        headers={'Cookie': 'hcgw_session=' + p.cookie, 'X-CSRF-Token': p.csrf,
                                 'Content-Type': 'application/json'})
        self.gw.log.wait(r'Alert \S+ raised: test_alarm \(at shutdown\)')
        self.assertEqual(self.gw.stop(), 0)
        c.close()
        waiting.close()

    def test_lockout(self):
        p = self.page
        for i in range(5):
            status, hdrs, body = p.json('POST', '/api/login', {'password': 'guess %d' % i}, session=False)
            self.assertEqual(status, 401, (i, body))
        status, hdrs, body = p.json('POST', '/api/login', {'password': PASSWORD}, session=False)
        self.assertEqual(status, 429, 'the right password is not even tried while locked out')
        wait = int(hdrs['retry-after'])
        self.assertGreaterEqual(wait, 1)
        self.gw.log.wait(r'tries from 127.0.0.1 are locked out for 1 s')
        # The server's own delay, not a synchronisation: the lockout ends when it says.
        time.sleep(wait + 0.2)
        # One more failure doubles the delay.
        self.assertEqual(p.json('POST', '/api/login', {'password': 'guess 6'}, session=False)[0], 401)
        status, hdrs, _ = p.json('POST', '/api/login', {'password': PASSWORD}, session=False)
        self.assertEqual(status, 429)
        self.assertEqual(int(hdrs['retry-after']), 2)
        time.sleep(2.2)
        # A success resets it.
        p.login()
        self.assertEqual(p.json('POST', '/api/login', {'password': 'guess 7'}, session=False)[0], 401)
        self.assertEqual(p.json('POST', '/api/login', {'password': PASSWORD}, session=False)[0], 200)


class TestPlain(PageCase):
    plain = True

    def test_plain_http_warned_and_cookie_without_secure(self):
        gw = self.start()
        gw.log.wait(r'<4>.*WITHOUT TLS \(Plain=yes\)')
        self.assertNotIn('certificate', setup_code(self.state))
        self.set_up_password()
        status, hdrs, body = self.page.json('POST', '/api/login', {'password': PASSWORD})
        self.assertEqual(status, 200)
        attrs = [a.strip() for a in hdrs['set-cookie'].split(';')[1:]]
        self.assertEqual(sorted(attrs), sorted(['HttpOnly', 'SameSite=Strict', 'Path=/']))
        s = self.page.json('GET', '/api/status')[2]
        self.assertFalse(s['web']['tls'])
        self.assertIsNone(s['web']['fingerprint'])


class TestDown(PageCase):
    def test_port_taken_retried_while_the_alarm_path_runs(self):
        # Another program holds the port: the page is down, says why, and is retried; alarms go on.
        blocker = socket.socket()
        blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        blocker.bind(('127.0.0.1', 0))
        blocker.listen(1)
        self.port = blocker.getsockname()[1]
        b = self.broker()
        sub = self.subscriber(b.port)
        text = harness.config(b.port, self.state, speed='600', extra='[Web]\nListen=127.0.0.1:%d\n' % self.port)
        text = text.replace('[Gateway]\nId=home-0042\n', '[Gateway]\nId=home-0042\nStatusIntervalSec=1\n', 1)
        gw = self.gateway(text)
        gw.log.wait(r"<3>Technician's page is down: cannot listen on 127.0.0.1:%d: Address already in use; "
                    r"retrying in 1 s" % self.port)
        b.wait_subscribed()
        sub.publish('cmd/test-alarm', json.dumps({'message': 'page down, alarms up'}))
        sub.wait(lambda: any(lane == 'alerts' and it.get('kind') == 'test_alarm' for lane, it in sub.items),
                 'a test alarm while the page is down')
        sub.wait(lambda: any(s.get('web', {}).get('error', '').startswith('cannot listen') for s in sub.status),
                 'status saying why the page is down')
        blocker.close()
        gw.log.wait(r"Technician's page is up again", timeout=120)
        gw.log.wait(r"Technician's page on https://127.0.0.1:%d" % self.port)
        self.assertEqual(Page(self.port).json('GET', '/api/setup')[2], {'needed': True})

    def test_bad_certificate_retried_and_reload(self):
        # CertFile= that is not a certificate: TLS cannot be set up, said and retried; a good pair put
        # in its place is taken at the next try, without a restart. Then SIGHUP moves the page.
        cert, key = os.path.join(self.dir, 'web.pem'), os.path.join(self.dir, 'web.key')
        with open(cert, 'w') as f:
            f.write('not a certificate\n')
        with open(key, 'w') as f:
            f.write('not a key\n')
        self.port = harness.free_port()
        b = self.broker()
        text = harness.config(b.port, self.state, speed='600',
                              extra='[Web]\nListen=127.0.0.1:%d\nCertFile=%s\nKeyFile=%s\n' % (self.port, cert, key))
        gw = self.gateway(text)
        gw.log.wait(r"<3>Technician's page is down: TLS cannot be set up: %s: no PEM certificate.*; retrying in 1 s"
                    % re.escape(cert))
        gw.log.wait(r'running as home-0042')  # the alarm path runs
        subprocess.run(['openssl', 'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
                        '-keyout', key + '.new', '-out', cert + '.new', '-days', '30', '-subj', '/CN=gw-test'],
                       check=True, capture_output=True)
        os.rename(key + '.new', key)
        os.rename(cert + '.new', cert)
        line = gw.log.wait(r"Technician's page on https://127.0.0.1:%d, certificate SHA-256" % self.port, timeout=120)
        der = ssl.PEM_cert_to_DER_cert(open(cert).read())
        self.assertIn(':'.join('%02X' % x for x in hashlib.sha256(der).digest()), line)
        self.assertEqual(len(os.listdir('/proc/%d/task' % gw.proc.pid)), 1, 'a thread appeared')

        # SIGHUP with another port: the page moves; the old port is let go.
        new_port = harness.free_port()
        with open(gw.config, 'w') as f:
            f.write(text.replace('Listen=127.0.0.1:%d' % self.port, 'Listen=127.0.0.1:%d' % new_port))
        mark = gw.log.count()
        gw.signal(signal.SIGHUP)
        gw.log.wait(r"Technician's page on https://127.0.0.1:%d" % new_port, start=mark)
        self.assertEqual(Page(new_port).json('GET', '/api/setup')[0], 200)
        with self.assertRaises(OSError):
            Page(self.port).request('GET', '/api/setup', timeout=5)
        # Listen= empty: the page is off, and status says so.
        with open(gw.config, 'w') as f:
            f.write(text.replace('Listen=127.0.0.1:%d' % self.port, 'Listen='))
        mark = gw.log.count()
        gw.signal(signal.SIGHUP)
        gw.log.wait(r"Technician's page is off \(Listen= is empty\)", start=mark)
        with self.assertRaises(OSError):
            Page(new_port).request('GET', '/api/setup', timeout=5)


if __name__ == '__main__':
    unittest.main(verbosity=2)
