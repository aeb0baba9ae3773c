#include <errno.h>
#include <gpiod.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "common/backoff.h"
#include "common/string-table.h"
#include "common/time-util.h"
#include "sensors/gpio.h"

#define CONSUMER "homecare-gw"
/* A line that does not work is requested again after 1 s, 2 s, 4 s ... up to every 60 s. No jitter:
 * nobody else retries against this chip, and the tests can know the times exactly. */
#define RETRY_BASE_USEC (1000 * 1000ULL)
#define RETRY_CAP_USEC (60 * 1000 * 1000ULL)

static const char *const gpio_kind_table[_GPIO_KIND_MAX] = {
    [GPIO_DOOR] = "door",
    [GPIO_BUTTON] = "button",
    [GPIO_BED] = "bed",
    [GPIO_DISPENSER_DOSE_TAKEN] = "dispenser-dose-taken",
    [GPIO_DISPENSER_DOSE_DUE] = "dispenser-dose-due",
    [GPIO_DISPENSER_FAULT] = "dispenser-fault",
    [GPIO_MOTION] = "motion",
    [GPIO_GENERIC] = "generic",
};

DEFINE_STRING_TABLE_LOOKUP(gpio_kind, GpioKind, gpio_kind_table, _GPIO_KIND_MAX);

/* ---- debounce ---- */

void debounce_init(Debounce *d, int64_t window, int initial)
{
        *d = (Debounce){.window = window, .stable = initial};
}

bool debounce_edge(Debounce *d, int value, int64_t ts, int *ret_value, int64_t *ret_ts)
{
        /* The edges of a batch are read together, long after some of them happened: a change that had
         * held for the window by the time of this edge was real, whatever this edge does. */
        int settled_value;
        int64_t settled_ts;
        bool settled = debounce_settle(d, ts, &settled_value, &settled_ts);
        if (settled) {
                *ret_value = settled_value;
                *ret_ts = settled_ts;
        }

        /* Edges closer together than the window are one burst: it began at its first edge. */
        bool burst = (d->pending || d->bouncing) && ts - d->last_edge < d->window;

        if (!d->pending && !burst && value == d->stable)
                return settled; /* a repeated edge of the same value (events lost in between) */
        if (!burst)
                d->first_edge = ts;
        d->last_edge = ts;
        d->bouncing = true;
        if (value == d->stable)
                d->pending = false; /* bounced back: nothing happened, unless it bounces on */
        else {
                d->pending = true;
                d->pending_value = value;
        }
        return settled;
}

int64_t debounce_deadline(const Debounce *d)
{
        return d->pending ? d->last_edge + d->window : INT64_MAX;
}

bool debounce_settle(Debounce *d, int64_t now, int *ret_value, int64_t *ret_ts)
{
        if (!d->pending || now < d->last_edge + d->window)
                return false;
        d->pending = false;
        d->bouncing = false;
        d->stable = d->pending_value;
        *ret_value = d->stable;
        *ret_ts = d->first_edge;
        return true;
}

/* ---- meaning ---- */

bool gpio_kind_has_state(GpioKind kind)
{
        switch (kind) {
        case GPIO_DOOR:
        case GPIO_BED:
        case GPIO_DISPENSER_FAULT:
        case GPIO_MOTION:
        case GPIO_GENERIC:
                return true;
        case GPIO_BUTTON:
        case GPIO_DISPENSER_DOSE_TAKEN:
        case GPIO_DISPENSER_DOSE_DUE:
        case _GPIO_KIND_MAX:
                break;
        }
        return false;
}

