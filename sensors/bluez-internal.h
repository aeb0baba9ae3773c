/* What the files of the BlueZ client share; nothing outside sensors/bluez*.c includes this.
 *
 *   bluez.c            the client: bluez_new/free/start, the bus signals, the public getters, the
 *                      small helpers the other files use (a device's id, last seen, frames to the
 *                      sink); logging, clocks, back-off and MAC addresses come from common/
 *   bluez-mirror.c     the objects mirrored from org.bluez (adapters, devices, characteristics) and
 *                      the reading of their properties
 *   bluez-discovery.c  choosing and powering the adapter, LE discovery and its back-off
 *   bluez-device.c     connected health devices: connect and back-off, Pair, AcquireNotify/StartNotify,
 *                      the Current Time write, the "no measurement characteristic" watch
 *   bluez-agent.c      the pairing agent (org.bluez.Agent1)
 *
 * Ownership: the Bluez owns the mirror. Every object is allocated on its own, so its address stays
 * the same for its whole life. Devices and characteristics are reference counted: the mirror holds
 * one reference, and each asynchronous D-Bus call about one holds another until sd-bus frees the
 * call (answered, failed, or the bus closed). When an object leaves the mirror (InterfacesRemoved,
 * bluetoothd gone, bluez_free) it is detached: its ->bluez becomes NULL and its timers and socket are
 * stopped; a call answered later finds ->bluez NULL and does nothing. So no callback ever touches a
 * freed object, and an answer never lands on a newer object that happens to have the same path.
 * Adapters hold no reference: no call carries one (discovery's calls carry the Bluez, through a slot
 * the Bluez owns and drops when the mirror is forgotten). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <syslog.h>

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "common/backoff.h"
#include "common/log.h"
#include "common/time-util.h"
#include "sensors/bluez.h"

#define BLUEZ "org.bluez"
#define ADAPTER_IFACE "org.bluez.Adapter1"
#define DEVICE_IFACE "org.bluez.Device1"
#define CHAR_IFACE "org.bluez.GattCharacteristic1"

/* The mirror keeps each kind of object in a singly linked list, in the order bluetoothd announced
 * them (the first adapter is the fallback choice; the first device of a sensor is the one status
 * reports). A handful of objects: walking the list is cheap. */
#define BLUEZ_LIST_FOREACH(i, head) for (__typeof__(*(head)) *i = (head); i; i = i->next)
#define BLUEZ_LIST_APPEND(head, item)                                                                       \
        do {                                                                                                \
                __typeof__(item) *_p = &(head);                                                             \
                while (*_p)                                                                                 \
                        _p = &(*_p)->next;                                                                  \
                (item)->next = NULL;                                                                        \
                *_p = (item);                                                                               \
        } while (0)
#define BLUEZ_LIST_REMOVE(head, item)                                                                       \
        do {                                                                                                \
                for (__typeof__(item) *_p = &(head); *_p; _p = &(*_p)->next)                                \
                        if (*_p == (item)) {                                                                \
                                *_p = (item)->next;                                                         \
                                (item)->next = NULL;                                                        \
                                break;                                                                      \
                        }                                                                                   \
        } while (0)

typedef struct BluezAdapter BluezAdapter;
typedef struct BluezDevice BluezDevice;
typedef struct BluezChar BluezChar;

struct BluezAdapter {
        BluezAdapter *next;
        char *path; /* owned */
        bool powered, discovering;
};

struct BluezDevice {
        BluezDevice *next;
        unsigned n_ref;
        Bluez *bluez;      /* the client; NULL once detached from the mirror (see above) */
        char *path;        /* owned */
        BluezUnknown info; /* what it advertises, for an unknown device */
        bool has_address;
        uint8_t address[6];
        int provisioned; /* index into the configuration, or -1 */
        bool connected, resolved;
        bool connecting;           /* a Connect is under way */
        bool subscribed;           /* StartNotify asked in this connection */
        bool paired;               /* bluetoothd's Paired: keys are stored */
        bool pairing;              /* a Pair is under way */
        bool pair_failed;          /* in this connection: subscribe without a bond */
        int64_t next_try;          /* CLOCK_MONOTONIC usec: no Connect before this (back-off) */
        Backoff backoff;           /* failed Connects since the last one that worked */
        sd_event_source *retry;    /* owned: tries again at next_try; its userdata is this device */
        sd_event_source *no_chars; /* owned: connected and resolved, but no measurement characteristic yet */
};

