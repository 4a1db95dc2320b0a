/* core: provisioning workflows, see workflow.h. */
#define _GNU_SOURCE /* strdup, strndup */
#include "provisioning/workflow.h"

#include <ctype.h>
#include <stdarg.h>
#include <stddef.h>
#include <inttypes.h>
#include <libconfig.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <edgeprov/identity.h>
#include <edgeprov/os.h>

#include "runtime/action.h"
#include "provisioning/cloudinit.h"
#include "provisioning/recovery_keys.h"
#include "base/buf.h"
#include "base/error.h"
#include "base/suggest.h"
#include "base/validate.h"
#include "base/files.h"

#define VARIABLES_MAX 24

const char *ep_action_state_name(Edgeprov__V1__ActionState state) {
  switch (state) {
  case EDGEPROV__V1__ACTION_STATE__ACTION_STATE_PENDING: return "PENDING";
  case EDGEPROV__V1__ACTION_STATE__ACTION_STATE_RUNNING: return "RUNNING";
  case EDGEPROV__V1__ACTION_STATE__ACTION_STATE_SUCCESS: return "SUCCESS";
  case EDGEPROV__V1__ACTION_STATE__ACTION_STATE_FAILED: return "FAILED";
  case EDGEPROV__V1__ACTION_STATE__ACTION_STATE_TIMEOUT: return "TIMEOUT";
  default: return "-";
  }
}

/* ---- variables ------------------------------------------------------------------------------ */

typedef struct variable {
  const char *name;
  char *value;
} variable;

typedef struct variables {
  variable items[VARIABLES_MAX];
  size_t count;
} variables;

/* Every ${variable} a template may use: what the render fills in from the Host, the Instance,
 * the OS profile and the site (set_var accepts no other name), then the node's own, which
 * the node's agent fills in (core/agent/executor.c, lookup_node: keep the two lists equal).
 * The renderer keeps each node.* one as it is; any other node.* name is a mistake the
 * operator hears of at the template check, not one the node meets in the middle of its
 * workflow. */
static const char *const template_variables[] = {
    "host.uuid",          "host.serial",          "host.hostname",        "host.ip",
    "instance.id",        "instance.fde",         "profile.name",         "profile.image_url",
    "profile.image_sha256", "profile.image_format", "profile.os_type",    "site.orchestrator",
    "site.token_url",
    "cloudinit.user_data", "cloudinit.meta_data",
    "node.target_disk",   "node.ca_file",         "node.efivars_dir",     "node.client_id",
    "node.client_secret",
};
#define TEMPLATE_VARIABLE_COUNT (sizeof template_variables / sizeof template_variables[0])
#define NODE_PREFIX "node."

static bool template_variable_known(const char *name) {
  for (size_t i = 0; i < TEMPLATE_VARIABLE_COUNT; i++)
    if (strcmp(template_variables[i], name) == 0) return true;
  return false;
}

static int set_var(variables *v, const char *name, const char *value) {
  if (!template_variable_known(name) || strncmp(name, NODE_PREFIX, strlen(NODE_PREFIX)) == 0)
    return ep_error_set(EP_EINVAL, "template variable %s is not in the list of variables (workflow.c)", name);
  if (v->count == VARIABLES_MAX) return ep_error_set(EP_ERANGE, "too many template variables");
  char *copy = strdup(value ? value : "");
  if (!copy) return ep_error_set(EP_ENOMEM, "out of memory");
  v->items[v->count++] = (variable){name, copy};
  return 0;
}

/* The render's values (node.* names are kept as they are: see substitute_value). */
static const char *lookup_var(void *data, const char *name) {
  const variables *v = data;
  for (size_t i = 0; i < v->count; i++)
    if (strcmp(v->items[i].name, name) == 0) return v->items[i].value;
  return NULL;
}

static void free_vars(variables *v) {
  for (size_t i = 0; i < v->count; i++) free(v->items[i].value);
  v->count = 0;
}

char *ep_template_substitute(const char *text, const char *(*lookup)(void *data, const char *name), void *data,
                             const char *keep_prefix, size_t max) {
  /* max counts the NUL; the output may carry ${node.client_secret}, so it is wiped as it grows. */
  ep_buf out;
  ep_buf_init(&out, "template", max ? max - 1 : 0, EP_BUF_WIPE);
  for (const char *p = text; *p;) {
    const char *piece = p, *value = NULL;
    size_t piece_len = 1;
    if (p[0] == '$' && p[1] == '{') {
      const char *end = strchr(p + 2, '}');
      size_t name_len = end ? (size_t)(end - p - 2) : 0;
      char name[64];
      if (!end || name_len == 0 || name_len >= sizeof name) {
        ep_buf_free(&out);
        return ep_error_set(EP_EINVAL, "template: '%.24s' is not a ${variable}", p), NULL;
      }
      memcpy(name, p + 2, name_len);
      name[name_len] = '\0';
      piece_len = name_len + 3;
      if (!(keep_prefix && strncmp(name, keep_prefix, strlen(keep_prefix)) == 0)) {
        value = lookup(data, name);
        if (!value) {
          ep_buf_free(&out);
          return ep_error_set(EP_EINVAL, "template: ${%s}: no such variable", name), NULL;
        }
      }
    }
    int r = value ? ep_buf_append_str(&out, value) : ep_buf_append(&out, piece, piece_len);
    if (r < 0) {
      ep_buf_free(&out);
      if (r == EP_ERANGE) return ep_error_set(EP_ERANGE, "template: a value grows past %zu bytes", max), NULL;
      return ep_error_set(EP_ENOMEM, "out of memory"), NULL;
    }
    p += piece_len;
  }
  char *result = ep_buf_take(&out, NULL);
  ep_buf_free(&out);
  return result;
}

