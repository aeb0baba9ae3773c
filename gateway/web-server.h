/* The technician's page: libmicrohttpd inside the gateway's one sd-event loop. MHD_USE_EPOLL: its
 * epoll fd is one io source, MHD_get_timeout() one timer, updated before the loop sleeps; no thread.
 * What a request gets is decided by gateway/web-api.c; this file serves it: the listening socket (and
 * its retries with back-off when the port cannot be bound or TLS cannot be set up), TLS with the
 * certificate from gateway/web-cert.c, the limits, the headers every answer carries, the event
 * streams of GET /api/events, and the test alarms that wait for the broker's acknowledgement.
 *
 * With no page open the page costs no wake-ups: the MHD timer is armed only while connections exist,
 * status events are built only for open streams, and their keep-alive runs only while one is open. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>
#include <systemd/sd-event.h>

#include "gateway/commands.h"
#include "gateway/config.h"
#include "uplink/outbox.h"

typedef struct Web Web;

typedef struct WebOptions {
        sd_event *event; /* a reference is taken */
        const Config
            *config; /* [Web], StateDirectory=, Id=: borrowed, valid until web_reload() or web_free() */
        Commands
            *commands; /* the test alarm goes through commands_dispatch(); borrowed, must outlive the Web */
        /* The status object with the open alerts: a new reference, or NULL on ENOMEM. */
        json_t *(*status)(void *userdata);
        /* The seq of the alert queued last (outbox_last_alert_seq()). */
        uint64_t (*last_alert_seq)(void *userdata);
        void *userdata;
} WebOptions;

/* Copies o. Nothing listens until web_start(). The caller owns *ret (web_free()). */
int web_new(const WebOptions *o, Web **ret);
/* Closes every connection (a waiting test alarm is answered by the closing). Takes NULL; returns NULL. */
Web *web_free(Web *w);
/* Makes the certificate and the setup code if needed, logs them, and listens. A failure is logged
 * and retried with back-off, never an error: the alarm path runs without the page. With Listen=
 * empty, does nothing. 0, or -ENOMEM. */
int web_start(Web *w);
/* SIGHUP with a new configuration c (borrowed as in WebOptions): listens again if Listen=, Plain=,
 * CertFile= or KeyFile= changed; SessionIdleMinutes= applies at once. */
void web_reload(Web *w, const Config *c);

/* Something on the status page may have changed: the open event streams get a "status" event soon
 * (changes within 250 ms go as one). Nothing happens without an open stream. */
void web_status_changed(Web *w);
/* The broker acknowledged these seqs of lane (borrowed for the call): a test alarm that waits for one
 * of them is answered. */
void web_uplink_acked(Web *w, Lane lane, const uint64_t *seqs, size_t n);

/* Where the page is served ("https://0.0.0.0:8443"), or NULL when Listen= is empty. Borrowed, valid
 * until the next web_reload() or web_free(). */
const char *web_url(const Web *w);
/* Why the page is not served now (a port that cannot be bound, TLS that cannot be set up), or NULL.
 * Borrowed, valid until the next call into the Web. */
const char *web_error(const Web *w);
