/* actions-core: the primary GPT of an image, read from the image's first bytes (image.stream's
 * FDE split): finds one partition by its GPT name. Untrusted input: every size and offset is
 * checked against the buffer and the header, both CRC32s are verified. */
#ifndef EP_ACTIONS_CORE_GPT_H
#define EP_ACTIONS_CORE_GPT_H

#include <stddef.h>
#include <stdint.h>

#include <edgeprov/abi.h>

#define GPT_ENTRIES_MAX 1024u   /* most partition entries read (the usual table has 128) */
#define GPT_NAME_MAX 108        /* a GPT name: 36 UTF-16 code units, at most 108 bytes of UTF-8 (3 per BMP unit) */

typedef struct gpt_partition {
  uint32_t number;          /* 1-based, as the kernel numbers it (entry index + 1) */
  uint32_t sector_size;     /* 512, or 4096 when the header is at byte 4096 */
  uint64_t start, end;      /* bytes of the image: [start, end) */
  char name[GPT_NAME_MAX + 1]; /* UTF-8 */
} gpt_partition;

/* Finds the partition named name (UTF-8, compared exactly) in the primary GPT at the start of
 * buf (len bytes: the header and the whole entry array must lie in it). Returns 0 and fills
 * *out; EP_EINVAL for no or a broken GPT (signature, sizes, CRC, bounds), EP_ERANGE when the
 * entry array lies past len, EP_ENOENT when no entry has that name (the names found are
 * listed), EP_EINVAL when two have it. message (cap bytes) says why; never touched on success. */
int gpt_find_partition(const uint8_t *buf, size_t len, const char *name, gpt_partition *out, char *message, size_t cap);

/* Reads the GPT at the start of buf again (a download started over from byte 0) and checks that
 * it gives the partition want as it was planned: same number, sector size, start, end and name.
 * Returns 0; EP_EINVAL (or what gpt_find_partition returned) with message saying what differs. */
int gpt_same_partition(const uint8_t *buf, size_t len, const gpt_partition *want, char *message, size_t cap);

#endif
