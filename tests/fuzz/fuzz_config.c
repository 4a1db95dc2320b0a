/* Fuzzes the site config reader (config.c over libconfig): any file must give a config or
 * diagnostics, never a crash or a leak. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/config.h"
#include "base/diag.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static char path[64];
  if (!path[0]) snprintf(path, sizeof path, "/tmp/edgeprov-fuzz-config-%d.conf", (int)getpid());
  FILE *f = fopen(path, "w");
  if (!f) return 0;
  fwrite(data, 1, size, f);
  fclose(f);
  ep_diags diags = {0};
  ep_config *config = NULL;
  if (ep_config_load(&config, path, "/nonexistent", &diags) == 0) {
    const char *ids[] = {"storage-sqlite", "auth-local"};
    const ep_config_refused refused[] = {{"old-plugin", "/plugins/old-plugin.so", "ABI major mismatch"}};
    ep_config_check_sections(config, ids, 2, refused, 1, &diags);
    ep_config_free(config);
  }
  ep_diags_clear(&diags);
  return 0;
}
