#include <assert.h>
#include <ctype.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/stat.h>

#include <systemd/sd-journal.h>

#include "common/log.h"

/* The process-wide state: set once from main() before the loop starts. */
static int max_level = LOG_INFO;
static LogTarget target = LOG_TARGET_STDERR;
static log_journal_sendv_fn journal_sendv = sd_journal_sendv;

void log_set_max_level(int level)
{
        max_level = level;
}

int log_max_level(void)
{
        return max_level;
}

void log_set_target(LogTarget t)
{
        target = t;
}

LogTarget log_target(void)
{
        return target;
}

void log_set_journal_sendv(log_journal_sendv_fn fn)
{
        journal_sendv = fn ?: sd_journal_sendv;
}

bool log_journal_stream_is_fd(const char *journal_stream, int fd)
{
        unsigned long long dev, ino;
        struct stat st;
        char *end;

        if (!journal_stream || !isdigit((unsigned char)journal_stream[0]))
                return false;
        errno = 0;
        dev = strtoull(journal_stream, &end, 10);
        if (errno != 0 || *end != ':' || !isdigit((unsigned char)end[1]))
                return false;
        ino = strtoull(end + 1, &end, 10);
        if (errno != 0 || *end != '\0')
                return false;
        if (fstat(fd, &st) < 0)
                return false;
        return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void log_open(void)
{
        /* systemd sets $JOURNAL_STREAM for a service whose stderr goes to the journal. The variable is
         * inherited by children whose stderr goes elsewhere (a test's pipe): only a match counts. */
        target = log_journal_stream_is_fd(getenv("JOURNAL_STREAM"), STDERR_FILENO) ? LOG_TARGET_JOURNAL
                                                                                   : LOG_TARGET_STDERR;
}

/* Control characters from the message (a request_id, a test alarm's text, a peer's error) are
 * written as C escapes: one call is always one line, so a "\n<0>..." in what a peer sent can never
 * start a line of its own with a priority prefix that journald would believe. */
static void escape_controls(const char *in, char *out, size_t size)
{
        static const char hex[] = "0123456789abcdef";
        size_t o = 0;

        assert(size > 0);
        for (const unsigned char *p = (const unsigned char *)in; *p; p++) {
                char esc[4];
                size_t n = 0;

                if (*p == '\n' || *p == '\r' || *p == '\t') {
                        esc[n++] = '\\';
                        esc[n++] = *p == '\n' ? 'n' : *p == '\r' ? 'r' : 't';
                } else if (*p < 0x20 || *p == 0x7f) {
                        esc[n++] = '\\';
                        esc[n++] = 'x';
                        esc[n++] = hex[*p >> 4];
                        esc[n++] = hex[*p & 0xf];
                } else
                        esc[n++] = (char)*p;
                if (o + n >= size)
                        break; /* truncated, as vsnprintf would, but never inside an escape */
                memcpy(out + o, esc, n);
                o += n;
        }
        out[o] = '\0';
}

static bool field_name_valid(const char *name)
{
        if (!name || !name[0] || name[0] == '_' || strlen(name) > 64)
                return false;
        for (const char *c = name; *c; c++)
                if (!((*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '_'))
                        return false;
        return true;
}

#define LOG_FIELDS_MAX 16

/* Returns the result of the send: < 0 and the caller writes the line to stderr instead. */
static int write_journal(int level, int error, const char *file, int line, const char *func,
                         const LogField *fields, const char *text)
{
        char priority[32], code_line[32], err[32];
        char *message = NULL, *code_file = NULL, *code_func = NULL, *ident = NULL,
             *extra[LOG_FIELDS_MAX] = {};
        struct iovec iov[6 + LOG_FIELDS_MAX];
        size_t n = 0, n_extra = 0;
        int r = -ENOMEM;

        if (asprintf(&message, "MESSAGE=%s", text) < 0 || asprintf(&code_file, "CODE_FILE=%s", file) < 0 ||
            asprintf(&code_func, "CODE_FUNC=%s", func) < 0 ||
            asprintf(&ident, "SYSLOG_IDENTIFIER=%s", program_invocation_short_name) < 0)
                goto finish;
        snprintf(priority, sizeof priority, "PRIORITY=%d", level);
        snprintf(code_line, sizeof code_line, "CODE_LINE=%d", line);
        iov[n++] = (struct iovec){message, strlen(message)};
        iov[n++] = (struct iovec){priority, strlen(priority)};
        iov[n++] = (struct iovec){ident, strlen(ident)};
        iov[n++] = (struct iovec){code_file, strlen(code_file)};
        iov[n++] = (struct iovec){code_line, strlen(code_line)};
        iov[n++] = (struct iovec){code_func, strlen(code_func)};
        if (error != 0) {
                snprintf(err, sizeof err, "ERRNO=%d", error);
                iov[n++] = (struct iovec){err, strlen(err)};
        }
        for (const LogField *f = fields; f && f->name; f++) {
                /* A bad name or too many fields is a bug in the caller; the message still goes out. */
                assert(field_name_valid(f->name));
                assert(n_extra < LOG_FIELDS_MAX);
                if (!field_name_valid(f->name) || n_extra >= LOG_FIELDS_MAX || !f->value)
                        continue;
                if (asprintf(&extra[n_extra], "%s=%s", f->name, f->value) < 0)
                        goto finish;
                iov[n++] = (struct iovec){extra[n_extra], strlen(extra[n_extra])};
                n_extra++;
        }
        r = journal_sendv(iov, (int)n);
finish:
        free(message);
        free(code_file);
        free(code_func);
        free(ident);
        for (size_t i = 0; i < n_extra; i++)
                free(extra[i]);
        return r;
}

int log_internal(int level, int error, const char *file, int line, const char *func, const LogField *fields,
                 const char *fmt, ...)
{
        int e = error < 0 ? -error : error;

        if (level <= max_level) {
                char buf[2048], text[2048];
                va_list ap;

                errno = e;
                va_start(ap, fmt);
                vsnprintf(buf, sizeof buf, fmt, ap);
                va_end(ap);
                escape_controls(buf, text, sizeof text);
                if (target == LOG_TARGET_JOURNAL &&
                    write_journal(level, e, file, line, func, fields, text) >= 0)
                        return -e;
                /* One write per line so that concurrent writers (tests tee our stderr) see whole lines. */
                if (max_level >= LOG_DEBUG)
                        fprintf(stderr, "<%d>%s (%s:%d)\n", level, text, file, line);
                else
                        fprintf(stderr, "<%d>%s\n", level, text);
        }
        return -e;
}

void log_to_callback(log_callback_fn fn, void *userdata, int priority, const char *fmt, ...)
{
        char buf[1024];
        va_list ap;

        if (!fn)
                return;
        va_start(ap, fmt);
        vsnprintf(buf, sizeof buf, fmt, ap);
        va_end(ap);
        fn(userdata, priority, buf);
}
