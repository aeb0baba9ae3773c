#include <ctype.h>
#include <errno.h>
#include <string.h>

#include <openssl/evp.h>

#include "common/hex.h"
#include "sensors/bthome.h"
#include "sensors/ieee11073.h"

#define UUID_LO 0xD2
#define UUID_HI 0xFC
#define INFO_ENCRYPTED 0x01
#define INFO_TRIGGER 0x04
#define INFO_VERSION(b) ((b) >> 5)

typedef enum Kind {
        K_SKIP, /* known, parsed, not used in a care home (energy, gas, rotation, ...) */
        K_PACKET_ID,
        K_READING,
        K_EVENT, /* a binary state: value 0 or 1 */
        K_BUTTON,
        K_DIMMER,
        K_VARIABLE, /* text, raw: a length byte, then that many bytes */
} Kind;

typedef struct ObjectDef {
        uint8_t len; /* value bytes; 0 for K_VARIABLE */
        Kind kind;
        bool is_signed;
        int exponent;  /* value = raw * 10^exponent ... */
        double factor; /* ... * factor (0: 1) */
        Metric metric;
        const char *unit;
        EventKind event;
} ObjectDef;

#define R(l, s, e, m, u)                                                                                    \
        {                                                                                                   \
                .len = l, .kind = K_READING, .is_signed = s, .exponent = e, .metric = m, .unit = u          \
        }
#define B(ev)                                                                                               \
        {                                                                                                   \
                .len = 1, .kind = K_EVENT, .event = ev                                                      \
        }
#define SKIP(l)                                                                                             \
        {                                                                                                   \
                .len = l, .kind = K_SKIP                                                                    \
        }

