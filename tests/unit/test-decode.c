/* Byte-exact vectors for every decoder: every characteristic and flag combination, the IEEE 11073
 * special values, every BTHome object id, multi-object packets, encrypted frames. And the tables
 * the decoders are found by: the profile table (sensors/profile.h) is complete and says what the
 * decoders really yield; the metric table (sensors/reading.h) has every name, unit and LOINC code. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/macro.h"
#include "gateway/cli-decode.h"
#include "sensors/bluez.h"
#include "sensors/bthome.h"
#include "sensors/health-encode.h"
#include "sensors/ieee11073.h"
#include "test.h"

/* Received at 2026-03-02T09:00:00Z; device clocks show Oslo winter time (UTC+1). */
static const DecodeContext ctx = {
    .now_usec = 1772442000LL * 1000000, .now_quality = TIME_SYNCED, .utc_offset_sec = 3600};
static Decoded out;

static void summary(const Decoded *d, char *buf, size_t size)
{
        size_t n = 0;
        buf[0] = '\0';
        for (size_t i = 0; i < d->n_readings; i++) {
                const Reading *r = &d->readings[i];
                time_t t = (time_t)(r->time_usec / 1000000);
                struct tm tm;
                gmtime_r(&t, &tm);
                n += (size_t)snprintf(buf + n, size - n, "%s%s=", n ? "; " : "", metric_name(r->metric));
                if (r->absent)
                        n += (size_t)snprintf(buf + n, size - n, "(%s)", r->absent);
                else {
                        /* As the JSON writer prints it: a value that is not the double nearest its
                         * decimal shows its noise (39.589999999999996). */
                        char v[32];
                        snprintf(v, sizeof v, "%.15g", r->value);
                        if (strtod(v, NULL) != r->value)
                                snprintf(v, sizeof v, "%.17g", r->value);
                        n += (size_t)snprintf(buf + n, size - n, "%s", v);
                }
                n += (size_t)snprintf(buf + n, size - n, " %s @%02d:%02d:%02d %s", r->unit, tm.tm_hour,
                                      tm.tm_min, tm.tm_sec, time_quality_name(r->time_quality));
                for (unsigned b = 0; b < _READING_FLAG_COUNT; b++)
                        if (r->flags & (1u << b))
                                n += (size_t)snprintf(buf + n, size - n, " !%s", reading_flag_name(b));
                if (r->has_user)
                        n += (size_t)snprintf(buf + n, size - n, " user=%u", r->user);
                if (r->has_sequence)
                        n += (size_t)snprintf(buf + n, size - n, " seq=%u", r->sequence);
                if (r->site)
                        n += (size_t)snprintf(buf + n, size - n, " site=%s", r->site);
                if (r->sample)
                        n += (size_t)snprintf(buf + n, size - n, " sample=%s", r->sample);
        }
        for (size_t i = 0; i < d->n_events; i++)
                n += (size_t)snprintf(buf + n, size - n, "%s%s=%d", n ? "; " : "",
                                      event_kind_name(d->events[i].kind), d->events[i].value);
}

typedef struct Vector {
        Profile profile;
        const char *hex;
        int rc;
        const char *expect; /* the summary, or for rc < 0 a part of the error */
} Vector;

static void run(const Vector *v, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                unsigned char buf[256];
                char got[2048];
                int len = parse_hex(v[i].hex, buf, sizeof buf), r;
                if (len < 0) {
                        fprintf(stderr, "bad vector %s\n", v[i].hex);
                        test_failed_checks++;
                        continue;
                }
                if (v[i].profile == PROFILE_BTHOME)
                        r = decode_bthome(buf, (size_t)len, NULL, (const uint8_t[6]){0}, &ctx, NULL, &out);
                else
                        r = decode_characteristic(v[i].profile, buf, (size_t)len, &ctx, &out);
                summary(&out, got, sizeof got);
                if (r != v[i].rc || (r == 0 && strcmp(got, v[i].expect) != 0) ||
                    (r < 0 && (!strstr(out.error, v[i].expect) || out.n_readings || out.n_events))) {
                        fprintf(stderr, "%s %s:\n  want rc=%d %s\n  got  rc=%d %s%s\n",
                                profile_name(v[i].profile), v[i].hex, v[i].rc, v[i].expect, r,
                                r < 0 ? out.error : got,
                                r < 0 && (out.n_readings || out.n_events) ? " (with readings!)" : "");
                        test_failed_checks++;
                }
        }
}

#define OK(p, hex, want)                                                                                    \
        {                                                                                                   \
                PROFILE_##p, hex, 0, want                                                                   \
        }
#define BAD(p, hex, want)                                                                                   \
        {                                                                                                   \
                PROFILE_##p, hex, -EBADMSG, want                                                            \
        }

static void test_ieee11073(void)
{
        double v;
        CHECK(sfloat_decode(0x07FF, &v) == IEEE11073_NAN);
        CHECK(sfloat_decode(0x0800, &v) == IEEE11073_NRES);
        CHECK(sfloat_decode(0x07FE, &v) == IEEE11073_PINF);
        CHECK(sfloat_decode(0x0802, &v) == IEEE11073_NINF);
        CHECK(sfloat_decode(0x0801, &v) == IEEE11073_RESERVED);
        CHECK(float_decode(0x007FFFFF, &v) == IEEE11073_NAN);
        CHECK(float_decode(0x00800000, &v) == IEEE11073_NRES);
        CHECK(float_decode(0x007FFFFE, &v) == IEEE11073_PINF);
        CHECK(float_decode(0x00800002, &v) == IEEE11073_NINF);
        CHECK(float_decode(0x00800001, &v) == IEEE11073_RESERVED);
        /* Special values are special only with exponent 0. */
        CHECK(sfloat_decode(0x17FF, &v) == IEEE11073_NUMBER && v == 20470);
        CHECK(sfloat_decode(0x0072, &v) == IEEE11073_NUMBER && v == 114);
        CHECK(sfloat_decode(0xF16E, &v) == IEEE11073_NUMBER && v == 36.6); /* 366e-1 */
        CHECK(sfloat_decode(0xFFFF, &v) == IEEE11073_NUMBER && v == -0.1); /* -1e-1 */
        CHECK(sfloat_decode(0x0FFE, &v) == IEEE11073_NUMBER && v == -2);   /* mantissa -2 */
        CHECK(sfloat_decode(0x8001, &v) == IEEE11073_NUMBER && v == 1e-8); /* exponent -8 */
        CHECK(sfloat_decode(0x7001, &v) == IEEE11073_NUMBER && v == 1e7);  /* exponent 7 */
        CHECK(sfloat_decode_scaled(0xB064, 5, &v) == IEEE11073_NUMBER &&
              v == 100); /* 100e-5 kg/L in mg/dL */
        CHECK(float_decode(0xFF00016E, &v) == IEEE11073_NUMBER && v == 36.6);
        CHECK(float_decode(0xFEFFFFFF, &v) == IEEE11073_NUMBER && v == -0.01);
        CHECK(float_decode(0x02000005, &v) == IEEE11073_NUMBER && v == 500);
        CHECK(float_decode(0x80000001, &v) == IEEE11073_NUMBER && fabs(v / 1e-128 - 1) < 1e-12);
        CHECK(strcmp(ieee11073_special_name(IEEE11073_PINF), "+INF") == 0);
        CHECK(ieee11073_special_name(IEEE11073_NUMBER) == NULL);
        /* Encoders. */
        CHECK(sfloat_encode(36.6, -1) == 0xF16E);
        CHECK(sfloat_encode(-2, 0) == 0x0FFE);
        CHECK(sfloat_encode(99999, 0) == 0x07FF);
        CHECK(sfloat_encode(NAN, 0) == 0x07FF);
        CHECK(float_encode(36.6, -1) == 0xFF00016E);
        CHECK(float_encode(-0.01, -2) == 0xFEFFFFFF);
}

