/* The gateway's status object: what homecare/v1/<gw>/status carries (retained, and as the LWT), and
 * what the technician's page will show. Built with jansson from the modules' own accessors; it reads
 * and never changes them. The fields are documented in docs/uplink.md ("status").
 *
 * To add a field: add it in the section function of the module it comes from (status.c), and to
 * StatusSources if that module is not there yet. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "gateway/config.h"
#include "gateway/devices.h"
#include "sensors/bluez.h"
#include "sensors/gpio.h"
#include "uplink/mqtt.h"
#include "uplink/outbox.h"

/* What the status is made of. Every pointer is borrowed for the call only; any of the modules may be
 * NULL (not set up, or not running), and their part is then left out. */
typedef struct StatusSources {
        const Config *config; /* the gateway id and the provisioned sensors; never NULL */
        Outbox *outbox;       /* NULL: none of the "full" figures (the LWT, made before the store opens) */
        Mqtt *mqtt;           /* refused, too_large */
        Devices *devices;     /* per sensor: last seen, battery, last value, counts */
        Bluez *bluez;         /* BLE running: its adapter, the sensors' links, unprovisioned devices */
        const char *bluez_error; /* or why BLE does not run */
        GpioInputs *gpio;        /* the wired inputs' states and errors */
        const char *web_url;     /* the technician's page, "https://0.0.0.0:8443"; NULL: it is off */
        const char *web_error;   /* why the page is down, or NULL */
        bool
            all_devices; /* without BLE, "sensors" from the device registry (the page: the simulated home) */
        int64_t now_usec;     /* CLOCK_REALTIME, for "time" */
        uint64_t uptime_usec; /* since the gateway started */
} StatusSources;

/* state: "online" or "offline"; reason: why offline ("shutdown", "connection lost") or NULL. full: with
 * the store's, the radio's and the inputs' figures (the LWT is fixed at connect time, so it carries
 * none). Returns a new reference (the caller owns it), or NULL on ENOMEM. */
json_t *status_build(const StatusSources *s, const char *state, const char *reason, bool full);

/* The same as compact JSON text, as it goes on the wire. Returns a malloc'd string (the caller
 * frees it), or NULL on ENOMEM. */
char *status_format(const StatusSources *s, const char *state, const char *reason, bool full);
