#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gateway/alert-kind.h"
#include "gateway/base.h"
#include "gateway/news2.h"
#include "gateway/rules-evidence.h"
#include "gateway/rules.h"
#include "gateway/timefmt.h"

#define MIN (60LL * 1000000)
#define HOUR (60 * MIN)
#define DAY (24 * HOUR)
#define AWAY_QUIET (10 * MIN)  /* after the exit door, this long without indoor motion means "gone out" */
#define LEARN_DAYS 14          /* quiet spells are learned over this many days */
#define MAX_DUES 16
#define MAX_WEIGHTS 64
#define CUSUM_K 0.5
#define CUSUM_H 5.0
#define BASELINE_ALPHA 0.1
#define BASELINE_MIN_READINGS 7
#define STATE_VERSION 1
#define MIN_MAX(x, lo, hi) ((x) < (lo) ? (lo) : (x) > (hi) ? (hi) : (x))

typedef enum Role {
        ROLE_ROOM, /* any indoor place: bedroom, bathroom, kitchen, living-room, hall, ... */
        ROLE_EXIT_DOOR,
        ROLE_BED,
        ROLE_DISPENSER,
        ROLE_ALARM_BUTTON,
} Role;

typedef struct SensorState {
        char id[SENSOR_ID_MAX];
        Role role;
        int64_t expected;  /* silence limit, usec; 0: not watched */
        int64_t last_seen;
        bool is_input;     /* a wired input: events only */
        bool added;        /* by rules_add_sensor(), not from the configuration: kept over a reload */
} SensorState;

typedef struct Open {
        AlertKind kind;
        char key[SENSOR_ID_MAX];
        char id[sizeof(((Alert *)NULL)->id)];
        AlertSeverity severity;
        int64_t raised;
} Open;

typedef struct Param {
        bool have;
        double value;
        int score;
        int64_t time;
} Param;

typedef struct Baseline {
        int dir;          /* +1: rising is bad, -1: falling is bad */
        double sd_min;
        unsigned n;
        double mean, var, cusum;
        int64_t first;
} Baseline;

typedef struct Due {
        int64_t at;
        bool taken, reported;
        char key[32];
} Due;

/* What the pending deadlines depend on, compared after each input to tell when they changed. */
typedef struct Pending {
        int64_t door_at, bed_exit_at, bed_since, next_schedule;
        bool away, night_exit_pending, in_bed, bed_known;
        size_t n_dues;
        Due dues[MAX_DUES];
} Pending;

struct Rules {
        rules_alert_fn fn;
        void *userdata;
        char patient[65];
        int64_t now;
        uint64_t gen[_RULES_CHANGED_MAX];
        Pending pending; /* as at the last look */

        /* settings copied from the configuration */
        unsigned spo2_scale;
        bool oxygen;
        int night_start, night_end; /* minutes after local midnight */
        int schedule[12];
        size_t n_schedule;
        int64_t grace, night_exit, bed_exit, news2_window, inact_floor, inact_ceiling, inact_default, alarm_clear;
        double weight_gain_kg;
        unsigned weight_gain_days, baseline_min_days, battery_low;
        struct {
                bool set, has_low, has_high;
                double low, high;
        } threshold[_METRIC_MAX];

        SensorState *sensors;
        size_t n_sensors, cap_sensors;
        /* Open alerts, in the order raised. Grows: an open alert is never forgotten. */
        Open *open;
        size_t n_open, cap_open;

        /* NEWS2 */
        Param param[_NEWS2_MAX];
        /* baselines, per metric */
        Baseline baseline[_METRIC_MAX];
        /* morning weights: local day start and weight */
        struct {
                int64_t day;
                double kg;
        } weights[MAX_WEIGHTS];
        size_t n_weights;

        /* activity */
        int64_t last_activity;
        bool in_bed;
        bool bed_known;           /* a bed event has been seen; before that, at night, assume asleep */
        int64_t bed_since;
        bool away;
        int64_t door_at;          /* last exit-door event; 0: none pending */
        bool night_exit_pending;
        int64_t bed_exit_at;      /* out of bed in the night window; 0: not pending */
        unsigned maxspell[LEARN_DAYS][24]; /* longest quiet spell (minutes) seen during each local hour */
        int64_t learn_day;        /* local day of the current slot */
        unsigned learned_days;

        /* medication */
        Due dues[MAX_DUES];
        size_t n_dues;
        int64_t next_schedule;    /* next scheduled dose time not yet registered */

        /* cached local day for time arithmetic */
        int64_t cache_day_start, cache_day_end;
};

/* ---- local time ---- */

static int64_t local_day_start(Rules *r, int64_t t)
{
        time_t s;
        struct tm tm;

        if (t >= r->cache_day_start && t < r->cache_day_end)
                return r->cache_day_start;
        s = (time_t)(t / 1000000);
        localtime_r(&s, &tm);
        tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
        tm.tm_isdst = -1;
        r->cache_day_start = (int64_t)mktime(&tm) * 1000000;
        tm.tm_mday++;
        tm.tm_isdst = -1;
        r->cache_day_end = (int64_t)mktime(&tm) * 1000000;
        return r->cache_day_start;
}

/* The wall clock's minute (00:00 is 0): on a day with a daylight-saving change, 08:00 is not eight
 * hours after midnight. */
static int minute_of_day(Rules *r, int64_t t)
{
        int64_t day = local_day_start(r, t);
        time_t s;
        struct tm tm;

        if (r->cache_day_end - day == DAY)
                return (int)((t - day) / MIN);
        s = (time_t)(t / 1000000);
        localtime_r(&s, &tm);
        return tm.tm_hour * 60 + tm.tm_min;
}

/* The instant the wall clock shows `minute` on the local day that starts at `day`. A time the clock
 * skips (02:30 when it goes from 02:00 to 03:00) is the instant it would have shown without the
 * change (03:30 summer time); a time it shows twice is mktime()'s choice, one of the two. */
static int64_t local_at(Rules *r, int64_t day, int minute)
{
        time_t s = (time_t)(day / 1000000);
        struct tm tm;

        if (local_day_start(r, day) == day && r->cache_day_end - day == DAY)
                return day + minute * MIN;
        localtime_r(&s, &tm);
        tm.tm_hour = minute / 60;
        tm.tm_min = minute % 60;
        tm.tm_sec = 0;
        tm.tm_isdst = -1;
        return (int64_t)mktime(&tm) * 1000000;
}

static bool in_window(int m, int start, int end)
{
        return start < end ? (m >= start && m < end) : (m >= start || m < end);
}

static bool in_night(Rules *r, int64_t t)
{
        return in_window(minute_of_day(r, t), r->night_start, r->night_end);
}

/* The most recent end of a night window at or before t. */
static int64_t last_night_end(Rules *r, int64_t t)
{
        int64_t e = local_at(r, local_day_start(r, t), r->night_end);
        return e <= t ? e : local_at(r, local_day_start(r, t - DAY), r->night_end);
}

static int64_t next_night_end(Rules *r, int64_t t)
{
        int64_t e = local_at(r, local_day_start(r, t), r->night_end);
        return e > t ? e : local_at(r, local_day_start(r, t + DAY), r->night_end);
}

/* ---- alerts ---- */

static void changed(Rules *r, RulesChange what)
{
        r->gen[what]++;
}

static Open *find_open(Rules *r, AlertKind kind, const char *key)
{
        for (size_t i = 0; i < r->n_open; i++)
                if (r->open[i].kind == kind && streq(r->open[i].key, key))
                        return &r->open[i];
        return NULL;
}

static void emit(Rules *r, const Open *o, AlertState state, const char *message, const json_t *evidence,
                 char *ret_id, size_t id_size)
{
        _cleanup_free_ char *text = evidence_format(evidence);
        Alert a = {.kind = alert_kind_to_string(o->kind),
                   .severity = o->severity,
                   .state = state,
                   .patient = r->patient[0] ? r->patient : NULL,
                   .time_usec = r->now,
                   .message = message,
                   .evidence = text ?: "[]"};
        if (state == ALERT_CLEARED)
                snprintf(a.id, sizeof a.id, "%s", o->id);
        if (r->fn)
                r->fn(r->userdata, &a);
        if (ret_id)
                snprintf(ret_id, id_size, "%s", a.id);
}

