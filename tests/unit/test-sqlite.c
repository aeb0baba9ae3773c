/* common/sqlite.c on real files in a temporary directory: migrations in order and once, one
 * transaction (a failing migration leaves the store as it was), a newer store refused untouched,
 * the PRAGMAs, foreign and corrupt files, the errno mapping. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/macro.h"
#include "common/sqlite.h"
#include "test-files.h"
#include "test.h"

static char dir[] = "/tmp/hcgw-sqlite-XXXXXX";
static char path[256];

/* v3 uses the column v2 adds, and v2 the table v1 makes: out of order, they fail. */
static const SqliteMigration three[] = {
    {1, "CREATE TABLE IF NOT EXISTS t(a INTEGER NOT NULL);"},
    {2, "ALTER TABLE t ADD COLUMN b TEXT;"},
    {3, "INSERT INTO t(a, b) VALUES(3, 'from v3');"},
};

static long long int_of(sqlite3 *db, const char *sql)
{
        sqlite3_stmt *st = NULL;
        long long v = -1;
        if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
                v = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        return v;
}

/* Opens with plain SQLite, as an older or newer program would. */
static sqlite3 *plain(void)
{
        sqlite3 *db = NULL;
        CHECK(sqlite3_open(path, &db) == SQLITE_OK);
        return db;
}

static bool exists(const char *p)
{
        struct stat st;
        return stat(p, &st) == 0;
}

static void test_new_store_migrated_in_order(void)
{
        const SqliteOptions opt = {.migrations = three,
                                   .n_migrations = 3,
                                   .auto_vacuum_incremental = true,
                                   .busy_timeout_msec = 5000};
        sqlite3 *db = NULL;
        unsigned v = 0;
        char *err = NULL;

        test_remove_store(path);
        CHECK(sqlite_open_store(path, &opt, &db, &err) == 0);
        CHECK(err == NULL);
        if (!db)
                return;
        CHECK(sqlite_user_version(db, &v) == 0 && v == 3);
        CHECK(int_of(db, "SELECT count(*) FROM t WHERE b='from v3'") == 1);
        /* The project's PRAGMAs. */
        CHECK(int_of(db, "PRAGMA synchronous") == 2); /* FULL */
        CHECK(int_of(db, "PRAGMA auto_vacuum") == 2); /* INCREMENTAL */
        {
                sqlite3_stmt *st = NULL;
                CHECK(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL) == SQLITE_OK &&
                      sqlite3_step(st) == SQLITE_ROW &&
                      streq((const char *)sqlite3_column_text(st, 0), "wal"));
                sqlite3_finalize(st);
        }
        sqlite3_close(db);

        /* Opened again: nothing runs twice (v3's row is there once). */
        db = NULL;
        CHECK(sqlite_open_store(path, &opt, &db, &err) == 0);
        CHECK(db && int_of(db, "SELECT count(*) FROM t") == 1);
        sqlite3_close(db);
}

/* A store at version 1 meets a binary with three: 2 and 3 run, 1 does not run again. */
static void test_old_store_upgraded(void)
{
        const SqliteOptions one = {.migrations = three, .n_migrations = 1};
        const SqliteOptions all = {.migrations = three, .n_migrations = 3};
        sqlite3 *db = NULL;
        char *err = NULL;

        test_remove_store(path);
        CHECK(sqlite_open_store(path, &one, &db, &err) == 0);
        CHECK(db && sqlite3_exec(db, "INSERT INTO t(a) VALUES(1)", NULL, NULL, NULL) == SQLITE_OK);
        sqlite3_close(db);
        db = NULL;
        CHECK(sqlite_open_store(path, &all, &db, &err) == 0);
        CHECK(db && int_of(db, "PRAGMA user_version") == 3);
        CHECK(db && int_of(db, "SELECT count(*) FROM t") == 2);
        CHECK(db && int_of(db, "SELECT count(*) FROM t WHERE a=1 AND b IS NULL") == 1);
        sqlite3_close(db);
}

/* All pending migrations are one transaction: when the last fails, the store is the version-1
 * store it was (v2's column is not there either), with its rows, and the error names the step. */
