/* Test support: a real site on a temporary data directory, its plugins loaded for real from
 * the build's plugin directory (EP_PLUGIN_OUTPUT_DIR), and the inventory on its storage
 * plugin. For tests of the modules that work on a site: inventory, reconciler, housekeeping,
 * the management API and the node API. */
#ifndef EP_TEST_SITE_FIXTURE_H
#define EP_TEST_SITE_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>

#include <edgeprov/identity.h>

#include "base/error.h"
#include "provisioning/inventory.h"
#include "runtime/site.h"
#include "testutil.h"

#ifndef EP_PLUGIN_OUTPUT_DIR
#error "site_fixture.h needs EP_PLUGIN_OUTPUT_DIR (target_compile_definitions in tests/CMakeLists.txt)"
#endif

typedef struct tu_site {
  char *dir;         /* paths.data and the home of site.conf; removed by tu_site_close */
  ep_site *site;
  ep_inventory *inv; /* on the first active storage plugin; NULL without one */
} tu_site;

/* Opens and starts a site whose config is paths (data = a fresh temporary directory, plugins =
 * the build's), plugins.enabled = [ enabled ] (quoted names: "\"storage-sqlite\""), then
 * extra (more config text, may be ""; "%DIR%" in it stands for the data directory). files
 * (NULL, or name, text, ..., NULL) are written into the data directory first, for the config
 * to name (tls.ca, a template_file). Opens the inventory when a storage plugin is active.
 * Returns the site, or NULL with the reason on stderr (a test's setup then fails). Free with
 * tu_site_close. */
static inline tu_site *tu_site_open(const char *enabled, const char *extra, const char *const *files) {
  tu_site *t = calloc(1, sizeof *t);
  char *text = NULL, *path = NULL, *more = NULL;
  ep_diags diags = {0};
  int ok = 0;
  if (!t || !(t->dir = tu_mkdtemp())) goto out;
  for (size_t i = 0; files && files[i] && files[i + 1]; i += 2) free(tu_write(t->dir, files[i], files[i + 1]));
  /* "%DIR%" -> the data directory, so a test's extra config can name files in it. */
  size_t cap = strlen(extra) * (strlen(t->dir) + 1) + 1, n = 0;
  if (!(more = malloc(cap))) goto out;
  for (const char *p = extra; *p && n + strlen(t->dir) + 1 < cap;)
    if (strncmp(p, "%DIR%", 5) == 0) n += (size_t)sprintf(more + n, "%s", t->dir), p += 5;
    else more[n++] = *p++;
  more[n] = '\0';
  if (asprintf(&text, "paths = { data = \"%s\"; plugins = [ \"%s\" ]; };\nplugins = { enabled = [ %s ]; };\n%s", t->dir,
               EP_PLUGIN_OUTPUT_DIR, enabled, more) < 0)
    goto out;
  path = tu_write(t->dir, "site.conf", text);
  if (ep_site_open(&t->site, path, &diags) < 0 || diags.errors) {
    fprintf(stderr, "tu_site_open: the site config is refused:\n%s\n", text);
    ep_diags_print(&diags, stderr);
    goto out;
  }
  if (ep_plugins_start(t->site->plugins, t->site->config) < 0) {
    fprintf(stderr, "tu_site_open: plugins do not start: %s\n", ep_error_message());
    goto out;
  }
  if (ep_plugins_capability(t->site->plugins, EP_CAP_STORAGE, NULL) && ep_inventory_new(&t->inv, t->site->plugins) < 0) {
    fprintf(stderr, "tu_site_open: no inventory: %s\n", ep_error_message());
    goto out;
  }
  ok = 1;
out:
  ep_diags_clear(&diags);
  free(path);
  free(text);
  free(more);
  if (ok) return t;
  if (t) {
    ep_inventory_free(t->inv);
    ep_site_free(t->site);
    tu_rmdir(t->dir);
    free(t);
  }
  return NULL;
}

static inline void tu_site_close(tu_site *t) {
  if (!t) return;
  ep_inventory_free(t->inv);
  ep_site_free(t->site);
  tu_rmdir(t->dir);
  free(t);
}

/* A cmocka setup/teardown pair for a site with storage-sqlite only (the inventory's tests). */
static inline int tu_site_setup_storage(void **state) {
  tu_site *t = tu_site_open("\"storage-sqlite\"", "", NULL);
  *state = t;
  return t ? 0 : -1;
}

