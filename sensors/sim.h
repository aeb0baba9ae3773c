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

#include "sensors/reading.h"

typedef struct SimOptions {
        double speed;       /* simulated seconds per real second; 0: as fast as the sink takes them */
        uint64_t seed;
        uint64_t limit;     /* stop after this many readings and events; 0: never */
        int64_t start_usec; /* simulated clock at start (UTC); 0: the real clock now */
} SimOptions;

typedef struct Sim Sim;

/* Called once when the limit is reached. */
typedef void (*sim_done_fn)(Sim *s, void *userdata);

int sim_new(sd_event *e, const SimOptions *opt, const SensorSink *sink, Sim **ret);
Sim *sim_free(Sim *s);
int sim_start(Sim *s);
void sim_set_done_callback(Sim *s, sim_done_fn fn, void *userdata);
/* At Speed=max the owner pauses the simulation while its queue is long (back-pressure). */
void sim_set_paused(Sim *s, bool paused);
bool sim_paused(const Sim *s);
uint64_t sim_emitted(const Sim *s);
int64_t sim_now(const Sim *s); /* the simulated clock, UTC usec */
