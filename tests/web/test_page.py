"""The technician's page end to end against the real gateway: mosquitto on a free port, build/homecare-gw
with the simulated home and the page on 127.0.0.1 (HTTPS with its own self-signed certificate), and
tests/web/e2e.js driving Debian's chromium through it (first boot with the setup code from the state
directory, the live status, the test alarm, logout, lockout, 360/1280 px, axe-core).
Around it, what only this side can see: the test alarm reached the broker as an alert with the id the
page showed, no log line carries the password, the setup code is spent, the gateway stops cleanly.
Screenshots and axe reports: $HCGW_WEB_ARTEFACTS (ctest: build/web-artefacts/)."""
import os
import re
import subprocess
import sys
import unittest

from harness import DEFAULT_TIMEOUT, TestCase, config, free_port

HERE = os.path.dirname(os.path.abspath(__file__))
PASSWORD = 'page test password 4711'
# The gateway logs where the page listens once it does (gateway/web-server.c).
READY = r"Technician's page on https://"
# Where the server keeps the setup code (gateway/web-auth.h), mode 0600.
SETUP_CODE_FILES = ('web-setup-code', os.path.join('web', 'setup-code'))


class PageTest(TestCase):
    def test_page(self):
        for need, how in (('/usr/bin/chromium', 'apt-get install chromium (./scripts/deps web)'),
                          (os.path.join(HERE, 'node_modules', 'playwright-core'), 'npm ci in tests/web (./scripts/deps web)')):
            self.assertTrue(os.path.exists(need), 'missing %s: %s' % (need, how))
        port = self.broker().port
        sub = self.subscriber(port)
        web_port = free_port()
        gw = self.gateway(config(port, self.state, speed='600', extra='[Web]\nListen=127.0.0.1:%d\n' % web_port))
        gw.log.wait(READY, timeout=DEFAULT_TIMEOUT)
        code_file = next((os.path.join(self.state, f) for f in SETUP_CODE_FILES
                          if os.path.exists(os.path.join(self.state, f))), None)
        self.assertIsNotNone(code_file, 'no setup code in %s (looked for %s)' % (self.state, ', '.join(SETUP_CODE_FILES)))
        code = open(code_file).read().strip()

        env = dict(os.environ, HCGW_WEB_URL='https://127.0.0.1:%d/' % web_port, HCGW_SETUP_CODE_FILE=code_file,
                   HCGW_WEB_PASSWORD=PASSWORD, HCGW_TEST_TIMEOUT=str(int(DEFAULT_TIMEOUT)),
                   HCGW_WEB_ARTEFACTS=os.environ.get('HCGW_WEB_ARTEFACTS', os.path.join(self.dir, 'artefacts')))
        node = subprocess.run(['node', '--test-reporter=spec', os.path.join(HERE, 'e2e.js')], cwd=HERE, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=20 * DEFAULT_TIMEOUT)
        out = node.stdout.decode('utf-8', 'replace')
        sys.stdout.write(out)
        self.assertEqual(node.returncode, 0, 'e2e.js failed (above); gateway log: %s' % gw.logpath)

        # The test alarm the page saw acknowledged is the alert the broker has.
        alert_id = re.search(r'^ALERT_ID (\S+)$', out, re.M).group(1)
        sub.wait(lambda: any(lane == 'alerts' and it.get('kind') == 'test_alarm' and it.get('id') == alert_id
                             for lane, it in sub.items), 'the test alarm %s at the broker' % alert_id)
        # Spent: the code file is gone or holds another code.
        self.assertTrue(not os.path.exists(code_file) or open(code_file).read().strip() != code, 'setup code not spent')
        self.assertEqual(gw.stop(), 0)
        log = open(gw.logpath).read()
        self.assertNotIn(PASSWORD, log, 'the password is in the gateway log')
        self.assertRegex(log, r"Technician's page: login from 127\.0\.0\.1")
        self.assertRegex(log, r"Technician's page: .*locked out")
        print('page: setup, live status, test alarm %s acknowledged, lockout, axe-core, screenshots in %s'
              % (alert_id, env['HCGW_WEB_ARTEFACTS']))


if __name__ == '__main__':
    unittest.main()
