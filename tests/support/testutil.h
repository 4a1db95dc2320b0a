/* Test support shared by the unit tests: temporary files and diagnostic matching. */
#ifndef EP_TEST_UTIL_H
#define EP_TEST_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "diag.h"

/* Creates a fresh temporary directory (test-owned; removed by tu_rmdir). */
static inline char *tu_mkdtemp(void) {
  char *dir = strdup("/tmp/edgeprov-test-XXXXXX");
  return dir && mkdtemp(dir) ? dir : NULL;
}

/* Writes text to dir/name and returns the path (caller frees). */
static inline char *tu_write(const char *dir, const char *name, const char *text) {
  char *path = NULL;
  if (asprintf(&path, "%s/%s", dir, name) < 0) return NULL;
  FILE *f = fopen(path, "w");
  if (!f) return path;
  fputs(text, f);
  fclose(f);
  return path;
}

static inline void tu_rmdir(char *dir) {
  char *cmd = NULL;
  if (dir && asprintf(&cmd, "rm -rf '%s'", dir) >= 0 && system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", dir);
  free(cmd);
  free(dir);
}

/* True when diags holds a diagnostic at line (0: any line) whose message contains text. */
static inline int tu_has_diag(const ep_diags *diags, int line, const char *text) {
  for (size_t i = 0; i < diags->count; i++)
    if ((line == 0 || diags->items[i].line == line) && strstr(diags->items[i].message, text)) return 1;
  fprintf(stderr, "no diagnostic at line %d containing \"%s\"; have:\n", line, text);
  ep_diags_print(diags, stderr);
  return 0;
}

#endif
