/* An alert: something a nurse must see. Raised, later cleared. Rules (issue 6) fill these in;
 * the spine raises only the technician's test alarm. */
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

typedef struct Alert {
        char id[112];           /* unique per gateway: "<gw>-<time>-<n>" */
        const char *kind;       /* "test_alarm", "news2_single_parameter", ... (static) */
        AlertSeverity severity;
        AlertState state;
        const char *patient;    /* or NULL */
        int64_t time_usec;      /* UTC */
        const char *message;    /* one line for a human, or NULL */
        const char *evidence;   /* JSON array text of the readings/events that caused it, or NULL */
} Alert;

const char *alert_severity_name(AlertSeverity s);
const char *alert_state_name(AlertState s);
