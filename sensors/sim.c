#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/alloc-util.h"
#include "common/mac.h"
#include "common/time-util.h"
#include "sensors/bthome.h"
#include "sensors/health-encode.h"
#include "sensors/sim.h"

#define MIN (60LL * 1000000)
#define HOUR (60 * MIN)
#define DAY (24 * HOUR)
#define CHUNK 256 /* actions per dispatch at Speed=max */

typedef enum ActionKind {
        ACT_EVENT,       /* a wired input: an event as GPIO would give it */
        ACT_BP,          /* a blood-pressure cuff measurement (a = systolic, b = diastolic, c = pulse) */
        ACT_WEIGHT,      /* a = kg */
        ACT_PLX,         /* a = SpO2, b = pulse */
        ACT_TEMPERATURE, /* a = degrees Celsius */
        ACT_MOTION,      /* a BTHome motion sensor, a = 1 motion / 0 clear */
        ACT_CLIMATE,     /* the encrypted BTHome room sensor: a = Cel, b = %RH, c = battery % or -1 */
} ActionKind;

typedef struct Action {
        int64_t at; /* simulated UTC usec */
        ActionKind kind;
        const char *sensor;
        union {
                struct {
                        double a, b, c;
                } m;
                struct {
                        EventKind kind;
                        int value;
                } e;
        };
} Action;

/* Motion sensors advertise unencrypted; the climate sensor is encrypted with this bind key. */
static const SimDevice devices[] = {
    {"bp-cuff", PROFILE_BLOOD_PRESSURE, "A4:C1:38:10:00:01", NULL},
    {"scale", PROFILE_WEIGHT, "A4:C1:38:10:00:02", NULL},
    {"oximeter", PROFILE_PLX_SPOT, "A4:C1:38:10:00:03", NULL},
    {"thermometer", PROFILE_TEMPERATURE, "A4:C1:38:10:00:04", NULL},
    {"bedroom-motion", PROFILE_BTHOME, "A4:C1:38:20:00:01", NULL},
    {"bathroom-motion", PROFILE_BTHOME, "A4:C1:38:20:00:02", NULL},
    {"kitchen-motion", PROFILE_BTHOME, "A4:C1:38:20:00:03", NULL},
    {"living-room-motion", PROFILE_BTHOME, "A4:C1:38:20:00:04", NULL},
    {"hall-motion", PROFILE_BTHOME, "A4:C1:38:20:00:05", NULL},
    {"living-room-climate", PROFILE_BTHOME, "A4:C1:38:30:00:01", "231d39c1d7cc1ab1aee224cd096db932"},
};

static const SimRole roles[] = {
    {"bp-cuff", NULL, false},
    {"scale", NULL, false},
    {"oximeter", NULL, false},
    {"thermometer", NULL, false},
    {"bedroom-motion", "bedroom", false},
    {"bathroom-motion", "bathroom", false},
    {"kitchen-motion", "kitchen", false},
    {"living-room-motion", "living-room", false},
    {"hall-motion", "hall", false},
    {"living-room-climate", "living-room", false},
    {"bed-mat", "bed", true},
    {"front-door", "exit-door", true},
    {"dispenser", "dispenser", true},
};

const SimRole *sim_roles(size_t *ret_n)
{
        *ret_n = sizeof roles / sizeof roles[0];
        return roles;
}

const SimDevice *sim_devices(size_t *ret_n)
{
        *ret_n = sizeof devices / sizeof devices[0];
        return devices;
}

struct Sim {
        sd_event *event;
        sd_event_source *timer; /* Speed>0: fires at the real time of the next action */
        sd_event_source *defer; /* Speed=max: runs while not paused */
        SimOptions opt;
        SensorSink sink;
        uint8_t packet_id[sizeof devices / sizeof devices[0]]; /* BTHome packet ids, per device */
        uint8_t climate_key[16], climate_mac[6];

        uint64_t rng;        /* xorshift64* state */
        int64_t sim_start;   /* simulated clock at start */
        uint64_t real_start; /* CLOCK_MONOTONIC at start */
        int64_t day;         /* start (00:00 UTC) of the day planned in actions */
        Action *actions;     /* that day's plan, sorted by time */
        size_t n_actions, cap_actions, next;
        uint64_t emitted;
        bool paused, stopped;
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
        if (GREEDY_REALLOC(s->actions, s->cap_actions, s->n_actions + 1, 256) < 0)
                return -ENOMEM;
        s->actions[s->n_actions++] = a;
        return 0;
}

