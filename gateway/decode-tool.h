/* homecare-gw decode PROFILE HEX...: what is this device sending? */
#pragma once

/* argv[0] is "decode". Returns the exit status: 0, or 2 for bad input (one line on stderr). */
int decode_tool(int argc, char *argv[]);

/* Hex with optional spaces, colons and dashes between bytes. Returns the length, or -EINVAL. */
int parse_hex(const char *s, unsigned char *out, size_t size);
