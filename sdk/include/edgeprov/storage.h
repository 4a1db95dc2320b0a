/* edgeprov SDK: capability edgeprov.storage/1, the inventory's durable store. A small
 * revisioned key/value interface so every backend (SQLite, PostgreSQL) implements the same
 * few calls and the schema lives in the core. */
#ifndef EDGEPROV_STORAGE_H
#define EDGEPROV_STORAGE_H

#include <stddef.h>

#include "abi.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Model (as etcd's): the store has one revision counter. Each committed transaction takes
 * the next revision; every key it writes gets that revision as its mod_revision (and as its
 * create_revision when the key is new). A delete leaves no record but does leave a change.
 * Every committed write is appended to a change log, readable from any revision not yet
 * compacted.
 *
 * Keys: UTF-8 text without NUL, 1..EP_STORAGE_KEY_MAX bytes, ordered bytewise.
 * Values: opaque bytes, 0..EP_STORAGE_VALUE_MAX bytes.
 * Threads: every function may be called from several threads at once. */

#define EP_STORAGE_KEY_MAX 512
#define EP_STORAGE_VALUE_MAX (4u * 1024u * 1024u)
#define EP_STORAGE_TXN_OPS_MAX 128

/* A compare-and-set failed; the store is unchanged. */
#define EP_ECONFLICT (-10002)
/* The revision asked for has been compacted away. */
#define EP_ECOMPACTED (-10003)

/* A record as the store hands it to a visitor. All pointers are valid only during the
 * visitor call; copy what you keep. */
typedef struct ep_storage_record {
  uint32_t struct_size;
  uint32_t reserved;
  const char *key;
  const uint8_t *value;
  uint64_t value_len;
  uint64_t create_revision;
  uint64_t mod_revision;
} ep_storage_record;

/* Called once per record; return 0 to go on, non-zero to stop early (the call then returns
 * 0). */
typedef int32_t (*ep_storage_visit_fn)(void *data, const ep_storage_record *record);

#define EP_STORAGE_PUT 1u
#define EP_STORAGE_DELETE 2u

/* Expectations of a write (compare-and-set), checked against the key's current state
 * before anything of the transaction is applied. */
#define EP_STORAGE_EXPECT_ANY UINT64_MAX   /* no check */
#define EP_STORAGE_EXPECT_ABSENT UINT64_C(0) /* the key must not exist */
/* any other value: the key must exist with exactly this mod_revision */

/* One write of a transaction. */
typedef struct ep_storage_op {
  uint32_t struct_size;
  uint32_t kind; /* EP_STORAGE_PUT or EP_STORAGE_DELETE */
  const char *key;
  const uint8_t *value; /* PUT only */
  uint64_t value_len;
  uint64_t expect_mod_revision; /* EP_STORAGE_EXPECT_* or a revision */
} ep_storage_op;

/* One entry of the change log. value is the new value of a PUT (NULL for a DELETE). */
typedef struct ep_storage_change {
  uint32_t struct_size;
  uint32_t kind; /* EP_STORAGE_PUT or EP_STORAGE_DELETE */
  uint64_t revision;
  const char *key;
  const uint8_t *value;
  uint64_t value_len;
} ep_storage_change;

typedef int32_t (*ep_storage_change_fn)(void *data, const ep_storage_change *change);

