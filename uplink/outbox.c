#include <errno.h>
#include <stddef.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "common/alloc-util.h"
#include "common/backoff.h"
#include "common/log.h"
#include "common/sqlite.h"
#include "common/string-table.h"
#include "common/time-util.h"

#include "uplink/outbox.h"

/* Bytes an item takes in the store on top of its body (rowid, lane, record and cell headers, index
 * entry), for estimating room before it is inserted; the quota itself counts real pages. */
#define ROW_OVERHEAD 40
/* seqs reserved on disk ahead of the last one handed out: a run that ends without a clean shutdown
 * may have sent alerts from memory with seqs it could not store, and the next run must not give
 * those seqs to other items. The next run starts after the reservation. */
#define SEQ_RESERVE 64
/* After a stop that was not clean, the next run starts this many seqs past the reservation: the
 * last run may have been unable to write anything for a while (a full or failing disk) and have
 * sent alerts from memory with seqs beyond its reservation meanwhile. While commits fail, only
 * alerts and the items queued before them keep seqs (at most MEMORY_FACTOR * max_pending of
 * those, 8000 by default), so this covers more than 57000 alerts in one episode of failures (an
 * alert a minute for five weeks); going past it is logged. */
#define SEQ_FAIL_WINDOW 65536
/* A failed commit is retried after 0.1 s, doubling to 5 s (no jitter: nobody else retries against
 * this disk). */
#define RETRY_MIN_USEC (100ULL * 1000)
#define RETRY_MAX_USEC (5ULL * 1000 * 1000)
#define MIB (1024ULL * 1024)
/* Free space kept on the file system for what matters more: telemetry is refused below 4 MiB (or
 * 1/8 of a smaller file system), events below 1 MiB (or 1/32); alerts take whatever is left. */
#define FS_TELEMETRY_RESERVE (4 * MIB)
#define FS_EVENTS_RESERVE (1 * MIB)
/* Items held in memory while commits fail, as a multiple of max_pending; alerts are always kept. */
#define MEMORY_FACTOR 8

typedef struct Pending {
        Lane lane;
        uint64_t seq; /* 0 until the first commit attempt hands one out */
        size_t len;
        char *body;
} Pending;

struct Outbox {
        sd_event *event;
        sd_event_source *commit_timer; /* armed while items wait for a group commit */
        sd_event_source *retry_timer;  /* armed after a failed commit */
        sqlite3 *db;
        sqlite3_stmt *st_insert, *st_delete, *st_fetch, *st_set_meta, *st_page_count, *st_freelist;
        char *path, *dir;
        char *replaced;      /* where a corrupt store was moved at open */
        char *memory_reason; /* the file could not be opened (a full or failing disk): why; the store is in
                                memory */
        OutboxOptions opt;
        uint64_t page_size;
        uint64_t wal_frames; /* frames in the WAL after the last commit (from the WAL hook) */

        Pending *pending; /* queued items, oldest first; alerts' seqs increase (see give_back_seqs()) */
        size_t n_pending, cap_pending;
        size_t n_pending_alerts;
        uint64_t pending_bytes;
        uint64_t *acks; /* seqs acknowledged, to delete in the next commit */
        size_t n_acks, cap_acks;
        bool acks_sorted;

        uint64_t count[_LANE_MAX];       /* committed rows per lane */
        uint64_t dropped, dropped_saved; /* items lost; the count last written to meta */
        uint64_t epoch;
        uint64_t last_seq;     /* highest seq stored */
        uint64_t next_seq;     /* next seq to hand out */
        uint64_t seq_reserved; /* seqs up to this one are reserved on disk */
        uint64_t skipped_from,
            skipped_to;         /* reserved by the last run, unused by stored items (from > to: none) */
        uint64_t skipped;       /* seqs skipped after unclean stops since the store was made */
        uint64_t seq_floor;     /* the first seq this run may hand out */
        uint64_t alert_seq_max; /* the highest seq handed to an alert (it may have been sent from memory) */
        bool window_warned;     /* an alert went past SEQ_FAIL_WINDOW in this episode (logged once) */
        bool read_failing;      /* reading stored items fails (logged once per episode) */
        bool memory_full;       /* new non-alert items are refused for lack of memory (logged once) */
        Backoff retry;          /* commit retries: attempts since the last commit that worked */
        char *last_error;
        uint64_t failing_since, failed_commits;
        unsigned refusing; /* 0: nothing; 1: telemetry; 2: telemetry and events */

        outbox_committed_fn committed_cb;
        void *committed_userdata;
        outbox_log_fn log_cb;
        void *log_userdata;
};

static const char *const lane_table[_LANE_MAX] = {
    [LANE_ALERTS] = "alerts",
    [LANE_EVENTS] = "events",
    [LANE_TELEMETRY] = "telemetry",
};
DEFINE_STRING_TABLE_LOOKUP_TO_NAME(lane, Lane, lane_table, _LANE_MAX);

#define logf_(o, prio, ...) log_to_callback((o)->log_cb, (o)->log_userdata, prio, __VA_ARGS__)

/* Commits fail: the retry timer commits, with back-off; nothing else starts a commit but an alert. */
static bool commits_failing(const Outbox *o)
{
        return o->retry.attempt > 0;
}

static void set_error(Outbox *o, const char *what)
{
        free(o->last_error);
        o->last_error = NULL;
        if (asprintf(&o->last_error, "%s: %s", what, sqlite3_errmsg(o->db)) < 0)
                o->last_error = NULL;
}

static int exec(Outbox *o, const char *sql)
{
        int rc = sqlite3_exec(o->db, sql, NULL, NULL, NULL);
        if (rc != SQLITE_OK)
                set_error(o, sql);
        return sqlite_rc_to_errno(rc);
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
        return sqlite_rc_to_errno(rc);
}

