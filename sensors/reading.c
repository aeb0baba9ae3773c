#include <errno.h>
#include <string.h>

#include "sensors/reading.h"

static const struct {
        const char *name;
        const char *loinc;
} metrics[_METRIC_MAX] = {
        [METRIC_HEART_RATE] = {"heart_rate", "8867-4"},
        [METRIC_RR_INTERVAL] = {"rr_interval", NULL},
        [METRIC_ENERGY_EXPENDED] = {"energy_expended", NULL},
        [METRIC_SYSTOLIC] = {"systolic", "8480-6"},
        [METRIC_DIASTOLIC] = {"diastolic", "8462-4"},
        [METRIC_MEAN_ARTERIAL_PRESSURE] = {"mean_arterial_pressure", "8478-0"},
        [METRIC_PULSE_RATE] = {"pulse_rate", "8867-4"},
        [METRIC_BODY_TEMPERATURE] = {"body_temperature", "8310-5"},
        [METRIC_SPO2] = {"spo2", "59408-5"},
        [METRIC_PERFUSION_INDEX] = {"perfusion_index", NULL},
        [METRIC_BODY_WEIGHT] = {"body_weight", "29463-7"},
        [METRIC_BMI] = {"bmi", "39156-5"},
        [METRIC_BODY_HEIGHT] = {"body_height", "8302-2"},
        [METRIC_GLUCOSE] = {"glucose", NULL},
        [METRIC_RESPIRATORY_RATE] = {"respiratory_rate", "9279-1"},
        [METRIC_TEMPERATURE] = {"temperature", NULL},
        [METRIC_HUMIDITY] = {"humidity", NULL},
        [METRIC_BATTERY] = {"battery", NULL},
        [METRIC_ILLUMINANCE] = {"illuminance", NULL},
        [METRIC_PULSE_RATE_FAST] = {"pulse_rate_fast", NULL},
        [METRIC_SPO2_FAST] = {"spo2_fast", NULL},
        [METRIC_PULSE_RATE_SLOW] = {"pulse_rate_slow", NULL},
        [METRIC_SPO2_SLOW] = {"spo2_slow", NULL},
        [METRIC_VOLTAGE] = {"voltage", NULL},
        [METRIC_POWER] = {"power", NULL},
        [METRIC_PRESSURE] = {"pressure", NULL},
        [METRIC_CO2] = {"co2", NULL},
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
        "body_movement",   "cuff_loose",         "irregular_pulse",    "questionable",
        "invalid",         "low_perfusion",      "pulse_out_of_range", "improper_position",
        "signal_poor",     "sensor_problem",     "early_estimate",     "from_storage",
        "demo_or_test",    "device_clock_not_set", "no_skin_contact",  "battery_low",
        "sensor_fault",    "sample_insufficient", "strip_error",       "result_high",
        "result_low",      "temperature_out_of_range", "time_fault",   "equipment_malfunction",
};

const char *metric_name(Metric m)
{
        return m < _METRIC_MAX ? metrics[m].name : NULL;
}

const char *metric_loinc(Metric m)
{
        return m < _METRIC_MAX ? metrics[m].loinc : NULL;
}

const char *metric_default_unit(Metric m)
{
        switch (m) {
        case METRIC_HEART_RATE:
        case METRIC_PULSE_RATE:
        case METRIC_RESPIRATORY_RATE:
        case METRIC_PULSE_RATE_FAST:
        case METRIC_PULSE_RATE_SLOW:
                return "/min";
        case METRIC_RR_INTERVAL:
                return "s";
        case METRIC_ENERGY_EXPENDED:
                return "kJ";
        case METRIC_SYSTOLIC:
        case METRIC_DIASTOLIC:
        case METRIC_MEAN_ARTERIAL_PRESSURE:
                return "mm[Hg]";
        case METRIC_BODY_TEMPERATURE:
        case METRIC_TEMPERATURE:
                return "Cel";
        case METRIC_SPO2:
        case METRIC_SPO2_FAST:
        case METRIC_SPO2_SLOW:
        case METRIC_PERFUSION_INDEX:
        case METRIC_HUMIDITY:
        case METRIC_BATTERY:
                return "%";
        case METRIC_BODY_WEIGHT:
                return "kg";
        case METRIC_BMI:
                return "kg/m2";
        case METRIC_BODY_HEIGHT:
                return "m";
        case METRIC_GLUCOSE:
                return "mg/dL";
        case METRIC_ILLUMINANCE:
                return "lx";
        case METRIC_VOLTAGE:
                return "V";
        case METRIC_POWER:
                return "W";
        case METRIC_PRESSURE:
                return "hPa";
        case METRIC_CO2:
                return "[ppm]";
        case _METRIC_MAX:
                break;
        }
        return "";
}

int metric_from_name(const char *name, Metric *ret)
{
        for (Metric m = 0; m < _METRIC_MAX; m++)
                if (strcmp(metrics[m].name, name) == 0) {
                        *ret = m;
                        return 0;
                }
        return -EINVAL;
}

const char *event_kind_name(EventKind k)
{
        return k < _EVENT_KIND_MAX ? event_kinds[k] : NULL;
}

int event_kind_from_name(const char *name, EventKind *ret)
{
        for (EventKind k = 0; k < _EVENT_KIND_MAX; k++)
                if (strcmp(event_kinds[k], name) == 0) {
                        *ret = k;
                        return 0;
                }
        return -EINVAL;
}

const char *time_quality_name(TimeQuality q)
{
        return q < _TIME_QUALITY_MAX ? time_qualities[q] : NULL;
}

const char *reading_flag_name(unsigned bit)
{
        return bit < _READING_FLAG_COUNT ? flag_names[bit] : NULL;
}
