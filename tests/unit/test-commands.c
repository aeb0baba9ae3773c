/* The command memo (a repeated request answered alike) and the rate limit of test alarms. */
#include "gateway/base.h"
#include "gateway/command-memo.h"
#include "gateway/ratelimit.h"
#include "test.h"

static void test_memo_answers_a_repeated_request(void)
{
        CommandMemo *cm = NULL;
        CHECK(command_memo_new(&cm) == 0);
        CHECK(command_memo_get(cm, "test-alarm", "a") == NULL);
        CHECK(command_memo_put(cm, "test-alarm", "a", "{\"ok\":true}") == 0);
        CHECK_STREQ(command_memo_get(cm, "test-alarm", "a"), "{\"ok\":true}");
        /* Same id for another command is another request. */
        CHECK(command_memo_get(cm, "observation", "a") == NULL);
        /* No request id: nothing to match on, nothing remembered. */
        CHECK(command_memo_put(cm, "status", "", "{\"ok\":true}") == 0);
        CHECK(command_memo_get(cm, "status", "") == NULL);
        command_memo_free(cm);
}

static void test_memo_forgets_the_oldest_first(void)
{
        CommandMemo *cm = NULL;
        char id[16];
        CHECK(command_memo_new(&cm) == 0);
        for (int i = 0; i < COMMAND_MEMO_SIZE + 1; i++) {
                snprintf(id, sizeof id, "r%d", i);
                CHECK(command_memo_put(cm, "test-alarm", id, id) == 0);
        }
        CHECK(command_memo_get(cm, "test-alarm", "r0") == NULL);
        CHECK_STREQ(command_memo_get(cm, "test-alarm", "r1"), "r1");
        snprintf(id, sizeof id, "r%d", COMMAND_MEMO_SIZE);
        CHECK_STREQ(command_memo_get(cm, "test-alarm", id), id);
        command_memo_free(cm);
}

#define S 1000000ULL

static void test_ratelimit_burst_then_one_per_interval(void)
{
        RateLimit rl = {.interval_usec = 60 * S, .burst = 3};
        uint64_t wait = 0;
        CHECK(ratelimit_take(&rl, 1000 * S, NULL));
        CHECK(ratelimit_take(&rl, 1000 * S, NULL));
        CHECK(ratelimit_take(&rl, 1001 * S, NULL));
        CHECK(!ratelimit_take(&rl, 1002 * S, &wait));
        CHECK(wait == 58 * S);
        CHECK(!ratelimit_take(&rl, 1059 * S, NULL));
        CHECK(ratelimit_take(&rl, 1060 * S, NULL));
        CHECK(!ratelimit_take(&rl, 1061 * S, NULL));
        /* A long quiet time fills the bucket, never past the burst. */
        for (int i = 0; i < 3; i++)
                CHECK(ratelimit_take(&rl, 5000 * S, NULL));
        CHECK(!ratelimit_take(&rl, 5000 * S, NULL));
        /* A clock that goes back does not lock it for the difference. */
        CHECK(ratelimit_take(&rl, 10 * S, NULL));
}

TEST_MAIN(TEST(test_memo_answers_a_repeated_request), TEST(test_memo_forgets_the_oldest_first),
          TEST(test_ratelimit_burst_then_one_per_interval))