static void test_failing_migration_rolled_back(void)
{
        static const SqliteMigration broken[] = {
            {1, "CREATE TABLE IF NOT EXISTS t(a INTEGER NOT NULL);"},
            {2, "ALTER TABLE t ADD COLUMN b TEXT;"},
            {3, "INSERT INTO t(a) VALUES(NULL);"}, /* NOT NULL: fails */
        };
        const SqliteOptions one = {.migrations = broken, .n_migrations = 1};
        const SqliteOptions all = {.migrations = broken, .n_migrations = 3};
        sqlite3 *db = NULL;
        char *err = NULL;
        int r;

        test_remove_store(path);
        CHECK(sqlite_open_store(path, &one, &db, &err) == 0);
        CHECK(db && sqlite3_exec(db, "INSERT INTO t(a) VALUES(7)", NULL, NULL, NULL) == SQLITE_OK);
        sqlite3_close(db);

        db = NULL;
        r = sqlite_open_store(path, &all, &db, &err);
        CHECK(r == -EINVAL);
        CHECK(db == NULL);
        CHECK(err && strstr(err, "migration to schema version 3 failed") && strstr(err, "NOT NULL"));
        fprintf(stderr, "(expected) %s\n", err ?: "");
        free(err);

        db = plain();
        CHECK(int_of(db, "PRAGMA user_version") == 1);
        CHECK(int_of(db, "SELECT count(*) FROM pragma_table_info('t') WHERE name='b'") == 0);
        CHECK(int_of(db, "SELECT count(*) FROM t WHERE a=7") == 1);
        sqlite3_close(db);
}

/* A store from a newer binary: refused with a message that says so, and not one byte written
 * (it is still in rollback-journal mode: not even journal_mode=WAL ran). */
static void test_newer_store_refused(void)
{
        const SqliteOptions opt = {.migrations = three, .n_migrations = 3, .quick_check = true};
        size_t len_before = 0, len_after = 0;
        char *before, *after, *err = NULL, wal[300];
        sqlite3 *db;
        int r;

        test_remove_store(path);
        db = plain();
        CHECK(sqlite3_exec(db,
                           "CREATE TABLE t(a, b, c); INSERT INTO t VALUES(1, 2, 3); PRAGMA user_version=5;",
                           NULL, NULL, NULL) == SQLITE_OK);
        sqlite3_close(db);
        before = test_read_file(path, &len_before);

        db = NULL;
        r = sqlite_open_store(path, &opt, &db, &err);
        CHECK(r == -EPROTONOSUPPORT);
        CHECK(db == NULL);
        CHECK(err && strstr(err, "schema version 5") && strstr(err, "up to 3") && strstr(err, "refusing"));
        fprintf(stderr, "(expected) %s\n", err ?: "");
        free(err);

        after = test_read_file(path, &len_after);
        CHECK(before && after && len_before == len_after && memcmp(before, after, len_before) == 0);
        snprintf(wal, sizeof wal, "%s-wal", path);
        CHECK(!exists(wal));
        free(before);
        free(after);
}

/* The same with the newer binary's last transactions still in its -wal (it was killed): the file
 * and the -wal stay byte for byte as they were. fails on 7971a3c: closing the refused store
 * checkpointed the -wal into the file and deleted it. */
