#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "uplink/outbox.h"

/* Rows are charged this much on top of their body towards the quota: rowid, lane, record and
 * b-tree cell headers, index entry. Measured on SQLite 3.40 with 200-byte bodies: about 30. */
#define ROW_OVERHEAD 32

typedef struct Pending {
        Lane lane;
        size_t len;
        char *body;
} Pending;

struct Outbox {
        sd_event *event;
        sd_event_source *commit_timer; /* armed while items wait for a group commit */
        sd_event_source *retry_timer;  /* armed after a failed commit */
        sqlite3 *db;
        sqlite3_stmt *st_insert, *st_delete, *st_fetch, *st_set_meta;
        OutboxOptions opt;

        Pending *pending; /* queued items, oldest first */
        size_t n_pending, cap_pending;
        uint64_t *acks; /* seqs acknowledged, to delete in the next commit */
        size_t n_acks, cap_acks;
        uint64_t max_ack; /* highest seq in acks */

        uint64_t count[_LANE_MAX]; /* committed rows per lane */
        uint64_t bytes[_LANE_MAX]; /* their quota charge */
        uint64_t dropped, dropped_saved; /* items lost; the count last written to meta */
        uint64_t epoch, last_seq;
        unsigned retry_exp;
        char *last_error;

        outbox_committed_fn committed_cb;
        void *committed_userdata;
};

const char *lane_name(Lane lane)
{
        switch (lane) {
        case LANE_ALERTS:
                return "alerts";
        case LANE_EVENTS:
                return "events";
        case LANE_TELEMETRY:
                return "telemetry";
        case _LANE_MAX:
                break;
        }
        return NULL;
}

static void set_error(Outbox *o, const char *what)
{
        free(o->last_error);
        o->last_error = NULL;
        if (asprintf(&o->last_error, "%s: %s", what, sqlite3_errmsg(o->db)) < 0)
                o->last_error = NULL;
}

static int sqlite_to_errno(int rc)
{
        switch (rc & 0xff) {
        case SQLITE_OK:
        case SQLITE_DONE:
        case SQLITE_ROW:
                return 0;
        case SQLITE_NOMEM:
                return -ENOMEM;
        case SQLITE_FULL:
                return -ENOSPC;
        case SQLITE_BUSY:
        case SQLITE_LOCKED:
                return -EBUSY;
        case SQLITE_READONLY:
        case SQLITE_PERM:
        case SQLITE_AUTH:
                return -EACCES;
        case SQLITE_CORRUPT:
        case SQLITE_NOTADB:
                return -EBADMSG;
        case SQLITE_CANTOPEN:
                return -ENOENT;
        default:
                return -EIO;
        }
}

static int exec(Outbox *o, const char *sql)
{
        int rc = sqlite3_exec(o->db, sql, NULL, NULL, NULL);
        if (rc != SQLITE_OK)
                set_error(o, sql);
        return sqlite_to_errno(rc);
}

static int set_meta(Outbox *o, const char *key, uint64_t value)
{
        int rc;
        sqlite3_bind_text(o->st_set_meta, 1, key, -1, SQLITE_STATIC);
        sqlite3_bind_int64(o->st_set_meta, 2, (sqlite3_int64)value);
        rc = sqlite3_step(o->st_set_meta);
        sqlite3_reset(o->st_set_meta);
        if (rc != SQLITE_DONE)
                set_error(o, "Failed to write meta");
        return sqlite_to_errno(rc);
}

static int get_meta(Outbox *o, const char *key, uint64_t *ret)
{
        sqlite3_stmt *st;
        int rc = sqlite3_prepare_v2(o->db, "SELECT value FROM meta WHERE key=?1", -1, &st, NULL);
        if (rc != SQLITE_OK)
                return sqlite_to_errno(rc);
        sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW)
                *ret = (uint64_t)sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? -ENOENT : sqlite_to_errno(rc);
}

