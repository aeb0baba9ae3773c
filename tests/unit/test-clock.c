/* Clock steps and daylight saving time: the rules at exact times across a step forward (a gateway
 * that booted in the past and was set by NTP), a step back (a clock that ran fast), and the two
 * daylight-saving changes of a year; and the daemon's clock seam (step detection, time quality).
 * TZ is Central European time with its daylight-saving rule (set in setup()).
 *
 * fails on fb6d774: rules_clock_step(), clock_watch_update() and clock_quality() are new there (the
 * flood they prevent shows in the system test tests/system/test-clock and in `homecare-gw replay`
 * over two readings six years apart); the daylight-saving tests use only the old API and fail there:
 * the 08:00 dose was expected at 09:00 summer time on the spring day and at 07:00 on the autumn day,
 * and the night window ran an hour off. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timex.h>
#include <time.h>

#include "common/timefmt.h"
#include "gateway/clock.h"
#include "gateway/rules.h"
#include "test-util.h"
#include "test.h"

#define SEC 1000000LL
#define MIN (60 * SEC)
#define HOUR (60 * MIN)

static char log_[16384];
static unsigned n_alerts;
static const char *only; /* record only these kinds (space-separated), or all if NULL */

static void sink(void *userdata, Alert *a)
{
        char t[RFC3339_MAX];
        size_t n = strlen(log_);
        n_alerts++;
        if (only && !strstr(only, a->kind))
                return;
        if (n + 200 < sizeof log_)
                snprintf(log_ + n, sizeof log_ - n, "%s%s %s %s", n ? "; " : "",
                         format_rfc3339(t, a->time_usec), a->kind, alert_state_name(a->state));
}

static Config *config(const char *extra)
{
        char text[2048];
        Config *c;
        snprintf(
            text, sizeof text,
            "[Sensor "
            "\"climate\"]\nType=bthome\nAddress=A4:C1:38:30:00:01\nRole=living-"
            "room\nExpectedIntervalMinutes=60\n"
            "[Sensor "
            "\"kitchen\"]\nType=bthome\nAddress=A4:C1:38:20:00:03\nRole=kitchen\nExpectedIntervalMinutes=0\n"
            "[Input \"door\"]\nChip=gpiochip0\nLine=1\nKind=door\nRole=exit-door\n"
            "[Input \"bed\"]\nChip=gpiochip0\nLine=2\nKind=bed\nRole=bed\n"
            "[Input \"dispenser\"]\nChip=gpiochip0\nLine=3\nKind=dispenser-dose-taken\nRole=dispenser\n"
            "[Input \"button\"]\nChip=gpiochip0\nLine=4\nKind=button\nRole=alarm-button\n"
            "[Patient]\nId=p1\nNightWindow=23:00-06:00\n[Medication]\nSchedule=08:00,14:00,20:"
            "00\nGraceMinutes=60\n"
            "[Rules]\nInactivityDefaultMinutes=240\nBedExitMinutes=30\nNightExitMinutes="
            "15\nAlarmButtonClearMinutes=30\n%s",
            extra);
        c = test_config_from_text(text, CONFIG_RULES_ONLY);
        if (!c)
                abort();
        return c;
}

static Rules *engine(Config *c, const char *start)
{
        Rules *r = NULL;
        log_[0] = '\0';
        n_alerts = 0;
        only = NULL;
        CHECK(rules_new(c, T(start), sink, NULL, &r) == 0);
        return r;
}

static void event(Rules *r, const char *at, const char *sensor, EventKind k, int v)
{
        test_rules_event(r, T(at), sensor, k, v);
}

/* What the daemon does when it sees a step: the old clock up to the moment, then the step. */
static void step(Rules *r, const char *old_now, const char *new_now)
{
        rules_advance(r, T(old_now));
        rules_clock_step(r, T(new_now) - T(old_now));
        rules_advance(r, T(new_now));
}

/* Booted with the clock at 2020 (the last shutdown), set by NTP ten minutes later to 2026: six years
 * of doses, silence and inactivity are not alerts; what was running keeps its real elapsed time. */
