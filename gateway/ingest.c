#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>

#include <jansson.h>

#include "gateway/base.h"
#include "gateway/clock.h"
#include "gateway/encode.h"
#include "gateway/ingest.h"
#include "gateway/rules.h"
#include "gateway/timefmt.h"
#include "sensors/sim.h"

#define SIM_HIGH_WATER 20000                     /* Speed=max pauses the simulation above this backlog ... */
#define SIM_LOW_WATER 5000                       /* ... and resumes below this */
#define RULES_SAVE_MIN_GAP_USEC (1000ULL * 1000) /* deadlines: at most one write a second */
#define RULES_SAVE_LEARNED_USEC (10ULL * 60 * 1000 * 1000) /* what was learned: within ten minutes */

struct Ingest {
        sd_event *event;      /* a reference */
        const Config *config; /* borrowed: the Manager's, swapped by ingest_reload() */
        Outbox *outbox;       /* borrowed */
        Devices *devices;     /* borrowed, from ingest_start(): the device registry */
        Alerts *alerts;       /* borrowed, from ingest_start(): where the rules' alerts and state go */

        /* The rules engine and what runs it. */
        Rules *rules;
        sd_event_source *rules_timer;      /* CLOCK_REALTIME, at the engine's next deadline */
        sd_event_source *rules_save_timer; /* CLOCK_MONOTONIC: a state change waiting to be written */
        uint64_t rules_saved_gen[_RULES_CHANGED_MAX]; /* the generations in the last write */
        uint64_t rules_saved_usec;                    /* CLOCK_MONOTONIC of the last write */
        bool rules_on_data_clock; /* simulation: the engine runs on the simulated clock */

        /* Clock steps. */
        ClockWatch clock;    /* the wall clock against CLOCK_BOOTTIME: steps */
        int clock_change_fd; /* timerfd cancelled when the clock is set, or -EBADF */
        sd_event_source *clock_change;
        uint64_t clock_from_seq; /* first seq stamped by the current clock */

        /* The sources. */
        GpioInputs *gpio;
        Bluez *bluez;
        char *bluez_error; /* why BLE does not run, for status */
        Sim *sim;
        uint64_t sim_items;     /* items the simulated home delivered, for [Simulation] Limit= */
        bool sim_done;          /* ... and the limit was reached */
        bool feeding_sim;       /* the input being handled comes from the simulated home */
        int32_t utc_offset_sec; /* local time minus UTC at start: device clocks show local time */
        Decoded decoded;        /* scratch for decoding one frame */
};

static void clock_check(Ingest *ing);
static void rules_arm(Ingest *ing);

/* ---- the outbox ---- */

void ingest_queue(Ingest *ing, Lane lane, char *body, size_t len)
{
        int r;

        /* A clock step is told before the first item stamped by the new clock. */
        clock_check(ing);
        if (!body) {
                log_oom();
                return;
        }
        r = outbox_add(ing->outbox, lane, body, len);
        if (r < 0 && r != -ENOBUFS) /* -ENOBUFS: memory is full while the disk fails; the outbox said so once */
                log_error_errno(r, "Failed to queue a %s item, it is counted as dropped: %m",
                                lane_name(lane));
        free(body);
        if (ing->sim && !sim_paused(ing->sim) && ing->config->sim_speed == 0 &&
            outbox_backlog_total(ing->outbox) + outbox_pending(ing->outbox) > SIM_HIGH_WATER)
                sim_set_paused(ing->sim, true);
}

/* Every alert, with its id, from gateway/alerts.c: committed and handed to the uplink at once, ahead
 * of any backlog. */
void ingest_alerts_sink(void *userdata, const Alert *a, const char *json, size_t len)
{
        ingest_queue(userdata, LANE_ALERTS, strndup(json, len), len);
}

void ingest_uplink_acked(Ingest *ing)
{
        if (ing->sim && sim_paused(ing->sim) && outbox_backlog_total(ing->outbox) < SIM_LOW_WATER)
                sim_set_paused(ing->sim, false);
}

