#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <syslog.h>

#include <mosquitto.h>
#include <mqtt_protocol.h>

#include "uplink/backoff.h"
#include "uplink/mqtt.h"

#define CONNECT_TIMEOUT_USEC (30ULL * 1000 * 1000)
#define BATCH_MAX_BYTES (256 * 1024)
#define ALERTS_MAX_INFLIGHT 64

typedef struct Inflight {
        int mid;
        Lane lane;
        uint64_t *seqs;
        size_t n;
} Inflight;

struct Mqtt {
        sd_event *event;
        Outbox *outbox;
        MqttOptions opt; /* strings owned */
        MqttCallbacks cb;
        char *topic_prefix, *topic_status, *topic_cmd, *topic_lane[_LANE_MAX];

        struct mosquitto *mosq;         /* the current connection attempt, or NULL */
        sd_event_source *io;            /* its socket */
        sd_event_source *misc_timer;    /* keepalive bookkeeping (mosquitto_loop_misc) */
        sd_event_source *connect_timer; /* gives up a connection attempt that hangs */
        sd_event_source *retry_timer;   /* next connection attempt */
        sd_event_source *pump_source;   /* deferred: publish what the outbox holds */
        sd_event_source *stop_timer;    /* shutdown deadline */
        int protocol;                   /* MQTT_PROTOCOL_V5, or V311 after a broker refused v5 */
        bool connected, started, stopping, stopped;
        bool drain_expired; /* shutdown: the deadline passed, stop sending items */
        Backoff backoff;

        uint64_t cursor[_LANE_MAX]; /* highest seq handed to the broker in this connection */
        Inflight *inflight;
        size_t n_inflight, cap_inflight;
        unsigned batches_inflight, alerts_inflight;

        int final_status_mid;
        bool final_status_acked;
        uint64_t published;
};

_Pragma("GCC diagnostic push") _Pragma("GCC diagnostic ignored \"-Wformat-nonliteral\"")
static void logf_(Mqtt *m, int prio, const char *fmt, ...)
{
        char buf[1024];
        va_list ap;
        if (!m->cb.log)
                return;
        va_start(ap, fmt);
        vsnprintf(buf, sizeof buf, fmt, ap);
        va_end(ap);
        m->cb.log(m->cb.userdata, prio, buf);
}
_Pragma("GCC diagnostic pop")

static void options_clear(MqttOptions *o)
{
        free((char *)o->gateway_id);
        free((char *)o->host);
        free((char *)o->ca_file);
        free((char *)o->cert_file);
        free((char *)o->key_file);
        free((char *)o->username);
        free((char *)o->password);
        free((char *)o->will_payload);
        *o = (MqttOptions){};
}

static int options_copy(MqttOptions *dst, const MqttOptions *src)
{
        *dst = *src;
        dst->gateway_id = dst->host = dst->ca_file = dst->cert_file = dst->key_file = NULL;
        dst->username = dst->password = dst->will_payload = NULL;
#define DUP(f)                                                                                             \
        if (src->f && !(dst->f = strdup(src->f)))                                                          \
                goto oom;
        DUP(gateway_id) DUP(host) DUP(ca_file) DUP(cert_file) DUP(key_file) DUP(username) DUP(password)
        DUP(will_payload)
#undef DUP
        return 0;
oom:
        options_clear(dst);
        return -ENOMEM;
}

static bool options_equal(const MqttOptions *a, const MqttOptions *b)
{
#define S(f) ((a->f == NULL) == (b->f == NULL) && (!a->f || strcmp(a->f, b->f) == 0))
        return S(gateway_id) && S(host) && a->port == b->port && a->tls == b->tls && S(ca_file) &&
               S(cert_file) && S(key_file) && S(username) && S(password) && a->keepalive_sec == b->keepalive_sec &&
               S(will_payload);
#undef S
}

static void inflight_clear(Mqtt *m)
{
        for (size_t i = 0; i < m->n_inflight; i++)
                free(m->inflight[i].seqs);
        m->n_inflight = 0;
        m->batches_inflight = m->alerts_inflight = 0;
}

