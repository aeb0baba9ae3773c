#include <arpa/inet.h>
#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/mac.h"
#include "common/macro.h"
#include "common/timefmt.h"
#include "gateway/config.h"
#include "sensors/gpio.h"
#include "sensors/reading.h"

typedef struct Parser {
        const char *name; /* file name for messages */
        unsigned line;    /* current line */
        const char *section;
        char *error; /* first error message */
} Parser;

typedef int (*parse_fn)(Parser *p, const char *key, const char *value, void *field);

typedef enum SectionId {
        SEC_GATEWAY,
        SEC_UPLINK,
        SEC_STORE,
        SEC_SIMULATION,
        SEC_BLUETOOTH,
        SEC_PATIENT,
        SEC_MEDICATION,
        SEC_RULES,
        SEC_THRESHOLD,
        SEC_SENSOR,
        SEC_INPUT,
        SEC_WEB,
        _SEC_MAX,
} SectionId;

typedef struct KeyDef {
        SectionId section;
        const char *key;
        parse_fn parse;
        size_t offset; /* into Config, or into the element of a labelled section */
        bool required;
} KeyDef;

_printf_(3, 4) static int fail(Parser *p, const char *key, const char *fmt, ...)
{
        char msg[512];
        va_list ap;

        if (p->error) /* keep the first error: it is the one to fix first */
                return -EINVAL;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        if (key)
                (void)!asprintf(&p->error, "%s:%u: [%s] %s: %s", p->name, p->line, p->section, key, msg);
        else
                (void)!asprintf(&p->error, "%s:%u: %s", p->name, p->line, msg);
        return -EINVAL;
}

static int parse_string(Parser *p, const char *key, const char *value, void *field)
{
        char **s = field, *n = strdup(value);
        if (!n)
                return -ENOMEM;
        free(*s);
        *s = n;
        return 0;
}

static int parse_path(Parser *p, const char *key, const char *value, void *field)
{
        if (value[0] != '/')
                return fail(p, key, "'%s' is not an absolute path", value);
        return parse_string(p, key, value, field);
}

static int parse_id(Parser *p, const char *key, const char *value, void *field)
{
        size_t n = strlen(value);
        if (n > 64)
                return fail(p, key, "'%s' is longer than 64 characters", value);
        for (size_t i = 0; i < n; i++)
                if (!isalnum((unsigned char)value[i]) && value[i] != '-' && value[i] != '_')
                        return fail(
                            p, key,
                            "'%s' may only contain letters, digits, '-' and '_' (it is used in MQTT topics)",
                            value);
        return parse_string(p, key, value, field);
}

static int parse_bool(Parser *p, const char *key, const char *value, void *field)
{
        static const char *const yes[] = {"yes", "true", "on", "1"}, *const no[] = {"no", "false", "off",
                                                                                    "0"};
        bool *b = field;
        for (size_t i = 0; i < ELEMENTSOF(yes); i++) {
                if (strcasecmp(value, yes[i]) == 0) {
                        *b = true;
                        return 0;
                }
                if (strcasecmp(value, no[i]) == 0) {
                        *b = false;
                        return 0;
                }
        }
        return fail(p, key, "'%s' is not a boolean (use yes or no)", value);
}

static int parse_u64_raw(const char *value, uint64_t *ret, const char **ret_end)
{
        char *end;
        unsigned long long v;

        if (!isdigit((unsigned char)value[0]))
                return -EINVAL;
        errno = 0;
        v = strtoull(value, &end, 10);
        if (errno != 0)
                return -ERANGE;
        *ret = v;
        *ret_end = end;
        return 0;
}

static int parse_size(Parser *p, const char *key, const char *value, void *field)
{
        static const struct {
                const char *suffix;
                uint64_t factor;
        } units[] = {{"", 1},           {"B", 1},          {"K", 1ULL << 10},
                     {"M", 1ULL << 20}, {"G", 1ULL << 30}, {"T", 1ULL << 40}};
        uint64_t v;
        const char *end;

        if (parse_u64_raw(value, &v, &end) < 0)
                return fail(p, key, "'%s' is not a size (a number with an optional K, M, G or T suffix)",
                            value);
        for (size_t i = 0; i < ELEMENTSOF(units); i++)
                if (streq(end, units[i].suffix)) {
                        if (v > UINT64_MAX / units[i].factor)
                                return fail(p, key, "'%s' is too large", value);
                        if (v * units[i].factor < (1ULL << 20))
                                return fail(p, key, "'%s' is too small (at least 1M)", value);
                        *(uint64_t *)field = v * units[i].factor;
                        return 0;
                }
        return fail(p, key, "'%s' has an unknown unit '%s' (use K, M, G or T)", value, end);
}

static int parse_uint_range(Parser *p, const char *key, const char *value, uint64_t min, uint64_t max,
                            uint64_t *ret)
{
        uint64_t v;
        const char *end;
        if (parse_u64_raw(value, &v, &end) < 0 || *end != '\0')
                return fail(p, key, "'%s' is not a whole number", value);
        if (v < min || v > max)
                return fail(p, key, "%s is out of range (%llu to %llu)", value, (unsigned long long)min,
                            (unsigned long long)max);
        *ret = v;
        return 0;
}

static int parse_u64(Parser *p, const char *key, const char *value, void *field)
{
        return parse_uint_range(p, key, value, 0, UINT64_MAX, field);
}

#define DEFINE_UINT_PARSER(name, type, min, max, scale)                                                     \
        static int name(Parser *p, const char *key, const char *value, void *field)                         \
        {                                                                                                   \
                uint64_t v = 0;                                                                             \
                int r = parse_uint_range(p, key, value, min, max, &v);                                      \
                if (r < 0)                                                                                  \
                        return r;                                                                           \
                *(type *)field = (type)(v * (scale));                                                       \
                return 0;                                                                                   \
        }