/* ---- the rules' clock ---- */

/* When input at data_time happens on the engine's clock: the real clock, or in simulation the data's
 * own. In simulation, input from the real world (a nurse's observation, a wired input, a real sensor
 * beside the simulated home) carries the real clock, months away from the simulated one: it happens
 * at the simulated now, or the engine would take the difference for elapsed time and raise every
 * dose of those months. */
static int64_t rules_time(Ingest *ing, int64_t data_time)
{
        if (!ing->rules_on_data_clock)
                return clock_realtime_usec();
        if (ing->feeding_sim || !ing->sim)
                return data_time;
        return sim_now(ing->sim);
}

static void rules_clock(Ingest *ing, int64_t t)
{
        clock_check(ing);
        rules_advance_before(ing->rules, t);
}

/* ---- readings and events: to the outbox and the rules ---- */

static void queue_reading(Ingest *ing, const Reading *r)
{
        size_t len;
        char *body = encode_reading(r, &len);
        ingest_queue(ing, LANE_TELEMETRY, body, len);
        if (ing->rules) {
                Reading at = *r;
                rules_clock(ing, rules_time(ing, r->time_usec));
                if (ing->rules_on_data_clock && !ing->feeding_sim && ing->sim)
                        at.time_usec = sim_now(ing->sim);
                rules_reading(ing->rules, &at);
                rules_arm(ing);
        }
}

static void queue_event(Ingest *ing, const Event *e)
{
        size_t len;
        char *body = encode_event(e, &len);
        ingest_queue(ing, LANE_EVENTS, body, len);
        if (ing->rules) {
                Event at = *e;
                rules_clock(ing, rules_time(ing, e->time_usec));
                if (ing->rules_on_data_clock && !ing->feeding_sim && ing->sim)
                        at.time_usec = sim_now(ing->sim);
                rules_event(ing->rules, &at);
                rules_arm(ing);
        }
}

/* A frame from a radio device: decoded with its profile, key and state, then queued while admit()
 * lets it (the simulated home's Limit=). */
static void handle_frame(Ingest *ing, const char *sensor, uint16_t uuid16, const uint8_t *buf, size_t len,
                         const DecodeContext *ctx, bool (*admit)(Ingest *ing))
{
        Decoded *d = &ing->decoded;
        int r = devices_decode(ing->devices, sensor, uuid16, buf, len, ctx, d);

        if (r < 0) {
                Device *dev = devices_find(ing->devices, sensor);
                /* A device that keeps sending bad frames must not flood the journal. */
                if (!dev || dev->rejected <= 10 || dev->rejected % 1000 == 0)
                        log_warning("Rejected a frame from %s (%llu so far): %s", sensor,
                                    dev ? (unsigned long long)dev->rejected : 1ULL, d->error);
                return;
        }
        for (size_t i = 0; i < d->n_readings && admit(ing); i++)
                queue_reading(ing, &d->readings[i]);
        for (size_t i = 0; i < d->n_events && admit(ing); i++)
                queue_event(ing, &d->events[i]);
}

/* ---- the nurse ---- */

bool ingest_rules_running(const Ingest *ing)
{
        return ing->rules;
}

int ingest_nurse_reading(Ingest *ing, const Reading *rd)
{
        size_t len;
        char *body;
        int r;

        assert(ing->rules);
        rules_clock(ing, rules_time(ing, rd->time_usec));
        /* Stored and sent like any reading, and scored by the rules. */
        body = encode_reading(rd, &len);
        if (!body)
                return log_oom();
        r = outbox_add_sync(ing->outbox, LANE_TELEMETRY, body, len, NULL);
        free(body);
        if (r == -ENOSPC || r == -ENOBUFS) { /* refused, not kept: the nurse may send it again later */
                log_error("Refused a nurse's observation: %s.", r == -ENOSPC ? "the state directory is nearly full"
                                                                             : "the store fails and memory is full");
                return r;
        }
        rules_nurse_reading(ing->rules, rd->metric, rd->value, rd->unit);
        if (r < 0)
                log_error_errno(
                    r, "Failed to store a nurse's observation, it is kept in memory and retried: %s",
                    outbox_last_error(ing->outbox) ?: strerror(-r));
        rules_arm(ing);
        if (r < 0)
                return r;
        return outbox_memory_reason(ing->outbox) ? 1 : 0;
}

