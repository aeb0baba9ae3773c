/* The profile table: the one place that says, for every kind of radio device the gateway reads,
 *
 *  - its names: the canonical one (what messages print) and the aliases also accepted. The same
 *    names serve [Sensor] Type= (gateway/config.c), `homecare-gw decode PROFILE` (gateway/cli-decode.c)
 *    and the BLE set-up (gateway/ingest.c): one spelling of a type everywhere;
 *  - how its data reaches the gateway: a GATT measurement characteristic of a service, which the
 *    gateway connects and subscribes to, or BTHome service data in advertisements;
 *  - its decoder;
 *  - the metrics it yields and in which UCUM units (the metrics' names, default units and LOINC
 *    codes are the metric table's: metric_info() in sensors/reading.h).
 *
 * Adding a kind of device: a Profile value, a row in sensors/profile.c, a decoder beside the
 * others; tests/unit/test-decode.c then checks that the row is complete and that the decoder yields
 * exactly the metrics and units the row lists.
 *
 * Static data only: every pointer these functions return (names, rows, alias lists) is valid for
 * the life of the program and is nobody's to free. Includes nothing of gateway/. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "sensors/reading.h"

/* The order is the order names are listed in (the config's error message lists bthome first). The
 * values are not stored anywhere: only the names are a contract. */
typedef enum Profile {
        PROFILE_BTHOME,         /* BTHome v2 service data, UUID 0xFCD2 */
        PROFILE_HEART_RATE,     /* 0x2A37 Heart Rate Measurement */
        PROFILE_BLOOD_PRESSURE, /* 0x2A35 Blood Pressure Measurement */
        PROFILE_TEMPERATURE,    /* 0x2A1C Temperature Measurement */
        PROFILE_PLX_SPOT,       /* 0x2A5E PLX Spot-Check Measurement */
        PROFILE_PLX_CONTINUOUS, /* 0x2A5F PLX Continuous Measurement */
        PROFILE_WEIGHT,         /* 0x2A9D Weight Measurement */
        PROFILE_GLUCOSE,        /* 0x2A18 Glucose Measurement */
        _PROFILE_MAX,
} Profile;

typedef enum ProfileTransport {
        PROFILE_GATT,          /* the gateway connects and subscribes to a measurement characteristic */
        PROFILE_ADVERTISEMENT, /* the device only advertises (service data); no connection, no pairing */
} ProfileTransport;

/* Defined in sensors/decode.h and sensors/bthome.h, which include this header. */
typedef struct DecodeContext DecodeContext;
typedef struct Decoded Decoded;
typedef struct BthomeState BthomeState;

/* A GATT measurement decoder: the characteristic's value in, readings out (sensors/decode.h). */
typedef int (*profile_gatt_decoder)(const uint8_t *buf, size_t len, const DecodeContext *ctx, Decoded *out);
/* An advertisement decoder: service data in, with the device's bind key (or NULL), address and
 * replay state (sensors/bthome.h). */
typedef int (*profile_advertisement_decoder)(const uint8_t *buf, size_t len, const uint8_t *key,
                                             const uint8_t mac[6], const DecodeContext *ctx,
                                             BthomeState *state, Decoded *out);

#define PROFILE_UNITS_MAX 2

typedef struct ProfileMetric {
        Metric metric;
        const char *units[PROFILE_UNITS_MAX]; /* every UCUM unit the decoder gives it; unused slots NULL */
} ProfileMetric;

typedef struct ProfileInfo {
        const char *name;           /* canonical: "plx-spot" */
        const char *const *aliases; /* also accepted ("plx"), NULL-terminated; NULL: none */
        ProfileTransport transport;
        uint16_t
            service_uuid16; /* GATT: the service (0x1822 Pulse Oximeter); BTHome: its service data UUID */
        uint16_t uuid16;    /* GATT: the measurement characteristic (0x2A5E); BTHome: 0xFCD2 as well */
        profile_gatt_decoder decode_gatt; /* PROFILE_GATT: never NULL; else NULL */
        profile_advertisement_decoder
            decode_advertisement;     /* PROFILE_ADVERTISEMENT: never NULL; else NULL */
        const ProfileMetric *metrics; /* the metrics it yields (BTHome also yields events) */
        size_t n_metrics;
} ProfileInfo;

/* The row of p; NULL if p is not a profile. */
const ProfileInfo *profile_info(Profile p);

/* The enum <-> name pattern of common/string-table.h, with aliases:
 * the canonical name, or NULL if p is not a profile; */
const char *profile_name(Profile p);
/* 0 and *ret set for a canonical name or an alias, or -EINVAL (NULL or unknown; *ret untouched). */
int profile_from_name(const char *name, Profile *ret);
/* Every accepted name, canonical first and then its aliases, in table order, joined by sep (", "),
 * into buf (the caller's, of size bytes; truncated to fit, always terminated). Returns buf. For
 * messages that say what would have been accepted. */
char *profile_names_list(const char *sep, char *buf, size_t size);

/* The measurement characteristic (or for BTHome the service data UUID, 0xFCD2); 0 if p is not a
 * profile. */
uint16_t profile_uuid16(Profile p);
/* The measurement characteristics to subscribe to on a device of profile p: those of every GATT
 * profile of the same service, in table order, since a device may have any of them (an oximeter:
 * spot-check, continuous, or both). Writes at most n into ret and returns how many there are (more
 * than n: the caller's array is too small); 0 for a device that only advertises. */
size_t profile_characteristics(Profile p, uint16_t *ret, size_t n);
