/* edgeprov CLI: the site's own commands, run here without edgeprovd: config check, plugins
 * list|describe, actions list|run. */
#define _GNU_SOURCE /* sigaction */
#include <inttypes.h>
#include <jansson.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/suggest.h"
#include "cli.h"
#include "provisioning/workflow.h"
#include "runtime/action.h"
#include "runtime/site.h"

/* ---- config check --------------------------------------------------------------------- */

int ep_cli_config_check(cli_call *call) {
  const char *path = call->args[0];
  ep_diags diags = {0};
  ep_site *site = NULL;
  int r = ep_site_open(&site, path, &diags);
  ep_diags_print(&diags, stderr);
  size_t errors = diags.errors;
  ep_diags_clear(&diags);
  if (r < 0 || errors > 0) {
    fprintf(stderr, "%s: %zu error%s\n", path, errors ? errors : 1, errors == 1 ? "" : "s");
    ep_site_free(site);
    return EXIT_FAILURE;
  }
  size_t enabled = 0;
  for (size_t i = 0; i < site->plugins->count; i++)
    if (site->plugins->items[i]->state == EP_PLUGIN_READY) enabled++;
  /* The workflow templates, against the actions: only the OS and action plugins start. */
  static const char *const template_capabilities[] = {EP_CAP_OS, EP_CAP_ACTIONS};
  if (ep_site_start_offering(site, template_capabilities, 2) < 0) {
    fprintf(stderr, "%s: error: %s\n%s: 1 error\n", path, ep_error_message(), path);
    ep_site_free(site);
    return EXIT_FAILURE;
  }
  cli_print_problems(site);
  ep_workflow_check_templates(site->plugins, &diags);
  ep_diags_print(&diags, stderr);
  errors = diags.errors;
  ep_diags_clear(&diags);
  if (errors > 0) {
    fprintf(stderr, "%s: %zu error%s\n", path, errors, errors == 1 ? "" : "s");
    ep_site_free(site);
    return EXIT_FAILURE;
  }
  printf("%s: ok (mode %s, %zu plugin%s enabled)\n", path, ep_provisioning_mode_name(site->config->mode), enabled,
         enabled == 1 ? "" : "s");
  ep_site_free(site);
  return EXIT_SUCCESS;
}

/* ---- plugins -------------------------------------------------------------------------- */

static void capabilities_text(const ep_plugin *p, char *buf, size_t len) {
  size_t used = 0;
  buf[0] = '\0';
  for (size_t i = 0; p->entry && p->entry->capabilities && p->entry->capabilities[i] && used < len; i++)
    used += (size_t)snprintf(buf + used, len - used, "%s%s", i ? "," : "", p->entry->capabilities[i]);
  if (!buf[0]) snprintf(buf, len, "-");
}

static json_t *capabilities_json(const ep_plugin *p) {
  json_t *list = json_array();
  for (size_t i = 0; list && p->entry && p->entry->capabilities && p->entry->capabilities[i]; i++)
    ep_json_push(&list, ep_json_text(p->entry->capabilities[i]));
  return list;
}

static json_t *plugin_json(const ep_plugin *p) {
  return json_pack("{s:o, s:o, s:s, s:o, s:o, s:o}", "id", p->entry ? ep_json_text(p->entry->id) : json_null(),
                   "version", p->entry ? ep_json_text(p->entry->version) : json_null(), "state",
                   ep_plugin_state_name(p->state), "capabilities", capabilities_json(p), "file", ep_json_text(p->path),
                   "why", p->reason ? ep_json_text(p->reason) : json_null());
}

