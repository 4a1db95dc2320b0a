/* storage-postgres: the group-commit writer, see group_commit.h.
 *
 * One thread owns the write connection. It takes up to batch_max queued requests and sends,
 * in one libpq pipeline (one round trip): BEGIN, one edgeprov_txn call per request, COMMIT.
 * edgeprov_txn checks every expectation of its request before it writes anything and writes
 * nothing when one fails, so each request stays atomic and reports its own conflict without
 * a savepoint; an error (a timeout, a lost connection) rolls the whole group back and fails
 * each of its callers, none of whom was acknowledged. The COMMIT returns once the group is
 * flushed to the WAL (synchronous_commit is on for the session), before any caller wakes. */
#define _POSIX_C_SOURCE 200809L /* pthreads */
#include "group_commit.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Type OIDs of the parameters (pg_type.h is a server header). */
#define OID_BYTEA 17
#define OID_TEXT 25
/* The result of a request the writer has taken but not finished yet. */
#define RESULT_PENDING 1

/* The i-th op of a request: ops are laid out with the caller's stride. */
static const ep_storage_op *op_at(const pgs_request *req, uint32_t i) {
  return (const ep_storage_op *)((const char *)req->ops + (size_t)i * req->op_size);
}

/* One request's statement and parameters: keys as text, values of puts as binary bytea;
 * kinds and expectations are numbers of ours, written into the SQL. */
typedef struct call {
  char *sql;
  const char **values;
  int *lengths, *formats;
  unsigned int *types;
  int nparams;
} call;

static void call_free(call *c) {
  free(c->sql);
  free(c->values);
  free(c->lengths);
  free(c->formats);
  free(c->types);
}

/* Appends to the SQL at offset at; returns the new offset (size or more once it is full). */
static size_t append(char *buf, size_t size, size_t at, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static size_t append(char *buf, size_t size, size_t at, const char *fmt, ...) {
  if (at >= size) return at;
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf + at, size - at, fmt, ap);
  va_end(ap);
  return n < 0 ? size : at + (size_t)n;
}

static int call_build(call *c, const pgs_request *req) {
  memset(c, 0, sizeof *c);
  size_t size = 256 + (size_t)req->count * 64;
  uint32_t n = req->count;
  c->sql = malloc(size);
  c->values = calloc(2 * n, sizeof *c->values);
  c->lengths = calloc(2 * n, sizeof *c->lengths);
  c->formats = calloc(2 * n, sizeof *c->formats);
  c->types = calloc(2 * n, sizeof *c->types);
  if (!c->sql || !c->values || !c->lengths || !c->formats || !c->types) return EP_ENOMEM;
  size_t at = append(c->sql, size, 0, "SELECT ret_revision, ret_failed_op, ret_failed_mod FROM edgeprov_txn(ARRAY[");
  for (uint32_t i = 0; i < n; i++) at = append(c->sql, size, at, "%s%u", i ? "," : "", op_at(req, i)->kind);
  at = append(c->sql, size, at, "]::integer[],ARRAY[");
  for (uint32_t i = 0; i < n; i++) {
    c->values[c->nparams] = op_at(req, i)->key;
    c->types[c->nparams++] = OID_TEXT;
    at = append(c->sql, size, at, "%s$%d", i ? "," : "", c->nparams);
  }
  at = append(c->sql, size, at, "]::text[],ARRAY[");
  for (uint32_t i = 0; i < n; i++) {
    const ep_storage_op *op = op_at(req, i);
    if (op->kind != EP_STORAGE_PUT) {
      at = append(c->sql, size, at, "%sNULL", i ? "," : "");
      continue;
    }
    /* A non-NULL pointer sends an empty bytea for a zero length, where NULL would send NULL. */
    c->values[c->nparams] = op->value_len ? (const char *)op->value : "";
    c->lengths[c->nparams] = (int)op->value_len;
    c->formats[c->nparams] = 1;
    c->types[c->nparams++] = OID_BYTEA;
    at = append(c->sql, size, at, "%s$%d", i ? "," : "", c->nparams);
  }
  at = append(c->sql, size, at, "]::bytea[],ARRAY[");
  for (uint32_t i = 0; i < n; i++) {
    uint64_t expect = op_at(req, i)->expect_mod_revision;
    if (expect == EP_STORAGE_EXPECT_ANY)
      at = append(c->sql, size, at, "%sNULL", i ? "," : "");
    else /* a revision past bigint matches no key: -1 fails the same way */
      at = append(c->sql, size, at, "%s%lld", i ? "," : "", expect > INT64_MAX ? -1LL : (long long)expect);
  }
  at = append(c->sql, size, at, "]::bigint[])");
  return at < size ? 0 : EP_ENOMEM;
}

