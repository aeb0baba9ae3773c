/* The rules: readings, events and time in; alert raises and clears out. Pure code: no I/O, no
 * clock reads (time is passed in), so replay runs the same engine on a log's own clock.
 *
 * Time-driven rules (inactivity, night exit, bed exit, missed dose, silent sensors) expose their
 * next deadline: the daemon arms one timer at rules_next_deadline(); replay advances to each log
 * line's time with rules_advance(). See docs/rules.md.
 *
 * What the engine must not forget (open alerts, pending deadlines, what it learned) survives a
 * reload (rules_reconfigure() swaps only the settings) and, through rules_export()/rules_import(),
 * a restart: the owner writes the export whenever rules_state_generation() says it changed.
 *
 * The code: the engine in rules.c, the rules in rules-*.c beside it; rules-internal.h says which
 * file holds what. */
#pragma once

#include <stdint.h>

#include <jansson.h>

#include "gateway/alert.h"
#include "gateway/config.h"
#include "sensors/reading.h"

typedef struct Rules Rules;
/* Called for every raise and clear. On a raise a->id is empty and the callee must mint one into it
 * (gateway/alerts.c): the engine keeps it and clears the alert later with that same id. a and the
 * strings it points to (kind, message, evidence, patient) are the engine's, valid for the call only:
 * copy what must outlive it. a->kind is one of alert-kind.h's names. */
typedef void (*rules_alert_fn)(void *userdata, Alert *a);

/* Copies what it needs from c (borrowed for the call). start_usec: the engine's clock. The caller
 * owns *ret and frees it with rules_free(). fn is called from inside rules_advance(), rules_reading(),
 * rules_event(), rules_nurse_*(), rules_reconfigure() and rules_clear_all(), never later. */
int rules_new(const Config *c, int64_t start_usec, rules_alert_fn fn, void *userdata, Rules **ret);
Rules *rules_free(Rules *r);

/* A new configuration (SIGHUP): the settings change; open alerts, pending deadlines and what was
 * learned stay. Alerts that can no longer clear (a sensor removed, a personal limit removed) are
 * cleared now. */
int rules_reconfigure(Rules *r, const Config *c);

/* Clears every open alert (why: the message), e.g. before an engine is replaced by a fresh one. */
void rules_clear_all(Rules *r, const char *why);

/* Adds a sensor the configuration does not list (the simulated home's). expected_min: silence limit,
 * 0 = not watched. -EEXIST if known. Such sensors are kept over rules_reconfigure(). id and role are
 * copied. */
int rules_add_sensor(Rules *r, const char *id, const char *role, unsigned expected_min, bool is_input);

/* Fires every deadline up to now, in order, then sets the clock to now (never backwards). */
void rules_advance(Rules *r, int64_t now);
/* The same, but deadlines at exactly now wait: input at a time comes before that time's timers
 * (a dose taken in the last minute of its grace period counts). Then the clock is now. */
void rules_advance_before(Rules *r, int64_t now);
/* The next time something may fire without new input; INT64_MAX if nothing is pending. */
int64_t rules_next_deadline(Rules *r);

/* Input at the engine's clock (call rules_advance() first). The sensor id names the source. rd, e
 * and unit are borrowed for the call. */
void rules_reading(Rules *r, const Reading *rd);
void rules_event(Rules *r, const Event *e);
/* A nurse's observation (respiration rate, or anything else measured by hand). */
void rules_nurse_reading(Rules *r, Metric m, double value, const char *unit);
/* ACVPU from a nurse: 'A', 'C', 'V', 'P' or 'U'. Returns -EINVAL for anything else. */
int rules_nurse_consciousness(Rules *r, char acvpu);

/* For tests and status: the inactivity limit (minutes) the engine uses for a local hour now. */
unsigned rules_inactivity_limit_min(Rules *r, int hour);
/* Open alerts now. */
size_t rules_open_count(const Rules *r);

/* ---- durable state ---- */

typedef enum RulesChange {
        RULES_CHANGED_ALERTS,    /* an alert raised or cleared: write at once */
        RULES_CHANGED_DEADLINES, /* a deadline armed, moved or cancelled (a dose due, a door at night) */
        RULES_CHANGED_LEARNED,   /* baselines, quiet spells, last activity: cheap to lose a few minutes of */
        _RULES_CHANGED_MAX,
} RulesChange;

/* Grows whenever that part of the state changes; the owner compares it with what it last wrote. */
uint64_t rules_state_generation(Rules *r, RulesChange what);

/* The state as a JSON object (versioned). The caller owns the reference (json_decref()). NULL on
 * ENOMEM. */
json_t *rules_export(Rules *r);
/* Takes over open alerts, pending deadlines and what was learned from an export, into an engine
 * just made by rules_new() with the current configuration. Deadlines that passed meanwhile fire at
 * the next rules_advance(), at its time (late, but raised). Entries that name unknown kinds are
 * skipped. -EINVAL if j is not an export of a version this code reads. j is borrowed for the call. */
int rules_import(Rules *r, const json_t *j);

/* The wall clock was stepped by delta_usec (new minus old; NTP setting a clock that booted in the
 * past, a technician's `date -s`): the daemon calls this after advancing the engine on the old clock
 * to the moment of the step, then advances to the new now. Durations that were running (inactivity,
 * out of bed, night exit, grace periods, sensor silence, the alarm period) keep their elapsed time;
 * the schedule (doses, night window) is taken up again from the new now, without firing the times a
 * step forward jumped over. See docs/rules.md, "Clock steps". Not for daylight saving time, which
 * moves no clock: the rules read the schedule in local time. */
void rules_clock_step(Rules *r, int64_t delta_usec);