void ingest_nurse_consciousness(Ingest *ing, char acvpu)
{
        assert(ing->rules);
        rules_clock(ing, rules_time(ing, clock_realtime_usec()));
        (void)rules_nurse_consciousness(ing->rules, acvpu);
        rules_arm(ing);
}

/* ---- wired inputs ---- */

static void on_gpio_event(void *userdata, const Event *e)
{
        Ingest *ing = userdata;

        /* gpio.c reports each change once: a failed input is retried there with back-off. */
        if (e->kind == EVENT_INPUT_FAILED)
                for (size_t i = 0; ing->gpio && i < gpio_inputs_count(ing->gpio); i++) {
                        const char *why = gpio_input_error(ing->gpio, i);
                        if (!streq(gpio_input_id(ing->gpio, i), e->sensor))
                                continue;
                        if (e->value)
                                log_error(
                                    "Input %s does not work: %s. The rest of the gateway runs; the line is "
                                    "requested again with back-off, and status reports it.",
                                    e->sensor, why ? why : "unknown");
                        else
                                log_notice("Input %s works again.", e->sensor);
                }
        queue_event(ing, e);
}

static void on_gpio_reading(void *userdata, const Reading *r)
{
        queue_reading(userdata, r);
}

static int gpio_setup(Ingest *ing)
{
        const Config *c = ing->config;
        GpioInputConfig *cfg;
        SensorSink sink = {.reading = on_gpio_reading, .event = on_gpio_event, .userdata = ing};
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
        r = gpio_inputs_new(ing->event, cfg, c->n_inputs, &sink, &ing->gpio);
        free(cfg);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the GPIO inputs: %m");
        failed = gpio_inputs_start(ing->gpio); /* each failed input is logged as it is reported */
        if (failed < (int)gpio_inputs_count(ing->gpio))
                log_info("%d of %zu GPIO inputs running.", (int)gpio_inputs_count(ing->gpio) - failed,
                         gpio_inputs_count(ing->gpio));
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
                    !streq(x->kind, y->kind) || x->active_low != y->active_low ||
                    x->debounce_ms != y->debounce_ms)
                        return false;
        }
        return true;
}

/* ---- BLE sensors ---- */

static bool admit_all(Ingest *ing)
{
        return true;
}

/* BlueZ hands up frames only (advertisements and characteristic values), decoded here; readings and
 * events of its own would go straight to the queue, never through the wired inputs' sink. */
static void on_ble_frame(void *userdata, const char *sensor, uint16_t uuid16, const uint8_t *buf, size_t len,
                         int64_t time_usec)
{
        Ingest *ing = userdata;
        DecodeContext ctx = decode_context_now();
        ctx.now_usec = time_usec;
        handle_frame(ing, sensor, uuid16, buf, len, &ctx, admit_all);
}

static void on_ble_reading(void *userdata, const Reading *r)
{
        queue_reading(userdata, r);
}

static void on_ble_event(void *userdata, const Event *e)
{
        queue_event(userdata, e);
}

static void on_ble_log(void *userdata, int priority, const char *message)
{
        log_full(priority, "%s", message);
}

