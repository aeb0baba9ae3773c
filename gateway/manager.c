/* The Manager: the lifecycle of the gateway's modules (set up in order, stopped in reverse), the
 * signals (SIGTERM, SIGINT: a clean stop; SIGHUP: reload) and the wiring between the modules. What
 * the modules do is in their own files: ingest.c (the data path), engine.c (running the rules),
 * alerts.c, status.c, commands.c, and uplink/. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>

#include <systemd/sd-daemon.h>

#include "common/log.h"
#include "common/macro.h"
#include "common/time-util.h"
#include "common/timefmt.h"
#include "gateway/alerts.h"
#include "gateway/commands.h"
#include "gateway/devices.h"
#include "gateway/encode.h"
#include "gateway/ingest.h"
#include "gateway/manager.h"
#include "gateway/status.h"
#include "gateway/web-server.h"
#include "uplink/mqtt.h"
#include "uplink/outbox.h"

#define SHUTDOWN_TIMEOUT_USEC (3ULL * 1000 * 1000) /* systemd gives us 5 s; keep a margin */

struct Manager {
        sd_event *event;
        Config *config;
        char *password;

        /* In the order manager_start() makes them; ingest's sources and rules start last, once the
         * device registry is open, and everything stops in reverse. */
        Outbox *outbox;
        Ingest *ingest;     /* the data path: sources, decoding; its Engine runs the rules, clock steps */
        Alerts *alerts;     /* mints alert ids, logs and queues every alert; keeps the rules' state */
        Commands *commands; /* the downlink commands */
        Mqtt *mqtt;
        Devices *devices; /* the device registry (sensors.db) */
        Web *web;         /* the technician's page */

        int lock_fd; /* StateDirectory/lock, flock()ed for our lifetime, or -EBADF */
        sd_event_source *sig_term, *sig_int, *sig_hup, *status_timer;
        uint64_t start_usec; /* CLOCK_MONOTONIC */
        uint64_t last_dropped;
        int64_t last_puback_usec; /* CLOCK_REALTIME of the broker's last acknowledgement, or 0 */
        bool stopping;
};

/* ---- status ---- */

static StatusSources status_sources(Manager *m)
{
        uint64_t now = 0;

        (void)sd_event_now(m->event, CLOCK_MONOTONIC, &now);
        return (StatusSources){.config = m->config,
                               .outbox = m->outbox,
                               .mqtt = m->mqtt,
                               .devices = m->devices,
                               .bluez = m->ingest ? ingest_bluez(m->ingest) : NULL,
                               .bluez_error = m->ingest ? ingest_bluez_error(m->ingest) : NULL,
                               .gpio = m->ingest ? ingest_gpio(m->ingest) : NULL,
                               .web_url = web_url(m->web),
                               .web_error = web_error(m->web),
                               .now_usec = now_realtime(),
                               .uptime_usec = now - m->start_usec};
}

/* The status as it is now (see gateway/status.h). Returns a malloc'd string, or NULL on ENOMEM. */
static char *status_json(Manager *m, const char *state, const char *reason, bool full)
{
        StatusSources s = status_sources(m);
        return status_format(&s, state, reason, full);
}

/* The page's status: MQTT's, with the uplink's connection and last acknowledgement, and the open
 * alerts as the rules last saved them. A new reference, or NULL on ENOMEM. */
static json_t *on_web_status(void *userdata)
{
        Manager *m = userdata;
        StatusSources s = status_sources(m);
        bool connected = m->mqtt && mqtt_connected(m->mqtt);
        s.all_devices = true;
        json_t *j = status_build(&s, connected ? "online" : "offline",
                                 connected ? NULL : "broker unreachable", true),
               *open = json_array(),
               *saved = m->alerts ? json_object_get(alerts_loaded_state(m->alerts), "open") : NULL, *v;
        char buf[RFC3339_MAX];
        size_t i;
        int r = 0;

        if (!j || !open) {
                json_decref(j);
                json_decref(open);
                return NULL;
        }
        r |= json_object_set_new(j, "open_alerts", open);
        json_array_foreach(saved, i, v)
        {
                json_t *a = json_deep_copy(v);
                json_int_t raised = json_integer_value(json_object_get(v, "raised"));
                if (!a || json_array_append_new(open, a) < 0)
                        r = -1;
                else if (raised)
                        r |= json_object_set_new(a, "raised", json_string(format_rfc3339(buf, raised)));
        }
        r |= json_object_set_new(j, "uplink",
                                 json_pack("{s:b, s:o}", "connected", connected, "last_puback",
                                           m->last_puback_usec
                                               ? json_string(format_rfc3339(buf, m->last_puback_usec))
                                               : json_null()));
        if (r < 0) {
                json_decref(j);
                return NULL;
        }
        return j;
}