static int get_meta(Outbox *o, const char *key, uint64_t *ret)
{
        sqlite3_stmt *st;
        int rc = sqlite3_prepare_v2(o->db, "SELECT value FROM meta WHERE key=?1", -1, &st, NULL);
        if (rc != SQLITE_OK)
                return rc;
        sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW)
                *ret = (uint64_t)sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        return rc == SQLITE_ROW ? SQLITE_OK : rc == SQLITE_DONE ? SQLITE_CORRUPT : rc;
}

static int query_u64(Outbox *o, sqlite3_stmt *st, uint64_t *ret)
{
        int rc = sqlite3_step(st);
        if (rc == SQLITE_ROW)
                *ret = (uint64_t)sqlite3_column_int64(st, 0);
        sqlite3_reset(st);
        if (rc != SQLITE_ROW) {
                set_error(o, "Failed to read the page count");
                return sqlite_rc_to_errno(rc);
        }
        return 0;
}

/* Pages in use: what the database file needs, whatever the rows hold. */
static int live_pages(Outbox *o, uint64_t *ret)
{
        uint64_t pages, free_pages;
        int r;
        if ((r = query_u64(o, o->st_page_count, &pages)) < 0 ||
            (r = query_u64(o, o->st_freelist, &free_pages)) < 0)
                return r;
        *ret = pages - free_pages;
        return 0;
}

/* The quota covers the database and its WAL: the WAL gets 1/4 of it (at most 8 MiB). A commit
 * writes at most a quarter of that in new rows, and the WAL is checkpointed and truncated after a
 * commit that leaves it above a quarter, so one commit (its rows and the pages thinning touches)
 * fits in the rest. */
static uint64_t wal_budget(const Outbox *o)
{
        uint64_t w = o->opt.max_size / 4;
        return w < 8 * MIB ? w : 8 * MIB;
}

/* Above these page counts the oldest telemetry, then the oldest events are thinned, so that
 * events and alerts still fit below the quota: telemetry stops 1/8 (at most 4 MiB) short of the
 * database's share, events 1/16 (at most 2 MiB) short. */
static void page_limits(const Outbox *o, uint64_t *ret_telemetry, uint64_t *ret_events)
{
        uint64_t data = o->opt.max_size - wal_budget(o);
        uint64_t t = data / 8 < 4 * MIB ? data / 8 : 4 * MIB;
        uint64_t e = data / 16 < 2 * MIB ? data / 16 : 2 * MIB;
        *ret_telemetry = (data - t) / o->page_size;
        *ret_events = (data - e) / o->page_size;
}

static void apply_wal_limits(Outbox *o)
{
        char sql[64];
        if (!o->db)
                return;
        snprintf(sql, sizeof sql, "PRAGMA journal_size_limit=%llu", (unsigned long long)wal_budget(o));
        (void)sqlite3_exec(o->db, sql, NULL, NULL, NULL);
}

static int on_wal(void *userdata, sqlite3 *db, const char *name, int frames)
{
        Outbox *o = userdata;
        o->wal_frames = frames > 0 ? (uint64_t)frames : 0;
        return SQLITE_OK;
}

static int load_counters(Outbox *o)
{
        sqlite3_stmt *st;
        int rc;

        rc = sqlite3_prepare_v2(o->db, "SELECT lane, count(*) FROM outbox GROUP BY lane", -1, &st, NULL);
        if (rc != SQLITE_OK)
                return rc;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                int lane = sqlite3_column_int(st, 0);
                if (lane < 0 || lane >= _LANE_MAX)
                        continue;
                o->count[lane] = (uint64_t)sqlite3_column_int64(st, 1);
        }
        sqlite3_finalize(st);
        if (rc != SQLITE_DONE)
                return rc;
        /* sqlite_sequence keeps the highest seq ever stored, even when every row is gone. */
        rc = sqlite3_prepare_v2(o->db, "SELECT seq FROM sqlite_sequence WHERE name='outbox'", -1, &st, NULL);
        if (rc != SQLITE_OK)
                return rc;
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW)
                o->last_seq = (uint64_t)sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        return rc == SQLITE_ROW || rc == SQLITE_DONE ? SQLITE_OK : rc;
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

static void close_db(Outbox *o)
{
        sqlite3_finalize(o->st_insert);
        sqlite3_finalize(o->st_delete);
        sqlite3_finalize(o->st_fetch);
        sqlite3_finalize(o->st_set_meta);
        sqlite3_finalize(o->st_page_count);
        sqlite3_finalize(o->st_freelist);
        o->st_insert = o->st_delete = o->st_fetch = o->st_set_meta = o->st_page_count = o->st_freelist =
            NULL;
        sqlite3_close(o->db);
        o->db = NULL;
        memset(o->count, 0, sizeof o->count);
        o->last_seq = 0;
}

/* The outbox's schema, version by version (PRAGMA user_version; common/sqlite.h applies them). */
static const SqliteMigration migrations[] = {
    /* 1: the schema before stores carried a version (idempotent, so such a store is adopted). */
    {1, "CREATE TABLE IF NOT EXISTS outbox(seq INTEGER PRIMARY KEY AUTOINCREMENT,"
        "                                  lane INTEGER NOT NULL, body TEXT NOT NULL);"
        "CREATE INDEX IF NOT EXISTS outbox_lane ON outbox(lane, seq);"
        "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL);"
        "INSERT OR IGNORE INTO meta(key, value) VALUES('epoch', abs(random()) % 9007199254740991),"
        "                                             ('dropped', 0), ('seq_reserved', 0);"},
    /* 2: 'running' (cleared by a clean stop) and the count of skipped seqs. A store that ever
     * reserved seqs cannot tell whether its last run stopped cleanly: it counts as unclean. */
    {2, "INSERT OR IGNORE INTO meta(key, value) VALUES('skipped', 0), ('skipped_top', 0),"
        " ('running', (SELECT value > 0 FROM meta WHERE key='seq_reserved'));"},
};

