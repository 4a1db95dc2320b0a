/* Unit tests of core/lib/provisioning/change_hub.c on the real storage-sqlite plugin: a change
 * reaches the subscribers of its host (by record or by instance) and the subscribers of every
 * change, and no one else; after unsubscribe nothing is called. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <unistd.h>
#include <cmocka.h>

#include "base/error.h"
#include "provisioning/change_hub.h"
#include "provisioning/inventory.h"
#include "site_fixture.h"

#define HOST_A "aaaaaaaa-0000-4000-8000-00000000000a"
#define HOST_B "bbbbbbbb-0000-4000-8000-00000000000b"

typedef struct counter {
  atomic_int calls;
} counter;

static void count_call(void *data) { atomic_fetch_add(&((counter *)data)->calls, 1); }

/* Waits up to 5 s for c to have been called at least want times. */
static void await_calls(counter *c, int want) {
  for (int i = 0; i < 500 && atomic_load(&c->calls) < want; i++) usleep(10000);
  if (atomic_load(&c->calls) < want) fail_msg("called %d times, expected at least %d", atomic_load(&c->calls), want);
}

/* Gives the hub time to have read what was committed (it reads within milliseconds). */
static void settle(void) { usleep(300 * 1000); }

static void a_change_reaches_its_host_and_everyone_only(void **state) {
  tu_site *t = *state;
  ep_change_hub *hub = NULL;
  assert_int_equal(ep_change_hub_start(&hub, t->inv), 0);
  counter a = {0}, b = {0}, all = {0};
  ep_change_sub *sa = NULL, *sb = NULL, *sall = NULL;
  assert_int_equal(ep_change_hub_subscribe(hub, HOST_A, count_call, &a, &sa), 0);
  assert_int_equal(ep_change_hub_subscribe(hub, HOST_B, count_call, &b, &sb), 0);
  assert_int_equal(ep_change_hub_subscribe(hub, NULL, count_call, &all, &sall), 0);

  assert_int_equal(tu_add_host(t, HOST_A, "SERIALA", TU_PROFILE, false), 0);
  await_calls(&a, 1);
  await_calls(&all, 1);
  settle();
  assert_int_equal(atomic_load(&b.calls), 0); /* another host's change is not B's */

  /* An instance of host B is B's change. */
  int a_before = atomic_load(&a.calls);
  assert_int_equal(tu_add_host(t, HOST_B, "SERIALB", TU_PROFILE, false), 0);
  await_calls(&b, 1); /* the host (first: the hub calls once per page it reads, which could hold both) */
  int b_before = atomic_load(&b.calls);
  ep_inv_instance *instance = NULL;
  assert_int_equal(ep_inventory_create_instance(t->inv, HOST_B, TU_PROFILE, false, &instance), 0);
  ep_inv_instance_free(instance);
  await_calls(&b, b_before + 1); /* then its instance */
  settle();
  assert_int_equal(atomic_load(&a.calls), a_before);

  /* After unsubscribe, nothing. */
  ep_change_hub_unsubscribe(hub, sa);
  int all_before = atomic_load(&all.calls);
  assert_int_equal(ep_inventory_set_host_status(t->inv, HOST_A, "after", EDGEPROV__V1__STATUS_INDICATOR__STATUS_INDICATOR_IDLE,
                                                NULL),
                   0);
  await_calls(&all, all_before + 1);
  settle();
  assert_int_equal(atomic_load(&a.calls), a_before);

  ep_change_hub_unsubscribe(hub, sb);
  ep_change_hub_unsubscribe(hub, sall);
  ep_change_hub_unsubscribe(hub, NULL); /* accepted */
  ep_change_hub_stop(hub);
}

/* With no subscriber the hub skips what it cannot tell anyone; a later subscriber still hears
 * the changes after it subscribed. */
static void a_late_subscriber_hears_what_follows(void **state) {
  tu_site *t = *state;
  ep_change_hub *hub = NULL;
  assert_int_equal(ep_change_hub_start(&hub, t->inv), 0);
  assert_int_equal(tu_add_host(t, HOST_A, "SERIALA", TU_PROFILE, false), 0);
  settle();
  counter a = {0};
  ep_change_sub *sa = NULL;
  assert_int_equal(ep_change_hub_subscribe(hub, HOST_A, count_call, &a, &sa), 0);
  assert_int_equal(ep_inventory_set_host_status(t->inv, HOST_A, "later", EDGEPROV__V1__STATUS_INDICATOR__STATUS_INDICATOR_IDLE,
                                                NULL),
                   0);
  await_calls(&a, 1);
  ep_change_hub_unsubscribe(hub, sa);
  ep_change_hub_stop(hub);
}

static void stop_with_nothing_subscribed_is_prompt(void **state) {
  tu_site *t = *state;
  ep_change_hub *hub = NULL;
  assert_int_equal(ep_change_hub_start(&hub, t->inv), 0);
  ep_change_hub_stop(hub); /* the hub waits on the store at most a second: stop wakes it */
  ep_change_hub_stop(NULL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(a_change_reaches_its_host_and_everyone_only, tu_site_setup_storage, tu_site_teardown),
      cmocka_unit_test_setup_teardown(a_late_subscriber_hears_what_follows, tu_site_setup_storage, tu_site_teardown),
      cmocka_unit_test_setup_teardown(stop_with_nothing_subscribed_is_prompt, tu_site_setup_storage, tu_site_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
