#include <errno.h>
#include <string.h>

#include "common/string-table.h"
#include "sensors/reading.h"

/* Glucose is reported per volume either by mass (mg/dL) or by moles (mmol/L): LOINC has a code for
 * each, so the code follows the unit. */
static const MetricUnitLoinc glucose_loinc[] = {
    {"mg/dL", "2339-0"},   /* Glucose [Mass/volume] in Blood */
    {"mmol/L", "15074-8"}, /* Glucose [Moles/volume] in Blood */
    {NULL, NULL},
};

/* The metric table. name and loinc are on the wire (encode.c); loinc stays NULL where the JSON has
 * carried none (glucose: its code depends on the unit, see loinc_by_unit; the fast and slow PLX
 * averages: no LOINC code of their own). FHIR output will use metric_loinc_for_unit() and
 * loinc_also. */
static const MetricInfo metrics[_METRIC_MAX] = {
    [METRIC_HEART_RATE] = {.name = "heart_rate", .unit = "/min", .loinc = "8867-4"},
    [METRIC_RR_INTERVAL] = {.name = "rr_interval", .unit = "s", .loinc = NULL},
    [METRIC_ENERGY_EXPENDED] = {.name = "energy_expended", .unit = "kJ", .loinc = NULL},
    [METRIC_SYSTOLIC] = {.name = "systolic", .unit = "mm[Hg]", .loinc = "8480-6"},
    [METRIC_DIASTOLIC] = {.name = "diastolic", .unit = "mm[Hg]", .loinc = "8462-4"},
    [METRIC_MEAN_ARTERIAL_PRESSURE] = {.name = "mean_arterial_pressure",
                                       .unit = "mm[Hg]",
                                       .loinc = "8478-0"},
    [METRIC_PULSE_RATE] = {.name = "pulse_rate", .unit = "/min", .loinc = "8867-4"},
    [METRIC_BODY_TEMPERATURE] = {.name = "body_temperature", .unit = "Cel", .loinc = "8310-5"},
    [METRIC_SPO2] = {.name = "spo2", .unit = "%", .loinc = "59408-5", .loinc_also = "2708-6"},
    [METRIC_PERFUSION_INDEX] = {.name = "perfusion_index", .unit = "%", .loinc = NULL},
    [METRIC_BODY_WEIGHT] = {.name = "body_weight", .unit = "kg", .loinc = "29463-7"},
    [METRIC_BMI] = {.name = "bmi", .unit = "kg/m2", .loinc = "39156-5"},
    [METRIC_BODY_HEIGHT] = {.name = "body_height", .unit = "m", .loinc = "8302-2"},
    [METRIC_GLUCOSE] = {.name = "glucose", .unit = "mg/dL", .loinc = NULL, .loinc_by_unit = glucose_loinc},
    [METRIC_RESPIRATORY_RATE] = {.name = "respiratory_rate", .unit = "/min", .loinc = "9279-1"},
    [METRIC_TEMPERATURE] = {.name = "temperature", .unit = "Cel", .loinc = NULL},
    [METRIC_HUMIDITY] = {.name = "humidity", .unit = "%", .loinc = NULL},
    [METRIC_BATTERY] = {.name = "battery", .unit = "%", .loinc = NULL},
    [METRIC_ILLUMINANCE] = {.name = "illuminance", .unit = "lx", .loinc = NULL},
    [METRIC_PULSE_RATE_FAST] = {.name = "pulse_rate_fast", .unit = "/min", .loinc = NULL},
    [METRIC_SPO2_FAST] = {.name = "spo2_fast", .unit = "%", .loinc = NULL},
    [METRIC_PULSE_RATE_SLOW] = {.name = "pulse_rate_slow", .unit = "/min", .loinc = NULL},
    [METRIC_SPO2_SLOW] = {.name = "spo2_slow", .unit = "%", .loinc = NULL},
    [METRIC_VOLTAGE] = {.name = "voltage", .unit = "V", .loinc = NULL},
    [METRIC_POWER] = {.name = "power", .unit = "W", .loinc = NULL},
    [METRIC_PRESSURE] = {.name = "pressure", .unit = "hPa", .loinc = NULL},
    [METRIC_CO2] = {.name = "co2", .unit = "[ppm]", .loinc = NULL},
};

