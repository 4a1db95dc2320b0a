/* edgeprov CLI: what the fleet commands (events, watch, logs: cli.h) share with host show: an
 * instance's detail and a node's timeline. */
#ifndef EP_CLI_FLEET_CMDS_H
#define EP_CLI_FLEET_CMDS_H

#include <jansson.h>

#include "edgeprov/v1/management.pb-c.h"
#include "northbound/mgmt_client.h"
#include "provisioning/inventory.h"

/* GetInstance: the instance id and its workflow (no parameters). */
int cli_get_instance(ep_mgmt_client *client, const char *id, Edgeprov__V1__InstanceDetail **ret_detail);

/* The node's timeline from its host, instance and workflow (each may be NULL): first boot
 * artifact, onboarding, each action with its duration and bytes, reboot, RUNNING. */
void cli_print_timeline(const ep_inv_host *h, const ep_inv_instance *i, const ep_workflow *w);
json_t *cli_timeline_json(const ep_inv_host *h, const ep_inv_instance *i, const ep_workflow *w);

#endif
