/* Storage plugins: checking the arguments of edgeprov.storage/1 calls as storage.h states
 * them, the same for every backend. Each check returns 0, or EP_EINVAL with the reason
 * (naming the argument, and the op for a transaction) in err. */
#ifndef EP_PLUGIN_STORAGE_CHECK_H
#define EP_PLUGIN_STORAGE_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <edgeprov/storage.h>

#define STORAGE_LIMIT_MAX 10000 /* most records of one list or changes call */
#define STORAGE_CHECK_MESSAGE_MAX 256

/* What is wrong with a key ("is empty", "is not valid UTF-8", ...), or NULL when it is valid. */
const char *storage_key_problem(const char *key);

/* A prefix or start_after called name: text of at most EP_STORAGE_KEY_MAX bytes, may be "". */
int32_t storage_check_bound(const char *name, const char *text, char err[STORAGE_CHECK_MESSAGE_MAX]);

/* A list or changes limit: 1..STORAGE_LIMIT_MAX. */
int32_t storage_check_limit(uint32_t limit, char err[STORAGE_CHECK_MESSAGE_MAX]);

/* A transaction: ops, count (1..EP_STORAGE_TXN_OPS_MAX), op_size (at least ABI 1.0's), each op's
 * kind, key, value and length, keys distinct. */
int32_t storage_check_txn(const ep_storage_op *ops, uint32_t count, uint32_t op_size,
                          char err[STORAGE_CHECK_MESSAGE_MAX]);

/* A role of lead: 1..STORAGE_ROLE_MAX bytes of [a-z0-9_.-]. */
#define STORAGE_ROLE_MAX 63
#define STORAGE_ROLES_MAX 8 /* roles one instance may hold at once */
int32_t storage_check_role(const char *role, char err[STORAGE_CHECK_MESSAGE_MAX]);

/* Op i of ops laid out op_size bytes apart (the caller's ABI). */
static inline const ep_storage_op *storage_op_at(const ep_storage_op *ops, uint32_t op_size, uint32_t i) {
  return (const ep_storage_op *)((const char *)ops + (size_t)i * op_size);
}

/* The smallest string greater than every string starting with prefix, in buf; false when
 * there is none (prefix is "" or all 0xff bytes). */
bool storage_prefix_end(const char *prefix, char buf[EP_STORAGE_KEY_MAX + 1]);

#endif
