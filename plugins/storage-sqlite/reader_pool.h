/* storage-sqlite: a small pool of read connections, so reads never wait behind the writer. */
#ifndef SQS_READER_POOL_H
#define SQS_READER_POOL_H

#include <pthread.h>
#include <stddef.h>

#include "sqlite_conn.h"

/* Most read connections open at once; a reader beyond that waits for one to be returned. */
#define SQS_READERS_MAX 8

typedef struct sqs_pool {
  pthread_mutex_t lock;
  pthread_cond_t returned;
  sqs_conn *idle[SQS_READERS_MAX];
  size_t idle_count;
  size_t open_count; /* idle plus checked out */
  char *path;
  int busy_timeout_ms;
} sqs_pool;

/* Prepares an empty pool for the database at path (copied). Returns 0 or EP_ENOMEM. */
int sqs_pool_init(sqs_pool *pool, const char *path, int busy_timeout_ms);

/* Closes every connection; all must have been returned. */
void sqs_pool_destroy(sqs_pool *pool);

/* Checks out a read connection, opening one when none is idle and fewer than
 * SQS_READERS_MAX are open, else waiting. Returns 0 with *out set, or an EP_E* code with a
 * message in err. Any thread. */
int sqs_pool_acquire(sqs_pool *pool, sqs_conn **out, char err[SQS_MESSAGE_MAX]);

/* Returns conn (no transaction open) to the pool. */
void sqs_pool_release(sqs_pool *pool, sqs_conn *conn);

#endif
