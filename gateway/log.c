#include <assert.h>
#include <stdarg.h>
#include <stdio.h>

#include "gateway/base.h"

/* The one piece of process-wide state: set once from the command line before the loop starts. */
static int max_level = LOG_INFO;

void log_set_max_level(int level)
{
        max_level = level;
}

int log_max_level(void)
{
        return max_level;
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

int log_internal(int level, int error, const char *file, int line, const char *fmt, ...)
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
                /* One write per line so that concurrent writers (tests tee our stderr) see whole lines. */
                if (max_level >= LOG_DEBUG)
                        fprintf(stderr, "<%d>%s (%s:%d)\n", level, text, file, line);
                else
                        fprintf(stderr, "<%d>%s\n", level, text);
        }
        return -e;
}