static void test_heart_rate(void)
{
        static const Vector v[] = {
            OK(HEART_RATE, "00 48", "heart_rate=72 /min @09:00:00 synced"),
            OK(HEART_RATE, "01 48 01", "heart_rate=328 /min @09:00:00 synced"),
            OK(HEART_RATE, "06 48", "heart_rate=72 /min @09:00:00 synced"),
            OK(HEART_RATE, "02 48", "heart_rate=72 /min @09:00:00 synced"),
            OK(HEART_RATE, "04 48", "heart_rate=72 /min @09:00:00 synced !no_skin_contact"),
            OK(HEART_RATE, "08 48 10 00",
               "heart_rate=72 /min @09:00:00 synced; energy_expended=16 kJ @09:00:00 synced"),
            OK(HEART_RATE, "10 48 00 04 00 02",
               "heart_rate=72 /min @09:00:00 synced; rr_interval=1 s @09:00:00 synced; rr_interval=0.5 s "
               "@09:00:00 synced"),
            OK(HEART_RATE, "19 48 00 10 00 00 04",
               "heart_rate=72 /min @09:00:00 synced; energy_expended=16 kJ @09:00:00 synced; rr_interval=1 "
               "s @09:00:00 synced"),
            OK(HEART_RATE, "1F 48 00 10 00 01 04",
               "heart_rate=72 /min @09:00:00 synced; energy_expended=16 kJ @09:00:00 synced; "
               "rr_interval=1.0009765625 s @09:00:00 synced"),
            BAD(HEART_RATE, "", "too short: flags needs 1 bytes at offset 0, 0 left"),
            BAD(HEART_RATE, "00", "too short: heart rate (uint8)"),
            BAD(HEART_RATE, "01 48", "too short: heart rate (uint16) needs 2 bytes at offset 1, 1 left"),
            BAD(HEART_RATE, "08 48 10", "too short: energy expended"),
            BAD(HEART_RATE, "10 48", "the flags promise RR intervals, none follow"),
            BAD(HEART_RATE, "10 48 00 04 00", "too short: RR interval"),
            BAD(HEART_RATE, "00 48 00", "1 unexpected bytes after the last field (offset 2)"),
        };
        run(v, sizeof v / sizeof v[0]);
}

static void test_blood_pressure(void)
{
        static const Vector v[] = {
            OK(BLOOD_PRESSURE, "00 79 00 50 00 5D 00",
               "systolic=121 mm[Hg] @09:00:00 synced; diastolic=80 mm[Hg] @09:00:00 synced; "
               "mean_arterial_pressure=93 mm[Hg] @09:00:00 synced"),
            OK(BLOOD_PRESSURE, "01 A1 F0 AB F0 C0 F0",
               "systolic=16.1 kPa @09:00:00 synced; diastolic=17.1 kPa @09:00:00 synced; "
               "mean_arterial_pressure=19.2 kPa @09:00:00 synced"),
            /* Device time 08:31 local = 07:31 UTC. */
            OK(BLOOD_PRESSURE, "02 79 00 50 00 5D 00 EA 07 03 02 08 1F 00",
               "systolic=121 mm[Hg] @07:31:00 device; diastolic=80 mm[Hg] @07:31:00 device; "
               "mean_arterial_pressure=93 mm[Hg] @07:31:00 device"),
            /* An unknown device time (year 0) falls back to the receive time. */
            OK(BLOOD_PRESSURE, "02 79 00 50 00 5D 00 00 00 03 02 08 1F 00",
               "systolic=121 mm[Hg] @09:00:00 synced; diastolic=80 mm[Hg] @09:00:00 synced; "
               "mean_arterial_pressure=93 mm[Hg] @09:00:00 synced"),
            OK(BLOOD_PRESSURE, "04 79 00 50 00 5D 00 48 00",
               "systolic=121 mm[Hg] @09:00:00 synced; diastolic=80 mm[Hg] @09:00:00 synced; "
               "mean_arterial_pressure=93 mm[Hg] @09:00:00 synced; pulse_rate=72 /min @09:00:00 synced"),
            OK(BLOOD_PRESSURE, "08 79 00 50 00 5D 00 02",
               "systolic=121 mm[Hg] @09:00:00 synced user=2; diastolic=80 mm[Hg] @09:00:00 synced user=2; "
               "mean_arterial_pressure=93 mm[Hg] @09:00:00 synced user=2"),
            OK(BLOOD_PRESSURE, "08 79 00 50 00 5D 00 FF",
               "systolic=121 mm[Hg] @09:00:00 synced; diastolic=80 mm[Hg] @09:00:00 synced; "
               "mean_arterial_pressure=93 mm[Hg] @09:00:00 synced"),
            OK(BLOOD_PRESSURE, "10 79 00 50 00 5D 00 01 00",
               "systolic=121 mm[Hg] @09:00:00 synced !body_movement; diastolic=80 mm[Hg] @09:00:00 synced "
               "!body_movement; mean_arterial_pressure=93 mm[Hg] @09:00:00 synced !body_movement"),
            OK(BLOOD_PRESSURE, "10 79 00 50 00 5D 00 26 00",
               "systolic=121 mm[Hg] @09:00:00 synced !cuff_loose !irregular_pulse !improper_position; "
               "diastolic=80 mm[Hg] @09:00:00 synced !cuff_loose !irregular_pulse !improper_position; "
               "mean_arterial_pressure=93 mm[Hg] @09:00:00 synced !cuff_loose !irregular_pulse "
               "!improper_position"),
            OK(BLOOD_PRESSURE, "10 79 00 50 00 5D 00 08 00",
               "systolic=121 mm[Hg] @09:00:00 synced !pulse_out_of_range; diastolic=80 mm[Hg] @09:00:00 "
               "synced "
               "!pulse_out_of_range; mean_arterial_pressure=93 mm[Hg] @09:00:00 synced !pulse_out_of_range"),
            OK(BLOOD_PRESSURE, "10 79 00 50 00 5D 00 10 00",
               "systolic=121 mm[Hg] @09:00:00 synced !pulse_out_of_range; diastolic=80 mm[Hg] @09:00:00 "
               "synced "
               "!pulse_out_of_range; mean_arterial_pressure=93 mm[Hg] @09:00:00 synced !pulse_out_of_range"),
            /* Pulse range 3 is reserved: no flag. */
            OK(BLOOD_PRESSURE, "10 79 00 50 00 5D 00 18 00",
               "systolic=121 mm[Hg] @09:00:00 synced; diastolic=80 mm[Hg] @09:00:00 synced; "
               "mean_arterial_pressure=93 mm[Hg] @09:00:00 synced"),
            /* Everything at once, and the special values: never numbers. */
            OK(BLOOD_PRESSURE, "1E FF 07 00 08 FE 07 EA 07 03 02 08 1F 00 02 08 03 04 00",
               "systolic=(NaN) mm[Hg] @07:31:00 device !irregular_pulse user=3; diastolic=(NRes) mm[Hg] "
               "@07:31:00 "
               "device !irregular_pulse user=3; mean_arterial_pressure=(+INF) mm[Hg] @07:31:00 device "
               "!irregular_pulse user=3; pulse_rate=(-INF) /min @07:31:00 device !irregular_pulse user=3"),
            OK(BLOOD_PRESSURE, "04 79 00 50 00 5D 00 01 08",
               "systolic=121 mm[Hg] @09:00:00 synced; diastolic=80 mm[Hg] @09:00:00 synced; "
               "mean_arterial_pressure=93 mm[Hg] @09:00:00 synced; pulse_rate=(reserved) /min @09:00:00 "
               "synced"),
            BAD(BLOOD_PRESSURE, "00 79 00 50 00", "too short: mean arterial pressure"),
            BAD(BLOOD_PRESSURE, "02 79 00 50 00 5D 00 EA 07 03",
                "too short: time stamp needs 7 bytes at offset 7, 3 left"),
            BAD(BLOOD_PRESSURE, "04 79 00 50 00 5D 00", "too short: pulse rate"),
            BAD(BLOOD_PRESSURE, "08 79 00 50 00 5D 00", "too short: user id"),
            BAD(BLOOD_PRESSURE, "10 79 00 50 00 5D 00 01", "too short: measurement status"),
            BAD(BLOOD_PRESSURE, "02 79 00 50 00 5D 00 EA 07 0D 02 08 1F 00",
                "time stamp out of range: 2026-13-02"),
            BAD(BLOOD_PRESSURE, "02 79 00 50 00 5D 00 EA 07 03 02 18 1F 00", "time stamp out of range"),
            BAD(BLOOD_PRESSURE, "00 79 00 50 00 5D 00 48", "1 unexpected bytes"),
        };
        run(v, sizeof v / sizeof v[0]);
}

