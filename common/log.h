/* Logging: one line per call, at a syslog priority, to one of two targets chosen once at start:
 *
 *  - stderr, with a "<N>" priority prefix that journald (and the tests) understand;
 *  - the journal's native protocol (sd_journal_sendv), when stderr is a journal stream, so that a
 *    line can carry fields beside MESSAGE= (SENSOR=, ALERT_ID=, SEQ=) that `journalctl SENSOR=bed`
 *    finds. Detected as systemd's LOG_TARGET_AUTO does: $JOURNAL_STREAM names the device and inode
 *    of stderr.
 *
 * Every function that takes a format carries the printf attribute: no log call goes unchecked.
 * The _errno variants set errno from `error` so that "%m" prints it, and return -|error|.
 * Process-wide state (the level, the target) is set once from main() before the loop starts. */
#pragma once

#include <stdbool.h>
#include <sys/uio.h>
#include <syslog.h>

#include "common/macro.h"

typedef enum LogTarget {
        LOG_TARGET_STDERR,  /* "<N>message" lines */
        LOG_TARGET_JOURNAL, /* sd_journal_sendv(), with fields; falls back to stderr if that fails */
} LogTarget;

/* A field for the journal beside MESSAGE=: name in upper case (A-Z, 0-9, _, not starting with _),
 * value borrowed for the call. Lists end with {NULL, NULL}; LOG_FIELDS() adds the end. */
typedef struct LogField {
        const char *name;
        const char *value;
} LogField;
#define LOG_FIELDS(...) ((const LogField[]){__VA_ARGS__, {NULL, NULL}})

void log_set_max_level(int level);
int log_max_level(void);
void log_set_target(LogTarget target);
LogTarget log_target(void);
/* Chooses the target as LOG_TARGET_AUTO does: the journal if stderr is the journal's stream. */
void log_open(void);
/* Whether journal_stream ("<dev>:<inode>", the value of $JOURNAL_STREAM; NULL: not set) names the
 * file open on fd. */
bool log_journal_stream_is_fd(const char *journal_stream, int fd);

/* The seam behind the journal target: sd_journal_sendv() unless a test puts its own here (NULL
 * restores it). It gets the whole entry, each iovec one FIELD=value. */
typedef int (*log_journal_sendv_fn)(const struct iovec *iov, int n);
void log_set_journal_sendv(log_journal_sendv_fn fn);

/* fields: NULL or a list ending with {NULL, NULL}; on stderr they are not shown. */
int log_internal(int level, int error, const char *file, int line, const char *func, const LogField *fields,
                 const char *fmt, ...) _printf_(7, 8);

#define log_full_errno_fields(level, error, fields, ...)                                                    \
        log_internal(level, error, __FILE__, __LINE__, __func__, fields, __VA_ARGS__)
#define log_full_fields(level, fields, ...) (void)log_full_errno_fields(level, 0, fields, __VA_ARGS__)
#define log_full_errno(level, error, ...) log_full_errno_fields(level, error, NULL, __VA_ARGS__)
#define log_full(level, ...) (void)log_full_errno(level, 0, __VA_ARGS__)
#define log_debug(...) log_full(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_full(LOG_INFO, __VA_ARGS__)
#define log_notice(...) log_full(LOG_NOTICE, __VA_ARGS__)
#define log_warning(...) log_full(LOG_WARNING, __VA_ARGS__)
#define log_error(...) log_full(LOG_ERR, __VA_ARGS__)
#define log_debug_errno(e, ...) log_full_errno(LOG_DEBUG, e, __VA_ARGS__)
#define log_info_errno(e, ...) log_full_errno(LOG_INFO, e, __VA_ARGS__)
#define log_warning_errno(e, ...) log_full_errno(LOG_WARNING, e, __VA_ARGS__)
#define log_error_errno(e, ...) log_full_errno(LOG_ERR, e, __VA_ARGS__)
#define log_oom() log_full_errno(LOG_ERR, ENOMEM, "Out of memory.")

/* Layers below gateway/ (uplink/, sensors/) hand their lines upward through a callback and decide
 * nothing about targets; this formats for them, checked like every log call. fn NULL: nothing. */
typedef void (*log_callback_fn)(void *userdata, int priority, const char *message);
void log_to_callback(log_callback_fn fn, void *userdata, int priority, const char *fmt, ...) _printf_(4, 5);
