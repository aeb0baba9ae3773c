#!/usr/bin/python3
"""The real homecare-gw against a real mosquitto on 127.0.0.1."""
import json
import os
import re
import signal
import subprocess
import time
import unittest

from harness import GW, Broker, TestCase, config

RFC3339_MS = re.compile(r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$')


class Delivery(TestCase):
    def stop_and_check_complete(self, gw, sub):
        """Stops the gateway cleanly; then every seq up to the offline status's last_seq arrived once."""
        gw.signal(signal.SIGTERM)
        self.assertEqual(gw.wait_exit(), 0)
        sub.wait(lambda: sub.status and sub.status[-1]['state'] == 'offline', 'offline status')
        last = sub.status[-1]['last_seq']
        sub.wait(lambda: len(sub.seq_set()) >= last, 'all %d items' % last, timeout=60)
        self.assertEqual(sub.seq_set(), set(range(1, last + 1)), 'every seq, no gap')
        return last

    def test_every_item_arrives_once_in_order_per_lane(self):
        b = self.broker()
        sub = self.subscriber(b.port)
        n = 5000
        gw = self.gateway(config(b.port, self.state, limit=n))
        sub.wait(lambda: sum(1 for lane, _ in sub.items if lane != 'alerts') >= n, '%d readings and events' % n)
        last = self.stop_and_check_complete(gw, sub)
        self.assertEqual(len(sub.seqs()), last, 'none twice')
        self.assertEqual(sum(1 for lane, _ in sub.items if lane != 'alerts'), n)
        self.assert_lane_order(sub)
        lanes = {lane for lane, _ in sub.items}
        self.assertTrue({'telemetry', 'events'} <= lanes)
        for lane, it in sub.items:
            self.assertRegex(it['time'], RFC3339_MS)
            self.assertEqual(it['type'], {'telemetry': 'reading', 'events': 'event', 'alerts': 'alert'}[lane])
            if lane != 'alerts':
                self.assertTrue(it['sensor'])
        online = [s for s in sub.status if s['state'] == 'online']
        self.assertTrue(online and online[0]['gateway'] == 'home-0042' and 'version' in online[0])

    def test_broker_stopped_and_restarted_loses_nothing(self):
        b = self.broker()
        sub = self.subscriber(b.port, client_id='persistent-sub', persistent=True)
        n = 1200
        # About 230 items per second, so that items are made while the broker is down.
        gw = self.gateway(config(b.port, self.state, speed=40000, limit=n))
        sub.wait(lambda: len(sub.seq_set()) >= 50, 'first items')
        mark = gw.log.count()
        b.stop()
        gw.log.wait(r'Disconnected from broker', start=mark)
        gw.log.wait(r'Could not connect to broker', start=mark)  # it tried while the broker was down
        b.start()
        gw.log.wait(r'Connected to broker', start=mark)
        sub.wait(lambda: sum(1 for lane, _ in sub.items if lane != 'alerts') >= n, 'all %d items after the restart' % n,
                 timeout=60)
        self.assertEqual(gw.proc.poll(), None)
        self.stop_and_check_complete(gw, sub)

    def test_kill9_while_publishing_then_restart_no_seq_missing(self):
        b = self.broker()
        sub = self.subscriber(b.port)
        gw = self.gateway(config(b.port, self.state, limit=200000))
        sub.wait(lambda: len(sub.items) >= 3000, '3000 items')
        gw.kill9()
        # Restart on the same store, without the simulation: only what was committed goes out.
        gw2 = self.gateway(config(b.port, self.state, sim=False), name='gw2')
        # The last seq stored before the kill: every seq up to it arrives.
        m = re.search(r'Outbox .*: \d+ items waiting, last seq (\d+)', gw2.log.wait(r'Outbox .*items waiting'))
        last = int(m.group(1))
        self.assertGreaterEqual(last, 3000)
        sub.wait(lambda: sub.seq_set() >= set(range(1, last + 1)), 'every seq up to %d' % last, timeout=60)
        # The seqs the killed run had reserved beyond it are announced, not lost: the announcement is the
        # first item of the new run, and nothing else is above it.
        skipped = lambda: [it for _, it in sub.items if it.get('type') == 'seq_skipped']
        sub.wait(lambda: skipped(), 'the seq_skipped item')
        sk = skipped()[0]
        self.assertEqual(sk['from_seq'], last + 1)
        self.assertEqual(sk['seq'], sk['to_seq'] + 1)
        self.assertEqual(sub.seq_set(), set(range(1, last + 1)) | {sk['seq']})

    def test_alert_overtakes_a_large_backlog(self):
        b = Broker(self.dir)
        self.cleanups.append(b.stop)
        # The broker is down: 15000 items pile up in the outbox.
        n = 15000
        gw = self.gateway(config(b.port, self.state, limit=n, extra='[Uplink]\nMaxInflight=2\nBatchMax=50\n'))
        gw.log.wait(r'Simulation finished after %d' % n)
        b.start()
        sub = self.subscriber(b.port)
        sub.wait(lambda: len(sub.items) >= 200, 'backlog draining')
        sub.publish('cmd/test-alarm', '{"request_id":"tech-1","message":"Installer test"}')
        is_test = lambda it: it.get('kind') == 'test_alarm'
        sub.wait(lambda: any(lane == 'alerts' and is_test(it) for lane, it in sub.items), 'the test alarm')
        with sub.cond:
            idx = [i for i, (lane, it) in enumerate(sub.items) if lane == 'alerts' and is_test(it)][0]
            alert = sub.items[idx][1]
        self.assertEqual(alert['kind'], 'test_alarm')
        self.assertEqual(alert['severity'], 'critical')
        self.assertEqual(alert['state'], 'raised')
        self.assertEqual(alert['message'], 'Installer test')
        self.assertGreater(alert['seq'], n)
        self.assertRegex(alert['time'], RFC3339_MS)
        # Most of the backlog (all of it older than the alert) arrived after the alert: it did not wait.
        sub.wait(lambda: len(sub.seq_set() & set(range(1, n + 1))) >= n - 300, 'the rest of the backlog')
        self.assertLess(idx, n // 2, 'the alert overtook the backlog')
        sub.wait(lambda: any(t.endswith('/reply/test-alarm') for t, _, _ in sub.messages), 'reply')
        reply = [p for t, p, _ in sub.messages if t.endswith('/reply/test-alarm')][0]
        self.assertEqual(reply, {'ok': True, 'request_id': 'tech-1', 'alert_id': alert['id']})


    def test_rules_alerts_reach_the_broker(self):
        b = self.broker()
        sub = self.subscriber(b.port)
        # The simulated person takes doses at 08, 14 and 20 UTC; a dose scheduled at 11:00 CET (10:00 UTC)
        # is never taken: the daemon's rules raise missed_dose at 12:00 CET on the simulated clock.
        os.environ['TZ'] = 'CET-1'
        try:
            self.gateway(config(b.port, self.state, limit=2000,
                                extra='[Medication]\nSchedule=11:00\nGraceMinutes=60\n[Patient]\nId=patient-7\n'))
        finally:
            del os.environ['TZ']
        sub.wait(lambda: any(lane == 'alerts' for lane, _ in sub.items), 'an alert from the rules')
        alert = [it for lane, it in sub.items if lane == 'alerts'][0]
        self.assertEqual(alert['kind'], 'missed_dose')
        self.assertEqual(alert['state'], 'raised')
        self.assertEqual(alert['patient'], 'patient-7')
        self.assertEqual(alert['time'], '2026-03-02T11:00:00.000Z')
        self.assertEqual(alert['evidence'][0]['event'], 'dose_due')


class Lifecycle(TestCase):
    def test_lwt_offline_when_killed(self):
        b = self.broker()
        sub = self.subscriber(b.port)
        gw = self.gateway(config(b.port, self.state, speed=1))
        sub.wait(lambda: any(s['state'] == 'online' for s in sub.status), 'online')
        gw.kill9()
        sub.wait(lambda: sub.status[-1]['state'] == 'offline', 'LWT offline')
        self.assertEqual(sub.status[-1]['reason'], 'connection lost')

    def test_sigterm_publishes_offline_and_exits_0_within_5s(self):
        b = self.broker()
        sub = self.subscriber(b.port)
        gw = self.gateway(config(b.port, self.state, speed=1000))
        sub.wait(lambda: any(s['state'] == 'online' for s in sub.status), 'online')
        t0 = time.monotonic()
        gw.signal(signal.SIGTERM)
        self.assertEqual(gw.wait_exit(timeout=5), 0)
        self.assertLess(time.monotonic() - t0, 5)
        sub.wait(lambda: sub.status[-1]['state'] == 'offline', 'offline status')
        self.assertEqual(sub.status[-1]['reason'], 'shutdown')
        self.assertEqual(sub.status[-1]['backlog'], 0)
        # Retained: someone who looks later sees it too.
        late = self.subscriber(b.port, client_id='late')
        late.wait(lambda: late.status, 'retained status')
        self.assertEqual(late.status[-1]['state'], 'offline')

    def test_sighup_reload_keeps_running_and_buffered_data(self):
        b = self.broker()
        sub = self.subscriber(b.port)
        gw = self.gateway(config(b.port, self.state, speed=20000))
        sub.wait(lambda: len(sub.items) >= 20, 'items')
        with open(gw.config, 'a') as f:
            f.write('[Bogus]\n')
        mark = gw.log.count()
        gw.signal(signal.SIGHUP)
        gw.log.wait(r'Configuration not reloaded.*gw.conf:\d+: unknown section \[Bogus\]', start=mark)
        with open(gw.config, 'w') as f:
            f.write(config(b.port, self.state, speed=20000, extra='[Store]\nMaxSize=64M\n[Uplink]\nBatchMax=10\n'))
        mark = gw.log.count()
        gw.signal(signal.SIGHUP)
        gw.log.wait(r'Configuration reloaded; nothing buffered was lost', start=mark)
        n = len(sub.items)
        sub.wait(lambda: len(sub.items) >= n + 20, 'items after reload')
        self.assertIsNone(gw.proc.poll())
        # Stop cleanly: then every seq up to the last must have arrived, across both configurations.
        gw.signal(signal.SIGTERM)
        self.assertEqual(gw.wait_exit(), 0)
        sub.wait(lambda: sub.status[-1]['state'] == 'offline', 'offline status')
        last = sub.status[-1]['last_seq']
        self.assertEqual(sub.status[-1]['backlog'], 0)
        sub.wait(lambda: len(sub.seq_set()) >= last, 'all %d items' % last)
        self.assertEqual(sorted(sub.seq_set()), list(range(1, last + 1)))

    def test_bad_commands_get_a_clear_answer(self):
        b = self.broker()
        sub = self.subscriber(b.port)
        gw = self.gateway(config(b.port, self.state, speed=1))
        sub.wait(lambda: any(s['state'] == 'online' for s in sub.status), 'online')
        sub.publish('cmd/reboot', '')
        sub.publish('cmd/test-alarm', 'not json')
        sub.wait(lambda: len([t for t, _, _ in sub.messages if '/reply/' in t]) >= 2, 'two replies')
        replies = {t.rsplit('/', 1)[1]: p for t, p, _ in sub.messages if '/reply/' in t}
        self.assertEqual(replies['reboot'], {'ok': False, 'error': 'unknown command'})
        self.assertEqual(replies['test-alarm'], {'ok': False, 'error': 'payload is not a JSON object'})
        gw.log.wait(r"Refused command 'reboot': unknown command")
        self.assertFalse(any(lane == 'alerts' for lane, _ in sub.items))


    def test_nurse_observations_feed_the_news2_aggregate(self):
        b = self.broker()
        sub = self.subscriber(b.port)
        gw = self.gateway(config(b.port, self.state, sim=False, extra='[Patient]\nId=patient-7\n'))
        sub.wait(lambda: any(s['state'] == 'online' for s in sub.status), 'online')
        # A full NEWS2 set from the nurse's visit: RR 24 (2), SpO2 93 (2), air (0), systolic 100 (2),
        # pulse 112 (2), alert (0), 38.6 C (1): 9, high.
        for metric, value in [('respiratory_rate', 24), ('spo2', 93), ('systolic', 100), ('pulse_rate', 112),
                              ('body_temperature', 38.6)]:
            sub.publish('cmd/observation', json.dumps({'metric': metric, 'value': value}))
        sub.publish('cmd/observation', json.dumps({'metric': 'consciousness', 'value': 'A', 'request_id': 'n1'}))
        sub.wait(lambda: any(lane == 'alerts' and it['kind'] == 'news2_aggregate' for lane, it in sub.items),
                 'the NEWS2 alert')
        alert = [it for lane, it in sub.items if lane == 'alerts' and it['kind'] == 'news2_aggregate'][0]
        self.assertEqual(alert['severity'], 'critical')
        self.assertEqual(alert['message'], 'NEWS2 9 (high risk)')
        scores = {e['parameter']: e['score'] for e in alert['evidence'] if 'parameter' in e}
        self.assertEqual(scores, {'respiratory_rate': 2, 'spo2': 2, 'air_or_oxygen': 0, 'systolic': 2, 'pulse': 2,
                                  'consciousness': 0, 'body_temperature': 1})
        # The numbers were also stored and sent as readings from "nurse".
        sub.wait(lambda: sum(1 for lane, it in sub.items if lane == 'telemetry' and it['sensor'] == 'nurse') == 5,
                 'the nurse readings')
        sub.publish('cmd/observation', '{"metric":"mood","value":3}')
        sub.wait(lambda: any(p.get('error', '').startswith('observation: unknown') for t, p, _ in sub.messages
                             if t.endswith('/reply/observation')), 'the refusal')


    def test_missing_gpio_chip_fails_that_input_only(self):
        b = self.broker()
        sub = self.subscriber(b.port)
        gw = self.gateway(config(b.port, self.state, speed=20000, extra='[Input "front-door"]\nChip=gpiochip-absent\n'
                                 'Line=17\nKind=door\nActiveLow=yes\nDebounceMs=50\nRole=exit-door\n'))
        gw.log.wait(r"Input front-door does not work: no GPIO chip 'gpiochip-absent'")
        sub.wait(lambda: any(s['state'] == 'online' for s in sub.status), 'online')
        status = [s for s in sub.status if s['state'] == 'online'][0]
        self.assertIn("no GPIO chip 'gpiochip-absent'", status['inputs']['front-door']['error'])
        sub.wait(lambda: len(sub.items) >= 20, 'the rest of the gateway runs')


class Cli(TestCase):
    def run_gw(self, *args):
        return subprocess.run([GW, *args], capture_output=True, text=True, timeout=10)

    def test_check_config(self):
        good = os.path.join(self.dir, 'good.conf')
        with open(good, 'w') as f:
            f.write(config(1883, '/var/lib/homecare-gw'))
        r = self.run_gw('check-config', good)
        self.assertEqual(r.returncode, 0, r.stderr)
        bad = os.path.join(self.dir, 'bad.conf')
        with open(bad, 'w') as f:
            f.write('[Gateway]\nId=x\n[Uplink]\nBroker=mqtt://h\nPort=1\n')
        r = self.run_gw('check-config', bad)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn('bad.conf:5: [Uplink] Port: unknown key', r.stderr)

    def test_help_and_version(self):
        r = self.run_gw('--version')
        self.assertEqual(r.returncode, 0)
        self.assertRegex(r.stdout, r'^homecare-gw \d+\.\d+\.\d+')
        r = self.run_gw('--help')
        self.assertEqual(r.returncode, 0)
        self.assertIn('check-config', r.stdout)
        r = self.run_gw('frobnicate')
        self.assertEqual(r.returncode, 2)

    def test_run_with_invalid_config_fails_clearly(self):
        bad = os.path.join(self.dir, 'bad.conf')
        with open(bad, 'w') as f:
            f.write('[Gateway]\nId=x\n')
        r = self.run_gw('run', '--config', bad)
        self.assertEqual(r.returncode, 1)
        self.assertIn('<3>Invalid configuration: %s:0: [Uplink] Broker: required key is missing' % bad, r.stderr)


if __name__ == '__main__':
    unittest.main(verbosity=2)