static void measure(Sim *s, int64_t at, ActionKind k, const char *sensor, double a, double b, double c)
{
        (void)add(s, (Action){.at = at, .kind = k, .sensor = sensor, .m = {a, b, c}});
}

static void event(Sim *s, int64_t at, const char *sensor, EventKind k, int v)
{
        (void)add(s, (Action){.at = at, .kind = ACT_EVENT, .sensor = sensor, .e = {k, v}});
}

/* A motion sensor reports motion, then clear 90 s later, as BTHome PIR sensors do. */
static void motion(Sim *s, int64_t at, const char *sensor)
{
        measure(s, at, ACT_MOTION, sensor, 1, 0, 0);
        measure(s, at + 90 * 1000000LL, ACT_MOTION, sensor, 0, 0, 0);
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
        measure(s, t, ACT_BP, "bp-cuff", round(normal(s, 134, 8)), round(normal(s, 82, 6)),
                round(normal(s, 72, 5)));
        measure(s, t + 5 * MIN, ACT_WEIGHT, "scale", round_to(normal(s, 78.0, 0.3), 0.05), 0, 0);

        /* Medication: due at the scheduled times, usually taken within a quarter of an hour. */
        for (size_t i = 0; i < sizeof doses / sizeof doses[0]; i++) {
                t = day + doses[i];
                event(s, t, "dispenser", EVENT_DOSE_DUE, 1);
                if (uniform(s, 0, 1) < 0.97)
                        event(s, t + (int64_t)uniform(s, 1 * MIN, 15 * MIN), "dispenser", EVENT_DOSE_TAKEN,
                              1);
        }

        /* Mid-morning spot checks. */
        t = day + 9 * HOUR + (int64_t)uniform(s, 0, 30 * MIN);
        measure(s, t, ACT_PLX, "oximeter", fmin(100, round(normal(s, 96.5, 1.0))), round(normal(s, 74, 5)),
                0);
        measure(s, t + 2 * MIN, ACT_TEMPERATURE, "thermometer", round_to(normal(s, 36.8, 0.2), 0.1), 0, 0);

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
                /* The battery is reported once a day, at noon. */
                double battery = t == day + 12 * HOUR
                                     ? fmax(0, round(100 - (double)((day - s->sim_start) / DAY) * 0.05))
                                     : -1;
                measure(s, t, ACT_CLIMATE, "living-room-climate",
                        round_to(21.0 + 1.5 * sin((hour - 9) / 24 * 2 * M_PI) + normal(s, 0, 0.1), 0.01),
                        round_to(normal(s, 38, 1.5), 0.01), battery);
        }

        qsort(s->actions, s->n_actions, sizeof *s->actions, cmp_action);
}

static const Action *peek(Sim *s)
{
        while (s->next >= s->n_actions)
                plan_day(s, s->day + DAY);
        return &s->actions[s->next];
}

static size_t device_index(const char *id)
{
        for (size_t i = 0; i < sizeof devices / sizeof devices[0]; i++)
                if (strcmp(devices[i].id, id) == 0)
                        return i;
        abort(); /* the plan names only listed devices */
}

static void put_le(uint8_t *p, uint32_t v, int n)
{
        for (int i = 0; i < n; i++)
                p[i] = (uint8_t)(v >> (8 * i));
}

static void frame(Sim *s, const Action *a, const uint8_t *buf, size_t len)
{
        s->sink.frame(s->sink.userdata, a->sensor, 0, buf, len, a->at);
}

/* A BTHome advertisement with a packet id; motion sensors repeat it, as real ones do. */
static void bthome(Sim *s, const Action *a, uint8_t *objs, size_t n, bool encrypted, int repeats)
{
        uint8_t out[64];
        size_t i = device_index(a->sensor);
        int len;

        objs[0] = 0x00; /* packet id object */
        objs[1] = ++s->packet_id[i];
        /* The encryption counter must only grow, also across restarts: seconds of simulated time. */
        len = encode_bthome(objs, n, false, encrypted ? s->climate_key : NULL, s->climate_mac,
                            (uint32_t)(a->at / 1000000), out, sizeof out);
        if (len < 0)
                return;
        for (int r = 0; r < repeats; r++)
                frame(s, a, out, (size_t)len);
}

