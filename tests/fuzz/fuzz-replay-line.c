/* libFuzzer target: one line of a recorded home log (replay input). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/replay.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        ReplayLine l;
        char err[256] = "";
        if (replay_parse_line((const char *)data, size, &l, err, sizeof err) < 0) {
                if (err[0] == '\0')
                        abort(); /* every refusal says why */
                return 0;
        }
        if (l.kind == REPLAY_READING && (!l.unit || !metric_name(l.metric)))
                abort();
        if (strlen(l.sensor) >= sizeof l.sensor)
                abort();
        return 0;
}
