#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <mosquitto.h>
#include <mqtt_protocol.h>
#include <openssl/x509.h>

#include "common/alloc-util.h"
#include "common/backoff.h"
#include "common/log.h"
#include "uplink/mqtt.h"

#ifndef MIN
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))
#endif

#define CONNECT_TIMEOUT_USEC (30ULL * 1000 * 1000)
#define BATCH_MAX_BYTES (256 * 1024)
#define ALERTS_MAX_INFLIGHT 64
/* How long the broker keeps our session (subscriptions, commands queued for us) while we are away. */
#define SESSION_EXPIRY_SEC (24U * 3600)
/* A PUBLISH's bytes besides topic and payload: fixed header, remaining length, topic length, packet
 * id, property length (v5). */
#define PUBLISH_OVERHEAD (1 + 4 + 2 + 2 + 1)

typedef struct Inflight {
        int mid;
        Lane lane;
        uint64_t *seqs;
        size_t n;
        size_t bytes; /* payload size: what a "packet too large" refusal teaches */
} Inflight;

/* Per lane, for the current connection (cursor, inflight) and across connections (refusals). */
typedef struct LaneState {
        uint64_t cursor;     /* highest seq handed to the broker in this connection */
        unsigned inflight;   /* messages of this lane awaiting PUBACK */
        uint64_t retry_from; /* refused by the broker: the lowest seq to send again (0: nothing refused) */
        bool retry_due;      /* the back-off has passed: rewind once the lane's PUBACKs are in */
        bool refusing;       /* in a refusal episode, which is logged once */
        Backoff backoff;
        sd_event_source *retry_timer;
} LaneState;

struct Mqtt {
        sd_event *event;
        Outbox *outbox;
        MqttOptions opt; /* strings owned */
        MqttCallbacks cb;
        char *topic_prefix, *topic_status, *topic_cmd, *topic_lane[_LANE_MAX];

        struct mosquitto *mosq;    /* the current connection attempt, or NULL */
        sd_event_source *io;       /* its socket */
        sd_event_source *probe_io; /* v5: the TCP probe that precedes the connection */
        int probe_fd;
        struct addrinfo *probe_ai, *probe_cur;
        sd_event_source *misc_timer;    /* keepalive bookkeeping (mosquitto_loop_misc) */
        sd_event_source *connect_timer; /* gives up a connection attempt that hangs */
        sd_event_source *retry_timer;   /* next connection attempt */
        sd_event_source *pump_source;   /* deferred: publish what the outbox holds */
        sd_event_source *stop_timer;    /* shutdown deadline */
        int protocol;                   /* MQTT_PROTOCOL_V5, or V311 after a broker refused v5 */
        /* live: the current session has not been given up. libmosquitto reports a lost connection
         * through on_disconnect from inside loop_read/write/misc; every caller of those checks it
         * afterwards, because the session's event sources are gone then. */
        bool live;
        bool connected, started, stopping, stopped;
        bool drain_expired; /* shutdown: the deadline passed, stop sending items */
        Backoff backoff;

        LaneState lanes[_LANE_MAX];
        uint32_t max_packet; /* the broker's Maximum Packet Size (CONNACK), 0: none announced */
        size_t payload_cap;  /* learned from "packet too large": batches stay at or below this */
        size_t refused_min;  /* the smallest payload the broker refused as too large */
        Inflight *inflight;
        size_t n_inflight, cap_inflight;
        unsigned batches_inflight, alerts_inflight;

        int final_status_mid;
        bool final_status_acked;
        uint64_t published;
        uint64_t refused;   /* items in messages the broker refused (each refusal counts) */
        uint64_t too_large; /* items too large for the broker on their own, replaced by a notice */
};

#if defined(__SANITIZE_ADDRESS__)
/* libmosquitto 2.0.11 loses one outgoing packet when the broker sends DISCONNECT while a packet is
 * half written (do_client_disconnect() overwrites current_out_packet): a leak in the library, once
 * per such disconnection, that we cannot free through its API. Without this the sanitizer build
 * fails every test where a broker hangs up on a busy gateway. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
        return "leak:libmosquitto.so\n";
}
#endif

/* Our lines go up through the owner's callback; log_to_callback() checks every format. */
#define logf_(m, prio, ...) log_to_callback((m)->cb.log, (m)->cb.userdata, prio, __VA_ARGS__)

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
        /* Each string is the copy's own. */
        const char *const *from[] = {&src->gateway_id, &src->host,     &src->ca_file,  &src->cert_file,
                                     &src->key_file,   &src->username, &src->password, &src->will_payload};
        const char **to[] = {&dst->gateway_id, &dst->host,     &dst->ca_file,  &dst->cert_file,
                             &dst->key_file,   &dst->username, &dst->password, &dst->will_payload};
        for (size_t i = 0; i < ELEMENTSOF(from); i++)
                if (*from[i] && !(*to[i] = strdup(*from[i])))
                        goto oom;
        return 0;
