#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include "common/backoff.h"
#include "common/log.h"
#include "common/macro.h"
#include "common/time-util.h"
#include "gateway/web-api.h"
#include "gateway/web-auth.h"
#include "gateway/web-cert.h"
#include "gateway/web-server.h"

#define CONNECTIONS_MAX 24            /* a phone and a laptop, each with a few connections and a stream */
#define CONNECTIONS_PER_ADDRESS 12    /* browsers open 6 per host, and a stream */
#define CONNECTION_MEMORY (32 * 1024) /* headers and the upload buffer, per connection */
#define CONNECTION_TIMEOUT_SEC 60     /* idle connections go (streams are kept alive below this) */
#define STREAM_KEEPALIVE_USEC (25ULL * 1000 * 1000)
#define STREAM_COALESCE_USEC (250ULL * 1000)
#define STREAM_BUFFER_MAX (1024 * 1024) /* a stream that does not read this much is closed */
#define BODY_DISCARD_MAX (1024 * 1024)  /* read and dropped before a 413; a larger one is not read */
#define RETRY_FIRST_USEC (1000ULL * 1000)
#define RETRY_MAX_USEC (300ULL * 1000 * 1000)
#define TLS_PRIORITIES "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"
#define CSP                                                                                                 \
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src "       \
        "'self'; "                                                                                          \
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

typedef struct Stream Stream;
typedef struct Request Request;

/* One GET /api/events: the events not yet written, and whether MHD waits (suspended) for more. */
struct Stream {
        Web *web;
        struct MHD_Connection *connection;
        char *buf;
        size_t len, off, cap;
        bool suspended;
        bool closing;              /* end the stream once buf is written */
        char token[WEB_TOKEN_MAX]; /* its session's: the stream ends with the session */
        Stream *prev, *next;
};

/* One request, across the calls of the access handler (MHD's per-connection context). */
struct Request {
        Web *web;
        struct MHD_Connection *connection;
        char client[INET6_ADDRSTRLEN + 8];
        char *body;
        size_t len;
        bool too_large;
        /* A test alarm waiting for its acknowledgement (suspended), then its answer. */
        bool waiting;
        bool raised; /* the test alarm was raised: this request is never handled again */
        uint64_t seq;
        char alert_id[ALERT_ID_MAX];
        char *answer; /* set when the wait is over */
        sd_event_source *deadline;
        Request *prev, *next;
};

struct Web {
        sd_event *event;
        const Config *config;
        Commands *commands;
        WebOptions o;
        WebApi *api;
        WebCert cert;     /* loaded (TLS only) */
        char *url;        /* "https://0.0.0.0:8443", NULL when Listen= is empty */
        char *error;      /* why the page is not served, or NULL */
        bool code_logged; /* the setup code was logged by this process */
        bool run_now;     /* a connection was resumed outside MHD_run(): run it before sleeping */
        struct MHD_Daemon *daemon;
        sd_event_source *io, *timer, *retry, *push, *keepalive;
        Backoff backoff;
        Stream *streams;
        Request *waiting;
};

/* ---- answers ---- */

static bool add_header(struct MHD_Response *r, const char *name, const char *value)
{
        return MHD_add_response_header(r, name, value) == MHD_YES;
}

/* The headers every answer carries, and those of this one. */
static bool add_headers(struct MHD_Response *resp, const WebResponse *w)
{
        char retry[16];
        bool ok = add_header(resp, "Content-Security-Policy", CSP) &&
                  add_header(resp, "X-Content-Type-Options", "nosniff") &&
                  add_header(resp, "Referrer-Policy", "no-referrer") &&
                  add_header(resp, "X-Frame-Options", "DENY") &&
                  add_header(resp, "Cache-Control", w->api ? "no-store" : "no-cache");
        if (ok && w->content_type)
                ok = add_header(resp, "Content-Type", w->content_type);
        if (ok && w->set_cookie)
                ok = add_header(resp, "Set-Cookie", w->set_cookie);
        if (ok && w->location)
                ok = add_header(resp, "Location", w->location);
        if (ok && w->allow)
                ok = add_header(resp, "Allow", w->allow);
        if (ok && w->retry_after_sec) {
                snprintf(retry, sizeof retry, "%u", w->retry_after_sec);
                ok = add_header(resp, "Retry-After", retry);
        }
        return ok;
}

