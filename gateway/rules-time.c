#include <time.h>

#include "gateway/rules-internal.h"

int64_t local_day_start(Rules *r, int64_t t)
{
        time_t s;
        struct tm tm;

        if (t >= r->cache_day_start && t < r->cache_day_end)
                return r->cache_day_start;
        s = (time_t)(t / 1000000);
        localtime_r(&s, &tm);
        tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
        tm.tm_isdst = -1;
        r->cache_day_start = (int64_t)mktime(&tm) * 1000000;
        tm.tm_mday++;
        tm.tm_isdst = -1;
        r->cache_day_end = (int64_t)mktime(&tm) * 1000000;
        return r->cache_day_start;
}

/* The wall clock's minute (00:00 is 0): on a day with a daylight-saving change, 08:00 is not eight
 * hours after midnight. */
int minute_of_day(Rules *r, int64_t t)
{
        int64_t day = local_day_start(r, t);
        time_t s;
        struct tm tm;

        if (r->cache_day_end - day == DAY)
                return (int)((t - day) / MIN);
        s = (time_t)(t / 1000000);
        localtime_r(&s, &tm);
        return tm.tm_hour * 60 + tm.tm_min;
}

/* The instant the wall clock shows `minute` on the local day that starts at `day`. A time the clock
 * skips (02:30 when it goes from 02:00 to 03:00) is the instant it would have shown without the
 * change (03:30 summer time); a time it shows twice is mktime()'s choice, one of the two. */
int64_t local_at(Rules *r, int64_t day, int minute)
{
        time_t s = (time_t)(day / 1000000);
        struct tm tm;

        if (local_day_start(r, day) == day && r->cache_day_end - day == DAY)
                return day + minute * MIN;
        localtime_r(&s, &tm);
        tm.tm_hour = minute / 60;
        tm.tm_min = minute % 60;
        tm.tm_sec = 0;
        tm.tm_isdst = -1;
        return (int64_t)mktime(&tm) * 1000000;
}

static bool in_window(int m, int start, int end)
{
        return start < end ? (m >= start && m < end) : (m >= start || m < end);
}

bool in_night(Rules *r, int64_t t)
{
        return in_window(minute_of_day(r, t), r->night_start, r->night_end);
}

/* The most recent end of a night window at or before t. */
int64_t last_night_end(Rules *r, int64_t t)
{
        int64_t e = local_at(r, local_day_start(r, t), r->night_end);
        return e <= t ? e : local_at(r, local_day_start(r, t - DAY), r->night_end);
}

int64_t next_night_end(Rules *r, int64_t t)
{
        int64_t e = local_at(r, local_day_start(r, t), r->night_end);
        return e > t ? e : local_at(r, local_day_start(r, t + DAY), r->night_end);
}
