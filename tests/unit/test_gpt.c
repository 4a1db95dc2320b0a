/* Unit tests of plugins/actions-core/gpt.c: image.stream's reading of the primary GPT at the start
 * of an image (fde=true), from images made here byte by byte: a partition found by its UTF-16
 * name, 4 KiB sectors, and every kind of bad table refused with a reason, never read past the
 * buffer (the sanitizer build runs the truncations and the byte flips). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "gpt.h"

#define ENTRIES 128
#define ENTRY_SIZE 128

typedef struct layout {
  uint32_t sector;
  const char *names[4];       /* UTF-8 (the test names are ASCII or two-byte UTF-8) */
  uint64_t first[4], last[4]; /* sectors */
  uint32_t count, entry_size;
} layout;

static void put32(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> 8 * i);
}
static void put64(uint8_t *p, uint64_t v) {
  put32(p, (uint32_t)v);
  put32(p + 4, (uint32_t)(v >> 32));
}

/* UTF-8 (1 to 3 byte sequences: the BMP) to UTF-16LE. */
static void put_name(uint8_t *p, const char *name) {
  const unsigned char *s = (const unsigned char *)name;
  for (size_t o = 0; *s && o < 72; o += 2) {
    uint32_t c = *s++;
    if (c >= 0xe0) c = (c & 0x0f) << 12 | (uint32_t)(s[0] & 0x3f) << 6 | (s[1] & 0x3f), s += 2;
    else if (c >= 0xc0) c = (c & 0x1f) << 6 | (*s++ & 0x3f);
    p[o] = (uint8_t)c, p[o + 1] = (uint8_t)(c >> 8);
  }
}

static void fix_header_crc(uint8_t *img, uint32_t sector) {
  uint8_t *h = img + sector;
  put32(h + 16, 0);
  put32(h + 16, (uint32_t)crc32(0, h, 92));
}

/* Recomputes both CRCs (the entries' only while the header's count and size fit the image's len). */
static void fix_crcs_len(uint8_t *img, uint32_t sector, size_t len) {
  uint8_t *h = img + sector;
  uint64_t count = h[80] | h[81] << 8 | h[82] << 16 | (uint32_t)h[83] << 24;
  uint64_t size = h[84] | h[85] << 8 | h[86] << 16 | (uint32_t)h[87] << 24;
  if (2 * sector + count * size <= len) put32(h + 88, (uint32_t)crc32(0, img + 2 * sector, (uInt)(count * size)));
  fix_header_crc(img, sector);
}
#define fix_crcs(img, sector) fix_crcs_len(img, sector, len)

/* A GPT image (header at LBA 1, entries from LBA 2) of *len bytes. */
static uint8_t *make_gpt(const layout *l, size_t *len) {
  uint32_t count = l->count ? l->count : ENTRIES, size = l->entry_size ? l->entry_size : ENTRY_SIZE;
  *len = 2 * l->sector + (size_t)count * size + l->sector;
  uint8_t *img = calloc(1, *len);
  uint8_t *h = img + l->sector;
  memcpy(h, "EFI PART", 8);
  put32(h + 8, 0x00010000);
  put32(h + 12, 92);
  put64(h + 24, 1);
  put64(h + 32, 1000000);
  put64(h + 40, 34);
  put64(h + 48, 999966);
  memset(h + 56, 0x42, 16); /* disk GUID */
  put64(h + 72, 2);
  put32(h + 80, count);
  put32(h + 84, size);
  for (int i = 0; i < 4 && l->names[i]; i++) {
    uint8_t *e = img + 2 * l->sector + (size_t)i * size;
    memset(e, 0x11 + i, 16); /* type GUID: any non-zero */
    memset(e + 16, 0x21 + i, 16);
    put64(e + 32, l->first[i]);
    put64(e + 40, l->last[i]);
    put_name(e + 56, l->names[i]);
  }
  fix_crcs_len(img, l->sector, *len);
  return img;
}

static const layout debian = {.sector = 512,
                              .names = {"ESP", "cloudimg-rootfs"},
                              .first = {2048, 18432},
                              .last = {18431, 100000}};

static int find(const uint8_t *img, size_t len, const char *name, gpt_partition *p, char *message) {
  message[0] = '\0';
  return gpt_find_partition(img, len, name, p, message, 512);
}

