/* common/backoff.c: the bounds of every wait, exactly (the random number is passed in).
 * test_full_jitter is the test that came with uplink/backoff.c. */
#include <stdint.h>

#include "common/backoff.h"
#include "test.h"

static void test_full_jitter(void)
{
        Backoff b = {.base_usec = 1000000, .cap_usec = 300ULL * 1000000};
        /* The first retry comes within a second, whatever the dice say. */
        CHECK(backoff_next(&b, UINT32_MAX) < 1000000);
        CHECK(backoff_next(&b, UINT32_MAX) < 2000000 && backoff_next(&b, 0) == 0);
        backoff_reset(&b);
        uint64_t prev = 0;
        for (int i = 0; i < 12; i++) {
                uint64_t d = backoff_next(&b, UINT32_MAX);
                CHECK(d < 300ULL * 1000000);
                CHECK(d >= prev || d > 299ULL * 1000000);
                prev = d;
        }
        CHECK(prev > 299ULL * 1000000); /* capped at about 5 minutes */
        /* Full jitter: the middle of the range for a middle random number. */
        backoff_reset(&b);
        CHECK(backoff_next(&b, 1u << 31) == 500000);
}

/* Without jitter (sensors/gpio.c): 1 s, 2 s, 4 s ... 32 s, then the cap of 60 s for ever, and 1 s
 * again after a reset: the times gpio.c had by hand. */
static void test_ceiling(void)
{
        static const uint64_t expect[] = {1, 2, 4, 8, 16, 32, 60, 60, 60};
        Backoff b = {.base_usec = 1000000, .cap_usec = 60ULL * 1000000};

        for (size_t i = 0; i < sizeof expect / sizeof expect[0]; i++)
                CHECK(backoff_next_ceiling(&b) == expect[i] * 1000000);
        for (int i = 0; i < 200; i++) /* the count saturates; the wait stays the cap, no overflow */
                CHECK(backoff_next_ceiling(&b) == 60ULL * 1000000);
        backoff_reset(&b);
        CHECK(backoff_next_ceiling(&b) == 1000000);
        /* The jittered wait never exceeds the ceiling the same attempt has. */
        backoff_reset(&b);
        for (int i = 0; i < 10; i++) {
                Backoff c = b;
                uint64_t ceiling = backoff_next_ceiling(&c);
                CHECK(backoff_next(&b, UINT32_MAX) < ceiling);
        }
}

/* The outbox's commit retries (uplink/outbox.c): 0.1 s doubling to 3.2 s, then the cap of 5 s: the
 * times outbox_commit() had by hand. */
static void test_outbox_retry(void)
{
        static const uint64_t expect_msec[] = {100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000, 5000, 5000};
        Backoff b = {.base_usec = 100000, .cap_usec = 5000000};

        for (size_t i = 0; i < sizeof expect_msec / sizeof expect_msec[0]; i++)
                CHECK(backoff_next_ceiling(&b) == expect_msec[i] * 1000);
}

TEST_MAIN(TEST(test_full_jitter), TEST(test_ceiling), TEST(test_outbox_retry))
