/* storage-postgres: a pool of connections for reads and compaction, sized by a setting. */
#ifndef PGS_PG_POOL_H
#define PGS_PG_POOL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include "pg_conn.h"

typedef struct pgs_pool {
  pthread_mutex_t lock;
  pthread_cond_t returned;
  PGconn **idle;
  size_t idle_count;
  size_t open_count; /* idle plus checked out */
  size_t size;       /* most connections open at once */
  const pgs_params *params;
} pgs_pool;

/* Prepares an empty pool of at most size connections to params (kept, not copied).
 * Returns 0 or EP_ENOMEM. */
int pgs_pool_init(pgs_pool *pool, const pgs_params *params, size_t size);

/* Closes every connection; all must have been returned. */
void pgs_pool_destroy(pgs_pool *pool);

/* Checks out a usable connection: an idle one that is still connected (one the server
 * closed, as a restart does, is dropped), else a new one when fewer than size are open,
 * else waits for one. Returns 0 with *out set, or an EP_E* code with a message in err (the
 * server cannot be reached). Any thread. */
int pgs_pool_acquire(pgs_pool *pool, PGconn **out, char err[PGS_MESSAGE_MAX]);

/* Returns conn to the pool; a connection that is not idle and connected (it failed, timed
 * out or is inside a transaction) is closed instead. */
void pgs_pool_release(pgs_pool *pool, PGconn *conn);

#endif