static void finds_a_partition_by_its_gpt_name(void **state) {
  (void)state;
  size_t len;
  uint8_t *img = make_gpt(&debian, &len);
  gpt_partition p;
  char message[512];
  assert_int_equal(find(img, len, "cloudimg-rootfs", &p, message), 0);
  assert_int_equal(p.number, 2);
  assert_int_equal(p.sector_size, 512);
  assert_int_equal(p.start, UINT64_C(18432) * 512);
  assert_int_equal(p.end, UINT64_C(100001) * 512);
  assert_string_equal(p.name, "cloudimg-rootfs");
  assert_int_equal(find(img, len, "ESP", &p, message), 0);
  assert_int_equal(p.number, 1);
  /* Names are compared exactly: no prefix, no case folding. */
  assert_int_equal(find(img, len, "cloudimg", &p, message), EP_ENOENT);
  assert_int_equal(find(img, len, "CLOUDIMG-ROOTFS", &p, message), EP_ENOENT);
  free(img);
}

static void reads_4k_sectors_and_non_ascii_names(void **state) {
  (void)state;
  layout l = {.sector = 4096, .names = {"ESP", "d\xc3\xa4ta"}, .first = {256, 2304}, .last = {2303, 9000}};
  size_t len;
  uint8_t *img = make_gpt(&l, &len);
  gpt_partition p;
  char message[512];
  assert_int_equal(find(img, len, "d\xc3\xa4ta", &p, message), 0);
  assert_int_equal(p.sector_size, 4096);
  assert_int_equal(p.start, UINT64_C(2304) * 4096);
  assert_int_equal(p.end, UINT64_C(9001) * 4096);
  free(img);
}

/* 36 UTF-16 units of CJK are 108 bytes of UTF-8: the longest name a GPT holds is found. */
static void a_full_length_cjk_name_is_found(void **state) {
  (void)state;
  char name[GPT_NAME_MAX + 1] = "";
  for (int i = 0; i < 36; i++) strcat(name, "\xe6\x95\xb0"); /* U+6570 */
  assert_int_equal(strlen(name), 108);
  assert_int_equal(GPT_NAME_MAX, 108);
  layout l = {.sector = 512, .names = {"ESP", name}, .first = {2048, 18432}, .last = {18431, 100000}};
  size_t len;
  uint8_t *img = make_gpt(&l, &len);
  gpt_partition p;
  char message[512];
  if (find(img, len, name, &p, message) != 0) fail_msg("not found: %s", message);
  assert_int_equal(p.number, 2);
  assert_string_equal(p.name, name);
  free(img);
}

static void a_missing_name_lists_the_names_there_are(void **state) {
  (void)state;
  size_t len;
  uint8_t *img = make_gpt(&debian, &len);
  gpt_partition p = {.number = 77};
  char message[512];
  assert_int_equal(find(img, len, "data", &p, message), EP_ENOENT);
  assert_string_equal(message, "no GPT partition is named 'data' (the image has: 1 'ESP', 2 'cloudimg-rootfs')");
  assert_int_equal(p.number, 77); /* untouched on failure */
  free(img);
}

static void broken_tables_are_refused_with_the_reason(void **state) {
  (void)state;
  size_t len;
  gpt_partition p;
  char message[512];
  uint8_t *img = make_gpt(&debian, &len);

  img[512 + 60] ^= 1; /* disk GUID: the header's CRC no longer holds */
  assert_int_equal(find(img, len, "ESP", &p, message), EP_EINVAL);
  assert_non_null(strstr(message, "GPT header CRC32 mismatch"));
  img[512 + 60] ^= 1;

  img[1024 + 128 + 60] ^= 1; /* a name in the entries */
  assert_int_equal(find(img, len, "ESP", &p, message), EP_EINVAL);
  assert_non_null(strstr(message, "GPT partition entries CRC32 mismatch"));
  img[1024 + 128 + 60] ^= 1;

  memcpy(img + 512, "EFI PARX", 8);
  assert_int_equal(find(img, len, "ESP", &p, message), EP_EINVAL);
  assert_non_null(strstr(message, "no GPT"));
  memcpy(img + 512, "EFI PART", 8);

  put32(img + 512 + 12, 600); /* header larger than its sector */
  fix_header_crc(img, 512);
  assert_int_equal(find(img, len, "ESP", &p, message), EP_EINVAL);
  assert_non_null(strstr(message, "header size 600"));
  put32(img + 512 + 12, 92);

  put64(img + 512 + 24, 7); /* a backup header's LBA */
  fix_header_crc(img, 512);
  assert_int_equal(find(img, len, "ESP", &p, message), EP_EINVAL);
  assert_non_null(strstr(message, "not a primary GPT"));
  put64(img + 512 + 24, 1);

  put32(img + 512 + 84, 100); /* entry size not a multiple of 8 */
  fix_header_crc(img, 512);
  assert_int_equal(find(img, len, "ESP", &p, message), EP_EINVAL);
  assert_non_null(strstr(message, "entry size 100"));
  put32(img + 512 + 84, ENTRY_SIZE);

  put32(img + 512 + 80, GPT_ENTRIES_MAX + 1); /* more entries than are read */
  fix_header_crc(img, 512);
  assert_int_equal(find(img, len, "ESP", &p, message), EP_EINVAL);
  assert_non_null(strstr(message, "partition entries (1 to"));
  put32(img + 512 + 80, ENTRIES);

  put64(img + 512 + 72, UINT64_MAX / 2); /* entries far away: no overflow, no read */
  fix_header_crc(img, 512);
  assert_int_equal(find(img, len, "ESP", &p, message), EP_EINVAL);
  put64(img + 512 + 72, 2);
  fix_crcs(img, 512);
  assert_int_equal(find(img, len, "ESP", &p, message), 0);
  free(img);
}

