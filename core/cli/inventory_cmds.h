/* edgeprov CLI: the inventory commands (host, instance, events). argv starts at the verb;
 * each returns the process exit status. */
#ifndef EP_CLI_INVENTORY_CMDS_H
#define EP_CLI_INVENTORY_CMDS_H

#include "northbound/mgmt_client.h"

int ep_cli_host(ep_mgmt_client *client, int argc, char **argv);
int ep_cli_instance(ep_mgmt_client *client, int argc, char **argv);
int ep_cli_events(ep_mgmt_client *client, int argc, char **argv);

#endif
