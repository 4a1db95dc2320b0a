/* storage-sqlite: opening connections, the statement cache and the schema. */
#include "sqlite_conn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <edgeprov/abi.h>

#define SQS_WAL_SIZE_LIMIT 8388608 /* bytes the WAL file is truncated to after a checkpoint */
#define SQS_STR_(x) #x
#define SQS_STR(x) SQS_STR_(x)

/* The SQL of each statement, by sqs_stmt_id. Keys are TEXT with the BINARY collation, so
 * SQLite orders them bytewise (memcmp), as storage.h asks. */
static const char *const stmt_sql[SQS_STMT_COUNT] = {
    [SQS_BEGIN] = "BEGIN",
    [SQS_BEGIN_IMMEDIATE] = "BEGIN IMMEDIATE",
    [SQS_COMMIT] = "COMMIT",
    [SQS_ROLLBACK] = "ROLLBACK",
    [SQS_SAVEPOINT] = "SAVEPOINT txn",
    [SQS_ROLLBACK_TO] = "ROLLBACK TO txn",
    [SQS_RELEASE] = "RELEASE txn",
    [SQS_META_GET] = "SELECT value FROM meta WHERE name = ?1",
    [SQS_META_SET] = "INSERT INTO meta(name, value) VALUES (?1, ?2) "
                     "ON CONFLICT(name) DO UPDATE SET value = excluded.value",
    [SQS_KV_GET] = "SELECT value, create_revision, mod_revision FROM kv WHERE key = ?1",
    [SQS_KV_MOD_REVISION] = "SELECT mod_revision FROM kv WHERE key = ?1",
    [SQS_KV_PUT] = "INSERT INTO kv(key, value, create_revision, mod_revision) VALUES (?1, ?2, ?3, ?3) "
                   "ON CONFLICT(key) DO UPDATE SET value = excluded.value, mod_revision = excluded.mod_revision",
    [SQS_KV_DELETE] = "DELETE FROM kv WHERE key = ?1",
    [SQS_CHANGE_ADD] = "INSERT INTO changes(revision, seq, kind, key, value) VALUES (?1, ?2, ?3, ?4, ?5)",
    [SQS_CHANGES_AFTER] = "SELECT revision, kind, key, value FROM changes WHERE revision > ?1 "
                          "ORDER BY revision, seq",
    [SQS_CHANGES_COMPACT] = "DELETE FROM changes WHERE revision < ?1",
    [SQS_LIST_GE] = "SELECT key, value, create_revision, mod_revision FROM kv WHERE key >= ?1 ORDER BY key",
    [SQS_LIST_GT] = "SELECT key, value, create_revision, mod_revision FROM kv WHERE key > ?1 ORDER BY key",
    [SQS_LIST_GE_LT] = "SELECT key, value, create_revision, mod_revision FROM kv WHERE key >= ?1 AND key < ?2 "
                       "ORDER BY key",
    [SQS_LIST_GT_LT] = "SELECT key, value, create_revision, mod_revision FROM kv WHERE key > ?1 AND key < ?2 "
                       "ORDER BY key",
};

static const char schema_sql[] =
    "CREATE TABLE IF NOT EXISTS meta ("
    "  name TEXT PRIMARY KEY,"
    "  value INTEGER NOT NULL"
    ") WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS kv ("
    "  key TEXT PRIMARY KEY,"
    "  value BLOB NOT NULL,"
    "  create_revision INTEGER NOT NULL,"
    "  mod_revision INTEGER NOT NULL"
    ") WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS changes ("
    "  revision INTEGER NOT NULL,"
    "  seq INTEGER NOT NULL," /* position of the write within its transaction */
    "  kind INTEGER NOT NULL,"
    "  key TEXT NOT NULL,"
    "  value BLOB," /* NULL for a delete */
    "  PRIMARY KEY (revision, seq)"
    ") WITHOUT ROWID;"
    "INSERT OR IGNORE INTO meta(name, value) VALUES ('" SQS_META_REVISION "', 0), ('" SQS_META_COMPACTED "', 0);";

