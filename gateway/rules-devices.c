/* The devices themselves: a sensor gone silent, a low battery, a wired input that stopped
 * working. See docs/rules.md, "Devices". */
#include <stdio.h>

#include "gateway/rules-evidence.h"
#include "gateway/rules-internal.h"

SensorState *devices_seen(Rules *r, const char *id, const json_t *evidence)
{
        SensorState *s = rules_find_sensor(r, id);
        if (!s)
                return NULL;
        s->last_seen = r->now;
        rules_clear(r, ALERT_KIND_SENSOR_SILENT, id, "heard from again", evidence);
        return s;
}

/* A battery level: under the limit raises, 10 points over it (a new battery) clears. */
void devices_battery_reading(Rules *r, const Reading *rd, const json_t *evidence)
{
        char msg[128];

        if (rd->value < r->battery_low) {
                snprintf(msg, sizeof msg, "%s battery at %g %%", rd->sensor, rd->value);
                rules_raise(r, ALERT_KIND_BATTERY_LOW, rd->sensor, SEVERITY_WARNING, msg, evidence);
        } else if (rd->value >= r->battery_low + 10)
                rules_clear(r, ALERT_KIND_BATTERY_LOW, rd->sensor, "battery replaced", evidence);
}

/* A sensor that says its battery is low (value 1), or no longer (0). */
void devices_battery_event(Rules *r, const Event *e, const json_t *evidence)
{
        char msg[128];

        if (e->value) {
                snprintf(msg, sizeof msg, "%s reports a low battery", e->sensor);
                rules_raise(r, ALERT_KIND_BATTERY_LOW, e->sensor, SEVERITY_WARNING, msg, evidence);
        } else
                rules_clear(r, ALERT_KIND_BATTERY_LOW, e->sensor, "battery replaced", evidence);
}

/* A wired input that stopped working (its line gone, held by another program): for a dead alarm
 * line the home may have no way to call for help, so that is critical; other inputs watch less
 * urgent things (a door, the bed), which then go unwatched: a warning. */
void devices_input_failed(Rules *r, const Event *e, const json_t *evidence)
{
        SensorState *s = rules_find_sensor(r, e->sensor);
        char msg[160];

        if (e->value) {
                bool alarm = !s || s->role == ROLE_ALARM_BUTTON; /* unknown: assume the worst */
                snprintf(msg, sizeof msg, "input %s does not work%s", e->sensor,
                         alarm ? ": the alarm button cannot raise an alarm" : "");
                rules_raise(r, ALERT_KIND_INPUT_FAILED, e->sensor,
                            alarm ? SEVERITY_CRITICAL : SEVERITY_WARNING, msg, evidence);
        } else
                rules_clear(r, ALERT_KIND_INPUT_FAILED, e->sensor, "the input works again", evidence);
}

int64_t devices_next_deadline(Rules *r)
{
        int64_t d = INT64_MAX;
        for (size_t i = 0; i < r->n_sensors; i++)
                if (r->sensors[i].expected &&
                    !rules_find_open(r, ALERT_KIND_SENSOR_SILENT, r->sensors[i].id))
                        d = earliest(d, r->sensors[i].last_seen + r->sensors[i].expected);
        return d;
}

void devices_fire(Rules *r)
{
        char msg[160];

        for (size_t i = 0; i < r->n_sensors; i++) {
                SensorState *s = &r->sensors[i];
                if (!s->expected || s->last_seen + s->expected > r->now)
                        continue;
                snprintf(msg, sizeof msg, "%s silent for %lld minutes", s->id,
                         (long long)((r->now - s->last_seen) / MIN));
                json_auto_t *ev = evidence_since(s->id, "last_seen", s->last_seen, r->now);
                rules_raise(r, ALERT_KIND_SENSOR_SILENT, s->id, SEVERITY_WARNING, msg, ev);
        }
}
