#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>

#include "common/sqlite.h"

int sqlite_rc_to_errno(int rc)
{
        switch (rc & 0xff) {
        case SQLITE_OK:
        case SQLITE_ROW:
        case SQLITE_DONE:
                return 0;
        case SQLITE_NOMEM:
                return -ENOMEM;
        case SQLITE_FULL:
                return -ENOSPC;
        case SQLITE_IOERR:
                return -EIO;
        case SQLITE_BUSY:
        case SQLITE_LOCKED:
                return -EBUSY;
        case SQLITE_READONLY:
                return -EROFS;
        case SQLITE_PERM:
        case SQLITE_AUTH:
                return -EACCES;
        case SQLITE_CORRUPT:
        case SQLITE_NOTADB:
                return -EBADMSG;
        case SQLITE_CANTOPEN:
                return -ENOENT;
        case SQLITE_TOOBIG:
                return -E2BIG;
        case SQLITE_NOLFS:
                return -EFBIG;
        case SQLITE_INTERRUPT:
                return -EINTR;
        case SQLITE_ABORT:
                return -ECANCELED;
        case SQLITE_RANGE:
                return -ERANGE;
        case SQLITE_ERROR: /* an SQL error: no such table, a syntax error */
        case SQLITE_CONSTRAINT:
        case SQLITE_MISMATCH:
        case SQLITE_MISUSE:
                return -EINVAL;
        case SQLITE_SCHEMA:
                return -EAGAIN;
        case SQLITE_PROTOCOL:
        case SQLITE_INTERNAL:
                return -EPROTO;
        default:
                return -EIO;
        }
}

bool sqlite_error_is_no_room(int error, const char *dir)
{
        struct statvfs sv;

        switch (error) {
        case -ENOSPC:
        case -EIO:
        case -EROFS:
                return true;
        case -ENOENT:
                /* SQLITE_CANTOPEN: also what a missing -wal or -shm says when there is no room to make
                 * one; but also a missing directory, which is no disk trouble. */
                return statvfs(dir, &sv) == 0 &&
                       ((sv.f_flag & ST_RDONLY) || (uint64_t)sv.f_bavail * sv.f_frsize < 1024 * 1024);
        default:
                return false;
        }
}

bool sqlite_is_foreign_file(const char *path)
{
        static const char magic[16] = "SQLite format 3";
        char head[16];
        FILE *f = fopen(path, "re");
        size_t n;

        if (!f)
                return false;
        n = fread(head, 1, sizeof head, f);
        fclose(f);
        /* An empty file is a new database; a short or foreign one is not a database at all. */
        return n > 0 && (n < sizeof head || memcmp(head, magic, sizeof magic) != 0);
}

int sqlite_move_corrupt(const char *path, char **ret_moved)
{
        static const char *const suffix[] = {"-wal", "-shm"};
        char *moved = NULL;
        long long t = (long long)time(NULL);

        /* Never over an earlier one: each is evidence. */
        for (unsigned i = 0;; i++) {
                struct stat st;
                free(moved);
                if ((i == 0 ? asprintf(&moved, "%s.corrupt-%lld", path, t)
                            : asprintf(&moved, "%s.corrupt-%lld.%u", path, t, i)) < 0)
                        return -ENOMEM;
                if (lstat(moved, &st) < 0 && errno == ENOENT)
                        break;
                if (i > 1000) {
                        free(moved);
                        return -EEXIST;
                }
        }
        if (rename(path, moved) < 0) {
                int r = -errno;
                free(moved);
                return r;
        }
        for (size_t i = 0; i < 2; i++) {
                char *from = NULL, *to = NULL;
                if (asprintf(&from, "%s%s", path, suffix[i]) >= 0 &&
                    asprintf(&to, "%s%s", moved, suffix[i]) >= 0)
                        (void)rename(from, to); /* ENOENT: there was none */
                free(from);
                free(to);
        }
        *ret_moved = moved;
        return 0;
}

/* Returns a SQLite result code, so that the caller keeps SQLite's message with it. */
static int read_user_version(sqlite3 *db, unsigned *ret)
{
        sqlite3_stmt *st = NULL;
        int rc;

        rc = sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL);
        if (rc != SQLITE_OK)
                return rc;
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
                int64_t v = sqlite3_column_int64(st, 0);
                /* user_version is a signed 32-bit field: a negative one is no version of ours. */
                *ret = v < 0 ? UINT32_MAX : (unsigned)v;
                rc = SQLITE_OK;
        }
        sqlite3_finalize(st);
        return rc;
}

int sqlite_user_version(sqlite3 *db, unsigned *ret)
{
        unsigned v;
        int rc = read_user_version(db, &v);

        if (rc != SQLITE_OK)
                return sqlite_rc_to_errno(rc) ?: -EIO;
        *ret = v;
        return 0;
}

static int quick_check(sqlite3 *db)
{
        sqlite3_stmt *st = NULL;
        int rc;

        rc = sqlite3_prepare_v2(db, "PRAGMA quick_check", -1, &st, NULL);
        if (rc != SQLITE_OK)
                return rc;
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW)
                rc =
                    strcmp((const char *)sqlite3_column_text(st, 0), "ok") == 0 ? SQLITE_OK : SQLITE_CORRUPT;
        sqlite3_finalize(st);
        return rc;
}