static void session_close(Mqtt *m)
{
        m->io = sd_event_source_disable_unref(m->io);
        m->misc_timer = sd_event_source_disable_unref(m->misc_timer);
        m->connect_timer = sd_event_source_disable_unref(m->connect_timer);
        if (m->mosq) {
                mosquitto_destroy(m->mosq);
                m->mosq = NULL;
        }
        inflight_clear(m);
}

static void finish_stop(Mqtt *m)
{
        if (m->stopped)
                return;
        m->stopped = true;
        m->stop_timer = sd_event_source_disable_unref(m->stop_timer);
        m->retry_timer = sd_event_source_disable_unref(m->retry_timer);
        if (m->cb.stopped)
                m->cb.stopped(m->cb.userdata);
}

static int session_open(Mqtt *m);

static int on_retry_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
        Mqtt *m = userdata;
        session_close(m); /* the old connection is destroyed here, outside libmosquitto's callbacks */
        (void)session_open(m);
        return 0;
}

static void schedule_retry(Mqtt *m, bool immediately)
{
        uint64_t delay = immediately ? 0 : backoff_next(&m->backoff, arc4random());
        int r;

        if (m->stopping) {
                finish_stop(m);
                return;
        }
        if (m->retry_timer) {
                r = sd_event_source_set_time_relative(m->retry_timer, delay);
                if (r >= 0)
                        r = sd_event_source_set_enabled(m->retry_timer, SD_EVENT_ONESHOT);
        } else
                r = sd_event_add_time_relative(m->event, &m->retry_timer, CLOCK_MONOTONIC, delay, 0, on_retry_timer,
                                               m);
        if (r < 0)
                logf_(m, LOG_ERR, "Failed to schedule reconnection to the broker: %s", strerror(-r));
        else if (!immediately)
                logf_(m, LOG_INFO, "Reconnecting to the broker in %.1f s (attempt %u)", delay / 1e6,
                      m->backoff.attempt);
}

/* The connection is gone (or never came). Stops using it now; it is destroyed before the next try. */
static void session_lost(Mqtt *m, const char *why)
{
        bool was = m->connected;

        m->io = sd_event_source_disable_unref(m->io);
        m->misc_timer = sd_event_source_disable_unref(m->misc_timer);
        m->connect_timer = sd_event_source_disable_unref(m->connect_timer);
        m->connected = false;
        inflight_clear(m);
        if (was) {
                logf_(m, m->stopping ? LOG_INFO : LOG_WARNING, "Disconnected from broker %s:%u: %s", m->opt.host,
                      m->opt.port, why);
                if (m->cb.state)
                        m->cb.state(m->cb.userdata, false);
        } else if (!m->stopping)
                logf_(m, LOG_WARNING, "Could not connect to broker %s:%u: %s", m->opt.host, m->opt.port, why);
        schedule_retry(m, false);
}

static void update_io(Mqtt *m)
{
        if (m->io && m->mosq)
                (void)sd_event_source_set_io_events(m->io, EPOLLIN | (mosquitto_want_write(m->mosq) ? EPOLLOUT : 0));
}

static int publish(Mqtt *m, int *mid, const char *topic, const void *payload, size_t len, bool retain)
{
        int rc = mosquitto_publish_v5(m->mosq, mid, topic, (int)len, payload, 1, retain, NULL);
        if (rc != MOSQ_ERR_SUCCESS) {
                logf_(m, LOG_WARNING, "Failed to publish on %s: %s", topic, mosquitto_strerror(rc));
                return -EIO;
        }
        return 0;
}

/* One MQTT payload from a batch: items get their seq; events and telemetry are wrapped in an envelope. */
static char *build_payload(Mqtt *m, Lane lane, const OutboxBatch *b, size_t *ret_len)
{
        size_t cap = 128 + strlen(m->opt.gateway_id), len = 0;
        char *s;

        for (size_t i = 0; i < b->n; i++)
                cap += b->items[i].len + 32;
        s = malloc(cap);
        if (!s)
                return NULL;
        if (lane != LANE_ALERTS)
                len += (size_t)snprintf(s, cap, "{\"gateway\":\"%s\",\"items\":[", m->opt.gateway_id);
        for (size_t i = 0; i < b->n; i++) {
                const OutboxItem *it = &b->items[i];
                bool empty = it->len < 2 || it->body[0] != '{' || it->body[1] == '}';
                len += (size_t)snprintf(s + len, cap - len, "%s{\"seq\":%llu%s", i ? "," : "",
                                        (unsigned long long)it->seq, empty ? "}" : ",");
                if (!empty) {
                        memcpy(s + len, it->body + 1, it->len - 1);
                        len += it->len - 1;
                }
        }
        if (lane != LANE_ALERTS)
                len += (size_t)snprintf(s + len, cap - len, "]}");
        s[len] = '\0';
        *ret_len = len;
        return s;
}

