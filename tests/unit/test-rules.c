/* The rules engine at exact times: lifecycle (no second raise while open, hysteresis), and the edges
 * of the time-driven rules. TZ is CET-1 (set in main) so local times are UTC+1. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gateway/rules.h"
#include "gateway/timefmt.h"
#include "test.h"

static char log_[8192];
static const char *only; /* record only these kinds (space-separated), or all if NULL */

static void sink(void *userdata, const Alert *a)
{
        char t[RFC3339_MAX];
        size_t n = strlen(log_);
        if (only && !strstr(only, a->kind))
                return;
        snprintf(log_ + n, sizeof log_ - n, "%s%s %s %s", n ? "; " : "", format_rfc3339(t, a->time_usec) + 11,
                 a->kind, alert_state_name(a->state));
}

static int64_t T(const char *s)
{
        int64_t t;
        if (parse_rfc3339(s, &t) < 0)
                abort();
        return t;
}

static Config *config(const char *extra)
{
        char text[2048];
        Config *c = NULL;
        FILE *f;
        snprintf(text, sizeof text,
                 "[Sensor \"oximeter\"]\nType=plx\nAddress=A4:C1:38:10:00:03\n"
                 "[Sensor \"kitchen\"]\nType=bthome\nAddress=A4:C1:38:20:00:03\nRole=kitchen\nExpectedIntervalMinutes=0\n"
                 "[Sensor \"scale\"]\nType=weight\nAddress=A4:C1:38:10:00:02\n"
                 "[Input \"door\"]\nChip=gpiochip0\nLine=1\nKind=door\nRole=exit-door\n"
                 "[Input \"bed\"]\nChip=gpiochip0\nLine=2\nKind=bed\nRole=bed\n"
                 "[Input \"dispenser\"]\nChip=gpiochip0\nLine=3\nKind=dispenser-dose-taken\nRole=dispenser\n"
                 "[Input \"button\"]\nChip=gpiochip0\nLine=4\nKind=button\n"
                 "[Patient]\nId=p1\n%s",
                 extra);
        f = fmemopen(text, strlen(text), "r");
        if (config_parse_mode(f, "t.conf", CONFIG_RULES_ONLY, &c, NULL) < 0)
                abort();
        fclose(f);
        return c;
}

static Rules *engine(Config *c, const char *start)
{
        Rules *r = NULL;
        log_[0] = '\0';
        only = NULL;
        CHECK(rules_new(c, "gw", T(start), sink, NULL, &r) == 0);
        return r;
}

static void reading(Rules *r, const char *at, const char *sensor, Metric m, double v, const char *unit)
{
        Reading rd = {.metric = m, .value = v, .unit = unit, .time_usec = T(at)};
        snprintf(rd.sensor, sizeof rd.sensor, "%s", sensor);
        rules_advance_before(r, T(at));
        rules_reading(r, &rd);
}

static void event(Rules *r, const char *at, const char *sensor, EventKind k, int v)
{
        Event e = {.kind = k, .value = v, .time_usec = T(at)};
        snprintf(e.sensor, sizeof e.sensor, "%s", sensor);
        rules_advance_before(r, T(at));
        rules_event(r, &e);
}

static void test_spo2_wobble_raises_once_and_clears_with_hysteresis(void)
{
        Config *c = config("");
        Rules *r = engine(c, "2026-03-02T08:00:00Z");
        reading(r, "2026-03-02T08:00:00Z", "oximeter", METRIC_SPO2, 91, "%");
        reading(r, "2026-03-02T08:10:00Z", "oximeter", METRIC_SPO2, 92, "%"); /* scores 2: stays open */
        reading(r, "2026-03-02T08:20:00Z", "oximeter", METRIC_SPO2, 91, "%"); /* open already: no new alert */
        reading(r, "2026-03-02T08:30:00Z", "oximeter", METRIC_SPO2, 93, "%");
        reading(r, "2026-03-02T08:40:00Z", "oximeter", METRIC_SPO2, 94, "%"); /* scores 1: clears */
        reading(r, "2026-03-02T08:50:00Z", "oximeter", METRIC_SPO2, 90, "%"); /* a new episode */
        CHECK_STREQ(log_, "08:00:00.000Z news2_single_parameter raised; 08:40:00.000Z news2_single_parameter cleared; "
                          "08:50:00.000Z news2_single_parameter raised");
        rules_free(r);
        config_free(c);
}

