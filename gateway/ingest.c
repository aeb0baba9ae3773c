#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "common/macro.h"
#include "common/time-util.h"
#include "common/mac.h"
#include "gateway/clock.h"
#include "gateway/encode.h"
#include "gateway/engine.h"
#include "gateway/ingest.h"
#include "sensors/sim.h"

#define SIM_HIGH_WATER 20000 /* Speed=max pauses the simulation above this backlog ... */
#define SIM_LOW_WATER 5000   /* ... and resumes below this */

struct Ingest {
        sd_event *event;      /* a reference */
        const Config *config; /* borrowed: the Manager's, swapped by ingest_reload() */
        Outbox *outbox;       /* borrowed */
        Devices *devices;     /* borrowed, from ingest_start(): the device registry */
        Engine *engine;       /* the rules engine in the loop, and the clock-step watch */

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

/* ---- the outbox ---- */

void ingest_queue(Ingest *ing, Lane lane, char *body, size_t len)
{
        int r;

        /* A clock step is told before the first item stamped by the new clock. */
        engine_check_clock(ing->engine);
        if (!body) {
                log_oom();
                return;
        }
        r = outbox_add(ing->outbox, lane, body, len);
        if (r < 0 &&
            r != -ENOBUFS) /* -ENOBUFS: memory is full while the disk fails; the outbox said so once */
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

/* The Engine's clock_step items. */
static void engine_queue(void *userdata, Lane lane, char *body, size_t len)
{
        ingest_queue(userdata, lane, body, len);
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
        if (!engine_on_data_clock(ing->engine))
                return now_realtime();
        if (ing->feeding_sim || !ing->sim)
                return data_time;
        return sim_now(ing->sim);
}

/* In simulation, input from the real world is stamped with the simulated now (see rules_time()). */
static bool restamp_for_sim(Ingest *ing)
{
        return engine_on_data_clock(ing->engine) && !ing->feeding_sim && ing->sim;
}

/* ---- readings and events: to the outbox and the rules ---- */

static void queue_reading(Ingest *ing, const Reading *r)
{
        size_t len;
        char *body = encode_reading(r, &len);
        ingest_queue(ing, LANE_TELEMETRY, body, len);
        if (engine_running(ing->engine)) {
                Reading at = *r;
                int64_t t = rules_time(ing, r->time_usec);
                if (restamp_for_sim(ing))
                        at.time_usec = sim_now(ing->sim);
                engine_reading(ing->engine, t, &at);
        }
}

static void queue_event(Ingest *ing, const Event *e)
{
        size_t len;
        char *body = encode_event(e, &len);
        ingest_queue(ing, LANE_EVENTS, body, len);
        if (engine_running(ing->engine)) {
                Event at = *e;
                int64_t t = rules_time(ing, e->time_usec);
                if (restamp_for_sim(ing))
                        at.time_usec = sim_now(ing->sim);
                engine_event(ing->engine, t, &at);
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
        return engine_running(ing->engine);
}

int ingest_nurse_reading(Ingest *ing, const Reading *rd)
{
        size_t len;
        char *body;
        int r;

        assert(engine_running(ing->engine));
        engine_advance_before(ing->engine, rules_time(ing, rd->time_usec));
        /* Stored and sent like any reading, and scored by the rules. */
        body = encode_reading(rd, &len);
        if (!body)
                return log_oom();
        r = outbox_add_sync(ing->outbox, LANE_TELEMETRY, body, len, NULL);
        free(body);
        if (r == -ENOSPC || r == -ENOBUFS) { /* refused, not kept: the nurse may send it again later */
                log_error("Refused a nurse's observation: %s.", r == -ENOSPC
                                                                    ? "the state directory is nearly full"
                                                                    : "the store fails and memory is full");
                return r;
        }
        engine_nurse_reading(ing->engine, rd->metric, rd->value, rd->unit);
        if (r < 0)
                return log_error_errno(
                    r, "Failed to store a nurse's observation, it is kept in memory and retried: %s",
                    outbox_last_error(ing->outbox) ?: strerror(-r));
        return outbox_memory_reason(ing->outbox) ? 1 : 0;
}

void ingest_nurse_consciousness(Ingest *ing, char acvpu)
{
        assert(engine_running(ing->engine));
        engine_nurse_consciousness(ing->engine, rules_time(ing, now_realtime()), acvpu);
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

/* ---- lifecycle ---- */

int ingest_new(sd_event *e, const Config *c, Outbox *o, Ingest **ret)
{
        Ingest *ing;
        int r;

        assert(e && c && o && ret);
        ing = calloc(1, sizeof *ing);
        if (!ing)
                return -ENOMEM;
        ing->event = sd_event_ref(e);
        ing->config = c;
        ing->outbox = o;
        r = engine_new(e, c, o, engine_queue, ing, &ing->engine);
        if (r < 0) {
                ingest_free(ing);
                return r;
        }
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
        ing->engine = engine_free(ing->engine);
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
        localtime_r(&now, &tm);
        ing->utc_offset_sec = (int32_t)tm.tm_gmtoff;
        r = engine_start(ing->engine, alerts);
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
        engine_shutdown(ing->engine);
}

void ingest_reload(Ingest *ing, const Config *c)
{
        const Config *old = ing->config;
        bool sim_changed = !sim_equal(old, c);

        ing->config = c;
        /* The rules keep their open alerts, pending deadlines and what they learned. */
        engine_reload(ing->engine, c, sim_changed);
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