static int load_counters(Outbox *o)
{
        sqlite3_stmt *st;
        int rc;

        rc = sqlite3_prepare_v2(o->db,
                                "SELECT lane, count(*), total(length(CAST(body AS BLOB))) FROM outbox GROUP BY lane",
                                -1, &st, NULL);
        if (rc != SQLITE_OK)
                return sqlite_to_errno(rc);
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                int lane = sqlite3_column_int(st, 0);
                if (lane < 0 || lane >= _LANE_MAX)
                        continue;
                o->count[lane] = (uint64_t)sqlite3_column_int64(st, 1);
                o->bytes[lane] = (uint64_t)sqlite3_column_double(st, 2) + o->count[lane] * ROW_OVERHEAD;
        }
        sqlite3_finalize(st);
        if (rc != SQLITE_DONE)
                return sqlite_to_errno(rc);
        /* sqlite_sequence keeps the highest seq ever handed out, even when every row is gone. */
        rc = sqlite3_prepare_v2(o->db, "SELECT seq FROM sqlite_sequence WHERE name='outbox'", -1, &st, NULL);
        if (rc != SQLITE_OK)
                return sqlite_to_errno(rc);
        if (sqlite3_step(st) == SQLITE_ROW)
                o->last_seq = (uint64_t)sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        return 0;
}

static int on_commit_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
        (void)outbox_commit(userdata);
        return 0;
}

static int on_retry_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
        (void)outbox_commit(userdata);
        return 0;
}