static enum MHD_Result queue(struct MHD_Connection *c, const WebResponse *w)
{
        struct MHD_Response *resp;
        enum MHD_Result r;

        if (w->body)
                resp = MHD_create_response_from_buffer(w->size, w->body, MHD_RESPMEM_MUST_COPY);
        else
                resp = MHD_create_response_from_buffer(w->size, (void *)w->data, MHD_RESPMEM_PERSISTENT);
        if (!resp)
                return MHD_NO;
        if (!add_headers(resp, w)) {
                MHD_destroy_response(resp);
                return MHD_NO;
        }
        r = MHD_queue_response(c, w->status ?: 500, resp);
        MHD_destroy_response(resp);
        return r;
}

/* ---- event streams ---- */

static int stream_append(Stream *s, const char *text, size_t len)
{
        if (s->len + len > STREAM_BUFFER_MAX) {
                s->closing = true; /* it does not read: the page reconnects and gets a fresh status */
                return -ENOBUFS;
        }
        if (s->len + len > s->cap) {
                size_t cap = (s->len + len) * 2;
                char *b = realloc(s->buf, cap);
                if (!b)
                        return -ENOMEM;
                s->buf = b;
                s->cap = cap;
        }
        memcpy(s->buf + s->len, text, len);
        s->len += len;
        return 0;
}

/* MHD_resume_connection() from outside MHD_run() (an acknowledgement, a timer): libmicrohttpd 0.9.75
 * in external epoll mode does not wake its epoll fd for it, so the loop runs MHD before it sleeps. */
static void resume(Web *w, struct MHD_Connection *c)
{
        MHD_resume_connection(c);
        w->run_now = true;
}

static void stream_wake(Stream *s)
{
        if (s->suspended) {
                s->suspended = false;
                resume(s->web, s->connection);
        }
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
        Stream *s = cls;
        size_t n;

        if (s->off < s->len) {
                n = s->len - s->off < max ? s->len - s->off : max;
                memcpy(buf, s->buf + s->off, n);
                s->off += n;
                if (s->off == s->len)
                        s->off = s->len = 0;
                return (ssize_t)n;
        }
        if (s->closing)
                return MHD_CONTENT_READER_END_OF_STREAM;
        /* Nothing to say: MHD forgets the connection until stream_wake(), so an open page costs no
         * wake-ups between events. */
        s->suspended = true;
        MHD_suspend_connection(s->connection);
        return 0;
}

static void stream_free(void *cls)
{
        Stream *s = cls;
        Web *w = s->web;

        if (s->prev)
                s->prev->next = s->next;
        else
                w->streams = s->next;
        if (s->next)
                s->next->prev = s->prev;
        free(s->buf);
        free(s);
        if (!w->streams) {
                (void)sd_event_source_set_enabled(w->keepalive, SD_EVENT_OFF);
                (void)sd_event_source_set_enabled(w->push, SD_EVENT_OFF);
        }
}

/* "event: status" with the status object as its data (one line: compact JSON has no newline). */
static char *status_event(Web *w)
{
        json_t *j = web_api_status(w->api);
        char *text = j ? json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(15)) : NULL, *ev = NULL;

        json_decref(j);
        if (text && asprintf(&ev, "event: status\ndata: %s\n\n", text) < 0)
                ev = NULL;
        free(text);
        return ev;
}

/* Appends text to every stream. A stream whose session ended (logout, idle, a password reset) ends
 * instead: an unattended page does not go on showing the home. */
