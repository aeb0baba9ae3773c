/* The rules engine: the settings and sensors it was given, the open alerts (raised and cleared
 * here, and only here), the deadline and the advance of its clock, the dispatch of every reading and
 * event to the rule families, and clock steps. The rules themselves are in rules-*.c; see
 * rules-internal.h for which file holds what. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc-util.h"
#include "common/log.h"
#include "common/macro.h"
#include "gateway/rules-evidence.h"
#include "gateway/rules-internal.h"

/* ---- open alerts ---- */

void rules_changed(Rules *r, RulesChange what)
{
        r->gen[what]++;
}

Open *rules_find_open(Rules *r, AlertKind kind, const char *key)
{
        for (size_t i = 0; i < r->n_open; i++)
                if (r->open[i].kind == kind && streq(r->open[i].key, key))
                        return &r->open[i];
        return NULL;
}

/* Hands one raise or clear to the owner. The evidence becomes text here, only for an alert that goes
 * out; the Alert and its strings live for the call only. */
static void emit(Rules *r, const Open *o, AlertState state, const char *message, const json_t *evidence,
                 char *ret_id, size_t id_size)
{
        _cleanup_free_ char *text = evidence_format(evidence);
        Alert a = {.kind = alert_kind_name(o->kind),
                   .severity = o->severity,
                   .state = state,
                   .patient = r->patient[0] ? r->patient : NULL,
                   .time_usec = r->now,
                   .message = message,
                   .evidence = text ?: "[]"};
        if (state == ALERT_CLEARED)
                snprintf(a.id, sizeof a.id, "%s", o->id);
        if (r->fn)
                r->fn(r->userdata, &a);
        if (ret_id)
                snprintf(ret_id, id_size, "%s", a.id);
}

/* Remembers an open alert; the table grows (never overwrites). */
int rules_open_append(Rules *r, const Open *o)
{
        if (GREEDY_REALLOC(r->open, r->cap_open, r->n_open + 1, 16) < 0)
                return -ENOMEM;
        r->open[r->n_open++] = *o;
        return 0;
}

bool rules_raise(Rules *r, AlertKind kind, const char *key, AlertSeverity sev, const char *message,
                 const json_t *evidence)
{
        Open o = {.kind = kind, .severity = sev, .raised = r->now};

        if (rules_find_open(r, kind, key))
                return false;
        snprintf(o.key, sizeof o.key, "%s", key);
        /* The raise goes out first, then it is remembered: a crash in between may raise it twice
         * after a restart, but can never hold an alert open that nobody was told about. */
        emit(r, &o, ALERT_RAISED, message, evidence, o.id, sizeof o.id);
        if (rules_open_append(r, &o) < 0)
                return true; /* out of memory: raised, but it cannot be cleared */
        rules_changed(r, RULES_CHANGED_ALERTS);
        return true;
}

static void drop_open(Rules *r, Open *o)
{
        size_t i = (size_t)(o - r->open);
        memmove(r->open + i, r->open + i + 1, (r->n_open - i - 1) * sizeof *r->open);
        r->n_open--;
        rules_changed(r, RULES_CHANGED_ALERTS);
}

void rules_clear_open(Rules *r, Open *o, const char *message, const json_t *evidence)
{
        Open copy = *o;
        drop_open(r, o);
        emit(r, &copy, ALERT_CLEARED, message, evidence, NULL, 0);
}

bool rules_clear(Rules *r, AlertKind kind, const char *key, const char *message, const json_t *evidence)
{
        Open *o = rules_find_open(r, kind, key);
        if (!o)
                return false;
        rules_clear_open(r, o, message, evidence);
        return true;
}

void rules_clear_all(Rules *r, const char *why)
{
        while (r->n_open > 0)
                rules_clear_open(r, &r->open[0], why, NULL);
}

size_t rules_open_count(const Rules *r)
{
        return r->n_open;
}

/* ---- set-up ---- */

static Role role_of(const char *role)
{
        if (!role)
                return ROLE_ROOM;
        if (streq(role, "exit-door"))
                return ROLE_EXIT_DOOR;
        if (streq(role, "bed"))
                return ROLE_BED;
        if (streq(role, "dispenser"))
                return ROLE_DISPENSER;
        if (streq(role, "alarm-button"))
                return ROLE_ALARM_BUTTON;
        return ROLE_ROOM;
}