oom:
        options_clear(dst);
        return -ENOMEM;
}

static bool options_equal(const MqttOptions *a, const MqttOptions *b)
{
#define S(f) ((a->f == NULL) == (b->f == NULL) && (!a->f || strcmp(a->f, b->f) == 0))
        return S(gateway_id) && S(host) && a->port == b->port && a->tls == b->tls && S(ca_file) &&
               S(cert_file) && S(key_file) && S(username) && S(password) &&
               a->keepalive_sec == b->keepalive_sec && S(will_payload);
#undef S
}

static void inflight_clear(Mqtt *m)
{
        for (size_t i = 0; i < m->n_inflight; i++)
                free(m->inflight[i].seqs);
        m->n_inflight = 0;
        m->batches_inflight = m->alerts_inflight = 0;
        for (Lane l = 0; l < _LANE_MAX; l++)
                m->lanes[l].inflight = 0;
}

static void probe_close(Mqtt *m)
{
        m->probe_io = sd_event_source_disable_unref(m->probe_io);
        if (m->probe_fd >= 0)
                close(m->probe_fd);
        m->probe_fd = -EBADF;
        if (m->probe_ai)
                freeaddrinfo(m->probe_ai);
        m->probe_ai = m->probe_cur = NULL;
}

/* Stops every event source of the session. Safe from inside its own callbacks: sd-event keeps a
 * source that is being dispatched until its callback returns, but the callback must not touch it
 * any more (that is what crashed on_misc_timer after a keepalive time-out). */
static void session_detach(Mqtt *m)
{
        m->live = false;
        m->io = sd_event_source_disable_unref(m->io);
        m->misc_timer = sd_event_source_disable_unref(m->misc_timer);
        m->connect_timer = sd_event_source_disable_unref(m->connect_timer);
        probe_close(m);
        for (Lane l = 0; l < _LANE_MAX; l++) {
                LaneState *ls = &m->lanes[l];
                ls->retry_timer = sd_event_source_disable_unref(ls->retry_timer);
                ls->retry_from = 0;
                ls->retry_due = false;
        }
}

/* Never called from inside libmosquitto's callbacks: it destroys the client. */
static void session_close(Mqtt *m)
{
        session_detach(m);
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
                r = sd_event_add_time_relative(m->event, &m->retry_timer, CLOCK_MONOTONIC, delay, 0,
                                               on_retry_timer, m);
        if (r < 0)
                logf_(m, LOG_ERR, "Failed to schedule reconnection to the broker: %s", strerror(-r));
        else if (!immediately)
                logf_(m, LOG_INFO, "Reconnecting to the broker in %.1f s (attempt %u)", delay / 1e6,
                      m->backoff.attempt);
}

/* The connection is gone (or never came). Stops using it now; it is destroyed before the next try.
 * Called at most once per session, from wherever the loss shows first. */
static void session_lost(Mqtt *m, const char *why)
{
        bool was = m->connected;

        if (!m->live)
                return;
        session_detach(m);
        m->connected = false;
        inflight_clear(m);
        if (was) {
                logf_(m, m->stopping ? LOG_INFO : LOG_WARNING, "Disconnected from broker %s:%u: %s",
                      m->opt.host, m->opt.port, why);
                if (m->cb.state)
                        m->cb.state(m->cb.userdata, false);
        } else if (!m->stopping)
                logf_(m, LOG_WARNING, "Could not connect to broker %s:%u: %s", m->opt.host, m->opt.port,
                      why);
        schedule_retry(m, false);
}

static void update_io(Mqtt *m)
{
        if (m->live && m->io && m->mosq)
                (void)sd_event_source_set_io_events(
                    m->io, EPOLLIN | (mosquitto_want_write(m->mosq) ? EPOLLOUT : 0));
}

