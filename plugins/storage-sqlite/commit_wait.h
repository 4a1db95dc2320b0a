/* storage-sqlite: waiting for a revision (edgeprov.storage/1 wait and wake). Commits of this
 * process are signalled at once; another process's commits on the same file cannot be, so a
 * waiter also reads the store's revision at most every SQS_WAIT_POLL_MS. */
#ifndef SQS_COMMIT_WAIT_H
#define SQS_COMMIT_WAIT_H

#include <pthread.h>
#include <stdint.h>

#define SQS_WAIT_POLL_MS 500
#define SQS_WAIT_TIMEOUT_MAX_MS 600000

typedef struct sqs_commit_wait {
  pthread_mutex_t lock;
  pthread_cond_t changed; /* CLOCK_MONOTONIC */
  uint64_t revision;      /* highest revision known committed */
  uint64_t wakes;         /* sqs_commit_wait_wake calls */
} sqs_commit_wait;

/* Reads the store's current revision: 0, or an EP_E* code (its message already reported). */
typedef int32_t (*sqs_revision_fn)(void *data, uint64_t *ret_revision);

void sqs_commit_wait_init(sqs_commit_wait *w);
void sqs_commit_wait_destroy(sqs_commit_wait *w);

/* Records that revision has been committed and wakes the waiters. */
void sqs_commit_wait_note(sqs_commit_wait *w, uint64_t revision);

/* The storage contract's wait: 0 with *ret_revision once the revision is past after_revision
 * (read with read_revision first and then at least every SQS_WAIT_POLL_MS), EP_ETIMEDOUT,
 * EP_ECANCELED after sqs_commit_wait_wake, or read_revision's error. */
int32_t sqs_commit_wait_for(sqs_commit_wait *w, uint64_t after_revision, uint32_t timeout_ms,
                            sqs_revision_fn read_revision, void *data, uint64_t *ret_revision);

/* Every wait in progress returns EP_ECANCELED. */
void sqs_commit_wait_wake(sqs_commit_wait *w);

#endif
