/* core: the error API. Library code records why a call failed; the program on top prints. */
#ifndef EP_CORE_ERROR_H
#define EP_CORE_ERROR_H

#include <edgeprov/abi.h>

/* Longest error message kept; longer ones are cut. */
#define EP_ERROR_MESSAGE_MAX 1024

/* Records the calling thread's last error message and returns code (negative EP_E* or
 * -errno), so a failure path reads `return ep_error_set(EP_EINVAL, "...", ...);`. */
int ep_error_set(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prefixes the calling thread's last message with "prefix: " and returns code. */
int ep_error_prefix(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The calling thread's last error message ("" when none). Valid until the next ep_error_*
 * call on this thread. */
const char *ep_error_message(void);

/* The code recorded with the last message (0 when none). */
int ep_error_code(void);

void ep_error_clear(void);

#endif
