/* common/: MAC addresses, the string-table macro, RFC 3339 time, the clocks and growing arrays. */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "common/alloc-util.h"
#include "common/mac.h"
#include "common/macro.h"
#include "common/string-table.h"
#include "common/time-util.h"
#include "common/timefmt.h"
#include "test.h"

static void test_mac(void)
{
        static const char *const bad[] = {
            "",
            "A4:C1:38:00:00",       /* five bytes */
            "A4:C1:38:00:00:01:02", /* seven */
            "A4:C1:38:00:00:01 ",   /* anything after */
            " A4:C1:38:00:00:01",   /* or before */
            "+4:C1:38:00:00:01",    /* sscanf's %2x took these as numbers */
            "A4:C1:38:00:00:-1",
            "A4-C1-38-00-00-01",
            "A4:C1:38:00:0:001",
            "G4:C1:38:00:00:01",
            "A4C1:38:00:00:01:",
        };
        uint8_t m[6], untouched[6] = {1, 2, 3, 4, 5, 6};
        char buf[MAC_STRING_MAX];

        CHECK(parse_mac("A4:C1:38:00:00:01", m) == 0);
        CHECK(m[0] == 0xA4 && m[1] == 0xC1 && m[2] == 0x38 && m[5] == 0x01);
        CHECK(parse_mac("a4:c1:38:ff:Fe:0a", m) == 0 && m[3] == 0xff && m[4] == 0xfe && m[5] == 0x0a);
        CHECK_STREQ(format_mac(m, buf), "A4:C1:38:FF:FE:0A"); /* upper case, as BlueZ writes them */
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                memcpy(m, untouched, 6);
                if (parse_mac(bad[i], m) != -EINVAL || memcmp(m, untouched, 6) != 0) {
                        fprintf(stderr, "accepted or written: '%s'\n", bad[i]);
                        CHECK(false);
                }
        }
        CHECK(parse_mac(NULL, m) == -EINVAL);
        CHECK(parse_mac(format_mac(untouched, buf), m) == 0 && memcmp(m, untouched, 6) == 0);
}

typedef enum Colour {
        COLOUR_RED,
        COLOUR_GREEN,
        COLOUR_UNNAMED, /* an entry left NULL: never matched */
        COLOUR_BLUE,
        _COLOUR_MAX,
} Colour;

static const char *const colour_table[_COLOUR_MAX] = {
    [COLOUR_RED] = "red",
    [COLOUR_GREEN] = "green",
    [COLOUR_BLUE] = "blue",
};

const char *colour_name(Colour c);
int colour_from_name(const char *s, Colour *ret);
DEFINE_STRING_TABLE_LOOKUP(colour, Colour, colour_table, _COLOUR_MAX);

static void test_string_table(void)
{
        Colour c = COLOUR_RED;

        CHECK_STREQ(colour_name(COLOUR_BLUE), "blue");
        CHECK(colour_name(COLOUR_UNNAMED) == NULL);
        CHECK(colour_name(_COLOUR_MAX) == NULL);
        CHECK(colour_name((Colour)-1) == NULL);
        CHECK(colour_from_name("green", &c) == 0 && c == COLOUR_GREEN);
        CHECK(colour_from_name("blue", &c) == 0 && c == COLOUR_BLUE);
        c = COLOUR_RED;
        CHECK(colour_from_name("Blue", &c) == -EINVAL && c == COLOUR_RED);
        CHECK(colour_from_name("", &c) == -EINVAL);
        CHECK(colour_from_name(NULL, &c) == -EINVAL);
        for (Colour i = 0; i < _COLOUR_MAX; i++)
                if (colour_name(i))
                        CHECK(colour_from_name(colour_name(i), &c) == 0 && c == i);
}

static void test_time(void)
{
        char buf[RFC3339_MAX];
        int64_t t, before = (int64_t)time(NULL) * 1000000, now = now_realtime(), m1, m2;

        CHECK_STREQ(format_rfc3339(buf, 1772436660123456), "2026-03-02T07:31:00.123Z");
        CHECK(parse_rfc3339("2026-03-02T08:31:00.123+01:00", &t) == 0 && t == 1772436660123000);
        CHECK(parse_rfc3339("2026-03-02T07:31:00", &t) == -EINVAL);
        /* The clocks: microseconds, the wall clock's epoch. */
        CHECK(now >= before && now < before + 5 * USEC_PER_SEC);
        m1 = now_monotonic();
        m2 = now_monotonic();
        CHECK(m1 > 0 && m2 >= m1);
        /* CLOCK_BOOTTIME counts suspend too: never behind CLOCK_MONOTONIC. */
        m1 = now_monotonic();
        m2 = now_boottime();
        CHECK(m2 >= m1 && now_boottime() >= m2);
}

/* The room doubles from the initial size, grows only when needed, and a request that cannot be
 * met (overflow) leaves the array as it was. */
static void test_greedy_realloc(void)
{
        uint64_t *a = NULL;
        size_t cap = 0;

        CHECK(GREEDY_REALLOC(a, cap, 0, 16) == 0 && !a && cap == 0);
        CHECK(GREEDY_REALLOC(a, cap, 1, 16) == 0 && a && cap == 16);
        for (size_t i = 0; i < 16; i++)
                a[i] = i;
        CHECK(GREEDY_REALLOC(a, cap, 16, 16) == 0 && cap == 16);
        CHECK(GREEDY_REALLOC(a, cap, 17, 16) == 0 && cap == 32 && a[15] == 15);
        CHECK(GREEDY_REALLOC(a, cap, 100, 16) == 0 && cap == 128);
        uint64_t *before = a;
        CHECK(GREEDY_REALLOC(a, cap, SIZE_MAX / 4, 16) == -ENOMEM && a == before && cap == 128);
        free(a);
}

TEST_MAIN(TEST(test_mac), TEST(test_string_table), TEST(test_time), TEST(test_greedy_realloc))