/* The object ids of the published BTHome v2 format (bthome.io/format). */
static const ObjectDef objects[256] = {
    [0x00] = {.len = 1, .kind = K_PACKET_ID},
    [0x01] = R(1, false, 0, METRIC_BATTERY, "%"),
    [0x02] = R(2, true, -2, METRIC_TEMPERATURE, "Cel"),
    [0x03] = R(2, false, -2, METRIC_HUMIDITY, "%"),
    [0x04] = R(3, false, -2, METRIC_PRESSURE, "hPa"),
    [0x05] = R(3, false, -2, METRIC_ILLUMINANCE, "lx"),
    [0x06] = R(2, false, -2, METRIC_BODY_WEIGHT, "kg"),
    [0x07] = R(2, false, -2, METRIC_BODY_WEIGHT, "[lb_av]"),
    [0x08] = SKIP(2), /* dew point */
    [0x09] = SKIP(1), /* count */
    [0x0A] = SKIP(3), /* energy */
    [0x0B] = R(3, false, -2, METRIC_POWER, "W"),
    [0x0C] = R(2, false, -3, METRIC_VOLTAGE, "V"),
    [0x0D] = SKIP(2),
    [0x0E] = SKIP(2), /* PM2.5, PM10 */
    [0x0F] = B(EVENT_GENERIC),
    [0x10] = B(EVENT_POWER),
    [0x11] = B(EVENT_OPENING),
    [0x12] = R(2, false, 0, METRIC_CO2, "[ppm]"),
    [0x13] = SKIP(2), /* TVOC */
    [0x14] = SKIP(2), /* moisture */
    [0x15] = B(EVENT_BATTERY_LOW),
    [0x16] = SKIP(1), /* battery charging */
    [0x17] = B(EVENT_CARBON_MONOXIDE),
    [0x18] = SKIP(1),
    [0x19] = SKIP(1), /* cold, connectivity */
    [0x1A] = B(EVENT_DOOR),
    [0x1B] = B(EVENT_DOOR), /* garage door */
    [0x1C] = SKIP(1),
    [0x1D] = SKIP(1),
    [0x1E] = SKIP(1),
    [0x1F] = SKIP(1),             /* gas, heat, light, lock */
    [0x20] = B(EVENT_WATER_LEAK), /* moisture (binary) */
    [0x21] = B(EVENT_MOTION),
    [0x22] = B(EVENT_MOVING),
    [0x23] = B(EVENT_OCCUPANCY),
    [0x24] = SKIP(1), /* plug */
    [0x25] = B(EVENT_PRESENCE),
    [0x26] = B(EVENT_PROBLEM),
    [0x27] = SKIP(1),
    [0x28] = SKIP(1), /* running, safety */
    [0x29] = B(EVENT_SMOKE),
    [0x2A] = SKIP(1), /* sound */
    [0x2B] = B(EVENT_TAMPER),
    [0x2C] = B(EVENT_VIBRATION),
    [0x2D] = B(EVENT_WINDOW),
    [0x2E] = R(1, false, 0, METRIC_HUMIDITY, "%"),
    [0x2F] = SKIP(1), /* moisture */
    [0x3A] = {.len = 1, .kind = K_BUTTON},
    [0x3C] = {.len = 2, .kind = K_DIMMER},
    [0x3D] = SKIP(2),
    [0x3E] = SKIP(4), /* count */
    [0x3F] = SKIP(2), /* rotation */
    [0x40] = SKIP(2),
    [0x41] = SKIP(2), /* distance */
    [0x42] = SKIP(3), /* duration */
    [0x43] = SKIP(2),
    [0x44] = SKIP(2), /* current, speed */
    [0x45] = R(2, true, -1, METRIC_TEMPERATURE, "Cel"),
    [0x46] = SKIP(1), /* UV index */
    [0x47] = SKIP(2),
    [0x48] = SKIP(2),
    [0x49] = SKIP(2), /* volume, volume flow */
    [0x4A] = R(2, false, -1, METRIC_VOLTAGE, "V"),
    [0x4B] = SKIP(3),
    [0x4C] = SKIP(4),
    [0x4D] = SKIP(4),
    [0x4E] = SKIP(4),
    [0x4F] = SKIP(4),
    [0x50] = SKIP(4), /* timestamp */
    [0x51] = SKIP(2),
    [0x52] = SKIP(2),              /* acceleration, gyroscope */
    [0x53] = {.kind = K_VARIABLE}, /* text */
    [0x54] = {.kind = K_VARIABLE}, /* raw */
    [0x55] = SKIP(4),
    [0x56] = SKIP(2), /* volume storage, conductivity */
    [0x57] = R(1, true, 0, METRIC_TEMPERATURE, "Cel"),
    [0x58] = {.len = 1,
              .kind = K_READING,
              .is_signed = true,
              .factor = 0.35,
              .metric = METRIC_TEMPERATURE,
              .unit = "Cel"},
    [0x59] = SKIP(1),
    [0x5A] = SKIP(2),
    [0x5B] = SKIP(4), /* count */
    [0x5C] = {.len = 4,
              .kind = K_READING,
              .is_signed = true,
              .exponent = -2,
              .metric = METRIC_POWER,
              .unit = "W"},
    [0x5D] = SKIP(2),
    [0x5E] = SKIP(2),
    [0x5F] = SKIP(2), /* current, direction, precipitation */
    [0x60] = SKIP(1),
    [0x61] = SKIP(2), /* channel, rotational speed */
    [0x62] = SKIP(4),
    [0x63] = SKIP(4), /* speed, acceleration (signed) */
    [0x64] = SKIP(1), /* light level */
    [0xF0] = SKIP(2), /* device type id */
    [0xF1] = SKIP(4),
    [0xF2] = SKIP(3), /* firmware version */
};

static bool known(uint8_t id)
{
        return objects[id].len > 0 || objects[id].kind == K_VARIABLE;
}

static double scale(int64_t raw, const ObjectDef *d)
{
        /* One division by an exact power of ten: 3959 / 100 is the double nearest 39.59 (dividing by
         * 10 twice is not). */
        double v = d->exponent < 0 ? (double)raw / pow10i(-d->exponent) : (double)raw;
        return d->factor ? v * d->factor : v;
}

