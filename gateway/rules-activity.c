/* Daily life at home: inactivity (against the quiet spells learned for each hour of the day),
 * leaving by the exit door at night, and staying out of bed at night. See docs/rules.md, "Daily
 * life". */
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "common/macro.h"
#include "gateway/rules-evidence.h"
#include "gateway/rules-internal.h"

/* The learned limit. Every quiet spell of at least SPELL_LEARN_MIN minutes at home and awake is
 * counted in each local hour it covered, by length; the counts fade by SPELL_DECAY a day, so the
 * last two weeks or so speak. For an hour, the spells of that hour and its neighbours (a nap an
 * hour late is still a nap), with SPELL_PRIOR spells' weight of the person's whole day mixed in (so
 * that an hour with few spells borrows the person's habits rather than alarming at the floor), give
 * a distribution; the limit is its SPELL_QUANTILE quantile times SPELL_MARGIN plus SPELL_EXTRA
 * minutes, between the floor and the ceiling. The numbers and why: docs/rules.md, "inactivity". */
#define SPELL_DECAY 0.93f
#define SPELL_PRIOR 1.0
#define SPELL_QUANTILE 0.95
#define SPELL_MARGIN 1.25
#define SPELL_EXTRA 30         /* minutes: a nap a little longer than any seen, a stir the PIR missed */
#define EVENING_BED (4 * HOUR) /* in bed this long before the night window: gone to bed for the night */
#define RISE_CONFIRM HOUR      /* out of bed this long, and moving: up for the day */
#define COMPANY_MAX (4 * HOUR) /* a visitor is gone after this long, whatever the doors said */
#define RISE_SLACK 15          /* minutes earlier than the earliest rising learned still count */

static unsigned compute_limit_min(Rules *r, int hour)
{
        double slot[SPELL_BINS] = {0}, all[SPELL_BINS] = {0}, n_slot = 0, n_all = 0, total, tail = 0;
        int64_t limit;
        int b;

        for (int h = 0; h < 24; h++)
                for (b = 0; b < SPELL_BINS; b++) {
                        all[b] += r->spells[h][b];
                        n_all += r->spells[h][b];
                }
        if (n_all < 1.0)
                return (unsigned)(r->inact_default / MIN);
        for (int h = hour + 23; h <= hour + 25; h++)
                for (b = 0; b < SPELL_BINS; b++) {
                        slot[b] += r->spells[h % 24][b];
                        n_slot += r->spells[h % 24][b];
                }
        total = n_slot + SPELL_PRIOR;
        /* From the longest down: the first bin where more than 1 - q of the weight lies at or above. */
        for (b = SPELL_BINS - 1; b > 0; b--) {
                tail += slot[b] + SPELL_PRIOR * all[b] / n_all;
                if (tail > (1.0 - SPELL_QUANTILE) * total)
                        break;
        }
        limit = (int64_t)((b + 1) * SPELL_BIN_MIN * SPELL_MARGIN + SPELL_EXTRA) * MIN;
        if (limit < r->inact_floor)
                limit = r->inact_floor;
        if (limit > r->inact_ceiling)
                limit = r->inact_ceiling;
        return (unsigned)(limit / MIN);
}

unsigned rules_inactivity_limit_min(Rules *r, int hour)
{
        if (r->learned_days < r->baseline_min_days)
                return (unsigned)(r->inact_default / MIN);
        if (!r->limit_cache[hour])
                r->limit_cache[hour] = compute_limit_min(r, hour);
        return r->limit_cache[hour];
}

/* Bed state unknown at night counts as asleep (a house without a bed mat). */
static bool asleep_maybe(Rules *r)
{
        return r->in_bed || !r->bed_known;
}

/* Asleep at t: in bed (or unknown) in the night window, or in bed in the evening before it (gone
 * to bed early: not a quiet spell, and not to be learned as one). */
