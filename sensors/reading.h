/* What every sensor produces: a Reading (a number with a unit) or an Event (a state change).
 * Plain structs, no I/O.
 *
 * The metric table (sensors/reading.c) is the one place a metric's wire name, default UCUM unit and
 * LOINC codes live, as DESIGN.md lists them; which metrics each kind of device yields, and in which
 * units, is the profile table's (sensors/profile.h).
 *
 * Every string these functions return is static: valid for the life of the program, never freed. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
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
        METRIC_PULSE_RATE_FAST, /* PLX continuous: fast-response averages */
        METRIC_SPO2_FAST,
        METRIC_PULSE_RATE_SLOW, /* PLX continuous: slow-response averages */
        METRIC_SPO2_SLOW,
        METRIC_VOLTAGE,
        METRIC_POWER,
        METRIC_PRESSURE,
        METRIC_CO2,
        _METRIC_MAX,
} Metric;

typedef enum TimeQuality {
        TIME_DEVICE,   /* the device's own time stamp */
        TIME_SYNCED,   /* the gateway's clock, known to be synchronised */
        TIME_UNSYNCED, /* the gateway's clock, not known to be synchronised */
        _TIME_QUALITY_MAX,
} TimeQuality;

/* Device status flags that make a measurement doubtful, or say where it came from; they travel
 * with the reading as a list of names (reading_flag_name()). */
enum {
        READING_BODY_MOVEMENT = 1u << 0,         /* BP: body movement during measurement */
        READING_CUFF_LOOSE = 1u << 1,            /* BP: cuff fit too loose */
        READING_IRREGULAR_PULSE = 1u << 2,       /* BP */
        READING_QUESTIONABLE = 1u << 3,          /* PLX: questionable measurement; pulse questionable */
        READING_INVALID = 1u << 4,               /* PLX: invalid measurement */
        READING_LOW_PERFUSION = 1u << 5,         /* PLX */
        READING_PULSE_OUT_OF_RANGE = 1u << 6,    /* BP: pulse rate above or below the device's range */
        READING_IMPROPER_POSITION = 1u << 7,     /* BP: improper measurement position */
        READING_SIGNAL_POOR = 1u << 8,           /* PLX: inadequate, poor, erratic or non-pulsatile signal */
        READING_SENSOR_PROBLEM = 1u << 9,        /* PLX: sensor displaced, unconnected, malfunctioning */
        READING_EARLY_ESTIMATE = 1u << 10,       /* PLX: early estimated data */
        READING_FROM_STORAGE = 1u << 11,         /* PLX: data from measurement storage */
        READING_DEMO_OR_TEST = 1u << 12,         /* PLX: demonstration or testing data */
        READING_DEVICE_CLOCK_NOT_SET = 1u << 13, /* PLX: the device's clock was not set */
        READING_NO_SKIN_CONTACT = 1u << 14,      /* HR: contact supported but not detected */
        READING_BATTERY_LOW = 1u << 15,          /* glucose annunciation */
        READING_SENSOR_FAULT = 1u << 16,         /* glucose: sensor malfunction or general device fault */
        READING_SAMPLE_INSUFFICIENT = 1u << 17,  /* glucose */
        READING_STRIP_ERROR = 1u << 18, /* glucose: insertion error, wrong strip type, pulled too soon */
        READING_RESULT_HIGH = 1u << 19, /* glucose: result higher than the device can process */
        READING_RESULT_LOW = 1u << 20,  /* glucose */
        READING_TEMPERATURE_OUT_OF_RANGE = 1u << 21, /* glucose */
        READING_TIME_FAULT = 1u << 22,               /* glucose */
        READING_EQUIPMENT_MALFUNCTION = 1u << 23,    /* PLX */
        _READING_FLAG_COUNT = 24,
};

typedef enum EventKind {
        EVENT_DOOR,   /* value 1 open, 0 closed */
        EVENT_MOTION, /* value 1 motion, 0 clear */
        EVENT_BED,    /* value 1 in bed, 0 out of bed */
        EVENT_BUTTON, /* value 1 press, 2 double, 3 triple, 4 long, 5 long double, 6 long triple, 128 hold */
        EVENT_DOSE_DUE,
        EVENT_DOSE_TAKEN,
        EVENT_DOSE_MISSED,
        EVENT_DISPENSER_EMPTY,
        EVENT_DISPENSER_REFILL,
        EVENT_DISPENSER_FAULT,
        EVENT_WINDOW, /* BTHome binary states, value 1/0 */
        EVENT_OPENING,
        EVENT_OCCUPANCY,
        EVENT_PRESENCE,
        EVENT_MOVING,
        EVENT_TAMPER,
        EVENT_VIBRATION,
        EVENT_BATTERY_LOW,
        EVENT_GENERIC,
        EVENT_SMOKE,
        EVENT_CARBON_MONOXIDE,
        EVENT_WATER_LEAK,
        EVENT_PROBLEM,
        EVENT_POWER,
        EVENT_DIMMER,       /* value: steps, negative to the left */
        EVENT_INPUT_FAILED, /* value 1 the input failed, 0 it works again; sensor: the input's id */
        _EVENT_KIND_MAX,
} EventKind;

