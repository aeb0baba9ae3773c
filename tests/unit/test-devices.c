/* The device registry: frames decoded with each device's profile, key and state; BTHome replay
 * counters kept across restarts in a real SQLite file. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "gateway/cli-decode.h"
#include "gateway/devices.h"
#include "test-files.h"
#include "test.h"

static char dir[] = "/tmp/hcgw-devices-XXXXXX";
static char path[256];
static const DecodeContext ctx = {.now_usec = 1772442000LL * 1000000, .now_quality = TIME_SYNCED};
static Decoded out;
/* counter 0x33221100, 25.06 °C and 50.55 % */
static const char *FRAME = "41 a4 72 66 c9 5f 73 00 11 22 33 78 23 72 14";

static Devices *open_registry(sd_event *e)
{
        Devices *d = NULL;
        uint8_t key[16], mac[6];
        char *err = NULL;
        CHECK(devices_new(e, path, &d, &err) == 0);
        free(err);
        if (!d)
                return NULL;
        parse_key("231d39c1d7cc1ab1aee224cd096db932", key);
        parse_mac("54:48:E6:8F:80:A5", mac);
        CHECK(devices_add(d, "climate", PROFILE_BTHOME, mac, key) == 0);
        CHECK(devices_add(d, "climate", PROFILE_BTHOME, mac, key) == -EEXIST);
        parse_mac("A4:C1:38:10:00:01", mac);
        CHECK(devices_add(d, "cuff", PROFILE_BLOOD_PRESSURE, mac, NULL) == 0);
        return d;
}

static int decode(Devices *d, const char *id, const char *hex)
{
        uint8_t buf[64];
        int n = parse_hex(hex, buf, sizeof buf);
        return devices_decode(d, id, 0, buf, (size_t)n, &ctx, &out);
}

static void test_decode_by_profile_and_id(void)
{
        sd_event *e = NULL;
        Devices *d;

        unlink(path);
        sd_event_new(&e);
        d = open_registry(e);
        CHECK(decode(d, "cuff", "00 79 00 50 00 5D 00") == 0);
        CHECK(out.n_readings == 3 && strcmp(out.readings[0].sensor, "cuff") == 0);
        CHECK(decode(d, "climate", FRAME) == 0);
        CHECK(out.n_readings == 2 && strcmp(out.readings[1].sensor, "climate") == 0);
        CHECK(decode(d, "nobody", "00") == -ENOENT);
        CHECK(decode(d, "cuff", "00 79") == -EBADMSG);
        CHECK(devices_find(d, "cuff")->rejected == 1 && devices_find(d, "cuff")->frames == 2);
        /* A stored, time-stamped measurement sent again is stored once; one without a device time is
         * a new measurement. */
        CHECK(decode(d, "cuff", "02 79 00 50 00 5D 00 EA 07 03 02 08 1F 00") == 0 && out.n_readings == 3);
        CHECK(decode(d, "cuff", "02 79 00 50 00 5D 00 EA 07 03 02 08 1F 00") == 0 && out.n_readings == 0 &&
              out.duplicate);
        CHECK(decode(d, "cuff", "00 79 00 50 00 5D 00") == 0 && out.n_readings == 3);
        CHECK(decode(d, "cuff", "00 79 00 50 00 5D 00") == 0 && out.n_readings == 3);
        /* A downgrade from the device with a key. */
        CHECK(decode(d, "climate", "40 02 CA 09") == -EPROTO);
        devices_free(d);
        sd_event_unref(e);
}

static void test_replay_refused_after_restart(void)
{
        sd_event *e = NULL;
        Devices *d;

        unlink(path);
        sd_event_new(&e);
        d = open_registry(e);
        CHECK(decode(d, "climate", FRAME) == 0);
        /* The device repeating its advertisement (bluetoothd reports each copy): dropped, not a replay. */
        CHECK(decode(d, "climate", FRAME) == 0 && out.duplicate && out.n_readings == 0);
        CHECK(devices_find(d, "climate")->rejected == 0);
        /* A different frame with the same counter is refused (here its MIC no longer matches). */
        CHECK(decode(d, "climate", "41 a4 72 66 c9 5f 73 00 11 22 33 78 23 72 15") == -EPROTO);
        devices_free(d); /* writes the counter */

        d = open_registry(e);
        CHECK(devices_find(d, "climate")->bthome.has_counter);
        CHECK(devices_find(d, "climate")->bthome.counter == 0x33221100);
        CHECK(decode(d, "climate", FRAME) == -EPROTO); /* replay, after a restart */
        CHECK(strstr(out.error, "replayed frame") != NULL);
        devices_free(d);
        sd_event_unref(e);
}