/* Raises kind/key unless it is open already. Returns true if raised. */
/* Remembers an open alert; the table grows (never overwrites). */
static int open_append(Rules *r, const Open *o)
{
        if (r->n_open == r->cap_open) {
                size_t cap = r->cap_open ? r->cap_open * 2 : 16;
                Open *n = realloc(r->open, cap * sizeof *n);
                if (!n)
                        return -ENOMEM;
                r->open = n;
                r->cap_open = cap;
        }
        r->open[r->n_open++] = *o;
        return 0;
}

static bool raise_alert(Rules *r, AlertKind kind, const char *key, AlertSeverity sev, const char *message,
                        const json_t *evidence)
{
        Open o = {.kind = kind, .severity = sev, .raised = r->now};

        if (find_open(r, kind, key))
                return false;
        snprintf(o.key, sizeof o.key, "%s", key);
        /* The raise goes out first, then it is remembered: a crash in between may raise it twice
         * after a restart, but can never hold an alert open that nobody was told about. */
        emit(r, &o, ALERT_RAISED, message, evidence, o.id, sizeof o.id);
        if (open_append(r, &o) < 0)
                return true; /* out of memory: raised, but it cannot be cleared */
        changed(r, RULES_CHANGED_ALERTS);
        return true;
}

static void drop_open(Rules *r, Open *o)
{
        size_t i = (size_t)(o - r->open);
        memmove(r->open + i, r->open + i + 1, (r->n_open - i - 1) * sizeof *r->open);
        r->n_open--;
        changed(r, RULES_CHANGED_ALERTS);
}

static bool clear_open(Rules *r, Open *o, const char *message, const json_t *evidence)
{
        Open copy = *o;
        drop_open(r, o);
        emit(r, &copy, ALERT_CLEARED, message, evidence, NULL, 0);
        return true;
}

static bool clear_alert(Rules *r, AlertKind kind, const char *key, const char *message, const json_t *evidence)
{
        Open *o = find_open(r, kind, key);
        if (!o)
                return false;
        return clear_open(r, o, message, evidence);
}

void rules_clear_all(Rules *r, const char *why)
{
        while (r->n_open > 0)
                clear_open(r, &r->open[0], why, NULL);
}

size_t rules_open_count(const Rules *r)
{
        return r->n_open;
}

/* ---- set-up ---- */

static Role role_of(const char *role)
{
        if (!role)
                return ROLE_ROOM;
        if (streq(role, "exit-door"))
                return ROLE_EXIT_DOOR;
        if (streq(role, "bed"))
                return ROLE_BED;
        if (streq(role, "dispenser"))
                return ROLE_DISPENSER;
        if (streq(role, "alarm-button"))
                return ROLE_ALARM_BUTTON;
        return ROLE_ROOM;
}

static SensorState *sensor(Rules *r, const char *id)
{
        for (size_t i = 0; i < r->n_sensors; i++)
                if (streq(r->sensors[i].id, id))
                        return &r->sensors[i];
        return NULL;
}

static void baseline_init(Rules *r)
{
        static const struct {
                Metric m;
                int dir;
                double sd_min;
        } b[] = {
                {METRIC_SYSTOLIC, +1, 6},     {METRIC_DIASTOLIC, +1, 4},   {METRIC_PULSE_RATE, +1, 4},
                {METRIC_HEART_RATE, +1, 4},   {METRIC_SPO2, -1, 1.0},      {METRIC_BODY_TEMPERATURE, +1, 0.2},
                {METRIC_RESPIRATORY_RATE, +1, 1.5}, {METRIC_GLUCOSE, +1, 0},
        };
        for (size_t i = 0; i < ELEMENTSOF(b); i++)
                r->baseline[b[i].m] = (Baseline){.dir = b[i].dir, .sd_min = b[i].sd_min};
}

static int64_t next_scheduled(Rules *r, int64_t after)
{
        int64_t best = INT64_MAX;
        for (int d = 0; d < 3; d++) { /* three: a 25-hour day can hold after and after + DAY */
                int64_t day = local_day_start(r, after + d * DAY);
                for (size_t i = 0; i < r->n_schedule; i++) {
                        int64_t t = local_at(r, day, r->schedule[i]);
                        if (t > after && t < best)
                                best = t;
                }
        }
        return best;
}

static SensorState *sensor_append(Rules *r, const char *id)
{
        SensorState *s;
        if (r->n_sensors == r->cap_sensors) {
                size_t cap = r->cap_sensors ? r->cap_sensors * 2 : 32;
                SensorState *n = realloc(r->sensors, cap * sizeof *n);
                if (!n)
                        return NULL;
                r->sensors = n;
                r->cap_sensors = cap;
        }
        s = &r->sensors[r->n_sensors++];
        *s = (SensorState){.last_seen = r->now};
        snprintf(s->id, sizeof s->id, "%s", id);
        return s;
}

/* The settings, copied from the configuration: everything that is not state. */
static void apply_settings(Rules *r, const Config *c)
{
        r->patient[0] = '\0';
        if (c->patient_id)
                snprintf(r->patient, sizeof r->patient, "%s", c->patient_id);
        r->spo2_scale = c->spo2_scale;
        r->oxygen = c->oxygen;
        r->night_start = c->night_start_min;
        r->night_end = c->night_end_min;
        memcpy(r->schedule, c->schedule_min, sizeof r->schedule);
        r->n_schedule = c->n_schedule;
        r->grace = c->grace_min * MIN;
        r->night_exit = c->night_exit_min * MIN;
        r->bed_exit = c->bed_exit_min * MIN;
        r->news2_window = c->news2_window_min * MIN;
        r->inact_floor = c->inactivity_floor_min * MIN;
        r->inact_ceiling = c->inactivity_ceiling_min * MIN;
        r->inact_default = c->inactivity_default_min * MIN;
        r->alarm_clear = c->alarm_clear_min * MIN;
        r->weight_gain_kg = c->weight_gain_kg;
        r->weight_gain_days = c->weight_gain_days;
        r->baseline_min_days = c->baseline_min_days;
        r->battery_low = c->battery_low_percent;
        memset(r->threshold, 0, sizeof r->threshold);
        for (size_t i = 0; i < c->n_thresholds; i++) {
                Metric m;
                if (metric_from_name(c->thresholds[i].id, &m) < 0)
                        continue;
                r->threshold[m].set = true;
                r->threshold[m].has_low = c->thresholds[i].has_low;
                r->threshold[m].has_high = c->thresholds[i].has_high;
                r->threshold[m].low = c->thresholds[i].low;
                r->threshold[m].high = c->thresholds[i].high;
        }
}

/* The configured sensors and inputs; one already known keeps when it was last heard from. */
static int apply_sensors(Rules *r, const Config *c, const SensorState *old, size_t n_old)
{
        for (size_t i = 0; i < c->n_sensors + c->n_inputs; i++) {
                bool input = i >= c->n_sensors;
                const char *id = input ? c->inputs[i - c->n_sensors].id : c->sensors[i].id;
                const char *role = input ? c->inputs[i - c->n_sensors].role : c->sensors[i].role;
                SensorState *s;

                if (sensor(r, id))
                        continue;
                s = sensor_append(r, id);
                if (!s)
                        return -ENOMEM;
                /* Only Role=alarm-button makes a button an alarm: a doorbell is a button too. */
                s->role = role_of(role);
                s->is_input = input;
                s->expected = input ? 0 : (int64_t)c->sensors[i].expected_interval_min * MIN;
                for (size_t j = 0; j < n_old; j++)
                        if (streq(old[j].id, id))
                                s->last_seen = old[j].last_seen;
        }
        return 0;
}

int rules_new(const Config *c, int64_t start, rules_alert_fn fn, void *userdata, Rules **ret)
{
        Rules *r = calloc(1, sizeof *r);
        if (!r)
                return -ENOMEM;
        r->fn = fn;
        r->userdata = userdata;
        r->now = start;
        apply_settings(r, c);
        if (apply_sensors(r, c, NULL, 0) < 0) {
                rules_free(r);
                return -ENOMEM;
        }
        baseline_init(r);
        r->last_activity = start;
        r->learn_day = local_day_start(r, start);
        r->next_schedule = next_scheduled(r, start);
        *ret = r;
        return 0;
}

