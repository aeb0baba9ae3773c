/* Wired inputs on GPIO lines (libgpiod 1.6): door contacts, the alarm button, bed mats, dispenser
 * outputs. Each line is requested for both edges; its event fd is a source in the loop. Edges are
 * debounced in software from the kernel's time stamps, and what an edge means follows the kind.
 * A line that cannot be had (no chip, no line, held by another program) fails that input only. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <systemd/sd-event.h>

#include "sensors/reading.h"

typedef enum GpioKind {
        GPIO_DOOR,                 /* active: open */
        GPIO_BUTTON,               /* active edge: pressed */
        GPIO_BED,                  /* active: occupied */
        GPIO_DISPENSER_DOSE_TAKEN, /* active edge: a dose was taken */
        GPIO_DISPENSER_DOSE_DUE,   /* active edge: a dose is due */
        GPIO_DISPENSER_FAULT,      /* active: fault */
        GPIO_MOTION,               /* active: motion */
        GPIO_GENERIC,
        _GPIO_KIND_MAX,
} GpioKind;

int gpio_kind_from_name(const char *name, GpioKind *ret); /* the Kind= names: door, button, ... */
const char *gpio_kind_name(GpioKind k);                   /* a static string; NULL out of range */

/* ---- pure parts (unit-tested) ---- */

typedef struct Debounce {
        int64_t window; /* usec; 0: every edge counts */
        int stable;     /* the last reported value, -1 before the first */
        bool pending;   /* a different value is waiting to prove itself */
        bool bouncing;  /* edges within the window of each other: one burst */
        int pending_value;
        int64_t first_edge; /* when the pending change began (the time reported) */
        int64_t last_edge;  /* the last edge of the burst */
} Debounce;

void debounce_init(Debounce *d, int64_t window_usec, int initial_value);
/* An edge: the line's logical value after it, and the kernel's time stamp (edges in time order).
 * A pending change that had already held for the window when this edge came is settled first, at
 * its own time: returns true with its value and the time it began, as debounce_settle() would have.
 * That happens when a press and its release are read in one batch, after the loop was busy. */
bool debounce_edge(Debounce *d, int value, int64_t ts, int *ret_value, int64_t *ret_ts);
/* When the pending change, if any, will have held long enough; INT64_MAX if none. */
int64_t debounce_deadline(const Debounce *d);
/* At time now: returns true with the new value and the time it began when a change has held. */
bool debounce_settle(Debounce *d, int64_t now, int *ret_value, int64_t *ret_ts);

/* What a settled change means: fills *ret and returns true if it is an event worth reporting
 * (a button's release, for instance, is not). value: logical (after ActiveLow). */
bool gpio_edge_event(GpioKind kind, int value, Event *ret);
/* Whether the kind has a state worth reporting at start-up (doors, beds; not button presses). */
bool gpio_kind_has_state(GpioKind kind);

/* ---- the inputs ---- */

typedef struct GpioInputConfig {
        const char *id;
        const char *chip; /* gpiochip0, /dev/gpiochip0, a number or a label */
        const char *line; /* an offset, or a line name */
        GpioKind kind;
        bool active_low;
        unsigned debounce_ms;
} GpioInputConfig;

typedef struct GpioInputs GpioInputs;

/* Copies the configuration. Nothing is opened until gpio_inputs_start(). */
int gpio_inputs_new(sd_event *e, const GpioInputConfig *cfg, size_t n, const SensorSink *sink,
                    GpioInputs **ret);
GpioInputs *gpio_inputs_free(GpioInputs *g);
/* Requests every line; an input that fails keeps its error (gpio_input_error()) and the rest go on.
 * Reports the start-up state of state kinds once. Returns the number of inputs that failed.
 * An input that does not work, at start or later (a read error, EPOLLERR/EPOLLHUP: the chip gone),
 * is reported once through the sink as EVENT_INPUT_FAILED value 1, its line is requested again with
 * back-off (1 s doubling to 60 s), and when that succeeds EVENT_INPUT_FAILED value 0 follows, then
 * the line's state for state kinds. */
int gpio_inputs_start(GpioInputs *g);

size_t gpio_inputs_count(const GpioInputs *g);
const char *gpio_input_id(const GpioInputs *g, size_t i);
const char *gpio_input_error(const GpioInputs *g, size_t i); /* NULL when working */
int gpio_input_state(const GpioInputs *g, size_t i);         /* the last settled logical value, or -1 */

/* The seam: an edge on input i (logical value, CLOCK_MONOTONIC usec), as the kernel reports it.
 * The libgpiod reader calls this; tests call it with exact time stamps. It arms the debounce timer;
 * with DebounceMs=0 the edge is reported at once. */
void gpio_inputs_edge(GpioInputs *g, size_t i, int value, int64_t mono_usec);
/* Reports input i's pending change if it has held until now (the timer calls this; tests too). */
void gpio_inputs_settle(GpioInputs *g, size_t i, int64_t mono_usec);
/* Marks input i as working with this start-up value, without hardware (tests): as a successful
 * request of its line would, also after a failure. */
void gpio_inputs_fake_start(GpioInputs *g, size_t i, int value);
/* Input i stopped working (the reader calls this on a read error, EPOLLERR or EPOLLHUP; tests too):
 * lets go of the line, reports it failed once and requests the line again with back-off. */
void gpio_inputs_fail(GpioInputs *g, size_t i, const char *why);
/* Requests input i's line again now (the back-off timer calls this; tests too). */
void gpio_inputs_retry(GpioInputs *g, size_t i);
/* When input i's line will be requested again (CLOCK_MONOTONIC usec); INT64_MAX while it works. */
int64_t gpio_input_next_retry(const GpioInputs *g, size_t i);
