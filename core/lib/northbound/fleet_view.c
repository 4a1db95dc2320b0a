/* core: a node as an operator reads it, see fleet_view.h. */
#include "northbound/fleet_view.h"

#include <stdio.h>
#include <string.h>

static bool failed(const ep_inv_host *h, const ep_inv_instance *i, const ep_workflow *w) {
  return (i && i->current_state == EDGEPROV__V1__INSTANCE_STATE__INSTANCE_STATE_ERROR) ||
         (w && w->state == EDGEPROV__V1__WORKFLOW_STATE__WORKFLOW_STATE_FAILED) ||
         h->current_state == EDGEPROV__V1__HOST_STATE__HOST_STATE_UNTRUSTED;
}

const char *ep_fleet_state(const ep_inv_host *h, const ep_inv_instance *i, const ep_workflow *w) {
  if (i && i->current_state == EDGEPROV__V1__INSTANCE_STATE__INSTANCE_STATE_RUNNING) return "RUNNING";
  if (failed(h, i, w)) return h->current_state == EDGEPROV__V1__HOST_STATE__HOST_STATE_UNTRUSTED ? "UNTRUSTED" : "FAILED";
  if (w && w->state == EDGEPROV__V1__WORKFLOW_STATE__WORKFLOW_STATE_SUCCESS) return "REBOOTING";
  if (w) return "PROVISIONING";
  if (h->current_state == EDGEPROV__V1__HOST_STATE__HOST_STATE_UNSPECIFIED) return "NEW";
  return ep_inv_host_state_name(h->current_state);
}

const Edgeprov__V1__WorkflowAction *ep_fleet_current_action(const ep_workflow *w, uint32_t *ret_index) {
  if (!w || !w->n_actions) return NULL;
  size_t k = 0;
  while (k + 1 < w->n_actions && w->actions[k]->state == EDGEPROV__V1__ACTION_STATE__ACTION_STATE_SUCCESS) k++;
  if (ret_index) *ret_index = (uint32_t)k;
  return w->actions[k];
}

int64_t ep_fleet_started_at(const ep_inv_host *h) {
  int64_t a = h->artifact_fetched_at, c = h->first_contact_at;
  if (a && c) return a < c ? a : c;
  return a ? a : c;
}

size_t ep_fleet_timeline(const ep_inv_host *h, const ep_inv_instance *i, const ep_workflow *w,
                         ep_fleet_phase out[EP_FLEET_PHASES_MAX]) {
  size_t n = 0;
#define MOMENT(t, ...)                                        \
  do {                                                        \
    if ((t) > 0 && n < EP_FLEET_PHASES_MAX) {                 \
      memset(&out[n], 0, sizeof out[n]);                      \
      snprintf(out[n].name, sizeof out[n].name, __VA_ARGS__); \
      out[n++].start = (t);                                   \
    }                                                         \
  } while (0)
  if (h) {
    MOMENT(h->artifact_fetched_at, "first boot artifact fetched (from %s)", h->peer_ip[0] ? h->peer_ip : "its address");
    MOMENT(h->first_contact_at, "Micro-OS connected, onboarding");
    MOMENT(h->onboarded_at, "onboarded (credentials handed out)");
  }
  if (w) {
    MOMENT(w->created_at, "workflow %u created (%s)", w->generation, w->os_profile);
    for (size_t k = 0; k < w->n_actions && n < EP_FLEET_PHASES_MAX; k++) {
      const Edgeprov__V1__WorkflowAction *a = w->actions[k];
      if (!a->started_at) continue;
      memset(&out[n], 0, sizeof out[n]);
      snprintf(out[n].name, sizeof out[n].name, "%s", a->action);
      out[n].start = a->started_at;
      out[n].end = a->finished_at;
      out[n].state = ep_action_state_name(a->state);
      out[n].bytes_done = a->bytes_done;
      out[n].bytes_total = a->bytes_total;
      n++;
    }
    if (w->state == EDGEPROV__V1__WORKFLOW_STATE__WORKFLOW_STATE_SUCCESS)
      MOMENT(w->finished_at, "workflow done, rebooting into the installed OS");
    else if (w->state == EDGEPROV__V1__WORKFLOW_STATE__WORKFLOW_STATE_FAILED)
      MOMENT(w->finished_at, "workflow failed");
  }
  if (i) MOMENT(i->running_at, "RUNNING (the installed OS reported in)");
#undef MOMENT
  return n;
}