DEFINE_UINT_PARSER(parse_keepalive, unsigned, 5, 3600, 1)
DEFINE_UINT_PARSER(parse_inflight, unsigned, 1, 1000, 1)
DEFINE_UINT_PARSER(parse_batch, unsigned, 1, 10000, 1)
DEFINE_UINT_PARSER(parse_commit_delay, uint64_t, 0, 10000, 1000)
DEFINE_UINT_PARSER(parse_interval_sec, uint64_t, 1, 86400, 1000000)

static int parse_speed(Parser *p, const char *key, const char *value, void *field)
{
        char *end;
        double v;

        if (streq(value, "max")) {
                *(double *)field = 0;
                return 0;
        }
        errno = 0;
        v = strtod(value, &end);
        if (errno != 0 || end == value || *end != '\0' || !isfinite(v))
                return fail(p, key, "'%s' is not a number or 'max'", value);
        if (v <= 0 || v > 1e6)
                return fail(p, key, "%s is out of range (more than 0, at most 1000000, or 'max')", value);
        *(double *)field = v;
        return 0;
}

static int parse_time(Parser *p, const char *key, const char *value, void *field)
{
        if (parse_rfc3339(value, field) < 0)
                return fail(p, key, "'%s' is not an RFC 3339 time (e.g. 2026-03-02T07:00:00Z)", value);
        return 0;
}

static int parse_broker(Parser *p, const char *key, const char *value, void *field)
{
        Config *c = field;
        const char *rest, *colon;
        bool tls;
        uint64_t port;
        _cleanup_free_ char *host = NULL;

        if (strncmp(value, "mqtt://", 7) == 0) {
                tls = false;
                rest = value + 7;
        } else if (strncmp(value, "mqtts://", 8) == 0) {
                tls = true;
                rest = value + 8;
        } else
                return fail(p, key, "'%s' must start with mqtt:// or mqtts://", value);

        /* Said before the port is looked at, which would otherwise take the blame. The value is not
         * repeated: it holds a password. */
        if (strchr(rest, '@'))
                return fail(p, key,
                            "a user name or password in the URL (user:password@host) is not supported: "
                            "use Username= and PasswordFile=");
        if (rest[strcspn(rest, "/?#")] != '\0')
                return fail(p, key,
                            "'%s' has a path, query or fragment ('%s'), which MQTT has no use for: "
                            "give mqtt://host[:port] or mqtts://host[:port]",
                            value, rest + strcspn(rest, "/?#"));
        if (rest[0] == '[') { /* [v6 address]:port */
                const char *close = strchr(rest, ']');
                if (!close)
                        return fail(p, key, "'%s' has an unclosed '['", value);
                host = strndup(rest + 1, (size_t)(close - rest - 1));
                colon = close[1] == ':' ? close + 1 : NULL;
                if (!colon && close[1] != '\0')
                        return fail(p, key, "'%s' has text after the address", value);
        } else {
                colon = strchr(rest, ':');
                host = colon ? strndup(rest, (size_t)(colon - rest)) : strdup(rest);
        }
        if (!host)
                return -ENOMEM;
        if (host[0] == '\0' || strpbrk(host, "/?#@ "))
                return fail(p, key, "'%s' has no valid host name", value);
        port = tls ? 8883 : 1883;
        if (colon) {
                const char *end;
                if (parse_u64_raw(colon + 1, &port, &end) < 0 || *end != '\0' || port < 1 || port > 65535)
                        return fail(p, key, "'%s' has an invalid port (1 to 65535)", value);
        }
        if (parse_string(p, key, value, &c->broker) < 0)
                return -ENOMEM;
        free(c->broker_host);
        c->broker_host = TAKE_PTR(host);
        c->broker_port = (uint16_t)port;
        c->broker_tls = tls;
        return 0;
}

static int parse_hhmm(const char *v, int *ret)
{
        unsigned h, m;
        int n = 0;
        if (sscanf(v, "%2u:%2u%n", &h, &m, &n) != 2 || n != 5 || h > 23 || m > 59)
                return -EINVAL;
        *ret = (int)(h * 60 + m);
        return 0;
}

static int parse_night_window(Parser *p, const char *key, const char *value, void *field)
{
        Config *c = field;
        char a[6], b[6];
        if (strlen(value) != 11 || value[5] != '-')
                return fail(p, key, "'%s' is not a window like 23:00-06:00", value);
        memcpy(a, value, 5);
        a[5] = '\0';
        memcpy(b, value + 6, 5);
        b[5] = '\0';
        if (parse_hhmm(a, &c->night_start_min) < 0 || parse_hhmm(b, &c->night_end_min) < 0)
                return fail(p, key, "'%s' is not a window like 23:00-06:00 (HH:MM-HH:MM)", value);
        if (c->night_start_min == c->night_end_min)
                return fail(p, key, "'%s' is an empty window", value);
        return 0;
}

static int parse_schedule(Parser *p, const char *key, const char *value, void *field)
{
        Config *c = field;
        const char *v = value;
        c->n_schedule = 0;
        for (;;) {
                char t[6];
                size_t n = strcspn(v, ",");
                int m;
                while (n > 0 && v[0] == ' ') {
                        v++;
                        n--;
                }
                if (n != 5 || c->n_schedule >= ELEMENTSOF(c->schedule_min))
                        return fail(p, key, "'%s' is not a list of at most 12 times like 08:00,14:00,20:00",
                                    value);
                memcpy(t, v, 5);
                t[5] = '\0';
                if (parse_hhmm(t, &m) < 0)
                        return fail(p, key, "'%s' is not a time (HH:MM) in '%s'", t, value);
                for (size_t i = 0; i < c->n_schedule; i++)
                        if (c->schedule_min[i] == m)
                                return fail(p, key, "%s is listed twice", t);
                c->schedule_min[c->n_schedule++] = m;
                v += n;
                if (*v == '\0')
                        break;
                v++;
        }
        return 0;
}

static int parse_double_in(Parser *p, const char *key, const char *value, double min, double max,
                           double *ret)
{
        char *end;
        double v;
        errno = 0;
        v = strtod(value, &end);
        if (errno || end == value || *end != '\0' || !isfinite(v))
                return fail(p, key, "'%s' is not a number", value);
        if (v < min || v > max)
                return fail(p, key, "%s is out of range (%g to %g)", value, min, max);
        *ret = v;
        return 0;
}

