#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-bus.h>

#include "sensors/bluez.h"

#define BLUEZ "org.bluez"
#define ADAPTER_IFACE "org.bluez.Adapter1"
#define DEVICE_IFACE "org.bluez.Device1"
#define CHAR_IFACE "org.bluez.GattCharacteristic1"
#define AGENT_PATH "/org/homecare/agent"
#define CTS_UUID16 0x2A2B
#define BTHOME_UUID "0000fcd2-0000-1000-8000-00805f9b34fb"
#define RETRY_BASE_USEC (1000 * 1000)
#define RETRY_CAP_USEC (60ULL * 1000 * 1000)
/* After a link drops, wait this long before asking to connect again. A Connect at once races
 * bluetoothd's own shutdown (SIGTERM powers the adapters off, dropping the links, and a Connect it
 * still accepts leaves a half-made connection): on Debian bookworm's 6.1 kernel that ends in a
 * kernel BUG in hci_chan_del when bluetoothd exits. See docs/bluetooth.md. */
#define RECONNECT_GRACE_USEC (1000 * 1000)
#define CALL_TIMEOUT_USEC (90ULL * 1000 * 1000)
#define NO_CHARS_USEC (10ULL * 1000 * 1000)

typedef struct Adapter {
        char *path;
        bool powered, discovering;
} Adapter;

typedef struct Dev {
        char *path;
        BluezUnknown info; /* what it advertises, for an unknown device */
        bool has_address;
        uint8_t address[6];
        int provisioned;   /* index into the configuration, or -1 */
        bool connected, resolved;
        bool connecting;   /* a Connect is under way */
        bool subscribed;   /* StartNotify asked in this connection */
        bool paired;       /* bluetoothd's Paired: keys are stored */
        bool pairing;      /* a Pair is under way */
        bool pair_failed;  /* in this connection: subscribe without a bond */
        int64_t next_try;  /* CLOCK_MONOTONIC usec: no Connect before this (back-off) */
        unsigned attempt;
        sd_event_source *retry; /* tries again at next_try (its context is the path: devs move) */
        sd_event_source *no_chars; /* connected and resolved, but no measurement characteristic yet */
} Dev;

typedef struct Char {
        char *path;
        uint16_t uuid16;
        bool notifying;         /* bluetoothd's Notifying: a StartNotify session, kept over reconnects */
        bool can_notify;        /* Flags has "notify" (not only "indicate"): AcquireNotify may work */
        bool acquire_failed;    /* AcquireNotify was refused once: StartNotify from now on */
        sd_event_source *io;    /* the AcquireNotify socket, one notification per packet */
} Char;

struct Bluez {
        sd_event *event;
        sd_bus *bus;
        char *want_adapter; /* "hci0", or NULL */
        BluezDeviceConfig *cfg;
        size_t n_cfg;
        int64_t *last_seen;
        int *rssi;
        SensorSink sink;
        BluezCallbacks cb;

        sd_bus_slot *match_owner, *match_added, *match_removed, *match_props, *call;
        sd_event_source *retry; /* the next discovery attempt */
        unsigned attempt;
        bool present;           /* org.bluez has an owner */
        bool starting;          /* a SetDiscoveryFilter/StartDiscovery is under way */

        Adapter *adapters;
        size_t n_adapters;
        Dev *devs;
        size_t n_devs;
        Char *chars;
        size_t n_chars;
        BluezUnknown *unknown_list; /* rebuilt on demand */
        sd_bus_slot *agent;     /* our Agent1 object */
        char *adapter;          /* the path in use */
        size_t unknown;
};

__attribute__((format(printf, 3, 4))) static void logf_(Bluez *b, int prio, const char *fmt, ...)
{
        char buf[512];
        va_list ap;
        if (!b->cb.log)
                return;
        va_start(ap, fmt);
        vsnprintf(buf, sizeof buf, fmt, ap);
        va_end(ap);
        b->cb.log(b->cb.userdata, prio, buf);
}

