/* storage-sqlite: one SQLite connection with its cached prepared statements, and the schema. */
#ifndef SQS_SQLITE_CONN_H
#define SQS_SQLITE_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

/* Schema version this plugin writes; a database with a newer one is refused. */
#define SQS_SCHEMA_VERSION 1

/* Names of the meta rows. */
#define SQS_META_SCHEMA "schema_version"
#define SQS_META_REVISION "revision"             /* the store revision */
#define SQS_META_COMPACTED "compacted_revision" /* changes at or below it may be gone */

/* Statements every connection may prepare; see the SQL table in sqlite_conn.c. */
typedef enum sqs_stmt_id {
  SQS_BEGIN,
  SQS_BEGIN_IMMEDIATE,
  SQS_COMMIT,
  SQS_ROLLBACK,
  SQS_SAVEPOINT,
  SQS_ROLLBACK_TO,
  SQS_RELEASE,
  SQS_META_GET,
  SQS_META_SET,
  SQS_KV_GET,
  SQS_KV_MOD_REVISION,
  SQS_KV_PUT,
  SQS_KV_DELETE,
  SQS_CHANGE_ADD,
  SQS_CHANGES_AFTER,
  SQS_CHANGES_COMPACT,
  SQS_LIST_GE,    /* key >= ?1 */
  SQS_LIST_GT,    /* key > ?1 */
  SQS_LIST_GE_LT, /* key >= ?1 AND key < ?2 */
  SQS_LIST_GT_LT, /* key > ?1 AND key < ?2 */
  SQS_STMT_COUNT
} sqs_stmt_id;

/* A connection. Used by one thread at a time; statements are prepared on first use and kept
 * until sqs_conn_close. */
typedef struct sqs_conn {
  sqlite3 *db;
  sqlite3_stmt *stmts[SQS_STMT_COUNT];
} sqs_conn;

/* Longest message the helpers below write into an error buffer. */
#define SQS_MESSAGE_MAX 512

/* Opens path (which must exist) with WAL, synchronous=FULL and the busy timeout. A reader
 * connection is query_only. Returns 0 with *out set (caller frees with sqs_conn_close), or a
 * negative EP_E* code with a message in err. */
int sqs_conn_open(sqs_conn **out, const char *path, int busy_timeout_ms, bool reader, char err[SQS_MESSAGE_MAX]);

/* Finalizes the statements and closes the database. Accepts NULL. */
void sqs_conn_close(sqs_conn *conn);

/* The reset, unbound statement id of conn, prepared on first use; NULL with a message in err
 * when it cannot be prepared. Reset it with sqs_stmt_done after use. */
sqlite3_stmt *sqs_stmt(sqs_conn *conn, sqs_stmt_id id, char err[SQS_MESSAGE_MAX]);

/* Resets stmt and clears its bindings, so the cached statement holds no read snapshot. */
void sqs_stmt_done(sqlite3_stmt *stmt);

/* Runs a statement that returns no rows (BEGIN, COMMIT...). Returns 0 or an EP_E* code with
 * a message naming what in err. */
int sqs_exec(sqs_conn *conn, sqs_stmt_id id, const char *what, char err[SQS_MESSAGE_MAX]);

/* Reads or writes an integer meta row. */
int sqs_meta_get(sqs_conn *conn, const char *name, uint64_t *out, char err[SQS_MESSAGE_MAX]);
int sqs_meta_set(sqs_conn *conn, const char *name, uint64_t value, char err[SQS_MESSAGE_MAX]);

/* Creates the tables when missing and checks the schema version, on the writer connection.
 * Returns 0, EP_ENOTSUP for a newer schema, or another EP_E* code; message in err. */
int sqs_schema_init(sqs_conn *conn, char err[SQS_MESSAGE_MAX]);

/* The EP_E* code for an SQLite result code. */
int sqs_code(int rc);

/* Formats "what: SQLite's message" into err and returns the EP_E* code for rc. */
int sqs_fail(sqs_conn *conn, int rc, const char *what, char err[SQS_MESSAGE_MAX]);

#endif
