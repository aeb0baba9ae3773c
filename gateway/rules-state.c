/* What the engine must not forget over a restart: open alerts, pending deadlines and what was
 * learned, as a versioned JSON object; and the generations that tell the owner when to write it.
 * See docs/rules.md, "Nothing is forgotten". */
#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "common/macro.h"
#include "gateway/rules-internal.h"

#define STATE_VERSION 1
#define MIN_MAX(x, lo, hi) ((x) < (lo) ? (lo) : (x) > (hi) ? (hi) : (x))

void rules_note_pending(Rules *r)
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
                rules_changed(r, RULES_CHANGED_DEADLINES);
        }
}

uint64_t rules_state_generation(Rules *r, RulesChange what)
{
        assert(what < _RULES_CHANGED_MAX);
        if (what == RULES_CHANGED_DEADLINES)
                rules_note_pending(r);
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

#define SET(obj, key, value)                                                                                \
        do {                                                                                                \
                if (json_object_set_new(obj, key, value) < 0)                                               \
                        goto oom;                                                                           \
        } while (0)
#define APPEND(arr, value)                                                                                  \
        do {                                                                                                \
                if (json_array_append_new(arr, value) < 0)                                                  \
                        goto oom;                                                                           \
        } while (0)

/* A baseline's session (added after the first state files: an older file has none, and its next
 * reading starts one). */
static int export_session(json_t *o, const Baseline *b)
{
        json_t *sess;

        if (!o || json_object_set_new(o, "sessions", json_integer(b->sessions)) < 0 ||
            json_object_set_new(o, "frozen", json_integer(b->frozen)) < 0)
                return -ENOMEM;
        /* The sessions before (added later still: without them the next alert needs no second look). */
        if ((isfinite(b->prev) && json_object_set_new(o, "prev", json_real(b->prev)) < 0) ||
            (isfinite(b->prev2) && json_object_set_new(o, "prev2", json_real(b->prev2)) < 0))
                return -ENOMEM;
        if (b->sess_at == 0)
                return 0;
        sess = json_pack("{s:I, s:f, s:i, s:f, s:f, s:f, s:i}", "at", (json_int_t)b->sess_at, "sum",
                         b->sess_sum, "n", (int)b->sess_n, "mean0", b->mean0, "var0", b->var0, "cusum0",
                         b->cusum0, "frozen0", (int)b->frozen0);
        if (json_object_set_new(o, "session", sess) < 0)
                return -ENOMEM;
        return 0;
}

/* The quiet spells per hour (decayed counts per length bin, rounded to a thousandth), the risings
 * and the presence guesses. */
static int export_activity_learned(Rules *r, json_t *o)
{
        json_t *a, *v;

        if (json_object_set_new(o, "spell_bin_min", json_integer(SPELL_BIN_MIN)) < 0 ||
            json_object_set_new(o, "spells", a = json_array()) < 0)
                return -ENOMEM;
        for (int h = 0; h < 24; h++) {
                json_t *hour = json_array();
                if (json_array_append_new(a, hour) < 0)
                        return -ENOMEM;
                for (int b = 0; b < SPELL_BINS; b++)
                        if (json_array_append_new(hour,
                                                  json_real(round(r->spells[h][b] * 1000.0) / 1000.0)) < 0)
                                return -ENOMEM;
        }
        if (json_object_set_new(o, "rises", a = json_array()) < 0)
                return -ENOMEM;
        for (int i = 0; i < LEARN_DAYS; i++)
                if (r->rise[i].day) {
                        v = json_pack("{s:I, s:i}", "day", (json_int_t)r->rise[i].day, "early",
                                      (int)r->rise[i].early);
                        if (json_array_append_new(a, v) < 0)
                                return -ENOMEM;
                }
        v = json_pack("{s:I, s:b, s:i, s:b, s:I, s:b}", "company_at", (json_int_t)r->company_at,
                      "quiet_unsure", r->quiet_unsure, "door_opens", (int)r->door_opens, "door_from_away",
                      r->door_from_away, "left_bed_at", (json_int_t)r->left_bed_at, "left_bed_alerted",
                      r->left_bed_alerted);
        if (!v || json_object_update_new(o, v) < 0)
                return -ENOMEM;
        return 0;
}

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
                APPEND(a,
                       o = json_pack("{s:s, s:s, s:s, s:s, s:I}", "kind", alert_kind_name(op->kind), "key",
                                     op->key, "id", op->id, "severity", alert_severity_name(op->severity),
                                     "raised", (json_int_t)op->raised));
        }

        SET(root, "dues", a = json_array());
        for (size_t i = 0; i < r->n_dues; i++) {
                const Due *d = &r->dues[i];
                APPEND(a, json_pack("{s:I, s:b, s:b, s:s}", "at", (json_int_t)d->at, "taken", d->taken,
                                    "reported", d->reported, "key", d->key));
        }
        SET(root, "next_schedule", json_integer(r->next_schedule));

        SET(root, "activity",
            o = json_pack("{s:I, s:b, s:b, s:I, s:b, s:I, s:b, s:I, s:I, s:i}", "last",
                          (json_int_t)r->last_activity, "in_bed", r->in_bed, "bed_known", r->bed_known,
                          "bed_since", (json_int_t)r->bed_since, "away", r->away, "door_at",
                          (json_int_t)r->door_at, "night_exit_pending", r->night_exit_pending, "bed_exit_at",
                          (json_int_t)r->bed_exit_at, "learn_day", (json_int_t)r->learn_day, "learned_days",
                          (int)r->learned_days));
        if (!o)
                goto oom;
        if (export_activity_learned(r, o) < 0)
                goto oom;

        SET(root, "news2", a = json_object());
        for (News2Param p = 0; p < _NEWS2_MAX; p++)
                if (r->param[p].have)
                        SET(a, news2_param_name(p),
                            json_pack("{s:f, s:i, s:I}", "value", r->param[p].value, "score",
                                      r->param[p].score, "time", (json_int_t)r->param[p].time));

        SET(root, "baselines", a = json_object());
        for (Metric m = 0; m < _METRIC_MAX; m++) {
                const Baseline *b = &r->baseline[m];
                if (b->dir && b->n > 0) {
                        SET(a, metric_name(m),
                            o = json_pack("{s:i, s:f, s:f, s:f, s:I}", "n", (int)b->n, "mean", b->mean,
                                          "var", b->var, "cusum", b->cusum, "first", (json_int_t)b->first));
                        if (export_session(o, b) < 0)
                                goto oom;
                }
        }
        if (r->weight_trend.n > 0)
                SET(root, "weight_trend",
                    json_pack("{s:i, s:I, s:f, s:f}", "n", (int)r->weight_trend.n, "first",
                              (json_int_t)r->weight_trend.first, "short", r->weight_trend.short_avg, "long",
                              r->weight_trend.long_avg));

        SET(root, "weights", a = json_array());
        for (size_t i = 0; i < r->n_weights; i++)
                APPEND(a, json_pack("{s:I, s:f}", "day", (json_int_t)r->weights[i].day, "kg",
                                    r->weights[i].kg));
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