/* The message of a failed expectation, worded as storage-sqlite words it. */
static void conflict_message(pgs_request *req, uint32_t index, bool exists, uint64_t mod) {
  const ep_storage_op *op = op_at(req, index);
  uint64_t expect = op->expect_mod_revision;
  if (expect == EP_STORAGE_EXPECT_ABSENT)
    snprintf(req->message, PGS_MESSAGE_MAX, "op %u: key '%.100s' exists (mod_revision %llu), expected absent", index,
             op->key, (unsigned long long)mod);
  else if (!exists)
    snprintf(req->message, PGS_MESSAGE_MAX, "op %u: key '%.100s' does not exist, expected mod_revision %llu", index,
             op->key, (unsigned long long)expect);
  else
    snprintf(req->message, PGS_MESSAGE_MAX, "op %u: key '%.100s' has mod_revision %llu, expected %llu", index,
             op->key, (unsigned long long)mod, (unsigned long long)expect);
}

/* Takes the answer of one edgeprov_txn call. */
static void take_answer(pgs_request *req, const PGresult *res) {
  if (!PQgetisnull(res, 0, 0)) {
    req->result = 0;
    req->revision = (uint64_t)pgs_int(res, 0, 0);
    return;
  }
  uint32_t index = (uint32_t)pgs_int(res, 0, 1);
  if (index >= req->count) index = 0;
  req->result = EP_ECONFLICT;
  req->failed_op = index;
  conflict_message(req, index, !PQgetisnull(res, 0, 2), (uint64_t)pgs_int(res, 0, 2));
}

/* Fails every request of the batch that has not failed on its own: the pending ones and the
 * successes, whose writes are gone with the transaction. */
static void fail_batch(pgs_request **batch, size_t n, int code, const char *message) {
  for (size_t i = 0; i < n; i++) {
    pgs_request *req = batch[i];
    if (req->result < 0) continue;
    req->result = code;
    req->revision = 0;
    snprintf(req->message, PGS_MESSAGE_MAX, "%s", message);
  }
}

/* Sends the whole group into the pipeline. Returns 0 or an EP_E* code with message. */
static int send_batch(PGconn *conn, pgs_request **batch, size_t n, char err[PGS_MESSAGE_MAX]) {
  if (!PQsendQueryParams(conn, "BEGIN", 0, NULL, NULL, NULL, NULL, 0))
    return pgs_fail(conn, NULL, "cannot start a write transaction", err);
  for (size_t i = 0; i < n; i++) {
    call c;
    int r = call_build(&c, batch[i]);
    if (r == 0 && !PQsendQueryParams(conn, c.sql, c.nparams, c.types, c.values, c.lengths, c.formats, 1))
      r = pgs_fail(conn, NULL, "cannot send a transaction", err);
    else if (r < 0)
      snprintf(err, PGS_MESSAGE_MAX, "out of memory");
    call_free(&c);
    if (r < 0) return r;
  }
  if (!PQsendQueryParams(conn, "COMMIT", 0, NULL, NULL, NULL, NULL, 0) || !PQpipelineSync(conn))
    return pgs_fail(conn, NULL, "cannot commit", err);
  return 0;
}

/* Reads the group's answers: BEGIN's, one per request, COMMIT's, then the sync. The
 * requests' results are final only when this returns 0. */
