/* Pulse oximetry: PLX Spot-Check Measurement 0x2A5E and PLX Continuous Measurement 0x2A5F. */
#include <errno.h>

#include "sensors/health-encode.h"
#include "sensors/ieee11073.h"

enum {
        SPOT_TIME = 1 << 0,
        SPOT_MEAS_STATUS = 1 << 1,
        SPOT_DEVICE_STATUS = 1 << 2,
        SPOT_PAI = 1 << 3,
        SPOT_CLOCK_NOT_SET = 1 << 4,
};

enum {
        CONT_FAST = 1 << 0,
        CONT_SLOW = 1 << 1,
        CONT_MEAS_STATUS = 1 << 2,
        CONT_DEVICE_STATUS = 1 << 3,
        CONT_PAI = 1 << 4,
};

/* Measurement Status (16 bits) and Device and Sensor Status (24 bits) as reading flags. */
static uint32_t measurement_flags(uint16_t s)
{
        uint32_t f = 0;
        if (s & (1 << 6))
                f |= READING_EARLY_ESTIMATE;
        if (s & (1 << 9))
                f |= READING_FROM_STORAGE;
        if (s & ((1 << 10) | (1 << 11))) /* demonstration, testing */
                f |= READING_DEMO_OR_TEST;
        if (s & ((1 << 12) | (1 << 14))) /* calibration ongoing, questionable */
                f |= READING_QUESTIONABLE;
        if (s & ((1 << 13) | (1 << 15))) /* measurement unavailable, invalid */
                f |= READING_INVALID;
        return f;
}

static uint32_t device_flags(uint32_t s)
{
        uint32_t f = 0;
        if (s & (1 << 1))
                f |= READING_EQUIPMENT_MALFUNCTION;
        if (s & ((1 << 2) | (1 << 3) | (1 << 4) | (1 << 6) | (1 << 7) | (1 << 10)))
                f |= READING_SIGNAL_POOR;
        if (s & (1 << 5))
                f |= READING_LOW_PERFUSION;
        if (s & (1 << 8))
                f |= READING_QUESTIONABLE;
        if (s & ((1 << 11) | (1 << 12) | (1 << 13) | (1 << 14) | (1 << 15)))
                f |= READING_SENSOR_PROBLEM;
        return f;
}

static void flag_all(Decoded *out, uint32_t f)
{
        for (size_t i = 0; i < out->n_readings; i++)
                out->readings[i].flags |= f;
}

int decode_plx_spot(const uint8_t *buf, size_t len, const DecodeContext *ctx, Decoded *out)
{
        Cursor c = {buf, len, 0, out};
        uint16_t spo2, pr, mstatus = 0, pai = 0;
        uint32_t dstatus = 0, f = 0;
        uint8_t flags;
        int64_t t = ctx->now_usec;
        TimeQuality q = ctx->now_quality;
        bool known = false;
        int e;

        decoded_reset(out);
        if ((e = cursor_u8(&c, "flags", &flags)) < 0 || (e = cursor_u16(&c, "SpO2", &spo2)) < 0 ||
            (e = cursor_u16(&c, "pulse rate", &pr)) < 0)
                return e;
        if ((flags & SPOT_TIME) && (e = cursor_datetime(&c, ctx, &t, &known)) < 0)
                return e;
        if ((flags & SPOT_MEAS_STATUS) && (e = cursor_u16(&c, "measurement status", &mstatus)) < 0)
                return e;
        if ((flags & SPOT_DEVICE_STATUS) && (e = cursor_u24(&c, "device and sensor status", &dstatus)) < 0)
                return e;
        if ((flags & SPOT_PAI) && (e = cursor_u16(&c, "pulse amplitude index", &pai)) < 0)
                return e;
        if ((e = cursor_end(&c)) < 0)
                return e;
        if (flags & SPOT_CLOCK_NOT_SET) {
                /* The device's time stamp cannot be trusted: use the receive time, and say so. */
                f |= READING_DEVICE_CLOCK_NOT_SET;
                known = false;
        }
        if (known)
                q = TIME_DEVICE;
        else
                t = ctx->now_usec;
        decoded_add_sfloat(out, METRIC_SPO2, "%", spo2, 0, t, q);
        decoded_add_sfloat(out, METRIC_PULSE_RATE, "/min", pr, 0, t, q);
        if (flags & SPOT_PAI)
                decoded_add_sfloat(out, METRIC_PERFUSION_INDEX, "%", pai, 0, t, q);
        flag_all(out, f | measurement_flags(mstatus) | device_flags(dstatus));
        return 0;
}

