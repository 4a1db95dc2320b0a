/* actions-core: the BootOrder efi.boot_order writes, see boot_order_calc.h. */
#include "boot_order_calc.h"

#include <string.h>
#include <strings.h>

#include <edgeprov/abi.h>

size_t boot_order_count_label(const boot_entry *entries, size_t count, const char *label) {
  size_t n = 0;
  for (size_t i = 0; *label && i < count; i++) n += entries[i].valid && strcmp(entries[i].description, label) == 0;
  return n;
}

static bool wanted(const boot_entry *e, const boot_order_want *want) {
  if (!e->valid) return false;
  if (*want->label && strcmp(e->description, want->label) == 0) return true;
  for (size_t g = 0; e->partition[0] && g < want->partition_count; g++)
    if (strcasecmp(e->partition, want->partitions[g]) == 0) return true;
  return false;
}

static bool contains(const uint16_t *list, size_t n, uint16_t number) {
  for (size_t i = 0; i < n; i++)
    if (list[i] == number) return true;
  return false;
}

static bool is_match(const boot_entry *entries, size_t count, uint16_t number) {
  for (size_t k = 0; k < count; k++)
    if (entries[k].match && entries[k].number == number) return true;
  return false;
}

int boot_order_compute(uint16_t *order, size_t *ret_len, size_t cap, const uint16_t *old, size_t old_len,
                       boot_entry *entries, size_t count, const boot_order_want *want) {
  if (old_len > cap) return EP_EINVAL;
  size_t matches = 0;
  for (size_t k = 0; k < count; k++) {
    entries[k].match = wanted(&entries[k], want);
    matches += entries[k].match;
  }
  if (!matches && want->fail_if_missing) return EP_ENOENT;
  if (!matches) {
    if (old_len) memcpy(order, old, old_len * sizeof *old); /* old may be NULL when empty */
    *ret_len = old_len;
    return BOOT_ORDER_NO_MATCH;
  }
  size_t n = 0;
  for (size_t i = 0; i < old_len; i++) /* the matches BootOrder lists, where it lists them first */
    if (is_match(entries, count, old[i]) && !contains(order, n, old[i])) order[n++] = old[i];
  for (size_t k = 0; k < count && n < cap; k++) /* those it lacks */
    if (entries[k].match && !contains(old, old_len, entries[k].number)) order[n++] = entries[k].number;
  size_t first = n;
  for (size_t i = 0; i < old_len && n < cap; i++) /* the rest, as they were */
    if (!contains(order, first, old[i])) order[n++] = old[i];
  *ret_len = n;
  return n == old_len && memcmp(order, old, n * sizeof *old) == 0 ? BOOT_ORDER_UNCHANGED : BOOT_ORDER_CHANGED;
}
