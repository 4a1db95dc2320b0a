/* storage-postgres: the connection pool, see pg_pool.h. */
#include "pg_pool.h"

#include <stdlib.h>
#include <string.h>

#include <edgeprov/abi.h>

int pgs_pool_init(pgs_pool *pool, const pgs_params *params, size_t size) {
  memset(pool, 0, sizeof *pool);
  pool->idle = calloc(size, sizeof *pool->idle);
  if (!pool->idle) return EP_ENOMEM;
  pool->size = size;
  pool->params = params;
  pthread_mutex_init(&pool->lock, NULL);
  pthread_cond_init(&pool->returned, NULL);
  return 0;
}

void pgs_pool_destroy(pgs_pool *pool) {
  if (!pool->idle) return;
  for (size_t i = 0; i < pool->idle_count; i++) PQfinish(pool->idle[i]);
  pool->idle_count = pool->open_count = 0;
  pthread_cond_destroy(&pool->returned);
  pthread_mutex_destroy(&pool->lock);
  free(pool->idle);
  pool->idle = NULL;
}

/* Gives up a slot (a connection closed or never opened) and wakes a waiter. */
static void slot_free(pgs_pool *pool) {
  pthread_mutex_lock(&pool->lock);
  pool->open_count--;
  pthread_cond_signal(&pool->returned);
  pthread_mutex_unlock(&pool->lock);
}

int pgs_pool_acquire(pgs_pool *pool, PGconn **out, char err[PGS_MESSAGE_MAX]) {
  pthread_mutex_lock(&pool->lock);
  while (pool->idle_count > 0) {
    PGconn *conn = pool->idle[--pool->idle_count];
    if (pgs_usable(conn)) {
      pthread_mutex_unlock(&pool->lock);
      *out = conn;
      return 0;
    }
    PQfinish(conn); /* the server ended it: reconnect below */
    pool->open_count--;
  }
  while (pool->idle_count == 0 && pool->open_count >= pool->size) pthread_cond_wait(&pool->returned, &pool->lock);
  if (pool->idle_count > 0) {
    PGconn *conn = pool->idle[--pool->idle_count];
    pthread_mutex_unlock(&pool->lock);
    if (pgs_usable(conn)) {
      *out = conn;
      return 0;
    }
    PQfinish(conn);
  } else {
    pool->open_count++; /* reserve the slot, then connect outside the lock */
    pthread_mutex_unlock(&pool->lock);
  }
  PGconn *conn = NULL;
  int r = pgs_connect(&conn, pool->params, err);
  if (r < 0) {
    slot_free(pool);
    return r;
  }
  *out = conn;
  return 0;
}

void pgs_pool_release(pgs_pool *pool, PGconn *conn) {
  if (PQstatus(conn) != CONNECTION_OK || PQtransactionStatus(conn) != PQTRANS_IDLE) {
    PQfinish(conn);
    slot_free(pool);
    return;
  }
  pthread_mutex_lock(&pool->lock);
  pool->idle[pool->idle_count++] = conn;
  pthread_cond_signal(&pool->returned);
  pthread_mutex_unlock(&pool->lock);
}
