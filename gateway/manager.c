#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>

#include <jansson.h>
#include <systemd/sd-daemon.h>

#include "gateway/alerts.h"
#include "gateway/base.h"
#include "gateway/clock.h"
#include "gateway/command-memo.h"
#include "gateway/command.h"
#include "gateway/devices.h"
#include "gateway/encode.h"
#include "gateway/json-writer.h"
#include "gateway/manager.h"
#include "gateway/ratelimit.h"
#include "gateway/rules.h"
#include "gateway/status.h"
#include "gateway/timefmt.h"
#include "sensors/bluez.h"
#include "sensors/gpio.h"
#include "sensors/sim.h"
#include "uplink/mqtt.h"
#include "uplink/outbox.h"

#define SHUTDOWN_TIMEOUT_USEC (3ULL * 1000 * 1000) /* systemd gives us 5 s; keep a margin */
#define SIM_HIGH_WATER 20000 /* Speed=max pauses the simulation above this backlog ... */
#define SIM_LOW_WATER 5000   /* ... and resumes below this */
/* A technician may press "send test alarm" a few times; a script or a stuck sender must not page the
 * nurses all day: 3 at once, then one a minute. */
#define TEST_ALARM_BURST 3
#define TEST_ALARM_INTERVAL_USEC (60ULL * 1000 * 1000)

struct Manager {
        sd_event *event;
        Config *config;
        char *password;

        Outbox *outbox;
        Mqtt *mqtt;
        Devices *devices;
        Rules *rules;
        Alerts *alerts;               /* mints alert ids, logs and queues every alert; keeps the rules' state */
        sd_event_source *rules_save_timer; /* CLOCK_MONOTONIC: a state change waiting to be written */
        uint64_t rules_saved_gen[_RULES_CHANGED_MAX]; /* the generations in the last write */
        uint64_t rules_saved_usec;    /* CLOCK_MONOTONIC of the last write */
        GpioInputs *gpio;
        Bluez *bluez;
        char *bluez_error;            /* why BLE does not run, for status */
        sd_event_source *rules_timer; /* CLOCK_REALTIME, at the engine's next deadline */
        bool rules_on_data_clock;     /* simulation: the engine runs on the simulated clock */
        bool feeding_sim;             /* the input being handled comes from the simulated home */
        ClockWatch clock;             /* the wall clock against CLOCK_BOOTTIME: steps */
        int clock_change_fd;          /* timerfd cancelled when the clock is set, or -EBADF */
        int lock_fd;                  /* StateDirectory/lock, flock()ed for our lifetime, or -EBADF */
        sd_event_source *clock_change;
        uint64_t clock_from_seq;      /* first seq stamped by the current clock */
        Sim *sim;
        uint64_t sim_items; /* items the simulated home delivered, for [Simulation] Limit= */
        bool sim_done;      /* ... and the limit was reached */
        int32_t utc_offset_sec; /* local time minus UTC at start: device clocks show local time */
        Decoded decoded;    /* scratch for decoding one frame */

        sd_event_source *sig_term, *sig_int, *sig_hup, *status_timer;
        uint64_t start_usec;  /* CLOCK_MONOTONIC */
        uint64_t last_dropped;
        CommandMemo *command_memo; /* answers to recent commands, by request id */
        RateLimit test_alarms;     /* CLOCK_MONOTONIC */
        bool stopping;
};

