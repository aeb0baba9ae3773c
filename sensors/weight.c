/* Weight Measurement, 0x2A9D. */
#include <errno.h>
#include <math.h>

#include "sensors/health-encode.h"

enum {
        WEIGHT_IMPERIAL = 1 << 0,
        WEIGHT_TIME = 1 << 1,
        WEIGHT_USER = 1 << 2,
        WEIGHT_BMI_HEIGHT = 1 << 3,
};

int decode_weight(const uint8_t *buf, size_t len, const DecodeContext *ctx, Decoded *out)
{
        Cursor c = {buf, len, 0, out};
        uint16_t w, bmi = 0, height = 0;
        uint8_t flags, user = 0xFF;
        int64_t t = ctx->now_usec;
        TimeQuality q = ctx->now_quality;
        bool imperial;
        Reading *r;
        int e;

        decoded_reset(out);
        if ((e = cursor_u8(&c, "flags", &flags)) < 0 || (e = cursor_u16(&c, "weight", &w)) < 0)
                return e;
        imperial = flags & WEIGHT_IMPERIAL;
        if ((flags & WEIGHT_TIME) && (e = cursor_time_stamp(&c, ctx, &t, &q)) < 0)
                return e;
        if ((flags & WEIGHT_USER) && (e = cursor_u8(&c, "user id", &user)) < 0)
                return e;
        if ((flags & WEIGHT_BMI_HEIGHT) &&
            ((e = cursor_u16(&c, "BMI", &bmi)) < 0 || (e = cursor_u16(&c, "height", &height)) < 0))
                return e;
        if ((e = cursor_end(&c)) < 0)
                return e;

        /* Resolutions: 0.005 kg or 0.01 lb; BMI 0.1; height 0.001 m or 0.1 in. Divisions by integers
         * give the doubles nearest to the decimal values. */
        r = decoded_add_reading(out, METRIC_BODY_WEIGHT, imperial ? "[lb_av]" : "kg", t, q);
        if (w == 0xFFFF)
                r->absent = "unsuccessful";
        else
                r->value = imperial ? w / 100.0 : w / 200.0;
        if (flags & WEIGHT_BMI_HEIGHT) {
                r = decoded_add_reading(out, METRIC_BMI, "kg/m2", t, q);
                r->value = bmi / 10.0;
                r = decoded_add_reading(out, METRIC_BODY_HEIGHT, imperial ? "[in_i]" : "m", t, q);
                r->value = imperial ? height / 10.0 : height / 1000.0;
                if (w == 0xFFFF) /* BMI means nothing without the weight */
                        out->readings[1].absent = "unsuccessful";
        }
        for (size_t i = 0; i < out->n_readings; i++) {
                out->readings[i].has_user = (flags & WEIGHT_USER) && user != 0xFF;
                out->readings[i].user = user;
        }
        return 0;
}

size_t encode_weight_kg(uint8_t *buf, double kg, const DateTime *time, int user)
{
        long w = lround(kg * 200);
        size_t n = 3;
        if (w < 0 || w >= 0xFFFF)
                w = 0xFFFF;
        buf[0] = 0;
        buf[1] = (uint8_t)w;
        buf[2] = (uint8_t)(w >> 8);
        if (time) {
                buf[0] |= WEIGHT_TIME;
                put_datetime(buf + n, time);
                n += 7;
        }
        if (user >= 0) {
                buf[0] |= WEIGHT_USER;
                buf[n++] = (uint8_t)user;
        }
        return n;
}
