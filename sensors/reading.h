/* What every sensor produces: a Reading (a number with a unit) or an Event (a state change).
 * Metric names, UCUM units and LOINC codes follow DESIGN.md. Plain structs, no I/O. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

typedef enum Metric {
        METRIC_HEART_RATE,
        METRIC_RR_INTERVAL,
        METRIC_ENERGY_EXPENDED,
        METRIC_SYSTOLIC,
        METRIC_DIASTOLIC,
        METRIC_MEAN_ARTERIAL_PRESSURE,
        METRIC_PULSE_RATE,
        METRIC_BODY_TEMPERATURE,
        METRIC_SPO2,
        METRIC_PERFUSION_INDEX,
        METRIC_BODY_WEIGHT,
        METRIC_BMI,
        METRIC_BODY_HEIGHT,
        METRIC_GLUCOSE,
        METRIC_RESPIRATORY_RATE,
        METRIC_TEMPERATURE,
        METRIC_HUMIDITY,
        METRIC_BATTERY,
        METRIC_ILLUMINANCE,
        _METRIC_MAX,
} Metric;

typedef enum TimeQuality {
        TIME_DEVICE,   /* the device's own time stamp */
        TIME_SYNCED,   /* the gateway's clock, known to be synchronised */
        TIME_UNSYNCED, /* the gateway's clock, not known to be synchronised */
        _TIME_QUALITY_MAX,
} TimeQuality;

/* Device status flags that make a measurement doubtful; they travel with the reading. */
enum {
        READING_BODY_MOVEMENT = 1u << 0,
        READING_CUFF_LOOSE = 1u << 1,
        READING_IRREGULAR_PULSE = 1u << 2,
        READING_QUESTIONABLE = 1u << 3,
        READING_INVALID = 1u << 4,
        READING_LOW_PERFUSION = 1u << 5,
        _READING_FLAG_COUNT = 6,
};

typedef enum EventKind {
        EVENT_DOOR,      /* value 1 open, 0 closed */
        EVENT_MOTION,    /* value 1 motion, 0 clear */
        EVENT_BED,       /* value 1 in bed, 0 out of bed */
        EVENT_BUTTON,    /* value 1 pressed */
        EVENT_DOSE_DUE,
        EVENT_DOSE_TAKEN,
        EVENT_DOSE_MISSED,
        EVENT_DISPENSER_EMPTY,
        EVENT_DISPENSER_REFILL,
        EVENT_DISPENSER_FAULT,
        _EVENT_KIND_MAX,
} EventKind;

#define SENSOR_ID_MAX 64

typedef struct Reading {
        char sensor[SENSOR_ID_MAX]; /* sensor id from the config */
        Metric metric;
        double value;
        const char *unit;           /* UCUM, a static string */
        int64_t time_usec;          /* UTC, usec since the epoch */
        TimeQuality time_quality;
        uint32_t flags;             /* READING_* */
} Reading;

typedef struct Event {
        char sensor[SENSOR_ID_MAX];
        EventKind kind;
        int value;
        int64_t time_usec;
} Event;

/* How readings and events leave sensors/: the Manager registers one of these. */
typedef struct SensorSink {
        void (*reading)(void *userdata, const Reading *r);
        void (*event)(void *userdata, const Event *e);
        void *userdata;
} SensorSink;

const char *metric_name(Metric m);
const char *metric_loinc(Metric m); /* NULL where the metric has no LOINC code */
int metric_from_name(const char *name, Metric *ret);
const char *event_kind_name(EventKind k);
int event_kind_from_name(const char *name, EventKind *ret);
const char *time_quality_name(TimeQuality q);
const char *reading_flag_name(unsigned bit); /* bit index 0.._READING_FLAG_COUNT-1 */
