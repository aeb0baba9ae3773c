/* NEWS2 (Royal College of Physicians, 2017): the score of each parameter, with the band edges of
 * the chart. Pure functions. Integer charts (respiration, SpO2, systolic, pulse) round the value to
 * the nearest whole number first; temperature is banded at one decimal. */
#pragma once

#include <stdbool.h>

typedef enum News2Param {
        NEWS2_RESPIRATION,
        NEWS2_SPO2,
        NEWS2_AIR_OXYGEN,
        NEWS2_SYSTOLIC,
        NEWS2_PULSE,
        NEWS2_CONSCIOUSNESS,
        NEWS2_TEMPERATURE,
        _NEWS2_MAX,
} News2Param;

int news2_respiration(double per_min);
/* scale 1 or 2 (scale 2: target 88-92 %, for hypercapnic respiratory failure); oxygen: on supplemental O2 */
int news2_spo2(double percent, unsigned scale, bool oxygen);
int news2_air_oxygen(bool oxygen);
int news2_systolic(double mmhg);
int news2_pulse(double per_min);
/* ACVPU: 'A' alert scores 0; new confusion 'C', voice 'V', pain 'P', unresponsive 'U' score 3. -1 if
 * unknown. */
int news2_consciousness(char acvpu);
int news2_temperature(double celsius);
/* The parameter's name in evidence and saved state: a static string; NULL out of range. */
const char *news2_param_name(News2Param p);
/* 0, or -EINVAL for a name that is not a parameter's. */
int news2_param_from_name(const char *s, News2Param *ret);

typedef enum News2Risk {
        NEWS2_RISK_NONE,   /* 0 */
        NEWS2_RISK_LOW,    /* 1-4 (without a single 3) */
        NEWS2_RISK_MEDIUM, /* 5-6: urgent response */
        NEWS2_RISK_HIGH,   /* 7 or more: emergency response */
} News2Risk;

News2Risk news2_risk(int total);
