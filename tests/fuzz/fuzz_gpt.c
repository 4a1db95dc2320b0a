/* Fuzz target: image.stream's reading of the primary GPT (plugins/actions-core/gpt.c), the first
 * bytes of an image a node downloads with fde = true. The first input byte picks the partition
 * name looked for; the rest is the image's start. Properties: never reads past the buffer (ASan),
 * and a partition found is one the FDE split can route: a name equal to the one asked for, a
 * known sector size, start < end, both on sector boundaries, no wrap-around. A failure always
 * says why. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gpt.h"

static const char *const names[] = {"cloudimg-rootfs", "data", "root", "ESP", "\xe6\x95\xb0\xe6\x8d\xae"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  const char *name = names[data[0] % (sizeof names / sizeof names[0])];
  gpt_partition part;
  memset(&part, 0xa5, sizeof part);
  char message[256] = "";
  int r = gpt_find_partition(data + 1, size - 1, name, &part, message, sizeof message);
  if (r != 0) {
    if (!message[0]) abort(); /* every refusal names its reason */
    return 0;
  }
  if (strcmp(part.name, name) != 0) abort();
  if (part.sector_size != 512 && part.sector_size != 4096) abort();
  if (part.start >= part.end) abort();
  if (part.start % part.sector_size || part.end % part.sector_size) abort();
  if (part.number < 1 || part.number > GPT_ENTRIES_MAX) abort();
  return 0;
}
