/* Connected health devices: these wake, measure and advertise briefly, so a provisioned one is
 * connected when it shows up, retried with back-off when that fails, and once its services are
 * resolved its measurement characteristics are subscribed to (AcquireNotify's socket where it works,
 * StartNotify otherwise), pairing first when it is configured to bond or a subscription needs it, and
 * its clock is set through the Current Time Service when it has one.
 *
 * Every asynchronous call carries a reference to its device or characteristic (see
 * bluez-internal.h); a handler whose object has left the mirror (->bluez NULL) does nothing. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/time-util.h"
#include "sensors/bluez-internal.h"

#define CTS_UUID16 0x2A2B
/* After a link drops, wait this long before asking to connect again. A Connect at once races
 * bluetoothd's own shutdown (SIGTERM powers the adapters off, dropping the links, and a Connect it
 * still accepts leaves a half-made connection): on Debian bookworm's 6.1 kernel that ends in a
 * kernel BUG in hci_chan_del when bluetoothd exits. See docs/bluetooth.md. */
#define RECONNECT_GRACE_USEC (1000 * 1000)
#define CALL_TIMEOUT_USEC (90ULL * 1000 * 1000)
#define NO_CHARS_USEC (10ULL * 1000 * 1000)

static bool wanted(const Bluez *b, const BluezDevice *d, uint16_t uuid16)
{
        const BluezDeviceConfig *c;
        if (d->provisioned < 0)
                return false;
        c = &b->cfg[d->provisioned];
        return uuid16 && (c->measure[0] == uuid16 || c->measure[1] == uuid16);
}

bool bluez_device_is_health(const Bluez *b, const BluezDevice *d)
{
        return d->provisioned >= 0 && b->cfg[d->provisioned].measure[0] != 0;
}

/* An asynchronous call on path whose answer goes to cb with userdata. sd-bus owns userdata from
 * here: destroy runs when the call is over (answered, or the bus went away), or at once if it could
 * not be made. bluetoothd answers Connect only when the device advertised and the link is up, or
 * after its own time-outs (tens of seconds with the kernel's): D-Bus's default 25 s would give up
 * first and leave its Connect running. */
static int call_async(Bluez *b, const char *path, const char *iface, const char *method,
                      sd_bus_message_handler_t cb, void *userdata, sd_bus_destroy_t destroy,
                      const char *types, ...)
{
        sd_bus_message *msg = NULL;
        sd_bus_slot *slot = NULL;
        va_list ap;
        int r;

        r = sd_bus_message_new_method_call(b->bus, &msg, BLUEZ, path, iface, method);
        if (r >= 0) {
                va_start(ap, types);
                r = sd_bus_message_appendv(msg, types, ap);
                va_end(ap);
        }
        if (r >= 0)
                r = sd_bus_call_async(b->bus, &slot, msg, cb, userdata, CALL_TIMEOUT_USEC);
        sd_bus_message_unref(msg);
        if (r < 0) {
                destroy(userdata);
                return r;
        }
        (void)sd_bus_slot_set_destroy_callback(slot, destroy);
        (void)sd_bus_slot_set_floating(slot, 1);
        sd_bus_slot_unref(slot);
        return 0;
}

/* A method of Device1 without arguments; the call holds a reference to d. */
static int device_call(Bluez *b, BluezDevice *d, const char *method, sd_bus_message_handler_t cb)
{
        return call_async(b, d->path, DEVICE_IFACE, method, cb, bluez_device_ref(d), bluez_device_unref_void,
                          "");
}

/* ---- connecting, with back-off ---- */

static int on_connect_retry(sd_event_source *s, uint64_t usec, void *userdata)
{
        BluezDevice *d = userdata; /* the source is the device's own: it is attached */
        bluez_device_maybe_connect(d->bluez, d);
        return 0;
}

/* Connects again after delay (or when the device advertises after that). */
static void connect_after(Bluez *b, BluezDevice *d, uint64_t delay)
{
        d->next_try = now_monotonic() + (int64_t)delay;
        d->retry = sd_event_source_disable_unref(d->retry);
        (void)sd_event_add_time_relative(b->event, &d->retry, CLOCK_MONOTONIC, delay, 0, on_connect_retry,
                                         d);
}

