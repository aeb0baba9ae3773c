#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/macro.h"
#include "gateway/alert-kind.h"
#include "gateway/alerts.h"
#include "gateway/encode.h"

#define STATE_VERSION 1
/* Ids are reserved in the file this many at a time: one fsync per block, not per alert. */
#define ID_BLOCK 64

struct Alerts {
        char *prefix;
        char *path; /* NULL: in memory */
        bool log;
        alerts_sink_fn sink;
        void *userdata;
        uint64_t next;     /* the next id number to give */
        uint64_t reserved; /* numbers below this may have been given (the file says so) */
        uint64_t minted;
        json_t *state;      /* the rules' durable state, as last saved or loaded */
        bool write_failing; /* the last write of the file failed: logged once, until one works */
};

static int write_atomic(const char *path, const char *text, size_t len)
{
        _cleanup_free_ char *tmp = NULL, *dir = NULL;
        _cleanup_close_ int fd = -EBADF, dfd = -EBADF;
        size_t done = 0;

        if (asprintf(&tmp, "%s.new", path) < 0 || !(dir = strdup(path)))
                return -ENOMEM;
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0)
                return -errno;
        while (done < len) {
                ssize_t n = write(fd, text + done, len - done);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        int r = -errno;
                        (void)unlink(tmp);
                        return r;
                }
                done += (size_t)n;
        }
        if (fsync(fd) < 0) {
                int r = -errno;
                (void)unlink(tmp);
                return r;
        }
        if (rename(tmp, path) < 0) {
                int r = -errno;
                (void)unlink(tmp);
                return r;
        }
        /* The rename itself must reach the disk before we rely on it. */
        dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0)
                (void)fsync(dfd);
        return 0;
}

static int write_state(Alerts *al)
{
        _cleanup_free_ char *text = NULL;
        json_t *root;
        int r;

        if (!al->path)
                return 0;
        root = json_pack("{s:i, s:I}", "version", STATE_VERSION, "next_id", (json_int_t)al->reserved);
        if (!root)
                return log_oom();
        if (al->state && json_object_set(root, "rules", al->state) < 0) {
                json_decref(root);
                return log_oom();
        }
        text = json_dumps(root, JSON_COMPACT);
        json_decref(root);
        if (!text)
                return log_oom();
        r = write_atomic(al->path, text, strlen(text));
        if (r < 0) {
                /* Once per episode: a full disk would otherwise say so at every save (each second). */
                if (!al->write_failing)
                        log_error_errno(r,
                                        "Failed to write the alert state %s, a restart may not resume open "
                                        "alerts; retrying quietly until it works: %m",
                                        al->path);
                al->write_failing = true;
                return r;
        }
        if (al->write_failing)
                log_notice("Writing the alert state %s works again.", al->path);
        al->write_failing = false;
        return 0;
}

typedef enum LoadResult {
        LOAD_OK,
        LOAD_MISSING,
        LOAD_BROKEN,
} LoadResult;

static LoadResult load_state(Alerts *al)
{
        _cleanup_free_ char *broken = NULL;
        json_error_t err;
        json_t *root, *v;

        root = json_load_file(al->path, JSON_REJECT_DUPLICATES, &err);
        if (!root) {
                if (access(al->path, F_OK) < 0 && errno == ENOENT)
                        return LOAD_MISSING;
                goto bad;
        }
        v = json_object_get(root, "version");
        if (!json_is_integer(v) || json_integer_value(v) != STATE_VERSION) {
                snprintf(err.text, sizeof err.text, "unknown version");
                goto bad;
        }
        v = json_object_get(root, "next_id");
        if (!json_is_integer(v) || json_integer_value(v) < 1) {
                snprintf(err.text, sizeof err.text, "no next_id");
                goto bad;
        }
        al->next = al->reserved = (uint64_t)json_integer_value(v);
        v = json_object_get(root, "rules");
        if (json_is_object(v))
                al->state = json_incref(v);
        json_decref(root);
        return LOAD_OK;
bad:
        json_decref(root);
        log_error("The alert state %s is unreadable (%s); it is kept as %s.broken and alert numbers go on "
                  "from %llu.",
                  al->path, err.text, al->path, (unsigned long long)al->next);
        if (asprintf(&broken, "%s.broken", al->path) >= 0)
                (void)rename(al->path, broken);
        return LOAD_BROKEN;
}

int alerts_new(const AlertsOptions *o, Alerts **ret)
{
        Alerts *al;

        assert(o && o->id_prefix && ret);
        al = calloc(1, sizeof *al);
        if (!al)
                return -ENOMEM;
        al->prefix = strdup(o->id_prefix);
        al->path = o->path ? strdup(o->path) : NULL;
        if (!al->prefix || (o->path && !al->path)) {
                alerts_free(al);
                return -ENOMEM;
        }
        al->log = o->log;
        al->sink = o->sink;
        al->userdata = o->userdata;
        /* The floor first: the messages of load_state() say where numbering goes on. */
        al->next = al->reserved = o->id_floor > 1 ? o->id_floor : 1;
        if (al->path) {
                switch (load_state(al)) {
                case LOAD_OK:
                        /* The usual case after the first start: telemetry takes seqs too. Info
                         * only; it matters when the file's reservation was not written (a full
                         * disk), which was logged then. */
                        if (al->next < o->id_floor) {
                                log_info("The alert state %s reserves numbers below %llu only, but the "
                                         "outbox has "
                                         "handed out seqs up to %llu: alert numbers go on from %llu.",
                                         al->path, (unsigned long long)al->next,
                                         (unsigned long long)o->id_floor - 1,
                                         (unsigned long long)o->id_floor);
                                al->next = al->reserved = o->id_floor;
                        }
                        break;
                case LOAD_MISSING:
                        /* Harmless at the first start; otherwise someone removed it. */
                        if (o->id_floor > 1)
                                log_notice(
                                    "The alert state %s is missing, but the outbox has handed out seqs up "
                                    "to %llu: alert numbers go on from %llu.",
                                    al->path, (unsigned long long)o->id_floor - 1,
                                    (unsigned long long)o->id_floor);
                        break;
                case LOAD_BROKEN:
                        break;
                }
        }
        *ret = al;
        return 0;
}