static void test_temperature(void)
{
        static const Vector v[] = {
            OK(TEMPERATURE, "00 6E 01 00 FF", "body_temperature=36.6 Cel @09:00:00 synced"),
            OK(TEMPERATURE, "01 DA 03 00 FF", "body_temperature=98.6 [degF] @09:00:00 synced"),
            OK(TEMPERATURE, "02 6E 01 00 FF EA 07 03 02 08 1F 00",
               "body_temperature=36.6 Cel @07:31:00 device"),
            OK(TEMPERATURE, "04 6E 01 00 FF 02", "body_temperature=36.6 Cel @09:00:00 synced site=body"),
            OK(TEMPERATURE, "06 6E 01 00 FF EA 07 03 02 08 1F 00 09",
               "body_temperature=36.6 Cel @07:31:00 device site=tympanum"),
            OK(TEMPERATURE, "04 6E 01 00 FF 01", "body_temperature=36.6 Cel @09:00:00 synced site=armpit"),
            OK(TEMPERATURE, "04 6E 01 00 FF 0C", "body_temperature=36.6 Cel @09:00:00 synced site=reserved"),
            OK(TEMPERATURE, "00 FF FF 7F 00", "body_temperature=(NaN) Cel @09:00:00 synced"),
            OK(TEMPERATURE, "00 00 00 80 00", "body_temperature=(NRes) Cel @09:00:00 synced"),
            OK(TEMPERATURE, "00 FE FF 7F 00", "body_temperature=(+INF) Cel @09:00:00 synced"),
            OK(TEMPERATURE, "00 02 00 80 00", "body_temperature=(-INF) Cel @09:00:00 synced"),
            OK(TEMPERATURE, "00 01 00 80 00", "body_temperature=(reserved) Cel @09:00:00 synced"),
            OK(TEMPERATURE, "00 FE FF FF FE", "body_temperature=-0.02 Cel @09:00:00 synced"),
            BAD(TEMPERATURE, "00 6E 01 00", "too short: temperature needs 4 bytes at offset 1, 3 left"),
            BAD(TEMPERATURE, "02 6E 01 00 FF", "too short: time stamp"),
            BAD(TEMPERATURE, "04 6E 01 00 FF", "too short: temperature type"),
            BAD(TEMPERATURE, "00 6E 01 00 FF 02", "1 unexpected bytes"),
        };
        run(v, sizeof v / sizeof v[0]);
}

static void test_plx(void)
{
        static const Vector v[] = {
            OK(PLX_SPOT, "00 62 00 48 00",
               "spo2=98 % @09:00:00 synced; pulse_rate=72 /min @09:00:00 synced"),
            OK(PLX_SPOT, "01 62 00 48 00 EA 07 03 02 08 1F 00",
               "spo2=98 % @07:31:00 device; pulse_rate=72 /min @07:31:00 device"),
            /* The device says its clock is not set: its time stamp is ignored. */
            OK(PLX_SPOT, "11 62 00 48 00 EA 07 03 02 08 1F 00",
               "spo2=98 % @09:00:00 synced !device_clock_not_set; pulse_rate=72 /min @09:00:00 synced "
               "!device_clock_not_set"),
            OK(PLX_SPOT, "02 62 00 48 00 00 40",
               "spo2=98 % @09:00:00 synced !questionable; pulse_rate=72 /min @09:00:00 synced "
               "!questionable"),
            OK(PLX_SPOT, "02 62 00 48 00 00 80",
               "spo2=98 % @09:00:00 synced !invalid; pulse_rate=72 /min @09:00:00 synced !invalid"),
            OK(PLX_SPOT, "02 62 00 48 00 40 0E",
               "spo2=98 % @09:00:00 synced !early_estimate !from_storage !demo_or_test; pulse_rate=72 /min "
               "@09:00:00 synced !early_estimate !from_storage !demo_or_test"),
            OK(PLX_SPOT, "04 62 00 48 00 20 00 00",
               "spo2=98 % @09:00:00 synced !low_perfusion; pulse_rate=72 /min @09:00:00 synced "
               "!low_perfusion"),
            OK(PLX_SPOT, "04 62 00 48 00 12 20 00",
               "spo2=98 % @09:00:00 synced !signal_poor !sensor_problem !equipment_malfunction; "
               "pulse_rate=72 "
               "/min @09:00:00 synced !signal_poor !sensor_problem !equipment_malfunction"),
            OK(PLX_SPOT, "08 62 00 48 00 0F F0",
               "spo2=98 % @09:00:00 synced; pulse_rate=72 /min @09:00:00 synced; perfusion_index=1.5 % "
               "@09:00:00 synced"),
            OK(PLX_SPOT, "0F FF 07 48 00 EA 07 03 02 08 1F 00 00 00 00 00 00 0F F0",
               "spo2=(NaN) % @07:31:00 device; pulse_rate=72 /min @07:31:00 device; perfusion_index=1.5 % "
               "@07:31:00 device"),
            BAD(PLX_SPOT, "00 62 00 48", "too short: pulse rate"),
            BAD(PLX_SPOT, "02 62 00 48 00", "too short: measurement status"),
            BAD(PLX_SPOT, "04 62 00 48 00 20 00", "too short: device and sensor status needs 3 bytes"),
            BAD(PLX_SPOT, "08 62 00 48 00", "too short: pulse amplitude index"),
            OK(PLX_CONTINUOUS, "00 61 00 4B 00",
               "spo2=97 % @09:00:00 synced; pulse_rate=75 /min @09:00:00 synced"),
            OK(PLX_CONTINUOUS, "03 61 00 4B 00 60 00 4C 00 62 00 4A 00",
               "spo2=97 % @09:00:00 synced; pulse_rate=75 /min @09:00:00 synced; spo2_fast=96 % @09:00:00 "
               "synced; "
               "pulse_rate_fast=76 /min @09:00:00 synced; spo2_slow=98 % @09:00:00 synced; "
               "pulse_rate_slow=74 "
               "/min @09:00:00 synced"),
            OK(PLX_CONTINUOUS, "1C 61 00 4B 00 00 40 20 00 00 0F F0",
               "spo2=97 % @09:00:00 synced !questionable !low_perfusion; pulse_rate=75 /min @09:00:00 "
               "synced "
               "!questionable !low_perfusion; perfusion_index=1.5 % @09:00:00 synced !questionable "
               "!low_perfusion"),
            BAD(PLX_CONTINUOUS, "01 61 00 4B 00 60 00", "too short: pulse rate fast"),
            BAD(PLX_CONTINUOUS, "02 61 00 4B 00", "too short: SpO2 slow"),
            BAD(PLX_CONTINUOUS, "00 61 00 4B 00 00", "1 unexpected bytes"),
        };
        run(v, sizeof v / sizeof v[0]);
}

