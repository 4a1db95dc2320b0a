/* storage-postgres: the writer thread, which commits queued transactions in groups, each
 * group in one PostgreSQL transaction and one round trip. */
#ifndef PGS_GROUP_COMMIT_H
#define PGS_GROUP_COMMIT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <edgeprov/storage.h>

#include "batch_queue.h"
#include "pg_conn.h"

/* One caller's transaction, on the caller's stack while it waits. The caller fills the
 * input fields (already validated); the writer fills the results before marking it done. */
typedef struct pgs_request {
  batch_item item; /* first: the queue hands the writer its items */
  const ep_storage_op *ops;
  uint32_t count;
  uint32_t op_size;

  int result;         /* 0 or an EP_E* code, with message */
  uint64_t revision;  /* the transaction's revision on success */
  uint32_t failed_op; /* index of the failed expectation with EP_ECONFLICT */
  char message[PGS_MESSAGE_MAX];
} pgs_request;

typedef struct pgs_writer {
  batch_queue queue; /* at most batch_max transactions committed together */
  PGconn *conn; /* owned by the writer thread while it runs; NULL until (re)connected */
  const pgs_params *params;
  /* Figures, written by the writer thread, read after pgs_writer_stop. */
  uint64_t batches;
  uint64_t committed;
  uint64_t largest_batch;
} pgs_writer;

/* Starts the writer thread on conn (which it then owns; it reconnects with params when the
 * server ends it). Returns 0, or an EP_E* code with a message in err. */
int pgs_writer_start(pgs_writer *w, PGconn *conn, const pgs_params *params, uint32_t batch_max,
                     char err[PGS_MESSAGE_MAX]);

/* Queues req and waits until the writer has committed or refused it; returns req->result.
 * Any thread; EP_ECANCELED once the writer is stopping. */
int pgs_writer_submit(pgs_writer *w, pgs_request *req);

/* Lets the writer drain the queue, joins it and closes its connection. Safe to call on a
 * writer that never started. */
void pgs_writer_stop(pgs_writer *w);

#endif
