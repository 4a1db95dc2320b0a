/* core: a node as an operator reads it, from its host, instance and workflow records: the
 * state in one word, the current action, and the timeline of its phases. Shared by the web
 * dashboard (northbound/dashboard.c); the texts are the records' own (not escaped: whoever
 * shows them escapes them for where they go). */
#ifndef EP_CORE_FLEET_VIEW_H
#define EP_CORE_FLEET_VIEW_H

#include <stddef.h>
#include <stdint.h>

#include "provisioning/inventory.h"
#include "provisioning/workflow.h"

#define EP_FLEET_PHASES_MAX (EP_WORKFLOW_ACTIONS_MAX + 8)

/* One phase of a node's timeline: a moment (no state, end 0) or an action (state set; end 0
 * while it runs). */
typedef struct ep_fleet_phase {
  char name[160];
  int64_t start, end; /* Unix seconds */
  const char *state;  /* an action's state name, or NULL for a moment */
  uint64_t bytes_done, bytes_total;
} ep_fleet_phase;

/* The state a person reads: RUNNING, FAILED, UNTRUSTED, REBOOTING, PROVISIONING, NEW (its node
 * never called), else the host's state name. instance and workflow may be NULL. */
const char *ep_fleet_state(const ep_inv_host *host, const ep_inv_instance *instance, const ep_workflow *workflow);

/* The current action: the first not SUCCESS (the last when all are); NULL without actions.
 * *ret_index (may be NULL) gets its index. */
const Edgeprov__V1__WorkflowAction *ep_fleet_current_action(const ep_workflow *workflow, uint32_t *ret_index);

/* Fills out (EP_FLEET_PHASES_MAX) with the node's phases in time order: first artifact
 * fetched, Micro-OS connected, onboarded, workflow created, each action started, the workflow's
 * end, RUNNING. Any record may be NULL. Returns how many. */
size_t ep_fleet_timeline(const ep_inv_host *host, const ep_inv_instance *instance, const ep_workflow *workflow,
                         ep_fleet_phase out[EP_FLEET_PHASES_MAX]);

/* When the node's provisioning began (its first artifact fetch or first contact; 0: not yet). */
int64_t ep_fleet_started_at(const ep_inv_host *host);

#endif