SensorState *rules_find_sensor(Rules *r, const char *id)
{
        for (size_t i = 0; i < r->n_sensors; i++)
                if (streq(r->sensors[i].id, id))
                        return &r->sensors[i];
        return NULL;
}

static SensorState *sensor_append(Rules *r, const char *id)
{
        SensorState *s;
        if (GREEDY_REALLOC(r->sensors, r->cap_sensors, r->n_sensors + 1, 32) < 0)
                return NULL;
        s = &r->sensors[r->n_sensors++];
        *s = (SensorState){.last_seen = r->now};
        snprintf(s->id, sizeof s->id, "%s", id);
        return s;
}

/* The settings, copied from the configuration: everything that is not state. */
static void apply_settings(Rules *r, const Config *c)
{
        r->patient[0] = '\0';
        if (c->patient_id)
                snprintf(r->patient, sizeof r->patient, "%s", c->patient_id);
        r->spo2_scale = c->spo2_scale;
        r->oxygen = c->oxygen;
        r->night_start = c->night_start_min;
        r->night_end = c->night_end_min;
        memcpy(r->schedule, c->schedule_min, sizeof r->schedule);
        r->n_schedule = c->n_schedule;
        r->grace = c->grace_min * MIN;
        r->night_exit = c->night_exit_min * MIN;
        r->bed_exit = c->bed_exit_min * MIN;
        r->news2_window = c->news2_window_min * MIN;
        r->inact_floor = c->inactivity_floor_min * MIN;
        r->inact_ceiling = c->inactivity_ceiling_min * MIN;
        r->inact_default = c->inactivity_default_min * MIN;
        r->alarm_clear = c->alarm_clear_min * MIN;
        r->weight_gain_kg = c->weight_gain_kg;
        r->weight_gain_days = c->weight_gain_days;
        r->baseline_min_days = c->baseline_min_days;
        r->battery_low = c->battery_low_percent;
        vitals_settings(r, c);
        memset(r->threshold, 0, sizeof r->threshold);
        for (size_t i = 0; i < c->n_thresholds; i++) {
                Metric m;
                if (metric_from_name(c->thresholds[i].id, &m) < 0)
                        continue;
                r->threshold[m].set = true;
                r->threshold[m].has_low = c->thresholds[i].has_low;
                r->threshold[m].has_high = c->thresholds[i].has_high;
                r->threshold[m].low = c->thresholds[i].low;
                r->threshold[m].high = c->thresholds[i].high;
        }
}

/* The configured sensors and inputs; one already known keeps when it was last heard from. */
static int apply_sensors(Rules *r, const Config *c, const SensorState *old, size_t n_old)
{
        for (size_t i = 0; i < c->n_sensors + c->n_inputs; i++) {
                bool input = i >= c->n_sensors;
                const char *id = input ? c->inputs[i - c->n_sensors].id : c->sensors[i].id;
                const char *role = input ? c->inputs[i - c->n_sensors].role : c->sensors[i].role;
                SensorState *s;

                if (rules_find_sensor(r, id))
                        continue;
                s = sensor_append(r, id);
                if (!s)
                        return -ENOMEM;
                /* Only Role=alarm-button makes a button an alarm: a doorbell is a button too. */
                s->role = role_of(role);
                s->is_input = input;
                s->expected = input ? 0 : (int64_t)c->sensors[i].expected_interval_min * MIN;
                for (size_t j = 0; j < n_old; j++)
                        if (streq(old[j].id, id))
                                s->last_seen = old[j].last_seen;
        }
        return 0;
}

int rules_new(const Config *c, int64_t start, rules_alert_fn fn, void *userdata, Rules **ret)
{
        Rules *r = calloc(1, sizeof *r);
        if (!r)
                return -ENOMEM;
        r->fn = fn;
        r->userdata = userdata;
        r->now = start;
        vitals_init(r);
        apply_settings(r, c);
        if (apply_sensors(r, c, NULL, 0) < 0) {
                rules_free(r);
                return -ENOMEM;
        }
        r->last_activity = start;
        r->learn_day = local_day_start(r, start);
        r->next_schedule = medication_next_scheduled(r, start);
        *ret = r;
        return 0;
}

