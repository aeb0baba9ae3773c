/* The Manager owns the event loop and every module, and wires them together. Modules start in a
 * fixed order (store and alerts, uplink and commands, sensors and rules) and stop in reverse; SIGTERM
 * and SIGINT stop the gateway cleanly, SIGHUP reloads the configuration. What each module does is in
 * its own file: ingest.c, engine.c, alerts.c, status.c, commands.c, uplink/. */
#pragma once

#include <systemd/sd-event.h>

#include "gateway/config.h"

typedef struct Manager Manager;

/* Takes ownership of config (freed here also on failure). The caller owns *ret and frees it with
 * manager_free(). */
int manager_new(Config *config, Manager **ret);
/* Takes NULL, and a Manager whose start failed half-way; returns NULL. */
Manager *manager_free(Manager *m);
/* Sets up every module and starts them. 0, or a negative errno (logged). */
int manager_start(Manager *m);
/* Runs the loop until SIGTERM/SIGINT (after a clean shutdown) or a fatal error. Returns the exit code. */
int manager_run(Manager *m);
