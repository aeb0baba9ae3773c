/* Temperature Measurement, 0x2A1C. */
#include <errno.h>

#include "sensors/health-encode.h"
#include "sensors/ieee11073.h"

enum {
        TEMP_FAHRENHEIT = 1 << 0,
        TEMP_TIME = 1 << 1,
        TEMP_TYPE = 1 << 2,
};

static const char *const types[] = {
    [1] = "armpit", [2] = "body",   [3] = "ear", [4] = "finger",   [5] = "gastrointestinal",
    [6] = "mouth",  [7] = "rectum", [8] = "toe", [9] = "tympanum",
};

int decode_temperature(const uint8_t *buf, size_t len, const DecodeContext *ctx, Decoded *out)
{
        Cursor c = {buf, len, 0, out};
        uint8_t flags, type = 0;
        uint32_t raw;
        int64_t t = ctx->now_usec;
        TimeQuality q = ctx->now_quality;
        Reading *r;
        int e;

        decoded_reset(out);
        if ((e = cursor_u8(&c, "flags", &flags)) < 0 || (e = cursor_u32(&c, "temperature", &raw)) < 0)
                return e;
        if ((flags & TEMP_TIME) && (e = cursor_time_stamp(&c, ctx, &t, &q)) < 0)
                return e;
        if ((flags & TEMP_TYPE) && (e = cursor_u8(&c, "temperature type", &type)) < 0)
                return e;
        if ((e = cursor_end(&c)) < 0)
                return e;
        r = decoded_add_float(out, METRIC_BODY_TEMPERATURE, (flags & TEMP_FAHRENHEIT) ? "[degF]" : "Cel",
                              raw, t, q);
        if (r && (flags & TEMP_TYPE))
                r->site = type < sizeof types / sizeof types[0] && types[type] ? types[type] : "reserved";
        return 0;
}

size_t encode_temperature_cel(uint8_t *buf, double celsius, const DateTime *time, uint8_t type)
{
        uint32_t raw = float_encode(celsius, -1);
        size_t n = 5;
        buf[0] = 0;
        for (int i = 0; i < 4; i++)
                buf[1 + i] = (uint8_t)(raw >> (8 * i));
        if (time) {
                buf[0] |= TEMP_TIME;
                put_datetime(buf + n, time);
                n += 7;
        }
        if (type) {
                buf[0] |= TEMP_TYPE;
                buf[n++] = type;
        }
        return n;
}
