/* storage-sqlite: the read connection pool, see reader_pool.h. */
#define _POSIX_C_SOURCE 200809L /* strdup */
#include "reader_pool.h"

#include <stdlib.h>
#include <string.h>

#include <edgeprov/abi.h>

int sqs_pool_init(sqs_pool *pool, const char *path, int busy_timeout_ms) {
  memset(pool, 0, sizeof *pool);
  pool->path = strdup(path);
  if (!pool->path) return EP_ENOMEM;
  pool->busy_timeout_ms = busy_timeout_ms;
  pthread_mutex_init(&pool->lock, NULL);
  pthread_cond_init(&pool->returned, NULL);
  return 0;
}

void sqs_pool_destroy(sqs_pool *pool) {
  for (size_t i = 0; i < pool->idle_count; i++) sqs_conn_close(pool->idle[i]);
  pool->idle_count = pool->open_count = 0;
  pthread_cond_destroy(&pool->returned);
  pthread_mutex_destroy(&pool->lock);
  free(pool->path);
  pool->path = NULL;
}

int sqs_pool_acquire(sqs_pool *pool, sqs_conn **out, char err[SQS_MESSAGE_MAX]) {
  pthread_mutex_lock(&pool->lock);
  while (pool->idle_count == 0 && pool->open_count >= SQS_READERS_MAX)
    pthread_cond_wait(&pool->returned, &pool->lock);
  if (pool->idle_count > 0) {
    *out = pool->idle[--pool->idle_count];
    pthread_mutex_unlock(&pool->lock);
    return 0;
  }
  pool->open_count++; /* reserve the slot, then open outside the lock */
  pthread_mutex_unlock(&pool->lock);

  sqs_conn *conn = NULL;
  int r = sqs_conn_open(&conn, pool->path, pool->busy_timeout_ms, true, err);
  if (r < 0) {
    pthread_mutex_lock(&pool->lock);
    pool->open_count--;
    pthread_cond_signal(&pool->returned);
    pthread_mutex_unlock(&pool->lock);
    return r;
  }
  *out = conn;
  return 0;
}

void sqs_pool_release(sqs_pool *pool, sqs_conn *conn) {
  pthread_mutex_lock(&pool->lock);
  pool->idle[pool->idle_count++] = conn;
  pthread_cond_signal(&pool->returned);
  pthread_mutex_unlock(&pool->lock);
}
