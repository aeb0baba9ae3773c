#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test.h"
#include "uplink/outbox.h"

static char dir[] = "/tmp/hcgw-outbox-XXXXXX";
static char path[256];

static Outbox *open_box(sd_event *e, uint64_t max_size, uint64_t delay)
{
        OutboxOptions o = {.max_size = max_size, .commit_delay_usec = delay};
        Outbox *b = NULL;
        char *err = NULL;
        int r = outbox_open(e, path, &o, &b, &err);
        if (r < 0)
                fprintf(stderr, "outbox_open: %s\n", err);
        free(err);
        return b;
}

static void fresh(void)
{
        char p[300];
        unlink(path);
        snprintf(p, sizeof p, "%s-wal", path);
        unlink(p);
        snprintf(p, sizeof p, "%s-shm", path);
        unlink(p);
}

static void add(Outbox *b, Lane lane, const char *key, int i)
{
        char body[128];
        int n = snprintf(body, sizeof body, "{\"%s\":%d}", key, i);
        CHECK(outbox_add(b, lane, body, (size_t)n) == 0);
}

static void test_order_and_seq(void)
{
        sd_event *e = NULL;
        Outbox *b;
        OutboxBatch batch;

        fresh();
        sd_event_new(&e);
        b = open_box(e, 1 << 20, 1000000);
        for (int i = 0; i < 10; i++)
                add(b, LANE_TELEMETRY, "i", i);
        CHECK(outbox_pending(b) == 10);
        CHECK(outbox_backlog_total(b) == 0); /* not committed: not visible */
        CHECK(outbox_fetch(b, LANE_TELEMETRY, 0, 100, 1 << 20, &batch) == 0);
        CHECK(batch.n == 0);
        outbox_batch_done(&batch);
        CHECK(outbox_commit(b) == 0);
        CHECK(outbox_backlog(b, LANE_TELEMETRY) == 10);
        CHECK(outbox_fetch(b, LANE_TELEMETRY, 0, 100, 1 << 20, &batch) == 0);
        CHECK(batch.n == 10);
        for (size_t i = 0; i < batch.n; i++) {
                char want[32];
                snprintf(want, sizeof want, "{\"i\":%zu}", i);
                CHECK(batch.items[i].seq == i + 1);
                CHECK_STREQ(batch.items[i].body, want);
        }
        outbox_batch_done(&batch);
        /* A cursor: only what comes after. */
        CHECK(outbox_fetch(b, LANE_TELEMETRY, 7, 100, 1 << 20, &batch) == 0);
        CHECK(batch.n == 3 && batch.items[0].seq == 8);
        outbox_batch_done(&batch);
        /* max_items and max_bytes (the first item always fits). */
        CHECK(outbox_fetch(b, LANE_TELEMETRY, 0, 4, 1 << 20, &batch) == 0);
        CHECK(batch.n == 4);
        outbox_batch_done(&batch);
        CHECK(outbox_fetch(b, LANE_TELEMETRY, 0, 100, 17, &batch) == 0);
        CHECK(batch.n == 2);
        outbox_batch_done(&batch);
        CHECK(outbox_fetch(b, LANE_TELEMETRY, 0, 100, 1, &batch) == 0);
        CHECK(batch.n == 1);
        outbox_batch_done(&batch);
        outbox_free(b);
        sd_event_unref(e);
}

static void test_alert_commits_at_once_in_order(void)
{
        sd_event *e = NULL;
        Outbox *b;
        OutboxBatch batch;

        fresh();
        sd_event_new(&e);
        b = open_box(e, 1 << 20, 60ULL * 1000000); /* a long group-commit delay */
        for (int i = 0; i < 5; i++)
                add(b, LANE_TELEMETRY, "t", i);
        add(b, LANE_EVENTS, "e", 0);
        add(b, LANE_ALERTS, "a", 0);
        /* The alert forced a commit of everything queued before it: commit order = seq order. */
        CHECK(outbox_pending(b) == 0);
        CHECK(outbox_backlog(b, LANE_ALERTS) == 1);
        CHECK(outbox_backlog(b, LANE_EVENTS) == 1);
        CHECK(outbox_backlog(b, LANE_TELEMETRY) == 5);
        CHECK(outbox_fetch(b, LANE_ALERTS, 0, 10, 1 << 20, &batch) == 0);
        CHECK(batch.n == 1 && batch.items[0].seq == 7);
        outbox_batch_done(&batch);
        CHECK(outbox_fetch(b, LANE_EVENTS, 0, 10, 1 << 20, &batch) == 0);
        CHECK(batch.n == 1 && batch.items[0].seq == 6);
        outbox_batch_done(&batch);
        outbox_free(b);
        sd_event_unref(e);
}

