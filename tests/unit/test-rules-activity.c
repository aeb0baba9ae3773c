/* The rules of daily life at exact times: inactivity against the quiet spells learned for the time of
 * day, night exits, bed exits, and whose dose a dose taken is. TZ is CET-1 (set by engine()), so
 * local times are UTC+1 (the varied homes' winter). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "common/macro.h"
#include "common/timefmt.h"
#include "gateway/alert-kind.h"
#include "gateway/rules.h"
#include "test-util.h"
#include "test.h"

static char log_[8192];
static const char *only; /* record only these kinds (space-separated), or all if NULL */
static unsigned next_id;

/* Every raise and clear as "HH:MM kind state" in UTC; the engine wants an id on every raise. */
static void sink(void *userdata, Alert *a)
{
        char t[RFC3339_MAX];
        size_t n = strlen(log_);

        (void)userdata;
        if (a->state == ALERT_RAISED)
                snprintf(a->id, sizeof a->id, "t-%u", ++next_id);
        if (only && !strstr(only, a->kind))
                return;
        format_rfc3339(t, a->time_usec);
        snprintf(log_ + n, sizeof log_ - n, "%s%.5s %s %s", n ? "; " : "", t + 11, a->kind,
                 alert_state_name(a->state));
}

static Config *config(const char *extra)
{
        char text[4096];
        Config *c;
        snprintf(text, sizeof text,
                 "[Sensor \"kitchen\"]\nType=bthome\nAddress=A4:C1:38:20:00:03\nRole=kitchen\n"
                 "ExpectedIntervalMinutes=0\n"
                 "[Sensor \"hall\"]\nType=bthome\nAddress=A4:C1:38:20:00:05\nRole=hall\n"
                 "ExpectedIntervalMinutes=0\n"
                 "[Input \"door\"]\nChip=gpiochip0\nLine=1\nKind=door\nRole=exit-door\n"
                 "[Input \"bed\"]\nChip=gpiochip0\nLine=2\nKind=bed\nRole=bed\n"
                 "[Input \"dispenser\"]\nChip=gpiochip0\nLine=3\nKind=dispenser-dose-taken\nRole=dispenser\n"
                 "[Patient]\nId=p1\n%s",
                 extra);
        c = test_config_from_text(text, CONFIG_RULES_ONLY);
        if (!c)
                abort();
        return c;
}

static Rules *engine(Config *c, const char *start)
{
        Rules *r = NULL;
        setenv("TZ", "CET-1", 1);
        tzset();
        log_[0] = '\0';
        only = NULL;
        CHECK(rules_new(c, T(start), sink, NULL, &r) == 0);
        return r;
}

static void event(Rules *r, const char *at, const char *sensor, EventKind k, int v)
{
        test_rules_event(r, T(at), sensor, k, v);
}

/* Issue 19 (b): after a real miss, a dose taken a few minutes early belongs to the coming dose, not
 * to the miss of twelve hours before. fails on e1f1119: the 19:55 dose cleared the 08:00 miss as
 * "taken late" and the 20:00 dose was then reported missed at 21:00 (23 false missed_dose alerts on
 * the varied homes). */
static void test_dose_taken_early_after_a_miss_is_the_coming_dose(void)
{
        Config *c = config("[Medication]\nSchedule=08:00,20:00\nGraceMinutes=60\n");
        Rules *r = engine(c, "2026-03-02T05:00:00Z");
        only = "missed_dose";
        /* 08:00 local (07:00Z) forgotten: raised at the end of the grace period. */
        rules_advance(r, T("2026-03-02T12:00:00Z"));
        CHECK_STREQ(log_, "08:00 missed_dose raised");
        /* 19:55 local: five minutes early for 20:00. The miss stays a miss; 20:00 is not missed. */
        event(r, "2026-03-02T18:55:00Z", "dispenser", EVENT_DOSE_TAKEN, 1);
        rules_advance(r, T("2026-03-02T21:30:00Z"));
        CHECK_STREQ(log_, "08:00 missed_dose raised");
        /* And the next morning, taken on time: nothing. */
        event(r, "2026-03-03T07:05:00Z", "dispenser", EVENT_DOSE_TAKEN, 1);
        rules_advance(r, T("2026-03-03T12:00:00Z"));
        CHECK_STREQ(log_, "08:00 missed_dose raised");
        rules_free(r);
        config_free(c);
}

