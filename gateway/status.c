#include <errno.h>
#include <math.h>
#include <string.h>

#include "common/log.h"
#include "common/macro.h"
#include "common/timefmt.h"
#include "gateway/status.h"

/* ---- values ---- */

/* jansson refuses text that is not UTF-8 (json_string() returns NULL), and a field that cannot be set
 * must not cost the whole status: a radio name cut at 31 bytes can end inside a character. Such
 * text goes with its non-ASCII bytes as '?'. NULL only on ENOMEM. */
static json_t *text(const char *s)
{
        _cleanup_free_ char *ascii = NULL;
        json_t *j = json_string(s);

        if (j)
                return j;
        ascii = strdup(s);
        if (!ascii)
                return NULL;
        for (char *p = ascii; *p; p++)
                if ((unsigned char)*p >= 0x80)
                        *p = '?';
        return json_string(ascii);
}

/* As gateway/json-writer.c writes numbers in items: whole numbers as integers, NaN and infinities
 * as null (jansson has no real for them). */
static json_t *number(double v)
{
        if (!isfinite(v))
                return json_null();
        if (v == (double)(int64_t)v && fabs(v) < 1e15)
                return json_integer((json_int_t)v);
        return json_real(v);
}

static json_t *time_text(int64_t usec)
{
        char buf[RFC3339_MAX];
        return json_string(format_rfc3339(buf, usec));
}

/* Sets key to v (taking v's reference, also on failure). v NULL means an allocation failed. */
static int set(json_t *o, const char *key, json_t *v)
{
        return json_object_set_new(o, key, v) < 0 ? -ENOMEM : 0;
}

/* A new object set as key in o: borrowed, valid as long as o. NULL on ENOMEM. */
static json_t *set_object(json_t *o, const char *key)
{
        json_t *j = json_object();
        return set(o, key, j) < 0 ? NULL : j;
}

/* ---- sections, in the order they appear ---- */

/* The queue's figures, from the outbox and the uplink. */
static int add_queue(json_t *o, const StatusSources *s)
{
        Outbox *ob = s->outbox;
        json_t *lanes;
        int r = 0;

        r |= set(o, "time", time_text(s->now_usec));
        r |= set(o, "backlog", json_integer((json_int_t)(outbox_backlog_total(ob) + outbox_pending(ob))));
        lanes = set_object(o, "backlog_by_lane");
        if (!lanes)
                return -ENOMEM;
        for (Lane l = 0; l < _LANE_MAX; l++)
                r |= set(lanes, lane_name(l), json_integer((json_int_t)outbox_backlog(ob, l)));
        r |= set(o, "dropped", json_integer((json_int_t)outbox_dropped(ob)));
        /* Seqs skipped after unclean stops: gaps that are no loss. */
        r |= set(o, "skipped", json_integer((json_int_t)outbox_skipped(ob)));
        if (s->mqtt) {
                /* Refused by the broker and sent again; too large for it, sent as a notice. */
                r |= set(o, "refused", json_integer((json_int_t)mqtt_refused(s->mqtt)));
                r |= set(o, "too_large", json_integer((json_int_t)mqtt_too_large(s->mqtt)));
        }
        r |= set(o, "last_seq", json_integer((json_int_t)outbox_last_seq(ob)));
        r |= set(o, "epoch", json_integer((json_int_t)outbox_epoch(ob)));
        return r < 0 ? -ENOMEM : 0;
}

/* The stores' health: a failing commit, what waits in memory, a replaced file. */
static int add_store(json_t *o, const StatusSources *s)
{
        Outbox *ob = s->outbox;
        const char *counters_memory = s->devices ? devices_memory_reason(s->devices) : NULL,
                   *counters_replaced = s->devices ? devices_replaced(s->devices) : NULL;
        json_t *store = set_object(o, "store"), *replaced;
        int r = 0;

        if (!store)
                return -ENOMEM;
        r |= set(store, "ok", json_boolean(outbox_failing_since(ob) == 0 && !outbox_memory_reason(ob)));
        if (outbox_memory_reason(ob)) /* the disk could not hold the store at start: all in memory */
                r |= set(store, "memory_only", text(outbox_memory_reason(ob)));
        if (counters_memory)
                r |= set(store, "counters_memory_only", text(counters_memory));
        if (outbox_failing_since(ob)) {
                r |= set(store, "error", text(outbox_last_error(ob) ?: "unknown error"));
                r |= set(store, "failing_since", time_text((int64_t)outbox_failing_since(ob)));
        }
        r |= set(store, "failed_commits", json_integer((json_int_t)outbox_failed_commits(ob)));
        r |= set(store, "in_memory", json_integer((json_int_t)outbox_pending(ob)));
        r |= set(store, "alerts_in_memory", json_integer((json_int_t)outbox_pending_alerts(ob)));
        if (outbox_refusing(ob))
                r |= set(store, "refusing", text(outbox_refusing(ob)));
        if (outbox_replaced(ob) || counters_replaced) {
                replaced = json_array();
                r |= set(store, "replaced", replaced);
                if (replaced && outbox_replaced(ob))
                        r |= json_array_append_new(replaced, text(outbox_replaced(ob))) < 0 ? -ENOMEM : 0;
                if (replaced && counters_replaced)
                        r |= json_array_append_new(replaced, text(counters_replaced)) < 0 ? -ENOMEM : 0;
        }
        return r < 0 ? -ENOMEM : 0;
}

