/* storage-postgres: the edgeprov.storage/1 capability on PostgreSQL (libpq; group commit,
 * revisions in commit order, a connection pool). This file holds the plugin entry, settings,
 * input validation and the reads; the writer is in group_commit.c, the pool in pg_pool.c,
 * connections and the schema in pg_conn.c. */
#define _POSIX_C_SOURCE 200809L /* strdup */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <edgeprov/edgeprov.h>
#include <edgeprov/storage.h>

#include "group_commit.h"
#include "storage_check.h"
#include "pg_conn.h"
#include "pg_listen.h"
#include "pg_pool.h"

#define PGS_CONNINFO_MAX 4095
#define STORAGE_LIMIT_MAX 10000 /* most records of one list or changes call */

typedef struct pgs_store {
  const ep_host *host;
  ep_ctx *ctx;                /* the plugin's context: every error is reported on it */
  pthread_mutex_t error_lock; /* one set_error at a time, so messages are never interleaved */
  pgs_params params;
  char where[PGS_MESSAGE_MAX / 2]; /* the database, named without its password */
  bool pool_ready;
  pgs_pool pool;
  pgs_writer writer;
  commit_wait commits;   /* wait and wake */
  pgs_listener listener; /* feeds commits with every replica's revisions */
  _Atomic int64_t revision_read_ms; /* when wait last read the revision from the database */
  /* lead: session advisory locks on a connection of their own, which end with its session. */
  pthread_mutex_t lead_lock;
  PGconn *lead_conn;
  char held[STORAGE_ROLES_MAX][STORAGE_ROLE_MAX + 1];
} pgs_store;

/* ---- errors and validation ------------------------------------------------------------ */

