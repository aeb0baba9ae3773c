#include "common/string-table.h"
#include "gateway/alert-kind.h"

static const char *const alert_kind_table[_ALERT_KIND_MAX] = {
    [ALERT_KIND_NEWS2_SINGLE_PARAMETER] = "news2_single_parameter",
    [ALERT_KIND_NEWS2_AGGREGATE] = "news2_aggregate",
    [ALERT_KIND_THRESHOLD] = "threshold",
    [ALERT_KIND_BASELINE_DEVIATION] = "baseline_deviation",
    [ALERT_KIND_WEIGHT_GAIN] = "weight_gain",
    [ALERT_KIND_INACTIVITY] = "inactivity",
    [ALERT_KIND_NIGHT_EXIT] = "night_exit",
    [ALERT_KIND_BED_EXIT_NO_RETURN] = "bed_exit_no_return",
    [ALERT_KIND_MISSED_DOSE] = "missed_dose",
    [ALERT_KIND_DISPENSER_FAULT] = "dispenser_fault",
    [ALERT_KIND_ALARM_BUTTON] = "alarm_button",
    [ALERT_KIND_SENSOR_SILENT] = "sensor_silent",
    [ALERT_KIND_BATTERY_LOW] = "battery_low",
    [ALERT_KIND_INPUT_FAILED] = "input_failed",
    [ALERT_KIND_TEST_ALARM] = "test_alarm",
    [ALERT_KIND_STORE_REPLACED] = "store_replaced",
    [ALERT_KIND_STORE_UNAVAILABLE] = "store_unavailable",
};

DEFINE_STRING_TABLE_LOOKUP(alert_kind, AlertKind, alert_kind_table, _ALERT_KIND_MAX);