static int parse_weight_gain(Parser *p, const char *key, const char *value, void *field)
{
        return parse_double_in(p, key, value, 0.1, 50, field);
}

/* A baseline's least clinically meaningful change, or the weight trend's limit: 0 turns it off. */
static int parse_min_shift(Parser *p, const char *key, const char *value, void *field)
{
        return parse_double_in(p, key, value, 0, 1000, field);
}

static int parse_limit_low(Parser *p, const char *key, const char *value, void *field)
{
        ThresholdConfig *t = field;
        t->has_low = true;
        return parse_double_in(p, key, value, -1e6, 1e6, &t->low);
}

static int parse_limit_high(Parser *p, const char *key, const char *value, void *field)
{
        ThresholdConfig *t = field;
        t->has_high = true;
        return parse_double_in(p, key, value, -1e6, 1e6, &t->high);
}

static int parse_one_of(Parser *p, const char *key, const char *value, void *field,
                        const char *const *allowed)
{
        for (size_t i = 0; allowed[i]; i++)
                if (streq(value, allowed[i]))
                        return parse_string(p, key, value, field);
        {
                char list[256] = "";
                for (size_t i = 0; allowed[i]; i++) {
                        strncat(list, i ? ", " : "", sizeof list - strlen(list) - 1);
                        strncat(list, allowed[i], sizeof list - strlen(list) - 1);
                }
                return fail(p, key, "'%s' is not one of: %s", value, list);
        }
}

/* Any name or alias of the profile table: Type= and `homecare-gw decode` share their spellings. */
static int parse_sensor_type(Parser *p, const char *key, const char *value, void *field)
{
        SensorConfig *sc = field;
        Profile profile;
        char names[256];

        if (profile_from_name(value, &profile) < 0)
                return fail(p, key, "'%s' is not one of: %s", value,
                            profile_names_list(", ", names, sizeof names));
        sc->profile = profile;
        return parse_string(p, key, value, &sc->type);
}

static int parse_input_kind(Parser *p, const char *key, const char *value, void *field)
{
        const char *kinds[_GPIO_KIND_MAX + 1] = {};

        /* The names are the GPIO layer's own table: one spelling. */
        for (GpioKind k = 0; k < _GPIO_KIND_MAX; k++)
                kinds[k] = gpio_kind_name(k);
        return parse_one_of(p, key, value, field, kinds);
}

static int parse_role(Parser *p, const char *key, const char *value, void *field)
{
        /* Known roles are bedroom, bathroom, kitchen, living-room, hall, exit-door, bed, dispenser,
         * alarm-button; others are allowed (another room) and count as indoors. */
        for (const char *c = value; *c; c++)
                if (!islower((unsigned char)*c) && *c != '-' && !isdigit((unsigned char)*c))
                        return fail(p, key,
                                    "'%s' is not a role (lower-case words joined by -, e.g. living-room)",
                                    value);
        return parse_string(p, key, value, field);
}

static int parse_address(Parser *p, const char *key, const char *value, void *field)
{
        uint8_t mac[6];

        if (parse_mac(value, mac) < 0)
                return fail(p, key, "'%s' is not a Bluetooth address (AA:BB:CC:DD:EE:FF)", value);
        return parse_string(p, key, value, field);
}

static int parse_bind_key(Parser *p, const char *key, const char *value, void *field)
{
        if (strlen(value) != 32 || strspn(value, "0123456789abcdefABCDEF") != 32)
                return fail(p, key, "the bind key must be 32 hex digits");
        return parse_string(p, key, value, field);
}

static int parse_expected_interval(Parser *p, const char *key, const char *value, void *field)
{
        SensorConfig *sc = field;
        uint64_t v = 0;
        int r = parse_uint_range(p, key, value, 0, 60 * 24 * 30, &v);
        if (r < 0)
                return r;
        sc->expected_interval_min = (unsigned)v;
        sc->expected_interval_set = true;
        return 0;
}

static int parse_passkey(Parser *p, const char *key, const char *value, void *field)
{
        uint64_t v = 0;
        if (strlen(value) != 6 || strspn(value, "0123456789") != 6 ||
            parse_uint_range(p, key, value, 0, 999999, &v) < 0)
                return fail(p, key, "the passkey is 6 digits, as the device's manual gives it");
        *(int *)field = (int)v;
        return 0;
}

static int parse_gpio_line(Parser *p, const char *key, const char *value, void *field)
{
        if (strlen(value) > 64)
                return fail(p, key, "'%s' is too long for a line name", value);
        return parse_string(p, key, value, field);
}

static int parse_chip(Parser *p, const char *key, const char *value, void *field)
{
        if (strlen(value) > 128 || strpbrk(value, " \t"))
                return fail(p, key, "'%s' is not a chip name (gpiochip0) or path", value);
        return parse_string(p, key, value, field);
}

DEFINE_UINT_PARSER(parse_spo2_scale, unsigned, 1, 2, 1)
DEFINE_UINT_PARSER(parse_minutes, unsigned, 1, 24 * 60, 1)
DEFINE_UINT_PARSER(parse_days, unsigned, 1, 60, 1)
DEFINE_UINT_PARSER(parse_percent, unsigned, 1, 99, 1)
DEFINE_UINT_PARSER(parse_debounce, unsigned, 0, 10000, 1)

/* [Web] Listen=: an IPv4 address:port or [IPv6 address]:port; empty turns the page off. A name is
 * not taken: the page binds before any resolver may work, and a literal says which interface. */