int rules_reconfigure(Rules *r, const Config *c)
{
        SensorState *old = r->sensors;
        size_t n_old = r->n_sensors;
        int schedule[ELEMENTSOF(r->schedule)];
        size_t n_schedule = r->n_schedule;

        memcpy(schedule, r->schedule, sizeof schedule);
        r->sensors = NULL;
        r->n_sensors = r->cap_sensors = 0;
        apply_settings(r, c);
        if (apply_sensors(r, c, old, n_old) < 0)
                goto oom;
        for (size_t j = 0; j < n_old; j++)
                if (old[j].added && !sensor(r, old[j].id)) {
                        SensorState *s = sensor_append(r, old[j].id);
                        if (!s)
                                goto oom;
                        *s = old[j];
                }
        free(old);
        if (n_schedule != r->n_schedule || memcmp(schedule, r->schedule, n_schedule * sizeof schedule[0]) != 0)
                r->next_schedule = next_scheduled(r, r->now);
        /* An alert about something that is gone from the configuration would stay open for ever. */
        for (size_t i = 0; i < r->n_open;) {
                Open *o = &r->open[i];
                Metric m;
                if ((o->kind == ALERT_KIND_SENSOR_SILENT || o->kind == ALERT_KIND_BATTERY_LOW || o->kind == ALERT_KIND_INPUT_FAILED) &&
                    !sensor(r, o->key))
                        clear_open(r, o, "no longer configured", NULL);
                else if (o->kind == ALERT_KIND_THRESHOLD && metric_from_name(o->key, &m) >= 0 && !r->threshold[m].set)
                        clear_open(r, o, "the personal limit was removed", NULL);
                else
                        i++;
        }
        return 0;
oom:
        /* Keep running with the old sensors rather than none. */
        free(r->sensors);
        r->sensors = old;
        r->n_sensors = r->cap_sensors = n_old;
        return -ENOMEM;
}

int rules_add_sensor(Rules *r, const char *id, const char *role, unsigned expected_min, bool is_input)
{
        SensorState *s;
        if (sensor(r, id))
                return -EEXIST;
        s = sensor_append(r, id);
        if (!s)
                return -ENOMEM;
        s->role = role_of(role);
        s->expected = (int64_t)expected_min * MIN;
        s->is_input = is_input;
        s->added = true;
        return 0;
}

Rules *rules_free(Rules *r)
{
        if (!r)
                return NULL;
        free(r->sensors);
        free(r->open);
        free(r);
        return NULL;
}

/* ---- inactivity ---- */

unsigned rules_inactivity_limit_min(Rules *r, int hour)
{
        unsigned m = 0;
        int64_t limit;
        if (r->learned_days < r->baseline_min_days)
                return (unsigned)(r->inact_default / MIN);
        /* This hour and its neighbours: a nap an hour later than usual is still a nap. */
        for (int d = 0; d < LEARN_DAYS; d++)
                for (int h = hour + 23; h <= hour + 25; h++)
                        if (r->maxspell[d][h % 24] > m)
                                m = r->maxspell[d][h % 24];
        if (m == 0)
                return (unsigned)(r->inact_default / MIN);
        /* Half as long again as the longest quiet spell seen at this hour. */
        limit = (int64_t)m * 3 / 2 * MIN;
        if (limit < r->inact_floor)
                limit = r->inact_floor;
        if (limit > r->inact_ceiling)
                limit = r->inact_ceiling;
        return (unsigned)(limit / MIN);
}

/* When the current quiet spell began: in bed over the night, it begins when the night ends. */
static bool asleep_maybe(Rules *r)
{
        return r->in_bed || !r->bed_known;
}

static int64_t quiet_since(Rules *r, int64_t t)
{
        int64_t s = r->last_activity;
        if (asleep_maybe(r)) {
                int64_t e = last_night_end(r, t);
                if (r->bed_since < e && e > s)
                        s = e;
        }
        return s;
}

static int64_t inactivity_deadline(Rules *r)
{
        int64_t t = r->now, prev = r->now;
        if (r->away || find_open(r, ALERT_KIND_INACTIVITY, ""))
                return INT64_MAX;
        /* Step through the next day and a half in 5-minute steps: the limit changes by the hour. */
        for (int i = 0; i < 36 * 12; i++) {
                int64_t s, limit;
                if (!(asleep_maybe(r) && in_night(r, t))) {
                        s = quiet_since(r, t);
                        limit = rules_inactivity_limit_min(r, minute_of_day(r, t) / 60) * MIN;
                        if (t - s >= limit) {
                                /* The first moment this hour's limit is passed: the limit may have
                                 * just dropped at the hour. */
                                int64_t at = s + limit;
                                return at > prev && minute_of_day(r, at) / 60 == minute_of_day(r, t) / 60 ? at : t;
                        }
                }
                prev = t;
                t = (t / (5 * MIN) + 1) * (5 * MIN);
        }
        return t; /* nothing within 36 h: look again then */
}

static void learn_spell(Rules *r, int64_t from, int64_t to)
{
        int64_t day = local_day_start(r, to);
        unsigned minutes = (unsigned)((to - from) / MIN);
        if (day != r->learn_day) {
                /* A new day: its slot starts empty. */
                r->learn_day = day;
                r->learned_days++;
                memset(r->maxspell[(day / DAY) % LEARN_DAYS], 0, sizeof r->maxspell[0]);
        }
        for (int64_t t = from; t < to + HOUR && t <= to; t += HOUR) {
                int h = minute_of_day(r, t) / 60;
                unsigned *m = &r->maxspell[(day / DAY) % LEARN_DAYS][h];
                if (minutes > *m)
                        *m = minutes;
        }
        {
                int h = minute_of_day(r, to) / 60;
                unsigned *m = &r->maxspell[(day / DAY) % LEARN_DAYS][h];
                if (minutes > *m)
                        *m = minutes;
        }
}

/* The person did something: a quiet spell ends. indoor: evidence that they are inside. */
static void activity(Rules *r, bool indoor, const json_t *evidence)
{
        int64_t s = quiet_since(r, r->now);
        if (!r->away && !(asleep_maybe(r) && in_night(r, r->now)) && r->now > s)
                learn_spell(r, s, r->now);
        r->last_activity = r->now;
        if (indoor) {
                r->away = false;
                r->door_at = 0;
                if (r->night_exit_pending)
                        r->night_exit_pending = false;
                clear_alert(r, ALERT_KIND_NIGHT_EXIT, "", "movement indoors again", evidence);
        }
        clear_alert(r, ALERT_KIND_INACTIVITY, "", "activity again", evidence);
}

/* ---- medication ---- */

static void register_due(Rules *r, int64_t at, const char *why)
{
        Due *d;
        /* Dues older than two days are settled either way. */
        while (r->n_dues > 0 && r->dues[0].at < at - 2 * DAY && (r->dues[0].taken || r->dues[0].reported)) {
                if (!r->dues[0].taken)
                        clear_alert(r, ALERT_KIND_MISSED_DOSE, r->dues[0].key, "superseded", NULL);
                memmove(r->dues, r->dues + 1, (r->n_dues - 1) * sizeof *r->dues);
                r->n_dues--;
        }
        if (r->n_dues == MAX_DUES) { /* keep the newest */
                memmove(r->dues, r->dues + 1, (MAX_DUES - 1) * sizeof *r->dues);
                r->n_dues--;
        }
        d = &r->dues[r->n_dues++];
        *d = (Due){.at = at};
        snprintf(d->key, sizeof d->key, "%lld", (long long)(at / 1000000));
        (void)why;
}

static void dose_taken(Rules *r, const json_t *evidence)
{
        Due *best = NULL;
        /* The latest due that has come (or comes within the hour) and is not taken is the one taken:
         * an old miss stays a miss, and is closed by the newer dose (see fire_due). */
        for (size_t i = 0; i < r->n_dues; i++) {
                Due *d = &r->dues[i];
                if (!d->taken && d->at - HOUR <= r->now && (!best || d->at > best->at))
                        best = d;
        }
        if (best) {
                best->taken = true;
                if (best->reported)
                        clear_alert(r, ALERT_KIND_MISSED_DOSE, best->key, "dose taken late", evidence);
                return;
        }
        /* Taken before the dose is due (within the hour before): it counts for that dose. */
        if (r->next_schedule != INT64_MAX && r->next_schedule - HOUR <= r->now) {
                register_due(r, r->next_schedule, "schedule");
                r->dues[r->n_dues - 1].taken = true;
                r->next_schedule = next_scheduled(r, r->next_schedule);
        }
}

/* ---- deadlines ---- */

