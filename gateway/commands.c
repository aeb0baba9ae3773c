#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/log.h"
#include "common/macro.h"
#include "common/time-util.h"
#include "gateway/clock.h"
#include "gateway/command-memo.h"
#include "gateway/command.h"
#include "gateway/commands.h"
#include "gateway/ratelimit.h"

/* A technician may press "send test alarm" a few times; a script or a stuck sender must not page the
 * nurses all day: 3 at once, then one a minute. */
#define TEST_ALARM_BURST 3
#define TEST_ALARM_INTERVAL_USEC (60ULL * 1000 * 1000)

struct Commands {
        sd_event *event; /* a reference */
        Alerts *alerts;  /* borrowed */
        Ingest *ingest;  /* borrowed */
        void (*publish_status)(void *userdata);
        void *userdata;
        CommandMemo *memo;     /* answers to recent commands, by request id */
        RateLimit test_alarms; /* CLOCK_MONOTONIC */
};

/* What a handler decided; made into the reply by reply_text(). */
typedef struct Outcome {
        bool ok;
        const char *error; /* static, or error_buf; NULL when ok */
        char error_buf[128];
        char alert_id[ALERT_ID_MAX]; /* empty: none */
        bool remember; /* carried out (or under way): answer a repeat alike; true unless refused
                        * without effect */
} Outcome;

static void refuse(Outcome *o, bool remember, const char *error)
{
        o->ok = false;
        o->error = error;
        o->remember = remember;
}

/* ---- the handlers ---- */

static void handle_test_alarm(Commands *cmds, const Command *c, Outcome *ret)
{
        const char *rid = c->request_id[0] ? c->request_id : "-";
        uint64_t now_mono = 0, wait_usec = 0;
        int r;

        (void)sd_event_now(cmds->event, CLOCK_MONOTONIC, &now_mono);
        if (!ratelimit_take(&cmds->test_alarms, now_mono, &wait_usec)) {
                unsigned long long s = (unsigned long long)(wait_usec / 1000000 + 1);
                log_warning("Test alarm refused (request %s): rate-limited, next in %llu s.", rid, s);
                snprintf(ret->error_buf, sizeof ret->error_buf,
                         "test alarms are rate-limited: try again in %llu s", s);
                return refuse(ret, false, ret->error_buf);
        }
        log_notice("Test alarm requested (request %s)", rid);
        r = alerts_raise_test_alarm(cmds->alerts, c->message, now_realtime(), ret->alert_id);
        if (r < 0)
                return refuse(ret, true, "could not store the alert");
        ret->ok = true;
}

static void handle_status(Commands *cmds, const Command *c, Outcome *ret)
{
        if (cmds->publish_status)
                cmds->publish_status(cmds->userdata);
        ret->ok = true;
}

static void handle_observation(Commands *cmds, const Command *c, Outcome *ret)
{
        Reading rd = {.value = c->value,
                      .time_usec = now_realtime(),
                      .time_quality = decode_context_now().now_quality};
        int r;

        if (!ingest_rules_running(cmds->ingest))
                return refuse(ret, true, "the rules are not running");
        if (c->acvpu) {
                ingest_nurse_consciousness(cmds->ingest, c->acvpu);
                ret->ok = true;
                return;
        }
        (void)metric_from_name(c->metric, &rd.metric); /* command_parse() checked it */
        rd.unit = metric_default_unit(rd.metric);
        /* command_parse() refuses other units too; the rules' ranges are in this one. */
        if (c->unit[0] && !streq(c->unit, rd.unit))
                return refuse(ret, true, "give the value in the metric's usual unit");
        snprintf(rd.sensor, sizeof rd.sensor, "nurse");
        /* The nurse is told "ok" only once it is on disk. */
        r = ingest_nurse_reading(cmds->ingest, &rd);
        if (r == -ENOMEM)
                return refuse(ret, false, "out of memory");
        if (r == -ENOSPC) /* refused, not kept: the nurse may send it again later */
                return refuse(ret, false, "refused: the gateway's disk is full, send it again later");
        if (r == -ENOBUFS)
                return refuse(ret, false,
                              "refused: the gateway's disk cannot be written and its memory is full, send "
                              "it again later");
        if (r > 0)
                return refuse(
                    ret, true,
                    "kept in memory only (the gateway's disk cannot be used): it is sent, but lost if the "
                    "gateway stops first; do not send it again");
        if (r < 0)
                return refuse(
                    ret, true,
                    "not stored yet (the gateway's disk): kept in memory and retried, do not send again");
        ret->ok = true;
}

