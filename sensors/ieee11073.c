#include <math.h>
#include <stddef.h>

#include "sensors/ieee11073.h"

double pow10i(int e)
{
        double r = 1;
        for (int i = 0; i < (e < 0 ? -e : e); i++)
                r *= 10;
        return e < 0 ? 1 / r : r;
}

Ieee11073Special sfloat_decode(uint16_t raw, double *ret_value)
{
        return sfloat_decode_scaled(raw, 0, ret_value);
}

Ieee11073Special sfloat_decode_scaled(uint16_t raw, int extra_exponent, double *ret_value)
{
        int mantissa = raw & 0x0FFF, exponent = raw >> 12;

        switch (raw) {
        case 0x07FF:
                return IEEE11073_NAN;
        case 0x0800:
                return IEEE11073_NRES;
        case 0x07FE:
                return IEEE11073_PINF;
        case 0x0802:
                return IEEE11073_NINF;
        case 0x0801:
                return IEEE11073_RESERVED;
        }
        if (mantissa >= 0x0800)
                mantissa -= 0x1000;
        if (exponent >= 0x8)
                exponent -= 0x10;
        exponent += extra_exponent;
        /* Divide for negative exponents: 36.6 comes out as the double nearest 36.6. */
        *ret_value = exponent < 0 ? mantissa / pow10i(-exponent) : mantissa * pow10i(exponent);
        return IEEE11073_NUMBER;
}

Ieee11073Special float_decode(uint32_t raw, double *ret_value)
{
        int32_t mantissa = (int32_t)(raw & 0x00FFFFFF);
        int exponent = (int8_t)(raw >> 24);

        switch (raw) {
        case 0x007FFFFF:
                return IEEE11073_NAN;
        case 0x00800000:
                return IEEE11073_NRES;
        case 0x007FFFFE:
                return IEEE11073_PINF;
        case 0x00800002:
                return IEEE11073_NINF;
        case 0x00800001:
                return IEEE11073_RESERVED;
        }
        if (mantissa >= 0x00800000)
                mantissa -= 0x01000000;
        *ret_value = exponent < 0 ? mantissa / pow10i(-exponent) : mantissa * pow10i(exponent);
        return IEEE11073_NUMBER;
}

const char *ieee11073_special_name(Ieee11073Special s)
{
        switch (s) {
        case IEEE11073_NUMBER:
                return NULL;
        case IEEE11073_NAN:
                return "NaN";
        case IEEE11073_NRES:
                return "NRes";
        case IEEE11073_PINF:
                return "+INF";
        case IEEE11073_NINF:
                return "-INF";
        case IEEE11073_RESERVED:
                return "reserved";
        }
        return NULL;
}

uint16_t sfloat_encode(double value, int exponent)
{
        double m = round(value * pow10i(-exponent));
        /* Mantissas 0x7FE..0x802 are the special values. */
        if (!isfinite(value) || exponent < -8 || exponent > 7 || m < -2045 || m > 2045)
                return 0x07FF;
        return (uint16_t)((((unsigned)exponent & 0xF) << 12) | ((unsigned)(int)m & 0x0FFF));
}

uint32_t float_encode(double value, int exponent)
{
        double m = round(value * pow10i(-exponent));
        if (!isfinite(value) || exponent < -128 || exponent > 127 || m < -8388605 || m > 8388605)
                return 0x007FFFFF;
        return (((uint32_t)exponent & 0xFF) << 24) | ((uint32_t)(int32_t)m & 0x00FFFFFF);
}