static void test_threshold_replaces_news2_for_its_metric(void)
{
        Config *c = config("SpO2Scale=1\n[Threshold \"spo2\"]\nLow=88\n");
        Rules *r = engine(c, "2026-03-02T08:00:00Z");
        reading(r, "2026-03-02T08:00:00Z", "oximeter", METRIC_SPO2, 89, "%"); /* NEWS2 3, but above the limit */
        reading(r, "2026-03-02T08:10:00Z", "oximeter", METRIC_SPO2, 87, "%");
        reading(r, "2026-03-02T08:20:00Z", "oximeter", METRIC_SPO2, 89, "%"); /* 89 < 88 + 2 %: still open */
        reading(r, "2026-03-02T08:30:00Z", "oximeter", METRIC_SPO2, 90, "%");
        CHECK_STREQ(log_, "08:10:00.000Z threshold raised; 08:30:00.000Z threshold cleared");
        rules_free(r);
        config_free(c);
}

static void test_dose_grace_edges(void)
{
        Config *c = config("[Medication]\nSchedule=08:00,14:00\nGraceMinutes=60\n");
        Rules *r = engine(c, "2026-03-02T06:00:00Z");
        only = "missed_dose";
        /* 08:00 local is 07:00Z: taken at 08:00Z, the last moment of the grace period, counts. */
        event(r, "2026-03-02T08:00:00Z", "dispenser", EVENT_DOSE_TAKEN, 1);
        /* 14:00 local is 13:00Z: taken half an hour early counts too. */
        event(r, "2026-03-02T12:30:00Z", "dispenser", EVENT_DOSE_TAKEN, 1);
        rules_advance(r, T("2026-03-02T20:00:00Z"));
        CHECK_STREQ(log_, "");
        /* The next day the 08:00 dose is forgotten, then taken late. */
        rules_advance(r, T("2026-03-03T08:00:01Z"));
        event(r, "2026-03-03T08:20:00Z", "dispenser", EVENT_DOSE_TAKEN, 1);
        CHECK_STREQ(log_, "08:00:00.000Z missed_dose raised; 08:20:00.000Z missed_dose cleared");
        rules_free(r);
        config_free(c);
}

static void test_night_exit_and_bed_exit_edges(void)
{
        Config *c = config("NightWindow=23:00-06:00\n[Rules]\nNightExitMinutes=15\nBedExitMinutes=30\n");
        Rules *r = engine(c, "2026-03-02T20:00:00Z");
        only = "night_exit bed_exit_no_return";
        event(r, "2026-03-02T21:00:00Z", "bed", EVENT_BED, 1);                /* 22:00 local */
        /* 02:00 local: up, out of the door, but back inside (movement) within 15 minutes: no night exit. */
        event(r, "2026-03-03T01:00:00Z", "bed", EVENT_BED, 0);
        event(r, "2026-03-03T01:02:00Z", "door", EVENT_DOOR, 1);
        event(r, "2026-03-03T01:10:00Z", "kitchen", EVENT_MOTION, 1);
        event(r, "2026-03-03T01:20:00Z", "bed", EVENT_BED, 1);                 /* back within 30 min */
        CHECK_STREQ(log_, "");
        /* 05:50 local: up for the day; 30 minutes later the night is over: no bed exit alert. */
        event(r, "2026-03-03T04:50:00Z", "bed", EVENT_BED, 0);
        event(r, "2026-03-03T04:52:00Z", "kitchen", EVENT_MOTION, 1);
        rules_advance(r, T("2026-03-03T06:00:00Z"));
        CHECK_STREQ(log_, "");
        /* The next night at 03:00 local: out of the door and gone. */
        event(r, "2026-03-03T21:30:00Z", "bed", EVENT_BED, 1);
        event(r, "2026-03-04T02:00:00Z", "bed", EVENT_BED, 0);
        event(r, "2026-03-04T02:01:00Z", "door", EVENT_DOOR, 1);
        rules_advance(r, T("2026-03-04T02:40:00Z"));
        CHECK_STREQ(log_, "02:16:00.000Z night_exit raised; 02:30:00.000Z bed_exit_no_return raised");
        rules_free(r);
        config_free(c);
}