static void test_weight(void)
{
        static const Vector v[] = {
            OK(WEIGHT, "00 60 36", "body_weight=69.6 kg @09:00:00 synced"),
            OK(WEIGHT, "01 8C 3C", "body_weight=155 [lb_av] @09:00:00 synced"),
            OK(WEIGHT, "02 60 36 EA 07 03 02 08 1F 00", "body_weight=69.6 kg @07:31:00 device"),
            OK(WEIGHT, "04 60 36 03", "body_weight=69.6 kg @09:00:00 synced user=3"),
            OK(WEIGHT, "08 60 36 E8 00 BA 06",
               "body_weight=69.6 kg @09:00:00 synced; bmi=23.2 kg/m2 @09:00:00 synced; body_height=1.722 m "
               "@09:00:00 synced"),
            OK(WEIGHT, "09 8C 3C E8 00 AE 02",
               "body_weight=155 [lb_av] @09:00:00 synced; bmi=23.2 kg/m2 @09:00:00 synced; body_height=68.6 "
               "[in_i] "
               "@09:00:00 synced"),
            OK(WEIGHT, "0E 60 36 EA 07 03 02 08 1F 00 03 E8 00 BA 06",
               "body_weight=69.6 kg @07:31:00 device user=3; bmi=23.2 kg/m2 @07:31:00 device user=3; "
               "body_height=1.722 m @07:31:00 device user=3"),
            OK(WEIGHT, "00 FF FF", "body_weight=(unsuccessful) kg @09:00:00 synced"),
            OK(WEIGHT, "08 FF FF E8 00 BA 06",
               "body_weight=(unsuccessful) kg @09:00:00 synced; bmi=(unsuccessful) kg/m2 @09:00:00 synced; "
               "body_height=1.722 m @09:00:00 synced"),
            OK(WEIGHT, "04 60 36 FF", "body_weight=69.6 kg @09:00:00 synced"),
            BAD(WEIGHT, "00 60", "too short: weight"),
            BAD(WEIGHT, "08 60 36 E8 00", "too short: height"),
            BAD(WEIGHT, "04 60 36", "too short: user id"),
        };
        run(v, sizeof v / sizeof v[0]);
}

static void test_glucose(void)
{
        static const Vector v[] = {
            OK(GLUCOSE, "02 01 00 EA 07 03 02 08 1F 00 64 B0 11",
               "glucose=100 mg/dL @07:31:00 device seq=1 site=finger sample=capillary whole blood"),
            OK(GLUCOSE, "06 02 00 EA 07 03 02 08 1F 00 38 C0 12",
               "glucose=5.6 mmol/L @07:31:00 device seq=2 site=finger sample=capillary plasma"),
            OK(GLUCOSE, "03 03 00 EA 07 03 02 08 1F 00 0F 00 64 B0 31",
               "glucose=100 mg/dL @07:46:00 device seq=3 site=earlobe sample=capillary whole blood"),
            OK(GLUCOSE, "03 04 00 EA 07 03 02 08 1F 00 F1 FF 64 B0 F9",
               "glucose=100 mg/dL @07:16:00 device seq=4 site=not available sample=interstitial fluid"),
            OK(GLUCOSE, "0A 05 00 EA 07 03 02 08 1F 00 64 B0 11 21 00",
               "glucose=100 mg/dL @07:31:00 device !battery_low !result_high seq=5 site=finger "
               "sample=capillary whole blood"),
            OK(GLUCOSE, "0A 06 00 EA 07 03 02 08 1F 00 64 B0 11 1E 0F",
               "glucose=100 mg/dL @07:31:00 device !sensor_fault !sample_insufficient !strip_error "
               "!temperature_out_of_range !time_fault seq=6 site=finger sample=capillary whole blood"),
            OK(GLUCOSE, "02 07 00 EA 07 03 02 08 1F 00 64 B0 4A",
               "glucose=100 mg/dL @07:31:00 device !demo_or_test seq=7 site=control solution sample=control "
               "solution"),
            OK(GLUCOSE, "02 08 00 00 00 00 00 00 00 00 64 B0 11",
               "glucose=100 mg/dL @09:00:00 synced seq=8 site=finger sample=capillary whole blood"),
            OK(GLUCOSE, "02 09 00 EA 07 03 02 08 1F 00 FF 07 11",
               "glucose=(NaN) mg/dL @07:31:00 device seq=9 site=finger sample=capillary whole blood"),
            OK(GLUCOSE, "12 0A 00 EA 07 03 02 08 1F 00 64 B0 11",
               "glucose=100 mg/dL @07:31:00 device seq=10 site=finger sample=capillary whole blood"),
            OK(GLUCOSE, "00 0B 00 EA 07 03 02 08 1F 00", ""),
            BAD(GLUCOSE, "02 01 00 EA 07 03", "too short: time stamp"),
            BAD(GLUCOSE, "03 01 00 EA 07 03 02 08 1F 00 64 B0 11",
                "too short: glucose concentration needs 2 bytes at offset 12"),
            BAD(GLUCOSE, "02 01 00 EA 07 03 02 08 1F 00 64 B0", "too short: type and sample location"),
            BAD(GLUCOSE, "0A 01 00 EA 07 03 02 08 1F 00 64 B0 11", "too short: sensor status annunciation"),
            BAD(GLUCOSE, "02 01 00 EA 07 03 00 08 1F 00 64 B0 11 00", "1 unexpected bytes"),
        };
        run(v, sizeof v / sizeof v[0]);
}

static void test_bthome_objects(void)
{
        static const Vector v[] = {
            OK(BTHOME, "40 02 CA 09 03 BF 13",
               "temperature=25.06 Cel @09:00:00 synced; humidity=50.55 % @09:00:00 synced"),
            OK(BTHOME, "44 21 01", "motion=1"), /* trigger based */
            OK(BTHOME, "40 00 01 01 5D 21 01 2D 00", "battery=93 % @09:00:00 synced; motion=1; window=0"),
            /* Repeated ids in one packet. */
            OK(BTHOME, "40 02 CA 09 02 C4 09",
               "temperature=25.06 Cel @09:00:00 synced; temperature=25 Cel @09:00:00 synced"),
            OK(BTHOME, "40 02 38 FF", "temperature=-2 Cel @09:00:00 synced"),
            OK(BTHOME, "40 04 13 8A 01", "pressure=1008.83 hPa @09:00:00 synced"),
            OK(BTHOME, "40 03 77 0F", "humidity=39.59 % @09:00:00 synced"), /* one division, not two */
            OK(BTHOME, "40 05 13 8A 14", "illuminance=13460.67 lx @09:00:00 synced"),
            OK(BTHOME, "40 06 5E 1F", "body_weight=80.3 kg @09:00:00 synced"),
            OK(BTHOME, "40 07 3E 1D", "body_weight=74.86 [lb_av] @09:00:00 synced"),
            OK(BTHOME, "40 0B 02 1B 00", "power=69.14 W @09:00:00 synced"),
            OK(BTHOME, "40 0C 02 0C", "voltage=3.074 V @09:00:00 synced"),
            OK(BTHOME, "40 12 E2 04", "co2=1250 [ppm] @09:00:00 synced"),
            OK(BTHOME, "40 2E 23", "humidity=35 % @09:00:00 synced"),
            OK(BTHOME, "40 45 11 01", "temperature=27.3 Cel @09:00:00 synced"),
            OK(BTHOME, "40 45 FE FF", "temperature=-0.2 Cel @09:00:00 synced"),
            OK(BTHOME, "40 4A 02 0C", "voltage=307.4 V @09:00:00 synced"),
            OK(BTHOME, "40 57 EC", "temperature=-20 Cel @09:00:00 synced"),
            OK(BTHOME, "40 58 40", "temperature=22.4 Cel @09:00:00 synced"),
            OK(BTHOME, "40 5C 02 00 00 80", "power=-21474836.46 W @09:00:00 synced"),
            OK(BTHOME, "40 0F 01 10 01 11 00 15 01 17 00 1A 01 1B 00",
               "generic=1; power=1; opening=0; battery_low=1; carbon_monoxide=0; door=1; door=0"),
            OK(BTHOME, "40 20 01 21 00 22 01 23 01 25 00 26 01 29 00 2B 01 2C 00 2D 01",
               "water_leak=1; motion=0; moving=1; occupancy=1; presence=0; problem=1; smoke=0; tamper=1; "
               "vibration=0; window=1"),
            OK(BTHOME, "40 3A 01", "button=1"),
            OK(BTHOME, "40 3A 04", "button=4"),
            OK(BTHOME, "40 3A 80", "button=128"),
            OK(BTHOME, "40 3A 00", ""),
            OK(BTHOME, "40 3A 00 3A 02", "button=2"),
            OK(BTHOME, "40 3C 01 03", "dimmer=-3"),
            OK(BTHOME, "40 3C 02 05", "dimmer=5"),
            OK(BTHOME, "40 3C 00 00", ""),
            /* Parsed and not used: the packet goes on after them. */
            OK(BTHOME,
               "40 08 00 00 09 01 0A 00 00 00 0D 00 00 0E 00 00 13 00 00 14 00 00 16 00 18 00 19 00 1C 00 "
               "1D 00 1E 00 1F 00 24 00 27 00 28 00 2A 00 2F 00 21 01",
               "motion=1"),
            OK(BTHOME,
               "40 3D 00 00 3E 00 00 00 00 3F 00 00 40 00 00 41 00 00 42 00 00 00 43 00 00 44 00 00 46 00 "
               "47 00 00 48 00 00 49 00 00 4B 00 00 00 4C 00 00 00 00 4D 00 00 00 00 4E 00 00 00 00 "
               "4F 00 00 00 00 50 00 00 00 00 51 00 00 52 00 00 21 01",
               "motion=1"),
            OK(BTHOME,
               "40 53 02 41 42 54 03 01 02 03 55 00 00 00 00 56 00 00 59 00 5A 00 00 5B 00 00 00 00 5D 00 "
               "00 "
               "5E 00 00 5F 00 00 60 00 61 00 00 62 00 00 00 00 63 00 00 00 00 64 00 F0 00 00 F1 00 00 00 "
               "00 "
               "F2 00 00 00 21 01",
               "motion=1"),
            BAD(BTHOME, "", "no device information byte"),
            BAD(BTHOME, "20 02 CA 09", "not BTHome v2 (version 1"),
            BAD(BTHOME, "40 99 01", "unknown object id 0x99 at offset 0"),
            BAD(BTHOME, "40 21 01 30 01", "unknown object id 0x30 at offset 2"),
            BAD(BTHOME, "40 02 CA", "object 0x02 truncated: needs 2 bytes, 1 left"),
            BAD(BTHOME, "40 53", "object 0x53 truncated: no length byte"),
            BAD(BTHOME, "40 53 05 41", "object 0x53 truncated: needs 5 bytes, 1 left"),
            BAD(BTHOME, "40 21 02", "object 0x21: binary state 2 is not 0 or 1"),
        };
        run(v, sizeof v / sizeof v[0]);
}

