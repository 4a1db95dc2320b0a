/* Unit tests of plugins/actions-core/fde_route.c: where image.stream puts each byte around an
 * encrypted partition, with files for the disk and the mapping: the partition's bytes land in
 * the mapping at (offset - start), the rest on the disk at its own offset, whatever the buffers'
 * sizes and wherever they cross a boundary; the partition's raw bytes on the disk are never
 * written; a non-zero byte in the last 16 MiB fails the image, and so does an ext4 superblock
 * that says its file system is larger than the mapping; and without a mapping nothing of the
 * partition goes anywhere. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fde_route.h"
#include "testutil.h"

#define MIB (UINT64_C(1) << 20)
#define PART_START (3 * MIB + 4096)            /* not aligned to the buffers on purpose */
#define PART_END (PART_START + 20 * MIB)       /* 4 MiB of data + 16 MiB of LUKS2 room */
#define IMAGE_LEN (PART_END + 2 * MIB + 512)   /* the backup GPT and more after it */
#define DATA_LEN (PART_END - FDE_HEADER_ROOM - PART_START)
#define UNTOUCHED 0xa5

typedef struct fixture {
  char *dir;
  int disk, mapping;
  uint8_t *image;
  char disk_path[512], mapping_path[512];
} fixture;

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  f->dir = tu_mkdtemp();
  snprintf(f->disk_path, sizeof f->disk_path, "%s/disk", f->dir);
  snprintf(f->mapping_path, sizeof f->mapping_path, "%s/mapping", f->dir);
  f->disk = open(f->disk_path, O_RDWR | O_CREAT, 0600);
  f->mapping = open(f->mapping_path, O_RDWR | O_CREAT, 0600);
  /* The disk starts full of a pattern, so a byte written where none belongs shows. */
  uint8_t *fill = malloc(IMAGE_LEN);
  memset(fill, UNTOUCHED, IMAGE_LEN);
  assert_int_equal(pwrite(f->disk, fill, IMAGE_LEN, 0), (ssize_t)IMAGE_LEN);
  free(fill);
  f->image = malloc(IMAGE_LEN);
  srand(20);
  for (uint64_t i = 0; i < IMAGE_LEN; i++) f->image[i] = (uint8_t)(rand() | 1); /* no zero: tails show */
  memset(f->image + PART_START + DATA_LEN, 0, FDE_HEADER_ROOM); /* an image built for FDE */
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  close(f->disk);
  close(f->mapping);
  unlink(f->disk_path);
  unlink(f->mapping_path);
  rmdir(f->dir);
  free(f->dir);
  free(f->image);
  free(f);
  return 0;
}

static fde_route route_of(fixture *f) {
  return (fde_route){.split = true, .part_start = PART_START, .part_end = PART_END, .disk_fd = f->disk, .mapping_fd = f->mapping,
                     .disk_name = "disk", .mapping_name = "/dev/mapper/cryptroot", .part_name = "cloudimg-rootfs"};
}

/* Streams the image through the route in buffers of chunk bytes; returns the first failure. */
static int stream(fixture *f, fde_route *r, uint64_t chunk, char *message) {
  for (uint64_t at = 0; at < IMAGE_LEN; at += chunk) {
    uint64_t n = IMAGE_LEN - at < chunk ? IMAGE_LEN - at : chunk;
    int rc = fde_route_write(r, f->image + at, (size_t)n, at, message, 512);
    if (rc < 0) return rc;
  }
  return 0;
}

