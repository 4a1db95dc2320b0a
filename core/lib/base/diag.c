/* core: diagnostics list, see diag.h. */
#include "base/diag.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

void ep_diags_add(ep_diags *diags, ep_diag_severity severity, const char *file, int line,
                  const char *fmt, ...) {
  if (severity == EP_DIAG_ERROR) diags->errors++;
  if (diags->count >= EP_DIAGS_MAX) {
    diags->dropped++;
    return;
  }
  if (diags->count == diags->capacity) {
    size_t capacity = diags->capacity ? diags->capacity * 2 : 8;
    ep_diag *items = realloc(diags->items, capacity * sizeof *items);
    if (!items) {
      diags->dropped++;
      return;
    }
    diags->items = items;
    diags->capacity = capacity;
  }
  char message[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(message, sizeof message, fmt, ap);
  va_end(ap);
  ep_diag *d = &diags->items[diags->count];
  d->severity = severity;
  d->file = file ? strdup(file) : NULL;
  d->line = line;
  d->message = strdup(message);
  if (!d->message) {
    free(d->file);
    diags->dropped++;
    return;
  }
  diags->count++;
}

void ep_diags_print(const ep_diags *diags, FILE *out) {
  for (size_t i = 0; i < diags->count; i++) {
    const ep_diag *d = &diags->items[i];
    if (d->file && d->line > 0)
      fprintf(out, "%s:%d: ", d->file, d->line);
    else if (d->file)
      fprintf(out, "%s: ", d->file);
    fprintf(out, "%s: %s\n", d->severity == EP_DIAG_ERROR ? "error" : "warning", d->message);
  }
  if (diags->dropped) fprintf(out, "(%zu further diagnostics omitted)\n", diags->dropped);
}

void ep_diags_clear(ep_diags *diags) {
  for (size_t i = 0; i < diags->count; i++) {
    free(diags->items[i].file);
    free(diags->items[i].message);
  }
  free(diags->items);
  memset(diags, 0, sizeof *diags);
}
