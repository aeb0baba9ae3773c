/* The objects mirrored from org.bluez: adapters, devices and GATT characteristics, each allocated on
 * its own and kept in a list, and the reading of their properties (GetManagedObjects,
 * InterfacesAdded, PropertiesChanged). What a property change sets off (discovery, a connection, a
 * subscription, a frame) is decided in the other files. */
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/mac.h"
#include "sensors/bluez-internal.h"

#define BTHOME_UUID "0000fcd2-0000-1000-8000-00805f9b34fb"

static uint16_t uuid16_of(const char *uuid)
{
        unsigned v;
        /* 0000xxxx-0000-1000-8000-00805f9b34fb: the Bluetooth base UUID */
        if (strlen(uuid) == 36 && strncmp(uuid, "0000", 4) == 0 &&
            strcasecmp(uuid + 8, "-0000-1000-8000-00805f9b34fb") == 0 && sscanf(uuid + 4, "%4x", &v) == 1)
                return (uint16_t)v;
        return 0;
}

/* ---- lookups ---- */

BluezAdapter *bluez_find_adapter(const Bluez *b, const char *path)
{
        BLUEZ_LIST_FOREACH(a, b->adapters)
        if (strcmp(a->path, path) == 0)
                return a;
        return NULL;
}

BluezDevice *bluez_find_device(const Bluez *b, const char *path)
{
        BLUEZ_LIST_FOREACH(d, b->devices)
        if (strcmp(d->path, path) == 0)
                return d;
        return NULL;
}

static BluezChar *find_char(const Bluez *b, const char *path)
{
        BLUEZ_LIST_FOREACH(c, b->chars)
        if (strcmp(c->path, path) == 0)
                return c;
        return NULL;
}

bool bluez_path_is_under(const char *path, const char *parent)
{
        size_t n = parent ? strlen(parent) : 0;
        return n && strncmp(path, parent, n) == 0 && path[n] == '/';
}

BluezDevice *bluez_device_of_char(const Bluez *b, const BluezChar *c)
{
        BLUEZ_LIST_FOREACH(d, b->devices)
        if (bluez_path_is_under(c->path, d->path))
                return d;
        return NULL;
}

/* ---- life of the objects ---- */

BluezDevice *bluez_device_ref(BluezDevice *d)
{
        d->n_ref++;
        return d;
}

BluezDevice *bluez_device_unref(BluezDevice *d)
{
        if (!d || --d->n_ref > 0)
                return NULL;
        /* The mirror's reference goes last through device_detach(), which stops what the device owns. */
        assert(!d->bluez && !d->retry && !d->no_chars);
        free(d->path);
        free(d);
        return NULL;
}

void bluez_device_unref_void(void *d)
{
        bluez_device_unref(d);
}

BluezChar *bluez_char_ref(BluezChar *c)
{
        c->n_ref++;
        return c;
}

BluezChar *bluez_char_unref(BluezChar *c)
{
        if (!c || --c->n_ref > 0)
                return NULL;
        assert(!c->bluez && !c->io && !c->resubscribe);
        free(c->path);
        free(c);
        return NULL;
}

void bluez_char_unref_void(void *c)
{
        bluez_char_unref(c);
}

/* The adapter at path, added if there was none; NULL only when out of memory. */
static BluezAdapter *add_adapter(Bluez *b, const char *path)
{
        BluezAdapter *a = bluez_find_adapter(b, path);
        if (a)
                return a;
        if (!(a = calloc(1, sizeof *a)) || !(a->path = strdup(path))) {
                free(a);
                return NULL;
        }
        BLUEZ_LIST_APPEND(b->adapters, a);
        return a;
}

static BluezDevice *add_device(Bluez *b, const char *path)
{
        BluezDevice *d = bluez_find_device(b, path);
        if (d)
                return d;
        if (!(d = calloc(1, sizeof *d)) || !(d->path = strdup(path))) {
                free(d);
                return NULL;
        }
        d->n_ref = 1; /* the mirror's */
        d->bluez = b;
        d->provisioned = -1;
        d->backoff = BLUEZ_BACKOFF;
        BLUEZ_LIST_APPEND(b->devices, d);
        return d;
}

static BluezChar *add_char(Bluez *b, const char *path)
{
        BluezChar *c = find_char(b, path);
        if (c)
                return c;
        if (!(c = calloc(1, sizeof *c)) || !(c->path = strdup(path))) {
                free(c);
                return NULL;
        }
        c->n_ref = 1;
        c->bluez = b;
        c->held = BLUEZ_BACKOFF;
        BLUEZ_LIST_APPEND(b->chars, c);
        return c;
}