static void test_newer_store_with_wal_refused(void)
{
        const SqliteOptions opt = {.migrations = three, .n_migrations = 3, .quick_check = true};
        size_t len_before = 0, len_after = 0, wlen_before = 0, wlen_after = 0;
        char *before, *after, *wbefore, *wafter, *err = NULL, wal[300];
        sqlite3 *db;
        int r;

        test_remove_store(path);
        snprintf(wal, sizeof wal, "%s-wal", path);
        db = plain();
        CHECK(sqlite3_exec(db, "PRAGMA journal_mode=WAL; CREATE TABLE t(a); INSERT INTO t VALUES(1);", NULL,
                           NULL, NULL) == SQLITE_OK);
        CHECK(sqlite3_exec(db, "PRAGMA user_version=5; INSERT INTO t VALUES(2);", NULL, NULL, NULL) ==
              SQLITE_OK);
        /* killed: no checkpoint at close */
        CHECK(sqlite3_db_config(db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL) == SQLITE_OK);
        sqlite3_close(db);
        CHECK(exists(wal));
        before = test_read_file(path, &len_before);
        wbefore = test_read_file(wal, &wlen_before);

        db = NULL;
        r = sqlite_open_store(path, &opt, &db, &err);
        CHECK(r == -EPROTONOSUPPORT);
        CHECK(err && strstr(err, "schema version 5"));
        free(err);

        after = test_read_file(path, &len_after);
        wafter = test_read_file(wal, &wlen_after);
        CHECK(before && after && len_before == len_after && memcmp(before, after, len_before) == 0);
        CHECK(wbefore && wafter && wlen_before == wlen_after && memcmp(wbefore, wafter, wlen_before) == 0);
        free(before);
        free(after);
        free(wbefore);
        free(wafter);
        test_remove_store(path);
}

/* Not SQLite: refused as -EBADMSG before SQLite opens it, and the -wal beside it kept. */
static void test_foreign_file(void)
{
        const SqliteOptions opt = {.migrations = three, .n_migrations = 1};
        char wal[300], *err = NULL;
        sqlite3 *db = NULL;
        FILE *f;

        test_remove_store(path);
        f = fopen(path, "we");
        fputs("this is not a database, it is a shopping list\n", f);
        fclose(f);
        snprintf(wal, sizeof wal, "%s-wal", path);
        f = fopen(wal, "we");
        fputs("evidence", f);
        fclose(f);
        CHECK(sqlite_is_foreign_file(path));
        CHECK(sqlite_open_store(path, &opt, &db, &err) == -EBADMSG);
        CHECK_STREQ(err, "file is not a database");
        free(err);
        CHECK(exists(wal));
        test_remove_store(path);
        /* An empty file is a new database, a missing one too. */
        CHECK(!sqlite_is_foreign_file(path));
        f = fopen(path, "we");
        fclose(f);
        CHECK(!sqlite_is_foreign_file(path));
}

/* A damaged page that opening alone would not notice: quick_check finds it, -EBADMSG. */
static void test_corrupt_store(void)
{
        const SqliteOptions opt = {.migrations = three, .n_migrations = 1, .quick_check = true};
        const SqliteOptions unchecked = {.migrations = three, .n_migrations = 1};
        char junk[2048], *err = NULL, *moved = NULL, wal[300], moved_wal[320];
        sqlite3 *db = NULL;
        int fd;

        test_remove_store(path);
        CHECK(sqlite_open_store(path, &opt, &db, &err) == 0);
        CHECK(db &&
              sqlite3_exec(db,
                           "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000)"
                           " INSERT INTO t(a) SELECT i FROM n; CREATE INDEX t_a ON t(a);",
                           NULL, NULL, NULL) == SQLITE_OK);
        sqlite3_close(db); /* checkpoints: the pages are in the main file */
        memset(junk, 0x5a, sizeof junk);
        fd = open(path, O_WRONLY | O_CLOEXEC);
        CHECK(fd >= 0 && pwrite(fd, junk, sizeof junk, 3 * 4096 + 512) == (ssize_t)sizeof junk);
        close(fd);

        db = NULL;
        CHECK(sqlite_open_store(path, &unchecked, &db, &err) == 0); /* opening alone does not see it */
        sqlite3_close(db);
        db = NULL;
        CHECK(sqlite_open_store(path, &opt, &db, &err) == -EBADMSG);
        CHECK(db == NULL);
        CHECK(err != NULL);
        fprintf(stderr, "(expected) %s\n", err ?: "");
        free(err);

        /* Moved aside with its -wal, never over an earlier one. */
        snprintf(wal, sizeof wal, "%s-wal", path);
        fclose(fopen(wal, "we"));
        CHECK(sqlite_move_corrupt(path, &moved) == 0);
        CHECK(moved && strstr(moved, ".corrupt-") && exists(moved) && !exists(path) && !exists(wal));
        snprintf(moved_wal, sizeof moved_wal, "%s-wal", moved);
        CHECK(exists(moved_wal));
        {
                char *second = NULL;
                fclose(fopen(path, "we"));
                CHECK(sqlite_move_corrupt(path, &second) == 0);
                CHECK(second && !streq(second, moved) && exists(second) && exists(moved));
                if (second)
                        unlink(second);
                free(second);
        }
        unlink(moved);
        unlink(moved_wal);
        free(moved);
}

