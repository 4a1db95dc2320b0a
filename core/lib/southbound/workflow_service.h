/* core: the southbound workflow service (edgeprov.v1.WorkflowService/Run). A node's agent
 * opens one stream with its bearer token and says hello; the orchestrator pushes the node's
 * workflow as soon as the reconciler stored one, then applies the agent's action reports:
 * each is stored, and the Instance's provisioning status follows. A node sees and reports
 * on its own workflow only. Held to limits.node_* (plugins->config): reports that change no
 * action's state count against the node's report budget (over it: RESOURCE_EXHAUSTED, which
 * ends the stream), progress is stored at most once a second per workflow, and the report
 * log lines the daemon logs against the node's log line budget. */
#ifndef EP_CORE_WORKFLOW_SERVICE_H
#define EP_CORE_WORKFLOW_SERVICE_H

#include "provisioning/inventory.h"
#include "net/node_api.h"
#include "net/rpc.h"

struct ep_plugin_set;

typedef struct ep_workflow_service ep_workflow_service;

int ep_workflow_service_new(ep_workflow_service **out, ep_inventory *inv, const struct ep_plugin_set *plugins);
int ep_workflow_service_register(ep_workflow_service *service, ep_rpc_server *server);
void ep_workflow_service_free(ep_workflow_service *service);

/* Applies report from node_id to its workflow and updates the Instance (and, once the
 * workflow is done, the Host's status: "Rebooting"). The store is read and written with
 * compare-and-set. No budget and no coalescing: exposed for the node API's tests. */
int ep_workflow_record_report(ep_inventory *inv, const char *node_id, const Edgeprov__V1__ActionReport *report);

#endif
