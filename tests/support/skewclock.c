/* A host whose wall clock is off, for one process (tests/storm/test_clock_drift.py): an
   LD_PRELOAD library that adds SKEWCLOCK_SECONDS to CLOCK_REALTIME (clock_gettime,
   gettimeofday, time) and leaves the monotonic clock and every sleep alone, as on a real host
   with a wrong clock. Debian's libfaketime 0.9.10 fakes too much for Python: with the
   monotonic clock faked threading waits hang; without it time.sleep fails with EINVAL. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <sys/time.h>
#include <time.h>

static long long offset_ns(void) {
    static long long offset = -1;
    if (offset == -1) {
        const char *seconds = getenv("SKEWCLOCK_SECONDS");
        offset = seconds ? atoll(seconds) * 1000000000LL : 0;
    }
    return offset;
}

static void shift(struct timespec *ts) {
    long long t = ts->tv_sec * 1000000000LL + ts->tv_nsec + offset_ns();
    ts->tv_sec = t / 1000000000LL;
    ts->tv_nsec = t % 1000000000LL;
}

int clock_gettime(clockid_t id, struct timespec *ts) {
    static int (*real)(clockid_t, struct timespec *);
    if (!real) real = (int (*)(clockid_t, struct timespec *))dlsym(RTLD_NEXT, "clock_gettime");
    int result = real(id, ts);
    if (result == 0 && (id == CLOCK_REALTIME || id == CLOCK_REALTIME_COARSE)) shift(ts);
    return result;
}

int gettimeofday(struct timeval *tv, void *tz) {
    struct timespec ts;
    int result = clock_gettime(CLOCK_REALTIME, &ts);
    if (result == 0 && tv) { tv->tv_sec = ts.tv_sec; tv->tv_usec = ts.tv_nsec / 1000; }
    return result;
}

time_t time(time_t *out) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (out) *out = ts.tv_sec;
    return ts.tv_sec;
}
