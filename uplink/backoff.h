/* Exponential back-off with full jitter: attempt n waits uniform(0, min(cap, base * 2^n)).
 * Pure: the random number is passed in, so tests can check the bounds exactly. */
#pragma once

#include <stdint.h>

typedef struct Backoff {
        uint64_t base_usec; /* ceiling of the first wait */
        uint64_t cap_usec;  /* ceiling of every wait */
        unsigned attempt;   /* failures since the last success */
} Backoff;

/* The delay before the next attempt, given a uniformly random 32-bit value; counts an attempt. */
uint64_t backoff_next(Backoff *b, uint32_t random);
void backoff_reset(Backoff *b);
