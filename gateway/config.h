/* The gateway's configuration: an INI file in the style of systemd units.
 *   # or ; starts a whole-line comment; [Section] or [Section "label"] starts a section;
 *   Key=Value sets a key. Keys and sections are case-sensitive, as in systemd.
 * Every error names the file, the line, the key and what is wrong. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "sensors/profile.h"

/* [Sensor "id"]: a radio device. */
typedef struct SensorConfig {
        char *id;        /* the label */
        unsigned line;   /* where its section starts */
        char *type;      /* Type= as written: a name or alias of the profile table (sensors/profile.h) */
        Profile profile; /* what Type= names: bthome, heart-rate, blood-pressure, temperature,
                          * plx-spot (plx), plx-continuous, weight, glucose */
        char *address;   /* Address=: AA:BB:CC:DD:EE:FF */
        char *key;       /* Key=: BTHome bind key, 32 hex digits, or NULL */
        char
            *role; /* Role=: bedroom, bathroom, kitchen, living-room, hall, exit-door, bed, dispenser, ... */
        unsigned expected_interval_min; /* ExpectedIntervalMinutes=: silent after this; 0 = not watched */
        int passkey; /* Passkey=: 000000-999999 for a device that pairs with a passkey, or -1 */
        bool bond;   /* Bond=: pair on the first connection, before subscribing */
        bool expected_interval_set;
} SensorConfig;

/* [Input "id"]: a GPIO line. */
typedef struct InputConfig {
        char *id;
        unsigned line;
        char *chip;      /* Chip=: gpiochip0, or a path */
        char *gpio_line; /* Line=: an offset or a line name */
        char *kind; /* Kind=: door, button, bed, dispenser-dose-taken, dispenser-dose-due, dispenser-fault,
                       motion, generic */
        bool active_low;      /* ActiveLow= */
        unsigned debounce_ms; /* DebounceMs= */
        char *role;           /* Role= */
} InputConfig;

/* [Threshold "metric"]: personal limits that replace the NEWS2 single-parameter band for a metric. */
typedef struct ThresholdConfig {
        char *id; /* the metric name */
        unsigned line;
        double low, high; /* Low=, High= */
        bool has_low, has_high;
} ThresholdConfig;

