/* core: the growable buffer, see buf.h. */
#define _DEFAULT_SOURCE /* explicit_bzero */
#include "base/buf.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"

#define FIRST_CAP 64 /* the first allocation; each grow doubles */

static const char *name_of(const ep_buf *b) { return b->what ? b->what : "buffer"; }

void ep_buf_init(ep_buf *b, const char *what, size_t max, unsigned flags) {
  /* Past SIZE_MAX / 2 no allocation succeeds anyway; the cap keeps len + extra + 1 and the
   * doubling below from wrapping. */
  *b = (ep_buf){.max = max < SIZE_MAX / 2 ? max : SIZE_MAX / 2, .flags = flags, .what = what};
}

int ep_buf_reserve(ep_buf *b, size_t extra) {
  if (extra > b->max - b->len) return ep_error_set(EP_ERANGE, "%s: longer than %zu bytes", name_of(b), b->max);
  size_t need = b->len + extra + 1;
  if (need <= b->cap) return 0;
  size_t cap = b->cap ? b->cap : FIRST_CAP;
  while (cap < need) cap *= 2;
  if (cap > b->max + 1) cap = b->max + 1; /* need <= max + 1: never more than the limit allows */
  char *grown;
  if (b->flags & EP_BUF_WIPE) {
    /* realloc may move the block and leave the old bytes in freed memory: copy, then zero. */
    if (!(grown = malloc(cap))) return ep_error_set(EP_ENOMEM, "%s: out of memory", name_of(b));
    if (b->data) {
      memcpy(grown, b->data, b->len + 1);
      explicit_bzero(b->data, b->cap);
      free(b->data);
    }
  } else if (!(grown = realloc(b->data, cap))) {
    return ep_error_set(EP_ENOMEM, "%s: out of memory", name_of(b));
  }
  if (!b->data) grown[0] = '\0';
  b->data = grown;
  b->cap = cap;
  return 0;
}

int ep_buf_append(ep_buf *b, const void *bytes, size_t len) {
  int r = ep_buf_reserve(b, len);
  if (r < 0) return r;
  if (len) memcpy(b->data + b->len, bytes, len);
  b->len += len;
  b->data[b->len] = '\0';
  return 0;
}

int ep_buf_append_str(ep_buf *b, const char *text) { return ep_buf_append(b, text, strlen(text)); }

int ep_buf_vprintf(ep_buf *b, const char *fmt, va_list ap) {
  va_list again;
  va_copy(again, ap);
  size_t room = b->cap ? b->cap - b->len : 0;
  int n = vsnprintf(room ? b->data + b->len : NULL, room, fmt, ap);
  int r = 0;
  if (n < 0) {
    r = ep_error_set(EP_EINVAL, "%s: cannot format '%.32s'", name_of(b), fmt);
  } else if ((size_t)n >= room) {
    /* Did not fit: what vsnprintf wrote past len is not content (and may be a secret). */
    if (room > 1) {
      if (b->flags & EP_BUF_WIPE) explicit_bzero(b->data + b->len, room);
      b->data[b->len] = '\0';
    }
    r = ep_buf_reserve(b, (size_t)n);
    if (r == 0) vsnprintf(b->data + b->len, (size_t)n + 1, fmt, again);
  }
  va_end(again);
  if (r < 0) return r;
  b->len += (size_t)n;
  return 0;
}

int ep_buf_printf(ep_buf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int r = ep_buf_vprintf(b, fmt, ap);
  va_end(ap);
  return r;
}

void ep_buf_reset(ep_buf *b) {
  if (!b->data) return;
  if (b->flags & EP_BUF_WIPE) explicit_bzero(b->data, b->len);
  b->len = 0;
  b->data[0] = '\0';
}

char *ep_buf_take(ep_buf *b, size_t *ret_len) {
  char *data = b->data;
  if (!data && !(data = calloc(1, 1))) return ep_error_set(EP_ENOMEM, "%s: out of memory", name_of(b)), NULL;
  if (ret_len) *ret_len = b->len;
  b->data = NULL;
  b->len = b->cap = 0;
  return data;
}

void ep_buf_free(ep_buf *b) {
  if (!b) return;
  if (b->data && (b->flags & EP_BUF_WIPE)) explicit_bzero(b->data, b->cap);
  free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
}
