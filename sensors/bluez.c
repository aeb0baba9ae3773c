/* The BlueZ client: its life (bluez_new, bluez_start, bluez_free), the org.bluez signals that feed the
 * mirror, what status reads, and the small helpers the other bluez files share. The rest is in
 * bluez-mirror.c, bluez-discovery.c, bluez-device.c and bluez-agent.c (see bluez-internal.h). */
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/time-util.h"
#include "sensors/bluez-internal.h"

/* ---- helpers for the bluez files ---- */

const char *bluez_device_id(const Bluez *b, const BluezDevice *d)
{
        assert(d->provisioned >= 0);
        return b->cfg[d->provisioned].id;
}

void bluez_device_seen(Bluez *b, const BluezDevice *d)
{
        assert(d->provisioned >= 0);
        b->last_seen[d->provisioned] = now_realtime();
}

void bluez_emit_frame(Bluez *b, const BluezDevice *d, uint16_t uuid16, const void *data, size_t len)
{
        bluez_device_seen(b, d);
        b->sink.frame(b->sink.userdata, bluez_device_id(b, d), uuid16, data, len, now_realtime());
}

/* ---- signals and the start ---- */

static size_t count_adapters(const Bluez *b)
{
        size_t n = 0;
        BLUEZ_LIST_FOREACH(a, b->adapters)
        n++;
        return n;
}

static size_t count_devices(const Bluez *b)
{
        size_t n = 0;
        BLUEZ_LIST_FOREACH(d, b->devices)
        n++;
        return n;
}

static int on_managed_objects(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
        Bluez *b = userdata;
        const sd_bus_error *e = sd_bus_message_get_error(m);
        int r;

        b->call = sd_bus_slot_unref(b->call);
        if (e) {
                bluez_log(b, LOG_WARNING, "bluetoothd is not there (%s); waiting for it", e->name);
                return 0;
        }
        b->present = true;
        r = sd_bus_message_enter_container(m, 'a', "{oa{sa{sv}}}");
        while (r > 0 && (r = sd_bus_message_enter_container(m, 'e', "oa{sa{sv}}")) > 0) {
                const char *path;
                if ((r = sd_bus_message_read(m, "o", &path)) < 0 ||
                    (r = bluez_mirror_read_interfaces(b, path, m)) < 0 ||
                    (r = sd_bus_message_exit_container(m)) < 0)
                        break;
        }
        if (r < 0)
                bluez_log(b, LOG_ERR, "Could not read bluetoothd's objects: %s", strerror(-r));
        bluez_log(b, LOG_INFO, "bluetoothd: %zu adapters, %zu devices (%zu not provisioned)",
                  count_adapters(b), count_devices(b), b->unknown);
        bluez_agent_register(b);
        bluez_discovery_ensure(b);
        /* Devices bluetoothd already knew (bonded ones come back from its storage): now that the
         * adapter is chosen, connect to those on it. */
        BLUEZ_LIST_FOREACH(d, b->devices)
        bluez_device_maybe_connect(b, d);
        return 0;
}

static void get_objects(Bluez *b)
{
        int r;
        b->call = sd_bus_slot_unref(b->call);
        r = sd_bus_call_method_async(b->bus, &b->call, BLUEZ, "/", "org.freedesktop.DBus.ObjectManager",
                                     "GetManagedObjects", on_managed_objects, b, "");
        if (r < 0)
                bluez_log(b, LOG_ERR, "Cannot ask bluetoothd for its objects: %s", strerror(-r));
}

static int on_owner_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
        Bluez *b = userdata;
        const char *name, *old, *new;
        if (sd_bus_message_read(m, "sss", &name, &old, &new) < 0 || strcmp(name, BLUEZ) != 0)
                return 0;
        if (old[0]) {
                bluez_log(b, LOG_WARNING,
                          "bluetoothd went away; its devices are forgotten until it is back");
                b->present = false;
                bluez_mirror_forget(b);
        }
        if (new[0]) {
                bluez_log(b, LOG_NOTICE, "bluetoothd is there; reading its objects");
                get_objects(b);
        }
        return 0;
}

static int on_interfaces_added(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
        Bluez *b = userdata;
        const char *path;
        if (!b->present || sd_bus_message_read(m, "o", &path) < 0)
                return 0;
        if (bluez_mirror_read_interfaces(b, path, m) < 0)
                bluez_log(b, LOG_WARNING, "Could not read InterfacesAdded for %s", path);
        bluez_discovery_ensure(b);
        return 0;
}

static int on_interfaces_removed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
        Bluez *b = userdata;
        const char *path, *iface;
        if (!b->present || sd_bus_message_read(m, "o", &path) < 0 ||
            sd_bus_message_enter_container(m, 'a', "s") < 0)
                return 0;
        while (sd_bus_message_read(m, "s", &iface) > 0)
                if (strcmp(iface, ADAPTER_IFACE) == 0 || strcmp(iface, DEVICE_IFACE) == 0)
                        bluez_mirror_remove(b, path);
        bluez_discovery_ensure(b);
        return 0;
}

static int on_properties_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
        Bluez *b = userdata;
        const char *iface, *path = sd_bus_message_get_path(m);
        if (!b->present || !path || sd_bus_message_read(m, "s", &iface) < 0)
                return 0;
        if (bluez_mirror_read_properties(b, path, iface, m) < 0)
                bluez_log(b, LOG_WARNING, "Could not read PropertiesChanged for %s", path);
        return 0;
}