/* Every id in the published table decodes with its stated length; every other id is refused. */
static void test_bthome_every_id(void)
{
        static const struct {
                uint8_t id, len;
        } ids[] = {
            {0x00, 1}, {0x01, 1}, {0x02, 2}, {0x03, 2}, {0x04, 3}, {0x05, 3}, {0x06, 2}, {0x07, 2},
            {0x08, 2}, {0x09, 1}, {0x0A, 3}, {0x0B, 3}, {0x0C, 2}, {0x0D, 2}, {0x0E, 2}, {0x0F, 1},
            {0x10, 1}, {0x11, 1}, {0x12, 2}, {0x13, 2}, {0x14, 2}, {0x15, 1}, {0x16, 1}, {0x17, 1},
            {0x18, 1}, {0x19, 1}, {0x1A, 1}, {0x1B, 1}, {0x1C, 1}, {0x1D, 1}, {0x1E, 1}, {0x1F, 1},
            {0x20, 1}, {0x21, 1}, {0x22, 1}, {0x23, 1}, {0x24, 1}, {0x25, 1}, {0x26, 1}, {0x27, 1},
            {0x28, 1}, {0x29, 1}, {0x2A, 1}, {0x2B, 1}, {0x2C, 1}, {0x2D, 1}, {0x2E, 1}, {0x2F, 1},
            {0x3A, 1}, {0x3C, 2}, {0x3D, 2}, {0x3E, 4}, {0x3F, 2}, {0x40, 2}, {0x41, 2}, {0x42, 3},
            {0x43, 2}, {0x44, 2}, {0x45, 2}, {0x46, 1}, {0x47, 2}, {0x48, 2}, {0x49, 2}, {0x4A, 2},
            {0x4B, 3}, {0x4C, 4}, {0x4D, 4}, {0x4E, 4}, {0x4F, 4}, {0x50, 4}, {0x51, 2}, {0x52, 2},
            {0x55, 4}, {0x56, 2}, {0x57, 1}, {0x58, 1}, {0x59, 1}, {0x5A, 2}, {0x5B, 4}, {0x5C, 4},
            {0x5D, 2}, {0x5E, 2}, {0x5F, 2}, {0x60, 1}, {0x61, 2}, {0x62, 4}, {0x63, 4}, {0x64, 1},
            {0xF0, 2}, {0xF1, 4}, {0xF2, 3},
        };
        bool listed[256] = {};
        listed[0x53] = listed[0x54] = true; /* variable length, tested above */
        for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
                uint8_t buf[16] = {0x40, ids[i].id};
                /* value 0, then a motion object: parsing must land exactly on it */
                buf[2 + ids[i].len] = 0x21;
                buf[3 + ids[i].len] = 0x01;
                int r = decode_bthome(buf, 4u + ids[i].len, NULL, (const uint8_t[6]){0}, &ctx, NULL, &out);
                if (r != 0 || out.n_events < 1 || out.events[out.n_events - 1].kind != EVENT_MOTION) {
                        fprintf(stderr, "object 0x%02X (length %u): rc=%d %s\n", ids[i].id, ids[i].len, r,
                                out.error);
                        test_failed_checks++;
                }
                listed[ids[i].id] = true;
        }
        for (int id = 0; id < 256; id++) {
                uint8_t buf[8] = {0x40, (uint8_t)id, 0, 0, 0, 0, 0, 0};
                if (listed[id])
                        continue;
                if (decode_bthome(buf, sizeof buf, NULL, (const uint8_t[6]){0}, &ctx, NULL, &out) !=
                        -EBADMSG ||
                    !strstr(out.error, "unknown object id")) {
                        fprintf(stderr, "object 0x%02X should be unknown\n", id);
                        test_failed_checks++;
                }
        }
}

static const char *KEY = "231d39c1d7cc1ab1aee224cd096db932";
static const char *MAC = "54:48:E6:8F:80:A5";
/* 25.06 °C and 50.55 %, counter 0x33221100 (bthome-ble's example; v2 uses no associated data). */
static const char *FRAME = "41 a4 72 66 c9 5f 73 00 11 22 33 78 23 72 14";

static int decode_hex(const char *hex, const uint8_t *key, BthomeState *st)
{
        uint8_t buf[64], mac[6];
        int len = parse_hex(hex, buf, sizeof buf);
        parse_mac(MAC, mac);
        return decode_bthome(buf, (size_t)len, key, mac, &ctx, st, &out);
}

