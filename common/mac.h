/* Bluetooth (MAC-48) addresses as people and BlueZ write them: "AA:BB:CC:DD:EE:FF", most
 * significant byte first ({0xAA, ..., 0xFF}). */
#pragma once

#include <stdint.h>

#define MAC_STRING_MAX 18 /* "AA:BB:CC:DD:EE:FF" and its NUL */

/* Exactly six pairs of hex digits (either case) joined by ':', nothing before or after.
 * Returns 0 and the bytes in ret, or -EINVAL (ret untouched). s NULL: -EINVAL. */
int parse_mac(const char *s, uint8_t ret[6]);
/* Upper-case digits, as BlueZ writes them. Returns buf. */
char *format_mac(const uint8_t mac[6], char buf[static MAC_STRING_MAX]);