/* Why an open alert can no longer clear under the settings just applied (its sensor or its personal
 * limit was removed), or NULL if it still can. */
static const char *cannot_clear(Rules *r, const Open *o)
{
        Metric m;

        switch (o->kind) {
        case ALERT_KIND_SENSOR_SILENT:
        case ALERT_KIND_BATTERY_LOW:
        case ALERT_KIND_INPUT_FAILED:
                return rules_find_sensor(r, o->key) ? NULL : "no longer configured";
        case ALERT_KIND_THRESHOLD:
                return metric_from_name(o->key, &m) >= 0 && !r->threshold[m].set
                           ? "the personal limit was removed"
                           : NULL;
        case ALERT_KIND_NEWS2_SINGLE_PARAMETER:
        case ALERT_KIND_NEWS2_AGGREGATE:
        case ALERT_KIND_BASELINE_DEVIATION:
        case ALERT_KIND_WEIGHT_GAIN:
        case ALERT_KIND_INACTIVITY:
        case ALERT_KIND_NIGHT_EXIT:
        case ALERT_KIND_BED_EXIT_NO_RETURN:
        case ALERT_KIND_MISSED_DOSE:
        case ALERT_KIND_DISPENSER_FAULT:
        case ALERT_KIND_ALARM_BUTTON:
        case ALERT_KIND_TEST_ALARM:
        case ALERT_KIND_STORE_REPLACED:
        case ALERT_KIND_STORE_UNAVAILABLE:
        case _ALERT_KIND_MAX:
                break;
        }
        return NULL;
}

int rules_reconfigure(Rules *r, const Config *c)
{
        SensorState *old = r->sensors;
        size_t n_old = r->n_sensors;
        int schedule[ELEMENTSOF(r->schedule)];
        size_t n_schedule = r->n_schedule;

        memcpy(schedule, r->schedule, sizeof schedule);
        r->sensors = NULL;
        r->n_sensors = r->cap_sensors = 0;
        apply_settings(r, c);
        if (apply_sensors(r, c, old, n_old) < 0)
                goto oom;
        for (size_t j = 0; j < n_old; j++)
                if (old[j].added && !rules_find_sensor(r, old[j].id)) {
                        SensorState *s = sensor_append(r, old[j].id);
                        if (!s)
                                goto oom;
                        *s = old[j];
                }
        free(old);
        if (n_schedule != r->n_schedule ||
            memcmp(schedule, r->schedule, n_schedule * sizeof schedule[0]) != 0)
                r->next_schedule = medication_next_scheduled(r, r->now);
        /* An alert about something that is gone from the configuration would stay open for ever. */
        for (size_t i = 0; i < r->n_open;) {
                const char *why = cannot_clear(r, &r->open[i]);
                if (why)
                        rules_clear_open(r, &r->open[i], why, NULL);
                else
                        i++;
        }
        return 0;
oom:
        /* Keep running with the old sensors rather than none. */
        free(r->sensors);
        r->sensors = old;
        r->n_sensors = r->cap_sensors = n_old;
        return -ENOMEM;
}

int rules_add_sensor(Rules *r, const char *id, const char *role, unsigned expected_min, bool is_input)
{
        SensorState *s;
        if (rules_find_sensor(r, id))
                return -EEXIST;
        s = sensor_append(r, id);
        if (!s)
                return -ENOMEM;
        s->role = role_of(role);
        s->expected = (int64_t)expected_min * MIN;
        s->is_input = is_input;
        s->added = true;
        return 0;
}

Rules *rules_free(Rules *r)
{
        if (!r)
                return NULL;
        free(r->sensors);
        free(r->open);
        free(r);
        return NULL;
}

/* ---- deadlines ---- */

int64_t rules_next_deadline(Rules *r)
{
        int64_t d = activity_next_deadline(r);
        d = earliest(d, medication_next_deadline(r));
        d = earliest(d, devices_next_deadline(r));
        d = earliest(d, alarm_next_deadline(r));
        return d;
}

/* Everything due at r->now, family by family; the order is the order of alerts at one instant. */
static void fire_due(Rules *r)
{
        activity_fire(r);
        medication_fire(r);
        devices_fire(r);
        alarm_fire(r);
}