static const SqliteOptions store_options = {
    .migrations = migrations,
    .n_migrations = sizeof migrations / sizeof migrations[0],
    /* Freed pages can be given back to the file system after thinning. */
    .auto_vacuum_incremental = true,
    .quick_check = true,
    /* Only this process writes (StateDirectory/lock); a tool reading the file can hold a lock
     * for a moment. Waiting blocks the loop, and an alarm with it: a busy commit fails at once
     * and is retried, and alerts go out from memory meanwhile. */
    .busy_timeout_msec = 100,
};

static int prepare_statements(Outbox *o)
{
        static const struct {
                const char *sql;
                size_t offset;
        } statements[] = {
            {"INSERT INTO outbox(seq, lane, body) VALUES(?1, ?2, ?3)", offsetof(Outbox, st_insert)},
            {"DELETE FROM outbox WHERE seq=?1 RETURNING lane", offsetof(Outbox, st_delete)},
            {"SELECT seq, body FROM outbox WHERE lane=?1 AND seq>?2 ORDER BY seq",
             offsetof(Outbox, st_fetch)},
            {"INSERT OR REPLACE INTO meta(key, value) VALUES(?1, ?2)", offsetof(Outbox, st_set_meta)},
            {"PRAGMA page_count", offsetof(Outbox, st_page_count)},
            {"PRAGMA freelist_count", offsetof(Outbox, st_freelist)},
        };
        for (size_t i = 0; i < sizeof statements / sizeof statements[0]; i++) {
                sqlite3_stmt **st = (sqlite3_stmt **)((char *)o + statements[i].offset);
                int rc =
                    sqlite3_prepare_v3(o->db, statements[i].sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL);
                if (rc != SQLITE_OK)
                        return sqlite_rc_to_errno(rc);
        }
        return 0;
}

/* Where this run's seqs start. After a stop that was not clean the last run may have handed out
 * seqs beyond its reservation that it could not record (alerts sent from memory while the disk
 * failed): start past the window, and record the gap. 'running' is set for this run; if it
 * cannot be written, nothing can, and the caller runs on a store in memory. */
static int start_seqs(Outbox *o)
{
        uint64_t running = 0, top = 0, from;
        char sql[256];
        int rc;

        if ((rc = get_meta(o, "running", &running)) != SQLITE_OK ||
            (rc = get_meta(o, "skipped_top", &top)) != SQLITE_OK)
                return sqlite_rc_to_errno(rc);
        o->skipped_from = o->last_seq + 1;
        o->skipped_to = o->seq_reserved;
        if (running && strcmp(o->path, ":memory:") != 0)
                o->skipped_to = o->seq_reserved + SEQ_FAIL_WINDOW;
        o->next_seq = (o->last_seq > o->skipped_to ? o->last_seq : o->skipped_to) + 1;
        o->seq_floor = o->next_seq;
        /* Counted once: a run that stopped before its first commit leaves a range that overlaps the
         * one it announced itself. */
        from = o->skipped_from > top + 1 ? o->skipped_from : top + 1;
        if (from <= o->skipped_to) {
                o->skipped += o->skipped_to - from + 1;
                top = o->skipped_to;
        }
        /* This run's reservation is on disk before it hands out a seq: a run that ends before its
         * first commit (the disk fails, or a kill) must push the next one past its own seqs too. */
        o->seq_reserved = o->next_seq - 1 + SEQ_RESERVE;
        snprintf(sql, sizeof sql,
                 "BEGIN IMMEDIATE; INSERT OR REPLACE INTO meta(key, value) VALUES('running', 1), "
                 "('skipped', %llu),"
                 " ('skipped_top', %llu), ('seq_reserved', %llu); COMMIT;",
                 (unsigned long long)o->skipped, (unsigned long long)top,
                 (unsigned long long)o->seq_reserved);
        rc = sqlite3_exec(o->db, sql, NULL, NULL, NULL);
        if (rc != SQLITE_OK) {
                (void)sqlite3_exec(o->db, "ROLLBACK", NULL, NULL, NULL);
                return sqlite_rc_to_errno(rc);
        }
        return 0;
}

/* Opens, checks and migrates the store (common/sqlite.h) and reads its state. A negative errno:
 * -EBADMSG for a file that is not a database or is corrupt, -EPROTONOSUPPORT for a store made by
 * a newer homecare-gw; *reterr_error gets the reason. */
static int open_db(Outbox *o, char **reterr_error)
{
        char *error = NULL;
        sqlite3_stmt *st = NULL;
        uint64_t page_size = 0;
        int r, rc;

        r = sqlite_open_store(o->path, &store_options, &o->db, &error);
        if (r < 0)
                goto fail;
        if ((r = prepare_statements(o)) < 0)
                goto fail_db;
        if ((rc = get_meta(o, "epoch", &o->epoch)) != SQLITE_OK ||
            (rc = get_meta(o, "dropped", &o->dropped)) != SQLITE_OK ||
            (rc = get_meta(o, "seq_reserved", &o->seq_reserved)) != SQLITE_OK ||
            (rc = get_meta(o, "skipped", &o->skipped)) != SQLITE_OK ||
            (rc = load_counters(o)) != SQLITE_OK) {
                r = sqlite_rc_to_errno(rc);
                goto fail_db;
        }
        if (sqlite3_prepare_v2(o->db, "PRAGMA page_size", -1, &st, NULL) == SQLITE_OK) {
                if (sqlite3_step(st) == SQLITE_ROW)
                        page_size = (uint64_t)sqlite3_column_int64(st, 0);
                sqlite3_finalize(st);
        }
        o->page_size = page_size ? page_size : 4096;
        o->dropped_saved = o->dropped;
        if ((r = start_seqs(o)) < 0)
                goto fail_db;
        /* Our own WAL hook replaces SQLite's autocheckpoint: commit() checkpoints by the quota. */
        sqlite3_wal_hook(o->db, on_wal, o);
        apply_wal_limits(o);
        return 0;
fail_db:
        error = strdup(sqlite3_errmsg(o->db));
fail:
        if (reterr_error)
                (void)!asprintf(reterr_error, "%s: %s", o->path, error ?: strerror(-r));
        free(error);
        return r;
}

