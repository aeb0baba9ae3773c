/* The gateway's clock, as decoders and the rules need to be told about it. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "sensors/decode.h"

/* No correct clock shows a time before this (2026-01-01T00:00:00Z, before this release): a Raspberry
 * Pi without a real-time clock boots at 1970 or at its last shutdown until NTP sets it. */
#define CLOCK_EPOCH_USEC (1767225600LL * 1000000)
/* A change of the wall clock's offset from CLOCK_BOOTTIME by more than this is a step (NTP setting
 * the clock, `date -s`); less is NTP slewing, or a late look. */
#define CLOCK_STEP_MIN_USEC (2LL * 1000000)

/* Receive time now, whether the clock can be trusted (adjtimex says synchronised and the time is not
 * before CLOCK_EPOCH_USEC), and the local zone's offset (device clocks are set to local time). */
DecodeContext decode_context_now(void);
/* The same judgement from its parts, for tests: adjtimex()'s return value and status, and the time. */
TimeQuality clock_quality(int adjtimex_state, int adjtimex_status, int64_t realtime_usec);

/* Watches CLOCK_REALTIME against CLOCK_BOOTTIME (which counts suspend too, and is never set). */
typedef struct ClockWatch {
        int64_t offset; /* realtime minus boottime at the last look, usec */
        bool known;
} ClockWatch;

/* Looks at a pair of readings taken together. Returns the step (new minus old wall time, usec) if
 * the offset moved by more than CLOCK_STEP_MIN_USEC since the last look, else 0; the offset is
 * remembered either way, so slewing is followed and a step is reported once. */
int64_t clock_watch_update(ClockWatch *w, int64_t realtime_usec, int64_t boottime_usec);

/* A timerfd on CLOCK_REALTIME that becomes readable, read() failing with ECANCELED, whenever the
 * clock is set (TFD_TIMER_CANCEL_ON_SET, as systemd watches for time changes). Returns the fd (the
 * caller owns it) or a negative errno. clock_change_fd_rearm() must follow every ECANCELED. */
int clock_change_fd_new(void);
int clock_change_fd_rearm(int fd);