int outbox_open(sd_event *e, const char *path, const OutboxOptions *opt, Outbox **ret, char **ret_error)
{
        static const char schema[] =
                "PRAGMA journal_mode=WAL;"
                /* FULL: a commit is on disk when COMMIT returns, so an alert survives a power cut too. */
                "PRAGMA synchronous=FULL;"
                "CREATE TABLE IF NOT EXISTS outbox(seq INTEGER PRIMARY KEY AUTOINCREMENT,"
                "                                  lane INTEGER NOT NULL, body TEXT NOT NULL);"
                "CREATE INDEX IF NOT EXISTS outbox_lane ON outbox(lane, seq);"
                "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL);"
                "INSERT OR IGNORE INTO meta(key, value) VALUES('epoch', abs(random()) % 9007199254740991),"
                "                                             ('dropped', 0);";
        Outbox *o;
        int rc, r;

        o = calloc(1, sizeof *o);
        if (!o)
                return -ENOMEM;
        o->event = sd_event_ref(e);
        o->opt = *opt;
        if (o->opt.max_pending == 0)
                o->opt.max_pending = 1000;

        rc = sqlite3_open_v2(path, &o->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
        if (rc != SQLITE_OK) {
                r = sqlite_to_errno(rc);
                goto fail;
        }
        sqlite3_extended_result_codes(o->db, 1);
        sqlite3_busy_timeout(o->db, 5000);
        rc = sqlite3_exec(o->db, schema, NULL, NULL, NULL);
        if (rc != SQLITE_OK) {
                r = sqlite_to_errno(rc);
                goto fail;
        }
        if ((rc = sqlite3_prepare_v3(o->db, "INSERT INTO outbox(lane, body) VALUES(?1, ?2)", -1,
                                     SQLITE_PREPARE_PERSISTENT, &o->st_insert, NULL)) != SQLITE_OK ||
            (rc = sqlite3_prepare_v3(o->db, "DELETE FROM outbox WHERE seq=?1 RETURNING lane, length(CAST(body AS BLOB))",
                                     -1, SQLITE_PREPARE_PERSISTENT, &o->st_delete, NULL)) != SQLITE_OK ||
            (rc = sqlite3_prepare_v3(o->db,
                                     "SELECT seq, body FROM outbox WHERE lane=?1 AND seq>?2 ORDER BY seq LIMIT ?3",
                                     -1, SQLITE_PREPARE_PERSISTENT, &o->st_fetch, NULL)) != SQLITE_OK ||
            (rc = sqlite3_prepare_v3(o->db, "INSERT OR REPLACE INTO meta(key, value) VALUES(?1, ?2)", -1,
                                     SQLITE_PREPARE_PERSISTENT, &o->st_set_meta, NULL)) != SQLITE_OK) {
                r = sqlite_to_errno(rc);
                goto fail;
        }
        if ((r = get_meta(o, "epoch", &o->epoch)) < 0 || (r = get_meta(o, "dropped", &o->dropped)) < 0 ||
            (r = load_counters(o)) < 0)
                goto fail;
        o->dropped_saved = o->dropped;

        *ret = o;
        return 0;
fail:
        if (ret_error && asprintf(ret_error, "%s: %s", path, o->db ? sqlite3_errmsg(o->db) : strerror(-r)) < 0)
                *ret_error = NULL;
        outbox_free(o);
        return r;
}

Outbox *outbox_free(Outbox *o)
{
        if (!o)
                return NULL;
        if (o->db)
                (void)outbox_commit(o);
        sd_event_source_disable_unref(o->commit_timer);
        sd_event_source_disable_unref(o->retry_timer);
        sqlite3_finalize(o->st_insert);
        sqlite3_finalize(o->st_delete);
        sqlite3_finalize(o->st_fetch);
        sqlite3_finalize(o->st_set_meta);
        sqlite3_close(o->db);
        for (size_t i = 0; i < o->n_pending; i++)
                free(o->pending[i].body);
        free(o->pending);
        free(o->acks);
        free(o->last_error);
        sd_event_unref(o->event);
        free(o);
        return NULL;
}

void outbox_set_committed_callback(Outbox *o, outbox_committed_fn fn, void *userdata)
{
        o->committed_cb = fn;
        o->committed_userdata = userdata;
}

void outbox_set_options(Outbox *o, const OutboxOptions *opt)
{
        o->opt = *opt;
        if (o->opt.max_pending == 0)
                o->opt.max_pending = 1000;
}

static int arm_timer(Outbox *o, sd_event_source **s, uint64_t delay, sd_event_time_handler_t cb)
{
        int r;
        if (*s) {
                r = sd_event_source_set_time_relative(*s, delay);
                if (r >= 0)
                        r = sd_event_source_set_enabled(*s, SD_EVENT_ONESHOT);
                return r;
        }
        return sd_event_add_time_relative(o->event, s, CLOCK_MONOTONIC, delay, 0, cb, o);
}

int outbox_add(Outbox *o, Lane lane, const char *body, size_t len)
{
        Pending *p;
        char *copy;

        if (lane >= _LANE_MAX)
                return -EINVAL;
        /* While commits fail (disk full), memory is the only buffer left: bound it, and give up the
         * newest telemetry or events first. Alerts are always kept. */
        if (o->n_pending >= 8 * o->opt.max_pending && lane != LANE_ALERTS) {
                o->dropped++;
                return -ENOSPC;
        }
        copy = malloc(len + 1);
        if (!copy)
                return -ENOMEM;
        memcpy(copy, body, len);
        copy[len] = '\0';
        if (o->n_pending == o->cap_pending) {
                size_t cap = o->cap_pending ? o->cap_pending * 2 : 64;
                p = realloc(o->pending, cap * sizeof *p);
                if (!p) {
                        free(copy);
                        return -ENOMEM;
                }
                o->pending = p;
                o->cap_pending = cap;
        }
        o->pending[o->n_pending++] = (Pending){.lane = lane, .len = len, .body = copy};

        /* While commits fail, the retry timer commits; only an alert tries at once (the disk may have
         * room again). */
        if (lane == LANE_ALERTS || (o->n_pending >= o->opt.max_pending && o->retry_exp == 0)) {
                /* A failed commit keeps the item queued and retries on its own. */
                (void)outbox_commit(o);
                return 0;
        }
        if (o->retry_exp == 0 && o->n_pending == 1)
                return arm_timer(o, &o->commit_timer, o->opt.commit_delay_usec, on_commit_timer);
        return 0;
}

int outbox_ack(Outbox *o, const uint64_t *seqs, size_t n)
{
        if (o->n_acks + n > o->cap_acks) {
                size_t cap = o->cap_acks ? o->cap_acks : 256;
                while (o->n_acks + n > cap)
                        cap *= 2;
                uint64_t *a = realloc(o->acks, cap * sizeof *a);
                if (!a)
                        return -ENOMEM;
                o->acks = a;
                o->cap_acks = cap;
        }
        for (size_t i = 0; i < n; i++) {
                o->acks[o->n_acks++] = seqs[i];
                if (seqs[i] > o->max_ack)
                        o->max_ack = seqs[i];
        }
        if (o->retry_exp == 0 && !(o->commit_timer && sd_event_source_get_enabled(o->commit_timer, NULL) > 0))
                return arm_timer(o, &o->commit_timer, o->opt.commit_delay_usec, on_commit_timer);
        return 0;
}

/* Deletes every other row among the oldest quarter of lane (at least one row). Returns the
 * number of rows deleted, or a negative errno. Runs inside the caller's transaction. */
static int thin(Outbox *o, Lane lane, uint64_t live, uint64_t *bytes_freed)
{
        sqlite3_stmt *st;
        int rc, n = 0;
        uint64_t limit = live / 4;

        if (live == 0)
                return 0;
        if (limit < 2)
                limit = 2;
        rc = sqlite3_prepare_v2(o->db,
                                "DELETE FROM outbox WHERE seq IN (SELECT seq FROM"
                                " (SELECT seq, row_number() OVER (ORDER BY seq) AS rn FROM outbox"
                                "  WHERE lane=?1 ORDER BY seq LIMIT ?2) WHERE rn % 2 = 1)"
                                " RETURNING length(CAST(body AS BLOB))",
                                -1, &st, NULL);
        if (rc != SQLITE_OK) {
                set_error(o, "Failed to prepare thinning");
                return sqlite_to_errno(rc);
        }
        sqlite3_bind_int(st, 1, lane);
        sqlite3_bind_int64(st, 2, (sqlite3_int64)limit);
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                *bytes_freed += (uint64_t)sqlite3_column_int64(st, 0) + ROW_OVERHEAD;
                n++;
        }
        sqlite3_finalize(st);
        if (rc != SQLITE_DONE) {
                set_error(o, "Failed to thin");
                return sqlite_to_errno(rc);
        }
        return n;
}