/* Whether path is an empty file with no WAL content beside it: what a lost file looks like. A store
 * of ours is never empty once opened (switching to WAL writes its first page). */
static bool file_was_emptied(const char *path)
{
        char *wal = NULL;
        struct stat st;
        bool empty;

        if (stat(path, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > 0)
                return false;
        if (asprintf(&wal, "%s-wal", path) < 0)
                return false;
        empty = stat(wal, &st) < 0 || st.st_size == 0;
        free(wal);
        return empty;
}

int outbox_open(sd_event *e, const char *path, const OutboxOptions *opt, Outbox **ret, char **reterr_error)
{
        char *error = NULL, *d;
        Outbox *o;
        int r;

        o = calloc(1, sizeof *o);
        if (!o)
                return -ENOMEM;
        o->event = sd_event_ref(e);
        o->opt = *opt;
        o->retry = (Backoff){.base_usec = RETRY_MIN_USEC, .cap_usec = RETRY_MAX_USEC};
        if (o->opt.max_pending == 0)
                o->opt.max_pending = 1000;
        o->acks_sorted = true;
        o->path = strdup(path);
        d = strdup(path);
        if (!o->path || !d) {
                free(d);
                r = -ENOMEM;
                goto fail;
        }
        o->dir = strdup(dirname(d));
        free(d);
        if (!o->dir) {
                r = -ENOMEM;
                goto fail;
        }

        /* An empty file where a store was (a file system that lost its data): SQLite would take it for
         * a new database, and nobody would hear that the backlog is gone. */
        if (file_was_emptied(o->path)) {
                r = -EBADMSG;
                (void)!asprintf(&error, "%s: the file is empty", o->path);
        } else
                r = open_db(o, &error);
        if (r == -EBADMSG) {
                /* Not a database, or a damaged one: without a store the home has no alarm path, and
                 * starting again does not mend the file. Keep it for analysis and start afresh. */
                close_db(o);
                r = sqlite_move_corrupt(path, &o->replaced);
                if (r < 0) {
                        free(error);
                        error = NULL;
                        (void)!asprintf(&error, "%s is corrupt and could not be moved aside: %s", path,
                                        strerror(-r));
                        goto fail;
                }
                free(error);
                error = NULL;
                r = open_db(o, &error);
        }
        if (r == -EPROTONOSUPPORT || (r < 0 && sqlite_error_is_no_room(r, o->dir))) {
                /* A full, failing or read-only disk, or a store made by a newer homecare-gw (left
                 * untouched for it): a gateway that does not start has no alarm path at all. Run on a
                 * store in memory: alerts, events and readings still flow; what is not acknowledged by
                 * the next stop is lost, and the Manager says so loudly. */
                close_db(o);
                o->memory_reason = error ?: strdup(strerror(-r));
                error = NULL;
                free(o->path);
                o->path = strdup(":memory:");
                if (!o->path || !o->memory_reason) {
                        r = -ENOMEM;
                        goto fail;
                }
                r = open_db(o, &error);
        }
        if (r < 0)
                goto fail;
        *ret = o;
        return 0;
fail:
        if (reterr_error)
                *reterr_error = error;
        else
                free(error);
        outbox_free(o);
        return r;
}

static void pending_remove(Outbox *o, size_t i)
{
        if (o->pending[i].lane == LANE_ALERTS)
                o->n_pending_alerts--;
        o->pending_bytes -= o->pending[i].len;
        free(o->pending[i].body);
        memmove(&o->pending[i], &o->pending[i + 1], (o->n_pending - i - 1) * sizeof *o->pending);
        o->n_pending--;
}

Outbox *outbox_free(Outbox *o)
{
        if (!o)
                return NULL;
        if (o->db && o->st_set_meta) {
                (void)outbox_commit(o);
                if (o->n_pending > 0) {
                        /* Nowhere left to keep them: lost, and said so, in the log and in the count. */
                        logf_(o, LOG_ERR,
                              "%zu items (%zu alerts) could not be stored and are lost; counted as dropped",
                              o->n_pending, o->n_pending_alerts);
                        o->dropped += o->n_pending;
                        while (o->n_pending > 0)
                                pending_remove(o, o->n_pending - 1);
                }
                /* A clean stop: the next run may go on right after the last seq handed out. */
                if (exec(o, "BEGIN IMMEDIATE") == 0) {
                        if ((o->dropped == o->dropped_saved || set_meta(o, "dropped", o->dropped) == 0) &&
                            set_meta(o, "seq_reserved", o->next_seq - 1) == 0 &&
                            set_meta(o, "running", 0) == 0 && exec(o, "COMMIT") == 0)
                                o->dropped_saved = o->dropped;
                        else
                                (void)sqlite3_exec(o->db, "ROLLBACK", NULL, NULL, NULL);
                }
                if (o->dropped != o->dropped_saved)
                        logf_(o, LOG_ERR, "Failed to write the dropped count (%llu) to the store: %s",
                              (unsigned long long)o->dropped, o->last_error ?: "unknown error");
                (void)sqlite3_wal_checkpoint_v2(o->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
        }
        sd_event_source_disable_unref(o->commit_timer);
        sd_event_source_disable_unref(o->retry_timer);
        close_db(o);
        for (size_t i = 0; i < o->n_pending; i++)
                free(o->pending[i].body);
        free(o->pending);
        free(o->acks);
        free(o->last_error);
        free(o->path);
        free(o->dir);
        free(o->memory_reason);
        free(o->replaced);
        sd_event_unref(o->event);
        free(o);
        return NULL;
}

void outbox_set_committed_callback(Outbox *o, outbox_committed_fn fn, void *userdata)
{
        o->committed_cb = fn;
        o->committed_userdata = userdata;
}

void outbox_set_log_callback(Outbox *o, outbox_log_fn fn, void *userdata)
{
        o->log_cb = fn;
        o->log_userdata = userdata;
}

void outbox_set_options(Outbox *o, const OutboxOptions *opt)
{
        o->opt = *opt;
        if (o->opt.max_pending == 0)
                o->opt.max_pending = 1000;
        apply_wal_limits(o);
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

static int queue(Outbox *o, Lane lane, const char *body, size_t len)
{
        char *copy;

        if (lane >= _LANE_MAX)
                return -EINVAL;
        /* While commits fail (disk full), memory is the only buffer left: bound it, and give up the
         * newest telemetry or events first. Alerts are always kept. */
        if (o->n_pending >= MEMORY_FACTOR * o->opt.max_pending && lane != LANE_ALERTS) {
                o->dropped++;
                if (!o->memory_full) {
                        /* Once per episode: on a disk that stays dead this is every new item. */
                        o->memory_full = true;
                        logf_(
                            o, LOG_ERR,
                            "%zu items wait in memory for a store that cannot be written: new readings and "
                            "events are dropped (counted) until it can; alerts are still sent",
                            o->n_pending);
                }
                return -ENOBUFS;
        }
        copy = malloc(len + 1);
        if (!copy)
                goto oom;
        memcpy(copy, body, len);
        copy[len] = '\0';
        if (GREEDY_REALLOC(o->pending, o->cap_pending, o->n_pending + 1, 64) < 0) {
                free(copy);
                goto oom;
        }
        o->pending[o->n_pending++] = (Pending){.lane = lane, .len = len, .body = copy};
        if (lane == LANE_ALERTS)
                o->n_pending_alerts++;
        o->pending_bytes += len;
        return 0;
oom:
        o->dropped++;
        return -ENOMEM;
}

int outbox_add(Outbox *o, Lane lane, const char *body, size_t len)
{
        int r = queue(o, lane, body, len);
        if (r < 0)
                return r;
        /* While commits fail, the retry timer commits; only an alert tries at once (the disk may have
         * room again, and it gets its seq, to be sent from memory if it cannot be stored). */
        if (lane == LANE_ALERTS ||
            ((o->n_pending >= o->opt.max_pending || o->pending_bytes >= wal_budget(o) / 4) &&
             !commits_failing(o))) {
                /* A failed commit keeps the item queued and retries on its own. */
                (void)outbox_commit(o);
                return 0;
        }
        if (!commits_failing(o) && o->n_pending == 1)
                return arm_timer(o, &o->commit_timer, o->opt.commit_delay_usec, on_commit_timer);
        return 0;
}

int outbox_add_sync(Outbox *o, Lane lane, const char *body, size_t len, uint64_t *ret_seq)
{
        int r;

        r = queue(o, lane, body, len);
        if (r < 0)
                return r;
        r = outbox_commit(o);
        /* Refusal takes every queued item of the lane, this one included. */
        if ((lane == LANE_TELEMETRY && o->refusing >= 1) || (lane == LANE_EVENTS && o->refusing >= 2))
                return -ENOSPC;
        /* This item was queued last: it is the newest pending one, or the newest stored. */
        if (ret_seq)
                *ret_seq = r < 0 ? o->pending[o->n_pending - 1].seq : o->last_seq;
        return r;
}

static int cmp_u64(const void *a, const void *b)
{
        uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
        return x < y ? -1 : x > y;
}

static bool is_acked(Outbox *o, uint64_t seq)
{
        if (o->n_acks == 0)
                return false;
        if (!o->acks_sorted) {
                qsort(o->acks, o->n_acks, sizeof *o->acks, cmp_u64);
                o->acks_sorted = true;
        }
        return bsearch(&seq, o->acks, o->n_acks, sizeof *o->acks, cmp_u64) != NULL;
}

int outbox_ack(Outbox *o, const uint64_t *seqs, size_t n)
{
        bool any = false;

        if (GREEDY_REALLOC(o->acks, o->cap_acks, o->n_acks + n, 256) < 0)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                bool in_memory = false;
                /* An alert sent from memory is delivered: it needs no storing any more. */
                for (size_t j = 0; o->n_pending_alerts > 0 && j < o->n_pending; j++)
                        if (o->pending[j].seq == seqs[i] && seqs[i] != 0) {
                                pending_remove(o, j);
                                in_memory = true;
                                break;
                        }
                if (in_memory)
                        continue;
                if (o->n_acks > 0 && o->acks[o->n_acks - 1] > seqs[i])
                        o->acks_sorted = false;
                o->acks[o->n_acks++] = seqs[i];
                any = true;
        }
        if (any && !commits_failing(o) &&
            !(o->commit_timer && sd_event_source_get_enabled(o->commit_timer, NULL) > 0))
                return arm_timer(o, &o->commit_timer, o->opt.commit_delay_usec, on_commit_timer);
        return 0;
}

/* Deletes every other row among the oldest quarter of lane (at least one row). Returns the
 * number of rows deleted, or a negative errno. Runs inside the caller's transaction. */
static int thin(Outbox *o, Lane lane, uint64_t live)
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
                                "  WHERE lane=?1 ORDER BY seq LIMIT ?2) WHERE rn % 2 = 1)",
                                -1, &st, NULL);
        if (rc != SQLITE_OK) {
                set_error(o, "Failed to prepare thinning");
                return sqlite_rc_to_errno(rc);
        }
        sqlite3_bind_int(st, 1, lane);
        sqlite3_bind_int64(st, 2, (sqlite3_int64)limit);
        rc = sqlite3_step(st);
        if (rc == SQLITE_DONE)
                n = sqlite3_changes(o->db);
        sqlite3_finalize(st);
        if (rc != SQLITE_DONE) {
                set_error(o, "Failed to thin");
                return sqlite_rc_to_errno(rc);
        }
        return n;
}

