/* storage-sqlite: the group-commit writer, see group_commit.h.
 *
 * One thread owns the write connection. It takes up to batch_max queued requests, opens one
 * BEGIN IMMEDIATE transaction, applies each request inside its own SAVEPOINT (a failed
 * expectation or error rolls back that savepoint only), then COMMITs once, so one fsync of
 * the WAL makes the whole group durable before any caller is woken. */
#define _POSIX_C_SOURCE 200809L /* pthreads */
#include "group_commit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The result of a request the writer has taken but not finished yet. */
#define RESULT_PENDING 1

/* The i-th op of a request: ops are laid out with the caller's stride. */
static const ep_storage_op *op_at(const sqs_request *req, uint32_t i) {
  return (const ep_storage_op *)((const char *)req->ops + (size_t)i * req->op_size);
}

/* Checks one expectation. Returns 0, EP_ECONFLICT with a message, or an error. */
static int check_expectation(sqs_conn *conn, const ep_storage_op *op, uint32_t index, char err[SQS_MESSAGE_MAX]) {
  uint64_t expect = op->expect_mod_revision;
  if (expect == EP_STORAGE_EXPECT_ANY) return 0;
  sqlite3_stmt *stmt = sqs_stmt(conn, SQS_KV_MOD_REVISION, err);
  if (!stmt) return EP_EIO;
  sqlite3_bind_text(stmt, 1, op->key, -1, SQLITE_STATIC);
  int rc = sqlite3_step(stmt);
  bool exists = rc == SQLITE_ROW;
  uint64_t mod = exists ? (uint64_t)sqlite3_column_int64(stmt, 0) : 0;
  sqs_stmt_done(stmt);
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) return sqs_fail(conn, rc, "cannot read a key's revision", err);
  if (expect == EP_STORAGE_EXPECT_ABSENT && exists) {
    snprintf(err, SQS_MESSAGE_MAX, "op %u: key '%.100s' exists (mod_revision %llu), expected absent", index, op->key,
             (unsigned long long)mod);
    return EP_ECONFLICT;
  }
  if (expect != EP_STORAGE_EXPECT_ABSENT && !exists) {
    snprintf(err, SQS_MESSAGE_MAX, "op %u: key '%.100s' does not exist, expected mod_revision %llu", index, op->key,
             (unsigned long long)expect);
    return EP_ECONFLICT;
  }
  if (expect != EP_STORAGE_EXPECT_ABSENT && mod != expect) {
    snprintf(err, SQS_MESSAGE_MAX, "op %u: key '%.100s' has mod_revision %llu, expected %llu", index, op->key,
             (unsigned long long)mod, (unsigned long long)expect);
    return EP_ECONFLICT;
  }
  return 0;
}

static int add_change(sqs_conn *conn, uint64_t revision, uint32_t seq, const ep_storage_op *op,
                      char err[SQS_MESSAGE_MAX]) {
  sqlite3_stmt *stmt = sqs_stmt(conn, SQS_CHANGE_ADD, err);
  if (!stmt) return EP_EIO;
  sqlite3_bind_int64(stmt, 1, (sqlite3_int64)revision);
  sqlite3_bind_int64(stmt, 2, seq);
  sqlite3_bind_int64(stmt, 3, op->kind);
  sqlite3_bind_text(stmt, 4, op->key, -1, SQLITE_STATIC);
  if (op->kind == EP_STORAGE_PUT)
    /* A non-NULL pointer binds an empty BLOB for a zero length, where NULL would bind NULL. */
    sqlite3_bind_blob64(stmt, 5, op->value_len ? (const void *)op->value : "", op->value_len, SQLITE_STATIC);
  int rc = sqlite3_step(stmt);
  sqs_stmt_done(stmt);
  return rc == SQLITE_DONE ? 0 : sqs_fail(conn, rc, "cannot append to the change log", err);
}

/* Applies one write and logs its change (a delete of a missing key changes nothing). */
static int apply_op(sqs_conn *conn, uint64_t revision, const ep_storage_op *op, uint32_t *seq,
                    char err[SQS_MESSAGE_MAX]) {
  sqlite3_stmt *stmt = sqs_stmt(conn, op->kind == EP_STORAGE_PUT ? SQS_KV_PUT : SQS_KV_DELETE, err);
  if (!stmt) return EP_EIO;
  sqlite3_bind_text(stmt, 1, op->key, -1, SQLITE_STATIC);
  if (op->kind == EP_STORAGE_PUT) {
    sqlite3_bind_blob64(stmt, 2, op->value_len ? (const void *)op->value : "", op->value_len, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 3, (sqlite3_int64)revision);
  }
  int rc = sqlite3_step(stmt);
  sqs_stmt_done(stmt);
  if (rc != SQLITE_DONE) return sqs_fail(conn, rc, "cannot write a key", err);
  if (op->kind == EP_STORAGE_DELETE && sqlite3_changes(conn->db) == 0) return 0;
  return add_change(conn, revision, (*seq)++, op, err);
}

/* Applies a transaction at revision inside the open savepoint: every expectation first,
 * then the writes. */
static int apply_txn(sqs_conn *conn, sqs_request *req, uint64_t revision) {
  for (uint32_t i = 0; i < req->count; i++) {
    int r = check_expectation(conn, op_at(req, i), i, req->message);
    if (r == EP_ECONFLICT) req->failed_op = i;
    if (r < 0) return r;
  }
  uint32_t seq = 0;
  for (uint32_t i = 0; i < req->count; i++) {
    int r = apply_op(conn, revision, op_at(req, i), &seq, req->message);
    if (r < 0) return r;
  }
  return 0;
}

