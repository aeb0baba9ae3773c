/* BLE through BlueZ: an sd-bus client of org.bluez on the system bus (DBUS_SYSTEM_BUS_ADDRESS points
 * it elsewhere, which is how the tests use a private bus with a fake bluetoothd).
 *
 * It mirrors org.bluez's adapters and devices (GetManagedObjects, then InterfacesAdded/Removed and
 * PropertiesChanged), picks the configured adapter or the first powered one (powering it on if
 * needed), runs LE discovery with a filter (Transport=le, DuplicateData=true) and restarts it with
 * back-off when it stops or fails (InProgress, NotReady). ServiceData from a provisioned device goes
 * up as a frame; unknown devices are counted for provisioning. A provisioned health device is
 * connected when it shows up (these devices wake, measure, advertise briefly): after ServicesResolved
 * its measurement characteristics are subscribed to (StartNotify; indications alike) and their values
 * go up as frames; its clock is set through the Current Time Service when it has one; a device that
 * needs bonding is paired through the gateway's own agent (NoInputNoOutput). Failed connections are
 * retried with back-off and never block the loop. When bluetoothd goes away
 * (NameOwnerChanged) the mirror is dropped; when it comes back everything is rebuilt.
 *
 * Everything here runs on the sd_event loop given to bluez_new(); nothing is thread-safe. How the
 * client is split into files, and who owns its objects: sensors/bluez-internal.h. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <systemd/sd-event.h>

#include "common/mac.h"
#include "sensors/reading.h"

typedef struct BluezDeviceConfig {
        const char *id; /* sensor id */
        uint8_t address[6];
        bool advertises; /* a BTHome sensor: its ServiceData (UUID 0xFCD2) is the frame */
        uint16_t
            measure[2]; /* a health device: the measurement characteristics to subscribe to (0 = none) */
        int passkey;    /* the pairing passkey, or -1: "just works" */
        bool bond;      /* pair (bond) when first connected, before subscribing */
} BluezDeviceConfig;

typedef struct BluezCallbacks {
        /* A message worth a log line (syslog priority). */
        void (*log)(void *userdata, int priority, const char *message);
        void *userdata;
} BluezCallbacks;

typedef struct Bluez Bluez;

/* adapter: "hci0", or NULL for the first powered one. Copies what it needs: adapter, devices (ids
 * too) and the two structs are the caller's again on return; sink->userdata and cb->userdata are
 * borrowed and must outlive the Bluez. On success *ret is the caller's, to free with bluez_free(). */
int bluez_new(sd_event *e, const char *adapter, const BluezDeviceConfig *devices, size_t n,
              const SensorSink *sink, const BluezCallbacks *cb, Bluez **ret);
/* Takes NULL; ends our discovery and agent politely, closes the bus and frees everything. No callback
 * of sink or cb runs after it. Returns NULL. */
Bluez *bluez_free(Bluez *b);
/* Connects to the system bus and starts; bluetoothd need not be running yet. A negative errno when
 * there is no system bus (the caller frees b). */
int bluez_start(Bluez *b);

/* For status: whether discovery runs, the adapter in use (NULL if none), devices seen but not provisioned.
 * bluez_adapter()'s string is borrowed: valid until control returns to the event loop (the adapter in
 * use can change or go on any signal) or bluez_free(); copy it to keep it. */
bool bluez_discovering(const Bluez *b);
const char *bluez_adapter(const Bluez *b);
size_t bluez_unknown_devices(const Bluez *b);
/* Per provisioned device i (its index in bluez_new's devices): last seen (UTC usec, 0 never), RSSI
 * (0 unknown), connected. An i out of range gives 0/false. */
int64_t bluez_last_seen(const Bluez *b, size_t i);
int bluez_rssi(const Bluez *b, size_t i);
bool bluez_connected(const Bluez *b, size_t i);

/* Devices seen that are not provisioned, for the technician: at most 32, the first in the order
 * bluetoothd announced them. */
typedef struct BluezUnknown {
        char address[MAC_STRING_MAX]; /* as bluetoothd wrote it */
        char name[32];
        int rssi;       /* 0 unknown */
        bool bthome;    /* advertises BTHome service data */
        char uuids[96]; /* the 16-bit service UUIDs it advertises, "180d 1810" */
} BluezUnknown;
/* Returns how many are in *ret (0 when out of memory). The array is borrowed: it belongs to b and is
 * valid until the next bluez_unknown_list() or bluez_free(). */
size_t bluez_unknown_list(const Bluez *b, const BluezUnknown **ret);
