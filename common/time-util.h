/* The clocks, in microseconds, as the rest of the code counts time. */
#pragma once

#include <stdint.h>

#define USEC_PER_MSEC INT64_C(1000)
#define USEC_PER_SEC INT64_C(1000000)

/* CLOCK_REALTIME now, usec since the epoch (UTC): what readings, events and alerts carry. */
int64_t now_realtime(void);
/* CLOCK_MONOTONIC now, usec: what sd-event timers and debouncing count in. */
int64_t now_monotonic(void);
/* CLOCK_BOOTTIME now, usec: like CLOCK_MONOTONIC but counting suspend too; never set, so the wall
 * clock is watched against it for steps. */
int64_t now_boottime(void);
