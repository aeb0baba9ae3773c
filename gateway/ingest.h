/* Ingest: the data path from the home to the outbox. The sources (wired inputs, BLE, the simulated
 * home) hand up frames, readings and events through a sink each; a frame is decoded with its device's
 * profile, key and state (the device registry, gateway/devices.c); every reading and event is queued
 * in the outbox and given to the rules engine at its time on the engine's clock (the real one, or the
 * simulated home's). Ingest owns the Engine (gateway/engine.c), which runs the rules in the loop: their
 * timer, the writes of their state, and clock steps, noticed before any item is stamped by the new
 * clock.
 *
 *   sources -> sinks -> devices_decode() -> ingest_queue() -> outbox
 *                                        \-> engine -> rules -> alerts_emit() -> ingest_alerts_sink() ->
 * outbox
 *
 * Ingest does not know the Alerts' sink: the Manager wires alerts' output to ingest_alerts_sink(), so
 * these files include each other in one direction only. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <systemd/sd-event.h>

#include "gateway/alert.h"
#include "gateway/alerts.h"
#include "gateway/config.h"
#include "gateway/devices.h"
#include "sensors/bluez.h"
#include "sensors/gpio.h"
#include "sensors/reading.h"
#include "uplink/outbox.h"

typedef struct Ingest Ingest;

/* e, c and o are borrowed: the loop and the outbox must outlive the Ingest, and c stays valid until
 * the next ingest_reload() or ingest_free(). Nothing runs yet, but ingest_queue() works at once (the
 * Manager queues what the store says at open, and the stores' alerts, before the sources start).
 * The caller owns *ret and frees it with ingest_free(). */
int ingest_new(sd_event *e, const Config *c, Outbox *o, Ingest **ret);
/* Stops the sources, then frees the Engine and with it the rules (their state is not written: see
 * ingest_shutdown()). Takes NULL; returns NULL. */
Ingest *ingest_free(Ingest *ing);

/* Starts the clock watch, the rules (resuming the state the last run saved in alerts), the wired
 * inputs, BLE and the simulated home, in that order. devices and alerts are borrowed and must
 * outlive the Ingest. A wired input or BLE that does not work is logged and shown in status, not an
 * error. 0, or a negative errno (logged). */
int ingest_start(Ingest *ing, Devices *devices, Alerts *alerts);
/* SIGTERM: the simulated home stops, the device counters and the rules' state are written. */
void ingest_shutdown(Ingest *ing);
/* SIGHUP with a new configuration c (borrowed as in ingest_new(); the old one must stay valid during
 * the call). The rules keep their state unless the simulated home starts over; the wired inputs, BLE
 * and the simulated home are set up again only when their sections changed. Logs what it does. */
void ingest_reload(Ingest *ing, const Config *c);

/* Queues one item (body: malloc'd, taken over and freed; NULL after a failed allocation, which is
 * logged) in the outbox's lane. A clock step is told (a clock_step item) before it. A failure is
 * logged and counted by the outbox as dropped. Pauses the simulated home at Speed=max while the
 * backlog is high. */
void ingest_queue(Ingest *ing, Lane lane, char *body, size_t len);
/* An alerts_sink_fn (userdata: the Ingest): queues an alert's JSON (copied) in the alerts lane. */
void ingest_alerts_sink(void *userdata, const Alert *a, const char *json, size_t len);
/* The uplink has had acknowledgements: the simulated home resumes once the backlog is low. */
void ingest_uplink_acked(Ingest *ing);

/* Whether the rules engine runs (it may not after a reload whose settings it could not take). */
bool ingest_rules_running(const Ingest *ing);
/* A nurse's observation rd (sensor "nurse", time now; borrowed for the call): committed to the
 * outbox at once (not after CommitDelayMs, so that an acknowledged observation survives a crash),
 * then scored by the rules. Returns 0 when it is on disk; 1 when it was accepted but the store runs
 * in memory (its disk unusable since start); -ENOSPC refused, nothing kept or scored (the disk is
 * nearly full); -ENOMEM; another negative errno: kept in memory and retried, and scored. Logs each
 * failure once. The rules must run (ingest_rules_running()). */
int ingest_nurse_reading(Ingest *ing, const Reading *rd);
/* A nurse's ACVPU ('A', 'C', 'V', 'P' or 'U'), scored by the rules at the time now. */
void ingest_nurse_consciousness(Ingest *ing, char acvpu);

/* For status: the running sources (borrowed, valid until the next ingest_reload() or ingest_free(); NULL
 * when not set up) and why BLE does not run (NULL when it does, or is not configured). */
Bluez *ingest_bluez(const Ingest *ing);
const char *ingest_bluez_error(const Ingest *ing);
GpioInputs *ingest_gpio(const Ingest *ing);
