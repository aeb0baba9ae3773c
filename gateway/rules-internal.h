/* Inside the rules: the engine's state and the calls between the engine and the rule families.
 * Not for use outside gateway/rules*.c; the rest of the daemon uses gateway/rules.h.
 *
 * Where things are:
 *   rules.c             the engine: settings and sensors, open alerts (raise, clear), the deadline
 *                       and advancing the clock, the dispatch of a reading or event to the families,
 *                       clock steps
 *   rules-state.c       what survives a restart: export, import, the change generations
 *   rules-time.c        local time: day starts, the wall clock's minute, the night window
 *   rules-evidence.c    the readings and events behind an alert, as JSON
 *   rules-vitals.c      news2_single_parameter, news2_aggregate, threshold, baseline_deviation,
 *                       weight_gain
 *   rules-activity.c    inactivity (and the quiet spells it learns), night_exit, bed_exit_no_return
 *   rules-medication.c  missed_dose (the schedule and the dues), dispenser_fault
 *   rules-alarm.c       alarm_button
 *   rules-devices.c     sensor_silent, battery_low, input_failed
 * A new rule goes in its family's file: its input from the dispatch in rules.c, its deadline in
 * rules_next_deadline() and fire_due(), its durable state in rules-state.c and rules_clock_step().
 *
 * Every function here runs on the engine's clock, r->now, and never reads a clock itself. Pointers
 * returned into the engine (Open *, SensorState *) stay valid until the next raise, clear or
 * sensor change: the tables they point into move when they grow or shrink. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "gateway/alert-kind.h"
#include "gateway/alert.h"
#include "gateway/config.h"
#include "gateway/news2.h"
#include "gateway/rules.h"
#include "sensors/reading.h"

#define MIN (60LL * 1000000)
#define HOUR (60 * MIN)
#define DAY (24 * HOUR)
#define AWAY_QUIET (10 * MIN) /* after the exit door, this long without indoor motion means "gone out" */
#define LEARN_DAYS 14         /* risings are learned over this many days */
#define SPELL_BIN_MIN 10      /* quiet spells are counted in bins of this many minutes */
#define SPELL_BINS 72         /* up to 12 h; longer ones count in the last bin */
#define SPELL_LEARN_MIN 20    /* shorter quiet spells are ordinary life between two movements */
#define MAX_DUES 16
#define MAX_WEIGHTS 64

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
        int64_t expected; /* silence limit, usec; 0: not watched */
        int64_t last_seen;
        bool is_input; /* a wired input: events only */
        bool added;    /* by rules_add_sensor(), not from the configuration: kept over a reload */
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
        int dir;  /* +1: rising is bad, -1: falling is bad */
        int sign; /* the sign of deterioration it is part of (pulse, SpO2, temperature, respiration);
                   * two different ones drifting together corroborate each other; 0: none */
        double sd_min;
        double sd_prior;         /* the usual spread of home readings, before the person's own is known */
        double min_shift;        /* the least clinically meaningful change (setting); 0: off */
        unsigned n;              /* readings seen */
        unsigned sessions;       /* sessions seen, the open one too (readings within 2 h are one) */
        unsigned frozen;         /* sessions in a row not learned from while suspicious */
        double mean, var, cusum; /* now, with the open session in them */
        int64_t first;
        /* The open session: readings close together are one look at the person (two devices' pulse
         * five minutes apart), judged and learned once, by their mean. */
        int64_t sess_at; /* its first reading; 0: none */
        double sess_sum;
        unsigned sess_n;
        double mean0, var0, cusum0; /* as before the session */
        double prev, prev2; /* the means of the session before and the one before that; NAN: not known */
        unsigned frozen0;
} Baseline;

/* The individualised weight rule: a short and a long moving average of the morning weights. */
typedef struct WeightTrend {
        unsigned n; /* mornings seen */
        int64_t first;
        double short_avg, long_avg;
} WeightTrend;

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
        int64_t grace, night_exit, bed_exit, news2_window, inact_floor, inact_ceiling, inact_default,
            alarm_clear;
        double weight_gain_kg;
        unsigned weight_gain_days, baseline_min_days, battery_low;
        double weight_trend_kg;
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
        WeightTrend weight_trend;

        /* activity */
        int64_t last_activity;
        bool in_bed;
        bool bed_known; /* a bed event has been seen; before that, at night, assume asleep */
        int64_t bed_since;
        bool away;
        int64_t door_at; /* last exit-door event; 0: none pending */
        bool night_exit_pending;
        int64_t bed_exit_at; /* out of bed in the night window; 0: not pending */
        int64_t learn_day;   /* local day of the last quiet spell learned */
        unsigned learned_days;
        /* Quiet spells at home and awake, per local hour they covered: how many (decayed by
         * SPELL_DECAY a day) ended in each SPELL_BIN_MIN-minute bin of length. See rules-activity.c. */
        float spells[24][SPELL_BINS];
        unsigned limit_cache[24]; /* minutes; 0: to be computed from spells */
        int64_t company_at;       /* someone came in by the exit door then; 0: nobody */
        bool quiet_unsure;        /* the spell began when a visitor left: do not learn it */
        unsigned door_opens;      /* exit-door openings since the last movement indoors */
        bool door_from_away;      /* the first of them came while the person was out */
        int64_t left_bed_at;      /* the last time the bed was left and not yet returned to; 0: none */
        bool left_bed_alerted;    /* an alert about this absence from bed: no rising time to learn */
        struct {
                int64_t day;   /* local day of the rising; 0: none */
                int16_t early; /* minutes before the night window's end (<= 0: after it) */
        } rise[LEARN_DAYS];

        /* medication */
        Due dues[MAX_DUES];
        size_t n_dues;
        int64_t next_schedule; /* next scheduled dose time not yet registered */

        /* cached local day for time arithmetic */
        int64_t cache_day_start, cache_day_end;
};

