/* Alerts: the one place that mints alert ids, logs alerts and hands them on (to the outbox in the
 * daemon, to stdout in replay). Every alert goes through alerts_emit(): the rules' (through
 * alerts_rules_sink(), wired inputs' failures included), the technician's test alarm and the stores'
 * (the alerts_raise_*() below, which build them here rather than in their callers).
 *
 * Ids are "<prefix>-<unix seconds>-<n>", n from one counter for the life of the state directory:
 * the daemon keeps the counter in StateDirectory/alerts.json and reserves numbers in blocks before
 * using them, so an id is never given twice, across SIGHUP, restarts and kill -9 (a crash leaves a
 * gap, never a repeat). The same file holds the rules' durable state (open alerts, pending
 * deadlines, what they learned), written atomically (.new, fsync, rename) by alerts_save_state(),
 * so that a restart resumes them. replay uses an in-memory source with the same id format. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "gateway/alert.h"

typedef struct Alerts Alerts;

/* Where an alert goes once it has its id: json is the encoded alert (valid JSON, len bytes). a and
 * json are borrowed for the call only; the sink copies what it keeps. */
typedef void (*alerts_sink_fn)(void *userdata, const Alert *a, const char *json, size_t len);

typedef struct AlertsOptions {
        const char *id_prefix; /* starts every id: the gateway id, or the patient id in replay (copied) */
        const char *path;      /* the state file (copied); NULL: ids in memory only (replay, tests) */
        bool log;              /* log every alert at notice level (the daemon) */
        /* Lowest number to give, whatever the file says (0: none). The daemon passes the outbox's
         * next seq: every raise takes a seq, seqs are never reused while the store lives, so this
         * keeps ids unique when the file is lost (a full disk, corruption, deletion). */
        uint64_t id_floor;
        alerts_sink_fn sink; /* NULL: minted and logged, not handed on (tests) */
        void *userdata;
} AlertsOptions;

/* Reads the state file if there is one (it is written at the first alert or save). Numbering goes on
 * from the file's reservation or id_floor, whichever is higher. A file that cannot be parsed is
 * logged and set aside as <path>.broken, and a missing one is said at notice level when id_floor > 1
 * (the store has been used, so the file was removed); numbering then goes on from id_floor. */
int alerts_new(const AlertsOptions *o, Alerts **ret);
/* Takes NULL; returns NULL. The caller of alerts_new() owns *ret and frees it here. */
Alerts *alerts_free(Alerts *a);

/* A raise gets a fresh id (written into a->id); a clear must carry its raise's id. The evidence must
 * be a JSON array: anything else, or more than ALERT_EVIDENCE_MAX bytes, is replaced by a small
 * array that says so (the alert itself is never dropped). Logs, encodes and hands the alert to the
 * sink. 0, or -ENOMEM. */
#define ALERT_EVIDENCE_MAX 16384
int alerts_emit(Alerts *al, Alert *a);

/* The rules engine's alert callback (a rules_alert_fn for rules_new()); userdata is the Alerts. A
 * raise gets its id here, which the engine keeps for the clear. */
void alerts_rules_sink(void *userdata, Alert *a);

/* A store (outbox.db, sensors.db: the path in `store`) was corrupt, was moved to `moved` and
 * replaced by an empty one: what it held is not sent and, for sensors.db, replay protection starts
 * again. Logged (error) and raised (store_replaced, critical) at now_usec. The strings are borrowed
 * for the call. 0, or -ENOMEM. */
int alerts_raise_store_replaced(Alerts *al, const char *patient, const char *store, const char *moved,
                                int64_t now_usec);
/* The outbox could not be opened on its disk (why: full, failing, read-only) and runs in memory:
 * the alarm path works, but what is not acknowledged at the next stop is lost. Logged (error) and
 * raised (store_unavailable, critical). The strings are borrowed for the call. 0, or -ENOMEM. */
int alerts_raise_store_unavailable(Alerts *al, const char *patient, const char *store, const char *why,
                                   int64_t now_usec);
/* The technician's "send test alarm" (test_alarm, critical), with their message or a default one
 * when message is NULL or empty. The minted id is copied into ret_id (ALERT_ID_MAX bytes, the
 * caller's), also when the alert could then not be encoded. 0, or -ENOMEM. */
int alerts_raise_test_alarm(Alerts *al, const char *message, int64_t now_usec, char *ret_id);

/* The rules' state loaded at start, or as last saved (borrowed: valid until the next
 * alerts_save_state() or alerts_free(); NULL if none). */
json_t *alerts_loaded_state(Alerts *al);
/* Stores state (takes a reference) and writes the file now. 0 or negative errno (logged). */
int alerts_save_state(Alerts *al, json_t *state);
/* How many ids were given so far in this process (status, tests). */
uint64_t alerts_minted(const Alerts *al);
