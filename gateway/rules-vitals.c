/* The vital-sign rules: NEWS2 (single parameters and the aggregate score), personal thresholds,
 * personal baselines (one-sided CUSUM over an exponentially weighted mean and variance), and weight
 * gain. See docs/rules.md, "Vital signs". */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "common/macro.h"
#include "gateway/rules-evidence.h"
#include "gateway/rules-internal.h"

#define CUSUM_K 0.5
#define CUSUM_H 5.0
#define BASELINE_ALPHA 0.1
#define BASELINE_MIN_READINGS 7

/* Which metrics have a personal baseline, which way is bad, and the clinical floor of their spread. */
void vitals_init(Rules *r)
{
        static const struct {
                Metric m;
                int dir;
                double sd_min;
        } b[] = {
            {METRIC_SYSTOLIC, +1, 6},
            {METRIC_DIASTOLIC, +1, 4},
            {METRIC_PULSE_RATE, +1, 4},
            {METRIC_HEART_RATE, +1, 4},
            {METRIC_SPO2, -1, 1.0},
            {METRIC_BODY_TEMPERATURE, +1, 0.2},
            {METRIC_RESPIRATORY_RATE, +1, 1.5},
            {METRIC_GLUCOSE, +1, 0},
        };
        for (size_t i = 0; i < ELEMENTSOF(b); i++)
                r->baseline[b[i].m] = (Baseline){.dir = b[i].dir, .sd_min = b[i].sd_min};
}

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
                json_t *item = evidence_item(NULL, "parameter", news2_param_name(p), &r->param[p].value,
                                             NULL, r->param[p].time);
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

        r->param[NEWS2_AIR_OXYGEN] =
            (Param){.have = true, .score = news2_air_oxygen(r->oxygen), .time = r->now, .value = r->oxygen};
        for (News2Param p = 0; p < _NEWS2_MAX; p++) {
                if (!r->param[p].have ||
                    (p != NEWS2_AIR_OXYGEN && r->now - r->param[p].time > r->news2_window))
                        return; /* no complete set within the window */
                total += r->param[p].score;
        }
        ev = news2_evidence(r, total);

        s = news2_risk(total);
        o = rules_find_open(r, ALERT_KIND_NEWS2_AGGREGATE, "");
        snprintf(msg, sizeof msg, "NEWS2 %d (%s risk)", total,
                 s == NEWS2_RISK_HIGH     ? "high"
                 : s == NEWS2_RISK_MEDIUM ? "medium"
                                          : "low");
        if (o && total <= 3)
                rules_clear(r, ALERT_KIND_NEWS2_AGGREGATE, "", msg, ev);
        else if (o && s == NEWS2_RISK_HIGH && o->severity != SEVERITY_CRITICAL) {
                /* Escalation from medium to high is news for the nurse: a new, critical alert. */
                rules_clear(r, ALERT_KIND_NEWS2_AGGREGATE, "", "escalated", ev);
                rules_raise(r, ALERT_KIND_NEWS2_AGGREGATE, "", SEVERITY_CRITICAL, msg, ev);
        } else if (!o && s >= NEWS2_RISK_MEDIUM)
                rules_raise(r, ALERT_KIND_NEWS2_AGGREGATE, "",
                            s == NEWS2_RISK_HIGH ? SEVERITY_CRITICAL : SEVERITY_WARNING, msg, ev);
}

static void news2_update(Rules *r, News2Param p, double value, int score, const Reading *rd, Metric m,
                         const json_t *evidence)
{
        char msg[128];
        r->param[p] = (Param){.have = true, .value = value, .score = score, .time = r->now};
        if (!r->threshold[m].set) {
                if (score == 3) {
                        snprintf(msg, sizeof msg, "%s %g scores 3 on NEWS2", news2_param_name(p), value);
                        json_t *item = evidence_item(rd ? rd->sensor : "nurse", "metric", metric_name(m),
                                                     &value, rd ? rd->unit : NULL, r->now);
                        json_auto_t *ev =
                            evidence_add(item, "score", json_integer(score)) < 0 ? NULL : evidence_of(item);
                        rules_raise(r, ALERT_KIND_NEWS2_SINGLE_PARAMETER, news2_param_name(p),
                                    SEVERITY_WARNING, msg, ev);
                } else if (score <= 1) /* hysteresis: a 2 keeps it open */
                        rules_clear(r, ALERT_KIND_NEWS2_SINGLE_PARAMETER, news2_param_name(p),
                                    "back in range", evidence);
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
                snprintf(msg, sizeof msg, "%s %g is %s the personal limit %g", metric_name(m), v,
                         low ? "below" : "above", low ? r->threshold[m].low : r->threshold[m].high);
                rules_raise(r, ALERT_KIND_THRESHOLD, metric_name(m), SEVERITY_WARNING, msg, evidence);
        } else if (back)
                rules_clear(r, ALERT_KIND_THRESHOLD, metric_name(m), "back within the personal limits",
                            evidence);
}

/* The measurement and the baseline it left, rounded to what a nurse reads. */
static json_t *baseline_evidence(Rules *r, Metric m, double x, const Reading *rd, const Baseline *b,
                                 double sd)
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
                        snprintf(msg, sizeof msg,
                                 "%s %g is %s the personal baseline %.1f (sd %.1f) for a while",
                                 metric_name(m), x, b->dir > 0 ? "above" : "below", b->mean, sd);
                        json_auto_t *ev = baseline_evidence(r, m, x, rd, b, sd);
                        rules_raise(r, ALERT_KIND_BASELINE_DEVIATION, metric_name(m), SEVERITY_WARNING, msg,
                                    ev);
                } else if (b->cusum == 0)
                        rules_clear(r, ALERT_KIND_BASELINE_DEVIATION, metric_name(m),
                                    "back to the personal baseline", evidence);
        }
        /* Learn from ordinary readings only: an outlier or an open deviation does not move the baseline. */
        if (fabs(z) < 2.5 && !rules_find_open(r, ALERT_KIND_BASELINE_DEVIATION, metric_name(m))) {
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
                if (r->weights[i].day < day &&
                    r->weights[i].day >= day - (int64_t)r->weight_gain_days * DAY - HOUR &&
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
                rules_raise(r, ALERT_KIND_WEIGHT_GAIN, "", SEVERITY_WARNING, msg, evidence);
        } else if (kg - min_prev < r->weight_gain_kg - 0.5)
                rules_clear(r, ALERT_KIND_WEIGHT_GAIN, "", "weight gain below the limit", evidence);
}

/* rd and evidence (the reading's): NULL for a nurse's observation. */
void vitals_measured(Rules *r, Metric m, double v, const char *unit, const Reading *rd,
                     const json_t *evidence)
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

int vitals_consciousness(Rules *r, char acvpu)
{
        int score = news2_consciousness(acvpu);
        char msg[96];
        if (score < 0)
                return -EINVAL;
        r->param[NEWS2_CONSCIOUSNESS] =
            (Param){.have = true, .value = score, .score = score, .time = r->now};
        if (score == 3) {
                const double value = score;
                json_auto_t *ev = evidence_of(
                    evidence_item("nurse", "observation", "consciousness", &value, NULL, r->now));
                snprintf(msg, sizeof msg, "consciousness %c scores 3 on NEWS2", acvpu);
                rules_raise(r, ALERT_KIND_NEWS2_SINGLE_PARAMETER, "consciousness", SEVERITY_WARNING, msg,
                            ev);
        } else
                rules_clear(r, ALERT_KIND_NEWS2_SINGLE_PARAMETER, "consciousness", "alert", NULL);
        news2_aggregate(r);
        return 0;
}
