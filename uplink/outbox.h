/* The outbox: a durable queue of items in SQLite (WAL), one row per item, deleted only when the
 * broker has acknowledged the MQTT message that carried it.
 *
 * Items are opaque bytes to the outbox (gateway/ encodes them). The outbox hands out one
 * per-gateway sequence number itself, in queue order, when an item is first committed (so seq
 * order is commit order), and never hands out the same seq twice, even across a crash. Three
 * lanes: alerts are committed at once, events and telemetry are group-committed within a bounded
 * delay. When the store exceeds its quota, the oldest telemetry is thinned first, then events;
 * alerts never. Near a full disk, telemetry and then events are refused, so alerts still fit. An
 * alert that cannot be stored is offered to the sender from memory until it is acknowledged.
 * Items lost in any of these ways are counted in outbox_dropped(). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <systemd/sd-event.h>

typedef enum Lane {
        LANE_ALERTS, /* highest priority, committed and sent at once */
        LANE_EVENTS,
        LANE_TELEMETRY, /* lowest priority, thinned first when the store is full */
        _LANE_MAX,
} Lane;

/* "alerts", "events", "telemetry": a static string; NULL out of range. */
const char *lane_name(Lane lane);

typedef struct OutboxOptions {
        uint64_t max_size;          /* quota in bytes of the database and WAL files together */
        uint64_t commit_delay_usec; /* group-commit bound for events and telemetry */
        size_t max_pending;         /* items held in memory before a commit is forced */
} OutboxOptions;

typedef struct OutboxItem {
        uint64_t seq;
        char *body; /* NUL-terminated, owned by the OutboxBatch */
        size_t len;
} OutboxItem;

typedef struct OutboxBatch {
        OutboxItem *items;
        size_t n;
} OutboxBatch;

typedef struct Outbox Outbox;

/* Called when there may be something new to send: after every successful commit (one that only
 * deleted acknowledged rows too), and when an alert could not be stored and waits in memory. */
typedef void (*outbox_committed_fn)(Outbox *o, void *userdata);
/* The outbox's own log lines (a failed commit, once per episode, and its recovery). */
typedef void (*outbox_log_fn)(void *userdata, int priority, const char *message);

/* Opens (creating if needed) the store at path. The event loop is used for the group-commit timer.
 * A file that is not a database or is corrupt (SQLITE_NOTADB, SQLITE_CORRUPT, a failed
 * quick_check) is moved aside with its -wal and -shm (see outbox_replaced()) and a new store with a
 * new epoch is made; any other failure (permissions, a missing directory) is an error.
 * On failure *reterr_error (if non-NULL) gets a malloc'd message (the caller frees it). The caller
 * owns *ret and frees it with outbox_free(). */
int outbox_open(sd_event *e, const char *path, const OutboxOptions *opt, Outbox **ret, char **reterr_error);
/* Commits what is pending, closes the database. Takes NULL. Returns NULL. Items that cannot be
 * stored even then are counted in dropped (written if the disk takes it) and logged. */
Outbox *outbox_free(Outbox *o);

void outbox_set_committed_callback(Outbox *o, outbox_committed_fn fn, void *userdata);
void outbox_set_log_callback(Outbox *o, outbox_log_fn fn, void *userdata);
void outbox_set_options(Outbox *o, const OutboxOptions *opt);

/* Queues a copy of body (borrowed for the call) for lane. An alert commits at once (with everything queued
 * before it); other lanes commit when the delay passes or max_pending is reached. Returns 0, or a negative
 * errno if the item could not be kept even in memory (it is counted as dropped): -ENOBUFS when
 * commits have failed so long that memory holds all it may (logged once per episode here). A failed commit
 * keeps the items queued and is retried; see outbox_last_error(). */
