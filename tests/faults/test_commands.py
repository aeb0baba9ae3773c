#!/usr/bin/python3
"""Downlink commands under faults: an acknowledged command's effect survives kill -9; a command that
arrives twice is carried out once; test alarms are rate-limited."""
import json
import unittest

from harness import TestCase, config


def replies(sub, name):
    with sub.cond:
        return [p for t, p, _ in sub.messages if t.endswith('/reply/' + name)]


class Commands(TestCase):
    def quiet_gateway(self, b, commit_delay_ms=50):
        text = config(b.port, self.state, sim=False).replace('CommitDelayMs=50', 'CommitDelayMs=%d' % commit_delay_ms)
        mark = b.log.count()
        gw = self.gateway(text)
        b.wait_subscribed(start=mark)  # a command sent before that would be lost (no session yet)
        return gw

    def test_acknowledged_observation_survives_kill9(self):
        # fails on fb6d774: the reply said ok while the reading sat in memory for CommitDelayMs; kill -9
        # right after the reply lost it (no item, no gap, dropped 0).
        b = self.broker()
        sub = self.subscriber(b.port)
        gw = self.quiet_gateway(b, commit_delay_ms=10000)
        sub.publish('cmd/observation', json.dumps({'request_id': 'obs-1', 'metric': 'respiratory_rate', 'value': 23}))
        sub.wait(lambda: replies(sub, 'observation'), 'the observation reply')
        self.assertEqual(replies(sub, 'observation')[0], {'ok': True, 'request_id': 'obs-1'})
        gw.kill9()
        self.quiet_gateway(b)
        is_obs = lambda it: it.get('sensor') == 'nurse' and it.get('metric') == 'respiratory_rate'
        sub.wait(lambda: any(is_obs(it) for _, it in sub.items), 'the acknowledged observation after kill -9')
        obs = [it for _, it in sub.items if is_obs(it)]
        self.assertEqual(obs[0]['value'], 23)
        print('FAULT kill -9 right after an observation was acknowledged: survived, the reading arrived after restart')

    def test_same_request_twice_is_carried_out_once(self):
        # fails on fb6d774: the same request_id twice raised two critical test alarms.
        b = self.broker()
        sub = self.subscriber(b.port)
        self.quiet_gateway(b)
        cmd = json.dumps({'request_id': 'tech-7', 'message': 'Installer test'})
        sub.publish('cmd/test-alarm', cmd)
        sub.wait(lambda: len(replies(sub, 'test-alarm')) >= 1, 'the first reply')
        sub.publish('cmd/test-alarm', cmd)
        sub.wait(lambda: len(replies(sub, 'test-alarm')) >= 2, 'the second reply')
        first, second = replies(sub, 'test-alarm')[:2]
        self.assertTrue(first['ok'])
        self.assertEqual(first, second, 'the same request is answered alike')
        # A later, different request proves the gateway has handled the duplicate by then.
        sub.publish('cmd/test-alarm', json.dumps({'request_id': 'tech-8'}))
        sub.wait(lambda: len(replies(sub, 'test-alarm')) >= 3, 'the third reply')
        sub.wait(lambda: sum(1 for lane, it in sub.items if it.get('kind') == 'test_alarm') >= 2, 'two test alarms')
        alarms = [it for lane, it in sub.items if it.get('kind') == 'test_alarm']
        self.assertEqual(sorted(a['id'] for a in alarms), sorted([first['alert_id'], replies(sub, 'test-alarm')[2]['alert_id']]))
        self.assertEqual(len(alarms), 2, 'one alert per request, not per message')
        print('FAULT a command delivered twice: survived, one test alarm, the same answer twice')

    def test_test_alarms_are_rate_limited(self):
        # fails on fb6d774: every test-alarm command raised a critical alert, however many came.
        b = self.broker()
        sub = self.subscriber(b.port)
        gw = self.quiet_gateway(b)
        for i in range(5):
            sub.publish('cmd/test-alarm', json.dumps({'request_id': 'burst-%d' % i}))
        sub.wait(lambda: len(replies(sub, 'test-alarm')) >= 5, 'five replies')
        rs = replies(sub, 'test-alarm')
        self.assertEqual([r['ok'] for r in rs], [True, True, True, False, False])
        self.assertIn('rate-limited', rs[3]['error'])
        sub.wait(lambda: sum(1 for lane, it in sub.items if it.get('kind') == 'test_alarm') >= 3, 'three test alarms')
        gw.log.wait(r'Test alarm refused .*rate-limited')
        # A refused request may be sent again later: it was not remembered as carried out.
        sub.publish('cmd/test-alarm', json.dumps({'request_id': 'burst-3'}))
        sub.wait(lambda: len(replies(sub, 'test-alarm')) >= 6, 'the sixth reply')
        self.assertFalse(replies(sub, 'test-alarm')[5]['ok'])
        self.assertEqual(sum(1 for lane, it in sub.items if it.get('kind') == 'test_alarm'), 3)
        print('FAULT a stuck sender repeating test alarms: survived, 3 raised, the rest refused as rate-limited')


    def test_observation_during_simulation_is_no_clock_jump(self):
        # fails on d9b8a30: in simulation the engine runs on the simulated clock (March); a nurse's
        # observation stamped with the real clock (months later) moved it there at once, and every dose
        # of those months was raised missed: some 800 alerts in half a second.
        b = self.broker()
        sub = self.subscriber(b.port)
        mark = b.log.count()
        self.gateway(config(b.port, self.state, speed=3000,
                            extra='[Medication]\nSchedule=08:00,14:00,20:00\nGraceMinutes=60\n'))
        b.wait_subscribed(start=mark)
        sub.publish('cmd/observation', json.dumps({'request_id': 'sim-obs', 'metric': 'respiratory_rate', 'value': 18}))
        sub.wait(lambda: replies(sub, 'observation'), 'the observation reply')
        self.assertTrue(replies(sub, 'observation')[0]['ok'])
        n = len(sub.status)
        sub.publish('cmd/status', '{}')  # answered after anything the observation set off
        sub.wait(lambda: len(sub.status) > n, 'a fresh status')
        with sub.cond:
            late = [it for lane, it in sub.items if lane == 'alerts' and it['time'] >= '2026-03-10']
        self.assertEqual(late, [], 'alerts from months the simulated home never lived')
        print('FAULT a real-clock observation during the simulated home: survived, no alert from a clock jump')

    def test_refusal_carries_the_request_id(self):
        # fails on d9b8a30: a refused command was answered without its request_id, so a nurse's app could
        # not tell which of its observations was refused.
        b = self.broker()
        sub = self.subscriber(b.port)
        self.quiet_gateway(b)
        sub.publish('cmd/observation', json.dumps({'request_id': 'bad-1', 'metric': 'spo2', 'value': -5}))
        sub.wait(lambda: replies(sub, 'observation'), 'the refusal')
        r = replies(sub, 'observation')[0]
        self.assertEqual((r['ok'], r.get('request_id')), (False, 'bad-1'))
        self.assertIn('spo2', r['error'])
        print('FAULT an impossible observation: survived, refused with a reason and its request id')

if __name__ == '__main__':
    unittest.main(verbosity=2)