static int crypt_ccm(bool decrypt, const uint8_t key[16], const uint8_t nonce[13], const uint8_t *in,
                     size_t len, uint8_t *out, uint8_t mic[4])
{
        EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
        int n, ok;

        if (!c)
                return -ENOMEM;
        ok = EVP_CipherInit_ex(c, EVP_aes_128_ccm(), NULL, NULL, NULL, !decrypt) &&
             EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_SET_IVLEN, 13, NULL) &&
             EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_SET_TAG, 4, decrypt ? mic : NULL) &&
             EVP_CipherInit_ex(c, NULL, NULL, key, nonce, !decrypt) &&
             EVP_CipherUpdate(c, NULL, &n, NULL, (int)len) && /* CCM needs the length first */
             EVP_CipherUpdate(c, out, &n, in, (int)len) > 0;
        if (ok && !decrypt)
                ok = EVP_CipherFinal_ex(c, out + n, &n) &&
                     EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_GET_TAG, 4, mic);
        EVP_CIPHER_CTX_free(c);
        return ok ? 0 : -EPROTO;
}

static void make_nonce(uint8_t nonce[13], const uint8_t mac[6], uint8_t info, uint32_t counter)
{
        memcpy(nonce, mac, 6);
        nonce[6] = UUID_LO;
        nonce[7] = UUID_HI;
        nonce[8] = info;
        for (int i = 0; i < 4; i++)
                nonce[9 + i] = (uint8_t)(counter >> (8 * i));
}

static int parse_objects(const uint8_t *p, size_t len, const DecodeContext *ctx, Decoded *out,
                         bool *ret_has_pid, uint8_t *ret_pid)
{
        size_t off = 0;
        while (off < len) {
                uint8_t id = p[off];
                const ObjectDef *d = &objects[id];
                size_t vlen = d->len;
                uint64_t raw = 0;
                int64_t sraw;

                if (!known(id))
                        /* Objects have no length field: nothing after an unknown id can be read. */
                        return decoded_fail(out, -EBADMSG, "unknown object id 0x%02X at offset %zu", id,
                                            off);
                off++;
                if (d->kind == K_VARIABLE) {
                        if (off >= len)
                                return decoded_fail(out, -EBADMSG, "object 0x%02X truncated: no length byte",
                                                    id);
                        vlen = p[off++];
                }
                if (len - off < vlen)
                        return decoded_fail(out, -EBADMSG,
                                            "object 0x%02X truncated: needs %zu bytes, %zu left", id, vlen,
                                            len - off);
                for (size_t i = 0; i < vlen && i < 8; i++)
                        raw |= (uint64_t)p[off + i] << (8 * i);
                sraw = (int64_t)raw;
                if (d->is_signed && vlen < 8 && (raw >> (8 * vlen - 1)) & 1)
                        sraw = (int64_t)(raw | (~0ULL << (8 * vlen)));
                off += vlen;

                switch (d->kind) {
                case K_SKIP:
                case K_VARIABLE:
                        break;
                case K_PACKET_ID:
                        *ret_has_pid = true;
                        *ret_pid = (uint8_t)raw;
                        break;
                case K_READING: {
                        Reading *r =
                            decoded_add_reading(out, d->metric, d->unit, ctx->now_usec, ctx->now_quality);
                        if (!r)
                                return -EBADMSG;
                        r->value = scale(d->is_signed ? sraw : (int64_t)raw, d);
                        break;
                }
                case K_EVENT:
                        if (raw > 1)
                                return decoded_fail(out, -EBADMSG,
                                                    "object 0x%02X: binary state %u is not 0 or 1", id,
                                                    (unsigned)raw);
                        if (!decoded_add_event(out, d->event, (int)raw, ctx->now_usec))
                                return -EBADMSG;
                        break;
                case K_BUTTON:
                        /* 0 is "no event": the button is there but was not pressed. */
                        if (raw != 0 && !decoded_add_event(out, EVENT_BUTTON, (int)raw, ctx->now_usec))
                                return -EBADMSG;
                        break;
                case K_DIMMER: {
                        int event = (int)(raw & 0xFF), steps = (int)(raw >> 8);
                        if (event == 1 || event == 2) /* rotate left, right */
                                if (!decoded_add_event(out, EVENT_DIMMER, event == 1 ? -steps : steps,
                                                       ctx->now_usec))
                                        return -EBADMSG;
                        break;
                }
                }
        }
        return 0;
}