static int ble_setup(Ingest *ing)
{
        const Config *c = ing->config;
        BluezDeviceConfig *cfg;
        SensorSink sink = {
            .reading = on_ble_reading, .event = on_ble_event, .frame = on_ble_frame, .userdata = ing};
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
                Profile p = sc->profile; /* config resolved Type= with the profile table */
                if (parse_mac(sc->address, cfg[n].address) < 0 || (sc->key && parse_key(sc->key, key) < 0)) {
                        log_error("Sensor %s is misconfigured, ignoring it.",
                                  sc->id); /* check-config prevents this */
                        continue;
                }
                r = devices_add(ing->devices, sc->id, p, cfg[n].address, sc->key ? key : NULL);
                if (r < 0 && r != -EEXIST) {
                        free(cfg);
                        return log_error_errno(r, "Failed to register sensor %s: %m", sc->id);
                }
                cfg[n].id = sc->id;
                cfg[n].passkey = sc->passkey;
                cfg[n].bond = sc->bond;
                cfg[n].advertises = profile_info(p)->transport == PROFILE_ADVERTISEMENT;
                /* Every measurement characteristic of the device's service: an oximeter may have
                 * spot-check, continuous, or both. (That they fit in measure[] for every profile is
                 * checked by tests/unit/test-decode.c.) */
                (void)profile_characteristics(p, cfg[n].measure, ELEMENTSOF(cfg[n].measure));
                n++;
        }
        r = bluez_new(ing->event, c->bt_adapter, cfg, n, &sink,
                      &(BluezCallbacks){.log = on_ble_log, .userdata = ing}, &ing->bluez);
        free(cfg);
        if (r < 0)
                return log_error_errno(r, "Failed to set up Bluetooth: %m");
        r = bluez_start(ing->bluez);
        if (r < 0) {
                /* No system bus: BLE sensors are silent (the rules will say so); the rest runs. */
                log_error_errno(r,
                                "Bluetooth does not work, no system bus: %m. The rest of the gateway runs.");
                free(ing->bluez_error);
                (void)!asprintf(&ing->bluez_error, "no system bus: %s", strerror(-r));
                ing->bluez = bluez_free(ing->bluez);
        }
        return 0;
}

/* What the BLE client was set up from. Role= and ExpectedIntervalMinutes= are the rules'. */
static bool sensors_equal(const Config *a, const Config *b)
{
        if (a->n_sensors != b->n_sensors || !streq_ptr(a->bt_adapter, b->bt_adapter))
                return false;
        for (size_t i = 0; i < a->n_sensors; i++) {
                const SensorConfig *x = &a->sensors[i], *y = &b->sensors[i];
                if (!streq(x->id, y->id) || x->profile != y->profile || !streq(x->address, y->address) ||
                    !streq_ptr(x->key, y->key) || x->passkey != y->passkey || x->bond != y->bond)
                        return false;
        }
        return true;
}

/* ---- the simulated home ---- */

static bool sim_admit(Ingest *ing)
{
        if (ing->config->sim_limit && ing->sim_items >= ing->config->sim_limit) {
                if (ing->sim && !ing->sim_done) {
                        log_info("Simulation finished after %llu readings and events.",
                                 (unsigned long long)ing->sim_items);
                        sim_stop(ing->sim);
                        ing->sim_done = true;
                }
                return false;
        }
        ing->sim_items++;
        return true;
}

static void on_sim_reading(void *userdata, const Reading *r)
{
        Ingest *ing = userdata;
        ing->feeding_sim = true;
        if (sim_admit(ing))
                queue_reading(ing, r);
        ing->feeding_sim = false;
}

static void on_sim_event(void *userdata, const Event *e)
{
        Ingest *ing = userdata;
        ing->feeding_sim = true;
        if (sim_admit(ing))
                queue_event(ing, e);
        ing->feeding_sim = false;
}

static void on_sim_frame(void *userdata, const char *sensor, uint16_t uuid16, const uint8_t *buf, size_t len,
                         int64_t time_usec)
{
        Ingest *ing = userdata;
        /* Simulated time is the receive time; the simulated clock is "synchronised". */
        DecodeContext ctx = {
            .now_usec = time_usec, .now_quality = TIME_SYNCED, .utc_offset_sec = ing->utc_offset_sec};
        ing->feeding_sim = true;
        handle_frame(ing, sensor, uuid16, buf, len, &ctx, sim_admit);
        ing->feeding_sim = false;
}