static bool window_open(const Mqtt *m, Lane lane)
{
        if (lane == LANE_ALERTS)
                return m->alerts_inflight < ALERTS_MAX_INFLIGHT;
        return m->batches_inflight < m->opt.max_inflight;
}

static int send_batch(Mqtt *m, Lane lane)
{
        OutboxBatch b = {};
        Inflight *f;
        char *payload;
        size_t len;
        int mid, r;

        r = outbox_fetch(m->outbox, lane, m->cursor[lane], lane == LANE_ALERTS ? 1 : m->opt.batch_max,
                         BATCH_MAX_BYTES, &b);
        if (r < 0) {
                logf_(m, LOG_ERR, "Failed to read the outbox: %s", outbox_last_error(m->outbox) ?: strerror(-r));
                return r;
        }
        if (b.n == 0) {
                outbox_batch_done(&b);
                return 0;
        }
        if (m->n_inflight == m->cap_inflight) {
                size_t cap = m->cap_inflight ? m->cap_inflight * 2 : 32;
                Inflight *n = realloc(m->inflight, cap * sizeof *n);
                if (!n) {
                        outbox_batch_done(&b);
                        return -ENOMEM;
                }
                m->inflight = n;
                m->cap_inflight = cap;
        }
        payload = build_payload(m, lane, &b, &len);
        f = &m->inflight[m->n_inflight];
        *f = (Inflight){.lane = lane, .n = b.n, .seqs = malloc(b.n * sizeof(uint64_t))};
        if (!payload || !f->seqs) {
                free(payload);
                free(f->seqs);
                outbox_batch_done(&b);
                return -ENOMEM;
        }
        for (size_t i = 0; i < b.n; i++)
                f->seqs[i] = b.items[i].seq;
        r = publish(m, &mid, m->topic_lane[lane], payload, len, false);
        free(payload);
        if (r < 0) {
                free(f->seqs);
                outbox_batch_done(&b);
                return r;
        }
        f->mid = mid;
        m->n_inflight++;
        if (lane == LANE_ALERTS)
                m->alerts_inflight++;
        else
                m->batches_inflight++;
        m->cursor[lane] = b.items[b.n - 1].seq;
        outbox_batch_done(&b);
        return 1;
}

static void pump(Mqtt *m)
{
        /* At shutdown, what is committed still goes out until the deadline or the final status. */
        if (!m->connected || m->drain_expired || m->final_status_mid != 0)
                return;
        /* Lanes in priority order: a lower lane waits while a higher one has items and no room. */
        for (Lane lane = 0; lane < _LANE_MAX; lane++) {
                int r = 1;
                while (window_open(m, lane) && (r = send_batch(m, lane)) > 0)
                        ;
                if (r < 0 || (r > 0 && lane != LANE_ALERTS))
                        break;
        }
        update_io(m);
}

static int on_pump(sd_event_source *s, void *userdata)
{
        pump(userdata);
        return 0;
}

void mqtt_kick(Mqtt *m)
{
        if (m->connected && m->pump_source)
                (void)sd_event_source_set_enabled(m->pump_source, SD_EVENT_ONESHOT);
}