static int64_t now_realtime(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static bool parse_address(const char *s, uint8_t out[6])
{
        unsigned v[6];
        int n = 0;
        if (!s || sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%n", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &n) != 6 || s[n])
                return false;
        for (int i = 0; i < 6; i++)
                out[i] = (uint8_t)v[i];
        return true;
}

/* ---- the mirror ---- */

/* Adapters, devices and characteristics live in arrays of structs that begin with their object path:
 * one pair of helpers finds and adds in all three. */
static void *table_find(void *array, size_t n, size_t size, const char *path)
{
        for (size_t i = 0; i < n; i++) {
                char *e = (char *)array + i * size;
                if (strcmp(*(char **)e, path) == 0)
                        return e;
        }
        return NULL;
}

/* Returns the element for path, new (zeroed but for its path, *ret_new set) if there was none. */
static void *table_add(void **array, size_t *n, size_t size, const char *path, bool *ret_new)
{
        void *e = table_find(*array, *n, size, path), *a;
        char *copy;

        *ret_new = false;
        if (e)
                return e;
        if (!(copy = strdup(path)))
                return NULL;
        if (!(a = realloc(*array, (*n + 1) * size))) {
                free(copy);
                return NULL;
        }
        *array = a;
        e = (char *)a + *n * size;
        memset(e, 0, size);
        *(char **)e = copy;
        (*n)++;
        *ret_new = true;
        return e;
}

static Adapter *find_adapter(Bluez *b, const char *path)
{
        return table_find(b->adapters, b->n_adapters, sizeof(Adapter), path);
}

static Dev *find_dev(Bluez *b, const char *path)
{
        return table_find(b->devs, b->n_devs, sizeof(Dev), path);
}

static Char *find_char(Bluez *b, const char *path)
{
        return table_find(b->chars, b->n_chars, sizeof(Char), path);
}

/* /org/bluez/hci0/dev_X/service1/char2 is under /org/bluez/hci0/dev_X, which is under /org/bluez/hci0. */
static bool path_is_under(const char *path, const char *parent)
{
        size_t n = parent ? strlen(parent) : 0;
        return n && strncmp(path, parent, n) == 0 && path[n] == '/';
}

static Adapter *add_adapter(Bluez *b, const char *path)
{
        bool created;
        return table_add((void **)&b->adapters, &b->n_adapters, sizeof(Adapter), path, &created);
}

static Dev *add_dev(Bluez *b, const char *path)
{
        bool created;
        Dev *d = table_add((void **)&b->devs, &b->n_devs, sizeof(Dev), path, &created);
        if (d && created)
                d->provisioned = -1;
        return d;
}

static Char *add_char(Bluez *b, const char *path)
{
        bool created;
        return table_add((void **)&b->chars, &b->n_chars, sizeof(Char), path, &created);
}

static void dev_clear(Dev *d)
{
        sd_event_source_disable_unref(d->retry);
        sd_event_source_disable_unref(d->no_chars);
        free(d->path);
}

/* Ends notifications through an acquired socket, if any (the link dropped, or a newer socket came).
 * A StartNotify session is bluetoothd's to end: it keeps it over a disconnect, subscribes again by
 * itself when the device is back (and says Notifying=false only when it really ends). */
static void char_stop(Char *c)
{
        c->io = sd_event_source_disable_unref(c->io);
}

static void char_clear(Char *c)
{
        char_stop(c);
        free(c->path);
}

static void forget_all(Bluez *b)
{
        for (size_t i = 0; i < b->n_adapters; i++)
                free(b->adapters[i].path);
        for (size_t i = 0; i < b->n_devs; i++)
                dev_clear(&b->devs[i]);
        for (size_t i = 0; i < b->n_chars; i++)
                char_clear(&b->chars[i]);
        b->n_adapters = b->n_devs = b->n_chars = 0;
        b->unknown = 0;
        free(b->adapter);
        b->adapter = NULL;
        b->starting = false;
        b->call = sd_bus_slot_unref(b->call);
        if (b->retry)
                (void)sd_event_source_set_enabled(b->retry, SD_EVENT_OFF);
}

static void remove_path(Bluez *b, const char *path)
{
        for (size_t i = 0; i < b->n_adapters; i++)
                if (strcmp(b->adapters[i].path, path) == 0) {
                        free(b->adapters[i].path);
                        b->adapters[i] = b->adapters[--b->n_adapters];
                        if (b->adapter && strcmp(b->adapter, path) == 0) {
                                logf_(b, LOG_WARNING, "Bluetooth adapter %s went away", path);
                                free(b->adapter);
                                b->adapter = NULL;
                        }
                        break;
                }
        for (size_t i = 0; i < b->n_devs; i++)
                if (strcmp(b->devs[i].path, path) == 0) {
                        if (b->devs[i].provisioned < 0 && b->unknown > 0)
                                b->unknown--;
                        dev_clear(&b->devs[i]);
                        b->devs[i] = b->devs[--b->n_devs];
                        break;
                }
        for (size_t i = 0; i < b->n_chars; i++)
                if (strcmp(b->chars[i].path, path) == 0) {
                        char_clear(&b->chars[i]);
                        b->chars[i] = b->chars[--b->n_chars];
                        break;
                }
}

/* ---- discovery ---- */

static void ensure_discovery(Bluez *b);

static int on_retry(sd_event_source *s, uint64_t usec, void *userdata)
{
        ensure_discovery(userdata);
        return 0;
}

static void retry_later(Bluez *b, const char *why)
{
        uint64_t delay = RETRY_BASE_USEC << (b->attempt < 6 ? b->attempt : 6);
        if (delay > RETRY_CAP_USEC)
                delay = RETRY_CAP_USEC;
        b->attempt++;
        logf_(b, LOG_WARNING, "Bluetooth discovery: %s; trying again in %.0f s", why, delay / 1e6);
        if (b->retry) {
                (void)sd_event_source_set_time_relative(b->retry, delay);
                (void)sd_event_source_set_enabled(b->retry, SD_EVENT_ONESHOT);
        } else
                (void)sd_event_add_time_relative(b->event, &b->retry, CLOCK_MONOTONIC, delay, 0, on_retry, b);
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
                retry_later(b, e->name ? e->name : "failed");
                return 0;
        }
        b->attempt = 0;
        logf_(b, LOG_INFO, "Bluetooth LE discovery running on %s", b->adapter);
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
                retry_later(b, e->name ? e->name : "SetDiscoveryFilter failed");
                return 0;
        }
        r = sd_bus_call_method_async(b->bus, &b->call, BLUEZ, b->adapter, ADAPTER_IFACE, "StartDiscovery",
                                     on_start_discovery, b, "");
        if (r < 0) {
                b->starting = false;
                retry_later(b, strerror(-r));
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
                retry_later(b, e->name ? e->name : "cannot power the adapter on");
        else {
                /* Success shows up as PropertiesChanged Powered=true, which starts discovery; the real
                 * bluetoothd may send that before this answer, while we were still "starting". */
                Adapter *a = b->adapter ? find_adapter(b, b->adapter) : NULL;
                if (a && a->powered)
                        ensure_discovery(b);
        }
        return 0;
}

static void choose_adapter(Bluez *b)
{
        Adapter *pick = NULL;
        if (b->adapter && find_adapter(b, b->adapter))
                return;
        for (size_t i = 0; i < b->n_adapters; i++) {
                Adapter *a = &b->adapters[i];
                const char *name = strrchr(a->path, '/');
                if (b->want_adapter) {
                        if (name && strcmp(name + 1, b->want_adapter) == 0)
                                pick = a;
                } else if (a->powered && !pick)
                        pick = a;
        }
        if (!pick && !b->want_adapter && b->n_adapters > 0)
                pick = &b->adapters[0];
        if (!pick)
                return;
        free(b->adapter);
        b->adapter = strdup(pick->path);
        if (b->adapter)
                logf_(b, LOG_INFO, "Using Bluetooth adapter %s", b->adapter);
}

static void ensure_discovery(Bluez *b)
{
        Adapter *a;
        sd_bus_message *msg = NULL;
        int r;

        if (!b->present || b->starting)
                return;
        choose_adapter(b);
        if (!b->adapter || !(a = find_adapter(b, b->adapter)) || a->discovering)
                return;
        b->starting = true;
        if (!a->powered) {
                logf_(b, LOG_NOTICE, "Powering Bluetooth adapter %s on", b->adapter);
                r = sd_bus_call_method_async(b->bus, &b->call, BLUEZ, b->adapter, "org.freedesktop.DBus.Properties",
                                             "Set", on_powered, b, "ssv", ADAPTER_IFACE, "Powered", "b", 1);
        } else {
                r = sd_bus_message_new_method_call(b->bus, &msg, BLUEZ, b->adapter, ADAPTER_IFACE, "SetDiscoveryFilter");
                if (r >= 0)
                        r = sd_bus_message_append(msg, "a{sv}", 2, "Transport", "s", "le", "DuplicateData", "b", 1);
                if (r >= 0)
                        r = sd_bus_call_async(b->bus, &b->call, msg, on_set_filter, b, 0);
                sd_bus_message_unref(msg);
        }
        if (r < 0) {
                b->starting = false;
                retry_later(b, strerror(-r));
        }
}

/* ---- connected health devices ---- */

static int64_t now_mono(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* The device a characteristic belongs to: its path is under the device's. */
static Dev *dev_of_char(Bluez *b, const char *char_path)
{
        for (size_t i = 0; i < b->n_devs; i++)
                if (path_is_under(char_path, b->devs[i].path))
                        return &b->devs[i];
        return NULL;
}

static bool wanted(const Bluez *b, const Dev *d, uint16_t uuid16)
{
        const BluezDeviceConfig *c;
        if (d->provisioned < 0)
                return false;
        c = &b->cfg[d->provisioned];
        return uuid16 && (c->measure[0] == uuid16 || c->measure[1] == uuid16);
}

static bool is_health(const Bluez *b, const Dev *d)
{
        return d->provisioned >= 0 && b->cfg[d->provisioned].measure[0] != 0;
}

static void subscribe(Bluez *b, Dev *d);

typedef struct Call {
        Bluez *b;
        char *path;
} Call;

static Call *call_new(Bluez *b, const char *path)
{
        Call *c = calloc(1, sizeof *c);
        if (c && !(c->path = strdup(path))) {
                free(c);
                return NULL;
        }
        if (c)
                c->b = b;
        return c;
}

static void call_free(void *userdata)
{
        Call *c = userdata;
        free(c->path);
        free(c);
}

/* An asynchronous call with a context that sd-bus frees when the call is over (a floating slot with
 * a destroy callback), whether it was answered or the bus went away. bluetoothd answers Connect only
 * when the device advertised and the link is up, or after its own time-outs (tens of seconds with
 * the kernel's): D-Bus's default 25 s would give up first and leave its Connect running. */
static int call_async(Bluez *b, const char *path, const char *iface, const char *method,
                      sd_bus_message_handler_t cb, const char *types, ...)
{
        sd_bus_message *msg = NULL;
        sd_bus_slot *slot = NULL;
        Call *c = call_new(b, path);
        va_list ap;
        int r;

        if (!c)
                return -ENOMEM;
        r = sd_bus_message_new_method_call(b->bus, &msg, BLUEZ, path, iface, method);
        if (r >= 0) {
                va_start(ap, types);
                r = sd_bus_message_appendv(msg, types, ap);
                va_end(ap);
        }
        if (r >= 0)
                r = sd_bus_call_async(b->bus, &slot, msg, cb, c, CALL_TIMEOUT_USEC);
        sd_bus_message_unref(msg);
        if (r < 0) {
                call_free(c);
                return r;
        }
        (void)sd_bus_slot_set_destroy_callback(slot, call_free);
        (void)sd_bus_slot_set_floating(slot, 1);
        sd_bus_slot_unref(slot);
        return 0;
}

static void maybe_connect(Bluez *b, Dev *d);

static int on_connect_retry(sd_event_source *s, uint64_t usec, void *userdata)
{
        Call *c = userdata;
        Dev *d = find_dev(c->b, c->path);
        if (d)
                maybe_connect(c->b, d);
        return 0;
}

/* Connects again after delay (or when the device advertises after that). */
static void connect_after(Bluez *b, Dev *d, uint64_t delay)
{
        Call *c;
        d->next_try = now_mono() + (int64_t)delay;
        d->retry = sd_event_source_disable_unref(d->retry);
        c = call_new(b, d->path);
        if (c && sd_event_add_time_relative(b->event, &d->retry, CLOCK_MONOTONIC, delay, 0, on_connect_retry, c) >= 0)
                (void)sd_event_source_set_destroy_callback(d->retry, call_free);
        else if (c)
                call_free(c);
}

static void connect_later(Bluez *b, Dev *d, const char *why)
{
        uint64_t delay = RETRY_BASE_USEC << (d->attempt < 6 ? d->attempt : 6);
        if (delay > RETRY_CAP_USEC)
                delay = RETRY_CAP_USEC;
        /* A device that is away fails every try until it wakes: say so once, not all day. */
        logf_(b, d->attempt == 0 ? LOG_NOTICE : LOG_DEBUG,
              "Could not connect to %s (%s); trying again in %.0f s, or when it advertises after that",
              b->cfg[d->provisioned].id, why, delay / 1e6);
        d->attempt++;
        /* bluetoothd's Connect waits for the device to advertise, so trying again costs nothing. */
        connect_after(b, d, delay);
}

static int on_pair(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
        Call *c = userdata;
        Dev *d = find_dev(c->b, c->path);
        const sd_bus_error *e = sd_bus_message_get_error(m);
        if (!d)
                return 0;
        d->pairing = false;
        if (e && !sd_bus_error_has_name(e, "org.bluez.Error.AlreadyExists")) {
                logf_(c->b, LOG_WARNING, "Pairing with %s failed: %s", c->b->cfg[d->provisioned].id, e->name);
                d->pair_failed = true;
                if (!d->subscribed)
                        subscribe(c->b, d); /* Bond=yes: it may work unbonded; StartNotify will tell */
                return 0;
        }
        logf_(c->b, LOG_NOTICE, "Paired with %s", c->b->cfg[d->provisioned].id);
        d->paired = true;
        d->subscribed = false;
        subscribe(c->b, d);
        return 0;
}

static int on_start_notify(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
        Call *c = userdata;
        Bluez *b = c->b;
        Dev *d = dev_of_char(b, c->path);
        const sd_bus_error *e = sd_bus_message_get_error(m);

        if (!d)
                return 0;
        if (!e) {
                /* bluetoothd signals Notifying=true only when it changes: a session it kept over a
                 * reconnect answers this call with no signal at all. */
                Char *ch = find_char(b, c->path);
                if (ch)
                        ch->notifying = true;
                logf_(b, LOG_INFO, "Subscribed to %s of %s", c->path + strlen(d->path) + 1, b->cfg[d->provisioned].id);
                return 0;
        }
        /* Measurements of many devices need an encrypted link: bond, then subscribe again. */
        if (sd_bus_error_has_name(e, "org.bluez.Error.NotPermitted") ||
            sd_bus_error_has_name(e, "org.bluez.Error.NotAuthorized") ||
            sd_bus_error_has_name(e, "org.bluez.Error.AuthenticationFailed")) {
                logf_(b, LOG_NOTICE, "%s needs bonding (%s); pairing", b->cfg[d->provisioned].id, e->name);
                if (call_async(b, d->path, DEVICE_IFACE, "Pair", on_pair, "") >= 0)
                        return 0;
        }
        logf_(b, LOG_WARNING, "Could not subscribe to %s of %s: %s", c->path, b->cfg[d->provisioned].id, e->name);
        return 0;
}

static void start_notify(Bluez *b, Char *c);

static int on_notify_fd(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
        Call *call = userdata;
        Bluez *b = call->b;
        Char *c = find_char(b, call->path);
        Dev *d = c ? dev_of_char(b, c->path) : NULL;
        uint8_t buf[512];
        ssize_t n;

        if (revents & EPOLLIN) {
                n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
                if (n > 0 && c && d && d->provisioned >= 0) {
                        b->last_seen[d->provisioned] = now_realtime();
                        b->sink.frame(b->sink.userdata, b->cfg[d->provisioned].id, c->uuid16, buf, (size_t)n,
                                      now_realtime());
                }
                if (n > 0 || (n < 0 && errno == EAGAIN))
                        return 0;
        }
        /* HUP: the device disconnected, or bluetoothd went away (SIGKILL gives only this). The
         * connection state and NameOwnerChanged tell the rest. Every socket source belongs to its
         * characteristic (on_acquire_notify replaces, never adds), so free it through its owner. */
        if (c && c->io == s)
                char_stop(c);
        else
                (void)sd_event_source_set_enabled(s, SD_EVENT_OFF);
        return 0;
}

static int on_acquire_notify(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
        Call *call = userdata;
        Bluez *b = call->b;
        Char *c = find_char(b, call->path);
        const sd_bus_error *e = sd_bus_message_get_error(m);
        Dev *d;
        Call *ctx;
        uint16_t mtu;
        int fd, r;

        if (!c)
                return 0;
        if (!e && (!(d = dev_of_char(b, c->path)) || !d->connected)) {
                /* Disconnected while the call was on its way: the next connection subscribes again. */
                logf_(b, LOG_INFO, "AcquireNotify on %s answered after a disconnect; ignored", c->path);
                return 0;
        }
        if (e) {
                /* NotSupported, NotPermitted (bonding), Failed: StartNotify handles those cases. */
                logf_(b, LOG_INFO, "AcquireNotify on %s refused (%s); using StartNotify", c->path, e->name);
                c->acquire_failed = true;
                start_notify(b, c);
                return 0;
        }
        if ((r = sd_bus_message_read(m, "hq", &fd, &mtu)) < 0 || (fd = fcntl(fd, F_DUPFD_CLOEXEC, 3)) < 0 ||
            !(ctx = call_new(b, c->path))) {
                logf_(b, LOG_WARNING, "AcquireNotify on %s gave no usable socket; using StartNotify", c->path);
                c->acquire_failed = true;
                start_notify(b, c);
                return 0;
        }
        /* A device that disconnected and came back while the first call was on its way gets two
         * answers: the later one belongs to the current connection. Keeping both would leave a
         * source no characteristic owns, one that outlives bluez_free(). */
        if (c->io)
                logf_(b, LOG_INFO, "A second AcquireNotify answer for %s replaces the first", c->path);
        char_stop(c);
        r = sd_event_add_io(b->event, &c->io, fd, EPOLLIN, on_notify_fd, ctx);
        if (r < 0) {
                close(fd);
                call_free(ctx);
                c->acquire_failed = true;
                start_notify(b, c);
                return 0;
        }
        (void)sd_event_source_set_io_fd_own(c->io, 1);
        (void)sd_event_source_set_destroy_callback(c->io, call_free);
        logf_(b, LOG_INFO, "Acquired notifications from %s (MTU %u)", c->path, mtu);
        return 0;
}

/* Current Time Service: day, date and time as the device's local clock shows them. */
static void set_clock(Bluez *b, Dev *d, const Char *cts)
{
        struct timespec ts;
        struct tm tm;
        uint8_t v[10];
        sd_bus_message *msg = NULL;
        int r;

        clock_gettime(CLOCK_REALTIME, &ts);
        localtime_r(&ts.tv_sec, &tm);
        v[0] = (uint8_t)((tm.tm_year + 1900) & 0xFF);
        v[1] = (uint8_t)((tm.tm_year + 1900) >> 8);
        v[2] = (uint8_t)(tm.tm_mon + 1);
        v[3] = (uint8_t)tm.tm_mday;
        v[4] = (uint8_t)tm.tm_hour;
        v[5] = (uint8_t)tm.tm_min;
        v[6] = (uint8_t)tm.tm_sec;
        v[7] = (uint8_t)(tm.tm_wday == 0 ? 7 : tm.tm_wday); /* 1 = Monday .. 7 = Sunday */
        v[8] = (uint8_t)(ts.tv_nsec / 1000000 * 256 / 1000);
        v[9] = 1; /* adjust reason: manual time update */
        r = sd_bus_message_new_method_call(b->bus, &msg, BLUEZ, cts->path, CHAR_IFACE, "WriteValue");
        if (r >= 0)
                r = sd_bus_message_append_array(msg, 'y', v, sizeof v);
        if (r >= 0)
                r = sd_bus_message_append(msg, "a{sv}", 0);
        if (r >= 0)
                r = sd_bus_call_async(b->bus, NULL, msg, NULL, NULL, 0);
        sd_bus_message_unref(msg);
        if (r < 0)
                logf_(b, LOG_WARNING, "Could not set the clock of %s: %s", b->cfg[d->provisioned].id, strerror(-r));
        else
                logf_(b, LOG_INFO, "Set the clock of %s", b->cfg[d->provisioned].id);
}

static int on_disconnect_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
        Call *c = userdata;
        const sd_bus_error *e = sd_bus_message_get_error(m);
        if (e)
                logf_(c->b, LOG_WARNING, "Could not disconnect %s: %s", c->path, e->name);
        return 0;
}

static int on_no_chars(sd_event_source *s, uint64_t usec, void *userdata)
{
        Call *c = userdata;
        Dev *d = find_dev(c->b, c->path);
        if (!d || d->subscribed || !d->connected)
                return 0;
        logf_(c->b, LOG_NOTICE, "%s shows no measurement characteristic %d s after its services were resolved; "
              "disconnecting, to read its services again when it is back",
              c->b->cfg[d->provisioned].id, (int)(NO_CHARS_USEC / 1000000));
        (void)call_async(c->b, d->path, DEVICE_IFACE, "Disconnect", on_disconnect_reply, "");
        return 0;
}

/* A connected device whose measurement never shows up would sit there, connected and silent: give
 * its services a while, then drop the link so the next connection reads them again. */
static void watch_for_chars(Bluez *b, Dev *d)
{
        Call *c;
        if (d->no_chars)
                return;
        c = call_new(b, d->path);
        if (c && sd_event_add_time_relative(b->event, &d->no_chars, CLOCK_MONOTONIC, NO_CHARS_USEC, 0, on_no_chars,
                                            c) >= 0)
                (void)sd_event_source_set_destroy_callback(d->no_chars, call_free);
        else if (c)
                call_free(c);
}

/* Once per connection, when its services are resolved and the measurement is among them (if it is
 * not yet, the characteristic's InterfacesAdded calls this again). */
static void subscribe(Bluez *b, Dev *d)
{
        bool found = false;
        if (d->subscribed || !d->resolved || !is_health(b, d))
                return;
        for (size_t i = 0; i < b->n_chars; i++)
                found |= dev_of_char(b, b->chars[i].path) == d && wanted(b, d, b->chars[i].uuid16);
        if (!found) {
                logf_(b, LOG_DEBUG, "%s: services resolved, but no measurement characteristic yet",
                      b->cfg[d->provisioned].id);
                watch_for_chars(b, d);
                return;
        }
        d->no_chars = sd_event_source_disable_unref(d->no_chars);
        if (b->cfg[d->provisioned].bond && !d->paired && !d->pair_failed) {
                /* Bond=yes: pair first, with our agent (bluetoothd uses the caller's), then subscribe. */
                if (!d->pairing) {
                        logf_(b, LOG_NOTICE, "Pairing with %s (Bond=yes)", b->cfg[d->provisioned].id);
                        d->pairing = call_async(b, d->path, DEVICE_IFACE, "Pair", on_pair, "") >= 0;
                        if (!d->pairing)
                                d->pair_failed = true;
                }
                if (d->pairing)
                        return;
        }
        d->subscribed = true;
        for (size_t i = 0; i < b->n_chars; i++) {
                Char *c = &b->chars[i];
                if (dev_of_char(b, c->path) != d)
                        continue;
                if (c->uuid16 == CTS_UUID16) {
                        set_clock(b, d, c);
                        continue;
                }
                if (!wanted(b, d, c->uuid16) || c->notifying || c->io)
                        continue;
                logf_(b, LOG_DEBUG, "Subscribing to %s", c->path);
                /* A socket for notifications where it works: no D-Bus round trip per value. */
                if (c->can_notify && !c->acquire_failed &&
                    call_async(b, c->path, CHAR_IFACE, "AcquireNotify", on_acquire_notify, "a{sv}", 0) >= 0)
                        continue;
                start_notify(b, c);
        }
}

static void start_notify(Bluez *b, Char *c)
{
        if (call_async(b, c->path, CHAR_IFACE, "StartNotify", on_start_notify, "") < 0)
                logf_(b, LOG_WARNING, "Could not ask for notifications from %s", c->path);
}

static int on_connect_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
        Call *c = userdata;
        Dev *d = find_dev(c->b, c->path);
        const sd_bus_error *e = sd_bus_message_get_error(m);
        if (!d)
                return 0;
        d->connecting = false;
        if (e && !sd_bus_error_has_name(e, "org.bluez.Error.AlreadyConnected")) {
                connect_later(c->b, d, e->name);
                return 0;
        }
        d->attempt = 0;
        /* bluetoothd says it is connected. After a bluetoothd restart its Connected=true signal can
         * be missing (the link came up while it set the device up): trust the answer, or the next
         * AcquireNotify answer would be thrown away as "after a disconnect". */
        d->connected = true;
        logf_(c->b, LOG_INFO, "Connected to %s", c->b->cfg[d->provisioned].id);
        subscribe(c->b, d); /* if ServicesResolved came first */
        return 0;
}

