/* Evidence: the readings and events behind an alert, as a JSON array built with jansson. The rules
 * build it as a tree and hand it to the engine, which turns it into text only when an alert goes
 * out (rules_raise(), rules_clear()); nothing is shared between alerts, and nothing is cut.
 *
 * Ownership: every function returning json_t * returns a new reference that the caller owns
 * (json_decref(), or json_auto_t). NULL means out of memory; wherever evidence is taken, NULL
 * stands for an empty array, so an alert goes out without evidence rather than not at all.
 * Pure: no I/O, no clock. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "sensors/reading.h"

/* One object: {"sensor": sensor, what: name, "value": value, "unit": unit, "time": t}. No "sensor"
 * if sensor is NULL or "", no "value" if value is NULL, no "unit" if unit is NULL. The strings are
 * copied. A rule may add keys (evidence_add()) before it puts the item in an array. */
json_t *evidence_item(const char *sensor, const char *what, const char *name, const double *value,
                      const char *unit, int64_t t);
/* Adds key: value to item, taking the reference to value (even on failure). -ENOMEM on failure. */
int evidence_add(json_t *item, const char *key, json_t *value);
/* A number as it reads best: a whole number as an integer, NaN and infinities as null. */
json_t *evidence_number(double v);
/* [item], taking the reference to item. NULL if item is NULL. */
json_t *evidence_of(json_t *item);

/* [item of a reading: its metric, value (unless absent), unit, time]. */
json_t *evidence_reading(const Reading *rd);
/* [item of an event: its kind, value, time]. */
json_t *evidence_event(const Event *e);
/* [{"sensor": sensor, key: since, "minutes": minutes from since to now}]: how long something has
 * lasted. No "sensor" if sensor is NULL. */
json_t *evidence_since(const char *sensor, const char *key, int64_t since, int64_t now);

/* The text of evidence (compact JSON; "[]" for NULL), for Alert.evidence. The caller frees it.
 * NULL when out of memory. Each number is written with the digits it needs to read back as the
 * same double, and no more (36.6 stays "36.6"). */
char *evidence_format(const json_t *evidence);