static void test_alarm_button_at_once_one_alert_then_clears(void)
{
        Config *c = config("[Rules]\nAlarmButtonClearMinutes=30\n");
        Rules *r = engine(c, "2026-03-02T10:00:00Z");
        event(r, "2026-03-02T10:00:00Z", "button", EVENT_BUTTON, 1);
        event(r, "2026-03-02T10:05:00Z", "button", EVENT_BUTTON, 1);
        rules_advance(r, T("2026-03-02T11:00:00Z"));
        CHECK_STREQ(log_, "10:00:00.000Z alarm_button raised; 10:30:00.000Z alarm_button cleared");
        rules_free(r);
        config_free(c);
}

static void test_weight_gain(void)
{
        Config *c = config("[Rules]\nWeightGainKg=2.0\nWeightGainDays=3\n");
        Rules *r = engine(c, "2026-03-02T06:00:00Z");
        only = "weight_gain";
        reading(r, "2026-03-02T06:30:00Z", "scale", METRIC_BODY_WEIGHT, 78.0, "kg");
        reading(r, "2026-03-03T06:30:00Z", "scale", METRIC_BODY_WEIGHT, 78.9, "kg");
        reading(r, "2026-03-03T18:30:00Z", "scale", METRIC_BODY_WEIGHT, 81.0, "kg"); /* evening: not counted */
        reading(r, "2026-03-04T06:30:00Z", "scale", METRIC_BODY_WEIGHT, 79.9, "kg"); /* +1.9 */
        reading(r, "2026-03-05T06:30:00Z", "scale", METRIC_BODY_WEIGHT, 80.1, "kg"); /* +2.1 over 3 days */
        reading(r, "2026-03-06T06:30:00Z", "scale", METRIC_BODY_WEIGHT, 80.3, "kg"); /* +1.4 on 78.9: below 1.5, clears */
        CHECK_STREQ(log_, "06:30:00.000Z weight_gain raised; 06:30:00.000Z weight_gain cleared");
        rules_free(r);
        config_free(c);
}

static void test_inactivity_default_then_cleared(void)
{
        Config *c = config("[Rules]\nInactivityDefaultMinutes=240\n");
        Rules *r = engine(c, "2026-03-02T08:00:00Z");
        event(r, "2026-03-02T08:00:00Z", "bed", EVENT_BED, 0);
        event(r, "2026-03-02T09:00:00Z", "kitchen", EVENT_MOTION, 1);
        CHECK(rules_next_deadline(r) == T("2026-03-02T13:00:00Z"));
        rules_advance(r, T("2026-03-02T13:30:00Z"));
        event(r, "2026-03-02T13:40:00Z", "kitchen", EVENT_MOTION, 1);
        CHECK_STREQ(log_, "13:00:00.000Z inactivity raised; 13:40:00.000Z inactivity cleared");
        CHECK(rules_inactivity_limit_min(r, 12) == 240);
        rules_free(r);
        config_free(c);
}

static void setup(void) __attribute__((constructor));
static void setup(void)
{
        setenv("TZ", "CET-1", 1);
        tzset();
}

TEST_MAIN(TEST(test_spo2_wobble_raises_once_and_clears_with_hysteresis), TEST(test_threshold_replaces_news2_for_its_metric),
          TEST(test_dose_grace_edges), TEST(test_night_exit_and_bed_exit_edges),
          TEST(test_alarm_button_at_once_one_alert_then_clears), TEST(test_weight_gain),
          TEST(test_inactivity_default_then_cleared))
