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
#define BASELINE_ALPHA 0.05     /* about the last twenty sessions */
#define BASELINE_PRIOR_WEIGHT 7 /* the usual spread counts as a week of sessions */
#define BASELINE_MIN_READINGS 7
#define BASELINE_MIN_SESSIONS 5
#define BASELINE_SESSION (2 * HOUR)      /* readings within this of a session's first are one session */
#define BASELINE_OUTLIER_Z 3.0           /* a session this many spreads off does not move the normal */
#define BASELINE_SUSPICIOUS 1.0          /* a CUSUM over this stops learning, for a while */
#define BASELINE_FREEZE 7                /* sessions at most not learned from while suspicious */
#define BASELINE_CORROBORATE (12 * HOUR) /* another sign's session this recent corroborates */
#define BASELINE_LARGE_Z 4.0             /* a single session this far off (and 2 min shifts) alerts */
#define WEIGHT_SHORT_ALPHA 0.5           /* the last two or three mornings */
#define WEIGHT_LONG_ALPHA 0.05           /* about the last three weeks */

/* Which metrics have a personal baseline, which way is bad, the sign of deterioration each is part
 * of (the picture of an infection, a chest or heart getting worse: pulse up, SpO2 down, temperature
 * up, breathing faster; blood pressure and glucose are not part of it), the clinical floor of
 * their spread, and the usual day-to-day spread of a morning's home readings (issue 19's home
 * devices), which a person's first week is weighed against (docs/rules.md). */
void vitals_init(Rules *r)
{
        static const struct {
                Metric m;
                int dir, sign;
                double sd_min, sd_prior;
        } b[] = {
            {METRIC_SYSTOLIC, +1, 0, 6, 10},            /* mmHg */
            {METRIC_DIASTOLIC, +1, 0, 4, 7},            /* mmHg */
            {METRIC_PULSE_RATE, +1, 1, 4, 6},           /* /min */
            {METRIC_HEART_RATE, +1, 1, 4, 6},           /* /min */
            {METRIC_SPO2, -1, 2, 1.0, 1.0},             /* percentage points */
            {METRIC_BODY_TEMPERATURE, +1, 3, 0.2, 0.3}, /* Cel */
            {METRIC_RESPIRATORY_RATE, +1, 4, 1.5, 2},   /* /min */
            {METRIC_GLUCOSE, +1, 0, 0, 0},              /* mg/dL: no floor, no usual spread */
        };
        for (size_t i = 0; i < ELEMENTSOF(b); i++)
                r->baseline[b[i].m] = (Baseline){.dir = b[i].dir,
                                                 .sign = b[i].sign,
                                                 .sd_min = b[i].sd_min,
                                                 .sd_prior = b[i].sd_prior,
                                                 .prev = NAN,
                                                 .prev2 = NAN};
}

