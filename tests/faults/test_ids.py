#!/usr/bin/python3
"""Alert ids when alerts.json is lost: an id is given once for the life of the state directory.

The simulated home restarts its clock at Start= every run, so each run raises the same alerts at the
same simulated seconds: only the number part of "<gw>-<seconds>-<n>" can keep their ids apart. Every
run ends with kill -9 once all its items reached the broker; then alerts.json is

ids-after-delete: deleted (someone cleaned up the state directory),
ids-after-corrupt: made unreadable (set aside as .broken by the gateway),
ids-after-lost-reservation: put back as it was before the last run, as when a full disk kept the
  gateway from writing its new reservations,

and the gateway runs again. At the broker, every raise has an id of its own (a clear carries its
raise's id, nothing else repeats one).
fails on d9b8a30: after the deletion the counter started again at 1 (no log line): the second run's
first alert was home-0042-<same seconds>-1 again, as was its twin in the first run; after the
corruption likewise; with the stale file the counter went on from the old reservation, as in the
run before.
"""
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', 'integration'))
from harness import TestCase, config  # noqa: E402

SIM_LIMIT = 1500  # a few simulated days: some alerts, a few seconds per run

# Alerts come often in this home: the same one as test_reload.py's.
from test_reload import SIM_RULES  # noqa: E402


class Ids(TestCase):
    def setUp(self):
        super().setUp()
        # The rules count local time; BLE must not find a real system bus.
        self.setenv(TZ='UTC', DBUS_SYSTEM_BUS_ADDRESS='unix:path=/nonexistent')

    def alerts(self, sub):
        with sub.cond:
            return [it for lane, it in sub.items if lane == 'alerts']

    def run_home(self, sub, text, name):
        """One run of the simulated home to its end, everything at the broker, then kill -9."""
        mark = len(self.alerts(sub))
        gw = self.gateway(text, name=name)
        gw.log.wait('Simulation finished', timeout=300)
        while True:
            n = len(sub.status)
            sub.publish('cmd/status', '{}')
            sub.wait(lambda: len(sub.status) > n, '%s: a status' % name)
            st = sub.status[-1]
            # kill -9 leaves reserved seqs unused: a gap, so the highest seq is what counts.
            if st.get('backlog') == 0 and max(sub.seqs(), default=0) >= st.get('last_seq', 1 << 62):
                break
            sub.wait(lambda: max(sub.seqs(), default=0) > 0, 'items')
        gw.kill9()
        got = self.alerts(sub)[mark:]
        self.assertGreater(sum(a['state'] == 'raised' for a in got), 3, '%s: too few alerts to tell' % name)
        return gw, got

    def check_distinct(self, alerts):
        raised = {}
        for a in alerts:
            if a['state'] == 'raised':
                self.assertFalse(a['id'] in raised, 'id %s given twice: %s and %s' % (a['id'], raised.get(a['id']), a))
                raised[a['id']] = a
            else:
                self.assertIn(a['id'], raised, 'a clear without a raise: %s' % a)
        return len(raised)

    def test_ids_survive_a_lost_alerts_json(self):
        b = self.broker()
        sub = self.subscriber(b.port)
        text = config(b.port, self.state, limit=SIM_LIMIT, extra=SIM_RULES)
        path = os.path.join(self.state, 'alerts.json')

        self.run_home(sub, text, 'first')
        self.assertTrue(os.path.exists(path))

        os.unlink(path)
        gw, _ = self.run_home(sub, text, 'after-delete')
        self.assertTrue(any('alerts.json is missing' in line and '<5>' in line for line in gw.log.lines),
                        'no notice of the missing alerts.json')
        raises = self.check_distinct(self.alerts(sub))
        print('FAULT ids-after-delete: survived, alerts.json deleted after kill -9: the %d raises of two runs of '
              'the same simulated home have distinct ids, and the deletion was logged' % raises, flush=True)

        with open(path, 'w') as f:
            f.write('{"version":1,"next_id":')
        self.run_home(sub, text, 'after-corrupt')
        self.assertTrue(os.path.exists(path + '.broken'))
        raises = self.check_distinct(self.alerts(sub))
        print('FAULT ids-after-corrupt: survived, a truncated alerts.json after kill -9: the %d raises of three '
              'runs have distinct ids' % raises, flush=True)

        with open(path) as f:
            stale = f.read()
        self.run_home(sub, text, 'before-lost')
        with open(path, 'w') as f:
            f.write(stale)  # the reservations of that run never reached the disk
        self.run_home(sub, text, 'after-lost')
        raises = self.check_distinct(self.alerts(sub))
        print('FAULT ids-after-lost-reservation: survived, alerts.json as before the last run (its writes lost to '
              'a full disk): the %d raises of five runs have distinct ids' % raises, flush=True)


if __name__ == '__main__':
    unittest.main(verbosity=2)
