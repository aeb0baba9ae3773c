#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "common/log.h"
#include "common/macro.h"
#include "gateway/command.h"
#include "sensors/reading.h"

static const char *const names[_COMMAND_KIND_MAX] = {
    [COMMAND_TEST_ALARM] = "test-alarm",
    [COMMAND_STATUS] = "status",
    [COMMAND_OBSERVATION] = "observation",
};

const char *command_name(CommandKind k)
{
        return k < _COMMAND_KIND_MAX ? names[k] : NULL;
}

/* What a nurse may report, in the metric's usual unit (metric_default_unit()): wide enough never to
 * refuse a real but extreme value, narrow enough to refuse a typo, a wrong unit or a sign slip
 * before it is stored and scored as NEWS2 (spo2 -5 would score 3). The error is a static string, so
 * each names its metric and range. */
#define RANGE(m, name, lo, hi, unit)                                                                        \
        [m] = {lo, hi, "observation: " name " must be from " #lo " to " #hi " " unit}
static const struct {
        double low, high;
        const char *error;
} ranges[_METRIC_MAX] = {
    RANGE(METRIC_HEART_RATE, "heart_rate", 20, 300, "/min"),
    RANGE(METRIC_RR_INTERVAL, "rr_interval", 0.1, 10, "s"),
    RANGE(METRIC_ENERGY_EXPENDED, "energy_expended", 0, 65535, "kJ"),
    RANGE(METRIC_SYSTOLIC, "systolic", 40, 300, "mm[Hg]"),
    RANGE(METRIC_DIASTOLIC, "diastolic", 20, 200, "mm[Hg]"),
    RANGE(METRIC_MEAN_ARTERIAL_PRESSURE, "mean_arterial_pressure", 20, 250, "mm[Hg]"),
    RANGE(METRIC_PULSE_RATE, "pulse_rate", 20, 300, "/min"),
    RANGE(METRIC_BODY_TEMPERATURE, "body_temperature", 25, 45, "Cel"),
    RANGE(METRIC_SPO2, "spo2", 50, 100, "%"),
    RANGE(METRIC_PERFUSION_INDEX, "perfusion_index", 0, 100, "%"),
    RANGE(METRIC_BODY_WEIGHT, "body_weight", 1, 650, "kg"),
    RANGE(METRIC_BMI, "bmi", 5, 250, "kg/m2"),
    RANGE(METRIC_BODY_HEIGHT, "body_height", 0.2, 2.8, "m"),
    RANGE(METRIC_GLUCOSE, "glucose", 1, 3000, "mg/dL"),
    RANGE(METRIC_RESPIRATORY_RATE, "respiratory_rate", 1, 80, "/min"),
    RANGE(METRIC_TEMPERATURE, "temperature", -60, 70, "Cel"),
    RANGE(METRIC_HUMIDITY, "humidity", 0, 100, "%"),
    RANGE(METRIC_BATTERY, "battery", 0, 100, "%"),
    RANGE(METRIC_ILLUMINANCE, "illuminance", 0, 200000, "lx"),
    RANGE(METRIC_PULSE_RATE_FAST, "pulse_rate_fast", 20, 300, "/min"),
    RANGE(METRIC_SPO2_FAST, "spo2_fast", 50, 100, "%"),
    RANGE(METRIC_PULSE_RATE_SLOW, "pulse_rate_slow", 20, 300, "/min"),
    RANGE(METRIC_SPO2_SLOW, "spo2_slow", 50, 100, "%"),
    RANGE(METRIC_VOLTAGE, "voltage", 0, 1000, "V"),
    RANGE(METRIC_POWER, "power", 0, 100000, "W"),
    RANGE(METRIC_PRESSURE, "pressure", 300, 1100, "hPa"),
    RANGE(METRIC_CO2, "co2", 0, 100000, "[ppm]"),
};
#undef RANGE

/* NaN and Infinity are not JSON, so the parser calls them a syntax error; a bare word outside the
 * strings other than true, false and null can only be an attempt at one. */
static bool has_non_finite_word(const char *p, size_t len)
{
        bool in_string = false;
        for (size_t i = 0; i < len; i++) {
                size_t n = 0;
                if (in_string) {
                        if (p[i] == '\\')
                                i++;
                        else if (p[i] == '"')
                                in_string = false;
                        continue;
                }
                if (p[i] == '"') {
                        in_string = true;
                        continue;
                }
                while (i + n < len && isalpha((unsigned char)p[i + n]))
                        n++;
                if ((n == 3 && (strncasecmp(p + i, "nan", 3) == 0 || strncasecmp(p + i, "inf", 3) == 0)) ||
                    (n == 8 && strncasecmp(p + i, "infinity", 8) == 0))
                        return true;
                if (n > 0)
                        i += n - 1;
        }
        return false;
}

static int copy_string(json_t *obj, const char *key, char *dst, size_t size, const char **reterr_error)
{
        json_t *v = json_object_get(obj, key);
        if (!v)
                return 0;
        if (!json_is_string(v)) {
                *reterr_error = "a field that must be a string is not";
                return -EBADMSG;
        }
        if (json_string_length(v) >= size || strlen(json_string_value(v)) != json_string_length(v)) {
                *reterr_error = "a string field is too long or contains a NUL";
                return -EBADMSG;
        }
        memcpy(dst, json_string_value(v), json_string_length(v) + 1);
        return 0;
}

int command_parse(const char *name, const void *payload, size_t len, Command *ret, const char **reterr_error)
{
        Command c = {};
        json_t *root;
        json_error_t err;
        CommandKind k;
        int r;

        for (k = 0; k < _COMMAND_KIND_MAX && !streq(names[k], name); k++)
                ;
        if (k == _COMMAND_KIND_MAX) {
                *reterr_error = "unknown command";
                return -ENOENT;
        }
        c.kind = k;
        if (len > COMMAND_PAYLOAD_MAX) {
                *reterr_error = "payload larger than 4096 bytes";
                return -EMSGSIZE;
        }
        if (len > 0) {
                root = json_loadb(payload, len, JSON_REJECT_DUPLICATES, &err);
                if (!root && json_error_code(&err) == json_error_duplicate_key) {
                        *reterr_error = "duplicate key in the JSON object";
                        return -EBADMSG;
                }
                if (!root && (json_error_code(&err) == json_error_numeric_overflow ||
                              (json_error_code(&err) == json_error_invalid_syntax &&
                               has_non_finite_word(payload, len)))) {
                        *reterr_error = "a value must be a finite number (not NaN, Infinity or too large)";
                        return -EBADMSG;
                }
                if (!root || !json_is_object(root)) {
                        json_decref(root);
                        *reterr_error = "payload is not a JSON object";
                        return -EBADMSG;
                }
                r = copy_string(root, "request_id", c.request_id, sizeof c.request_id, reterr_error);
                if (r == 0)
                        r = copy_string(root, "message", c.message, sizeof c.message, reterr_error);
                if (r == 0 && k == COMMAND_OBSERVATION)
                        r = copy_string(root, "metric", c.metric, sizeof c.metric, reterr_error);
                if (r == 0 && k == COMMAND_OBSERVATION)
                        r = copy_string(root, "unit", c.unit, sizeof c.unit, reterr_error);
                if (r == 0 && k == COMMAND_OBSERVATION) {
                        json_t *v = json_object_get(root, "value");
                        Metric m;
                        if (streq(c.metric, "consciousness")) {
                                const char *a = json_is_string(v) ? json_string_value(v) : "";
                                if (strlen(a) != 1 || !strchr("ACVPU", a[0])) {
                                        *reterr_error =
                                            "consciousness is one of \"A\", \"C\", \"V\", \"P\", \"U\"";
                                        r = -EBADMSG;
                                } else
                                        c.acvpu = a[0];
                        } else if (metric_from_name(c.metric, &m) < 0) {
                                *reterr_error = "observation: unknown or missing \"metric\"";
                                r = -EBADMSG;
                        } else if (!json_is_number(v) || !isfinite(json_number_value(v))) {
                                *reterr_error = "observation: \"value\" must be a number";
                                r = -EBADMSG;
                        } else if (c.unit[0] && !streq(c.unit, metric_default_unit(m))) {
                                /* The range below is in the usual unit, and only that unit is taken. */
                                *reterr_error = "give the value in the metric's usual unit";
                                r = -EBADMSG;
                        } else if (json_number_value(v) < ranges[m].low ||
                                   json_number_value(v) > ranges[m].high) {
                                *reterr_error = ranges[m].error;
                                r = -ERANGE;
                        } else
                                c.value = json_number_value(v);
                }
                json_decref(root);
                if (r < 0)
                        return r;
        } else if (k == COMMAND_OBSERVATION) {
                *reterr_error = "observation needs a JSON object with \"metric\" and \"value\"";
                return -EBADMSG;
        }
        *ret = c;
        return 0;
}
