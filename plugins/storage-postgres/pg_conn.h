/* storage-postgres: one libpq connection (session settings, bounded waits, errors that never
 * carry the password) and the schema. */
#ifndef PGS_PG_CONN_H
#define PGS_PG_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

/* Schema version this plugin writes; a database with a newer one is refused. */
#define PGS_SCHEMA_VERSION 1

/* Longest message the helpers below write into an error buffer. */
#define PGS_MESSAGE_MAX 768

/* How to reach the database, from the settings. Strings are the host's; not copied. */
typedef struct pgs_params {
  const char *conninfo;     /* a libpq connection string or URI (may hold a password) */
  const char *passfile;     /* "" for libpq's default */
  int connect_timeout_s;    /* libpq connect_timeout */
  int statement_timeout_ms; /* SET statement_timeout; also bounds every wait for an answer */
} pgs_params;

/* Checks that p->conninfo parses. Returns 0, or EP_EINVAL with a message (libpq's, with any
 * password in it masked) in err. */
int pgs_conninfo_check(const pgs_params *p, char err[PGS_MESSAGE_MAX]);

/* Names the database of p without its password: 'database "d" on host h port n as user u',
 * from the connection when there is one (PQdb, PQhost...), else from the parsed conninfo. */
void pgs_describe(const pgs_params *p, const PGconn *conn, char *buf, size_t size);

/* Connects and sets up the session (synchronous_commit on, statement_timeout, read
 * committed, UTF8). Returns 0 with *out set (free with PQfinish), or EP_EIO, EP_EPERM
 * (authentication) or EP_ETIMEDOUT with a message naming the database in err. */
int pgs_connect(PGconn **out, const pgs_params *p, char err[PGS_MESSAGE_MAX]);

/* True when conn is connected, idle and has not been closed by the server meanwhile (a
 * restart ends every session: this reads what the server sent while the connection was
 * idle, without blocking). */
bool pgs_usable(PGconn *conn);

/* Waits until PQgetResult would not block, at most the statement timeout plus a margin.
 * Returns 0, or EP_ETIMEDOUT / EP_EIO with a message in err (the connection is then
 * unusable: close it). */
int pgs_await(PGconn *conn, const pgs_params *p, char err[PGS_MESSAGE_MAX]);

/* The next result of conn, waiting as pgs_await: NULL with *code 0 after the last one, or
 * NULL with *code and err set when it did not come. */
PGresult *pgs_next(PGconn *conn, const pgs_params *p, int *code, char err[PGS_MESSAGE_MAX]);

/* Formats "what: PostgreSQL's message" (one line) into err and returns the EP_E* code:
 * EP_ETIMEDOUT for a statement or lock timeout, EP_EIO otherwise. res may be NULL (the
 * connection's message is used). */
int pgs_fail(PGconn *conn, const PGresult *res, const char *what, char err[PGS_MESSAGE_MAX]);

/* Runs sql (no parameters, several statements allowed), ignoring any rows. Returns 0 or an
 * EP_E* code with a message starting with what. */
int pgs_exec(PGconn *conn, const pgs_params *p, const char *sql, const char *what, char err[PGS_MESSAGE_MAX]);

/* Creates the tables and functions when missing and checks the schema version, under an
 * advisory lock so replicas starting together do not race. Returns 0, EP_ENOTSUP for a
 * newer schema, or another EP_E* code; message in err. */
int pgs_schema_init(PGconn *conn, const pgs_params *p, char err[PGS_MESSAGE_MAX]);

/* Integer column of a binary-format result (int2, int4 or int8); 0 for NULL. */
int64_t pgs_int(const PGresult *res, int row, int col);

#endif