static int64_t now_realtime(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* The status as it is now (see gateway/status.h). Returns a malloc'd string, or NULL on ENOMEM. */
static char *status_json(Manager *m, const char *state, const char *reason, bool full)
{
        uint64_t now = 0;

        (void)sd_event_now(m->event, CLOCK_MONOTONIC, &now);
        return status_format(&(StatusSources){.config = m->config,
                                              .outbox = m->outbox,
                                              .mqtt = m->mqtt,
                                              .devices = m->devices,
                                              .bluez = m->bluez,
                                              .bluez_error = m->bluez_error,
                                              .gpio = m->gpio,
                                              .now_usec = now_realtime(),
                                              .uptime_usec = now - m->start_usec},
                             state, reason, full);
}

/* ---- sensors -> outbox ---- */

static void clock_check(Manager *m);

static void queue_item(Manager *m, Lane lane, char *body, size_t len)
{
        int r;

        /* A clock step is told before the first item stamped by the new clock. */
        clock_check(m);
        if (!body) {
                log_oom();
                return;
        }
        r = outbox_add(m->outbox, lane, body, len);
        if (r < 0)
                log_error_errno(r, "Failed to queue a %s item, it is counted as dropped: %m", lane_name(lane));
        free(body);
        if (m->sim && !sim_paused(m->sim) && m->config->sim_speed == 0 &&
            outbox_backlog_total(m->outbox) + outbox_pending(m->outbox) > SIM_HIGH_WATER)
                sim_set_paused(m->sim, true);
}

static void rules_arm(Manager *m);

/* When input at data_time happens on the engine's clock: the real clock, or in simulation the data's
 * own. In simulation, input from the real world (a nurse's observation, a wired input, a real sensor
 * beside the simulated home) carries the real clock, months away from the simulated one: it happens
 * at the simulated now, or the engine would take the difference for elapsed time and raise every
 * dose of those months. */
static int64_t rules_time(Manager *m, int64_t data_time)
{
        if (!m->rules_on_data_clock)
                return now_realtime();
        if (m->feeding_sim || !m->sim)
                return data_time;
        return sim_now(m->sim);
}

static void rules_clock(Manager *m, int64_t t)
{
        clock_check(m);
        rules_advance_before(m->rules, t);
}

static void queue_reading(Manager *m, const Reading *r)
{
        size_t len;
        char *body = encode_reading(r, &len);
        queue_item(m, LANE_TELEMETRY, body, len);
        if (m->rules) {
                Reading at = *r;
                rules_clock(m, rules_time(m, r->time_usec));
                if (m->rules_on_data_clock && !m->feeding_sim && m->sim)
                        at.time_usec = sim_now(m->sim);
                rules_reading(m->rules, &at);
                rules_arm(m);
        }
}

static void queue_event(Manager *m, const Event *e)
{
        size_t len;
        char *body = encode_event(e, &len);
        queue_item(m, LANE_EVENTS, body, len);
        if (m->rules) {
                Event at = *e;
                rules_clock(m, rules_time(m, e->time_usec));
                if (m->rules_on_data_clock && !m->feeding_sim && m->sim)
                        at.time_usec = sim_now(m->sim);
                rules_event(m->rules, &at);
                rules_arm(m);
        }
}

/* A frame from a radio device: decoded with its profile, key and state, then queued. */
static void handle_frame(Manager *m, const char *sensor, uint16_t uuid16, const uint8_t *buf, size_t len,
                         const DecodeContext *ctx,
                         bool (*admit)(Manager *m))
{
        Decoded *d = &m->decoded;
        int r = devices_decode(m->devices, sensor, uuid16, buf, len, ctx, d);

        if (r < 0) {
                Device *dev = devices_find(m->devices, sensor);
                /* A device that keeps sending bad frames must not flood the journal. */
                if (!dev || dev->rejected <= 10 || dev->rejected % 1000 == 0)
                        log_warning("Rejected a frame from %s (%llu so far): %s", sensor,
                                    dev ? (unsigned long long)dev->rejected : 1ULL, d->error);
                return;
        }
        for (size_t i = 0; i < d->n_readings && admit(m); i++)
                queue_reading(m, &d->readings[i]);
        for (size_t i = 0; i < d->n_events && admit(m); i++)
                queue_event(m, &d->events[i]);
}

/* ---- wired inputs ---- */

static void on_gpio_event(void *userdata, const Event *e)
{
        Manager *m = userdata;

        /* gpio.c reports each change once: a failed input is retried there with back-off. */
        if (e->kind == EVENT_INPUT_FAILED)
                for (size_t i = 0; m->gpio && i < gpio_inputs_count(m->gpio); i++) {
                        const char *why = gpio_input_error(m->gpio, i);
                        if (!streq(gpio_input_id(m->gpio, i), e->sensor))
                                continue;
                        if (e->value)
                                log_error("Input %s does not work: %s. The rest of the gateway runs; the line is "
                                          "requested again with back-off, and status reports it.",
                                          e->sensor, why ? why : "unknown");
                        else
                                log_notice("Input %s works again.", e->sensor);
                }
        queue_event(m, e);
}

static void on_gpio_reading(void *userdata, const Reading *r)
{
        queue_reading(userdata, r);
}

static int gpio_setup(Manager *m)
{
        const Config *c = m->config;
        GpioInputConfig *cfg;
        SensorSink sink = {.reading = on_gpio_reading, .event = on_gpio_event, .userdata = m};
        int r, failed;

        if (c->n_inputs == 0)
                return 0;
        cfg = calloc(c->n_inputs, sizeof *cfg);
        if (!cfg)
                return log_oom();
        for (size_t i = 0; i < c->n_inputs; i++) {
                const InputConfig *in = &c->inputs[i];
                cfg[i] = (GpioInputConfig){.id = in->id,
                                           .chip = in->chip,
                                           .line = in->gpio_line,
                                           .active_low = in->active_low,
                                           .debounce_ms = in->debounce_ms};
                (void)gpio_kind_from_name(in->kind, &cfg[i].kind); /* validated by the configuration */
        }
        r = gpio_inputs_new(m->event, cfg, c->n_inputs, &sink, &m->gpio);
        free(cfg);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the GPIO inputs: %m");
        failed = gpio_inputs_start(m->gpio); /* each failed input is logged as it is reported */
        if (failed < (int)gpio_inputs_count(m->gpio))
                log_info("%d of %zu GPIO inputs running.", (int)gpio_inputs_count(m->gpio) - failed,
                         gpio_inputs_count(m->gpio));
        return 0;
}

/* ---- BLE sensors ---- */

static bool admit_all(Manager *m)
{
        return true;
}

static void on_ble_frame(void *userdata, const char *sensor, uint16_t uuid16, const uint8_t *buf, size_t len,
                         int64_t time_usec)
{
        Manager *m = userdata;
        DecodeContext ctx = decode_context_now();
        ctx.now_usec = time_usec;
        handle_frame(m, sensor, uuid16, buf, len, &ctx, admit_all);
}

static void on_ble_log(void *userdata, int priority, const char *message)
{
        log_full(priority, "%s", message);
}

static int profile_of_type(const char *type, Profile *ret)
{
        static const struct {
                const char *type;
                Profile p;
        } map[] = {
                {"bthome", PROFILE_BTHOME},           {"heart-rate", PROFILE_HEART_RATE},
                {"blood-pressure", PROFILE_BLOOD_PRESSURE}, {"temperature", PROFILE_TEMPERATURE},
                {"plx", PROFILE_PLX_SPOT},             {"weight", PROFILE_WEIGHT},
                {"glucose", PROFILE_GLUCOSE},
        };
        for (size_t i = 0; i < ELEMENTSOF(map); i++)
                if (streq(map[i].type, type)) {
                        *ret = map[i].p;
                        return 0;
                }
        return -EINVAL;
}

static int ble_setup(Manager *m)
{
        const Config *c = m->config;
        BluezDeviceConfig *cfg;
        SensorSink sink = {.reading = on_gpio_reading, .event = on_gpio_event, .frame = on_ble_frame, .userdata = m};
        size_t n = 0;
        int r;

        if (c->n_sensors == 0)
                return 0;
        cfg = calloc(c->n_sensors, sizeof *cfg);
        if (!cfg)
                return log_oom();
        for (size_t i = 0; i < c->n_sensors; i++) {
                const SensorConfig *sc = &c->sensors[i];
                uint8_t key[16];
                Profile p;
                if (profile_of_type(sc->type, &p) < 0 || parse_mac(sc->address, cfg[n].address) < 0 ||
                    (sc->key && parse_key(sc->key, key) < 0)) {
                        log_error("Sensor %s is misconfigured, ignoring it.", sc->id); /* check-config prevents this */
                        continue;
                }
                r = devices_add(m->devices, sc->id, p, cfg[n].address, sc->key ? key : NULL);
                if (r < 0 && r != -EEXIST) {
                        free(cfg);
                        return log_error_errno(r, "Failed to register sensor %s: %m", sc->id);
                }
                cfg[n].id = sc->id;
                cfg[n].passkey = sc->passkey;
                cfg[n].bond = sc->bond;
                cfg[n].advertises = p == PROFILE_BTHOME;
                if (p == PROFILE_PLX_SPOT) { /* an oximeter may have either or both */
                        cfg[n].measure[0] = profile_uuid16(PROFILE_PLX_SPOT);
                        cfg[n].measure[1] = profile_uuid16(PROFILE_PLX_CONTINUOUS);
                } else if (p != PROFILE_BTHOME)
                        cfg[n].measure[0] = profile_uuid16(p);
                n++;
        }
        r = bluez_new(m->event, c->bt_adapter, cfg, n,
                      &sink, &(BluezCallbacks){.log = on_ble_log, .userdata = m}, &m->bluez);
        free(cfg);
        if (r < 0)
                return log_error_errno(r, "Failed to set up Bluetooth: %m");
        r = bluez_start(m->bluez);
        if (r < 0) {
                /* No system bus: BLE sensors are silent (the rules will say so); the rest runs. */
                log_error_errno(r, "Bluetooth does not work, no system bus: %m. The rest of the gateway runs.");
                free(m->bluez_error);
                (void)!asprintf(&m->bluez_error, "no system bus: %s", strerror(-r));
                m->bluez = bluez_free(m->bluez);
        }
        return 0;
}

/* ---- the simulated home ---- */

static bool sim_admit(Manager *m)
{
        if (m->config->sim_limit && m->sim_items >= m->config->sim_limit) {
                if (m->sim && !m->sim_done) {
                        log_info("Simulation finished after %llu readings and events.",
                                 (unsigned long long)m->sim_items);
                        sim_stop(m->sim);
                        m->sim_done = true;
                }
                return false;
        }
        m->sim_items++;
        return true;
}

static void on_sim_reading(void *userdata, const Reading *r)
{
        Manager *m = userdata;
        m->feeding_sim = true;
        if (sim_admit(m))
                queue_reading(m, r);
        m->feeding_sim = false;
}

static void on_sim_event(void *userdata, const Event *e)
{
        Manager *m = userdata;
        m->feeding_sim = true;
        if (sim_admit(m))
                queue_event(m, e);
        m->feeding_sim = false;
}

static void on_sim_frame(void *userdata, const char *sensor, uint16_t uuid16, const uint8_t *buf, size_t len,
                         int64_t time_usec)
{
        Manager *m = userdata;
        /* Simulated time is the receive time; the simulated clock is "synchronised". */
        DecodeContext ctx = {.now_usec = time_usec, .now_quality = TIME_SYNCED, .utc_offset_sec = m->utc_offset_sec};
        m->feeding_sim = true;
        handle_frame(m, sensor, uuid16, buf, len, &ctx, sim_admit);
        m->feeding_sim = false;
}

/* ---- alerts ---- */

/* Every alert, with its id, from gateway/alerts.c: committed and handed to the uplink at once, ahead
 * of any backlog. */
static void on_alert(void *userdata, const Alert *a, const char *json, size_t len)
{
        Manager *m = userdata;
        if (!m->outbox) {
                log_error("Alert %s %s before the store is open: not sent.", a->id, alert_state_name(a->state));
                return;
        }
        queue_item(m, LANE_ALERTS, strndup(json, len), len);
}

/* ---- rules ---- */

#define RULES_SAVE_MIN_GAP_USEC (1000ULL * 1000)          /* deadlines: at most one write a second */
#define RULES_SAVE_LEARNED_USEC (10ULL * 60 * 1000 * 1000) /* what was learned: within ten minutes */

static uint64_t now_monotonic(Manager *m)
{
        uint64_t t = 0;
        (void)sd_event_now(m->event, CLOCK_MONOTONIC, &t);
        return t;
}

/* For the log: open alerts and doses waiting for their grace period, from an export. */
static size_t export_pending_doses(json_t *j)
{
        size_t pending = 0, i;
        json_t *due;
        json_array_foreach(json_object_get(j, "dues"), i, due)
                pending += !json_is_true(json_object_get(due, "taken")) && !json_is_true(json_object_get(due, "reported"));
        return pending;
}

static void rules_save(Manager *m)
{
        json_t *j;

        for (RulesChange c = 0; c < _RULES_CHANGED_MAX; c++)
                m->rules_saved_gen[c] = rules_state_generation(m->rules, c);
        m->rules_saved_usec = now_monotonic(m);
        if (m->rules_save_timer)
                (void)sd_event_source_set_enabled(m->rules_save_timer, SD_EVENT_OFF);
        j = rules_export(m->rules);
        if (!j || json_object_set_new(j, "clock", json_string(m->rules_on_data_clock ? "simulated" : "real")) < 0) {
                json_decref(j);
                log_oom();
                return;
        }
        if (alerts_save_state(m->alerts, j) >= 0)
                log_debug("Saved the rules' state: %zu open alerts, %zu doses pending.",
                          json_array_size(json_object_get(j, "open")), export_pending_doses(j));
        json_decref(j);
}

static int on_rules_save_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
        rules_save(userdata);
        return 0;
}

