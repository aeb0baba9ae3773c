#include "common/backoff.h"

static uint64_t ceiling_of(const Backoff *b)
{
        uint64_t ceiling = b->base_usec;

        for (unsigned i = 0; i < b->attempt && ceiling < b->cap_usec; i++)
                ceiling *= 2;
        return ceiling > b->cap_usec ? b->cap_usec : ceiling;
}

static void count_attempt(Backoff *b)
{
        if (b->attempt < 64)
                b->attempt++;
}

uint64_t backoff_next(Backoff *b, uint32_t random)
{
        uint64_t ceiling = ceiling_of(b);

        count_attempt(b);
        /* random / 2^32 is in [0, 1): the wait is in [0, ceiling). */
        return (uint64_t)(((unsigned __int128)ceiling * random) >> 32);
}

uint64_t backoff_next_ceiling(Backoff *b)
{
        uint64_t ceiling = ceiling_of(b);

        count_attempt(b);
        return ceiling;
}

void backoff_reset(Backoff *b)
{
        b->attempt = 0;
}
