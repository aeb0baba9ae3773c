/* JSON writer, time stamps, item encoding, downlink command parsing. Back-off: test-backoff.c. */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "common/timefmt.h"
#include "gateway/command.h"
#include "gateway/encode.h"
#include "gateway/json-writer.h"
#include "test.h"

static void test_json_writer(void)
{
        JsonWriter w;
        char *s;

        json_writer_init(&w);
        jw_object_begin(&w);
        jw_key(&w, "s");
        jw_string(&w, "a\"b\\c\n\x01é");
        jw_key(&w, "n");
        jw_double(&w, 36.6);
        jw_key(&w, "i");
        jw_int(&w, -42);
        jw_key(&w, "big");
        jw_double(&w, 1e20);
        jw_key(&w, "nan");
        jw_double(&w, NAN);
        jw_key(&w, "a");
        jw_array_begin(&w);
        jw_bool(&w, true);
        jw_bool(&w, false);
        jw_array_end(&w);
        jw_object_end(&w);
        s = json_writer_steal(&w, NULL);
        CHECK_STREQ(s, "{\"s\":\"a\\\"b\\\\c\\n\\u0001é\",\"n\":36.6,\"i\":-42,\"big\":1e+20,\"nan\":null,"
                       "\"a\":[true,false]}");
        /* And jansson reads it back. */
        json_t *j = json_loads(s, 0, NULL);
        CHECK(j && json_is_object(j));
        CHECK(j && json_real_value(json_object_get(j, "n")) == 36.6);
        json_decref(j);
        free(s);
}

static void test_rfc3339(void)
{
        char buf[RFC3339_MAX];
        int64_t t;

        CHECK_STREQ(format_rfc3339(buf, 1772436660123456LL), "2026-03-02T07:31:00.123Z");
        CHECK_STREQ(format_rfc3339(buf, 0), "1970-01-01T00:00:00.000Z");
        CHECK(parse_rfc3339("2026-03-02T07:31:00Z", &t) == 0 && t == 1772436660LL * 1000000);
        CHECK(parse_rfc3339("2026-03-02T07:31:00.5Z", &t) == 0 && t == 1772436660LL * 1000000 + 500000);
        CHECK(parse_rfc3339("2026-03-02T08:31:00+01:00", &t) == 0 && t == 1772436660LL * 1000000);
        CHECK(parse_rfc3339("2026-03-02T07:31:00", &t) < 0);
        CHECK(parse_rfc3339("2026-13-02T07:31:00Z", &t) < 0);
        CHECK(parse_rfc3339("2026-03-02T07:31:00Zjunk", &t) < 0);
        CHECK(parse_rfc3339("", &t) < 0);
}

static void test_encode_reading_event_alert(void)
{
        Reading r = {.sensor = "bp-cuff",
                     .metric = METRIC_SYSTOLIC,
                     .value = 128,
                     .unit = "mm[Hg]",
                     .time_usec = 1772436660000000LL,
                     .time_quality = TIME_DEVICE,
                     .flags = READING_CUFF_LOOSE | READING_IRREGULAR_PULSE};
        Event e = {.sensor = "front-door", .kind = EVENT_DOOR, .value = 1, .time_usec = 1772417400000000LL};
        Alert a = {.id = "home-0042-1-1",
                   .kind = "test_alarm",
                   .severity = SEVERITY_CRITICAL,
                   .state = ALERT_RAISED,
                   .time_usec = 0,
                   .message = "Test"};
        size_t len;
        char *s;

        s = encode_reading(&r, &len);
        CHECK_STREQ(s, "{\"type\":\"reading\",\"sensor\":\"bp-cuff\",\"metric\":\"systolic\",\"value\":128,"
                       "\"unit\":\"mm[Hg]\",\"loinc\":\"8480-6\",\"time\":\"2026-03-02T07:31:00.000Z\","
                       "\"time_quality\":\"device\",\"status\":[\"cuff_loose\",\"irregular_pulse\"]}");
        CHECK(s && len == strlen(s));
        free(s);
        s = encode_event(&e, &len);
        CHECK_STREQ(s, "{\"type\":\"event\",\"sensor\":\"front-door\",\"event\":\"door\",\"value\":1,"
                       "\"time\":\"2026-03-02T02:10:00.000Z\"}");
        free(s);
        s = encode_alert(&a, &len);
        CHECK_STREQ(
            s,
            "{\"type\":\"alert\",\"id\":\"home-0042-1-1\",\"kind\":\"test_alarm\",\"severity\":\"critical\","
            "\"state\":\"raised\",\"time\":\"1970-01-01T00:00:00.000Z\",\"message\":\"Test\",\"evidence\":[]"
            "}");
        free(s);
}

