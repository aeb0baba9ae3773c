#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/timerfd.h>
#include <sys/timex.h>
#include <time.h>
#include <unistd.h>

#include "common/time-util.h"
#include "gateway/clock.h"

TimeQuality clock_quality(int adjtimex_state, int adjtimex_status, int64_t realtime_usec)
{
        if (adjtimex_state == TIME_ERROR || (adjtimex_status & STA_UNSYNC) ||
            realtime_usec < CLOCK_EPOCH_USEC)
                return TIME_UNSYNCED;
        return TIME_SYNCED;
}

DecodeContext decode_context_now(void)
{
        struct timex tx = {};
        struct tm tm;
        int64_t now = now_realtime();
        time_t sec = (time_t)(now / USEC_PER_SEC);
        int state;

        localtime_r(&sec, &tm);
        state = adjtimex(&tx);
        return (DecodeContext){
            .now_usec = now,
            .now_quality = clock_quality(state, tx.status, now),
            .utc_offset_sec = (int32_t)tm.tm_gmtoff,
        };
}

int64_t clock_watch_update(ClockWatch *w, int64_t realtime_usec, int64_t boottime_usec)
{
        int64_t offset = realtime_usec - boottime_usec, step = 0;

        if (w->known && llabs(offset - w->offset) > CLOCK_STEP_MIN_USEC)
                step = offset - w->offset;
        w->offset = offset;
        w->known = true;
        return step;
}

int clock_change_fd_rearm(int fd)
{
        /* An expiry that never comes: only the cancellation on a clock change wakes us. */
        struct itimerspec its = {.it_value.tv_sec =
                                     (time_t)((UINTMAX_C(1) << ((sizeof(time_t) << 3) - 1)) - 1)};

        if (timerfd_settime(fd, TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET, &its, NULL) < 0)
                return -errno;
        return 0;
}

int clock_change_fd_new(void)
{
        int fd = timerfd_create(CLOCK_REALTIME, TFD_NONBLOCK | TFD_CLOEXEC), r;

        if (fd < 0)
                return -errno;
        r = clock_change_fd_rearm(fd);
        if (r < 0) {
                close(fd);
                return r;
        }
        return fd;
}