/* Thins telemetry, then events, until the pages in use plus need stay below their limits. */
static int enforce_quota(Outbox *o, uint64_t count[_LANE_MAX], uint64_t need, uint64_t *thinned)
{
        uint64_t limit[_LANE_MAX], live;
        int r;

        page_limits(o, &limit[LANE_TELEMETRY], &limit[LANE_EVENTS]);
        for (Lane lane = LANE_TELEMETRY; lane > LANE_ALERTS; lane--)
                for (;;) {
                        if ((r = live_pages(o, &live)) < 0)
                                return r;
                        if (live + need <= limit[lane] || count[lane] == 0)
                                break;
                        r = thin(o, lane, count[lane]);
                        if (r < 0)
                                return r;
                        if (r == 0)
                                break;
                        count[lane] -= (uint64_t)r;
                        *thinned += (uint64_t)r;
                }
        return 0;
}

/* Near a full file system, refuses queued telemetry (and then events) before they take the room
 * that alerts need. Refused items are counted as dropped. */
static void refuse_for_room(Outbox *o)
{
        struct statvfs sv;
        uint64_t total, avail, t_res, e_res;
        unsigned refusing = 0;
        size_t n_refused = 0, j = 0;

        if (o->memory_reason || statvfs(o->dir, &sv) < 0)
                return; /* a store in memory does not take room on the disk */
        total = (uint64_t)sv.f_blocks * sv.f_frsize;
        avail = (uint64_t)sv.f_bavail * sv.f_frsize;
        t_res = total / 8 < FS_TELEMETRY_RESERVE ? total / 8 : FS_TELEMETRY_RESERVE;
        e_res = total / 32 < FS_EVENTS_RESERVE ? total / 32 : FS_EVENTS_RESERVE;
        if (avail < e_res)
                refusing = 2;
        else if (avail < t_res)
                refusing = 1;
        if (refusing != o->refusing) {
                if (refusing > o->refusing)
                        logf_(o, LOG_WARNING,
                              "Only %llu KiB free on %s: refusing %s so that %s still fit (counted as "
                              "dropped)",
                              (unsigned long long)(avail / 1024), o->dir,
                              refusing == 2 ? "telemetry and events" : "telemetry",
                              refusing == 2 ? "alerts" : "events and alerts");
                else
                        logf_(o, LOG_NOTICE, "%llu KiB free on %s again: %s accepted again",
                              (unsigned long long)(avail / 1024), o->dir,
                              refusing == 0 ? "everything" : "events");
                o->refusing = refusing;
        }
        if (refusing == 0)
                return;
        for (size_t i = 0; i < o->n_pending; i++) {
                Pending *p = &o->pending[i];
                if (p->lane == LANE_TELEMETRY || (refusing == 2 && p->lane == LANE_EVENTS)) {
                        o->pending_bytes -= p->len;
                        free(p->body);
                        n_refused++;
                } else
                        o->pending[j++] = *p;
        }
        o->n_pending = j;
        o->dropped += n_refused;
}