static void test_bthome_encryption(void)
{
        uint8_t key[16], wrong[16], mac[6], buf[64], frame[64];
        BthomeState st = {};
        char got[512];
        int n;

        CHECK(parse_key(KEY, key) == 0);
        CHECK(parse_key("231d39c1d7cc1ab1aee224cd096db930", wrong) == 0);
        CHECK(parse_mac(MAC, mac) == 0);

        CHECK(decode_hex(FRAME, key, &st) == 0);
        summary(&out, got, sizeof got);
        CHECK_STREQ(got, "temperature=25.06 Cel @09:00:00 synced; humidity=50.55 % @09:00:00 synced");
        CHECK(st.has_counter && st.counter == 0x33221100);

        /* The same frame again: a replay. A lower counter too. State unchanged after a refusal. */
        CHECK(decode_hex(FRAME, key, &st) == -EPROTO);
        CHECK(strstr(out.error, "replayed frame: counter 857870592 is not above the last one, 857870592") !=
              NULL);
        CHECK(out.n_readings == 0);
        st.counter = 0x33221101;
        CHECK(decode_hex(FRAME, key, &st) == -EPROTO);
        CHECK(st.counter == 0x33221101);
        st = (BthomeState){.has_counter = true, .counter = 0x332210FF};
        CHECK(decode_hex(FRAME, key, &st) == 0);

        /* Wrong key; a changed byte anywhere (ciphertext, counter, MIC); the wrong address. */
        CHECK(decode_hex(FRAME, wrong, NULL) == -EPROTO);
        CHECK(strstr(out.error, "decryption failed") != NULL);
        CHECK(decode_hex("41 a4 72 66 c9 5f 72 00 11 22 33 78 23 72 14", key, NULL) == -EPROTO);
        CHECK(decode_hex("41 a4 72 66 c9 5f 73 01 11 22 33 78 23 72 14", key, NULL) == -EPROTO);
        CHECK(decode_hex("41 a4 72 66 c9 5f 73 00 11 22 33 78 23 72 15", key, NULL) == -EPROTO);
        CHECK(decode_hex("45 a4 72 66 c9 5f 73 00 11 22 33 78 23 72 14", key, NULL) == -EPROTO);
        {
                uint8_t other[6] = {0x54, 0x48, 0xE6, 0x8F, 0x80, 0xA6};
                n = parse_hex(FRAME, buf, sizeof buf);
                CHECK(decode_bthome(buf, (size_t)n, key, other, &ctx, NULL, &out) == -EPROTO);
        }
        /* Downgrade: an unencrypted frame from a device that has a key. */
        CHECK(decode_hex("40 21 01", key, NULL) == -EPROTO);
        CHECK(strstr(out.error, "downgrade refused") != NULL);
        /* An encrypted frame without a key. */
        CHECK(decode_hex(FRAME, NULL, NULL) == -EPROTO);
        CHECK(strstr(out.error, "no bind key") != NULL);
        CHECK(decode_hex("41 a4 72 66 c9 5f 73 00", key, NULL) == -EBADMSG);
        /* Found by the fuzzer: an encrypted frame longer than any advertisement overflowed the stack. */
        {
                uint8_t big[400] = {0x41};
                CHECK(decode_bthome(big, sizeof big, key, mac, &ctx, NULL, &out) == -EBADMSG);
                CHECK(strstr(out.error, "encrypted frame too long") != NULL);
        }

        /* Our encoder makes the same frame, and round-trips a multi-object packet. */
        n = parse_hex("02 CA 09 03 BF 13", buf, sizeof buf);
        n = encode_bthome(buf, (size_t)n, false, key, mac, 0x33221100, frame, sizeof frame);
        CHECK(n == 15);
        n = parse_hex(FRAME, buf, sizeof buf);
        CHECK(memcmp(frame, buf, 15) == 0);
        n = parse_hex("00 07 01 64 21 01", buf, sizeof buf);
        n = encode_bthome(buf, (size_t)n, true, key, mac, 42, frame, sizeof frame);
        st = (BthomeState){};
        CHECK(decode_bthome(frame, (size_t)n, key, mac, &ctx, &st, &out) == 0);
        summary(&out, got, sizeof got);
        CHECK_STREQ(got, "battery=100 % @09:00:00 synced; motion=1");
        CHECK(st.counter == 42 && st.has_packet_id && st.packet_id == 7);
}

static void test_bthome_packet_id_dedup(void)
{
        BthomeState st = {};
        CHECK(decode_hex("40 00 05 21 01", NULL, &st) == 0 && out.n_events == 1 && !out.duplicate);
        CHECK(decode_hex("40 00 05 21 01", NULL, &st) == 0 && out.n_events == 0 && out.duplicate);
        CHECK(decode_hex("40 00 06 21 00", NULL, &st) == 0 && out.n_events == 1 && !out.duplicate);
        /* Frames without a packet id are never duplicates. */
        CHECK(decode_hex("40 21 00", NULL, &st) == 0 && out.n_events == 1);
        CHECK(decode_hex("40 21 00", NULL, &st) == 0 && out.n_events == 1);
}

/* The simulated home's encoders, read back by the decoders. */
static void test_encoders_round_trip(void)
{
        uint8_t buf[64];
        char got[1024];
        DateTime t = datetime_from_usec(1772436660LL * 1000000, 3600); /* 07:31Z shown as 08:31 */
        BloodPressureValue bp = {.systolic = 141,
                                 .diastolic = 87,
                                 .map = 105,
                                 .pulse = 66,
                                 .has_time = true,
                                 .time = t,
                                 .user = 1,
                                 .status = 0x0004};
        size_t n = encode_blood_pressure(buf, &bp);
        CHECK(decode_blood_pressure(buf, n, &ctx, &out) == 0);
        summary(&out, got, sizeof got);
        CHECK_STREQ(
            got,
            "systolic=141 mm[Hg] @07:31:00 device !irregular_pulse user=1; diastolic=87 mm[Hg] @07:31:00 "
            "device !irregular_pulse user=1; mean_arterial_pressure=105 mm[Hg] @07:31:00 device "
            "!irregular_pulse user=1; pulse_rate=66 /min @07:31:00 device !irregular_pulse user=1");
        n = encode_weight_kg(buf, 78.35, &t, -1);
        CHECK(decode_weight(buf, n, &ctx, &out) == 0);
        summary(&out, got, sizeof got);
        CHECK_STREQ(got, "body_weight=78.35 kg @07:31:00 device");
        n = encode_temperature_cel(buf, 36.8, &t, 1);
        CHECK(decode_temperature(buf, n, &ctx, &out) == 0);
        summary(&out, got, sizeof got);
        CHECK_STREQ(got, "body_temperature=36.8 Cel @07:31:00 device site=armpit");
        n = encode_plx_spot(buf, 95, 77, NULL);
        CHECK(decode_plx_spot(buf, n, &ctx, &out) == 0);
        summary(&out, got, sizeof got);
        CHECK_STREQ(got, "spo2=95 % @09:00:00 synced; pulse_rate=77 /min @09:00:00 synced");
}

static void test_parse_helpers(void)
{
        uint8_t b[8], m[6], k[16];
        CHECK(parse_hex("0a:0B 0c-0d", b, sizeof b) == 4 && b[0] == 0x0a && b[3] == 0x0d);
        CHECK(parse_hex("0", b, sizeof b) < 0);
        CHECK(parse_hex("zz", b, sizeof b) < 0);
        CHECK(parse_hex("00 00 00", b, 2) < 0);
        CHECK(parse_mac("A4:C1:38:00:00:01", m) == 0 && m[0] == 0xA4 && m[5] == 0x01);
        CHECK(parse_mac("A4:C1:38:00:00", m) < 0);
        CHECK(parse_mac("A4:C1:38:00:00:01:02", m) < 0);
        CHECK(parse_key(KEY, k) == 0 && k[0] == 0x23 && k[15] == 0x32);
        CHECK(parse_key("231d", k) < 0);
}

/* ---- the profile table ---- */

/* Every row is whole: a name, aliases that resolve to it and to nothing else, a decoder of the
 * kind its transport needs, UUIDs, and metrics with units. */
