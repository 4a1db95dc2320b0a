/* Unit tests of core/lib/provisioning/reconciler.c: one pass (ep_reconciler_pass) over a real
 * inventory on storage-sqlite, with actions-core and os-microvisor loaded for real. An
 * Instance whose Host is onboarded gets its workflow once; a template that cannot render puts
 * the Instance in ERROR naming the mistake, once; an Instance whose Host is untrusted or gone
 * gets nothing and does not stop the pass. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <time.h>

#include <edgeprov/storage.h>

#include "base/error.h"
#include "provisioning/inventory.h"
#include "provisioning/reconciler.h"
#include "site_fixture.h"

#define HOST_A "aaaaaaaa-0000-4000-8000-000000000001"
#define HOST_B "aaaaaaaa-0000-4000-8000-000000000002"
#define HOST_C "aaaaaaaa-0000-4000-8000-000000000003"
#define PROFILE TU_PROFILE

/* A site with os-microvisor's own template. */
static int setup(void **state) {
  *state = tu_site_provisioning("", "", NULL);
  return *state ? 0 : -1;
}

/* A site whose template names an action no plugin offers: the plugin cannot see that at load,
 * only the render can. */
static int setup_bad_template(void **state) {
  *state = tu_site_provisioning("", "",
                                "# a site template\nactions = (\n"
                                "  { action = \"disk.eraze\"; params = { target = \"${node.target_disk}\"; }; }\n);\n");
  return *state ? 0 : -1;
}

static int pass(tu_site *t) { return ep_reconciler_pass(t->inv, t->site->plugins, t->site->config); }

/* Registers host with PROFILE, gives it an instance and, when onboarded, the state ONBOARDED
 * (as onboarding does once the node has its credentials). Writes the instance ID into id. */
static void host_with_instance(tu_site *t, const char *host, bool onboarded, char id[64]) {
  assert_int_equal(tu_add_host(t, host, NULL, PROFILE, true), 0);
  ep_inv_instance *instance = NULL;
  assert_int_equal(ep_inventory_create_instance(t->inv, host, NULL, false, &instance), 0);
  snprintf(id, 64, "%s", instance->id);
  ep_inv_instance_free(instance);
  if (onboarded)
    assert_int_equal(ep_inventory_set_host_state(t->inv, host, EDGEPROV__V1__HOST_STATE__HOST_STATE_ONBOARDED, "Onboarded",
                                                 EDGEPROV__V1__STATUS_INDICATOR__STATUS_INDICATOR_IDLE, NULL),
                     0);
}

/* The instance's current state, provisioning status and revision. */
static ep_inv_instance_state instance_state(tu_site *t, const char *id, char status[256], uint64_t *ret_revision) {
  ep_inv_instance *instance = NULL;
  assert_int_equal(ep_inventory_get_instance(t->inv, id, &instance), 0);
  ep_inv_instance_state s = instance->current_state;
  snprintf(status, 256, "%s", instance->provisioning_status ? instance->provisioning_status->message : "");
  if (ret_revision) *ret_revision = instance->revision;
  ep_inv_instance_free(instance);
  return s;
}

static void renders_the_workflow_once_the_host_is_onboarded(void **state) {
  tu_site *t = *state;
  char id[64], status[256];
  host_with_instance(t, HOST_A, false, id);
  ep_workflow *w = NULL;

  /* Not onboarded yet: the node has no credentials, nothing is rendered. */
  assert_int_equal(pass(t), 0);
  assert_int_equal(ep_inventory_get_workflow(t->inv, id, &w), EP_ENOENT);
  assert_int_equal(instance_state(t, id, status, NULL), EDGEPROV__V1__INSTANCE_STATE__INSTANCE_STATE_UNSPECIFIED);
  assert_string_equal(status, "Waiting for the host to onboard");

  assert_int_equal(ep_inventory_set_host_state(t->inv, HOST_A, EDGEPROV__V1__HOST_STATE__HOST_STATE_ONBOARDED, "Onboarded",
                                               EDGEPROV__V1__STATUS_INDICATOR__STATUS_INDICATOR_IDLE, NULL),
                   0);
  assert_int_equal(pass(t), 1);
  assert_int_equal(ep_inventory_get_workflow(t->inv, id, &w), 0);
  assert_string_equal(w->instance_id, id);
  assert_string_equal(w->host_uuid, HOST_A);
  assert_string_equal(w->os_profile, PROFILE);
  assert_int_equal(w->state, EDGEPROV__V1__WORKFLOW_STATE__WORKFLOW_STATE_PENDING);
  assert_true(w->generation > 0);
  assert_int_equal(w->n_actions, 6); /* os-microvisor's workflow.conf */
  assert_string_equal(w->actions[0]->action, "disk.erase");
  assert_string_equal(w->actions[5]->action, "system.reboot");
  for (size_t i = 0; i < w->n_actions; i++)
    assert_int_equal(w->actions[i]->state, EDGEPROV__V1__ACTION_STATE__ACTION_STATE_PENDING);
  uint64_t workflow_revision = w->revision;
  ep_workflow_free(w);

  uint64_t revision = 0;
  assert_int_equal(instance_state(t, id, status, &revision), EDGEPROV__V1__INSTANCE_STATE__INSTANCE_STATE_PROVISIONING);
  assert_string_equal(status, "0/6: waiting for the node");

  /* The next pass finds the workflow stored: nothing is rendered or written again. */
  uint64_t head = 0, head_after = 0;
  assert_int_equal(ep_inventory_revision(t->inv, &head), 0);
  assert_int_equal(pass(t), 0);
  assert_int_equal(ep_inventory_revision(t->inv, &head_after), 0);
  assert_int_equal(head_after, head);
  assert_int_equal(ep_inventory_get_workflow(t->inv, id, &w), 0);
  assert_int_equal(w->revision, workflow_revision);
  ep_workflow_free(w);
}

