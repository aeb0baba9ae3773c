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
};

static const char *const time_qualities[_TIME_QUALITY_MAX] = {
        [TIME_DEVICE] = "device",
        [TIME_SYNCED] = "synced",
        [TIME_UNSYNCED] = "unsynced",
};

static const char *const flag_names[_READING_FLAG_COUNT] = {
        "body_movement", "cuff_loose", "irregular_pulse", "questionable", "invalid", "low_perfusion",
};

const char *metric_name(Metric m)
{
        return m < _METRIC_MAX ? metrics[m].name : NULL;
}

const char *metric_loinc(Metric m)
{
        return m < _METRIC_MAX ? metrics[m].loinc : NULL;
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