int sqs_code(int rc) {
  switch (rc & 0xff) {
  case SQLITE_OK:
  case SQLITE_DONE:
  case SQLITE_ROW: return 0;
  case SQLITE_NOMEM: return EP_ENOMEM;
  case SQLITE_BUSY:
  case SQLITE_LOCKED: return EP_ETIMEDOUT;
  case SQLITE_PERM:
  case SQLITE_READONLY:
  case SQLITE_AUTH: return EP_EPERM;
  case SQLITE_CANTOPEN: return EP_ENOENT;
  default: return EP_EIO;
  }
}

int sqs_fail(sqs_conn *conn, int rc, const char *what, char err[SQS_MESSAGE_MAX]) {
  const char *detail = conn && conn->db ? sqlite3_errmsg(conn->db) : sqlite3_errstr(rc);
  snprintf(err, SQS_MESSAGE_MAX, "%s: %s", what, detail);
  int code = sqs_code(rc);
  return code < 0 ? code : EP_EIO;
}

/* Runs one pragma, which may return a row; fails unless it succeeds. */
static int run_pragma(sqs_conn *conn, const char *sql, const char *expect, char err[SQS_MESSAGE_MAX]) {
  sqlite3_stmt *stmt = NULL;
  int rc = sqlite3_prepare_v2(conn->db, sql, -1, &stmt, NULL);
  if (rc != SQLITE_OK) return sqs_fail(conn, rc, sql, err);
  rc = sqlite3_step(stmt);
  int r = 0;
  if (rc == SQLITE_ROW && expect) {
    const char *got = (const char *)sqlite3_column_text(stmt, 0);
    if (!got || strcmp(got, expect) != 0) {
      snprintf(err, SQS_MESSAGE_MAX, "%s: got '%s', expected '%s' (does the file system support it?)", sql,
               got ? got : "", expect);
      r = EP_ENOTSUP;
    }
  } else if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
    r = sqs_fail(conn, rc, sql, err);
  }
  sqlite3_finalize(stmt);
  return r;
}

int sqs_conn_open(sqs_conn **out, const char *path, int busy_timeout_ms, bool reader, char err[SQS_MESSAGE_MAX]) {
  sqs_conn *conn = calloc(1, sizeof *conn);
  if (!conn) {
    snprintf(err, SQS_MESSAGE_MAX, "out of memory");
    return EP_ENOMEM;
  }
  /* NOMUTEX: a connection is used by one thread at a time (the writer, or a reader that
   * checked it out of the pool). */
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX;
  int rc = sqlite3_open_v2(path, &conn->db, flags, NULL);
  int r = 0;
  if (rc != SQLITE_OK) {
    r = sqs_fail(conn, rc, "cannot open the database", err);
    goto fail;
  }
  sqlite3_extended_result_codes(conn->db, 1);
  sqlite3_busy_timeout(conn->db, busy_timeout_ms);
  if ((r = run_pragma(conn, "PRAGMA journal_mode=WAL", "wal", err)) < 0 ||
      (r = run_pragma(conn, "PRAGMA synchronous=FULL", NULL, err)) < 0 ||
      /* The WAL file keeps its largest size after a checkpoint resets it; a burst (or a reader
       * holding back checkpoints) would leave it large for good. The writer truncates it to
       * this after each reset: twice the 1000-page auto-checkpoint, so steady writes never pay
       * for a truncation. The main file needs nothing: pages the change-log compaction frees
       * are reused by later writes (see core/lib/provisioning/housekeeping.c). */
      (!reader && (r = run_pragma(conn, "PRAGMA journal_size_limit=" SQS_STR(SQS_WAL_SIZE_LIMIT), NULL, err)) < 0) ||
      (reader && (r = run_pragma(conn, "PRAGMA query_only=1", NULL, err)) < 0))
    goto fail;
  *out = conn;
  return 0;
fail:
  sqs_conn_close(conn);
  return r;
}

void sqs_conn_close(sqs_conn *conn) {
  if (!conn) return;
  for (size_t i = 0; i < SQS_STMT_COUNT; i++) sqlite3_finalize(conn->stmts[i]);
  sqlite3_close(conn->db);
  free(conn);
}

sqlite3_stmt *sqs_stmt(sqs_conn *conn, sqs_stmt_id id, char err[SQS_MESSAGE_MAX]) {
  if (!conn->stmts[id]) {
    int rc = sqlite3_prepare_v3(conn->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT, &conn->stmts[id], NULL);
    if (rc != SQLITE_OK) {
      sqs_fail(conn, rc, "cannot prepare a statement", err);
      conn->stmts[id] = NULL;
      return NULL;
    }
  }
  return conn->stmts[id];
}

