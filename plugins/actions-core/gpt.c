/* actions-core: the primary GPT of an image, see gpt.h. */
#include "gpt.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <zlib.h>

#define GPT_HEADER_MIN 92u /* the UEFI header's defined bytes */

static uint32_t le32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static uint64_t le64(const uint8_t *p) { return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32; }

static int fail(int code, char *message, size_t cap, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int fail(int code, char *message, size_t cap, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  if (message && cap) vsnprintf(message, cap, fmt, ap);
  va_end(ap);
  return code;
}

/* A GPT name (UTF-16LE, up to 36 code units, NUL-terminated or full) as UTF-8; false when it is
 * not valid UTF-16 (a lone surrogate). */
static bool name_utf8(const uint8_t *raw, char out[GPT_NAME_MAX + 1]) {
  size_t o = 0;
  for (size_t i = 0; i < 36; i++) {
    uint32_t c = (uint32_t)raw[2 * i] | (uint32_t)raw[2 * i + 1] << 8;
    if (c == 0) break;
    if (c >= 0xdc00 && c <= 0xdfff) return false;
    if (c >= 0xd800 && c <= 0xdbff) {
      if (i + 1 >= 36) return false;
      uint32_t low = (uint32_t)raw[2 * i + 2] | (uint32_t)raw[2 * i + 3] << 8;
      if (low < 0xdc00 || low > 0xdfff) return false;
      c = 0x10000 + ((c - 0xd800) << 10) + (low - 0xdc00);
      i++;
    }
    uint8_t bytes[4];
    size_t n;
    if (c < 0x80) bytes[0] = (uint8_t)c, n = 1;
    else if (c < 0x800) bytes[0] = (uint8_t)(0xc0 | c >> 6), bytes[1] = (uint8_t)(0x80 | (c & 0x3f)), n = 2;
    else if (c < 0x10000)
      bytes[0] = (uint8_t)(0xe0 | c >> 12), bytes[1] = (uint8_t)(0x80 | (c >> 6 & 0x3f)), bytes[2] = (uint8_t)(0x80 | (c & 0x3f)),
      n = 3;
    else
      bytes[0] = (uint8_t)(0xf0 | c >> 18), bytes[1] = (uint8_t)(0x80 | (c >> 12 & 0x3f)),
      bytes[2] = (uint8_t)(0x80 | (c >> 6 & 0x3f)), bytes[3] = (uint8_t)(0x80 | (c & 0x3f)), n = 4;
    if (o + n > GPT_NAME_MAX) return false; /* cannot happen: 36 units make at most 108 bytes */
    memcpy(out + o, bytes, n);
    o += n;
  }
  out[o] = '\0';
  return true;
}

static bool empty_guid(const uint8_t *g) {
  for (int i = 0; i < 16; i++)
    if (g[i]) return false;
  return true;
}

int gpt_find_partition(const uint8_t *buf, size_t len, const char *name, gpt_partition *out, char *message, size_t cap) {
  if (!buf || !name || !*name || !out) return fail(EP_EINVAL, message, cap, "no image bytes or no partition name");
  /* The header is in LBA 1: byte 512 with 512-byte sectors, byte 4096 with 4 KiB ones. */
  uint32_t sector = 0;
  static const uint32_t sizes[] = {512, 4096};
  for (size_t i = 0; i < 2 && !sector; i++)
    if (len >= (size_t)sizes[i] * 2 && memcmp(buf + sizes[i], "EFI PART", 8) == 0) sector = sizes[i];
  if (!sector) return fail(EP_EINVAL, message, cap, "no GPT: no 'EFI PART' header at byte 512 or 4096 of the image");
  const uint8_t *h = buf + sector;
  uint32_t header_size = le32(h + 12);
  if (header_size < GPT_HEADER_MIN || header_size > sector)
    return fail(EP_EINVAL, message, cap, "GPT header size %u is not between %u and %u", header_size, GPT_HEADER_MIN, sector);
  uint8_t header[4096];
  memcpy(header, h, header_size);
  memset(header + 16, 0, 4); /* the CRC is computed with its own field zero */
  uint32_t crc = (uint32_t)crc32(0, header, header_size);
  if (crc != le32(h + 16)) return fail(EP_EINVAL, message, cap, "GPT header CRC32 mismatch (0x%08x, computed 0x%08x)", le32(h + 16), crc);
  uint64_t my_lba = le64(h + 24), first_usable = le64(h + 40), last_usable = le64(h + 48), entries_lba = le64(h + 72);
  uint32_t count = le32(h + 80), entry_size = le32(h + 84), entries_crc = le32(h + 88);
  if (my_lba != 1) return fail(EP_EINVAL, message, cap, "GPT header says it is at LBA %llu, not 1 (not a primary GPT)", (unsigned long long)my_lba);
  if (entry_size < 128 || entry_size > 4096 || entry_size % 8)
    return fail(EP_EINVAL, message, cap, "GPT entry size %u is not a multiple of 8 between 128 and 4096", entry_size);
  if (count == 0 || count > GPT_ENTRIES_MAX)
    return fail(EP_EINVAL, message, cap, "GPT has %u partition entries (1 to %u read)", count, GPT_ENTRIES_MAX);
  /* (last_usable + 1) * sector is a partition's end at most: it must not wrap. */
  if (first_usable > last_usable || last_usable >= UINT64_MAX / sector)
    return fail(EP_EINVAL, message, cap, "GPT usable range %llu-%llu is not valid", (unsigned long long)first_usable,
                (unsigned long long)last_usable);
  if (entries_lba < 2 || entries_lba > (uint64_t)SIZE_MAX / sector)
    return fail(EP_EINVAL, message, cap, "GPT entries at LBA %llu", (unsigned long long)entries_lba);
  uint64_t array_start = entries_lba * sector, array_len = (uint64_t)count * entry_size;
  if (array_start > len || array_len > len - array_start)
    return fail(EP_ERANGE, message, cap, "GPT entries (bytes %llu-%llu) lie past the first %zu bytes of the image",
                (unsigned long long)array_start, (unsigned long long)(array_start + array_len), len);
  const uint8_t *entries = buf + array_start;
  crc = (uint32_t)crc32(0, entries, (uInt)array_len);
  if (crc != entries_crc)
    return fail(EP_EINVAL, message, cap, "GPT partition entries CRC32 mismatch (0x%08x, computed 0x%08x)", entries_crc, crc);

  char names[512] = "";
  size_t names_used = 0;
  int found = 0;
  gpt_partition match = {0};
  for (uint32_t i = 0; i < count; i++) {
    const uint8_t *e = entries + (size_t)i * entry_size;
    if (empty_guid(e)) continue; /* an unused entry */
    uint64_t first = le64(e + 32), last = le64(e + 40);
    char entry_name[GPT_NAME_MAX + 1];
    if (!name_utf8(e + 56, entry_name))
      return fail(EP_EINVAL, message, cap, "GPT partition %u: its name is not valid UTF-16", i + 1);
    if (names_used < sizeof names)
      names_used += (size_t)snprintf(names + names_used, sizeof names - names_used, "%s%u '%s'", names_used ? ", " : "",
                                     i + 1, entry_name);
    if (strcmp(entry_name, name) != 0) continue;
    if (first > last || first < first_usable || last > last_usable)
      return fail(EP_EINVAL, message, cap, "GPT partition %u '%s': sectors %llu-%llu lie outside the usable %llu-%llu", i + 1,
                  entry_name, (unsigned long long)first, (unsigned long long)last, (unsigned long long)first_usable,
                  (unsigned long long)last_usable);
    if (++found > 1) return fail(EP_EINVAL, message, cap, "GPT: partitions %u and %u are both named '%s'", match.number, i + 1, name);
    match.number = i + 1;
    match.sector_size = sector;
    match.start = first * sector;
    match.end = (last + 1) * sector; /* last <= last_usable < UINT64_MAX / sector: no wrap */
    if (match.end <= match.start)
      return fail(EP_EINVAL, message, cap, "GPT partition %u '%s': its bytes %llu-%llu are not a range", i + 1, entry_name,
                  (unsigned long long)match.start, (unsigned long long)match.end);
    memcpy(match.name, entry_name, sizeof match.name);
  }
  if (!found)
    return fail(EP_ENOENT, message, cap, "no GPT partition is named '%s' (the image has: %s)", name, names_used ? names : "none");
  *out = match;
  return 0;
}

int gpt_same_partition(const uint8_t *buf, size_t len, const gpt_partition *want, char *message, size_t cap) {
  gpt_partition now;
  char why[400];
  int rc = gpt_find_partition(buf, len, want->name, &now, why, sizeof why);
  if (rc < 0) return fail(rc, message, cap, "the image read again from byte 0 has no partition '%s' as before: %s", want->name, why);
  if (now.number != want->number || now.sector_size != want->sector_size || now.start != want->start || now.end != want->end)
    return fail(EP_EINVAL, message, cap,
                "the image read again from byte 0 is not the same: partition '%s' was %u (bytes %llu-%llu, %u-byte "
                "sectors), now %u (bytes %llu-%llu, %u-byte sectors)",
                want->name, want->number, (unsigned long long)want->start, (unsigned long long)want->end,
                want->sector_size, now.number, (unsigned long long)now.start, (unsigned long long)now.end, now.sector_size);
  return 0;
}
