/* Unit tests of core/lib/provisioning/housekeeping.c on the real storage-sqlite plugin: the
 * change log keeps the newest storage.change_log_retention revisions (plus a slack of a tenth),
 * exactly at the threshold's bounds, and the file stops growing once compaction runs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sys/stat.h>
#include <time.h>

#include <edgeprov/storage.h>

#include "base/error.h"
#include "provisioning/housekeeping.h"
#include "provisioning/inventory.h"
#include "site_fixture.h"

typedef tu_site fixture;

#define UUID1 "11111111-2222-4333-8444-555555555555"

static void add_host_ok(fixture *f) {
  if (tu_add_host(f, UUID1, "SER001", "ubuntu-22.04", false) < 0) fail_msg("add_host: %s", ep_error_message());
}

/* The size of <data>/inventory.sqlite<suffix> (0 when missing). */
static long long file_bytes(const fixture *f, const char *suffix) {
  char path[1024];
  struct stat st;
  snprintf(path, sizeof path, "%s/inventory.sqlite%s", f->dir, suffix);
  return stat(path, &st) == 0 ? (long long)st.st_size : 0;
}

static int count_event(void *data, const ep_inv_event *e) {
  (void)e;
  ++*(uint64_t *)data;
  return 0;
}

/* Counts the events after after_revision, page by page as a watcher reads them. */
static int count_events(fixture *f, uint64_t after_revision, uint64_t *ret_count) {
  uint64_t head = 0, count = 0;
  assert_int_equal(ep_inventory_revision(f->inv, &head), 0);
  while (after_revision < head) {
    uint64_t before = count;
    int r = ep_inventory_events(f->inv, after_revision, 1000, count_event, &count);
    if (r < 0) return r;
    after_revision += count - before; /* one host change per revision in these tests */
    if (count == before) break;
  }
  *ret_count = count;
  return 0;
}

/* Sets one host's status to the n-th distinct text: every call is a real change. */
static void report_status(fixture *f, int n) {
  char status[64];
  snprintf(status, sizeof status, "report %d", n);
  if (ep_inventory_set_host_status(f->inv, UUID1, status, EDGEPROV__V1__STATUS_INDICATOR__STATUS_INDICATOR_IN_PROGRESS,
                                   NULL) < 0)
    fail_msg("set_host_status %d: %s", n, ep_error_message());
}

#define RETENTION 1000
#define SLACK (RETENTION / 10)


static void compaction_bounds_the_change_log_and_the_file(void **state) {
  fixture *f = *state;
  ep_housekeeping *hk = NULL;
  assert_int_equal(ep_housekeeping_new(&hk, f->inv, RETENTION), 0);
  add_host_ok(f);
  assert_int_equal(ep_housekeeping_pass(hk), 0); /* far below the threshold */
  long long at_5000 = 0, at_20000 = 0, wal_5000 = 0, wal_20000 = 0;
  int64_t compacted = 0;
  for (int i = 1; i <= 20000; i++) {
    report_status(f, i);
    if (i % 250 == 0) { /* what the thread does each time the store passes the threshold */
      int64_t n = ep_housekeeping_pass(hk);
      assert_true(n >= 0);
      compacted += n;
    }
    if (i == 5000) at_5000 = file_bytes(f, ""), wal_5000 = file_bytes(f, "-wal");
  }
  at_20000 = file_bytes(f, ""), wal_20000 = file_bytes(f, "-wal");
  uint64_t head = 0;
  assert_int_equal(ep_inventory_revision(f->inv, &head), 0);
  assert_int_equal(head, 20001);
  print_message("inventory.sqlite: %lld bytes after 5,000 changes, %lld after 20,000 (%.2fx); -wal: %lld, %lld; "
                "%lld revisions compacted\n",
                at_5000, at_20000, (double)at_20000 / (double)at_5000, wal_5000, wal_20000, (long long)compacted);

  /* The log keeps at least the newest RETENTION revisions, at most RETENTION + SLACK. */
  uint64_t count = 0;
  assert_int_equal(count_events(f, head - RETENTION, &count), 0);
  assert_int_equal(count, RETENTION);
  assert_int_equal(count_events(f, head - RETENTION - SLACK - 1, &count), EP_ECOMPACTED);
  assert_non_null(strstr(ep_error_message(), "is compacted"));
  assert_int_equal(count_events(f, 1, &count), EP_ECOMPACTED);
  assert_true(compacted >= (int64_t)(head - RETENTION - SLACK));
  /* Without compaction the file grows with every change (about 4x from 5,000 to 20,000);
   * with it, freed pages are reused and the file stays where the first compactions left it. */
  assert_true(at_20000 < at_5000 + at_5000 / 2);
  assert_true(wal_20000 < wal_5000 + wal_5000 / 2);
  ep_housekeeping_free(hk);
}

static void housekeeping_thread_compacts_in_the_background(void **state) {
  fixture *f = *state;
  ep_housekeeping *hk = NULL;
  assert_int_equal(ep_housekeeping_new(&hk, f->inv, 100), 0);
  assert_int_equal(ep_housekeeping_start(hk), 0);
  add_host_ok(f);
  for (int i = 1; i <= 300; i++) report_status(f, i);
  /* The thread wakes on commits of this process; give it up to 10 s on a loaded machine. */
  uint64_t count = 0;
  int r = 0;
  for (int waited = 0; waited < 1000 && (r = count_events(f, 0, &count)) == 0; waited++)
    nanosleep(&(struct timespec){.tv_nsec = 10000000L}, NULL);
  assert_int_equal(r, EP_ECOMPACTED);
  assert_int_equal(count_events(f, 301 - 100, &count), 0);
  assert_int_equal(count, 100);
  ep_housekeeping_free(hk); /* stops and joins the thread */
}

