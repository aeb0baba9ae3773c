/* What an alert is about, as an enum, and the one table of the names that go on the wire.
 *
 * The names are a contract with the home-care service (the "kind" of every alert message, and the
 * state file alerts.json): never rename one. Code names kinds by their enum value, so a typo is a
 * compile error, not a new kind of alert that nobody listens for. */
#pragma once

#include <errno.h>
#include <stddef.h>
#include <string.h>

/* One enum <-> name table, the pattern for every such table (sensor types, metrics, lanes):
 *
 *     static const char *const NAME_table[_TYPE_MAX] = { [VALUE] = "name", ... };
 *     DEFINE_STRING_TABLE_LOOKUP(NAME, Type, _TYPE_MAX)
 *
 * The designated initializers keep each name beside its value; a value left out is NULL, which
 * the table's unit test catches. The macro writes the two functions declared below for alert kinds:
 * NAME_to_string() and NAME_from_string(). It belongs in common/ beside the other macros every
 * layer needs (issue 12); it sits here with its first user until common/ has one, and then goes. */
#define DEFINE_STRING_TABLE_LOOKUP(name, type, max)                                                        \
        const char *name##_to_string(type v)                                                               \
        {                                                                                                  \
                return (size_t)v < (size_t)(max) ? name##_table[v] : NULL;                                 \
        }                                                                                                  \
        int name##_from_string(const char *s, type *ret)                                                   \
        {                                                                                                  \
                if (!s)                                                                                    \
                        return -EINVAL;                                                                    \
                for (size_t i = 0; i < (size_t)(max); i++)                                                 \
                        if (name##_table[i] && strcmp(name##_table[i], s) == 0) {                          \
                                *ret = (type)i;                                                            \
                                return 0;                                                                  \
                        }                                                                                  \
                return -EINVAL;                                                                            \
        }

typedef enum AlertKind {
        /* Vital signs (gateway/rules-vitals.c). */
        ALERT_KIND_NEWS2_SINGLE_PARAMETER,
        ALERT_KIND_NEWS2_AGGREGATE,
        ALERT_KIND_THRESHOLD,
        ALERT_KIND_BASELINE_DEVIATION,
        ALERT_KIND_WEIGHT_GAIN,
        /* Daily life (gateway/rules-activity.c, rules-medication.c, rules-alarm.c). */
        ALERT_KIND_INACTIVITY,
        ALERT_KIND_NIGHT_EXIT,
        ALERT_KIND_BED_EXIT_NO_RETURN,
        ALERT_KIND_MISSED_DOSE,
        ALERT_KIND_DISPENSER_FAULT,
        ALERT_KIND_ALARM_BUTTON,
        /* Devices (gateway/rules-devices.c). */
        ALERT_KIND_SENSOR_SILENT,
        ALERT_KIND_BATTERY_LOW,
        ALERT_KIND_INPUT_FAILED,
        /* The daemon's own, not the rules' (gateway/manager.c). */
        ALERT_KIND_TEST_ALARM,
        ALERT_KIND_STORE_REPLACED,
        ALERT_KIND_STORE_UNAVAILABLE,
        _ALERT_KIND_MAX,
} AlertKind;

/* The wire name: a static string, valid for the life of the program; NULL if k is not a kind. */
const char *alert_kind_to_string(AlertKind k);
/* The kind a wire name names: 0 and *ret set, or -EINVAL (NULL or unknown; *ret untouched). */
int alert_kind_from_string(const char *s, AlertKind *ret);
