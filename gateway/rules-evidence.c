#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/macro.h"
#include "common/timefmt.h"
#include "gateway/rules-evidence.h"

#define MIN (60LL * 1000000)

json_t *evidence_number(double v)
{
        if (!isfinite(v))
                return json_null();
        /* Below 1e15 a whole double is exactly an integer; written as one, 72 stays "72", not "72.0". */
        if (fabs(v) < 1e15 && v == (double)(int64_t)v)
                return json_integer((json_int_t)v);
        return json_real(v);
}

json_t *evidence_item(const char *sensor, const char *what, const char *name, const double *value,
                      const char *unit, int64_t t)
{
        char buf[RFC3339_MAX];

        /* "s*" and "o*" leave a NULL out; json_pack builds all of it or nothing. */
        return json_pack("{s:s*, s:s, s:o*, s:s*, s:s}", "sensor", sensor && sensor[0] ? sensor : NULL, what,
                         name, "value", value ? evidence_number(*value) : NULL, "unit", unit, "time",
                         format_rfc3339(buf, t));
}

int evidence_add(json_t *item, const char *key, json_t *value)
{
        return json_object_set_new(item, key, value) < 0 ? -ENOMEM : 0;
}

json_t *evidence_of(json_t *item)
{
        return item ? json_pack("[o]", item) : NULL;
}

json_t *evidence_reading(const Reading *rd)
{
        return evidence_of(evidence_item(rd->sensor, "metric", metric_name(rd->metric),
                                         rd->absent ? NULL : &rd->value, rd->unit, rd->time_usec));
}

json_t *evidence_event(const Event *e)
{
        double value = e->value;
        return evidence_of(
            evidence_item(e->sensor, "event", event_kind_name(e->kind), &value, NULL, e->time_usec));
}

json_t *evidence_since(const char *sensor, const char *key, int64_t since, int64_t now)
{
        char buf[RFC3339_MAX];
        return evidence_of(json_pack("{s:s*, s:s, s:I}", "sensor", sensor, key, format_rfc3339(buf, since),
                                     "minutes", (json_int_t)((now - since) / MIN)));
}

/* The significant digits v needs to read back as itself: 15 if they do, else 17 (which always do). */
static int real_digits(double v)
{
        char b[32];
        snprintf(b, sizeof b, "%.15g", v);
        return strtod(b, NULL) == v ? 15 : 17;
}

/* The most digits any real number in j needs; 0 if it holds none. */
static int max_real_digits(const json_t *j)
{
        const char *key;
        json_t *v;
        size_t i;
        int d = 0;

        if (json_is_real(j))
                return real_digits(json_real_value(j));
        if (json_is_array(j))
                json_array_foreach(j, i, v)
                {
                        int e = max_real_digits(v);
                        d = e > d ? e : d;
                }
        else if (json_is_object(j))
                json_object_foreach((json_t *)j, key, v)
                {
                        int e = max_real_digits(v);
                        d = e > d ? e : d;
                }
        return d;
}

char *evidence_format(const json_t *evidence)
{
        int digits;

        if (!evidence)
                return strdup("[]");
        /* jansson writes every real with one precision per document; the largest any of them needs
         * keeps each exact (a 17-digit one makes its neighbours longer, never wrong). */
        digits = max_real_digits(evidence);
        return json_dumps(evidence, JSON_COMPACT | JSON_REAL_PRECISION(digits ?: 17));
}