/* The one table: every command command_parse() knows, and who carries it out. */
typedef void (*command_handler_fn)(Commands *cmds, const Command *c, Outcome *ret);
static const command_handler_fn handlers[_COMMAND_KIND_MAX] = {
    [COMMAND_TEST_ALARM] = handle_test_alarm,
    [COMMAND_STATUS] = handle_status,
    [COMMAND_OBSERVATION] = handle_observation,
};

/* ---- answers ---- */

/* {"ok":..., "request_id":..., "error":..., "alert_id":...}, compact, in that order; the optional
 * fields only when they have a value. NULL on ENOMEM. All strings here are UTF-8: ours, or checked
 * by jansson when the payload was parsed. */
static char *reply_text(const Outcome *o, const char *request_id)
{
        json_t *j = json_object();
        char *s = NULL;
        int r = 0;

        if (!j)
                return NULL;
        r |= json_object_set_new(j, "ok", json_boolean(o->ok));
        if (request_id && request_id[0])
                r |= json_object_set_new(j, "request_id", json_string(request_id));
        if (o->error)
                r |= json_object_set_new(j, "error", json_string(o->error));
        if (o->alert_id[0])
                r |= json_object_set_new(j, "alert_id", json_string(o->alert_id));
        if (r == 0)
                s = json_dumps(j, JSON_COMPACT);
        json_decref(j);
        return s;
}

/* The "request_id" string of a JSON payload that command_parse() refused, if it has one that fits
 * buf (size bytes, the caller's). */
static bool request_id_of(const void *payload, size_t len, char *buf, size_t size)
{
        json_t *j =
            len <= COMMAND_PAYLOAD_MAX ? json_loadb(payload, len, JSON_REJECT_DUPLICATES, NULL) : NULL;
        const char *id = json_string_value(json_object_get(j, "request_id"));
        bool ok = id && strlen(id) < size;
        if (ok)
                memcpy(buf, id, strlen(id) + 1);
        json_decref(j);
        return ok;
}

int commands_dispatch(Commands *cmds, const char *name, const void *payload, size_t len, char **ret_reply)
{
        const char *error = NULL, *answer;
        Outcome o = {.remember = true};
        Command c;
        char *s;
        int r;

        assert(cmds && name && ret_reply);
        r = command_parse(name, payload, len, &c, &error);
        if (r < 0) {
                char rid[sizeof c.request_id];
                log_warning("Refused command '%s': %s", name, error);
                /* A refusal carries the request id when the payload has one, so that the sender can
                 * tell which request it answers; it is not remembered (the request may be sent again,
                 * mended). */
                refuse(&o, false, error);
                s = reply_text(&o, request_id_of(payload, len, rid, sizeof rid) ? rid : NULL);
                if (!s)
                        return log_oom();
                *ret_reply = s;
                return 0;
        }
        answer = command_memo_get(cmds->memo, name, c.request_id);
        if (answer) {
                log_info("Command '%s' with request id %s arrived again, answered as before.", name,
                         c.request_id);
                s = strdup(answer);
                if (!s)
                        return log_oom();
                *ret_reply = s;
                return 0;
        }
        assert(c.kind < _COMMAND_KIND_MAX && handlers[c.kind]);
        handlers[c.kind](cmds, &c, &o);
        s = reply_text(&o, c.request_id);
        if (!s)
                return log_oom();
        if (o.remember && command_memo_put(cmds->memo, name, c.request_id, s) < 0)
                log_oom();
        *ret_reply = s;
        return 0;
}

int commands_new(const CommandsOptions *o, Commands **ret)
{
        Commands *cmds;
        int r;

        assert(o && o->event && o->alerts && o->ingest && ret);
        cmds = calloc(1, sizeof *cmds);
        if (!cmds)
                return -ENOMEM;
        cmds->event = sd_event_ref(o->event);
        cmds->alerts = o->alerts;
        cmds->ingest = o->ingest;
        cmds->publish_status = o->publish_status;
        cmds->userdata = o->userdata;
        cmds->test_alarms =
            (RateLimit){.interval_usec = TEST_ALARM_INTERVAL_USEC, .burst = TEST_ALARM_BURST};
        r = command_memo_new(&cmds->memo);
        if (r < 0) {
                commands_free(cmds);
                return r;
        }
        *ret = cmds;
        return 0;
}

Commands *commands_free(Commands *cmds)
{
        if (!cmds)
                return NULL;
        command_memo_free(cmds->memo);
        sd_event_unref(cmds->event);
        free(cmds);
        return NULL;
}