typedef struct Config {
        char *path; /* the file this came from */

        /* [Gateway] */
        char *gateway_id;              /* Id=, required; used in topics, so [A-Za-z0-9_-] only */
        char *state_directory;         /* StateDirectory=, where the SQLite files live */
        uint64_t status_interval_usec; /* StatusIntervalSec=, how often status is refreshed */

        /* [Uplink] */
        char *broker;           /* Broker=, as written: mqtt://host[:port] or mqtts://host[:port] */
        char *broker_host;      /* host part of Broker= */
        uint16_t broker_port;   /* port part, or 1883 / 8883 */
        bool broker_tls;        /* mqtts:// */
        char *ca_file;          /* CAFile= */
        char *cert_file;        /* CertFile= */
        char *key_file;         /* KeyFile= */
        char *username;         /* Username= */
        char *password_file;    /* PasswordFile= */
        unsigned keepalive_sec; /* KeepaliveSec= */
        unsigned max_inflight;  /* MaxInflight=, MQTT messages awaiting PUBACK */
        unsigned batch_max;     /* BatchMax=, items per telemetry/events message */

        /* [Store] */
        uint64_t store_max_size;    /* MaxSize=, bytes */
        uint64_t commit_delay_usec; /* CommitDelayMs=, group commit bound for telemetry */

        /* [Simulation] */
        bool sim_enabled;       /* Enabled= */
        double sim_speed;       /* Speed=, simulated seconds per real second; 0 = "max" */
        uint64_t sim_seed;      /* Seed= */
        uint64_t sim_limit;     /* Limit=, stop after this many readings and events (0 = never) */
        int64_t sim_start_usec; /* Start=, simulated clock start (RFC 3339); 0 = now */

        /* [Bluetooth] */
        char *bt_adapter; /* Adapter=: hci0; NULL = the first powered adapter */

        /* [Patient] */
        char *patient_id;    /* Id= */
        unsigned spo2_scale; /* SpO2Scale=, 1 or 2 */
        bool oxygen;         /* Oxygen= */
        int night_start_min; /* NightWindow=23:00-06:00, minutes after local midnight */
        int night_end_min;

        /* [Medication] */
        int schedule_min[12]; /* Schedule=08:00,14:00,20:00, local minutes after midnight */
        size_t n_schedule;
        unsigned grace_min; /* GraceMinutes= */

        /* [Rules] */
        double weight_gain_kg;           /* WeightGainKg= */
        unsigned weight_gain_days;       /* WeightGainDays= */
        unsigned night_exit_min;         /* NightExitMinutes= */
        unsigned bed_exit_min;           /* BedExitMinutes= */
        unsigned news2_window_min;       /* News2WindowMinutes= */
        unsigned inactivity_floor_min;   /* InactivityFloorMinutes= */
        unsigned inactivity_ceiling_min; /* InactivityCeilingMinutes= */
        unsigned inactivity_default_min; /* InactivityDefaultMinutes= */
        unsigned baseline_min_days;      /* BaselineMinDays= */
        unsigned battery_low_percent;    /* BatteryLowPercent= */
        unsigned alarm_clear_min;        /* AlarmButtonClearMinutes= */
        /* [Rules], the personal baselines and the weight trend (docs/rules.md, "baseline_deviation",
         * "weight_gain"): the least change from the person's own normal that is clinically meaningful,
         * in the chart's unit (mmHg, /min, percentage points, Cel, mg/dL); 0 turns the rule off. */
        double baseline_min_shift_systolic;    /* BaselineMinShiftSystolic= */
        double baseline_min_shift_diastolic;   /* BaselineMinShiftDiastolic= */
        double baseline_min_shift_pulse;       /* BaselineMinShiftPulse= (pulse and heart rate) */
        double baseline_min_shift_spo2;        /* BaselineMinShiftSpO2= */
        double baseline_min_shift_temperature; /* BaselineMinShiftTemperature= */
        double baseline_min_shift_respiration; /* BaselineMinShiftRespiration= */
        double baseline_min_shift_glucose;     /* BaselineMinShiftGlucose= */
        double weight_trend_kg;                /* WeightTrendKg=: 0 turns the trend rule off */

        /* [Web]: the technician's page */
        char *web_listen;              /* Listen= as written; NULL: Listen= empty, the page is off */
        char *web_host;                /* its address part: an IPv4 or IPv6 literal */
        uint16_t web_port;             /* its port */
        char *web_cert_file;           /* CertFile=, PEM; NULL: a self-signed one in StateDirectory */
        char *web_key_file;            /* KeyFile=, PEM; set with CertFile= */
        bool web_plain;                /* Plain=: HTTP without TLS (behind a reverse proxy) */
        unsigned web_session_idle_min; /* SessionIdleMinutes= */

        SensorConfig *sensors;
        size_t n_sensors;
        InputConfig *inputs;
        size_t n_inputs;
        ThresholdConfig *thresholds;
        size_t n_thresholds;
} Config;

typedef enum ConfigMode {
        CONFIG_DAEMON,     /* everything the daemon needs: [Gateway] Id= and [Uplink] Broker= are required */
        CONFIG_RULES_ONLY, /* replay: sensors, inputs, patient and rules; no broker needed */
} ConfigMode;

/* Parses the file at path. On success *ret is a new Config, the caller's (free with config_free());
 * every string in it belongs to it. On failure returns a negative errno, *ret untouched, and, if
 * reterr_error is non-NULL, a malloc'd message "FILE:LINE: [Section] Key: what is wrong" in
 * *reterr_error (the caller frees it). */
int config_load(const char *path, Config **ret, char **reterr_error);
/* Same, from an open stream (borrowed for the call; not closed); `name` is used in messages and
 * copied. */
int config_parse(FILE *f, const char *name, Config **ret, char **reterr_error);
int config_parse_mode(FILE *f, const char *name, ConfigMode mode, Config **ret, char **reterr_error);
int config_load_mode(const char *path, ConfigMode mode, Config **ret, char **reterr_error);
/* The element with that id, or NULL: borrowed from c, valid until config_free(c). */
const SensorConfig *config_find_sensor(const Config *c, const char *id);
const InputConfig *config_find_input(const Config *c, const char *id);
/* Takes NULL. Returns NULL. */
Config *config_free(Config *c);

/* Reads the broker password from PasswordFile= (first line, no newline). 0 and *ret (malloc'd, the
 * caller frees it; NULL when there is no PasswordFile=), or a negative errno (-ENOENT: no such
 * file, -ENODATA: an empty one). */
int config_read_password(const Config *c, char **ret);
