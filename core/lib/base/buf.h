/* core: a growable byte and text buffer with a size limit, the one every module that builds
 * output of unknown length uses (cloud-init documents, HTTP bodies, templates, file text). */
#ifndef EP_CORE_BUF_H
#define EP_CORE_BUF_H

#include <stdarg.h>
#include <stddef.h>

/* Flags of ep_buf_init. */
#define EP_BUF_WIPE 1u /* the content is a secret: every grow is alloc-new, copy, zero-old, free-old
                          (never realloc, which may leave a copy behind), and ep_buf_free zeroes */

/* A buffer: data holds len bytes and a NUL after them (data is NULL until something is
 * appended or reserved). Fields are read-only to callers. Not thread-safe: one owner. */
typedef struct ep_buf {
  char *data;
  size_t len;      /* bytes held, the NUL not counted */
  size_t cap;      /* bytes allocated (0 while data is NULL) */
  size_t max;      /* most bytes it may hold, the NUL not counted */
  unsigned flags;  /* EP_BUF_* */
  const char *what; /* names the buffer in error messages ("cloud-init user-data") */
} ep_buf;

/* An empty buffer that holds at most max bytes (plus the NUL); what (borrowed, may be NULL)
 * names it in error messages. Allocates nothing. */
void ep_buf_init(ep_buf *b, const char *what, size_t max, unsigned flags);

/* Makes room for extra more bytes (and the NUL) without a later allocation. 0; EP_ERANGE
 * when len + extra passes max ("<what>: longer than N bytes"), EP_ENOMEM. On failure the
 * buffer is unchanged. */
int ep_buf_reserve(ep_buf *b, size_t extra);

/* Appends len bytes (may hold NULs; NULL is fine when len is 0). Errors as ep_buf_reserve;
 * on failure the buffer is unchanged. */
int ep_buf_append(ep_buf *b, const void *bytes, size_t len);

/* Appends a NUL-terminated string. */
int ep_buf_append_str(ep_buf *b, const char *text);

/* Appends printf-style text. Errors as ep_buf_reserve (EP_EINVAL when the format fails); on
 * failure the buffer is unchanged. */
int ep_buf_printf(ep_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int ep_buf_vprintf(ep_buf *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

/* Empties the buffer and keeps its memory (zeroing the old content with EP_BUF_WIPE). */
void ep_buf_reset(ep_buf *b);

/* Hands over the content: a malloc'd NUL-terminated block ("" when nothing was appended) and
 * its length in *ret_len (may be NULL). The buffer is left empty and may be reused. The
 * caller frees the block (and zeroes it first when it holds a secret). NULL with EP_ENOMEM
 * set only when the buffer was empty and "" could not be allocated. */
char *ep_buf_take(ep_buf *b, size_t *ret_len);

/* Releases the memory (zeroed first with EP_BUF_WIPE) and leaves the buffer empty, reusable;
 * NULL is fine. */
void ep_buf_free(ep_buf *b);

#endif
