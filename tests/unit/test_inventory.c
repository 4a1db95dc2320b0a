/* Unit tests of core/lib/provisioning/inventory.c on the real storage-sqlite plugin: validation, unique
 * UUID and serial, paging, transitions, instances, events. */
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
#include "runtime/site.h"
#include "testutil.h"

typedef struct fixture {
  char *dir;
  ep_site *site;
  ep_inventory *inv;
} fixture;

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  f->dir = tu_mkdtemp();
  char text[2048];
  snprintf(text, sizeof text,
           "paths = { data = \"%s\"; plugins = [ \"%s\" ]; };\nplugins = { enabled = [ \"storage-sqlite\" ]; };\n",
           f->dir, EP_PLUGIN_OUTPUT_DIR);
  char *path = tu_write(f->dir, "site.conf", text);
  ep_diags diags = {0};
  int r = ep_site_open(&f->site, path, &diags);
  free(path);
  if (r < 0 || diags.errors) return -1;
  if (ep_plugins_start(f->site->plugins, f->site->config) < 0) return -1;
  if (ep_inventory_new(&f->inv, f->site->plugins) < 0) return -1;
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  ep_inventory_free(f->inv);
  ep_site_free(f->site);
  tu_rmdir(f->dir);
  free(f);
  return 0;
}

#define UUID1 "11111111-2222-4333-8444-555555555555"
#define UUID2 "11111111-2222-4333-8444-666666666666"

static void add_host_ok(fixture *f, const char *uuid, const char *serial, bool auto_onboard) {
  const char *macs[] = {"52-54-00-AA-BB-01"};
  ep_inv_host_spec spec = {.uuid = uuid, .serial = serial, .macs = macs, .mac_count = 1, .os_profile = "ubuntu-22.04",
                       .auto_onboard = auto_onboard};
  ep_inv_host *host = NULL;
  if (ep_inventory_add_host(f->inv, &spec, &host) < 0) fail_msg("add_host: %s", ep_error_message());
  ep_inv_host_free(host);
}

static void adds_and_reads_hosts(void **state) {
  fixture *f = *state;
  const char *macs[] = {"52-54-00-AA-BB-01", "52:54:00:aa:bb:02"};
  ep_inv_host_spec spec = {.uuid = "11111111-2222-4333-8444-55555555555A", .serial = "SER001", .macs = macs, .mac_count = 2,
                       .ip = "10.0.0.5", .site = "lab-1", .os_profile = "ubuntu-22.04", .auto_onboard = true};
  ep_inv_host *host = NULL;
  assert_int_equal(ep_inventory_add_host(f->inv, &spec, &host), 0);
  assert_string_equal(host->uuid, "11111111-2222-4333-8444-55555555555a");
  assert_string_equal(host->macs[0], "52:54:00:aa:bb:01");
  assert_int_equal(host->desired_state, EDGEPROV__V1__HOST_STATE__HOST_STATE_ONBOARDED);
  assert_int_equal(host->current_state, EDGEPROV__V1__HOST_STATE__HOST_STATE_UNSPECIFIED);
  assert_true(host->revision > 0);
  ep_inv_host_free(host);

  assert_int_equal(ep_inventory_get_host(f->inv, "11111111-2222-4333-8444-55555555555A", &host), 0);
  assert_string_equal(host->serial, "SER001");
  assert_string_equal(host->site, "lab-1");
  assert_string_equal(host->registration_status->message, "Pre-registered, waiting for the node");
  ep_inv_host_free(host);
  assert_int_equal(ep_inventory_find_host_by_serial(f->inv, "SER001", &host), 0);
  assert_string_equal(host->uuid, "11111111-2222-4333-8444-55555555555a");
  ep_inv_host_free(host);
  assert_int_equal(ep_inventory_get_host(f->inv, UUID2, &host), EP_ENOENT);
  assert_string_equal(ep_error_message(), "no host with uuid " UUID2);
}