static void instance_that_does_not_want_running_is_left_alone(void **state) {
  tu_site *t = *state;
  char id[64], status[256];
  host_with_instance(t, HOST_A, true, id);
  /* Already failed (an earlier render or the node): the reconciler does not retry on its own. */
  assert_int_equal(ep_inventory_set_instance_state(t->inv, id, EDGEPROV__V1__INSTANCE_STATE__INSTANCE_STATE_ERROR, "failed",
                                                   EDGEPROV__V1__STATUS_INDICATOR__STATUS_INDICATOR_ERROR, NULL),
                   0);
  assert_int_equal(pass(t), 0);
  ep_workflow *w = NULL;
  assert_int_equal(ep_inventory_get_workflow(t->inv, id, &w), EP_ENOENT);
  /* An operator re-arms it: the next pass renders. */
  ep_inv_instance *instance = NULL;
  assert_int_equal(ep_inventory_retry_instance(t->inv, id, &instance), 0);
  ep_inv_instance_free(instance);
  assert_int_equal(pass(t), 1);
  assert_int_equal(ep_inventory_get_workflow(t->inv, id, &w), 0);
  ep_workflow_free(w);
  assert_int_equal(instance_state(t, id, status, NULL), EDGEPROV__V1__INSTANCE_STATE__INSTANCE_STATE_PROVISIONING);
}

static void bad_template_puts_the_instance_in_error_naming_the_mistake(void **state) {
  tu_site *t = *state;
  char id[64], status[256];
  host_with_instance(t, HOST_A, true, id);
  assert_int_equal(pass(t), 0);
  ep_workflow *w = NULL;
  assert_int_equal(ep_inventory_get_workflow(t->inv, id, &w), EP_ENOENT);
  uint64_t revision = 0;
  assert_int_equal(instance_state(t, id, status, &revision), EDGEPROV__V1__INSTANCE_STATE__INSTANCE_STATE_ERROR);
  if (strncmp(status, "Provisioning Failed: workflow: ", 31) != 0 || !strstr(status, "disk.eraze"))
    fail_msg("status: \"%s\"", status);
  ep_inv_instance *instance = NULL;
  assert_int_equal(ep_inventory_get_instance(t->inv, id, &instance), 0);
  assert_int_equal(instance->provisioning_status->indicator, EDGEPROV__V1__STATUS_INDICATOR__STATUS_INDICATOR_ERROR);
  ep_inv_instance_free(instance);

  /* Rendered once: the next pass leaves the failed Instance as it is. */
  assert_int_equal(pass(t), 0);
  uint64_t again = 0;
  char status_again[256];
  assert_int_equal(instance_state(t, id, status_again, &again), EDGEPROV__V1__INSTANCE_STATE__INSTANCE_STATE_ERROR);
  assert_int_equal(again, revision);
  assert_string_equal(status_again, status);
}

static void untrusted_host_gets_no_workflow(void **state) {
  tu_site *t = *state;
  char a[64], b[64], status[256];
  host_with_instance(t, HOST_A, true, a);
  host_with_instance(t, HOST_B, true, b);
  ep_inv_host *host = NULL;
  assert_int_equal(ep_inventory_set_desired_state(t->inv, HOST_A, EDGEPROV__V1__HOST_STATE__HOST_STATE_UNTRUSTED, &host), 0);
  ep_inv_host_free(host);
  assert_int_equal(pass(t), 1); /* B's */
  ep_workflow *w = NULL;
  assert_int_equal(ep_inventory_get_workflow(t->inv, a, &w), EP_ENOENT);
  assert_int_equal(instance_state(t, a, status, NULL), EDGEPROV__V1__INSTANCE_STATE__INSTANCE_STATE_UNSPECIFIED);
  assert_int_equal(ep_inventory_get_workflow(t->inv, b, &w), 0);
  ep_workflow_free(w);
}

