/* Medication: doses due by the schedule (or by the dispenser's own signal without one), taken or
 * missed, and what the dispenser reports about itself. See docs/rules.md, "missed_dose" and
 * "dispenser_fault". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/macro.h"
#include "gateway/rules-evidence.h"
#include "gateway/rules-internal.h"

int64_t medication_next_scheduled(Rules *r, int64_t after)
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

static void register_due(Rules *r, int64_t at, const char *why)
{
        Due *d;
        /* Dues older than two days are settled either way. */
        while (r->n_dues > 0 && r->dues[0].at < at - 2 * DAY && (r->dues[0].taken || r->dues[0].reported)) {
                if (!r->dues[0].taken)
                        rules_clear(r, ALERT_KIND_MISSED_DOSE, r->dues[0].key, "superseded", NULL);
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

/* Until when a dose taken late still counts for the missed due d: until the early hour of the next
 * scheduled dose begins. From then on a dose belongs to the coming one (a dose near its due time is
 * that dose), and d stays a miss. Without a schedule (the dispenser's own signals), until d is
 * settled (two days). */
static int64_t credit_end(Rules *r, const Due *d)
{
        int64_t next = medication_next_scheduled(r, d->at);
        return next == INT64_MAX ? INT64_MAX : next - HOUR;
}

void medication_taken(Rules *r, const json_t *evidence)
{
        Due *late = NULL;

        /* 1. A due in its grace period: this is its dose. */
        for (size_t i = 0; i < r->n_dues; i++) {
                Due *d = &r->dues[i];
                if (!d->taken && !d->reported && d->at - HOUR <= r->now) {
                        d->taken = true;
                        return;
                }
        }
        /* 2. Up to an hour before a scheduled dose: taken early, it counts for that dose (and not for a
         * miss of hours before: "19:55 taken as the 08:00 dose, 12 h late" left 20:00 unaccounted). */
        if (r->next_schedule != INT64_MAX && r->next_schedule - HOUR <= r->now) {
                register_due(r, r->next_schedule, "schedule");
                r->dues[r->n_dues - 1].taken = true;
                r->next_schedule = medication_next_scheduled(r, r->next_schedule);
                return;
        }
        /* 3. A missed dose taken late, while it can still be that dose: the latest one. */
        for (size_t i = 0; i < r->n_dues; i++) {
                Due *d = &r->dues[i];
                if (!d->taken && d->at <= r->now && (!late || d->at > late->at))
                        late = d;
        }
        if (late && r->now < credit_end(r, late)) {
                late->taken = true;
                if (late->reported)
                        rules_clear(r, ALERT_KIND_MISSED_DOSE, late->key, "dose taken late", evidence);
        }
}

void medication_dispenser_due(Rules *r)
{
        /* With a schedule, the dispenser's own signal near a scheduled time adds nothing. */
        for (size_t i = 0; i < r->n_dues; i++)
                if (llabs(r->dues[i].at - r->now) <= HOUR)
                        return;
        if (r->next_schedule != INT64_MAX && r->next_schedule - r->now <= HOUR)
                return;
        register_due(r, r->now, "dispenser");
}

void medication_dispenser_missed(Rules *r, const json_t *evidence)
{
        char key[32];
        snprintf(key, sizeof key, "dispenser-%lld", (long long)(r->now / 1000000));
        rules_raise(r, ALERT_KIND_MISSED_DOSE, key, SEVERITY_WARNING, "the dispenser reports a missed dose",
                    evidence);
}

/* empty: it reports being empty; else that it was refilled. */
void medication_dispenser_empty(Rules *r, bool empty, const json_t *evidence)
{
        if (empty)
                rules_raise(r, ALERT_KIND_DISPENSER_FAULT, "empty", SEVERITY_WARNING,
                            "the dispenser is empty", evidence);
        else
                rules_clear(r, ALERT_KIND_DISPENSER_FAULT, "empty", "refilled", evidence);
}

void medication_dispenser_fault(Rules *r, bool fault, const json_t *evidence)
{
        if (fault)
                rules_raise(r, ALERT_KIND_DISPENSER_FAULT, "fault", SEVERITY_WARNING,
                            "the dispenser reports a fault", evidence);
        else
                rules_clear(r, ALERT_KIND_DISPENSER_FAULT, "fault", "fault gone", evidence);
}

int64_t medication_next_deadline(Rules *r)
{
        int64_t d = r->next_schedule;

        for (size_t i = 0; i < r->n_dues; i++)
                if (!r->dues[i].taken && !r->dues[i].reported)
                        d = earliest(d, r->dues[i].at + r->grace);
        return d;
}

void medication_fire(Rules *r)
{
        const double due = 1;
        char msg[160];

        while (r->next_schedule <= r->now) {
                register_due(r, r->next_schedule, "schedule");
                r->next_schedule = medication_next_scheduled(r, r->next_schedule);
        }
        for (size_t i = 0; i < r->n_dues; i++) {
                Due *d = &r->dues[i];
                if (d->taken || d->reported || d->at + r->grace > r->now)
                        continue;
                d->reported = true;
                /* Each due is its own alert; an older open one is closed by the newer. */
                for (size_t j = 0; j < i; j++)
                        if (r->dues[j].reported && !r->dues[j].taken)
                                rules_clear(r, ALERT_KIND_MISSED_DOSE, r->dues[j].key,
                                            "superseded by the next dose", NULL);
                snprintf(msg, sizeof msg, "dose due at %02d:%02d not taken within %lld minutes",
                         minute_of_day(r, d->at) / 60, minute_of_day(r, d->at) % 60,
                         (long long)(r->grace / MIN));
                json_auto_t *ev = evidence_of(evidence_item(NULL, "event", "dose_due", &due, NULL, d->at));
                rules_raise(r, ALERT_KIND_MISSED_DOSE, d->key, SEVERITY_WARNING, msg, ev);
        }
}