/* A provisioned health device is there (it appeared, or advertises): connect, unless backing off. */
static void maybe_connect(Bluez *b, Dev *d)
{
        if (!is_health(b, d) || d->connected || d->connecting || now_mono() < d->next_try || !b->present)
                return;
        /* The same device seen by a second adapter: connect through ours only. */
        if (!path_is_under(d->path, b->adapter))
                return;
        d->connecting = true;
        /* Connect can take long (the device may be gone): async, with bluetoothd's own timeout. */
        if (call_async(b, d->path, DEVICE_IFACE, "Connect", on_connect_reply, "") < 0) {
                d->connecting = false;
                connect_later(b, d, "cannot call Connect");
        }
}

/* ---- properties ---- */

static int read_service_data(Bluez *b, Dev *d, sd_bus_message *m)
{
        int r;
        r = sd_bus_message_enter_container(m, 'a', "{sv}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
                const char *uuid;
                const void *data = NULL;
                size_t len = 0;
                if ((r = sd_bus_message_read(m, "s", &uuid)) < 0)
                        return r;
                if (sd_bus_message_enter_container(m, 'v', "ay") > 0) {
                        if ((r = sd_bus_message_read_array(m, 'y', &data, &len)) < 0)
                                return r;
                        if ((r = sd_bus_message_exit_container(m)) < 0)
                                return r;
                        if (strcasecmp(uuid, BTHOME_UUID) == 0)
                                d->info.bthome = true;
                        if (d->provisioned >= 0 && b->cfg[d->provisioned].advertises && strcasecmp(uuid, BTHOME_UUID) == 0) {
                                b->last_seen[d->provisioned] = now_realtime();
                                b->sink.frame(b->sink.userdata, b->cfg[d->provisioned].id, 0, data, len, now_realtime());
                        }
                } else if ((r = sd_bus_message_skip(m, "v")) < 0)
                        return r;
                if ((r = sd_bus_message_exit_container(m)) < 0)
                        return r;
        }
        if (r < 0)
                return r;
        return sd_bus_message_exit_container(m);
}