/* Out of the mirror: what it owns stops now; a call still carrying it finds ->bluez NULL. */
static void device_detach(Bluez *b, BluezDevice *d)
{
        BLUEZ_LIST_REMOVE(b->devices, d);
        d->retry = sd_event_source_disable_unref(d->retry);
        d->no_chars = sd_event_source_disable_unref(d->no_chars);
        d->bluez = NULL;
        bluez_device_unref(d);
}

static void char_detach(Bluez *b, BluezChar *c)
{
        BLUEZ_LIST_REMOVE(b->chars, c);
        bluez_char_stop(c);
        c->bluez = NULL;
        bluez_char_unref(c);
}

static void adapter_free(Bluez *b, BluezAdapter *a)
{
        BLUEZ_LIST_REMOVE(b->adapters, a);
        free(a->path);
        free(a);
}

void bluez_mirror_forget(Bluez *b)
{
        while (b->adapters)
                adapter_free(b, b->adapters);
        while (b->devices)
                device_detach(b, b->devices);
        while (b->chars)
                char_detach(b, b->chars);
        b->unknown = 0;
        free(b->adapter);
        b->adapter = NULL;
        b->starting = false;
        b->call = sd_bus_slot_unref(b->call);
        if (b->retry)
                (void)sd_event_source_set_enabled(b->retry, SD_EVENT_OFF);
}

void bluez_mirror_remove(Bluez *b, const char *path)
{
        BluezAdapter *a = bluez_find_adapter(b, path);
        BluezDevice *d = bluez_find_device(b, path);
        BluezChar *c = find_char(b, path);

        if (a) {
                adapter_free(b, a);
                if (b->adapter && strcmp(b->adapter, path) == 0) {
                        bluez_log(b, LOG_WARNING, "Bluetooth adapter %s went away", path);
                        free(b->adapter);
                        b->adapter = NULL;
                }
        }
        if (d) {
                if (d->provisioned < 0 && b->unknown > 0)
                        b->unknown--;
                device_detach(b, d);
        }
        if (c)
                char_detach(b, c);
}

/* ---- reading properties ---- */

/* Reads one property's variant into object, returning 1, or 0 when it is not one it wants (the
 * caller skips it), or a negative errno. contents is the variant's signature. */
typedef int (*PropertyReader)(Bluez *b, void *object, const char *name, const char *contents,
                              sd_bus_message *m);

/* a{sv}, each entry through read. */
static int read_property_array(Bluez *b, void *object, PropertyReader read, sd_bus_message *m)
{
        int r = sd_bus_message_enter_container(m, 'a', "{sv}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
                const char *name, *contents;
                char type;
                if ((r = sd_bus_message_read(m, "s", &name)) < 0 ||
                    (r = sd_bus_message_peek_type(m, &type, &contents)) < 0)
                        return r;
                if ((r = read(b, object, name, contents, m)) < 0)
                        return r;
                if (r == 0 && (r = sd_bus_message_skip(m, "v")) < 0)
                        return r;
                if ((r = sd_bus_message_exit_container(m)) < 0)
                        return r;
        }
        if (r < 0)
                return r;
        return sd_bus_message_exit_container(m);
}

static int read_bool(sd_bus_message *m, bool *ret)
{
        int v, r = sd_bus_message_read(m, "v", "b", &v);
        if (r >= 0)
                *ret = v;
        return r;
}

static int read_adapter_property(Bluez *b, void *object, const char *name, const char *contents,
                                 sd_bus_message *m)
{
        BluezAdapter *a = object;
        int r;
        if (strcmp(contents, "b") != 0)
                return 0;
        if (strcmp(name, "Powered") == 0)
                r = read_bool(m, &a->powered);
        else if (strcmp(name, "Discovering") == 0)
                r = read_bool(m, &a->discovering);
        else
                return 0;
        return r < 0 ? r : 1;
}

static int read_adapter_properties(Bluez *b, const char *path, sd_bus_message *m)
{
        BluezAdapter *a = add_adapter(b, path);
        bool was_discovering, was_powered;
        int r;
        if (!a)
                return -ENOMEM;
        was_discovering = a->discovering;
        was_powered = a->powered;
        r = read_property_array(b, a, read_adapter_property, m);
        if (r >= 0)
                bluez_discovery_adapter_changed(b, a, was_powered, was_discovering);
        return r;
}

/* A device seen with its address: one of ours, or one more unknown one. */
static void provision(Bluez *b, BluezDevice *d)
{
        if (!d->has_address || d->provisioned >= 0)
                return;
        for (size_t i = 0; i < b->n_cfg; i++)
                if (memcmp(b->cfg[i].address, d->address, 6) == 0) {
                        d->provisioned = (int)i;
                        return;
                }
        b->unknown++;
}

