/* One line of a recorded home log (JSON Lines), as homecare-gw replay reads it (the tool itself is
 * gateway/cli-replay.c). Pure parsing of outside input: fuzzed (tests/fuzz/fuzz-replay-line.c). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sensors/reading.h"

typedef enum ReplayKind {
        REPLAY_READING,       /* {"time","sensor","metric","value","unit"} */
        REPLAY_EVENT,         /* {"time","sensor","event","value"} (value defaults to 1) */
        REPLAY_NURSE_READING, /* {"time","nurse":"entry","metric","value","unit"} */
        REPLAY_NURSE_ACVPU,   /* {"time","nurse":"entry","metric":"consciousness","value":"A"} */
} ReplayKind;

typedef struct ReplayLine {
        ReplayKind kind;
        int64_t time_usec;
        char sensor[SENSOR_ID_MAX];
        Metric metric;
        double value;
        const char *unit; /* static */
        EventKind event;
        int event_value;
        char acvpu;
} ReplayLine;

/* Parses one log line (len bytes, need not be NUL-terminated). 0 and *ret filled (its unit is a
 * static string), or -EINVAL with a reason written into reterr_error (the caller's buffer of reterr_size
 * bytes). */
int replay_parse_line(const char *line, size_t len, ReplayLine *ret, char *reterr_error, size_t reterr_size);