static void maybe_finish_shutdown(Mqtt *m)
{
        char *final;
        int rc;

        if (!m->stopping || !m->connected || m->n_inflight > 0)
                return;
        if (m->final_status_mid == 0 && !m->drain_expired) {
                /* Send what was committed at SIGTERM; acknowledged rows leave the store first. */
                (void)outbox_commit(m->outbox);
                pump(m);
                if (m->n_inflight > 0)
                        return;
        }
        if (m->final_status_mid == 0) {
                /* Everything sent is acknowledged: say goodbye with the figures as they now are. */
                final = m->cb.status ? m->cb.status(m->cb.userdata, false) : NULL;
                if (final && publish(m, &m->final_status_mid, m->topic_status, final, strlen(final), true) == 0) {
                        free(final);
                        update_io(m);
                        return;
                }
                free(final);
                m->final_status_acked = true;
        }
        if (!m->final_status_acked)
                return;
        rc = mosquitto_disconnect_v5(m->mosq, MQTT_RC_NORMAL_DISCONNECTION, NULL);
        if (rc != MOSQ_ERR_SUCCESS)
                finish_stop(m);
        update_io(m);
}

static void on_connect(struct mosquitto *mosq, void *userdata, int rc, int flags, const mosquitto_property *props)
{
        Mqtt *m = userdata;
        int r;

        if (rc != 0) {
                const char *why = m->protocol == MQTT_PROTOCOL_V5 ? mosquitto_reason_string(rc)
                                                                    : mosquitto_connack_string(rc);
                if (m->protocol == MQTT_PROTOCOL_V5 && (rc == MQTT_RC_UNSUPPORTED_PROTOCOL_VERSION || rc == 1)) {
                        logf_(m, LOG_NOTICE, "Broker does not speak MQTT v5, falling back to v3.1.1");
                        m->protocol = MQTT_PROTOCOL_V311;
                        m->io = sd_event_source_disable_unref(m->io);
                        schedule_retry(m, true);
                        return;
                }
                logf_(m, LOG_ERR, "Broker %s:%u refused the connection: %s", m->opt.host, m->opt.port, why);
                session_lost(m, why);
                return;
        }
        m->connect_timer = sd_event_source_disable_unref(m->connect_timer);
        m->connected = true;
        backoff_reset(&m->backoff);
        logf_(m, LOG_INFO, "Connected to broker %s:%u (MQTT %s%s)", m->opt.host, m->opt.port,
              m->protocol == MQTT_PROTOCOL_V5 ? "v5" : "v3.1.1", m->opt.tls ? ", TLS" : "");

        /* Everything not acknowledged goes again, from the store: acks first, so none is resent needlessly. */
        (void)outbox_commit(m->outbox);
        memset(m->cursor, 0, sizeof m->cursor);

        (void)mqtt_publish_status(m);
        r = mosquitto_subscribe_v5(mosq, NULL, m->topic_cmd, 1, 0, NULL);
        if (r != MOSQ_ERR_SUCCESS)
                logf_(m, LOG_WARNING, "Failed to subscribe to %s: %s", m->topic_cmd, mosquitto_strerror(r));
        if (m->cb.state)
                m->cb.state(m->cb.userdata, true);
        mqtt_kick(m);
}

static void on_disconnect(struct mosquitto *mosq, void *userdata, int rc, const mosquitto_property *props)
{
        Mqtt *m = userdata;

        if (m->stopping) {
                m->connected = false;
                m->io = sd_event_source_disable_unref(m->io);
                finish_stop(m);
                return;
        }
        session_lost(m, rc == MOSQ_ERR_SUCCESS ? "closed" : mosquitto_strerror(rc));
}

static void on_publish(struct mosquitto *mosq, void *userdata, int mid, int reason, const mosquitto_property *props)
{
        Mqtt *m = userdata;

        if (m->stopping && m->final_status_mid != 0 && mid == m->final_status_mid)
                m->final_status_acked = true;
        for (size_t i = 0; i < m->n_inflight; i++) {
                Inflight *f = &m->inflight[i];
                if (f->mid != mid)
                        continue;
                /* 0x10 "no matching subscribers" is a success; 0x80 and up are refusals. The items
                 * stay in the outbox and go again on the next connection. */
                if (reason >= 0x80)
                        logf_(m, LOG_ERR, "Broker refused a %s message (%d items): %s", lane_name(f->lane), (int)f->n,
                              mosquitto_reason_string(reason));
                else {
                        (void)outbox_ack(m->outbox, f->seqs, f->n);
                        m->published += f->n;
                        if (m->cb.acked)
                                m->cb.acked(m->cb.userdata, f->n);
                }
                if (f->lane == LANE_ALERTS)
                        m->alerts_inflight--;
                else
                        m->batches_inflight--;
                free(f->seqs);
                m->inflight[i] = m->inflight[--m->n_inflight];
                break;
        }
        if (m->stopping)
                maybe_finish_shutdown(m);
        else
                mqtt_kick(m);
}