static uint64_t on_web_last_alert_seq(void *userdata)
{
        Manager *m = userdata;
        return outbox_last_alert_seq(m->outbox);
}

/* ---- uplink ---- */

static void on_mqtt_log(void *userdata, int priority, const char *message)
{
        log_full(priority, "%s", message);
}

static void on_mqtt_state(void *userdata, bool connected)
{
        Manager *m = userdata;
        (void)sd_notifyf(false, "STATUS=%s, backlog %llu",
                         connected ? "Connected to broker" : "Broker unreachable",
                         (unsigned long long)outbox_backlog_total(m->outbox));
        web_status_changed(m->web);
}

static char *on_mqtt_status(void *userdata, bool online)
{
        Manager *m = userdata;
        if (!online) /* shutdown: acknowledged rows leave the store first, so the backlog is what stays */
                (void)outbox_commit(m->outbox);
        return status_json(m, online ? "online" : "offline", online ? NULL : "shutdown", true);
}

static void on_mqtt_acked(void *userdata, Lane lane, const uint64_t *seqs, size_t n)
{
        Manager *m = userdata;
        m->last_puback_usec = now_realtime();
        if (m->ingest)
                ingest_uplink_acked(m->ingest);
        web_uplink_acked(m->web, lane, seqs, n); /* a test alarm from the page waits for its seq */
        web_status_changed(m->web);
}

static void on_mqtt_stopped(void *userdata)
{
        Manager *m = userdata;
        log_info("Uplink stopped, exiting.");
        sd_event_exit(m->event, 0);
}

/* cmd/<name>: carried out by gateway/commands.c, answered on reply/<name>. */
static void on_mqtt_command(void *userdata, const char *name, const void *payload, size_t len)
{
        Manager *m = userdata;
        _cleanup_free_ char *reply = NULL;

        if (commands_dispatch(m->commands, name, payload, len, &reply) >= 0)
                (void)mqtt_reply(m->mqtt, name, reply);
}

static void on_command_status(void *userdata)
{
        Manager *m = userdata;
        (void)mqtt_publish_status(m->mqtt);
}

/* ---- set-up ---- */

static MqttOptions mqtt_options(Manager *m, char *will)
{
        const Config *c = m->config;
        return (MqttOptions){.gateway_id = c->gateway_id,
                             .host = c->broker_host,
                             .port = c->broker_port,
                             .tls = c->broker_tls,
                             .ca_file = c->ca_file,
                             .cert_file = c->cert_file,
                             .key_file = c->key_file,
                             .username = c->username,
                             .password = m->password,
                             .keepalive_sec = c->keepalive_sec,
                             .max_inflight = c->max_inflight,
                             .batch_max = c->batch_max,
                             .will_payload = will};
}

static OutboxOptions outbox_options(const Config *c)
{
        return (OutboxOptions){.max_size = c->store_max_size, .commit_delay_usec = c->commit_delay_usec};
}

static int read_password(Manager *m)
{
        char *pw = NULL;
        int r = config_read_password(m->config, &pw);
        if (r < 0)
                return log_error_errno(r, "Failed to read PasswordFile=%s: %m", m->config->password_file);
        free(m->password);
        m->password = pw;
        return 0;
}

static void publish_status_if_changed(Manager *m)
{
        uint64_t d = outbox_dropped(m->outbox);
        if (d != m->last_dropped) {
                log_warning(
                    "The store dropped %llu items so far: to stay within MaxSize=%llu or the free disk "
                    "space, or while it could not be written (see status.store).",
                    (unsigned long long)d, (unsigned long long)m->config->store_max_size);
                m->last_dropped = d;
        }
        (void)mqtt_publish_status(m->mqtt);
}

static void on_outbox_log(void *userdata, int priority, const char *message)
{
        log_full(priority, "%s", message);
}

static int on_status_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
        Manager *m = userdata;
        publish_status_if_changed(m);
        (void)sd_event_source_set_time_relative(s, m->config->status_interval_usec);
        (void)sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
        return 0;
}

static void on_outbox_committed(Outbox *o, void *userdata)
{
        Manager *m = userdata;
        if (!m->mqtt) /* a commit while the store is set up, before the uplink exists */
                return;
        if (outbox_dropped(o) != m->last_dropped)
                publish_status_if_changed(m);
        mqtt_kick(m->mqtt);
        web_status_changed(m->web); /* the backlog moved: open pages are told */
}

