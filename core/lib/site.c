/* core: opening a site, see site.h. */
#include "site.h"

#include <stdlib.h>
#include <unistd.h>

#include "error.h"

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
  r = ep_plugins_scan(&site->plugins, &site->config->plugin_dirs);
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
