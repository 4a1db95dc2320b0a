/* core: provisioning workflows. Renders an Instance's workflow from its OS plugin's template
 * (variables from the Host, the Instance, the OS profile and the site), applies a node's
 * action reports to it, and says where it stands in the Instance's provisioning status. */
#ifndef EP_CORE_WORKFLOW_H
#define EP_CORE_WORKFLOW_H

#include <stdbool.h>
#include <stddef.h>

#include "base/diag.h"
#include "runtime/config.h"
#include "provisioning/inventory.h"
#include "runtime/plugin_loader.h"

#define EP_WORKFLOW_ACTIONS_MAX 64       /* most actions in one workflow */
#define EP_WORKFLOW_TEMPLATE_MAX (256 * 1024)
#define EP_WORKFLOW_PARAM_MAX (1024 * 1024) /* longest parameter value after substitution */
#define EP_WORKFLOW_MESSAGE_MAX 512      /* longest report message kept */
#define EP_WORKFLOW_LOG_LINES_MAX 16     /* log lines accepted per report */
#define EP_WORKFLOW_STATUS_MAX 256
#define EP_WORKFLOW_ACTION_NAME_MAX 127  /* longest action name kept with a log line (names are shorter) */

/* Renders the workflow of instance (on host) from the template of its OS profile, found
 * among the active edgeprov.os/1 plugins. The template must pass the checks of
 * ep_workflow_check_templates (EP_EINVAL, "template of profile P (FILE): line N: ..."); the
 * node's own ${node.*} variables stay as they are for its agent to fill in. *out: state
 * PENDING, every action PENDING; free with ep_workflow_free. */
int ep_workflow_render(ep_workflow **out, const ep_plugin_set *plugins, const ep_config *config, const ep_inv_host *host,
                       const ep_inv_instance *instance, uint32_t generation);

/* Checks the workflow template of every profile the active edgeprov.os/1 plugins offer
 * against the active edgeprov.actions/1 plugins, as far as it can be before a node needs it:
 * the template parses and holds 1 to EP_WORKFLOW_ACTIONS_MAX actions; each action exists, has
 * timeout_s and retries in range, names only declared parameters (with a "did you mean"),
 * gives each a string, integer or boolean naming only known ${variables}, a literal value
 * that fits the declaration, and every required parameter. Each mistake is an error in diags
 * with the template file and line (a built-in template is named in the message). What only a
 * render can see (a site value the render needs, such as tls.ca; a value's type once
 * substituted) is left to the render. Returns the number of errors added. */
size_t ep_workflow_check_templates(const ep_plugin_set *plugins, ep_diags *diags);

/* Applies one report of the node's agent to workflow: checks the instance, generation and
 * index (EP_EINVAL/EP_EPERM with a message), the state (no going back from SUCCESS) and the
 * message (printable, bounded), then updates the action and the workflow's state (FAILED
 * or TIMEOUT of an action fails the workflow; the last SUCCESS completes it). */
int ep_workflow_apply_report(ep_workflow *workflow, const Edgeprov__V1__ActionReport *report);

/* The Instance's provisioning status for workflow: "N/M: <action> (<bytes>/<total>)", or
 * "Provisioning Failed: <action>: <message>" with *ret_failed set. */
void ep_workflow_status(const ep_workflow *workflow, char out[EP_WORKFLOW_STATUS_MAX], bool *ret_failed);

/* Replaces each ${name} in text using lookup (which returns the value or NULL); names that
 * start with keep_prefix stay as they are. Returns a malloc'd string, or NULL with the error
 * set (EP_EINVAL naming an unknown variable, EP_ERANGE past max bytes). */
char *ep_template_substitute(const char *text, const char *(*lookup)(void *data, const char *name), void *data,
                             const char *keep_prefix, size_t max);

const char *ep_action_state_name(Edgeprov__V1__ActionState state);

#endif