static void push_to_streams(Web *w, const char *text)
{
        WebAuth *auth = web_api_auth(w->api);
        uint64_t now = 0;

        (void)sd_event_now(w->event, CLOCK_MONOTONIC, &now);
        (void)web_auth_refresh(auth);
        for (Stream *s = w->streams; s; s = s->next) {
                if (!web_auth_session_alive(auth, s->token, now))
                        s->closing = true;
                else
                        (void)stream_append(s, text, strlen(text));
                stream_wake(s);
        }
}

static int on_push(sd_event_source *es, uint64_t usec, void *userdata)
{
        Web *w = userdata;
        _cleanup_free_ char *ev = status_event(w);

        if (!ev)
                return log_oom(), 0;
        push_to_streams(w, ev);
        return 0;
}

static int on_keepalive(sd_event_source *es, uint64_t usec, void *userdata)
{
        Web *w = userdata;

        /* A comment line: a page that went away without closing is found by the failing write. */
        push_to_streams(w, ":\n\n");
        (void)sd_event_source_set_time_relative(es, STREAM_KEEPALIVE_USEC);
        return sd_event_source_set_enabled(es, SD_EVENT_ON);
}

static int arm(Web *w, sd_event_source **es, uint64_t usec, sd_event_time_handler_t fn)
{
        if (!*es)
                return sd_event_add_time_relative(w->event, es, CLOCK_MONOTONIC, usec, 0, fn, w);
        (void)sd_event_source_set_time_relative(*es, usec);
        return sd_event_source_set_enabled(*es, SD_EVENT_ONESHOT);
}

static enum MHD_Result start_stream(Web *w, struct MHD_Connection *c, WebResponse *wr)
{
        _cleanup_free_ char *ev = status_event(w);
        struct MHD_Response *resp;
        Stream *s;
        enum MHD_Result r;

        s = calloc(1, sizeof *s);
        if (!s || !ev || stream_append(s, ev, strlen(ev)) < 0) {
                if (s)
                        free(s->buf);
                free(s);
                return MHD_NO;
        }
        s->web = w;
        s->connection = c;
        (void)web_cookie_get(MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Cookie"), WEB_COOKIE_NAME,
                             s->token, sizeof s->token);
        resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, stream_read, s, stream_free);
        if (!resp) {
                free(s->buf);
                free(s);
                return MHD_NO;
        }
        s->next = w->streams;
        if (s->next)
                s->next->prev = s;
        w->streams = s; /* from here stream_free() unlinks it when MHD is done with the response */
        if (!add_headers(resp, wr)) {
                MHD_destroy_response(resp);
                return MHD_NO;
        }
        r = MHD_queue_response(c, 200, resp);
        MHD_destroy_response(resp);
        if (arm(w, &w->keepalive, STREAM_KEEPALIVE_USEC, on_keepalive) < 0)
                log_warning("Technician's page: failed to arm the event streams' keep-alive, ignoring.");
        else
                (void)sd_event_source_set_enabled(w->keepalive, SD_EVENT_ON);
        return r;
}

void web_status_changed(Web *w)
{
        int enabled = SD_EVENT_OFF;

        if (!w || !w->streams)
                return;
        if (w->push && sd_event_source_get_enabled(w->push, &enabled) >= 0 && enabled != SD_EVENT_OFF)
                return; /* already coming */
        if (arm(w, &w->push, STREAM_COALESCE_USEC, on_push) < 0)
                log_warning("Technician's page: failed to arm the status event, ignoring.");
}

/* ---- test alarms waiting for the broker ---- */

static void waiting_unlink(Request *q)
{
        Web *w = q->web;

        if (!q->waiting)
                return;
        if (q->prev)
                q->prev->next = q->next;
        else if (w->waiting == q)
                w->waiting = q->next;
        if (q->next)
                q->next->prev = q->prev;
        q->prev = q->next = NULL;
        q->waiting = false;
        q->deadline = sd_event_source_disable_unref(q->deadline);
}

