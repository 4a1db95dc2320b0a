/* Storage plugins: checking call arguments, see storage_check.h. */
#define _POSIX_C_SOURCE 200809L /* strnlen */
#include "storage_check.h"

#include <stdio.h>
#include <string.h>

#define STR_(x) #x
#define STR(x) STR_(x)

/* True when the len bytes at p are well-formed UTF-8 (no overlong forms, surrogates or code
 * points past U+10FFFF). */
static bool utf8_valid(const unsigned char *p, size_t len) {
  size_t i = 0;
  while (i < len) {
    unsigned char c = p[i];
    size_t n;
    uint32_t cp;
    if (c < 0x80) {
      i++;
      continue;
    } else if (c >= 0xc2 && c <= 0xdf) {
      n = 1, cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
      n = 2, cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      n = 3, cp = c & 0x07;
    } else {
      return false;
    }
    if (len - i - 1 < n) return false;
    for (size_t k = 1; k <= n; k++) {
      if ((p[i + k] & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (p[i + k] & 0x3f);
    }
    if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10ffff)) || (cp >= 0xd800 && cp <= 0xdfff))
      return false;
    i += n + 1;
  }
  return true;
}

const char *storage_key_problem(const char *key) {
  if (!key) return "is NULL";
  size_t len = strnlen(key, EP_STORAGE_KEY_MAX + 1);
  if (len == 0) return "is empty";
  if (len > EP_STORAGE_KEY_MAX) return "is longer than " STR(EP_STORAGE_KEY_MAX) " bytes";
  if (!utf8_valid((const unsigned char *)key, len)) return "is not valid UTF-8";
  return NULL;
}

int32_t storage_check_bound(const char *name, const char *text, char err[STORAGE_CHECK_MESSAGE_MAX]) {
  if (!text) return snprintf(err, STORAGE_CHECK_MESSAGE_MAX, "%s is NULL (use \"\" for none)", name), EP_EINVAL;
  if (strnlen(text, EP_STORAGE_KEY_MAX + 1) > EP_STORAGE_KEY_MAX)
    return snprintf(err, STORAGE_CHECK_MESSAGE_MAX, "%s is longer than %d bytes", name, EP_STORAGE_KEY_MAX), EP_EINVAL;
  return 0;
}

int32_t storage_check_limit(uint32_t limit, char err[STORAGE_CHECK_MESSAGE_MAX]) {
  if (limit < 1 || limit > STORAGE_LIMIT_MAX)
    return snprintf(err, STORAGE_CHECK_MESSAGE_MAX, "limit %u is out of range [1, %d]", limit, STORAGE_LIMIT_MAX),
           EP_EINVAL;
  return 0;
}

int32_t storage_check_txn(const ep_storage_op *ops, uint32_t count, uint32_t op_size,
                          char err[STORAGE_CHECK_MESSAGE_MAX]) {
  size_t cap = STORAGE_CHECK_MESSAGE_MAX;
  if (!ops) return snprintf(err, cap, "ops is NULL"), EP_EINVAL;
  if (count < 1 || count > EP_STORAGE_TXN_OPS_MAX)
    return snprintf(err, cap, "count %u is out of range [1, %d]", count, EP_STORAGE_TXN_OPS_MAX), EP_EINVAL;
  if (op_size < sizeof(ep_storage_op))
    return snprintf(err, cap, "op_size %u is smaller than ep_storage_op of ABI 1.0 (%zu bytes)", op_size,
                    sizeof(ep_storage_op)),
           EP_EINVAL;
  for (uint32_t i = 0; i < count; i++) {
    const ep_storage_op *op = storage_op_at(ops, op_size, i);
    if (op->kind != EP_STORAGE_PUT && op->kind != EP_STORAGE_DELETE)
      return snprintf(err, cap, "op %u: unknown kind %u (expected EP_STORAGE_PUT or EP_STORAGE_DELETE)", i, op->kind),
             EP_EINVAL;
    const char *problem = storage_key_problem(op->key);
    if (problem) return snprintf(err, cap, "op %u: key %s", i, problem), EP_EINVAL;
    if (op->kind == EP_STORAGE_PUT && op->value_len > EP_STORAGE_VALUE_MAX)
      return snprintf(err, cap, "op %u: value of %llu bytes is longer than %u bytes", i,
                      (unsigned long long)op->value_len, EP_STORAGE_VALUE_MAX),
             EP_EINVAL;
    if (op->kind == EP_STORAGE_PUT && op->value_len > 0 && !op->value)
      return snprintf(err, cap, "op %u: value is NULL but value_len is %llu", i, (unsigned long long)op->value_len),
             EP_EINVAL;
    for (uint32_t k = 0; k < i; k++)
      if (strcmp(storage_op_at(ops, op_size, k)->key, op->key) == 0)
        return snprintf(err, cap, "op %u: key '%.100s' repeats op %u (keys of a transaction must be distinct)", i,
                        op->key, k),
               EP_EINVAL;
  }
  return 0;
}

bool storage_prefix_end(const char *prefix, char buf[EP_STORAGE_KEY_MAX + 1]) {
  size_t len = strlen(prefix);
  memcpy(buf, prefix, len + 1);
  while (len > 0) {
    unsigned char last = (unsigned char)buf[len - 1];
    if (last != 0xff) {
      buf[len - 1] = (char)(last + 1);
      buf[len] = '\0';
      return true;
    }
    buf[--len] = '\0';
  }
  return false;
}

int32_t storage_check_role(const char *role, char err[STORAGE_CHECK_MESSAGE_MAX]) {
  if (!role) return snprintf(err, STORAGE_CHECK_MESSAGE_MAX, "role is NULL"), EP_EINVAL;
  size_t len = strnlen(role, STORAGE_ROLE_MAX + 1);
  bool ok = len >= 1 && len <= STORAGE_ROLE_MAX;
  for (size_t i = 0; ok && i < len; i++) ok = (role[i] >= 'a' && role[i] <= 'z') || (role[i] >= '0' && role[i] <= '9') || strchr("_.-", role[i]);
  if (!ok)
    return snprintf(err, STORAGE_CHECK_MESSAGE_MAX, "role '%.63s' is not 1 to %d characters of [a-z0-9_.-]", role,
                    STORAGE_ROLE_MAX),
           EP_EINVAL;
  return 0;
}