static void test_counter_flushed_by_timer(void)
{
        sd_event *e = NULL;
        Devices *d, *d2;

        unlink(path);
        sd_event_new(&e);
        d = open_registry(e);
        CHECK(decode(d, "climate", FRAME) == 0);
        /* The flush timer is the loop's only source: wait for it with a deadline. */
        CHECK(sd_event_run(e, 5 * 1000 * 1000) > 0);
        /* A second process sees the counter while the first still runs (as after a kill -9). */
        d2 = open_registry(e);
        CHECK(d2 && devices_find(d2, "climate")->bthome.counter == 0x33221100);
        devices_free(d2);
        devices_free(d);
        sd_event_unref(e);
}

/* A flush that fails on a full disk (a small tmpfs, filled) is logged once, with SQLite's own error,
 * however often it is retried, and once when it works again.
 * fails on d9b8a30: one warning per retry, each saying "cannot rollback - no transaction is active"
 * (the ROLLBACK's error), never the disk being full. */
static void test_full_disk_flush_logged_once(void)
{
        char sub[300], db[340], filler[340], buf[4096] = {0}, name[] = "/tmp/hcgw-devices-log-XXXXXX",
                                             log[8192];
        sd_event *e = NULL;
        Devices *d = NULL;
        char *err = NULL;
        int fd, saved;
        ssize_t n;

        snprintf(sub, sizeof sub, "%s/full", dir);
        CHECK(mkdir(sub, 0700) == 0);
        if (mount("tmpfs", sub, "tmpfs", 0, "size=256k") < 0) {
                fprintf(stderr, "skipped: cannot mount a tmpfs (%m); needs root\n");
                rmdir(sub);
                return;
        }
        snprintf(db, sizeof db, "%s/sensors.db", sub);
        snprintf(filler, sizeof filler, "%s/filler", sub);
        sd_event_new(&e);
        CHECK(devices_new(e, db, &d, &err) == 0);
        free(err);
        if (d) {
                uint8_t key[16], mac[6];
                parse_key("231d39c1d7cc1ab1aee224cd096db932", key);
                parse_mac("54:48:E6:8F:80:A5", mac);
                CHECK(devices_add(d, "climate", PROFILE_BTHOME, mac, key) == 0);
                CHECK(decode(d, "climate", FRAME) == 0); /* the counter is to be written */

                fd = open(filler, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
                while (fd >= 0 && write(fd, buf, sizeof buf) > 0)
                        ;
                if (fd >= 0)
                        close(fd);

                fd = mkstemp(name);
                unlink(name);
                fflush(stderr);
                saved = dup(STDERR_FILENO);
                dup2(fd, STDERR_FILENO);
                for (int i = 0; i < 3; i++)
                        CHECK(devices_flush(d) < 0);
                CHECK(unlink(filler) == 0);
                CHECK(devices_flush(d) == 0);
                fflush(stderr);
                lseek(fd, 0, SEEK_SET);
                n = read(fd, log, sizeof log - 1);
                log[n > 0 ? n : 0] = '\0';
                dup2(saved, STDERR_FILENO);
                close(saved);
                close(fd);
                fputs(log, stderr);
                CHECK(strstr(log, "Failed to store BTHome counters") &&
                      !strstr(strstr(log, "Failed to store BTHome counters") + 1,
                              "Failed to store BTHome counters"));
                CHECK(strstr(log, "full") && !strstr(log, "no transaction"));
                CHECK(strstr(log, "<5>Storing BTHome counters works again."));
                devices_free(d);
        }
        sd_event_unref(e);
        CHECK(umount(sub) == 0);
        rmdir(sub);
}

/* Runs sql on the store at path with plain SQLite (as an older or newer gateway would have). */
static void sql_on_store(const char *sql)
{
        sqlite3 *db = NULL;
        CHECK(sqlite3_open(path, &db) == SQLITE_OK);
        CHECK(sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK);
        sqlite3_close(db);
}

/* One integer or text from the store, read with plain SQLite. */
static long long int_of(const char *sql)
{
        sqlite3 *db = NULL;
        sqlite3_stmt *st = NULL;
        long long v = -1;
        if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
            sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
                v = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        sqlite3_close(db);
        return v;
}

static char *text_of(const char *sql)
{
        sqlite3 *db = NULL;
        sqlite3_stmt *st = NULL;
        char *v = NULL;
        if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
            sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
                v = strdup((const char *)sqlite3_column_text(st, 0));
        sqlite3_finalize(st);
        sqlite3_close(db);
        return v;
}

/* What 2939c3e and every earlier release executed on opening sensors.db: no user_version. */
#define STORE_2939C3E                                                                                       \
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"                                                 \
        "CREATE TABLE IF NOT EXISTS bthome_counter(address TEXT PRIMARY KEY,"                               \
        "                                          counter INTEGER NOT NULL);"

/* A store made before stores carried a version (user_version 0 and today's table) is version 1:
 * its counters are used, its table is not changed, and it is marked as version 1.
 * fails on 2939c3e: user_version stayed 0 (the store carried no version). */
static void test_store_without_version_adopted(void)
{
        char *schema_before, *schema_after;
        sd_event *e = NULL;
        Devices *d;

        test_remove_store(path);
        sql_on_store(STORE_2939C3E "INSERT INTO bthome_counter VALUES('54:48:E6:8F:80:A5', 857870592);");
        schema_before = text_of("SELECT group_concat(sql, ';') FROM sqlite_master");
        CHECK(int_of("PRAGMA user_version") == 0);

        sd_event_new(&e);
        d = open_registry(e);
        CHECK(d && devices_find(d, "climate")->bthome.counter == 0x33221100); /* 857870592 */
        CHECK(d && decode(d, "climate", FRAME) == -EPROTO);                   /* its counter: a replay */
        devices_free(d);
        sd_event_unref(e);

        schema_after = text_of("SELECT group_concat(sql, ';') FROM sqlite_master");
        CHECK_STREQ(schema_after, schema_before);
        CHECK(int_of("PRAGMA user_version") == 1);
        CHECK(int_of("SELECT count(*) FROM bthome_counter") == 1);
        free(schema_before);
        free(schema_after);
}

/* A store from a newer gateway (a later schema version) is refused with a message saying so, and
 * left exactly as it was: not moved aside as corrupt, not switched to WAL, not migrated. The
 * counters live in memory meanwhile: a downgraded gateway still runs (it is the alarm path).
 * fails on 2939c3e: it was opened (and switched to WAL) as if it were its own. */
static void test_newer_store_refused_untouched(void)
{
        char *before, *after, wal[300], *err = NULL;
        size_t len_before = 0, len_after = 0;
        sd_event *e = NULL;
        Devices *d = NULL;
        struct stat st;

        test_remove_store(path);
        sql_on_store("CREATE TABLE bthome_counter(address TEXT PRIMARY KEY, counter INTEGER NOT NULL);"
                     "CREATE TABLE something_new(x);"
                     "INSERT INTO bthome_counter VALUES('54:48:E6:8F:80:A5', 1);"
                     "PRAGMA user_version=2;");
        before = test_read_file(path, &len_before);
        CHECK(before != NULL);

        sd_event_new(&e);
        CHECK(devices_new(e, path, &d, &err) == 0);
        CHECK(d != NULL);
        err = d ? (char *)devices_memory_reason(d) : NULL;
        CHECK(err && strstr(err, "schema version 2") && strstr(err, "up to 1") &&
              strstr(err, "nothing was changed"));
        fprintf(stderr, "(expected) %s\n", err ?: "");
        devices_free(d);
        sd_event_unref(e);

        after = test_read_file(path, &len_after);
        CHECK(after && len_after == len_before && memcmp(after, before, len_before) == 0);
        snprintf(wal, sizeof wal, "%s-wal", path);
        CHECK(stat(wal, &st) < 0 && errno == ENOENT);
        CHECK(int_of("PRAGMA user_version") == 2);
        free(before);
        free(after);
        test_remove_store(path);
}

static void setup(void) __attribute__((constructor));
static void setup(void)
{
        if (!mkdtemp(dir))
                abort();
        snprintf(path, sizeof path, "%s/sensors.db", dir);
}

static void teardown(void) __attribute__((destructor));
static void teardown(void)
{
        test_remove_store(path);
        rmdir(dir);
}

TEST_MAIN(TEST(test_decode_by_profile_and_id), TEST(test_replay_refused_after_restart),
          TEST(test_counter_flushed_by_timer), TEST(test_full_disk_flush_logged_once),
          TEST(test_store_without_version_adopted), TEST(test_newer_store_refused_untouched))