/* Open alerts the rules raised, each cleared later with its own id. -ENOMEM. */
static int import_open(Rules *r, const json_t *a)
{
        const json_t *o;
        size_t i;

        json_array_foreach(a, i, o)
        {
                const char *key = json_string_value(json_object_get(o, "key"));
                const char *id = json_string_value(json_object_get(o, "id"));
                Open op = {.raised = get_time(o, "raised", r->now)};
                if (alert_kind_from_name(json_string_value(json_object_get(o, "kind")), &op.kind) < 0 ||
                    !kind_of_rules(op.kind) || !key || !id || !id[0] || strlen(key) >= sizeof op.key ||
                    strlen(id) >= sizeof op.id ||
                    alert_severity_from_name(json_string_value(json_object_get(o, "severity")) ?: "",
                                             &op.severity) < 0 ||
                    rules_find_open(r, op.kind, key))
                        continue;
                snprintf(op.key, sizeof op.key, "%s", key);
                snprintf(op.id, sizeof op.id, "%s", id);
                if (rules_open_append(r, &op) < 0)
                        return -ENOMEM;
        }
        return 0;
}

/* Doses due and the next scheduled time. */
static void import_medication(Rules *r, const json_t *dues, const json_t *next_schedule)
{
        const json_t *o;
        size_t i;

        r->n_dues = 0;
        json_array_foreach(dues, i, o)
        {
                const char *key = json_string_value(json_object_get(o, "key"));
                Due *d;
                if (r->n_dues == MAX_DUES || !key || strlen(key) >= sizeof d->key ||
                    get_time(o, "at", -1) < 0)
                        continue;
                d = &r->dues[r->n_dues++];
                *d = (Due){.at = get_time(o, "at", 0),
                           .taken = get_bool(o, "taken"),
                           .reported = get_bool(o, "reported")};
                snprintf(d->key, sizeof d->key, "%s", key);
        }
        if (json_is_integer(next_schedule) && json_integer_value(next_schedule) >= 0 && r->n_schedule > 0) {
                /* Doses scheduled while the gateway was down are due now, late; but not a month of them. */
                int64_t t = json_integer_value(next_schedule), oldest = r->now - 2 * DAY;
                r->next_schedule = t >= oldest ? t : medication_next_scheduled(r, oldest);
                if (r->next_schedule > medication_next_scheduled(r, r->now))
                        r->next_schedule = medication_next_scheduled(r, r->now);
        }
}