int64_t rules_next_deadline(Rules *r)
{
        int64_t d = INT64_MAX;
#define MIN_OF(x)                                                                                          \
        do {                                                                                               \
                int64_t _x = (x);                                                                          \
                if (_x < d)                                                                                \
                        d = _x;                                                                            \
        } while (0)
        MIN_OF(inactivity_deadline(r));
        if (r->door_at && !r->away && !r->night_exit_pending)
                MIN_OF(r->door_at + AWAY_QUIET);
        if (r->night_exit_pending)
                MIN_OF(r->door_at + r->night_exit);
        if (r->bed_exit_at)
                MIN_OF(r->bed_exit_at + r->bed_exit);
        if (find_open(r, ALERT_KIND_BED_EXIT_NO_RETURN, ""))
                MIN_OF(next_night_end(r, r->now));
        for (size_t i = 0; i < r->n_dues; i++)
                if (!r->dues[i].taken && !r->dues[i].reported)
                        MIN_OF(r->dues[i].at + r->grace);
        MIN_OF(r->next_schedule);
        for (size_t i = 0; i < r->n_sensors; i++)
                if (r->sensors[i].expected && !find_open(r, ALERT_KIND_SENSOR_SILENT, r->sensors[i].id))
                        MIN_OF(r->sensors[i].last_seen + r->sensors[i].expected);
        for (size_t i = 0; i < r->n_open; i++)
                if (r->open[i].kind == ALERT_KIND_ALARM_BUTTON)
                        MIN_OF(r->open[i].raised + r->alarm_clear);
#undef MIN_OF
        return d;
}

static void fire_due(Rules *r)
{
        int64_t t = r->now;
        const double one = 1, zero = 0;
        char msg[160];

        if (!r->away && !find_open(r, ALERT_KIND_INACTIVITY, "") && inactivity_deadline(r) <= t) {
                int64_t s = quiet_since(r, t);
                snprintf(msg, sizeof msg, "no activity for %lld minutes (limit %u at this hour)", (long long)((t - s) / MIN),
                         rules_inactivity_limit_min(r, minute_of_day(r, t) / 60));
                json_auto_t *ev = evidence_since(NULL, "quiet_since", s, r->now);
                raise_alert(r, ALERT_KIND_INACTIVITY, "", SEVERITY_CRITICAL, msg, ev);
        }
        if (r->door_at && !r->away && r->door_at + AWAY_QUIET <= t && !r->night_exit_pending)
                r->away = true; /* the door, then quiet: gone out */
        if (r->night_exit_pending && r->door_at + r->night_exit <= t) {
                r->night_exit_pending = false;
                r->away = true;
                snprintf(msg, sizeof msg, "exit door opened at night, no movement indoors for %lld minutes",
                         (long long)(r->night_exit / MIN));
                json_auto_t *ev = evidence_of(evidence_item(NULL, "event", "door", &one, NULL, r->door_at));
                raise_alert(r, ALERT_KIND_NIGHT_EXIT, "", SEVERITY_CRITICAL, msg, ev);
        }
        if (r->bed_exit_at && r->bed_exit_at + r->bed_exit <= t) {
                int64_t at = r->bed_exit_at;
                r->bed_exit_at = 0;
                if (in_night(r, at + r->bed_exit)) {
                        snprintf(msg, sizeof msg, "out of bed at night for %lld minutes", (long long)(r->bed_exit / MIN));
                        json_auto_t *ev = evidence_of(evidence_item(NULL, "event", "bed", &zero, NULL, at));
                        raise_alert(r, ALERT_KIND_BED_EXIT_NO_RETURN, "", SEVERITY_WARNING, msg, ev);
                }
        }
        if (find_open(r, ALERT_KIND_BED_EXIT_NO_RETURN, "") && !in_night(r, t))
                clear_alert(r, ALERT_KIND_BED_EXIT_NO_RETURN, "", "the night is over", NULL);
        while (r->next_schedule <= t) {
                register_due(r, r->next_schedule, "schedule");
                r->next_schedule = next_scheduled(r, r->next_schedule);
        }
        for (size_t i = 0; i < r->n_dues; i++) {
                Due *d = &r->dues[i];
                if (d->taken || d->reported || d->at + r->grace > t)
                        continue;
                d->reported = true;
                /* Each due is its own alert; an older open one is closed by the newer. */
                for (size_t j = 0; j < i; j++)
                        if (r->dues[j].reported && !r->dues[j].taken)
                                clear_alert(r, ALERT_KIND_MISSED_DOSE, r->dues[j].key, "superseded by the next dose", NULL);
                snprintf(msg, sizeof msg, "dose due at %02d:%02d not taken within %lld minutes",
                         minute_of_day(r, d->at) / 60, minute_of_day(r, d->at) % 60, (long long)(r->grace / MIN));
                json_auto_t *ev = evidence_of(evidence_item(NULL, "event", "dose_due", &one, NULL, d->at));
                raise_alert(r, ALERT_KIND_MISSED_DOSE, d->key, SEVERITY_WARNING, msg, ev);
        }
        for (size_t i = 0; i < r->n_sensors; i++) {
                SensorState *s = &r->sensors[i];
                if (!s->expected || s->last_seen + s->expected > t)
                        continue;
                snprintf(msg, sizeof msg, "%s silent for %lld minutes", s->id, (long long)((t - s->last_seen) / MIN));
                json_auto_t *ev = evidence_since(s->id, "last_seen", s->last_seen, r->now);
                raise_alert(r, ALERT_KIND_SENSOR_SILENT, s->id, SEVERITY_WARNING, msg, ev);
        }
        for (size_t i = 0; i < r->n_open;)
                if (r->open[i].kind == ALERT_KIND_ALARM_BUTTON && r->open[i].raised + r->alarm_clear <= t)
                        clear_open(r, &r->open[i], "cleared after the alarm period", NULL);
                else
                        i++;
}

static void advance(Rules *r, int64_t now, bool inclusive)
{
        /* Every deadline that fires changes the state that made it (raised, consumed, moved on), so
         * this terminates; the bound is a safety net against a rule that would not. */
        for (int guard = 0; guard < 1000000; guard++) {
                int64_t d = rules_next_deadline(r);
                if (inclusive ? d > now : d >= now)
                        break;
                if (d > r->now)
                        r->now = d;
                fire_due(r);
                if (rules_next_deadline(r) == d && d == r->now)
                        break;
        }
        if (now > r->now)
                r->now = now;
}

void rules_advance(Rules *r, int64_t now)
{
        advance(r, now, true);
}

void rules_advance_before(Rules *r, int64_t now)
{
        advance(r, now, false);
}

/* ---- NEWS2, thresholds, baselines ---- */

static bool news2_param_of(Metric m, News2Param *ret)
{
        switch (m) {
        case METRIC_RESPIRATORY_RATE:
                *ret = NEWS2_RESPIRATION;
                return true;
        case METRIC_SPO2:
                *ret = NEWS2_SPO2;
                return true;
        case METRIC_SYSTOLIC:
                *ret = NEWS2_SYSTOLIC;
                return true;
        case METRIC_PULSE_RATE:
        case METRIC_HEART_RATE:
                *ret = NEWS2_PULSE;
                return true;
        case METRIC_BODY_TEMPERATURE:
                *ret = NEWS2_TEMPERATURE;
                return true;
        default:
                return false;
        }
}

/* The value in the unit the chart uses: mmHg, Cel. */
static double chart_value(Metric m, double v, const char *unit)
{
        if (unit && streq(unit, "kPa"))
                return v * 7.50062;
        if (unit && streq(unit, "[degF]"))
                return (v - 32) * 5 / 9;
        if (m == METRIC_GLUCOSE && unit && streq(unit, "mmol/L"))
                return v * 18.016; /* baselines run in mg/dL */
        return v;
}

/* Every sub-score of a complete set, and the total. */
static json_t *news2_evidence(Rules *r, int total)
{
        json_t *ev = json_array();

        for (News2Param p = 0; p < _NEWS2_MAX; p++) {
                json_t *item = evidence_item(NULL, "parameter", news2_param_name(p), &r->param[p].value, NULL,
                                             r->param[p].time);
                if (evidence_add(item, "score", json_integer(r->param[p].score)) < 0 ||
                    json_array_append_new(ev, item) < 0)
                        return json_decref(ev), NULL;
        }
        if (json_array_append_new(ev, json_pack("{s:i}", "news2_total", total)) < 0)
                return json_decref(ev), NULL;
        return ev;
}