struct BluezChar {
        BluezChar *next;
        unsigned n_ref;
        Bluez *bluez; /* the client; NULL once detached from the mirror */
        char *path;   /* owned */
        uint16_t uuid16;
        bool notifying;      /* bluetoothd's Notifying: a StartNotify session, kept over reconnects */
        bool can_notify;     /* Flags has "notify" (not only "indicate"): AcquireNotify may work */
        bool acquire_failed; /* AcquireNotify was refused once: StartNotify from now on */
        sd_event_source *io; /* owned: the AcquireNotify socket, one notification per packet */
        sd_event_source *resubscribe; /* owned: subscribes again while bluetoothd still holds an
                                       * earlier session ("Notify acquired"); its userdata is this */
        Backoff held;                 /* "Notify acquired" answers since the last subscription */
};

struct Bluez {
        sd_event *event;
        sd_bus *bus;
        char *want_adapter;     /* "hci0", or NULL */
        BluezDeviceConfig *cfg; /* owned, ids too */
        size_t n_cfg;
        int64_t *last_seen; /* per configured device */
        int *rssi;          /* per configured device */
        SensorSink sink;
        BluezCallbacks cb;

        sd_bus_slot *match_owner, *match_added, *match_removed, *match_props;
        sd_bus_slot *call;      /* GetManagedObjects or a discovery step; its userdata is the Bluez */
        sd_event_source *retry; /* the next discovery attempt */
        Backoff backoff;        /* failed discovery steps since discovery last ran */
        bool present;           /* org.bluez has an owner */
        bool starting;          /* a SetDiscoveryFilter/StartDiscovery is under way */

        BluezAdapter *adapters;
        BluezDevice *devices;
        BluezChar *chars;
        BluezUnknown *unknown_list; /* rebuilt on demand */
        sd_bus_slot *agent;         /* our Agent1 object */
        char *adapter;              /* the path in use, owned */
        size_t unknown;
};

/* ---- bluez.c: helpers ---- */

/* A log line through the callbacks, if any: common's log_to_callback(), so the format is checked
 * against its arguments at every call. b is evaluated once and may be the void * userdata of a
 * callback. */
#define bluez_log(b, prio, ...)                                                                             \
        ({                                                                                                  \
                const Bluez *_bl = (b);                                                                     \
                log_to_callback(_bl->cb.log, _bl->cb.userdata, (prio), __VA_ARGS__);                        \
        })
/* The back-off of Connect and of discovery, each with a Backoff of its own: 1 s doubling, at most a
 * minute (1, 2, 4, 8, 16, 32, 60, 60, ... s), taken with backoff_next_ceiling(), i.e. without jitter.
 * Jitter spreads many clients that retry against one server at the same moment (the broker); here
 * the only peer is the local bluetoothd, whose Connect waits anyway for the device to advertise, so
 * spreading the tries buys nothing, and exact times keep the log ("trying again in 1 s") and the
 * tests that wait on it exact. */
#define BLUEZ_BACKOFF ((Backoff){.base_usec = USEC_PER_SEC, .cap_usec = 60 * USEC_PER_SEC})
/* A configured device was heard from (its last-seen time for status). */
void bluez_device_seen(Bluez *b, const BluezDevice *d);
/* Hands data up to the sink as a frame of device d (which must be provisioned); data is borrowed for
 * the call only. uuid16 is the characteristic, 0 for BTHome service data. */
void bluez_emit_frame(Bluez *b, const BluezDevice *d, uint16_t uuid16, const void *data, size_t len);
/* The configured id of provisioned device d; borrowed, valid until bluez_free(). */
const char *bluez_device_id(const Bluez *b, const BluezDevice *d);