static inline int tu_site_teardown(void **state) {
  tu_site_close(*state);
  return 0;
}

/* The OS profile of tu_site_provisioning's sites, and the plugins they enable. */
#define TU_PROFILE "emt-3.0"
#define TU_PROVISIONING_PLUGINS "\"storage-sqlite\", \"actions-core\", \"os-microvisor\""

/* A site that renders workflows: storage-sqlite, actions-core and os-microvisor (profile
 * TU_PROFILE) with a CA, plus more_plugins (", \"auth-local\"" or "") and more_config.
 * template_text (NULL: the plugin's own workflow.conf) becomes the plugin's template_file. */
static inline tu_site *tu_site_provisioning(const char *more_plugins, const char *more_config,
                                            const char *template_text) {
  const char *files[] = {"ca.pem", TU_CA_PEM, "template.conf", template_text, NULL};
  if (!template_text) files[2] = NULL;
  char enabled[256], extra[2048];
  snprintf(enabled, sizeof enabled, "%s%s", TU_PROVISIONING_PLUGINS, more_plugins);
  snprintf(extra, sizeof extra,
           "listen = { grpc = \"orch.site.example:50051\"; };\n"
           "provisioning = { token_url = \"https://orch.site.example:8443/oauth2/token\"; };\n"
           "tls = { ca = \"%%DIR%%/ca.pem\"; };\n"
           "os-microvisor = { profile = \"" TU_PROFILE "\"; image_url = \"https://images.example/emt.raw\";"
           " image_sha256 = \"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\";%s };\n%s",
           template_text ? " template_file = \"%DIR%/template.conf\";" : "", more_config);
  return tu_site_open(enabled, extra, files);
}

/* The identity table of the active identity plugin and its state, or NULL. */
static inline const ep_identity *tu_site_identity(const tu_site *t, void **ret_state) {
  ep_plugin *provider = NULL;
  const ep_identity *id = ep_plugins_capability(t->site->plugins, EP_CAP_IDENTITY, &provider);
  if (id) *ret_state = provider->instance;
  return id;
}

typedef struct tu_text {
  char *buf;
  size_t len;
} tu_text;

static inline int32_t tu_keep_secret(void *data, const ep_identity_credentials *c) {
  tu_text *t = data;
  snprintf(t->buf, t->len, "%s", c->client_secret ? c->client_secret : "");
  return 0;
}

/* Gives node_id credentials at the active identity plugin (when it has none yet) and a token
 * for audience into token, as a node gets one from the token endpoint. Returns 0, or a
 * negative code with the message on stderr. */
static inline int tu_node_token(const tu_site *t, const char *node_id, const char *audience, char *token, size_t len) {
  void *st = NULL;
  const ep_identity *id = tu_site_identity(t, &st);
  if (!id) return EP_ENOENT;
  char secret[256] = "", client_id[128];
  tu_text keep = {secret, sizeof secret};
  int r = id->create(st, node_id, tu_keep_secret, &keep);
  if (r == EP_EEXIST) r = id->rotate(st, node_id, tu_keep_secret, &keep);
  snprintf(client_id, sizeof client_id, "edgenode-%s", node_id);
  tu_text out = {token, len};
  if (r == 0) r = id->issue_token(st, client_id, secret, audience, tu_keep_secret, &out);
  if (r < 0) fprintf(stderr, "tu_node_token %s: %s\n", node_id, ep_error_message());
  return r;
}

/* Registers host uuid (serial may be NULL) with os_profile and one MAC. Returns 0, or the
 * inventory's error with its message on stderr. */
static inline int tu_add_host(tu_site *t, const char *uuid, const char *serial, const char *os_profile, bool auto_onboard) {
  const char *macs[] = {"52-54-00-AA-BB-01"};
  ep_inv_host_spec spec = {.uuid = uuid, .serial = serial, .macs = macs, .mac_count = 1, .os_profile = os_profile,
                           .auto_onboard = auto_onboard};
  ep_inv_host *host = NULL;
  int r = ep_inventory_add_host(t->inv, &spec, &host);
  if (r < 0) fprintf(stderr, "tu_add_host %s: %s\n", uuid, ep_error_message());
  ep_inv_host_free(host);
  return r;
}

#endif