/* ---- the OS profile ------------------------------------------------------------------------ */

#define TEMPLATE_ORIGIN_MAX 1100

/* Where profile p's template comes from, for messages: its file (ABI 1.3), else the plugin. */
static void template_origin(const ep_os_profile *p, const char *plugin_id, char out[TEMPLATE_ORIGIN_MAX]) {
  bool has_file = p->struct_size >= offsetof(ep_os_profile, template_file) + sizeof p->template_file;
  if (has_file && p->template_file && p->template_file[0])
    snprintf(out, TEMPLATE_ORIGIN_MAX, "%.1000s", p->template_file);
  else
    snprintf(out, TEMPLATE_ORIGIN_MAX, "plugin %.63s: built-in template", plugin_id);
}

typedef struct found_profile {
  const char *wanted;
  const char *plugin_id; /* of the plugin being visited */
  bool found;
  bool fde; /* the profile asks for full-disk encryption (ABI 1.6) */
  char name[64], os_type[16], format[8], sha256[65];
  char origin[TEMPLATE_ORIGIN_MAX];
  char *url, *description;
} found_profile;

static int32_t keep_profile(void *data, const ep_os_profile *p) {
  found_profile *f = data;
  if (f->found || !p->name || strcmp(p->name, f->wanted) != 0) return 0;
  f->found = true;
  template_origin(p, f->plugin_id, f->origin);
  f->fde = p->struct_size >= offsetof(ep_os_profile, fde) + sizeof p->fde && p->fde;
  snprintf(f->name, sizeof f->name, "%s", p->name);
  snprintf(f->os_type, sizeof f->os_type, "%s", p->os_type ? p->os_type : "");
  snprintf(f->format, sizeof f->format, "%s", p->image_format ? p->image_format : "auto");
  snprintf(f->sha256, sizeof f->sha256, "%s", p->image_sha256 ? p->image_sha256 : "");
  f->url = strdup(p->image_url ? p->image_url : "");
  f->description = strdup(p->description ? p->description : "");
  return 0;
}

typedef struct texts {
  char *items[EP_CLOUDINIT_FRAGMENTS_MAX];
  size_t count;
} texts;

static int32_t keep_text(void *data, const char *text) {
  texts *t = data;
  if (t->count < sizeof t->items / sizeof t->items[0] && text) t->items[t->count++] = strdup(text);
  return 0;
}

static void free_texts(texts *t) {
  for (size_t i = 0; i < t->count; i++) free(t->items[i]);
  t->count = 0;
}

/* Finds profile name among the OS plugins: its values, template and fragments. */
static int find_profile(const ep_plugin_set *plugins, const char *name, found_profile *out, texts *template_text,
                        texts *fragments) {
  out->wanted = name;
  for (size_t i = 0; i < plugins->started_count; i++) {
    ep_plugin *p = plugins->started[i];
    const ep_os *os = p->entry->get_capability ? p->entry->get_capability(p->instance, EP_CAP_OS) : NULL;
    if (!os) continue;
    out->plugin_id = p->entry->id;
    if (os->profiles(p->instance, keep_profile, out) < 0) return ep_error_prefix(EP_EIO, "plugin %s: profiles", p->entry->id);
    if (!out->found) continue;
    if (os->workflow_template(p->instance, name, keep_text, template_text) < 0 || template_text->count != 1)
      return ep_error_set(EP_EIO, "plugin %s: no workflow template for %s", p->entry->id, name);
    if (os->cloudinit_fragments && os->cloudinit_fragments(p->instance, name, keep_text, fragments) < 0)
      return ep_error_prefix(EP_EIO, "plugin %s: cloud-init fragments", p->entry->id);
    return 0;
  }
  return ep_error_set(EP_ENOENT, "os_profile: no active OS plugin offers '%s' (see: edgeprov plugins list)", name);
}

/* ---- rendering ------------------------------------------------------------------------------ */

/* The hostname a node gets: "edge-" and its serial in lower case, else the UUID's first group. */
static void node_hostname(const ep_inv_host *host, char out[64]) {
  const char *base = host->serial[0] ? host->serial : host->uuid;
  size_t n = host->serial[0] ? strlen(base) : 8;
  snprintf(out, 64, "edge-%.*s", (int)(n < 40 ? n : 40), base);
  for (char *c = out; *c; c++) *c = (char)tolower((unsigned char)*c);
}