static void advance(Rules *r, int64_t now, bool inclusive)
{
        /* Every deadline that fires changes the state that made it (raised, consumed, moved on), so
         * this terminates; the bound is a safety net against a rule that would not. */
        for (int guard = 0; guard < 1000000; guard++) {
                int64_t d = rules_next_deadline(r);
                if (inclusive ? d > now : d >= now)
                        break;
                if (d > r->now)
                        r->now = d;
                fire_due(r);
                if (rules_next_deadline(r) == d && d == r->now)
                        break;
        }
        if (now > r->now)
                r->now = now;
}

void rules_advance(Rules *r, int64_t now)
{
        advance(r, now, true);
}

void rules_advance_before(Rules *r, int64_t now)
{
        advance(r, now, false);
}

/* ---- input: to the families ---- */

void rules_reading(Rules *r, const Reading *rd)
{
        json_auto_t *evidence = evidence_reading(rd);
        SensorState *s = devices_seen(r, rd->sensor, evidence);

        rules_changed(r, RULES_CHANGED_LEARNED);
        if (rd->absent)
                return;
        if (rd->metric == METRIC_BATTERY) {
                devices_battery_reading(r, rd, evidence);
                return;
        }
        /* A doubtful measurement (invalid, from a demonstration) is kept and sent, not judged. */
        if (rd->flags & (READING_INVALID | READING_DEMO_OR_TEST))
                return;
        switch (rd->metric) {
        case METRIC_TEMPERATURE:
        case METRIC_HUMIDITY:
        case METRIC_ILLUMINANCE:
        case METRIC_PRESSURE:
        case METRIC_CO2:
        case METRIC_VOLTAGE:
        case METRIC_POWER:
                return; /* the room, not the person */
        default:
                break;
        }
        /* Measuring oneself is activity, and proof of being at home. */
        if (!s || s->role != ROLE_EXIT_DOOR)
                activity_seen(r, true, evidence);
        vitals_measured(r, rd->metric, rd->value, rd->unit, rd, evidence);
}

void rules_nurse_reading(Rules *r, Metric m, double value, const char *unit)
{
        rules_changed(r, RULES_CHANGED_LEARNED);
        vitals_measured(r, m, value, unit, NULL, NULL);
}

int rules_nurse_consciousness(Rules *r, char acvpu)
{
        if (news2_consciousness(acvpu) < 0)
                return -EINVAL;
        rules_changed(r, RULES_CHANGED_LEARNED);
        return vitals_consciousness(r, acvpu);
}

void rules_event(Rules *r, const Event *e)
{
        json_auto_t *evidence = evidence_event(e);
        SensorState *s;
        Role role;

        rules_changed(r, RULES_CHANGED_LEARNED);
        if (e->kind == EVENT_INPUT_FAILED) {
                devices_input_failed(r, e, evidence);
                return; /* the input's health, not something it sensed */
        }
        s = devices_seen(r, e->sensor, evidence);
        role = s ? s->role : ROLE_ROOM;
        switch (e->kind) {
        case EVENT_MOTION:
        case EVENT_OCCUPANCY:
        case EVENT_PRESENCE:
        case EVENT_MOVING:
                if (e->value)
                        activity_seen(r, role != ROLE_EXIT_DOOR, evidence);
                break;
        case EVENT_DOOR:
        case EVENT_OPENING:
        case EVENT_WINDOW:
                activity_door(r, e, role, evidence);
                break;
        case EVENT_BED:
                activity_bed(r, e, evidence);
                break;
        case EVENT_BUTTON:
                if (!e->value)
                        break;
                /* Only a button the technician named the alarm button raises the alarm; a doorbell
                 * or a light switch is somebody at home doing something. */
                if (role == ROLE_ALARM_BUTTON)
                        alarm_pressed(r, e, evidence);
                activity_seen(r, true, evidence);
                break;
        case EVENT_DOSE_DUE:
                medication_dispenser_due(r);
                break;
        case EVENT_DOSE_TAKEN:
                activity_seen(r, true, evidence);
                medication_taken(r, evidence);
                break;
        case EVENT_DOSE_MISSED:
                medication_dispenser_missed(r, evidence);
                break;
        case EVENT_DISPENSER_EMPTY:
        case EVENT_DISPENSER_REFILL:
                medication_dispenser_empty(r, e->kind == EVENT_DISPENSER_EMPTY, evidence);
                break;
        case EVENT_DISPENSER_FAULT:
                medication_dispenser_fault(r, e->value, evidence);
                break;
        case EVENT_BATTERY_LOW:
                devices_battery_event(r, e, evidence);
                break;
        case EVENT_TAMPER:
        case EVENT_VIBRATION:
        case EVENT_GENERIC:
        case EVENT_SMOKE:
        case EVENT_CARBON_MONOXIDE:
        case EVENT_WATER_LEAK:
        case EVENT_PROBLEM:
        case EVENT_POWER:
        case EVENT_DIMMER:
        case EVENT_INPUT_FAILED: /* handled above */
        case _EVENT_KIND_MAX:
                break;
        }
}