Alerts *alerts_free(Alerts *al)
{
        if (!al)
                return NULL;
        json_decref(al->state);
        free(al->prefix);
        free(al->path);
        free(al);
        return NULL;
}

/* Evidence that is not a JSON array, or is too large to send, becomes a note saying so: the alert
 * goes out whatever its evidence looks like. */
static const char *checked_evidence(const char *evidence, char *note, size_t note_size)
{
        size_t len;
        json_t *j;
        bool ok;

        if (!evidence)
                return NULL;
        len = strlen(evidence);
        if (len > ALERT_EVIDENCE_MAX) {
                snprintf(note, note_size, "[{\"omitted\":\"evidence too large\",\"bytes\":%zu}]", len);
                return note;
        }
        j = json_loadb(evidence, len, 0, NULL);
        ok = json_is_array(j);
        json_decref(j);
        if (ok)
                return evidence;
        snprintf(note, note_size, "[{\"omitted\":\"evidence not valid JSON\",\"bytes\":%zu}]", len);
        return note;
}

int alerts_emit(Alerts *al, Alert *a)
{
        _cleanup_free_ char *body = NULL;
        char note[96];
        const char *orig = a->evidence;
        size_t len;

        if (a->state == ALERT_RAISED) {
                if (al->next >= al->reserved) {
                        /* Reserve before use: after a crash the counter goes on above anything given. */
                        al->reserved = al->next + ID_BLOCK;
                        (void)write_state(al);
                }
                snprintf(a->id, sizeof a->id, "%s-%lld-%llu", al->prefix,
                         (long long)(a->time_usec / 1000000), (unsigned long long)al->next++);
                al->minted++;
        }
        assert(a->id[0]);
        a->evidence = checked_evidence(orig, note, sizeof note);
        body = encode_alert(a, &len);
        a->evidence = orig;
        if (!body)
                return log_oom();
        if (al->log)
                log_notice("Alert %s %s: %s (%s)", a->id, alert_state_name(a->state), a->kind,
                           a->message ?: "");
        if (al->sink)
                al->sink(al->userdata, a, body, len);
        return 0;
}

json_t *alerts_loaded_state(Alerts *al)
{
        return al->state;
}

int alerts_save_state(Alerts *al, json_t *state)
{
        json_t *old = al->state;
        al->state = json_incref(state);
        json_decref(old);
        return write_state(al);
}

uint64_t alerts_minted(const Alerts *al)
{
        return al->minted;
}

void alerts_rules_sink(void *userdata, Alert *a)
{
        (void)alerts_emit(userdata, a);
}

/* The daemon's own critical alerts (not the rules'), raised once and never cleared by the gateway.
 * message may be NULL (after a failed allocation). */
static Alert own_alert(AlertKind kind, const char *patient, const char *message, int64_t now_usec)
{
        return (Alert){.kind = alert_kind_name(kind),
                       .severity = SEVERITY_CRITICAL,
                       .state = ALERT_RAISED,
                       .patient = patient,
                       .time_usec = now_usec,
                       .message = message};
}

int alerts_raise_store_replaced(Alerts *al, const char *patient, const char *store, const char *moved,
                                int64_t now_usec)
{
        _cleanup_free_ char *msg = NULL;
        Alert a;

        log_error("The store %s was corrupt; moved to %s and replaced by an empty one.", store, moved);
        if (asprintf(&msg, "%s was corrupt and was replaced by an empty store; the old file is kept as %s",
                     store, moved) < 0)
                msg = NULL;
        a = own_alert(ALERT_KIND_STORE_REPLACED, patient, msg, now_usec);
        return alerts_emit(al, &a);
}

int alerts_raise_store_unavailable(Alerts *al, const char *patient, const char *store, const char *why,
                                   int64_t now_usec)
{
        _cleanup_free_ char *msg = NULL;
        Alert a;

        /* What to do depends on why: a store made by a newer homecare-gw needs that version back. */
        bool newer = why && strstr(why, "newer homecare-gw");

        log_error(
            "The store %s cannot be opened (%s): running on a store in memory. Alerts still go out; what is "
            "not acknowledged at the next stop is lost. %s",
            store, why,
            newer ? "Install that homecare-gw again (or move the store aside) and restart."
                  : "Free space on the state directory's disk (or replace it) and restart.");
        if (asprintf(
                &msg,
                "%s cannot be opened (%s); the gateway runs on a store in memory until it is restarted %s",
                store, why, newer ? "with the newer homecare-gw" : "with room on its disk") < 0)
                msg = NULL;
        a = own_alert(ALERT_KIND_STORE_UNAVAILABLE, patient, msg, now_usec);
        return alerts_emit(al, &a);
}

int alerts_raise_test_alarm(Alerts *al, const char *message, int64_t now_usec, char *ret_id)
{
        Alert a = own_alert(ALERT_KIND_TEST_ALARM, NULL,
                            message && message[0] ? message : "Test alarm requested", now_usec);
        int r;

        assert(ret_id);
        r = alerts_emit(al, &a);
        memcpy(ret_id, a.id, sizeof a.id);
        return r;
}