static int site_values(const ep_plugin_set *plugins, const ep_config *config, variables *v, char **ret_ca) {
  const char *orchestrator = config->orchestrator ? config->orchestrator : config->listen_grpc;
  char token_url[1100];
  ep_plugin *provider = NULL;
  const ep_identity *id = ep_plugins_capability(plugins, EP_CAP_IDENTITY, &provider);
  const char *plugin_url = id ? id->token_url(provider->instance) : "";
  if (config->token_url) {
    snprintf(token_url, sizeof token_url, "%s", config->token_url);
  } else if (plugin_url && *plugin_url) {
    snprintf(token_url, sizeof token_url, "%s", plugin_url);
  } else {
    const char *colon = strrchr(orchestrator, ':'), *https_colon = strrchr(config->listen_https, ':');
    snprintf(token_url, sizeof token_url, "%s://%.*s%s/oauth2/token", config->tls_cert ? "https" : "http",
             (int)(colon ? colon - orchestrator : (long)strlen(orchestrator)), orchestrator, https_colon ? https_colon : "");
  }
  if (!config->tls_ca) return ep_error_set(EP_EINVAL, "tls.ca: the site names no CA for its nodes to trust (cloud-init needs it)");
  int r = ep_read_text_file(ret_ca, config->tls_ca, 64 * 1024, EP_FILE_ANY_ACCESS);
  if (r == 0) r = set_var(v, "site.orchestrator", orchestrator);
  if (r == 0) r = set_var(v, "site.token_url", token_url);
  return r;
}

/* Renders the cloud-init seed into the variables (credentials stay ${node.*} references):
 * the OS plugin's fragments, then the site's (cloudinit.fragments), and the site's users. */
static int cloudinit_values(variables *v, const ep_config *config, const ep_inv_instance *instance, const char *hostname,
                            const char *ca_pem, texts *fragments) {
  int r = 0;
  for (size_t i = 0; r == 0 && i < config->cloudinit_fragments.count; i++) {
    char *text = NULL;
    r = ep_read_text_file(&text, config->cloudinit_fragments.items[i], EP_CLOUDINIT_FRAGMENT_MAX, EP_FILE_ANY_ACCESS);
    if (r == 0 && fragments->count == sizeof fragments->items / sizeof fragments->items[0])
      r = ep_error_set(EP_ERANGE, "cloudinit.fragments: too many fragments");
    if (r == 0) fragments->items[fragments->count++] = text;
    else free(text);
  }
  ep_cloudinit_user users[EP_CONFIG_USERS_MAX];
  for (size_t i = 0; i < config->cloudinit_user_count && i < EP_CONFIG_USERS_MAX; i++) {
    const ep_config_user *u = &config->cloudinit_users[i];
    users[i] = (ep_cloudinit_user){.name = u->name, .ssh_keys = (const char *const *)u->ssh_keys.items,
                                   .ssh_key_count = u->ssh_keys.count, .sudo = u->sudo, .shell = u->shell};
  }
  ep_cloudinit_spec spec = {.instance_id = instance->id, .hostname = hostname, .ca_pem = ca_pem,
                            .client_id = "${node.client_id}", .client_secret = "${node.client_secret}",
                            .project_id = "", .orchestrator = lookup_var(v, "site.orchestrator"),
                            .token_url = lookup_var(v, "site.token_url"), .users = users,
                            .user_count = config->cloudinit_user_count,
                            .fragments = (const char *const *)fragments->items, .fragment_count = fragments->count};
  char *user_data = NULL, *meta_data = NULL;
  size_t len = 0;
  if (r == 0) r = ep_cloudinit_user_data(&user_data, &len, &spec);
  if (r == 0) r = ep_cloudinit_meta_data(&meta_data, &len, &spec);
  if (r == 0) r = set_var(v, "cloudinit.user_data", user_data);
  if (r == 0) r = set_var(v, "cloudinit.meta_data", meta_data);
  ep_cloudinit_free(user_data);
  ep_cloudinit_free(meta_data);
  return r < 0 ? ep_error_prefix(r, "cloud-init") : 0;
}

/* ---- checking a template ------------------------------------------------------------------- */

/* A parameter value from the template as text (strings, integers and booleans). */
static int param_text(const config_setting_t *s, char *buf, size_t cap, const char **out) {
  switch (config_setting_type(s)) {
  case CONFIG_TYPE_STRING: *out = config_setting_get_string(s); return 0;
  case CONFIG_TYPE_INT:
  case CONFIG_TYPE_INT64: snprintf(buf, cap, "%lld", (long long)config_setting_get_int64(s)); *out = buf; return 0;
  case CONFIG_TYPE_BOOL: *out = config_setting_get_bool(s) ? "true" : "false"; return 0;
  default: return EP_EINVAL;
  }
}

/* Where a mistake is: the template line, and the action it is in (for messages). */
typedef struct template_spot {
  int line;
  size_t index;
  const char *action; /* "" until the entry's name is known */
} template_spot;