/* After a failed commit only alerts keep their seqs (they are sent from memory with them); the
 * other items were neither stored nor sent, so their seqs are handed out again at the next try.
 * This way the seqs a run may use beyond its on-disk reservation are those of alerts only, which
 * SEQ_FAIL_WINDOW covers for the next run. */
static void give_back_seqs(Outbox *o)
{
        uint64_t next = o->seq_floor;
        size_t keep = 0; /* items before this index keep their seqs */

        /* Items queued before an alert that keeps its seq keep theirs too: renumbering them above
         * it would leave their old seqs unused, a gap nobody counts. */
        for (size_t i = 0; i < o->n_pending; i++)
                if (o->pending[i].lane == LANE_ALERTS && o->pending[i].seq != 0)
                        keep = i + 1;
        for (size_t i = 0; i < o->n_pending; i++) {
                if (i >= keep && o->pending[i].lane != LANE_ALERTS)
                        o->pending[i].seq = 0;
                if (o->pending[i].seq + 1 > next)
                        next = o->pending[i].seq + 1;
        }
        if (o->last_seq + 1 > next)
                next = o->last_seq + 1;
        if (o->alert_seq_max + 1 > next)
                next = o->alert_seq_max + 1;
        o->next_seq = next;
        if (!o->window_warned && o->alert_seq_max > o->seq_reserved + SEQ_FAIL_WINDOW) {
                o->window_warned = true;
                logf_(o, LOG_ERR,
                      "More than %d seqs handed out while the store cannot be written: after a crash now, "
                      "the next "
                      "run may give seqs above %llu to other items again",
                      SEQ_FAIL_WINDOW, (unsigned long long)(o->seq_reserved + SEQ_FAIL_WINDOW));
        }
}

static void commit_failed(Outbox *o, int r)
{
        o->failed_commits++;
        if (o->failing_since == 0) {
                /* Once per episode; the recovery is said once too. */
                o->failing_since = (uint64_t)now_realtime();
                logf_(o, LOG_ERR,
                      "Failed to commit the outbox (%s): %s. %zu items held in memory, retrying%s",
                      strerror(-r), o->last_error ?: "unknown error", o->n_pending,
                      o->n_pending_alerts ? "; alerts are sent from memory meanwhile" : "");
        }
}

/* Hands out seqs, in queue order; they are kept if the commit fails: an alert that cannot be stored
 * is sent from memory with its seq, and no later item may get it. Returns the pages the pending
 * items need (estimated: pages are not full). */
static uint64_t assign_seqs(Outbox *o)
{
        uint64_t need = 0;

        for (size_t i = 0; i < o->n_pending; i++) {
                Pending *p = &o->pending[i];
                if (p->seq == 0)
                        p->seq = o->next_seq++;
                if (p->lane == LANE_ALERTS && p->seq > o->alert_seq_max)
                        o->alert_seq_max = p->seq;
                need += p->len + ROW_OVERHEAD;
        }
        return need * 5 / 4 / o->page_size + (need ? 1 : 0);
}

