/* LE discovery: the configured adapter or the first powered one (powered on if needed), a filter
 * (Transport=le, DuplicateData=true), StartDiscovery, and back-off when a step fails or discovery
 * stops. One step is under way at a time, in b->call; dropping the mirror cancels it. */
#include <stdlib.h>
#include <string.h>

#include "sensors/bluez-internal.h"

static int on_retry(sd_event_source *s, uint64_t usec, void *userdata)
{
        bluez_discovery_ensure(userdata);
        return 0;
}

void bluez_discovery_retry_later(Bluez *b, const char *why)
{
        uint64_t delay = backoff_next_ceiling(&b->backoff);
        bluez_log(b, LOG_WARNING, "Bluetooth discovery: %s; trying again in %.0f s", why, delay / 1e6);
        if (b->retry) {
                (void)sd_event_source_set_time_relative(b->retry, delay);
                (void)sd_event_source_set_enabled(b->retry, SD_EVENT_ONESHOT);
        } else
                (void)sd_event_add_time_relative(b->event, &b->retry, CLOCK_MONOTONIC, delay, 0, on_retry,
                                                 b);
}

static int on_start_discovery(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
        Bluez *b = userdata;
        const sd_bus_error *e = sd_bus_message_get_error(m);
        b->call = sd_bus_slot_unref(b->call);
        b->starting = false;
        if (e) {
                /* InProgress: another client is starting it, or it is being set up; NotReady: the
                 * adapter is powering up. Both pass. */
                bluez_discovery_retry_later(b, e->name ? e->name : "failed");
                return 0;
        }
        backoff_reset(&b->backoff);
        bluez_log(b, LOG_INFO, "Bluetooth LE discovery running on %s", b->adapter);
        return 0;
}

static int on_set_filter(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
        Bluez *b = userdata;
        const sd_bus_error *e = sd_bus_message_get_error(m);
        int r;
        b->call = sd_bus_slot_unref(b->call);
        if (e) {
                b->starting = false;
                bluez_discovery_retry_later(b, e->name ? e->name : "SetDiscoveryFilter failed");
                return 0;
        }
        r = sd_bus_call_method_async(b->bus, &b->call, BLUEZ, b->adapter, ADAPTER_IFACE, "StartDiscovery",
                                     on_start_discovery, b, "");
        if (r < 0) {
                b->starting = false;
                bluez_discovery_retry_later(b, strerror(-r));
        }
        return 0;
}

static int on_powered(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
        Bluez *b = userdata;
        const sd_bus_error *e = sd_bus_message_get_error(m);
        b->call = sd_bus_slot_unref(b->call);
        b->starting = false;
        if (e)
                bluez_discovery_retry_later(b, e->name ? e->name : "cannot power the adapter on");
        else {
                /* Success shows up as PropertiesChanged Powered=true, which starts discovery; the real
                 * bluetoothd may send that before this answer, while we were still "starting". */
                BluezAdapter *a = b->adapter ? bluez_find_adapter(b, b->adapter) : NULL;
                if (a && a->powered)
                        bluez_discovery_ensure(b);
        }
        return 0;
}

static void choose_adapter(Bluez *b)
{
        BluezAdapter *pick = NULL;
        if (b->adapter && bluez_find_adapter(b, b->adapter))
                return;
        BLUEZ_LIST_FOREACH(a, b->adapters)
        {
                const char *name = strrchr(a->path, '/');
                if (b->want_adapter) {
                        if (name && strcmp(name + 1, b->want_adapter) == 0)
                                pick = a;
                } else if (a->powered && !pick)
                        pick = a;
        }
        if (!pick && !b->want_adapter)
                pick = b->adapters; /* the first, powered or not (NULL if none) */
        if (!pick)
                return;
        free(b->adapter);
        b->adapter = strdup(pick->path);
        if (b->adapter)
                bluez_log(b, LOG_INFO, "Using Bluetooth adapter %s", b->adapter);
}

static int power_on(Bluez *b)
{
        bluez_log(b, LOG_NOTICE, "Powering Bluetooth adapter %s on", b->adapter);
        return sd_bus_call_method_async(b->bus, &b->call, BLUEZ, b->adapter,
                                        "org.freedesktop.DBus.Properties", "Set", on_powered, b, "ssv",
                                        ADAPTER_IFACE, "Powered", "b", 1);
}

/* SetDiscoveryFilter, then (on_set_filter) StartDiscovery. */
static int set_filter(Bluez *b)
{
        sd_bus_message *msg = NULL;
        int r = sd_bus_message_new_method_call(b->bus, &msg, BLUEZ, b->adapter, ADAPTER_IFACE,
                                               "SetDiscoveryFilter");
        if (r >= 0)
                r = sd_bus_message_append(msg, "a{sv}", 2, "Transport", "s", "le", "DuplicateData", "b", 1);
        if (r >= 0)
                r = sd_bus_call_async(b->bus, &b->call, msg, on_set_filter, b, 0);
        sd_bus_message_unref(msg);
        return r;
}

void bluez_discovery_ensure(Bluez *b)
{
        BluezAdapter *a;
        int r;

        if (!b->present || b->starting)
                return;
        choose_adapter(b);
        if (!b->adapter || !(a = bluez_find_adapter(b, b->adapter)) || a->discovering)
                return;
        b->starting = true;
        r = a->powered ? set_filter(b) : power_on(b);
        if (r < 0) {
                b->starting = false;
                bluez_discovery_retry_later(b, strerror(-r));
        }
}

void bluez_discovery_adapter_changed(Bluez *b, const BluezAdapter *a, bool was_powered, bool was_discovering)
{
        if (!b->adapter || strcmp(b->adapter, a->path) != 0)
                return;
        if (was_discovering && !a->discovering)
                /* Someone stopped it, or the adapter was reset: start it again, with back-off.
                 * bluetoothd may resume it by itself (another client's stop restarts it with the
                 * filters left), answering our StartDiscovery with InProgress meanwhile. */
                bluez_discovery_retry_later(b, "it stopped");
        else if (!was_discovering && a->discovering)
                backoff_reset(&b->backoff);
        else if (!was_powered && a->powered)
                bluez_discovery_ensure(b);
}
