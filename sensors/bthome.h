/* BTHome v2 service data (UUID 0xFCD2): a device-information byte, then objects (an id and a
 * value of a length fixed by the id, little-endian), optionally encrypted with AES-CCM.
 * Pure: the caller keeps the per-device state between frames (and across restarts). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/mac.h"
#include "sensors/decode.h"

typedef struct BthomeState {
        bool has_counter;
        uint32_t counter; /* the last accepted encryption counter */
        bool has_packet_id;
        uint8_t packet_id; /* the last packet id seen */
} BthomeState;

/* Decodes buf (the service data after the UUID). key is the 16-byte bind key or NULL; mac is the
 * device's address in the order it is written (A4:C1:38:.. is {0xA4, 0xC1, 0x38, ..}). state may
 * be NULL (no replay or duplicate checks). On success *state is updated; on failure it is not.
 * -EBADMSG: malformed; -EPROTO: a wrong key or altered frame, a replayed counter, a downgrade
 * (an unencrypted frame from a device that has a key), or an encrypted frame without a key. */
int decode_bthome(const uint8_t *buf, size_t len, const uint8_t *key, const uint8_t mac[6],
                  const DecodeContext *ctx, BthomeState *state, Decoded *out);

/* Builds service data from plain objects (id + value bytes, as they would be sent unencrypted),
 * encrypted when key is non-NULL. Returns the length written to out (at most objects_len + 9),
 * or a negative errno. */
int encode_bthome(const uint8_t *objects, size_t objects_len, bool trigger_based, const uint8_t *key,
                  const uint8_t mac[6], uint32_t counter, uint8_t *out, size_t out_size);

/* 32 hex digits to a key. 0 or -EINVAL. (Addresses: parse_mac() in common/mac.h.) */
int parse_key(const char *s, uint8_t ret[16]);