int bluez_new(sd_event *e, const char *adapter, const BluezDeviceConfig *devices, size_t n,
              const SensorSink *sink, const BluezCallbacks *cb, Bluez **ret)
{
        Bluez *b = calloc(1, sizeof *b);
        if (!b)
                return -ENOMEM;
        b->event = sd_event_ref(e);
        b->sink = *sink;
        b->cb = *cb;
        b->backoff = BLUEZ_BACKOFF;
        b->cfg = calloc(n ? n : 1, sizeof *b->cfg);
        b->last_seen = calloc(n ? n : 1, sizeof *b->last_seen);
        b->rssi = calloc(n ? n : 1, sizeof *b->rssi);
        if (!b->cfg || !b->last_seen || !b->rssi || (adapter && !(b->want_adapter = strdup(adapter)))) {
                bluez_free(b);
                return -ENOMEM;
        }
        for (size_t i = 0; i < n; i++) {
                b->cfg[i] = devices[i];
                b->cfg[i].id = strdup(devices[i].id);
                b->n_cfg++;
                if (!b->cfg[i].id) {
                        bluez_free(b);
                        return -ENOMEM;
                }
        }
        *ret = b;
        return 0;
}

Bluez *bluez_free(Bluez *b)
{
        if (!b)
                return NULL;
        /* Leave as a polite client does (a reload sets up a new client at once): end our discovery
         * session and our agent. bluetoothd would do both when our connection closes; saying it first
         * means the next client does not find discovery still running for a client that is gone. */
        if (b->bus && b->present && bluez_discovering(b))
                (void)sd_bus_call_method_async(b->bus, NULL, BLUEZ, b->adapter, ADAPTER_IFACE,
                                               "StopDiscovery", NULL, NULL, "");
        bluez_agent_unregister(b);
        /* Detach every object first: a call still under way holds a reference to its object, and
         * closing the bus below ends those calls, dropping the last references. */
        bluez_mirror_forget(b);
        sd_bus_slot_unref(b->match_owner);
        sd_bus_slot_unref(b->match_added);
        sd_bus_slot_unref(b->match_removed);
        sd_bus_slot_unref(b->match_props);
        sd_bus_slot_unref(b->agent);
        sd_event_source_disable_unref(b->retry);
        sd_bus_flush_close_unref(b->bus);
        for (size_t i = 0; i < b->n_cfg; i++)
                free((char *)b->cfg[i].id);
        free(b->cfg);
        free(b->last_seen);
        free(b->rssi);
        free(b->unknown_list);
        free(b->want_adapter);
        sd_event_unref(b->event);
        free(b);
        return NULL;
}

int bluez_start(Bluez *b)
{
        int r = sd_bus_open_system(&b->bus);
        if (r < 0)
                return r;
        if ((r = sd_bus_attach_event(b->bus, b->event, 0)) < 0 ||
            (r = sd_bus_add_match(
                 b->bus, &b->match_owner,
                 "type='signal',sender='org.freedesktop.DBus',path='/org/freedesktop/DBus',"
                 "interface='org.freedesktop.DBus',member='NameOwnerChanged',arg0='org.bluez'",
                 on_owner_changed, b)) < 0 ||
            (r = sd_bus_add_match(
                 b->bus, &b->match_added,
                 "type='signal',sender='org.bluez',interface='org.freedesktop.DBus.ObjectManager',"
                 "member='InterfacesAdded'",
                 on_interfaces_added, b)) < 0 ||
            (r = sd_bus_add_match(
                 b->bus, &b->match_removed,
                 "type='signal',sender='org.bluez',interface='org.freedesktop.DBus.ObjectManager',"
                 "member='InterfacesRemoved'",
                 on_interfaces_removed, b)) < 0 ||
            (r = sd_bus_add_match(
                 b->bus, &b->match_props,
                 "type='signal',sender='org.bluez',interface='org.freedesktop.DBus.Properties',"
                 "member='PropertiesChanged',path_namespace='/org/bluez'",
                 on_properties_changed, b)) < 0)
                return r;
        get_objects(b);
        return 0;
}

bool bluez_discovering(const Bluez *b)
{
        const BluezAdapter *a = b->adapter ? bluez_find_adapter(b, b->adapter) : NULL;
        return a && a->discovering;
}

const char *bluez_adapter(const Bluez *b)
{
        return b->adapter;
}

size_t bluez_unknown_devices(const Bluez *b)
{
        return b->unknown;
}

int64_t bluez_last_seen(const Bluez *b, size_t i)
{
        return i < b->n_cfg ? b->last_seen[i] : 0;
}

int bluez_rssi(const Bluez *b, size_t i)
{
        return i < b->n_cfg ? b->rssi[i] : 0;
}

size_t bluez_unknown_list(const Bluez *b, const BluezUnknown **ret)
{
        Bluez *m = (Bluez *)b; /* a cache, rebuilt on each call */
        size_t n = 0;
        free(m->unknown_list);
        m->unknown_list = calloc(32, sizeof *m->unknown_list);
        if (m->unknown_list)
                BLUEZ_LIST_FOREACH(d, b->devices)
        if (d->provisioned < 0 && d->has_address && n < 32)
                m->unknown_list[n++] = d->info;
        *ret = m->unknown_list;
        return m->unknown_list ? n : 0;
}

bool bluez_connected(const Bluez *b, size_t i)
{
        BLUEZ_LIST_FOREACH(d, b->devices)
        if (d->provisioned == (int)i)
                return d->connected;
        return false;
}