int decode_plx_continuous(const uint8_t *buf, size_t len, const DecodeContext *ctx, Decoded *out)
{
        Cursor c = {buf, len, 0, out};
        uint16_t spo2, pr, fspo2 = 0, fpr = 0, sspo2 = 0, spr = 0, mstatus = 0, pai = 0;
        uint32_t dstatus = 0;
        uint8_t flags;
        int64_t t = ctx->now_usec;
        TimeQuality q = ctx->now_quality;
        int e;

        decoded_reset(out);
        if ((e = cursor_u8(&c, "flags", &flags)) < 0 || (e = cursor_u16(&c, "SpO2", &spo2)) < 0 ||
            (e = cursor_u16(&c, "pulse rate", &pr)) < 0)
                return e;
        if ((flags & CONT_FAST) && ((e = cursor_u16(&c, "SpO2 fast", &fspo2)) < 0 ||
                                    (e = cursor_u16(&c, "pulse rate fast", &fpr)) < 0))
                return e;
        if ((flags & CONT_SLOW) && ((e = cursor_u16(&c, "SpO2 slow", &sspo2)) < 0 ||
                                    (e = cursor_u16(&c, "pulse rate slow", &spr)) < 0))
                return e;
        if ((flags & CONT_MEAS_STATUS) && (e = cursor_u16(&c, "measurement status", &mstatus)) < 0)
                return e;
        if ((flags & CONT_DEVICE_STATUS) && (e = cursor_u24(&c, "device and sensor status", &dstatus)) < 0)
                return e;
        if ((flags & CONT_PAI) && (e = cursor_u16(&c, "pulse amplitude index", &pai)) < 0)
                return e;
        if ((e = cursor_end(&c)) < 0)
                return e;
        decoded_add_sfloat(out, METRIC_SPO2, "%", spo2, 0, t, q);
        decoded_add_sfloat(out, METRIC_PULSE_RATE, "/min", pr, 0, t, q);
        if (flags & CONT_FAST) {
                decoded_add_sfloat(out, METRIC_SPO2_FAST, "%", fspo2, 0, t, q);
                decoded_add_sfloat(out, METRIC_PULSE_RATE_FAST, "/min", fpr, 0, t, q);
        }
        if (flags & CONT_SLOW) {
                decoded_add_sfloat(out, METRIC_SPO2_SLOW, "%", sspo2, 0, t, q);
                decoded_add_sfloat(out, METRIC_PULSE_RATE_SLOW, "/min", spr, 0, t, q);
        }
        if (flags & CONT_PAI)
                decoded_add_sfloat(out, METRIC_PERFUSION_INDEX, "%", pai, 0, t, q);
        flag_all(out, measurement_flags(mstatus) | device_flags(dstatus));
        return 0;
}

size_t encode_plx_spot(uint8_t *buf, double spo2, double pulse, const DateTime *time)
{
        uint16_t s = sfloat_encode(spo2, 0), p = sfloat_encode(pulse, 0);
        size_t n = 5;
        buf[0] = 0;
        buf[1] = (uint8_t)s;
        buf[2] = (uint8_t)(s >> 8);
        buf[3] = (uint8_t)p;
        buf[4] = (uint8_t)(p >> 8);
        if (time) {
                buf[0] |= SPOT_TIME;
                put_datetime(buf + n, time);
                n += 7;
        }
        return n;
}
