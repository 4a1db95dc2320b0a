/* actions-core: the BootOrder efi.boot_order writes, computed from the old one and the
 * Boot#### entries; no I/O, so the order can be tested apart from EFI variables. */
#ifndef EP_ACTIONS_CORE_BOOT_ORDER_CALC_H
#define EP_ACTIONS_CORE_BOOT_ORDER_CALC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BOOT_DESCRIPTION_MAX 128 /* bytes of a description kept, as UTF-8 */
#define BOOT_GUID_TEXT_LEN 36    /* "1c5d...-..." */

/* One Boot#### load option. */
typedef struct boot_entry {
  uint16_t number;
  uint32_t attributes;                          /* LOAD_OPTION_* */
  char description[BOOT_DESCRIPTION_MAX];       /* UTF-8 */
  char partition[BOOT_GUID_TEXT_LEN + 1];       /* GUID of the first GPT hard-drive node, "" when none */
  bool valid;                                   /* a well-formed EFI_LOAD_OPTION */
  bool match;                                   /* set by boot_order_compute */
} boot_entry;

/* The entries to put first: the valid ones whose description is label (unless it is ""), or
 * whose partition is one of partitions (unique GUIDs, compared ignoring case). */
typedef struct boot_order_want {
  const char *label;
  const char (*partitions)[BOOT_GUID_TEXT_LEN + 1];
  size_t partition_count;
  bool fail_if_missing; /* no match is an error, not BOOT_ORDER_NO_MATCH */
} boot_order_want;

typedef enum boot_order_outcome {
  BOOT_ORDER_CHANGED = 0, /* the new order differs from the old one: write it */
  BOOT_ORDER_UNCHANGED,   /* the old order is already right */
  BOOT_ORDER_NO_MATCH,    /* no entry matched: leave BootOrder alone (the new order is the old one) */
} boot_order_outcome;

/* How many valid entries are labelled label; 0 for "". */
size_t boot_order_count_label(const boot_entry *entries, size_t count, const char *label);

/* Sets entries[].match for the entries want names and computes the new BootOrder into order
 * (cap entries, at least old_len): the matches first, in their old order and each once, then
 * the matches the old order lacks, in the order of entries, then the rest of the old order as
 * it was. Returns the outcome (>= 0) with *ret_len; EP_ENOENT when nothing matched and
 * want->fail_if_missing; EP_EINVAL when old_len > cap. order and *ret_len are untouched on
 * error. */
int boot_order_compute(uint16_t *order, size_t *ret_len, size_t cap, const uint16_t *old, size_t old_len,
                       boot_entry *entries, size_t count, const boot_order_want *want);

#endif
