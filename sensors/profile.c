#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/macro.h"
#include "sensors/bthome.h"
#include "sensors/decode.h"
#include "sensors/profile.h"

/* What each decoder yields, checked against the decoders themselves by tests/unit/test-decode.c
 * (every reading of every flag combination is listed here, and everything listed is seen). */
static const ProfileMetric bthome_metrics[] = {
    {METRIC_BATTERY, {"%"}},    {METRIC_TEMPERATURE, {"Cel"}}, {METRIC_HUMIDITY, {"%"}},
    {METRIC_PRESSURE, {"hPa"}}, {METRIC_ILLUMINANCE, {"lx"}},  {METRIC_BODY_WEIGHT, {"kg", "[lb_av]"}},
    {METRIC_POWER, {"W"}},      {METRIC_VOLTAGE, {"V"}},       {METRIC_CO2, {"[ppm]"}},
};
static const ProfileMetric heart_rate_metrics[] = {
    {METRIC_HEART_RATE, {"/min"}},
    {METRIC_ENERGY_EXPENDED, {"kJ"}},
    {METRIC_RR_INTERVAL, {"s"}},
};
static const ProfileMetric blood_pressure_metrics[] = {
    {METRIC_SYSTOLIC, {"mm[Hg]", "kPa"}},
    {METRIC_DIASTOLIC, {"mm[Hg]", "kPa"}},
    {METRIC_MEAN_ARTERIAL_PRESSURE, {"mm[Hg]", "kPa"}},
    {METRIC_PULSE_RATE, {"/min"}},
};
static const ProfileMetric temperature_metrics[] = {
    {METRIC_BODY_TEMPERATURE, {"Cel", "[degF]"}},
};
static const ProfileMetric plx_spot_metrics[] = {
    {METRIC_SPO2, {"%"}},
    {METRIC_PULSE_RATE, {"/min"}},
    {METRIC_PERFUSION_INDEX, {"%"}},
};
static const ProfileMetric plx_continuous_metrics[] = {
    {METRIC_SPO2, {"%"}},
    {METRIC_PULSE_RATE, {"/min"}},
    {METRIC_SPO2_FAST, {"%"}},
    {METRIC_PULSE_RATE_FAST, {"/min"}},
    {METRIC_SPO2_SLOW, {"%"}},
    {METRIC_PULSE_RATE_SLOW, {"/min"}},
    {METRIC_PERFUSION_INDEX, {"%"}},
};
static const ProfileMetric weight_metrics[] = {
    {METRIC_BODY_WEIGHT, {"kg", "[lb_av]"}},
    {METRIC_BMI, {"kg/m2"}},
    {METRIC_BODY_HEIGHT, {"m", "[in_i]"}},
};
static const ProfileMetric glucose_metrics[] = {
    {METRIC_GLUCOSE, {"mg/dL", "mmol/L"}},
};

/* "plx" is what [Sensor] Type= has always taken for an oximeter, "plx-spot" what `decode` has: both
 * stay. A name once accepted is never taken away or renamed; new spellings go in aliases. */
static const char *const plx_spot_aliases[] = {"plx", NULL};

#define GATT(service, characteristic, decoder, m)                                                           \
        .transport = PROFILE_GATT, .service_uuid16 = service, .uuid16 = characteristic,                     \
        .decode_gatt = decoder, .metrics = m, .n_metrics = ELEMENTSOF(m)

static const ProfileInfo profiles[_PROFILE_MAX] = {
    [PROFILE_BTHOME] = {.name = "bthome",
                        .transport = PROFILE_ADVERTISEMENT,
                        .service_uuid16 = 0xFCD2,
                        .uuid16 = 0xFCD2,
                        .decode_advertisement = decode_bthome,
                        .metrics = bthome_metrics,
                        .n_metrics = ELEMENTSOF(bthome_metrics)},
    [PROFILE_HEART_RATE] = {.name = "heart-rate",
                            GATT(0x180D, 0x2A37, decode_heart_rate, heart_rate_metrics)},
    [PROFILE_BLOOD_PRESSURE] = {.name = "blood-pressure",
                                GATT(0x1810, 0x2A35, decode_blood_pressure, blood_pressure_metrics)},
    [PROFILE_TEMPERATURE] = {.name = "temperature",
                             GATT(0x1809, 0x2A1C, decode_temperature, temperature_metrics)},
    [PROFILE_PLX_SPOT] = {.name = "plx-spot",
                          .aliases = plx_spot_aliases,
                          GATT(0x1822, 0x2A5E, decode_plx_spot, plx_spot_metrics)},
    [PROFILE_PLX_CONTINUOUS] = {.name = "plx-continuous",
                                GATT(0x1822, 0x2A5F, decode_plx_continuous, plx_continuous_metrics)},
    [PROFILE_WEIGHT] = {.name = "weight", GATT(0x181D, 0x2A9D, decode_weight, weight_metrics)},
    [PROFILE_GLUCOSE] = {.name = "glucose", GATT(0x1808, 0x2A18, decode_glucose, glucose_metrics)},
};

const ProfileInfo *profile_info(Profile p)
{
        return (size_t)p < _PROFILE_MAX ? &profiles[p] : NULL;
}

/* common/string-table.h's pattern by hand: its macro reads a table of bare strings, and these rows
 * carry more than a name, and aliases. */
const char *profile_name(Profile p)
{
        return (size_t)p < _PROFILE_MAX ? profiles[p].name : NULL;
}

int profile_from_name(const char *name, Profile *ret)
{
        if (!name)
                return -EINVAL;
        for (Profile p = 0; p < _PROFILE_MAX; p++) {
                if (profiles[p].name && streq(profiles[p].name, name)) {
                        *ret = p;
                        return 0;
                }
                for (const char *const *a = profiles[p].aliases; a && *a; a++)
                        if (streq(*a, name)) {
                                *ret = p;
                                return 0;
                        }
        }
        return -EINVAL;
}

/* Appends s (after sep, unless buf is still empty) at *n; truncates, always terminated. */
static void append(char *buf, size_t size, size_t *n, const char *sep, const char *s)
{
        int k = snprintf(buf + *n, size - *n, "%s%s", *n ? sep : "", s);
        *n = k < 0 || (size_t)k >= size - *n ? size - 1 : *n + (size_t)k;
}

char *profile_names_list(const char *sep, char *buf, size_t size)
{
        size_t n = 0;

        assert(size > 0);
        buf[0] = '\0';
        for (Profile p = 0; p < _PROFILE_MAX; p++) {
                append(buf, size, &n, sep, profiles[p].name);
                for (const char *const *a = profiles[p].aliases; a && *a; a++)
                        append(buf, size, &n, sep, *a);
        }
        return buf;
}

uint16_t profile_uuid16(Profile p)
{
        return (size_t)p < _PROFILE_MAX ? profiles[p].uuid16 : 0;
}

size_t profile_characteristics(Profile p, uint16_t *ret, size_t n)
{
        size_t k = 0;

        if ((size_t)p >= _PROFILE_MAX || profiles[p].transport != PROFILE_GATT)
                return 0;
        for (Profile q = 0; q < _PROFILE_MAX; q++)
                if (profiles[q].transport == PROFILE_GATT &&
                    profiles[q].service_uuid16 == profiles[p].service_uuid16) {
                        if (k < n)
                                ret[k] = profiles[q].uuid16;
                        k++;
                }
        return k;
}
