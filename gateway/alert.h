/* An alert: something a nurse must see. Raised, later cleared. The rules fill these in, and
 * gateway/alerts.c for the technician's test alarm and the stores; alerts.c mints every id. The
 * pointers are borrowed: an Alert lives for one call of alerts_emit(). */
#pragma once

#include <stdint.h>

typedef enum AlertSeverity {
        SEVERITY_INFO,
        SEVERITY_WARNING,
        SEVERITY_CRITICAL,
        _SEVERITY_MAX,
} AlertSeverity;

typedef enum AlertState {
        ALERT_RAISED,
        ALERT_CLEARED,
        _ALERT_STATE_MAX,
} AlertState;

#define ALERT_ID_MAX 112

typedef struct Alert {
        char id[ALERT_ID_MAX]; /* unique per gateway: "<gw>-<time>-<n>" */
        const char *kind;      /* "test_alarm", "news2_single_parameter", ... (static) */
        AlertSeverity severity;
        AlertState state;
        const char *patient;  /* or NULL */
        int64_t time_usec;    /* UTC */
        const char *message;  /* one line for a human, or NULL */
        const char *evidence; /* JSON array text of the readings/events that caused it, or NULL */
} Alert;

/* Static strings; NULL for values out of range (gateway/encode.c). */
const char *alert_severity_name(AlertSeverity s);
const char *alert_state_name(AlertState s);
/* 0, or -EINVAL for a name that is not a severity. */
int alert_severity_from_name(const char *s, AlertSeverity *ret);
