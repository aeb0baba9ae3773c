/* homecare-gw decode PROFILE HEX...: what is this device sending? The command-line tool; it decodes
 * with the daemon's own decoders and prints the daemon's own item JSON. */
#pragma once

#include <stddef.h>

/* argv[0] is "decode". Prints to stdout and stderr. Returns the exit status: 0, or 2 for bad input
 * (one line on stderr). */
int cli_decode(int argc, char *argv[]);

/* Hex with optional spaces, colons and dashes between bytes, into out (at most size bytes; the
 * caller's buffer). Returns the length, or -EINVAL. */
int parse_hex(const char *s, unsigned char *out, size_t size);