static void test_forward_step_keeps_elapsed_time_and_fires_nothing_skipped(void)
{
        Config *c = config("");
        Rules *r = engine(c, "2020-01-01T06:50:00Z");
        event(r, "2020-01-01T06:55:00Z", "kitchen", EVENT_MOTION, 1); /* 07:55 local */
        rules_advance(r, T("2020-01-01T07:00:00Z"));                  /* the 08:00 dose comes due */
        step(r, "2020-01-01T07:10:00Z", "2026-03-02T09:00:00Z");      /* 10:00 local, Monday */
        CHECK_STREQ(log_, "");
        CHECK(n_alerts == 0);
        /* Real time goes on: the grace of the dose due ten minutes before the step ends 50 minutes
         * later, the climate sensor (last heard at start, 20 minutes before the step) is silent 40
         * minutes after it, the kitchen's motion (15 minutes before) is 4 hours old 3 h 45 min after
         * it, and the 14:00 dose comes. */
        rules_advance(r, T("2026-03-02T14:30:00Z"));
        CHECK_STREQ(log_, "2026-03-02T09:40:00.000Z sensor_silent raised; "
                          "2026-03-02T09:50:00.000Z missed_dose raised; "
                          "2026-03-02T12:45:00.000Z inactivity raised; "
                          "2026-03-02T14:00:00.000Z missed_dose cleared; "
                          "2026-03-02T14:00:00.000Z missed_dose raised");
        rules_free(r);
        config_free(c);
}

/* The same jump without telling the engine is what the daemon did before: every dose of six years. */
static void test_forward_jump_untold_is_the_flood(void)
{
        Config *c = config("");
        Rules *r = engine(c, "2020-01-01T06:50:00Z");
        rules_advance(r, T("2026-03-02T09:00:00Z"));
        CHECK(n_alerts > 10000);
        rules_free(r);
        config_free(c);
}

/* Out of bed at night when the clock is set: the 30 minutes are real minutes, half before the step. */
static void test_forward_step_keeps_bed_exit(void)
{
        Config *c = config("");
        Rules *r = engine(c, "2020-01-01T22:00:00Z");
        only = "bed_exit_no_return";
        event(r, "2020-01-01T22:10:00Z", "bed", EVENT_BED, 1);
        event(r, "2020-01-02T02:00:00Z", "bed", EVENT_BED, 0);   /* 03:00 local: up */
        step(r, "2020-01-02T02:10:00Z", "2026-03-03T01:10:00Z"); /* 02:10 local: still night */
        CHECK_STREQ(log_, "");
        rules_advance(r, T("2026-03-03T01:40:00Z"));
        /* 30 minutes out of bed in real time: 20 of them after the step. */
        CHECK_STREQ(log_, "2026-03-03T01:30:00.000Z bed_exit_no_return raised");
        event(r, "2026-03-03T01:45:00Z", "bed", EVENT_BED, 1);
        CHECK_STREQ(log_, "2026-03-03T01:30:00.000Z bed_exit_no_return raised; "
                          "2026-03-03T01:45:00.000Z bed_exit_no_return cleared");
        rules_free(r);
        config_free(c);
}

/* The clock ran 30 minutes fast and is set back: the 08:00 dose it already expected (at 07:30 real
 * time) is not expected a second time; its grace runs on real time; taken at 08:05 real it counts. */
static void test_backward_step_under_an_hour_no_dose_twice(void)
{
        Config *c = config("");
        Rules *r = engine(c, "2026-03-02T06:00:00Z");
        only = "missed_dose";
        event(r, "2026-03-02T06:10:00Z", "climate", EVENT_MOTION, 0);
        rules_advance(r, T("2026-03-02T07:20:00Z")); /* 08:20 local, fast clock */
        step(r, "2026-03-02T07:20:00Z", "2026-03-02T06:50:00Z");
        event(r, "2026-03-02T07:05:00Z", "dispenser", EVENT_DOSE_TAKEN, 1);
        event(r, "2026-03-02T07:06:00Z", "climate", EVENT_MOTION, 0);
        rules_advance(r, T("2026-03-02T09:00:00Z"));
        CHECK_STREQ(log_, "");
        /* Untaken, the dose would have been missed 60 real minutes after the fast clock's 08:00. */
        r = rules_free(r);
        r = engine(c, "2026-03-02T06:00:00Z");
        only = "missed_dose";
        event(r, "2026-03-02T06:10:00Z", "climate", EVENT_MOTION, 0);
        step(r, "2026-03-02T07:20:00Z", "2026-03-02T06:50:00Z");
        event(r, "2026-03-02T07:00:00Z", "climate", EVENT_MOTION, 0);
        rules_advance(r, T("2026-03-02T09:00:00Z"));
        CHECK_STREQ(log_, "2026-03-02T07:30:00.000Z missed_dose raised");
        rules_free(r);
        config_free(c);
}

