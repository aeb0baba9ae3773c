#!/usr/bin/python3
"""The stores across versions: an outbox made before stores carried a schema version is migrated and
delivers everything it held; a store made by a newer homecare-gw is left untouched and the gateway
runs on a store in memory. Real parts: mosquitto on 127.0.0.1, the real homecare-gw, SQLite files."""
import gzip
import hashlib
import json
import os
import shutil
import signal
import sqlite3
import unittest

from harness import TestCase, config

FIXTURE = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'fixtures', 'outbox-2939c3e.db.gz')


def digest(path):
    with open(path, 'rb') as f:
        return hashlib.sha256(f.read()).hexdigest()


class Stores(TestCase):
    def test_outbox_of_2939c3e_is_migrated_and_delivers_everything(self):
        os.makedirs(self.state)
        db = os.path.join(self.state, 'outbox.db')
        with gzip.open(FIXTURE) as src, open(db, 'wb') as dst:
            shutil.copyfileobj(src, dst)
        with sqlite3.connect(db) as c:
            held = {seq: json.loads(body) for seq, body in c.execute('SELECT seq, body FROM outbox')}
            self.assertEqual(c.execute('PRAGMA user_version').fetchone()[0], 0)
        c.close()
        self.assertEqual(len(held), 1501)
        b = self.broker()
        sub = self.subscriber(b.port)
        gw = self.gateway(config(b.port, self.state, sim=False))
        sub.wait(lambda: set(held) <= sub.seq_set(), 'every item of the old store', timeout=120)
        got = {}
        for lane, it in sub.items:
            got.setdefault(it['seq'], it)
        for seq, item in held.items():  # the store keeps the body; the seq goes into it on the way out
            self.assertEqual(got[seq], dict(item, seq=seq), 'item %d delivered unchanged' % seq)
        # The old store could not say whether its last run stopped cleanly: the next seqs start past
        # the window, announced.
        sub.wait(lambda: any(it.get('type') == 'seq_skipped' for _, it in sub.items), 'the seq_skipped item')
        skipped = next(it for _, it in sub.items if it.get('type') == 'seq_skipped')
        self.assertEqual(skipped['from_seq'], 1502)
        gw.signal(signal.SIGTERM)
        self.assertEqual(gw.wait_exit(), 0)
        with sqlite3.connect(db) as c:
            self.assertEqual(c.execute('PRAGMA user_version').fetchone()[0], 2)
            self.assertEqual(c.execute("SELECT value FROM meta WHERE key='running'").fetchone()[0], 0)
        c.close()

    def test_stores_of_a_newer_gateway_are_left_untouched(self):
        b = self.broker()
        sub = self.subscriber(b.port)
        mark = b.log.count()
        gw = self.gateway(config(b.port, self.state, sim=False))
        b.wait_subscribed(start=mark)
        gw.signal(signal.SIGTERM)
        self.assertEqual(gw.wait_exit(), 0)
        files = [os.path.join(self.state, n) for n in ('outbox.db', 'sensors.db')]
        for f in files:  # as a later homecare-gw would leave them
            with sqlite3.connect(f) as c:
                c.execute('PRAGMA user_version=99')
            c.close()
        before = [digest(f) for f in files]
        mark = b.log.count()
        gw = self.gateway(config(b.port, self.state, sim=False), name='gw-older')
        gw.log.wait(r'running on a store in memory')
        gw.log.wait(r'sensors\.db.*kept in memory')
        b.wait_subscribed(start=mark)
        sub.wait(lambda: any(it.get('kind') == 'store_unavailable' for _, it in sub.items), 'store_unavailable')
        alert = next(it for _, it in sub.items if it.get('kind') == 'store_unavailable')
        self.assertIn('newer', json.dumps(alert))
        sub.publish('cmd/test-alarm', json.dumps({'request_id': 'older'}))
        sub.wait(lambda: any(it.get('kind') == 'test_alarm' for _, it in sub.items), 'the test alarm')
        gw.signal(signal.SIGTERM)
        self.assertEqual(gw.wait_exit(), 0)
        self.assertEqual([digest(f) for f in files], before, 'the newer stores are unchanged')
        for f in files:
            self.assertFalse(os.path.exists(f + '-wal') and os.path.getsize(f + '-wal') > 0)


if __name__ == '__main__':
    unittest.main(verbosity=2)
