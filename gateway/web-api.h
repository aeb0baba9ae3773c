/* The technician's page: what a request gets, decided without any HTTP library, so that it can be
 * fuzzed and tested alone. gateway/web-server.c turns libmicrohttpd's requests into a WebRequest and
 * a WebResponse into an answer (adding the headers every answer carries).
 *
 * The JSON API under /api/ (docs: README, "The technician's page"):
 *   GET  /api/setup        {"needed": bool}                             no session needed
 *   POST /api/setup        {"setup_code","password"} -> 200 {"csrf_token"} and a session cookie;
 *                          403 wrong code, 409 a password exists      no session needed
 *   POST /api/login        {"password"} -> 200 {"csrf_token"} and the cookie; 401 wrong; 429 wait
 *   POST /api/logout       204
 *   GET  /api/status       the status object, with the page's additions
 *   GET  /api/events       Server-Sent Events: "status" whenever it changes
 *   POST /api/test-alarm   {"message"?} -> 200 {"alert_id","acked","acked_at"?} once the broker
 *                          acknowledged the alert, or "acked": false after 10 s
 * Checked in this order, before any handler: path and method (404, 405), Origin (403), body size
 * (413), Content-Type (415), session (401), CSRF token (403); then the handler: JSON (400), tries
 * while locked out (429 and Retry-After). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "gateway/alert.h"
#include "gateway/web-auth.h"

#define WEB_BODY_MAX (64 * 1024)
#define WEB_COOKIE_NAME "hcgw_session"
#define WEB_ACK_TIMEOUT_USEC (10ULL * 1000 * 1000)

/* One request, as it came (every pointer borrowed for the call; header values NULL when absent). */
typedef struct WebRequest {
        const char *method;       /* "GET", "POST", ... */
        const char *path;         /* the URL's path, without the query */
        const char *host;         /* Host: */
        const char *origin;       /* Origin: */
        const char *content_type; /* Content-Type: */
        const char *cookie;       /* Cookie:, all of it */
        const char *csrf;         /* X-CSRF-Token: */
        const char *client;       /* the peer's address, as text */
        const char *body;         /* body_len bytes, not NUL-terminated; NULL when empty */
        size_t body_len;
        bool body_too_large; /* more than WEB_BODY_MAX arrived or was announced */
        bool headers_only;   /* the body has not been read yet: only the checks run */
        uint64_t now_usec;   /* CLOCK_MONOTONIC */
} WebRequest;

typedef enum WebAction {
        WEB_ACTION_CONTINUE,  /* headers_only and nothing refused: read the body, then ask again */
        WEB_ACTION_RESPOND,   /* answer with status, body and the headers below */
        WEB_ACTION_EVENTS,    /* start an event stream (GET /api/events) */
        WEB_ACTION_AWAIT_ACK, /* hold the answer until seq is acknowledged, or WEB_ACK_TIMEOUT_USEC */
} WebAction;

typedef struct WebResponse {
        WebAction action;
        unsigned status;
        bool api;                  /* under /api/: Cache-Control: no-store */
        const char *content_type;  /* static; NULL without a body */
        char *body;                /* malloc'd (the caller frees it with web_response_done()), or NULL */
        const unsigned char *data; /* or a static body (an asset) */
        size_t size;               /* of body or data */
        char *set_cookie;          /* malloc'd Set-Cookie: value, or NULL */
        const char *location;      /* static Location: (a redirect), or NULL */
        const char *allow;         /* static Allow: (405), or NULL */
        unsigned retry_after_sec;  /* Retry-After: (429), 0: none */
        uint64_t seq;              /* WEB_ACTION_AWAIT_ACK: the alert's seq */
        char alert_id[ALERT_ID_MAX];
} WebResponse;

void web_response_done(WebResponse *r);

typedef struct WebApiOptions {
        const char *state_dir;      /* the setup code and the password hash live here (copied) */
        uint64_t session_idle_usec; /* SessionIdleMinutes= */
        bool plain;                 /* Plain=yes: HTTP, cookies without Secure */
        /* The status object as MQTT publishes it, with the open alerts: a new reference, or NULL on
         * ENOMEM. NULL callback: {} (tests, fuzzing). */
        json_t *(*status)(void *userdata);
        /* Raises the test alarm with message (borrowed for the call; may be empty). 0 with the alert's
         * id (ALERT_ID_MAX bytes) and seq; -EBUSY when rate-limited, with the wait in
         * *ret_retry_after_sec; another negative errno when it could not be raised. *ret_error: why,
         * malloc'd (the caller frees it) or NULL. NULL callback: 503. */
        int (*test_alarm)(void *userdata, const char *message, char *ret_alert_id, uint64_t *ret_seq,
                          unsigned *ret_retry_after_sec, char **ret_error);
        void *userdata;
} WebApiOptions;

typedef struct WebApi WebApi;

/* o is copied. The caller owns *ret (web_api_free()). */
int web_api_new(const WebApiOptions *o, WebApi **ret);
WebApi *web_api_free(WebApi *api);
/* After a reload: the idle limit and Plain= (sessions stay). */
void web_api_set_options(WebApi *api, uint64_t session_idle_usec, bool plain);
/* The certificate's fingerprint shown by status (copied; NULL: none, Plain=yes). */
void web_api_set_fingerprint(WebApi *api, const char *fingerprint);
WebAuth *web_api_auth(WebApi *api);

/* Decides what req gets, into *ret (the caller's; free with web_response_done()). Logs logins,
 * failures and lockouts. 0, or -ENOMEM (*ret then holds a 500 without a body). */
int web_api_handle(WebApi *api, const WebRequest *req, WebResponse *ret);

/* The status object as the page shows it (the status callback's with the page's additions): a new
 * reference, or NULL on ENOMEM. */
json_t *web_api_status(WebApi *api);
/* The answer to a test alarm: {"alert_id","acked","acked_at"?}, compact JSON (malloc'd), or NULL on
 * ENOMEM. acked_at_usec: CLOCK_REALTIME of the acknowledgement, when acked. */
char *web_api_test_alarm_answer(const char *alert_id, bool acked, int64_t acked_at_usec);

/* Pure helpers, fuzzed with the handler. */
/* The value of cookie `name` in a Cookie: header (borrowed for the call), copied into buf (size bytes):
 * true if found and it fits. */
bool web_cookie_get(const char *header, const char *name, char *buf, size_t size);
/* Whether a Content-Type: value is application/json (any parameters). */
bool web_content_type_is_json(const char *value);
