/* core: deadlines on a POSIX clock, see clock.h. */
#include "base/clock.h"

#define NS_PER_S 1000000000L
#define NS_PER_MS 1000000L

struct timespec ep_timespec_add_ms(struct timespec t, int64_t ms) {
  t.tv_sec += (time_t)(ms / 1000);
  t.tv_nsec += (long)(ms % 1000) * NS_PER_MS; /* now in (-1e9, 2e9) */
  if (t.tv_nsec >= NS_PER_S) {
    t.tv_sec++;
    t.tv_nsec -= NS_PER_S;
  } else if (t.tv_nsec < 0) {
    t.tv_sec--;
    t.tv_nsec += NS_PER_S;
  }
  return t;
}

int ep_timespec_cmp(const struct timespec *a, const struct timespec *b) {
  if (a->tv_sec != b->tv_sec) return a->tv_sec < b->tv_sec ? -1 : 1;
  return a->tv_nsec < b->tv_nsec ? -1 : a->tv_nsec > b->tv_nsec;
}

struct timespec ep_clock_deadline(clockid_t clock, int64_t ms) {
  struct timespec now;
  clock_gettime(clock, &now);
  return ep_timespec_add_ms(now, ms);
}