static int parse_listen(Parser *p, const char *key, const char *value, void *field)
{
        Config *c = field;
        _cleanup_free_ char *host = NULL, *listen = NULL;
        const char *colon, *end;
        unsigned char addr[sizeof(struct in6_addr)];
        uint64_t port;

        if (value[0] == '\0') {
                c->web_listen = mfree(c->web_listen);
                c->web_host = mfree(c->web_host);
                c->web_port = 0;
                return 0;
        }
        if (value[0] == '[') {
                const char *close = strchr(value, ']');
                if (!close || close[1] != ':')
                        return fail(p, key, "'%s' is not [IPv6 address]:port", value);
                host = strndup(value + 1, (size_t)(close - value - 1));
                colon = close + 1;
        } else {
                colon = strrchr(value, ':');
                if (!colon)
                        return fail(p, key, "'%s' has no port (address:port, e.g. 0.0.0.0:8443)", value);
                host = strndup(value, (size_t)(colon - value));
        }
        if (!host)
                return -ENOMEM;
        if (inet_pton(value[0] == '[' ? AF_INET6 : AF_INET, host, addr) != 1)
                return fail(p, key,
                            "'%s' is not an IP address (a literal such as 0.0.0.0, 192.168.1.10 or [::])",
                            host);
        if (parse_u64_raw(colon + 1, &port, &end) < 0 || *end != '\0' || port < 1 || port > 65535)
                return fail(p, key, "'%s' has an invalid port (1 to 65535)", value);
        listen = strdup(value);
        if (!listen)
                return -ENOMEM;
        free(c->web_listen);
        c->web_listen = TAKE_PTR(listen);
        free(c->web_host);
        c->web_host = TAKE_PTR(host);
        c->web_port = (uint16_t)port;
        return 0;
}

#define F(field) offsetof(Config, field)
#define S(field) offsetof(SensorConfig, field)
#define I(field) offsetof(InputConfig, field)
#define T(field) offsetof(ThresholdConfig, field)
#define WHOLE ((size_t)0) /* offset 0: the parser gets the Config itself */
static const KeyDef keys[] = {
    {SEC_GATEWAY, "Id", parse_id, F(gateway_id), true},
    {SEC_GATEWAY, "StateDirectory", parse_path, F(state_directory), false},
    {SEC_GATEWAY, "StatusIntervalSec", parse_interval_sec, F(status_interval_usec), false},
    {SEC_UPLINK, "Broker", parse_broker, WHOLE, true},
    {SEC_UPLINK, "CAFile", parse_path, F(ca_file), false},
    {SEC_UPLINK, "CertFile", parse_path, F(cert_file), false},
    {SEC_UPLINK, "KeyFile", parse_path, F(key_file), false},
    {SEC_UPLINK, "Username", parse_string, F(username), false},
    {SEC_UPLINK, "PasswordFile", parse_path, F(password_file), false},
    {SEC_UPLINK, "KeepaliveSec", parse_keepalive, F(keepalive_sec), false},
    {SEC_UPLINK, "MaxInflight", parse_inflight, F(max_inflight), false},
    {SEC_UPLINK, "BatchMax", parse_batch, F(batch_max), false},
    {SEC_STORE, "MaxSize", parse_size, F(store_max_size), false},
    {SEC_STORE, "CommitDelayMs", parse_commit_delay, F(commit_delay_usec), false},
    {SEC_SIMULATION, "Enabled", parse_bool, F(sim_enabled), false},
    {SEC_SIMULATION, "Speed", parse_speed, F(sim_speed), false},
    {SEC_SIMULATION, "Seed", parse_u64, F(sim_seed), false},
    {SEC_SIMULATION, "Limit", parse_u64, F(sim_limit), false},
    {SEC_SIMULATION, "Start", parse_time, F(sim_start_usec), false},
    {SEC_BLUETOOTH, "Adapter", parse_id, F(bt_adapter), false},
    {SEC_PATIENT, "Id", parse_id, F(patient_id), false},
    {SEC_PATIENT, "SpO2Scale", parse_spo2_scale, F(spo2_scale), false},
    {SEC_PATIENT, "Oxygen", parse_bool, F(oxygen), false},
    {SEC_PATIENT, "NightWindow", parse_night_window, WHOLE, false},
    {SEC_MEDICATION, "Schedule", parse_schedule, WHOLE, false},
    {SEC_MEDICATION, "GraceMinutes", parse_minutes, F(grace_min), false},
    {SEC_RULES, "WeightGainKg", parse_weight_gain, F(weight_gain_kg), false},
    {SEC_RULES, "WeightGainDays", parse_days, F(weight_gain_days), false},
    {SEC_RULES, "NightExitMinutes", parse_minutes, F(night_exit_min), false},
    {SEC_RULES, "BedExitMinutes", parse_minutes, F(bed_exit_min), false},
    {SEC_RULES, "News2WindowMinutes", parse_minutes, F(news2_window_min), false},
    {SEC_RULES, "InactivityFloorMinutes", parse_minutes, F(inactivity_floor_min), false},
    {SEC_RULES, "InactivityCeilingMinutes", parse_minutes, F(inactivity_ceiling_min), false},
    {SEC_RULES, "InactivityDefaultMinutes", parse_minutes, F(inactivity_default_min), false},
    {SEC_RULES, "BaselineMinDays", parse_days, F(baseline_min_days), false},
    {SEC_RULES, "BatteryLowPercent", parse_percent, F(battery_low_percent), false},
    {SEC_RULES, "AlarmButtonClearMinutes", parse_minutes, F(alarm_clear_min), false},
    {SEC_RULES, "BaselineMinShiftSystolic", parse_min_shift, F(baseline_min_shift_systolic), false},
    {SEC_RULES, "BaselineMinShiftDiastolic", parse_min_shift, F(baseline_min_shift_diastolic), false},
    {SEC_RULES, "BaselineMinShiftPulse", parse_min_shift, F(baseline_min_shift_pulse), false},
    {SEC_RULES, "BaselineMinShiftSpO2", parse_min_shift, F(baseline_min_shift_spo2), false},
    {SEC_RULES, "BaselineMinShiftTemperature", parse_min_shift, F(baseline_min_shift_temperature), false},
    {SEC_RULES, "BaselineMinShiftRespiration", parse_min_shift, F(baseline_min_shift_respiration), false},
    {SEC_RULES, "BaselineMinShiftGlucose", parse_min_shift, F(baseline_min_shift_glucose), false},
    {SEC_RULES, "WeightTrendKg", parse_min_shift, F(weight_trend_kg), false},
    {SEC_THRESHOLD, "Low", parse_limit_low, 0, false},
    {SEC_THRESHOLD, "High", parse_limit_high, 0, false},
    {SEC_SENSOR, "Type", parse_sensor_type, 0, true},
    {SEC_SENSOR, "Address", parse_address, S(address), true},
    {SEC_SENSOR, "Key", parse_bind_key, S(key), false},
    {SEC_SENSOR, "Role", parse_role, S(role), false},
    {SEC_SENSOR, "ExpectedIntervalMinutes", parse_expected_interval, 0, false},
    {SEC_SENSOR, "Passkey", parse_passkey, S(passkey), false},
    {SEC_SENSOR, "Bond", parse_bool, S(bond), false},
    {SEC_INPUT, "Chip", parse_chip, I(chip), true},
    {SEC_INPUT, "Line", parse_gpio_line, I(gpio_line), true},
    {SEC_INPUT, "Kind", parse_input_kind, I(kind), true},
    {SEC_INPUT, "ActiveLow", parse_bool, I(active_low), false},
    {SEC_INPUT, "DebounceMs", parse_debounce, I(debounce_ms), false},
    {SEC_INPUT, "Role", parse_role, I(role), false},
    {SEC_WEB, "Listen", parse_listen, WHOLE, false},
    {SEC_WEB, "CertFile", parse_path, F(web_cert_file), false},
    {SEC_WEB, "KeyFile", parse_path, F(web_key_file), false},
    {SEC_WEB, "Plain", parse_bool, F(web_plain), false},
    {SEC_WEB, "SessionIdleMinutes", parse_minutes, F(web_session_idle_min), false},
};
#undef F
#undef S
#undef I
#undef T