/* The clock was a day fast (a technician's typo) and is set back: the next doses are new doses in
 * real time, each expected once; an alarm raised before the step clears after its real 30 minutes;
 * the door at night keeps its real 15 minutes. */
static void test_backward_step_of_a_day(void)
{
        Config *c = config("");
        Rules *r = engine(c, "2026-03-03T05:00:00Z");
        only = "missed_dose alarm_button";
        event(r, "2026-03-03T07:05:00Z", "dispenser", EVENT_DOSE_TAKEN,
              1); /* Tue 08:05 local (really Mon) */
        event(r, "2026-03-03T07:10:00Z", "button", EVENT_BUTTON, 1);
        event(r, "2026-03-03T07:15:00Z", "climate", EVENT_MOTION, 0);
        step(r, "2026-03-03T07:20:00Z", "2026-03-02T07:20:00Z");
        CHECK_STREQ(log_, "2026-03-03T07:10:00.000Z alarm_button raised");
        log_[0] = '\0';
        rules_advance(r, T("2026-03-02T07:41:00Z"));
        CHECK_STREQ(log_, "2026-03-02T07:40:00.000Z alarm_button cleared");
        log_[0] = '\0';
        /* Mon 14:00 and 20:00 and Tue 08:00 come; 14:00 is taken, the others not: one alert each, the
         * Tue 08:00 dose not mistaken for the one taken on the fast clock. */
        for (int64_t t = T("2026-03-02T08:00:00Z"); t < T("2026-03-03T09:00:00Z"); t += 30 * MIN)
                test_rules_event(r, t, "climate", EVENT_MOTION, 0);
        r = rules_free(r);
        CHECK(strstr(log_, "2026-03-02T14:00:00.000Z missed_dose raised")); /* 14:00 local is 13:00Z */
        CHECK(strstr(log_, "2026-03-02T20:00:00.000Z missed_dose raised"));
        CHECK(strstr(log_, "2026-03-03T08:00:00.000Z missed_dose raised"));
        {
                unsigned raised = 0;
                for (const char *p = log_; (p = strstr(p, "missed_dose raised")); p++)
                        raised++;
                CHECK(raised == 3);
        }
        config_free(c);
}

/* Daylight saving time moves no clock: the schedule and the night window are wall-clock times. */
static void test_dst_spring_forward(void)
{
        Config *c = config("");
        /* 29 March 2026: 02:00 CET becomes 03:00 CEST (01:00Z). */
        Rules *r = engine(c, "2026-03-28T20:00:00Z");
        only = "missed_dose";
        for (int64_t t = T("2026-03-28T20:00:00Z"); t < T("2026-03-29T12:00:00Z"); t += 30 * MIN)
                test_rules_event(r, t, "climate", EVENT_MOTION, 0);
        rules_free(r);
        /* 08:00 CEST is 06:00Z: missed at 07:00Z (not 08:00Z); 14:00 CEST is 12:00Z, not yet. */
        CHECK_STREQ(log_, "2026-03-29T07:00:00.000Z missed_dose raised");
        config_free(c);

        c = config("");
        r = engine(c, "2026-03-28T22:00:00Z");
        only = "bed_exit_no_return";
        event(r, "2026-03-28T22:05:00Z", "bed", EVENT_BED, 1);
        event(r, "2026-03-28T22:06:00Z", "climate", EVENT_MOTION, 0);
        /* Up at 05:40 CEST (03:40Z): 30 minutes later it is 06:10, morning: no bed exit alert. */
        event(r, "2026-03-29T03:40:00Z", "bed", EVENT_BED, 0);
        event(r, "2026-03-29T03:41:00Z", "climate", EVENT_MOTION, 0);
        rules_advance(r, T("2026-03-29T04:30:00Z"));
        CHECK_STREQ(log_, "");
        rules_free(r);
        config_free(c);
}

