/* The gateway's SQLite stores (outbox.db, sensors.db, and later ones) opened one way:
 *
 *  1. a file that exists and is not SQLite is refused before SQLite sees it (SQLite would delete
 *     a -wal beside it, and the -wal is evidence);
 *  2. PRAGMA user_version is read; a store newer than the migrations given (made by a newer
 *     homecare-gw) is refused with a clear message, and nothing is written to it;
 *  3. the PRAGMAs every store uses: journal_mode=WAL, synchronous=FULL (a commit is on disk when
 *     COMMIT returns: an alert survives a power cut), extended result codes, optionally
 *     auto_vacuum=INCREMENTAL (new stores only) and a busy timeout;
 *  4. optionally PRAGMA quick_check: a damaged file often opens fine and fails only where it is
 *     damaged; better now than forever in the middle of a commit;
 *  5. the migrations above the store's version, in order, all in one transaction with the new
 *     user_version: a failing one leaves the store as it was.
 *
 * Errors are negative errnos (sqlite_rc_to_errno()); -EBADMSG is always "the file itself is bad"
 * (not a database, corrupt), so that a caller can move it aside (sqlite_move_corrupt()) and start
 * afresh. Includes nothing of ours. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include <sqlite3.h>

typedef struct SqliteMigration {
        unsigned version; /* the user_version this step brings the store to: 1, 2, 3 ... in order */
        const char *sql;  /* one or more statements; never BEGIN/COMMIT (the helper holds the transaction) */
} SqliteMigration;

/* Version 1 is the schema the store had before it carried a version: its SQL must be idempotent
 * (CREATE ... IF NOT EXISTS), so that a store with user_version 0 and those tables is adopted as
 * version 1 without any change to its tables or rows. */
typedef struct SqliteOptions {
        const SqliteMigration *migrations; /* versions 1..n_migrations, in order */
        size_t n_migrations;
        bool auto_vacuum_incremental; /* PRAGMA auto_vacuum=INCREMENTAL, before the first table */
        bool quick_check;             /* PRAGMA quick_check before anything is migrated */
        unsigned busy_timeout_msec;   /* 0: none */
} SqliteOptions;

/* Opens (creating) the store at path (":memory:" works too) as above. Returns 0 and the connection
 * in *ret_db (the caller owns it: sqlite3_close()), or a negative errno: -EBADMSG for a file that is
 * not a database or is corrupt, -EPROTONOSUPPORT for a store newer than opt knows, others from
 * sqlite_rc_to_errno(). On failure *reterr_error (if non-NULL) gets a malloc'd reason without the
 * path (the caller knows it), e.g. "file is not a database". */
int sqlite_open_store(const char *path, const SqliteOptions *opt, sqlite3 **ret_db, char **reterr_error);

/* The store's PRAGMA user_version. 0 or a negative errno. */
int sqlite_user_version(sqlite3 *db, unsigned *ret);

/* A SQLite result code (primary or extended) as a negative errno; 0 for SQLITE_OK, _ROW, _DONE. */
int sqlite_rc_to_errno(int rc);

/* Whether path exists and is not an SQLite database (its first bytes are not SQLite's header; an
 * empty file is a new database). */
bool sqlite_is_foreign_file(const char *path);

/* Whether an error from sqlite_open_store() of a store in dir means a full, failing or read-only
 * disk (ENOSPC, EIO, EROFS, or "cannot open" where dir is read-only or has less than 1 MiB free):
 * where a store in memory lets the gateway run. */
bool sqlite_error_is_no_room(int error, const char *dir);

/* Moves a store that SQLite refuses as corrupt to <path>.corrupt-<unix time> (or .corrupt-<t>.<n>,
 * never over an earlier one: each is evidence), with its -wal and -shm. Returns 0 and the new name
 * in *ret_moved (malloc'd, the caller frees it), or a negative errno. */
int sqlite_move_corrupt(const char *path, char **ret_moved);