static void test_group_commit_timer(void)
{
        sd_event *e = NULL;
        Outbox *b;
        int committed = 0;

        fresh();
        sd_event_new(&e);
        b = open_box(e, 1 << 20, 20 * 1000);
        add(b, LANE_TELEMETRY, "t", 1);
        CHECK(outbox_pending(b) == 1);
        /* Wait on the loop (the commit timer is its only source), with a deadline. */
        for (int i = 0; i < 100 && outbox_pending(b) > 0; i++)
                CHECK(sd_event_run(e, 2 * 1000 * 1000) >= 0);
        committed = outbox_pending(b) == 0;
        CHECK(committed);
        CHECK(outbox_backlog(b, LANE_TELEMETRY) == 1);
        outbox_free(b);
        sd_event_unref(e);
}

static void test_ack_deletes_and_seq_never_reused(void)
{
        sd_event *e = NULL;
        Outbox *b;
        OutboxBatch batch;
        uint64_t seqs[3] = {1, 2, 3};

        fresh();
        sd_event_new(&e);
        b = open_box(e, 1 << 20, 1000000);
        for (int i = 0; i < 3; i++)
                add(b, LANE_EVENTS, "e", i);
        CHECK(outbox_commit(b) == 0);
        CHECK(outbox_ack(b, seqs, 3) == 0);
        CHECK(outbox_backlog(b, LANE_EVENTS) == 3); /* deleted with the next commit */
        /* Rewinding the cursor never returns acknowledged items. */
        CHECK(outbox_fetch(b, LANE_EVENTS, 0, 10, 1 << 20, &batch) == 0);
        CHECK(batch.n == 0);
        outbox_batch_done(&batch);
        CHECK(outbox_backlog(b, LANE_EVENTS) == 0);
        CHECK(outbox_backlog_total(b) == 0);
        /* An ack for something already gone is harmless. */
        CHECK(outbox_ack(b, seqs, 1) == 0);
        CHECK(outbox_commit(b) == 0);
        CHECK(outbox_backlog_total(b) == 0);
        outbox_free(b);

        /* Reopen with an empty table: seq goes on from 4, it never restarts. */
        b = open_box(e, 1 << 20, 1000000);
        CHECK(outbox_last_seq(b) == 3);
        add(b, LANE_EVENTS, "e", 9);
        CHECK(outbox_commit(b) == 0);
        CHECK(outbox_fetch(b, LANE_EVENTS, 0, 10, 1 << 20, &batch) == 0);
        CHECK(batch.n == 1 && batch.items[0].seq == 4);
        outbox_batch_done(&batch);
        outbox_free(b);
        sd_event_unref(e);
}

