/* A token bucket: at most `burst` events at once, then one more per `interval_usec`. Pure: the time
 * is passed in, so tests drive it exactly. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

typedef struct RateLimit {
        uint64_t interval_usec; /* one token comes back per interval */
        unsigned burst;         /* tokens when full */
        unsigned tokens;        /* left now (meaningful once started) */
        uint64_t refilled_usec; /* when the last token came back, or the first use */
        bool started;
} RateLimit;

/* True if an event may happen at now_usec (and takes a token); false if it must wait, with the
 * microseconds until the next token in *ret_wait_usec (if non-NULL). */
static inline bool ratelimit_take(RateLimit *rl, uint64_t now_usec, uint64_t *ret_wait_usec)
{
        if (!rl->started || now_usec < rl->refilled_usec) { /* first use, or the clock went back */
                rl->started = true;
                rl->tokens = rl->burst;
                rl->refilled_usec = now_usec;
        }
        if (rl->tokens < rl->burst) {
                uint64_t n = (now_usec - rl->refilled_usec) / rl->interval_usec;
                if (n > 0) {
                        rl->tokens = n >= rl->burst - rl->tokens ? rl->burst : rl->tokens + (unsigned)n;
                        rl->refilled_usec += n * rl->interval_usec;
                }
        } else
                rl->refilled_usec = now_usec;
        if (rl->tokens > 0) {
                rl->tokens--;
                return true;
        }
        if (ret_wait_usec)
                *ret_wait_usec = rl->refilled_usec + rl->interval_usec - now_usec;
        return false;
}