void vitals_settings(Rules *r, const Config *c)
{
        r->baseline[METRIC_SYSTOLIC].min_shift = c->baseline_min_shift_systolic;
        r->baseline[METRIC_DIASTOLIC].min_shift = c->baseline_min_shift_diastolic;
        r->baseline[METRIC_PULSE_RATE].min_shift = c->baseline_min_shift_pulse;
        r->baseline[METRIC_HEART_RATE].min_shift = c->baseline_min_shift_pulse;
        r->baseline[METRIC_SPO2].min_shift = c->baseline_min_shift_spo2;
        r->baseline[METRIC_BODY_TEMPERATURE].min_shift = c->baseline_min_shift_temperature;
        r->baseline[METRIC_RESPIRATORY_RATE].min_shift = c->baseline_min_shift_respiration;
        r->baseline[METRIC_GLUCOSE].min_shift = c->baseline_min_shift_glucose;
        r->weight_trend_kg = c->weight_trend_kg;
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

/* The measurement and the baseline it was judged against, rounded to what a nurse reads. */
static json_t *baseline_evidence(Rules *r, Metric m, double x, const Reading *rd, const Baseline *b,
                                 double session, double sd)
{
        json_t *item = evidence_item(rd->sensor, "metric", metric_name(m), &x, rd->unit, r->now);

        if (evidence_add(item, "baseline_mean", evidence_number(round(b->mean0 * 100) / 100)) < 0 ||
            evidence_add(item, "baseline_sd", evidence_number(round(sd * 100) / 100)) < 0 ||
            evidence_add(item, "session_mean", evidence_number(round(session * 100) / 100)) < 0 ||
            evidence_add(item, "shift", evidence_number(round((session - b->mean0) * 100) / 100)) < 0 ||
            evidence_add(item, "cusum", evidence_number(round(b->cusum * 100) / 100)) < 0)
                return json_decref(item), NULL;
        return evidence_of(item);
}

/* A new session: what the baseline was before it is what the session is judged against. */
static void baseline_session_start(Rules *r, Baseline *b)
{
        if (b->sess_n > 0) {
                b->prev2 = b->prev;
                b->prev = b->sess_sum / b->sess_n;
        }
        b->sess_at = r->now;
        b->sess_sum = 0;
        b->sess_n = 0;
        b->mean0 = b->mean;
        b->var0 = b->var;
        b->cusum0 = b->cusum;
        b->frozen0 = b->frozen;
        b->sessions++;
}

/* The session's mean v taken into the baseline, once per session: recomputed from the state before
 * the session at each of its readings. The first sessions are averaged alike (1/n), later ones
 * exponentially (BASELINE_ALPHA). The spread starts from the usual one (sd_prior), which counts as
 * BASELINE_PRIOR_WEIGHT sessions: six or seven mornings cannot tell a person's spread, and one
 * learned too small by chance makes the sum grow on ordinary mornings. Not learned from: an
 * outlier, a session while the alert is open, and (for up to BASELINE_FREEZE sessions) one after
 * the sum had grown past BASELINE_SUSPICIOUS, so that a decline over days is not taken for the new
 * normal while it is being detected. */
static void baseline_learn(Baseline *b, double v, double z, bool alert_open)
{
        unsigned k = b->sessions - 1; /* sessions before this one */
        double a, av, d, nu = b->sd_prior > 0 ? BASELINE_PRIOR_WEIGHT : 1;

        b->mean = b->mean0;
        b->var = b->var0;
        b->frozen = b->frozen0;
        if (k == 0) {
                b->mean = v;
                b->var = b->sd_prior > 0 ? b->sd_prior * b->sd_prior : b->sd_min * b->sd_min;
                return;
        }
        if (fabs(z) >= BASELINE_OUTLIER_Z || alert_open)
                return;
        b->frozen = b->cusum0 > BASELINE_SUSPICIOUS ? b->frozen0 + 1 : 0;
        if (b->frozen > 0 && b->frozen <= BASELINE_FREEZE)
                return;
        a = fmax(BASELINE_ALPHA, 1.0 / (k + 1));
        av = fmax(BASELINE_ALPHA, 1.0 / (k + nu));
        d = v - b->mean0;
        b->mean = b->mean0 + a * d;
        b->var = (1 - av) * b->var0 + av * (1 - a) * d * d;
}

/* Whether the latest session of a baseline is at least half its least meaningful change off, within
 * BASELINE_CORROBORATE of now, with its sum past limit. */
static bool baseline_half_way(Rules *r, const Baseline *b, double limit)
{
        double shift;

        if (b->min_shift <= 0 || b->sess_n == 0 || r->now - b->sess_at > BASELINE_CORROBORATE ||
            b->cusum <= limit)
                return false;
        shift = (b->sess_sum / b->sess_n - b->mean0) * b->dir;
        return shift >= b->min_shift / 2;
}

/* Another sign of the same deterioration drifting with b (half way: at least half its least change,
 * its sum at least half its limit; b itself is past its limit): the metric, or _METRIC_MAX if none. */
static Metric baseline_corroborated(Rules *r, const Baseline *b)
{
        if (!b->sign)
                return _METRIC_MAX;
        for (Metric m = 0; m < _METRIC_MAX; m++)
                if (r->baseline[m].sign && r->baseline[m].sign != b->sign &&
                    baseline_half_way(r, &r->baseline[m], CUSUM_H / 2))
                        return m;
        return _METRIC_MAX;
}

/* Whether an earlier look (a session's mean, NAN if not known) saw at least half the least meaningful
 * change. One of the two looks before the one at the change must have: a single meaningful session on
 * top of a week of small ones is not a change that has lasted, while one ordinary morning amid a
 * decline (a pulse 15 up reads under 7.5 up on about one morning in eight) does not hide it. */
static bool baseline_seen_before(const Baseline *b, double prev)
{
        return !isfinite(prev) || (prev - b->mean0) * b->dir >= b->min_shift / 2;
}

/* A personal baseline per metric, judged per session (docs/rules.md, "baseline_deviation"): an alert
 * needs a statistically unusual drift (the one-sided CUSUM of the session means past CUSUM_H) and a
 * session at least min_shift from the person's normal in the bad direction, or a single session so
 * far off (2 min_shift, and BASELINE_LARGE_Z spreads) that waiting for a second look is not right. */
static void baseline_update(Rules *r, Metric m, double x, const Reading *rd, const json_t *evidence)
{
        Baseline *b = &r->baseline[m];
        double sd, z, v, shift;
        bool learning, alert_open, again;
        Metric with;
        char msg[192];

        if (!b->dir)
                return;
        if (b->sess_at == 0 || r->now - b->sess_at > BASELINE_SESSION || r->now < b->sess_at)
                baseline_session_start(r, b);
        if (b->n == 0)
                b->first = r->now;
        b->n++;
        b->sess_sum += x;
        b->sess_n++;
        v = b->sess_sum / b->sess_n;
        sd = fmax(sqrt(b->var0), b->sd_min);
        if (sd <= 0)
                sd = 1e-9;
        z = b->sessions > 1 ? (v - b->mean0) / sd : 0;
        shift = (v - b->mean0) * b->dir;
        alert_open = rules_find_open(r, ALERT_KIND_BASELINE_DEVIATION, metric_name(m));
        learning = b->sessions < BASELINE_MIN_SESSIONS || b->n < BASELINE_MIN_READINGS ||
                   r->now - b->first < (int64_t)r->baseline_min_days * DAY;
        baseline_learn(b, v, z, alert_open);
        if (learning || b->min_shift <= 0) {
                b->cusum = 0;
                return;
        }
        /* A session counts at most BASELINE_LARGE_Z spreads: one look alone never makes a drift. */
        b->cusum = fmax(0, b->cusum0 + fmin(z * b->dir, BASELINE_LARGE_Z) - CUSUM_K);
        with = baseline_half_way(r, b, CUSUM_H) ? baseline_corroborated(r, b) : _METRIC_MAX;
        again = baseline_seen_before(b, b->prev) || baseline_seen_before(b, b->prev2);
        if ((shift >= b->min_shift && ((b->cusum > CUSUM_H && again) ||
                                       (shift >= 2 * b->min_shift && z * b->dir >= BASELINE_LARGE_Z))) ||
            with != _METRIC_MAX) {
                snprintf(msg, sizeof msg, "%s %g is %.1f %s the personal baseline %.1f (sd %.1f)%s%s%s",
                         metric_name(m), x, fabs(v - b->mean0), b->dir > 0 ? "above" : "below", b->mean0, sd,
                         b->cusum > CUSUM_H ? " for a while" : "",
                         with != _METRIC_MAX && shift < b->min_shift ? ", and so is " : "",
                         with != _METRIC_MAX && shift < b->min_shift ? metric_name(with) : "");
                json_auto_t *ev = baseline_evidence(r, m, x, rd, b, v, sd);
                rules_raise(r, ALERT_KIND_BASELINE_DEVIATION, metric_name(m), SEVERITY_WARNING, msg, ev);
        } else if (b->cusum == 0 || (b->cusum <= CUSUM_H && shift < b->min_shift / 2))
                rules_clear(r, ALERT_KIND_BASELINE_DEVIATION, metric_name(m),
                            "back to the personal baseline", evidence);
}

/* Whether the trend rule judges the morning weights of day (it is on and has learned). */
static bool weight_trend_watching(Rules *r, int64_t day)
{
        const WeightTrend *w = &r->weight_trend;
        return r->weight_trend_kg > 0 && w->n >= BASELINE_MIN_READINGS &&
               day - w->first >= (int64_t)r->baseline_min_days * DAY;
}

/* The individualised weight rule (after the MACD rule of Zhang et al., TEN-HMS, 2009): the short
 * moving average of the morning weights (the last two or three days) above the long one (about three
 * weeks), which follows the person's own dry weight. It sees a slow, steady gain that never makes
 * WeightGainKg within WeightGainDays. Returns how far the short average is above the long one
 * (NAN while learning); the long average does not learn while the alert is open. */
static double weight_trend_update(Rules *r, int64_t day, double kg)
{
        WeightTrend *w = &r->weight_trend;
        bool learning;
        double a, gain;

        if (w->n == 0) {
                *w = (WeightTrend){.n = 1, .first = day, .short_avg = kg, .long_avg = kg};
                return NAN;
        }
        learning = w->n < BASELINE_MIN_READINGS || day - w->first < (int64_t)r->baseline_min_days * DAY;
        w->short_avg += WEIGHT_SHORT_ALPHA * (kg - w->short_avg);
        gain = w->short_avg - w->long_avg;
        a = fmax(WEIGHT_LONG_ALPHA, 1.0 / (w->n + 1));
        if (!rules_find_open(r, ALERT_KIND_WEIGHT_GAIN, ""))
                w->long_avg += a * (kg - w->long_avg);
        w->n++;
        return learning ? NAN : gain;
}

static void weight_update(Rules *r, double kg, const json_t *evidence)
{
        int64_t day = local_day_start(r, r->now);
        int m = minute_of_day(r, r->now);
        double min_prev = INFINITY, trend;
        bool held, fixed_over, fixed_under, trend_over, trend_under;
        char msg[192];

        if (m < 4 * 60 || m >= 12 * 60)
                return; /* morning weights only: the same time of day, before breakfast */
        for (size_t i = 0; i < r->n_weights; i++)
                if (r->weights[i].day == day)
                        return; /* the first morning weight of the day counts */
        /* Against the lowest morning weight of the window. Once the trend rule watches the slow
         * gains, the fixed rule is there for a sudden one, against the lowest weight the person held:
         * each morning's, or the morning's before it if that was higher. A single low morning that
         * the next one does not confirm (the scale on the carpet, a missed supper) is not a weight to
         * gain from, and the lowest of a few noisy mornings is low by chance (docs/rules.md). */
        held = weight_trend_watching(r, day);
        for (size_t i = 0; i < r->n_weights; i++)
                if (r->weights[i].day < day &&
                    r->weights[i].day >= day - (int64_t)r->weight_gain_days * DAY - HOUR)
                        min_prev =
                            fmin(min_prev, held && i > 0 ? fmax(r->weights[i].kg, r->weights[i - 1].kg)
                                                         : r->weights[i].kg);
        if (r->n_weights == MAX_WEIGHTS) {
                memmove(r->weights, r->weights + 1, (MAX_WEIGHTS - 1) * sizeof r->weights[0]);
                r->n_weights--;
        }
        r->weights[r->n_weights].day = day;
        r->weights[r->n_weights].kg = kg;
        r->n_weights++;
        trend = weight_trend_update(r, day, kg);

        fixed_over = isfinite(min_prev) && kg - min_prev > r->weight_gain_kg;
        fixed_under = !isfinite(min_prev) || kg - min_prev < r->weight_gain_kg - 0.5;
        trend_over = r->weight_trend_kg > 0 && isfinite(trend) && trend > r->weight_trend_kg;
        trend_under = r->weight_trend_kg <= 0 || !isfinite(trend) || trend < r->weight_trend_kg / 2;
        if (fixed_over) {
                snprintf(msg, sizeof msg, "weight up %.1f kg in %u days (%.1f to %.1f kg)", kg - min_prev,
                         r->weight_gain_days, min_prev, kg);
                rules_raise(r, ALERT_KIND_WEIGHT_GAIN, "", SEVERITY_WARNING, msg, evidence);
        } else if (trend_over) {
                json_t *item =
                    evidence_item(NULL, "metric", metric_name(METRIC_BODY_WEIGHT), &kg, "kg", r->now);
                json_auto_t *ev = NULL;
                if (evidence_add(item, "recent_average",
                                 evidence_number(round(r->weight_trend.short_avg * 10) / 10)) >= 0 &&
                    evidence_add(item, "usual_average",
                                 evidence_number(round(r->weight_trend.long_avg * 10) / 10)) >= 0)
                        ev = evidence_of(item);
                else
                        json_decref(item);
                snprintf(msg, sizeof msg,
                         "weight rising: the last days' average %.1f kg is %.1f kg over the usual %.1f kg",
                         r->weight_trend.short_avg, trend, r->weight_trend.long_avg);
                rules_raise(r, ALERT_KIND_WEIGHT_GAIN, "", SEVERITY_WARNING, msg, ev);
        } else if (fixed_under && trend_under)
                rules_clear(r, ALERT_KIND_WEIGHT_GAIN, "", "weight gain below the limits", evidence);
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