static int sim_setup(Ingest *ing)
{
        SimOptions o = {.speed = ing->config->sim_speed,
                        .seed = ing->config->sim_seed,
                        .start_usec = ing->config->sim_start_usec,
                        .utc_offset_sec = ing->utc_offset_sec};
        SensorSink sink = {
            .reading = on_sim_reading, .event = on_sim_event, .frame = on_sim_frame, .userdata = ing};
        const SimDevice *devs;
        size_t n;
        int r;

        ing->sim = sim_free(ing->sim);
        ing->sim_items = 0;
        ing->sim_done = false;
        if (!ing->config->sim_enabled)
                return 0;
        devs = sim_devices(&n);
        for (size_t i = 0; i < n; i++) {
                uint8_t addr[6], key[16];
                if (devices_find(ing->devices, devs[i].id))
                        continue;
                if (parse_mac(devs[i].address, addr) < 0 || (devs[i].key && parse_key(devs[i].key, key) < 0))
                        return log_error_errno(EINVAL, "Simulated device %s is misdefined", devs[i].id);
                r = devices_add(ing->devices, devs[i].id, devs[i].profile, addr, devs[i].key ? key : NULL);
                if (r < 0)
                        return log_error_errno(r, "Failed to register simulated device %s: %m", devs[i].id);
        }
        r = sim_new(ing->event, &o, &sink, &ing->sim);
        if (r < 0)
                return log_error_errno(r, "Failed to create the simulated home: %m");
        r = sim_start(ing->sim);
        if (r < 0)
                return log_error_errno(r, "Failed to start the simulated home: %m");
        if (o.speed > 0)
                log_info("Simulated home running at %g× real time.", o.speed);
        else
                log_info("Simulated home running as fast as the uplink takes it.");
        return 0;
}

static bool sim_equal(const Config *a, const Config *b)
{
        return a->sim_enabled == b->sim_enabled && a->sim_speed == b->sim_speed &&
               a->sim_seed == b->sim_seed && a->sim_limit == b->sim_limit &&
               a->sim_start_usec == b->sim_start_usec;
}

/* ---- running the rules ---- */

static uint64_t now_monotonic(Ingest *ing)
{
        uint64_t t = 0;
        (void)sd_event_now(ing->event, CLOCK_MONOTONIC, &t);
        return t;
}

/* For the log: open alerts and doses waiting for their grace period, from an export. */
static size_t export_pending_doses(json_t *j)
{
        size_t pending = 0, i;
        json_t *due;
        json_array_foreach(json_object_get(j, "dues"), i, due) pending +=
            !json_is_true(json_object_get(due, "taken")) && !json_is_true(json_object_get(due, "reported"));
        return pending;
}