/* Sets the error "actions[I] (NAME): MESSAGE" at line and returns EP_EINVAL. */
static int __attribute__((format(printf, 3, 4))) mistake(template_spot *at, int line, const char *fmt, ...) {
  char text[EP_ERROR_MESSAGE_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(text, sizeof text, fmt, ap);
  va_end(ap);
  at->line = line;
  if (at->action[0]) return ep_error_set(EP_EINVAL, "actions[%zu] (%s): %s", at->index, at->action, text);
  return ep_error_set(EP_EINVAL, "actions[%zu]: %s", at->index, text);
}

/* entry's integer member key into *out (dflt when absent); a mistake when it is not an
 * integer in lo..hi. */
static int int_member(const config_setting_t *entry, template_spot *at, const char *key, int dflt, int lo, int hi,
                      int *out) {
  const config_setting_t *m = config_setting_get_member(entry, key);
  long long v = dflt;
  if (m && config_setting_type(m) != CONFIG_TYPE_INT && config_setting_type(m) != CONFIG_TYPE_INT64) v = (long long)lo - 1;
  else if (m) v = config_setting_get_int64(m);
  if (v < lo || v > hi)
    return mistake(at, config_setting_source_line(m), "%s must be an integer %d..%d", key, lo, hi);
  *out = (int)v;
  return 0;
}

/* The lookup of a check: every known variable has a value, the first unknown one is kept. */
typedef struct unknown_variable {
  char name[64];
} unknown_variable;

static const char *lookup_known(void *data, const char *name) {
  unknown_variable *u = data;
  if (template_variable_known(name)) return "";
  if (!u->name[0]) snprintf(u->name, sizeof u->name, "%s", name);
  return NULL;
}

/* Checks that value names only known ${variables}, with a "did you mean". */
static int check_variables(const char *value, template_spot *at, int line, const char *param) {
  unknown_variable unknown = {{0}};
  char *checked = ep_template_substitute(value, lookup_known, &unknown, NULL, EP_WORKFLOW_PARAM_MAX);
  if (checked) {
    free(checked);
    return 0;
  }
  if (!unknown.name[0]) return mistake(at, line, "%s: %s", param, ep_error_message());
  const char *hint = ep_suggest(unknown.name, template_variables, TEMPLATE_VARIABLE_COUNT);
  if (hint) return mistake(at, line, "%s: no variable ${%s} (did you mean ${%s}?)", param, unknown.name, hint);
  return mistake(at, line, "%s: no variable ${%s} (see the plugin guide, \"Workflow templates\")", param,
                 unknown.name);
}

/* Checks one action entry of a template against the active actions, as far as it can be
 * without the node's values: the action exists, timeout_s and retries are in range, every
 * parameter is declared, has a string, integer or boolean value naming only known
 * ${variables}, a literal value fits its declaration, and no required parameter is missing.
 * Returns 0 with *ret_ref set, or EP_EINVAL with the message set and at->line. */
static int check_action(const config_setting_t *entry, const ep_plugin_set *plugins, template_spot *at,
                        ep_action_ref *ret_ref, int *ret_timeout, int *ret_retries) {
  const char *name = NULL;
  at->line = config_setting_source_line(entry);
  if (!config_setting_is_group(entry) || !config_setting_lookup_string(entry, "action", &name))
    return mistake(at, at->line, "'action' (a string) is required");
  at->action = name;
  if (int_member(entry, at, "timeout_s", 3600, 1, 86400, ret_timeout) < 0 ||
      int_member(entry, at, "retries", 0, 0, 100, ret_retries) < 0)
    return EP_EINVAL;
  if (ep_actions_find(plugins, name, ret_ref) < 0) {
    char reason[EP_ERROR_MESSAGE_MAX];
    snprintf(reason, sizeof reason, "%s", ep_error_message());
    at->action = "";
    return mistake(at, at->line, "%s", reason);
  }
  ep_fields declared = {0};
  if (ep_action_params_new(&declared, ret_ref) < 0) return mistake(at, at->line, "%s", ep_error_message());
  const config_setting_t *params = config_setting_get_member(entry, "params");
  int r = 0;
  if (params && !config_setting_is_group(params))
    r = mistake(at, config_setting_source_line(params), "params must be a group { name = \"value\"; }");
  for (int i = 0; r == 0 && params && i < config_setting_length(params); i++) {
    const config_setting_t *s = config_setting_get_elem(params, (unsigned)i);
    const char *pname = config_setting_name(s), *raw = NULL;
    char number[32];
    int line = config_setting_source_line(s);
    ep_field_value *field = ep_fields_find(&declared, pname);
    if (!field) {
      const char *hint = ep_fields_suggest(&declared, pname);
      r = hint ? mistake(at, line, "no parameter '%s' (did you mean '%s'?)", pname, hint)
               : mistake(at, line, "no parameter '%s' (see: edgeprov actions describe %s)", pname, name);
    } else if (param_text(s, number, sizeof number, &raw) < 0) {
      r = mistake(at, line, "'%s' must be a string, integer or boolean", pname);
    } else if (strstr(raw, "${")) {
      r = check_variables(raw, at, line, pname);
      field->has_value = true; /* its type is checked on the node, once the value is known */
    } else if (ep_field_set_text(field, raw) < 0) {
      r = mistake(at, line, "%s", ep_error_message());
    }
  }
  for (uint32_t i = 0; r == 0 && i < declared.count; i++)
    if (ep_field_missing(&declared.items[i]))
      r = mistake(at, at->line, "missing required parameter '%s' (%s)", declared.items[i].decl->name,
                  ep_field_type_name(declared.items[i].decl->type));
  ep_fields_free(&declared);
  return r;
}

/* Parses a template's text into lc and returns its action list, or NULL with the error set
 * (and *ret_line). */
static const config_setting_t *template_actions(config_t *lc, const char *text, int *ret_line) {
  *ret_line = 0;
  if (strlen(text) > EP_WORKFLOW_TEMPLATE_MAX)
    return ep_error_set(EP_ERANGE, "longer than %d bytes", EP_WORKFLOW_TEMPLATE_MAX), NULL;
  if (config_read_string(lc, text) != CONFIG_TRUE) {
    *ret_line = config_error_line(lc);
    return ep_error_set(EP_EINVAL, "%s", config_error_text(lc)), NULL;
  }
  const config_setting_t *actions = config_lookup(lc, "actions");
  int n = actions ? config_setting_length(actions) : 0;
  if (!actions || !config_setting_is_list(actions) || n < 1 || n > EP_WORKFLOW_ACTIONS_MAX) {
    *ret_line = actions ? config_setting_source_line(actions) : 0;
    return ep_error_set(EP_EINVAL, "'actions' must be a list ( {...}, ... ) of 1 to %d actions", EP_WORKFLOW_ACTIONS_MAX),
           NULL;
  }
  return actions;
}

/* One template's mistakes into diags: file = its file, or none for a built-in one (named in
 * the message instead). */
static void add_mistake(ep_diags *diags, const char *profile, const char *origin, bool is_file, int line) {
  if (is_file)
    ep_diags_add(diags, EP_DIAG_ERROR, origin, line, "template of profile %s: %s", profile, ep_error_message());
  else
    ep_diags_add(diags, EP_DIAG_ERROR, NULL, 0, "%s of profile %s: line %d: %s", origin, profile, line,
                 ep_error_message());
}

typedef struct profile_names {
  char name[64][64];
  char origin[64][TEMPLATE_ORIGIN_MAX];
  bool is_file[64];
  size_t count;
  bool overflow; /* more profiles than checked */
  const char *plugin_id;
} profile_names;

static int32_t keep_profile_name(void *data, const ep_os_profile *p) {
  profile_names *n = data;
  if (!p->name) return 0;
  if (n->count == sizeof n->name / sizeof n->name[0]) {
    n->overflow = true;
    return 0;
  }
  snprintf(n->name[n->count], sizeof n->name[0], "%s", p->name);
  template_origin(p, n->plugin_id, n->origin[n->count]);
  n->is_file[n->count] = n->origin[n->count][0] == '/';
  n->count++;
  return 0;
}

static void check_profile_template(const ep_plugin_set *plugins, const ep_plugin *p, const ep_os *os, const profile_names *names, size_t k,
                                   ep_diags *diags) {
  texts text = {0};
  const char *profile = names->name[k], *origin = names->origin[k];
  if (os->workflow_template(p->instance, profile, keep_text, &text) < 0 || text.count != 1) {
    ep_diags_add(diags, EP_DIAG_ERROR, NULL, 0, "plugin %s: no workflow template for profile %s", p->entry->id, profile);
    free_texts(&text);
    return;
  }
  config_t lc;
  config_init(&lc);
  int line = 0;
  const config_setting_t *actions = template_actions(&lc, text.items[0], &line);
  if (!actions) add_mistake(diags, profile, origin, names->is_file[k], line);
  for (int i = 0; actions && i < config_setting_length(actions); i++) {
    template_spot at = {.index = (size_t)i, .action = ""};
    ep_action_ref ref;
    int timeout, retries;
    if (check_action(config_setting_get_elem(actions, (unsigned)i), plugins, &at, &ref, &timeout, &retries) < 0)
      add_mistake(diags, profile, origin, names->is_file[k], at.line);
  }
  config_destroy(&lc);
  free_texts(&text);
}

size_t ep_workflow_check_templates(const ep_plugin_set *plugins, ep_diags *diags) {
  size_t before = diags->errors;
  for (size_t i = 0; i < plugins->started_count; i++) {
    const ep_plugin *p = plugins->started[i];
    const ep_os *os = p->entry->get_capability ? p->entry->get_capability(p->instance, EP_CAP_OS) : NULL;
    if (!os) continue;
    profile_names *names = calloc(1, sizeof *names);
    if (!names) {
      ep_diags_add(diags, EP_DIAG_ERROR, NULL, 0, "out of memory");
      break;
    }
    names->plugin_id = p->entry->id;
    if (os->profiles(p->instance, keep_profile_name, names) < 0)
      ep_diags_add(diags, EP_DIAG_ERROR, NULL, 0, "plugin %s: profiles: %s", p->entry->id, ep_error_message());
    for (size_t k = 0; k < names->count; k++) check_profile_template(plugins, p, os, names, k, diags);
    if (names->overflow)
      ep_diags_add(diags, EP_DIAG_ERROR, NULL, 0, "plugin %s: more than %zu OS profiles; the rest are not checked",
                   p->entry->id, sizeof names->name / sizeof names->name[0]);
    free(names);
  }
  return diags->errors - before;
}

/* ---- rendering ------------------------------------------------------------------------------ */

static int render_action(Edgeprov__V1__WorkflowAction *a, const config_setting_t *entry, template_spot *at,
                         const ep_plugin_set *plugins, variables *v) {
  ep_action_ref ref;
  int timeout = 0, retries = 0;
  if (check_action(entry, plugins, at, &ref, &timeout, &retries) < 0) return EP_EINVAL;
  a->action = strdup(at->action);
  a->timeout_s = (uint32_t)timeout;
  a->retries = (uint32_t)retries;
  a->state = EDGEPROV__V1__ACTION_STATE__ACTION_STATE_PENDING;
  a->message = strdup("");
  const config_setting_t *params = config_setting_get_member(entry, "params");
  int n = params ? config_setting_length(params) : 0;
  a->params = n > 0 ? calloc((size_t)n, sizeof *a->params) : NULL;
  if (!a->action || !a->message || (n > 0 && !a->params)) return ep_error_set(EP_ENOMEM, "out of memory");
  for (int i = 0; i < n; i++) {
    const config_setting_t *s = config_setting_get_elem(params, (unsigned)i);
    const char *raw = NULL;
    char number[32];
    param_text(s, number, sizeof number, &raw); /* checked above */
    /* The node's own ${node.*} stay for its agent (check_action refused unknown ones). */
    char *value = ep_template_substitute(raw, lookup_var, v, NODE_PREFIX, EP_WORKFLOW_PARAM_MAX);
    if (!value) return mistake(at, config_setting_source_line(s), "%s: %s", config_setting_name(s), ep_error_message());
    Edgeprov__V1__ActionParam *p = malloc(sizeof *p);
    if (!p) {
      free(value);
      return ep_error_set(EP_ENOMEM, "out of memory");
    }
    edgeprov__v1__action_param__init(p);
    p->name = strdup(config_setting_name(s));
    p->value = value;
    a->params[a->n_params++] = p;
    if (!p->name) return ep_error_set(EP_ENOMEM, "out of memory");
  }
  return 0;
}

/* Who asks for full-disk encryption, for messages: "the OS profile, the host", or "" when none does. */
static void fde_askers(const found_profile *profile, const ep_inv_host *host, const ep_inv_instance *instance, char out[64]) {
  snprintf(out, 64, "%s%s%s%s%s", profile->fde ? "the OS profile" : "", profile->fde && (host->fde || instance->fde) ? ", " : "",
           host->fde ? "the host" : "", host->fde && instance->fde ? ", " : "", instance->fde ? "the instance" : "");
}

/* With fde asked: the rendered workflow must encrypt (an image.stream whose fde rendered "true":
 * a site's copied template_file or a vendor's template without the fde params would otherwise
 * write a clear disk), and the site must keep the recovery key the node hands over (else the node
 * fails only after luksFormat). */
static int check_fde(const ep_workflow *w, const ep_config *config, const found_profile *profile, const char *askers) {
  bool encrypts = false;
  for (size_t i = 0; i < w->n_actions && !encrypts; i++) {
    const Edgeprov__V1__WorkflowAction *a = w->actions[i];
    if (strcmp(a->action, "image.stream") != 0) continue;
    for (size_t k = 0; k < a->n_params; k++)
      if (strcmp(a->params[k]->name, "fde") == 0 && strcmp(a->params[k]->value, "true") == 0) encrypts = true;
  }
  if (!encrypts)
    return ep_error_set(EP_EINVAL,
                        "profile %s (template %s): fde asked (host/instance/profile: %s) but the workflow template has no "
                        "image.stream with fde = \"${instance.fde}\": the disk would be written in the clear (add "
                        "fde = \"${instance.fde}\" and fde_partition to its image.stream, or do not ask for fde)",
                        profile->name, profile->origin, askers);
  if (!config->recovery_key_file || !config->recovery_key_file[0])
    return ep_error_set(EP_EPERM,
                        "profile %s: fde asked (host/instance/profile: %s) but secrets.recovery_key_file is not set: this "
                        "site keeps no recovery keys, and a node refuses to encrypt a disk whose key nobody keeps (set "
                        "secrets.recovery_key_file to a file of at least %d secret characters, mode 0600, and restart "
                        "edgeprovd)",
                        profile->name, askers, EP_RECOVERY_SITE_KEY_MIN);
  return 0;
}

int ep_workflow_render(ep_workflow **out, const ep_plugin_set *plugins, const ep_config *config, const ep_inv_host *host,
                       const ep_inv_instance *instance, uint32_t generation) {
  found_profile profile = {0};
  texts template_text = {0}, fragments = {0};
  variables v = {0};
  char hostname[64], *ca = NULL;
  config_t lc;
  config_init(&lc);
  ep_workflow *w = calloc(1, sizeof *w);
  int r = w ? find_profile(plugins, instance->os_profile, &profile, &template_text, &fragments)
            : ep_error_set(EP_ENOMEM, "out of memory");
  node_hostname(host, hostname);
  if (r == 0) r = set_var(&v, "host.uuid", host->uuid);
  if (r == 0) r = set_var(&v, "host.serial", host->serial);
  if (r == 0) r = set_var(&v, "host.hostname", hostname);
  if (r == 0) r = set_var(&v, "host.ip", host->ip);
  if (r == 0) r = set_var(&v, "instance.id", instance->id);
  /* Full-disk encryption is opt-in, asked for by the OS profile, the host or the instance. */
  if (r == 0) r = set_var(&v, "instance.fde", profile.fde || host->fde || instance->fde ? "true" : "false");
  if (r == 0) r = set_var(&v, "profile.name", profile.name);
  if (r == 0) r = set_var(&v, "profile.image_url", profile.url);
  if (r == 0) r = set_var(&v, "profile.image_sha256", profile.sha256);
  if (r == 0) r = set_var(&v, "profile.image_format", profile.format);
  if (r == 0) r = set_var(&v, "profile.os_type", profile.os_type);
  if (r == 0) r = site_values(plugins, config, &v, &ca);
  if (r == 0) r = cloudinit_values(&v, config, instance, hostname, ca, &fragments);
  /* From here a failure is a mistake in the template (the up-front check should have seen it
   * unless the plugins changed): the message names the template and the line. */
  int line = 0;
  bool template_mistake = false;
  const config_setting_t *actions = NULL;
  if (r == 0) {
    actions = template_actions(&lc, template_text.items[0], &line);
    if (!actions) r = ep_error_code(), template_mistake = true;
  }
  int n = actions ? config_setting_length(actions) : 0;
  if (r == 0) {
    edgeprov__v1__workflow__init(w);
    w->instance_id = strdup(instance->id);
    w->host_uuid = strdup(host->uuid);
    w->os_profile = strdup(profile.name);
    w->generation = generation;
    w->state = EDGEPROV__V1__WORKFLOW_STATE__WORKFLOW_STATE_PENDING;
    w->created_at = (int64_t)time(NULL);
    w->actions = calloc((size_t)n, sizeof *w->actions);
    if (!w->instance_id || !w->host_uuid || !w->os_profile || !w->actions) r = ep_error_set(EP_ENOMEM, "out of memory");
  }
  for (int i = 0; r == 0 && i < n; i++) {
    /* Initialised before it joins the workflow: a render that fails part-way frees the
     * workflow with protobuf-c, which checks every member's descriptor. */
    Edgeprov__V1__WorkflowAction *a = malloc(sizeof *a);
    if (!a) {
      r = ep_error_set(EP_ENOMEM, "out of memory");
      break;
    }
    edgeprov__v1__workflow_action__init(a);
    w->actions[w->n_actions++] = a;
    template_spot at = {.index = (size_t)i, .action = ""};
    r = render_action(a, config_setting_get_elem(actions, (unsigned)i), &at, plugins, &v);
    template_mistake = r == EP_EINVAL || r == EP_ERANGE;
    line = at.line;
  }
  if (template_mistake) ep_error_prefix(r, "template of profile %s (%s): line %d", profile.name, profile.origin, line);
  char askers[64];
  fde_askers(&profile, host, instance, askers);
  if (r == 0 && askers[0]) r = check_fde(w, config, &profile, askers);
  config_destroy(&lc);
  free_vars(&v);
  free_texts(&template_text);
  free_texts(&fragments);
  free(profile.url);
  free(profile.description);
  free(ca);
  if (r < 0) {
    if (w && w->base.descriptor) edgeprov__v1__workflow__free_unpacked(w, NULL);
    else free(w);
    return r;
  }
  *out = w;
  return 0;
}

/* ---- reports -------------------------------------------------------------------------------- */

int ep_workflow_apply_report(ep_workflow *w, const Edgeprov__V1__ActionReport *rep) {
  if (strcmp(rep->instance_id, w->instance_id) != 0)
    return ep_error_set(EP_EPERM, "instance_id: %.40s is not this node's instance", rep->instance_id);
  if (rep->generation != w->generation)
    return ep_error_set(EP_EPERM, "generation: %u is not the workflow's current %u (it was re-armed); reconnect",
                        rep->generation, w->generation);
  if (rep->index >= w->n_actions) return ep_error_set(EP_EINVAL, "index: %u, the workflow has %zu actions", rep->index, w->n_actions);
  if (rep->state < EDGEPROV__V1__ACTION_STATE__ACTION_STATE_RUNNING || rep->state > EDGEPROV__V1__ACTION_STATE__ACTION_STATE_TIMEOUT)
    return ep_error_set(EP_EINVAL, "state: %d is not RUNNING, SUCCESS, FAILED or TIMEOUT", (int)rep->state);
  /* The validator's error names the field, the reason and the byte. */
  if (rep->message[0] && ep_validate_text("message", rep->message, EP_WORKFLOW_MESSAGE_MAX) < 0) return EP_EINVAL;
  if (rep->n_log_lines > EP_WORKFLOW_LOG_LINES_MAX)
    return ep_error_set(EP_EINVAL, "log_lines: at most %d per report", EP_WORKFLOW_LOG_LINES_MAX);
  for (size_t i = 0; i < rep->n_log_lines; i++) {
    char field[32];
    snprintf(field, sizeof field, "log_lines[%zu]", i);
    if (ep_validate_text(field, rep->log_lines[i], EP_WORKFLOW_MESSAGE_MAX) < 0) return EP_EINVAL;
  }
  if (w->state == EDGEPROV__V1__WORKFLOW_STATE__WORKFLOW_STATE_SUCCESS || w->state == EDGEPROV__V1__WORKFLOW_STATE__WORKFLOW_STATE_FAILED)
    return ep_error_set(EP_EPERM, "the workflow is already %s", w->state == EDGEPROV__V1__WORKFLOW_STATE__WORKFLOW_STATE_SUCCESS ? "done" : "failed");
  for (uint32_t i = 0; i < rep->index; i++)
    if (w->actions[i]->state != EDGEPROV__V1__ACTION_STATE__ACTION_STATE_SUCCESS)
      return ep_error_set(EP_EPERM, "index: action %u (%s) comes before %u and has not succeeded", i, w->actions[i]->action, rep->index);
  Edgeprov__V1__WorkflowAction *a = w->actions[rep->index];
  if (a->state == EDGEPROV__V1__ACTION_STATE__ACTION_STATE_SUCCESS)
    return ep_error_set(EP_EPERM, "index: action %u (%s) already succeeded", rep->index, a->action);
  char *message = strdup(rep->message);
  if (!message) return ep_error_set(EP_ENOMEM, "out of memory");
  if (a->message != protobuf_c_empty_string) free(a->message); /* unpacked "" is protobuf-c's static */
  a->message = message;
  int64_t now = (int64_t)time(NULL);
  if (rep->attempts != a->attempts || !a->started_at) a->started_at = now, a->finished_at = 0; /* an attempt begins */
  bool final = rep->state == EDGEPROV__V1__ACTION_STATE__ACTION_STATE_SUCCESS ||
               rep->state == EDGEPROV__V1__ACTION_STATE__ACTION_STATE_FAILED ||
               rep->state == EDGEPROV__V1__ACTION_STATE__ACTION_STATE_TIMEOUT;
  if (final && !a->finished_at) a->finished_at = now;
  a->state = rep->state;
  a->attempts = rep->attempts;
  a->bytes_done = rep->bytes_done;
  a->bytes_total = rep->bytes_total;
  if (rep->state == EDGEPROV__V1__ACTION_STATE__ACTION_STATE_FAILED || rep->state == EDGEPROV__V1__ACTION_STATE__ACTION_STATE_TIMEOUT)
    w->state = EDGEPROV__V1__WORKFLOW_STATE__WORKFLOW_STATE_FAILED;
  else if (rep->state == EDGEPROV__V1__ACTION_STATE__ACTION_STATE_SUCCESS && rep->index + 1 == w->n_actions)
    w->state = EDGEPROV__V1__WORKFLOW_STATE__WORKFLOW_STATE_SUCCESS;
  else
    w->state = EDGEPROV__V1__WORKFLOW_STATE__WORKFLOW_STATE_RUNNING;
  if (w->state != EDGEPROV__V1__WORKFLOW_STATE__WORKFLOW_STATE_RUNNING) w->finished_at = now;
  return 0;
}

void ep_workflow_status(const ep_workflow *w, char out[EP_WORKFLOW_STATUS_MAX], bool *ret_failed) {
  size_t done = 0, current = 0;
  while (done < w->n_actions && w->actions[done]->state == EDGEPROV__V1__ACTION_STATE__ACTION_STATE_SUCCESS) done++;
  current = done < w->n_actions ? done : w->n_actions - 1;
  const Edgeprov__V1__WorkflowAction *a = w->actions[current];
  bool failed = w->state == EDGEPROV__V1__WORKFLOW_STATE__WORKFLOW_STATE_FAILED;
  if (ret_failed) *ret_failed = failed;
  if (failed)
    snprintf(out, EP_WORKFLOW_STATUS_MAX, "Provisioning Failed: %s: %.200s", a->action, a->message);
  else if (done == w->n_actions)
    snprintf(out, EP_WORKFLOW_STATUS_MAX, "%zu/%zu: done", done, w->n_actions);
  else if (a->bytes_total || a->bytes_done)
    snprintf(out, EP_WORKFLOW_STATUS_MAX, "%zu/%zu: %s (%" PRIu64 "/%" PRIu64 ")", done + 1, w->n_actions, a->action,
             a->bytes_done, a->bytes_total);
  else
    snprintf(out, EP_WORKFLOW_STATUS_MAX, "%zu/%zu: %s (%s)", done + 1, w->n_actions, a->action,
             ep_action_state_name(a->state));
}