bool gpio_edge_event(GpioKind kind, int value, Event *ret)
{
        EventKind k = _EVENT_KIND_MAX; /* every kind sets it; a value outside the enum does not */
        switch (kind) {
        case GPIO_DOOR:
                k = EVENT_DOOR;
                break;
        case GPIO_BED:
                k = EVENT_BED;
                break;
        case GPIO_DISPENSER_FAULT:
                k = EVENT_DISPENSER_FAULT;
                break;
        case GPIO_MOTION:
                k = EVENT_MOTION;
                break;
        case GPIO_GENERIC:
                k = EVENT_GENERIC;
                break;
        /* Pulses: only the active edge means something. */
        case GPIO_BUTTON:
                if (!value)
                        return false;
                k = EVENT_BUTTON;
                break;
        case GPIO_DISPENSER_DOSE_TAKEN:
                if (!value)
                        return false;
                k = EVENT_DOSE_TAKEN;
                break;
        case GPIO_DISPENSER_DOSE_DUE:
                if (!value)
                        return false;
                k = EVENT_DOSE_DUE;
                break;
        case _GPIO_KIND_MAX:
                break;
        }
        if (k == _EVENT_KIND_MAX)
                return false;
        ret->kind = k;
        ret->value = value ? 1 : 0;
        return true;
}

/* ---- the inputs ---- */

typedef struct Input {
        GpioInputs *owner;
        char id[SENSOR_ID_MAX];
        char *chip_name, *line_name;
        GpioKind kind;
        bool active_low;
        Debounce debounce;
        struct gpiod_chip *chip;
        struct gpiod_line *line;
        sd_event_source *io, *timer;
        sd_event_source *retry; /* the next request of a line that does not work */
        Backoff backoff;        /* failed requests since it last worked */
        bool reported_failed;   /* input_failed=1 went up and was not taken back yet */
        char *error;            /* why it does not work, NULL when it works */
        char dev_name[32];      /* the open chip's node in /dev (gpiochip0), empty when none */
} Input;

struct GpioInputs {
        sd_event *event;
        SensorSink sink;
        Input *inputs;
        size_t n;
        sd_event_source *dev_watch; /* inotify on /dev: GPIO chips that go away and come back */
};

static int64_t mono_to_realtime(int64_t mono)
{
        return mono + now_realtime() - now_monotonic();
}

static void emit(Input *in, int value, int64_t mono)
{
        Event e = {.time_usec = mono_to_realtime(mono)};
        if (!gpio_edge_event(in->kind, value, &e))
                return;
        snprintf(e.sensor, sizeof e.sensor, "%s", in->id);
        in->owner->sink.event(in->owner->sink.userdata, &e);
}

/* Up to the Manager, once per change: the input stopped working (1), or works again (0). */
static void emit_failed(Input *in, bool failed)
{
        Event e = {
            .kind = EVENT_INPUT_FAILED, .value = failed, .time_usec = mono_to_realtime(now_monotonic())};
        snprintf(e.sensor, sizeof e.sensor, "%s", in->id);
        in->reported_failed = failed;
        in->owner->sink.event(in->owner->sink.userdata, &e);
}

static int on_debounce_timer(sd_event_source *s, uint64_t usec, void *userdata);

/* One timer per input, at the time its pending change will have held long enough. */
static void arm(Input *in)
{
        int64_t d = debounce_deadline(&in->debounce);
        if (d == INT64_MAX) {
                if (in->timer)
                        (void)sd_event_source_set_enabled(in->timer, SD_EVENT_OFF);
                return;
        }
        if (d < 0)
                d = 0;
        if (!in->timer)
                (void)sd_event_add_time(in->owner->event, &in->timer, CLOCK_MONOTONIC, (uint64_t)d, 1000,
                                        on_debounce_timer, in);
        else {
                (void)sd_event_source_set_time(in->timer, (uint64_t)d);
                (void)sd_event_source_set_enabled(in->timer, SD_EVENT_ONESHOT);
        }
}

static void settle(Input *in, int64_t now)
{
        int value;
        int64_t ts;
        if (debounce_settle(&in->debounce, now, &value, &ts))
                emit(in, value, ts);
        arm(in);
}

static int on_debounce_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
        settle(userdata, (int64_t)usec);
        return 0;
}

void gpio_inputs_edge(GpioInputs *g, size_t i, int value, int64_t mono_usec)
{
        Input *in = &g->inputs[i];
        int settled_value;
        int64_t settled_ts;
        if (debounce_edge(&in->debounce, value ? 1 : 0, mono_usec, &settled_value, &settled_ts))
                emit(in, settled_value, settled_ts);
        if (in->debounce.window == 0)
                settle(in, mono_usec); /* no debounce: every edge counts, at once */
        else
                arm(in);
}

