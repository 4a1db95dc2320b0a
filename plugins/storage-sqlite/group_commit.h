/* storage-sqlite: the one writer thread, which commits queued transactions in groups. */
#ifndef SQS_GROUP_COMMIT_H
#define SQS_GROUP_COMMIT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <edgeprov/storage.h>

#include "batch_queue.h"
#include "commit_wait.h"
#include "sqlite_conn.h"

typedef enum sqs_request_kind {
  SQS_REQUEST_TXN,     /* ops, count, op_size */
  SQS_REQUEST_COMPACT, /* before_revision */
} sqs_request_kind;

/* One caller's write, on the caller's stack while it waits. The caller fills the input
 * fields (already validated); the writer fills the results before marking it done. */
typedef struct sqs_request {
  batch_item item; /* first: the queue hands the writer its items */
  sqs_request_kind kind;
  const ep_storage_op *ops;
  uint32_t count;
  uint32_t op_size;
  uint64_t before_revision;

  int result;         /* 0 or an EP_E* code, with message */
  uint64_t revision;  /* the transaction's revision on success */
  uint32_t failed_op; /* index of the failed expectation with EP_ECONFLICT */
  char message[SQS_MESSAGE_MAX];
} sqs_request;

typedef struct sqs_writer {
  batch_queue queue;  /* at most batch_max transactions committed together */
  sqs_conn *conn;     /* owned by the writer thread while it runs */
  commit_wait *commits; /* told each group's last revision, NULL for none */
  /* Figures, written by the writer thread, read after sqs_writer_stop. */
  uint64_t batches;
  uint64_t committed;
  uint64_t largest_batch;
} sqs_writer;

/* Starts the writer thread on conn (a writer connection, which it then owns until stop);
 * commits (may be NULL) is told the last revision of each group once it is durable.
 * Returns 0, or an EP_E* code with a message in err. */
int sqs_writer_start(sqs_writer *w, sqs_conn *conn, commit_wait *commits, uint32_t batch_max,
                     char err[SQS_MESSAGE_MAX]);

/* Queues req and waits until the writer has committed or refused it; returns req->result.
 * Any thread; EP_ECANCELED once the writer is stopping. */
int sqs_writer_submit(sqs_writer *w, sqs_request *req);

/* Lets the writer drain the queue, joins it and closes its connection. Safe to call on a
 * writer that never started. */
void sqs_writer_stop(sqs_writer *w);

#endif