/* Writes the rules' durable state when it changed: an alert at once (it is as important as the
 * alert itself), a deadline within a second, what was learned within minutes; never per reading. */
static void rules_save_maybe(Manager *m)
{
        uint64_t now, at;
        int r;

        if (rules_state_generation(m->rules, RULES_CHANGED_ALERTS) != m->rules_saved_gen[RULES_CHANGED_ALERTS])
                return rules_save(m);
        now = now_monotonic(m);
        if (rules_state_generation(m->rules, RULES_CHANGED_DEADLINES) != m->rules_saved_gen[RULES_CHANGED_DEADLINES]) {
                if (now >= m->rules_saved_usec + RULES_SAVE_MIN_GAP_USEC)
                        return rules_save(m);
                at = m->rules_saved_usec + RULES_SAVE_MIN_GAP_USEC;
        } else if (rules_state_generation(m->rules, RULES_CHANGED_LEARNED) != m->rules_saved_gen[RULES_CHANGED_LEARNED])
                at = m->rules_saved_usec + RULES_SAVE_LEARNED_USEC;
        else
                return;
        if (m->rules_save_timer) {
                int enabled = SD_EVENT_OFF;
                uint64_t armed = UINT64_MAX;
                (void)sd_event_source_get_enabled(m->rules_save_timer, &enabled);
                (void)sd_event_source_get_time(m->rules_save_timer, &armed);
                if (enabled != SD_EVENT_OFF && armed <= at)
                        return;
                r = sd_event_source_set_time(m->rules_save_timer, at);
                if (r >= 0)
                        r = sd_event_source_set_enabled(m->rules_save_timer, SD_EVENT_ONESHOT);
        } else
                r = sd_event_add_time(m->event, &m->rules_save_timer, CLOCK_MONOTONIC, at, 0, on_rules_save_timer, m);
        if (r < 0) {
                log_warning_errno(r, "Failed to arm the rules' save timer, writing now: %m");
                rules_save(m);
        }
}