static void check_result(fixture *f) {
  uint8_t *disk = malloc(IMAGE_LEN), *mapping = malloc(DATA_LEN + 1);
  assert_int_equal(pread(f->disk, disk, IMAGE_LEN, 0), (ssize_t)IMAGE_LEN);
  /* Before and after the partition: the image's own bytes. */
  assert_memory_equal(disk, f->image, PART_START);
  assert_memory_equal(disk + PART_END, f->image + PART_END, IMAGE_LEN - PART_END);
  /* The partition's raw bytes on the disk: never written (LUKS2 owns them). */
  for (uint64_t i = PART_START; i < PART_END; i++)
    if (disk[i] != UNTOUCHED) fail_msg("disk byte %llu inside the partition was written", (unsigned long long)i);
  /* The mapping: exactly the partition's data, from its byte 0. */
  assert_int_equal(pread(f->mapping, mapping, DATA_LEN + 1, 0), (ssize_t)DATA_LEN);
  assert_memory_equal(mapping, f->image + PART_START, DATA_LEN);
  free(disk);
  free(mapping);
}

static void buffers_of_every_size_land_where_they_belong(void **state) {
  fixture *f = *state;
  /* 1 MiB (image.stream's), odd sizes that cross each boundary mid-buffer, one byte at a time
   * around the boundaries is covered by 4093, and the whole image as one buffer. */
  const uint64_t chunks[] = {MIB, 777777, 4093, 3 * MIB + 1, IMAGE_LEN};
  for (size_t i = 0; i < sizeof chunks / sizeof chunks[0]; i++) {
    fde_route r = route_of(f);
    char message[512] = "";
    assert_int_equal(ftruncate(f->mapping, 0), 0);
    assert_int_equal(stream(f, &r, chunks[i], message), 0);
    check_result(f);
  }
}

static void buffers_out_of_order_land_the_same(void **state) {
  fixture *f = *state;
  fde_route r = route_of(f);
  char message[512];
  /* Resumed or restarted streams write a range again: last buffer first, then all. */
  assert_int_equal(fde_route_write(&r, f->image + PART_START - 10, 20, PART_START - 10, message, sizeof message), 0);
  assert_int_equal(stream(f, &r, MIB, message), 0);
  check_result(f);
}

static void a_non_zero_byte_in_the_luks_room_fails_the_image(void **state) {
  fixture *f = *state;
  f->image[PART_END - 5] = 1; /* a file system that fills the whole partition */
  fde_route r = route_of(f);
  char message[512] = "";
  assert_int_equal(stream(f, &r, MIB, message), EP_EINVAL);
  char expected[200];
  snprintf(expected, sizeof expected, "image not built for FDE: byte %llu of partition 'cloudimg-rootfs' is not zero",
           (unsigned long long)(PART_END - 5 - PART_START));
  assert_non_null(strstr(message, expected));
  /* Within one buffer that spans the partition's end, the check comes before the bytes after it. */
  uint8_t after;
  assert_int_equal(pread(f->disk, &after, 1, PART_END), 1);
  assert_int_equal(after, UNTOUCHED);
}

/* An ext4 superblock at the partition's byte 1024: blocks of 1024 << log_block bytes; with
 * sixty_four the INCOMPAT_64BIT feature and blocks' high half in s_blocks_count_hi. */
static void put_ext4_superblock(fixture *f, uint64_t blocks, uint32_t log_block, int sixty_four) {
  uint8_t *sb = f->image + PART_START + FDE_EXT4_SB_AT;
  memset(sb, 0, FDE_EXT4_SB_LEN);
  for (int i = 0; i < 4; i++) {
    sb[0x04 + i] = (uint8_t)(blocks >> (8 * i));
    sb[0x18 + i] = (uint8_t)(log_block >> (8 * i));
    if (sixty_four) sb[0x150 + i] = (uint8_t)(blocks >> (32 + 8 * i));
  }
  sb[0x38] = 0x53, sb[0x39] = 0xef;
  if (sixty_four) sb[0x60] = 0x80;
}

/* Streams the image with the superblock cut in two: the image up to its byte 100, then the rest
 * of it first, then everything (as a restarted stream would). */
static int stream_split_superblock(fixture *f, fde_route *r, char *message) {
  uint64_t cut = PART_START + FDE_EXT4_SB_AT + 100;
  int rc = fde_route_write(r, f->image, (size_t)cut, 0, message, 512);
  if (rc == 0) rc = fde_route_write(r, f->image + cut, 4096, cut, message, 512);
  return rc ? rc : stream(f, r, MIB, message);
}