/* The quiet spells learned. A file from before the histograms has "maxspell", the longest spell of
 * each hour on each of 14 days: each becomes one spell of that length in that hour, so an upgrade
 * keeps what was learned. */
static void import_spells(Rules *r, const json_t *o)
{
        const json_t *a = json_object_get(o, "spells"), *old = json_object_get(o, "maxspell"), *v;

        memset(r->spells, 0, sizeof r->spells);
        memset(r->limit_cache, 0, sizeof r->limit_cache);
        if (json_is_array(a) && get_i64(o, "spell_bin_min", 0) == SPELL_BIN_MIN) {
                for (int h = 0; h < 24; h++)
                        for (int b = 0; b < SPELL_BINS; b++) {
                                double x;
                                v = json_array_get(json_array_get(a, (size_t)h), (size_t)b);
                                x = json_is_number(v) ? json_number_value(v) : 0;
                                r->spells[h][b] = isfinite(x) ? (float)MIN_MAX(x, 0, 1e6) : 0;
                        }
                return;
        }
        for (int d = 0; d < LEARN_DAYS; d++)
                for (int h = 0; h < 24; h++) {
                        json_int_t m;
                        v = json_array_get(json_array_get(old, (size_t)d), (size_t)h);
                        m = json_is_integer(v) ? json_integer_value(v) : 0;
                        if (m >= SPELL_LEARN_MIN && m < 100000)
                                r->spells[h][MIN_MAX(m / SPELL_BIN_MIN, 0, SPELL_BINS - 1)] += 1.0f;
                }
}

/* Where the person is, what is pending (door, bed), and the quiet spells learned. */
static void import_activity(Rules *r, const json_t *o)
{
        const json_t *a, *v;
        size_t i;

        if (!json_is_object(o))
                return;
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
        r->company_at = get_time(o, "company_at", 0);
        r->quiet_unsure = get_bool(o, "quiet_unsure");
        r->door_opens = (unsigned)MIN_MAX(get_i64(o, "door_opens", 0), 0, 1000);
        r->door_from_away = get_bool(o, "door_from_away");
        r->left_bed_at = get_time(o, "left_bed_at", 0);
        r->left_bed_alerted = get_bool(o, "left_bed_alerted");
        import_spells(r, o);
        a = json_object_get(o, "rises");
        json_array_foreach(a, i, v)
        {
                int64_t day = get_time(v, "day", 0);
                if (day > 0)
                        r->rise[(day / DAY) % LEARN_DAYS] = (typeof(r->rise[0])){
                            .day = day,
                            .early = (int16_t)MIN_MAX(get_i64(v, "early", 0), -24 * 60, 24 * 60)};
        }
}

