/* core: the reconciler, see reconciler.h. */
#include "provisioning/reconciler.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <edgeprov/storage.h>

#include "base/error.h"
#include "base/log.h"
#include "provisioning/workflow.h"

#define RECONCILE_WAIT_MS 1000 /* also the longest a missed wake-up delays a pass */

struct ep_reconciler {
  ep_inventory *inv;
  const ep_plugin_set *plugins;
  const ep_config *config;
  pthread_t thread;
  atomic_bool stopping;
};

static bool wants_workflow(const ep_inv_instance *instance) {
  return instance->desired_state == EDGEPROV__V1__INSTANCE_STATE__INSTANCE_STATE_RUNNING &&
         (instance->current_state == EDGEPROV__V1__INSTANCE_STATE__INSTANCE_STATE_UNSPECIFIED ||
          instance->current_state == EDGEPROV__V1__INSTANCE_STATE__INSTANCE_STATE_PROVISIONING);
}

/* Gives one Instance its workflow when it needs one. Returns 1 when it made one. */
static int reconcile_instance(ep_inventory *inv, const ep_plugin_set *plugins, const ep_config *config,
                              const ep_inv_instance *instance) {
  ep_workflow *existing = NULL;
  int r = ep_inventory_get_workflow(inv, instance->id, &existing);
  ep_workflow_free(existing);
  if (r != EP_ENOENT) return r < 0 ? r : 0;
  ep_inv_host *host = NULL;
  r = ep_inventory_get_host(inv, instance->host_uuid, &host);
  if (r < 0) return r;
  if (host->current_state != EDGEPROV__V1__HOST_STATE__HOST_STATE_ONBOARDED) {
    ep_inv_host_free(host);
    return 0; /* the workflow is rendered once the node has its credentials */
  }
  ep_workflow *w = NULL;
  /* Seconds since 2020 tell generations apart across re-arms and restarts. */
  uint32_t generation = (uint32_t)((int64_t)time(NULL) - 1577836800);
  r = ep_workflow_render(&w, plugins, config, host, instance, generation);
  if (r < 0) {
    char status[EP_WORKFLOW_STATUS_MAX];
    snprintf(status, sizeof status, "Provisioning Failed: workflow: %.200s", ep_error_message());
    ep_log(EP_LOG_WARN, "reconciler", "instance %s: %s", instance->id, status);
    /* ERROR takes the Instance out of the reconciler's work until an operator re-arms it, so
     * a bad template costs one render, not one per pass or per restart. */
    r = ep_inventory_set_instance_state(inv, instance->id, EDGEPROV__V1__INSTANCE_STATE__INSTANCE_STATE_ERROR, status,
                                        EDGEPROV__V1__STATUS_INDICATOR__STATUS_INDICATOR_ERROR, NULL);
    ep_inv_host_free(host);
    return r < 0 ? r : 0;
  }
  r = ep_inventory_put_workflow(inv, w, 0, NULL);
  if (r == EP_ECONFLICT) r = 0; /* another pass stored it first */
  else if (r == 0) {
    char status[EP_WORKFLOW_STATUS_MAX];
    snprintf(status, sizeof status, "0/%zu: waiting for the node", w->n_actions);
    r = ep_inventory_set_instance_state(inv, instance->id, EDGEPROV__V1__INSTANCE_STATE__INSTANCE_STATE_PROVISIONING, status,
                                        EDGEPROV__V1__STATUS_INDICATOR__STATUS_INDICATOR_IN_PROGRESS, NULL);
    ep_log(EP_LOG_INFO, "reconciler", "instance %s (host %s): workflow of %zu actions for %s", instance->id, host->uuid,
           w->n_actions, instance->os_profile);
    if (r == 0) r = 1;
  }
  ep_workflow_free(w);
  ep_inv_host_free(host);
  return r;
}

int ep_reconciler_pass(ep_inventory *inv, const ep_plugin_set *plugins, const ep_config *config) {
  char *token = strdup("");
  int made = 0, r = token ? 0 : ep_error_set(EP_ENOMEM, "out of memory");
  while (r == 0) {
    ep_inv_instance **page = NULL;
    size_t count = 0;
    char *next = NULL;
    r = ep_inventory_list_instances(inv, token, EP_INVENTORY_PAGE_MAX, &page, &count, &next);
    for (size_t i = 0; r == 0 && i < count; i++) {
      if (!wants_workflow(page[i])) continue;
      int one = reconcile_instance(inv, plugins, config, page[i]);
      if (one > 0) made++;
      else if (one < 0)
        ep_log(EP_LOG_WARN, "reconciler", "instance %s: %s", page[i]->id, ep_error_message());
    }
    ep_inv_instances_free(page, count);
    free(token);
    token = next;
    if (r < 0 || !token || !token[0]) break;
  }
  free(token);
  return r < 0 ? r : made;
}

static void *reconciler_main(void *arg) {
  ep_reconciler *rc = arg;
  uint64_t seen = 0;
  while (!atomic_load(&rc->stopping)) {
    uint64_t revision = 0;
    bool leading = false;
    /* One replica reconciles (the store elects it); the others stand by and ask each pass. */
    if (ep_inventory_lead(rc->inv, "reconciler", &leading) < 0 || !leading) {
      seen = 0; /* a new leader starts with a full pass */
      ep_inventory_wait(rc->inv, UINT64_MAX, RECONCILE_WAIT_MS);
      continue;
    }
    if (ep_inventory_revision(rc->inv, &revision) == 0 && revision != seen) {
      if (ep_reconciler_pass(rc->inv, rc->plugins, rc->config) < 0)
        ep_log(EP_LOG_WARN, "reconciler", "pass failed: %s", ep_error_message());
      seen = revision; /* changes made by the pass itself wake the next one: it finds nothing to do */
    }
    ep_inventory_wait(rc->inv, seen, RECONCILE_WAIT_MS);
  }
  return NULL;
}

int ep_reconciler_start(ep_reconciler **out, ep_inventory *inv, const ep_plugin_set *plugins, const ep_config *config) {
  ep_reconciler *rc = calloc(1, sizeof *rc);
  if (!rc) return ep_error_set(EP_ENOMEM, "out of memory");
  rc->inv = inv;
  rc->plugins = plugins;
  rc->config = config;
  if (pthread_create(&rc->thread, NULL, reconciler_main, rc) != 0) {
    free(rc);
    return ep_error_set(EP_ENOMEM, "cannot start the reconciler thread");
  }
  *out = rc;
  return 0;
}

void ep_reconciler_stop(ep_reconciler *rc) {
  if (!rc) return;
  atomic_store(&rc->stopping, true);
  ep_inventory_wake(rc->inv);
  pthread_join(rc->thread, NULL);
  free(rc);
}
