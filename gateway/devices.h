/* The radio devices the gateway knows: their profile, address, bind key, and the per-device decoder
 * state (BTHome replay counter and packet id). Frames from any source are decoded here.
 * The last accepted encryption counter per address is kept in StateDirectory/sensors.db, so a
 * replayed frame is refused after a restart too. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <systemd/sd-event.h>

#include "sensors/bthome.h"
#include "sensors/decode.h"

typedef struct Device {
        char id[SENSOR_ID_MAX];
        Profile profile;
        uint8_t address[6];
        bool has_key;
        uint8_t key[16];
        BthomeState bthome;
        uint64_t frames, rejected, duplicates;
        bool has_battery;
        double battery;       /* the last battery level reported, % */
        char last_metric[32]; /* the last metric or event name, for status */
        bool last_is_event;
        double last_value;
        uint64_t last_frame; /* digest of the last BTHome frame accepted */
        uint64_t recent[32]; /* digests of the last time-stamped measurements, to drop resends */
        size_t n_recent;
        int64_t last_seen_usec;
} Device;

typedef struct Devices Devices;

/* Opens (creating) the counter store at path with common/sqlite.h (schema version 1; a store from
 * before versions is adopted as 1 unchanged). A file SQLite refuses as corrupt is moved aside
 * (sqlite_move_corrupt()) and a new store is made; see devices_replaced(). A store newer than this
 * binary is refused, untouched: -EPROTONOSUPPORT. *reterr_error (malloc'd, the caller frees it) says
 * why on failure. The caller owns *ret and frees it with devices_free(). */
int devices_new(sd_event *e, const char *path, Devices **ret, char **reterr_error);
/* Where a corrupt store was moved at open, or NULL. Borrowed, valid until devices_free(). */
const char *devices_replaced(const Devices *d);
/* Why sensors.db could not be opened (a full, failing or read-only disk), or NULL: the counters are
 * then kept in memory for this run. Borrowed, valid until devices_free(). */
const char *devices_memory_reason(const Devices *d);
/* Writes pending counters, closes the store. Takes NULL. */
Devices *devices_free(Devices *d);

/* key: 16 bytes or NULL. Loads the stored counter for the address. An id already known with the same
 * profile, address and key: -EEXIST; with others (a replaced sensor, a reload): updated, its decoder
 * state that of the new address, 0. */
int devices_add(Devices *d, const char *id, Profile p, const uint8_t address[6], const uint8_t *key);
/* The device with that id, or NULL. Borrowed: the registry's, valid until the next devices_add()
 * (the table may move) or devices_free(). */
Device *devices_find(Devices *d, const char *id);
size_t devices_count(const Devices *d);
/* The i-th device (i < devices_count()), borrowed as devices_find()'s. */
Device *devices_at(Devices *d, size_t i);

/* Decodes a frame from device id with its profile (or, for a GATT device, the profile of the
 * characteristic uuid16 when it is not 0), key and state. A time-stamped measurement that the
 * device sends again (devices resend stored measurements) is a duplicate, like a repeated BTHome
 * packet. On success out's readings and
 * events carry the device id; a duplicate (same BTHome packet id) leaves out empty with
 * out->duplicate set. -ENOENT for an unknown device; decoder errors as in decode.h. */
int devices_decode(Devices *d, const char *id, uint16_t uuid16, const uint8_t *buf, size_t len,
                   const DecodeContext *ctx, Decoded *out);
/* Writes counters that changed (also done by a timer within a second, and at free). */
int devices_flush(Devices *d);