/* Drops change-log entries below before_revision and records the new compacted revision. */
static int apply_compact(sqs_conn *conn, sqs_request *req, uint64_t revision) {
  if (req->before_revision > revision + 1) {
    snprintf(req->message, SQS_MESSAGE_MAX, "before_revision %llu is past the store revision %llu",
             (unsigned long long)req->before_revision, (unsigned long long)revision);
    return EP_ERANGE;
  }
  uint64_t compacted = 0;
  int r = sqs_meta_get(conn, SQS_META_COMPACTED, &compacted, req->message);
  if (r < 0 || req->before_revision == 0 || req->before_revision - 1 <= compacted) return r;
  sqlite3_stmt *stmt = sqs_stmt(conn, SQS_CHANGES_COMPACT, req->message);
  if (!stmt) return EP_EIO;
  sqlite3_bind_int64(stmt, 1, (sqlite3_int64)req->before_revision);
  int rc = sqlite3_step(stmt);
  sqs_stmt_done(stmt);
  if (rc != SQLITE_DONE) return sqs_fail(conn, rc, "cannot compact the change log", req->message);
  return sqs_meta_set(conn, SQS_META_COMPACTED, req->before_revision - 1, req->message);
}

/* Fails every request of the batch that has not failed on its own: the pending ones and the
 * successes, whose writes are gone with the transaction. */
static void fail_batch(sqs_request **batch, size_t n, int code, const char *message) {
  for (size_t i = 0; i < n; i++) {
    sqs_request *req = batch[i];
    if (req->result < 0) continue;
    req->result = code;
    req->revision = 0;
    snprintf(req->message, SQS_MESSAGE_MAX, "%s", message);
  }
}

/* Runs one request in its own savepoint. Returns 0 when the batch can go on (the request
 * succeeded or failed on its own), or an error that spoils the whole batch, with a message
 * in err. */
static int run_request(sqs_conn *conn, sqs_request *req, uint64_t *revision, char err[SQS_MESSAGE_MAX]) {
  int r = sqs_exec(conn, SQS_SAVEPOINT, "cannot open a savepoint", err);
  if (r < 0) return r;
  if (req->kind == SQS_REQUEST_TXN)
    r = apply_txn(conn, req, *revision + 1);
  else
    r = apply_compact(conn, req, *revision);
  if (r == 0) {
    r = sqs_exec(conn, SQS_RELEASE, "cannot release a savepoint", err);
    if (r < 0) return r;
    req->result = 0;
    if (req->kind == SQS_REQUEST_TXN) req->revision = ++*revision;
    return 0;
  }
  req->result = r;
  /* Some errors (I/O, full disk) make SQLite roll back the whole transaction. */
  if (sqlite3_get_autocommit(conn->db)) {
    snprintf(err, SQS_MESSAGE_MAX, "%s", req->message);
    return r;
  }
  int undo = sqs_exec(conn, SQS_ROLLBACK_TO, "cannot roll back a savepoint", err);
  if (undo == 0) undo = sqs_exec(conn, SQS_RELEASE, "cannot release a savepoint", err);
  return undo;
}

static void run_batch(void *data, batch_item **items, size_t n) {
  sqs_writer *w = data;
  sqs_request **batch = (sqs_request **)items; /* item is each request's first member */
  sqs_conn *conn = w->conn;
  char err[SQS_MESSAGE_MAX];
  uint64_t start = 0, revision = 0;
  for (size_t i = 0; i < n; i++) batch[i]->result = RESULT_PENDING;

  int r = sqs_exec(conn, SQS_BEGIN_IMMEDIATE, "cannot start a write transaction", err);
  if (r == 0) r = sqs_meta_get(conn, SQS_META_REVISION, &start, err);
  revision = start;
  for (size_t i = 0; r == 0 && i < n; i++) r = run_request(conn, batch[i], &revision, err);
  if (r == 0 && revision != start) r = sqs_meta_set(conn, SQS_META_REVISION, revision, err);
  if (r == 0) r = sqs_exec(conn, SQS_COMMIT, "cannot commit", err);
  if (r < 0) {
    if (!sqlite3_get_autocommit(conn->db)) {
      char ignored[SQS_MESSAGE_MAX];
      sqs_exec(conn, SQS_ROLLBACK, "rollback", ignored);
    }
    fail_batch(batch, n, r, err);
    return;
  }
  /* Waiters hear of the group once, before its callers wake (each caller's own note is then a
   * no-op): a group of n transactions wakes the store's followers once, not n times. */
  if (w->commits && revision != start) commit_wait_note(w->commits, revision);
  w->batches++;
  w->committed += revision - start;
  if (n > w->largest_batch) w->largest_batch = n;
}

int sqs_writer_start(sqs_writer *w, sqs_conn *conn, commit_wait *commits, uint32_t batch_max,
                     char err[SQS_MESSAGE_MAX]) {
  memset(w, 0, sizeof *w);
  w->conn = conn;
  w->commits = commits;
  int r = batch_queue_start(&w->queue, batch_max, run_batch, w, err, SQS_MESSAGE_MAX);
  if (r < 0) w->conn = NULL; /* still the caller's */
  return r;
}

int sqs_writer_submit(sqs_writer *w, sqs_request *req) {
  req->result = 0;
  req->revision = 0;
  req->failed_op = 0;
  req->message[0] = '\0';
  if (!batch_queue_submit(&w->queue, &req->item)) {
    snprintf(req->message, SQS_MESSAGE_MAX, "the store is closing");
    return req->result = EP_ECANCELED;
  }
  return req->result;
}

void sqs_writer_stop(sqs_writer *w) {
  if (!w->queue.running) return;
  batch_queue_stop(&w->queue); /* drains the queue first */
  sqs_conn_close(w->conn);
  w->conn = NULL;
}
