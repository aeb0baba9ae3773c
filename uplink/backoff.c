#include "uplink/backoff.h"

uint64_t backoff_next(Backoff *b, uint32_t random)
{
        uint64_t ceiling = b->base_usec;

        for (unsigned i = 0; i < b->attempt && ceiling < b->cap_usec; i++)
                ceiling *= 2;
        if (ceiling > b->cap_usec)
                ceiling = b->cap_usec;
        if (b->attempt < 64)
                b->attempt++;
        /* random / 2^32 is in [0, 1): the wait is in [0, ceiling). */
        return (uint64_t)(((unsigned __int128)ceiling * random) >> 32);
}

void backoff_reset(Backoff *b)
{
        b->attempt = 0;
}
