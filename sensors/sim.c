#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sensors/sim.h"

#define MIN (60LL * 1000000)
#define HOUR (60 * MIN)
#define DAY (24 * HOUR)
#define CHUNK 256 /* actions per dispatch at Speed=max */

typedef enum ActionKind {
        ACT_READING,
        ACT_EVENT,
} ActionKind;

typedef struct Action {
        int64_t at; /* simulated UTC usec */
        ActionKind kind;
        const char *sensor;
        union {
                struct {
                        Metric metric;
                        double value;
                        const char *unit;
                        bool device_time;
                } r;
                struct {
                        EventKind kind;
                        int value;
                } e;
        };
} Action;

struct Sim {
        sd_event *event;
        sd_event_source *timer; /* Speed>0: fires at the real time of the next action */
        sd_event_source *defer; /* Speed=max: runs while not paused */
        SimOptions opt;
        SensorSink sink;
        sim_done_fn done_cb;
        void *done_userdata;

        uint64_t rng;           /* xorshift64* state */
        int64_t sim_start;      /* simulated clock at start */
        uint64_t real_start;    /* CLOCK_MONOTONIC at start */
        int64_t day;            /* start (00:00 UTC) of the day planned in actions */
        Action *actions;        /* that day's plan, sorted by time */
        size_t n_actions, cap_actions, next;
        uint64_t emitted;
        bool paused, done;
};

static uint64_t rnd(Sim *s)
{
        s->rng ^= s->rng >> 12;
        s->rng ^= s->rng << 25;
        s->rng ^= s->rng >> 27;
        return s->rng * 0x2545F4914F6CDD1DULL;
}

static double uniform(Sim *s, double lo, double hi)
{
        return lo + (hi - lo) * ((double)(rnd(s) >> 11) / (double)(1ULL << 53));
}

static double normal(Sim *s, double mean, double sd)
{
        /* Box-Muller; u1 > 0 so the log is finite. */
        double u1 = uniform(s, 1e-12, 1), u2 = uniform(s, 0, 1);
        return mean + sd * sqrt(-2 * log(u1)) * cos(2 * M_PI * u2);
}

/* Rounds to a multiple of step (0.01, 0.05, 0.1, ...): dividing by the integer reciprocal gives the
 * double nearest to the decimal, so 19.99 prints as 19.99. */
static double round_to(double v, double step)
{
        double k = round(1 / step);
        return round(v * k) / k;
}

static int add(Sim *s, Action a)
{
        if (s->n_actions == s->cap_actions) {
                size_t cap = s->cap_actions ? s->cap_actions * 2 : 256;
                Action *n = realloc(s->actions, cap * sizeof *n);
                if (!n)
                        return -ENOMEM;
                s->actions = n;
                s->cap_actions = cap;
        }
        s->actions[s->n_actions++] = a;
        return 0;
}

static void reading(Sim *s, int64_t at, const char *sensor, Metric m, double v, const char *unit, bool device_time)
{
        (void)add(s, (Action){.at = at, .kind = ACT_READING, .sensor = sensor, .r = {m, v, unit, device_time}});
}

static void event(Sim *s, int64_t at, const char *sensor, EventKind k, int v)
{
        (void)add(s, (Action){.at = at, .kind = ACT_EVENT, .sensor = sensor, .e = {k, v}});
}

/* A motion sensor reports motion, then clear 90 s later, as BTHome PIR sensors do. */
static void motion(Sim *s, int64_t at, const char *sensor)
{
        event(s, at, sensor, EVENT_MOTION, 1);
        event(s, at + 90 * 1000000LL, sensor, EVENT_MOTION, 0);
}

static int cmp_action(const void *a, const void *b)
{
        const Action *x = a, *y = b;
        return x->at < y->at ? -1 : x->at > y->at;
}