int ep_cli_plugins_list(cli_call *call) {
  ep_site *site = call->site;
  bool json = cli_flag(call, 'j');
  int started = ep_plugins_start(site->plugins, site->config);
  if (started < 0) fprintf(stderr, "edgeprov: startup would stop: %s\n", ep_error_message());
  if (json) {
    json_t *list = json_array();
    for (size_t i = 0; list && i < site->plugins->count; i++) ep_json_push(&list, plugin_json(site->plugins->items[i]));
    int status = cli_print_json(list, JSON_INDENT(2));
    return started < 0 ? EXIT_FAILURE : status;
  }
  printf("%-24s %-10s %-9s %-40s %s\n", "ID", "VERSION", "STATE", "CAPABILITIES", "FILE");
  for (size_t i = 0; i < site->plugins->count; i++) {
    const ep_plugin *p = site->plugins->items[i];
    char caps[512];
    capabilities_text(p, caps, sizeof caps);
    printf("%-24s %-10s %-9s %-40s %s\n", p->entry ? p->entry->id : "-", p->entry ? p->entry->version : "-",
           ep_plugin_state_name(p->state), caps, p->path);
    if (p->reason) printf("  why: %s\n", p->reason);
  }
  if (site->plugins->count == 0) printf("(no plugins found in the plugin directories)\n");
  return started < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}

static void print_field_table(const ep_fields *fields, const char *indent) {
  if (fields->count == 0) {
    printf("%s(none)\n", indent);
    return;
  }
  printf("%s%-20s %-7s %-9s %-24s %s\n", indent, "NAME", "TYPE", "REQUIRED", "DEFAULT", "HELP");
  for (uint32_t i = 0; i < fields->count; i++) {
    const ep_field_decl *d = fields->items[i].decl;
    char bounds[64] = "";
    if (d->type == EP_FIELD_INT)
      snprintf(bounds, sizeof bounds, " [%" PRId64 "..%" PRId64 "]", d->min, d->max);
    else if (d->type == EP_FIELD_STRING && d->max > 0)
      snprintf(bounds, sizeof bounds, " [max %" PRId64 " bytes]", d->max);
    printf("%s%-20s %-7s %-9s %-24s %s%s\n", indent, d->name, ep_field_type_name(d->type), d->required ? "yes" : "no",
           d->default_value ? d->default_value : "-", d->help ? d->help : "", bounds);
  }
}

/* The fields' declarations as a JSON array; bounds as min and max (int) or max_bytes (string). */
static json_t *fields_json(const ep_fields *fields) {
  json_t *list = json_array();
  for (uint32_t i = 0; list && i < fields->count; i++) {
    const ep_field_decl *d = fields->items[i].decl;
    json_t *o = json_pack("{s:o, s:s, s:b, s:o, s:o}", "name", ep_json_text(d->name), "type",
                          ep_field_type_name(d->type), "required", d->required != 0, "default",
                          d->default_value ? ep_json_text(d->default_value) : json_null(), "help",
                          ep_json_text(d->help));
    if (o && d->type == EP_FIELD_INT &&
        (json_object_set_new(o, "min", json_integer(d->min)) < 0 || json_object_set_new(o, "max", json_integer(d->max)) < 0)) {
      json_decref(o);
      o = NULL;
    } else if (o && d->type == EP_FIELD_STRING && d->max > 0 && json_object_set_new(o, "max_bytes", json_integer(d->max)) < 0) {
      json_decref(o);
      o = NULL;
    }
    ep_json_push(&list, o);
  }
  return list;
}

int ep_cli_plugins_describe(cli_call *call) {
  const ep_site *site = call->site;
  const char *name = call->args[0];
  const ep_plugin *p = ep_plugins_find(site->plugins, name);
  if (!p) {
    const char *ids[EP_PLUGINS_MAX];
    size_t n = 0;
    for (size_t i = 0; i < site->plugins->count && n < EP_PLUGINS_MAX; i++)
      if (site->plugins->items[i]->entry) ids[n++] = site->plugins->items[i]->entry->id;
    const char *hint = ep_suggest(name, ids, n);
    fprintf(stderr, "edgeprov: no plugin '%s'%s%s%s (see: edgeprov plugins list)\n", name,
            hint ? " (did you mean '" : "", hint ? hint : "", hint ? "'?)" : "");
    return EXIT_FAILURE;
  }
  if (cli_flag(call, 'j')) {
    json_t *o = plugin_json(p);
    if (o && (json_object_set_new(o, "description", ep_json_text(p->entry->description)) < 0 ||
              json_object_set_new(o, "abi", json_sprintf("%u.%u", p->entry->abi_major, p->entry->abi_minor)) < 0 ||
              json_object_set_new(o, "section", ep_json_text(p->entry->id)) < 0 ||
              json_object_set_new(o, "settings", fields_json(&p->settings)) < 0)) {
      json_decref(o);
      o = NULL;
    }
    return cli_print_json(o, JSON_INDENT(2));
  }
  char caps[512];
  capabilities_text(p, caps, sizeof caps);
  printf("%s %s\n", p->entry->id, p->entry->version);
  if (p->entry->description) printf("  %s\n", p->entry->description);
  printf("file:         %s\n", p->path);
  printf("state:        %s%s%s\n", ep_plugin_state_name(p->state), p->reason ? ": " : "", p->reason ? p->reason : "");
  printf("ABI:          %u.%u\n", p->entry->abi_major, p->entry->abi_minor);
  printf("capabilities: %s\n", caps);
  printf("settings (section '%s' of edgeprov.conf):\n", p->entry->id);
  print_field_table(&p->settings, "  ");
  return EXIT_SUCCESS;
}

