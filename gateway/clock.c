#include <sys/timex.h>
#include <time.h>

#include "gateway/clock.h"

DecodeContext decode_context_now(void)
{
        struct timex tx = {};
        struct timespec ts;
        struct tm tm;
        int state;

        clock_gettime(CLOCK_REALTIME, &ts);
        localtime_r(&ts.tv_sec, &tm);
        state = adjtimex(&tx);
        return (DecodeContext){
                .now_usec = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000,
                .now_quality = (state == TIME_ERROR || (tx.status & STA_UNSYNC)) ? TIME_UNSYNCED : TIME_SYNCED,
                .utc_offset_sec = (int32_t)tm.tm_gmtoff,
        };
}