static void plan_day(Sim *s, int64_t day)
{
        static const char *const rooms[] = {"kitchen-motion", "living-room-motion", "bathroom-motion",
                                            "living-room-motion", "hall-motion"};
        static const int64_t doses[] = {8 * HOUR, 14 * HOUR, 20 * HOUR};
        int64_t wake = day + 6 * HOUR + 30 * MIN + (int64_t)uniform(s, 0, 60 * MIN);
        int64_t sleep = day + 22 * HOUR + (int64_t)uniform(s, 0, 60 * MIN);
        int64_t t;

        s->n_actions = s->next = 0;
        s->day = day;

        /* The night: a visit to the bathroom on most nights. */
        if (uniform(s, 0, 1) < 0.7) {
                t = day + 2 * HOUR + (int64_t)uniform(s, 0, 2 * HOUR);
                event(s, t, "bed-mat", EVENT_BED, 0);
                motion(s, t + 20 * 1000000LL, "bedroom-motion");
                motion(s, t + 60 * 1000000LL, "bathroom-motion");
                event(s, t + (int64_t)uniform(s, 4 * MIN, 12 * MIN), "bed-mat", EVENT_BED, 1);
        }

        /* Morning: out of bed, bathroom, measurements. */
        event(s, wake, "bed-mat", EVENT_BED, 0);
        motion(s, wake + 30 * 1000000LL, "bedroom-motion");
        motion(s, wake + 3 * MIN, "bathroom-motion");
        t = wake + 40 * MIN + (int64_t)uniform(s, 0, 20 * MIN);
        {
                double sys = round(normal(s, 134, 8)), dia = round(normal(s, 82, 6));
                reading(s, t, "bp-cuff", METRIC_SYSTOLIC, sys, "mm[Hg]", true);
                reading(s, t, "bp-cuff", METRIC_DIASTOLIC, dia, "mm[Hg]", true);
                reading(s, t, "bp-cuff", METRIC_MEAN_ARTERIAL_PRESSURE, round(dia + (sys - dia) / 3), "mm[Hg]", true);
                reading(s, t, "bp-cuff", METRIC_PULSE_RATE, round(normal(s, 72, 5)), "/min", true);
        }
        reading(s, t + 5 * MIN, "scale", METRIC_BODY_WEIGHT, round_to(normal(s, 78.0, 0.3), 0.05), "kg", true);

        /* Medication: due at the scheduled times, usually taken within a quarter of an hour. */
        for (size_t i = 0; i < sizeof doses / sizeof doses[0]; i++) {
                t = day + doses[i];
                event(s, t, "dispenser", EVENT_DOSE_DUE, 1);
                if (uniform(s, 0, 1) < 0.97)
                        event(s, t + (int64_t)uniform(s, 1 * MIN, 15 * MIN), "dispenser", EVENT_DOSE_TAKEN, 1);
        }

        /* Mid-morning spot checks. */
        t = day + 9 * HOUR + (int64_t)uniform(s, 0, 30 * MIN);
        reading(s, t, "oximeter", METRIC_SPO2, round(normal(s, 96.5, 1.0)), "%", false);
        reading(s, t, "oximeter", METRIC_PULSE_RATE, round(normal(s, 74, 5)), "/min", false);
        reading(s, t + 2 * MIN, "thermometer", METRIC_BODY_TEMPERATURE, round_to(normal(s, 36.8, 0.2), 0.1), "Cel",
                true);

        /* Going out for a walk or shopping on most days. */
        if (uniform(s, 0, 1) < 0.6) {
                int64_t out = day + 10 * HOUR + (int64_t)uniform(s, 0, 60 * MIN);
                int64_t back = out + (int64_t)uniform(s, 30 * MIN, 90 * MIN);
                motion(s, out - MIN, "hall-motion");
                event(s, out, "front-door", EVENT_DOOR, 1);
                event(s, out + 20 * 1000000LL, "front-door", EVENT_DOOR, 0);
                event(s, back, "front-door", EVENT_DOOR, 1);
                event(s, back + 15 * 1000000LL, "front-door", EVENT_DOOR, 0);
                motion(s, back + 30 * 1000000LL, "hall-motion");
        }

        /* Moving about the home through the day. */
        for (t = wake + 20 * MIN; t < sleep - 10 * MIN; t += (int64_t)uniform(s, 10 * MIN, 40 * MIN))
                motion(s, t, rooms[rnd(s) % (sizeof rooms / sizeof rooms[0])]);

        /* Bed. */
        motion(s, sleep - 5 * MIN, "bedroom-motion");
        event(s, sleep, "bed-mat", EVENT_BED, 1);

        /* Room climate every 10 minutes, battery once a day. */
        for (t = day; t < day + DAY; t += 10 * MIN) {
                double hour = (double)(t - day) / HOUR;
                reading(s, t, "living-room-climate", METRIC_TEMPERATURE,
                        round_to(21.0 + 1.5 * sin((hour - 9) / 24 * 2 * M_PI) + normal(s, 0, 0.1), 0.01), "Cel",
                        false);
                reading(s, t, "living-room-climate", METRIC_HUMIDITY, round_to(normal(s, 38, 1.5), 0.01), "%", false);
        }
        reading(s, day + 12 * HOUR, "living-room-climate", METRIC_BATTERY,
                fmax(0, 100 - (double)((day - s->sim_start) / DAY) * 0.05), "%", false);

        qsort(s->actions, s->n_actions, sizeof *s->actions, cmp_action);
}

static const Action *peek(Sim *s)
{
        while (s->next >= s->n_actions)
                plan_day(s, s->day + DAY);
        return &s->actions[s->next];
}

