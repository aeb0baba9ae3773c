/* Exponential back-off: attempt n waits at most min(cap, base * 2^n).
 * With full jitter (backoff_next: uniform in [0, that ceiling)) for peers that many clients retry
 * against at once (a broker); without (backoff_next_ceiling) where nobody else retries and a test
 * must know the times exactly (a GPIO chip).
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
/* The delay before the next attempt without jitter (the ceiling itself); counts an attempt. */
uint64_t backoff_next_ceiling(Backoff *b);
void backoff_reset(Backoff *b);