#define SENSOR_ID_MAX 64

typedef struct Reading {
        char sensor[SENSOR_ID_MAX]; /* sensor id from the config; empty until the caller sets it */
        Metric metric;
        double value;       /* meaningless when absent is set */
        const char *unit;   /* UCUM, a static string */
        const char *absent; /* NULL, or why there is no value: "NaN", "NRes", "+INF", "-INF",
                             * "reserved", "unsuccessful" (static) */
        int64_t time_usec;  /* UTC, usec since the epoch */
        TimeQuality time_quality;
        uint32_t flags; /* READING_* */
        bool has_user;
        uint8_t user; /* the device's user index (BP, weight) */
        bool has_sequence;
        uint16_t sequence;  /* the device's record number (glucose) */
        const char *site;   /* where measured (temperature type, glucose location), or NULL */
        const char *sample; /* what was measured (glucose sample type), or NULL */
} Reading;

typedef struct Event {
        char sensor[SENSOR_ID_MAX];
        EventKind kind;
        int value;
        int64_t time_usec;
} Event;

/* How data leaves a sensor source (the simulated home, BlueZ, GPIO): gateway/ingest.c registers one.
 * Radio devices hand up their raw frames, which ingest decodes with the device's profile,
 * key and state; wired inputs hand up events. */
typedef struct SensorSink {
        void (*reading)(void *userdata, const Reading *r);
        void (*event)(void *userdata, const Event *e);
        /* A frame from a radio device: a characteristic value, or BTHome service data. uuid16 is the
         * characteristic it came from (0x2A5F, ...), or 0 for the device's own profile. time_usec is
         * when it was received (simulated time for the simulated home). */
        void (*frame)(void *userdata, const char *sensor, uint16_t uuid16, const uint8_t *buf, size_t len,
                      int64_t time_usec);
        void *userdata;
} SensorSink;

/* One row of the metric table. */
typedef struct MetricUnitLoinc {
        const char *unit;  /* UCUM */
        const char *loinc; /* the code for a value in that unit */
} MetricUnitLoinc;

typedef struct MetricInfo {
        const char *name;  /* the wire name ("heart_rate"): a contract with the service, never renamed */
        const char *unit;  /* UCUM: the unit a value has when none is given (a replay line, a nurse) */
        const char *loinc; /* the code items carry as "loinc" in the JSON (gateway/encode.c), or NULL */
        /* For FHIR output (to come), which codes every Observation: a code that depends on the unit
         * (glucose: mass or moles per volume), NULL-terminated, or NULL ... */
        const MetricUnitLoinc *loinc_by_unit;
        /* ... and a second coding beside loinc (SpO2: FHIR's oxygen saturation profile asks for
         * 2708-6 with the pulse oximetry code 59408-5), or NULL. */
        const char *loinc_also;
} MetricInfo;

/* The row of m: static, never NULL for m < _METRIC_MAX; NULL for anything else. */
const MetricInfo *metric_info(Metric m);
const char *metric_name(Metric m);  /* NULL if m is not a metric */
const char *metric_loinc(Metric m); /* the JSON's code; NULL where the metric has none there */
/* The LOINC code of a value of m in unit (UCUM): the unit's own code where the code depends on the
 * unit, else metric_loinc(m). NULL: none. For FHIR output; the JSON keeps metric_loinc(). */
const char *metric_loinc_for_unit(Metric m, const char *unit);
/* The unit a metric has when none is given (a replay log line, a nurse's observation): UCUM, a
 * static string; "" for _METRIC_MAX. */
const char *metric_default_unit(Metric m);
/* 0 and *ret set, or -EINVAL for NULL or an unknown name (*ret untouched). */
int metric_from_name(const char *name, Metric *ret);
const char *event_kind_name(EventKind k); /* NULL if k is not a kind */
/* 0 and *ret set, or -EINVAL for NULL or an unknown name (*ret untouched). */
int event_kind_from_name(const char *name, EventKind *ret);
const char *time_quality_name(TimeQuality q); /* NULL if q is not a quality */
const char *reading_flag_name(unsigned bit);  /* bit index 0.._READING_FLAG_COUNT-1; NULL beyond */