int outbox_commit(Outbox *o)
{
        uint64_t count[_LANE_MAX], bytes[_LANE_MAX], dropped = o->dropped, last_seq = o->last_seq, total = 0;
        size_t added = o->n_pending;
        int rc, r;

        if (o->n_pending == 0 && o->n_acks == 0)
                return 0;
        if (o->commit_timer)
                (void)sd_event_source_set_enabled(o->commit_timer, SD_EVENT_OFF);
        memcpy(count, o->count, sizeof count);
        memcpy(bytes, o->bytes, sizeof bytes);

        r = exec(o, "BEGIN IMMEDIATE");
        if (r < 0)
                goto fail;

        for (size_t i = 0; i < o->n_acks; i++) {
                sqlite3_bind_int64(o->st_delete, 1, (sqlite3_int64)o->acks[i]);
                rc = sqlite3_step(o->st_delete);
                if (rc == SQLITE_ROW) {
                        int lane = sqlite3_column_int(o->st_delete, 0);
                        if (lane >= 0 && lane < _LANE_MAX) {
                                count[lane]--;
                                bytes[lane] -= (uint64_t)sqlite3_column_int64(o->st_delete, 1) + ROW_OVERHEAD;
                        }
                        rc = sqlite3_step(o->st_delete);
                }
                sqlite3_reset(o->st_delete);
                if (rc != SQLITE_DONE) {
                        set_error(o, "Failed to delete acknowledged item");
                        r = sqlite_to_errno(rc);
                        goto rollback;
                }
        }

        for (size_t i = 0; i < o->n_pending; i++) {
                Pending *p = &o->pending[i];
                sqlite3_bind_int(o->st_insert, 1, p->lane);
                sqlite3_bind_text(o->st_insert, 2, p->body, (int)p->len, SQLITE_STATIC);
                rc = sqlite3_step(o->st_insert);
                sqlite3_reset(o->st_insert);
                if (rc != SQLITE_DONE) {
                        set_error(o, "Failed to store item");
                        r = sqlite_to_errno(rc);
                        goto rollback;
                }
                last_seq = (uint64_t)sqlite3_last_insert_rowid(o->db);
                count[p->lane]++;
                bytes[p->lane] += p->len + ROW_OVERHEAD;
        }

        /* Over quota: thin the oldest telemetry, then events. Alerts are never dropped. */
        for (Lane l = 0; l < _LANE_MAX; l++)
                total += bytes[l];
        while (total > o->opt.max_size) {
                uint64_t freed = 0;
                Lane lane = count[LANE_TELEMETRY] > 0 ? LANE_TELEMETRY : LANE_EVENTS;

                if (count[lane] == 0)
                        break;
                r = thin(o, lane, count[lane], &freed);
                if (r < 0)
                        goto rollback;
                if (r == 0)
                        break;
                count[lane] -= (uint64_t)r;
                bytes[lane] -= freed;
                total -= freed;
                dropped += (uint64_t)r;
        }
        if (dropped != o->dropped_saved && (r = set_meta(o, "dropped", dropped)) < 0)
                goto rollback;

        r = exec(o, "COMMIT");
        if (r < 0)
                goto rollback;

        memcpy(o->count, count, sizeof count);
        memcpy(o->bytes, bytes, sizeof bytes);
        o->dropped = o->dropped_saved = dropped;
        o->last_seq = last_seq;
        for (size_t i = 0; i < o->n_pending; i++)
                free(o->pending[i].body);
        o->n_pending = 0;
        o->n_acks = 0;
        o->max_ack = 0;
        o->retry_exp = 0;
        if (o->retry_timer)
                (void)sd_event_source_set_enabled(o->retry_timer, SD_EVENT_OFF);
        if (added > 0 && o->committed_cb)
                o->committed_cb(o, o->committed_userdata);
        return 0;

rollback:
        (void)sqlite3_exec(o->db, "ROLLBACK", NULL, NULL, NULL);
fail:
        /* Keep everything queued and try again later, backing off from 0.1 s to 30 s (once per retry,
         * not per failed attempt). A full disk often frees up (logs rotated, a checkpoint); until
         * then memory holds the items. */
        if (!(o->retry_timer && sd_event_source_get_enabled(o->retry_timer, NULL) > 0)) {
                uint64_t delay = 100000ULL << (o->retry_exp < 9 ? o->retry_exp : 9); /* 0.1 .. 51 s */
                if (delay > 30ULL * 1000 * 1000)
                        delay = 30ULL * 1000 * 1000;
                o->retry_exp++;
                (void)arm_timer(o, &o->retry_timer, delay, on_retry_timer);
        }
        if (r == -ENOSPC)
                (void)sqlite3_wal_checkpoint_v2(o->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
        return r;
}

int outbox_fetch(Outbox *o, Lane lane, uint64_t after, size_t max_items, size_t max_bytes, OutboxBatch *ret)
{
        OutboxBatch b = {};
        size_t bytes = 0;
        int rc, r = 0;

        /* Someone rewinds to resend: acknowledged rows must be gone first. */
        if (o->n_acks > 0 && after < o->max_ack && (r = outbox_commit(o)) < 0)
                return r;
        b.items = calloc(max_items ? max_items : 1, sizeof *b.items);
        if (!b.items)
                return -ENOMEM;
        sqlite3_bind_int(o->st_fetch, 1, lane);
        sqlite3_bind_int64(o->st_fetch, 2, (sqlite3_int64)after);
        sqlite3_bind_int64(o->st_fetch, 3, (sqlite3_int64)max_items);
        while ((rc = sqlite3_step(o->st_fetch)) == SQLITE_ROW) {
                const char *body = (const char *)sqlite3_column_text(o->st_fetch, 1);
                size_t len = (size_t)sqlite3_column_bytes(o->st_fetch, 1);
                OutboxItem *it = &b.items[b.n];

                if (b.n > 0 && bytes + len > max_bytes)
                        break;
                it->seq = (uint64_t)sqlite3_column_int64(o->st_fetch, 0);
                it->body = malloc(len + 1);
                if (!it->body) {
                        r = -ENOMEM;
                        break;
                }
                memcpy(it->body, body ? body : "", len);
                it->body[len] = '\0';
                it->len = len;
                bytes += len;
                b.n++;
        }
        if (r == 0 && rc != SQLITE_ROW && rc != SQLITE_DONE) {
                set_error(o, "Failed to read items");
                r = sqlite_to_errno(rc);
        }
        sqlite3_reset(o->st_fetch);
        if (r < 0) {
                outbox_batch_done(&b);
                return r;
        }
        *ret = b;
        return 0;
}

void outbox_batch_done(OutboxBatch *b)
{
        for (size_t i = 0; i < b->n; i++)
                free(b->items[i].body);
        free(b->items);
        *b = (OutboxBatch){};
}

uint64_t outbox_backlog(const Outbox *o, Lane lane)
{
        return lane < _LANE_MAX ? o->count[lane] : 0;
}

uint64_t outbox_backlog_total(const Outbox *o)
{
        return o->count[LANE_ALERTS] + o->count[LANE_EVENTS] + o->count[LANE_TELEMETRY];
}

uint64_t outbox_pending(const Outbox *o)
{
        return o->n_pending;
}

uint64_t outbox_dropped(const Outbox *o)
{
        return o->dropped;
}

uint64_t outbox_epoch(const Outbox *o)
{
        return o->epoch;
}

uint64_t outbox_last_seq(const Outbox *o)
{
        return o->last_seq;
}

const char *outbox_last_error(const Outbox *o)
{
        return o->last_error;
}