static void news2_aggregate(Rules *r)
{
        int total = 0, s;
        json_auto_t *ev = NULL;
        char msg[128];
        Open *o;

        r->param[NEWS2_AIR_OXYGEN] = (Param){.have = true, .score = news2_air_oxygen(r->oxygen), .time = r->now,
                                             .value = r->oxygen};
        for (News2Param p = 0; p < _NEWS2_MAX; p++) {
                if (!r->param[p].have || (p != NEWS2_AIR_OXYGEN && r->now - r->param[p].time > r->news2_window))
                        return; /* no complete set within the window */
                total += r->param[p].score;
        }
        ev = news2_evidence(r, total);

        s = news2_risk(total);
        o = find_open(r, ALERT_KIND_NEWS2_AGGREGATE, "");
        snprintf(msg, sizeof msg, "NEWS2 %d (%s risk)", total,
                 s == NEWS2_RISK_HIGH ? "high" : s == NEWS2_RISK_MEDIUM ? "medium" : "low");
        if (o && total <= 3)
                clear_alert(r, ALERT_KIND_NEWS2_AGGREGATE, "", msg, ev);
        else if (o && s == NEWS2_RISK_HIGH && o->severity != SEVERITY_CRITICAL) {
                /* Escalation from medium to high is news for the nurse: a new, critical alert. */
                clear_alert(r, ALERT_KIND_NEWS2_AGGREGATE, "", "escalated", ev);
                raise_alert(r, ALERT_KIND_NEWS2_AGGREGATE, "", SEVERITY_CRITICAL, msg, ev);
        } else if (!o && s >= NEWS2_RISK_MEDIUM)
                raise_alert(r, ALERT_KIND_NEWS2_AGGREGATE, "", s == NEWS2_RISK_HIGH ? SEVERITY_CRITICAL : SEVERITY_WARNING, msg,
                            ev);
}

static void news2_update(Rules *r, News2Param p, double value, int score, const Reading *rd, Metric m,
                         const json_t *evidence)
{
        char msg[128];
        r->param[p] = (Param){.have = true, .value = value, .score = score, .time = r->now};
        if (!r->threshold[m].set) {
                if (score == 3) {
                        snprintf(msg, sizeof msg, "%s %g scores 3 on NEWS2", news2_param_name(p), value);
                        json_t *item = evidence_item(rd ? rd->sensor : "nurse", "metric", metric_name(m), &value,
                                                     rd ? rd->unit : NULL, r->now);
                        json_auto_t *ev = evidence_add(item, "score", json_integer(score)) < 0 ? NULL : evidence_of(item);
                        raise_alert(r, ALERT_KIND_NEWS2_SINGLE_PARAMETER, news2_param_name(p), SEVERITY_WARNING, msg, ev);
                } else if (score <= 1) /* hysteresis: a 2 keeps it open */
                        clear_alert(r, ALERT_KIND_NEWS2_SINGLE_PARAMETER, news2_param_name(p), "back in range", evidence);
        }
        news2_aggregate(r);
}

static void threshold_check(Rules *r, Metric m, double v, const json_t *evidence)
{
        char msg[128];
        bool low, high, back;
        double mlow, mhigh;

        if (!r->threshold[m].set)
                return;
        low = r->threshold[m].has_low && v < r->threshold[m].low;
        high = r->threshold[m].has_high && v > r->threshold[m].high;
        /* Hysteresis: back in range by 2 % of the limit before it clears. */
        mlow = r->threshold[m].low + fabs(r->threshold[m].low) * 0.02;
        mhigh = r->threshold[m].high - fabs(r->threshold[m].high) * 0.02;
        back = (!r->threshold[m].has_low || v >= mlow) && (!r->threshold[m].has_high || v <= mhigh);
        if (low || high) {
                snprintf(msg, sizeof msg, "%s %g is %s the personal limit %g", metric_name(m), v, low ? "below" : "above",
                         low ? r->threshold[m].low : r->threshold[m].high);
                raise_alert(r, ALERT_KIND_THRESHOLD, metric_name(m), SEVERITY_WARNING, msg, evidence);
        } else if (back)
                clear_alert(r, ALERT_KIND_THRESHOLD, metric_name(m), "back within the personal limits", evidence);
}

/* The measurement and the baseline it left, rounded to what a nurse reads. */
static json_t *baseline_evidence(Rules *r, Metric m, double x, const Reading *rd, const Baseline *b, double sd)
{
        json_t *item = evidence_item(rd->sensor, "metric", metric_name(m), &x, rd->unit, r->now);

        if (evidence_add(item, "baseline_mean", evidence_number(round(b->mean * 100) / 100)) < 0 ||
            evidence_add(item, "baseline_sd", evidence_number(round(sd * 100) / 100)) < 0 ||
            evidence_add(item, "cusum", evidence_number(round(b->cusum * 100) / 100)) < 0)
                return json_decref(item), NULL;
        return evidence_of(item);
}

static void baseline_update(Rules *r, Metric m, double x, const Reading *rd, const json_t *evidence)
{
        Baseline *b = &r->baseline[m];
        double sd, z;
        bool learning;
        char msg[160];

        if (!b->dir)
                return;
        if (b->n == 0) {
                b->mean = x;
                b->var = b->sd_min * b->sd_min;
                b->first = r->now;
                b->n = 1;
                return;
        }
        sd = sqrt(b->var);
        if (sd < b->sd_min)
                sd = b->sd_min;
        if (sd <= 0)
                sd = 1e-9;
        z = (x - b->mean) / sd * b->dir;
        learning = b->n < BASELINE_MIN_READINGS || r->now - b->first < (int64_t)r->baseline_min_days * DAY;
        if (!learning) {
                b->cusum = fmax(0, b->cusum + z - CUSUM_K);
                if (b->cusum > CUSUM_H) {
                        snprintf(msg, sizeof msg, "%s %g is %s the personal baseline %.1f (sd %.1f) for a while", metric_name(m),
                                 x, b->dir > 0 ? "above" : "below", b->mean, sd);
                        json_auto_t *ev = baseline_evidence(r, m, x, rd, b, sd);
                        raise_alert(r, ALERT_KIND_BASELINE_DEVIATION, metric_name(m), SEVERITY_WARNING, msg, ev);
                } else if (b->cusum == 0)
                        clear_alert(r, ALERT_KIND_BASELINE_DEVIATION, metric_name(m), "back to the personal baseline", evidence);
        }
        /* Learn from ordinary readings only: an outlier or an open deviation does not move the baseline. */
        if (fabs(z) < 2.5 && !find_open(r, ALERT_KIND_BASELINE_DEVIATION, metric_name(m))) {
                double d = x - b->mean;
                b->mean += BASELINE_ALPHA * d;
                b->var = (1 - BASELINE_ALPHA) * (b->var + BASELINE_ALPHA * d * d);
                b->n++;
        }
}

static void weight_update(Rules *r, double kg, const json_t *evidence)
{
        int64_t day = local_day_start(r, r->now);
        int m = minute_of_day(r, r->now);
        double min_prev = INFINITY;
        char msg[160];

        if (m < 4 * 60 || m >= 12 * 60)
                return; /* morning weights only: the same time of day, before breakfast */
        for (size_t i = 0; i < r->n_weights; i++)
                if (r->weights[i].day == day)
                        return; /* the first morning weight of the day counts */
        for (size_t i = 0; i < r->n_weights; i++)
                if (r->weights[i].day < day && r->weights[i].day >= day - (int64_t)r->weight_gain_days * DAY - HOUR &&
                    r->weights[i].kg < min_prev)
                        min_prev = r->weights[i].kg;
        if (r->n_weights == MAX_WEIGHTS) {
                memmove(r->weights, r->weights + 1, (MAX_WEIGHTS - 1) * sizeof r->weights[0]);
                r->n_weights--;
        }
        r->weights[r->n_weights].day = day;
        r->weights[r->n_weights].kg = kg;
        r->n_weights++;
        if (!isfinite(min_prev))
                return;
        if (kg - min_prev > r->weight_gain_kg) {
                snprintf(msg, sizeof msg, "weight up %.1f kg in %u days (%.1f to %.1f kg)", kg - min_prev,
                         r->weight_gain_days, min_prev, kg);
                raise_alert(r, ALERT_KIND_WEIGHT_GAIN, "", SEVERITY_WARNING, msg, evidence);
        } else if (kg - min_prev < r->weight_gain_kg - 0.5)
                clear_alert(r, ALERT_KIND_WEIGHT_GAIN, "", "weight gain below the limit", evidence);
}