static int on_rules_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
        Manager *m = userdata;
        clock_check(m);
        rules_advance(m->rules, now_realtime());
        rules_arm(m);
        return 0;
}

static void rules_arm(Manager *m)
{
        int64_t d;
        int r;

        if (!m->rules)
                return;
        rules_save_maybe(m);
        if (m->rules_on_data_clock)
                return;
        d = rules_next_deadline(m->rules);
        if (d == INT64_MAX) {
                if (m->rules_timer)
                        (void)sd_event_source_set_enabled(m->rules_timer, SD_EVENT_OFF);
                return;
        }
        if (d < 0)
                d = 0;
        if (m->rules_timer) {
                r = sd_event_source_set_time(m->rules_timer, (uint64_t)d);
                if (r >= 0)
                        r = sd_event_source_set_enabled(m->rules_timer, SD_EVENT_ONESHOT);
        } else
                /* A second of slack: the rules count minutes. */
                r = sd_event_add_time(m->event, &m->rules_timer, CLOCK_REALTIME, (uint64_t)d, 1000000, on_rules_timer, m);
        if (r < 0)
                log_error_errno(r, "Failed to arm the rules timer, time-driven alerts may be late: %m");
}

/* A fresh engine. resume: take over the state the last run saved (a restart or a crash), if it ran
 * on the same clock: the simulated home starts again from Start= each time, so its state is not
 * resumed. */
static int rules_setup(Manager *m, bool resume)
{
        json_t *state = resume ? alerts_loaded_state(m->alerts) : NULL;
        int r;

        m->rules = rules_free(m->rules);
        m->rules_on_data_clock = m->config->sim_enabled;
        r = rules_new(m->config,
                      m->rules_on_data_clock && m->config->sim_start_usec ? m->config->sim_start_usec : now_realtime(),
                      alerts_rules_sink, m->alerts, &m->rules);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the rules: %m");
        if (state && !m->rules_on_data_clock &&
            streq_ptr(json_string_value(json_object_get(state, "clock")), "real")) {
                r = rules_import(m->rules, state);
                if (r < 0)
                        log_error_errno(r, "Failed to resume the rules' saved state, starting afresh: %m");
                else
                        log_info("Resumed the rules' state: %zu open alerts.", rules_open_count(m->rules));
        }
        if (m->config->sim_enabled) {
                size_t n;
                const SimRole *roles = sim_roles(&n);
                for (size_t i = 0; i < n; i++)
                        (void)rules_add_sensor(m->rules, roles[i].id, roles[i].role, 0, roles[i].is_input);
        }
        /* Deadlines that passed while the gateway was down fire now, late but raised. */
        if (!m->rules_on_data_clock)
                rules_advance(m->rules, now_realtime());
        rules_arm(m);
        return 0;
}

/* SIGHUP: the new settings, the same state. Only when the simulated home starts over (or the
 * engine's clock changes between simulated and real) does the engine start afresh; its open alerts
 * are cleared first, so that none stays open at the service for ever. */
static int rules_reload(Manager *m, bool sim_changed)
{
        int r;

        if (!m->rules)
                return rules_setup(m, false);
        if (sim_changed || m->rules_on_data_clock != m->config->sim_enabled) {
                rules_clear_all(m->rules, "the simulated home started again");
                return rules_setup(m, false);
        }
        r = rules_reconfigure(m->rules, m->config);
        if (r < 0)
                log_error_errno(r, "Failed to apply the new rules settings, keeping the old sensor list: %m");
        else {
                json_t *j = rules_export(m->rules);
                if (j)
                        log_info("The rules keep their state: %zu open alerts, %zu doses pending.",
                                 json_array_size(json_object_get(j, "open")), export_pending_doses(j));
                json_decref(j);
        }
        rules_arm(m);
        return 0;
}

/* ---- clock steps ---- */

/* The next seq the outbox will give: items are numbered in the order they are queued. */
static uint64_t next_seq(Manager *m)
{
        return outbox_last_seq(m->outbox) + outbox_pending(m->outbox) + 1;
}

