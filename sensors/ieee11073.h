/* IEEE 11073-20601 numbers as the Bluetooth health profiles carry them:
 * SFLOAT (16 bit: 4-bit exponent, 12-bit mantissa) and FLOAT (32 bit: 8-bit exponent, 24-bit
 * mantissa), both signed, value = mantissa * 10^exponent. The special values are recognised
 * before any arithmetic, so they never become numbers. */
#pragma once

#include <stdint.h>

typedef enum Ieee11073Special {
        IEEE11073_NUMBER,   /* an ordinary value */
        IEEE11073_NAN,      /* not a number */
        IEEE11073_NRES,     /* not at this resolution */
        IEEE11073_PINF,     /* +infinity */
        IEEE11073_NINF,     /* -infinity */
        IEEE11073_RESERVED, /* reserved for future use */
} Ieee11073Special;

/* Returns the kind; *ret_value is set only for IEEE11073_NUMBER. */
/* 10^e, exact for 0 <= e <= 22: divide by pow10i(n) to scale a decimal raw value in one rounding. */
double pow10i(int e);
Ieee11073Special sfloat_decode(uint16_t raw, double *ret_value);
/* The same, times 10^extra_exponent, computed in the exponent (0.000123 kg/L is 12.3 mg/dL exactly). */
Ieee11073Special sfloat_decode_scaled(uint16_t raw, int extra_exponent, double *ret_value);
Ieee11073Special float_decode(uint32_t raw, double *ret_value);
/* The name for a reading's "absent" field: "NaN", "NRes", "+INF", "-INF", "reserved"; NULL for numbers. */
const char *ieee11073_special_name(Ieee11073Special s);

/* Encoders for the simulated home and tests: value rounded to `exponent` decimal places
 * (exponent -1 = one decimal). Out-of-range values encode as NaN. */
uint16_t sfloat_encode(double value, int exponent);
uint32_t float_encode(double value, int exponent);