static int publish(Mqtt *m, int *mid, const char *topic, const void *payload, size_t len, bool retain)
{
        int rc = mosquitto_publish_v5(m->mosq, mid, topic, (int)len, payload, 1, retain, NULL);
        if (rc == MOSQ_ERR_OVERSIZE_PACKET)
                return -EMSGSIZE; /* the caller decides */
        if (rc != MOSQ_ERR_SUCCESS) {
                logf_(m, LOG_WARNING, "Failed to publish on %s: %s", topic, mosquitto_strerror(rc));
                return -EIO;
        }
        return 0;
}

/* The largest payload that fits in one PUBLISH on topic, by what the broker announced (SIZE_MAX: no
 * limit announced). */
static size_t announced_payload_max(const Mqtt *m, const char *topic)
{
        size_t overhead = PUBLISH_OVERHEAD + strlen(topic);
        if (m->max_packet == 0)
                return SIZE_MAX;
        return m->max_packet > overhead ? m->max_packet - overhead : 0;
}

/* One MQTT payload from the first items of a batch that fit in max_len (at least one item, even if it
 * alone does not): items get their seq; events and telemetry are wrapped in an envelope. *ret_n says
 * how many items it holds. A NULL body makes a notice in place of the item: it was too large. */
static char *build_payload(Mqtt *m, Lane lane, const OutboxBatch *b, size_t max_len, bool notice,
                           size_t *ret_n, size_t *ret_len)
{
        size_t cap = 128 + strlen(m->opt.gateway_id), len = 0, n = 0, tail = lane != LANE_ALERTS ? 2 : 0;
        char *s;

        for (size_t i = 0; i < b->n; i++)
                cap += b->items[i].len + 64;
        s = malloc(cap);
        if (!s)
                return NULL;
        if (lane != LANE_ALERTS)
                len += (size_t)snprintf(s, cap, "{\"gateway\":\"%s\",\"items\":[", m->opt.gateway_id);
        for (size_t i = 0; i < b->n; i++) {
                const OutboxItem *it = &b->items[i];
                bool empty = it->len < 2 || it->body[0] != '{' || it->body[1] == '}';
                size_t start = len;

                if (notice) {
                        /* The service learns which seq it will not get, and why. */
                        len += (size_t)snprintf(s + len, cap - len,
                                                "{\"seq\":%llu,\"error\":\"too_large\",\"bytes\":%zu}",
                                                (unsigned long long)it->seq, it->len);
                } else {
                        len += (size_t)snprintf(s + len, cap - len, "%s{\"seq\":%llu%s", i ? "," : "",
                                                (unsigned long long)it->seq, empty ? "}" : ",");
                        if (!empty) {
                                memcpy(s + len, it->body + 1, it->len - 1);
                                len += it->len - 1;
                        }
                }
                if (n > 0 && len + tail > max_len) {
                        len = start;
                        break;
                }
                n++;
                if (notice)
                        break;
        }
        if (lane != LANE_ALERTS)
                len += (size_t)snprintf(s + len, cap - len, "]}");
        s[len] = '\0';
        *ret_n = n;
        *ret_len = len;
        return s;
}

static bool window_open(const Mqtt *m, Lane lane)
{
        if (lane == LANE_ALERTS)
                return m->alerts_inflight < ALERTS_MAX_INFLIGHT;
        return m->batches_inflight < m->opt.max_inflight;
}

static int inflight_add(Mqtt *m, Lane lane, int mid, const OutboxBatch *b, size_t n, size_t bytes)
{
        Inflight *f;

        if (GREEDY_REALLOC(m->inflight, m->cap_inflight, m->n_inflight + 1, 32) < 0)
                return -ENOMEM;
        f = &m->inflight[m->n_inflight];
        *f = (Inflight){
            .mid = mid, .lane = lane, .n = n, .bytes = bytes, .seqs = malloc(n * sizeof(uint64_t))};
        if (!f->seqs)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++)
                f->seqs[i] = b->items[i].seq;
        m->n_inflight++;
        m->lanes[lane].inflight++;
        if (lane == LANE_ALERTS)
                m->alerts_inflight++;
        else
                m->batches_inflight++;
        return 0;
}

/* The broker said a payload of this size is too large (a PUBACK or DISCONNECT "packet too large", or
 * libmosquitto by the announced maximum): batches shrink to half of it, and a single item at least
 * this large is not tried again. Kept across connections: a broker that only closes the connection
 * would otherwise be sent the same message forever. */
