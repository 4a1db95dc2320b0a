/* storage-postgres: the listener. One connection LISTENs on the channel edgeprov_txn notifies
 * at every commit (whichever replica commits) and passes each revision to a commit_wait, so
 * a replica's waiters learn of another's writes as soon as PostgreSQL delivers them. When the
 * connection is lost it reconnects with backoff and reads the revision it may have missed. */
#ifndef PGS_PG_LISTEN_H
#define PGS_PG_LISTEN_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "commit_wait.h"
#include "pg_conn.h"

#define PGS_NOTIFY_CHANNEL "edgeprov_revision"

typedef struct pgs_listener {
  const pgs_params *params;
  commit_wait *commits;
  pthread_t thread;
  int stop_pipe[2];     /* written by pgs_listener_stop: the thread's poll wakes */
  atomic_bool listening; /* connected and LISTENing: notifications arrive */
  bool running;
} pgs_listener;

/* Starts the listener thread. Returns 0, or EP_ENOMEM / -errno. */
int pgs_listener_start(pgs_listener *l, const pgs_params *params, commit_wait *commits);

/* Stops and joins the thread (at once, whatever it is waiting for). Safe on a listener that
 * never started. */
void pgs_listener_stop(pgs_listener *l);

#endif