/* The open session of a baseline; none (the next reading starts one) if absent or damaged. */
static void import_session(Baseline *b, const json_t *o)
{
        b->sess_at = 0;
        b->sess_n = 0;
        b->sess_sum = 0;
        if (!json_is_object(o) || get_time(o, "at", 0) <= 0)
                return;
        b->sess_at = get_time(o, "at", 0);
        b->sess_sum = get_num(o, "sum", NAN);
        b->sess_n = (unsigned)MIN_MAX(get_i64(o, "n", 0), 0, 1000000);
        b->mean0 = get_num(o, "mean0", NAN);
        b->var0 = get_num(o, "var0", NAN);
        b->cusum0 = get_num(o, "cusum0", NAN);
        b->frozen0 = (unsigned)MIN_MAX(get_i64(o, "frozen0", 0), 0, 1000);
        if (b->sess_n == 0 || !isfinite(b->sess_sum) || !isfinite(b->mean0) || !isfinite(b->var0) ||
            b->var0 < 0 || !isfinite(b->cusum0) || b->cusum0 < 0)
                b->sess_at = 0, b->sess_n = 0, b->sess_sum = 0;
}

/* The weight trend's averages; absent in older files, which learn it again. */
static void import_weight_trend(Rules *r, const json_t *o)
{
        WeightTrend w = {.n = (unsigned)MIN_MAX(get_i64(o, "n", 0), 0, 1000000000),
                         .first = get_time(o, "first", 0),
                         .short_avg = get_num(o, "short", NAN),
                         .long_avg = get_num(o, "long", NAN)};
        r->weight_trend = w.n > 0 && isfinite(w.short_avg) && isfinite(w.long_avg) ? w : (WeightTrend){0};
}

/* The last NEWS2 parameters, the personal baselines, the morning weights and their trend. */
static void import_vitals(Rules *r, const json_t *news2, const json_t *baselines, const json_t *weights,
                          const json_t *j_weight_trend)
{
        const json_t *o, *v;
        const char *name;
        size_t i;

        json_object_foreach((json_t *)news2, name, v)
        {
                News2Param p;
                if (news2_param_from_name(name, &p) < 0)
                        continue;
                r->param[p] = (Param){.have = true,
                                      .value = get_num(v, "value", 0),
                                      .score = (int)MIN_MAX(get_i64(v, "score", 0), 0, 3),
                                      .time = get_time(v, "time", 0)};
        }

        json_object_foreach((json_t *)baselines, name, v)
        {
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
                /* A file from before sessions: its readings were learned one by one, so as many sessions. */
                b->sessions = (unsigned)MIN_MAX(get_i64(v, "sessions", b->n), 0, 1000000000);
                b->frozen = (unsigned)MIN_MAX(get_i64(v, "frozen", 0), 0, 1000);
                b->prev = get_num(v, "prev", NAN);
                b->prev2 = get_num(v, "prev2", NAN);
                import_session(b, json_object_get(v, "session"));
                if (!isfinite(b->mean) || !isfinite(b->var) || b->var < 0 || !isfinite(b->cusum) ||
                    b->cusum < 0)
                        *b = (Baseline){.dir = b->dir,
                                        .sign = b->sign,
                                        .sd_min = b->sd_min,
                                        .sd_prior = b->sd_prior,
                                        .min_shift = b->min_shift,
                                        .prev = NAN,
                                        .prev2 = NAN};
        }
        import_weight_trend(r, j_weight_trend);

        r->n_weights = 0;
        json_array_foreach(weights, i,
                           o) if (r->n_weights < MAX_WEIGHTS && json_is_number(json_object_get(o, "kg")))
        {
                r->weights[r->n_weights].day = get_time(o, "day", 0);
                r->weights[r->n_weights].kg = get_num(o, "kg", 0);
                r->n_weights++;
        }
}

int rules_import(Rules *r, const json_t *j)
{
        if (!json_is_object(j) || get_i64(j, "version", 0) != STATE_VERSION)
                return -EINVAL;
        /* The clock never goes backwards: a snapshot from a later time (the real clock was set back
         * meanwhile) keeps its time. */
        if (get_time(j, "now", 0) > r->now)
                r->now = get_time(j, "now", 0);
        if (import_open(r, json_object_get(j, "open")) < 0)
                return -ENOMEM;
        import_medication(r, json_object_get(j, "dues"), json_object_get(j, "next_schedule"));
        import_activity(r, json_object_get(j, "activity"));
        import_vitals(r, json_object_get(j, "news2"), json_object_get(j, "baselines"),
                      json_object_get(j, "weights"), json_object_get(j, "weight_trend"));
        rules_note_pending(r);
        return 0;
}