static void entries_past_the_buffer_are_out_of_range(void **state) {
  (void)state;
  size_t len;
  uint8_t *img = make_gpt(&debian, &len);
  gpt_partition p;
  char message[512];
  size_t array_end = 1024 + ENTRIES * ENTRY_SIZE;
  assert_int_equal(find(img, array_end, "ESP", &p, message), 0); /* exactly enough */
  assert_int_equal(find(img, array_end - 1, "ESP", &p, message), EP_ERANGE);
  assert_non_null(strstr(message, "lie past the first"));
  /* Every shorter buffer fails, and none is read past (ASan build). */
  for (size_t cut = 0; cut < array_end; cut += cut < 1100 ? 1 : 97) {
    uint8_t *copy = malloc(cut ? cut : 1);
    memcpy(copy, img, cut);
    assert_true(gpt_find_partition(copy, cut, "ESP", &p, message, sizeof message) < 0);
    free(copy);
  }
  free(img);
}

static void bad_partitions_are_refused(void **state) {
  (void)state;
  size_t len;
  gpt_partition p;
  char message[512];
  layout outside = debian;
  outside.last[1] = 999967; /* past last usable */
  uint8_t *img = make_gpt(&outside, &len);
  assert_int_equal(find(img, len, "cloudimg-rootfs", &p, message), EP_EINVAL);
  assert_non_null(strstr(message, "lie outside the usable"));
  free(img);

  layout reversed = debian;
  reversed.first[1] = 5000, reversed.last[1] = 4000;
  img = make_gpt(&reversed, &len);
  assert_int_equal(find(img, len, "cloudimg-rootfs", &p, message), EP_EINVAL);
  free(img);

  layout twice = {.sector = 512, .names = {"data", "data"}, .first = {2048, 4096}, .last = {4095, 8191}};
  img = make_gpt(&twice, &len);
  assert_int_equal(find(img, len, "data", &p, message), EP_EINVAL);
  assert_string_equal(message, "GPT: partitions 1 and 2 are both named 'data'");
  free(img);

  img = make_gpt(&debian, &len);
  uint8_t *name = img + 1024 + 56;
  name[0] = 0x00, name[1] = 0xdc; /* a lone low surrogate */
  fix_crcs(img, 512);
  assert_int_equal(find(img, len, "ESP", &p, message), EP_EINVAL);
  assert_non_null(strstr(message, "not valid UTF-16"));
  free(img);

  assert_int_equal(gpt_find_partition(NULL, 0, "ESP", &p, message, sizeof message), EP_EINVAL);
}

/* A crafted table whose last usable sector makes (last + 1) * sector wrap to 0: refused, never a
 * partition that ends before it starts. */
