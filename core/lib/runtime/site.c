/* core: opening a site, see site.h. */
#include "runtime/site.h"

#include <string.h>

#include <stdlib.h>
#include <unistd.h>

#include "base/error.h"
#include "runtime/action.h"

/* The checks the loader runs on the capability tables of the site's plugins. */
static const ep_capability_check site_capability_checks[] = {
    {EP_CAP_ACTIONS, ep_actions_check_table},
};
#define SITE_CAPABILITY_CHECK_COUNT (sizeof site_capability_checks / sizeof site_capability_checks[0])

static int scan_plugins(ep_site *site) {
  return ep_plugins_scan(&site->plugins, &site->config->plugin_dirs, site_capability_checks,
                         SITE_CAPABILITY_CHECK_COUNT);
}

const char *ep_site_config_path(const char *explicit_path) {
  if (explicit_path) return explicit_path;
  const char *env = getenv(EP_SITE_CONFIG_ENV);
  if (env && *env) return env;
  if (access(EP_SITE_CONFIG_SYSTEM, F_OK) == 0) return EP_SITE_CONFIG_SYSTEM;
  return NULL;
}

int ep_site_open(ep_site **out, const char *config_path, ep_diags *diags) {
  ep_site *site = calloc(1, sizeof *site);
  if (!site) return ep_error_set(EP_ENOMEM, "out of memory");
  char *default_dir = ep_config_default_plugin_dir();
  int r = config_path ? ep_config_load(&site->config, config_path, default_dir, diags)
                      : ep_config_new_defaults(&site->config, default_dir);
  free(default_dir);
  if (r < 0) goto fail;
  r = scan_plugins(site);
  if (r < 0) goto fail;
  for (size_t i = 0; i < site->plugins->notes.count; i++)
    ep_diags_add(diags, EP_DIAG_WARNING, NULL, 0, "%s", site->plugins->notes.items[i]);
  r = ep_plugins_configure(site->plugins, site->config, diags);
  if (r == EP_ENOMEM) goto fail;
  *out = site;
  return 0;
fail:
  ep_site_free(site);
  return r;
}

static bool offers(const ep_plugin *p, const char *capability) {
  for (const char *const *c = p->entry ? p->entry->capabilities : NULL; c && *c; c++)
    if (strcmp(*c, capability) == 0) return true;
  return false;
}

/* On a node there is no site config: the plugins offering capability start on their declared
 * defaults, and a required setting stays without a value (its lookup answers EP_ENOENT), so
 * the plugin's init, not the loader, decides whether it can work without it. Nothing is
 * fatal: a plugin refused or failed is a warning that names its file and the reason, and its
 * actions are missing from the node. */
int ep_site_open_for(ep_site **out, const char *plugin_dir, const char *data_dir, const char *capability, ep_diags *diags) {
  ep_site *site = calloc(1, sizeof *site);
  if (!site) return ep_error_set(EP_ENOMEM, "out of memory");
  int r = ep_config_new_defaults(&site->config, plugin_dir);
  char *data = r == 0 ? strdup(data_dir) : NULL;
  if (r == 0 && !data) r = ep_error_set(EP_ENOMEM, "out of memory");
  if (r == 0) {
    free(site->config->data_dir);
    site->config->data_dir = data;
    r = scan_plugins(site);
  }
  for (size_t i = 0; r == 0 && i < site->plugins->notes.count; i++)
    ep_diags_add(diags, EP_DIAG_WARNING, NULL, 0, "%s", site->plugins->notes.items[i]);
  for (size_t i = 0; r == 0 && i < site->plugins->count; i++) {
    ep_plugin *p = site->plugins->items[i];
    if (p->state == EP_PLUGIN_REFUSED) continue;
    if (!offers(p, capability)) {
      p->state = EP_PLUGIN_DISABLED;
      continue;
    }
    p->state = EP_PLUGIN_READY;
    r = ep_strv_push(&site->config->plugins_enabled, p->entry->id);
  }
  if (r == 0) {
    site->config->plugins_enabled_set = true;
    r = ep_plugins_start(site->plugins, site->config);
  }
  if (r < 0) {
    ep_site_free(site);
    return r;
  }
  /* What is unusable here: the plugins of the capability whose init failed, and every refused
   * file (one whose entry could not be read may have been one of them). */
  for (size_t i = 0; i < site->plugins->count; i++) {
    char line[EP_ERROR_MESSAGE_MAX];
    if (ep_site_plugin_problem(site->plugins->items[i], line, sizeof line))
      ep_diags_add(diags, EP_DIAG_WARNING, NULL, 0, "%s", line);
  }
  *out = site;
  return 0;
}

int ep_site_start_offering(ep_site *site, const char *const *capabilities, size_t count) {
  for (size_t i = 0; i < site->plugins->count; i++) {
    ep_plugin *p = site->plugins->items[i];
    bool wanted = false;
    for (size_t c = 0; c < count && !wanted; c++) wanted = offers(p, capabilities[c]);
    if (p->state == EP_PLUGIN_READY && !wanted) p->state = EP_PLUGIN_DISABLED;
  }
  return ep_plugins_start(site->plugins, site->config);
}

void ep_site_free(ep_site *site) {
  if (!site) return;
  ep_plugin_set_free(site->plugins);
  ep_config_free(site->config);
  free(site);
}

bool ep_site_plugin_problem(const ep_plugin *p, char *buf, size_t len) {
  if (p->state != EP_PLUGIN_REFUSED && p->state != EP_PLUGIN_FAILED) return false;
  /* FAILED reasons name what failed ("init failed: ..."); REFUSED ones are loader checks. */
  snprintf(buf, len, "plugin %s: %s%s%s", p->path, p->required ? "required plugin " : "",
           p->state == EP_PLUGIN_REFUSED ? "refused: " : "", p->reason ? p->reason : "no reason recorded");
  return true;
}