static void test_metric_names(void)
{
        Metric m;
        EventKind k;
        for (Metric i = 0; i < _METRIC_MAX; i++) {
                CHECK(metric_name(i) != NULL);
                CHECK(metric_from_name(metric_name(i), &m) == 0 && m == i);
        }
        for (EventKind i = 0; i < _EVENT_KIND_MAX; i++)
                CHECK(event_kind_from_name(event_kind_name(i), &k) == 0 && k == i);
        CHECK(metric_from_name("blood", &m) < 0);
        CHECK_STREQ(metric_loinc(METRIC_SPO2), "59408-5");
}

static void test_command_parse(void)
{
        Command c;
        const char *err = NULL;
        char big[COMMAND_PAYLOAD_MAX + 2];

        CHECK(command_parse("test-alarm", "", 0, &c, &err) == 0 && c.kind == COMMAND_TEST_ALARM);
        CHECK(command_parse("test-alarm", "{\"request_id\":\"r1\",\"message\":\"hi\"}", 34, &c, &err) == 0);
        CHECK_STREQ(c.request_id, "r1");
        CHECK_STREQ(c.message, "hi");
        CHECK(command_parse("status", "{}", 2, &c, &err) == 0 && c.kind == COMMAND_STATUS);
        CHECK(command_parse("reboot", "", 0, &c, &err) == -ENOENT);
        CHECK_STREQ(err, "unknown command");
        CHECK(command_parse("test-alarm", "[1]", 3, &c, &err) == -EBADMSG);
        CHECK(command_parse("test-alarm", "{\"request_id\":5}", 16, &c, &err) == -EBADMSG);
        CHECK(command_parse("test-alarm", "{\"a\":1,\"a\":2}", 13, &c, &err) == -EBADMSG);
        CHECK(command_parse("test-alarm", "{\"request_id\":\"a\\u0000b\"}", 25, &c, &err) == -EBADMSG);
        CHECK(command_parse("observation", "{\"metric\":\"respiratory_rate\",\"value\":22}",
                            strlen("{\"metric\":\"respiratory_rate\",\"value\":22}"), &c, &err) == 0);
        CHECK(c.kind == COMMAND_OBSERVATION && c.value == 22);
        CHECK_STREQ(c.metric, "respiratory_rate");
        CHECK(command_parse("observation", "{\"metric\":\"consciousness\",\"value\":\"V\"}",
                            strlen("{\"metric\":\"consciousness\",\"value\":\"V\"}"), &c, &err) == 0 &&
              c.acvpu == 'V');
        CHECK(command_parse("observation", "{\"metric\":\"consciousness\",\"value\":\"X\"}",
                            strlen("{\"metric\":\"consciousness\",\"value\":\"X\"}"), &c, &err) == -EBADMSG);
        CHECK(command_parse("observation", "{\"metric\":\"mood\",\"value\":3}",
                            strlen("{\"metric\":\"mood\",\"value\":3}"), &c, &err) == -EBADMSG);
        CHECK(command_parse("observation", "{\"metric\":\"spo2\",\"value\":\"high\"}",
                            strlen("{\"metric\":\"spo2\",\"value\":\"high\"}"), &c, &err) == -EBADMSG);
        CHECK(command_parse("observation", "", strlen(""), &c, &err) == -EBADMSG);
        memset(big, ' ', sizeof big);
        CHECK(command_parse("test-alarm", big, sizeof big, &c, &err) == -EMSGSIZE);
}

TEST_MAIN(TEST(test_json_writer), TEST(test_rfc3339), TEST(test_encode_reading_event_alert),
          TEST(test_metric_names), TEST(test_command_parse))
