/* core: a site = its config plus the plugins it loads; what both programs open first. */
#ifndef EP_CORE_SITE_H
#define EP_CORE_SITE_H

#include <stdio.h>

#include "runtime/config.h"
#include "base/diag.h"
#include "runtime/plugin_loader.h"

#define EP_SITE_CONFIG_ENV "EDGEPROV_CONFIG"
#define EP_SITE_CONFIG_SYSTEM "/etc/edgeprov/edgeprov.conf"

typedef struct ep_site {
  ep_config *config;
  ep_plugin_set *plugins;
} ep_site;

/* Which config file to use: explicit when given, else $EDGEPROV_CONFIG, else
 * /etc/edgeprov/edgeprov.conf when it exists, else NULL (embedded defaults). */
const char *ep_site_config_path(const char *explicit_path);

/* Reads the config (NULL: embedded defaults), scans the plugin directories and applies the
 * config to the plugins. Every problem goes to diags. Returns 0 with *out set when the
 * config could be read; the site is usable only when diags holds no error. */
int ep_site_open(ep_site **out, const char *config_path, ep_diags *diags);

/* Opens and starts the plugins a node's agent runs: those in plugin_dir that offer
 * capability (edgeprov.actions/1), on embedded defaults with data_dir as paths.data; every
 * other plugin is left off. There is no site config: settings hold their declared defaults
 * and a required one has no value (the plugin's init decides whether it can do without).
 * A refused file or a failed init is a warning in diags naming the file and the reason, not
 * a failure. Returns 0 with *out set, or a negative code (out of memory), message set. */
int ep_site_open_for(ep_site **out, const char *plugin_dir, const char *data_dir, const char *capability, ep_diags *diags);

/* Starts only the READY plugins offering one of capabilities (count of them); the others
 * become DISABLED. For a check that needs some plugins running without the side effects of
 * the rest (a storage plugin creating its store). Returns what ep_plugins_start returns. */
int ep_site_start_offering(ep_site *site, const char *const *capabilities, size_t count);

void ep_site_free(ep_site *site);

/* Writes one line saying why p is not usable ("plugin FILE: refused: REASON") and returns
 * true, or returns false when p is fine (or merely disabled). */
bool ep_site_plugin_problem(const ep_plugin *p, char *buf, size_t len);

#endif
