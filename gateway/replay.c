#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "gateway/alerts.h"
#include "gateway/base.h"
#include "gateway/config.h"
#include "gateway/encode.h"
#include "gateway/json-writer.h"
#include "gateway/replay.h"
#include "gateway/rules.h"
#include "gateway/timefmt.h"

/* Units a log may give; the value is taken as it is in that unit. */
static const char *known_unit(const char *u)
{
        static const char *const units[] = {"/min", "s", "kJ", "mm[Hg]", "kPa", "Cel", "[degF]", "%", "kg", "[lb_av]",
                                            "kg/m2", "m", "[in_i]", "mg/dL", "mmol/L", "lx", "V", "W", "hPa", "[ppm]"};
        for (size_t i = 0; i < ELEMENTSOF(units); i++)
                if (streq(units[i], u))
                        return units[i];
        return NULL;
}

#define FAIL(...)                                                                                          \
        do {                                                                                               \
                snprintf(err, err_size, __VA_ARGS__);                                                      \
                json_decref(root);                                                                         \
                return -EINVAL;                                                                            \
        } while (0)

int replay_parse_line(const char *line, size_t len, ReplayLine *ret, char *err, size_t err_size)
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
        if (s && (!json_is_string(s) || json_string_length(s) == 0 || json_string_length(s) >= SENSOR_ID_MAX))
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

static void print_alert(void *userdata, const Alert *a, const char *json, size_t len)
{
        /* The same object the daemon publishes on the alerts topic (without its seq). */
        puts(json);
}

static void on_rules_alert(void *userdata, Alert *a)
{
        (void)alerts_emit(userdata, a);
}

int replay_tool(int argc, char *argv[])
{
        static const struct option options[] = {
                {"config", required_argument, NULL, 'c'},
                {"until", required_argument, NULL, 'u'},
                {"help", no_argument, NULL, 'h'},
                {},
        };
        const char *config_path = NULL, *until_arg = NULL, *log_path;
        _cleanup_free_ char *error = NULL, *line = NULL;
        Config *c = NULL;
        Rules *rules = NULL;
        Alerts *alerts = NULL;
        FILE *f;
        size_t cap = 0;
        unsigned lineno = 0, skipped = 0;
        int64_t until = 0;
        int ch;

        optind = 1;
        while ((ch = getopt_long(argc, argv, "c:h", options, NULL)) >= 0)
                switch (ch) {
                case 'c':
                        config_path = optarg;
                        break;
                case 'u':
                        until_arg = optarg;
                        break;
                case 'h':
                        printf("Usage: homecare-gw replay --config FILE [--until TIME] LOG.jsonl\n");
                        return 0;
                default:
                        return 2;
                }
        if (!config_path || optind != argc - 1) {
                fprintf(stderr, "Usage: homecare-gw replay --config FILE [--until TIME] LOG.jsonl\n");
                return 2;
        }
        log_path = argv[optind];
        if (until_arg && parse_rfc3339(until_arg, &until) < 0) {
                fprintf(stderr, "homecare-gw replay: --until '%s' is not an RFC 3339 time\n", until_arg);
                return 2;
        }
        if (config_load_mode(config_path, CONFIG_RULES_ONLY, &c, &error) < 0) {
                fprintf(stderr, "homecare-gw replay: %s\n", error ? error : "out of memory");
                return 2;
        }
        f = streq(log_path, "-") ? stdin : fopen(log_path, "re");
        if (!f) {
                fprintf(stderr, "homecare-gw replay: %s: %s\n", log_path, strerror(errno));
                config_free(c);
                return 2;
        }
        for (ssize_t n; (n = getline(&line, &cap, f)) >= 0;) {
                ReplayLine l;
                char err[256];

                lineno++;
                while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
                        line[--n] = '\0';
                if (n == 0)
                        continue;
                if (replay_parse_line(line, (size_t)n, &l, err, sizeof err) < 0) {
                        fprintf(stderr, "%s:%u: %s; skipped\n", log_path, lineno, err);
                        skipped++;
                        continue;
                }
                if (l.sensor[0] && !config_find_sensor(c, l.sensor) && !config_find_input(c, l.sensor)) {
                        fprintf(stderr, "%s:%u: unknown sensor '%s' (not in %s); skipped\n", log_path, lineno, l.sensor,
                                config_path);
                        skipped++;
                        continue;
                }
                /* Its own id source, in memory: ids of the same kind as the daemon's. */
                if (!alerts && alerts_new(&(AlertsOptions){.id_prefix = c->patient_id ?: "replay", .sink = print_alert},
                                          &alerts) < 0) {
                        fprintf(stderr, "homecare-gw replay: out of memory\n");
                        break;
                }
                if (!rules && rules_new(c, l.time_usec, on_rules_alert, alerts, &rules) < 0) {
                        fprintf(stderr, "homecare-gw replay: out of memory\n");
                        break;
                }
                /* Input at a time comes before the timers of that time: a dose taken at the last
                 * minute of its grace period counts. */
                rules_advance_before(rules, l.time_usec);
                switch (l.kind) {
                case REPLAY_READING: {
                        Reading rd = {.metric = l.metric, .value = l.value, .unit = l.unit, .time_usec = l.time_usec,
                                      .time_quality = TIME_SYNCED};
                        memcpy(rd.sensor, l.sensor, sizeof rd.sensor);
                        rules_reading(rules, &rd);
                        break;
                }
                case REPLAY_EVENT: {
                        Event e = {.kind = l.event, .value = l.event_value, .time_usec = l.time_usec};
                        memcpy(e.sensor, l.sensor, sizeof e.sensor);
                        rules_event(rules, &e);
                        break;
                }
                case REPLAY_NURSE_READING:
                        rules_nurse_reading(rules, l.metric, l.value, l.unit);
                        break;
                case REPLAY_NURSE_ACVPU:
                        (void)rules_nurse_consciousness(rules, l.acvpu);
                        break;
                }
        }
        if (rules && until)
                rules_advance(rules, until);
        if (f != stdin)
                fclose(f);
        if (skipped)
                fprintf(stderr, "homecare-gw replay: %u of %u lines skipped\n", skipped, lineno);
        rules_free(rules);
        alerts_free(alerts);
        config_free(c);
        fflush(stdout);
        return 0;
}