int outbox_add(Outbox *o, Lane lane, const char *body, size_t len);
/* Queues body and commits everything queued at once. Returns 0 when this item is on disk, with its
 * seq in *ret_seq (if non-NULL); -ENOSPC when it was refused for lack of room, -ENOBUFS for lack of
 * memory while commits fail (both counted as dropped);
 * or the failed commit's error, and the item stays queued in memory (retried, and for an alert
 * offered to the sender) with *ret_seq set all the same. */
int outbox_add_sync(Outbox *o, Lane lane, const char *body, size_t len, uint64_t *ret_seq);
/* Commits everything queued now. Returns 0 or the commit's error (the items stay queued). */
int outbox_commit(Outbox *o);

/* Items of lane with seq > after, oldest first, at most max_items and (after the first) max_bytes
 * of bodies: committed rows, and for LANE_ALERTS also alerts that wait in memory because they could
 * not be stored. Acknowledged items are never returned. Only reads: never waits for a commit. When
 * the file cannot be read (a dying disk) it returns what it could read and the alerts in memory,
 * and logs the failure once per episode; it fails only for lack of memory. */
int outbox_fetch(Outbox *o, Lane lane, uint64_t after, size_t max_items, size_t max_bytes, OutboxBatch *ret);
/* Frees what outbox_fetch() put in b (the caller's once fetched; the bodies are copies). */
void outbox_batch_done(OutboxBatch *b);

/* The broker acknowledged these items (seqs borrowed for the call): stored rows are deleted in the next
 * commit; an alert that waits in memory is forgotten (it needs no storing any more). */
int outbox_ack(Outbox *o, const uint64_t *seqs, size_t n);

uint64_t outbox_backlog(const Outbox *o, Lane lane); /* committed, not yet acknowledged */
uint64_t outbox_backlog_total(const Outbox *o);
uint64_t outbox_pending(const Outbox *o);        /* queued in memory, not yet committed */
uint64_t outbox_pending_alerts(const Outbox *o); /* ... of which alerts (offered to the sender) */
uint64_t outbox_dropped(const Outbox *o);        /* thinned, refused or lost, since the store was made */
uint64_t outbox_epoch(const Outbox *o);          /* random id of this store: seq restarts with it */
uint64_t outbox_last_seq(const Outbox *o);       /* highest seq ever committed */
/* The highest seq handed to an alert, stored or waiting in memory: right after outbox_add() of an alert,
 * that alert's seq (an alert commits at once, and gets its seq even when the commit fails). */
uint64_t outbox_last_alert_seq(const Outbox *o);
/* The strings below are the outbox's: outbox_last_error() valid until the next commit, outbox_refusing()
 * static, the others until outbox_free(). */
const char *outbox_last_error(const Outbox *o); /* the current commit failure, or NULL */
/* After an unclean stop, the seqs the last run had reserved and no stored item carries: true with
 * the range [*ret_from, *ret_to]. Items the last run sent from memory (alerts it could not store)
 * may carry some of them; no stored item does, so the gap they leave is no loss. */
bool outbox_skipped_at_open(const Outbox *o, uint64_t *ret_from, uint64_t *ret_to);
/* Seqs skipped at the opens after unclean stops, since the store was made (the ranges of every
 * seq_skipped item, including those thinned later): a gap in seq is loss only beyond
 * outbox_dropped() + outbox_skipped(). */
uint64_t outbox_skipped(const Outbox *o);
uint64_t outbox_failing_since(const Outbox *o);  /* CLOCK_REALTIME µs of the first failed commit, or 0 */
uint64_t outbox_failed_commits(const Outbox *o); /* failed commits since the process started */
const char *outbox_refusing(const Outbox *o);    /* "telemetry", "events" (and telemetry) or NULL */
const char *outbox_replaced(const Outbox *o);    /* where a corrupt store was moved at open, or NULL */
/* Why the file could not be opened (a full, failing or read-only disk, or a store made by a newer
 * homecare-gw, which is left untouched), or NULL: then outbox_open()
 * made the store in memory, so that the gateway runs; it lasts until the process ends. */
const char *outbox_memory_reason(const Outbox *o);