static void test_dst_spring_forward_dose_in_the_skipped_hour(void)
{
        Config *c = test_config_from_text(
            "[Patient]\nId=p1\n[Medication]\nSchedule=02:30\nGraceMinutes=60\n", CONFIG_RULES_ONLY);
        Rules *r;

        if (!c)
                abort();
        r = engine(c, "2026-03-28T00:00:00Z");
        only = "missed_dose";
        rules_advance(r, T("2026-03-30T12:00:00Z"));
        rules_free(r);
        /* 28 March 02:30 CET (01:30Z), 29 March: 02:30 does not exist; due when the clock would have
         * shown it, 03:30 CEST (01:30Z), once; 30 March 02:30 CEST (00:30Z). Each missed an hour later. */
        CHECK_STREQ(
            log_,
            "2026-03-28T02:30:00.000Z missed_dose raised; "
            "2026-03-29T02:30:00.000Z missed_dose cleared; 2026-03-29T02:30:00.000Z missed_dose raised; "
            "2026-03-30T01:30:00.000Z missed_dose cleared; 2026-03-30T01:30:00.000Z missed_dose raised");

        /* 25 October: 03:00 CEST becomes 02:00 CET (01:00Z); 02:30 happens twice: due once. */
        r = engine(c, "2026-10-24T00:00:00Z");
        only = "missed_dose";
        rules_advance(r, T("2026-10-26T12:00:00Z"));
        rules_free(r);
        CHECK_STREQ(
            log_,
            "2026-10-24T01:30:00.000Z missed_dose raised; "
            "2026-10-25T02:30:00.000Z missed_dose cleared; 2026-10-25T02:30:00.000Z missed_dose raised; "
            "2026-10-26T02:30:00.000Z missed_dose cleared; 2026-10-26T02:30:00.000Z missed_dose raised");
        config_free(c);
}

static void test_dst_fall_back(void)
{
        Config *c = config("");
        Rules *r = engine(c, "2026-10-24T20:00:00Z");
        only = "missed_dose";
        for (int64_t t = T("2026-10-24T20:00:00Z"); t < T("2026-10-25T10:00:00Z"); t += 30 * MIN)
                test_rules_event(r, t, "climate", EVENT_MOTION, 0);
        rules_free(r);
        /* 08:00 CET is 07:00Z: missed at 08:00Z, not an hour early. */
        CHECK_STREQ(log_, "2026-10-25T08:00:00.000Z missed_dose raised");
        config_free(c);
}

static void test_clock_watch(void)
{
        ClockWatch w = {};
        int64_t boot = 5 * SEC, real = T("2020-01-01T00:00:00Z");

        CHECK(clock_watch_update(&w, real, boot) == 0); /* the first look */
        /* Slewing: 1 s over a minute is followed, and is not a step. */
        boot += 60 * SEC;
        real += 61 * SEC;
        CHECK(clock_watch_update(&w, real, boot) == 0);
        boot += 60 * SEC;
        real += 61 * SEC;
        CHECK(clock_watch_update(&w, real, boot) == 0);
        /* NTP sets the clock: reported once, with its size and sign. */
        boot += 10 * SEC;
        CHECK(clock_watch_update(&w, T("2026-03-02T09:00:00Z"), boot) ==
              T("2026-03-02T09:00:00Z") - real - 10 * SEC);
        CHECK(clock_watch_update(&w, T("2026-03-02T09:00:01Z"), boot + SEC) == 0);
        CHECK(clock_watch_update(&w, T("2026-03-02T08:00:01Z"), boot + SEC) == -HOUR);
}

static void test_clock_quality(void)
{
        int64_t now = T("2026-03-02T09:00:00Z");
        CHECK(clock_quality(TIME_OK, 0, now) == TIME_SYNCED);
        CHECK(clock_quality(TIME_OK, STA_UNSYNC, now) == TIME_UNSYNCED);
        CHECK(clock_quality(TIME_ERROR, 0, now) == TIME_UNSYNCED);
        /* A clock before this release cannot be right, whatever adjtimex says. */
        CHECK(clock_quality(TIME_OK, 0, T("2020-01-01T00:00:00Z")) == TIME_UNSYNCED);
        CHECK(clock_quality(TIME_OK, 0, 0) == TIME_UNSYNCED);
}

static void setup(void) __attribute__((constructor));
static void setup(void)
{
        setenv("TZ", "CET-1CEST,M3.5.0,M10.5.0/3", 1);
        tzset();
}

TEST_MAIN(TEST(test_forward_step_keeps_elapsed_time_and_fires_nothing_skipped),
          TEST(test_forward_jump_untold_is_the_flood), TEST(test_forward_step_keeps_bed_exit),
          TEST(test_backward_step_under_an_hour_no_dose_twice), TEST(test_backward_step_of_a_day),
          TEST(test_dst_spring_forward), TEST(test_dst_spring_forward_dose_in_the_skipped_hour),
          TEST(test_dst_fall_back), TEST(test_clock_watch), TEST(test_clock_quality))