static void connect_later(Bluez *b, BluezDevice *d, const char *why)
{
        bool first = d->backoff.attempt == 0;
        uint64_t delay = backoff_next_ceiling(&d->backoff);
        /* A device that is away fails every try until it wakes: say so once, not all day. */
        bluez_log(b, first ? LOG_NOTICE : LOG_DEBUG,
                  "Could not connect to %s (%s); trying again in %.0f s, or when it advertises after that",
                  bluez_device_id(b, d), why, delay / 1e6);
        /* bluetoothd's Connect waits for the device to advertise, so trying again costs nothing. */
        connect_after(b, d, delay);
}

static int on_connect_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
        BluezDevice *d = userdata;
        Bluez *b = d->bluez;
        const sd_bus_error *e = sd_bus_message_get_error(m);
        if (!b)
                return 0;
        d->connecting = false;
        if (e && !sd_bus_error_has_name(e, "org.bluez.Error.AlreadyConnected")) {
                connect_later(b, d, e->name);
                return 0;
        }
        backoff_reset(&d->backoff);
        /* bluetoothd says it is connected. After a bluetoothd restart its Connected=true signal can
         * be missing (the link came up while it set the device up): trust the answer, or the next
         * AcquireNotify answer would be thrown away as "after a disconnect". */
        d->connected = true;
        bluez_log(b, LOG_INFO, "Connected to %s", bluez_device_id(b, d));
        bluez_device_subscribe(b, d); /* if ServicesResolved came first */
        return 0;
}

void bluez_device_maybe_connect(Bluez *b, BluezDevice *d)
{
        if (!bluez_device_is_health(b, d) || d->connected || d->connecting ||
            now_monotonic() < d->next_try || !b->present)
                return;
        /* The same device seen by a second adapter: connect through ours only. */
        if (!bluez_path_is_under(d->path, b->adapter))
                return;
        d->connecting = true;
        /* Connect can take long (the device may be gone): async, with bluetoothd's own timeout. */
        if (device_call(b, d, "Connect", on_connect_reply) < 0) {
                d->connecting = false;
                connect_later(b, d, "cannot call Connect");
        }
}

void bluez_device_set_connected(Bluez *b, BluezDevice *d, bool v)
{
        if (d->connected && !v && d->provisioned >= 0) {
                bluez_log(b, LOG_INFO, "%s disconnected", bluez_device_id(b, d));
                if (bluez_device_is_health(b, d))
                        connect_after(b, d, RECONNECT_GRACE_USEC);
        }
        d->connected = v;
        if (v)
                return;
        d->resolved = d->subscribed = d->pair_failed = false;
        d->no_chars = sd_event_source_disable_unref(d->no_chars);
        BLUEZ_LIST_FOREACH(c, b->chars)
        if (bluez_device_of_char(b, c) == d)
                bluez_char_stop(c);
}

void bluez_device_set_resolved(Bluez *b, BluezDevice *d, bool v)
{
        d->resolved = v;
        if (v) {
                d->connected = true; /* resolved services: a link, signalled or not */
                bluez_device_subscribe(b, d);
        }
}

/* ---- the measurement that never shows up ---- */

static int on_disconnect_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
        BluezDevice *d = userdata;
        const sd_bus_error *e = sd_bus_message_get_error(m);
        if (e && d->bluez)
                bluez_log(d->bluez, LOG_WARNING, "Could not disconnect %s: %s", d->path, e->name);
        return 0;
}

static int on_no_chars(sd_event_source *s, uint64_t usec, void *userdata)
{
        BluezDevice *d = userdata; /* the source is the device's own: it is attached */
        Bluez *b = d->bluez;
        if (d->subscribed || !d->connected)
                return 0;
        bluez_log(b, LOG_NOTICE,
                  "%s shows no measurement characteristic %d s after its services were resolved; "
                  "disconnecting, to read its services again when it is back",
                  bluez_device_id(b, d), (int)(NO_CHARS_USEC / 1000000));
        (void)device_call(b, d, "Disconnect", on_disconnect_reply);
        return 0;
}

/* A connected device whose measurement never shows up would sit there, connected and silent: give
 * its services a while, then drop the link so the next connection reads them again. */
static void watch_for_chars(Bluez *b, BluezDevice *d)
{
        if (d->no_chars)
                return;
        (void)sd_event_add_time_relative(b->event, &d->no_chars, CLOCK_MONOTONIC, NO_CHARS_USEC, 0,
                                         on_no_chars, d);
}