static void emit(Sim *s, const Action *a)
{
        switch (a->kind) {
        case ACT_READING: {
                Reading r = {.metric = a->r.metric,
                             .value = a->r.value,
                             .unit = a->r.unit,
                             .time_usec = a->at,
                             .time_quality = a->r.device_time ? TIME_DEVICE : TIME_SYNCED};
                snprintf(r.sensor, sizeof r.sensor, "%s", a->sensor);
                s->sink.reading(s->sink.userdata, &r);
                break;
        }
        case ACT_EVENT: {
                Event e = {.kind = a->e.kind, .value = a->e.value, .time_usec = a->at};
                snprintf(e.sensor, sizeof e.sensor, "%s", a->sensor);
                s->sink.event(s->sink.userdata, &e);
                break;
        }
        }
        s->emitted++;
}

/* Returns true when the limit has been reached. */
static bool step(Sim *s)
{
        const Action *a;
        if (s->done)
                return true;
        a = peek(s);
        /* Actions planned before the simulated start (the first day) are skipped. */
        if (a->at >= s->sim_start)
                emit(s, a);
        s->next++;
        if (s->opt.limit && s->emitted >= s->opt.limit) {
                s->done = true;
                if (s->done_cb)
                        s->done_cb(s, s->done_userdata);
                return true;
        }
        return false;
}

static uint64_t real_time_of(const Sim *s, int64_t at)
{
        double d = (double)(at - s->sim_start) / s->opt.speed;
        return s->real_start + (d > 0 ? (uint64_t)d : 0);
}

static int on_timer(sd_event_source *src, uint64_t usec, void *userdata)
{
        Sim *s = userdata;
        /* Everything due by now (the loop may have been busy). */
        while (!s->done && real_time_of(s, peek(s)->at) <= usec)
                if (step(s))
                        return 0;
        (void)sd_event_source_set_time(src, real_time_of(s, peek(s)->at));
        (void)sd_event_source_set_enabled(src, SD_EVENT_ONESHOT);
        return 0;
}

static int on_defer(sd_event_source *src, void *userdata)
{
        Sim *s = userdata;
        for (int i = 0; i < CHUNK && !s->paused; i++)
                if (step(s)) {
                        (void)sd_event_source_set_enabled(src, SD_EVENT_OFF);
                        return 0;
                }
        return 0;
}

int sim_new(sd_event *e, const SimOptions *opt, const SensorSink *sink, Sim **ret)
{
        Sim *s = calloc(1, sizeof *s);
        if (!s)
                return -ENOMEM;
        s->event = sd_event_ref(e);
        s->opt = *opt;
        s->sink = *sink;
        s->rng = opt->seed ? opt->seed : 0x9E3779B97F4A7C15ULL;
        *ret = s;
        return 0;
}

Sim *sim_free(Sim *s)
{
        if (!s)
                return NULL;
        sd_event_source_disable_unref(s->timer);
        sd_event_source_disable_unref(s->defer);
        sd_event_unref(s->event);
        free(s->actions);
        free(s);
        return NULL;
}

void sim_set_done_callback(Sim *s, sim_done_fn fn, void *userdata)
{
        s->done_cb = fn;
        s->done_userdata = userdata;
}

int sim_start(Sim *s)
{
        struct timespec ts;
        int r;

        if (s->opt.start_usec)
                s->sim_start = s->opt.start_usec;
        else {
                clock_gettime(CLOCK_REALTIME, &ts);
                s->sim_start = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
        }
        r = sd_event_now(s->event, CLOCK_MONOTONIC, &s->real_start);
        if (r < 0)
                return r;
        plan_day(s, s->sim_start - ((s->sim_start % DAY) + DAY) % DAY);

        if (s->opt.speed > 0)
                return sd_event_add_time(s->event, &s->timer, CLOCK_MONOTONIC, real_time_of(s, peek(s)->at), 0,
                                         on_timer, s);
        r = sd_event_add_defer(s->event, &s->defer, on_defer, s);
        if (r < 0)
                return r;
        r = sd_event_source_set_enabled(s->defer, SD_EVENT_ON); /* defer sources start as ONESHOT */
        if (r < 0)
                return r;
        /* Let the uplink and the store run between chunks. */
        return sd_event_source_set_priority(s->defer, SD_EVENT_PRIORITY_IDLE);
}

void sim_set_paused(Sim *s, bool paused)
{
        s->paused = paused;
        if (s->defer && !s->done)
                (void)sd_event_source_set_enabled(s->defer, paused ? SD_EVENT_OFF : SD_EVENT_ON);
}

bool sim_paused(const Sim *s)
{
        return s->paused;
}

uint64_t sim_emitted(const Sim *s)
{
        return s->emitted;
}

int64_t sim_now(const Sim *s)
{
        return s->next < s->n_actions ? s->actions[s->next].at : s->day;
}
