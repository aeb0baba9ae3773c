/* The rules engine in the loop: its timer, the writes of its state, its set-up and reload, and clock
 * steps. See gateway/engine.h. */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <jansson.h>

#include "common/log.h"
#include "common/macro.h"
#include "common/time-util.h"
#include "common/timefmt.h"
#include "gateway/clock.h"
#include "gateway/encode.h"
#include "gateway/engine.h"
#include "sensors/sim.h"

#define RULES_SAVE_MIN_GAP_USEC (1000ULL * 1000)           /* deadlines: at most one write a second */
#define RULES_SAVE_LEARNED_USEC (10ULL * 60 * 1000 * 1000) /* what was learned: within ten minutes */

struct Engine {
        sd_event *event;       /* a reference */
        const Config *config;  /* borrowed: the Manager's, swapped by engine_reload() */
        Outbox *outbox;        /* borrowed: where the next seq is read, for clock_step items */
        Alerts *alerts;        /* borrowed, from engine_start(): where the rules' alerts and state go */
        engine_queue_fn queue; /* takes the clock_step items */
        void *queue_userdata;

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
};

static void rules_arm(Engine *en);

/* ---- running the rules ---- */

static uint64_t loop_now_monotonic(Engine *en)
{
        uint64_t t = 0;
        (void)sd_event_now(en->event, CLOCK_MONOTONIC, &t);
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

static void rules_save(Engine *en)
{
        json_t *j;

        for (RulesChange c = 0; c < _RULES_CHANGED_MAX; c++)
                en->rules_saved_gen[c] = rules_state_generation(en->rules, c);
        en->rules_saved_usec = loop_now_monotonic(en);
        if (en->rules_save_timer)
                (void)sd_event_source_set_enabled(en->rules_save_timer, SD_EVENT_OFF);
        j = rules_export(en->rules);
        if (!j || json_object_set_new(j, "clock",
                                      json_string(en->rules_on_data_clock ? "simulated" : "real")) < 0) {
                json_decref(j);
                log_oom();
                return;
        }
        if (alerts_save_state(en->alerts, j) >= 0)
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
static void rules_save_maybe(Engine *en)
{
        uint64_t now, at;
        int r;

        if (rules_state_generation(en->rules, RULES_CHANGED_ALERTS) !=
            en->rules_saved_gen[RULES_CHANGED_ALERTS])
                return rules_save(en);
        now = loop_now_monotonic(en);
        if (rules_state_generation(en->rules, RULES_CHANGED_DEADLINES) !=
            en->rules_saved_gen[RULES_CHANGED_DEADLINES]) {
                if (now >= en->rules_saved_usec + RULES_SAVE_MIN_GAP_USEC)
                        return rules_save(en);
                at = en->rules_saved_usec + RULES_SAVE_MIN_GAP_USEC;
        } else if (rules_state_generation(en->rules, RULES_CHANGED_LEARNED) !=
                   en->rules_saved_gen[RULES_CHANGED_LEARNED])
                at = en->rules_saved_usec + RULES_SAVE_LEARNED_USEC;
        else
                return;
        if (en->rules_save_timer) {
                int enabled = SD_EVENT_OFF;
                uint64_t armed = UINT64_MAX;
                (void)sd_event_source_get_enabled(en->rules_save_timer, &enabled);
                (void)sd_event_source_get_time(en->rules_save_timer, &armed);
                if (enabled != SD_EVENT_OFF && armed <= at)
                        return;
                r = sd_event_source_set_time(en->rules_save_timer, at);
                if (r >= 0)
                        r = sd_event_source_set_enabled(en->rules_save_timer, SD_EVENT_ONESHOT);
        } else
                r = sd_event_add_time(en->event, &en->rules_save_timer, CLOCK_MONOTONIC, at, 0,
                                      on_rules_save_timer, en);
        if (r < 0) {
                log_warning_errno(r, "Failed to arm the rules' save timer, writing now: %m");
                rules_save(en);
        }
}

static int on_rules_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
        Engine *en = userdata;
        engine_check_clock(en);
        rules_advance(en->rules, now_realtime());
        rules_arm(en);
        return 0;
}

static void rules_arm(Engine *en)
{
        int64_t d;
        int r;

        if (!en->rules)
                return;
        rules_save_maybe(en);
        if (en->rules_on_data_clock)
                return;
        d = rules_next_deadline(en->rules);
        if (d == INT64_MAX) {
                if (en->rules_timer)
                        (void)sd_event_source_set_enabled(en->rules_timer, SD_EVENT_OFF);
                return;
        }
        if (d < 0)
                d = 0;
        if (en->rules_timer) {
                r = sd_event_source_set_time(en->rules_timer, (uint64_t)d);
                if (r >= 0)
                        r = sd_event_source_set_enabled(en->rules_timer, SD_EVENT_ONESHOT);
        } else
                /* A second of slack: the rules count minutes. */
                r = sd_event_add_time(en->event, &en->rules_timer, CLOCK_REALTIME, (uint64_t)d, 1000000,
                                      on_rules_timer, en);
        if (r < 0)
                log_error_errno(r, "Failed to arm the rules timer, time-driven alerts may be late: %m");
}

/* A fresh engine. resume: take over the state the last run saved (a restart or a crash), if it ran
 * on the same clock: the simulated home starts again from Start= each time, so its state is not
 * resumed. */
static int rules_setup(Engine *en, bool resume)
{
        json_t *state = resume ? alerts_loaded_state(en->alerts) : NULL;
        int r;

        en->rules = rules_free(en->rules);
        en->rules_on_data_clock = en->config->sim_enabled;
        r = rules_new(en->config,
                      en->rules_on_data_clock && en->config->sim_start_usec ? en->config->sim_start_usec
                                                                            : now_realtime(),
                      alerts_rules_sink, en->alerts, &en->rules);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the rules: %m");
        if (state && !en->rules_on_data_clock &&
            streq_ptr(json_string_value(json_object_get(state, "clock")), "real")) {
                r = rules_import(en->rules, state);
                if (r < 0)
                        log_error_errno(r, "Failed to resume the rules' saved state, starting afresh: %m");
                else
                        log_info("Resumed the rules' state: %zu open alerts.", rules_open_count(en->rules));
        }
        if (en->config->sim_enabled) {
                size_t n;
                const SimRole *roles = sim_roles(&n);
                for (size_t i = 0; i < n; i++)
                        (void)rules_add_sensor(en->rules, roles[i].id, roles[i].role, 0, roles[i].is_input);
        }
        /* Deadlines that passed while the gateway was down fire now, late but raised. */
        if (!en->rules_on_data_clock)
                rules_advance(en->rules, now_realtime());
        rules_arm(en);
        return 0;
}

/* SIGHUP: the new settings, the same state. Only when the simulated home starts over (or the
 * engine's clock changes between simulated and real) does the engine start afresh; its open alerts
 * are cleared first, so that none stays open at the service for ever. */
static int rules_reload(Engine *en, bool restart)
{
        int r;

        if (!en->rules)
                return rules_setup(en, false);
        if (restart || en->rules_on_data_clock != en->config->sim_enabled) {
                rules_clear_all(en->rules, "the simulated home started again");
                return rules_setup(en, false);
        }
        r = rules_reconfigure(en->rules, en->config);
        if (r < 0)
                log_error_errno(r,
                                "Failed to apply the new rules settings, keeping the old sensor list: %m");
        else {
                json_t *j = rules_export(en->rules);
                if (j)
                        log_info("The rules keep their state: %zu open alerts, %zu doses pending.",
                                 json_array_size(json_object_get(j, "open")), export_pending_doses(j));
                json_decref(j);
        }
        rules_arm(en);
        return 0;
}

/* ---- clock steps ---- */

/* The next seq the outbox will give: items are numbered in the order they are queued. */
static uint64_t next_seq(Engine *en)
{
        return outbox_last_seq(en->outbox) + outbox_pending(en->outbox) + 1;
}

/* Called before every use of the engine's clock and when the kernel says the clock was set, so a
 * step is never taken for elapsed time, whichever source the loop dispatches first after it. */
void engine_check_clock(Engine *en)
{
        char before[RFC3339_MAX], after[RFC3339_MAX];
        int64_t old_offset = en->clock.offset, boot = now_boottime(), real = now_realtime(), delta;
        uint64_t seq;
        size_t len;
        char *body;

        delta = clock_watch_update(&en->clock, real, boot);
        if (delta == 0)
                return;
        log_notice("The system clock was stepped by %+.3f s (from %s to %s); the rules keep the time really "
                   "elapsed, and a clock_step item tells the service which items carry the old clock.",
                   (double)delta / 1e6, format_rfc3339(before, real - delta), format_rfc3339(after, real));
        if (en->rules && !en->rules_on_data_clock) {
                /* What really came due before the step (CLOCK_BOOTTIME says how much time passed),
                 * on the clock the engine knew; then the same moment on the new clock. */
                rules_advance(en->rules, boot + old_offset);
                rules_clock_step(en->rules, delta);
        }
        seq = next_seq(en);
        body = encode_clock_step(delta, real, en->clock_from_seq, seq - 1, &len);
        en->queue(en->queue_userdata, LANE_EVENTS, body, len);
        en->clock_from_seq = seq + 1;
}

static int on_clock_change(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
        Engine *en = userdata;
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
        engine_check_clock(en);
        if (en->rules && !en->rules_on_data_clock) {
                rules_advance(en->rules, now_realtime());
                rules_arm(en);
        }
        return 0;
}

static int clock_setup(Engine *en)
{
        int r;

        (void)clock_watch_update(&en->clock, now_realtime(), now_boottime());
        en->clock_from_seq = next_seq(en);
        r = clock_change_fd_new();
        if (r < 0) {
                /* Not fatal: engine_check_clock() runs before every item and every use of the rules' clock.
                 */
                log_warning_errno(r, "Failed to watch for clock changes, ignoring: %m");
                return 0;
        }
        en->clock_change_fd = r;
        r = sd_event_add_io(en->event, &en->clock_change, en->clock_change_fd, EPOLLIN, on_clock_change, en);
        if (r < 0)
                log_warning_errno(r, "Failed to watch for clock changes, ignoring: %m");
        return 0;
}

/* ---- input ---- */

bool engine_running(const Engine *en)
{
        return en->rules;
}

bool engine_on_data_clock(const Engine *en)
{
        return en->rules_on_data_clock;
}

void engine_advance_before(Engine *en, int64_t now)
{
        assert(en->rules);
        engine_check_clock(en);
        rules_advance_before(en->rules, now);
}

void engine_reading(Engine *en, int64_t now, const Reading *rd)
{
        engine_advance_before(en, now);
        rules_reading(en->rules, rd);
        rules_arm(en);
}

void engine_event(Engine *en, int64_t now, const Event *e)
{
        engine_advance_before(en, now);
        rules_event(en->rules, e);
        rules_arm(en);
}

void engine_nurse_reading(Engine *en, Metric m, double value, const char *unit)
{
        assert(en->rules);
        rules_nurse_reading(en->rules, m, value, unit);
        rules_arm(en);
}

void engine_nurse_consciousness(Engine *en, int64_t now, char acvpu)
{
        engine_advance_before(en, now);
        (void)rules_nurse_consciousness(en->rules, acvpu);
        rules_arm(en);
}

/* ---- lifecycle ---- */

int engine_new(sd_event *e, const Config *c, Outbox *o, engine_queue_fn queue, void *userdata, Engine **ret)
{
        Engine *en;

        assert(e && c && o && queue && ret);
        en = calloc(1, sizeof *en);
        if (!en)
                return -ENOMEM;
        en->event = sd_event_ref(e);
        en->config = c;
        en->outbox = o;
        en->queue = queue;
        en->queue_userdata = userdata;
        en->clock_change_fd = -EBADF;
        *ret = en;
        return 0;
}

Engine *engine_free(Engine *en)
{
        if (!en)
                return NULL;
        sd_event_source_disable_unref(en->rules_timer);
        sd_event_source_disable_unref(en->rules_save_timer);
        en->rules = rules_free(en->rules);
        sd_event_source_disable_unref(en->clock_change);
        if (en->clock_change_fd >= 0)
                close(en->clock_change_fd);
        sd_event_unref(en->event);
        free(en);
        return NULL;
}

int engine_start(Engine *en, Alerts *alerts)
{
        int r;

        assert(alerts);
        en->alerts = alerts;
        r = clock_setup(en);
        if (r < 0)
                return r;
        return rules_setup(en, true);
}

void engine_shutdown(Engine *en)
{
        if (en->rules)
                rules_save(en);
}

void engine_reload(Engine *en, const Config *c, bool restart)
{
        en->config = c;
        (void)rules_reload(en, restart);
}
