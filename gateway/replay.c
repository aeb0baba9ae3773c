#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/log.h"
#include "common/macro.h"
#include "common/timefmt.h"
#include "gateway/replay.h"

/* Units a log may give; the value is taken as it is in that unit. */
static const char *known_unit(const char *u)
{
        static const char *const units[] = {"/min",   "s",  "kJ",      "mm[Hg]", "kPa", "Cel",    "[degF]",
                                            "%",      "kg", "[lb_av]", "kg/m2",  "m",   "[in_i]", "mg/dL",
                                            "mmol/L", "lx", "V",       "W",      "hPa", "[ppm]"};
        for (size_t i = 0; i < ELEMENTSOF(units); i++)
                if (streq(units[i], u))
                        return units[i];
        return NULL;
}

#define FAIL(...)                                                                                           \
        do {                                                                                                \
                snprintf(reterr_error, reterr_size, __VA_ARGS__);                                           \
                json_decref(root);                                                                          \
                return -EINVAL;                                                                             \
        } while (0)

int replay_parse_line(const char *line, size_t len, ReplayLine *ret, char *reterr_error, size_t reterr_size)
{
        json_error_t jerr;
        json_t *root = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr), *t, *v, *u, *s, *n, *m, *ev;
        ReplayLine l = {};

        if (!root)
                FAIL("not valid JSON: %s", jerr.text);
        if (!json_is_object(root))
                FAIL("not a JSON object");
        t = json_object_get(root, "time");
        if (!json_is_string(t) || parse_rfc3339(json_string_value(t), &l.time_usec) < 0)
                FAIL("\"time\" must be an RFC 3339 time, e.g. 2026-03-02T07:31:00Z");
        s = json_object_get(root, "sensor");
        n = json_object_get(root, "nurse");
        m = json_object_get(root, "metric");
        ev = json_object_get(root, "event");
        v = json_object_get(root, "value");
        u = json_object_get(root, "unit");
        if ((s != NULL) == (n != NULL))
                FAIL("a line names either a \"sensor\" or a \"nurse\" entry");
        if (s &&
            (!json_is_string(s) || json_string_length(s) == 0 || json_string_length(s) >= SENSOR_ID_MAX))
                FAIL("\"sensor\" must be a sensor id");
        if (n && !json_is_string(n))
                FAIL("\"nurse\" must be a string");
        if ((m != NULL) == (ev != NULL))
                FAIL("a line has either a \"metric\" or an \"event\"");
        if (s)
                snprintf(l.sensor, sizeof l.sensor, "%s", json_string_value(s));
        if (ev) {
                if (n)
                        FAIL("a nurse entry has a \"metric\", not an \"event\"");
                if (!json_is_string(ev) || event_kind_from_name(json_string_value(ev), &l.event) < 0)
                        FAIL("unknown event '%s'", json_is_string(ev) ? json_string_value(ev) : "?");
                if (v && !json_is_integer(v) && !json_is_boolean(v))
                        FAIL("an event's \"value\" must be a whole number");
                l.event_value = !v ? 1 : json_is_boolean(v) ? json_is_true(v) : (int)json_integer_value(v);
                l.kind = REPLAY_EVENT;
        } else {
                if (!json_is_string(m))
                        FAIL("\"metric\" must be a string");
                if (n && streq(json_string_value(m), "consciousness")) {
                        const char *a = json_is_string(v) ? json_string_value(v) : "";
                        if (strlen(a) != 1 || !strchr("ACVPU", a[0]))
                                FAIL("consciousness is one of \"A\", \"C\", \"V\", \"P\", \"U\" (ACVPU)");
                        l.acvpu = a[0];
                        l.kind = REPLAY_NURSE_ACVPU;
                } else {
                        if (metric_from_name(json_string_value(m), &l.metric) < 0)
                                FAIL("unknown metric '%s'", json_string_value(m));
                        if (!json_is_number(v))
                                FAIL("\"value\" must be a number");
                        l.value = json_number_value(v);
                        if (u && (!json_is_string(u) || !(l.unit = known_unit(json_string_value(u)))))
                                FAIL("unknown unit '%s'", json_is_string(u) ? json_string_value(u) : "?");
                        if (!l.unit)
                                l.unit = metric_default_unit(l.metric);
                        l.kind = n ? REPLAY_NURSE_READING : REPLAY_READING;
                }
        }
        json_decref(root);
        *ret = l;
        return 0;
}