void gpio_inputs_settle(GpioInputs *g, size_t i, int64_t mono_usec)
{
        settle(&g->inputs[i], mono_usec);
}

/* Lets go of the line and its chip, and forgets a change that was still proving itself. */
static void close_input(Input *in)
{
        in->io = sd_event_source_disable_unref(in->io);
        if (in->timer)
                (void)sd_event_source_set_enabled(in->timer, SD_EVENT_OFF);
        if (in->line)
                gpiod_line_release(in->line);
        in->line = NULL;
        if (in->chip)
                gpiod_chip_close(in->chip);
        in->chip = NULL;
        in->dev_name[0] = '\0';
}

static int on_retry(sd_event_source *s, uint64_t usec, void *userdata);

/* The input does not work (a line that cannot be had, a read error, the chip gone): says so upward
 * once, however many attempts fail after, and requests the line again later. Takes error. */
static void input_failed(Input *in, char *error)
{
        uint64_t delay = backoff_next_ceiling(&in->backoff), at;
        int r;

        free(in->error);
        in->error = error ? error : strdup("out of memory");
        close_input(in);
        if (!in->reported_failed)
                emit_failed(in, true);

        at = (uint64_t)now_monotonic() + delay;
        if (in->retry) {
                r = sd_event_source_set_time(in->retry, at);
                if (r >= 0)
                        r = sd_event_source_set_enabled(in->retry, SD_EVENT_ONESHOT);
        } else
                r = sd_event_add_time(in->owner->event, &in->retry, CLOCK_MONOTONIC, at, 100 * 1000,
                                      on_retry, in);
        if (r < 0) {
                /* Only without memory; status and the raised input_failed still say it does not work. */
                char *why = NULL;
                if (asprintf(&why, "%s; cannot try again: %s", in->error ? in->error : "", strerror(-r)) >=
                    0) {
                        free(in->error);
                        in->error = why;
                }
        }
}

/* The input works (at start, or again): with this logical value. */
static void input_works(Input *in, int value)
{
        free(in->error);
        in->error = NULL;
        backoff_reset(&in->backoff);
        if (in->retry)
                (void)sd_event_source_set_enabled(in->retry, SD_EVENT_OFF);
        debounce_init(&in->debounce, in->debounce.window, value);
        if (in->reported_failed)
                emit_failed(in, false);
        /* A door left open while the gateway restarted, or while the line did not work, is known at once. */
        if (gpio_kind_has_state(in->kind))
                emit(in, value, now_monotonic());
}

void gpio_inputs_fail(GpioInputs *g, size_t i, const char *why)
{
        input_failed(&g->inputs[i], strdup(why));
}

static int on_line_event(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
        Input *in = userdata;
        struct gpiod_line_event ev[16];
        char *err = NULL;
        int n = 0;

        if (revents & EPOLLIN) {
                n = gpiod_line_event_read_multiple(in->line, ev, 16);
                if (n < 0) {
                        /* ENODEV: the chip went away (unplugged, driver unloaded). */
                        if (asprintf(&err, "reading events of line %s of %s failed: %s", in->line_name,
                                     in->chip_name, strerror(errno)) < 0)
                                err = NULL;
                        input_failed(in, err);
                        return 0;
                }
        }
        for (int i = 0; i < n; i++) {
                /* libgpiod reports the logical value's edge: with ActiveLow, "rising" is the active edge. */
                int value = ev[i].event_type == GPIOD_LINE_EVENT_RISING_EDGE;
                int64_t ts = (int64_t)ev[i].ts.tv_sec * 1000000 + ev[i].ts.tv_nsec / 1000;
                int64_t mono = now_monotonic();
                /* Kernels since 5.7 stamp with CLOCK_MONOTONIC; older ones used CLOCK_REALTIME. */
                if (ts > mono + 86400LL * 1000000)
                        ts = mono - (mono_to_realtime(mono) - ts);
                gpio_inputs_edge(in->owner, (size_t)(in - in->owner->inputs), value, ts);
        }
        if (revents & (EPOLLERR | EPOLLHUP)) {
                /* The kernel says the chip is gone (after the edges it still had were read above). */
                if (asprintf(&err, "line %s of %s: the GPIO chip is gone (%s)", in->line_name, in->chip_name,
                             revents & EPOLLHUP ? "EPOLLHUP" : "EPOLLERR") < 0)
                        err = NULL;
                input_failed(in, err);
        }
        return 0;
}

