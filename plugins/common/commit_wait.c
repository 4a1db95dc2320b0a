/* Storage plugins: waiting for a revision, see commit_wait.h. */
#define _POSIX_C_SOURCE 200809L
#include "commit_wait.h"

#include <time.h>

#include <edgeprov/abi.h>

void commit_wait_init(commit_wait *w) {
  pthread_mutex_init(&w->lock, NULL);
  pthread_condattr_t attr;
  pthread_condattr_init(&attr);
  pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
  pthread_cond_init(&w->changed, &attr);
  pthread_condattr_destroy(&attr);
  w->revision = 0;
  w->wakes = 0;
}

void commit_wait_destroy(commit_wait *w) {
  pthread_cond_destroy(&w->changed);
  pthread_mutex_destroy(&w->lock);
}

void commit_wait_note(commit_wait *w, uint64_t revision) {
  pthread_mutex_lock(&w->lock);
  if (revision > w->revision) {
    w->revision = revision;
    pthread_cond_broadcast(&w->changed);
  }
  pthread_mutex_unlock(&w->lock);
}

void commit_wait_wake(commit_wait *w) {
  pthread_mutex_lock(&w->lock);
  w->wakes++;
  pthread_cond_broadcast(&w->changed);
  pthread_mutex_unlock(&w->lock);
}

static int64_t now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

int32_t commit_wait_for(commit_wait *w, uint64_t after_revision, uint32_t timeout_ms,
                            commit_wait_revision_fn read_revision, void *data, uint64_t *ret_revision) {
  int64_t deadline = now_ms() + (timeout_ms > COMMIT_WAIT_TIMEOUT_MAX_MS ? COMMIT_WAIT_TIMEOUT_MAX_MS : timeout_ms);
  pthread_mutex_lock(&w->lock);
  uint64_t wakes = w->wakes;
  int32_t r = 0;
  for (;;) {
    /* The store itself, for commits of other processes (a poll at most every COMMIT_WAIT_POLL_MS). */
    uint64_t stored = 0;
    pthread_mutex_unlock(&w->lock);
    r = read_revision(data, &stored);
    pthread_mutex_lock(&w->lock);
    if (r < 0) break;
    if (stored > w->revision) w->revision = stored;
    int64_t poll_until = now_ms() + COMMIT_WAIT_POLL_MS;
    for (;;) {
      if (w->revision > after_revision) {
        if (ret_revision) *ret_revision = w->revision;
        goto done;
      }
      if (w->wakes != wakes) {
        r = EP_ECANCELED;
        goto done;
      }
      int64_t now = now_ms();
      if (now >= deadline) {
        r = EP_ETIMEDOUT;
        goto done;
      }
      if (now >= poll_until) break;
      int64_t until = poll_until < deadline ? poll_until : deadline;
      struct timespec at = {.tv_sec = (time_t)(until / 1000), .tv_nsec = (long)(until % 1000) * 1000000};
      pthread_cond_timedwait(&w->changed, &w->lock, &at);
    }
  }
done:
  pthread_mutex_unlock(&w->lock);
  return r;
}
