/* edgeprov-agent: the workflow executor. Receives the node's workflow on the workflow
 * stream and runs every action not yet SUCCESS, in order, with its timeout and retries,
 * reporting state and progress; an agent that restarts (crash, reboot) resumes where the
 * reports left off. Actions hand the secrets they make (host->store_secret: a disk's recovery
 * key) to the orchestrator on the same channel with the same token. */
#ifndef EP_AGENT_EXECUTOR_H
#define EP_AGENT_EXECUTOR_H

#include "runtime/plugin_loader.h"
#include "net/rpc.h"

/* The node's own values for ${node.*} in the workflow's parameters. */
typedef struct ep_executor_node {
  const char *client_id;
  const char *client_secret; /* a secret: only ever copied into action parameters */
  const char *target_disk;   /* "" lets the actions pick the first fixed disk */
  const char *ca_file;       /* the orchestrator CA file, "" when none */
  const char *efivars_dir;   /* the firmware's variables (efivarfs) */
  const char *scratch_dir;   /* a directory actions may use (host service run.scratch_dir) */
  const char *tpm;           /* the node's TPM as a TCTI (host service run.tpm), "" when none */
} ep_executor_node;

#define EP_EXECUTOR_REPORT_INTERVAL_MS 500 /* progress reports at most this often */

/* Runs the node's workflow over channel with the bearer token, using the actions of
 * plugins. Returns 0 when every action succeeded (ret_reboot: the restart an action asked
 * for, "" when none), EP_EFAILED when an action failed for good (reported), EP_EPERM when
 * the orchestrator refused the token or a report (reconnect with a fresh token), or EP_EIO
 * when the stream broke (retry). */
int ep_executor_run(ep_rpc_channel *channel, const char *token, const ep_plugin_set *plugins,
                    const ep_executor_node *node, char ret_reboot[16]);

#endif
