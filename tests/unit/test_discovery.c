/* Unit tests of core/agent/discovery.c (compiled into this test; it is the agent's, not
 * libedgeprov's) on fake sysroots built in a temporary directory: SMBIOS identity, network
 * interfaces and the primary one, the primary IP from fib_trie, disks, CPUs and memory; values
 * the firmware gets wrong are dropped, missing files leave fields empty, lists are bounded. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "discovery.h"
#include "testutil.h"

static int setup(void **state) {
  *state = tu_mkdtemp();
  return *state ? 0 : -1;
}

static int teardown(void **state) {
  tu_rmdir(*state);
  return 0;
}

static void put(const char *root, const char *path, const char *text) {
  if (tu_put(root, path, text) < 0) fail_msg("cannot write %s/%s", root, path);
}

/* An interface: its address and operstate (NULL: no such file). */
static void nic(const char *root, const char *name, const char *mac, const char *operstate) {
  char path[256];
  snprintf(path, sizeof path, "sys/class/net/%s/address", name);
  if (mac) put(root, path, mac);
  snprintf(path, sizeof path, "sys/class/net/%s/operstate", name);
  if (operstate) put(root, path, operstate);
  if (!mac && !operstate) {
    snprintf(path, sizeof path, "sys/class/net/%s/type", name);
    put(root, path, "1\n");
  }
}

static void disk(const char *root, const char *name, const char *sectors, const char *removable) {
  char path[256];
  snprintf(path, sizeof path, "sys/block/%s/size", name);
  if (sectors) put(root, path, sectors);
  snprintf(path, sizeof path, "sys/block/%s/removable", name);
  if (removable) put(root, path, removable);
  if (!sectors && !removable) {
    snprintf(path, sizeof path, "sys/block/%s/ro", name);
    put(root, path, "0\n");
  }
}

/* /proc/net/fib_trie as Linux 6.1 prints it (Main and Local tables), loopback first. */
static const char fib_trie[] = "Main:\n"
                               "  +-- 0.0.0.0/0 3 0 5\n"
                               "     |-- 0.0.0.0\n"
                               "        /0 universe UNICAST\n"
                               "     +-- 10.1.2.0/24 2 0 2\n"
                               "        |-- 10.1.2.0\n"
                               "           /24 link UNICAST\n"
                               "        |-- 10.1.2.37\n"
                               "           /32 host LOCAL\n"
                               "Local:\n"
                               "  +-- 0.0.0.0/0 3 0 5\n"
                               "     +-- 127.0.0.0/8 2 0 2\n"
                               "        |-- 127.0.0.1\n"
                               "           /32 host LOCAL\n"
                               "        |-- 10.1.2.37\n"
                               "           /32 host LOCAL\n";

static void reads_a_whole_node(void **state) {
  const char *root = *state;
  put(root, "sys/class/dmi/id/product_uuid", "4C4C4544-0042-3310-8057-B4C04F4A4E32\n");
  put(root, "sys/class/dmi/id/product_serial", "CZ12345678 \r\n"); /* trailing space and CR trimmed */
  nic(root, "lo", "00:00:00:00:00:00", "unknown");
  nic(root, "eth1", "52:54:00:AB:CD:02\n", "up\n");
  nic(root, "eth0", "52:54:00:ab:cd:01\n", "down\n");
  nic(root, "dummy0", "00:00:00:00:00:00\n", "up\n"); /* no address: not a NIC to name */
  nic(root, "sit0", "0.0.0.0\n", "down\n");           /* not a MAC */
  nic(root, "tun0", NULL, NULL);                      /* no address file */
  put(root, "proc/net/fib_trie", fib_trie);
  disk(root, "sda", "976773168\n", "0\n");
  disk(root, "sdb", "30031872\n", "1\n");
  disk(root, "loop0", "2048\n", "0\n");
  disk(root, "ram0", "8192\n", "0\n");
  disk(root, "zram0", "8192\n", "0\n");
  disk(root, "sr0", NULL, "1\n"); /* no size: skipped */
  put(root, "proc/cpuinfo", "processor\t: 0\nmodel name\t: X\n\nprocessor\t: 1\n\nprocessor\t: 2\n\nprocessor\t: 3\n");
  put(root, "proc/meminfo", "MemTotal:       16314780 kB\nMemFree:         1000000 kB\n");

  ep_discovery d;
  memset(&d, 0xa5, sizeof d); /* every field is written */
  assert_int_equal(ep_discover(&d, root), 0);
  assert_string_equal(d.uuid, "4c4c4544-0042-3310-8057-b4c04f4a4e32");
  assert_string_equal(d.serial, "CZ12345678");
  assert_int_equal(d.nic_count, 2); /* sorted by name; lo, no or bad addresses left out */
  assert_string_equal(d.nics[0].name, "eth0");
  assert_string_equal(d.nics[0].mac, "52:54:00:ab:cd:01");
  assert_false(d.nics[0].up);
  assert_string_equal(d.nics[1].name, "eth1");
  assert_string_equal(d.nics[1].mac, "52:54:00:ab:cd:02"); /* canonical */
  assert_true(d.nics[1].up);
  assert_string_equal(d.primary_mac, "52:54:00:ab:cd:02"); /* the first that is up */
  assert_string_equal(d.primary_ip, "10.1.2.37");
  assert_int_equal(d.disk_count, 2);
  assert_string_equal(d.disks[0].name, "sda");
  assert_int_equal(d.disks[0].bytes, 976773168ull * 512);
  assert_false(d.disks[0].removable);
  assert_string_equal(d.disks[1].name, "sdb");
  assert_true(d.disks[1].removable);
  assert_int_equal(d.cpus, 4);
  assert_int_equal(d.memory_bytes, 16314780ull * 1024);
}