static void provision(Bluez *b, Dev *d)
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

static uint16_t uuid16_of(const char *uuid)
{
        unsigned v;
        /* 0000xxxx-0000-1000-8000-00805f9b34fb: the Bluetooth base UUID */
        if (strlen(uuid) == 36 && strncmp(uuid, "0000", 4) == 0 &&
            strcasecmp(uuid + 8, "-0000-1000-8000-00805f9b34fb") == 0 && sscanf(uuid + 4, "%4x", &v) == 1)
                return (uint16_t)v;
        return 0;
}

static int read_char_properties(Bluez *b, const char *path, sd_bus_message *m)
{
        Char *c = add_char(b, path);
        Dev *d;
        int r;
        if (!c)
                return -ENOMEM;
        r = sd_bus_message_enter_container(m, 'a', "{sv}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
                const char *name, *contents;
                char type;
                if ((r = sd_bus_message_read(m, "s", &name)) < 0 || (r = sd_bus_message_peek_type(m, &type, &contents)) < 0)
                        return r;
                if (strcmp(name, "UUID") == 0 && strcmp(contents, "s") == 0) {
                        const char *u;
                        if ((r = sd_bus_message_read(m, "v", "s", &u)) < 0)
                                return r;
                        c->uuid16 = uuid16_of(u);
                } else if (strcmp(name, "Notifying") == 0 && strcmp(contents, "b") == 0) {
                        int v;
                        if ((r = sd_bus_message_read(m, "v", "b", &v)) < 0)
                                return r;
                        c->notifying = v;
                } else if (strcmp(name, "Flags") == 0 && strcmp(contents, "as") == 0) {
                        const char *f;
                        if ((r = sd_bus_message_enter_container(m, 'v', "as")) < 0 ||
                            (r = sd_bus_message_enter_container(m, 'a', "s")) < 0)
                                return r;
                        c->can_notify = false;
                        while ((r = sd_bus_message_read(m, "s", &f)) > 0)
                                if (strcmp(f, "notify") == 0)
                                        c->can_notify = true;
                        if (r < 0 || (r = sd_bus_message_exit_container(m)) < 0 ||
                            (r = sd_bus_message_exit_container(m)) < 0)
                                return r;
                } else if (strcmp(name, "Value") == 0 && strcmp(contents, "ay") == 0) {
                        const void *data;
                        size_t len;
                        if ((r = sd_bus_message_enter_container(m, 'v', "ay")) < 0 ||
                            (r = sd_bus_message_read_array(m, 'y', &data, &len)) < 0 ||
                            (r = sd_bus_message_exit_container(m)) < 0)
                                return r;
                        d = dev_of_char(b, path);
                        /* A notification or indication of a measurement we subscribed to. */
                        if (d && wanted(b, d, c->uuid16) && c->notifying && len > 0) {
                                b->last_seen[d->provisioned] = now_realtime();
                                b->sink.frame(b->sink.userdata, b->cfg[d->provisioned].id, c->uuid16, data, len,
                                              now_realtime());
                        }
                } else if ((r = sd_bus_message_skip(m, "v")) < 0)
                        return r;
                if ((r = sd_bus_message_exit_container(m)) < 0)
                        return r;
        }
        if (r < 0)
                return r;
        r = sd_bus_message_exit_container(m);
        if (r >= 0 && (d = dev_of_char(b, path)) && d->connected)
                subscribe(b, d);
        return r;
}

