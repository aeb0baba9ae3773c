/* Blood Pressure Measurement, 0x2A35. */
#include <errno.h>
#include <string.h>

#include "sensors/health-encode.h"
#include "sensors/ieee11073.h"

enum {
        BP_KPA = 1 << 0,
        BP_TIME = 1 << 1,
        BP_PULSE = 1 << 2,
        BP_USER = 1 << 3,
        BP_STATUS = 1 << 4,
};

static uint32_t status_flags(uint16_t s)
{
        uint32_t f = 0;
        if (s & (1 << 0))
                f |= READING_BODY_MOVEMENT;
        if (s & (1 << 1))
                f |= READING_CUFF_LOOSE;
        if (s & (1 << 2))
                f |= READING_IRREGULAR_PULSE;
        if (((s >> 3) & 3) == 1 || ((s >> 3) & 3) == 2) /* above the upper / below the lower limit */
                f |= READING_PULSE_OUT_OF_RANGE;
        if (s & (1 << 5))
                f |= READING_IMPROPER_POSITION;
        return f;
}

int decode_blood_pressure(const uint8_t *buf, size_t len, const DecodeContext *ctx, Decoded *out)
{
        Cursor c = {buf, len, 0, out};
        uint16_t sys, dia, map, pulse = 0, status = 0;
        uint8_t flags, user = 0xFF;
        int64_t t = ctx->now_usec;
        TimeQuality q = ctx->now_quality;
        const char *unit;
        int e;

        decoded_reset(out);
        if ((e = cursor_u8(&c, "flags", &flags)) < 0 || (e = cursor_u16(&c, "systolic", &sys)) < 0 ||
            (e = cursor_u16(&c, "diastolic", &dia)) < 0 ||
            (e = cursor_u16(&c, "mean arterial pressure", &map)) < 0)
                return e;
        if ((flags & BP_TIME) && (e = cursor_time_stamp(&c, ctx, &t, &q)) < 0)
                return e;
        if ((flags & BP_PULSE) && (e = cursor_u16(&c, "pulse rate", &pulse)) < 0)
                return e;
        if ((flags & BP_USER) && (e = cursor_u8(&c, "user id", &user)) < 0)
                return e;
        if ((flags & BP_STATUS) && (e = cursor_u16(&c, "measurement status", &status)) < 0)
                return e;
        if ((e = cursor_end(&c)) < 0)
                return e;

        unit = (flags & BP_KPA) ? "kPa" : "mm[Hg]";
        decoded_add_sfloat(out, METRIC_SYSTOLIC, unit, sys, 0, t, q);
        decoded_add_sfloat(out, METRIC_DIASTOLIC, unit, dia, 0, t, q);
        decoded_add_sfloat(out, METRIC_MEAN_ARTERIAL_PRESSURE, unit, map, 0, t, q);
        if (flags & BP_PULSE)
                decoded_add_sfloat(out, METRIC_PULSE_RATE, "/min", pulse, 0, t, q);
        for (size_t i = 0; i < out->n_readings; i++) {
                out->readings[i].flags = status_flags(status);
                /* 0xFF is "unknown user" */
                out->readings[i].has_user = (flags & BP_USER) && user != 0xFF;
                out->readings[i].user = user;
        }
        return 0;
}

static void put16(uint8_t *p, uint16_t v)
{
        p[0] = (uint8_t)v;
        p[1] = (uint8_t)(v >> 8);
}

size_t encode_blood_pressure(uint8_t *buf, const BloodPressureValue *v)
{
        size_t n = 1;
        buf[0] = 0;
        put16(buf + n, sfloat_encode(v->systolic, 0));
        put16(buf + n + 2, sfloat_encode(v->diastolic, 0));
        put16(buf + n + 4, sfloat_encode(v->map, 0));
        n += 6;
        if (v->has_time) {
                buf[0] |= BP_TIME;
                put_datetime(buf + n, &v->time);
                n += 7;
        }
        buf[0] |= BP_PULSE;
        put16(buf + n, sfloat_encode(v->pulse, 0));
        n += 2;
        if (v->user >= 0) {
                buf[0] |= BP_USER;
                buf[n++] = (uint8_t)v->user;
        }
        if (v->status) {
                buf[0] |= BP_STATUS;
                put16(buf + n, v->status);
                n += 2;
        }
        return n;
}