static void test_missing_directory_and_memory(void)
{
        const SqliteOptions opt = {.migrations = three, .n_migrations = 3};
        char p[300], *err = NULL;
        sqlite3 *db = NULL;
        int r;

        snprintf(p, sizeof p, "%s/no/such/dir/x.db", dir);
        r = sqlite_open_store(p, &opt, &db, &err);
        CHECK(r == -ENOENT && db == NULL && err != NULL);
        free(err);
        err = NULL;
        /* A missing directory is no disk trouble; a full disk is. */
        CHECK(!sqlite_error_is_no_room(r, "/nonexistent-dir"));
        CHECK(sqlite_error_is_no_room(-ENOSPC, dir) && sqlite_error_is_no_room(-EIO, dir) &&
              sqlite_error_is_no_room(-EROFS, dir));
        CHECK(!sqlite_error_is_no_room(-EBADMSG, dir) && !sqlite_error_is_no_room(-EPROTONOSUPPORT, dir));

        CHECK(sqlite_open_store(":memory:", &opt, &db, &err) == 0);
        CHECK(db && int_of(db, "PRAGMA user_version") == 3);
        sqlite3_close(db);
}

static void test_errno_mapping(void)
{
        CHECK(sqlite_rc_to_errno(SQLITE_OK) == 0 && sqlite_rc_to_errno(SQLITE_ROW) == 0 &&
              sqlite_rc_to_errno(SQLITE_DONE) == 0);
        CHECK(sqlite_rc_to_errno(SQLITE_FULL) == -ENOSPC);
        CHECK(sqlite_rc_to_errno(SQLITE_IOERR) == -EIO && sqlite_rc_to_errno(SQLITE_IOERR_FSYNC) == -EIO);
        CHECK(sqlite_rc_to_errno(SQLITE_READONLY) == -EROFS &&
              sqlite_rc_to_errno(SQLITE_READONLY_DBMOVED) == -EROFS);
        CHECK(sqlite_rc_to_errno(SQLITE_CORRUPT) == -EBADMSG &&
              sqlite_rc_to_errno(SQLITE_NOTADB) == -EBADMSG &&
              sqlite_rc_to_errno(SQLITE_CORRUPT_INDEX) == -EBADMSG);
        CHECK(sqlite_rc_to_errno(SQLITE_CANTOPEN) == -ENOENT);
        CHECK(sqlite_rc_to_errno(SQLITE_BUSY) == -EBUSY && sqlite_rc_to_errno(SQLITE_LOCKED) == -EBUSY);
        CHECK(sqlite_rc_to_errno(SQLITE_NOMEM) == -ENOMEM);
        CHECK(sqlite_rc_to_errno(SQLITE_PERM) == -EACCES);
        CHECK(sqlite_rc_to_errno(SQLITE_CONSTRAINT_NOTNULL) == -EINVAL &&
              sqlite_rc_to_errno(SQLITE_ERROR) == -EINVAL);
        CHECK(sqlite_rc_to_errno(SQLITE_TOOBIG) == -E2BIG);
}

static void setup(void) __attribute__((constructor));
static void setup(void)
{
        if (!mkdtemp(dir))
                abort();
        snprintf(path, sizeof path, "%s/store.db", dir);
}

static void teardown(void) __attribute__((destructor));
static void teardown(void)
{
        test_remove_store(path);
        rmdir(dir);
}

TEST_MAIN(TEST(test_new_store_migrated_in_order), TEST(test_old_store_upgraded),
          TEST(test_failing_migration_rolled_back), TEST(test_newer_store_refused),
          TEST(test_newer_store_with_wal_refused), TEST(test_foreign_file), TEST(test_corrupt_store),
          TEST(test_missing_directory_and_memory), TEST(test_errno_mapping))