/* The radio: why it does not run, or its adapter and discovery. */
static int add_bluetooth(json_t *o, const StatusSources *s)
{
        json_t *bt;
        int r = 0;

        if (!s->bluez && !s->bluez_error)
                return 0;
        bt = set_object(o, "bluetooth");
        if (!bt)
                return -ENOMEM;
        if (s->bluez_error)
                return set(bt, "error", text(s->bluez_error));
        r |= set(bt, "adapter", bluez_adapter(s->bluez) ? text(bluez_adapter(s->bluez)) : json_null());
        r |= set(bt, "discovering", json_boolean(bluez_discovering(s->bluez)));
        r |= set(bt, "unknown_devices", json_integer((json_int_t)bluez_unknown_devices(s->bluez)));
        return r < 0 ? -ENOMEM : 0;
}

/* One provisioned radio sensor (index i of the configuration and of the BLE client): when it was last
 * heard, how well, what it said. */
static int add_sensor(json_t *sensors, const StatusSources *s, size_t i)
{
        const SensorConfig *sc = &s->config->sensors[i];
        Device *dev = s->devices ? devices_find(s->devices, sc->id) : NULL;
        json_t *j = set_object(sensors, sc->id), *last;
        int r = 0;

        if (!j)
                return -ENOMEM;
        r |= set(j, "last_seen", dev && dev->last_seen_usec ? time_text(dev->last_seen_usec) : json_null());
        if (bluez_rssi(s->bluez, i))
                r |= set(j, "rssi", json_integer(bluez_rssi(s->bluez, i)));
        r |= set(j, "connected", json_boolean(bluez_connected(s->bluez, i)));
        if (dev && dev->has_battery)
                r |= set(j, "battery", number(dev->battery));
        if (dev && dev->last_metric[0]) {
                last = set_object(j, "last_value");
                if (!last)
                        return -ENOMEM;
                r |= set(last, dev->last_is_event ? "event" : "metric", text(dev->last_metric));
                r |= set(last, "value", number(dev->last_value));
        }
        r |= set(j, "frames", json_integer(dev ? (json_int_t)dev->frames : 0));
        r |= set(j, "rejected", json_integer(dev ? (json_int_t)dev->rejected : 0));
        return r < 0 ? -ENOMEM : 0;
}

/* Devices around that are not provisioned: for the technician. */
static int add_unprovisioned(json_t *o, const StatusSources *s)
{
        const BluezUnknown *u;
        size_t n = bluez_unknown_list(s->bluez, &u);
        json_t *list = json_array();
        int r = set(o, "unprovisioned", list);

        for (size_t i = 0; r >= 0 && i < n; i++) {
                json_t *j = json_object();
                if (json_array_append_new(list, j) < 0)
                        return -ENOMEM;
                r |= set(j, "address", text(u[i].address));
                if (u[i].name[0])
                        r |= set(j, "name", text(u[i].name));
                if (u[i].rssi)
                        r |= set(j, "rssi", json_integer(u[i].rssi));
                r |= set(j, "bthome", json_boolean(u[i].bthome));
                if (u[i].uuids[0])
                        r |= set(j, "services", text(u[i].uuids));
        }
        return r < 0 ? -ENOMEM : 0;
}