/* ---- pairing ---- */

static int on_pair(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
        BluezDevice *d = userdata;
        Bluez *b = d->bluez;
        const sd_bus_error *e = sd_bus_message_get_error(m);
        if (!b)
                return 0;
        d->pairing = false;
        if (e && !sd_bus_error_has_name(e, "org.bluez.Error.AlreadyExists")) {
                bluez_log(b, LOG_WARNING, "Pairing with %s failed: %s", bluez_device_id(b, d), e->name);
                d->pair_failed = true;
                if (!d->subscribed)
                        bluez_device_subscribe(
                            b, d); /* Bond=yes: it may work unbonded; StartNotify will tell */
                return 0;
        }
        bluez_log(b, LOG_NOTICE, "Paired with %s", bluez_device_id(b, d));
        d->paired = true;
        d->subscribed = false;
        bluez_device_subscribe(b, d);
        return 0;
}

/* Bond=yes: pair first, with our agent (bluetoothd uses the caller's), then subscribe. Returns
 * whether a Pair is under way (subscribing waits for its answer). */
static bool pair_first(Bluez *b, BluezDevice *d)
{
        if (!b->cfg[d->provisioned].bond || d->paired || d->pair_failed)
                return false;
        if (!d->pairing) {
                bluez_log(b, LOG_NOTICE, "Pairing with %s (Bond=yes)", bluez_device_id(b, d));
                d->pairing = device_call(b, d, "Pair", on_pair) >= 0;
                if (!d->pairing)
                        d->pair_failed = true;
        }
        return d->pairing;
}

/* ---- subscribing ---- */

static void start_notify(Bluez *b, BluezChar *c);

void bluez_char_value(Bluez *b, BluezChar *c, const void *data, size_t len)
{
        BluezDevice *d = bluez_device_of_char(b, c);
        /* A notification or indication of a measurement we subscribed to. */
        if (d && wanted(b, d, c->uuid16) && c->notifying && len > 0)
                bluez_emit_frame(b, d, c->uuid16, data, len);
}

/* A StartNotify session is bluetoothd's to end: it keeps it over a disconnect, subscribes again by
 * itself when the device is back (and says Notifying=false only when it really ends). */
void bluez_char_stop(BluezChar *c)
{
        c->io = sd_event_source_disable_unref(c->io);
        c->resubscribe = sd_event_source_disable_unref(c->resubscribe);
}

static void subscribe_char(Bluez *b, BluezChar *c);

/* bluetoothd 5.66 answers NotPermitted for three things, told apart by the message: "Not paired"
 * (bonding helps), "Read/Write not permitted", and "Notify acquired": an AcquireNotify session it
 * still holds for the characteristic (its socket not yet closed after a reconnect or a restart).
 * Pairing cannot help with the last one (it led a strap into a Pair/disconnect loop); waiting can. */
static bool notify_still_held(const sd_bus_error *e)
{
        return sd_bus_error_has_name(e, "org.bluez.Error.NotPermitted") && e->message &&
               strstr(e->message, "Notify acquired");
}

static int on_resubscribe(sd_event_source *s, uint64_t usec, void *userdata)
{
        BluezChar *c = userdata; /* the timer is the characteristic's own: it is attached */
        Bluez *b = c->bluez;
        BluezDevice *d = bluez_device_of_char(b, c);

        c->resubscribe = sd_event_source_disable_unref(c->resubscribe);
        if (d && d->connected)
                subscribe_char(b, c);
        return 0;
}

/* Our own socket for it goes (it may be the session bluetoothd holds), and we ask again later. */
static void subscribe_later(Bluez *b, BluezChar *c, const char *what)
{
        uint64_t delay;
        bool first = c->held.attempt == 0;

        bluez_char_stop(c);
        c->acquire_failed = false; /* the session ends; AcquireNotify may work then */
        delay = backoff_next_ceiling(&c->held);
        if (first)
                bluez_log(b, LOG_NOTICE,
                          "%s: notifications of %s are still held by an earlier session (%s); subscribing "
                          "again in "
                          "%.0f s",
                          bluez_device_id(b, bluez_device_of_char(b, c)), c->path, what,
                          (double)delay / 1e6);
        if (sd_event_add_time_relative(b->event, &c->resubscribe, CLOCK_MONOTONIC, delay, 0, on_resubscribe,
                                       c) < 0)
                bluez_log(b, LOG_WARNING, "Could not schedule a subscription to %s", c->path);
}

