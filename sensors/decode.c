#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "sensors/decode.h"
#include "sensors/ieee11073.h"

int decode_characteristic(Profile p, const uint8_t *buf, size_t len, const DecodeContext *ctx, Decoded *out)
{
        const ProfileInfo *info = profile_info(p);

        if (info && info->decode_gatt)
                return info->decode_gatt(buf, len, ctx, out);
        decoded_reset(out);
        return decoded_fail(out, -EINVAL, "not a GATT measurement profile");
}

void decoded_reset(Decoded *out)
{
        out->n_readings = out->n_events = 0;
        out->duplicate = false;
        out->error[0] = '\0';
}

int decoded_fail(Decoded *out, int error, const char *fmt, ...)
{
        va_list ap;
        if (out->error[0] == '\0') {
                va_start(ap, fmt);
                vsnprintf(out->error, sizeof out->error, fmt, ap);
                va_end(ap);
        }
        /* Never a partial result. */
        out->n_readings = out->n_events = 0;
        return error;
}

int cursor_take(Cursor *c, size_t n, const char *field, const uint8_t **ret)
{
        if (c->len - c->off < n)
                return decoded_fail(c->out, -EBADMSG,
                                    "too short: %s needs %zu bytes at offset %zu, %zu left", field, n,
                                    c->off, c->len - c->off);
        *ret = c->buf + c->off;
        c->off += n;
        return 0;
}

int cursor_u8(Cursor *c, const char *field, uint8_t *ret)
{
        const uint8_t *p = NULL;
        int r = cursor_take(c, 1, field, &p);
        if (r == 0)
                *ret = p[0];
        return r;
}

int cursor_u16(Cursor *c, const char *field, uint16_t *ret)
{
        const uint8_t *p = NULL;
        int r = cursor_take(c, 2, field, &p);
        if (r == 0)
                *ret = (uint16_t)(p[0] | p[1] << 8);
        return r;
}

int cursor_u24(Cursor *c, const char *field, uint32_t *ret)
{
        const uint8_t *p = NULL;
        int r = cursor_take(c, 3, field, &p);
        if (r == 0)
                *ret = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16;
        return r;
}

int cursor_u32(Cursor *c, const char *field, uint32_t *ret)
{
        const uint8_t *p = NULL;
        int r = cursor_take(c, 4, field, &p);
        if (r == 0)
                *ret = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
        return r;
}

int cursor_end(Cursor *c)
{
        if (c->off != c->len)
                return decoded_fail(c->out, -EBADMSG,
                                    "%zu unexpected bytes after the last field (offset %zu)",
                                    c->len - c->off, c->off);
        return 0;
}

int cursor_datetime(Cursor *c, const DecodeContext *ctx, int64_t *ret_usec, bool *ret_known)
{
        const uint8_t *p = NULL;
        struct tm tm = {};
        unsigned year, month, day, h, m, s;
        int r = cursor_take(c, 7, "time stamp", &p);

        if (r < 0)
                return r;
        year = p[0] | p[1] << 8;
        month = p[2];
        day = p[3];
        h = p[4];
        m = p[5];
        s = p[6];
        if (year == 0 || month == 0 || day == 0) { /* "not known" in the Date Time characteristic */
                *ret_known = false;
                return 0;
        }
        if (year < 1582 || year > 9999 || month > 12 || day > 31 || h > 23 || m > 59 || s > 59)
                return decoded_fail(c->out, -EBADMSG,
                                    "time stamp out of range: %04u-%02u-%02u %02u:%02u:%02u", year, month,
                                    day, h, m, s);
        tm.tm_year = (int)year - 1900;
        tm.tm_mon = (int)month - 1;
        tm.tm_mday = (int)day;
        tm.tm_hour = (int)h;
        tm.tm_min = (int)m;
        tm.tm_sec = (int)s;
        *ret_usec = ((int64_t)timegm(&tm) - ctx->utc_offset_sec) * 1000000;
        *ret_known = true;
        return 0;
}

int cursor_time_stamp(Cursor *c, const DecodeContext *ctx, int64_t *t, TimeQuality *q)
{
        int64_t device;
        bool known;
        int e = cursor_datetime(c, ctx, &device, &known);
        if (e == 0 && known) {
                *t = device;
                *q = TIME_DEVICE;
        }
        return e;
}

DateTime datetime_from_usec(int64_t usec, int32_t utc_offset_sec)
{
        time_t t = (time_t)(usec / 1000000 + utc_offset_sec);
        struct tm tm;
        gmtime_r(&t, &tm);
        return (DateTime){.year = (uint16_t)(tm.tm_year + 1900),
                          .month = (uint8_t)(tm.tm_mon + 1),
                          .day = (uint8_t)tm.tm_mday,
                          .hours = (uint8_t)tm.tm_hour,
                          .minutes = (uint8_t)tm.tm_min,
                          .seconds = (uint8_t)tm.tm_sec};
}

void put_datetime(uint8_t *p, const DateTime *t)
{
        p[0] = (uint8_t)(t->year & 0xFF);
        p[1] = (uint8_t)(t->year >> 8);
        p[2] = t->month;
        p[3] = t->day;
        p[4] = t->hours;
        p[5] = t->minutes;
        p[6] = t->seconds;
}

Reading *decoded_add_reading(Decoded *out, Metric m, const char *unit, int64_t time_usec, TimeQuality q)
{
        Reading *r;
        if (out->n_readings >= DECODED_MAX) {
                decoded_fail(out, -EBADMSG, "more than %d values in one frame", DECODED_MAX);
                return NULL;
        }
        r = &out->readings[out->n_readings++];
        *r = (Reading){.metric = m, .unit = unit, .time_usec = time_usec, .time_quality = q};
        return r;
}

Reading *decoded_add_sfloat(Decoded *out, Metric m, const char *unit, uint16_t raw, int extra_exponent,
                            int64_t time_usec, TimeQuality q)
{
        Reading *r = decoded_add_reading(out, m, unit, time_usec, q);
        double v;
        Ieee11073Special s;

        if (!r)
                return NULL;
        s = sfloat_decode_scaled(raw, extra_exponent, &v);
        if (s == IEEE11073_NUMBER)
                r->value = v;
        else
                r->absent = ieee11073_special_name(s);
        return r;
}

Reading *decoded_add_float(Decoded *out, Metric m, const char *unit, uint32_t raw, int64_t time_usec,
                           TimeQuality q)
{
        Reading *r = decoded_add_reading(out, m, unit, time_usec, q);
        double v;
        Ieee11073Special s;

        if (!r)
                return NULL;
        s = float_decode(raw, &v);
        if (s == IEEE11073_NUMBER)
                r->value = v;
        else
                r->absent = ieee11073_special_name(s);
        return r;
}

Event *decoded_add_event(Decoded *out, EventKind k, int value, int64_t time_usec)
{
        Event *e;
        if (out->n_events >= DECODED_MAX) {
                decoded_fail(out, -EBADMSG, "more than %d states in one frame", DECODED_MAX);
                return NULL;
        }
        e = &out->events[out->n_events++];
        *e = (Event){.kind = k, .value = value, .time_usec = time_usec};
        return e;
}