static int refuse_newer(unsigned version, size_t known, char **error)
{
        if (asprintf(error,
                     "the store has schema version %u, this homecare-gw knows versions up to %zu (a newer "
                     "homecare-gw made it); refusing to use it, nothing was changed",
                     version, known) < 0)
                *error = NULL;
        return -EPROTONOSUPPORT;
}

/* Brings the store from its version to the newest, in one transaction. 0 or a negative errno with
 * *error set; on failure the store is as it was. */
static int migrate(sqlite3 *db, const SqliteOptions *opt, char **error)
{
        unsigned version = 0;
        int rc, r;

        /* IMMEDIATE: the version read below cannot change under us until COMMIT. */
        rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
        if (rc == SQLITE_OK)
                rc = read_user_version(db, &version);
        if (rc != SQLITE_OK) {
                *error = strdup(sqlite3_errmsg(db));
                r = sqlite_rc_to_errno(rc);
                goto rollback;
        }
        if (version > opt->n_migrations) {
                r = refuse_newer(version, opt->n_migrations, error);
                goto rollback;
        }
        for (size_t i = version; i < opt->n_migrations; i++) {
                const SqliteMigration *m = &opt->migrations[i];
                char set[64];

                snprintf(set, sizeof set, "PRAGMA user_version=%u", m->version);
                rc = sqlite3_exec(db, m->sql, NULL, NULL, NULL);
                if (rc == SQLITE_OK)
                        rc = sqlite3_exec(db, set, NULL, NULL, NULL);
                if (rc != SQLITE_OK) {
                        /* SQLite's message now: the ROLLBACK below would replace it. */
                        if (asprintf(error, "migration to schema version %u failed: %s", m->version,
                                     sqlite3_errmsg(db)) < 0)
                                *error = NULL;
                        r = sqlite_rc_to_errno(rc);
                        goto rollback;
                }
        }
        rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
        if (rc != SQLITE_OK) {
                *error = strdup(sqlite3_errmsg(db));
                r = sqlite_rc_to_errno(rc);
                goto rollback;
        }
        return 0;
rollback:
        /* A failed COMMIT (a full disk) may have rolled back already: "no transaction is active". */
        (void)sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        return r ?: -EIO;
}

int sqlite_open_store(const char *path, const SqliteOptions *opt, sqlite3 **ret_db, char **reterr_error)
{
        sqlite3 *db = NULL;
        char *error = NULL;
        unsigned version = 0;
        int rc, r;

        assert(path && opt && ret_db);
        for (size_t i = 0; i < opt->n_migrations; i++)
                assert(opt->migrations[i].version == i + 1 && opt->migrations[i].sql);

        if (sqlite_is_foreign_file(path)) {
                /* Decided before SQLite opens it: it would discard a -wal beside a foreign file. */
                error = strdup("file is not a database");
                r = -EBADMSG;
                goto fail;
        }
        rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                             NULL);
        if (rc != SQLITE_OK)
                goto fail_rc;
        sqlite3_extended_result_codes(db, 1);
        if (opt->busy_timeout_msec > 0)
                sqlite3_busy_timeout(db, (int)opt->busy_timeout_msec);
        /* Until the version is known to be ours, closing must not checkpoint: that would fold a newer
         * store's -wal into its file and delete the -wal. */
        (void)sqlite3_db_config(db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);

        /* Before any PRAGMA that writes (journal_mode=WAL changes the header of a store that is not
         * in WAL mode yet): a newer store is left exactly as it was, for the newer binary. */
        rc = read_user_version(db, &version);
        if (rc != SQLITE_OK)
                goto fail_rc;
        if (version > opt->n_migrations) {
                r = refuse_newer(version, opt->n_migrations, &error);
                goto fail;
        }
        (void)sqlite3_db_config(db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 0, NULL);

        if (opt->auto_vacuum_incremental) {
                /* Freed pages can be given back to the file system (new stores only: it must precede
                 * the first table). */
                rc = sqlite3_exec(db, "PRAGMA auto_vacuum=INCREMENTAL", NULL, NULL, NULL);
                if (rc != SQLITE_OK)
                        goto fail_rc;
        }
        /* FULL: a commit is on disk when COMMIT returns, so an alert survives a power cut too. */
        rc = sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL", NULL, NULL, NULL);
        if (rc != SQLITE_OK)
                goto fail_rc;
        if (opt->quick_check) {
                rc = quick_check(db);
                if (rc == SQLITE_CORRUPT) {
                        error = strdup("quick_check failed");
                        r = -EBADMSG;
                        goto fail;
                }
                if (rc != SQLITE_OK)
                        goto fail_rc;
        }
        if (version < opt->n_migrations) {
                r = migrate(db, opt, &error);
                if (r < 0)
                        goto fail;
        }
        *ret_db = db;
        return 0;

fail_rc:
        error = strdup(db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
        r = sqlite_rc_to_errno(rc) ?: -EIO;
fail:
        sqlite3_close(db);
        if (reterr_error)
                *reterr_error = error;
        else
                free(error);
        return r;
}