static const struct {
        const char *name;
        bool labelled;
} sections[_SEC_MAX] = {
    [SEC_GATEWAY] = {"Gateway", false},
    [SEC_UPLINK] = {"Uplink", false},
    [SEC_STORE] = {"Store", false},
    [SEC_SIMULATION] = {"Simulation", false},
    [SEC_BLUETOOTH] = {"Bluetooth", false},
    [SEC_PATIENT] = {"Patient", false},
    [SEC_MEDICATION] = {"Medication", false},
    [SEC_RULES] = {"Rules", false},
    [SEC_THRESHOLD] = {"Threshold", true},
    [SEC_SENSOR] = {"Sensor", true},
    [SEC_INPUT] = {"Input", true},
    [SEC_WEB] = {"Web", false},
};

Config *config_free(Config *c)
{
        if (!c)
                return NULL;
        free(c->path);
        free(c->gateway_id);
        free(c->state_directory);
        free(c->broker);
        free(c->broker_host);
        free(c->ca_file);
        free(c->cert_file);
        free(c->key_file);
        free(c->username);
        free(c->password_file);
        free(c->patient_id);
        free(c->bt_adapter);
        free(c->web_listen);
        free(c->web_host);
        free(c->web_cert_file);
        free(c->web_key_file);
        for (size_t i = 0; i < c->n_sensors; i++) {
                free(c->sensors[i].id);
                free(c->sensors[i].type);
                free(c->sensors[i].address);
                free(c->sensors[i].key);
                free(c->sensors[i].role);
        }
        free(c->sensors);
        for (size_t i = 0; i < c->n_inputs; i++) {
                free(c->inputs[i].id);
                free(c->inputs[i].chip);
                free(c->inputs[i].gpio_line);
                free(c->inputs[i].kind);
                free(c->inputs[i].role);
        }
        free(c->inputs);
        for (size_t i = 0; i < c->n_thresholds; i++)
                free(c->thresholds[i].id);
        free(c->thresholds);
        free(c);
        return NULL;
}
DEFINE_TRIVIAL_CLEANUP_FUNC(Config *, config_free);

static char *strip(char *s)
{
        char *e;
        while (isspace((unsigned char)*s))
                s++;
        e = s + strlen(s);
        while (e > s && isspace((unsigned char)e[-1]))
                *--e = '\0';
        return s;
}

static int set_defaults(Config *c)
{
        c->state_directory = strdup("/var/lib/homecare-gw");
        if (!c->state_directory)
                return -ENOMEM;
        c->status_interval_usec = 300ULL * 1000000;
        c->keepalive_sec = 60;
        c->max_inflight = 16;
        c->batch_max = 200;
        c->store_max_size = 256ULL << 20;
        c->commit_delay_usec = 500 * 1000;
        c->sim_speed = 1;
        c->sim_seed = 42;
        c->spo2_scale = 1;
        c->night_start_min = 23 * 60;
        c->night_end_min = 6 * 60;
        c->grace_min = 60;
        c->weight_gain_kg = 2.0;
        c->weight_gain_days = 3;
        c->night_exit_min = 15;
        c->bed_exit_min = 30;
        c->news2_window_min = 60;
        c->inactivity_floor_min = 120;
        c->inactivity_ceiling_min = 720;
        c->inactivity_default_min = 240;
        c->baseline_min_days = 7;
        c->battery_low_percent = 15;
        c->alarm_clear_min = 30;
        c->baseline_min_shift_systolic = 15;
        c->baseline_min_shift_diastolic = 10;
        c->baseline_min_shift_pulse = 15;
        c->baseline_min_shift_spo2 = 3;
        c->baseline_min_shift_temperature = 0.8;
        c->baseline_min_shift_respiration = 5;
        c->baseline_min_shift_glucose = 45;
        c->weight_trend_kg = 1.0;
        /* The page is on by default: a gateway is set up through it. */
        c->web_listen = strdup("0.0.0.0:8443");
        c->web_host = strdup("0.0.0.0");
        if (!c->web_listen || !c->web_host)
                return -ENOMEM;
        c->web_port = 8443;
        c->web_session_idle_min = 30;
        return 0;
}