/* Writes one record straight to the store, as a damaged or hand-edited store could hold it. */
static void raw_put(tu_site *t, const char *key, const ProtobufCMessage *message) {
  ep_plugin *plugin = NULL;
  const ep_storage *st = ep_plugins_capability(t->site->plugins, EP_CAP_STORAGE, &plugin);
  assert_non_null(st);
  uint8_t buf[1024];
  assert_true(protobuf_c_message_get_packed_size(message) <= sizeof buf);
  ep_storage_op op = {.struct_size = sizeof op, .kind = EP_STORAGE_PUT, .key = key, .value = buf,
                      .value_len = protobuf_c_message_pack(message, buf), .expect_mod_revision = EP_STORAGE_EXPECT_ANY};
  assert_int_equal(st->txn(plugin->instance, &op, 1, sizeof op, NULL, NULL), 0);
}

#define ORPHAN "00000000-0000-4000-8000-000000000000" /* listed before any random instance ID */
#define GONE "aaaaaaaa-0000-4000-8000-0000000000ff"

static void instance_whose_host_is_gone_does_not_stop_the_pass(void **state) {
  tu_site *t = *state;
  char b[64], c[64], status[256];
  ep_inv_host *host = NULL;
  uint64_t revision = 0;
  /* The inventory keeps a host and its instance together: a host with one is not deleted. */
  host_with_instance(t, HOST_A, true, b);
  assert_int_equal(ep_inventory_delete_host(t->inv, HOST_A, &revision), EP_EPERM);
  /* An instance whose host record is gone (the store was damaged or edited by hand). */
  ep_inv_instance orphan = EDGEPROV__V1__INSTANCE__INIT;
  orphan.id = ORPHAN;
  orphan.host_uuid = GONE;
  orphan.os_profile = PROFILE;
  orphan.desired_state = EDGEPROV__V1__INSTANCE_STATE__INSTANCE_STATE_RUNNING;
  raw_put(t, "instances/" ORPHAN, &orphan.base);
  assert_int_equal(ep_inventory_get_host(t->inv, GONE, &host), EP_ENOENT);
  host_with_instance(t, HOST_C, true, c);
  /* The orphan is listed first; the pass skips it and goes on to the others. */
  assert_int_equal(pass(t), 2);
  ep_workflow *w = NULL;
  assert_int_equal(ep_inventory_get_workflow(t->inv, ORPHAN, &w), EP_ENOENT);
  assert_int_equal(instance_state(t, ORPHAN, status, NULL), EDGEPROV__V1__INSTANCE_STATE__INSTANCE_STATE_UNSPECIFIED);
  assert_int_equal(ep_inventory_get_workflow(t->inv, b, &w), 0);
  ep_workflow_free(w);
  assert_int_equal(ep_inventory_get_workflow(t->inv, c, &w), 0);
  ep_workflow_free(w);
  assert_int_equal(pass(t), 0); /* and the orphan stays skipped */

  /* Deleted the way the API does it (instance first): nothing is left to reconcile. */
  assert_int_equal(ep_inventory_delete_instance(t->inv, b, &revision), 0);
  assert_int_equal(ep_inventory_delete_host(t->inv, HOST_A, &revision), 0);
  assert_int_equal(ep_inventory_get_workflow(t->inv, b, &w), EP_ENOENT); /* its workflow went with it */
  assert_int_equal(pass(t), 0);
}

static void thread_reconciles_on_changes(void **state) {
  tu_site *t = *state;
  ep_reconciler *rc = NULL;
  assert_int_equal(ep_reconciler_start(&rc, t->inv, t->site->plugins, t->site->config), 0);
  char id[64];
  host_with_instance(t, HOST_A, true, id);
  ep_workflow *w = NULL;
  int r = EP_ENOENT;
  for (int waited = 0; waited < 1000 && (r = ep_inventory_get_workflow(t->inv, id, &w)) == EP_ENOENT; waited++)
    nanosleep(&(struct timespec){.tv_nsec = 10000000L}, NULL); /* up to 10 s on a loaded machine */
  assert_int_equal(r, 0);
  ep_workflow_free(w);
  ep_reconciler_stop(rc); /* wakes and joins the thread */
  ep_reconciler_stop(NULL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(renders_the_workflow_once_the_host_is_onboarded, setup, tu_site_teardown),
      cmocka_unit_test_setup_teardown(instance_that_does_not_want_running_is_left_alone, setup, tu_site_teardown),
      cmocka_unit_test_setup_teardown(bad_template_puts_the_instance_in_error_naming_the_mistake, setup_bad_template,
                                      tu_site_teardown),
      cmocka_unit_test_setup_teardown(untrusted_host_gets_no_workflow, setup, tu_site_teardown),
      cmocka_unit_test_setup_teardown(instance_whose_host_is_gone_does_not_stop_the_pass, setup, tu_site_teardown),
      cmocka_unit_test_setup_teardown(thread_reconciles_on_changes, setup, tu_site_teardown),
  };
  return cmocka_run_group_tests_name("reconciler", tests, NULL, NULL);
}
