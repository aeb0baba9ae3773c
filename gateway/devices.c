#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "common/alloc-util.h"
#include "common/log.h"
#include "common/mac.h"
#include "common/macro.h"
#include "common/sqlite.h"
#include "gateway/devices.h"

#define FLUSH_DELAY_USEC (1000 * 1000)

struct Devices {
        sd_event *event;
        sd_event_source *flush_timer;
        sqlite3 *db;
        Device *devs;
        bool *dirty;
        size_t n, cap;
        char *replaced;      /* where a corrupt store was moved at open */
        char *memory_reason; /* the file could not be opened (a full or failing disk): why; counters in
                                memory */
        bool flush_failing;  /* the last flush failed: logged once, until one works */
};

/* sensors.db's schema, by version (PRAGMA user_version). Version 1 is the store as every release
 * up to 2939c3e made it, without a version: its statement is idempotent, so such a store is
 * adopted as version 1 with its table and rows unchanged. A later version is one more entry. */
static const SqliteMigration migrations[] = {
    {1, "CREATE TABLE IF NOT EXISTS bthome_counter(address TEXT PRIMARY KEY,"
        "                                          counter INTEGER NOT NULL);"},
};

static const SqliteOptions store_options = {
    .migrations = migrations,
    .n_migrations = ELEMENTSOF(migrations),
    /* A truncated or damaged file often opens fine and fails only where it is damaged. */
    .quick_check = true,
};

int devices_new(sd_event *e, const char *path, Devices **ret, char **reterr_error)
{
        _cleanup_free_ char *error = NULL;
        Devices *d = calloc(1, sizeof *d);
        int r;

        if (!d)
                return -ENOMEM;
        d->event = sd_event_ref(e);
        r = sqlite_open_store(path, &store_options, &d->db, &error);
        if (r == -EBADMSG) {
                /* The replay counters are lost with it; a store that keeps the gateway from starting
                 * would cost the home its alarm path. Keep the file for analysis, start afresh. */
                r = sqlite_move_corrupt(path, &d->replaced);
                if (r < 0) {
                        if (reterr_error &&
                            asprintf(reterr_error, "%s is corrupt and could not be moved aside: %s", path,
                                     strerror(-r)) < 0)
                                *reterr_error = NULL;
                        devices_free(d);
                        return r;
                }
                error = mfree(error);
                r = sqlite_open_store(path, &store_options, &d->db, &error);
        }
        if (r < 0) {
                _cleanup_free_ char *dir = strdup(path);
                if (r == -EPROTONOSUPPORT || (dir && sqlite_error_is_no_room(r, dirname(dir)))) {
                        /* A full, failing or read-only disk, or a store of a newer homecare-gw (left as it
                         * is for it): the counters live in memory for this run (a replayed frame is still
                         * refused until the next restart), and the gateway runs. */
                        d->memory_reason = TAKE_PTR(error) ?: strdup(strerror(-r));
                        r = sqlite_open_store(":memory:", &store_options, &d->db, &error);
                }
        }
        if (r < 0) {
                if (reterr_error && asprintf(reterr_error, "%s: %s", path, error ?: strerror(-r)) < 0)
                        *reterr_error = NULL;
                devices_free(d);
                return r;
        }
        *ret = d;
        return 0;
}

const char *devices_replaced(const Devices *d)
{
        return d->replaced;
}

const char *devices_memory_reason(const Devices *d)
{
        return d->memory_reason;
}

Devices *devices_free(Devices *d)
{
        if (!d)
                return NULL;
        if (d->db)
                (void)devices_flush(d);
        sd_event_source_disable_unref(d->flush_timer);
        sqlite3_close(d->db);
        sd_event_unref(d->event);
        free(d->devs);
        free(d->dirty);
        free(d->replaced);
        free(d->memory_reason);
        free(d);
        return NULL;
}

static int load_counter(Devices *d, Device *dev)
{
        sqlite3_stmt *st;
        char addr[MAC_STRING_MAX];
        int rc;

        format_mac(dev->address, addr);
        rc = sqlite3_prepare_v2(d->db, "SELECT counter FROM bthome_counter WHERE address=?1", -1, &st, NULL);
        if (rc != SQLITE_OK)
                return -EIO;
        sqlite3_bind_text(st, 1, addr, -1, SQLITE_TRANSIENT);
        if (sqlite3_step(st) == SQLITE_ROW) {
                dev->bthome.has_counter = true;
                dev->bthome.counter = (uint32_t)sqlite3_column_int64(st, 0);
        }
        sqlite3_finalize(st);
        return 0;
}