/* The wait is over: the answer is given when MHD calls the handler again, after the resume. */
static void waiting_done(Request *q, bool acked)
{
        waiting_unlink(q);
        q->answer = web_api_test_alarm_answer(q->alert_id, acked, now_realtime());
        if (!q->answer)
                log_oom();
        log_info("Technician's page: test alarm %s %s.", q->alert_id,
                 acked ? "acknowledged by the broker" : "not acknowledged within 10 s");
        resume(q->web, q->connection);
}

static int on_ack_deadline(sd_event_source *es, uint64_t usec, void *userdata)
{
        waiting_done(userdata, false);
        return 0;
}

void web_uplink_acked(Web *w, Lane lane, const uint64_t *seqs, size_t n)
{
        if (!w || lane != LANE_ALERTS)
                return;
        for (Request *q = w->waiting, *next; q; q = next) {
                next = q->next;
                for (size_t i = 0; i < n; i++)
                        if (seqs[i] == q->seq) {
                                waiting_done(q, true);
                                break;
                        }
        }
}

/* WebApiOptions.test_alarm: through the command table, as MQTT's cmd/test-alarm. */
static int raise_test_alarm(void *userdata, const char *message, char *ret_alert_id, uint64_t *ret_seq,
                            unsigned *ret_retry_after_sec, char **ret_error)
{
        Web *w = userdata;
        _cleanup_free_ char *payload = NULL, *reply = NULL;
        json_t *j;
        const char *id, *error;
        unsigned wait = 0;
        int r;

        if (!w->commands) {
                *ret_error = strdup("the alarm path is not running");
                return -ENOTCONN;
        }
        j = json_pack("{s:s}", "message", message);
        payload = j ? json_dumps(j, JSON_COMPACT) : NULL;
        json_decref(j);
        if (!payload)
                return -ENOMEM;
        r = commands_dispatch(w->commands, "test-alarm", payload, strlen(payload), &reply);
        if (r < 0)
                return r;
        j = json_loads(reply, 0, NULL);
        id = json_string_value(json_object_get(j, "alert_id"));
        error = json_string_value(json_object_get(j, "error"));
        if (json_is_true(json_object_get(j, "ok")) && id && strlen(id) < ALERT_ID_MAX) {
                memcpy(ret_alert_id, id, strlen(id) + 1);
                *ret_seq = w->o.last_alert_seq ? w->o.last_alert_seq(w->o.userdata) : 0;
                json_decref(j);
                return 0;
        }
        *ret_error = error ? strdup(error) : NULL;
        /* The command table's rate limit says when, in its words: "... try again in N s". */
        r = error && strstr(error, "rate-limited") ? -EBUSY : -EIO;
        if (r == -EBUSY && strstr(error, "try again in ") &&
            sscanf(strstr(error, "try again in ") + strlen("try again in "), "%u", &wait) == 1)
                *ret_retry_after_sec = wait;
        json_decref(j);
        return r;
}

/* ---- requests ---- */

static const char *header(struct MHD_Connection *c, const char *name)
{
        return MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
}

static void client_address(struct MHD_Connection *c, char *buf, size_t size)
{
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        const struct sockaddr *sa = ci ? ci->client_addr : NULL;

        snprintf(buf, size, "unknown");
        if (sa && sa->sa_family == AF_INET)
                (void)inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, buf, (socklen_t)size);
        else if (sa && sa->sa_family == AF_INET6)
                (void)inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, buf,
                                (socklen_t)size);
}

static WebRequest make_request(Request *q, const char *url, const char *method, bool headers_only)
{
        struct MHD_Connection *c = q->connection;
        const char *length = header(c, "Content-Length");
        unsigned long long limit = headers_only ? BODY_DISCARD_MAX : WEB_BODY_MAX;
        uint64_t now = 0;

        (void)sd_event_now(q->web->event, CLOCK_MONOTONIC, &now);
        return (WebRequest){.method = method,
                            .path = url,
                            .host = header(c, "Host"),
                            .origin = header(c, "Origin"),
                            .content_type = header(c, "Content-Type"),
                            .cookie = header(c, "Cookie"),
                            .csrf = header(c, "X-CSRF-Token"),
                            .client = q->client,
                            .body = q->body,
                            .body_len = q->len,
                            /* A body a little too large is read and dropped, so that the client reads
                             * the 413 rather than a reset; a huge one is refused before it is sent. */
                            .body_too_large = q->too_large || (length && strtoull(length, NULL, 10) > limit),
                            .headers_only = headers_only,
                            .now_usec = now};
}