static void learn_too_large(Mqtt *m, size_t bytes)
{
        if (bytes < m->refused_min)
                m->refused_min = bytes;
        if (bytes / 2 < m->payload_cap)
                m->payload_cap = bytes / 2;
}

static int send_batch(Mqtt *m, Lane lane)
{
        LaneState *ls = &m->lanes[lane];
        const char *topic = m->topic_lane[lane];
        OutboxBatch b = {};
        size_t limit = announced_payload_max(m, topic), len, n;
        bool notice = false, notice_refused = false;
        char *payload;
        int mid = 0, r;

        r = outbox_fetch(m->outbox, lane, ls->cursor, lane == LANE_ALERTS ? 1 : m->opt.batch_max,
                         MIN(MIN((size_t)BATCH_MAX_BYTES, m->payload_cap), limit), &b);
        if (r < 0) {
                logf_(m, LOG_ERR, "Failed to read the outbox: %s",
                      outbox_last_error(m->outbox) ?: strerror(-r));
                return r;
        }
        if (b.n == 0) {
                outbox_batch_done(&b);
                return 0;
        }
        for (;;) {
                payload = build_payload(m, lane, &b, MIN(limit, m->payload_cap), notice, &n, &len);
                if (!payload) {
                        outbox_batch_done(&b);
                        return -ENOMEM;
                }
                if (!notice && n == 1 && (len > limit || len >= m->refused_min)) {
                        /* This item alone is larger than the broker takes: it would block its lane
                         * forever. A notice with its seq goes in its place. */
                        m->too_large++;
                        logf_(m, LOG_ERR,
                              "Item seq %llu of %s (%zu bytes) is too large for the broker%s; sending a "
                              "notice instead",
                              (unsigned long long)b.items[0].seq, lane_name(lane), b.items[0].len,
                              m->max_packet ? "'s maximum packet size" : "");
                        free(payload);
                        notice = true;
                        continue;
                }
                if (notice && (len > limit || notice_refused)) {
                        /* Not even the notice fits: the item cannot be delivered to this broker at all. */
                        logf_(m, LOG_ERR,
                              "Dropping %s item seq %llu: not even a notice of it fits the broker's maximum "
                              "packet size",
                              lane_name(lane), (unsigned long long)b.items[0].seq);
                        free(payload);
                        (void)outbox_ack(m->outbox, &b.items[0].seq, 1);
                        ls->cursor = b.items[0].seq;
                        outbox_batch_done(&b);
                        return 1;
                }
                r = publish(m, &mid, topic, payload, len, false);
                free(payload);
                if (r == -EMSGSIZE) {
                        /* libmosquitto measured more than we did: learn from it and build again (a
                         * notice that does not fit ends above). */
                        learn_too_large(m, len);
                        notice_refused = notice;
                        continue;
                }
                break;
        }
        if (r < 0) {
                outbox_batch_done(&b);
                return r;
        }
        r = inflight_add(m, lane, mid, &b, n, len);
        if (r < 0) {
                /* Sent, but we cannot wait for its PUBACK: the items go again on the next connection. */
                outbox_batch_done(&b);
                return r;
        }
        ls->cursor = b.items[n - 1].seq;
        outbox_batch_done(&b);
        return 1;
}

/* A lane whose messages the broker refused waits for its back-off, and then for its PUBACKs still in
 * flight, before it sends the refused items again; until then, lower lanes go on. */
static bool lane_ready(Mqtt *m, Lane lane)
{
        LaneState *ls = &m->lanes[lane];

        if (ls->retry_from == 0)
                return true;
        if (!ls->retry_due || ls->inflight > 0)
                return false;
        ls->cursor = ls->retry_from - 1;
        ls->retry_from = 0;
        ls->retry_due = false;
        return true;
}