void sqs_stmt_done(sqlite3_stmt *stmt) {
  sqlite3_reset(stmt);
  sqlite3_clear_bindings(stmt);
}

int sqs_exec(sqs_conn *conn, sqs_stmt_id id, const char *what, char err[SQS_MESSAGE_MAX]) {
  sqlite3_stmt *stmt = sqs_stmt(conn, id, err);
  if (!stmt) return EP_EIO;
  int rc = sqlite3_step(stmt);
  sqs_stmt_done(stmt);
  return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : sqs_fail(conn, rc, what, err);
}

int sqs_meta_get(sqs_conn *conn, const char *name, uint64_t *out, char err[SQS_MESSAGE_MAX]) {
  sqlite3_stmt *stmt = sqs_stmt(conn, SQS_META_GET, err);
  if (!stmt) return EP_EIO;
  sqlite3_bind_text(stmt, 1, name, -1, SQLITE_STATIC);
  int rc = sqlite3_step(stmt);
  int r = 0;
  if (rc == SQLITE_ROW) {
    *out = (uint64_t)sqlite3_column_int64(stmt, 0);
  } else if (rc == SQLITE_DONE) {
    snprintf(err, SQS_MESSAGE_MAX, "the meta table has no '%s' row: the database is damaged", name);
    r = EP_EIO;
  } else {
    r = sqs_fail(conn, rc, "cannot read the meta table", err);
  }
  sqs_stmt_done(stmt);
  return r;
}

int sqs_meta_set(sqs_conn *conn, const char *name, uint64_t value, char err[SQS_MESSAGE_MAX]) {
  sqlite3_stmt *stmt = sqs_stmt(conn, SQS_META_SET, err);
  if (!stmt) return EP_EIO;
  sqlite3_bind_text(stmt, 1, name, -1, SQLITE_STATIC);
  sqlite3_bind_int64(stmt, 2, (sqlite3_int64)value);
  int rc = sqlite3_step(stmt);
  sqs_stmt_done(stmt);
  return rc == SQLITE_DONE ? 0 : sqs_fail(conn, rc, "cannot write the meta table", err);
}

int sqs_schema_init(sqs_conn *conn, char err[SQS_MESSAGE_MAX]) {
  int r = sqs_exec(conn, SQS_BEGIN_IMMEDIATE, "cannot lock the database to create the schema", err);
  if (r < 0) return r;
  int rc = sqlite3_exec(conn->db, schema_sql, NULL, NULL, NULL);
  if (rc != SQLITE_OK) {
    r = sqs_fail(conn, rc, "cannot create the schema", err);
    goto fail;
  }
  /* A new database gets our version; an existing one must not be newer. */
  uint64_t version = 0;
  sqlite3_stmt *stmt = sqs_stmt(conn, SQS_META_GET, err);
  if (!stmt) {
    r = EP_EIO;
    goto fail;
  }
  sqlite3_bind_text(stmt, 1, SQS_META_SCHEMA, -1, SQLITE_STATIC);
  rc = sqlite3_step(stmt);
  bool found = rc == SQLITE_ROW;
  if (found) version = (uint64_t)sqlite3_column_int64(stmt, 0);
  sqs_stmt_done(stmt);
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
    r = sqs_fail(conn, rc, "cannot read the schema version", err);
    goto fail;
  }
  if (!found && (r = sqs_meta_set(conn, SQS_META_SCHEMA, SQS_SCHEMA_VERSION, err)) < 0) goto fail;
  if (found && version > SQS_SCHEMA_VERSION) {
    snprintf(err, SQS_MESSAGE_MAX,
             "the database has schema version %llu, newer than this plugin's %d: use a newer edgeprov",
             (unsigned long long)version, SQS_SCHEMA_VERSION);
    r = EP_ENOTSUP;
    goto fail;
  }
  return sqs_exec(conn, SQS_COMMIT, "cannot commit the schema", err);
fail:
  if (!sqlite3_get_autocommit(conn->db)) {
    char ignored[SQS_MESSAGE_MAX];
    sqs_exec(conn, SQS_ROLLBACK, "rollback", ignored);
  }
  return r;
}
