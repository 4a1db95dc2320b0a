/* Unit tests of core/lib/provisioning/inventory.c on the real storage-sqlite plugin: validation, unique
 * UUID and serial, paging, transitions, instances, events. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include <edgeprov/storage.h>

#include "base/error.h"
#include "provisioning/inventory.h"
#include "runtime/site.h"
#include "site_fixture.h"

typedef tu_site fixture;

#define UUID1 "11111111-2222-4333-8444-555555555555"
#define UUID2 "11111111-2222-4333-8444-666666666666"

static void add_host_ok(fixture *f, const char *uuid, const char *serial, bool auto_onboard) {
  if (tu_add_host(f, uuid, serial, "ubuntu-22.04", auto_onboard) < 0) fail_msg("add_host: %s", ep_error_message());
}

static void adds_and_reads_hosts(void **state) {
  fixture *f = *state;
  const char *macs[] = {"52-54-00-AA-BB-01", "52:54:00:aa:bb:02"};
  ep_inv_host_spec spec = {.uuid = "11111111-2222-4333-8444-55555555555A", .serial = "SER001", .macs = macs, .mac_count = 2,
                       .ip = "10.0.0.5", .site = "lab-1", .os_profile = "ubuntu-22.04", .auto_onboard = true,
                       .fde = true};
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
  assert_true(host->fde); /* stored: every instance of it encrypts its disk */
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
  assert_false(host->fde);
  ep_inv_host_free(host);
  ep_inv_instance *instance = NULL;
  assert_int_equal(ep_inventory_create_instance(f->inv, UUID2, NULL, false, &instance), EP_EINVAL);
  assert_non_null(strstr(ep_error_message(), "os_profile: host " UUID2 " has no OS profile"));

  add_host_ok(f, UUID1, "SER001", false);
  assert_int_equal(ep_inventory_create_instance(f->inv, UUID1, NULL, false, &instance), 0);
  assert_string_equal(instance->os_profile, "ubuntu-22.04");
  assert_string_equal(instance->host_uuid, UUID1);
  assert_int_equal(instance->desired_state, EDGEPROV__V1__INSTANCE_STATE__INSTANCE_STATE_RUNNING);
  assert_false(instance->fde);
  char id[64];
  snprintf(id, sizeof id, "%s", instance->id);
  ep_inv_instance_free(instance);

  assert_int_equal(ep_inventory_create_instance(f->inv, UUID1, "other", false, &instance), EP_EEXIST);
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

  /* An instance that asks for full-disk encryption keeps asking once stored. */
  assert_int_equal(ep_inventory_create_instance(f->inv, UUID1, NULL, true, &instance), 0);
  snprintf(id, sizeof id, "%s", instance->id);
  assert_true(instance->fde);
  ep_inv_instance_free(instance);
  assert_int_equal(ep_inventory_get_instance(f->inv, id, &instance), 0);
  assert_true(instance->fde);
  ep_inv_instance_free(instance);
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

/* ---- waiting for changes: the store's wait (ABI 1.4), not a poll of the inventory ---- */

typedef struct waiter {
  ep_inventory *inv;
  uint64_t after;
  int result;
  double seconds;
} waiter;

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void *wait_for_change(void *arg) {
  waiter *w = arg;
  double start = now_s();
  w->result = ep_inventory_wait(w->inv, w->after, 10000);
  w->seconds = now_s() - start;
  return NULL;
}

/* Starts a waiter on inv for a revision past the current one. */
static void start_waiter(ep_inventory *inv, waiter *w, pthread_t *thread) {
  *w = (waiter){.inv = inv, .result = 99};
  assert_int_equal(ep_inventory_revision(inv, &w->after), 0);
  assert_int_equal(pthread_create(thread, NULL, wait_for_change, w), 0);
  usleep(100 * 1000); /* it is waiting */
}

static void a_commit_wakes_waiters_at_once(void **state) {
  fixture *f = *state;
  waiter w;
  pthread_t thread;
  start_waiter(f->inv, &w, &thread);
  add_host_ok(f, UUID1, "SER001", false);
  pthread_join(thread, NULL);
  assert_int_equal(w.result, 0);
  if (w.seconds > 0.35) fail_msg("the waiter saw this process's commit after %.3f s", w.seconds);
}

/* Another process or replica on the same store: a second site opening the same database file. */
static void another_writer_on_the_store_wakes_waiters(void **state) {
  fixture *f = *state;
  char extra[1024];
  snprintf(extra, sizeof extra, "storage-sqlite = { path = \"%s/inventory.sqlite\"; };\n", f->dir);
  tu_site *other = tu_site_open("\"storage-sqlite\"", extra, NULL);
  assert_non_null(other);
  waiter w;
  pthread_t thread;
  start_waiter(f->inv, &w, &thread);
  assert_int_equal(tu_add_host(other, UUID2, "SER002", "ubuntu-22.04", false), 0);
  double committed = now_s();
  pthread_join(thread, NULL);
  double late = now_s() - committed;
  assert_int_equal(w.result, 0);
  /* SQLite cannot tell another process: the store's wait polls, every 500 ms at most. */
  if (late > 1.0) fail_msg("the waiter saw the other writer's commit %.3f s late", late);
  ep_inv_host *host = NULL;
  assert_int_equal(ep_inventory_get_host(f->inv, UUID2, &host), 0);
  ep_inv_host_free(host);
  tu_site_close(other);
}

static void wake_and_free_do_not_wait_for_the_store(void **state) {
  fixture *f = *state;
  waiter w;
  pthread_t thread;
  start_waiter(f->inv, &w, &thread);
  double start = now_s();
  ep_inventory_wake(f->inv);
  pthread_join(thread, NULL);
  assert_int_equal(w.result, 0);
  if (now_s() - start > 0.35) fail_msg("a wake took %.3f s", now_s() - start);
  start = now_s();
  ep_inventory_free(f->inv); /* stops the store follower */
  f->inv = NULL;
  if (now_s() - start > 1.5) fail_msg("freeing the inventory took %.3f s", now_s() - start);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(a_commit_wakes_waiters_at_once, tu_site_setup_storage, tu_site_teardown),
      cmocka_unit_test_setup_teardown(another_writer_on_the_store_wakes_waiters, tu_site_setup_storage, tu_site_teardown),
      cmocka_unit_test_setup_teardown(wake_and_free_do_not_wait_for_the_store, tu_site_setup_storage, tu_site_teardown),
      cmocka_unit_test_setup_teardown(adds_and_reads_hosts, tu_site_setup_storage, tu_site_teardown),
      cmocka_unit_test_setup_teardown(refuses_bad_fields_naming_them, tu_site_setup_storage, tu_site_teardown),
      cmocka_unit_test_setup_teardown(uuid_and_serial_are_unique, tu_site_setup_storage, tu_site_teardown),
      cmocka_unit_test_setup_teardown(lists_in_pages, tu_site_setup_storage, tu_site_teardown),
      cmocka_unit_test_setup_teardown(transitions_are_checked, tu_site_setup_storage, tu_site_teardown),
      cmocka_unit_test_setup_teardown(instances_belong_to_one_host, tu_site_setup_storage, tu_site_teardown),
      cmocka_unit_test_setup_teardown(every_change_is_an_event, tu_site_setup_storage, tu_site_teardown),
  };
  return cmocka_run_group_tests_name("inventory", tests, NULL, NULL);
}