/* Makes revisions 2..last (revision 1 is the host) by status reports. */
static void write_up_to(fixture *f, uint64_t last) {
  uint64_t head = 0;
  assert_int_equal(ep_inventory_revision(f->inv, &head), 0);
  for (uint64_t n = head + 1; n <= last; n++) report_status(f, (int)n);
  assert_int_equal(ep_inventory_revision(f->inv, &head), 0);
  assert_int_equal(head, last);
}

static void refuses_a_retention_of_zero(void **state) {
  fixture *f = *state;
  ep_housekeeping *hk = (ep_housekeeping *)f; /* must stay untouched */
  assert_int_equal(ep_housekeeping_new(&hk, f->inv, 0), EP_EINVAL);
  assert_string_equal(ep_error_message(), "housekeeping: retention must be at least 1 revision");
  assert_ptr_equal(hk, f);
  assert_int_equal(ep_housekeeping_new(&hk, NULL, 10), EP_EINVAL);
  ep_housekeeping_free(NULL);
}

/* retention 100, slack 10: nothing happens up to revision 110; at 111 the log is cut to the
 * newest 100 (revisions 12..111), and the next pass has nothing to do. */
static void compacts_exactly_past_retention_plus_slack(void **state) {
  fixture *f = *state;
  ep_housekeeping *hk = NULL;
  assert_int_equal(ep_housekeeping_new(&hk, f->inv, 100), 0);
  add_host_ok(f);
  write_up_to(f, 110);
  assert_int_equal(ep_housekeeping_pass(hk), 0);
  uint64_t count = 0;
  assert_int_equal(count_events(f, 0, &count), 0); /* the whole log is still there */
  assert_int_equal(count, 110);
  write_up_to(f, 111);
  assert_int_equal(ep_housekeeping_pass(hk), 11);
  assert_int_equal(count_events(f, 11, &count), 0);
  assert_int_equal(count, 100);
  assert_int_equal(count_events(f, 10, &count), EP_ECOMPACTED);
  assert_int_equal(ep_housekeeping_pass(hk), 0); /* under the threshold again */
  write_up_to(f, 121);
  assert_int_equal(ep_housekeeping_pass(hk), 0); /* 11 + 100 + 10 = 121: not past it */
  write_up_to(f, 122);
  assert_int_equal(ep_housekeeping_pass(hk), 11);
  assert_int_equal(count_events(f, 22, &count), 0);
  assert_int_equal(count, 100);
  assert_int_equal(count_events(f, 21, &count), EP_ECOMPACTED);
  ep_housekeeping_free(hk);
}

/* A retention under 10 still has a slack of one revision, not zero: one compaction a write. */
static void small_retention_has_a_slack_of_one(void **state) {
  fixture *f = *state;
  ep_housekeeping *hk = NULL;
  assert_int_equal(ep_housekeeping_new(&hk, f->inv, 5), 0);
  add_host_ok(f);
  write_up_to(f, 6);
  assert_int_equal(ep_housekeeping_pass(hk), 0);
  write_up_to(f, 7);
  assert_int_equal(ep_housekeeping_pass(hk), 2);
  uint64_t count = 0;
  assert_int_equal(count_events(f, 2, &count), 0);
  assert_int_equal(count, 5);
  assert_int_equal(count_events(f, 1, &count), EP_ECOMPACTED);
  ep_housekeeping_free(hk);
}

/* What edgeprovd does: the retention is the site's storage.change_log_retention. */
static void keeps_the_sites_change_log_retention(void **state) {
  (void)state;
  tu_site *t = tu_site_open("\"storage-sqlite\"", "storage = { change_log_retention = 200; };\n", NULL);
  assert_non_null(t);
  assert_int_equal(t->site->config->change_log_retention, 200);
  ep_housekeeping *hk = NULL;
  assert_int_equal(ep_housekeeping_new(&hk, t->inv, (uint64_t)t->site->config->change_log_retention), 0);
  add_host_ok(t);
  write_up_to(t, 221);
  assert_int_equal(ep_housekeeping_pass(hk), 21);
  uint64_t count = 0;
  assert_int_equal(count_events(t, 21, &count), 0);
  assert_int_equal(count, 200);
  assert_int_equal(count_events(t, 20, &count), EP_ECOMPACTED);
  ep_housekeeping_free(hk);
  tu_site_close(t);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(refuses_a_retention_of_zero, tu_site_setup_storage, tu_site_teardown),
      cmocka_unit_test_setup_teardown(compacts_exactly_past_retention_plus_slack, tu_site_setup_storage, tu_site_teardown),
      cmocka_unit_test_setup_teardown(small_retention_has_a_slack_of_one, tu_site_setup_storage, tu_site_teardown),
      cmocka_unit_test(keeps_the_sites_change_log_retention),
      cmocka_unit_test_setup_teardown(compaction_bounds_the_change_log_and_the_file, tu_site_setup_storage,
                                      tu_site_teardown),
      cmocka_unit_test_setup_teardown(housekeeping_thread_compacts_in_the_background, tu_site_setup_storage,
                                      tu_site_teardown),
  };
  return cmocka_run_group_tests_name("housekeeping", tests, NULL, NULL);
}
