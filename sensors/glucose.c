/* Glucose Measurement, 0x2A18. */
#include <errno.h>

#include "sensors/decode.h"

enum {
        GLU_TIME_OFFSET = 1 << 0,
        GLU_CONCENTRATION = 1 << 1,
        GLU_MOL_PER_L = 1 << 2,
        GLU_STATUS = 1 << 3,
        GLU_CONTEXT_FOLLOWS = 1 << 4,
};

static const char *const sample_types[] = {
    [1] = "capillary whole blood",    [2] = "capillary plasma",
    [3] = "venous whole blood",       [4] = "venous plasma",
    [5] = "arterial whole blood",     [6] = "arterial plasma",
    [7] = "undetermined whole blood", [8] = "undetermined plasma",
    [9] = "interstitial fluid",       [10] = "control solution",
};

static const char *const locations[] = {
    [1] = "finger",           [2] = "alternate site", [3] = "earlobe",
    [4] = "control solution", [15] = "not available",
};

static uint32_t annunciation_flags(uint16_t s)
{
        uint32_t f = 0;
        if (s & (1 << 0))
                f |= READING_BATTERY_LOW;
        if (s & ((1 << 1) | (1 << 10))) /* sensor malfunction, general device fault */
                f |= READING_SENSOR_FAULT;
        if (s & (1 << 2))
                f |= READING_SAMPLE_INSUFFICIENT;
        if (s & ((1 << 3) | (1 << 4) | (1 << 9))) /* strip insertion, strip type, read interrupted */
                f |= READING_STRIP_ERROR;
        if (s & (1 << 5))
                f |= READING_RESULT_HIGH;
        if (s & (1 << 6))
                f |= READING_RESULT_LOW;
        if (s & ((1 << 7) | (1 << 8)))
                f |= READING_TEMPERATURE_OUT_OF_RANGE;
        if (s & (1 << 11))
                f |= READING_TIME_FAULT;
        return f;
}

int decode_glucose(const uint8_t *buf, size_t len, const DecodeContext *ctx, Decoded *out)
{
        Cursor c = {buf, len, 0, out};
        uint16_t seq, offset = 0, conc = 0, status = 0;
        uint8_t flags, type_loc = 0, type, loc;
        int64_t t;
        TimeQuality q = TIME_DEVICE;
        bool known;
        Reading *r;
        int e;

        decoded_reset(out);
        if ((e = cursor_u8(&c, "flags", &flags)) < 0 || (e = cursor_u16(&c, "sequence number", &seq)) < 0 ||
            (e = cursor_datetime(&c, ctx, &t, &known)) < 0)
                return e;
        if ((flags & GLU_TIME_OFFSET) && (e = cursor_u16(&c, "time offset", &offset)) < 0)
                return e;
        if ((flags & GLU_CONCENTRATION) && ((e = cursor_u16(&c, "glucose concentration", &conc)) < 0 ||
                                            (e = cursor_u8(&c, "type and sample location", &type_loc)) < 0))
                return e;
        if ((flags & GLU_STATUS) && (e = cursor_u16(&c, "sensor status annunciation", &status)) < 0)
                return e;
        if ((e = cursor_end(&c)) < 0)
                return e;
        if (!(flags & GLU_CONCENTRATION))
                return 0; /* a record without a concentration: nothing to report */
        if (known)
                t += (int64_t)(int16_t)offset * 60 * 1000000;
        else {
                t = ctx->now_usec;
                q = ctx->now_quality;
        }
        /* kg/L to mg/dL is 10^5, mol/L to mmol/L is 10^3: added to the exponent. */
        if (flags & GLU_MOL_PER_L)
                r = decoded_add_sfloat(out, METRIC_GLUCOSE, "mmol/L", conc, 3, t, q);
        else
                r = decoded_add_sfloat(out, METRIC_GLUCOSE, "mg/dL", conc, 5, t, q);
        if (!r)
                return -EBADMSG;
        type = type_loc & 0x0F;
        loc = type_loc >> 4;
        r->sample = type < sizeof sample_types / sizeof sample_types[0] && sample_types[type]
                        ? sample_types[type]
                        : "reserved";
        r->site =
            loc < sizeof locations / sizeof locations[0] && locations[loc] ? locations[loc] : "reserved";
        r->has_sequence = true;
        r->sequence = seq;
        r->flags = annunciation_flags(status);
        if (type == 10 || loc == 4) /* control solution: a check of the meter, not the patient */
                r->flags |= READING_DEMO_OR_TEST;
        return 0;
}