/* ---- bluez-mirror.c: the objects ---- */

/* Lookups return a borrowed pointer, valid while the object is in the mirror: until the next
 * InterfacesRemoved or bluetoothd loss is handled. Take a reference to keep it past a return to the
 * event loop. */
BluezAdapter *bluez_find_adapter(const Bluez *b, const char *path);
BluezDevice *bluez_find_device(const Bluez *b, const char *path);
/* The device a characteristic belongs to (its path is under the device's), or NULL. */
BluezDevice *bluez_device_of_char(const Bluez *b, const BluezChar *c);
/* /org/bluez/hci0/dev_X/service1/char2 is under /org/bluez/hci0/dev_X, which is under /org/bluez/hci0. */
bool bluez_path_is_under(const char *path, const char *parent);

/* Reference counting for what an asynchronous call carries. unref frees on the last reference and
 * returns NULL; the _void forms are sd-bus/sd-event destroy callbacks. */
BluezDevice *bluez_device_ref(BluezDevice *d);
BluezDevice *bluez_device_unref(BluezDevice *d);
void bluez_device_unref_void(void *d);
BluezChar *bluez_char_ref(BluezChar *c);
BluezChar *bluez_char_unref(BluezChar *c);
void bluez_char_unref_void(void *c);

/* Drops the object at path (adapter, device or characteristic) from the mirror. */
void bluez_mirror_remove(Bluez *b, const char *path);
/* Drops the whole mirror (bluetoothd went away, or bluez_free), and the discovery call under way. */
void bluez_mirror_forget(Bluez *b);
/* a{sa{sv}}: the interfaces of the object at path, as GetManagedObjects and InterfacesAdded give
 * them. Creates the objects it does not have yet. */
int bluez_mirror_read_interfaces(Bluez *b, const char *path, sd_bus_message *m);
/* a{sv}: the properties of iface on path, as PropertiesChanged gives them (and the message is
 * positioned at the array). */
int bluez_mirror_read_properties(Bluez *b, const char *path, const char *iface, sd_bus_message *m);

/* ---- bluez-discovery.c ---- */

/* Picks an adapter if none is in use, powers it on if needed, and starts LE discovery on it, unless
 * that runs or is being started. */
void bluez_discovery_ensure(Bluez *b);
/* Tries again with back-off, saying why in the log. */
void bluez_discovery_retry_later(Bluez *b, const char *why);
/* The adapter in use changed its Powered or Discovering (was_* is what it said before). */
void bluez_discovery_adapter_changed(Bluez *b, const BluezAdapter *a, bool was_powered,
                                     bool was_discovering);

/* ---- bluez-device.c ---- */

/* A provisioned device with measurement characteristics to subscribe to. */
bool bluez_device_is_health(const Bluez *b, const BluezDevice *d);
/* A provisioned health device is there (it appeared, or advertises): connect, unless backing off. */
void bluez_device_maybe_connect(Bluez *b, BluezDevice *d);
/* bluetoothd's Connected or ServicesResolved of d changed to v. */
void bluez_device_set_connected(Bluez *b, BluezDevice *d, bool v);
void bluez_device_set_resolved(Bluez *b, BluezDevice *d, bool v);
/* Once per connection, when its services are resolved and the measurement is among them (if it is
 * not yet, the characteristic's InterfacesAdded calls this again). */
void bluez_device_subscribe(Bluez *b, BluezDevice *d);
/* A new Value of characteristic c: a notification or indication when we subscribed to it. data is
 * borrowed for the call only. */
void bluez_char_value(Bluez *b, BluezChar *c, const void *data, size_t len);
/* Ends notifications through an acquired socket, if any (the link dropped, or a newer socket came). */
void bluez_char_stop(BluezChar *c);

/* ---- bluez-agent.c ---- */

/* Exports our Agent1 object (once) and registers it with bluetoothd as the default agent. */
void bluez_agent_register(Bluez *b);
/* Asks bluetoothd to forget our agent, if we registered one; bluez_free() drops the object. */
void bluez_agent_unregister(Bluez *b);
