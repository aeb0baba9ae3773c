#!/usr/bin/python3
"""homecare-gw decode: the technician's "what is this device sending?"."""
import json
import subprocess
import unittest

from harness import GW

KEY = '231d39c1d7cc1ab1aee224cd096db932'
MAC = '54:48:E6:8F:80:A5'
FRAME = '41 a4 72 66 c9 5f 73 00 11 22 33 78 23 72 14'


def decode(*args):
    r = subprocess.run([GW, 'decode', *args], capture_output=True, text=True, timeout=10)
    lines = [json.loads(l) for l in r.stdout.splitlines()]
    return r.returncode, lines, r.stderr


class Decode(unittest.TestCase):
    def assert_bad(self, args, message):
        rc, lines, err = decode(*args)
        self.assertEqual(rc, 2, err)
        self.assertEqual(lines, [], 'no partial reading on bad input')
        self.assertEqual(len(err.strip().splitlines()), 1, err)
        self.assertIn(message, err)

    def test_blood_pressure_with_device_time_and_status(self):
        rc, lines, err = decode('blood-pressure', '1E 79 00 50 00 5D 00 EA 07 03 02 08 1F 00 48 00 01 04 00')
        self.assertEqual(rc, 0, err)
        self.assertEqual([l['metric'] for l in lines], ['systolic', 'diastolic', 'mean_arterial_pressure', 'pulse_rate'])
        sys = lines[0]
        self.assertEqual((sys['value'], sys['unit'], sys['loinc']), (121, 'mm[Hg]', '8480-6'))
        self.assertEqual(sys['time_quality'], 'device')
        self.assertTrue(sys['time'].startswith('2026-03-02T'))
        self.assertEqual(sys['status'], ['irregular_pulse'])
        self.assertEqual(lines[3]['unit'], '/min')

    def test_spaces_colons_and_several_arguments(self):
        for args in (['heart-rate', '06 48'], ['heart-rate', '06:48'], ['heart-rate', '06', '48'], ['heart-rate', '0648']):
            rc, lines, err = decode(*args)
            self.assertEqual(rc, 0, err)
            self.assertEqual(lines[0]['metric'], 'heart_rate')
            self.assertEqual(lines[0]['value'], 72)

    def test_special_values_are_absent_not_numbers(self):
        rc, lines, _ = decode('temperature', '00 FF FF 7F 00')
        self.assertEqual(rc, 0)
        self.assertEqual(lines[0]['value'], None)
        self.assertEqual(lines[0]['absent'], 'NaN')
        rc, lines, _ = decode('weight', '00 FF FF')
        self.assertEqual((lines[0]['value'], lines[0]['absent']), (None, 'unsuccessful'))

    def test_every_profile(self):
        for profile, hexs, metric in [('plx-spot', '00 62 00 48 00', 'spo2'), ('plx-continuous', '00 61 00 4B 00', 'spo2'),
                                      ('glucose', '02 01 00 EA 07 03 02 08 1F 00 64 B0 11', 'glucose'),
                                      ('weight', '00 60 36', 'body_weight'), ('temperature', '00 6E 01 00 FF', 'body_temperature')]:
            rc, lines, err = decode(profile, hexs)
            self.assertEqual(rc, 0, err)
            self.assertEqual(lines[0]['metric'], metric)

    def test_bthome_events_and_encrypted_readings(self):
        rc, lines, _ = decode('bthome', '40 00 01 01 5D 21 01')
        self.assertEqual(rc, 0)
        self.assertEqual(lines[0]['metric'], 'battery')
        self.assertEqual(lines[1], {'type': 'event', 'event': 'motion', 'value': 1, 'time': lines[1]['time']})
        rc, lines, err = decode('bthome', FRAME, '--key', KEY, '--mac', MAC)
        self.assertEqual(rc, 0, err)
        self.assertEqual([(l['metric'], l['value'], l['unit']) for l in lines],
                         [('temperature', 25.06, 'Cel'), ('humidity', 50.55, '%')])

    def test_malformed_and_refused_input_exits_2(self):
        self.assert_bad(['blood-pressure', '1E 79 00'], 'too short')
        self.assert_bad(['heart-rate', '10 48'], 'the flags promise RR intervals')
        self.assert_bad(['heart-rate', '0x48'], 'bad hex')
        self.assert_bad(['heart-rate', '4'], 'bad hex')
        self.assert_bad(['bthome', FRAME, '--key', '00' * 16, '--mac', MAC], 'decryption failed')
        self.assert_bad(['bthome', FRAME, '--key', KEY, '--mac', MAC, '--last-counter', '0x33221100'], 'replayed frame')
        self.assert_bad(['bthome', '40 21 01', '--key', KEY, '--mac', MAC], 'downgrade')
        self.assert_bad(['bthome', '40 99 01'], 'unknown object id 0x99')
        self.assert_bad(['bthome', FRAME], 'no bind key')
        self.assert_bad(['bthome', FRAME, '--key', KEY], '--key needs --mac')
        self.assert_bad(['bthome', FRAME, '--key', 'abc', '--mac', MAC], 'bad key')
        self.assert_bad(['heart-rate', '00 48', '--key', KEY], 'for bthome only')
        self.assert_bad(['ecg', '00'], "unknown profile 'ecg'")
        self.assert_bad(['heart-rate'], 'no payload')


if __name__ == '__main__':
    unittest.main(verbosity=2)
