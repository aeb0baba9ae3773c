#include <math.h>
#include <stddef.h>

#include "common/string-table.h"
#include "gateway/news2.h"

static long whole(double v)
{
        /* lround() of a value beyond a long (1e300 from a broken device) is unspecified: glibc gives
         * LONG_MIN, the lowest band, which scored 3. Every band edge is far inside this. */
        return lround(fmin(fmax(v, -1e6), 1e6));
}

int news2_respiration(double v)
{
        long r = whole(v);
        return r <= 8 ? 3 : r <= 11 ? 1 : r <= 20 ? 0 : r <= 24 ? 2 : 3;
}

int news2_spo2(double v, unsigned scale, bool oxygen)
{
        long s = whole(v);
        if (scale != 2)
                return s <= 91 ? 3 : s <= 93 ? 2 : s <= 95 ? 1 : 0;
        /* Scale 2: low values as scale 1 shifted down; on oxygen, high values score too. */
        if (s <= 83)
                return 3;
        if (s <= 85)
                return 2;
        if (s <= 87)
                return 1;
        if (s <= 92 || !oxygen)
                return 0;
        return s <= 94 ? 1 : s <= 96 ? 2 : 3;
}

int news2_air_oxygen(bool oxygen)
{
        return oxygen ? 2 : 0;
}

int news2_systolic(double v)
{
        long s = whole(v);
        return s <= 90 ? 3 : s <= 100 ? 2 : s <= 110 ? 1 : s <= 219 ? 0 : 3;
}

int news2_pulse(double v)
{
        long p = whole(v);
        return p <= 40 ? 3 : p <= 50 ? 1 : p <= 90 ? 0 : p <= 110 ? 1 : p <= 130 ? 2 : 3;
}

int news2_consciousness(char c)
{
        switch (c) {
        case 'A':
                return 0;
        case 'C':
        case 'V':
        case 'P':
        case 'U':
                return 3;
        default:
                return -1;
        }
}

int news2_temperature(double v)
{
        /* Chart edges are at one decimal: <=35.0, 35.1-36.0, 36.1-38.0, 38.1-39.0, >=39.1. */
        long t = whole(v * 10);
        return t <= 350 ? 3 : t <= 360 ? 1 : t <= 380 ? 0 : t <= 390 ? 1 : 2;
}

static const char *const news2_param_table[_NEWS2_MAX] = {
    [NEWS2_RESPIRATION] = "respiratory_rate",
    [NEWS2_SPO2] = "spo2",
    [NEWS2_AIR_OXYGEN] = "air_or_oxygen",
    [NEWS2_SYSTOLIC] = "systolic",
    [NEWS2_PULSE] = "pulse",
    [NEWS2_CONSCIOUSNESS] = "consciousness",
    [NEWS2_TEMPERATURE] = "body_temperature",
};
DEFINE_STRING_TABLE_LOOKUP(news2_param, News2Param, news2_param_table, _NEWS2_MAX);

News2Risk news2_risk(int total)
{
        return total >= 7   ? NEWS2_RISK_HIGH
               : total >= 5 ? NEWS2_RISK_MEDIUM
               : total >= 1 ? NEWS2_RISK_LOW
                            : NEWS2_RISK_NONE;
}
