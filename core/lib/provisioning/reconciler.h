/* core: the reconciler. Gives every Instance that should run a workflow: when the Instance
 * wants RUNNING, its Host is ONBOARDED and no workflow is stored, it renders one from the
 * OS plugin's template, stores it (the workflow service pushes it to the node) and marks
 * the Instance PROVISIONING; a template that cannot render puts the Instance in ERROR. */
#ifndef EP_CORE_RECONCILER_H
#define EP_CORE_RECONCILER_H

#include "runtime/config.h"
#include "provisioning/inventory.h"
#include "runtime/plugin_loader.h"

typedef struct ep_reconciler ep_reconciler;

/* Starts the reconciler's thread; inv, plugins and config must outlive it. */
int ep_reconciler_start(ep_reconciler **out, ep_inventory *inv, const ep_plugin_set *plugins, const ep_config *config);

/* Makes one pass over every Instance now (the thread does this on each inventory change).
 * Returns the number of workflows created, or a negative code. */
int ep_reconciler_pass(ep_inventory *inv, const ep_plugin_set *plugins, const ep_config *config);

/* Stops and joins the thread. Accepts NULL. */
void ep_reconciler_stop(ep_reconciler *reconciler);

#endif