static void rules_save(Ingest *ing)
{
        json_t *j;

        for (RulesChange c = 0; c < _RULES_CHANGED_MAX; c++)
                ing->rules_saved_gen[c] = rules_state_generation(ing->rules, c);
        ing->rules_saved_usec = now_monotonic(ing);
        if (ing->rules_save_timer)
                (void)sd_event_source_set_enabled(ing->rules_save_timer, SD_EVENT_OFF);
        j = rules_export(ing->rules);
        if (!j || json_object_set_new(j, "clock",
                                      json_string(ing->rules_on_data_clock ? "simulated" : "real")) < 0) {
                json_decref(j);
                log_oom();
                return;
        }
        if (alerts_save_state(ing->alerts, j) >= 0)
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
static void rules_save_maybe(Ingest *ing)
{
        uint64_t now, at;
        int r;

        if (rules_state_generation(ing->rules, RULES_CHANGED_ALERTS) !=
            ing->rules_saved_gen[RULES_CHANGED_ALERTS])
                return rules_save(ing);
        now = now_monotonic(ing);
        if (rules_state_generation(ing->rules, RULES_CHANGED_DEADLINES) !=
            ing->rules_saved_gen[RULES_CHANGED_DEADLINES]) {
                if (now >= ing->rules_saved_usec + RULES_SAVE_MIN_GAP_USEC)
                        return rules_save(ing);
                at = ing->rules_saved_usec + RULES_SAVE_MIN_GAP_USEC;
        } else if (rules_state_generation(ing->rules, RULES_CHANGED_LEARNED) !=
                   ing->rules_saved_gen[RULES_CHANGED_LEARNED])
                at = ing->rules_saved_usec + RULES_SAVE_LEARNED_USEC;
        else
                return;
        if (ing->rules_save_timer) {
                int enabled = SD_EVENT_OFF;
                uint64_t armed = UINT64_MAX;
                (void)sd_event_source_get_enabled(ing->rules_save_timer, &enabled);
                (void)sd_event_source_get_time(ing->rules_save_timer, &armed);
                if (enabled != SD_EVENT_OFF && armed <= at)
                        return;
                r = sd_event_source_set_time(ing->rules_save_timer, at);
                if (r >= 0)
                        r = sd_event_source_set_enabled(ing->rules_save_timer, SD_EVENT_ONESHOT);
        } else
                r = sd_event_add_time(ing->event, &ing->rules_save_timer, CLOCK_MONOTONIC, at, 0,
                                      on_rules_save_timer, ing);
        if (r < 0) {
                log_warning_errno(r, "Failed to arm the rules' save timer, writing now: %m");
                rules_save(ing);
        }
}

static int on_rules_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
        Ingest *ing = userdata;
        clock_check(ing);
        rules_advance(ing->rules, clock_realtime_usec());
        rules_arm(ing);
        return 0;
}

static void rules_arm(Ingest *ing)
{
        int64_t d;
        int r;

        if (!ing->rules)
                return;
        rules_save_maybe(ing);
        if (ing->rules_on_data_clock)
                return;
        d = rules_next_deadline(ing->rules);
        if (d == INT64_MAX) {
                if (ing->rules_timer)
                        (void)sd_event_source_set_enabled(ing->rules_timer, SD_EVENT_OFF);
                return;
        }
        if (d < 0)
                d = 0;
        if (ing->rules_timer) {
                r = sd_event_source_set_time(ing->rules_timer, (uint64_t)d);
                if (r >= 0)
                        r = sd_event_source_set_enabled(ing->rules_timer, SD_EVENT_ONESHOT);
        } else
                /* A second of slack: the rules count minutes. */
                r = sd_event_add_time(ing->event, &ing->rules_timer, CLOCK_REALTIME, (uint64_t)d, 1000000,
                                      on_rules_timer, ing);
        if (r < 0)
                log_error_errno(r, "Failed to arm the rules timer, time-driven alerts may be late: %m");
}

/* A fresh engine. resume: take over the state the last run saved (a restart or a crash), if it ran
 * on the same clock: the simulated home starts again from Start= each time, so its state is not
 * resumed. */
static int rules_setup(Ingest *ing, bool resume)
{
        json_t *state = resume ? alerts_loaded_state(ing->alerts) : NULL;
        int r;

        ing->rules = rules_free(ing->rules);
        ing->rules_on_data_clock = ing->config->sim_enabled;
        r = rules_new(ing->config,
                      ing->rules_on_data_clock && ing->config->sim_start_usec ? ing->config->sim_start_usec
                                                                              : clock_realtime_usec(),
                      alerts_rules_sink, ing->alerts, &ing->rules);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the rules: %m");
        if (state && !ing->rules_on_data_clock &&
            streq_ptr(json_string_value(json_object_get(state, "clock")), "real")) {
                r = rules_import(ing->rules, state);
                if (r < 0)
                        log_error_errno(r, "Failed to resume the rules' saved state, starting afresh: %m");
                else
                        log_info("Resumed the rules' state: %zu open alerts.", rules_open_count(ing->rules));
        }
        if (ing->config->sim_enabled) {
                size_t n;
                const SimRole *roles = sim_roles(&n);
                for (size_t i = 0; i < n; i++)
                        (void)rules_add_sensor(ing->rules, roles[i].id, roles[i].role, 0, roles[i].is_input);
        }
        /* Deadlines that passed while the gateway was down fire now, late but raised. */
        if (!ing->rules_on_data_clock)
                rules_advance(ing->rules, clock_realtime_usec());
        rules_arm(ing);
        return 0;
}

