#include <time.h>

#include "common/time-util.h"

static int64_t now_usec(clockid_t id)
{
        struct timespec ts;

        /* Cannot fail for these clocks with a valid pointer. */
        (void)clock_gettime(id, &ts);
        return (int64_t)ts.tv_sec * USEC_PER_SEC + ts.tv_nsec / 1000;
}

int64_t now_realtime(void)
{
        return now_usec(CLOCK_REALTIME);
}

int64_t now_monotonic(void)
{
        return now_usec(CLOCK_MONOTONIC);
}

int64_t now_boottime(void)
{
        return now_usec(CLOCK_BOOTTIME);
}