static void on_message(struct mosquitto *mosq, void *userdata, const struct mosquitto_message *msg,
                       const mosquitto_property *props)
{
        Mqtt *m = userdata;
        size_t plen = strlen(m->topic_prefix);
        const char *name;

        if (strncmp(msg->topic, m->topic_prefix, plen) != 0 || strncmp(msg->topic + plen, "/cmd/", 5) != 0)
                return;
        name = msg->topic + plen + 5;
        if (name[0] == '\0' || strchr(name, '/'))
                return;
        if (m->cb.command)
                m->cb.command(m->cb.userdata, name, msg->payload, (size_t)(msg->payloadlen > 0 ? msg->payloadlen : 0));
}

static void on_log(struct mosquitto *mosq, void *userdata, int level, const char *str)
{
        Mqtt *m = userdata;
        /* libmosquitto says why TLS failed (OpenSSL's reason) only here. */
        if (level & MOSQ_LOG_ERR)
                logf_(m, LOG_ERR, "mqtt: %s", str);
        else if (level & MOSQ_LOG_WARNING)
                logf_(m, LOG_WARNING, "mqtt: %s", str);
}

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
        Mqtt *m = userdata;
        int rc = MOSQ_ERR_SUCCESS;

        if (revents & (EPOLLIN | EPOLLERR | EPOLLHUP))
                rc = mosquitto_loop_read(m->mosq, 100);
        if (rc == MOSQ_ERR_SUCCESS && m->mosq && (revents & EPOLLOUT))
                rc = mosquitto_loop_write(m->mosq, 100);
        if (rc == MOSQ_ERR_SUCCESS && m->mosq)
                rc = mosquitto_loop_misc(m->mosq);
        /* A lost connection usually comes through on_disconnect; make sure it always does. */
        if (rc != MOSQ_ERR_SUCCESS && m->io) {
                if (m->stopping)
                        finish_stop(m);
                else
                        session_lost(m, mosquitto_strerror(rc));
                return 0;
        }
        update_io(m);
        return 0;
}

static int on_misc_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
        Mqtt *m = userdata;
        int rc = mosquitto_loop_misc(m->mosq);
        if (rc != MOSQ_ERR_SUCCESS && m->io) {
                session_lost(m, mosquitto_strerror(rc));
                return 0;
        }
        update_io(m);
        (void)sd_event_source_set_time_relative(s, (uint64_t)m->opt.keepalive_sec * 1000000 / 4);
        (void)sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
        return 0;
}

static int on_connect_timeout(sd_event_source *s, uint64_t usec, void *userdata)
{
        Mqtt *m = userdata;
        m->connect_timer = sd_event_source_disable_unref(m->connect_timer);
        session_lost(m, "timed out");
        return 0;
}

