/* Alerts: the one place that mints alert ids, logs alerts and hands them on (to the outbox in the
 * daemon, to stdout in replay). Every alert goes through alerts_emit(): the rules', the technician's
 * test alarm, the store's and the wired inputs'.
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

/* Where an alert goes once it has its id: json is the encoded alert (valid JSON, len bytes). */
typedef void (*alerts_sink_fn)(void *userdata, const Alert *a, const char *json, size_t len);

typedef struct AlertsOptions {
        const char *id_prefix; /* starts every id: the gateway id, or the patient id in replay */
        const char *path;      /* the state file; NULL: ids in memory only (replay, tests) */
        bool log;              /* log every alert at notice level (the daemon) */
        /* Lowest number to give, whatever the file says (0: none). The daemon passes the outbox's
         * next seq: every raise takes a seq, seqs are never reused while the store lives, so this
         * keeps ids unique when the file is lost (a full disk, corruption, deletion). */
        uint64_t id_floor;
        alerts_sink_fn sink;
        void *userdata;
} AlertsOptions;

/* Reads the state file if there is one (it is written at the first alert or save). Numbering goes on
 * from the file's reservation or id_floor, whichever is higher. A file that cannot be parsed is
 * logged and set aside as <path>.broken, and a missing one is said at notice level when id_floor > 1
 * (the store has been used, so the file was removed); numbering then goes on from id_floor. */
int alerts_new(const AlertsOptions *o, Alerts **ret);
Alerts *alerts_free(Alerts *a);

/* A raise gets a fresh id (written into a->id); a clear must carry its raise's id. The evidence must
 * be a JSON array: anything else, or more than ALERT_EVIDENCE_MAX bytes, is replaced by a small
 * array that says so (the alert itself is never dropped). Logs, encodes and hands the alert to the
 * sink. 0, or -ENOMEM. */
#define ALERT_EVIDENCE_MAX 16384
int alerts_emit(Alerts *al, Alert *a);

/* The rules' state loaded at start (borrowed; NULL if none). */
json_t *alerts_loaded_state(Alerts *al);
/* Stores state (takes a reference) and writes the file now. 0 or negative errno (logged). */
int alerts_save_state(Alerts *al, json_t *state);
/* How many ids were given so far in this process (status, tests). */
uint64_t alerts_minted(const Alerts *al);