static int32_t fail(pgs_store *s, int32_t code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int32_t fail(pgs_store *s, int32_t code, const char *fmt, ...) {
  char message[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(message, sizeof message, fmt, ap);
  va_end(ap);
  pthread_mutex_lock(&s->error_lock);
  s->host->set_error(s->ctx, code, message);
  pthread_mutex_unlock(&s->error_lock);
  return code;
}

/* The argument checks every backend makes (plugins/common/storage_check.c), reported here. */
static int32_t checked(pgs_store *s, int32_t r, const char *err) { return r < 0 ? fail(s, r, "%s", err) : 0; }

static int32_t check_bound(pgs_store *s, const char *name, const char *text) {
  char err[STORAGE_CHECK_MESSAGE_MAX];
  return checked(s, storage_check_bound(name, text, err), err);
}

static int32_t check_limit(pgs_store *s, uint32_t limit) {
  char err[STORAGE_CHECK_MESSAGE_MAX];
  return checked(s, storage_check_limit(limit, err), err);
}

static int32_t check_txn(pgs_store *s, const ep_storage_op *ops, uint32_t count, uint32_t op_size) {
  char err[STORAGE_CHECK_MESSAGE_MAX];
  return checked(s, storage_check_txn(ops, count, op_size, err), err);
}


/* ---- reads ---------------------------------------------------------------------------- */


/* Called per row of a read; keeps its own state in data. */
typedef void (*row_fn)(void *data, const PGresult *res);

/* Runs one read-only query on a pool connection, rows one at a time (single-row mode, so a
 * large page is never held whole). A connection the server dropped (a restart) is retried
 * once on a fresh one if no row was seen yet. Returns 0 or an EP_E* code with message. */
static int run_query(pgs_store *s, const char *what, const char *sql, int nparams, const char *const *values,
                     row_fn on_row, void *data, char err[PGS_MESSAGE_MAX]) {
  for (int attempt = 0;; attempt++) {
    PGconn *conn = NULL;
    int r = pgs_pool_acquire(&s->pool, &conn, err);
    if (r < 0) return r;
    bool seen = false;
    if (!PQsendQueryParams(conn, sql, nparams, NULL, values, NULL, NULL, 1) || !PQsetSingleRowMode(conn))
      r = pgs_fail(conn, NULL, what, err);
    while (r == 0) {
      int code = 0;
      PGresult *res = pgs_next(conn, &s->params, &code, err);
      if (!res) {
        r = code;
        break;
      }
      ExecStatusType status = PQresultStatus(res);
      if (status == PGRES_SINGLE_TUPLE) {
        seen = true;
        on_row(data, res);
      } else if (status != PGRES_TUPLES_OK) {
        r = pgs_fail(conn, res, what, err);
      }
      PQclear(res);
    }
    bool lost = PQstatus(conn) != CONNECTION_OK;
    pgs_pool_release(&s->pool, conn); /* closes it unless it is idle and connected */
    if (r < 0 && lost && !seen && attempt == 0) continue;
    return r;
  }
}

/* A column of a binary result, as bytes (never NULL). */
static const uint8_t *column_bytes(const PGresult *res, int col, uint64_t *len) {
  *len = (uint64_t)PQgetlength(res, 0, col);
  return (const uint8_t *)PQgetvalue(res, 0, col);
}

typedef struct get_state {
  const char *key;
  ep_storage_visit_fn visit;
  void *data;
  bool found;
} get_state;

static void get_row(void *data, const PGresult *res) {
  get_state *g = data;
  ep_storage_record rec = {.struct_size = sizeof rec, .key = g->key};
  rec.value = column_bytes(res, 0, &rec.value_len);
  rec.create_revision = (uint64_t)pgs_int(res, 0, 1);
  rec.mod_revision = (uint64_t)pgs_int(res, 0, 2);
  g->found = true;
  if (g->visit) g->visit(g->data, &rec);
}

static int32_t store_get(void *state, const char *key, ep_storage_visit_fn visit, void *data) {
  pgs_store *s = state;
  const char *problem = storage_key_problem(key);
  if (problem) return fail(s, EP_EINVAL, "key %s", problem);
  char err[PGS_MESSAGE_MAX];
  get_state g = {.key = key, .visit = visit, .data = data};
  int r = run_query(s, "cannot read a key", "SELECT value, create_revision, mod_revision FROM edgeprov_kv WHERE key = $1",
                    1, &key, get_row, &g, err);
  if (r < 0) return fail(s, r, "%s", err);
  if (!g.found) return fail(s, EP_ENOENT, "key '%.100s' not found", key);
  return 0;
}

typedef struct list_state {
  uint32_t limit, count;
  bool stopped, more;
  uint64_t revision;
  ep_storage_visit_fn visit;
  void *data;
} list_state;

/* Columns: the store revision, then key, value, create and mod revision (NULL when the page
 * is empty). The limit + 1st row only says that more remain. */
static void list_row(void *data, const PGresult *res) {
  list_state *l = data;
  l->revision = (uint64_t)pgs_int(res, 0, 0);
  if (PQgetisnull(res, 0, 1)) return;
  if (l->count == l->limit || l->stopped) {
    l->more = true;
    return;
  }
  ep_storage_record rec = {.struct_size = sizeof rec, .key = PQgetvalue(res, 0, 1)};
  rec.value = column_bytes(res, 2, &rec.value_len);
  rec.create_revision = (uint64_t)pgs_int(res, 0, 3);
  rec.mod_revision = (uint64_t)pgs_int(res, 0, 4);
  l->count++;
  if (l->visit && l->visit(l->data, &rec) != 0) l->stopped = true;
}

/* Visits one page of records; see storage.h. One statement reads the page and the revision,
 * so they come from one snapshot and agree. */
static int32_t store_list(void *state, const char *prefix, const char *start_after, uint32_t limit,
                          ep_storage_visit_fn visit, void *data, uint64_t *ret_revision, int32_t *ret_more) {
  pgs_store *s = state;
  int32_t r;
  if ((r = check_bound(s, "prefix", prefix)) < 0 || (r = check_bound(s, "start_after", start_after)) < 0 ||
      (r = check_limit(s, limit)) < 0)
    return r;
  /* One lower bound serves both constraints: keys >= prefix, or keys > start_after when
   * that is not smaller than prefix. */
  bool after = strcmp(start_after, prefix) >= 0;
  char end[EP_STORAGE_KEY_MAX + 1];
  bool bounded = storage_prefix_end(prefix, end);
  char sql[512], fetch[16];
  snprintf(sql, sizeof sql,
           "SELECT m.value, k.key, k.value, k.create_revision, k.mod_revision FROM edgeprov_meta m "
           "LEFT JOIN LATERAL (SELECT * FROM edgeprov_kv WHERE key %s $1%s ORDER BY key LIMIT $2) k ON true "
           "WHERE m.name = 'revision' ORDER BY k.key",
           after ? ">" : ">=", bounded ? " AND key < $3" : "");
  snprintf(fetch, sizeof fetch, "%u", limit + 1);
  const char *values[3] = {after ? start_after : prefix, fetch, end};
  list_state l = {.limit = limit, .visit = visit, .data = data};
  char err[PGS_MESSAGE_MAX];
  r = run_query(s, "cannot list keys", sql, bounded ? 3 : 2, values, list_row, &l, err);
  if (r < 0) return fail(s, r, "%s", err);
  if (ret_revision) *ret_revision = l.revision;
  if (ret_more) *ret_more = l.more;
  return 0;
}

typedef struct changes_state {
  uint64_t compacted;
  bool stopped;
  ep_storage_change_fn visit;
  void *data;
} changes_state;

/* Columns: the compacted revision, then revision, kind, key, value (NULL when there are no
 * changes, or after_revision is compacted). */
static void change_row(void *data, const PGresult *res) {
  changes_state *c = data;
  c->compacted = (uint64_t)pgs_int(res, 0, 0);
  if (PQgetisnull(res, 0, 1) || c->stopped) return;
  ep_storage_change change = {.struct_size = sizeof change};
  change.revision = (uint64_t)pgs_int(res, 0, 1);
  change.kind = (uint32_t)pgs_int(res, 0, 2);
  change.key = PQgetvalue(res, 0, 3);
  if (change.kind == EP_STORAGE_PUT) change.value = column_bytes(res, 4, &change.value_len);
  if (c->visit && c->visit(c->data, &change) != 0) c->stopped = true;
}

/* Visits changes after after_revision. limit counts changes, but a page never ends inside a
 * transaction: the statement takes the first limit changes and then the rest of the last
 * revision among them, so the next call can resume after the last revision seen. The
 * compacted revision comes from the same snapshot as the changes. */
static int32_t store_changes(void *state, uint64_t after_revision, uint32_t limit, ep_storage_change_fn visit,
                             void *data) {
  pgs_store *s = state;
  int32_t r = check_limit(s, limit);
  if (r < 0) return r;
  char after[24], count[16];
  snprintf(after, sizeof after, "%" PRIu64, after_revision > INT64_MAX ? (uint64_t)INT64_MAX : after_revision);
  snprintf(count, sizeof count, "%u", limit);
  const char *values[2] = {after, count};
  changes_state c = {.visit = visit, .data = data};
  char err[PGS_MESSAGE_MAX];
  r = run_query(s, "cannot read the change log",
                "SELECT m.value, c.revision, c.kind, c.key, c.value FROM edgeprov_meta m "
                "LEFT JOIN LATERAL (SELECT * FROM edgeprov_changes WHERE revision > $1::bigint AND revision <= "
                "(SELECT max(revision) FROM (SELECT revision FROM edgeprov_changes WHERE revision > $1::bigint "
                "ORDER BY revision, seq LIMIT $2) page)) c ON $1::bigint >= m.value "
                "WHERE m.name = 'compacted_revision' ORDER BY c.revision, c.seq",
                2, values, change_row, &c, err);
  if (r < 0) return fail(s, r, "%s", err);
  if (after_revision < c.compacted)
    return fail(s, EP_ECOMPACTED, "after_revision %" PRIu64 " is compacted: the change log starts after revision %" PRIu64,
                after_revision, c.compacted);
  return 0;
}

static void int_row(void *data, const PGresult *res) { *(uint64_t *)data = (uint64_t)pgs_int(res, 0, 0); }

static int32_t store_revision(void *state, uint64_t *ret_revision) {
  pgs_store *s = state;
  char err[PGS_MESSAGE_MAX];
  uint64_t revision = 0;
  int r = run_query(s, "cannot read the revision", "SELECT value FROM edgeprov_meta WHERE name = 'revision'", 0, NULL,
                    int_row, &revision, err);
  if (r < 0) return fail(s, r, "%s", err);
  if (ret_revision) *ret_revision = revision;
  return 0;
}

/* ---- writes --------------------------------------------------------------------------- */

static int32_t store_txn(void *state, const ep_storage_op *ops, uint32_t count, uint32_t op_size,
                         uint64_t *ret_revision, uint32_t *ret_failed_op) {
  pgs_store *s = state;
  int32_t r = check_txn(s, ops, count, op_size);
  if (r < 0) return r;
  pgs_request req = {.ops = ops, .count = count, .op_size = op_size};
  r = pgs_writer_submit(&s->writer, &req);
  if (r == EP_ECONFLICT && ret_failed_op) *ret_failed_op = req.failed_op;
  if (r < 0) return fail(s, r, "%s", req.message);
  commit_wait_note(&s->commits, req.revision);
  if (ret_revision) *ret_revision = req.revision;
  return 0;
}

/* wait's look at the store. While the listener is LISTENing, the notifications are the store's
 * word, and the database is read only every WAIT_CHECK_MS, in case one was lost; without the
 * listener it is read every time (every 500 ms of a wait). */
#define WAIT_CHECK_MS 5000

static int64_t monotonic_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static int32_t waited_revision(void *data, uint64_t *ret_revision) {
  pgs_store *s = data;
  int64_t now = monotonic_ms();
  if (atomic_load(&s->listener.listening) && now - atomic_load(&s->revision_read_ms) < WAIT_CHECK_MS) {
    pthread_mutex_lock(&s->commits.lock);
    *ret_revision = s->commits.revision;
    pthread_mutex_unlock(&s->commits.lock);
    return 0;
  }
  atomic_store(&s->revision_read_ms, now);
  return store_revision(s, ret_revision);
}

static int32_t store_wait(void *state, uint64_t after_revision, uint32_t timeout_ms, uint64_t *ret_revision) {
  pgs_store *s = state;
  int32_t r = commit_wait_for(&s->commits, after_revision, timeout_ms, waited_revision, s, ret_revision);
  if (r == EP_ETIMEDOUT) return fail(s, r, "no revision past %" PRIu64 " within %u ms", after_revision, timeout_ms);
  if (r == EP_ECANCELED) return fail(s, r, "woken");
  return r; /* 0, or store_revision's error (reported) */
}

static void store_wake(void *state) {
  pgs_store *s = state;
  commit_wait_wake(&s->commits);
}

/* Compaction runs on a pool connection, beside the writer: edgeprov_compact takes only the
 * compacted_revision row's lock, never the revision's, so writers do not wait for it. It is
 * idempotent, so a retry after a lost connection is safe. */
static int32_t store_compact(void *state, uint64_t before_revision) {
  pgs_store *s = state;
  char before[24];
  snprintf(before, sizeof before, "%" PRIu64, before_revision > INT64_MAX ? (uint64_t)INT64_MAX : before_revision);
  const char *values[1] = {before};
  uint64_t revision = 0;
  char err[PGS_MESSAGE_MAX];
  int r = run_query(s, "cannot compact the change log", "SELECT edgeprov_compact($1::bigint)", 1, values, int_row,
                    &revision, err);
  if (r < 0) return fail(s, r, "%s", err);
  if (before_revision > revision + 1)
    return fail(s, EP_ERANGE, "before_revision %" PRIu64 " is past the store revision %" PRIu64, before_revision,
                revision);
  return 0;
}

/* The advisory lock key of role: FNV-1a (64 bits) of "edgeprov.lead." and the role. */
static int64_t role_key(const char *role) {
  uint64_t h = 1469598103934665603ULL;
  for (const char *p = "edgeprov.lead."; *p; p++) h = (h ^ (unsigned char)*p) * 1099511628211ULL;
  for (const char *p = role; *p; p++) h = (h ^ (unsigned char)*p) * 1099511628211ULL;
  return (int64_t)h;
}

/* pg_try_advisory_lock(role's key) on the lead connection: 0 with *taken, or an EP_E* code. */
static int try_lock(pgs_store *s, const char *role, bool *taken, char err[PGS_MESSAGE_MAX]) {
  char key[24];
  snprintf(key, sizeof key, "%" PRId64, role_key(role));
  const char *values[1] = {key};
  if (!PQsendQueryParams(s->lead_conn, "SELECT pg_try_advisory_lock($1::bigint)", 1, NULL, values, NULL, NULL, 0))
    return pgs_fail(s->lead_conn, NULL, "lead", err);
  int r = 0, code = 0;
  *taken = false;
  for (PGresult *res; (res = pgs_next(s->lead_conn, &s->params, &code, err)); PQclear(res)) {
    if (PQresultStatus(res) != PGRES_TUPLES_OK) r = pgs_fail(s->lead_conn, res, "lead", err);
    else if (PQntuples(res) == 1) *taken = PQgetvalue(res, 0, 0)[0] == 't';
  }
  return r < 0 ? r : code;
}

/* A bounded round trip on the lead session: 0, or an EP_E* code with err set. */
static int session_alive(pgs_store *s, char err[PGS_MESSAGE_MAX]) {
  if (!PQsendQuery(s->lead_conn, "SELECT 1")) return pgs_fail(s->lead_conn, NULL, "lead", err);
  int r = 0, code = 0;
  for (PGresult *res; (res = pgs_next(s->lead_conn, &s->params, &code, err)); PQclear(res))
    if (PQresultStatus(res) != PGRES_TUPLES_OK) r = pgs_fail(s->lead_conn, res, "lead", err);
  return r < 0 ? r : code;
}

/* A role is a session advisory lock: PostgreSQL releases it when the session ends, so a killed
 * replica's roles pass to the next replica that asks. A session found closed (a restart, an
 * outage) has lost its roles: the next call opens a new one and asks again. */
static int32_t store_lead(void *state, const char *role, int32_t *ret_leading) {
  pgs_store *s = state;
  char err[PGS_MESSAGE_MAX];
  int32_t r = checked(s, storage_check_role(role, err), err);
  if (r < 0) return r;
  pthread_mutex_lock(&s->lead_lock);
  if (s->lead_conn && !pgs_usable(s->lead_conn)) {
    PQfinish(s->lead_conn);
    s->lead_conn = NULL;
    memset(s->held, 0, sizeof s->held);
  }
  if (!s->lead_conn) r = pgs_connect(&s->lead_conn, &s->params, err);
  int32_t leading = 0;
  size_t slot = STORAGE_ROLES_MAX;
  for (size_t i = 0; r == 0 && i < STORAGE_ROLES_MAX && !leading; i++) {
    if (strcmp(s->held[i], role) == 0) leading = 1;
    else if (!s->held[i][0] && slot == STORAGE_ROLES_MAX) slot = i;
  }
  /* A role held is confirmed by a round trip on the session that holds it: a connection that
   * is half-open (the server failed over, a partition) must not go on leading unseen. */
  if (r == 0 && leading && (r = session_alive(s, err)) < 0) leading = 0;
  if (r == 0 && !leading && slot == STORAGE_ROLES_MAX) {
    snprintf(err, sizeof err, "this store holds %d roles already", STORAGE_ROLES_MAX);
    r = EP_ERANGE;
  } else if (r == 0 && !leading) {
    bool taken = false;
    r = try_lock(s, role, &taken, err);
    if (r == 0 && taken) {
      snprintf(s->held[slot], sizeof s->held[slot], "%s", role);
      leading = 1;
    }
  }
  if (r < 0 && r != EP_ERANGE && s->lead_conn) { /* the session is in doubt: drop it, with what it held */
    PQfinish(s->lead_conn);
    s->lead_conn = NULL;
    memset(s->held, 0, sizeof s->held);
  }
  pthread_mutex_unlock(&s->lead_lock);
  if (r < 0) return fail(s, r, "%s", err);
  if (ret_leading) *ret_leading = leading;
  return 0;
}

static const ep_storage store_table = {
    .struct_size = sizeof(ep_storage),
    .get = store_get,
    .txn = store_txn,
    .list = store_list,
    .changes = store_changes,
    .revision = store_revision,
    .compact = store_compact,
    .wait = store_wait,
    .wake = store_wake,
    .lead = store_lead,
};

/* ---- init and deinit ------------------------------------------------------------------ */

/* A passfile must be a regular file only its owner can read: libpq itself would ignore a
 * wider one with a warning on stderr. */
static int32_t check_passfile(const ep_host *host, ep_ctx *ctx, const char *path) {
  if (!*path) return 0;
  struct stat st;
  if (path[0] != '/') return ep_failf(host, ctx, EP_EINVAL, "setting 'passfile': '%s' is not an absolute path", path);
  if (stat(path, &st) < 0) return ep_failf(host, ctx, -errno, "setting 'passfile': %s: %s", path, strerror(errno));
  if (!S_ISREG(st.st_mode)) return ep_failf(host, ctx, EP_EINVAL, "setting 'passfile': %s is not a regular file", path);
  if (st.st_mode & 077)
    return ep_failf(host, ctx, EP_EPERM, "setting 'passfile': %s is mode %04o; make it 0600 (chmod 600 %s)", path,
                    (unsigned)(st.st_mode & 07777), path);
  return 0;
}

static void store_free(pgs_store *s) {
  if (!s) return;
  pgs_listener_stop(&s->listener);
  if (s->pool_ready) pgs_pool_destroy(&s->pool);
  pgs_writer_stop(&s->writer);
  pthread_mutex_destroy(&s->error_lock);
  commit_wait_destroy(&s->commits);
  PQfinish(s->lead_conn); /* ends the session: its roles pass on */
  pthread_mutex_destroy(&s->lead_lock);
  free((char *)s->params.conninfo);
  free((char *)s->params.passfile);
  free(s);
}

static int32_t store_init(const ep_host *host, ep_ctx *ctx, void **ret_state) {
  const char *conninfo = NULL, *passfile = "";
  int64_t pool_size = 4, connect_timeout_s = 10, statement_timeout_ms = 30000, group_commit_max = 64;
  if (host->setting_string(ctx, "conninfo", &conninfo) < 0 || !conninfo || !*conninfo)
    return ep_failf(host, ctx, EP_EINVAL, "setting 'conninfo' is required: a libpq connection string or URI");
  if (host->setting_string(ctx, "passfile", &passfile) < 0 || host->setting_int(ctx, "pool_size", &pool_size) < 0 ||
      host->setting_int(ctx, "connect_timeout_s", &connect_timeout_s) < 0 ||
      host->setting_int(ctx, "statement_timeout_ms", &statement_timeout_ms) < 0 ||
      host->setting_int(ctx, "group_commit_max", &group_commit_max) < 0)
    return ep_failf(host, ctx, EP_EINVAL, "the plugin's settings are unavailable");
  int32_t r = check_passfile(host, ctx, passfile);
  if (r < 0) return r;
  pgs_store *s = calloc(1, sizeof *s);
  if (!s) return ep_failf(host, ctx, EP_ENOMEM, "out of memory");
  s->host = host;
  s->ctx = ctx;
  pthread_mutex_init(&s->error_lock, NULL);
  commit_wait_init(&s->commits);
  pthread_mutex_init(&s->lead_lock, NULL);
  s->params.conninfo = strdup(conninfo);
  s->params.passfile = strdup(passfile);
  s->params.connect_timeout_s = (int)connect_timeout_s;
  s->params.statement_timeout_ms = (int)statement_timeout_ms;
  if (!s->params.conninfo || !s->params.passfile) {
    store_free(s);
    return ep_failf(host, ctx, EP_ENOMEM, "out of memory");
  }

  char err[PGS_MESSAGE_MAX];
  PGconn *conn = NULL;
  uint64_t revision = 0;
  if ((r = pgs_conninfo_check(&s->params, err)) < 0 || (r = pgs_connect(&conn, &s->params, err)) < 0 ||
      (r = pgs_schema_init(conn, &s->params, err)) < 0) {
    ep_failf(host, ctx, r, "%s", err);
    goto fail;
  }
  pgs_describe(&s->params, conn, s->where, sizeof s->where);
  if ((r = pgs_pool_init(&s->pool, &s->params, (size_t)pool_size)) < 0) {
    ep_failf(host, ctx, r, "out of memory");
    goto fail;
  }
  s->pool_ready = true;
  if ((r = pgs_writer_start(&s->writer, conn, &s->params, (uint32_t)group_commit_max, err)) < 0) {
    ep_failf(host, ctx, r, "%s", err);
    goto fail;
  }
  conn = NULL; /* the writer's */
  if ((r = store_revision(s, &revision)) < 0) goto fail;
  commit_wait_note(&s->commits, revision);
  if ((r = pgs_listener_start(&s->listener, &s->params, &s->commits)) < 0) {
    ep_failf(host, ctx, r, "cannot start the listener thread");
    goto fail;
  }
  ep_logf(host, ctx, EP_LOG_INFO, "opened %s (schema version %d, %lld pooled connections) at revision %" PRIu64,
          s->where, PGS_SCHEMA_VERSION, (long long)pool_size, revision);
  *ret_state = s;
  return 0;
fail:
  PQfinish(conn);
  store_free(s);
  return r;
}

static void store_deinit(void *state) {
  pgs_store *s = state;
  pgs_listener_stop(&s->listener);
  pgs_pool_destroy(&s->pool);
  s->pool_ready = false;
  pgs_writer_stop(&s->writer); /* drains the queue first */
  ep_logf(s->host, s->ctx, EP_LOG_INFO, "closed %s: %" PRIu64 " transactions committed in %" PRIu64
          " group commits (largest %" PRIu64 ")",
          s->where, s->writer.committed, s->writer.batches, s->writer.largest_batch);
  store_free(s);
}

static const void *store_get_capability(void *state, const char *id) {
  (void)state;
  return strcmp(id, EP_CAP_STORAGE) == 0 ? &store_table : NULL;
}

static const ep_field_decl store_settings[] = {
    EP_FIELD_STRING_DECL("conninfo", NULL, EP_FIELD_REQUIRED, PGS_CONNINFO_MAX,
                         "the database, as a libpq connection string (\"host=db.example dbname=edgeprov "
                         "user=edgeprov\") or URI (\"postgresql://edgeprov@db.example/edgeprov\"); keep the "
                         "password out of it: use passfile"),
    EP_FIELD_STRING_DECL("passfile", "", EP_FIELD_OPTIONAL, 4095,
                         "a libpq password file (host:port:dbname:user:password lines), an absolute path, mode "
                         "0600; \"\" means libpq's default (PGPASSFILE or ~/.pgpass)"),
    EP_FIELD_INT_DECL("pool_size", "4", EP_FIELD_OPTIONAL, 1, 256,
                      "connections for reads and compaction (the writer has one more of its own)"),
    EP_FIELD_INT_DECL("connect_timeout_s", "10", EP_FIELD_OPTIONAL, 1, 3600,
                      "how long a connection attempt may take, in seconds (libpq connect_timeout; overrides "
                      "the conninfo's)"),
    EP_FIELD_INT_DECL("statement_timeout_ms", "30000", EP_FIELD_OPTIONAL, 100, 3600000,
                      "how long one statement may run, in milliseconds (SET statement_timeout); a call waits at "
                      "most this plus 2 s for an answer"),
    EP_FIELD_INT_DECL("group_commit_max", "64", EP_FIELD_OPTIONAL, 1, 1024,
                      "most concurrent transactions committed together in one PostgreSQL transaction"),
};

static const char *const store_capabilities[] = {EP_CAP_STORAGE, NULL};

EP_PLUGIN_EXPORT const ep_plugin_entry ep_plugin = {
    EP_PLUGIN_ENTRY_HEADER,
    .id = "storage-postgres",
    .version = PGS_VERSION,
    .description = "Inventory store on PostgreSQL (group commit, revisions in commit order, for several replicas)",
    .capabilities = store_capabilities,
    .settings = store_settings,
    .settings_count = EP_COUNT(store_settings),
    .init = store_init,
    .deinit = store_deinit,
    .get_capability = store_get_capability,
};
