/* The Manager owns the event loop and every module. Modules start in a fixed order
 * (store, uplink, sensors) and stop in reverse. */
#pragma once

#include <systemd/sd-event.h>

#include "gateway/config.h"

typedef struct Manager Manager;

/* Takes ownership of config. */
int manager_new(Config *config, Manager **ret);
Manager *manager_free(Manager *m);
int manager_start(Manager *m);
/* Runs the loop until SIGTERM/SIGINT (after a clean shutdown) or a fatal error. Returns the exit code. */
int manager_run(Manager *m);
