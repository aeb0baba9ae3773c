/* Engine: runs the rules engine (gateway/rules.c) in the loop. It owns the engine and what drives it:
 * one timer at the engine's next deadline, the writes of its durable state (through gateway/alerts.c)
 * at a cadence that fits what changed, its set-up, resumption and reload, and the watch on the wall
 * clock that notices a step before any item or rule sees the new time.
 *
 * The engine runs on the real clock, or in simulation on the simulated home's (the data's own):
 * engine_on_data_clock() says which; the caller (gateway/ingest.c) knows the sources and says at
 * which time on that clock each input happens.
 *
 * A clock step is told to the service by an item (encode_clock_step()) that the Engine hands to its
 * queue function, so that it goes the way of every other item; the Engine includes nothing of
 * Ingest. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <systemd/sd-event.h>

#include "gateway/alerts.h"
#include "gateway/config.h"
#include "gateway/rules.h"
#include "sensors/reading.h"
#include "uplink/outbox.h"

typedef struct Engine Engine;

/* Queues one item (body malloc'd and taken over, NULL after a failed allocation) in lane. */
typedef void (*engine_queue_fn)(void *userdata, Lane lane, char *body, size_t len);

/* e, c and o are borrowed: the loop and the outbox must outlive the Engine, and c stays valid until
 * the next engine_reload() or engine_free(). queue (with userdata) takes the clock_step items; it may
 * call engine_check_clock(). Nothing runs yet, but engine_check_clock() works at once. The caller
 * owns *ret and frees it with engine_free(). */
int engine_new(sd_event *e, const Config *c, Outbox *o, engine_queue_fn queue, void *userdata, Engine **ret);
/* Stops the timers and the clock watch, frees the engine (its state is not written: see
 * engine_shutdown()). Takes NULL; returns NULL. */
Engine *engine_free(Engine *en);

/* Starts the clock watch and the rules, resuming the state the last run saved in alerts (borrowed:
 * it must outlive the Engine) when it ran on the same clock. 0, or a negative errno (logged). */
int engine_start(Engine *en, Alerts *alerts);
/* SIGTERM: the rules' state is written. */
void engine_shutdown(Engine *en);
/* SIGHUP with a new configuration c (borrowed as in engine_new()). The rules keep their state and
 * take the new settings, unless restart (the simulated home starts over) or the clock they run on
 * changes: then a fresh engine starts, its open alerts cleared first. Logs what it does. */
void engine_reload(Engine *en, const Config *c, bool restart);

/* Called before every item is queued and every use of the engine's clock: a clock step is noticed,
 * the engine told, and a clock_step item queued, before anything is stamped by the new clock. */
void engine_check_clock(Engine *en);

/* Whether the rules run (they may not after a reload whose settings they could not take). */
bool engine_running(const Engine *en);
/* Whether the rules run on the simulated home's clock rather than the real one. */
bool engine_on_data_clock(const Engine *en);

/* Input that happens at now on the engine's clock (rd, e and unit are borrowed for the call): the
 * clock is checked, deadlines before now fire, the rules take the input, and the timer and the state
 * writes follow. The rules must run (engine_running()). */
void engine_reading(Engine *en, int64_t now, const Reading *rd);
void engine_event(Engine *en, int64_t now, const Event *e);
void engine_nurse_consciousness(Engine *en, int64_t now, char acvpu);
/* A nurse's observation in two steps, so that the caller can store it in between: the clock first
 * (engine_advance_before()), then the score (engine_nurse_reading()). */
void engine_advance_before(Engine *en, int64_t now);
void engine_nurse_reading(Engine *en, Metric m, double value, const char *unit);
