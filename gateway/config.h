/* The gateway's configuration: an INI file in the style of systemd units.
 *   # or ; starts a whole-line comment; [Section] or [Section "label"] starts a section;
 *   Key=Value sets a key. Keys and sections are case-sensitive, as in systemd.
 * Every error names the file, the line, the key and what is wrong. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

typedef struct Config {
        char *path; /* the file this came from */

        /* [Gateway] */
        char *gateway_id;      /* Id=, required; used in topics, so [A-Za-z0-9_-] only */
        char *state_directory; /* StateDirectory=, where the SQLite files live */
        uint64_t status_interval_usec; /* StatusIntervalSec=, how often status is refreshed */

        /* [Uplink] */
        char *broker;         /* Broker=, as written: mqtt://host[:port] or mqtts://host[:port] */
        char *broker_host;    /* host part of Broker= */
        uint16_t broker_port; /* port part, or 1883 / 8883 */
        bool broker_tls;      /* mqtts:// */
        char *ca_file;        /* CAFile= */
        char *cert_file;      /* CertFile= */
        char *key_file;       /* KeyFile= */
        char *username;       /* Username= */
        char *password_file;  /* PasswordFile= */
        unsigned keepalive_sec;  /* KeepaliveSec= */
        unsigned max_inflight;   /* MaxInflight=, MQTT messages awaiting PUBACK */
        unsigned batch_max;      /* BatchMax=, items per telemetry/events message */

        /* [Store] */
        uint64_t store_max_size;   /* MaxSize=, bytes */
        uint64_t commit_delay_usec; /* CommitDelayMs=, group commit bound for telemetry */

        /* [Simulation] */
        bool sim_enabled;     /* Enabled= */
        double sim_speed;     /* Speed=, simulated seconds per real second; 0 = "max" */
        uint64_t sim_seed;    /* Seed= */
        uint64_t sim_limit;   /* Limit=, stop after this many readings and events (0 = never) */
        int64_t sim_start_usec; /* Start=, simulated clock start (RFC 3339); 0 = now */
} Config;

/* Parses the file at path. On success *ret is a new Config (free with config_free()).
 * On failure returns a negative errno and, if ret_error is non-NULL, a malloc'd message
 * "FILE:LINE: [Section] Key: what is wrong" in *ret_error. */
int config_load(const char *path, Config **ret, char **ret_error);
/* Same, from an open stream; `name` is used in messages. */
int config_parse(FILE *f, const char *name, Config **ret, char **ret_error);
Config *config_free(Config *c);

/* Reads the broker password from PasswordFile= (first line, no newline). */
int config_read_password(const Config *c, char **ret);