static int on_sigterm(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata)
{
        Manager *m = userdata;
        int r;

        if (m->stopping)
                return 0;
        m->stopping = true;
        log_info("Received %s, shutting down.", strsignal((int)si->ssi_signo));
        (void)sd_notify(false, "STOPPING=1");
        ingest_shutdown(m->ingest); /* the simulation stops; counters and the rules' state written */
        r = outbox_commit(m->outbox);
        if (r < 0 && outbox_pending(m->outbox) > 0)
                log_error_errno(
                    r,
                    "Failed to commit the outbox at shutdown, %llu items in memory (%llu alerts, "
                    "still sent until the uplink stops); what cannot be stored is counted as dropped: %s",
                    (unsigned long long)outbox_pending(m->outbox),
                    (unsigned long long)outbox_pending_alerts(m->outbox), outbox_last_error(m->outbox));
        r = mqtt_shutdown(m->mqtt, SHUTDOWN_TIMEOUT_USEC);
        if (r < 0)
                sd_event_exit(m->event, 0);
        return 0;
}

static int on_sighup(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata)
{
        Manager *m = userdata;
        _cleanup_free_ char *error = NULL, *will = NULL;
        Config *n = NULL, *old;
        MqttOptions mo;
        int r;

        (void)sd_notify(false, "RELOADING=1");
        log_info("Reloading configuration from %s.", m->config->path);
        r = config_load(m->config->path, &n, &error);
        if (r < 0) {
                log_error("Configuration not reloaded, keeping the running one: %s", error ?: strerror(-r));
                goto done;
        }
        if (!streq(n->gateway_id, m->config->gateway_id) ||
            !streq(n->state_directory, m->config->state_directory)) {
                log_warning("Id= and StateDirectory= take effect only after a restart; keeping %s in %s.",
                            m->config->gateway_id, m->config->state_directory);
                free(n->gateway_id);
                free(n->state_directory);
                n->gateway_id = strdup(m->config->gateway_id);
                n->state_directory = strdup(m->config->state_directory);
                if (!n->gateway_id || !n->state_directory) {
                        config_free(n);
                        log_oom();
                        goto done;
                }
        }
        old = m->config;
        m->config = n;
        if (read_password(m) < 0)
                log_warning("Keeping the broker password in use.");
        outbox_set_options(m->outbox, &(OutboxOptions){.max_size = n->store_max_size,
                                                       .commit_delay_usec = n->commit_delay_usec});
        will = status_json(m, "offline", "connection lost", false);
        mo = mqtt_options(m, will);
        r = mqtt_reconfigure(m->mqtt, &mo);
        if (r < 0)
                log_error_errno(r, "Failed to apply the new broker settings: %m");
        /* The rules keep their state; changed inputs, sensors and the simulation are set up again. */
        ingest_reload(m->ingest, n);
        if (m->web)
                web_reload(m->web, n);
        config_free(old);
        log_info("Configuration reloaded; nothing buffered was lost (backlog %llu).",
                 (unsigned long long)(outbox_backlog_total(m->outbox) + outbox_pending(m->outbox)));
done:
        (void)sd_notify(false, "READY=1");
        return 0;
}

int manager_new(Config *config, Manager **ret)
{
        Manager *m;
        int r;

        m = calloc(1, sizeof *m);
        if (!m) {
                config_free(config);
                return -ENOMEM;
        }
        m->config = config;
        m->lock_fd = -EBADF;
        r = sd_event_default(&m->event);
        if (r < 0) {
                manager_free(m);
                return r;
        }
        *ret = m;
        return 0;
}

Manager *manager_free(Manager *m)
{
        if (!m)
                return NULL;
        /* Reverse of manager_start(). */
        m->web = web_free(m->web);
        sd_event_source_disable_unref(m->status_timer);
        m->ingest = ingest_free(m->ingest);
        m->commands = commands_free(m->commands);
        m->alerts = alerts_free(m->alerts);
        m->devices = devices_free(m->devices);
        m->mqtt = mqtt_free(m->mqtt);
        m->outbox = outbox_free(m->outbox);
        sd_event_source_disable_unref(m->sig_hup);
        sd_event_source_disable_unref(m->sig_int);
        sd_event_source_disable_unref(m->sig_term);
        sd_event_unref(m->event);
        free(m->password);
        if (m->lock_fd >= 0)
                close(m->lock_fd); /* last: the store is closed */
        config_free(m->config);
        free(m);
        return NULL;
}