static struct gpiod_line *find_line(struct gpiod_chip *chip, const char *line)
{
        char *end;
        unsigned long off = strtoul(line, &end, 10);
        if (*line && *end == '\0')
                return gpiod_chip_get_line(chip, (unsigned)off);
        return gpiod_chip_find_line(chip, line);
}

/* Requests the line; on failure the input is failed (reported once, tried again later). */
static int open_input(Input *in)
{
        int fd, flags = in->active_low ? GPIOD_LINE_REQUEST_FLAG_ACTIVE_LOW : 0, value, r;
        char *err = NULL;

        close_input(in);
        in->chip = gpiod_chip_open_lookup(in->chip_name);
        if (!in->chip)
                r = asprintf(&err, "no GPIO chip '%s': %s", in->chip_name, strerror(errno));
        else if (!(in->line = find_line(in->chip, in->line_name)))
                r = asprintf(&err, "no line '%s' on %s", in->line_name, in->chip_name);
        else if (gpiod_line_request_both_edges_events_flags(in->line, CONSUMER, flags) < 0) {
                const char *holder = gpiod_line_consumer(in->line);
                r = errno == EBUSY ? asprintf(&err, "line %s of %s is held by another program (%s)",
                                              in->line_name, in->chip_name, holder ? holder : "unknown")
                                   : asprintf(&err, "cannot request line %s of %s: %s", in->line_name,
                                              in->chip_name, strerror(errno));
                in->line = NULL; /* not ours to release */
        } else if ((value = gpiod_line_get_value(in->line)) < 0)
                r = asprintf(&err, "cannot read line %s of %s: %s", in->line_name, in->chip_name,
                             strerror(errno));
        else {
                fd = gpiod_line_event_get_fd(in->line);
                r = sd_event_add_io(in->owner->event, &in->io, fd, EPOLLIN, on_line_event, in);
                /* Edges still queued in the kernel are read before a debounce timer decides that a
                 * change has held: the reader runs ahead of timers. */
                if (r >= 0)
                        r = sd_event_source_set_priority(in->io, SD_EVENT_PRIORITY_NORMAL - 1);
                if (r < 0)
                        r = asprintf(&err, "cannot watch line %s: %s", in->line_name, strerror(-r));
                else {
                        snprintf(in->dev_name, sizeof in->dev_name, "%s", gpiod_chip_name(in->chip));
                        input_works(in, value);
                        return 0;
                }
        }
        input_failed(in, r < 0 ? NULL : err);
        return -ENODEV;
}

static int on_retry(sd_event_source *s, uint64_t usec, void *userdata)
{
        (void)open_input(userdata);
        return 0;
}

void gpio_inputs_retry(GpioInputs *g, size_t i)
{
        (void)open_input(&g->inputs[i]);
}

int64_t gpio_input_next_retry(const GpioInputs *g, size_t i)
{
        const Input *in = &g->inputs[i];
        uint64_t at;
        int enabled;

        if (!in->retry || sd_event_source_get_enabled(in->retry, &enabled) < 0 || enabled == SD_EVENT_OFF ||
            sd_event_source_get_time(in->retry, &at) < 0)
                return INT64_MAX;
        return (int64_t)at;
}

int gpio_inputs_new(sd_event *e, const GpioInputConfig *cfg, size_t n, const SensorSink *sink,
                    GpioInputs **ret)
{
        GpioInputs *g = calloc(1, sizeof *g);
        if (!g)
                return -ENOMEM;
        g->event = sd_event_ref(e);
        g->sink = *sink;
        g->inputs = calloc(n ? n : 1, sizeof *g->inputs);
        if (!g->inputs) {
                gpio_inputs_free(g);
                return -ENOMEM;
        }
        for (size_t i = 0; i < n; i++) {
                Input *in = &g->inputs[i];
                in->owner = g;
                snprintf(in->id, sizeof in->id, "%s", cfg[i].id);
                in->chip_name = strdup(cfg[i].chip);
                in->line_name = strdup(cfg[i].line);
                in->kind = cfg[i].kind;
                in->active_low = cfg[i].active_low;
                in->backoff = (Backoff){.base_usec = RETRY_BASE_USEC, .cap_usec = RETRY_CAP_USEC};
                debounce_init(&in->debounce, (int64_t)cfg[i].debounce_ms * 1000, -1);
                g->n++;
                if (!in->chip_name || !in->line_name) {
                        gpio_inputs_free(g);
                        return -ENOMEM;
                }
        }
        *ret = g;
        return 0;
}

