/* UTC time stamps as RFC 3339 with milliseconds: "2026-03-02T07:31:00.123Z". */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define RFC3339_MAX 64

/* Formats usec since the epoch (UTC) into buf. Returns buf. */
char *format_rfc3339(char buf[static RFC3339_MAX], int64_t usec);

/* Parses "YYYY-MM-DDTHH:MM:SS[.fff...](Z|±HH:MM)". Returns 0 or -EINVAL. */
int parse_rfc3339(const char *s, int64_t *ret_usec);