static void a_partition_end_that_wraps_is_refused(void **state) {
  (void)state;
  static const uint32_t sectors[] = {512, 4096};
  for (size_t k = 0; k < 2; k++) {
    uint32_t sector = sectors[k];
    uint64_t top = UINT64_MAX / sector; /* (top + 1) * sector == 2^64 */
    layout l = {.sector = sector, .names = {"ESP", "data"}, .first = {256, top - 100000}, .last = {2303, top}};
    size_t len;
    uint8_t *img = make_gpt(&l, &len);
    put64(img + sector + 48, top); /* last usable */
    fix_crcs_len(img, sector, len);
    gpt_partition p = {.number = 77};
    char message[512];
    assert_int_equal(find(img, len, "data", &p, message), EP_EINVAL);
    if (!strstr(message, "usable range")) fail_msg("sector %u: '%s'", sector, message);
    assert_int_equal(p.number, 77);
    /* One sector less: the end is the last byte a uint64_t counts, and it is after the start. */
    put64(img + sector + 48, top - 1);
    uint8_t *e = img + 2 * sector + ENTRY_SIZE;
    put64(e + 40, top - 1);
    fix_crcs_len(img, sector, len);
    assert_int_equal(find(img, len, "data", &p, message), 0);
    assert_true(p.end > p.start);
    assert_int_equal(p.end, top * sector);
    free(img);
  }
}

/* A download started over from byte 0 must bring the same table: the partition planned before. */
static void the_same_partition_is_checked_after_a_restart(void **state) {
  (void)state;
  size_t len, len2;
  uint8_t *img = make_gpt(&debian, &len);
  gpt_partition planned;
  char message[512];
  assert_int_equal(find(img, len, "cloudimg-rootfs", &planned, message), 0);
  assert_int_equal(gpt_same_partition(img, len, &planned, message, sizeof message), 0);
  layout moved = debian;
  moved.last[1] = 100001;
  uint8_t *other = make_gpt(&moved, &len2);
  assert_int_equal(gpt_same_partition(other, len2, &planned, message, sizeof message), EP_EINVAL);
  assert_string_equal(message, "the image read again from byte 0 is not the same: partition 'cloudimg-rootfs' was 2 (bytes "
                               "9437184-51200512, 512-byte sectors), now 2 (bytes 9437184-51201024, 512-byte sectors)");
  free(other);
  layout renamed = debian;
  renamed.names[1] = "rootfs";
  other = make_gpt(&renamed, &len2);
  assert_int_equal(gpt_same_partition(other, len2, &planned, message, sizeof message), EP_ENOENT);
  assert_non_null(strstr(message, "has no partition 'cloudimg-rootfs' as before: no GPT partition is named"));
  free(other);
  layout renumbered = {.sector = 512, .names = {"cloudimg-rootfs", "ESP"}, .first = {18432, 2048}, .last = {100000, 18431}};
  other = make_gpt(&renumbered, &len2);
  assert_int_equal(gpt_same_partition(other, len2, &planned, message, sizeof message), EP_EINVAL);
  assert_non_null(strstr(message, "was 2 (bytes"));
  free(other);
  memset(img, 0, len); /* not a GPT at all */
  assert_int_equal(gpt_same_partition(img, len, &planned, message, sizeof message), EP_EINVAL);
  free(img);
}

/* Every single-byte change of the header and the first entries: refused or read, never a crash. */
static void flipped_bytes_never_read_outside(void **state) {
  (void)state;
  size_t len;
  uint8_t *img = make_gpt(&debian, &len);
  gpt_partition p;
  char message[512];
  for (size_t at = 512; at < 1024 + 2 * ENTRY_SIZE; at++) {
    for (int bit = 0; bit < 8; bit += 3) {
      img[at] ^= (uint8_t)(1 << bit);
      if (at < 512 + 92) fix_crcs(img, 512); /* also with valid CRCs, so the fields themselves are checked */
      gpt_find_partition(img, len, "cloudimg-rootfs", &p, message, sizeof message);
      img[at] ^= (uint8_t)(1 << bit);
    }
    fix_crcs(img, 512);
  }
  assert_int_equal(find(img, len, "cloudimg-rootfs", &p, message), 0);
  free(img);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(finds_a_partition_by_its_gpt_name),
      cmocka_unit_test(reads_4k_sectors_and_non_ascii_names),
      cmocka_unit_test(a_full_length_cjk_name_is_found),
      cmocka_unit_test(a_missing_name_lists_the_names_there_are),
      cmocka_unit_test(broken_tables_are_refused_with_the_reason),
      cmocka_unit_test(entries_past_the_buffer_are_out_of_range),
      cmocka_unit_test(bad_partitions_are_refused),
      cmocka_unit_test(a_partition_end_that_wraps_is_refused),
      cmocka_unit_test(the_same_partition_is_checked_after_a_restart),
      cmocka_unit_test(flipped_bytes_never_read_outside),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