static const char *const event_kinds[_EVENT_KIND_MAX] = {
    [EVENT_DOOR] = "door",
    [EVENT_MOTION] = "motion",
    [EVENT_BED] = "bed",
    [EVENT_BUTTON] = "button",
    [EVENT_DOSE_DUE] = "dose_due",
    [EVENT_DOSE_TAKEN] = "dose_taken",
    [EVENT_DOSE_MISSED] = "dose_missed",
    [EVENT_DISPENSER_EMPTY] = "dispenser_empty",
    [EVENT_DISPENSER_REFILL] = "dispenser_refill",
    [EVENT_DISPENSER_FAULT] = "dispenser_fault",
    [EVENT_WINDOW] = "window",
    [EVENT_OPENING] = "opening",
    [EVENT_OCCUPANCY] = "occupancy",
    [EVENT_PRESENCE] = "presence",
    [EVENT_MOVING] = "moving",
    [EVENT_TAMPER] = "tamper",
    [EVENT_VIBRATION] = "vibration",
    [EVENT_BATTERY_LOW] = "battery_low",
    [EVENT_GENERIC] = "generic",
    [EVENT_SMOKE] = "smoke",
    [EVENT_CARBON_MONOXIDE] = "carbon_monoxide",
    [EVENT_WATER_LEAK] = "water_leak",
    [EVENT_PROBLEM] = "problem",
    [EVENT_POWER] = "power",
    [EVENT_DIMMER] = "dimmer",
    [EVENT_INPUT_FAILED] = "input_failed",
};

static const char *const time_qualities[_TIME_QUALITY_MAX] = {
    [TIME_DEVICE] = "device",
    [TIME_SYNCED] = "synced",
    [TIME_UNSYNCED] = "unsynced",
};

static const char *const flag_names[_READING_FLAG_COUNT] = {
    "body_movement",
    "cuff_loose",
    "irregular_pulse",
    "questionable",
    "invalid",
    "low_perfusion",
    "pulse_out_of_range",
    "improper_position",
    "signal_poor",
    "sensor_problem",
    "early_estimate",
    "from_storage",
    "demo_or_test",
    "device_clock_not_set",
    "no_skin_contact",
    "battery_low",
    "sensor_fault",
    "sample_insufficient",
    "strip_error",
    "result_high",
    "result_low",
    "temperature_out_of_range",
    "time_fault",
    "equipment_malfunction",
};

const MetricInfo *metric_info(Metric m)
{
        return (size_t)m < _METRIC_MAX ? &metrics[m] : NULL;
}

/* The string-table pattern (common/string-table.h) over the rows' names: the macro itself reads a
 * table of strings, and these rows carry more than a name. */
const char *metric_name(Metric m)
{
        return (size_t)m < _METRIC_MAX ? metrics[m].name : NULL;
}

int metric_from_name(const char *name, Metric *ret)
{
        if (!name)
                return -EINVAL;
        for (Metric m = 0; m < _METRIC_MAX; m++)
                if (metrics[m].name && strcmp(metrics[m].name, name) == 0) {
                        *ret = m;
                        return 0;
                }
        return -EINVAL;
}

const char *metric_loinc(Metric m)
{
        return (size_t)m < _METRIC_MAX ? metrics[m].loinc : NULL;
}

const char *metric_loinc_for_unit(Metric m, const char *unit)
{
        if ((size_t)m >= _METRIC_MAX)
                return NULL;
        for (const MetricUnitLoinc *u = metrics[m].loinc_by_unit; unit && u && u->unit; u++)
                if (strcmp(u->unit, unit) == 0)
                        return u->loinc;
        return metrics[m].loinc;
}

const char *metric_default_unit(Metric m)
{
        return (size_t)m < _METRIC_MAX ? metrics[m].unit : "";
}

DEFINE_STRING_TABLE_LOOKUP(event_kind, EventKind, event_kinds, _EVENT_KIND_MAX);
DEFINE_STRING_TABLE_LOOKUP_TO_NAME(time_quality, TimeQuality, time_qualities, _TIME_QUALITY_MAX);

const char *reading_flag_name(unsigned bit)
{
        return bit < _READING_FLAG_COUNT ? flag_names[bit] : NULL;
}