static void an_ext4_file_system_that_fits_the_mapping_passes(void **state) {
  fixture *f = *state;
  put_ext4_superblock(f, DATA_LEN / 4096, 2, 0); /* exactly the mapping */
  fde_route r = route_of(f);
  char message[512] = "";
  assert_int_equal(stream_split_superblock(f, &r, message), 0);
  check_result(f);
  put_ext4_superblock(f, DATA_LEN / 1024, 0, 1); /* 64-bit, 1 KiB blocks, high half zero */
  r = route_of(f);
  assert_int_equal(stream(f, &r, 4093, message), 0);
  check_result(f);
}

static void an_ext4_file_system_larger_than_the_mapping_fails_the_image(void **state) {
  fixture *f = *state;
  /* One block too many, with the last 16 MiB zero all the same: the zero tail alone passes it. */
  put_ext4_superblock(f, DATA_LEN / 4096 + 1, 2, 0);
  fde_route r = route_of(f);
  char message[512] = "";
  assert_int_equal(stream_split_superblock(f, &r, message), EP_EINVAL);
  char expected[300];
  snprintf(expected, sizeof expected, "image not built for FDE: partition 'cloudimg-rootfs' holds an ext4 file system of %llu "
           "blocks of 4096 bytes, larger than the %llu bytes its LUKS2 mapping has", (unsigned long long)(DATA_LEN / 4096 + 1),
           (unsigned long long)DATA_LEN);
  if (!strstr(message, expected)) fail_msg("'%s'", message);
  /* The buffer that completed the superblock was not written. */
  assert_int_equal(lseek(f->mapping, 0, SEEK_END), FDE_EXT4_SB_AT + 100);
  /* 64-bit: the high half counts (2^32 blocks of 1 KiB is 4 TiB). */
  put_ext4_superblock(f, UINT64_C(1) << 32, 0, 1);
  r = route_of(f);
  assert_int_equal(stream(f, &r, MIB, message), EP_EINVAL);
  assert_non_null(strstr(message, "holds an ext4 file system of 4294967296 blocks of 1024 bytes"));
  /* The largest count times the largest block size: no overflow lets it through. */
  put_ext4_superblock(f, UINT64_MAX, 6, 1);
  r = route_of(f);
  assert_int_equal(stream(f, &r, MIB, message), EP_EINVAL);
  put_ext4_superblock(f, 1, 7, 0);
  r = route_of(f);
  assert_int_equal(stream(f, &r, MIB, message), EP_EINVAL);
  assert_non_null(strstr(message, "holds an ext4 superblock with s_log_block_size 7"));
}

static void without_a_mapping_no_partition_byte_goes_anywhere(void **state) {
  fixture *f = *state;
  fde_route r = route_of(f);
  r.mapping_fd = -1;
  char message[512] = "";
  /* The buffer that crosses the partition's start: its disk part is written, then it fails. */
  assert_int_equal(fde_route_write(&r, f->image, (size_t)(PART_START + 100), 0, message, sizeof message), EP_EIO);
  assert_non_null(strstr(message, "belongs to partition 'cloudimg-rootfs' but its mapping is not open"));
  uint8_t *disk = malloc(PART_START + 100);
  assert_int_equal(pread(f->disk, disk, PART_START + 100, 0), (ssize_t)(PART_START + 100));
  assert_memory_equal(disk, f->image, PART_START);
  for (int i = 0; i < 100; i++) assert_int_equal(disk[PART_START + i], UNTOUCHED);
  free(disk);
  assert_int_equal(lseek(f->mapping, 0, SEEK_END), 0);
}

/* A route whose partition is not part_start < part_end - 16 MiB <= part_end (a wrapped end from a
 * crafted table, or a partition no larger than LUKS2's room) writes nothing anywhere. */
