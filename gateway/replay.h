/* homecare-gw replay --config FILE [--until TIME] LOG.jsonl: the rules over a recorded home log,
 * on the log's own clock, printing every alert raise and clear as one JSON object per line. */
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

/* Parses one log line. 0, or -EINVAL with a reason in err. Pure; fuzzed. */
int replay_parse_line(const char *line, size_t len, ReplayLine *ret, char *err, size_t err_size);

int replay_tool(int argc, char *argv[]);