/* One gateway per state directory: a second one (a technician running `homecare-gw run` by hand
 * beside the service) would hand out the same sequence numbers and alert ids, and the service drops
 * one of two items with the same seq as a duplicate. The lock lasts as long as the process. A lock
 * file that cannot even be made (a full disk) does not stop the alarm path: said, and run. */
static int lock_state_directory(Manager *m)
{
        _cleanup_free_ char *path = NULL;
        int fd;

        if (asprintf(&path, "%s/lock", m->config->state_directory) < 0)
                return log_oom();
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0) {
                log_warning_errno(errno, "Failed to create %s, running without the state directory lock: %m",
                                  path);
                return 0;
        }
        if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
                int e = errno;
                close(fd);
                if (e == EWOULDBLOCK)
                        return log_error_errno(EBUSY,
                                               "StateDirectory=%s is in use by another homecare-gw; "
                                               "two gateways on one store would reuse sequence numbers. "
                                               "Stop the other one first.",
                                               m->config->state_directory);
                return log_error_errno(e, "Failed to lock %s: %m", path);
        }
        m->lock_fd = fd;
        return 0;
}

static int signals_setup(Manager *m)
{
        sigset_t mask;
        int r;

        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGHUP);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        if ((r = sd_event_add_signal(m->event, &m->sig_term, SIGTERM, on_sigterm, m)) < 0 ||
            (r = sd_event_add_signal(m->event, &m->sig_int, SIGINT, on_sigterm, m)) < 0 ||
            (r = sd_event_add_signal(m->event, &m->sig_hup, SIGHUP, on_sighup, m)) < 0)
                return log_error_errno(r, "Failed to install signal handlers: %m");
        r = sd_event_set_watchdog(m->event, true);
        if (r < 0)
                log_warning_errno(r, "Failed to enable the watchdog, ignoring: %m");
        return 0;
}

/* 1. The store: the outbox, the data path that queues into it, and the alerts. */
static int store_setup(Manager *m, const char *path)
{
        _cleanup_free_ char *error = NULL, *apath = NULL;
        const Config *c = m->config;
        OutboxOptions oo = outbox_options(c);
        uint64_t from, to, floor;
        int r;

        if (mkdir(c->state_directory, 0700) < 0 && errno != EEXIST)
                return log_error_errno(errno, "Failed to create StateDirectory=%s: %m", c->state_directory);
        r = lock_state_directory(m);
        if (r < 0)
                return r;
        r = outbox_open(m->event, path, &oo, &m->outbox, &error);
        if (r < 0)
                return log_error_errno(r, "Failed to open the outbox %s: %s", path, error ?: strerror(-r));
        outbox_set_committed_callback(m->outbox, on_outbox_committed, m);
        outbox_set_log_callback(m->outbox, on_outbox_log, m);
        m->last_dropped = outbox_dropped(m->outbox);
        log_info("Outbox %s: %llu items waiting, last seq %llu, %llu dropped so far.", path,
                 (unsigned long long)outbox_backlog_total(m->outbox),
                 (unsigned long long)outbox_last_seq(m->outbox), (unsigned long long)m->last_dropped);
        r = ingest_new(m->event, m->config, m->outbox, &m->ingest);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the data path: %m");
        if (outbox_skipped_at_open(m->outbox, &from, &to)) {
                size_t len = 0;
                char *body = encode_seq_skipped(now_realtime(), from, to, &len);
                log_notice("The last run did not stop cleanly: seqs %llu-%llu were reserved and carry no "
                           "stored item; a seq_skipped item tells the service.",
                           (unsigned long long)from, (unsigned long long)to);
                ingest_queue(m->ingest, LANE_EVENTS, body, len);
        }
        /* Alert ids: the outbox's next seq is a floor that does not depend on alerts.json. */
        floor = outbox_last_seq(m->outbox);
        if (outbox_skipped_at_open(m->outbox, &from, &to) && to > floor)
                floor = to;
        if (outbox_memory_reason(m->outbox)) {
                /* No store on disk, and alerts.json may not be writable either: two runs in the same
                 * second would count from the same floor. The microseconds of the start set them
                 * apart (ids are opaque to the service; they only must not repeat). */
                uint64_t usec = (uint64_t)now_realtime() % (1000ULL * 1000 * 1000 * 1000);
                if (usec > floor)
                        floor = usec;
        }
        if (asprintf(&apath, "%s/alerts.json", c->state_directory) < 0)
                return log_oom();
        r = alerts_new(&(AlertsOptions){.id_prefix = c->gateway_id,
                                        .path = apath,
                                        .id_floor = floor + 1,
                                        .log = true,
                                        .sink = ingest_alerts_sink,
                                        .userdata = m->ingest},
                       &m->alerts);
        if (r < 0)
                return log_error_errno(r, "Failed to set up alerts: %m");
        return 0;
}