/* rd and evidence (the reading's): NULL for a nurse's observation. */
static void vital(Rules *r, Metric m, double v, const char *unit, const Reading *rd, const json_t *evidence)
{
        News2Param p;
        double x = chart_value(m, v, unit);
        int score = -1;

        if (news2_param_of(m, &p)) {
                switch (p) {
                case NEWS2_RESPIRATION:
                        score = news2_respiration(x);
                        break;
                case NEWS2_SPO2:
                        score = news2_spo2(x, r->spo2_scale, r->oxygen);
                        break;
                case NEWS2_SYSTOLIC:
                        score = news2_systolic(x);
                        break;
                case NEWS2_PULSE:
                        score = news2_pulse(x);
                        break;
                case NEWS2_TEMPERATURE:
                        score = news2_temperature(x);
                        break;
                case NEWS2_AIR_OXYGEN:
                case NEWS2_CONSCIOUSNESS:
                case _NEWS2_MAX:
                        break;
                }
                if (score >= 0)
                        news2_update(r, p, x, score, rd, m, evidence);
        }
        if (rd) {
                threshold_check(r, m, v, evidence);
                baseline_update(r, m, x, rd, evidence);
                if (m == METRIC_BODY_WEIGHT)
                        weight_update(r, unit && streq(unit, "[lb_av]") ? v * 0.45359237 : v, evidence);
        }
}

/* ---- input ---- */

static SensorState *seen(Rules *r, const char *id, const json_t *evidence)
{
        SensorState *s = sensor(r, id);
        if (!s)
                return NULL;
        s->last_seen = r->now;
        clear_alert(r, ALERT_KIND_SENSOR_SILENT, id, "heard from again", evidence);
        return s;
}

void rules_reading(Rules *r, const Reading *rd)
{
        json_auto_t *evidence = evidence_reading(rd);
        SensorState *s = seen(r, rd->sensor, evidence);
        char msg[128];

        changed(r, RULES_CHANGED_LEARNED);
        if (rd->absent)
                return;
        if (rd->metric == METRIC_BATTERY) {
                if (rd->value < r->battery_low) {
                        snprintf(msg, sizeof msg, "%s battery at %g %%", rd->sensor, rd->value);
                        raise_alert(r, ALERT_KIND_BATTERY_LOW, rd->sensor, SEVERITY_WARNING, msg, evidence);
                } else if (rd->value >= r->battery_low + 10)
                        clear_alert(r, ALERT_KIND_BATTERY_LOW, rd->sensor, "battery replaced", evidence);
                return;
        }
        /* A doubtful measurement (invalid, from a demonstration) is kept and sent, not judged. */
        if (rd->flags & (READING_INVALID | READING_DEMO_OR_TEST))
                return;
        switch (rd->metric) {
        case METRIC_TEMPERATURE:
        case METRIC_HUMIDITY:
        case METRIC_ILLUMINANCE:
        case METRIC_PRESSURE:
        case METRIC_CO2:
        case METRIC_VOLTAGE:
        case METRIC_POWER:
                return; /* the room, not the person */
        default:
                break;
        }
        /* Measuring oneself is activity, and proof of being at home. */
        if (!s || s->role != ROLE_EXIT_DOOR)
                activity(r, true, evidence);
        vital(r, rd->metric, rd->value, rd->unit, rd, evidence);
}

void rules_nurse_reading(Rules *r, Metric m, double value, const char *unit)
{
        changed(r, RULES_CHANGED_LEARNED);
        vital(r, m, value, unit, NULL, NULL);
}

int rules_nurse_consciousness(Rules *r, char acvpu)
{
        int score = news2_consciousness(acvpu);
        char msg[96];
        if (score < 0)
                return -EINVAL;
        changed(r, RULES_CHANGED_LEARNED);
        r->param[NEWS2_CONSCIOUSNESS] = (Param){.have = true, .value = score, .score = score, .time = r->now};
        if (score == 3) {
                const double value = score;
                json_auto_t *ev = evidence_of(evidence_item("nurse", "observation", "consciousness", &value, NULL, r->now));
                snprintf(msg, sizeof msg, "consciousness %c scores 3 on NEWS2", acvpu);
                raise_alert(r, ALERT_KIND_NEWS2_SINGLE_PARAMETER, "consciousness", SEVERITY_WARNING, msg, ev);
        } else
                clear_alert(r, ALERT_KIND_NEWS2_SINGLE_PARAMETER, "consciousness", "alert", NULL);
        news2_aggregate(r);
        return 0;
}

/* A wired input that stopped working (its line gone, held by another program): for a dead alarm
 * line the home may have no way to call for help, so that is critical; other inputs watch less
 * urgent things (a door, the bed), which then go unwatched: a warning. */
static void input_failed(Rules *r, const Event *e, const json_t *evidence)
{
        SensorState *s = sensor(r, e->sensor);
        char msg[160];

        if (e->value) {
                bool alarm = !s || s->role == ROLE_ALARM_BUTTON; /* unknown: assume the worst */
                snprintf(msg, sizeof msg, "input %s does not work%s", e->sensor,
                         alarm ? ": the alarm button cannot raise an alarm" : "");
                raise_alert(r, ALERT_KIND_INPUT_FAILED, e->sensor, alarm ? SEVERITY_CRITICAL : SEVERITY_WARNING, msg, evidence);
        } else
                clear_alert(r, ALERT_KIND_INPUT_FAILED, e->sensor, "the input works again", evidence);
}

void rules_event(Rules *r, const Event *e)
{
        json_auto_t *evidence = evidence_event(e);
        SensorState *s;
        Role role;
        char msg[128];

        changed(r, RULES_CHANGED_LEARNED);
        if (e->kind == EVENT_INPUT_FAILED) {
                input_failed(r, e, evidence);
                return; /* the input's health, not something it sensed */
        }
        s = seen(r, e->sensor, evidence);
        role = s ? s->role : ROLE_ROOM;
        switch (e->kind) {
        case EVENT_MOTION:
        case EVENT_OCCUPANCY:
        case EVENT_PRESENCE:
        case EVENT_MOVING:
                if (e->value)
                        activity(r, role != ROLE_EXIT_DOOR, evidence);
                break;
        case EVENT_DOOR:
        case EVENT_OPENING:
        case EVENT_WINDOW:
                if (role == ROLE_EXIT_DOOR || e->kind == EVENT_DOOR) {
                        bool exit = role == ROLE_EXIT_DOOR;
                        activity(r, !exit, evidence);
                        if (exit) {
                                /* Someone at the exit door: inside now, perhaps gone in a minute. */
                                r->away = false;
                                r->door_at = r->now;
                                clear_alert(r, ALERT_KIND_NIGHT_EXIT, "", "the door again", evidence);
                                if (e->value && in_night(r, r->now) && !r->night_exit_pending)
                                        r->night_exit_pending = true;
                        }
                }
                break;
        case EVENT_BED:
                activity(r, true, evidence);
                r->bed_known = true;
                if (e->value) {
                        r->in_bed = true;
                        r->bed_since = r->now;
                        r->bed_exit_at = 0;
                        clear_alert(r, ALERT_KIND_BED_EXIT_NO_RETURN, "", "back in bed", evidence);
                } else {
                        r->in_bed = false;
                        if (in_night(r, r->now))
                                r->bed_exit_at = r->now;
                }
                break;
        case EVENT_BUTTON:
                if (!e->value)
                        break;
                /* Only a button the technician named the alarm button raises the alarm; a doorbell
                 * or a light switch is somebody at home doing something. */
                if (role == ROLE_ALARM_BUTTON) {
                        snprintf(msg, sizeof msg, "alarm button pressed (%s)", e->sensor);
                        raise_alert(r, ALERT_KIND_ALARM_BUTTON, "", SEVERITY_CRITICAL, msg, evidence);
                }
                activity(r, true, evidence);
                break;
        case EVENT_DOSE_DUE:
                /* With a schedule, the dispenser's own signal near a scheduled time adds nothing. */
                for (size_t i = 0; i < r->n_dues; i++)
                        if (llabs(r->dues[i].at - r->now) <= HOUR)
                                return;
                if (r->next_schedule != INT64_MAX && r->next_schedule - r->now <= HOUR)
                        return;
                register_due(r, r->now, "dispenser");
                break;
        case EVENT_DOSE_TAKEN:
                activity(r, true, evidence);
                dose_taken(r, evidence);
                break;
        case EVENT_DOSE_MISSED: {
                char key[32];
                snprintf(key, sizeof key, "dispenser-%lld", (long long)(r->now / 1000000));
                raise_alert(r, ALERT_KIND_MISSED_DOSE, key, SEVERITY_WARNING, "the dispenser reports a missed dose", evidence);
                break;
        }
        case EVENT_DISPENSER_EMPTY:
                raise_alert(r, ALERT_KIND_DISPENSER_FAULT, "empty", SEVERITY_WARNING, "the dispenser is empty", evidence);
                break;
        case EVENT_DISPENSER_REFILL:
                clear_alert(r, ALERT_KIND_DISPENSER_FAULT, "empty", "refilled", evidence);
                break;
        case EVENT_DISPENSER_FAULT:
                if (e->value)
                        raise_alert(r, ALERT_KIND_DISPENSER_FAULT, "fault", SEVERITY_WARNING, "the dispenser reports a fault", evidence);
                else
                        clear_alert(r, ALERT_KIND_DISPENSER_FAULT, "fault", "fault gone", evidence);
                break;
        case EVENT_BATTERY_LOW:
                if (e->value) {
                        snprintf(msg, sizeof msg, "%s reports a low battery", e->sensor);
                        raise_alert(r, ALERT_KIND_BATTERY_LOW, e->sensor, SEVERITY_WARNING, msg, evidence);
                } else
                        clear_alert(r, ALERT_KIND_BATTERY_LOW, e->sensor, "battery replaced", evidence);
                break;
        case EVENT_TAMPER:
        case EVENT_VIBRATION:
        case EVENT_GENERIC:
        case EVENT_SMOKE:
        case EVENT_CARBON_MONOXIDE:
        case EVENT_WATER_LEAK:
        case EVENT_PROBLEM:
        case EVENT_POWER:
        case EVENT_DIMMER:
        case EVENT_INPUT_FAILED: /* handled above */
        case _EVENT_KIND_MAX:
                break;
        }
}