static enum MHD_Result answer(Request *q, const WebRequest *req, WebResponse *wr)
{
        Web *w = q->web;

        switch (wr->action) {
        case WEB_ACTION_CONTINUE:
                return MHD_YES;
        case WEB_ACTION_RESPOND:
                return queue(q->connection, wr);
        case WEB_ACTION_EVENTS:
                return start_stream(w, q->connection, wr);
        case WEB_ACTION_AWAIT_ACK:
                q->raised = true;
                q->seq = wr->seq;
                memcpy(q->alert_id, wr->alert_id, sizeof q->alert_id);
                if (sd_event_add_time_relative(w->event, &q->deadline, CLOCK_MONOTONIC, WEB_ACK_TIMEOUT_USEC,
                                               0, on_ack_deadline, q) < 0)
                        return MHD_NO;
                q->waiting = true;
                q->next = w->waiting;
                if (q->next)
                        q->next->prev = q;
                w->waiting = q;
                MHD_suspend_connection(q->connection);
                return MHD_YES;
        }
        return MHD_NO;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
        Web *w = cls;
        Request *q = *con_cls;
        WebRequest req;
        WebResponse wr;
        enum MHD_Result r;

        if (!q) {
                /* The headers: refused here (method, path, Origin, size, type, session, CSRF) before any
                 * body is read. */
                q = calloc(1, sizeof *q);
                if (!q)
                        return MHD_NO;
                q->web = w;
                q->connection = c;
                client_address(c, q->client, sizeof q->client);
                *con_cls = q;
                req = make_request(q, url, method, true);
                if (web_api_handle(w->api, &req, &wr) == -ENOMEM)
                        log_oom();
                r = answer(q, &req, &wr);
                web_response_done(&wr);
                return r;
        }
        if (q->answer) { /* a test alarm's wait is over */
                wr = (WebResponse){.status = 200,
                                   .api = true,
                                   .content_type = "application/json",
                                   .body = TAKE_PTR(q->answer)};
                wr.size = strlen(wr.body);
                r = queue(c, &wr);
                web_response_done(&wr);
                return r;
        }
        if (q->raised) /* resumed without an answer: the Web is stopping, the connection goes */
                return MHD_NO;
        if (*upload_data_size > 0) {
                if (q->len + *upload_data_size > WEB_BODY_MAX)
                        q->too_large = true; /* the rest is read and dropped, then 413 */
                else {
                        char *b = realloc(q->body, q->len + *upload_data_size);
                        if (!b)
                                return MHD_NO;
                        memcpy(b + q->len, upload_data, *upload_data_size);
                        q->body = b;
                        q->len += *upload_data_size;
                }
                *upload_data_size = 0;
                return MHD_YES;
        }
        req = make_request(q, url, method, false);
        if (web_api_handle(w->api, &req, &wr) == -ENOMEM)
                log_oom();
        r = answer(q, &req, &wr);
        web_response_done(&wr);
        return r;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
        Request *q = *con_cls;

        if (!q)
                return;
        waiting_unlink(q);
        free(q->answer);
        free(q->body);
        free(q);
        *con_cls = NULL;
}

_printf_(2, 0) static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
        char msg[512];
        size_t n;

        vsnprintf(msg, sizeof msg, fmt, ap);
        n = strlen(msg);
        while (n > 0 && msg[n - 1] == '\n')
                msg[--n] = '\0';
        /* A browser that refuses the self-signed certificate, a client that goes away: said by the
         * page, not worth more than debug. */
        log_debug("libmicrohttpd: %s", msg);
}