/* Called before every use of the engine's clock and when the kernel says the clock was set, so a
 * step is never taken for elapsed time, whichever source the loop dispatches first after it. */
static void clock_check(Manager *m)
{
        char before[RFC3339_MAX], after[RFC3339_MAX];
        int64_t old_offset = m->clock.offset, boot = clock_boottime_usec(), real = now_realtime(), delta;
        uint64_t seq;
        size_t len;
        char *body;

        delta = clock_watch_update(&m->clock, real, boot);
        if (delta == 0)
                return;
        log_notice("The system clock was stepped by %+.3f s (from %s to %s); the rules keep the time really "
                   "elapsed, and a clock_step item tells the service which items carry the old clock.",
                   (double)delta / 1e6, format_rfc3339(before, real - delta), format_rfc3339(after, real));
        if (m->rules && !m->rules_on_data_clock) {
                /* What really came due before the step (CLOCK_BOOTTIME says how much time passed),
                 * on the clock the engine knew; then the same moment on the new clock. */
                rules_advance(m->rules, boot + old_offset);
                rules_clock_step(m->rules, delta);
        }
        if (!m->outbox)
                return;
        seq = next_seq(m);
        body = encode_clock_step(delta, real, m->clock_from_seq, seq - 1, &len);
        queue_item(m, LANE_EVENTS, body, len);
        m->clock_from_seq = seq + 1;
}

static int on_clock_change(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
        Manager *m = userdata;
        uint64_t expirations;
        int r;

        /* ECANCELED is the news; the timer must be armed again to hear of the next change. */
        if (read(fd, &expirations, sizeof expirations) < 0 && errno != ECANCELED && errno != EAGAIN)
                log_warning_errno(errno, "Failed to read the clock change timer, ignoring: %m");
        r = clock_change_fd_rearm(fd);
        if (r < 0)
                log_warning_errno(r, "Failed to re-arm the clock change timer, steps are noticed at the next "
                                     "sensor input or deadline: %m");
        clock_check(m);
        if (m->rules && !m->rules_on_data_clock) {
                rules_advance(m->rules, now_realtime());
                rules_arm(m);
        }
        return 0;
}

static int clock_setup(Manager *m)
{
        int r;

        (void)clock_watch_update(&m->clock, now_realtime(), clock_boottime_usec());
        m->clock_from_seq = next_seq(m);
        r = clock_change_fd_new();
        if (r < 0) {
                /* Not fatal: clock_check() runs before every item and every use of the rules' clock. */
                log_warning_errno(r, "Failed to watch for clock changes, ignoring: %m");
                return 0;
        }
        m->clock_change_fd = r;
        r = sd_event_add_io(m->event, &m->clock_change, m->clock_change_fd, EPOLLIN, on_clock_change, m);
        if (r < 0)
                log_warning_errno(r, "Failed to watch for clock changes, ignoring: %m");
        return 0;
}

/* ---- uplink ---- */

static void on_mqtt_log(void *userdata, int priority, const char *message)
{
        log_full(priority, "%s", message);
}

static void on_mqtt_state(void *userdata, bool connected)
{
        Manager *m = userdata;
        (void)sd_notifyf(false, "STATUS=%s, backlog %llu", connected ? "Connected to broker" : "Broker unreachable",
                         (unsigned long long)outbox_backlog_total(m->outbox));
}

static char *on_mqtt_status(void *userdata, bool online)
{
        Manager *m = userdata;
        if (!online) /* shutdown: acknowledged rows leave the store first, so the backlog is what stays */
                (void)outbox_commit(m->outbox);
        return status_json(m, online ? "online" : "offline", online ? NULL : "shutdown", true);
}

static void on_mqtt_acked(void *userdata, size_t n)
{
        Manager *m = userdata;
        if (m->sim && sim_paused(m->sim) && outbox_backlog_total(m->outbox) < SIM_LOW_WATER)
                sim_set_paused(m->sim, false);
}

static void on_mqtt_stopped(void *userdata)
{
        Manager *m = userdata;
        log_info("Uplink stopped, exiting.");
        sd_event_exit(m->event, 0);
}

/* Answers a command on reply/<name>. A command that was carried out (or whose effect is under way)
 * is remembered by request id, so that the same request arriving again is answered alike without
 * being carried out twice; one refused without effect (rate-limited) may be sent again. */
static void reply_full(Manager *m, bool remember, const char *name, bool ok, const char *request_id,
                       const char *error, const char *alert_id)
{
        JsonWriter w;
        char *s;

        json_writer_init(&w);
        jw_object_begin(&w);
        jw_key(&w, "ok");
        jw_bool(&w, ok);
        if (request_id && request_id[0]) {
                jw_key(&w, "request_id");
                jw_string(&w, request_id);
        }
        if (error) {
                jw_key(&w, "error");
                jw_string(&w, error);
        }
        if (alert_id) {
                jw_key(&w, "alert_id");
                jw_string(&w, alert_id);
        }
        jw_object_end(&w);
        s = json_writer_steal(&w, NULL);
        if (!s) {
                log_oom();
                return;
        }
        if (remember && command_memo_put(m->command_memo, name, request_id, s) < 0)
                log_oom();
        (void)mqtt_reply(m->mqtt, name, s);
        free(s);
}

static void reply(Manager *m, const char *name, bool ok, const char *request_id, const char *error,
                  const char *alert_id)
{
        reply_full(m, true, name, ok, request_id, error, alert_id);
}

/* The "request_id" string of a JSON payload that command_parse() refused, if it has one that fits. */
static bool request_id_of(const void *payload, size_t len, char *buf, size_t size)
{
        json_t *j = len <= COMMAND_PAYLOAD_MAX ? json_loadb(payload, len, JSON_REJECT_DUPLICATES, NULL) : NULL;
        const char *id = json_string_value(json_object_get(j, "request_id"));
        bool ok = id && strlen(id) < size;
        if (ok)
                memcpy(buf, id, strlen(id) + 1);
        json_decref(j);
        return ok;
}

