/* Daily life at home: inactivity (against the quiet spells learned for each hour of the day),
 * leaving by the exit door at night, and staying out of bed at night. See docs/rules.md, "Daily
 * life". */
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "common/macro.h"
#include "gateway/rules-evidence.h"
#include "gateway/rules-internal.h"

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
        if (r->away || rules_find_open(r, ALERT_KIND_INACTIVITY, ""))
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
void activity_seen(Rules *r, bool indoor, const json_t *evidence)
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
                rules_clear(r, ALERT_KIND_BED_EXIT_NO_RETURN, "", "back in bed", evidence);
        } else {
                r->in_bed = false;
                if (in_night(r, r->now))
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
        if (rules_find_open(r, ALERT_KIND_BED_EXIT_NO_RETURN, ""))
                d = earliest(d, next_night_end(r, r->now));
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
                 (long long)((t - s) / MIN), rules_inactivity_limit_min(r, minute_of_day(r, t) / 60));
        json_auto_t *ev = evidence_since(NULL, "quiet_since", s, t);
        rules_raise(r, ALERT_KIND_INACTIVITY, "", SEVERITY_CRITICAL, msg, ev);
}

static void night_exit_fire(Rules *r)
{
        const double open = 1;
        char msg[160];

        if (r->door_at && !r->away && r->door_at + AWAY_QUIET <= r->now && !r->night_exit_pending)
                r->away = true; /* the door, then quiet: gone out */
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
