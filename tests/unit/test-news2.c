/* NEWS2 (RCP 2017): both sides of every band edge of the chart, both SpO2 scales. */
#include "gateway/news2.h"
#include "test.h"

typedef struct Edge {
        double value;
        int score;
} Edge;

#define RUN(fn, ...)                                                                                        \
        do {                                                                                                \
                static const Edge e[] = {__VA_ARGS__};                                                      \
                for (size_t i = 0; i < sizeof e / sizeof e[0]; i++)                                         \
                        if (fn(e[i].value) != e[i].score) {                                                 \
                                fprintf(stderr, "%s(%g) = %d, want %d\n", #fn, e[i].value, fn(e[i].value),  \
                                        e[i].score);                                                        \
                                test_failed_checks++;                                                       \
                        }                                                                                   \
        } while (0)

static void test_respiration(void)
{
        /* <=8: 3 | 9-11: 1 | 12-20: 0 | 21-24: 2 | >=25: 3 */
        RUN(news2_respiration, {0, 3}, {8, 3}, {9, 1}, {11, 1}, {12, 0}, {20, 0}, {21, 2}, {24, 2}, {25, 3},
            {60, 3}, {8.4, 3}, {8.5, 1}, {20.4, 0}, {20.5, 2});
}

static int spo2_1(double v)
{
        return news2_spo2(v, 1, false);
}
static int spo2_1_o2(double v)
{
        return news2_spo2(v, 1, true);
}
static int spo2_2_air(double v)
{
        return news2_spo2(v, 2, false);
}
static int spo2_2_o2(double v)
{
        return news2_spo2(v, 2, true);
}

static void test_spo2_scale1(void)
{
        /* <=91: 3 | 92-93: 2 | 94-95: 1 | >=96: 0; scale 1 does not depend on oxygen */
        RUN(spo2_1, {70, 3}, {91, 3}, {92, 2}, {93, 2}, {94, 1}, {95, 1}, {96, 0}, {100, 0}, {91.4, 3},
            {91.5, 2});
        RUN(spo2_1_o2, {91, 3}, {92, 2}, {93, 2}, {94, 1}, {95, 1}, {96, 0}, {100, 0});
}

static void test_spo2_scale2(void)
{
        /* <=83: 3 | 84-85: 2 | 86-87: 1 | 88-92 and >=93 on air: 0 | 93-94 on O2: 1 | 95-96 on O2: 2 | >=97
         * on O2: 3 */
        RUN(spo2_2_air, {80, 3}, {83, 3}, {84, 2}, {85, 2}, {86, 1}, {87, 1}, {88, 0}, {92, 0}, {93, 0},
            {97, 0}, {100, 0});
        RUN(spo2_2_o2, {83, 3}, {84, 2}, {85, 2}, {86, 1}, {87, 1}, {88, 0}, {92, 0}, {93, 1}, {94, 1},
            {95, 2}, {96, 2}, {97, 3}, {100, 3});
}

static void test_air_oxygen(void)
{
        CHECK(news2_air_oxygen(false) == 0);
        CHECK(news2_air_oxygen(true) == 2);
}

static void test_systolic(void)
{
        /* <=90: 3 | 91-100: 2 | 101-110: 1 | 111-219: 0 | >=220: 3 */
        RUN(news2_systolic, {60, 3}, {90, 3}, {91, 2}, {100, 2}, {101, 1}, {110, 1}, {111, 0}, {219, 0},
            {220, 3}, {260, 3});
}

static void test_pulse(void)
{
        /* <=40: 3 | 41-50: 1 | 51-90: 0 | 91-110: 1 | 111-130: 2 | >=131: 3 */
        RUN(news2_pulse, {30, 3}, {40, 3}, {41, 1}, {50, 1}, {51, 0}, {90, 0}, {91, 1}, {110, 1}, {111, 2},
            {130, 2}, {131, 3}, {180, 3});
}

static void test_temperature(void)
{
        /* <=35.0: 3 | 35.1-36.0: 1 | 36.1-38.0: 0 | 38.1-39.0: 1 | >=39.1: 2 */
        RUN(news2_temperature, {34, 3}, {35.0, 3}, {35.1, 1}, {36.0, 1}, {36.1, 0}, {38.0, 0}, {38.1, 1},
            {39.0, 1}, {39.1, 2}, {41, 2}, {35.04, 3}, {35.05, 1});
}

static void test_consciousness(void)
{
        CHECK(news2_consciousness('A') == 0);
        CHECK(news2_consciousness('C') == 3);
        CHECK(news2_consciousness('V') == 3);
        CHECK(news2_consciousness('P') == 3);
        CHECK(news2_consciousness('U') == 3);
        CHECK(news2_consciousness('X') == -1);
}

static void test_risk(void)
{
        CHECK(news2_risk(0) == NEWS2_RISK_NONE);
        CHECK(news2_risk(1) == NEWS2_RISK_LOW);
        CHECK(news2_risk(4) == NEWS2_RISK_LOW);
        CHECK(news2_risk(5) == NEWS2_RISK_MEDIUM);
        CHECK(news2_risk(6) == NEWS2_RISK_MEDIUM);
        CHECK(news2_risk(7) == NEWS2_RISK_HIGH);
        CHECK(news2_risk(20) == NEWS2_RISK_HIGH);
}

/* Values beyond any band (a broken device's 1e300) fall in the band at that end, not in the lowest:
 * fails on d9b8a30, where lround() of 1e300 gave LONG_MIN and a fever of 1e300 scored 3. */
static void test_huge_values(void)
{
        CHECK(news2_temperature(1e300) == 2);
        CHECK(news2_temperature(1e18) == 2);
        CHECK(news2_temperature(-1e300) == 3);
        CHECK(news2_respiration(1e300) == 3);
        CHECK(news2_systolic(1e300) == 3);
        CHECK(news2_pulse(1e300) == 3);
}

TEST_MAIN(TEST(test_huge_values), TEST(test_respiration), TEST(test_spo2_scale1), TEST(test_spo2_scale2),
          TEST(test_air_oxygen), TEST(test_systolic), TEST(test_pulse), TEST(test_temperature),
          TEST(test_consciousness), TEST(test_risk))
