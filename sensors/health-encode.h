/* Encoders for the Bluetooth health measurements the simulated home sends. The decoders in
 * sensors/ read them back (tests check the round trip), so the demo exercises the real decoders. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sensors/decode.h"

typedef struct BloodPressureValue {
        double systolic, diastolic, map, pulse; /* mmHg, /min */
        bool has_time;
        DateTime time;
        int user;        /* -1: none */
        uint16_t status; /* measurement status bits, 0: field left out */
} BloodPressureValue;

/* Each writes into buf (at least 32 bytes) and returns the length. */
size_t encode_blood_pressure(uint8_t *buf, const BloodPressureValue *v);
size_t encode_weight_kg(uint8_t *buf, double kg, const DateTime *time, int user);
size_t encode_temperature_cel(uint8_t *buf, double celsius, const DateTime *time, uint8_t type);
size_t encode_plx_spot(uint8_t *buf, double spo2, double pulse, const DateTime *time);
