/* Hexadecimal digits, as configuration (keys, addresses) and the decode tool's input spell them.
 * Header-only, includes nothing of ours. */
#pragma once

/* The value of one hex digit (0-9, a-f, A-F), or -1 for anything else (including a sign or NUL). */
static inline int unhexchar(int c)
{
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}