static bool asleep_at(Rules *r, int64_t t)
{
        if (asleep_maybe(r) && in_night(r, t))
                return true;
        return r->bed_known && r->in_bed && in_night(r, t + EVENING_BED) && r->bed_since >= t - EVENING_BED;
}

/* When the current quiet spell began: in bed over the night, it begins when the night ends. */
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

/* The limit at t, in minutes. In bed after the night (a lie-in, a nap in bed) the person is not on
 * the floor: at least InactivityDefaultMinutes, whatever the daytime spells were. */
static unsigned limit_at(Rules *r, int64_t t)
{
        unsigned limit = rules_inactivity_limit_min(r, minute_of_day(r, t) / 60);
        if (r->bed_known && r->in_bed && limit < r->inact_default / MIN)
                limit = (unsigned)(r->inact_default / MIN);
        return limit;
}

static int64_t inactivity_deadline(Rules *r)
{
        int64_t t = r->now, prev = r->now;
        if (r->away || rules_find_open(r, ALERT_KIND_INACTIVITY, ""))
                return INT64_MAX;
        /* Step through the next day and a half in 5-minute steps: the limit changes by the hour. */
        for (int i = 0; i < 36 * 12; i++) {
                int64_t s, limit;
                if (!asleep_at(r, t)) {
                        s = quiet_since(r, t);
                        limit = limit_at(r, t) * MIN;
                        if (t - s >= limit) {
                                /* The first moment this hour's limit is passed: the limit may have
                                 * just dropped at the hour. */
                                int64_t at = s + limit;
                                return at > prev && minute_of_day(r, at) / 60 == minute_of_day(r, t) / 60
                                           ? at
                                           : t;
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
        int bin = (int)(minutes / SPELL_BIN_MIN), first, last;

        if (day != r->learn_day) {
                /* A new day: what was learned fades a little. */
                r->learn_day = day;
                r->learned_days++;
                for (int h = 0; h < 24; h++)
                        for (int b = 0; b < SPELL_BINS; b++)
                                r->spells[h][b] *= SPELL_DECAY;
                memset(r->limit_cache, 0, sizeof r->limit_cache);
        }
        if (minutes < SPELL_LEARN_MIN)
                return; /* ordinary life between two movements */
        if (bin >= SPELL_BINS)
                bin = SPELL_BINS - 1;
        /* Each local hour the spell covered, once (a spell over midnight wraps). */
        first = minute_of_day(r, from) / 60;
        last = minute_of_day(r, to) / 60;
        for (int h = first, n = 0; n < 24; h = (h + 1) % 24, n++) {
                r->spells[h][bin] += 1.0f;
                r->limit_cache[h] = 0;
                if (h == last)
                        break;
        }
        /* A limit next to a changed hour changes too. */
        memset(r->limit_cache, 0, sizeof r->limit_cache);
}

/* How many minutes before the night window's end t is (negative: after it). */
static int minutes_before_night_end(Rules *r, int64_t t)
{
        int d = (r->night_end - minute_of_day(r, t) + 24 * 60) % (24 * 60);
        return d > 12 * 60 ? d - 24 * 60 : d;
}

/* The person left the bed at `at` and has been up and about for an hour: up for the day. The
 * earliest such rising of each day is kept (a fall after getting up is no rising: an alert about
 * it keeps it out). */
static void learn_rise(Rules *r, int64_t at)
{
        int64_t day = local_day_start(r, at);
        int early = minutes_before_night_end(r, at);
        size_t slot = (size_t)((day / DAY) % LEARN_DAYS);

        if (early > 2 * 60 || early < -6 * 60)
                return; /* the middle of the night, or the afternoon: not a morning */
        if (r->rise[slot].day == day && r->rise[slot].early >= early)
                return;
        r->rise[slot].day = day;
        r->rise[slot].early = (int16_t)early;
}

/* Leaving the bed at now, in the night window, is getting up for the day: the person has got up
 * this early (or at most RISE_SLACK minutes earlier) in the last LEARN_DAYS days. */
static bool rising_now(Rules *r)
{
        int early = minutes_before_night_end(r, r->now), most = INT16_MIN;
        int64_t today = local_day_start(r, r->now);

        for (size_t i = 0; i < LEARN_DAYS; i++)
                if (r->rise[i].day && r->rise[i].day < today && r->rise[i].day >= today - LEARN_DAYS * DAY &&
                    r->rise[i].early > most)
                        most = r->rise[i].early;
        return most != INT16_MIN && early <= most + RISE_SLACK;
}

/* Someone came in by the exit door and may still be here: a visit lasts a few hours at most (and
 * a wrong guess must not outlive the day). */
static bool company(Rules *r)
{
        return r->company_at && r->now - r->company_at < COMPANY_MAX;
}

/* The person did something: a quiet spell ends. indoor: evidence that they are inside. */
void activity_seen(Rules *r, bool indoor, const json_t *evidence)
{
        int64_t s = quiet_since(r, r->now);
        /* Learned only at home and up: not away, not after a visitor left (perhaps with the
         * person), not in bed (a lie-in has its own limit). */
        if (!r->away && !r->quiet_unsure && !(r->bed_known && r->in_bed) && !asleep_at(r, r->now) &&
            r->now > s)
                learn_spell(r, s, r->now);
        r->last_activity = r->now;
        if (r->left_bed_at && !r->in_bed && r->now - r->left_bed_at >= RISE_CONFIRM) {
                /* (a fall found hours later is no rising: its inactivity alert keeps it out) */
                if (!r->left_bed_alerted)
                        learn_rise(r, r->left_bed_at);
                r->left_bed_at = 0;
        }
        if (indoor) {
                /* Movement inside after the exit door, before "gone out": someone came in (a
                 * visitor, the carer) or, the second time, the visitor left and the person is
                 * about. Two openings: the person went out and came back. After "gone out": the
                 * person is back. */
                if (r->door_at && r->door_from_away)
                        r->company_at = 0;
                else if (r->door_at && r->door_opens == 1)
                        r->company_at = company(r) ? 0 : r->now;
                r->away = false;
                r->quiet_unsure = false;
                r->door_at = 0;
                r->door_opens = 0;
                if (r->night_exit_pending)
                        r->night_exit_pending = false;
                rules_clear(r, ALERT_KIND_NIGHT_EXIT, "", "movement indoors again", evidence);
        }
        rules_clear(r, ALERT_KIND_INACTIVITY, "", "activity again", evidence);
}

void activity_door(Rules *r, const Event *e, Role role, const json_t *evidence)
{
        bool exit = role == ROLE_EXIT_DOOR;

        /* A window or an opening sensor means something only on the exit door. */
        if (!exit && e->kind != EVENT_DOOR)
                return;
        activity_seen(r, !exit, evidence);
        if (exit) {
                /* Someone at the exit door: inside now, perhaps gone in a minute. */
                if (e->value && r->door_opens++ == 0)
                        r->door_from_away = r->away;
                r->away = false;
                r->door_at = r->now;
                rules_clear(r, ALERT_KIND_NIGHT_EXIT, "", "the door again", evidence);
                if (e->value && in_night(r, r->now) && !r->night_exit_pending)
                        r->night_exit_pending = true;
        }
}

void activity_bed(Rules *r, const Event *e, const json_t *evidence)
{
        activity_seen(r, true, evidence);
        r->bed_known = true;
        if (e->value) {
                r->in_bed = true;
                r->bed_since = r->now;
                r->bed_exit_at = 0;
                r->left_bed_at = 0;
                r->company_at = 0; /* in bed: the visitors have gone */
                rules_clear(r, ALERT_KIND_BED_EXIT_NO_RETURN, "", "back in bed", evidence);
        } else {
                r->in_bed = false;
                r->left_bed_at = r->now;
                r->left_bed_alerted = false;
                /* Up at the person's usual early hour is the start of the day, not a night trip:
                 * inactivity watches from now on, with the morning's limits. */
                if (in_night(r, r->now) && !rising_now(r))
                        r->bed_exit_at = r->now;
        }
}

int64_t activity_next_deadline(Rules *r)
{
        int64_t d = inactivity_deadline(r);

        if (r->door_at && !r->away && !r->night_exit_pending)
                d = earliest(d, r->door_at + AWAY_QUIET);
        if (r->night_exit_pending)
                d = earliest(d, r->door_at + r->night_exit);
        if (r->bed_exit_at)
                d = earliest(d, r->bed_exit_at + r->bed_exit);
        /* (At the very minute the night ends, next_night_end() is tomorrow's: clear now.) */
        if (rules_find_open(r, ALERT_KIND_BED_EXIT_NO_RETURN, ""))
                d = earliest(d, in_night(r, r->now) ? next_night_end(r, r->now) : r->now);
        return d;
}

static void inactivity_fire(Rules *r)
{
        int64_t t = r->now, s;
        char msg[160];

        if (r->away || rules_find_open(r, ALERT_KIND_INACTIVITY, "") || inactivity_deadline(r) > t)
                return;
        s = quiet_since(r, t);
        snprintf(msg, sizeof msg, "no activity for %lld minutes (limit %u at this hour)",
                 (long long)((t - s) / MIN), limit_at(r, t));
        json_auto_t *ev = evidence_since(NULL, "quiet_since", s, t);
        if (rules_raise(r, ALERT_KIND_INACTIVITY, "", SEVERITY_CRITICAL, msg, ev))
                r->left_bed_alerted = true;
}

static void night_exit_fire(Rules *r)
{
        const double open = 1;
        char msg[160];

        if (r->door_at && !r->away && r->door_at + AWAY_QUIET <= r->now && !r->night_exit_pending) {
                if (company(r)) {
                        /* The door, then quiet, after someone came in: the visitor left and the
                         * person is at home, perhaps on the floor in the hall. Watched from the
                         * door on; not learned (it may have been both who left). */
                        r->company_at = 0;
                        r->quiet_unsure = true;
                        r->door_at = 0;
                        r->door_opens = 0;
                } else {
                        r->away = true; /* the door, then quiet: gone out */
                        r->door_opens = 0;
                }
        }
        if (!r->night_exit_pending || r->door_at + r->night_exit > r->now)
                return;
        r->night_exit_pending = false;
        r->away = true;
        snprintf(msg, sizeof msg, "exit door opened at night, no movement indoors for %lld minutes",
                 (long long)(r->night_exit / MIN));
        json_auto_t *ev = evidence_of(evidence_item(NULL, "event", "door", &open, NULL, r->door_at));
        rules_raise(r, ALERT_KIND_NIGHT_EXIT, "", SEVERITY_CRITICAL, msg, ev);
}

static void bed_exit_fire(Rules *r)
{
        const double out = 0;
        char msg[160];

        if (r->bed_exit_at && r->bed_exit_at + r->bed_exit <= r->now) {
                int64_t at = r->bed_exit_at;
                r->bed_exit_at = 0;
                if (in_night(r, at + r->bed_exit)) {
                        snprintf(msg, sizeof msg, "out of bed at night for %lld minutes",
                                 (long long)(r->bed_exit / MIN));
                        json_auto_t *ev = evidence_of(evidence_item(NULL, "event", "bed", &out, NULL, at));
                        rules_raise(r, ALERT_KIND_BED_EXIT_NO_RETURN, "", SEVERITY_WARNING, msg, ev);
                }
        }
        if (rules_find_open(r, ALERT_KIND_BED_EXIT_NO_RETURN, "") && !in_night(r, r->now))
                rules_clear(r, ALERT_KIND_BED_EXIT_NO_RETURN, "", "the night is over", NULL);
}

void activity_fire(Rules *r)
{
        inactivity_fire(r);
        night_exit_fire(r);
        bed_exit_fire(r);
}