static void a_partition_without_room_for_data_is_refused(void **state) {
  fixture *f = *state;
  static const struct {
    uint64_t start, end;
  } bad[] = {
      {PART_START, 0},                                 /* (last + 1) * sector wrapped to 0 */
      {PART_START, PART_START},                        /* empty */
      {PART_START, PART_START + FDE_HEADER_ROOM},      /* only the header's room */
      {UINT64_MAX - MIB, UINT64_MAX - 2 * MIB},        /* ends before it starts */
      {PART_START, FDE_HEADER_ROOM - 1},               /* data_end would wrap below zero */
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    fde_route r = route_of(f);
    r.part_start = bad[i].start, r.part_end = bad[i].end;
    char message[512] = "";
    if (fde_route_write(&r, f->image, 4096, 0, message, sizeof message) != EP_EINVAL)
      fail_msg("case %zu (%llu-%llu): not refused (%s)", i, (unsigned long long)bad[i].start,
               (unsigned long long)bad[i].end, message);
    if (!strstr(message, "partition 'cloudimg-rootfs'") || !strstr(message, "has no room for data before LUKS2's 16 MiB"))
      fail_msg("case %zu: '%s'", i, message);
  }
  uint8_t disk[4096];
  assert_int_equal(pread(f->disk, disk, sizeof disk, 0), (ssize_t)sizeof disk);
  for (size_t i = 0; i < sizeof disk; i++) assert_int_equal(disk[i], UNTOUCHED);
  assert_int_equal(lseek(f->mapping, 0, SEEK_END), 0);
  /* The smallest partition that has room: one byte of data. */
  fde_route r = route_of(f);
  r.part_end = PART_START + FDE_HEADER_ROOM + 1;
  char message[512] = "";
  assert_int_equal(fde_route_write(&r, f->image, 4096, 0, message, sizeof message), 0);
}

static void without_a_split_everything_goes_to_the_disk(void **state) {
  fixture *f = *state;
  fde_route r = {.disk_fd = f->disk, .mapping_fd = -1, .disk_name = "disk"};
  char message[512];
  assert_int_equal(stream(f, &r, 777777, message), 0);
  uint8_t *disk = malloc(IMAGE_LEN);
  assert_int_equal(pread(f->disk, disk, IMAGE_LEN, 0), (ssize_t)IMAGE_LEN);
  assert_memory_equal(disk, f->image, IMAGE_LEN);
  free(disk);
}

static void a_failed_write_names_the_device_and_byte(void **state) {
  fixture *f = *state;
  int read_only = open(f->mapping_path, O_RDONLY);
  fde_route r = route_of(f);
  r.mapping_fd = read_only;
  char message[512] = "";
  assert_int_equal(fde_route_write(&r, f->image + PART_START, 4096, PART_START, message, sizeof message), EP_EIO);
  assert_string_equal(message, "/dev/mapper/cryptroot: write at byte 0 failed: Bad file descriptor");
  close(read_only);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(buffers_of_every_size_land_where_they_belong, setup, teardown),
      cmocka_unit_test_setup_teardown(buffers_out_of_order_land_the_same, setup, teardown),
      cmocka_unit_test_setup_teardown(a_non_zero_byte_in_the_luks_room_fails_the_image, setup, teardown),
      cmocka_unit_test_setup_teardown(an_ext4_file_system_that_fits_the_mapping_passes, setup, teardown),
      cmocka_unit_test_setup_teardown(an_ext4_file_system_larger_than_the_mapping_fails_the_image, setup, teardown),
      cmocka_unit_test_setup_teardown(without_a_mapping_no_partition_byte_goes_anywhere, setup, teardown),
      cmocka_unit_test_setup_teardown(a_partition_without_room_for_data_is_refused, setup, teardown),
      cmocka_unit_test_setup_teardown(without_a_split_everything_goes_to_the_disk, setup, teardown),
      cmocka_unit_test_setup_teardown(a_failed_write_names_the_device_and_byte, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