/* Without BLE (the simulated home, or BLE down): what the device registry heard, for the page. */
static int add_registry_sensors(json_t *o, const StatusSources *s)
{
        json_t *sensors = set_object(o, "sensors");
        int r = 0;

        if (!sensors)
                return -ENOMEM;
        for (size_t i = 0; i < devices_count(s->devices); i++) {
                Device *dev = devices_at(s->devices, i);
                json_t *j = set_object(sensors, dev->id), *last;
                if (!j)
                        return -ENOMEM;
                r |= set(j, "last_seen", dev->last_seen_usec ? time_text(dev->last_seen_usec) : json_null());
                if (dev->has_battery)
                        r |= set(j, "battery", number(dev->battery));
                if (dev->last_metric[0]) {
                        last = set_object(j, "last_value");
                        if (!last)
                                return -ENOMEM;
                        r |= set(last, dev->last_is_event ? "event" : "metric", text(dev->last_metric));
                        r |= set(last, "value", number(dev->last_value));
                }
                r |= set(j, "frames", json_integer((json_int_t)dev->frames));
                r |= set(j, "rejected", json_integer((json_int_t)dev->rejected));
        }
        return r < 0 ? -ENOMEM : 0;
}

static int add_radio_sensors(json_t *o, const StatusSources *s)
{
        json_t *sensors;

        if (!s->bluez)
                return s->all_devices && s->devices ? add_registry_sensors(o, s) : 0;
        sensors = set_object(o, "sensors");
        if (!sensors)
                return -ENOMEM;
        for (size_t i = 0; i < s->config->n_sensors; i++)
                if (add_sensor(sensors, s, i) < 0)
                        return -ENOMEM;
        return add_unprovisioned(o, s);
}

/* Each wired input: its state, or why it does not work. */
static int add_inputs(json_t *o, const StatusSources *s)
{
        json_t *inputs;
        int r = 0;

        if (!s->gpio || gpio_inputs_count(s->gpio) == 0)
                return 0;
        inputs = set_object(o, "inputs");
        if (!inputs)
                return -ENOMEM;
        for (size_t i = 0; i < gpio_inputs_count(s->gpio); i++) {
                json_t *j = set_object(inputs, gpio_input_id(s->gpio, i));
                if (!j)
                        return -ENOMEM;
                if (gpio_input_error(s->gpio, i))
                        r |= set(j, "error", text(gpio_input_error(s->gpio, i)));
                else
                        r |= set(j, "state", json_integer(gpio_input_state(s->gpio, i)));
        }
        return r < 0 ? -ENOMEM : 0;
}

/* The technician's page: where, and why it is down. Absent when it is turned off (Listen= empty):
 * nothing is down then, and the status stays small for brokers with a small maximum packet. */
static int add_web(json_t *o, const StatusSources *s)
{
        json_t *web;
        int r = 0;

        if (!s->web_url && !s->web_error)
                return 0;
        web = set_object(o, "web");
        if (!web)
                return -ENOMEM;
        r |= set(web, "url", s->web_url ? text(s->web_url) : json_null());
        r |= set(web, "up", json_boolean(s->web_url && !s->web_error));
        if (s->web_error || !s->web_url)
                r |= set(web, "error", text(s->web_error ?: "off: Listen= is empty"));
        return r < 0 ? -ENOMEM : 0;
}

json_t *status_build(const StatusSources *s, const char *state, const char *reason, bool full)
{
        json_t *o = json_object();
        int r = 0;

        if (!o)
                return NULL;
        r |= set(o, "state", text(state));
        r |= set(o, "gateway", text(s->config->gateway_id));
        r |= set(o, "version", text(HCGW_VERSION));
        if (reason)
                r |= set(o, "reason", text(reason));
        if (r >= 0 && full && s->outbox) {
                if (add_queue(o, s) < 0 || add_store(o, s) < 0 || add_bluetooth(o, s) < 0 ||
                    add_radio_sensors(o, s) < 0 || add_inputs(o, s) < 0 || add_web(o, s) < 0)
                        r = -ENOMEM;
                else
                        r = set(o, "uptime_s", json_integer((json_int_t)(s->uptime_usec / 1000000)));
        }
        if (r < 0) {
                json_decref(o);
                return NULL;
        }
        return o;
}

char *status_format(const StatusSources *s, const char *state, const char *reason, bool full)
{
        json_t *j = status_build(s, state, reason, full);
        char *text;

        if (!j)
                return NULL;
        /* 15 significant digits: what json-writer.c gives a reading's value when they suffice (36.6,
         * not jansson's 17-digit 36.600000000000001); a status is read by people. */
        text = json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(15));
        json_decref(j);
        return text;
}