/* ---- durable state ---- */

static void note_pending(Rules *r)
{
        Pending p;
        memset(&p, 0, sizeof p); /* padding too: compared with memcmp */
        p.door_at = r->door_at;
        p.bed_exit_at = r->bed_exit_at;
        p.bed_since = r->bed_since;
        p.next_schedule = r->next_schedule;
        p.away = r->away;
        p.night_exit_pending = r->night_exit_pending;
        p.in_bed = r->in_bed;
        p.bed_known = r->bed_known;
        p.n_dues = r->n_dues;
        for (size_t i = 0; i < r->n_dues; i++) {
                p.dues[i].at = r->dues[i].at;
                p.dues[i].taken = r->dues[i].taken;
                p.dues[i].reported = r->dues[i].reported;
                memcpy(p.dues[i].key, r->dues[i].key, sizeof p.dues[i].key);
        }
        if (memcmp(&p, &r->pending, sizeof p) != 0) {
                r->pending = p;
                changed(r, RULES_CHANGED_DEADLINES);
        }
}

uint64_t rules_state_generation(Rules *r, RulesChange what)
{
        assert(what < _RULES_CHANGED_MAX);
        if (what == RULES_CHANGED_DEADLINES)
                note_pending(r);
        return r->gen[what];
}

/* The kinds the rules raise, and so the only ones an import takes up: another kind in the file is
 * not the rules' to clear. */
static bool kind_of_rules(AlertKind k)
{
        switch (k) {
        case ALERT_KIND_NEWS2_SINGLE_PARAMETER:
        case ALERT_KIND_NEWS2_AGGREGATE:
        case ALERT_KIND_THRESHOLD:
        case ALERT_KIND_BASELINE_DEVIATION:
        case ALERT_KIND_WEIGHT_GAIN:
        case ALERT_KIND_INACTIVITY:
        case ALERT_KIND_NIGHT_EXIT:
        case ALERT_KIND_BED_EXIT_NO_RETURN:
        case ALERT_KIND_MISSED_DOSE:
        case ALERT_KIND_DISPENSER_FAULT:
        case ALERT_KIND_ALARM_BUTTON:
        case ALERT_KIND_SENSOR_SILENT:
        case ALERT_KIND_BATTERY_LOW:
        case ALERT_KIND_INPUT_FAILED:
                return true;
        case ALERT_KIND_TEST_ALARM:
        case ALERT_KIND_STORE_REPLACED:
        case ALERT_KIND_STORE_UNAVAILABLE:
        case _ALERT_KIND_MAX:
                break;
        }
        return false;
}

static int severity_from_name(const char *name, AlertSeverity *ret)
{
        for (AlertSeverity s = 0; s < _SEVERITY_MAX; s++)
                if (streq(alert_severity_name(s), name)) {
                        *ret = s;
                        return 0;
                }
        return -EINVAL;
}

#define SET(obj, key, value)                                                                               \
        do {                                                                                               \
                if (json_object_set_new(obj, key, value) < 0)                                              \
                        goto oom;                                                                          \
        } while (0)
#define APPEND(arr, value)                                                                                 \
        do {                                                                                               \
                if (json_array_append_new(arr, value) < 0)                                                 \
                        goto oom;                                                                          \
        } while (0)

json_t *rules_export(Rules *r)
{
        json_t *root = json_object(), *a, *o;

        if (!root)
                return NULL;
        SET(root, "version", json_integer(STATE_VERSION));
        SET(root, "now", json_integer(r->now));

        SET(root, "open", a = json_array());
        for (size_t i = 0; i < r->n_open; i++) {
                const Open *op = &r->open[i];
                APPEND(a, o = json_pack("{s:s, s:s, s:s, s:s, s:I}", "kind", alert_kind_to_string(op->kind), "key", op->key, "id", op->id,
                                        "severity", alert_severity_name(op->severity), "raised",
                                        (json_int_t)op->raised));
        }

        SET(root, "dues", a = json_array());
        for (size_t i = 0; i < r->n_dues; i++) {
                const Due *d = &r->dues[i];
                APPEND(a, json_pack("{s:I, s:b, s:b, s:s}", "at", (json_int_t)d->at, "taken", d->taken, "reported",
                                    d->reported, "key", d->key));
        }
        SET(root, "next_schedule", json_integer(r->next_schedule));

        SET(root, "activity",
            o = json_pack("{s:I, s:b, s:b, s:I, s:b, s:I, s:b, s:I, s:I, s:i}", "last", (json_int_t)r->last_activity,
                          "in_bed", r->in_bed, "bed_known", r->bed_known, "bed_since", (json_int_t)r->bed_since, "away",
                          r->away, "door_at", (json_int_t)r->door_at, "night_exit_pending", r->night_exit_pending,
                          "bed_exit_at", (json_int_t)r->bed_exit_at, "learn_day", (json_int_t)r->learn_day,
                          "learned_days", (int)r->learned_days));
        if (!o)
                goto oom;
        SET(o, "maxspell", a = json_array());
        for (int d = 0; d < LEARN_DAYS; d++) {
                json_t *day = json_array();
                APPEND(a, day);
                for (int h = 0; h < 24; h++)
                        APPEND(day, json_integer(r->maxspell[d][h]));
        }

        SET(root, "news2", a = json_object());
        for (News2Param p = 0; p < _NEWS2_MAX; p++)
                if (r->param[p].have)
                        SET(a, news2_param_name(p),
                            json_pack("{s:f, s:i, s:I}", "value", r->param[p].value, "score", r->param[p].score, "time",
                                      (json_int_t)r->param[p].time));

        SET(root, "baselines", a = json_object());
        for (Metric m = 0; m < _METRIC_MAX; m++) {
                const Baseline *b = &r->baseline[m];
                if (b->dir && b->n > 0)
                        SET(a, metric_name(m),
                            json_pack("{s:i, s:f, s:f, s:f, s:I}", "n", (int)b->n, "mean", b->mean, "var", b->var, "cusum",
                                      b->cusum, "first", (json_int_t)b->first));
        }

        SET(root, "weights", a = json_array());
        for (size_t i = 0; i < r->n_weights; i++)
                APPEND(a, json_pack("{s:I, s:f}", "day", (json_int_t)r->weights[i].day, "kg", r->weights[i].kg));
        return root;
oom:
        json_decref(root);
        return NULL;
}

static int64_t get_i64(const json_t *o, const char *key, int64_t def)
{
        json_t *v = json_object_get(o, key);
        return json_is_integer(v) ? (int64_t)json_integer_value(v) : def;
}

/* A time from the file: between 1970 and 2200, or def. The file is ours, but a damaged one must not
 * make the deadline arithmetic overflow. */