/* Reads a{sv} for iface on path; the message is positioned at the array. */
static int read_properties(Bluez *b, const char *path, const char *iface, sd_bus_message *m)
{
        Adapter *a = NULL;
        Dev *d = NULL;
        bool was_discovering = false, was_powered = false;
        int r;

        if (strcmp(iface, ADAPTER_IFACE) == 0) {
                if (!(a = add_adapter(b, path)))
                        return -ENOMEM;
                was_discovering = a->discovering;
                was_powered = a->powered;
        } else if (strcmp(iface, DEVICE_IFACE) == 0) {
                if (!(d = add_dev(b, path)))
                        return -ENOMEM;
        } else if (strcmp(iface, CHAR_IFACE) == 0)
                return read_char_properties(b, path, m);
        else
                return sd_bus_message_skip(m, "a{sv}");

        r = sd_bus_message_enter_container(m, 'a', "{sv}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
                const char *name, *contents;
                char type;
                if ((r = sd_bus_message_read(m, "s", &name)) < 0)
                        return r;
                if ((r = sd_bus_message_peek_type(m, &type, &contents)) < 0)
                        return r;
                if (a && (strcmp(name, "Powered") == 0 || strcmp(name, "Discovering") == 0) && strcmp(contents, "b") == 0) {
                        int v;
                        if ((r = sd_bus_message_read(m, "v", "b", &v)) < 0)
                                return r;
                        if (name[0] == 'P')
                                a->powered = v;
                        else
                                a->discovering = v;
                } else if (d && strcmp(name, "Address") == 0 && strcmp(contents, "s") == 0) {
                        const char *s;
                        if ((r = sd_bus_message_read(m, "v", "s", &s)) < 0)
                                return r;
                        d->has_address = parse_address(s, d->address);
                        snprintf(d->info.address, sizeof d->info.address, "%s", s);
                        provision(b, d);
                } else if (d && strcmp(name, "Name") == 0 && strcmp(contents, "s") == 0) {
                        const char *s;
                        if ((r = sd_bus_message_read(m, "v", "s", &s)) < 0)
                                return r;
                        snprintf(d->info.name, sizeof d->info.name, "%s", s);
                } else if (d && strcmp(name, "UUIDs") == 0 && strcmp(contents, "as") == 0) {
                        const char *u;
                        size_t n = 0;
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
                        if (r < 0 || (r = sd_bus_message_exit_container(m)) < 0 ||
                            (r = sd_bus_message_exit_container(m)) < 0)
                                return r;
                } else if (d && strcmp(name, "RSSI") == 0 && strcmp(contents, "n") == 0) {
                        int16_t v;
                        if ((r = sd_bus_message_read(m, "v", "n", &v)) < 0)
                                return r;
                        d->info.rssi = v;
                        if (d->provisioned >= 0) {
                                b->rssi[d->provisioned] = v;
                                b->last_seen[d->provisioned] = now_realtime();
                                maybe_connect(b, d); /* it advertises: awake */
                        }
                } else if (d && strcmp(name, "Paired") == 0 && strcmp(contents, "b") == 0) {
                        int v;
                        if ((r = sd_bus_message_read(m, "v", "b", &v)) < 0)
                                return r;
                        d->paired = v;
                } else if (d && (strcmp(name, "Connected") == 0 || strcmp(name, "ServicesResolved") == 0) &&
                           strcmp(contents, "b") == 0) {
                        int v;
                        if ((r = sd_bus_message_read(m, "v", "b", &v)) < 0)
                                return r;
                        if (d->provisioned >= 0)
                                logf_(b, LOG_DEBUG, "%s: %s=%d", b->cfg[d->provisioned].id, name, v);
                        if (name[0] == 'C') {
                                if (d->connected && !v && d->provisioned >= 0) {
                                        logf_(b, LOG_INFO, "%s disconnected", b->cfg[d->provisioned].id);
                                        if (is_health(b, d))
                                                connect_after(b, d, RECONNECT_GRACE_USEC);
                                }
                                d->connected = v;
                                if (!v) {
                                        d->resolved = d->subscribed = d->pair_failed = false;
                                        d->no_chars = sd_event_source_disable_unref(d->no_chars);
                                        for (size_t k = 0; k < b->n_chars; k++)
                                                if (dev_of_char(b, b->chars[k].path) == d)
                                                        char_stop(&b->chars[k]);
                                }
                        } else {
                                d->resolved = v;
                                if (v) {
                                        d->connected = true; /* resolved services: a link, signalled or not */
                                        subscribe(b, d);
                                }
                        }
                } else if (d && strcmp(name, "ServiceData") == 0 && strcmp(contents, "a{sv}") == 0) {
                        if ((r = sd_bus_message_enter_container(m, 'v', "a{sv}")) < 0 ||
                            (r = read_service_data(b, d, m)) < 0 || (r = sd_bus_message_exit_container(m)) < 0)
                                return r;
                } else if ((r = sd_bus_message_skip(m, "v")) < 0)
                        return r;
                if ((r = sd_bus_message_exit_container(m)) < 0)
                        return r;
        }
        if (r < 0)
                return r;
        r = sd_bus_message_exit_container(m);
        if (d)
                maybe_connect(b, d);
        if (a && b->adapter && strcmp(b->adapter, a->path) == 0) {
                if (was_discovering && !a->discovering)
                        /* Someone stopped it, or the adapter was reset: start it again, with back-off.
                         * bluetoothd may resume it by itself (another client's stop restarts it with
                         * the filters left), answering our StartDiscovery with InProgress meanwhile. */
                        retry_later(b, "it stopped");
                else if (!was_discovering && a->discovering)
                        b->attempt = 0;
                else if (!was_powered && a->powered)
                        ensure_discovery(b);
        }
        return r;
}