/* ---- the daemon in the loop ---- */

static int on_io(sd_event_source *es, int fd, uint32_t revents, void *userdata)
{
        Web *w = userdata;
        w->run_now = false;
        (void)MHD_run(w->daemon);
        return 0;
}

static int on_timer(sd_event_source *es, uint64_t usec, void *userdata)
{
        Web *w = userdata;
        w->run_now = false;
        (void)MHD_run(w->daemon);
        return 0;
}

/* Before the loop sleeps: MHD's timeout as the timer, or none (no connection that may time out). */
static int on_prepare(sd_event_source *es, void *userdata)
{
        Web *w = userdata;
        MHD_UNSIGNED_LONG_LONG ms = 0;

        if (w->run_now)
                ms = 0;
        else if (MHD_get_timeout(w->daemon, &ms) != MHD_YES)
                return sd_event_source_set_enabled(w->timer, SD_EVENT_OFF);
        (void)sd_event_source_set_time_relative(w->timer, (uint64_t)ms * 1000);
        return sd_event_source_set_enabled(w->timer, SD_EVENT_ONESHOT);
}

static void stop_daemon(Web *w)
{
        w->io = sd_event_source_disable_unref(w->io);
        w->timer = sd_event_source_disable_unref(w->timer);
        if (!w->daemon)
                return;
        /* Suspended connections are resumed so that MHD closes them: the streams end, a waiting test
         * alarm is not answered (the connection goes). */
        for (Stream *s = w->streams; s; s = s->next) {
                s->closing = true;
                stream_wake(s);
        }
        for (Request *q = w->waiting, *next; q; q = next) {
                next = q->next;
                waiting_unlink(q);
                resume(w, q->connection);
        }
        MHD_stop_daemon(w->daemon);
        w->daemon = NULL;
}

static int listen_socket(const Config *c, char **reterr_error)
{
        union {
                struct sockaddr sa;
                struct sockaddr_in in;
                struct sockaddr_in6 in6;
        } addr = {};
        socklen_t len;
        bool v6 = strchr(c->web_host, ':') != NULL;
        int fd, one = 1;

        if (v6) {
                addr.in6 = (struct sockaddr_in6){.sin6_family = AF_INET6, .sin6_port = htons(c->web_port)};
                (void)inet_pton(AF_INET6, c->web_host, &addr.in6.sin6_addr);
                len = sizeof addr.in6;
        } else {
                addr.in = (struct sockaddr_in){.sin_family = AF_INET, .sin_port = htons(c->web_port)};
                (void)inet_pton(AF_INET, c->web_host, &addr.in.sin_addr);
                len = sizeof addr.in;
        }
        fd = socket(addr.sa.sa_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                goto fail;
        (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, &addr.sa, len) < 0 || listen(fd, 16) < 0)
                goto fail;
        return fd;
fail:;
        int r = -errno;
        if (fd >= 0)
                close(fd);
        (void)!asprintf(reterr_error, "cannot listen on %s: %s", c->web_listen, strerror(-r));
        return r;
}