/* A missed dose taken late still clears its alert, while the next dose is not yet near; within its
 * grace period a dose is that due's even when the next one is less than an hour away. */
static void test_dose_taken_late_credited_within_its_window(void)
{
        Config *c = config("[Medication]\nSchedule=08:00,09:30,20:00\nGraceMinutes=60\n");
        Rules *r = engine(c, "2026-03-02T05:00:00Z");
        only = "missed_dose";
        /* 08:50 local: 08:00 in its grace, 09:30 forty minutes ahead: it is the 08:00 dose. */
        event(r, "2026-03-02T07:50:00Z", "dispenser", EVENT_DOSE_TAKEN, 1);
        /* 09:30 forgotten, taken at 11:40 (three hours before 20:00's early hour): late, credited. */
        rules_advance(r, T("2026-03-02T09:45:00Z"));
        event(r, "2026-03-02T10:40:00Z", "dispenser", EVENT_DOSE_TAKEN, 1);
        rules_advance(r, T("2026-03-02T18:00:00Z"));
        CHECK_STREQ(log_, "09:30 missed_dose raised; 10:40 missed_dose cleared");
        /* 20:00 taken at 19:30 local: early, credited to 20:00. */
        event(r, "2026-03-02T18:30:00Z", "dispenser", EVENT_DOSE_TAKEN, 1);
        rules_advance(r, T("2026-03-02T21:00:00Z"));
        CHECK_STREQ(log_, "09:30 missed_dose raised; 10:40 missed_dose cleared");
        rules_free(r);
        config_free(c);
}

#define MIN_US (60LL * 1000000)
#define DAY_US (24 * 60 * MIN_US)

/* Local midnight (CET) of day d after Mon 2 March 2026. */
static int64_t day_at(int d, int hh, int mm)
{
        return T("2026-03-01T23:00:00Z") + d * DAY_US + (hh * 60 + mm) * MIN_US;
}

static void event_at(Rules *r, int64_t t, const char *sensor, EventKind k, int v)
{
        test_rules_event(r, t, sensor, k, v);
}

/* An ordinary day: out of bed at up_min (minutes after midnight), about every 10 minutes in the
 * kitchen, a nap of nap_min minutes from 14:00 if nap_min, to bed at 22:00. */
static void ordinary_day(Rules *r, int d, int up_min, int nap_min)
{
        event_at(r, day_at(d, 0, up_min), "bed", EVENT_BED, 0);
        for (int m = up_min + 10; m < 22 * 60; m += 10) {
                if (nap_min && m > 14 * 60 && m < 14 * 60 + nap_min)
                        continue;
                event_at(r, day_at(d, 0, m), "kitchen", EVENT_MOTION, 1);
        }
        event_at(r, day_at(d, 22, 0), "bed", EVENT_BED, 1);
}

/* Issue 19 (a): a quiet spell is judged against the spells of that time of day (a 95th percentile
 * times 1.25 plus 30 minutes), not against the longest spell of any hour nearby times 1.5: after a
 * week of 100-minute naps at 14:00, 14:00 allows 167 minutes. fails on e1f1119: the limit was 150
 * (1.5 x 100), and a nap of 160 minutes raised inactivity. */
static void test_inactivity_limit_from_the_naps_of_that_hour(void)
{
        Config *c = config("NightWindow=23:00-06:00\n");
        Rules *r = engine(c, "2026-03-01T23:00:00Z");
        for (int d = 0; d < 8; d++)
                ordinary_day(r, d, 7 * 60, 100);
        CHECK(rules_inactivity_limit_min(r, 14) == 167); /* 100-110 min: (110 x 1.25) + 30 */
        only = "inactivity";
        /* Day 9: still for 160 minutes from 14:00: a long nap, not more (1.5 x 100 was 150). It is
         * learned: the next day, 14:00 allows 242 minutes (170 x 1.25 + 30), and a spell from 14:00
         * is raised at 18:02. */
        ordinary_day(r, 8, 7 * 60, 160);
        CHECK_STREQ(log_, "");
        CHECK(rules_inactivity_limit_min(r, 14) == 242);
        event_at(r, day_at(9, 7, 0), "bed", EVENT_BED, 0);
        for (int m = 7 * 60 + 10; m <= 14 * 60; m += 10)
                event_at(r, day_at(9, 0, m), "kitchen", EVENT_MOTION, 1);
        rules_advance(r, day_at(9, 19, 0));
        CHECK_STREQ(log_, "17:02 inactivity raised"); /* 18:02 local */
        rules_free(r);
        config_free(c);
}