static void emit(Sim *s, const Action *a)
{
        DateTime dt = datetime_from_usec(a->at, s->opt.utc_offset_sec);
        uint8_t buf[64];
        size_t n;

        switch (a->kind) {
        case ACT_EVENT: {
                Event e = {.kind = a->e.kind, .value = a->e.value, .time_usec = a->at};
                snprintf(e.sensor, sizeof e.sensor, "%s", a->sensor);
                s->sink.event(s->sink.userdata, &e);
                break;
        }
        case ACT_BP: {
                BloodPressureValue v = {.systolic = a->m.a,
                                        .diastolic = a->m.b,
                                        .map = round(a->m.b + (a->m.a - a->m.b) / 3),
                                        .pulse = a->m.c,
                                        .has_time = true,
                                        .time = dt,
                                        .user = 1};
                n = encode_blood_pressure(buf, &v);
                frame(s, a, buf, n);
                break;
        }
        case ACT_WEIGHT:
                n = encode_weight_kg(buf, a->m.a, &dt, 1);
                frame(s, a, buf, n);
                break;
        case ACT_PLX:
                n = encode_plx_spot(buf, a->m.a, a->m.b, NULL); /* this oximeter has no clock */
                frame(s, a, buf, n);
                break;
        case ACT_TEMPERATURE:
                n = encode_temperature_cel(buf, a->m.a, &dt, 1 /* armpit */);
                frame(s, a, buf, n);
                break;
        case ACT_MOTION:
                buf[2] = 0x21;
                buf[3] = (uint8_t)a->m.a;
                bthome(s, a, buf, 4, false, 2);
                break;
        case ACT_CLIMATE:
                n = 2;
                if (a->m.c >= 0) {
                        buf[n++] = 0x01;
                        buf[n++] = (uint8_t)a->m.c;
                }
                buf[n++] = 0x02;
                put_le(buf + n, (uint32_t)(int32_t)lround(a->m.a * 100), 2);
                n += 2;
                buf[n++] = 0x03;
                put_le(buf + n, (uint32_t)lround(a->m.b * 100), 2);
                n += 2;
                bthome(s, a, buf, n, true, 1);
                break;
        }
        s->emitted++;
}

/* Returns true when the simulation has stopped. */
static bool step(Sim *s)
{
        const Action *a;
        if (s->stopped)
                return true;
        a = peek(s);
        /* Actions planned before the simulated start (the first day) are skipped. */
        if (a->at >= s->sim_start)
                emit(s, a);
        s->next++;
        return s->stopped; /* the sink may have stopped us */
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
        while (!s->stopped && real_time_of(s, peek(s)->at) <= usec)
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
        for (size_t i = 0; i < sizeof devices / sizeof devices[0]; i++)
                if (devices[i].key) {
                        (void)parse_key(devices[i].key, s->climate_key);
                        (void)parse_mac(devices[i].address, s->climate_mac);
                }
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

void sim_stop(Sim *s)
{
        s->stopped = true;
        if (s->timer)
                (void)sd_event_source_set_enabled(s->timer, SD_EVENT_OFF);
        if (s->defer)
                (void)sd_event_source_set_enabled(s->defer, SD_EVENT_OFF);
}

int sim_start(Sim *s)
{
        int r;

        s->sim_start = s->opt.start_usec ? s->opt.start_usec : now_realtime();
        r = sd_event_now(s->event, CLOCK_MONOTONIC, &s->real_start);
        if (r < 0)
                return r;
        plan_day(s, s->sim_start - ((s->sim_start % DAY) + DAY) % DAY);

        if (s->opt.speed > 0)
                return sd_event_add_time(s->event, &s->timer, CLOCK_MONOTONIC, real_time_of(s, peek(s)->at),
                                         0, on_timer, s);
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
        if (s->defer && !s->stopped)
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
