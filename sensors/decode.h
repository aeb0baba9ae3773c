/* Decoders: bytes from devices in, readings and events out. Pure functions: no I/O, no clock
 * reads (the receive time comes in the context), so tests drive them exactly.
 *
 * Each decoder returns 0, or -EBADMSG for a malformed value (too short, a flag promising a field
 * that is missing, a field out of range, bytes left over) and -EPROTO for one that is well formed
 * but refused (BTHome: wrong key or altered frame, replayed counter, downgrade). On failure,
 * out->error says what is wrong and out holds no readings: never a partial reading as if good.
 *
 * out is the caller's, and so is everything written into it; the strings readings point to (unit,
 * absent, site, sample) are static, valid for the life of the program. Which decoder serves which
 * device is the profile table's (sensors/profile.h). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sensors/profile.h" /* Profile, and the table of which decoder serves which device */
#include "sensors/reading.h"

typedef struct DecodeContext {
        int64_t now_usec;        /* when the value was received, UTC */
        TimeQuality now_quality; /* how far the gateway's clock can be trusted */
        int32_t utc_offset_sec;  /* device clocks show local time (the gateway sets them so, through
                                  * the Current Time Service): this is local time minus UTC */
} DecodeContext;

#define DECODED_MAX 64

typedef struct Decoded {
        Reading readings[DECODED_MAX];
        size_t n_readings;
        Event events[DECODED_MAX];
        size_t n_events;
        bool duplicate;  /* BTHome: same packet id as the last frame; nothing new */
        char error[192]; /* why decoding failed */
} Decoded;

int decode_heart_rate(const uint8_t *buf, size_t len, const DecodeContext *ctx, Decoded *out);
int decode_blood_pressure(const uint8_t *buf, size_t len, const DecodeContext *ctx, Decoded *out);
int decode_temperature(const uint8_t *buf, size_t len, const DecodeContext *ctx, Decoded *out);
int decode_plx_spot(const uint8_t *buf, size_t len, const DecodeContext *ctx, Decoded *out);
int decode_plx_continuous(const uint8_t *buf, size_t len, const DecodeContext *ctx, Decoded *out);
int decode_weight(const uint8_t *buf, size_t len, const DecodeContext *ctx, Decoded *out);
int decode_glucose(const uint8_t *buf, size_t len, const DecodeContext *ctx, Decoded *out);
/* The GATT profiles by Profile, with the profile table's decoder (not BTHome, which needs a key and
 * state: see bthome.h; for it, and for anything not a profile, -EINVAL with out->error set). */
int decode_characteristic(Profile p, const uint8_t *buf, size_t len, const DecodeContext *ctx, Decoded *out);

/* ---- for the decoder files ---- */

/* A bounds-checked reader over a value; every take names the field it wanted. */
typedef struct Cursor {
        const uint8_t *buf;
        size_t len, off;
        Decoded *out;
} Cursor;

int cursor_take(Cursor *c, size_t n, const char *field, const uint8_t **ret);
int cursor_u8(Cursor *c, const char *field, uint8_t *ret);
int cursor_u16(Cursor *c, const char *field, uint16_t *ret);
int cursor_u24(Cursor *c, const char *field, uint32_t *ret);
int cursor_u32(Cursor *c, const char *field, uint32_t *ret);
/* Fails when bytes are left over after the last field. */
int cursor_end(Cursor *c);

/* Bluetooth Date Time (7 bytes). Unknown (year, month or day 0) leaves *ret_known false. */
typedef struct DateTime {
        uint16_t year;
        uint8_t month, day, hours, minutes, seconds;
} DateTime;
int cursor_datetime(Cursor *c, const DecodeContext *ctx, int64_t *ret_usec, bool *ret_known);
/* A measurement's optional time stamp: the device's time when it knows it (TIME_DEVICE), else
 * *t and *q stay as they are (the receive time and the gateway clock's quality). */
int cursor_time_stamp(Cursor *c, const DecodeContext *ctx, int64_t *t, TimeQuality *q);
DateTime datetime_from_usec(int64_t usec, int32_t utc_offset_sec);
void put_datetime(uint8_t *p, const DateTime *t);

/* Adds a reading (time and quality from the caller) or records an error. The pointers returned are
 * into out (valid until out is reset or decoded into again), or NULL when out is full. unit must be
 * a static string. */
Reading *decoded_add_reading(Decoded *out, Metric m, const char *unit, int64_t time_usec, TimeQuality q);
/* A reading from an SFLOAT or FLOAT field: absent with the reason for the special values. */
Reading *decoded_add_sfloat(Decoded *out, Metric m, const char *unit, uint16_t raw, int extra_exponent,
                            int64_t time_usec, TimeQuality q);
Reading *decoded_add_float(Decoded *out, Metric m, const char *unit, uint32_t raw, int64_t time_usec,
                           TimeQuality q);
Event *decoded_add_event(Decoded *out, EventKind k, int value, int64_t time_usec);
int decoded_fail(Decoded *out, int error, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void decoded_reset(Decoded *out);
