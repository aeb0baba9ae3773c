/* What an alert is about, as an enum, and the one table of the names that go on the wire.
 *
 * The names are a contract with the home-care service (the "kind" of every alert message, and the
 * state file alerts.json): never rename one. Code names kinds by their enum value, so a typo is a
 * compile error, not a new kind of alert that nobody listens for. */
#pragma once

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
        /* The daemon's own, not the rules' (gateway/alerts.c). */
        ALERT_KIND_TEST_ALARM,
        ALERT_KIND_STORE_REPLACED,
        ALERT_KIND_STORE_UNAVAILABLE,
        _ALERT_KIND_MAX,
} AlertKind;

/* The wire name: a static string, valid for the life of the program; NULL if k is not a kind.
 * (The table pattern of common/string-table.h.) */
const char *alert_kind_name(AlertKind k);
/* The kind a wire name names: 0 and *ret set, or -EINVAL (NULL or unknown; *ret untouched). */
int alert_kind_from_name(const char *s, AlertKind *ret);