static int64_t get_time(const json_t *o, const char *key, int64_t def)
{
        int64_t t = get_i64(o, key, def);
        return t >= 0 && t < 7258118400LL * 1000000 ? t : def;
}

static bool get_bool(const json_t *o, const char *key)
{
        return json_is_true(json_object_get(o, key));
}

static double get_num(const json_t *o, const char *key, double def)
{
        json_t *v = json_object_get(o, key);
        return json_is_number(v) ? json_number_value(v) : def;
}

int rules_import(Rules *r, const json_t *j)
{
        const json_t *a, *o, *v;
        const char *name;
        size_t i;

        if (!json_is_object(j) || get_i64(j, "version", 0) != STATE_VERSION)
                return -EINVAL;
        /* The clock never goes backwards: a snapshot from a later time (the real clock was set back
         * meanwhile) keeps its time. */
        if (get_time(j, "now", 0) > r->now)
                r->now = get_time(j, "now", 0);

        a = json_object_get(j, "open");
        json_array_foreach(a, i, o) {
                const char *key = json_string_value(json_object_get(o, "key"));
                const char *id = json_string_value(json_object_get(o, "id"));
                Open op = {.raised = get_time(o, "raised", r->now)};
                if (alert_kind_from_string(json_string_value(json_object_get(o, "kind")), &op.kind) < 0 ||
                    !kind_of_rules(op.kind) || !key || !id || !id[0] || strlen(key) >= sizeof op.key || strlen(id) >= sizeof op.id ||
                    severity_from_name(json_string_value(json_object_get(o, "severity")) ?: "", &op.severity) < 0 ||
                    find_open(r, op.kind, key))
                        continue;
                snprintf(op.key, sizeof op.key, "%s", key);
                snprintf(op.id, sizeof op.id, "%s", id);
                if (open_append(r, &op) < 0)
                        return -ENOMEM;
        }

        r->n_dues = 0;
        a = json_object_get(j, "dues");
        json_array_foreach(a, i, o) {
                const char *key = json_string_value(json_object_get(o, "key"));
                Due *d;
                if (r->n_dues == MAX_DUES || !key || strlen(key) >= sizeof d->key || get_time(o, "at", -1) < 0)
                        continue;
                d = &r->dues[r->n_dues++];
                *d = (Due){.at = get_time(o, "at", 0), .taken = get_bool(o, "taken"), .reported = get_bool(o, "reported")};
                snprintf(d->key, sizeof d->key, "%s", key);
        }
        v = json_object_get(j, "next_schedule");
        if (json_is_integer(v) && json_integer_value(v) >= 0 && r->n_schedule > 0) {
                /* Doses scheduled while the gateway was down are due now, late; but not a month of them. */
                int64_t t = json_integer_value(v), oldest = r->now - 2 * DAY;
                r->next_schedule = t >= oldest ? t : next_scheduled(r, oldest);
                if (r->next_schedule > next_scheduled(r, r->now))
                        r->next_schedule = next_scheduled(r, r->now);
        }

        o = json_object_get(j, "activity");
        if (json_is_object(o)) {
                r->last_activity = get_time(o, "last", r->last_activity);
                r->in_bed = get_bool(o, "in_bed");
                r->bed_known = get_bool(o, "bed_known");
                r->bed_since = get_time(o, "bed_since", 0);
                r->away = get_bool(o, "away");
                r->door_at = get_time(o, "door_at", 0);
                r->night_exit_pending = get_bool(o, "night_exit_pending") && r->door_at;
                r->bed_exit_at = get_time(o, "bed_exit_at", 0);
                r->learn_day = get_time(o, "learn_day", r->learn_day);
                r->learned_days = (unsigned)MIN_MAX(get_i64(o, "learned_days", 0), 0, 100000);
                a = json_object_get(o, "maxspell");
                for (int d = 0; d < LEARN_DAYS; d++)
                        for (int h = 0; h < 24; h++) {
                                v = json_array_get(json_array_get(a, (size_t)d), (size_t)h);
                                r->maxspell[d][h] = (unsigned)MIN_MAX(json_is_integer(v) ? json_integer_value(v) : 0, 0, 10000000);
                        }
        }

        o = json_object_get(j, "news2");
        json_object_foreach((json_t *)o, name, v)
                for (News2Param p = 0; p < _NEWS2_MAX; p++)
                        if (streq(news2_param_name(p), name))
                                r->param[p] = (Param){.have = true,
                                                      .value = get_num(v, "value", 0),
                                                      .score = (int)MIN_MAX(get_i64(v, "score", 0), 0, 3),
                                                      .time = get_time(v, "time", 0)};

        o = json_object_get(j, "baselines");
        json_object_foreach((json_t *)o, name, v) {
                Metric m;
                Baseline *b;
                if (metric_from_name(name, &m) < 0 || !r->baseline[m].dir)
                        continue;
                b = &r->baseline[m];
                b->n = (unsigned)MIN_MAX(get_i64(v, "n", 0), 0, 1000000000);
                b->mean = get_num(v, "mean", 0);
                b->var = get_num(v, "var", b->sd_min * b->sd_min);
                b->cusum = get_num(v, "cusum", 0);
                b->first = get_time(v, "first", r->now);
                if (!isfinite(b->mean) || !isfinite(b->var) || b->var < 0 || !isfinite(b->cusum) || b->cusum < 0)
                        b->n = 0; /* learn it again */
        }

        r->n_weights = 0;
        a = json_object_get(j, "weights");
        json_array_foreach(a, i, o)
                if (r->n_weights < MAX_WEIGHTS && json_is_number(json_object_get(o, "kg"))) {
                        r->weights[r->n_weights].day = get_time(o, "day", 0);
                        r->weights[r->n_weights].kg = get_num(o, "kg", 0);
                        r->n_weights++;
                }
        note_pending(r);
        return 0;
}

/* ---- clock steps ---- */

void rules_clock_step(Rules *r, int64_t delta)
{
        int64_t old_now = r->now;

        if (delta == 0)
                return;
        r->now += delta;
        /* What happened, happened that long ago: every remembered time moves with the clock, so each
         * elapsed duration (quiet spell, time out of bed, door, silence, grace, alarm, NEWS2 window,
         * baseline age) is what it was. 0 means "none" for the optional ones. */
        r->last_activity += delta;
        if (r->bed_since)
                r->bed_since += delta;
        if (r->door_at)
                r->door_at += delta;
        if (r->bed_exit_at)
                r->bed_exit_at += delta;
        for (size_t i = 0; i < r->n_sensors; i++)
                r->sensors[i].last_seen += delta;
        for (size_t i = 0; i < r->n_open; i++)
                r->open[i].raised += delta;
        for (News2Param p = 0; p < _NEWS2_MAX; p++)
                if (r->param[p].have)
                        r->param[p].time += delta;
        for (Metric m = 0; m < _METRIC_MAX; m++)
                if (r->baseline[m].n > 0)
                        r->baseline[m].first += delta;
        for (size_t i = 0; i < r->n_weights; i++)
                r->weights[i].day = local_day_start(r, r->weights[i].day + delta);
        r->learn_day = local_day_start(r, r->learn_day + delta);
        /* A due keeps its grace period; its key (the instant it came, also its open alert's key) is
         * renamed to the corrected instant, so that a dose the new clock schedules never shares it. */
        for (size_t i = 0; i < r->n_dues; i++) {
                Due *d = &r->dues[i];
                Open *o = find_open(r, ALERT_KIND_MISSED_DOSE, d->key);
                d->at += delta;
                snprintf(d->key, sizeof d->key, "%lld", (long long)(d->at / 1000000));
                if (o)
                        snprintf(o->key, sizeof o->key, "%s", d->key);
        }
        /* The schedule is the wall clock's: from the new now. Times a forward step jumped over are not
         * due (nobody was watching the clock pass them). After a step back of less than an hour (a
         * clock that ran fast), the times the old clock had passed were due already, an hour early
         * at most, which is how early a dose may be taken: they are not due again. After a longer
         * step back they are new doses in real time and come again. */
        if (delta < 0 && -delta < HOUR)
                r->next_schedule = next_scheduled(r, old_now > r->now ? old_now : r->now);
        else
                r->next_schedule = next_scheduled(r, r->now);
        /* The remembered times moved: the durable copy must follow. */
        changed(r, RULES_CHANGED_ALERTS);
        changed(r, RULES_CHANGED_LEARNED);
        note_pending(r);
}