static void test_quota_thins_oldest_telemetry_never_alerts(void)
{
        sd_event *e = NULL;
        Outbox *b;
        OutboxBatch batch;
        uint64_t dropped, epoch;
        char pad[101];

        memset(pad, 'x', 100);
        pad[100] = '\0';
        fresh();
        sd_event_new(&e);
        /* 64 KiB of quota; 2000 telemetry items of ~140 bytes charge ~340 KiB. */
        b = open_box(e, 64 * 1024, 1000000);
        for (int i = 0; i < 20; i++)
                add(b, LANE_ALERTS, "a", i);
        for (int i = 0; i < 2000; i++) {
                char body[160];
                int n = snprintf(body, sizeof body, "{\"t\":%d,\"pad\":\"%s\"}", i, pad);
                CHECK(outbox_add(b, LANE_TELEMETRY, body, (size_t)n) == 0);
                if (i % 100 == 99)
                        CHECK(outbox_commit(b) == 0);
        }
        dropped = outbox_dropped(b);
        epoch = outbox_epoch(b);
        CHECK(dropped > 1000);
        CHECK(outbox_backlog(b, LANE_ALERTS) == 20);
        CHECK(outbox_backlog(b, LANE_TELEMETRY) + dropped == 2000);
        CHECK(outbox_backlog(b, LANE_TELEMETRY) * 140 < 64 * 1024);
        /* The newest reading survives; the oldest went first. */
        CHECK(outbox_fetch(b, LANE_TELEMETRY, 0, 5000, 1 << 30, &batch) == 0);
        CHECK(batch.n > 0 && strstr(batch.items[batch.n - 1].body, "\"t\":1999,") != NULL);
        CHECK(batch.n > 0 && batch.items[0].seq > 21);
        outbox_batch_done(&batch);
        outbox_free(b);

        /* The count is kept across restarts, with the store's epoch. */
        b = open_box(e, 64 * 1024, 1000000);
        CHECK(outbox_dropped(b) == dropped);
        CHECK(outbox_epoch(b) == epoch);
        CHECK(outbox_backlog(b, LANE_ALERTS) == 20);
        outbox_free(b);
        sd_event_unref(e);
}

static void test_only_alerts_are_kept_over_quota(void)
{
        sd_event *e = NULL;
        Outbox *b;

        fresh();
        sd_event_new(&e);
        b = open_box(e, 1024, 1000000);
        for (int i = 0; i < 100; i++)
                add(b, LANE_ALERTS, "alert-with-a-long-key-to-take-room", i);
        CHECK(outbox_backlog(b, LANE_ALERTS) == 100);
        CHECK(outbox_dropped(b) == 0);
        add(b, LANE_EVENTS, "e", 1);
        CHECK(outbox_commit(b) == 0);
        CHECK(outbox_backlog(b, LANE_EVENTS) == 0); /* events go when there is no telemetry left */
        CHECK(outbox_dropped(b) == 1);
        CHECK(outbox_backlog(b, LANE_ALERTS) == 100);
        outbox_free(b);
        sd_event_unref(e);
}

static int integrity_ok(void)
{
        sqlite3 *db;
        sqlite3_stmt *st;
        int ok = 0;
        if (sqlite3_open(path, &db) != SQLITE_OK)
                return 0;
        if (sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL) == SQLITE_OK) {
                ok = sqlite3_step(st) == SQLITE_ROW && strcmp((const char *)sqlite3_column_text(st, 0), "ok") == 0;
                sqlite3_finalize(st);
        }
        sqlite3_close(db);
        return ok;
}

static void test_survives_sigkill(void)
{
        sd_event *e = NULL;
        Outbox *b;
        pid_t pid;
        int status;

        fresh();
        pid = fork();
        if (pid == 0) {
                sd_event *ce = NULL;
                sd_event_new(&ce);
                b = open_box(ce, 1 << 20, 1000000);
                for (int i = 0; i < 500; i++) {
                        char body[32];
                        int n = snprintf(body, sizeof body, "{\"i\":%d}", i);
                        outbox_add(b, LANE_TELEMETRY, body, (size_t)n);
                }
                outbox_commit(b);
                /* Queued, never committed: may be lost, and must not corrupt anything. */
                for (int i = 0; i < 100; i++)
                        outbox_add(b, LANE_TELEMETRY, "{}", 2);
                kill(getpid(), SIGKILL);
                _exit(1);
        }
        CHECK(waitpid(pid, &status, 0) == pid);
        CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
        CHECK(integrity_ok());
        sd_event_new(&e);
        b = open_box(e, 1 << 20, 1000000);
        CHECK(b != NULL);
        if (b) {
                CHECK(outbox_backlog(b, LANE_TELEMETRY) == 500);
                CHECK(outbox_last_seq(b) == 500);
                outbox_free(b);
        }
        sd_event_unref(e);
}

