/* Unit tests of plugins/actions-core/crypt_holder.c: file.write finds the LUKS mapping that holds
 * a partition in a sysfs tree made here (partitions, holders, dm/uuid), and nothing else: another
 * device-mapper holder (LVM), another partition, another disk. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crypt_holder.h"
#include "testutil.h"

static void mkdirs(const char *root, const char *rel) {
  char path[1024];
  snprintf(path, sizeof path, "%s/%s", root, rel);
  for (char *p = path + strlen(root) + 1; (p = strchr(p, '/')); p++) {
    *p = '\0';
    mkdir(path, 0755);
    *p = '/';
  }
  mkdir(path, 0755);
}

static void put(const char *root, const char *rel, const char *text) {
  char path[1024];
  snprintf(path, sizeof path, "%s/%s", root, rel);
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
}

static void rm_tree(char *root) {
  char cmd[1100];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
  assert_int_equal(system(cmd), 0);
  free(root);
}

static void finds_the_luks_mapping_of_a_partition(void **state) {
  (void)state;
  char *root = tu_mkdtemp();
  mkdirs(root, "sys/class/block/loop0/loop0p1");
  put(root, "sys/class/block/loop0/loop0p1/partition", "1\n");
  mkdirs(root, "sys/class/block/loop0/loop0p2/holders/dm-3");
  put(root, "sys/class/block/loop0/loop0p2/partition", "2\n");
  mkdirs(root, "sys/class/block/loop0/loop0p3/holders/dm-4");
  put(root, "sys/class/block/loop0/loop0p3/partition", "3\n");
  mkdirs(root, "sys/class/block/dm-3/dm");
  put(root, "sys/class/block/dm-3/dm/uuid", "CRYPT-LUKS2-0f1e2d3c4b5a69788796a5b4c3d2e1f0-cryptroot\n");
  mkdirs(root, "sys/class/block/dm-4/dm");
  put(root, "sys/class/block/dm-4/dm/uuid", "LVM-abcdef\n");
  char out[32] = "";
  assert_int_equal(crypt_holder_find(root, "loop0", 2, out, sizeof out), 2);
  assert_string_equal(out, "/dev/dm-3");
  out[0] = '\0';
  assert_int_equal(crypt_holder_find(root, "loop0", 0, out, sizeof out), 2); /* any partition */
  assert_string_equal(out, "/dev/dm-3");
  assert_int_equal(crypt_holder_find(root, "loop0", 1, out, sizeof out), 0); /* no holder */
  assert_int_equal(crypt_holder_find(root, "loop0", 3, out, sizeof out), 0); /* not a crypt device */
  assert_int_equal(crypt_holder_find(root, "loop0", 9, out, sizeof out), 0);
  assert_int_equal(crypt_holder_find(root, "sda", 2, out, sizeof out), 0);
  assert_int_equal(crypt_holder_find(root, "../loop0", 2, out, sizeof out), 0);
  assert_int_equal(crypt_holder_find(root, "", 2, out, sizeof out), 0);
  rm_tree(root);
}

static void link_to(const char *root, const char *rel, const char *target) {
  char path[1024];
  snprintf(path, sizeof path, "%s/%s", root, rel);
  assert_int_equal(symlink(target, path), 0);
}

/* A stale mapping of fde_mapping's name is closed only when it sits on a partition of the
 * target disk: one on another disk (or with nothing below it) is someone else's. */
static void a_mapping_is_ours_only_on_a_partition_of_the_disk(void **state) {
  (void)state;
  char *root = tu_mkdtemp();
  mkdirs(root, "sys/class/block/sda/sda2");
  put(root, "sys/class/block/sda/sda2/partition", "2\n");
  mkdirs(root, "sys/class/block/sdb/sdb2");
  put(root, "sys/class/block/sdb/sdb2/partition", "2\n");
  mkdirs(root, "sys/class/block/dm-0/dm");
  put(root, "sys/class/block/dm-0/dm/name", "cryptroot\n");
  mkdirs(root, "sys/class/block/dm-0/slaves/sda2");
  mkdirs(root, "sys/class/block/dm-1/dm");
  put(root, "sys/class/block/dm-1/dm/name", "cryptdata\n");
  mkdirs(root, "sys/class/block/dm-1/slaves/sdb2");
  mkdirs(root, "sys/class/block/dm-2/dm");
  put(root, "sys/class/block/dm-2/dm/name", "empty\n");
  mkdirs(root, "sys/class/block/dm-2/slaves");
  char other[64] = "";
  assert_int_equal(crypt_mapping_on_disk(root, "cryptroot", "sda", other, sizeof other), 1);
  assert_int_equal(crypt_mapping_on_disk(root, "cryptroot", "sdb", other, sizeof other), 0);
  assert_string_equal(other, "sda2");
  assert_int_equal(crypt_mapping_on_disk(root, "cryptdata", "sda", other, sizeof other), 0);
  assert_string_equal(other, "sdb2");
  assert_int_equal(crypt_mapping_on_disk(root, "cryptdata", "sdb", other, sizeof other), 1);
  assert_int_equal(crypt_mapping_on_disk(root, "empty", "sda", other, sizeof other), 0);
  assert_string_equal(other, "");
  assert_int_equal(crypt_mapping_on_disk(root, "cryptswap", "sda", other, sizeof other), -1);
  /* The disk itself (a mapping on the whole disk) is not a partition of it. */
  mkdirs(root, "sys/class/block/dm-1/slaves/sdb");
  assert_int_equal(crypt_mapping_on_disk(root, "cryptdata", "sdb", other, sizeof other), 0);
  assert_int_equal(crypt_mapping_on_disk(root, "cryptroot", "../sda", other, sizeof other), 0);
  rm_tree(root);
}

/* A disk is named by its device numbers, not by the path the operator gave (a udev symlink). */
static void a_block_device_is_named_by_its_numbers(void **state) {
  (void)state;
  char *root = tu_mkdtemp();
  mkdirs(root, "sys/dev/block");
  link_to(root, "sys/dev/block/8:0", "../../devices/pci0000:00/0000:00:1f.2/ata1/host0/target0:0:0/0:0:0:0/block/sda");
  link_to(root, "sys/dev/block/259:1", "../../devices/pci0000:00/0000:00:1d.0/nvme/nvme0/nvme0n1/nvme0n1p1");
  char name[32] = "";
  assert_int_equal(sysfs_block_name(root, 8, 0, name, sizeof name), 0);
  assert_string_equal(name, "sda");
  assert_int_equal(sysfs_block_name(root, 259, 1, name, sizeof name), 0);
  assert_string_equal(name, "nvme0n1p1");
  assert_int_equal(sysfs_block_name(root, 8, 16, name, sizeof name), -1);
  char small[3];
  assert_int_equal(sysfs_block_name(root, 8, 0, small, sizeof small), -1);
  rm_tree(root);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(finds_the_luks_mapping_of_a_partition),
      cmocka_unit_test(a_mapping_is_ours_only_on_a_partition_of_the_disk),
      cmocka_unit_test(a_block_device_is_named_by_its_numbers),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
