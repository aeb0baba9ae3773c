/* libFuzzer target: one decoder of radio bytes, chosen with -DFUZZ_PROFILE=PROFILE_... at build time
 * (and -DFUZZ_BTHOME=1 for BTHome: the preprocessor cannot compare enum constants).
 * Checks the decoder's promises: on success every reading has a metric, a unit, and either a finite
 * value or a reason for its absence; on failure there is a message and no reading at all. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sensors/bthome.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static Decoded out;
        static const uint8_t key[16] = {0x23, 0x1d, 0x39, 0xc1, 0xd7, 0xcc, 0x1a, 0xb1,
                                        0xae, 0xe2, 0x24, 0xcd, 0x09, 0x6d, 0xb9, 0x32};
        static const uint8_t mac[6] = {0x54, 0x48, 0xE6, 0x8F, 0x80, 0xA5};
        const DecodeContext ctx = {
            .now_usec = 1772442000LL * 1000000, .now_quality = TIME_SYNCED, .utc_offset_sec = 3600};
        int r;

#if FUZZ_BTHOME
        /* The first byte chooses: with or without a key, with or without a last counter. */
        BthomeState st = {};
        if (size < 1)
                return 0;
        st.has_counter = data[0] & 2;
        st.counter = 0x33221100;
        r = decode_bthome(data + 1, size - 1, (data[0] & 1) ? key : NULL, mac, &ctx,
                          (data[0] & 4) ? &st : NULL, &out);
#else
        (void)key;
        (void)mac;
        r = decode_characteristic(FUZZ_PROFILE, data, size, &ctx, &out);
#endif
        if (r < 0) {
                if (out.error[0] == '\0' || out.n_readings || out.n_events)
                        abort();
                return 0;
        }
        for (size_t i = 0; i < out.n_readings; i++) {
                const Reading *rd = &out.readings[i];
                if (!metric_name(rd->metric) || !rd->unit || (!rd->absent && !isfinite(rd->value)))
                        abort();
        }
        for (size_t i = 0; i < out.n_events; i++)
                if (!event_kind_name(out.events[i].kind))
                        abort();
        return 0;
}