/* In the transaction: the acknowledged rows go, counted off count. */
static int delete_acked(Outbox *o, uint64_t count[static _LANE_MAX])
{
        for (size_t i = 0; i < o->n_acks; i++) {
                int rc;
                sqlite3_bind_int64(o->st_delete, 1, (sqlite3_int64)o->acks[i]);
                rc = sqlite3_step(o->st_delete);
                if (rc == SQLITE_ROW) {
                        int lane = sqlite3_column_int(o->st_delete, 0);
                        if (lane >= 0 && lane < _LANE_MAX)
                                count[lane]--;
                        rc = sqlite3_step(o->st_delete);
                }
                sqlite3_reset(o->st_delete);
                if (rc != SQLITE_DONE) {
                        set_error(o, "Failed to delete acknowledged item");
                        return sqlite_rc_to_errno(rc);
                }
        }
        return 0;
}

/* In the transaction: the pending items become rows, counted in count; *last_seq follows. */
static int insert_pending(Outbox *o, uint64_t count[static _LANE_MAX], uint64_t *last_seq)
{
        for (size_t i = 0; i < o->n_pending; i++) {
                Pending *p = &o->pending[i];
                int rc;
                sqlite3_bind_int64(o->st_insert, 1, (sqlite3_int64)p->seq);
                sqlite3_bind_int(o->st_insert, 2, p->lane);
                sqlite3_bind_text(o->st_insert, 3, p->body, (int)p->len, SQLITE_STATIC);
                rc = sqlite3_step(o->st_insert);
                sqlite3_reset(o->st_insert);
                if (rc != SQLITE_DONE) {
                        set_error(o, "Failed to store item");
                        return sqlite_rc_to_errno(rc);
                }
                *last_seq = p->seq > *last_seq ? p->seq : *last_seq;
                count[p->lane]++;
        }
        return 0;
}

/* In the transaction: the seq reservation (renewed when half used: *reserve), the dropped count, and
 * after thinning the pages freed where the file outgrew the quota (a smaller MaxSize, or a store made
 * before pages were counted) given back to the file system. */
static int write_meta(Outbox *o, uint64_t thinned, uint64_t *reserve)
{
        int r;

        if (o->next_seq - 1 + SEQ_RESERVE / 2 > *reserve) {
                *reserve = o->next_seq - 1 + SEQ_RESERVE;
                if ((r = set_meta(o, "seq_reserved", *reserve)) < 0)
                        return r;
        }
        if (o->dropped + thinned != o->dropped_saved &&
            (r = set_meta(o, "dropped", o->dropped + thinned)) < 0)
                return r;
        if (thinned > 0) {
                uint64_t pages, lim_t, lim_e;
                page_limits(o, &lim_t, &lim_e);
                if (query_u64(o, o->st_page_count, &pages) == 0 && pages > lim_e) {
                        char sql[64];
                        snprintf(sql, sizeof sql, "PRAGMA incremental_vacuum(%llu)",
                                 (unsigned long long)(pages - lim_e));
                        if ((r = exec(o, sql)) < 0)
                                return r;
                }
        }
        return 0;
}