/* a{sa{sv}}: the interfaces of one object. */
static int read_interfaces(Bluez *b, const char *path, sd_bus_message *m)
{
        int r = sd_bus_message_enter_container(m, 'a', "{sa{sv}}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(m, 'e', "sa{sv}")) > 0) {
                const char *iface;
                if ((r = sd_bus_message_read(m, "s", &iface)) < 0 || (r = read_properties(b, path, iface, m)) < 0 ||
                    (r = sd_bus_message_exit_container(m)) < 0)
                        return r;
        }
        if (r < 0)
                return r;
        return sd_bus_message_exit_container(m);
}

/* ---- signals and the start ---- */

static void register_agent(Bluez *b);

static int on_managed_objects(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
        Bluez *b = userdata;
        const sd_bus_error *e = sd_bus_message_get_error(m);
        int r;

        b->call = sd_bus_slot_unref(b->call);
        if (e) {
                logf_(b, LOG_WARNING, "bluetoothd is not there (%s); waiting for it", e->name);
                return 0;
        }
        b->present = true;
        r = sd_bus_message_enter_container(m, 'a', "{oa{sa{sv}}}");
        while (r > 0 && (r = sd_bus_message_enter_container(m, 'e', "oa{sa{sv}}")) > 0) {
                const char *path;
                if ((r = sd_bus_message_read(m, "o", &path)) < 0 || (r = read_interfaces(b, path, m)) < 0 ||
                    (r = sd_bus_message_exit_container(m)) < 0)
                        break;
        }
        if (r < 0)
                logf_(b, LOG_ERR, "Could not read bluetoothd's objects: %s", strerror(-r));
        logf_(b, LOG_INFO, "bluetoothd: %zu adapters, %zu devices (%zu not provisioned)", b->n_adapters, b->n_devs,
              b->unknown);
        register_agent(b);
        ensure_discovery(b);
        /* Devices bluetoothd already knew (bonded ones come back from its storage): now that the
         * adapter is chosen, connect to those on it. */
        for (size_t i = 0; i < b->n_devs; i++)
                maybe_connect(b, &b->devs[i]);
        return 0;
}

