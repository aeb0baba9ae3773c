#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/timefmt.h"

char *format_rfc3339(char buf[static RFC3339_MAX], int64_t usec)
{
        int64_t sec = usec / 1000000, ms = (usec % 1000000) / 1000;
        struct tm tm;
        time_t t;

        if (ms < 0) {
                sec -= 1;
                ms += 1000;
        }
        t = (time_t)sec;
        if (!gmtime_r(&t, &tm)) {
                snprintf(buf, RFC3339_MAX, "invalid");
                return buf;
        }
        snprintf(buf, RFC3339_MAX, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)ms);
        return buf;
}

static int digits(const char **p, int n, int *ret)
{
        int v = 0;
        for (int i = 0; i < n; i++) {
                if ((*p)[i] < '0' || (*p)[i] > '9')
                        return -EINVAL;
                v = v * 10 + ((*p)[i] - '0');
        }
        *p += n;
        *ret = v;
        return 0;
}

int parse_rfc3339(const char *s, int64_t *ret_usec)
{
        int Y, M, D, h, m, sec, off = 0;
        int64_t frac = 0, scale = 100000;
        const char *p = s;
        struct tm tm = {};

        if (digits(&p, 4, &Y) < 0 || *p++ != '-' || digits(&p, 2, &M) < 0 || *p++ != '-' ||
            digits(&p, 2, &D) < 0 || (*p != 'T' && *p != 't' && *p != ' '))
                return -EINVAL;
        p++;
        if (digits(&p, 2, &h) < 0 || *p++ != ':' || digits(&p, 2, &m) < 0 || *p++ != ':' ||
            digits(&p, 2, &sec) < 0)
                return -EINVAL;
        if (M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || m > 59 || sec > 60)
                return -EINVAL;
        if (*p == '.') {
                p++;
                if (*p < '0' || *p > '9')
                        return -EINVAL;
                for (; *p >= '0' && *p <= '9'; p++) {
                        frac += (*p - '0') * scale;
                        scale /= 10;
                }
        }
        if (*p == 'Z' || *p == 'z')
                p++;
        else if (*p == '+' || *p == '-') {
                int oh, om, sign = *p == '-' ? -1 : 1;
                p++;
                if (digits(&p, 2, &oh) < 0 || *p++ != ':' || digits(&p, 2, &om) < 0 || oh > 23 || om > 59)
                        return -EINVAL;
                off = sign * (oh * 3600 + om * 60);
        } else
                return -EINVAL;
        if (*p != '\0')
                return -EINVAL;

        tm.tm_year = Y - 1900;
        tm.tm_mon = M - 1;
        tm.tm_mday = D;
        tm.tm_hour = h;
        tm.tm_min = m;
        tm.tm_sec = sec;
        *ret_usec = ((int64_t)timegm(&tm) - off) * 1000000 + frac;
        return 0;
}