static int session_open(Mqtt *m)
{
        const MqttOptions *o = &m->opt;
        int rc, fd, r;

        m->mosq = mosquitto_new(o->gateway_id, true, m);
        if (!m->mosq)
                return -ENOMEM;
        mosquitto_int_option(m->mosq, MOSQ_OPT_PROTOCOL_VERSION, m->protocol);
        mosquitto_int_option(m->mosq, MOSQ_OPT_TCP_NODELAY, 1); /* an alarm is one small packet: no Nagle */
        mosquitto_int_option(m->mosq, MOSQ_OPT_SEND_MAXIMUM, 65535); /* our own window limits what is in flight */
        mosquitto_connect_v5_callback_set(m->mosq, on_connect);
        mosquitto_disconnect_v5_callback_set(m->mosq, on_disconnect);
        mosquitto_publish_v5_callback_set(m->mosq, on_publish);
        mosquitto_message_v5_callback_set(m->mosq, on_message);
        mosquitto_log_callback_set(m->mosq, on_log);

        rc = mosquitto_will_set(m->mosq, m->topic_status, (int)strlen(o->will_payload), o->will_payload, 1, true);
        if (rc == MOSQ_ERR_SUCCESS && o->username)
                rc = mosquitto_username_pw_set(m->mosq, o->username, o->password);
        if (rc == MOSQ_ERR_SUCCESS && o->tls) {
                if (!o->ca_file)
                        mosquitto_int_option(m->mosq, MOSQ_OPT_TLS_USE_OS_CERTS, 1);
                rc = mosquitto_tls_set(m->mosq, o->ca_file, NULL, o->cert_file, o->key_file, NULL);
                if (rc == MOSQ_ERR_SUCCESS) /* verify the server's certificate and name: always */
                        rc = mosquitto_tls_opts_set(m->mosq, 1, NULL, NULL);
                if (rc != MOSQ_ERR_SUCCESS) {
                        logf_(m, LOG_ERR, "Failed to set up TLS (CAFile=%s CertFile=%s KeyFile=%s): %s",
                              o->ca_file ?: "(system)", o->cert_file ?: "-", o->key_file ?: "-",
                              mosquitto_strerror(rc));
                        session_lost(m, "TLS set-up failed");
                        return -EINVAL;
                }
        }
        if (rc != MOSQ_ERR_SUCCESS) {
                session_lost(m, mosquitto_strerror(rc));
                return -EINVAL;
        }

        /* Name resolution in here blocks; the broker is normally an IP or a name in /etc/hosts or a
         * local resolver cache. The TCP connect itself does not block. */
        rc = mosquitto_connect_async(m->mosq, o->host, o->port, (int)o->keepalive_sec);
        if (rc != MOSQ_ERR_SUCCESS) {
                session_lost(m, rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc));
                return 0;
        }
        fd = mosquitto_socket(m->mosq);
        r = sd_event_add_io(m->event, &m->io, fd, EPOLLIN | EPOLLOUT, on_io, m);
        if (r >= 0)
                r = sd_event_add_time_relative(m->event, &m->misc_timer, CLOCK_MONOTONIC,
                                               (uint64_t)o->keepalive_sec * 1000000 / 4, 0, on_misc_timer, m);
        if (r >= 0)
                r = sd_event_add_time_relative(m->event, &m->connect_timer, CLOCK_MONOTONIC, CONNECT_TIMEOUT_USEC,
                                               0, on_connect_timeout, m);
        if (r < 0) {
                session_lost(m, strerror(-r));
                return r;
        }
        return 0;
}

static int make_topics(Mqtt *m)
{
        static const char *const lane_topic[_LANE_MAX] = {"alerts", "events", "telemetry"};
        free(m->topic_prefix);
        free(m->topic_status);
        free(m->topic_cmd);
        for (Lane l = 0; l < _LANE_MAX; l++)
                free(m->topic_lane[l]);
        if (asprintf(&m->topic_prefix, "homecare/v1/%s", m->opt.gateway_id) < 0 ||
            asprintf(&m->topic_status, "%s/status", m->topic_prefix) < 0 ||
            asprintf(&m->topic_cmd, "%s/cmd/+", m->topic_prefix) < 0)
                return -ENOMEM;
        for (Lane l = 0; l < _LANE_MAX; l++)
                if (asprintf(&m->topic_lane[l], "%s/%s", m->topic_prefix, lane_topic[l]) < 0)
                        return -ENOMEM;
        return 0;
}

int mqtt_new(sd_event *e, Outbox *outbox, const MqttOptions *opt, const MqttCallbacks *cb, Mqtt **ret)
{
        Mqtt *m;
        int r;

        m = calloc(1, sizeof *m);
        if (!m)
                return -ENOMEM;
        m->event = sd_event_ref(e);
        m->outbox = outbox;
        m->cb = *cb;
        m->protocol = MQTT_PROTOCOL_V5;
        m->backoff = (Backoff){.base_usec = 1000000, .cap_usec = 300ULL * 1000000};
        if ((r = options_copy(&m->opt, opt)) < 0 || (r = make_topics(m)) < 0)
                goto fail;
        r = sd_event_add_defer(e, &m->pump_source, on_pump, m);
        if (r < 0)
                goto fail;
        (void)sd_event_source_set_enabled(m->pump_source, SD_EVENT_OFF);
        *ret = m;
        return 0;
fail:
        mqtt_free(m);
        return r;
}