/* SIGHUP: the new settings, the same state. Only when the simulated home starts over (or the
 * engine's clock changes between simulated and real) does the engine start afresh; its open alerts
 * are cleared first, so that none stays open at the service for ever. */
static int rules_reload(Ingest *ing, bool sim_changed)
{
        int r;

        if (!ing->rules)
                return rules_setup(ing, false);
        if (sim_changed || ing->rules_on_data_clock != ing->config->sim_enabled) {
                rules_clear_all(ing->rules, "the simulated home started again");
                return rules_setup(ing, false);
        }
        r = rules_reconfigure(ing->rules, ing->config);
        if (r < 0)
                log_error_errno(r,
                                "Failed to apply the new rules settings, keeping the old sensor list: %m");
        else {
                json_t *j = rules_export(ing->rules);
                if (j)
                        log_info("The rules keep their state: %zu open alerts, %zu doses pending.",
                                 json_array_size(json_object_get(j, "open")), export_pending_doses(j));
                json_decref(j);
        }
        rules_arm(ing);
        return 0;
}

/* ---- clock steps ---- */

/* The next seq the outbox will give: items are numbered in the order they are queued. */
static uint64_t next_seq(Ingest *ing)
{
        return outbox_last_seq(ing->outbox) + outbox_pending(ing->outbox) + 1;
}

/* Called before every use of the engine's clock and when the kernel says the clock was set, so a
 * step is never taken for elapsed time, whichever source the loop dispatches first after it. */
static void clock_check(Ingest *ing)
{
        char before[RFC3339_MAX], after[RFC3339_MAX];
        int64_t old_offset = ing->clock.offset, boot = clock_boottime_usec(), real = clock_realtime_usec(),
                delta;
        uint64_t seq;
        size_t len;
        char *body;

        delta = clock_watch_update(&ing->clock, real, boot);
        if (delta == 0)
                return;
        log_notice("The system clock was stepped by %+.3f s (from %s to %s); the rules keep the time really "
                   "elapsed, and a clock_step item tells the service which items carry the old clock.",
                   (double)delta / 1e6, format_rfc3339(before, real - delta), format_rfc3339(after, real));
        if (ing->rules && !ing->rules_on_data_clock) {
                /* What really came due before the step (CLOCK_BOOTTIME says how much time passed),
                 * on the clock the engine knew; then the same moment on the new clock. */
                rules_advance(ing->rules, boot + old_offset);
                rules_clock_step(ing->rules, delta);
        }
        seq = next_seq(ing);
        body = encode_clock_step(delta, real, ing->clock_from_seq, seq - 1, &len);
        ingest_queue(ing, LANE_EVENTS, body, len);
        ing->clock_from_seq = seq + 1;
}

static int on_clock_change(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
        Ingest *ing = userdata;
        uint64_t expirations;
        int r;

        /* ECANCELED is the news; the timer must be armed again to hear of the next change. */
        if (read(fd, &expirations, sizeof expirations) < 0 && errno != ECANCELED && errno != EAGAIN)
                log_warning_errno(errno, "Failed to read the clock change timer, ignoring: %m");
        r = clock_change_fd_rearm(fd);
        if (r < 0)
                log_warning_errno(r,
                                  "Failed to re-arm the clock change timer, steps are noticed at the next "
                                  "sensor input or deadline: %m");
        clock_check(ing);
        if (ing->rules && !ing->rules_on_data_clock) {
                rules_advance(ing->rules, clock_realtime_usec());
                rules_arm(ing);
        }
        return 0;
}

