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

int log_internal(int level, int error, const char *file, int line, const char *fmt, ...)
{
        int e = error < 0 ? -error : error;

        if (level <= max_level) {
                char buf[2048];
                va_list ap;

                errno = e;
                va_start(ap, fmt);
                vsnprintf(buf, sizeof buf, fmt, ap);
                va_end(ap);
                /* One write per line so that concurrent writers (tests tee our stderr) see whole lines. */
                if (max_level >= LOG_DEBUG)
                        fprintf(stderr, "<%d>%s (%s:%d)\n", level, buf, file, line);
                else
                        fprintf(stderr, "<%d>%s\n", level, buf);
        }
        return -e;
}