/* Everything pending and acknowledged is on disk: memory follows what was committed. */
static void commit_done(Outbox *o, const uint64_t count[static _LANE_MAX], uint64_t thinned,
                        uint64_t last_seq, uint64_t reserve)
{
        memcpy(o->count, count, sizeof o->count);
        o->dropped += thinned;
        o->dropped_saved = o->dropped;
        o->last_seq = last_seq;
        o->seq_reserved = reserve;
        o->window_warned = false;
        o->memory_full = false;
        for (size_t i = 0; i < o->n_pending; i++)
                free(o->pending[i].body);
        o->n_pending = o->n_pending_alerts = 0;
        o->pending_bytes = 0;
        o->n_acks = 0;
        o->acks_sorted = true;
        backoff_reset(&o->retry);
        if (o->retry_timer)
                (void)sd_event_source_set_enabled(o->retry_timer, SD_EVENT_OFF);
        if (o->failing_since) {
                logf_(o, LOG_NOTICE, "The outbox commits again, after %.1f s of failures",
                      (double)((uint64_t)now_realtime() - o->failing_since) / 1e6);
                o->failing_since = 0;
                free(o->last_error);
                o->last_error = NULL;
        }
        /* The quota covers the WAL too: bring it back to nothing once it has grown past its share,
         * and after thinning, whose deletions fill it. */
        if (thinned > 0 || o->wal_frames * o->page_size > wal_budget(o) / 4) {
                (void)sqlite3_wal_checkpoint_v2(o->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
                o->wal_frames = 0;
        }
        /* Whatever was committed (new rows, deletions that free the sender): wake it. */
        if (o->committed_cb)
                o->committed_cb(o, o->committed_userdata);
}

/* The commit failed with r (rolled back): everything stays queued and is tried again later, backing
 * off from 0.1 s to 5 s (once per retry, not per failed attempt). A full disk often frees up (logs
 * rotated, a checkpoint); until then memory holds the items. */
static int commit_retry_later(Outbox *o, int r)
{
        commit_failed(o, r);
        give_back_seqs(o);
        if (!(o->retry_timer && sd_event_source_get_enabled(o->retry_timer, NULL) > 0))
                (void)arm_timer(o, &o->retry_timer, backoff_next_ceiling(&o->retry), on_retry_timer);
        if (r == -ENOSPC)
                (void)sqlite3_wal_checkpoint_v2(o->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
        /* An alert that could not be stored goes out from memory at once. */
        if (o->n_pending_alerts > 0 && o->committed_cb)
                o->committed_cb(o, o->committed_userdata);
        return r;
}

int outbox_commit(Outbox *o)
{
        uint64_t count[_LANE_MAX], thinned = 0, last_seq = o->last_seq, reserve = o->seq_reserved, need;
        int r;

        if (o->n_pending == 0 && o->n_acks == 0 && o->dropped == o->dropped_saved)
                return 0;
        if (o->commit_timer)
                (void)sd_event_source_set_enabled(o->commit_timer, SD_EVENT_OFF);
        refuse_for_room(o);
        need = assign_seqs(o);
        memcpy(count, o->count, sizeof count);

        r = exec(o, "BEGIN IMMEDIATE");
        if (r < 0)
                return commit_retry_later(o, r);
        r = delete_acked(o, count);
        /* Room first, then the new rows: the file never grows past the quota to hold them. */
        if (r >= 0)
                r = enforce_quota(o, count, need, &thinned);
        if (r >= 0)
                r = insert_pending(o, count, &last_seq);
        if (r >= 0)
                r = enforce_quota(o, count, 0, &thinned);
        if (r >= 0)
                r = write_meta(o, thinned, &reserve);
        if (r >= 0)
                r = exec(o, "COMMIT");
        if (r < 0) {
                (void)sqlite3_exec(o->db, "ROLLBACK", NULL, NULL, NULL);
                return commit_retry_later(o, r);
        }
        commit_done(o, count, thinned, last_seq, reserve);
        return 0;
}

static int item_set(OutboxItem *it, uint64_t seq, const char *body, size_t len)
{
        it->body = malloc(len + 1);
        if (!it->body)
                return -ENOMEM;
        memcpy(it->body, body ? body : "", len);
        it->body[len] = '\0';
        it->len = len;
        it->seq = seq;
        return 0;
}

int outbox_fetch(Outbox *o, Lane lane, uint64_t after, size_t max_items, size_t max_bytes, OutboxBatch *ret)
{
        OutboxBatch b = {};
        size_t bytes = 0;
        int rc = SQLITE_DONE, r = 0;

        if (max_items == 0)
                max_items = 1;
        /* Acknowledged rows whose deletion is not committed yet are skipped here: sending never
         * waits for a commit, which may be failing (disk full). */
        b.items = calloc(max_items, sizeof *b.items);
        if (!b.items)
                return -ENOMEM;
        sqlite3_bind_int(o->st_fetch, 1, lane);
        sqlite3_bind_int64(o->st_fetch, 2, (sqlite3_int64)after);
        while (b.n < max_items && (rc = sqlite3_step(o->st_fetch)) == SQLITE_ROW) {
                uint64_t seq = (uint64_t)sqlite3_column_int64(o->st_fetch, 0);
                const char *body = (const char *)sqlite3_column_text(o->st_fetch, 1);
                size_t len = (size_t)sqlite3_column_bytes(o->st_fetch, 1);

                if (is_acked(o, seq))
                        continue;
                if (b.n > 0 && bytes + len > max_bytes)
                        break;
                if ((r = item_set(&b.items[b.n], seq, body, len)) < 0)
                        break;
                bytes += len;
                b.n++;
        }
        if (r == 0 && rc != SQLITE_ROW && rc != SQLITE_DONE) {
                /* A dying disk: pages not in the cache cannot be read (I/O errors, or SQLite sees a
                 * malformed file). What was read is sent, and so are the alerts in memory below: an
                 * alarm never waits for the disk. Said once per episode. */
                if (!o->read_failing) {
                        o->read_failing = true;
                        logf_(o, LOG_ERR,
                              "Failed to read the outbox: %s. Stored items wait; alerts in memory are "
                              "still sent",
                              sqlite3_errmsg(o->db));
                }
        } else if (r == 0 && rc == SQLITE_DONE && o->read_failing) {
                o->read_failing = false;
                logf_(o, LOG_NOTICE, "The outbox can be read again");
        }
        sqlite3_reset(o->st_fetch);

        /* Alerts that could not be stored are sent from memory, merged in seq order. */
        for (size_t i = 0; r == 0 && lane == LANE_ALERTS && i < o->n_pending; i++) {
                const Pending *p = &o->pending[i];
                size_t at;

                if (p->lane != LANE_ALERTS || p->seq == 0 || p->seq <= after)
                        continue;
                for (at = b.n; at > 0 && b.items[at - 1].seq > p->seq; at--)
                        ;
                if (at >= max_items)
                        break;
                if (b.n == max_items) {
                        free(b.items[b.n - 1].body);
                        b.n--;
                }
                memmove(&b.items[at + 1], &b.items[at], (b.n - at) * sizeof *b.items);
                if ((r = item_set(&b.items[at], p->seq, p->body, p->len)) < 0) {
                        memmove(&b.items[at], &b.items[at + 1], (b.n - at) * sizeof *b.items);
                        break;
                }
                b.n++;
        }
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

uint64_t outbox_pending_alerts(const Outbox *o)
{
        return o->n_pending_alerts;
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

uint64_t outbox_last_alert_seq(const Outbox *o)
{
        return o->alert_seq_max;
}

const char *outbox_last_error(const Outbox *o)
{
        return o->failing_since ? o->last_error : NULL;
}

uint64_t outbox_failing_since(const Outbox *o)
{
        return o->failing_since;
}

uint64_t outbox_failed_commits(const Outbox *o)
{
        return o->failed_commits;
}

const char *outbox_refusing(const Outbox *o)
{
        return o->refusing == 2 ? "events" : o->refusing == 1 ? "telemetry" : NULL;
}

const char *outbox_replaced(const Outbox *o)
{
        return o->replaced;
}

const char *outbox_memory_reason(const Outbox *o)
{
        return o->memory_reason;
}

uint64_t outbox_skipped(const Outbox *o)
{
        return o->skipped;
}

bool outbox_skipped_at_open(const Outbox *o, uint64_t *ret_from, uint64_t *ret_to)
{
        if (o->skipped_from > o->skipped_to)
                return false;
        *ret_from = o->skipped_from;
        *ret_to = o->skipped_to;
        return true;
}