static void on_mqtt_command(void *userdata, const char *name, const void *payload, size_t len)
{
        Manager *m = userdata;
        const char *error = NULL, *answer;
        Command c;
        int r;

        r = command_parse(name, payload, len, &c, &error);
        if (r < 0) {
                char rid[sizeof c.request_id];
                log_warning("Refused command '%s': %s", name, error);
                /* A refusal carries the request id when the payload has one, so that the sender can
                 * tell which request it answers; it is not remembered (the request may be sent again,
                 * mended). */
                reply_full(m, false, name, false, request_id_of(payload, len, rid, sizeof rid) ? rid : NULL, error,
                           NULL);
                return;
        }
        answer = command_memo_get(m->command_memo, name, c.request_id);
        if (answer) {
                log_info("Command '%s' with request id %s arrived again, answered as before.", name, c.request_id);
                (void)mqtt_reply(m->mqtt, name, answer);
                return;
        }
        switch (c.kind) {
        case COMMAND_TEST_ALARM: {
                uint64_t now_mono = 0, wait_usec = 0;
                (void)sd_event_now(m->event, CLOCK_MONOTONIC, &now_mono);
                if (!ratelimit_take(&m->test_alarms, now_mono, &wait_usec)) {
                        _cleanup_free_ char *why = NULL;
                        log_warning("Test alarm refused (request %s): rate-limited, next in %llu s.",
                                    c.request_id[0] ? c.request_id : "-",
                                    (unsigned long long)(wait_usec / 1000000 + 1));
                        (void)!asprintf(&why, "test alarms are rate-limited: try again in %llu s",
                                        (unsigned long long)(wait_usec / 1000000 + 1));
                        reply_full(m, false, name, false, c.request_id, why ?: "test alarms are rate-limited", NULL);
                        break;
                }
                char alert_id[ALERT_ID_MAX];
                log_notice("Test alarm requested (request %s)", c.request_id[0] ? c.request_id : "-");
                r = alerts_raise_test_alarm(m->alerts, c.message, now_realtime(), alert_id);
                reply(m, name, r >= 0, c.request_id, r < 0 ? "could not store the alert" : NULL, alert_id);
                break;
        }
        case COMMAND_STATUS:
                (void)mqtt_publish_status(m->mqtt);
                reply(m, name, true, c.request_id, NULL, NULL);
                break;
        case COMMAND_OBSERVATION: {
                int64_t now = now_realtime();
                if (!m->rules) {
                        reply(m, name, false, c.request_id, "the rules are not running", NULL);
                        break;
                }
                rules_clock(m, rules_time(m, now));
                if (c.acvpu)
                        (void)rules_nurse_consciousness(m->rules, c.acvpu);
                else {
                        Metric metric;
                        Reading rd = {.value = c.value, .time_usec = now,
                                      .time_quality = decode_context_now().now_quality};
                        size_t body_len;
                        char *body;
                        (void)metric_from_name(c.metric, &metric);
                        rd.metric = metric;
                        rd.unit = metric_default_unit(metric);
                        if (c.unit[0] && !streq(c.unit, rd.unit)) {
                                reply(m, name, false, c.request_id, "give the value in the metric's usual unit", NULL);
                                break;
                        }
                        snprintf(rd.sensor, sizeof rd.sensor, "nurse");
                        /* Stored and sent like any reading, and scored by the rules. The nurse is told
                         * "ok" only once it is on disk: committed now, not after CommitDelayMs, so an
                         * acknowledged observation survives a crash or a power cut. */
                        body = encode_reading(&rd, &body_len);
                        if (!body) {
                                log_oom();
                                reply_full(m, false, name, false, c.request_id, "out of memory", NULL);
                                break;
                        }
                        r = outbox_add_sync(m->outbox, LANE_TELEMETRY, body, body_len, NULL);
                        free(body);
                        if (r == -ENOSPC) { /* refused, not kept: the nurse may send it again later */
                                log_error("Refused a nurse's observation: the state directory is nearly full.");
                                reply_full(m, false, name, false, c.request_id,
                                           "refused: the gateway's disk is full, send it again later", NULL);
                                break;
                        }
                        rules_nurse_reading(m->rules, metric, c.value, rd.unit);
                        if (r >= 0 && outbox_memory_reason(m->outbox)) {
                                rules_arm(m);
                                reply(m, name, false, c.request_id,
                                      "kept in memory only (the gateway's disk cannot be used): it is sent, but lost if "
                                      "the gateway stops first; do not send it again",
                                      NULL);
                                break;
                        }
                        if (r < 0) {
                                log_error_errno(r, "Failed to store a nurse's observation, it is kept in memory and "
                                                   "retried: %s", outbox_last_error(m->outbox) ?: strerror(-r));
                                rules_arm(m);
                                reply(m, name, false, c.request_id,
                                      "not stored yet (the gateway's disk): kept in memory and retried, do not send again",
                                      NULL);
                                break;
                        }
                }
                rules_arm(m);
                reply(m, name, true, c.request_id, NULL, NULL);
                break;
        }
        case _COMMAND_KIND_MAX:
                break;
        }
}

