/* The simulated home: one person's day, as the sensors of a real home would report it.
 *
 * Morning blood pressure and weight, an oximeter and a thermometer, motion in the rooms,
 * the front door, a medication dispenser with three doses a day, nights in bed with a visit
 * to the bathroom, and a room climate sensor. Readings and events leave through the same
 * SensorSink that real sensors use. Deterministic for a given seed and start time. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <systemd/sd-event.h>

#include "sensors/decode.h"
#include "sensors/reading.h"

typedef struct SimOptions {
        double speed; /* simulated seconds per real second; 0: as fast as the sink takes them */
        uint64_t seed;
        int64_t start_usec;     /* simulated clock at start (UTC); 0: the real clock now */
        int32_t utc_offset_sec; /* device clocks show local time: local minus UTC */
} SimOptions;

/* The simulated home's radio devices, as a technician would provision them. Wired inputs (bed mat,
 * front door contact, dispenser) send events and are not listed. */
typedef struct SimDevice {
        const char *id;
        Profile profile;
        const char *address; /* AA:BB:CC:DD:EE:FF */
        const char *key;     /* BTHome bind key (hex), or NULL */
} SimDevice;

const SimDevice *sim_devices(size_t *ret_n);

/* What each simulated sensor is for the rules (radio devices and wired inputs). */
typedef struct SimRole {
        const char *id;
        const char *role; /* as in [Sensor] / [Input] Role= */
        bool is_input;    /* a wired input */
} SimRole;

const SimRole *sim_roles(size_t *ret_n);

typedef struct Sim Sim;

int sim_new(sd_event *e, const SimOptions *opt, const SensorSink *sink, Sim **ret);
Sim *sim_free(Sim *s);
int sim_start(Sim *s);
/* Stops producing (e.g. when a limit is reached); cannot be restarted. */
void sim_stop(Sim *s);
/* At Speed=max the owner pauses the simulation while its queue is long (back-pressure). */
void sim_set_paused(Sim *s, bool paused);
bool sim_paused(const Sim *s);
uint64_t sim_emitted(const Sim *s);
int64_t sim_now(const Sim *s); /* the simulated clock, UTC usec */
