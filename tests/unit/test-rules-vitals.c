/* The vital-sign baselines and the weight rules (gateway/rules-vitals.c), through the real rules
 * engine: exact cases at the edges, then seeded simulations of a person's morning measurements with
 * the noise of home devices (issue 19: systolic SD 10, diastolic 7, pulse 6 day to day plus 3.5 per
 * device, SpO2 1 percentage point in whole percent, temperature 0.3 Cel, weight 0.5 kg):
 *   - in control, years of it: false alerts per metric per year (the target is at most one);
 *   - slow declines (SpO2 -0.9 pp a day, pulse +3 and +2.5 /min a day, weight +0.5 kg a day): how
 *     long after the morning of the clinically relevant change they are flagged.
 * HCGW_SIM_YEARS=N runs N years per simulated person instead of the default (docs/rules.md quotes a
 * long run); HCGW_SIM_CONFIG adds settings (a [Rules] section) to the simulated gateways, to measure
 * another choice of them. TZ is CET-1 (set in main). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "common/macro.h"
#include "gateway/rules.h"
#include "test-util.h"
#include "test.h"

#define SEC 1000000LL
#define MINUTE (60 * SEC)
#define HOURS (60 * MINUTE)
#define DAYS (24 * HOURS)

/* What went out, per kind and metric (the first evidence item's "metric"). */
typedef struct Count {
        unsigned raised[8];
        int64_t first[8]; /* time of the first raise, 0: none */
        char log[4096];
} Count;

enum { C_SYSTOLIC, C_DIASTOLIC, C_PULSE, C_SPO2, C_TEMPERATURE, C_WEIGHT, C_OTHER_BASELINE, _C_MAX };
static const char *const c_name[] = {"systolic",    "diastolic",   "pulse_rate", "spo2",
                                     "temperature", "weight_gain", "other"};

static int slot_of(const Alert *a)
{
        if (streq(a->kind, "weight_gain"))
                return C_WEIGHT;
        if (!streq(a->kind, "baseline_deviation"))
                return -1;
        if (strstr(a->message, "diastolic") == a->message)
                return C_DIASTOLIC;
        if (strstr(a->message, "systolic") == a->message)
                return C_SYSTOLIC;
        if (strstr(a->message, "pulse_rate") == a->message)
                return C_PULSE;
        if (strstr(a->message, "spo2") == a->message)
                return C_SPO2;
        if (strstr(a->message, "body_temperature") == a->message)
                return C_TEMPERATURE;
        return C_OTHER_BASELINE;
}

static void sink(void *userdata, Alert *a)
{
        Count *c = userdata;
        int s = slot_of(a);
        size_t n = strlen(c->log);

        if (s < 0)
                return;
        snprintf(c->log + n, sizeof c->log - n, "%s%s %s", n ? "; " : "", a->kind,
                 alert_state_name(a->state));
        if (a->state != ALERT_RAISED)
                return;
        c->raised[s]++;
        if (!c->first[s])
                c->first[s] = a->time_usec;
}

static Config *config(const char *extra)
{
        char text[2048];
        Config *c;
        snprintf(text, sizeof text,
                 "[Sensor \"bp-cuff\"]\nType=blood-pressure\nAddress=A4:C1:38:10:00:01\n"
                 "[Sensor \"scale\"]\nType=weight\nAddress=A4:C1:38:10:00:02\n"
                 "[Sensor \"oximeter\"]\nType=plx\nAddress=A4:C1:38:10:00:03\n"
                 "[Sensor \"thermometer\"]\nType=temperature\nAddress=A4:C1:38:10:00:04\n"
                 "[Patient]\nId=p1\n%s",
                 extra);
        c = test_config_from_text(text, CONFIG_RULES_ONLY);
        if (!c)
                abort();
        return c;
}

static void reading(Rules *r, int64_t t, const char *sensor, Metric m, double v, const char *unit)
{
        test_rules_reading(r, t, sensor, m, v, unit);
}