static void test_open_error(void)
{
        sd_event *e = NULL;
        OutboxOptions o = {.max_size = 1 << 20};
        Outbox *b = NULL;
        char *err = NULL;
        sd_event_new(&e);
        CHECK(outbox_open(e, "/nonexistent-dir/x.db", &o, &b, &err) < 0);
        CHECK(b == NULL);
        CHECK(err && strstr(err, "/nonexistent-dir/x.db"));
        free(err);
        sd_event_unref(e);
}

/* A real full disk: a 1 MiB tmpfs (needs root, as CI has). Commits fail, nothing is lost, and once
 * there is room again everything is committed in order. */
static void test_disk_full_loses_nothing(void)
{
        char mnt[] = "/tmp/hcgw-full-XXXXXX", db[300], filler[300], cmd[400];
        sd_event *e = NULL;
        Outbox *b = NULL;
        OutboxOptions o = {.max_size = 64 << 20, .commit_delay_usec = 1000000};
        OutboxBatch batch;
        char *err = NULL;
        int r, fd;

        if (geteuid() != 0) {
                printf("SKIP test_disk_full_loses_nothing: needs root to mount a tmpfs\n");
                return;
        }
        CHECK(mkdtemp(mnt) != NULL);
        snprintf(cmd, sizeof cmd, "mount -t tmpfs -o size=1M tmpfs %s", mnt);
        if (system(cmd) != 0) {
                printf("SKIP test_disk_full_loses_nothing: cannot mount a tmpfs here\n");
                rmdir(mnt);
                return;
        }
        snprintf(db, sizeof db, "%s/outbox.db", mnt);
        sd_event_new(&e);
        CHECK(outbox_open(e, db, &o, &b, &err) == 0);
        free(err);
        /* Fill the disk to the last byte. */
        snprintf(filler, sizeof filler, "%s/filler", mnt);
        fd = open(filler, O_WRONLY | O_CREAT, 0600);
        {
                static char chunk[4096];
                while (write(fd, chunk, sizeof chunk) > 0)
                        ;
        }
        close(fd);
        for (int i = 0; i < 2000; i++) {
                char body[128];
                int n = snprintf(body, sizeof body, "{\"i\":%d,\"pad\":\"................................................\"}", i);
                CHECK(outbox_add(b, i == 1000 ? LANE_ALERTS : LANE_TELEMETRY, body, (size_t)n) == 0);
        }
        r = outbox_commit(b);
        CHECK(r == -ENOSPC);
        CHECK(outbox_last_error(b) != NULL);
        CHECK(outbox_pending(b) == 2000);        /* kept in memory */
        CHECK(outbox_backlog_total(b) == 0);
        /* Room again: the retry timer commits everything, in order. */
        unlink(filler);
        for (int i = 0; i < 100 && outbox_pending(b) > 0; i++)
                CHECK(sd_event_run(e, 40 * 1000 * 1000) >= 0);
        CHECK(outbox_pending(b) == 0);
        CHECK(outbox_backlog_total(b) == 2000);
        CHECK(outbox_fetch(b, LANE_ALERTS, 0, 10, 1 << 20, &batch) == 0);
        CHECK(batch.n == 1 && batch.items[0].seq == 1001 && strstr(batch.items[0].body, "\"i\":1000,"));
        outbox_batch_done(&batch);
        outbox_free(b);
        sd_event_unref(e);
        snprintf(cmd, sizeof cmd, "umount %s", mnt);
        CHECK(system(cmd) == 0);
        rmdir(mnt);
}

static void setup(void) __attribute__((constructor));
static void setup(void)
{
        if (!mkdtemp(dir))
                abort();
        snprintf(path, sizeof path, "%s/outbox.db", dir);
}

static void teardown(void) __attribute__((destructor));
static void teardown(void)
{
        fresh();
        rmdir(dir);
}

TEST_MAIN(TEST(test_order_and_seq), TEST(test_alert_commits_at_once_in_order), TEST(test_group_commit_timer),
          TEST(test_ack_deletes_and_seq_never_reused), TEST(test_quota_thins_oldest_telemetry_never_alerts),
          TEST(test_only_alerts_are_kept_over_quota), TEST(test_survives_sigkill), TEST(test_open_error),
          TEST(test_disk_full_loses_nothing))
