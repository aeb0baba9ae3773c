/* Helpers for the unit tests that drive the gateway's modules at exact times from a configuration
 * given as text (test-rules.c, test-clock.c, test-status.c, test-commands.c). Header-only. */
#pragma once

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/timefmt.h"
#include "gateway/config.h"
#include "gateway/rules.h"

/* An RFC 3339 time as usec; a test with a malformed time is wrong, so it stops. */
static inline int64_t T(const char *s)
{
        int64_t t;
        if (parse_rfc3339(s, &t) < 0)
                abort();
        return t;
}

/* text parsed as a configuration file in mode; the caller frees it (config_free()). NULL, with the
 * reason on stderr, if it does not parse. */
static inline Config *test_config_from_text(const char *text, ConfigMode mode)
{
        FILE *f = fmemopen((void *)text, strlen(text), "r");
        Config *c = NULL;
        char *err = NULL;

        if (!f)
                abort();
        if (config_parse_mode(f, "test.conf", mode, &c, &err) < 0)
                fprintf(stderr, "test.conf: %s\n", err ? err : "does not parse");
        free(err);
        fclose(f);
        return c;
}

/* Input at t, as the daemon gives it: deadlines before t fire first. */
static inline void test_rules_event(Rules *r, int64_t t, const char *sensor, EventKind k, int v)
{
        Event e = {.kind = k, .value = v, .time_usec = t};
        snprintf(e.sensor, sizeof e.sensor, "%s", sensor);
        rules_advance_before(r, t);
        rules_event(r, &e);
}

static inline void test_rules_reading(Rules *r, int64_t t, const char *sensor, Metric m, double v,
                                      const char *unit)
{
        Reading rd = {.metric = m, .value = v, .unit = unit, .time_usec = t};
        snprintf(rd.sensor, sizeof rd.sensor, "%s", sensor);
        rules_advance_before(r, t);
        rules_reading(r, &rd);
}
