/* Heart Rate Measurement, 0x2A37. */
#include <errno.h>

#include "sensors/decode.h"

enum {
        HR_VALUE_U16 = 1 << 0,
        HR_CONTACT_DETECTED = 1 << 1,
        HR_CONTACT_SUPPORTED = 1 << 2,
        HR_ENERGY = 1 << 3,
        HR_RR = 1 << 4,
};

int decode_heart_rate(const uint8_t *buf, size_t len, const DecodeContext *ctx, Decoded *out)
{
        Cursor c = {buf, len, 0, out};
        uint8_t flags, u8;
        uint16_t u16;
        uint32_t flagged = 0;
        Reading *r;
        int e;

        decoded_reset(out);
        if ((e = cursor_u8(&c, "flags", &flags)) < 0)
                return e;
        if ((flags & HR_CONTACT_SUPPORTED) && !(flags & HR_CONTACT_DETECTED))
                flagged = READING_NO_SKIN_CONTACT;
        if (flags & HR_VALUE_U16)
                e = cursor_u16(&c, "heart rate (uint16)", &u16);
        else if ((e = cursor_u8(&c, "heart rate (uint8)", &u8)) == 0)
                u16 = u8;
        if (e < 0)
                return e;
        if (!(r = decoded_add_reading(out, METRIC_HEART_RATE, "/min", ctx->now_usec, ctx->now_quality)))
                return -EBADMSG;
        r->value = u16;
        r->flags = flagged;
        if (flags & HR_ENERGY) {
                if ((e = cursor_u16(&c, "energy expended", &u16)) < 0)
                        return e;
                if (!(r = decoded_add_reading(out, METRIC_ENERGY_EXPENDED, "kJ", ctx->now_usec,
                                              ctx->now_quality)))
                        return -EBADMSG;
                r->value = u16;
        }
        if (flags & HR_RR) {
                if (c.off == c.len)
                        return decoded_fail(out, -EBADMSG,
                                            "too short: the flags promise RR intervals, none follow");
                while (c.off < c.len) {
                        if ((e = cursor_u16(&c, "RR interval", &u16)) < 0)
                                return e;
                        if (!(r = decoded_add_reading(out, METRIC_RR_INTERVAL, "s", ctx->now_usec,
                                                      ctx->now_quality)))
                                return -EBADMSG;
                        r->value = u16 / 1024.0;
                }
        }
        return cursor_end(&c);
}
