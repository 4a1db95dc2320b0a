/* core: a list of diagnostics (file:line: severity: message) gathered while checking input. */
#ifndef EP_CORE_DIAG_H
#define EP_CORE_DIAG_H

#include <stddef.h>
#include <stdio.h>

typedef enum { EP_DIAG_ERROR, EP_DIAG_WARNING } ep_diag_severity;

typedef struct ep_diag {
  ep_diag_severity severity;
  char *file; /* NULL when the diagnostic has no file */
  int line;   /* 0 when unknown */
  char *message;
} ep_diag;

typedef struct ep_diags {
  ep_diag *items;
  size_t count;
  size_t capacity;
  size_t errors;
  size_t dropped; /* diagnostics not kept (past EP_DIAGS_MAX or out of memory) */
} ep_diags;

/* Most diagnostics kept; later ones are counted as errors but dropped. */
#define EP_DIAGS_MAX 200

/* Appends a diagnostic (copies file and the formatted message). Out of memory or past
 * EP_DIAGS_MAX the text is dropped but an error still counts. */
void ep_diags_add(ep_diags *diags, ep_diag_severity severity, const char *file, int line,
                  const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Prints each as "file:line: error: message" (parts omitted when unknown), then how many
 * were dropped, if any. */
void ep_diags_print(const ep_diags *diags, FILE *out);

/* Releases the items; the struct may be reused (it is left empty). */
void ep_diags_clear(ep_diags *diags);

#endif