GpioInputs *gpio_inputs_free(GpioInputs *g)
{
        if (!g)
                return NULL;
        for (size_t i = 0; i < g->n; i++) {
                Input *in = &g->inputs[i];
                close_input(in);
                sd_event_source_disable_unref(in->timer);
                sd_event_source_disable_unref(in->retry);
                free(in->chip_name);
                free(in->line_name);
                free(in->error);
        }
        sd_event_source_disable_unref(g->dev_watch);
        free(g->inputs);
        sd_event_unref(g->event);
        free(g);
        return NULL;
}

/* Kernels before 6.7 do not wake a line's reader when its chip goes away (a USB expander unplugged,
 * a driver unbound): the line's fd just stays quiet. The chip's node leaving /dev says it; a chip's
 * node appearing (or its permissions set by udev) is the moment to try failed lines again. */
static int on_dev_change(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
        GpioInputs *g = userdata;
        union {
                struct inotify_event ev;
                char buf[4096];
        } u;
        ssize_t len = read(fd, u.buf, sizeof u.buf);

        for (ssize_t off = 0; len > 0 && off + (ssize_t)sizeof(struct inotify_event) <= len;) {
                const struct inotify_event *ev = (const struct inotify_event *)(u.buf + off);
                off += (ssize_t)sizeof *ev + ev->len;
                if (ev->len == 0 || strncmp(ev->name, "gpiochip", 8) != 0)
                        continue;
                for (size_t i = 0; i < g->n; i++) {
                        Input *in = &g->inputs[i];
                        char *err = NULL;
                        if ((ev->mask & IN_DELETE) && in->chip && strcmp(in->dev_name, ev->name) == 0) {
                                if (asprintf(&err, "line %s of %s: the GPIO chip %s is gone", in->line_name,
                                             in->chip_name, ev->name) < 0)
                                        err = NULL;
                                input_failed(in, err);
                        } else if ((ev->mask & (IN_CREATE | IN_ATTRIB)) && in->error)
                                (void)open_input(in);
                }
        }
        return 0;
}

static void watch_dev(GpioInputs *g)
{
        int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);

        /* Without it a vanished chip is still noticed by kernels that wake the reader, and a failed
         * line is still requested again by its timer: not worth failing the inputs for. */
        if (fd < 0)
                return;
        if (inotify_add_watch(fd, "/dev", IN_CREATE | IN_DELETE | IN_ATTRIB) < 0 ||
            sd_event_add_io(g->event, &g->dev_watch, fd, EPOLLIN, on_dev_change, g) < 0) {
                close(fd);
                return;
        }
        (void)sd_event_source_set_io_fd_own(g->dev_watch, true);
}

int gpio_inputs_start(GpioInputs *g)
{
        int failed = 0;
        if (g->n > 0 && !g->dev_watch)
                watch_dev(g);
        for (size_t i = 0; i < g->n; i++)
                if (open_input(&g->inputs[i]) < 0)
                        failed++;
        return failed;
}

void gpio_inputs_fake_start(GpioInputs *g, size_t i, int value)
{
        input_works(&g->inputs[i], value);
}

size_t gpio_inputs_count(const GpioInputs *g)
{
        return g->n;
}

const char *gpio_input_id(const GpioInputs *g, size_t i)
{
        return g->inputs[i].id;
}

const char *gpio_input_error(const GpioInputs *g, size_t i)
{
        return g->inputs[i].error;
}

int gpio_input_state(const GpioInputs *g, size_t i)
{
        return g->inputs[i].debounce.stable;
}
