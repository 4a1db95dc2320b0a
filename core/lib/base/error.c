/* core: thread-local last error, see error.h. */
#include "base/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char last_message[EP_ERROR_MESSAGE_MAX];
static _Thread_local int last_code;

int ep_error_set(int code, const char *fmt, ...) {
  /* Formatted aside first: an argument may be ep_error_message() itself. */
  char message[EP_ERROR_MESSAGE_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(message, sizeof message, fmt, ap);
  va_end(ap);
  memcpy(last_message, message, sizeof last_message);
  last_code = code;
  return code;
}

int ep_error_prefix(int code, const char *fmt, ...) {
  char prefix[EP_ERROR_MESSAGE_MAX];
  char old[EP_ERROR_MESSAGE_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(prefix, sizeof prefix, fmt, ap);
  va_end(ap);
  memcpy(old, last_message, sizeof old);
  /* Both parts are cut to fit: the prefix first, then as much of the old message as fits. */
  size_t used = strnlen(prefix, sizeof last_message - 3);
  memcpy(last_message, prefix, used);
  memcpy(last_message + used, ": ", 2);
  used += 2;
  size_t tail = strnlen(old, sizeof last_message - used - 1);
  memcpy(last_message + used, old, tail);
  last_message[used + tail] = '\0';
  last_code = code;
  return code;
}

const char *ep_error_message(void) { return last_message; }

int ep_error_code(void) { return last_code; }

void ep_error_clear(void) {
  last_message[0] = '\0';
  last_code = 0;
}
