#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/base.h"
#include "gateway/config.h"
#include "gateway/timefmt.h"

typedef struct Parser {
        const char *name;  /* file name for messages */
        unsigned line;     /* current line */
        const char *section;
        char *error;       /* first error message */
} Parser;

typedef int (*parse_fn)(Parser *p, const char *key, const char *value, void *field);

typedef struct KeyDef {
        const char *section;
        const char *key;
        parse_fn parse;
        size_t offset;
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
                        return fail(p, key, "'%s' may only contain letters, digits, '-' and '_' (it is used in MQTT topics)",
                                    value);
        return parse_string(p, key, value, field);
}

static int parse_bool(Parser *p, const char *key, const char *value, void *field)
{
        static const char *const yes[] = {"yes", "true", "on", "1"}, *const no[] = {"no", "false", "off", "0"};
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
        } units[] = {{"", 1}, {"B", 1}, {"K", 1ULL << 10}, {"M", 1ULL << 20}, {"G", 1ULL << 30}, {"T", 1ULL << 40}};
        uint64_t v;
        const char *end;

        if (parse_u64_raw(value, &v, &end) < 0)
                return fail(p, key, "'%s' is not a size (a number with an optional K, M, G or T suffix)", value);
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

#define DEFINE_UINT_PARSER(name, type, min, max, scale)                                                    \
        static int name(Parser *p, const char *key, const char *value, void *field)                        \
        {                                                                                                  \
                uint64_t v = 0;                                                                            \
                int r = parse_uint_range(p, key, value, min, max, &v);                                     \
                if (r < 0)                                                                                 \
                        return r;                                                                          \
                *(type *)field = (type)(v * (scale));                                                      \
                return 0;                                                                                  \
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

#define F(field) offsetof(Config, field)
#define WHOLE ((size_t)0) /* offset 0: the parser gets the Config itself */
static const KeyDef keys[] = {
        {"Gateway", "Id", parse_id, F(gateway_id), true},
        {"Gateway", "StateDirectory", parse_path, F(state_directory), false},
        {"Gateway", "StatusIntervalSec", parse_interval_sec, F(status_interval_usec), false},
        {"Uplink", "Broker", parse_broker, WHOLE, true},
        {"Uplink", "CAFile", parse_path, F(ca_file), false},
        {"Uplink", "CertFile", parse_path, F(cert_file), false},
        {"Uplink", "KeyFile", parse_path, F(key_file), false},
        {"Uplink", "Username", parse_string, F(username), false},
        {"Uplink", "PasswordFile", parse_path, F(password_file), false},
        {"Uplink", "KeepaliveSec", parse_keepalive, F(keepalive_sec), false},
        {"Uplink", "MaxInflight", parse_inflight, F(max_inflight), false},
        {"Uplink", "BatchMax", parse_batch, F(batch_max), false},
        {"Store", "MaxSize", parse_size, F(store_max_size), false},
        {"Store", "CommitDelayMs", parse_commit_delay, F(commit_delay_usec), false},
        {"Simulation", "Enabled", parse_bool, F(sim_enabled), false},
        {"Simulation", "Speed", parse_speed, F(sim_speed), false},
        {"Simulation", "Seed", parse_u64, F(sim_seed), false},
        {"Simulation", "Limit", parse_u64, F(sim_limit), false},
        {"Simulation", "Start", parse_time, F(sim_start_usec), false},
};
#undef F

static const char *const sections[] = {"Gateway", "Uplink", "Store", "Simulation"};

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
        return 0;
}

int config_parse(FILE *f, const char *name, Config **ret, char **ret_error)
{
        _cleanup_(config_freep) Config *c = NULL;
        _cleanup_free_ char *line = NULL;
        size_t cap = 0;
        unsigned set_on[ELEMENTSOF(keys)] = {}, section_line[ELEMENTSOF(sections)] = {};
        char section[64] = "";
        Parser p = {.name = name, .section = section};
        int r = 0;

        c = calloc(1, sizeof *c);
        if (!c || set_defaults(c) < 0 || !(c->path = strdup(name)))
                return -ENOMEM;

        for (ssize_t n; (n = getline(&line, &cap, f)) >= 0;) {
                char *l, *eq, *key, *value;
                size_t k;

                p.line++;
                if ((size_t)n != strlen(line)) {
                        r = fail(&p, NULL, "line contains a NUL byte");
                        break;
                }
                l = strip(line);
                if (l[0] == '\0' || l[0] == '#' || l[0] == ';')
                        continue;
                if (l[0] == '[') {
                        char *end = strchr(l, ']'), *label;
                        size_t s;
                        if (!end || end[1] != '\0') {
                                r = fail(&p, NULL, "section header '%s' is not of the form [Section]", l);
                                break;
                        }
                        *end = '\0';
                        label = strchr(l + 1, ' ');
                        if (label) {
                                r = fail(&p, NULL, "section [%s] takes no label", l + 1);
                                break;
                        }
                        for (s = 0; s < ELEMENTSOF(sections) && !streq(sections[s], l + 1); s++)
                                ;
                        if (s == ELEMENTSOF(sections)) {
                                r = fail(&p, NULL, "unknown section [%s]", l + 1);
                                break;
                        }
                        snprintf(section, sizeof section, "%s", l + 1);
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
                if (section[0] == '\0') {
                        r = fail(&p, NULL, "%s= appears before any [Section]", key);
                        break;
                }
                for (k = 0; k < ELEMENTSOF(keys); k++)
                        if (streq(keys[k].section, section) && streq(keys[k].key, key))
                                break;
                if (k == ELEMENTSOF(keys)) {
                        r = fail(&p, key, "unknown key");
                        break;
                }
                if (set_on[k]) {
                        r = fail(&p, key, "set twice (first on line %u)", set_on[k]);
                        break;
                }
                if (value[0] == '\0') {
                        r = fail(&p, key, "empty value");
                        break;
                }
                set_on[k] = p.line;
                r = keys[k].parse(&p, key, value, (char *)c + keys[k].offset);
                if (r < 0)
                        break;
        }
        if (r == 0 && ferror(f))
                r = -EIO;
        for (size_t k = 0; r == 0 && k < ELEMENTSOF(keys); k++) {
                if (!keys[k].required || set_on[k])
                        continue;
                size_t s = 0;
                while (!streq(sections[s], keys[k].section))
                        s++;
                p.line = section_line[s];
                snprintf(section, sizeof section, "%s", keys[k].section);
                r = section_line[s] ? fail(&p, keys[k].key, "required key is missing")
                                    : fail(&p, keys[k].key, "required key is missing (no [%s] section)", section);
        }
        if (r == 0 && (!c->cert_file) != (!c->key_file)) {
                p.line = section_line[1];
                snprintf(section, sizeof section, "Uplink");
                r = fail(&p, c->cert_file ? "KeyFile" : "CertFile", "CertFile= and KeyFile= go together");
        }
        if (r < 0) {
                if (ret_error)
                        *ret_error = TAKE_PTR(p.error);
                free(p.error);
                return r;
        }
        *ret = TAKE_PTR(c);
        return 0;
}

int config_load(const char *path, Config **ret, char **ret_error)
{
        FILE *f = fopen(path, "re");
        int r;

        if (!f) {
                r = -errno;
                if (ret_error)
                        (void)!asprintf(ret_error, "%s: cannot open: %s", path, strerror(-r));
                return r;
        }
        r = config_parse(f, path, ret, ret_error);
        fclose(f);
        return r;
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