/* ---- the agent: NoInputNoOutput, so bonding is "just works" ---- */

static int agent_reject(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
        return sd_bus_error_set(ret_error, "org.bluez.Error.Rejected", "no input or output on this gateway");
}

/* The passkey configured for the device bluetoothd asks about, or -1. */
static int passkey_for(Bluez *b, sd_bus_message *m)
{
        const char *path;
        Dev *d;
        if (sd_bus_message_read(m, "o", &path) < 0 || !(d = find_dev(b, path)) || d->provisioned < 0)
                return -1;
        return b->cfg[d->provisioned].passkey;
}

static int agent_passkey(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
        int k = passkey_for(userdata, m);
        if (k < 0)
                return agent_reject(m, userdata, ret_error);
        logf_(userdata, LOG_NOTICE, "Answering a passkey request with the configured passkey");
        return sd_bus_reply_method_return(m, "u", (uint32_t)k);
}

static int agent_pin(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
        char pin[16];
        int k = passkey_for(userdata, m);
        if (k < 0)
                return agent_reject(m, userdata, ret_error);
        snprintf(pin, sizeof pin, "%06d", k);
        return sd_bus_reply_method_return(m, "s", pin);
}

static int agent_accept(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
        return sd_bus_reply_method_return(m, "");
}

/* "Just works" confirmation and service authorization: only for the devices this home has; a
 * neighbour's phone does not get to pair with the gateway. */
static int agent_authorize(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
        Bluez *b = userdata;
        const char *path = NULL;
        Dev *d;
        if (sd_bus_message_read(m, "o", &path) < 0 || !(d = find_dev(b, path)) || d->provisioned < 0) {
                logf_(b, LOG_WARNING, "Refused pairing with %s: not a configured sensor", path ? path : "?");
                return agent_reject(m, userdata, ret_error);
        }
        return sd_bus_reply_method_return(m, "");
}

static const sd_bus_vtable agent_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_METHOD("Release", "", "", agent_accept, 0),
        SD_BUS_METHOD("RequestPinCode", "o", "s", agent_pin, 0),
        SD_BUS_METHOD("DisplayPinCode", "os", "", agent_accept, 0),
        SD_BUS_METHOD("RequestPasskey", "o", "u", agent_passkey, 0),
        SD_BUS_METHOD("DisplayPasskey", "ouq", "", agent_accept, 0),
        SD_BUS_METHOD("RequestConfirmation", "ou", "", agent_authorize, 0),
        SD_BUS_METHOD("RequestAuthorization", "o", "", agent_authorize, 0),
        SD_BUS_METHOD("AuthorizeService", "os", "", agent_authorize, 0),
        SD_BUS_METHOD("Cancel", "", "", agent_accept, 0),
        SD_BUS_VTABLE_END,
};

