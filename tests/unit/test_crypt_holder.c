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
  char cmd[1100];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
  assert_int_equal(system(cmd), 0);
  free(root);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(finds_the_luks_mapping_of_a_partition),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