/* ---- clock steps ---- */

void rules_clock_step(Rules *r, int64_t delta)
{
        int64_t old_now = r->now;

        if (delta == 0)
                return;
        r->now += delta;
        /* What happened, happened that long ago: every remembered time moves with the clock, so each
         * elapsed duration (quiet spell, time out of bed, door, silence, grace, alarm, NEWS2 window,
         * baseline age) is what it was. 0 means "none" for the optional ones. */
        r->last_activity += delta;
        if (r->bed_since)
                r->bed_since += delta;
        if (r->door_at)
                r->door_at += delta;
        if (r->bed_exit_at)
                r->bed_exit_at += delta;
        if (r->left_bed_at)
                r->left_bed_at += delta;
        if (r->company_at)
                r->company_at += delta;
        for (size_t i = 0; i < ELEMENTSOF(r->rise); i++)
                if (r->rise[i].day)
                        r->rise[i].day = local_day_start(r, r->rise[i].day + delta);
        for (size_t i = 0; i < r->n_sensors; i++)
                r->sensors[i].last_seen += delta;
        for (size_t i = 0; i < r->n_open; i++)
                r->open[i].raised += delta;
        for (News2Param p = 0; p < _NEWS2_MAX; p++)
                if (r->param[p].have)
                        r->param[p].time += delta;
        for (Metric m = 0; m < _METRIC_MAX; m++) {
                if (r->baseline[m].n > 0)
                        r->baseline[m].first += delta;
                if (r->baseline[m].sess_at)
                        r->baseline[m].sess_at += delta;
        }
        if (r->weight_trend.n > 0)
                r->weight_trend.first = local_day_start(r, r->weight_trend.first + delta);
        for (size_t i = 0; i < r->n_weights; i++)
                r->weights[i].day = local_day_start(r, r->weights[i].day + delta);
        r->learn_day = local_day_start(r, r->learn_day + delta);
        /* A due keeps its grace period; its key (the instant it came, also its open alert's key) is
         * renamed to the corrected instant, so that a dose the new clock schedules never shares it. */
        for (size_t i = 0; i < r->n_dues; i++) {
                Due *d = &r->dues[i];
                Open *o = rules_find_open(r, ALERT_KIND_MISSED_DOSE, d->key);
                d->at += delta;
                snprintf(d->key, sizeof d->key, "%lld", (long long)(d->at / 1000000));
                if (o)
                        snprintf(o->key, sizeof o->key, "%s", d->key);
        }
        /* The schedule is the wall clock's: from the new now. Times a forward step jumped over are not
         * due (nobody was watching the clock pass them). After a step back of less than an hour (a
         * clock that ran fast), the times the old clock had passed were due already, an hour early
         * at most, which is how early a dose may be taken: they are not due again. After a longer
         * step back they are new doses in real time and come again. */
        if (delta < 0 && -delta < HOUR)
                r->next_schedule = medication_next_scheduled(r, old_now > r->now ? old_now : r->now);
        else
                r->next_schedule = medication_next_scheduled(r, r->now);
        /* The remembered times moved: the durable copy must follow. */
        rules_changed(r, RULES_CHANGED_ALERTS);
        rules_changed(r, RULES_CHANGED_LEARNED);
        rules_note_pending(r);
}