/* The certificate (TLS) and the setup code, logged together so that the label can carry both. */
static int prepare_secrets(Web *w, char **reterr_error)
{
        const Config *c = w->config;
        char code[WEB_SETUP_CODE_MAX], cn[128];
        bool made = false;
        int r;

        if (!c->web_plain && !w->cert.cert_pem) {
                _cleanup_free_ char *error = NULL;
                snprintf(cn, sizeof cn, "homecare-gw %s", c->gateway_id);
                r = web_cert_load(c->web_cert_file, c->web_key_file, c->state_directory, cn, &w->cert,
                                  &error);
                if (r < 0) {
                        (void)!asprintf(reterr_error, "TLS cannot be set up: %s", error ?: strerror(-r));
                        return r;
                }
                if (w->cert.made)
                        log_notice("Technician's page: made a self-signed certificate %s.",
                                   w->cert.cert_path);
        }
        web_api_set_fingerprint(w->api, c->web_plain ? NULL : w->cert.fingerprint);
        r = web_setup_code_get(c->state_directory, code, &made);
        if (r == -EEXIST)
                return 0; /* a password is set: the code is spent */
        if (r < 0) {
                (void)!asprintf(reterr_error, "cannot store the setup code in %s: %s", c->state_directory,
                                strerror(-r));
                return r;
        }
        if (made || !w->code_logged) {
                /* The one line that carries the code: the technician reads it from the journal or the
                 * label, or with `homecare-gw setup-code`. */
                if (c->web_plain)
                        log_notice("Technician's page: setup code %s (sets the page's password once).",
                                   code);
                else
                        log_notice(
                            "Technician's page: setup code %s, certificate SHA-256 %s (sets the page's "
                            "password once).",
                            code, w->cert.fingerprint);
                w->code_logged = true;
        }
        explicit_bzero(code, sizeof code);
        return 0;
}

static int on_retry(sd_event_source *es, uint64_t usec, void *userdata);

/* Listens, or logs why not and tries again later. */
static int bring_up(Web *w)
{
        const Config *c = w->config;
        _cleanup_free_ char *error = NULL;
        const union MHD_DaemonInfo *info;
        unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
        int fd = -EBADF, r;

        r = prepare_secrets(w, &error);
        if (r >= 0) {
                fd = listen_socket(c, &error);
                r = fd;
        }
        if (r >= 0) {
                if (!c->web_plain)
                        flags |= MHD_USE_TLS;
                w->daemon = MHD_start_daemon(
                    flags, 0, NULL, NULL, on_request, w, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, w,
                    MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_CONNECTION_LIMIT, (unsigned)CONNECTIONS_MAX,
                    MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)CONNECTIONS_PER_ADDRESS,
                    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONNECTION_MEMORY,
                    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)CONNECTION_TIMEOUT_SEC,
                    MHD_OPTION_NOTIFY_COMPLETED, on_completed, w,
                    /* Plain=yes: the list ends here, and the TLS options after it are not read. */
                    c->web_plain ? MHD_OPTION_END : MHD_OPTION_HTTPS_MEM_KEY, w->cert.key_pem,
                    MHD_OPTION_HTTPS_MEM_CERT, w->cert.cert_pem, MHD_OPTION_HTTPS_PRIORITIES, TLS_PRIORITIES,
                    MHD_OPTION_END);
                if (!w->daemon) {
                        close(fd);
                        r = -EPROTO;
                        (void)!asprintf(&error, c->web_plain
                                                    ? "the HTTP server cannot start"
                                                    : "the HTTPS server cannot start (TLS: the key or "
                                                      "certificate is not usable)");
                }
        }
        if (r >= 0) {
                info = MHD_get_daemon_info(w->daemon, MHD_DAEMON_INFO_EPOLL_FD);
                if (!info || sd_event_add_io(w->event, &w->io, info->epoll_fd, EPOLLIN, on_io, w) < 0 ||
                    sd_event_source_set_prepare(w->io, on_prepare) < 0 ||
                    sd_event_add_time_relative(w->event, &w->timer, CLOCK_MONOTONIC, 0, 0, on_timer, w) <
                        0 ||
                    sd_event_source_set_enabled(w->timer, SD_EVENT_OFF) < 0) {
                        stop_daemon(w);
                        return log_error_errno(ENOMEM,
                                               "Technician's page: failed to add it to the event loop.");
                }
        }
        if (r < 0) {
                uint64_t wait = backoff_next_ceiling(&w->backoff);
                if (!error)
                        return log_oom();
                /* Said when it starts and when it changes; the retries in between at debug. */
                log_full(
                    w->error && streq(w->error, error) ? LOG_DEBUG : LOG_ERR,
                    "Technician's page is down: %s; retrying in %llu s. The alarm path is not affected.",
                    error, (unsigned long long)(wait / 1000000));
                free(w->error);
                w->error = TAKE_PTR(error);
                if (arm(w, &w->retry, wait, on_retry) < 0)
                        log_error(
                            "Technician's page: failed to arm its retry; it stays down until a reload.");
                return 0;
        }
        if (w->error)
                log_notice("Technician's page is up again.");
        w->error = mfree(w->error);
        backoff_reset(&w->backoff);
        if (c->web_plain)
                log_warning(
                    "Technician's page on %s WITHOUT TLS (Plain=yes): passwords and health data cross "
                    "the network in clear unless a reverse proxy in front encrypts them.",
                    w->url);
        else
                log_notice("Technician's page on %s, certificate SHA-256 %s.", w->url, w->cert.fingerprint);
        return 0;
}

