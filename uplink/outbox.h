/* The outbox: a durable queue of items in SQLite (WAL), one row per item, deleted only when the
 * broker has acknowledged the MQTT message that carried it.
 *
 * Items are opaque bytes to the outbox (gateway/ encodes them). Each gets the next value of one
 * per-gateway sequence number, in commit order. Three lanes: alerts are committed at once, events
 * and telemetry are group-committed within a bounded delay. When the store exceeds its quota, the
 * oldest telemetry is thinned first, then events; alerts never. Dropped items are counted. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <systemd/sd-event.h>

typedef enum Lane {
        LANE_ALERTS,    /* highest priority, committed and sent at once */
        LANE_EVENTS,
        LANE_TELEMETRY, /* lowest priority, thinned first when the store is full */
        _LANE_MAX,
} Lane;

const char *lane_name(Lane lane);

typedef struct OutboxOptions {
        uint64_t max_size;          /* quota in bytes of live database pages */
        uint64_t commit_delay_usec; /* group-commit bound for events and telemetry */
        size_t max_pending;         /* items held in memory before a commit is forced */
} OutboxOptions;

typedef struct OutboxItem {
        uint64_t seq;
        char *body;    /* NUL-terminated, owned by the OutboxBatch */
        size_t len;
} OutboxItem;

typedef struct OutboxBatch {
        OutboxItem *items;
        size_t n;
} OutboxBatch;

typedef struct Outbox Outbox;

/* Called after each successful commit that added items, so a sender can pick them up. */
typedef void (*outbox_committed_fn)(Outbox *o, void *userdata);

/* Opens (creating if needed) the store at path. The event loop is used for the group-commit timer.
 * On failure *ret_error (if non-NULL) gets a malloc'd message from SQLite. */
int outbox_open(sd_event *e, const char *path, const OutboxOptions *opt, Outbox **ret, char **ret_error);
/* Commits what is pending, closes the database. Takes NULL. Returns NULL. */
Outbox *outbox_free(Outbox *o);

void outbox_set_committed_callback(Outbox *o, outbox_committed_fn fn, void *userdata);
void outbox_set_options(Outbox *o, const OutboxOptions *opt);

/* Queues a copy of body for lane. An alert commits at once (with everything queued before it);
 * other lanes commit when the delay passes or max_pending is reached. Returns 0, or a negative
 * errno if the item could not be kept even in memory. A failed commit keeps the items queued and
 * is retried; see outbox_last_error(). */
int outbox_add(Outbox *o, Lane lane, const char *body, size_t len);
/* Commits everything queued now. */
int outbox_commit(Outbox *o);

/* Committed items of lane with seq > after, oldest first, at most max_items and (after the first)
 * max_bytes of bodies. Items whose acknowledgement is pending are not returned. */
int outbox_fetch(Outbox *o, Lane lane, uint64_t after, size_t max_items, size_t max_bytes, OutboxBatch *ret);
void outbox_batch_done(OutboxBatch *b);

/* The broker acknowledged these items: they are deleted in the next commit. */
int outbox_ack(Outbox *o, const uint64_t *seqs, size_t n);

uint64_t outbox_backlog(const Outbox *o, Lane lane); /* committed, not yet acknowledged */
uint64_t outbox_backlog_total(const Outbox *o);
uint64_t outbox_pending(const Outbox *o);            /* queued in memory, not yet committed */
uint64_t outbox_dropped(const Outbox *o);            /* thinned or lost, since the store was made */
uint64_t outbox_epoch(const Outbox *o);              /* random id of this store: seq restarts with it */
uint64_t outbox_last_seq(const Outbox *o);           /* highest seq ever committed */
const char *outbox_last_error(const Outbox *o);      /* last commit failure, or NULL */