static void refuses_bad_fields_naming_them(void **state) {
  fixture *f = *state;
  ep_inv_host *host = NULL;
  struct {
    ep_inv_host_spec spec;
    const char *message;
  } cases[] = {
      {{.uuid = "not-a-uuid"}, "uuid: 'not-a-uuid' is not a UUID"},
      {{.uuid = NULL}, "uuid: required"},
      {{.uuid = UUID1, .serial = "AB"}, "serial: 'AB' has 2 characters"},
      {{.uuid = UUID1, .macs = (const char *[]){"52:54:00"}, .mac_count = 1}, "macs[0]: '52:54:00' is not a MAC"},
      {{.uuid = UUID1, .macs = (const char *[]){"52:54:00:00:00:01", "52-54-00-00-00-01"}, .mac_count = 2},
       "macs[1]: 52:54:00:00:00:01 is listed twice"},
      {{.uuid = UUID1, .ip = "300.1.1.1"}, "ip: '300.1.1.1' is not an IPv4 or IPv6 address"},
      {{.uuid = UUID1, .os_profile = "../etc"}, "os_profile: '../etc' is not a name"},
      {{.uuid = UUID1, .site = "Lab 1"}, "site: 'Lab 1' is not a name"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    assert_int_equal(ep_inventory_add_host(f->inv, &cases[i].spec, &host), EP_EINVAL);
    if (!strstr(ep_error_message(), cases[i].message)) fail_msg("case %zu: \"%s\"", i, ep_error_message());
  }
  uint64_t revision = 99;
  assert_int_equal(ep_inventory_revision(f->inv, &revision), 0);
  assert_int_equal(revision, 0); /* nothing was written */
}

static void uuid_and_serial_are_unique(void **state) {
  fixture *f = *state;
  add_host_ok(f, UUID1, "SER001", false);
  ep_inv_host *host = NULL;
  ep_inv_host_spec same_uuid = {.uuid = UUID1, .serial = "SER002"};
  assert_int_equal(ep_inventory_add_host(f->inv, &same_uuid, &host), EP_EEXIST);
  assert_string_equal(ep_error_message(), "uuid: a host with uuid " UUID1 " already exists");
  ep_inv_host_spec same_serial = {.uuid = UUID2, .serial = "SER001"};
  assert_int_equal(ep_inventory_add_host(f->inv, &same_serial, &host), EP_EEXIST);
  assert_string_equal(ep_error_message(), "serial: SER001 is already registered to host " UUID1);
  assert_int_equal(ep_inventory_get_host(f->inv, UUID2, &host), EP_ENOENT); /* nothing half-written */
}

static void lists_in_pages(void **state) {
  fixture *f = *state;
  char uuid[64], serial[32];
  for (int i = 0; i < 25; i++) {
    snprintf(uuid, sizeof uuid, "00000000-0000-4000-8000-%012d", i);
    snprintf(serial, sizeof serial, "SERIAL%03d", i);
    add_host_ok(f, uuid, serial, false);
  }
  ep_inv_host **hosts = NULL;
  size_t count = 0, total = 0;
  char *next = strdup("");
  int pages = 0;
  do {
    char *token = next;
    assert_int_equal(ep_inventory_list_hosts(f->inv, token, 10, &hosts, &count, &next), 0);
    free(token);
    for (size_t i = 0; i < count; i++) {
      snprintf(uuid, sizeof uuid, "00000000-0000-4000-8000-%012zu", total + i);
      assert_string_equal(hosts[i]->uuid, uuid);
    }
    total += count;
    pages++;
    ep_inv_hosts_free(hosts, count);
  } while (next[0]);
  free(next);
  assert_int_equal(total, 25);
  assert_int_equal(pages, 3);
  assert_int_equal(ep_inventory_list_hosts(f->inv, "", 5000, &hosts, &count, &next), EP_EINVAL);
  assert_non_null(strstr(ep_error_message(), "page_size: 5000 is above the limit"));
  assert_int_equal(ep_inventory_list_hosts(f->inv, "garbage", 10, &hosts, &count, &next), EP_EINVAL);
  assert_non_null(strstr(ep_error_message(), "page_token:"));
}

static void transitions_are_checked(void **state) {
  fixture *f = *state;
  add_host_ok(f, UUID1, "SER001", true);
  ep_inv_host *host = NULL;
  assert_int_equal(ep_inventory_set_host_state(f->inv, UUID1, EDGEPROV__V1__HOST_STATE__HOST_STATE_REGISTERED,
                                               "Registered", EDGEPROV__V1__STATUS_INDICATOR__STATUS_INDICATOR_IDLE, NULL),
                   0);
  assert_int_equal(ep_inventory_set_host_state(f->inv, UUID1, EDGEPROV__V1__HOST_STATE__HOST_STATE_ONBOARDED,
                                               "Onboarded", EDGEPROV__V1__STATUS_INDICATOR__STATUS_INDICATOR_IDLE, &host),
                   0);
  assert_int_equal(host->current_state, EDGEPROV__V1__HOST_STATE__HOST_STATE_ONBOARDED);
  assert_string_equal(host->host_status->message, "Onboarded");
  ep_inv_host_free(host);
  assert_int_equal(ep_inventory_set_host_state(f->inv, UUID1, EDGEPROV__V1__HOST_STATE__HOST_STATE_REGISTERED, "x",
                                               EDGEPROV__V1__STATUS_INDICATOR__STATUS_INDICATOR_IDLE, NULL),
                   EP_EPERM);
  assert_string_equal(ep_error_message(), "host " UUID1 ": ONBOARDED -> REGISTERED refused: an onboarded host must be "
                                          "invalidated (UNTRUSTED) before it registers again");
  const char *why = NULL;
  assert_false(ep_inv_host_transition_allowed(EDGEPROV__V1__HOST_STATE__HOST_STATE_DELETED,
                                          EDGEPROV__V1__HOST_STATE__HOST_STATE_REGISTERED, &why));
  assert_string_equal(why, "the host is deleted");
  assert_true(ep_inv_host_transition_allowed(EDGEPROV__V1__HOST_STATE__HOST_STATE_UNTRUSTED,
                                         EDGEPROV__V1__HOST_STATE__HOST_STATE_REGISTERED, NULL));
  assert_false(ep_inv_instance_transition_allowed(EDGEPROV__V1__INSTANCE_STATE__INSTANCE_STATE_UNSPECIFIED,
                                              EDGEPROV__V1__INSTANCE_STATE__INSTANCE_STATE_RUNNING, &why));
  assert_true(ep_inv_instance_transition_allowed(EDGEPROV__V1__INSTANCE_STATE__INSTANCE_STATE_ERROR,
                                             EDGEPROV__V1__INSTANCE_STATE__INSTANCE_STATE_PROVISIONING, NULL));
  /* a workflow that cannot be rendered fails the instance before its first step */
  assert_true(ep_inv_instance_transition_allowed(EDGEPROV__V1__INSTANCE_STATE__INSTANCE_STATE_UNSPECIFIED,
                                             EDGEPROV__V1__INSTANCE_STATE__INSTANCE_STATE_ERROR, NULL));
}

static void instances_belong_to_one_host(void **state) {
  fixture *f = *state;
  const char *macs[] = {"52:54:00:00:00:09"};
  ep_inv_host_spec bare = {.uuid = UUID2, .macs = macs, .mac_count = 1};
  ep_inv_host *host = NULL;
  assert_int_equal(ep_inventory_add_host(f->inv, &bare, &host), 0);
  ep_inv_host_free(host);
  ep_inv_instance *instance = NULL;
  assert_int_equal(ep_inventory_create_instance(f->inv, UUID2, NULL, &instance), EP_EINVAL);
  assert_non_null(strstr(ep_error_message(), "os_profile: host " UUID2 " has no OS profile"));

  add_host_ok(f, UUID1, "SER001", false);
  assert_int_equal(ep_inventory_create_instance(f->inv, UUID1, NULL, &instance), 0);
  assert_string_equal(instance->os_profile, "ubuntu-22.04");
  assert_string_equal(instance->host_uuid, UUID1);
  assert_int_equal(instance->desired_state, EDGEPROV__V1__INSTANCE_STATE__INSTANCE_STATE_RUNNING);
  char id[64];
  snprintf(id, sizeof id, "%s", instance->id);
  ep_inv_instance_free(instance);

  assert_int_equal(ep_inventory_create_instance(f->inv, UUID1, "other", &instance), EP_EEXIST);
  assert_int_equal(ep_inventory_get_host(f->inv, UUID1, &host), 0);
  assert_string_equal(host->instance_id, id);
  ep_inv_host_free(host);
  uint64_t revision = 0;
  assert_int_equal(ep_inventory_delete_host(f->inv, UUID1, &revision), EP_EPERM);
  assert_non_null(strstr(ep_error_message(), "has instance"));

  assert_int_equal(ep_inventory_set_instance_state(f->inv, id, EDGEPROV__V1__INSTANCE_STATE__INSTANCE_STATE_PROVISIONING,
                                                   "1/6: disk.erase", EDGEPROV__V1__STATUS_INDICATOR__STATUS_INDICATOR_IN_PROGRESS,
                                                   &instance),
                   0);
  assert_string_equal(instance->provisioning_status->message, "1/6: disk.erase");
  ep_inv_instance_free(instance);

  assert_int_equal(ep_inventory_delete_instance(f->inv, id, &revision), 0);
  assert_int_equal(ep_inventory_get_instance(f->inv, id, &instance), EP_ENOENT);
  assert_int_equal(ep_inventory_delete_host(f->inv, UUID1, &revision), 0);
  assert_int_equal(ep_inventory_get_host(f->inv, UUID1, &host), EP_ENOENT);
  assert_int_equal(ep_inventory_find_host_by_serial(f->inv, "SER001", &host), EP_ENOENT);
  add_host_ok(f, UUID1, "SER001", false); /* the serial is free again */
}

typedef struct recorded {
  char lines[16][128];
  int count;
} recorded;

static int record_event(void *data, const ep_inv_event *e) {
  recorded *r = data;
  if (r->count >= 16) return 1;
  const char *kind = e->kind == EDGEPROV__V1__EVENT__KIND__KIND_PUT ? "put" : "delete";
  if (e->resource_case == EDGEPROV__V1__EVENT__RESOURCE_HOST)
    snprintf(r->lines[r->count++], 128, "%llu %s host %s", (unsigned long long)e->revision, kind, e->host->uuid);
  else
    snprintf(r->lines[r->count++], 128, "%llu %s instance", (unsigned long long)e->revision, kind);
  return 0;
}

static void every_change_is_an_event(void **state) {
  fixture *f = *state;
  add_host_ok(f, UUID1, "SER001", false);
  uint64_t revision = 0;
  assert_int_equal(ep_inventory_delete_host(f->inv, UUID1, &revision), 0);
  add_host_ok(f, UUID2, NULL, false);
  recorded r = {0};
  assert_int_equal(ep_inventory_events(f->inv, 0, 100, record_event, &r), 0);
  assert_int_equal(r.count, 3); /* the serial index is not an event */
  assert_string_equal(r.lines[0], "1 put host " UUID1);
  assert_string_equal(r.lines[1], "2 delete host " UUID1);
  assert_string_equal(r.lines[2], "3 put host " UUID2);
  r.count = 0;
  assert_int_equal(ep_inventory_events(f->inv, 2, 100, record_event, &r), 0);
  assert_int_equal(r.count, 1);
  assert_int_equal(ep_inventory_wait(f->inv, 3, 50), EP_ETIMEDOUT);
  assert_int_equal(ep_inventory_wait(f->inv, 2, 50), 0);
}

/* ---- change-log compaction (housekeeping.c) ----------------------------------------------------- */

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
  add_host_ok(f, UUID1, "SER001", false);
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
  add_host_ok(f, UUID1, "SER001", false);
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

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(compaction_bounds_the_change_log_and_the_file, setup, teardown),
      cmocka_unit_test_setup_teardown(housekeeping_thread_compacts_in_the_background, setup, teardown),
      cmocka_unit_test_setup_teardown(adds_and_reads_hosts, setup, teardown),
      cmocka_unit_test_setup_teardown(refuses_bad_fields_naming_them, setup, teardown),
      cmocka_unit_test_setup_teardown(uuid_and_serial_are_unique, setup, teardown),
      cmocka_unit_test_setup_teardown(lists_in_pages, setup, teardown),
      cmocka_unit_test_setup_teardown(transitions_are_checked, setup, teardown),
      cmocka_unit_test_setup_teardown(instances_belong_to_one_host, setup, teardown),
      cmocka_unit_test_setup_teardown(every_change_is_an_event, setup, teardown),
  };
  return cmocka_run_group_tests_name("inventory", tests, NULL, NULL);
}