static int on_retry(sd_event_source *es, uint64_t usec, void *userdata)
{
        return bring_up(userdata);
}

static int set_url(Web *w)
{
        const Config *c = w->config;

        w->url = mfree(w->url);
        if (!c->web_listen)
                return 0;
        if (asprintf(&w->url, "%s://%s", c->web_plain ? "http" : "https", c->web_listen) < 0) {
                w->url = NULL;
                return -ENOMEM;
        }
        return 0;
}

int web_start(Web *w)
{
        if (set_url(w) < 0)
                return log_oom();
        if (!w->url) {
                log_info("Technician's page is off (Listen= is empty).");
                return 0;
        }
        return bring_up(w);
}

static void take_down(Web *w)
{
        stop_daemon(w);
        w->retry = sd_event_source_disable_unref(w->retry);
        w->error = mfree(w->error);
        web_cert_done(&w->cert);
        backoff_reset(&w->backoff);
}

void web_reload(Web *w, const Config *c)
{
        const Config *old = w->config;
        bool same = streq_ptr(old->web_listen, c->web_listen) && old->web_plain == c->web_plain &&
                    streq_ptr(old->web_cert_file, c->web_cert_file) &&
                    streq_ptr(old->web_key_file, c->web_key_file);

        w->config = c;
        web_api_set_options(w->api, (uint64_t)c->web_session_idle_min * 60 * 1000000, c->web_plain);
        if (same)
                return;
        log_info("Technician's page: Listen=, Plain=, CertFile= or KeyFile= changed, starting it again.");
        take_down(w);
        (void)web_start(w);
}

/* WebApiOptions.status: the Manager's, with its userdata. */
static json_t *status_of(void *userdata)
{
        Web *w = userdata;
        return w->o.status ? w->o.status(w->o.userdata) : json_object();
}

int web_new(const WebOptions *o, Web **ret)
{
        Web *w = calloc(1, sizeof *w);
        int r;

        if (!w)
                return -ENOMEM;
        w->o = *o;
        w->event = sd_event_ref(o->event);
        w->config = o->config;
        w->commands = o->commands;
        w->backoff = (Backoff){.base_usec = RETRY_FIRST_USEC, .cap_usec = RETRY_MAX_USEC};
        r = web_api_new(
            &(WebApiOptions){.state_dir = o->config->state_directory,
                             .session_idle_usec = (uint64_t)o->config->web_session_idle_min * 60 * 1000000,
                             .plain = o->config->web_plain,
                             .status = status_of,
                             .test_alarm = raise_test_alarm,
                             .userdata = w},
            &w->api);
        if (r < 0) {
                web_free(w);
                return r;
        }
        *ret = w;
        return 0;
}

Web *web_free(Web *w)
{
        if (!w)
                return NULL;
        take_down(w);
        w->push = sd_event_source_disable_unref(w->push);
        w->keepalive = sd_event_source_disable_unref(w->keepalive);
        web_api_free(w->api);
        free(w->url);
        sd_event_unref(w->event);
        free(w);
        return NULL;
}

const char *web_url(const Web *w)
{
        return w ? w->url : NULL;
}

const char *web_error(const Web *w)
{
        return w ? w->error : NULL;
}