/* A new element of a labelled section: returns its address. */
static void *new_element(Config *c, SectionId sec, const char *label, unsigned line)
{
        void **array;
        size_t *n, size;
        char *id = strdup(label);
        void *a, *e;

        switch (sec) {
        case SEC_SENSOR:
                array = (void **)&c->sensors, n = &c->n_sensors, size = sizeof(SensorConfig);
                break;
        case SEC_INPUT:
                array = (void **)&c->inputs, n = &c->n_inputs, size = sizeof(InputConfig);
                break;
        case SEC_THRESHOLD:
                array = (void **)&c->thresholds, n = &c->n_thresholds, size = sizeof(ThresholdConfig);
                break;
        default:
                free(id);
                return NULL;
        }
        a = id ? realloc(*array, (*n + 1) * size) : NULL;
        if (!a) {
                free(id);
                return NULL;
        }
        *array = a;
        e = (char *)a + *n * size;
        memset(e, 0, size);
        /* Every element struct starts with: char *id; unsigned line; */
        *(char **)e = id;
        if (sec == SEC_SENSOR)
                ((SensorConfig *)e)->passkey = -1;
        *(unsigned *)((char *)e + offsetof(SensorConfig, line)) = line;
        (*n)++;
        return e;
}

static bool label_taken(const Config *c, SectionId sec, const char *label)
{
        switch (sec) {
        case SEC_SENSOR:
                for (size_t i = 0; i < c->n_sensors; i++)
                        if (streq(c->sensors[i].id, label))
                                return true;
                /* A sensor and an input may not share an id: events name their source by it. */
                for (size_t i = 0; i < c->n_inputs; i++)
                        if (streq(c->inputs[i].id, label))
                                return true;
                return false;
        case SEC_INPUT:
                return label_taken(c, SEC_SENSOR, label);
        case SEC_THRESHOLD:
                for (size_t i = 0; i < c->n_thresholds; i++)
                        if (streq(c->thresholds[i].id, label))
                                return true;
                return false;
        default:
                return false;
        }
}

static size_t key_index(SectionId sec, const char *key)
{
        size_t k;
        for (k = 0; k < ELEMENTSOF(keys); k++)
                if (keys[k].section == sec && streq(keys[k].key, key))
                        break;
        assert(k < ELEMENTSOF(keys));
        return k;
}

/* One device, one section: a second section for it would report everything twice, or a button
 * would be both an alarm button and a doorbell. Only the earlier elements are compared: elem is the
 * last one, and they were checked when they ended. */
static int check_sensor(Parser *p, const Config *c, const SensorConfig *sc, const unsigned *elem_set_on)
{
        for (size_t i = 0; i < c->n_sensors && &c->sensors[i] != sc; i++)
                if (strcasecmp(c->sensors[i].address, sc->address) == 0) {
                        p->line = elem_set_on[key_index(SEC_SENSOR, "Address")];
                        return fail(p, "Address", "%s is also the address of [Sensor \"%s\"] (line %u)",
                                    sc->address, c->sensors[i].id, c->sensors[i].line);
                }
        /* A BTHome device may be a button (a pendant); a health device never is. */
        if (streq_ptr(sc->role, "alarm-button") && sc->profile != PROFILE_BTHOME) {
                p->line = elem_set_on[key_index(SEC_SENSOR, "Role")];
                return fail(p, "Role",
                            "a %s sensor cannot be the alarm button: only a bthome sensor (a BTHome button) "
                            "or an [Input] with Kind=button can",
                            sc->type);
        }
        return 0;
}

/* gpiochip0, /dev/gpiochip0 and 0 name the same chip; a label cannot be told apart without it. */
static bool same_chip(const char *a, const char *b)
{
        if (strncmp(a, "/dev/", 5) == 0)
                a += 5;
        if (strncmp(b, "/dev/", 5) == 0)
                b += 5;
        if (a[0] && strspn(a, "0123456789") == strlen(a) && strncmp(b, "gpiochip", 8) == 0)
                b += 8;
        if (b[0] && strspn(b, "0123456789") == strlen(b) && strncmp(a, "gpiochip", 8) == 0)
                a += 8;
        return streq(a, b);
}

static int check_input(Parser *p, const Config *c, const InputConfig *ic, const unsigned *elem_set_on)
{
        for (size_t i = 0; i < c->n_inputs && &c->inputs[i] != ic; i++)
                if (same_chip(c->inputs[i].chip, ic->chip) && streq(c->inputs[i].gpio_line, ic->gpio_line)) {
                        p->line = elem_set_on[key_index(SEC_INPUT, "Line")];
                        return fail(p, "Line", "line %s of %s is also [Input \"%s\"] (line %u)",
                                    ic->gpio_line, ic->chip, c->inputs[i].id, c->inputs[i].line);
                }
        /* Only a button is pressed: a door or a bed as the alarm button would raise the alarm never,
         * or whenever somebody opens it. */
        if (streq_ptr(ic->role, "alarm-button") && !streq(ic->kind, "button")) {
                p->line = elem_set_on[key_index(SEC_INPUT, "Role")];
                return fail(p, "Role", "Kind=%s cannot be the alarm button: only Kind=button can", ic->kind);
        }
        return 0;
}

/* Checks the labelled element that just ended: its required keys, and what contradicts. */
static int finish_element(Parser *p, const Config *c, SectionId sec, const void *elem,
                          const unsigned *elem_set_on)
{
        unsigned saved = p->line;
        int r = 0;
        if (!elem)
                return 0;
        for (size_t k = 0; k < ELEMENTSOF(keys) && r == 0; k++)
                if (keys[k].section == sec && keys[k].required && !elem_set_on[k]) {
                        p->line = *(const unsigned *)((const char *)elem + offsetof(SensorConfig, line));
                        r = fail(p, keys[k].key, "required key is missing");
                }
        if (r == 0 && sec == SEC_THRESHOLD) {
                const ThresholdConfig *t = elem;
                p->line = t->line;
                if (!t->has_low && !t->has_high)
                        r = fail(p, "Low", "a threshold needs Low=, High= or both");
                else if (t->has_low && t->has_high && t->low >= t->high)
                        r = fail(p, "High", "High=%g is not above Low=%g", t->high, t->low);
        }
        if (r == 0 && sec == SEC_SENSOR)
                r = check_sensor(p, c, elem, elem_set_on);
        if (r == 0 && sec == SEC_INPUT)
                r = check_input(p, c, elem, elem_set_on);
        if (r == 0)
                p->line = saved;
        return r;
}