/* Issue 19 (a): the exit door after a visit, then silence, is the visitor leaving: the person is at
 * home and watched (the fall in the hall as the daughter leaves). Alone, the door then silence is
 * still "gone out". fails on e1f1119: both were taken for "gone out", and the fall was never raised. */
static void test_door_after_a_visit_is_the_visitor_leaving(void)
{
        Config *c = config("NightWindow=23:00-06:00\n[Rules]\nInactivityDefaultMinutes=240\n");
        Rules *r = engine(c, "2026-03-02T06:00:00Z");
        only = "inactivity";
        event(r, "2026-03-02T06:00:00Z", "bed", EVENT_BED, 0);
        /* Alone, out at 08:00 local until 14:00: nothing. */
        event(r, "2026-03-02T06:58:00Z", "hall", EVENT_MOTION, 1);
        event(r, "2026-03-02T07:00:00Z", "door", EVENT_DOOR, 1);
        event(r, "2026-03-02T07:00:15Z", "door", EVENT_DOOR, 0);
        rules_advance(r, T("2026-03-02T13:00:00Z"));
        event(r, "2026-03-02T13:00:00Z", "door", EVENT_DOOR, 1);
        event(r, "2026-03-02T13:00:15Z", "door", EVENT_DOOR, 0);
        event(r, "2026-03-02T13:00:40Z", "hall", EVENT_MOTION, 1);
        CHECK_STREQ(log_, "");
        /* A visitor at 17:00 local: the door, movement; at 18:28 the visitor leaves; silence. */
        event(r, "2026-03-02T16:00:00Z", "door", EVENT_DOOR, 1);
        event(r, "2026-03-02T16:00:15Z", "door", EVENT_DOOR, 0);
        for (int m = 2; m < 88; m += 6) {
                char t[32];
                snprintf(t, sizeof t, "2026-03-02T16:%02d:00Z", m < 60 ? m : 0);
                if (m >= 60)
                        snprintf(t, sizeof t, "2026-03-02T17:%02d:00Z", m - 60);
                event(r, t, "kitchen", EVENT_MOTION, 1);
        }
        event(r, "2026-03-02T17:27:00Z", "hall", EVENT_MOTION, 1);
        event(r, "2026-03-02T17:28:00Z", "door", EVENT_DOOR, 1);
        event(r, "2026-03-02T17:28:16Z", "door", EVENT_DOOR, 0);
        rules_advance(r, T("2026-03-02T22:00:00Z"));
        CHECK_STREQ(log_, "21:28 inactivity raised"); /* the door + 240 min */
        rules_free(r);
        config_free(c);
}

/* Issue 19 (c): in bed in the evening, before the night window, is asleep; in bed after the night
 * (a lie-in) is not a fall: at least the default limit. fails on e1f1119: both raised at the learned
 * 120 minutes (hans to bed at 21:08 after a day out, dieter asleep until 08:30). */
static void test_in_bed_evening_and_lie_in(void)
{
        Config *c = config("NightWindow=23:00-06:00\n");
        Rules *r = engine(c, "2026-03-01T23:00:00Z");
        for (int d = 0; d < 8; d++)
                ordinary_day(r, d, 7 * 60, 0);
        CHECK(rules_inactivity_limit_min(r, 20) == 120);
        only = "inactivity";
        /* Day 8: to bed at 19:30, up at 09:30: nothing. */
        event_at(r, day_at(8, 7, 0), "bed", EVENT_BED, 0);
        for (int m = 7 * 60 + 10; m < 19 * 60 + 30; m += 10)
                event_at(r, day_at(8, 0, m), "kitchen", EVENT_MOTION, 1);
        event_at(r, day_at(8, 19, 30), "bed", EVENT_BED, 1);
        event_at(r, day_at(9, 9, 30), "bed", EVENT_BED, 0);
        event_at(r, day_at(9, 9, 31), "kitchen", EVENT_MOTION, 1);
        CHECK_STREQ(log_, "");
        /* Day 10: in bed until 11:00: raised at 10:00 (the night's end + 240 min). */
        ordinary_day(r, 9, 9 * 60 + 40, 0);
        rules_advance(r, day_at(10, 11, 0));
        CHECK_STREQ(log_, "09:00 inactivity raised");
        rules_free(r);
        config_free(c);
}