/* ---- a seeded random source: splitmix64, Box-Muller ---- */

typedef struct Rng {
        uint64_t s;
} Rng;

static double uniform(Rng *g)
{
        uint64_t z = (g->s += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        z ^= z >> 31;
        return ((z >> 11) + 0.5) / 9007199254740992.0;
}

static double gauss(Rng *g, double mu, double sd)
{
        double u = uniform(g), v = uniform(g);
        return mu + sd * sqrt(-2 * log(u)) * cos(2 * M_PI * v);
}

/* ---- one simulated person ---- */

typedef struct Person {
        double systolic, diastolic, pulse, spo2, temperature, weight;
        double noise; /* 1: the home-device noise; more for a noisier person */
} Person;

/* The shift of the person's true values on a day (a decline), in the units of each metric. */
typedef struct Shift {
        double pulse, spo2, temperature, weight;
} Shift;

/* One morning, as the varied homes have it: 15 % of mornings forgotten, on 10 % one device. */
static void morning(Rules *r, Rng *g, int64_t day, const Person *p, const Shift *sh)
{
        int64_t t = day + 6 * HOURS + (int64_t)(uniform(g) * 150) * MINUTE;
        double u = uniform(g), k = p->noise, pulse;
        int drop = uniform(g) < 0.10 ? (int)(uniform(g) * 4) : -1;

        if (u < 0.15)
                return;
        pulse = gauss(g, p->pulse + sh->pulse, 6 * k);
        if (drop != 0) {
                reading(r, t, "bp-cuff", METRIC_SYSTOLIC, round(gauss(g, p->systolic, 10 * k)), "mm[Hg]");
                reading(r, t, "bp-cuff", METRIC_DIASTOLIC, round(gauss(g, p->diastolic, 7 * k)), "mm[Hg]");
                reading(r, t, "bp-cuff", METRIC_PULSE_RATE, round(gauss(g, pulse, 3.5 * k)), "/min");
        }
        if (drop != 1)
                reading(r, t + 3 * MINUTE, "scale", METRIC_BODY_WEIGHT,
                        round(gauss(g, p->weight + sh->weight, 0.5 * k) * 10) / 10, "kg");
        if (drop != 2) {
                reading(r, t + 5 * MINUTE, "oximeter", METRIC_SPO2,
                        fmin(100, round(gauss(g, p->spo2 + sh->spo2, 1.0 * k))), "%");
                reading(r, t + 5 * MINUTE, "oximeter", METRIC_PULSE_RATE, round(gauss(g, pulse, 3.5 * k)),
                        "/min");
        }
        if (drop != 3)
                reading(r, t + 7 * MINUTE, "thermometer", METRIC_BODY_TEMPERATURE,
                        round(gauss(g, p->temperature + sh->temperature, 0.3 * k) * 10) / 10, "Cel");
}

static Person person(Rng *g, double noise)
{
        return (Person){.systolic = 120 + 30 * uniform(g),
                        .diastolic = 70 + 15 * uniform(g),
                        .pulse = 62 + 20 * uniform(g),
                        .spo2 = 94 + 3 * uniform(g),
                        .temperature = 36.4 + 0.5 * uniform(g),
                        .weight = 55 + 40 * uniform(g),
                        .noise = noise};
}

static unsigned sim_years(void)
{
        const char *e = getenv("HCGW_SIM_YEARS");
        return e && atoi(e) > 0 ? (unsigned)atoi(e) : 25;
}

/* People in control for years each: the false alerts per metric per person-year. Once a month the
 * state goes through rules_export()/rules_import() into a fresh engine, as over a restart: the
 * figures are the daemon's, restarts included. */
static void simulate_in_control(double noise, double ret_per_year[static _C_MAX])
{
        const unsigned people = 8, years = sim_years();
        const int64_t start = T("2026-01-05T00:00:00Z") - HOURS; /* local midnight, CET */
        Count total = {0};
        Config *c = config(getenv("HCGW_SIM_CONFIG") ?: "");

        for (unsigned i = 0; i < people; i++) {
                Rng g = {.s = 1000 + i};
                Person p = person(&g, noise);
                Count cnt = {0};
                Rules *r = NULL;
                int64_t learn_end = start + 14 * DAYS; /* the learning period and a week to settle */

                CHECK(rules_new(c, start, sink, &cnt, &r) == 0);
                for (unsigned d = 0; d < years * 365 + 14; d++) {
                        int64_t day = start + (int64_t)d * DAYS;
                        if (day == learn_end)
                                memset(&cnt, 0, sizeof cnt);
                        morning(r, &g, day, &p, &(Shift){0});
                        if (d % 30 == 29) {
                                json_t *j = rules_export(r);
                                char *text = json_dumps(j, JSON_COMPACT);
                                Rules *r2 = NULL;
                                json_decref(j);
                                CHECK(rules_new(c, day + DAYS - HOURS, sink, &cnt, &r2) == 0);
                                j = json_loads(text, 0, NULL);
                                CHECK(rules_import(r2, j) == 0);
                                json_decref(j);
                                free(text);
                                rules_free(r);
                                r = r2;
                        }
                }
                for (int s = 0; s < _C_MAX; s++)
                        total.raised[s] += cnt.raised[s];
                rules_free(r);
        }
        for (int s = 0; s < _C_MAX; s++)
                ret_per_year[s] = (double)total.raised[s] / (people * years);
        printf("in control, noise x%.1f, %u person-years:", noise, people * years);
        for (int s = 0; s < _C_MAX; s++)
                printf(" %s %.3f", c_name[s], ret_per_year[s]);
        printf(" per person-year\n");
        config_free(c);
}

/* At most one false alert per metric a year on the home-device noise. */
static void test_in_control_false_alerts_per_year(void)
{
        double rate[_C_MAX], noisy[_C_MAX];
        simulate_in_control(1.0, rate);
        /* weight_gain too: with the trend rule watching, the fixed rule measures from a weight held
         * (0.14 a year for both; 622f5e9 made 1.27, 1.1 of them the fixed rule against the lowest of a
         * few noisy mornings; alone, HCGW_SIM_CONFIG='[Rules] WeightTrendKg=0', it still makes 1.2). */
        for (int s = 0; s < _C_MAX; s++)
                CHECK(rate[s] <= 1.0);
        /* A person a fifth noisier than that (reported, not a target). */
        simulate_in_control(1.2, noisy);
}

/* The first four weeks after the learning week, as in the varied homes (7 days learned, 28 counted),
 * over many seeded people: what a baseline learned from one week does. A week is too short to know a
 * person's spread (six or seven sessions), and a spread learned too small makes the sum grow on
 * ordinary mornings; the false alerts per metric per 100 patient-days. */
static void simulate_first_weeks(unsigned people, double ret_per_100_days[static _C_MAX])
{
        const int64_t start = T("2026-01-05T00:00:00Z") - HOURS;
        Count total = {0};
        Config *c = config(getenv("HCGW_SIM_CONFIG") ?: "");

        for (unsigned i = 0; i < people; i++) {
                Rng g = {.s = 90000 + i};
                Person p = person(&g, 1.0);
                Count cnt = {0};
                Rules *r = NULL;

                CHECK(rules_new(c, start, sink, &cnt, &r) == 0);
                for (unsigned d = 0; d < 35; d++) {
                        if (d == 7)
                                memset(&cnt, 0, sizeof cnt);
                        morning(r, &g, start + (int64_t)d * DAYS, &p, &(Shift){0});
                }
                for (int s = 0; s < _C_MAX; s++)
                        total.raised[s] += cnt.raised[s];
                rules_free(r);
        }
        for (int s = 0; s < _C_MAX; s++)
                ret_per_100_days[s] = 100.0 * total.raised[s] / (people * 28);
        printf("first 4 weeks after learning, %u people:", people);
        for (int s = 0; s < _C_MAX; s++)
                printf(" %s %.3f", c_name[s], ret_per_100_days[s]);
        printf(" per 100 patient-days\n");
        config_free(c);
}

/* In the first four weeks a baseline's false alerts stay under half a one per 100 patient-days per
 * metric. Fails on 622f5e9: systolic 0.78, diastolic 1.04, pulse 0.50 (a spread learned from the week
 * alone, often too small, and one meaningful session on top of a sum grown on ordinary mornings). */
static void test_first_weeks_false_alerts(void)
{
        double rate[_C_MAX];
        simulate_first_weeks(2000, rate);
        for (int s = 0; s < _C_MAX; s++)
                CHECK(rate[s] <= 0.5);
}

/* A decline starting on day d0 of a simulated person, `rate` a day for `days` days, then held: the
 * delay in days from the midnight before the first morning at the clinically relevant change (as
 * generate-varied labels it) to the first alert of slot, or NAN if none within 6 days of it. */
static double decline_delay(unsigned seed, int slot, double rate, unsigned days, double relevant)
{
        const int64_t start = T("2026-01-05T00:00:00Z") - HOURS;
        const unsigned d0 = 28;
        Config *c = config(getenv("HCGW_SIM_CONFIG") ?: "");
        Rng g = {.s = seed};
        Person p = person(&g, 1.0);
        Count cnt = {0};
        Rules *r = NULL;
        unsigned rel = d0 + (unsigned)ceil(relevant / rate - 1e-9) - 1;
        double delay = NAN;

        CHECK(rules_new(c, start, sink, &cnt, &r) == 0);
        for (unsigned d = 0; d <= rel + 6; d++) {
                Shift sh = {0};
                double amount = d < d0 ? 0 : rate * fmin(d - d0 + 1, days);
                if (slot == C_SPO2)
                        sh.spo2 = -amount;
                else if (slot == C_PULSE)
                        sh.pulse = amount;
                else
                        sh.weight = amount;
                if (d == d0)
                        memset(&cnt, 0,
                               sizeof cnt); /* false alerts before the onset are not its detection */
                morning(r, &g, start + (int64_t)d * DAYS, &p, &sh);
        }
        if (cnt.first[slot])
                delay = (double)(cnt.first[slot] - (start + (int64_t)rel * DAYS)) / DAYS;
        rules_free(r);
        config_free(c);
        return delay;
}

static int cmp_double(const void *a, const void *b)
{
        double x = *(const double *)a, y = *(const double *)b;
        return isnan(x) ? (isnan(y) ? 0 : 1) : isnan(y) ? -1 : (x > y) - (x < y);
}

/* Over many seeded people: the share flagged within 2.5 days of the relevant day (the window of the
 * varied homes: its second morning after still counts), and the median delay. */
static void declines(const char *what, int slot, double rate, unsigned days, double relevant,
                     double min_share)
{
        enum { N = 200 };
        double delay[N];
        unsigned within = 0;

        for (unsigned i = 0; i < N; i++) {
                delay[i] = decline_delay(5000 + i, slot, rate, days, relevant);
                if (!isnan(delay[i]) && delay[i] <= 2.5)
                        within++;
        }
        qsort(delay, N, sizeof delay[0], cmp_double);
        printf("%s: %u/%u flagged within 2.5 days of the relevant change, median %.2f days, 90th "
               "percentile %.2f days\n",
               what, within, N, delay[N / 2], delay[N * 9 / 10]);
        CHECK(within >= min_share * N);
}

static void test_declines_are_flagged_within_about_two_days(void)
{
        /* The shares are what the rules reach (docs/rules.md): a pulse that has just reached +15 /min
         * reads under it on about half of the mornings, with a day to day SD of about 6.5 /min. */
        declines("SpO2 -0.9 pp/day", C_SPO2, 0.9, 5, 3.0, 0.90);
        declines("pulse +3 /min/day", C_PULSE, 3.0, 6, 15.0, 0.65);
        declines("pulse +2.5 /min/day", C_PULSE, 2.5, 7, 15.0, 0.65);
        declines("weight +0.5 kg/day", C_WEIGHT, 0.5, 5, 2.0, 0.95);
        declines("weight +1 kg/day", C_WEIGHT, 1.0, 3, 2.0, 0.95);
}

/* ---- the edges, at exact values ---- */

/* A steady person: pulse 70 every morning for two weeks (the learned spread is the floor, 4). */
static Rules *steady_pulse(Config *c, Count *cnt, int64_t *ret_day)
{
        const int64_t start = T("2026-03-01T23:00:00Z");
        Rules *r = NULL;
        CHECK(rules_new(c, start, sink, cnt, &r) == 0);
        for (int d = 0; d < 14; d++)
                reading(r, start + d * DAYS + 7 * HOURS, "oximeter", METRIC_PULSE_RATE, d % 2 ? 68 : 72,
                        "/min");
        *ret_day = start + 14 * DAYS;
        return r;
}

/* Statistically unusual but clinically small: pulse 80 for days against a steady 70 (z 2.5, the CUSUM
 * far over its limit), never 15 /min: no alert. On e1f1119 (the CUSUM alone) it was raised. */
static void test_small_shift_is_not_an_alert(void)
{
        Config *c = config("");
        Count cnt = {0};
        int64_t day;
        Rules *r = steady_pulse(c, &cnt, &day);
        for (int d = 0; d < 10; d++)
                reading(r, day + d * DAYS + 7 * HOURS, "oximeter", METRIC_PULSE_RATE, 80, "/min");
        CHECK_STREQ(cnt.log, "");
        rules_free(r);
        config_free(c);
}

/* One reading 16 /min up is not enough; the second morning at it is. Two readings of one morning
 * (two devices, five minutes apart) are one look, not two. On e1f1119 it was raised at once on the
 * second reading of the first morning (by its CUSUM; not run there). */
static void test_persistence_over_mornings(void)
{
        Config *c = config("");
        Count cnt = {0};
        int64_t day;
        Rules *r = steady_pulse(c, &cnt, &day);
        reading(r, day + 7 * HOURS, "bp-cuff", METRIC_PULSE_RATE, 86, "/min");
        reading(r, day + 7 * HOURS + 5 * MINUTE, "oximeter", METRIC_PULSE_RATE, 86, "/min");
        CHECK_STREQ(cnt.log, "");
        reading(r, day + DAYS + 7 * HOURS, "oximeter", METRIC_PULSE_RATE, 86, "/min");
        CHECK_STREQ(cnt.log, "baseline_deviation raised");
        /* Back to normal: the sum drains, the alert clears. */
        for (int d = 2; d < 12; d++)
                reading(r, day + d * DAYS + 7 * HOURS, "oximeter", METRIC_PULSE_RATE, 70, "/min");
        CHECK_STREQ(cnt.log, "baseline_deviation raised; baseline_deviation cleared");
        rules_free(r);
        config_free(c);
}

/* An engine taken through rules_export()/rules_import(), as over a restart. */
static Rules *restart(Config *c, Rules *r, int64_t now, Count *cnt)
{
        json_t *j = rules_export(r);
        Rules *r2 = NULL;
        CHECK(rules_new(c, now, sink, cnt, &r2) == 0);
        CHECK(rules_import(r2, j) == 0);
        json_decref(j);
        rules_free(r);
        return r2;
}

/* A week a little high (+7: the sum past its limit, never half the least change), then one morning
 * 16 up: not yet, neither of the two looks before saw half of it; the next morning still 16 up is
 * the change lasting. A restart between that morning's two readings keeps the looks before. Fails
 * on 622f5e9: raised on the first morning 16 up. */
static void test_second_look(void)
{
        Config *c = config("");
        Count cnt = {0};
        int64_t day;
        Rules *r = steady_pulse(c, &cnt, &day);
        for (int d = 0; d < 6; d++)
                reading(r, day + d * DAYS + 7 * HOURS, "oximeter", METRIC_PULSE_RATE, 77, "/min");
        reading(r, day + 6 * DAYS + 7 * HOURS, "bp-cuff", METRIC_PULSE_RATE, 86, "/min");
        r = restart(c, r, day + 6 * DAYS + 7 * HOURS + MINUTE, &cnt);
        reading(r, day + 6 * DAYS + 7 * HOURS + 5 * MINUTE, "oximeter", METRIC_PULSE_RATE, 86, "/min");
        CHECK_STREQ(cnt.log, "");
        reading(r, day + 7 * DAYS + 7 * HOURS, "oximeter", METRIC_PULSE_RATE, 86, "/min");
        CHECK_STREQ(cnt.log, "baseline_deviation raised");
        rules_free(r);
        config_free(c);
}

/* A decline with one ordinary morning in it: +12, then 70 (home readings are noisy), then +17 with the
 * sum past its limit. The look before the one before saw half the change: raised. */
static void test_second_look_ordinary_morning_between(void)
{
        Config *c = config("");
        Count cnt = {0};
        int64_t day;
        Rules *r = steady_pulse(c, &cnt, &day);
        reading(r, day + 7 * HOURS, "oximeter", METRIC_PULSE_RATE, 82, "/min");
        reading(r, day + DAYS + 7 * HOURS, "oximeter", METRIC_PULSE_RATE, 70, "/min");
        CHECK_STREQ(cnt.log, "");
        reading(r, day + 2 * DAYS + 7 * HOURS, "oximeter", METRIC_PULSE_RATE, 87, "/min");
        CHECK_STREQ(cnt.log, "baseline_deviation raised");
        rules_free(r);
        config_free(c);
}

/* Twice the least meaningful change, far off the spread, is an alert at once. */
static void test_large_change_alone(void)
{
        Config *c = config("");
        Count cnt = {0};
        int64_t day;
        Rules *r = steady_pulse(c, &cnt, &day);
        reading(r, day + 7 * HOURS, "oximeter", METRIC_PULSE_RATE, 99, "/min"); /* +29: not yet */
        CHECK_STREQ(cnt.log, "");
        for (int d = 1; d < 10; d++) /* the sum drains */
                reading(r, day + d * DAYS + 7 * HOURS, "oximeter", METRIC_PULSE_RATE, 70, "/min");
        reading(r, day + 10 * DAYS + 7 * HOURS, "oximeter", METRIC_PULSE_RATE, 101, "/min"); /* +31 */
        CHECK_STREQ(cnt.log, "baseline_deviation raised");
        rules_free(r);
        config_free(c);
}

/* The settings: a larger least change keeps the alert away; 0 turns the rule off. */
static void test_min_shift_settings(void)
{
        Config *c = config("[Rules]\nBaselineMinShiftPulse=20\n");
        Count cnt = {0};
        int64_t day;
        Rules *r = steady_pulse(c, &cnt, &day);
        for (int d = 0; d < 3; d++)
                reading(r, day + d * DAYS + 7 * HOURS, "oximeter", METRIC_PULSE_RATE, 86, "/min");
        CHECK_STREQ(cnt.log, "");
        rules_free(r);
        config_free(c);

        c = config("[Rules]\nBaselineMinShiftPulse=0\n");
        memset(&cnt, 0, sizeof cnt);
        r = steady_pulse(c, &cnt, &day);
        for (int d = 0; d < 3; d++)
                reading(r, day + d * DAYS + 7 * HOURS, "oximeter", METRIC_PULSE_RATE, 120, "/min");
        CHECK_STREQ(cnt.log, "");
        rules_free(r);
        config_free(c);

        CHECK(!test_config_from_text("[Rules]\nBaselineMinShiftSpO2=-1\n", CONFIG_RULES_ONLY));
        CHECK(!test_config_from_text("[Rules]\nWeightTrendKg=x\n", CONFIG_RULES_ONLY));
}

/* Pulse and temperature drifting up together (an infection) corroborate each other when neither has
 * yet reached its least meaningful change alone: pulse +12, temperature +0.6 on two mornings. */
static void test_two_signs_corroborate(void)
{
        const int64_t start = T("2026-03-01T23:00:00Z");
        Config *c = config("");
        Count cnt = {0};
        Rules *r = NULL;

        CHECK(rules_new(c, start, sink, &cnt, &r) == 0);
        for (int d = 0; d < 17; d++) {
                int64_t t = start + d * DAYS + 7 * HOURS;
                reading(r, t, "oximeter", METRIC_PULSE_RATE, d >= 14 ? 82 : d % 2 ? 68 : 72, "/min");
                reading(r, t + MINUTE, "thermometer", METRIC_BODY_TEMPERATURE,
                        d >= 14 ? 37.3
                        : d % 2 ? 36.6
                                : 36.8,
                        "Cel");
        }
        CHECK_STREQ(cnt.log, "baseline_deviation raised");
        rules_free(r);
        config_free(c);
}

/* Temperature up 0.5 for three mornings (its sum past the limit) and, on the third, pulse 14 up after
 * two ordinary mornings (its sum only half way to the limit): two signs of an infection together,
 * raised. Fails on 622f5e9, where the other sign had to be past its whole limit too (the old
 * scenario infection-pulse-temperature then waited a day more, for a pulse of 99). */
static void test_two_signs_other_half_way(void)
{
        const int64_t start = T("2026-03-01T23:00:00Z");
        static const double pulse[] = {70, 70, 84}, temp[] = {37.2, 37.2, 37.2};
        Config *c = config("");
        Count cnt = {0};
        Rules *r = NULL;

        CHECK(rules_new(c, start, sink, &cnt, &r) == 0);
        for (int d = 0; d < 17; d++) {
                int64_t t = start + d * DAYS + 7 * HOURS;
                reading(r, t, "oximeter", METRIC_PULSE_RATE,
                        d >= 14 ? pulse[d - 14]
                        : d % 2 ? 68
                                : 72,
                        "/min");
                if (d == 16)
                        CHECK_STREQ(cnt.log, "");
                reading(r, t + MINUTE, "thermometer", METRIC_BODY_TEMPERATURE,
                        d >= 14 ? temp[d - 14]
                        : d % 2 ? 36.6
                                : 36.8,
                        "Cel");
        }
        CHECK_STREQ(cnt.log, "baseline_deviation raised");
        rules_free(r);
        config_free(c);
}

/* A gain of 0.5 kg a day never makes 2 kg within 3 days, but the trend rule sees it; a steady weight
 * with ordinary day-to-day noise does not. On e1f1119 the fixed rule alone raised nothing. */
static void test_weight_trend(void)
{
        static const double noise[] = {0.3, -0.4, 0.1,  0.5, -0.2, -0.5, 0.2,
                                       0.0, 0.4,  -0.3, 0.1, -0.1, 0.3,  -0.4};
        const int64_t start = T("2026-03-01T23:00:00Z");
        Config *c = config("");
        Count cnt = {0};
        Rules *r = NULL;
        int d;

        CHECK(rules_new(c, start, sink, &cnt, &r) == 0);
        for (d = 0; d < 14; d++)
                reading(r, start + d * DAYS + 7 * HOURS, "scale", METRIC_BODY_WEIGHT, 80 + noise[d], "kg");
        CHECK_STREQ(cnt.log, "");
        for (int k = 1; k <= 6; k++, d++) {
                reading(r, start + d * DAYS + 7 * HOURS, "scale", METRIC_BODY_WEIGHT, 80 + 0.5 * k, "kg");
                if (k < 3)
                        CHECK_STREQ(cnt.log, "");
        }
        CHECK_STREQ(cnt.log, "weight_gain raised");
        /* Treated: back to the usual weight, the alert clears. */
        for (int k = 0; k < 4; k++, d++)
                reading(r, start + d * DAYS + 7 * HOURS, "scale", METRIC_BODY_WEIGHT, 80, "kg");
        CHECK_STREQ(cnt.log, "weight_gain raised; weight_gain cleared");
        rules_free(r);
        config_free(c);
}

/* Once the trend rule has learned, the fixed rule measures from a weight the person held: a single
 * low morning (78.0 between 80s) is not one, a sudden gain of 2.4 kg on the held 80 is. Fails on
 * 622f5e9: "weight up 2.2 kg in 3 days (78.0 to 80.2 kg)" two mornings after the low one. */
static void test_weight_single_low_morning(void)
{
        static const double w[] = {80.0, 80.2, 79.9, 80.1, 79.8, 80.0, 80.2, 79.9,
                                   80.1, 80.0, 78.0, 80.0, 80.2, 80.1, 82.5};
        const int64_t start = T("2026-03-01T23:00:00Z");
        Config *c = config("");
        Count cnt = {0};
        Rules *r = NULL;

        CHECK(rules_new(c, start, sink, &cnt, &r) == 0);
        for (size_t d = 0; d < ELEMENTSOF(w) - 1; d++)
                reading(r, start + (int64_t)d * DAYS + 7 * HOURS, "scale", METRIC_BODY_WEIGHT, w[d], "kg");
        CHECK_STREQ(cnt.log, "");
        reading(r, start + (int64_t)(ELEMENTSOF(w) - 1) * DAYS + 7 * HOURS, "scale", METRIC_BODY_WEIGHT,
                w[ELEMENTSOF(w) - 1], "kg");
        CHECK_STREQ(cnt.log, "weight_gain raised");
        rules_free(r);
        config_free(c);
}

/* A state file written before sessions and the weight trend (e1f1119's "baselines" entries: n, mean,
 * var, cusum, first) still imports: the baseline goes on judging at once, and exports the new fields. */
static void test_imports_older_state(void)
{
        const int64_t now = T("2026-03-20T06:00:00Z");
        Config *c = config("");
        Count cnt = {0};
        Rules *r = NULL;
        json_t *j = json_pack("{s:i, s:I, s:{s:{s:i, s:f, s:f, s:f, s:I}}, s:[]}", "version", 1, "now",
                              (json_int_t)now, "baselines", "pulse_rate", "n", 30, "mean", 70.0, "var", 16.0,
                              "cusum", 4.0, "first", (json_int_t)(now - 20 * DAYS), "weights");
        json_t *b;

        CHECK(rules_new(c, now, sink, &cnt, &r) == 0);
        CHECK(rules_import(r, j) == 0);
        json_decref(j);
        reading(r, now + HOURS, "oximeter", METRIC_PULSE_RATE, 88, "/min"); /* CUSUM 4 + 4.5 - 0.5 */
        CHECK_STREQ(cnt.log, "baseline_deviation raised");
        j = rules_export(r);
        b = json_object_get(json_object_get(j, "baselines"), "pulse_rate");
        CHECK(json_integer_value(json_object_get(b, "n")) == 31);
        CHECK(json_integer_value(json_object_get(b, "sessions")) == 31);
        CHECK(json_is_object(json_object_get(b, "session")));
        json_decref(j);
        rules_free(r);
        config_free(c);
}

int main(void)
{
        static const TestCase tests[] = {
            TEST(test_two_signs_corroborate),
            TEST(test_two_signs_other_half_way),
            TEST(test_small_shift_is_not_an_alert),
            TEST(test_persistence_over_mornings),
            TEST(test_second_look),
            TEST(test_second_look_ordinary_morning_between),
            TEST(test_large_change_alone),
            TEST(test_min_shift_settings),
            TEST(test_weight_trend),
            TEST(test_weight_single_low_morning),
            TEST(test_imports_older_state),
            TEST(test_in_control_false_alerts_per_year),
            TEST(test_first_weeks_false_alerts),
            TEST(test_declines_are_flagged_within_about_two_days),
        };
        setenv("TZ", "CET-1", 1);
        tzset();
        return test_run(tests, ELEMENTSOF(tests));
}