static void test_profile_table_complete(void)
{
        for (Profile p = 0; p < _PROFILE_MAX; p++) {
                const ProfileInfo *info = profile_info(p);
                Profile q = _PROFILE_MAX;

                CHECK(info);
                if (!info)
                        continue;
                CHECK(info->name && info->name[0]);
                CHECK_STREQ(profile_name(p), info->name);
                CHECK(profile_from_name(info->name, &q) == 0 && q == p);
                for (const char *const *a = info->aliases; a && *a; a++) {
                        q = _PROFILE_MAX;
                        CHECK(profile_from_name(*a, &q) == 0 && q == p);
                        /* An alias that is another row's name would never be reached. */
                        for (Profile o = 0; o < _PROFILE_MAX; o++)
                                CHECK(!streq(*a, profile_name(o)));
                }
                switch (info->transport) {
                case PROFILE_GATT:
                        CHECK(info->decode_gatt && !info->decode_advertisement);
                        /* Bluetooth SIG 16-bit UUIDs: services 0x18xx, characteristics 0x2Axx. */
                        CHECK((info->service_uuid16 & 0xFF00) == 0x1800);
                        CHECK((info->uuid16 & 0xFF00) == 0x2A00);
                        break;
                case PROFILE_ADVERTISEMENT:
                        CHECK(info->decode_advertisement && !info->decode_gatt);
                        CHECK(info->service_uuid16 != 0 && info->uuid16 == info->service_uuid16);
                        break;
                }
                CHECK(profile_uuid16(p) == info->uuid16);
                CHECK(info->metrics && info->n_metrics > 0);
                for (size_t i = 0; i < info->n_metrics; i++) {
                        CHECK(metric_name(info->metrics[i].metric));
                        CHECK(info->metrics[i].units[0]);
                        for (size_t j = 0; j < i; j++)
                                CHECK(info->metrics[j].metric != info->metrics[i].metric);
                }
                /* Names are unique, and so are the characteristics a frame's UUID is matched to. */
                for (Profile o = 0; o < p; o++) {
                        CHECK(!streq(profile_name(o), info->name));
                        CHECK(profile_uuid16(o) != info->uuid16);
                }
                /* What the BLE set-up (gateway/ingest.c) subscribes to fits its array. */
                CHECK(profile_characteristics(p, NULL, 0) <=
                      ELEMENTSOF(((BluezDeviceConfig *)NULL)->measure));
        }
        CHECK(profile_info(_PROFILE_MAX) == NULL);
        CHECK(profile_name(_PROFILE_MAX) == NULL);
        CHECK(profile_uuid16(_PROFILE_MAX) == 0);
        CHECK(profile_from_name(NULL, &(Profile){0}) == -EINVAL);
        CHECK(profile_from_name("ecg", &(Profile){0}) == -EINVAL);
        CHECK(profile_from_name("PLX", &(Profile){0}) == -EINVAL); /* case-sensitive, as config keys are */
        {
                /* The list for messages: every name, and cut short (never past the buffer). */
                char all[256], cut[10], none[1];
                CHECK_STREQ(profile_names_list(", ", all, sizeof all),
                            "bthome, heart-rate, blood-pressure, temperature, plx-spot, plx, "
                            "plx-continuous, weight, "
                            "glucose");
                CHECK_STREQ(profile_names_list(", ", cut, sizeof cut), "bthome, h");
                CHECK_STREQ(profile_names_list(", ", none, sizeof none), "");
        }
}

/* The three tables of 0060b92 (gateway/config.c's Type= list, gateway/ingest.c's profile_of_type(),
 * sensors/decode.c's profile names and UUIDs), copied here: every name they took still resolves to
 * the same profile, the same characteristic, and the same subscriptions. */
static void test_profile_names_of_0060b92(void)
{
        static const struct {
                const char *name;
                Profile profile;
                uint16_t uuid16;
        } decode_names[] = {
            {"heart-rate", PROFILE_HEART_RATE, 0x2A37},
            {"blood-pressure", PROFILE_BLOOD_PRESSURE, 0x2A35},
            {"temperature", PROFILE_TEMPERATURE, 0x2A1C},
            {"plx-spot", PROFILE_PLX_SPOT, 0x2A5E},
            {"plx-continuous", PROFILE_PLX_CONTINUOUS, 0x2A5F},
            {"weight", PROFILE_WEIGHT, 0x2A9D},
            {"glucose", PROFILE_GLUCOSE, 0x2A18},
            {"bthome", PROFILE_BTHOME, 0xFCD2},
        };
        static const struct {
                const char *type;
                Profile profile;
                uint16_t measure[2]; /* what ingest subscribed to */
        } config_types[] = {
            {"bthome", PROFILE_BTHOME, {0, 0}},
            {"heart-rate", PROFILE_HEART_RATE, {0x2A37, 0}},
            {"blood-pressure", PROFILE_BLOOD_PRESSURE, {0x2A35, 0}},
            {"temperature", PROFILE_TEMPERATURE, {0x2A1C, 0}},
            {"plx", PROFILE_PLX_SPOT, {0x2A5E, 0x2A5F}},
            {"weight", PROFILE_WEIGHT, {0x2A9D, 0}},
            {"glucose", PROFILE_GLUCOSE, {0x2A18, 0}},
        };

        for (size_t i = 0; i < ELEMENTSOF(decode_names); i++) {
                Profile p = _PROFILE_MAX;
                CHECK(profile_from_name(decode_names[i].name, &p) == 0);
                CHECK(p == decode_names[i].profile);
                /* Messages of `decode` print the canonical name: the same as before. */
                CHECK_STREQ(profile_name(p), decode_names[i].name);
                CHECK(profile_uuid16(p) == decode_names[i].uuid16);
        }
        for (size_t i = 0; i < ELEMENTSOF(config_types); i++) {
                Profile p = _PROFILE_MAX;
                uint16_t measure[2] = {};
                CHECK(profile_from_name(config_types[i].type, &p) == 0);
                CHECK(p == config_types[i].profile);
                CHECK(profile_characteristics(p, measure, ELEMENTSOF(measure)) ==
                      (size_t)(!!config_types[i].measure[0] + !!config_types[i].measure[1]));
                CHECK(measure[0] == config_types[i].measure[0] && measure[1] == config_types[i].measure[1]);
                CHECK((profile_info(p)->transport == PROFILE_ADVERTISEMENT) == (p == PROFILE_BTHOME));
        }
}

/* (metric, unit) pairs a profile lists, and which of them a decoder was seen to give. */
static bool listed_unit(const ProfileInfo *info, const Reading *r, bool seen[][PROFILE_UNITS_MAX])
{
        for (size_t i = 0; i < info->n_metrics; i++)
                for (size_t u = 0; u < PROFILE_UNITS_MAX; u++)
                        if (info->metrics[i].metric == r->metric && info->metrics[i].units[u] &&
                            streq(info->metrics[i].units[u], r->unit)) {
                                seen[i][u] = true;
                                return true;
                        }
        return false;
}

static void check_all_seen(const ProfileInfo *info, bool seen[][PROFILE_UNITS_MAX])
{
        for (size_t i = 0; i < info->n_metrics; i++)
                for (size_t u = 0; u < PROFILE_UNITS_MAX; u++)
                        if (info->metrics[i].units[u] && !seen[i][u]) {
                                fprintf(stderr, "%s lists %s in %s, which its decoder never gave\n",
                                        info->name, metric_name(info->metrics[i].metric),
                                        info->metrics[i].units[u]);
                                test_failed_checks++;
                        }
}

/* Counts readings the row does not list in *unlisted, and shows the first few. */
static void check_listed(const ProfileInfo *info, const Decoded *d, bool seen[][PROFILE_UNITS_MAX],
                         const uint8_t *buf, size_t len, unsigned *unlisted)
{
        for (size_t i = 0; i < d->n_readings; i++)
                if (!listed_unit(info, &d->readings[i], seen) && ++*unlisted <= 3)
                        fprintf(stderr, "%s gave %s in %s (from %zu bytes starting %02X), not in its row\n",
                                info->name, metric_name(d->readings[i].metric), d->readings[i].unit, len,
                                buf[0]);
}

/* What the rows say each decoder yields is what it yields: every flag byte of every GATT
 * characteristic at every length (the fields zero, the last byte zero or 0x11, a valid glucose
 * sample type), and every BTHome object id at every length, give only metrics and units their row
 * lists; and every metric and unit listed is given by some input. */