/* ---- actions -------------------------------------------------------------------------- */

static void print_action(void *data, const ep_action_ref *ref) {
  (void)data;
  printf("%s (plugin %s)\n", ref->action->name, ref->plugin->entry->id);
  if (ref->action->description) printf("  %s\n", ref->action->description);
  ep_fields params;
  if (ep_action_params_new(&params, ref) == 0) {
    print_field_table(&params, "    ");
    ep_fields_free(&params);
  }
}

/* Adds the action to the JSON array data (NULL once out of memory). */
static void action_json(void *data, const ep_action_ref *ref) {
  json_t **list = data;
  if (!*list) return;
  ep_fields params = {0};
  json_t *o = ep_action_params_new(&params, ref) < 0 ? NULL
              : json_pack("{s:o, s:o, s:o, s:o}", "name", ep_json_text(ref->action->name), "plugin",
                          ep_json_text(ref->plugin->entry->id), "description", ep_json_text(ref->action->description),
                          "params", fields_json(&params));
  ep_fields_free(&params);
  ep_json_push(list, o);
}

int ep_cli_actions_list(cli_call *call) {
  if (cli_flag(call, 'j')) {
    json_t *list = json_array();
    ep_actions_each(call->site->plugins, action_json, &list);
    return cli_print_json(list, JSON_INDENT(2));
  }
  ep_actions_each(call->site->plugins, print_action, NULL);
  return EXIT_SUCCESS;
}

static atomic_int cancel_requested;

static void on_interrupt(int sig) {
  (void)sig;
  atomic_store(&cancel_requested, 1);
}

static void print_progress(void *data, uint64_t done, uint64_t total, const char *message) {
  (void)data;
  if (total > 0)
    fprintf(stderr, "progress: %" PRIu64 "/%" PRIu64 " (%" PRIu64 "%%) %s\n", done, total, done * 100 / total,
            message ? message : "");
  else
    fprintf(stderr, "progress: %" PRIu64 " %s\n", done, message ? message : "");
}

int ep_cli_actions_run(cli_call *call) {
  const char *name = call->args[0];
  char **assignments = call->args + 1;
  int count = call->nargs - 1;
  int status = EXIT_FAILURE;
  ep_fields params = {0};
  ep_action_ref ref;
  if (ep_actions_find(call->site->plugins, name, &ref) < 0 || ep_action_params_new(&params, &ref) < 0 ||
      ep_action_params_parse(&params, &ref, (const char *const *)assignments, (size_t)count) < 0) {
    fprintf(stderr, "edgeprov: %s\n", ep_error_message());
    goto out;
  }
  struct sigaction sa = {.sa_handler = on_interrupt};
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  ep_action_run_opts opts = {.progress = print_progress, .cancel = &cancel_requested};
  if (ep_action_run(&ref, &params, &opts) < 0) {
    fprintf(stderr, "edgeprov: %s\n", ep_error_message());
    goto out;
  }
  printf("action %s: ok\n", name);
  if (opts.reboot[0]) printf("action %s asked for a %s: the agent does that after reporting; the CLI does not\n", name, opts.reboot);
  status = EXIT_SUCCESS;
out:
  ep_fields_free(&params);
  return status;
}
