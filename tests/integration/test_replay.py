#!/usr/bin/python3
"""homecare-gw replay: the command line contract (the rules themselves are checked by tests/scenarios)."""
import json
import os
import subprocess
import tempfile
import unittest

from harness import GW

CONF = """[Sensor "bp-cuff"]
Type=blood-pressure
Address=A4:C1:38:10:00:01
[Sensor "oximeter"]
Type=plx
Address=A4:C1:38:10:00:03
[Sensor "kitchen-motion"]
Type=bthome
Address=A4:C1:38:20:00:03
Role=kitchen
ExpectedIntervalMinutes=0
[Input "front-door"]
Chip=gpiochip0
Line=17
Kind=door
Role=exit-door
[Input "dispenser"]
Chip=gpiochip0
Line=18
Kind=dispenser-dose-taken
Role=dispenser
[Patient]
Id=patient-7
SpO2Scale=1
Oxygen=no
NightWindow=23:00-06:00
[Medication]
Schedule=08:00,14:00,20:00
GraceMinutes=60
[Rules]
WeightGainKg=2.0
WeightGainDays=3
NightExitMinutes=15
BedExitMinutes=30
"""

LOG = """{"time":"2026-03-02T02:10:00Z","sensor":"front-door","event":"door","value":1}
{"time":"2026-03-02T07:31:00Z","sensor":"bp-cuff","metric":"systolic","value":182,"unit":"mm[Hg]"}
{"time":"2026-03-02T07:31:00Z","sensor":"oximeter","metric":"spo2","value":90,"unit":"%"}
{"time":"2026-03-02T08:00:00Z","sensor":"dispenser","event":"dose_taken"}
{"time":"2026-03-02T09:12:00Z","sensor":"kitchen-motion","event":"motion","value":1}
{"time":"2026-03-02T09:30:00Z","nurse":"entry","metric":"respiratory_rate","value":22,"unit":"/min"}
this is not json
{"time":"2026-03-02T09:40:00Z","sensor":"garage-door","event":"door","value":1}
"""


class Replay(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix='hcgw-replay-')
        self.conf = os.path.join(self.dir, 'gw.conf')
        self.log = os.path.join(self.dir, 'home.jsonl')
        open(self.conf, 'w').write(CONF)
        open(self.log, 'w').write(LOG)

    def run_replay(self, *extra):
        env = dict(os.environ, TZ='CET-1')
        r = subprocess.run([GW, 'replay', '--config', self.conf, *extra, self.log], capture_output=True, text=True,
                           env=env, timeout=30)
        return r.returncode, [json.loads(l) for l in r.stdout.splitlines()], r.stderr

    def test_issue_example(self):
        rc, alerts, err = self.run_replay('--until', '2026-03-02T18:00:00Z')
        self.assertEqual(rc, 0, err)
        for a in alerts:
            for field in ('time', 'kind', 'severity', 'state', 'evidence'):
                self.assertIn(field, a)
            self.assertIsInstance(a['evidence'], list)
        raised = [(a['kind'], a['time']) for a in alerts if a['state'] == 'raised']
        # 02:10Z is 03:10 local: the exit door at night, and no movement indoors for 15 minutes.
        self.assertIn(('night_exit', '2026-03-02T02:25:00.000Z'), raised)
        self.assertIn(('news2_single_parameter', '2026-03-02T07:31:00.000Z'), raised)
        # The 14:00 local dose (13:00Z) was not taken within 60 minutes; --until lets the timer fire.
        self.assertIn(('missed_dose', '2026-03-02T14:00:00.000Z'), raised)
        # The 08:00 local dose (07:00Z) was taken at 08:00Z, the last minute of its grace period.
        self.assertNotIn(('missed_dose', '2026-03-02T08:00:00.000Z'), raised)
        cleared = [a['kind'] for a in alerts if a['state'] == 'cleared']
        self.assertIn('night_exit', cleared)
        # Bad lines are reported with their number and skipped; replay goes on.
        self.assertIn('home.jsonl:7: not valid JSON', err)
        self.assertIn("home.jsonl:8: unknown sensor 'garage-door'", err)

    def test_without_until_timers_stop_at_the_last_line(self):
        rc, alerts, _ = self.run_replay()
        self.assertEqual(rc, 0)
        self.assertNotIn('missed_dose', [a['kind'] for a in alerts if a['time'] > '2026-03-02T10'])

    def test_bad_arguments(self):
        r = subprocess.run([GW, 'replay', '--config', self.conf, '--until', 'tomorrow', self.log],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 2)
        self.assertIn("--until 'tomorrow' is not an RFC 3339 time", r.stderr)
        open(self.conf, 'a').write('[Rules]\nBedExit=1\n')
        r = subprocess.run([GW, 'replay', '--config', self.conf, self.log], capture_output=True, text=True)
        self.assertEqual(r.returncode, 2)
        self.assertIn('[Rules] BedExit: unknown key', r.stderr)


if __name__ == '__main__':
    unittest.main(verbosity=2)