/* UUIDs (as): the 16-bit ones, for the technician's list of unknown devices. */
static int read_uuids(BluezDevice *d, sd_bus_message *m)
{
        const char *u;
        size_t n = 0;
        int r;
        if ((r = sd_bus_message_enter_container(m, 'v', "as")) < 0 ||
            (r = sd_bus_message_enter_container(m, 'a', "s")) < 0)
                return r;
        d->info.uuids[0] = '\0';
        while ((r = sd_bus_message_read(m, "s", &u)) > 0) {
                uint16_t x = uuid16_of(u);
                if (x && n + 6 < sizeof d->info.uuids)
                        n += (size_t)snprintf(d->info.uuids + n, sizeof d->info.uuids - n, "%s%04x",
                                              n ? " " : "", x);
        }
        if (r < 0 || (r = sd_bus_message_exit_container(m)) < 0)
                return r;
        return sd_bus_message_exit_container(m);
}

/* ServiceData (a{sv} in a variant): BTHome's is the frame of a provisioned BTHome sensor. */
static int read_service_data(Bluez *b, BluezDevice *d, sd_bus_message *m)
{
        int r;
        if ((r = sd_bus_message_enter_container(m, 'v', "a{sv}")) < 0 ||
            (r = sd_bus_message_enter_container(m, 'a', "{sv}")) < 0)
                return r;
        while ((r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
                const char *uuid;
                const void *data = NULL;
                size_t len = 0;
                if ((r = sd_bus_message_read(m, "s", &uuid)) < 0)
                        return r;
                if (sd_bus_message_enter_container(m, 'v', "ay") > 0) {
                        if ((r = sd_bus_message_read_array(m, 'y', &data, &len)) < 0 ||
                            (r = sd_bus_message_exit_container(m)) < 0)
                                return r;
                        if (strcasecmp(uuid, BTHOME_UUID) == 0) {
                                d->info.bthome = true;
                                if (d->provisioned >= 0 && b->cfg[d->provisioned].advertises)
                                        bluez_emit_frame(b, d, 0, data, len);
                        }
                } else if ((r = sd_bus_message_skip(m, "v")) < 0)
                        return r;
                if ((r = sd_bus_message_exit_container(m)) < 0)
                        return r;
        }
        if (r < 0 || (r = sd_bus_message_exit_container(m)) < 0)
                return r;
        return sd_bus_message_exit_container(m);
}

static int read_device_string(Bluez *b, BluezDevice *d, const char *name, sd_bus_message *m)
{
        const char *s;
        int r = sd_bus_message_read(m, "v", "s", &s);
        if (r < 0)
                return r;
        if (strcmp(name, "Address") == 0) {
                d->has_address = parse_mac(s, d->address) >= 0;
                /* The technician sees the address as bluetoothd wrote it, not as we would. */
                snprintf(d->info.address, sizeof d->info.address, "%s", s);
                provision(b, d);
        } else
                snprintf(d->info.name, sizeof d->info.name, "%s", s);
        return 1;
}

static int read_rssi(Bluez *b, BluezDevice *d, sd_bus_message *m)
{
        int16_t v;
        int r = sd_bus_message_read(m, "v", "n", &v);
        if (r < 0)
                return r;
        d->info.rssi = v;
        if (d->provisioned >= 0) {
                b->rssi[d->provisioned] = v;
                bluez_device_seen(b, d);
                bluez_device_maybe_connect(b, d); /* it advertises: awake */
        }
        return 1;
}

/* Connected or ServicesResolved. */
static int read_link_state(Bluez *b, BluezDevice *d, const char *name, sd_bus_message *m)
{
        bool v;
        int r = read_bool(m, &v);
        if (r < 0)
                return r;
        if (d->provisioned >= 0)
                bluez_log(b, LOG_DEBUG, "%s: %s=%d", bluez_device_id(b, d), name, v);
        if (name[0] == 'C')
                bluez_device_set_connected(b, d, v);
        else
                bluez_device_set_resolved(b, d, v);
        return 1;
}

static int read_device_property(Bluez *b, void *object, const char *name, const char *contents,
                                sd_bus_message *m)
{
        BluezDevice *d = object;
        int r;
        if ((strcmp(name, "Address") == 0 || strcmp(name, "Name") == 0) && strcmp(contents, "s") == 0)
                return read_device_string(b, d, name, m);
        if (strcmp(name, "UUIDs") == 0 && strcmp(contents, "as") == 0)
                return (r = read_uuids(d, m)) < 0 ? r : 1;
        if (strcmp(name, "RSSI") == 0 && strcmp(contents, "n") == 0)
                return read_rssi(b, d, m);
        if (strcmp(name, "Paired") == 0 && strcmp(contents, "b") == 0)
                return (r = read_bool(m, &d->paired)) < 0 ? r : 1;
        if ((strcmp(name, "Connected") == 0 || strcmp(name, "ServicesResolved") == 0) &&
            strcmp(contents, "b") == 0)
                return read_link_state(b, d, name, m);
        if (strcmp(name, "ServiceData") == 0 && strcmp(contents, "a{sv}") == 0)
                return (r = read_service_data(b, d, m)) < 0 ? r : 1;
        return 0;
}

static int read_device_properties(Bluez *b, const char *path, sd_bus_message *m)
{
        BluezDevice *d = add_device(b, path);
        int r;
        if (!d)
                return -ENOMEM;
        r = read_property_array(b, d, read_device_property, m);
        if (r >= 0)
                bluez_device_maybe_connect(b, d);
        return r;
}

/* Flags (as): whether it notifies (and not only indicates). */
static int read_flags(BluezChar *c, sd_bus_message *m)
{
        const char *f;
        int r;
        if ((r = sd_bus_message_enter_container(m, 'v', "as")) < 0 ||
            (r = sd_bus_message_enter_container(m, 'a', "s")) < 0)
                return r;
        c->can_notify = false;
        while ((r = sd_bus_message_read(m, "s", &f)) > 0)
                if (strcmp(f, "notify") == 0)
                        c->can_notify = true;
        if (r < 0 || (r = sd_bus_message_exit_container(m)) < 0)
                return r;
        return sd_bus_message_exit_container(m);
}

static int read_value(Bluez *b, BluezChar *c, sd_bus_message *m)
{
        const void *data;
        size_t len;
        int r;
        if ((r = sd_bus_message_enter_container(m, 'v', "ay")) < 0 ||
            (r = sd_bus_message_read_array(m, 'y', &data, &len)) < 0 ||
            (r = sd_bus_message_exit_container(m)) < 0)
                return r;
        bluez_char_value(b, c, data, len);
        return 1;
}

static int read_char_property(Bluez *b, void *object, const char *name, const char *contents,
                              sd_bus_message *m)
{
        BluezChar *c = object;
        int r;
        if (strcmp(name, "UUID") == 0 && strcmp(contents, "s") == 0) {
                const char *u;
                if ((r = sd_bus_message_read(m, "v", "s", &u)) < 0)
                        return r;
                c->uuid16 = uuid16_of(u);
                return 1;
        }
        if (strcmp(name, "Notifying") == 0 && strcmp(contents, "b") == 0)
                return (r = read_bool(m, &c->notifying)) < 0 ? r : 1;
        if (strcmp(name, "Flags") == 0 && strcmp(contents, "as") == 0)
                return (r = read_flags(c, m)) < 0 ? r : 1;
        if (strcmp(name, "Value") == 0 && strcmp(contents, "ay") == 0)
                return read_value(b, c, m);
        return 0;
}

static int read_char_properties(Bluez *b, const char *path, sd_bus_message *m)
{
        BluezChar *c = add_char(b, path);
        BluezDevice *d;
        int r;
        if (!c)
                return -ENOMEM;
        r = read_property_array(b, c, read_char_property, m);
        if (r >= 0 && (d = bluez_device_of_char(b, c)) && d->connected)
                bluez_device_subscribe(b, d);
        return r;
}

int bluez_mirror_read_properties(Bluez *b, const char *path, const char *iface, sd_bus_message *m)
{
        if (strcmp(iface, ADAPTER_IFACE) == 0)
                return read_adapter_properties(b, path, m);
        if (strcmp(iface, DEVICE_IFACE) == 0)
                return read_device_properties(b, path, m);
        if (strcmp(iface, CHAR_IFACE) == 0)
                return read_char_properties(b, path, m);
        return sd_bus_message_skip(m, "a{sv}");
}

int bluez_mirror_read_interfaces(Bluez *b, const char *path, sd_bus_message *m)
{
        int r = sd_bus_message_enter_container(m, 'a', "{sa{sv}}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(m, 'e', "sa{sv}")) > 0) {
                const char *iface;
                if ((r = sd_bus_message_read(m, "s", &iface)) < 0 ||
                    (r = bluez_mirror_read_properties(b, path, iface, m)) < 0 ||
                    (r = sd_bus_message_exit_container(m)) < 0)
                        return r;
        }
        if (r < 0)
                return r;
        return sd_bus_message_exit_container(m);
}