static void test_profile_metrics_match_decoders(void)
{
        for (Profile p = 0; p < _PROFILE_MAX; p++) {
                const ProfileInfo *info = profile_info(p);
                bool seen[16][PROFILE_UNITS_MAX] = {};
                uint8_t buf[48];
                unsigned unlisted = 0;

                CHECK(info->n_metrics <= ELEMENTSOF(seen));
                /* A row without its decoder fails test_profile_table_complete. */
                if (info->n_metrics > ELEMENTSOF(seen) ||
                    (!info->decode_gatt && !info->decode_advertisement))
                        continue;
                switch (info->transport) {
                case PROFILE_GATT:
                        for (unsigned flags = 0; flags < 256; flags++)
                                for (size_t len = 1; len <= sizeof buf; len++)
                                        for (unsigned last = 0; last <= 0x11; last += 0x11) {
                                                memset(buf, 0, sizeof buf);
                                                buf[0] = (uint8_t)flags;
                                                if (len > 1)
                                                        buf[len - 1] = (uint8_t)last;
                                                if (info->decode_gatt(buf, len, &ctx, &out) == 0)
                                                        check_listed(info, &out, seen, buf, len, &unlisted);
                                        }
                        break;
                case PROFILE_ADVERTISEMENT:
                        for (unsigned id = 0; id < 256; id++)
                                for (size_t len = 1; len <= 5; len++) {
                                        memset(buf, 0, sizeof buf);
                                        buf[0] = 0x40; /* BTHome v2, not encrypted */
                                        buf[1] = (uint8_t)id;
                                        if (info->decode_advertisement(buf, len + 1, NULL,
                                                                       (const uint8_t[6]){0}, &ctx, NULL,
                                                                       &out) == 0)
                                                check_listed(info, &out, seen, buf + 1, len, &unlisted);
                                }
                        break;
                }
                CHECK(unlisted == 0);
                check_all_seen(info, seen);
        }
}

/* ---- the metric table ---- */

/* LOINC codes end in a mod-10 check digit (the Luhn algorithm over the digits before the dash):
 * a mistyped code does not pass. */
static bool loinc_valid(const char *code)
{
        const char *dash = strchr(code, '-');
        unsigned sum = 0;
        bool twice = true;

        if (!dash || dash == code || strlen(dash) != 2 || dash[1] < '0' || dash[1] > '9' ||
            strspn(code, "0123456789") != (size_t)(dash - code))
                return false;
        for (const char *c = dash - 1; c >= code; c--, twice = !twice) {
                unsigned d = (unsigned)(*c - '0') * (twice ? 2 : 1);
                sum += d / 10 + d % 10;
        }
        return (10 - sum % 10) % 10 == (unsigned)(dash[1] - '0');
}

static void test_metric_table(void)
{
        /* metric_default_unit() of 0060b92 (a switch in sensors/reading.c), copied: the table gives
         * the same. */
        static const char *const old_default_unit[_METRIC_MAX] = {
            [METRIC_HEART_RATE] = "/min",
            [METRIC_PULSE_RATE] = "/min",
            [METRIC_RESPIRATORY_RATE] = "/min",
            [METRIC_PULSE_RATE_FAST] = "/min",
            [METRIC_PULSE_RATE_SLOW] = "/min",
            [METRIC_RR_INTERVAL] = "s",
            [METRIC_ENERGY_EXPENDED] = "kJ",
            [METRIC_SYSTOLIC] = "mm[Hg]",
            [METRIC_DIASTOLIC] = "mm[Hg]",
            [METRIC_MEAN_ARTERIAL_PRESSURE] = "mm[Hg]",
            [METRIC_BODY_TEMPERATURE] = "Cel",
            [METRIC_TEMPERATURE] = "Cel",
            [METRIC_SPO2] = "%",
            [METRIC_SPO2_FAST] = "%",
            [METRIC_SPO2_SLOW] = "%",
            [METRIC_PERFUSION_INDEX] = "%",
            [METRIC_HUMIDITY] = "%",
            [METRIC_BATTERY] = "%",
            [METRIC_BODY_WEIGHT] = "kg",
            [METRIC_BMI] = "kg/m2",
            [METRIC_BODY_HEIGHT] = "m",
            [METRIC_GLUCOSE] = "mg/dL",
            [METRIC_ILLUMINANCE] = "lx",
            [METRIC_VOLTAGE] = "V",
            [METRIC_POWER] = "W",
            [METRIC_PRESSURE] = "hPa",
            [METRIC_CO2] = "[ppm]",
        };
        /* The standard codes of the vital signs, as DESIGN.md lists them. */
        static const struct {
                Metric metric;
                const char *loinc;
        } vital[] = {
            {METRIC_HEART_RATE, "8867-4"},
            {METRIC_PULSE_RATE, "8867-4"},
            {METRIC_SPO2, "59408-5"},
            {METRIC_BODY_TEMPERATURE, "8310-5"},
            {METRIC_BODY_WEIGHT, "29463-7"},
            {METRIC_SYSTOLIC, "8480-6"},
            {METRIC_DIASTOLIC, "8462-4"},
            {METRIC_MEAN_ARTERIAL_PRESSURE, "8478-0"},
            {METRIC_RESPIRATORY_RATE, "9279-1"},
            {METRIC_BMI, "39156-5"},
            {METRIC_BODY_HEIGHT, "8302-2"},
        };

        for (Metric m = 0; m < _METRIC_MAX; m++) {
                const MetricInfo *info = metric_info(m);
                Metric back = _METRIC_MAX;

                CHECK(info && info->name && info->unit && info->unit[0]);
                if (!info)
                        continue;
                CHECK_STREQ(metric_name(m), info->name);
                CHECK(metric_from_name(info->name, &back) == 0 && back == m);
                CHECK_STREQ(metric_default_unit(m), old_default_unit[m]);
                for (Metric o = 0; o < m; o++)
                        CHECK(!streq(metric_name(o), info->name));
                CHECK(!info->loinc || loinc_valid(info->loinc));
                CHECK(!info->loinc_also || loinc_valid(info->loinc_also));
                for (const MetricUnitLoinc *u = info->loinc_by_unit; u && u->unit; u++)
                        CHECK(u->loinc && loinc_valid(u->loinc));
                CHECK(metric_loinc_for_unit(m, "no-such-unit") == info->loinc);
        }
        CHECK(metric_info(_METRIC_MAX) == NULL && metric_name(_METRIC_MAX) == NULL);
        CHECK_STREQ(metric_default_unit(_METRIC_MAX), "");
        CHECK(metric_from_name(NULL, &(Metric){0}) == -EINVAL);
        for (size_t i = 0; i < ELEMENTSOF(vital); i++)
                CHECK_STREQ(metric_loinc(vital[i].metric), vital[i].loinc);
        /* For FHIR: glucose by its unit, SpO2 with its second coding. The JSON's code stays as it
         * was (none for glucose), so items on the wire do not change. */
        CHECK(metric_loinc(METRIC_GLUCOSE) == NULL);
        CHECK_STREQ(metric_loinc_for_unit(METRIC_GLUCOSE, "mg/dL"), "2339-0");
        CHECK_STREQ(metric_loinc_for_unit(METRIC_GLUCOSE, "mmol/L"), "15074-8");
        CHECK_STREQ(metric_loinc_for_unit(METRIC_SPO2, "%"), "59408-5");
        CHECK_STREQ(metric_info(METRIC_SPO2)->loinc_also, "2708-6");
        /* The check itself: a code with a wrong check digit fails. */
        CHECK(loinc_valid("8867-4") && !loinc_valid("8867-5") && !loinc_valid("88674") &&
              !loinc_valid("-4"));
}

TEST_MAIN(TEST(test_ieee11073), TEST(test_heart_rate), TEST(test_blood_pressure), TEST(test_temperature),
          TEST(test_plx), TEST(test_weight), TEST(test_glucose), TEST(test_bthome_objects),
          TEST(test_bthome_every_id), TEST(test_bthome_encryption), TEST(test_bthome_packet_id_dedup),
          TEST(test_encoders_round_trip), TEST(test_parse_helpers), TEST(test_profile_table_complete),
          TEST(test_profile_names_of_0060b92), TEST(test_profile_metrics_match_decoders),
          TEST(test_metric_table))
