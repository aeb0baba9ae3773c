/* Arrays that grow as they fill (systemd's GREEDY_REALLOC): one way to make room, instead of the
 * doubling written out beside every array. Header-only, includes nothing of ours. */
#pragma once

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

/* Makes room for need elements of size bytes in *p, which has room for *cap: when need > *cap, the
 * room becomes initial (if *cap is 0) doubled until it holds need. Returns 0 (*p and *cap updated;
 * elements beyond the old *cap are uninitialised), or -ENOMEM with *p and *cap untouched. */
static inline int greedy_realloc(void **p, size_t *cap, size_t need, size_t size, size_t initial)
{
        size_t n = *cap ? *cap : (initial ? initial : 1);
        void *q;

        if (need <= *cap)
                return 0;
        while (n < need) {
                if (n > SIZE_MAX / 2)
                        return -ENOMEM;
                n *= 2;
        }
        if (n > SIZE_MAX / size)
                return -ENOMEM;
        q = realloc(*p, n * size);
        if (!q)
                return -ENOMEM;
        *p = q;
        *cap = n;
        return 0;
}

/* GREEDY_REALLOC(array, cap, need, initial): greedy_realloc() for a typed array. */
#define GREEDY_REALLOC(array, cap, need, initial)                                                           \
        greedy_realloc((void **)&(array), &(cap), (need), sizeof((array)[0]), (initial))