static int on_agent_registered(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
        Bluez *b = userdata;
        const sd_bus_error *e = sd_bus_message_get_error(m);
        if (e && !sd_bus_error_has_name(e, "org.bluez.Error.AlreadyExists")) {
                logf_(b, LOG_WARNING, "Could not register the pairing agent: %s", e->name);
                return 0;
        }
        (void)sd_bus_call_method_async(b->bus, NULL, BLUEZ, "/org/bluez", "org.bluez.AgentManager1",
                                       "RequestDefaultAgent", NULL, NULL, "o", AGENT_PATH);
        return 0;
}

static void register_agent(Bluez *b)
{
        if (!b->agent && sd_bus_add_object_vtable(b->bus, &b->agent, AGENT_PATH, "org.bluez.Agent1", agent_vtable, b) < 0)
                logf_(b, LOG_WARNING, "Could not create the pairing agent");
        bool keyboard = false;
        for (size_t i = 0; i < b->n_cfg; i++)
                keyboard |= b->cfg[i].passkey >= 0;
        /* With a passkey configured for some device, the gateway can "type" it. */
        (void)sd_bus_call_method_async(b->bus, NULL, BLUEZ, "/org/bluez", "org.bluez.AgentManager1", "RegisterAgent",
                                       on_agent_registered, b, "os", AGENT_PATH,
                                       keyboard ? "KeyboardOnly" : "NoInputNoOutput");
}

static void get_objects(Bluez *b)
{
        int r;
        b->call = sd_bus_slot_unref(b->call);
        r = sd_bus_call_method_async(b->bus, &b->call, BLUEZ, "/", "org.freedesktop.DBus.ObjectManager",
                                     "GetManagedObjects", on_managed_objects, b, "");
        if (r < 0)
                logf_(b, LOG_ERR, "Cannot ask bluetoothd for its objects: %s", strerror(-r));
}

static int on_owner_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
        Bluez *b = userdata;
        const char *name, *old, *new;
        if (sd_bus_message_read(m, "sss", &name, &old, &new) < 0 || strcmp(name, BLUEZ) != 0)
                return 0;
        if (old[0]) {
                logf_(b, LOG_WARNING, "bluetoothd went away; its devices are forgotten until it is back");
                b->present = false;
                forget_all(b);
        }
        if (new[0]) {
                logf_(b, LOG_NOTICE, "bluetoothd is there; reading its objects");
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
        if (read_interfaces(b, path, m) < 0)
                logf_(b, LOG_WARNING, "Could not read InterfacesAdded for %s", path);
        ensure_discovery(b);
        return 0;
}

static int on_interfaces_removed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
        Bluez *b = userdata;
        const char *path, *iface;
        if (!b->present || sd_bus_message_read(m, "o", &path) < 0 || sd_bus_message_enter_container(m, 'a', "s") < 0)
                return 0;
        while (sd_bus_message_read(m, "s", &iface) > 0)
                if (strcmp(iface, ADAPTER_IFACE) == 0 || strcmp(iface, DEVICE_IFACE) == 0)
                        remove_path(b, path);
        ensure_discovery(b);
        return 0;
}

static int on_properties_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
        Bluez *b = userdata;
        const char *iface, *path = sd_bus_message_get_path(m);
        if (!b->present || !path || sd_bus_message_read(m, "s", &iface) < 0)
                return 0;
        if (read_properties(b, path, iface, m) < 0)
                logf_(b, LOG_WARNING, "Could not read PropertiesChanged for %s", path);
        return 0;
}

int bluez_new(sd_event *e, const char *adapter, const BluezDeviceConfig *devices, size_t n, const SensorSink *sink,
              const BluezCallbacks *cb, Bluez **ret)
{
        Bluez *b = calloc(1, sizeof *b);
        if (!b)
                return -ENOMEM;
        b->event = sd_event_ref(e);
        b->sink = *sink;
        b->cb = *cb;
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
        if (b->bus && b->present && b->adapter) {
                const Adapter *a = find_adapter(b, b->adapter);
                if (a && a->discovering)
                        (void)sd_bus_call_method_async(b->bus, NULL, BLUEZ, b->adapter, ADAPTER_IFACE, "StopDiscovery",
                                                       NULL, NULL, "");
        }
        if (b->bus && b->present && b->agent)
                (void)sd_bus_call_method_async(b->bus, NULL, BLUEZ, "/org/bluez", "org.bluez.AgentManager1",
                                               "UnregisterAgent", NULL, NULL, "o", AGENT_PATH);
        forget_all(b);
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
        free(b->adapters);
        free(b->devs);
        free(b->chars);
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
            (r = sd_bus_add_match(b->bus, &b->match_owner,
                                  "type='signal',sender='org.freedesktop.DBus',path='/org/freedesktop/DBus',"
                                  "interface='org.freedesktop.DBus',member='NameOwnerChanged',arg0='org.bluez'",
                                  on_owner_changed, b)) < 0 ||
            (r = sd_bus_add_match(b->bus, &b->match_added,
                                  "type='signal',sender='org.bluez',interface='org.freedesktop.DBus.ObjectManager',"
                                  "member='InterfacesAdded'",
                                  on_interfaces_added, b)) < 0 ||
            (r = sd_bus_add_match(b->bus, &b->match_removed,
                                  "type='signal',sender='org.bluez',interface='org.freedesktop.DBus.ObjectManager',"
                                  "member='InterfacesRemoved'",
                                  on_interfaces_removed, b)) < 0 ||
            (r = sd_bus_add_match(b->bus, &b->match_props,
                                  "type='signal',sender='org.bluez',interface='org.freedesktop.DBus.Properties',"
                                  "member='PropertiesChanged',path_namespace='/org/bluez'",
                                  on_properties_changed, b)) < 0)
                return r;
        get_objects(b);
        return 0;
}

bool bluez_discovering(const Bluez *b)
{
        for (size_t i = 0; b->adapter && i < b->n_adapters; i++)
                if (strcmp(b->adapters[i].path, b->adapter) == 0)
                        return b->adapters[i].discovering;
        return false;
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
        for (size_t i = 0; m->unknown_list && i < b->n_devs && n < 32; i++)
                if (b->devs[i].provisioned < 0 && b->devs[i].has_address)
                        m->unknown_list[n++] = b->devs[i].info;
        *ret = m->unknown_list;
        return m->unknown_list ? n : 0;
}

bool bluez_connected(const Bluez *b, size_t i)
{
        for (size_t k = 0; k < b->n_devs; k++)
                if (b->devs[k].provisioned == (int)i)
                        return b->devs[k].connected;
        return false;
}