Mqtt *mqtt_free(Mqtt *m)
{
        if (!m)
                return NULL;
        session_close(m);
        sd_event_source_disable_unref(m->retry_timer);
        sd_event_source_disable_unref(m->pump_source);
        sd_event_source_disable_unref(m->stop_timer);
        free(m->inflight);
        free(m->topic_prefix);
        free(m->topic_status);
        free(m->topic_cmd);
        for (Lane l = 0; l < _LANE_MAX; l++)
                free(m->topic_lane[l]);
        options_clear(&m->opt);
        sd_event_unref(m->event);
        free(m);
        return NULL;
}

int mqtt_start(Mqtt *m)
{
        m->started = true;
        return session_open(m);
}

int mqtt_reconfigure(Mqtt *m, const MqttOptions *opt)
{
        MqttOptions n;
        int r;

        if (options_equal(&m->opt, opt)) {
                m->opt.max_inflight = opt->max_inflight;
                m->opt.batch_max = opt->batch_max;
                return 0;
        }
        r = options_copy(&n, opt);
        if (r < 0)
                return r;
        options_clear(&m->opt);
        m->opt = n;
        r = make_topics(m);
        if (r < 0)
                return r;
        logf_(m, LOG_INFO, "Broker settings changed, reconnecting");
        if (m->connected && m->cb.state)
                m->cb.state(m->cb.userdata, false);
        m->connected = false;
        m->io = sd_event_source_disable_unref(m->io);
        m->protocol = MQTT_PROTOCOL_V5;
        backoff_reset(&m->backoff);
        if (m->started)
                schedule_retry(m, true); /* closes the old session outside any callback */
        return 0;
}

int mqtt_publish_status(Mqtt *m)
{
        char *s;
        int r;

        if (!m->connected || m->stopping || !m->cb.status)
                return 0;
        s = m->cb.status(m->cb.userdata, true);
        if (!s)
                return -ENOMEM;
        r = publish(m, NULL, m->topic_status, s, strlen(s), true);
        free(s);
        update_io(m);
        return r;
}

int mqtt_reply(Mqtt *m, const char *name, const char *payload)
{
        char *topic;
        int r;

        if (!m->connected)
                return -ENOTCONN;
        if (asprintf(&topic, "%s/reply/%s", m->topic_prefix, name) < 0)
                return -ENOMEM;
        r = publish(m, NULL, topic, payload, strlen(payload), false);
        free(topic);
        update_io(m);
        return r;
}

static int on_stop_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
        Mqtt *m = userdata;

        if (m->connected && m->mosq && !m->drain_expired) {
                m->drain_expired = true;
                if (m->n_inflight > 0)
                        logf_(m, LOG_WARNING, "Shutdown: %zu messages still unacknowledged; they stay in the outbox",
                              m->n_inflight);
                inflight_clear(m);
                maybe_finish_shutdown(m);
                /* One more second for the status and the DISCONNECT to leave. */
                (void)sd_event_source_set_time_relative(s, 1000000);
                (void)sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
                return 0;
        }
        finish_stop(m);
        return 0;
}

int mqtt_shutdown(Mqtt *m, uint64_t timeout_usec)
{
        int r;

        m->stopping = true;
        m->retry_timer = sd_event_source_disable_unref(m->retry_timer);
        if (!m->connected) {
                session_close(m);
                finish_stop(m);
                return 0;
        }
        r = sd_event_add_time_relative(m->event, &m->stop_timer, CLOCK_MONOTONIC, timeout_usec, 0, on_stop_timer, m);
        if (r < 0) {
                finish_stop(m);
                return 0;
        }
        maybe_finish_shutdown(m);
        return 0;
}

bool mqtt_connected(const Mqtt *m)
{
        return m->connected;
}

uint64_t mqtt_published(const Mqtt *m)
{
        return m->published;
}