int decode_bthome(const uint8_t *buf, size_t len, const uint8_t *key, const uint8_t mac[6],
                  const DecodeContext *ctx, BthomeState *state, Decoded *out)
{
        uint8_t plain[256], nonce[13], mic[4], info, pid = 0;
        const uint8_t *objs;
        size_t n;
        uint32_t counter = 0;
        bool has_pid = false;
        int r;

        decoded_reset(out);
        if (len < 1)
                return decoded_fail(out, -EBADMSG, "too short: no device information byte");
        info = buf[0];
        if (INFO_VERSION(info) != 2)
                return decoded_fail(out, -EBADMSG,
                                    "not BTHome v2 (version %u in the device information byte 0x%02X)",
                                    INFO_VERSION(info), info);
        if (info & INFO_ENCRYPTED) {
                if (!key)
                        return decoded_fail(out, -EPROTO, "encrypted frame, but no bind key is configured");
                if (len < 1 + 8 + 1)
                        return decoded_fail(out, -EBADMSG, "too short for an encrypted frame: %zu bytes",
                                            len);
                n = len - 1 - 8;
                if (n > sizeof plain)
                        return decoded_fail(out, -EBADMSG, "encrypted frame too long: %zu bytes of objects",
                                            n);
                for (int i = 0; i < 4; i++)
                        counter |= (uint32_t)buf[1 + n + i] << (8 * i);
                memcpy(mic, buf + 1 + n + 4, 4);
                make_nonce(nonce, mac, info, counter);
                r = crypt_ccm(true, key, nonce, buf + 1, n, plain, mic);
                if (r == -ENOMEM)
                        return decoded_fail(out, r, "out of memory");
                if (r < 0)
                        return decoded_fail(out, -EPROTO,
                                            "decryption failed: wrong key, wrong address, or altered frame");
                if (state && state->has_counter && counter <= state->counter)
                        return decoded_fail(out, -EPROTO,
                                            "replayed frame: counter %u is not above the last one, %u",
                                            counter, state->counter);
                objs = plain;
        } else {
                if (key)
                        return decoded_fail(
                            out, -EPROTO,
                            "unencrypted frame from a device that has a bind key (downgrade refused)");
                n = len - 1;
                objs = buf + 1;
        }

        r = parse_objects(objs, n, ctx, out, &has_pid, &pid);
        if (r < 0)
                return r;
        if (state) {
                if (has_pid && state->has_packet_id && pid == state->packet_id) {
                        /* The same packet again (devices repeat each advertisement): nothing new. */
                        out->n_readings = out->n_events = 0;
                        out->duplicate = true;
                }
                if (has_pid) {
                        state->has_packet_id = true;
                        state->packet_id = pid;
                }
                if (info & INFO_ENCRYPTED) {
                        state->has_counter = true;
                        state->counter = counter;
                }
        }
        return 0;
}

int encode_bthome(const uint8_t *objs, size_t objs_len, bool trigger_based, const uint8_t *key,
                  const uint8_t mac[6], uint32_t counter, uint8_t *out, size_t out_size)
{
        uint8_t info = (2 << 5) | (trigger_based ? INFO_TRIGGER : 0) | (key ? INFO_ENCRYPTED : 0);
        uint8_t nonce[13];
        int r;

        if (out_size < objs_len + 1 + (key ? 8 : 0) || objs_len > 200)
                return -ENOBUFS;
        out[0] = info;
        if (!key) {
                memcpy(out + 1, objs, objs_len);
                return (int)(objs_len + 1);
        }
        make_nonce(nonce, mac, info, counter);
        r = crypt_ccm(false, key, nonce, objs, objs_len, out + 1, out + 1 + objs_len + 4);
        if (r < 0)
                return r;
        for (int i = 0; i < 4; i++)
                out[1 + objs_len + i] = (uint8_t)(counter >> (8 * i));
        return (int)(objs_len + 9);
}

int parse_key(const char *s, uint8_t ret[16])
{
        uint8_t k[16];
        if (strlen(s) != 32)
                return -EINVAL;
        for (int i = 0; i < 16; i++) {
                int hi = unhexchar((unsigned char)s[2 * i]), lo = unhexchar((unsigned char)s[2 * i + 1]);
                if (hi < 0 || lo < 0)
                        return -EINVAL;
                k[i] = (uint8_t)(hi << 4 | lo);
        }
        memcpy(ret, k, 16);
        return 0;
}
