/* The MQTT uplink: libmosquitto driven from the sd-event loop, publishing what the outbox holds.
 *
 * One connection at a time; after a loss it is torn down and a new one made after an
 * exponential back-off with full jitter. Every item goes out QoS 1 and is acknowledged in the
 * outbox only when its PUBACK arrives, so a loss at any moment means a resend, never a gap.
 * Alerts go out one per message and are not held back by the in-flight window; events and
 * telemetry go out in batches. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <systemd/sd-event.h>

#include "common/log.h"
#include "uplink/outbox.h"

typedef struct MqttOptions {
        const char *gateway_id; /* client id and <gw> in topics */
        const char *host;
        uint16_t port;
        bool tls;
        const char *ca_file;   /* NULL: the system's trust store */
        const char *cert_file; /* client certificate, or NULL */
        const char *key_file;
        const char *username; /* or NULL */
        const char *password;
        unsigned keepalive_sec;
        unsigned max_inflight;    /* batches awaiting PUBACK; alerts come on top */
        unsigned batch_max;       /* items per events or telemetry message */
        const char *will_payload; /* retained on status when the connection dies */
} MqttOptions;

typedef struct MqttCallbacks {
        /* Something worth a log line happened (priority as in syslog.h); message borrowed for the call. */
        log_callback_fn log;
        /* Connected (true) or lost (false). */
        void (*state)(void *userdata, bool connected);
        /* A message arrived on homecare/v1/<gw>/cmd/<name>. name and payload are borrowed for the call. */
        void (*command)(void *userdata, const char *name, const void *payload, size_t len);
        /* The retained status payload to publish now (malloc'd; NULL: out of memory): online on every
         * connect, and offline once at shutdown, after what was in flight has been acknowledged. */
        char *(*status)(void *userdata, bool online);
        /* The broker acknowledged the n items of lane with these seqs (borrowed for the call). */
        void (*acked)(void *userdata, Lane lane, const uint64_t *seqs, size_t n);
        /* Shutdown finished: everything in flight was acknowledged or the deadline passed. */
        void (*stopped)(void *userdata);
        void *userdata;
} MqttCallbacks;

typedef struct Mqtt Mqtt;

/* Copies what it needs from opt (and cb). e and outbox are borrowed and must outlive the Mqtt. Does
 * not connect until mqtt_start(). The caller owns *ret and frees it with mqtt_free() (takes NULL;
 * returns NULL). */
int mqtt_new(sd_event *e, Outbox *outbox, const MqttOptions *opt, const MqttCallbacks *cb, Mqtt **ret);
Mqtt *mqtt_free(Mqtt *m);

int mqtt_start(Mqtt *m);
/* Replaces the options (copied, after a configuration reload): reconnects if they changed. */
int mqtt_reconfigure(Mqtt *m, const MqttOptions *opt);
/* Publishes a fresh status (from cb->status) now, if connected. It is also published on every connect. */
int mqtt_publish_status(Mqtt *m);
/* Publishes an answer on homecare/v1/<gw>/reply/<name> (QoS 1, not stored in the outbox). name and
 * payload are borrowed for the call. */
int mqtt_reply(Mqtt *m, const char *name, const char *payload);
/* The outbox has new committed items: send them when the window allows. */
void mqtt_kick(Mqtt *m);
/* Stops sending, waits up to timeout for PUBACKs of what is in flight, publishes the offline status
 * (cb->status(false)), disconnects cleanly, then calls cb->stopped. */
int mqtt_shutdown(Mqtt *m, uint64_t timeout_usec);

bool mqtt_connected(const Mqtt *m);
uint64_t mqtt_published(const Mqtt *m); /* items acknowledged by the broker since start */
/* Items in messages the broker refused (PUBACK reason >= 0x80) since start, each refusal counted;
 * they are sent again with back-off. */
uint64_t mqtt_refused(const Mqtt *m);
/* Items too large for the broker on their own since start: each went as a notice with its seq. */
uint64_t mqtt_too_large(const Mqtt *m);