int config_parse_mode(FILE *f, const char *name, ConfigMode mode, Config **ret, char **reterr_error)
{
        _cleanup_(config_freep) Config *c = NULL;
        _cleanup_free_ char *line = NULL;
        size_t cap = 0;
        unsigned set_on[ELEMENTSOF(keys)] = {}, elem_set_on[ELEMENTSOF(keys)] = {},
                 section_line[_SEC_MAX] = {};
        char section[160] = "";
        SectionId cur = _SEC_MAX;
        void *elem = NULL;
        Parser p = {.name = name, .section = section};
        int r = 0;

        c = calloc(1, sizeof *c);
        if (!c || set_defaults(c) < 0 || !(c->path = strdup(name)))
                return -ENOMEM;

        for (ssize_t n; (n = getline(&line, &cap, f)) >= 0;) {
                char *l, *eq, *key, *value, *label = NULL;
                size_t k;

                p.line++;
                /* Windows Notepad starts a UTF-8 file with a byte-order mark: it is not text. */
                if (p.line == 1 && n >= 3 && memcmp(line, "\xEF\xBB\xBF", 3) == 0) {
                        memmove(line, line + 3, (size_t)n - 2);
                        n -= 3;
                }
                if ((size_t)n != strlen(line)) {
                        r = fail(&p, NULL, "line contains a NUL byte");
                        break;
                }
                l = strip(line);
                if (l[0] == '\0' || l[0] == '#' || l[0] == ';')
                        continue;
                if (l[0] == '[') {
                        char *end = strrchr(l, ']'), *sp;
                        SectionId s;
                        if (!end || end[1] != '\0') {
                                r = fail(&p, NULL, "section header '%s' is not of the form [Section]", l);
                                break;
                        }
                        *end = '\0';
                        sp = strchr(l + 1, ' ');
                        if (sp) {
                                size_t ll;
                                *sp = '\0';
                                label = sp + 1;
                                ll = strlen(label);
                                if (ll < 2 || label[0] != '"' || label[ll - 1] != '"') {
                                        r = fail(&p, NULL,
                                                 "section [%s %s]: the name must be in quotes, e.g. [%s "
                                                 "\"front-door\"]",
                                                 l + 1, label, l + 1);
                                        break;
                                }
                                label[ll - 1] = '\0';
                                label++;
                        }
                        for (s = 0; s < _SEC_MAX && !streq(sections[s].name, l + 1); s++)
                                ;
                        if (s == _SEC_MAX) {
                                r = fail(&p, NULL, "unknown section [%s]", l + 1);
                                break;
                        }
                        if ((r = finish_element(&p, c, cur, elem, elem_set_on)) < 0)
                                break;
                        elem = NULL;
                        if (!sections[s].labelled && label) {
                                r = fail(&p, NULL, "section [%s \"%s\"] takes no label", l + 1, label);
                                break;
                        }
                        if (sections[s].labelled) {
                                Metric m;
                                if (!label) {
                                        r = fail(&p, NULL, "section [%s] needs a name, e.g. [%s \"%s\"]",
                                                 l + 1, l + 1, s == SEC_THRESHOLD ? "spo2" : "front-door");
                                        break;
                                }
                                snprintf(section, sizeof section, "%s \"%s\"", l + 1, label);
                                if (s == SEC_THRESHOLD
                                        ? metric_from_name(label, &m) < 0
                                        : (label[0] == '\0' || strlen(label) > 63 ||
                                           strspn(label, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWX"
                                                         "YZ0123456789-_") != strlen(label))) {
                                        r = fail(
                                            &p, NULL,
                                            s == SEC_THRESHOLD
                                                ? "[%s]: '%s' is not a metric name (e.g. spo2, systolic)"
                                                : "[%s]: '%s' may only contain letters, digits, '-' and '_' "
                                                  "(at most 63)",
                                            section, label);
                                        break;
                                }
                                if (label_taken(c, s, label)) {
                                        r = fail(&p, NULL, "[%s] is defined twice", section);
                                        break;
                                }
                                elem = new_element(c, s, label, p.line);
                                if (!elem) {
                                        r = -ENOMEM;
                                        break;
                                }
                                memset(elem_set_on, 0, sizeof elem_set_on);
                        } else
                                snprintf(section, sizeof section, "%s", l + 1);
                        cur = s;
                        if (!section_line[s])
                                section_line[s] = p.line;
                        continue;
                }
                eq = strchr(l, '=');
                if (!eq) {
                        r = fail(&p, NULL, "'%s' is not a Key=Value assignment", l);
                        break;
                }
                *eq = '\0';
                key = strip(l);
                value = strip(eq + 1);
                if (cur == _SEC_MAX) {
                        r = fail(&p, NULL, "%s= appears before any [Section]", key);
                        break;
                }
                for (k = 0; k < ELEMENTSOF(keys); k++)
                        if (keys[k].section == cur && streq(keys[k].key, key))
                                break;
                if (k == ELEMENTSOF(keys)) {
                        r = fail(&p, key, "unknown key");
                        break;
                }
                if ((elem ? elem_set_on : set_on)[k]) {
                        r = fail(&p, key, "set twice (first on line %u)", (elem ? elem_set_on : set_on)[k]);
                        break;
                }
                if (value[0] == '\0' && keys[k].parse != parse_listen) { /* Listen= empty: no page */
                        r = fail(&p, key, "empty value");
                        break;
                }
                (elem ? elem_set_on : set_on)[k] = p.line;
                r = keys[k].parse(&p, key, value, (char *)(elem ? elem : (void *)c) + keys[k].offset);
                if (r < 0)
                        break;
        }
        if (r == 0 && ferror(f)) {
                /* getline() left errno set, e.g. EISDIR for a directory given as the file. */
                r = errno > 0 ? -errno : -EIO;
                (void)!asprintf(&p.error, "%s: cannot read: %s", name, strerror(-r));
        }
        if (r == 0)
                r = finish_element(&p, c, cur, elem, elem_set_on);
        for (size_t k = 0; r == 0 && k < ELEMENTSOF(keys); k++) {
                SectionId s = keys[k].section;
                if (!keys[k].required || set_on[k] || sections[s].labelled)
                        continue;
                if (mode == CONFIG_RULES_ONLY && (s == SEC_GATEWAY || s == SEC_UPLINK))
                        continue;
                p.line = section_line[s];
                snprintf(section, sizeof section, "%s", sections[s].name);
                r = section_line[s]
                        ? fail(&p, keys[k].key, "required key is missing")
                        : fail(&p, keys[k].key, "required key is missing (no [%s] section)", section);
        }
        if (r == 0 && c->inactivity_floor_min > c->inactivity_ceiling_min) {
                /* Compared as they take effect: one given alone may contradict the other's default. */
                unsigned floor_on = set_on[key_index(SEC_RULES, "InactivityFloorMinutes")],
                         ceiling_on = set_on[key_index(SEC_RULES, "InactivityCeilingMinutes")];
                char other[64];
                bool floor = floor_on >= ceiling_on; /* blame the later of the two, or the one given */

                if (floor ? ceiling_on : floor_on)
                        snprintf(other, sizeof other, "line %u", floor ? ceiling_on : floor_on);
                else
                        snprintf(other, sizeof other, "the default");
                p.line = floor ? floor_on : ceiling_on;
                snprintf(section, sizeof section, "Rules");
                r = floor
                        ? fail(&p, "InactivityFloorMinutes", "%u is above InactivityCeilingMinutes=%u (%s)",
                               c->inactivity_floor_min, c->inactivity_ceiling_min, other)
                        : fail(&p, "InactivityCeilingMinutes", "%u is below InactivityFloorMinutes=%u (%s)",
                               c->inactivity_ceiling_min, c->inactivity_floor_min, other);
        }
        if (r == 0 && (!c->cert_file) != (!c->key_file)) {
                p.line = section_line[SEC_UPLINK];
                snprintf(section, sizeof section, "Uplink");
                r = fail(&p, c->cert_file ? "KeyFile" : "CertFile", "CertFile= and KeyFile= go together");
        }
        if (r == 0 && (!c->web_cert_file) != (!c->web_key_file)) {
                p.line = section_line[SEC_WEB];
                snprintf(section, sizeof section, "Web");
                r = fail(&p, c->web_cert_file ? "KeyFile" : "CertFile",
                         "CertFile= and KeyFile= go together");
        }
        for (size_t i = 0; r == 0 && i < c->n_sensors; i++) {
                SensorConfig *sc = &c->sensors[i];
                p.line = sc->line;
                snprintf(section, sizeof section, "Sensor \"%s\"", sc->id);
                bool advertises = profile_info(sc->profile)->transport == PROFILE_ADVERTISEMENT;
                if (sc->key && sc->profile != PROFILE_BTHOME)
                        r = fail(&p, "Key", "only bthome sensors have a bind key");
                else if ((sc->bond || sc->passkey >= 0) && advertises)
                        r = fail(
                            &p, sc->bond ? "Bond" : "Passkey",
                            "a %s sensor only advertises; pairing is for devices the gateway connects to",
                            sc->type);
                else if (!sc->expected_interval_set)
                        /* BTHome devices advertise every minute or so; health devices only when used. */
                        sc->expected_interval_min = advertises ? 60 : 0;
        }
        if (r < 0) {
                if (reterr_error)
                        *reterr_error = TAKE_PTR(p.error);
                free(p.error);
                return r;
        }
        if (!c->gateway_id && !(c->gateway_id = strdup("replay")))
                return -ENOMEM;
        *ret = TAKE_PTR(c);
        return 0;
}