static int sim_setup(Manager *m)
{
        SimOptions o = {.speed = m->config->sim_speed,
                        .seed = m->config->sim_seed,
                        .start_usec = m->config->sim_start_usec,
                        .utc_offset_sec = m->utc_offset_sec};
        SensorSink sink = {.reading = on_sim_reading, .event = on_sim_event, .frame = on_sim_frame, .userdata = m};
        const SimDevice *devs;
        size_t n;
        int r;

        m->sim = sim_free(m->sim);
        m->sim_items = 0;
        m->sim_done = false;
        if (!m->config->sim_enabled)
                return 0;
        devs = sim_devices(&n);
        for (size_t i = 0; i < n; i++) {
                uint8_t addr[6], key[16];
                if (devices_find(m->devices, devs[i].id))
                        continue;
                if (parse_mac(devs[i].address, addr) < 0 || (devs[i].key && parse_key(devs[i].key, key) < 0))
                        return log_error_errno(EINVAL, "Simulated device %s is misdefined", devs[i].id);
                r = devices_add(m->devices, devs[i].id, devs[i].profile, addr, devs[i].key ? key : NULL);
                if (r < 0)
                        return log_error_errno(r, "Failed to register simulated device %s: %m", devs[i].id);
        }
        r = sim_new(m->event, &o, &sink, &m->sim);
        if (r < 0)
                return log_error_errno(r, "Failed to create the simulated home: %m");
        r = sim_start(m->sim);
        if (r < 0)
                return log_error_errno(r, "Failed to start the simulated home: %m");
        if (o.speed > 0)
                log_info("Simulated home running at %g× real time.", o.speed);
        else
                log_info("Simulated home running as fast as the uplink takes it.");
        return 0;
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
                log_warning("The store dropped %llu items so far to stay within MaxSize=%llu or the free disk space.",
                            (unsigned long long)d,
                            (unsigned long long)m->config->store_max_size);
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
        m->sim = sim_free(m->sim);
        (void)devices_flush(m->devices);
        if (m->rules)
                rules_save(m);
        r = outbox_commit(m->outbox);
        if (r < 0 && outbox_pending(m->outbox) > 0)
                log_error_errno(r, "Failed to commit the outbox at shutdown, %llu items in memory (%llu alerts, "
                                "still sent until the uplink stops); what cannot be stored is counted as dropped: %s",
                                (unsigned long long)outbox_pending(m->outbox),
                                (unsigned long long)outbox_pending_alerts(m->outbox), outbox_last_error(m->outbox));
        r = mqtt_shutdown(m->mqtt, SHUTDOWN_TIMEOUT_USEC);
        if (r < 0)
                sd_event_exit(m->event, 0);
        return 0;
}

/* What the GPIO layer was set up from: a change means its lines are requested again. Role= is the
 * rules' business and does not touch the lines. */
static bool inputs_equal(const Config *a, const Config *b)
{
        if (a->n_inputs != b->n_inputs)
                return false;
        for (size_t i = 0; i < a->n_inputs; i++) {
                const InputConfig *x = &a->inputs[i], *y = &b->inputs[i];
                if (!streq(x->id, y->id) || !streq(x->chip, y->chip) || !streq(x->gpio_line, y->gpio_line) ||
                    !streq(x->kind, y->kind) || x->active_low != y->active_low || x->debounce_ms != y->debounce_ms)
                        return false;
        }
        return true;
}

/* What the BLE client was set up from. Role= and ExpectedIntervalMinutes= are the rules'. */
static bool sensors_equal(const Config *a, const Config *b)
{
        if (a->n_sensors != b->n_sensors || !streq_ptr(a->bt_adapter, b->bt_adapter))
                return false;
        for (size_t i = 0; i < a->n_sensors; i++) {
                const SensorConfig *x = &a->sensors[i], *y = &b->sensors[i];
                if (!streq(x->id, y->id) || !streq(x->type, y->type) || !streq(x->address, y->address) ||
                    !streq_ptr(x->key, y->key) || x->passkey != y->passkey || x->bond != y->bond)
                        return false;
        }
        return true;
}

static int on_sighup(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata)
{
        Manager *m = userdata;
        _cleanup_free_ char *error = NULL, *will = NULL;
        Config *n = NULL, *old;
        MqttOptions mo;
        bool sim_changed;
        int r;

        (void)sd_notify(false, "RELOADING=1");
        log_info("Reloading configuration from %s.", m->config->path);
        r = config_load(m->config->path, &n, &error);
        if (r < 0) {
                log_error("Configuration not reloaded, keeping the running one: %s", error ?: strerror(-r));
                goto done;
        }
        if (!streq(n->gateway_id, m->config->gateway_id) || !streq(n->state_directory, m->config->state_directory)) {
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
        sim_changed = n->sim_enabled != m->config->sim_enabled || n->sim_speed != m->config->sim_speed ||
                      n->sim_seed != m->config->sim_seed || n->sim_limit != m->config->sim_limit ||
                      n->sim_start_usec != m->config->sim_start_usec;
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
        /* The rules keep their open alerts, pending deadlines and what they learned. */
        (void)rules_reload(m, sim_changed);
        /* Changed wired inputs and radio sensors are set up again, after the rules so that these hear
         * the inputs' state as read now. Unchanged ones keep running untouched (no line is released, no
         * link dropped). */
        if (!inputs_equal(old, n)) {
                log_info("[Input] sections changed: setting up the wired inputs again.");
                m->gpio = gpio_inputs_free(m->gpio);
                (void)gpio_setup(m);
        }
        if (!sensors_equal(old, n)) {
                log_info("[Sensor] or [Bluetooth] sections changed: setting up the radio sensors again.");
                m->bluez = bluez_free(m->bluez);
                free(m->bluez_error);
                m->bluez_error = NULL;
                (void)ble_setup(m);
        }
        if (sim_changed)
                (void)sim_setup(m);
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
        m->clock_change_fd = -EBADF;
        m->lock_fd = -EBADF;
        m->test_alarms = (RateLimit){.interval_usec = TEST_ALARM_INTERVAL_USEC, .burst = TEST_ALARM_BURST};
        r = command_memo_new(&m->command_memo);
        if (r < 0) {
                manager_free(m);
                return r;
        }
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
        sd_event_source_disable_unref(m->status_timer);
        m->sim = sim_free(m->sim);
        m->gpio = gpio_inputs_free(m->gpio);
        m->bluez = bluez_free(m->bluez);
        free(m->bluez_error);
        sd_event_source_disable_unref(m->rules_timer);
        sd_event_source_disable_unref(m->rules_save_timer);
        m->rules = rules_free(m->rules);
        sd_event_source_disable_unref(m->clock_change);
        if (m->clock_change_fd >= 0)
                close(m->clock_change_fd);
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
        command_memo_free(m->command_memo);
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
                log_warning_errno(errno, "Failed to create %s, running without the state directory lock: %m", path);
                return 0;
        }
        if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
                int e = errno;
                close(fd);
                if (e == EWOULDBLOCK)
                        return log_error_errno(EBUSY, "StateDirectory=%s is in use by another homecare-gw; "
                                                      "two gateways on one store would reuse sequence numbers. "
                                                      "Stop the other one first.",
                                               m->config->state_directory);
                return log_error_errno(e, "Failed to lock %s: %m", path);
        }
        m->lock_fd = fd;
        return 0;
}