int devices_add(Devices *d, const char *id, Profile p, const uint8_t address[6], const uint8_t *key)
{
        Device *dev = devices_find(d, id);

        if (dev) {
                /* Known: unchanged is -EEXIST; a new address, key or type under the same id (a sensor
                 * replaced, a reload) takes over the entry with the decoder state of the new device. */
                if (dev->profile == p && memcmp(dev->address, address, 6) == 0 && dev->has_key == !!key &&
                    (!key || memcmp(dev->key, key, 16) == 0))
                        return -EEXIST;
                dev->profile = p;
                memcpy(dev->address, address, 6);
                dev->has_key = key;
                if (key)
                        memcpy(dev->key, key, 16);
                dev->bthome = (BthomeState){0};
                dev->last_frame = 0;
                dev->n_recent = 0;
                return key ? load_counter(d, dev) : 0;
        }
        if (d->n == d->cap) {
                size_t cap = d->cap, cap_dirty = d->cap;
                /* Both grow to the same room; d->cap moves only when both have it. */
                if (GREEDY_REALLOC(d->devs, cap, d->n + 1, 16) < 0 ||
                    GREEDY_REALLOC(d->dirty, cap_dirty, cap, 16) < 0)
                        return -ENOMEM;
                d->cap = cap;
        }
        dev = &d->devs[d->n];
        *dev = (Device){.profile = p};
        snprintf(dev->id, sizeof dev->id, "%s", id);
        memcpy(dev->address, address, 6);
        if (key) {
                dev->has_key = true;
                memcpy(dev->key, key, 16);
        }
        d->dirty[d->n] = false;
        d->n++;
        return key ? load_counter(d, dev) : 0;
}

Device *devices_find(Devices *d, const char *id)
{
        for (size_t i = 0; i < d->n; i++)
                if (streq(d->devs[i].id, id))
                        return &d->devs[i];
        return NULL;
}

size_t devices_count(const Devices *d)
{
        return d->n;
}

Device *devices_at(Devices *d, size_t i)
{
        return i < d->n ? &d->devs[i] : NULL;
}

int devices_flush(Devices *d)
{
        sqlite3_stmt *st = NULL;
        int rc = SQLITE_OK;
        bool any = false;

        for (size_t i = 0; i < d->n; i++)
                any |= d->dirty[i];
        if (!any)
                return 0;
        rc = sqlite3_exec(d->db, "BEGIN", NULL, NULL, NULL);
        if (rc == SQLITE_OK)
                rc = sqlite3_prepare_v2(
                    d->db, "INSERT OR REPLACE INTO bthome_counter(address, counter) VALUES(?1, ?2)", -1, &st,
                    NULL);
        for (size_t i = 0; rc == SQLITE_OK && i < d->n; i++) {
                char addr[MAC_STRING_MAX];
                if (!d->dirty[i])
                        continue;
                format_mac(d->devs[i].address, addr);
                sqlite3_bind_text(st, 1, addr, -1, SQLITE_TRANSIENT);
                sqlite3_bind_int64(st, 2, d->devs[i].bthome.counter);
                rc = sqlite3_step(st);
                if (rc != SQLITE_DONE)
                        break; /* not reset: sqlite3_errmsg() keeps this statement's error */
                rc = SQLITE_OK;
                sqlite3_reset(st);
        }
        if (rc == SQLITE_OK)
                rc = sqlite3_exec(d->db, "COMMIT", NULL, NULL, NULL);
        if (rc != SQLITE_OK) {
                /* The failing statement's message, taken before the ROLLBACK overwrites it (a failed
                 * COMMIT on a full disk has rolled back already: "no transaction is active"). */
                _cleanup_free_ char *msg = strdup(sqlite3_errmsg(d->db));
                sqlite3_finalize(st);
                (void)sqlite3_exec(d->db, "ROLLBACK", NULL, NULL, NULL);
                /* Once per episode: the flush is retried every second while the disk is full. */
                if (!d->flush_failing)
                        log_error_errno(EIO, "Failed to store BTHome counters, will retry quietly: %s",
                                        msg ?: sqlite3_errstr(rc));
                d->flush_failing = true;
                return -EIO;
        }
        sqlite3_finalize(st);
        if (d->flush_failing)
                log_notice("Storing BTHome counters works again.");
        d->flush_failing = false;
        memset(d->dirty, 0, d->n * sizeof *d->dirty);
        return 0;
}

static int on_flush_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
        (void)devices_flush(userdata);
        return 0;
}