static int clock_setup(Ingest *ing)
{
        int r;

        (void)clock_watch_update(&ing->clock, clock_realtime_usec(), clock_boottime_usec());
        ing->clock_from_seq = next_seq(ing);
        r = clock_change_fd_new();
        if (r < 0) {
                /* Not fatal: clock_check() runs before every item and every use of the rules' clock. */
                log_warning_errno(r, "Failed to watch for clock changes, ignoring: %m");
                return 0;
        }
        ing->clock_change_fd = r;
        r = sd_event_add_io(ing->event, &ing->clock_change, ing->clock_change_fd, EPOLLIN, on_clock_change,
                            ing);
        if (r < 0)
                log_warning_errno(r, "Failed to watch for clock changes, ignoring: %m");
        return 0;
}

/* ---- lifecycle ---- */

int ingest_new(sd_event *e, const Config *c, Outbox *o, Ingest **ret)
{
        Ingest *ing;

        assert(e && c && o && ret);
        ing = calloc(1, sizeof *ing);
        if (!ing)
                return -ENOMEM;
        ing->event = sd_event_ref(e);
        ing->config = c;
        ing->outbox = o;
        ing->clock_change_fd = -EBADF;
        *ret = ing;
        return 0;
}

Ingest *ingest_free(Ingest *ing)
{
        if (!ing)
                return NULL;
        /* The sources first: nothing comes in while the rest goes. */
        ing->sim = sim_free(ing->sim);
        ing->gpio = gpio_inputs_free(ing->gpio);
        ing->bluez = bluez_free(ing->bluez);
        free(ing->bluez_error);
        sd_event_source_disable_unref(ing->rules_timer);
        sd_event_source_disable_unref(ing->rules_save_timer);
        ing->rules = rules_free(ing->rules);
        sd_event_source_disable_unref(ing->clock_change);
        if (ing->clock_change_fd >= 0)
                close(ing->clock_change_fd);
        sd_event_unref(ing->event);
        free(ing);
        return NULL;
}

int ingest_start(Ingest *ing, Devices *devices, Alerts *alerts)
{
        time_t now = time(NULL);
        struct tm tm;
        int r;

        assert(devices && alerts);
        ing->devices = devices;
        ing->alerts = alerts;
        localtime_r(&now, &tm);
        ing->utc_offset_sec = (int32_t)tm.tm_gmtoff;
        r = clock_setup(ing);
        if (r < 0)
                return r;
        r = rules_setup(ing, true);
        if (r < 0)
                return r;
        r = gpio_setup(ing);
        if (r < 0)
                return r;
        r = ble_setup(ing);
        if (r < 0)
                return r;
        return sim_setup(ing);
}

void ingest_shutdown(Ingest *ing)
{
        ing->sim = sim_free(ing->sim);
        (void)devices_flush(ing->devices);
        if (ing->rules)
                rules_save(ing);
}

void ingest_reload(Ingest *ing, const Config *c)
{
        const Config *old = ing->config;
        bool sim_changed = !sim_equal(old, c);

        ing->config = c;
        /* The rules keep their open alerts, pending deadlines and what they learned. */
        (void)rules_reload(ing, sim_changed);
        /* Changed wired inputs and radio sensors are set up again, after the rules so that these hear
         * the inputs' state as read now. Unchanged ones keep running untouched (no line is released, no
         * link dropped). */
        if (!inputs_equal(old, c)) {
                log_info("[Input] sections changed: setting up the wired inputs again.");
                ing->gpio = gpio_inputs_free(ing->gpio);
                (void)gpio_setup(ing);
        }
        if (!sensors_equal(old, c)) {
                log_info("[Sensor] or [Bluetooth] sections changed: setting up the radio sensors again.");
                ing->bluez = bluez_free(ing->bluez);
                free(ing->bluez_error);
                ing->bluez_error = NULL;
                (void)ble_setup(ing);
        }
        if (sim_changed)
                (void)sim_setup(ing);
}

Bluez *ingest_bluez(const Ingest *ing)
{
        return ing->bluez;
}

const char *ingest_bluez_error(const Ingest *ing)
{
        return ing->bluez_error;
}

GpioInputs *ingest_gpio(const Ingest *ing)
{
        return ing->gpio;
}