static int read_batch(PGconn *conn, const pgs_params *p, pgs_request **batch, size_t n, char err[PGS_MESSAGE_MAX]) {
  int r = 0;
  for (size_t i = 0; i < n + 2; i++) {
    int code = 0;
    PGresult *res = pgs_next(conn, p, &code, err);
    if (!res) return code < 0 ? code : pgs_fail(conn, NULL, "PostgreSQL ended the answer early", err);
    ExecStatusType status = PQresultStatus(res);
    bool is_call = i > 0 && i <= n;
    if (r == 0 && status == PGRES_PIPELINE_ABORTED) {
      snprintf(err, PGS_MESSAGE_MAX, "PostgreSQL aborted the transaction");
      r = EP_EIO;
    } else if (r == 0 && status != (is_call ? PGRES_TUPLES_OK : PGRES_COMMAND_OK)) {
      r = pgs_fail(conn, res, i == 0 ? "cannot start a write transaction" : is_call ? "cannot write" : "cannot commit",
                   err);
    } else if (r == 0 && is_call) {
      if (PQntuples(res) == 1)
        take_answer(batch[i - 1], res);
      else
        r = pgs_fail(conn, res, "edgeprov_txn returned no row", err);
    }
    PQclear(res);
    if ((res = pgs_next(conn, p, &code, err))) { /* the NULL that ends each statement's results */
      PQclear(res);
      return r < 0 ? r : pgs_fail(conn, NULL, "PostgreSQL sent an unexpected result", err);
    }
    if (code < 0) return code;
  }
  int code = 0;
  PGresult *sync = pgs_next(conn, p, &code, err);
  if (!sync) return code < 0 ? code : pgs_fail(conn, NULL, "PostgreSQL did not end the pipeline", err);
  if (PQresultStatus(sync) != PGRES_PIPELINE_SYNC && r == 0) r = pgs_fail(conn, sync, "cannot commit", err);
  PQclear(sync);
  return r;
}

/* Makes sure the writer has a connection; reconnects after the server ended the last one. */
static int writer_connect(pgs_writer *w, char err[PGS_MESSAGE_MAX]) {
  if (pgs_usable(w->conn)) return 0;
  PQfinish(w->conn);
  w->conn = NULL;
  return pgs_connect(&w->conn, w->params, err);
}

static void run_batch(void *data, batch_item **items, size_t n) {
  pgs_writer *w = data;
  pgs_request **batch = (pgs_request **)items; /* item is each request's first member */
  char err[PGS_MESSAGE_MAX];
  for (size_t i = 0; i < n; i++) batch[i]->result = RESULT_PENDING;
  int r = writer_connect(w, err);
  if (r == 0 && !PQenterPipelineMode(w->conn)) r = pgs_fail(w->conn, NULL, "cannot enter pipeline mode", err);
  if (r == 0) r = send_batch(w->conn, batch, n, err);
  if (r == 0) r = read_batch(w->conn, w->params, batch, n, err);
  if (r == 0 && !PQexitPipelineMode(w->conn)) r = pgs_fail(w->conn, NULL, "cannot leave pipeline mode", err);
  if (r < 0) {
    /* What is left of the pipeline and of the transaction goes with the connection: the
     * server rolls the group back, and the next group reconnects. */
    PQfinish(w->conn);
    w->conn = NULL;
    fail_batch(batch, n, r, err);
    return;
  }
  w->batches++;
  for (size_t i = 0; i < n; i++) w->committed += batch[i]->result == 0;
  if (n > w->largest_batch) w->largest_batch = n;
}

int pgs_writer_start(pgs_writer *w, PGconn *conn, const pgs_params *params, uint32_t batch_max,
                     char err[PGS_MESSAGE_MAX]) {
  memset(w, 0, sizeof *w);
  w->conn = conn;
  w->params = params;
  int r = batch_queue_start(&w->queue, batch_max, run_batch, w, err, PGS_MESSAGE_MAX);
  if (r < 0) w->conn = NULL; /* still the caller's */
  return r;
}

int pgs_writer_submit(pgs_writer *w, pgs_request *req) {
  req->result = 0;
  req->revision = 0;
  req->failed_op = 0;
  req->message[0] = '\0';
  if (!batch_queue_submit(&w->queue, &req->item)) {
    snprintf(req->message, PGS_MESSAGE_MAX, "the store is closing");
    return req->result = EP_ECANCELED;
  }
  return req->result;
}

void pgs_writer_stop(pgs_writer *w) {
  if (!w->queue.running) return;
  batch_queue_stop(&w->queue); /* drains the queue first */
  PQfinish(w->conn);
  w->conn = NULL;
}