static void empty_sysroot_leaves_everything_empty(void **state) {
  const char *root = *state;
  char missing[4200];
  snprintf(missing, sizeof missing, "%s/nonexistent", root);
  const char *roots[] = {root, missing};
  for (int i = 0; i < 2; i++) {
    ep_discovery d;
    memset(&d, 0xa5, sizeof d);
    assert_int_equal(ep_discover(&d, roots[i]), 0);
    assert_string_equal(d.uuid, "");
    assert_string_equal(d.serial, "");
    assert_int_equal(d.nic_count, 0);
    assert_string_equal(d.primary_mac, "");
    assert_string_equal(d.primary_ip, "");
    assert_int_equal(d.disk_count, 0);
    assert_int_equal(d.cpus, 0);
    assert_int_equal(d.memory_bytes, 0);
  }
}

/* What firmware writes when nobody set the fields: dropped, never sent as identity. */
static void placeholder_identity_is_dropped(void **state) {
  const char *root = *state;
  const char *uuids[] = {"Not Settable", "03000200-0400-0500-0006-00070008000", "", "4C4C4544-0042-3310-8057-B4C04F4A4E32-00"};
  const char *serials[] = {"To be filled by O.E.M.", "0", "Default string", "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "\n"};
  for (size_t i = 0; i < sizeof uuids / sizeof uuids[0]; i++) {
    put(root, "sys/class/dmi/id/product_uuid", uuids[i]);
    ep_discovery d;
    assert_int_equal(ep_discover(&d, root), 0);
    if (d.uuid[0]) fail_msg("uuid '%s' was taken as '%s'", uuids[i], d.uuid);
  }
  for (size_t i = 0; i < sizeof serials / sizeof serials[0]; i++) {
    put(root, "sys/class/dmi/id/product_serial", serials[i]);
    ep_discovery d;
    assert_int_equal(ep_discover(&d, root), 0);
    if (d.serial[0]) fail_msg("serial '%s' was taken as '%s'", serials[i], d.serial);
  }
  /* A line longer than the reader's buffer is cut, then fails validation. */
  char longer[2048];
  memset(longer, 'A', sizeof longer - 1);
  longer[sizeof longer - 1] = '\0';
  put(root, "sys/class/dmi/id/product_serial", longer);
  ep_discovery d;
  assert_int_equal(ep_discover(&d, root), 0);
  assert_string_equal(d.serial, "");
}

static void without_an_interface_up_the_first_is_primary(void **state) {
  const char *root = *state;
  nic(root, "enp2s0", "52:54:00:00:00:02", "down");
  nic(root, "enp1s0", "52:54:00:00:00:01", NULL); /* no operstate: not up */
  ep_discovery d;
  assert_int_equal(ep_discover(&d, root), 0);
  assert_int_equal(d.nic_count, 2);
  assert_false(d.nics[0].up);
  assert_string_equal(d.primary_mac, "52:54:00:00:00:01");
}

static void only_loopback_addresses_give_no_primary_ip(void **state) {
  const char *root = *state;
  put(root, "proc/net/fib_trie",
      "Local:\n  +-- 127.0.0.0/8 2 0 2\n     |-- 127.0.0.1\n        /32 host LOCAL\n"
      "     |-- 127.255.255.255\n        /32 link BROADCAST\n     |-- 999.1.1.1\n        /32 host LOCAL\n");
  ep_discovery d;
  assert_int_equal(ep_discover(&d, root), 0);
  assert_string_equal(d.primary_ip, "");
}

static void lists_are_bounded(void **state) {
  const char *root = *state;
  char name[32], mac[32];
  for (int i = 0; i < EP_DISCOVERY_NICS_MAX + 8; i++) {
    snprintf(name, sizeof name, "eth%02d", i);
    snprintf(mac, sizeof mac, "52:54:00:00:01:%02x", i);
    nic(root, name, mac, i == EP_DISCOVERY_NICS_MAX + 4 ? "up" : "down");
  }
  for (int i = 0; i < EP_DISCOVERY_DISKS_MAX + 8; i++) {
    snprintf(name, sizeof name, "vd%03d", i);
    disk(root, name, "2048", "0");
  }
  /* A name of 32 characters or more does not fit ep_nic.name: skipped, not cut. */
  nic(root, "a2345678901234567890123456789012", "52:54:00:00:02:01", "up");
  ep_discovery d;
  assert_int_equal(ep_discover(&d, root), 0);
  assert_int_equal(d.nic_count, EP_DISCOVERY_NICS_MAX);
  assert_string_equal(d.nics[0].name, "eth00");
  assert_string_equal(d.nics[EP_DISCOVERY_NICS_MAX - 1].name, "eth15");
  assert_string_equal(d.primary_mac, "52:54:00:00:01:00"); /* the one up is past the bound: the first */
  assert_int_equal(d.disk_count, EP_DISCOVERY_DISKS_MAX);
  assert_string_equal(d.disks[EP_DISCOVERY_DISKS_MAX - 1].name, "vd031");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(reads_a_whole_node, setup, teardown),
      cmocka_unit_test_setup_teardown(empty_sysroot_leaves_everything_empty, setup, teardown),
      cmocka_unit_test_setup_teardown(placeholder_identity_is_dropped, setup, teardown),
      cmocka_unit_test_setup_teardown(without_an_interface_up_the_first_is_primary, setup, teardown),
      cmocka_unit_test_setup_teardown(only_loopback_addresses_give_no_primary_ip, setup, teardown),
      cmocka_unit_test_setup_teardown(lists_are_bounded, setup, teardown),
  };
  return cmocka_run_group_tests_name("discovery", tests, NULL, NULL);
}