static int on_start_notify(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
        BluezChar *c = userdata;
        Bluez *b = c->bluez;
        BluezDevice *d = b ? bluez_device_of_char(b, c) : NULL;
        const sd_bus_error *e = sd_bus_message_get_error(m);

        if (!d)
                return 0;
        if (!e) {
                /* bluetoothd signals Notifying=true only when it changes: a session it kept over a
                 * reconnect answers this call with no signal at all. */
                c->notifying = true;
                backoff_reset(&c->held);
                bluez_log(b, LOG_INFO, "Subscribed to %s of %s", c->path + strlen(d->path) + 1,
                          bluez_device_id(b, d));
                return 0;
        }
        if (notify_still_held(e)) {
                subscribe_later(b, c, "StartNotify");
                return 0;
        }
        /* Measurements of many devices need an encrypted link: bond, then subscribe again. */
        if (sd_bus_error_has_name(e, "org.bluez.Error.NotPermitted") ||
            sd_bus_error_has_name(e, "org.bluez.Error.NotAuthorized") ||
            sd_bus_error_has_name(e, "org.bluez.Error.AuthenticationFailed")) {
                bluez_log(b, LOG_NOTICE, "%s needs bonding (%s); pairing", bluez_device_id(b, d), e->name);
                if (device_call(b, d, "Pair", on_pair) >= 0)
                        return 0;
        }
        bluez_log(b, LOG_WARNING, "Could not subscribe to %s of %s: %s", c->path, bluez_device_id(b, d),
                  e->name);
        return 0;
}

static void start_notify(Bluez *b, BluezChar *c)
{
        if (call_async(b, c->path, CHAR_IFACE, "StartNotify", on_start_notify, bluez_char_ref(c),
                       bluez_char_unref_void, "") < 0)
                bluez_log(b, LOG_WARNING, "Could not ask for notifications from %s", c->path);
}

static int on_notify_fd(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
        BluezChar *c = userdata; /* the source is the characteristic's own: it is attached */
        Bluez *b = c->bluez;
        BluezDevice *d = bluez_device_of_char(b, c);
        uint8_t buf[512];
        ssize_t n;

        if (revents & EPOLLIN) {
                n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
                if (n > 0 && d && d->provisioned >= 0)
                        bluez_emit_frame(b, d, c->uuid16, buf, (size_t)n);
                if (n > 0 || (n < 0 && errno == EAGAIN))
                        return 0;
        }
        /* HUP: the device disconnected, or bluetoothd went away (SIGKILL gives only this). The
         * connection state and NameOwnerChanged tell the rest. Every socket source belongs to its
         * characteristic (on_acquire_notify replaces, never adds), so free it through its owner. */
        if (c->io == s)
                bluez_char_stop(c);
        else
                (void)sd_event_source_set_enabled(s, SD_EVENT_OFF);
        return 0;
}

/* AcquireNotify did not give a socket: StartNotify from now on. */
static void acquire_failed(Bluez *b, BluezChar *c)
{
        c->acquire_failed = true;
        start_notify(b, c);
}

