/* The rules: readings, events and time in; alert raises and clears out. Pure code: no I/O, no
 * clock reads (time is passed in), so replay runs the same engine on a log's own clock.
 *
 * Time-driven rules (inactivity, night exit, bed exit, missed dose, silent sensors) expose their
 * next deadline: the daemon arms one timer at rules_next_deadline(); replay advances to each log
 * line's time with rules_advance(). See docs/rules.md. */
#pragma once

#include <stdint.h>

#include "gateway/alert.h"
#include "gateway/config.h"
#include "sensors/reading.h"

typedef struct Rules Rules;
typedef void (*rules_alert_fn)(void *userdata, const Alert *a);

/* Copies what it needs from c. id_prefix starts every alert id. start_usec: the engine's clock. */
int rules_new(const Config *c, const char *id_prefix, int64_t start_usec, rules_alert_fn fn, void *userdata,
              Rules **ret);
Rules *rules_free(Rules *r);

/* Adds a sensor the configuration does not list (the simulated home's). expected_min: silence limit,
 * 0 = not watched. -EEXIST if known. */
int rules_add_sensor(Rules *r, const char *id, const char *role, unsigned expected_min, bool is_input);

/* Fires every deadline up to now, in order, then sets the clock to now (never backwards). */
void rules_advance(Rules *r, int64_t now);
/* The same, but deadlines at exactly now wait: input at a time comes before that time's timers
 * (a dose taken in the last minute of its grace period counts). Then the clock is now. */
void rules_advance_before(Rules *r, int64_t now);
/* The next time something may fire without new input; INT64_MAX if nothing is pending. */
int64_t rules_next_deadline(Rules *r);

/* Input at the engine's clock (call rules_advance() first). The sensor id names the source. */
void rules_reading(Rules *r, const Reading *rd);
void rules_event(Rules *r, const Event *e);
/* A nurse's observation (respiration rate, or anything else measured by hand). */
void rules_nurse_reading(Rules *r, Metric m, double value, const char *unit);
/* ACVPU from a nurse: 'A', 'C', 'V', 'P' or 'U'. Returns -EINVAL for anything else. */
int rules_nurse_consciousness(Rules *r, char acvpu);

/* For tests and status: the inactivity limit (minutes) the engine uses for a local hour now. */
unsigned rules_inactivity_limit_min(Rules *r, int hour);

/* The wall clock was stepped by delta_usec (new minus old; NTP setting a clock that booted in the
 * past, a technician's `date -s`): the daemon calls this after advancing the engine on the old clock
 * to the moment of the step, then advances to the new now. Durations that were running (inactivity,
 * out of bed, night exit, grace periods, sensor silence, the alarm period) keep their elapsed time;
 * the schedule (doses, night window) is taken up again from the new now, without firing the times a
 * step forward jumped over. See docs/rules.md, "Clock steps". Not for daylight saving time, which
 * moves no clock: the rules read the schedule in local time. */
void rules_clock_step(Rules *r, int64_t delta_usec);