/* The table get_capability returns for EP_CAP_STORAGE. state is the plugin's state from
 * init (one open store per plugin instance). Functions return 0 or a negative EP_E* code
 * after host->set_error on the plugin context; the out parameters are set only on
 * success.
 *
 * get: visits the record of key, or returns EP_ENOENT.
 * txn: applies count ops atomically (1..EP_STORAGE_TXN_OPS_MAX, keys distinct). All
 *   expectations are checked first; if one fails nothing is written, *ret_failed_op (when
 *   non-NULL) is its index and EP_ECONFLICT is returned. On success the writes are durable
 *   (they survive a crash of the process or the machine) before txn returns, and
 *   *ret_revision is the transaction's revision. Backends may commit concurrent
 *   transactions together (group commit) as long as each stays atomic.
 * list: visits records whose key starts with prefix and sorts after start_after ("" for
 *   the first page), in key order, at most limit (1..10000) of them; *ret_revision is the
 *   store revision the page was read at, *ret_more is 1 when records remain.
 * changes: visits changes with revision > after_revision in revision order. limit
 *   (1..10000) is a target: a transaction's changes are never split across calls, so one
 *   call may go past limit by the rest of the last transaction (callers resume from the
 *   last revision they saw). EP_ECOMPACTED when changes after after_revision were dropped.
 *   Deleting a key that does not exist writes nothing to the log.
 * revision: the store's current revision (0 when empty).
 * compact: drops change-log entries with revision < before_revision; a before_revision at
 *   or below an earlier compaction does nothing, one past the current revision + 1 is
 *   EP_ERANGE.
 * Visitors must not call back into the store. NULL visitors and NULL ret_* pointers are
 * accepted; NULL keys, prefixes and start_after are EP_EINVAL. */
typedef struct ep_storage {
  uint32_t struct_size;
  uint32_t reserved;
  int32_t (*get)(void *state, const char *key, ep_storage_visit_fn visit, void *data);
  int32_t (*txn)(void *state, const ep_storage_op *ops, uint32_t count, uint32_t op_size, uint64_t *ret_revision,
                 uint32_t *ret_failed_op);
  int32_t (*list)(void *state, const char *prefix, const char *start_after, uint32_t limit,
                  ep_storage_visit_fn visit, void *data, uint64_t *ret_revision, int32_t *ret_more);
  int32_t (*changes)(void *state, uint64_t after_revision, uint32_t limit, ep_storage_change_fn visit, void *data);
  int32_t (*revision)(void *state, uint64_t *ret_revision);
  int32_t (*compact)(void *state, uint64_t before_revision);
  /* Since ABI 1.4 (EP_STORAGE_HAS(table, wake)): waiting for writes, so a replica sees what
   * another one committed without polling the store.
   * wait: returns 0 with *ret_revision (when non-NULL) set once the store's revision is
   *   greater than after_revision, whoever committed it (this process, another process,
   *   another replica on the same database), at once when it already is; EP_ETIMEDOUT when
   *   timeout_ms (0..600000) passes without one; EP_ECANCELED when wake is called meanwhile.
   *   It may see a commit a little late (a backend that cannot be told polls, at most every
   *   500 ms) but never answers before the revision is there. Any thread; blocking.
   * wake: makes every wait in progress on this store return EP_ECANCELED (the host stopping
   *   or re-reading its state); waits begun afterwards are not affected. */
  int32_t (*wait)(void *state, uint64_t after_revision, uint32_t timeout_ms, uint64_t *ret_revision);
  void (*wake)(void *state);
  /* Since ABI 1.5 (EP_STORAGE_HAS(table, lead)): one holder per role among the instances on
   * the same store (replicas), for background work that must run once.
   * lead: takes role (1..63 bytes of [a-z0-9_.-]) for this instance when no other instance
   *   holds it, or confirms this instance still does: 0 with *ret_leading 1 when it holds the
   *   role, 0 with *ret_leading 0 when another does; an error when the store cannot say
   *   (the caller then acts as not leading). The role is released when this instance is
   *   closed or its process ends (a killed replica's session ends with it; the database may
   *   take a moment to end a session), and lost when the
   *   instance loses the store; a backend may only notice at the next call, so callers call
   *   it about every second and before each piece of work. Any thread. */
  int32_t (*lead)(void *state, const char *role, int32_t *ret_leading);
} ep_storage;

/* True when the plugin's table is new enough to carry the named member (wait and wake came
 * with ABI 1.4, lead with 1.5). */
#define EP_STORAGE_HAS(table, member) \
  ((table)->struct_size >= (uint32_t)(offsetof(ep_storage, member) + sizeof((table)->member)))

#ifdef __cplusplus
}
#endif
#endif