/* The profile of a measurement characteristic, for a GATT device (a PLX device has two). */
static Profile profile_for(const Device *dev, uint16_t uuid16)
{
        if (uuid16 == 0 || dev->profile == PROFILE_BTHOME)
                return dev->profile;
        for (Profile p = 0; p < _PROFILE_MAX; p++)
                if (p != PROFILE_BTHOME && profile_uuid16(p) == uuid16)
                        return p;
        return dev->profile;
}

static uint64_t fnv1a(const uint8_t *buf, size_t len, uint16_t uuid16)
{
        uint64_t h = 1469598103934665603ULL ^ uuid16;
        for (size_t i = 0; i < len; i++)
                h = (h ^ buf[i]) * 1099511628211ULL;
        return h;
}

/* A stored measurement sent again: same bytes and a device time stamp. */
static bool seen_before(Device *dev, uint64_t h)
{
        for (size_t i = 0; i < ELEMENTSOF(dev->recent); i++)
                if (dev->recent[i] == h)
                        return true;
        dev->recent[dev->n_recent++ % ELEMENTSOF(dev->recent)] = h;
        return false;
}

int devices_decode(Devices *d, const char *id, uint16_t uuid16, const uint8_t *buf, size_t len,
                   const DecodeContext *ctx, Decoded *out)
{
        Device *dev = devices_find(d, id);
        uint32_t before;
        int r;

        if (!dev) {
                decoded_reset(out);
                return decoded_fail(out, -ENOENT, "unknown device '%s'", id);
        }
        before = dev->bthome.counter;
        /* bluetoothd reports an advertisement again and again while it stands: an identical copy of
         * the last frame accepted is the device repeating itself, not a replay. */
        if (dev->profile == PROFILE_BTHOME && dev->has_key && dev->last_frame == fnv1a(buf, len, 0) &&
            dev->frames > 0) {
                decoded_reset(out);
                out->duplicate = true;
                dev->duplicates++;
                return 0;
        }
        if (dev->profile == PROFILE_BTHOME)
                r = decode_bthome(buf, len, dev->has_key ? dev->key : NULL, dev->address, ctx, &dev->bthome,
                                  out);
        else
                r = decode_characteristic(profile_for(dev, uuid16), buf, len, ctx, out);
        dev->frames++;
        if (r < 0) {
                dev->rejected++;
                return r;
        }
        dev->last_seen_usec = ctx->now_usec;
        if (dev->profile != PROFILE_BTHOME && out->n_readings > 0 &&
            out->readings[0].time_quality == TIME_DEVICE && seen_before(dev, fnv1a(buf, len, uuid16))) {
                out->n_readings = out->n_events = 0;
                out->duplicate = true;
        }
        if (out->duplicate)
                dev->duplicates++;
        for (size_t i = 0; i < out->n_readings; i++) {
                const Reading *rd = &out->readings[i];
                if (rd->absent)
                        continue;
                if (rd->metric == METRIC_BATTERY) {
                        dev->has_battery = true;
                        dev->battery = rd->value;
                } else {
                        snprintf(dev->last_metric, sizeof dev->last_metric, "%s", metric_name(rd->metric));
                        dev->last_is_event = false;
                        dev->last_value = rd->value;
                }
        }
        if (out->n_events > 0) {
                const Event *e = &out->events[out->n_events - 1];
                snprintf(dev->last_metric, sizeof dev->last_metric, "%s", event_kind_name(e->kind));
                dev->last_is_event = true;
                dev->last_value = e->value;
        }
        for (size_t i = 0; i < out->n_readings; i++)
                memcpy(out->readings[i].sensor, dev->id, sizeof dev->id);
        for (size_t i = 0; i < out->n_events; i++)
                memcpy(out->events[i].sensor, dev->id, sizeof dev->id);
        if (dev->profile == PROFILE_BTHOME)
                dev->last_frame = fnv1a(buf, len, 0);
        if (dev->has_key && dev->bthome.counter != before) {
                d->dirty[dev - d->devs] = true;
                if (!d->flush_timer)
                        r = sd_event_add_time_relative(d->event, &d->flush_timer, CLOCK_MONOTONIC,
                                                       FLUSH_DELAY_USEC, 0, on_flush_timer, d);
                else if (sd_event_source_get_enabled(d->flush_timer, NULL) == 0) {
                        r = sd_event_source_set_time_relative(d->flush_timer, FLUSH_DELAY_USEC);
                        if (r >= 0)
                                r = sd_event_source_set_enabled(d->flush_timer, SD_EVENT_ONESHOT);
                }
                if (r < 0)
                        (void)devices_flush(d);
        }
        return 0;
}
