/* core: secrets (operator tokens, keys, client secrets): read from owner-only files, compared in
 * constant time. A secret never appears in a log line or an error message. */
#ifndef EP_CORE_SECRET_H
#define EP_CORE_SECRET_H

#include <stdbool.h>
#include <stddef.h>

#define EP_OPERATOR_TOKEN_MIN 16   /* shortest operator token accepted */
#define EP_OPERATOR_TOKEN_MAX 4096 /* longest operator token accepted */

/* Reads a secret file (a token or a PEM key): ep_read_text_file with EP_FILE_OWNER_ONLY. The
 * caller clears and frees *out. */
int ep_read_secret_file(char **out, const char *path, size_t max);

/* Compares two secrets without an early exit, so timing does not tell how much of a guess
 * was right. */
bool ep_secret_equal(const char *a, const char *b);

#endif