int manager_start(Manager *m)
{
        _cleanup_free_ char *path = NULL, *error = NULL, *will = NULL;
        const Config *c = m->config;
        OutboxOptions oo = outbox_options(c);
        MqttOptions mo;
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
        (void)sd_event_now(m->event, CLOCK_MONOTONIC, &m->start_usec);

        /* 1. The store. */
        if (mkdir(c->state_directory, 0700) < 0 && errno != EEXIST)
                return log_error_errno(errno, "Failed to create StateDirectory=%s: %m", c->state_directory);
        r = lock_state_directory(m);
        if (r < 0)
                return r;
        if (asprintf(&path, "%s/outbox.db", c->state_directory) < 0)
                return log_oom();
        r = outbox_open(m->event, path, &oo, &m->outbox, &error);
        if (r < 0)
                return log_error_errno(r, "Failed to open the outbox %s: %s", path, error ?: strerror(-r));
        outbox_set_committed_callback(m->outbox, on_outbox_committed, m);
        outbox_set_log_callback(m->outbox, on_outbox_log, m);
        m->last_dropped = outbox_dropped(m->outbox);
        log_info("Outbox %s: %llu items waiting, last seq %llu, %llu dropped so far.", path,
                 (unsigned long long)outbox_backlog_total(m->outbox), (unsigned long long)outbox_last_seq(m->outbox),
                 (unsigned long long)m->last_dropped);
        {
                uint64_t from, to;
                if (outbox_skipped_at_open(m->outbox, &from, &to)) {
                        size_t len = 0;
                        char *body = encode_seq_skipped(now_realtime(), from, to, &len);
                        log_notice("The last run did not stop cleanly: seqs %llu-%llu were reserved and carry no "
                                   "stored item; a seq_skipped item tells the service.",
                                   (unsigned long long)from, (unsigned long long)to);
                        queue_item(m, LANE_EVENTS, body, len);
                }
        }
        {
                /* Alert ids: the outbox's next seq is a floor that does not depend on alerts.json. */
                _cleanup_free_ char *apath = NULL;
                uint64_t from, to, floor = outbox_last_seq(m->outbox);
                if (outbox_skipped_at_open(m->outbox, &from, &to) && to > floor)
                        floor = to;
                if (asprintf(&apath, "%s/alerts.json", c->state_directory) < 0)
                        return log_oom();
                r = alerts_new(&(AlertsOptions){.id_prefix = c->gateway_id, .path = apath, .id_floor = floor + 1,
                                                .log = true, .sink = on_alert, .userdata = m},
                               &m->alerts);
                if (r < 0)
                        return log_error_errno(r, "Failed to set up alerts: %m");
        }

        /* 2. The uplink. */
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
                (void)alerts_raise_store_replaced(m->alerts, c->patient_id, path, outbox_replaced(m->outbox), now_realtime());
        if (outbox_memory_reason(m->outbox))
                (void)alerts_raise_store_unavailable(m->alerts, c->patient_id, path, outbox_memory_reason(m->outbox),
                                                     now_realtime());
        r = mqtt_start(m->mqtt);
        if (r < 0)
                return log_error_errno(r, "Failed to start the uplink: %m");
        r = sd_event_add_time_relative(m->event, &m->status_timer, CLOCK_MONOTONIC, c->status_interval_usec, 0,
                                       on_status_timer, m);
        if (r < 0)
                return log_error_errno(r, "Failed to arm the status timer: %m");

        /* 3. Sensors: the device registry, then the sources. */
        free(path);
        path = NULL;
        if (asprintf(&path, "%s/sensors.db", c->state_directory) < 0)
                return log_oom();
        free(error);
        error = NULL;
        r = devices_new(m->event, path, &m->devices, &error);
        if (r < 0)
                return log_error_errno(r, "Failed to open the sensor store %s: %s", path, error ?: strerror(-r));
        if (devices_replaced(m->devices))
                (void)alerts_raise_store_replaced(m->alerts, c->patient_id, path, devices_replaced(m->devices), now_realtime());
        if (devices_memory_reason(m->devices))
                log_error("The sensor store %s cannot be opened (%s): BTHome replay counters are kept in memory "
                          "until the next restart.",
                          path, devices_memory_reason(m->devices));
        {
                time_t now = time(NULL);
                struct tm tm;
                localtime_r(&now, &tm);
                m->utc_offset_sec = (int32_t)tm.tm_gmtoff;
        }
        r = clock_setup(m);
        if (r < 0)
                return r;
        r = rules_setup(m, true);
        if (r < 0)
                return r;
        r = gpio_setup(m);
        if (r < 0)
                return r;
        r = ble_setup(m);
        if (r < 0)
                return r;
        r = sim_setup(m);
        if (r < 0)
                return r;

        (void)sd_notify(false, "READY=1\nSTATUS=Running");
        log_info("homecare-gw %s running as %s, broker %s.", HCGW_VERSION, c->gateway_id, c->broker);
        return 0;
}

int manager_run(Manager *m)
{
        int r = sd_event_loop(m->event);
        if (r < 0)
                return log_error_errno(r, "Event loop failed: %m");
        return r;
}