static int on_acquire_notify(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
        BluezChar *c = userdata;
        Bluez *b = c->bluez;
        const sd_bus_error *e = sd_bus_message_get_error(m);
        BluezDevice *d;
        uint16_t mtu;
        int fd, r;

        if (!b)
                return 0;
        if (!e && (!(d = bluez_device_of_char(b, c)) || !d->connected)) {
                /* Disconnected while the call was on its way: the next connection subscribes again. */
                bluez_log(b, LOG_INFO, "AcquireNotify on %s answered after a disconnect; ignored", c->path);
                return 0;
        }
        if (e && notify_still_held(e)) {
                if (bluez_device_of_char(b, c))
                        subscribe_later(b, c, "AcquireNotify");
                return 0;
        }
        if (e) {
                /* NotSupported, NotPermitted (bonding), Failed: StartNotify handles those cases. */
                bluez_log(b, LOG_INFO, "AcquireNotify on %s refused (%s); using StartNotify", c->path,
                          e->name);
                acquire_failed(b, c);
                return 0;
        }
        if ((r = sd_bus_message_read(m, "hq", &fd, &mtu)) < 0 || (fd = fcntl(fd, F_DUPFD_CLOEXEC, 3)) < 0) {
                bluez_log(b, LOG_WARNING, "AcquireNotify on %s gave no usable socket; using StartNotify",
                          c->path);
                acquire_failed(b, c);
                return 0;
        }
        /* A device that disconnected and came back while the first call was on its way gets two
         * answers: the later one belongs to the current connection. Keeping both would leave a
         * source no characteristic owns, one that outlives bluez_free(). */
        if (c->io)
                bluez_log(b, LOG_INFO, "A second AcquireNotify answer for %s replaces the first", c->path);
        bluez_char_stop(c);
        r = sd_event_add_io(b->event, &c->io, fd, EPOLLIN, on_notify_fd, c);
        if (r < 0) {
                close(fd);
                acquire_failed(b, c);
                return 0;
        }
        (void)sd_event_source_set_io_fd_own(c->io, 1);
        backoff_reset(&c->held);
        bluez_log(b, LOG_INFO, "Acquired notifications from %s (MTU %u)", c->path, mtu);
        return 0;
}

/* A socket for notifications where it works: no D-Bus round trip per value. */
static void subscribe_char(Bluez *b, BluezChar *c)
{
        bluez_log(b, LOG_DEBUG, "Subscribing to %s", c->path);
        if (c->can_notify && !c->acquire_failed &&
            call_async(b, c->path, CHAR_IFACE, "AcquireNotify", on_acquire_notify, bluez_char_ref(c),
                       bluez_char_unref_void, "a{sv}", 0) >= 0)
                return;
        start_notify(b, c);
}

/* ---- the clock ---- */

/* Current Time Service: day, date and time as the device's local clock shows them. */
static void set_clock(Bluez *b, BluezDevice *d, const BluezChar *cts)
{
        int64_t now = now_realtime();
        time_t sec = (time_t)(now / USEC_PER_SEC);
        struct tm tm;
        uint8_t v[10];
        sd_bus_message *msg = NULL;
        int r;

        localtime_r(&sec, &tm);
        v[0] = (uint8_t)((tm.tm_year + 1900) & 0xFF);
        v[1] = (uint8_t)((tm.tm_year + 1900) >> 8);
        v[2] = (uint8_t)(tm.tm_mon + 1);
        v[3] = (uint8_t)tm.tm_mday;
        v[4] = (uint8_t)tm.tm_hour;
        v[5] = (uint8_t)tm.tm_min;
        v[6] = (uint8_t)tm.tm_sec;
        v[7] = (uint8_t)(tm.tm_wday == 0 ? 7 : tm.tm_wday);                /* 1 = Monday .. 7 = Sunday */
        v[8] = (uint8_t)(now % USEC_PER_SEC / USEC_PER_MSEC * 256 / 1000); /* fractions: 1/256 s */
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
                bluez_log(b, LOG_WARNING, "Could not set the clock of %s: %s", bluez_device_id(b, d),
                          strerror(-r));
        else
                bluez_log(b, LOG_INFO, "Set the clock of %s", bluez_device_id(b, d));
}

/* ---- once per connection ---- */

static bool has_measurement(const Bluez *b, const BluezDevice *d)
{
        BLUEZ_LIST_FOREACH(c, b->chars)
        if (bluez_device_of_char(b, c) == d && wanted(b, d, c->uuid16))
                return true;
        return false;
}

void bluez_device_subscribe(Bluez *b, BluezDevice *d)
{
        if (d->subscribed || !d->resolved || !bluez_device_is_health(b, d))
                return;
        if (!has_measurement(b, d)) {
                bluez_log(b, LOG_DEBUG, "%s: services resolved, but no measurement characteristic yet",
                          bluez_device_id(b, d));
                watch_for_chars(b, d);
                return;
        }
        d->no_chars = sd_event_source_disable_unref(d->no_chars);
        if (pair_first(b, d))
                return;
        d->subscribed = true;
        BLUEZ_LIST_FOREACH(c, b->chars)
        {
                if (bluez_device_of_char(b, c) != d)
                        continue;
                if (c->uuid16 == CTS_UUID16)
                        set_clock(b, d, c);
                else if (wanted(b, d, c->uuid16) && !c->notifying && !c->io)
                        subscribe_char(b, c);
        }
}
