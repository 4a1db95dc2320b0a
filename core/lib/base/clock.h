/* core: deadlines as struct timespec on a POSIX clock, the form pthread_cond_timedwait takes. */
#ifndef EP_CORE_CLOCK_H
#define EP_CORE_CLOCK_H

#include <stdint.h>
#include <time.h>

/* t moved by ms milliseconds (ms may be negative); tv_nsec stays in [0, 1e9). */
struct timespec ep_timespec_add_ms(struct timespec t, int64_t ms);

/* Negative, 0 or positive as a is before, at or after b. */
int ep_timespec_cmp(const struct timespec *a, const struct timespec *b);

/* The time on clock (CLOCK_MONOTONIC, or CLOCK_REALTIME for a condition variable that uses
 * it) ms milliseconds from now. Thread-safe. */
struct timespec ep_clock_deadline(clockid_t clock, int64_t ms);

#endif