/* Issue 19 (c): getting up for the day at the person's own early hour, inside the night window, is
 * the morning; a bed exit earlier in the night still raises. fails on e1f1119: every 05:20 rising
 * raised bed_exit_no_return at 05:50 (hans up at 05:39, night to 06:30). */
static void test_bed_exit_at_the_usual_early_rising_is_the_morning(void)
{
        Config *c = config("NightWindow=23:00-06:00\n[Rules]\nBedExitMinutes=30\n");
        Rules *r = engine(c, "2026-03-01T23:00:00Z");
        only = "bed_exit_no_return";
        ordinary_day(r, 0, 5 * 60 + 20, 0); /* the first time: nothing learned yet, raised */
        CHECK_STREQ(log_, "04:50 bed_exit_no_return raised; 05:00 bed_exit_no_return cleared");
        log_[0] = '\0';
        for (int d = 1; d < 4; d++)
                ordinary_day(r, d, 5 * 60 + 20, 0);
        CHECK_STREQ(log_, "");
        /* Up at 03:00, in the kitchen, not back for an hour: raised. */
        event_at(r, day_at(4, 3, 0), "bed", EVENT_BED, 0);
        event_at(r, day_at(4, 3, 5), "kitchen", EVENT_MOTION, 1);
        rules_advance(r, day_at(4, 3, 40));
        CHECK_STREQ(log_, "02:30 bed_exit_no_return raised");
        rules_free(r);
        config_free(c);
}

/* What was learned survives a restart through the export; a file from before the histograms
 * ("maxspell") is still read, and what it learned kept. */
static void test_learned_state_export_import(void)
{
        Config *c = config("NightWindow=23:00-06:00\n");
        Rules *r = engine(c, "2026-03-01T23:00:00Z"), *again = NULL;
        json_t *j, *act;
        for (int d = 0; d < 8; d++)
                ordinary_day(r, d, 5 * 60 + 20, 100);
        j = rules_export(r);
        CHECK(j);
        CHECK(rules_new(c, day_at(8, 6, 0), sink, NULL, &again) == 0);
        CHECK(rules_import(again, j) == 0);
        for (int h = 0; h < 24; h++)
                CHECK(rules_inactivity_limit_min(again, h) == rules_inactivity_limit_min(r, h));
        rules_free(again);
        /* The old layout: 14 days x 24 hours of longest spells. 100 min at 14:00 on 7 days. */
        act = json_object_get(j, "activity");
        json_object_del(act, "spells");
        json_object_del(act, "spell_bin_min");
        {
                json_t *days = json_array();
                for (int d = 0; d < 14; d++) {
                        json_t *hours = json_array();
                        for (int h = 0; h < 24; h++)
                                json_array_append_new(hours, json_integer(d < 7 && h == 14 ? 100 : 0));
                        json_array_append_new(days, hours);
                }
                json_object_set_new(act, "maxspell", days);
        }
        CHECK(rules_new(c, day_at(8, 6, 0), sink, NULL, &again) == 0);
        CHECK(rules_import(again, j) == 0);
        CHECK(rules_inactivity_limit_min(again, 14) == 167);
        rules_free(again);
        json_decref(j);
        rules_free(r);
        config_free(c);
}

TEST_MAIN(TEST(test_dose_taken_early_after_a_miss_is_the_coming_dose),
          TEST(test_dose_taken_late_credited_within_its_window),
          TEST(test_inactivity_limit_from_the_naps_of_that_hour),
          TEST(test_door_after_a_visit_is_the_visitor_leaving), TEST(test_in_bed_evening_and_lie_in),
          TEST(test_bed_exit_at_the_usual_early_rising_is_the_morning),
          TEST(test_learned_state_export_import))