static void pump(Mqtt *m)
{
        /* At shutdown, what is committed still goes out until the deadline or the final status. */
        if (!m->connected || m->drain_expired || m->final_status_mid != 0)
                return;
        /* Lanes in priority order: a lower lane waits while a higher one has items and no room. */
        for (Lane lane = 0; lane < _LANE_MAX; lane++) {
                int r = 1;
                if (!lane_ready(m, lane))
                        continue;
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

static int on_lane_retry(sd_event_source *s, uint64_t usec, void *userdata)
{
        Mqtt *m = userdata;
        for (Lane l = 0; l < _LANE_MAX; l++)
                if (m->lanes[l].retry_timer == s)
                        m->lanes[l].retry_due = true;
        mqtt_kick(m);
        return 0;
}

/* The broker refused a message of lane f->lane: its items are sent again after a back-off. */
static void lane_refused(Mqtt *m, const Inflight *f, int reason)
{
        LaneState *ls = &m->lanes[f->lane];
        uint64_t delay;
        int r;

        m->refused += f->n;
        if (!ls->refusing) {
                ls->refusing = true;
                logf_(m, LOG_ERR,
                      "Broker refused a %s message (%zu items): %s; sending refused %s again with back-off",
                      lane_name(f->lane), f->n, mosquitto_reason_string(reason), lane_name(f->lane));
        }
        if (ls->retry_from == 0 || f->seqs[0] < ls->retry_from)
                ls->retry_from = f->seqs[0];
        if (reason == MQTT_RC_PACKET_TOO_LARGE) {
                /* Smaller messages will do: no need to wait. */
                learn_too_large(m, f->bytes);
                ls->retry_due = true;
                return;
        }
        if (ls->retry_due || sd_event_source_get_enabled(ls->retry_timer, NULL) > 0)
                return; /* a retry is already on its way */
        delay = backoff_next(&ls->backoff, arc4random());
        if (ls->retry_timer) {
                r = sd_event_source_set_time_relative(ls->retry_timer, delay);
                if (r >= 0)
                        r = sd_event_source_set_enabled(ls->retry_timer, SD_EVENT_ONESHOT);
        } else
                r = sd_event_add_time_relative(m->event, &ls->retry_timer, CLOCK_MONOTONIC, delay, 0,
                                               on_lane_retry, m);
        if (r < 0) {
                /* Without a timer, retry at once rather than hold the items until the next connection. */
                logf_(m, LOG_ERR, "Failed to schedule a retry of refused %s: %s", lane_name(f->lane),
                      strerror(-r));
                ls->retry_due = true;
        }
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
                if (final &&
                    publish(m, &m->final_status_mid, m->topic_status, final, strlen(final), true) == 0) {
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

static void on_connect(struct mosquitto *mosq, void *userdata, int rc, int flags,
                       const mosquitto_property *props)
{
        Mqtt *m = userdata;
        uint32_t max_packet = 0;
        int r;

        if (rc != 0) {
                const char *why = m->protocol == MQTT_PROTOCOL_V5 ? mosquitto_reason_string(rc)
                                                                  : mosquitto_connack_string(rc);
                if (m->protocol == MQTT_PROTOCOL_V5 &&
                    (rc == MQTT_RC_UNSUPPORTED_PROTOCOL_VERSION || rc == 1)) {
                        logf_(m, LOG_NOTICE, "Broker does not speak MQTT v5, falling back to v3.1.1");
                        m->protocol = MQTT_PROTOCOL_V311;
                        session_detach(m);
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
        (void)mosquitto_property_read_int32(props, MQTT_PROP_MAXIMUM_PACKET_SIZE, &max_packet, false);
        m->max_packet = max_packet;
        logf_(m, LOG_INFO, "Connected to broker %s:%u (MQTT %s%s%s)", m->opt.host, m->opt.port,
              m->protocol == MQTT_PROTOCOL_V5 ? "v5" : "v3.1.1", m->opt.tls ? ", TLS" : "",
              flags & 1 ? ", session resumed" : "");
        if (max_packet)
                logf_(m, LOG_INFO, "Broker's maximum packet size: %u bytes", max_packet);

        /* Everything not acknowledged goes again, from the store: acks first, so none is resent needlessly.
         */
        (void)outbox_commit(m->outbox);
        for (Lane l = 0; l < _LANE_MAX; l++)
                m->lanes[l].cursor = 0;

        /* Subscribe before the online status: the broker handles both in order, so whoever sees
         * "online" and sends a command at once reaches us even on the session's first connection. */
        r = mosquitto_subscribe_v5(mosq, NULL, m->topic_cmd, 1, 0, NULL);
        if (r != MOSQ_ERR_SUCCESS)
                logf_(m, LOG_WARNING, "Failed to subscribe to %s: %s", m->topic_cmd, mosquitto_strerror(r));
        (void)mqtt_publish_status(m);
        if (m->cb.state)
                m->cb.state(m->cb.userdata, true);
        mqtt_kick(m);
}

static void on_disconnect(struct mosquitto *mosq, void *userdata, int rc, const mosquitto_property *props)
{
        Mqtt *m = userdata;

        if (m->stopping) {
                m->connected = false;
                session_detach(m);
                finish_stop(m);
                return;
        }
        if (rc == MQTT_RC_PACKET_TOO_LARGE && m->n_inflight > 0) {
                /* The broker hung up on a message too large, without saying which: the largest one
                 * in flight is at least that large. */
                size_t largest = 0;
                for (size_t i = 0; i < m->n_inflight; i++)
                        largest = MAX(largest, m->inflight[i].bytes);
                logf_(m, LOG_WARNING,
                      "Broker closed the connection: packet too large (largest in flight: %zu bytes)",
                      largest);
                learn_too_large(m, largest);
        }
        /* libmosquitto 2.0.11's strerror has no text for its keepalive timeout ("Unknown error"). */
        session_lost(m, rc == MOSQ_ERR_SUCCESS ? "closed"
                        : rc == MOSQ_ERR_KEEPALIVE
                            ? "no answer within the keepalive (the broker or the path is silent)"
                        : rc >= 0x80 ? mosquitto_reason_string(rc)
                                     : mosquitto_strerror(rc));
}

static void on_publish(struct mosquitto *mosq, void *userdata, int mid, int reason,
                       const mosquitto_property *props)
{
        Mqtt *m = userdata;

        if (m->stopping && m->final_status_mid != 0 && mid == m->final_status_mid)
                m->final_status_acked = true;
        for (size_t i = 0; i < m->n_inflight; i++) {
                Inflight *f = &m->inflight[i];
                LaneState *ls = &m->lanes[f->lane];
                if (f->mid != mid)
                        continue;
                /* 0x10 "no matching subscribers" is a success; 0x80 and up are refusals (not
                 * authorised, quota exceeded, too large): the items stay in the outbox and go again. */
                if (reason >= 0x80)
                        lane_refused(m, f, reason);
                else {
                        if (ls->refusing) {
                                logf_(m, LOG_NOTICE, "Broker accepts %s messages again", lane_name(f->lane));
                                ls->refusing = false;
                        }
                        backoff_reset(&ls->backoff);
                        (void)outbox_ack(m->outbox, f->seqs, f->n);
                        m->published += f->n;
                        if (m->cb.acked)
                                m->cb.acked(m->cb.userdata, f->lane, f->seqs, f->n);
                }
                ls->inflight--;
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
                m->cb.command(m->cb.userdata, name, msg->payload,
                              (size_t)(msg->payloadlen > 0 ? msg->payloadlen : 0));
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

/* After any call into libmosquitto, the session may be gone (on_disconnect ran session_lost): then
 * the caller returns without touching its event source. */
static void loop_result(Mqtt *m, int rc)
{
        if (!m->live)
                return;
        if (rc != MOSQ_ERR_SUCCESS) {
                if (m->stopping) {
                        session_detach(m);
                        finish_stop(m);
                } else
                        session_lost(m, rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc));
                return;
        }
        update_io(m);
}

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
        Mqtt *m = userdata;
        int rc = MOSQ_ERR_SUCCESS;

        if (revents & (EPOLLIN | EPOLLERR | EPOLLHUP))
                rc = mosquitto_loop_read(m->mosq, 100);
        if (rc == MOSQ_ERR_SUCCESS && m->live && (revents & EPOLLOUT))
                rc = mosquitto_loop_write(m->mosq, 100);
        if (rc == MOSQ_ERR_SUCCESS && m->live)
                rc = mosquitto_loop_misc(m->mosq);
        loop_result(m, rc);
        return 0;
}

static int on_misc_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
        Mqtt *m = userdata;

        loop_result(m, mosquitto_loop_misc(m->mosq));
        if (!m->live)
                return 0; /* the keepalive check gave the connection up: s is no longer ours */
        (void)sd_event_source_set_time_relative(s, (uint64_t)m->opt.keepalive_sec * 1000000 / 4);
        (void)sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
        return 0;
}

static int on_connect_timeout(sd_event_source *s, uint64_t usec, void *userdata)
{
        Mqtt *m = userdata;
        session_lost(m, "timed out");
        return 0;
}

/* The client's socket is there: drive it from the loop. */
static int session_attach(Mqtt *m)
{
        int r;

        r = sd_event_add_io(m->event, &m->io, mosquitto_socket(m->mosq), EPOLLIN | EPOLLOUT, on_io, m);
        if (r >= 0)
                r = sd_event_add_time_relative(m->event, &m->misc_timer, CLOCK_MONOTONIC,
                                               (uint64_t)m->opt.keepalive_sec * 1000000 / 4, 0,
                                               on_misc_timer, m);
        if (r < 0)
                session_lost(m, strerror(-r));
        return r;
}

/* MQTT v5 CONNECT properties (the session expiry) can only go through libmosquitto's blocking
 * connect, whose TCP connect would stall the loop for minutes on a path that drops packets. So a
 * non-blocking TCP connect to the broker comes first; once that succeeded, the path is there and the
 * real connection is made at once. */
static int probe_next(Mqtt *m);

static void connect_v5(Mqtt *m)
{
        mosquitto_property *props = NULL;
        int rc;

        probe_close(m);
        rc = mosquitto_property_add_int32(&props, MQTT_PROP_SESSION_EXPIRY_INTERVAL, SESSION_EXPIRY_SEC);
        if (rc == MOSQ_ERR_SUCCESS)
                rc = mosquitto_connect_bind_v5(m->mosq, m->opt.host, m->opt.port, (int)m->opt.keepalive_sec,
                                               NULL, props);
        mosquitto_property_free_all(&props);
        if (rc != MOSQ_ERR_SUCCESS) {
                session_lost(m, rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc));
                return;
        }
        (void)session_attach(m);
}

static int on_probe(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
        Mqtt *m = userdata;
        int err = 0;
        socklen_t len = sizeof err;

        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
                err = errno;
        if (err == 0) {
                connect_v5(m);
                return 0;
        }
        m->probe_io = sd_event_source_disable_unref(m->probe_io);
        close(m->probe_fd);
        m->probe_fd = -EBADF;
        m->probe_cur = m->probe_cur->ai_next;
        if (!m->probe_cur) {
                session_lost(m, strerror(err));
                return 0;
        }
        (void)probe_next(m);
        return 0;
}

static int probe_next(Mqtt *m)
{
        int r;

        for (; m->probe_cur; m->probe_cur = m->probe_cur->ai_next) {
                const struct addrinfo *ai = m->probe_cur;
                int fd =
                    socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
                if (fd < 0)
                        continue;
                if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0 && errno != EINPROGRESS) {
                        close(fd);
                        continue;
                }
                m->probe_fd = fd;
                r = sd_event_add_io(m->event, &m->probe_io, fd, EPOLLOUT, on_probe, m);
                if (r < 0) {
                        session_lost(m, strerror(-r));
                        return r;
                }
                return 0;
        }
        session_lost(m, errno ? strerror(errno) : "no address");
        return 0;
}

static int probe_start(Mqtt *m)
{
        struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_ADDRCONFIG};
        char port[8];
        int r;

        snprintf(port, sizeof port, "%u", m->opt.port);
        /* Name resolution blocks, as in libmosquitto's own connect (see docs/uplink.md). */
        r = getaddrinfo(m->opt.host, port, &hints, &m->probe_ai);
        if (r != 0) {
                m->probe_ai = NULL;
                session_lost(m, gai_strerror(r));
                return 0;
        }
        m->probe_cur = m->probe_ai;
        errno = 0;
        return probe_next(m);
}

/* The trust store when CAFile= is not set: OpenSSL's default directory (SSL_CERT_DIR when set), and
 * libmosquitto adds OpenSSL's default file and directory through MOSQ_OPT_TLS_USE_OS_CERTS.
 * libmosquitto refuses a NULL CA file together with a NULL CA path, so the directory is named. */
static const char *system_ca_dir(void)
{
        const char *d = secure_getenv(X509_get_default_cert_dir_env());
        return d && d[0] ? d : X509_get_default_cert_dir();
}

static int session_open(Mqtt *m)
{
        const MqttOptions *o = &m->opt;
        int rc, r;

        /* A persistent session: the broker keeps our subscription and queues commands for us while
         * we are away. The client is still new for every attempt: what it had in flight goes again
         * from the outbox, not from libmosquitto's memory. */
        m->mosq = mosquitto_new(o->gateway_id, false, m);
        if (!m->mosq)
                return -ENOMEM;
        m->live = true;
        m->max_packet = 0;
        mosquitto_int_option(m->mosq, MOSQ_OPT_PROTOCOL_VERSION, m->protocol);
        mosquitto_int_option(m->mosq, MOSQ_OPT_TCP_NODELAY, 1); /* an alarm is one small packet: no Nagle */
        mosquitto_int_option(m->mosq, MOSQ_OPT_SEND_MAXIMUM,
                             65535); /* our own window limits what is in flight */
        mosquitto_connect_v5_callback_set(m->mosq, on_connect);
        mosquitto_disconnect_v5_callback_set(m->mosq, on_disconnect);
        mosquitto_publish_v5_callback_set(m->mosq, on_publish);
        mosquitto_message_v5_callback_set(m->mosq, on_message);
        mosquitto_log_callback_set(m->mosq, on_log);

        rc = mosquitto_will_set(m->mosq, m->topic_status, (int)strlen(o->will_payload), o->will_payload, 1,
                                true);
        if (rc == MOSQ_ERR_SUCCESS && o->username)
                rc = mosquitto_username_pw_set(m->mosq, o->username, o->password);
        if (rc == MOSQ_ERR_SUCCESS && o->tls) {
                const char *ca_dir = NULL;
                if (!o->ca_file) {
                        mosquitto_int_option(m->mosq, MOSQ_OPT_TLS_USE_OS_CERTS, 1);
                        ca_dir = system_ca_dir();
                }
                rc = mosquitto_tls_set(m->mosq, o->ca_file, ca_dir, o->cert_file, o->key_file, NULL);
                if (rc == MOSQ_ERR_SUCCESS) /* verify the server's certificate and name: always */
                        rc = mosquitto_tls_opts_set(m->mosq, 1, NULL, NULL);
                if (rc != MOSQ_ERR_SUCCESS) {
                        logf_(m, LOG_ERR, "Failed to set up TLS (CAFile=%s CertFile=%s KeyFile=%s): %s",
                              o->ca_file ?: ca_dir, o->cert_file ?: "-", o->key_file ?: "-",
                              mosquitto_strerror(rc));
                        session_lost(m, "TLS set-up failed");
                        return -EINVAL;
                }
        }
        if (rc != MOSQ_ERR_SUCCESS) {
                session_lost(m, mosquitto_strerror(rc));
                return -EINVAL;
        }

        r = sd_event_add_time_relative(m->event, &m->connect_timer, CLOCK_MONOTONIC, CONNECT_TIMEOUT_USEC, 0,
                                       on_connect_timeout, m);
        if (r < 0) {
                session_lost(m, strerror(-r));
                return r;
        }
        if (m->protocol == MQTT_PROTOCOL_V5)
                return probe_start(m);

        /* v3.1.1 has no CONNECT properties: the non-blocking connect does it all. Name resolution in
         * here blocks; the broker is normally an IP or a name the local resolver caches. */
        rc = mosquitto_connect_async(m->mosq, o->host, o->port, (int)o->keepalive_sec);
        if (rc != MOSQ_ERR_SUCCESS) {
                session_lost(m, rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc));
                return 0;
        }
        (void)session_attach(m);
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
        /* A refusal (not authorised, quota) is cheap for the broker; a minute at most between tries. */
        for (Lane l = 0; l < _LANE_MAX; l++)
                m->lanes[l].backoff = (Backoff){.base_usec = 1000000, .cap_usec = 60ULL * 1000000};
        m->probe_fd = -EBADF;
        m->payload_cap = m->refused_min = SIZE_MAX;
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
        session_detach(m);
        m->protocol = MQTT_PROTOCOL_V5;
        m->payload_cap = m->refused_min = SIZE_MAX; /* perhaps another broker */
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
                        logf_(m, LOG_WARNING,
                              "Shutdown: %zu messages still unacknowledged; they stay in the outbox",
                              m->n_inflight);
                inflight_clear(m);
                maybe_finish_shutdown(m);
                if (m->stopped)
                        return 0; /* finish_stop freed s */
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
        r = sd_event_add_time_relative(m->event, &m->stop_timer, CLOCK_MONOTONIC, timeout_usec, 0,
                                       on_stop_timer, m);
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

uint64_t mqtt_refused(const Mqtt *m)
{
        return m->refused;
}

uint64_t mqtt_too_large(const Mqtt *m)
{
        return m->too_large;
}
