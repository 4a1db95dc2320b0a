/* Storage plugins: waiting for a revision (edgeprov.storage/1 wait and wake). What the plugin
 * learns of at once (its own commits; PostgreSQL's notifications) it passes to
 * commit_wait_note; what it cannot be told of (another process on the same SQLite file) a
 * waiter finds by reading the store's revision, at most every COMMIT_WAIT_POLL_MS. */
#ifndef EP_PLUGIN_COMMIT_WAIT_H
#define EP_PLUGIN_COMMIT_WAIT_H

#include <pthread.h>
#include <stdint.h>

#define COMMIT_WAIT_POLL_MS 500
#define COMMIT_WAIT_TIMEOUT_MAX_MS 600000

typedef struct commit_wait {
  pthread_mutex_t lock;
  pthread_cond_t changed; /* CLOCK_MONOTONIC */
  uint64_t revision;      /* highest revision known committed */
  uint64_t wakes;         /* commit_wait_wake calls */
} commit_wait;

/* Reads the store's current revision: 0, or an EP_E* code (its message already reported). */
typedef int32_t (*commit_wait_revision_fn)(void *data, uint64_t *ret_revision);

void commit_wait_init(commit_wait *w);
void commit_wait_destroy(commit_wait *w);

/* Records that revision has been committed and wakes the waiters. */
void commit_wait_note(commit_wait *w, uint64_t revision);

/* The storage contract's wait: 0 with *ret_revision once the revision is past after_revision
 * (read with read_revision first and then at least every COMMIT_WAIT_POLL_MS), EP_ETIMEDOUT,
 * EP_ECANCELED after commit_wait_wake, or read_revision's error. */
int32_t commit_wait_for(commit_wait *w, uint64_t after_revision, uint32_t timeout_ms,
                            commit_wait_revision_fn read_revision, void *data, uint64_t *ret_revision);

/* Every wait in progress returns EP_ECANCELED. */
void commit_wait_wake(commit_wait *w);

#endif