/* 2. The uplink, and the commands that come down it. path: the outbox's, for its alerts. */
static int uplink_setup(Manager *m, const char *path)
{
        _cleanup_free_ char *will = NULL;
        const Config *c = m->config;
        MqttOptions mo;
        int r;

        r = commands_new(&(CommandsOptions){.event = m->event,
                                            .alerts = m->alerts,
                                            .ingest = m->ingest,
                                            .publish_status = on_command_status,
                                            .userdata = m},
                         &m->commands);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the commands: %m");
        r = read_password(m);
        if (r < 0)
                return r;
        will = status_json(m, "offline", "connection lost", false);
        if (!will)
                return log_oom();
        mo = mqtt_options(m, will);
        r = mqtt_new(m->event, m->outbox, &mo,
                     &(MqttCallbacks){.log = on_mqtt_log,
                                      .state = on_mqtt_state,
                                      .command = on_mqtt_command,
                                      .status = on_mqtt_status,
                                      .acked = on_mqtt_acked,
                                      .stopped = on_mqtt_stopped,
                                      .userdata = m},
                     &m->mqtt);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the uplink: %m");
        if (outbox_replaced(m->outbox))
                (void)alerts_raise_store_replaced(m->alerts, c->patient_id, path, outbox_replaced(m->outbox),
                                                  now_realtime());
        if (outbox_memory_reason(m->outbox))
                (void)alerts_raise_store_unavailable(m->alerts, c->patient_id, path,
                                                     outbox_memory_reason(m->outbox), now_realtime());
        r = mqtt_start(m->mqtt);
        if (r < 0)
                return log_error_errno(r, "Failed to start the uplink: %m");
        r = sd_event_add_time_relative(m->event, &m->status_timer, CLOCK_MONOTONIC, c->status_interval_usec,
                                       0, on_status_timer, m);
        if (r < 0)
                return log_error_errno(r, "Failed to arm the status timer: %m");
        return 0;
}

/* 3. Sensors: the device registry, then the sources and the rules. */
static int sensors_setup(Manager *m)
{
        _cleanup_free_ char *path = NULL, *error = NULL;
        const Config *c = m->config;
        int r;

        if (asprintf(&path, "%s/sensors.db", c->state_directory) < 0)
                return log_oom();
        r = devices_new(m->event, path, &m->devices, &error);
        if (r < 0)
                return log_error_errno(r, "Failed to open the sensor store %s: %s", path,
                                       error ?: strerror(-r));
        if (devices_replaced(m->devices))
                (void)alerts_raise_store_replaced(m->alerts, c->patient_id, path,
                                                  devices_replaced(m->devices), now_realtime());
        if (devices_memory_reason(m->devices))
                log_error(
                    "The sensor store %s cannot be opened (%s): BTHome replay counters are kept in memory "
                    "until the next restart.",
                    path, devices_memory_reason(m->devices));
        return ingest_start(m->ingest, m->devices, m->alerts);
}

/* 4. The technician's page: last, so that it shows modules that run. Its failures (a port taken,
 * TLS that cannot be set up) are retried by itself and never stop the gateway. */
static int web_setup(Manager *m)
{
        int r = web_new(&(WebOptions){.event = m->event,
                                      .config = m->config,
                                      .commands = m->commands,
                                      .status = on_web_status,
                                      .last_alert_seq = on_web_last_alert_seq,
                                      .userdata = m},
                        &m->web);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the technician's page: %m");
        return web_start(m->web);
}

int manager_start(Manager *m)
{
        _cleanup_free_ char *path = NULL;
        int r;

        r = signals_setup(m);
        if (r < 0)
                return r;
        (void)sd_event_now(m->event, CLOCK_MONOTONIC, &m->start_usec);
        if (asprintf(&path, "%s/outbox.db", m->config->state_directory) < 0)
                return log_oom();
        r = store_setup(m, path);
        if (r < 0)
                return r;
        r = uplink_setup(m, path);
        if (r < 0)
                return r;
        r = sensors_setup(m);
        if (r < 0)
                return r;
        r = web_setup(m);
        if (r < 0)
                return r;

        (void)sd_notify(false, "READY=1\nSTATUS=Running");
        log_info("homecare-gw %s running as %s, broker %s.", HCGW_VERSION, m->config->gateway_id,
                 m->config->broker);
        return 0;
}

int manager_run(Manager *m)
{
        int r = sd_event_loop(m->event);
        if (r < 0)
                return log_error_errno(r, "Event loop failed: %m");
        return r;
}