static inline int64_t earliest(int64_t a, int64_t b)
{
        return a < b ? a : b;
}

/* ---- the engine (rules.c) ---- */

/* Marks that part of the durable state changed (see rules_state_generation()). */
void rules_changed(Rules *r, RulesChange what);
/* The open alert kind/key, or NULL. Valid until the next raise or clear. */
Open *rules_find_open(Rules *r, AlertKind kind, const char *key);
/* Remembers an open alert; the table grows (never overwrites). -ENOMEM. */
int rules_open_append(Rules *r, const Open *o);
/* Raises kind/key unless it is open already; true if raised. evidence is borrowed (NULL: none),
 * message too, for the length of the call. */
bool rules_raise(Rules *r, AlertKind kind, const char *key, AlertSeverity sev, const char *message,
                 const json_t *evidence);
/* Clears kind/key if it is open; true if cleared. Borrows as rules_raise(). */
bool rules_clear(Rules *r, AlertKind kind, const char *key, const char *message, const json_t *evidence);
/* Clears an open alert found in r->open; o is invalid afterwards. */
void rules_clear_open(Rules *r, Open *o, const char *message, const json_t *evidence);
/* The sensor or input with that id, or NULL. Valid until sensors are added or reconfigured. */
SensorState *rules_find_sensor(Rules *r, const char *id);

/* ---- durable state (rules-state.c) ---- */

/* Compares what the pending deadlines depend on with the last look; marks RULES_CHANGED_DEADLINES
 * if it differs. */
void rules_note_pending(Rules *r);

/* ---- local time (rules-time.c) ---- */

/* The instant the local day holding t began. Caches the day in r. */
int64_t local_day_start(Rules *r, int64_t t);
/* The wall clock's minute at t (00:00 is 0). */
int minute_of_day(Rules *r, int64_t t);
/* The instant the wall clock shows minute on the local day that starts at day. */
int64_t local_at(Rules *r, int64_t day, int minute);
bool in_night(Rules *r, int64_t t);
/* The most recent end of a night window at or before t; the first one after t. */
int64_t last_night_end(Rules *r, int64_t t);
int64_t next_night_end(Rules *r, int64_t t);

/* ---- the families ----
 * Each takes the input's evidence borrowed (NULL: none), for the length of the call. Each family
 * with deadlines says when its next one is (INT64_MAX: none) and fires what is due at r->now. */

/* rules-vitals.c */
void vitals_init(Rules *r);
/* The vital-sign settings from c (the baselines' least meaningful changes, the weight trend). */
void vitals_settings(Rules *r, const Config *c);
/* A measurement of m in unit; rd and evidence are the reading's, or NULL for a nurse's observation. */
void vitals_measured(Rules *r, Metric m, double v, const char *unit, const Reading *rd,
                     const json_t *evidence);
/* ACVPU from a nurse: -EINVAL for anything but A, C, V, P, U. */
int vitals_consciousness(Rules *r, char acvpu);

/* rules-activity.c */
/* The person did something: a quiet spell ends. indoor: evidence that they are inside. */
void activity_seen(Rules *r, bool indoor, const json_t *evidence);
/* A door, window or opening event from a sensor in role. */
void activity_door(Rules *r, const Event *e, Role role, const json_t *evidence);
void activity_bed(Rules *r, const Event *e, const json_t *evidence);
int64_t activity_next_deadline(Rules *r);
void activity_fire(Rules *r);

/* rules-medication.c */
/* The first scheduled dose time after `after`; INT64_MAX without a schedule. */
int64_t medication_next_scheduled(Rules *r, int64_t after);
void medication_dispenser_due(Rules *r);
void medication_taken(Rules *r, const json_t *evidence);
void medication_dispenser_missed(Rules *r, const json_t *evidence);
void medication_dispenser_empty(Rules *r, bool empty, const json_t *evidence);
void medication_dispenser_fault(Rules *r, bool fault, const json_t *evidence);
int64_t medication_next_deadline(Rules *r);
void medication_fire(Rules *r);

/* rules-alarm.c */
void alarm_pressed(Rules *r, const Event *e, const json_t *evidence);
int64_t alarm_next_deadline(Rules *r);
void alarm_fire(Rules *r);

/* rules-devices.c */
/* The sensor id was heard from: its silence ends. Returns it (as rules_find_sensor()), or NULL if
 * unknown. */
SensorState *devices_seen(Rules *r, const char *id, const json_t *evidence);
void devices_battery_reading(Rules *r, const Reading *rd, const json_t *evidence);
void devices_battery_event(Rules *r, const Event *e, const json_t *evidence);
void devices_input_failed(Rules *r, const Event *e, const json_t *evidence);
int64_t devices_next_deadline(Rules *r);
void devices_fire(Rules *r);
