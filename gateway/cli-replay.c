#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/macro.h"
#include "common/timefmt.h"
#include "gateway/alerts.h"
#include "gateway/cli-replay.h"
#include "gateway/config.h"
#include "gateway/replay.h"
#include "gateway/rules.h"

static void print_alert(void *userdata, const Alert *a, const char *json, size_t len)
{
        /* The same object the daemon publishes on the alerts topic (without its seq). */
        puts(json);
}

#define USAGE "Usage: homecare-gw replay --config FILE [--until TIME] LOG.jsonl\n"

/* The command line: 0 and the paths and --until (0: none), 1 after --help (printed), or -EINVAL
 * (said on stderr). */
static int parse_arguments(int argc, char *argv[], const char **ret_config, const char **ret_log,
                           int64_t *ret_until)
{
        static const struct option options[] = {
            {"config", required_argument, NULL, 'c'},
            {"until", required_argument, NULL, 'u'},
            {"help", no_argument, NULL, 'h'},
            {},
        };
        const char *config_path = NULL, *until_arg = NULL;
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
                        printf(USAGE);
                        return 1;
                default:
                        return -EINVAL;
                }
        if (!config_path || optind != argc - 1) {
                fprintf(stderr, USAGE);
                return -EINVAL;
        }
        if (until_arg && parse_rfc3339(until_arg, &until) < 0) {
                fprintf(stderr, "homecare-gw replay: --until '%s' is not an RFC 3339 time\n", until_arg);
                return -EINVAL;
        }
        *ret_config = config_path;
        *ret_log = argv[optind];
        *ret_until = until;
        return 0;
}

/* One line's input to the rules, at its time. Input at a time comes before the timers of that time:
 * a dose taken at the last minute of its grace period counts. */
static void feed(Rules *rules, const ReplayLine *l)
{
        rules_advance_before(rules, l->time_usec);
        switch (l->kind) {
        case REPLAY_READING: {
                Reading rd = {.metric = l->metric,
                              .value = l->value,
                              .unit = l->unit,
                              .time_usec = l->time_usec,
                              .time_quality = TIME_SYNCED};
                memcpy(rd.sensor, l->sensor, sizeof rd.sensor);
                rules_reading(rules, &rd);
                break;
        }
        case REPLAY_EVENT: {
                Event e = {.kind = l->event, .value = l->event_value, .time_usec = l->time_usec};
                memcpy(e.sensor, l->sensor, sizeof e.sensor);
                rules_event(rules, &e);
                break;
        }
        case REPLAY_NURSE_READING:
                rules_nurse_reading(rules, l->metric, l->value, l->unit);
                break;
        case REPLAY_NURSE_ACVPU:
                (void)rules_nurse_consciousness(rules, l->acvpu);
                break;
        }
}

int cli_replay(int argc, char *argv[])
{
        const char *config_path, *log_path;
        _cleanup_free_ char *error = NULL, *line = NULL;
        Config *c = NULL;
        Rules *rules = NULL;
        Alerts *alerts = NULL;
        FILE *f;
        size_t cap = 0;
        unsigned lineno = 0, skipped = 0;
        int64_t until;
        int r;

        r = parse_arguments(argc, argv, &config_path, &log_path, &until);
        if (r != 0)
                return r > 0 ? 0 : 2;
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
                        fprintf(stderr, "%s:%u: unknown sensor '%s' (not in %s); skipped\n", log_path,
                                lineno, l.sensor, config_path);
                        skipped++;
                        continue;
                }
                /* Its own id source, in memory: ids of the same kind as the daemon's. */
                if (!alerts &&
                    alerts_new(&(AlertsOptions){.id_prefix = c->patient_id ?: "replay", .sink = print_alert},
                               &alerts) < 0) {
                        fprintf(stderr, "homecare-gw replay: out of memory\n");
                        break;
                }
                if (!rules && rules_new(c, l.time_usec, alerts_rules_sink, alerts, &rules) < 0) {
                        fprintf(stderr, "homecare-gw replay: out of memory\n");
                        break;
                }
                feed(rules, &l);
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