int config_parse(FILE *f, const char *name, Config **ret, char **reterr_error)
{
        return config_parse_mode(f, name, CONFIG_DAEMON, ret, reterr_error);
}

const SensorConfig *config_find_sensor(const Config *c, const char *id)
{
        for (size_t i = 0; i < c->n_sensors; i++)
                if (streq(c->sensors[i].id, id))
                        return &c->sensors[i];
        return NULL;
}

const InputConfig *config_find_input(const Config *c, const char *id)
{
        for (size_t i = 0; i < c->n_inputs; i++)
                if (streq(c->inputs[i].id, id))
                        return &c->inputs[i];
        return NULL;
}

int config_load_mode(const char *path, ConfigMode mode, Config **ret, char **reterr_error)
{
        FILE *f = fopen(path, "re");
        int r;

        if (!f) {
                r = -errno;
                if (reterr_error)
                        (void)!asprintf(reterr_error, "%s: cannot open: %s", path, strerror(-r));
                return r;
        }
        r = config_parse_mode(f, path, mode, ret, reterr_error);
        fclose(f);
        return r;
}

int config_load(const char *path, Config **ret, char **reterr_error)
{
        return config_load_mode(path, CONFIG_DAEMON, ret, reterr_error);
}

int config_read_password(const Config *c, char **ret)
{
        _cleanup_free_ char *line = NULL;
        size_t cap = 0;
        FILE *f;
        ssize_t n;

        if (!c->password_file) {
                *ret = NULL;
                return 0;
        }
        f = fopen(c->password_file, "re");
        if (!f)
                return -errno;
        n = getline(&line, &cap, f);
        fclose(f);
        if (n < 0)
                return -ENODATA;
        line[strcspn(line, "\r\n")] = '\0';
        *ret = TAKE_PTR(line);
        return 0;
}
