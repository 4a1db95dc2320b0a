/* core: node actions, see action.h. */
#include "runtime/action.h"

#include <stdio.h>

#include <string.h>

#include "base/error.h"
#include "runtime/plugin_loader.h"
#include "base/suggest.h"

#define ACTIONS_SIZE_1_0 ((uint32_t)sizeof(ep_actions))
#define ACTION_SIZE_1_0 ((uint32_t)sizeof(ep_action))

bool ep_action_name_valid(const char *name) {
  size_t len = name ? strnlen(name, EP_ACTION_NAME_MAX + 1) : 0;
  if (len == 0 || len > EP_ACTION_NAME_MAX) return false;
  bool dot = false, part_start = true;
  for (size_t i = 0; i < len; i++) {
    char c = name[i];
    if (c == '.') {
      if (part_start) return false;
      dot = part_start = true;
      continue;
    }
    bool letter = c >= 'a' && c <= 'z';
    if (part_start ? !letter : !(letter || (c >= '0' && c <= '9') || c == '_')) return false;
    part_start = false;
  }
  return dot && !part_start;
}

static const ep_action *action_at(const ep_actions *t, uint32_t i) {
  return (const ep_action *)((const char *)t->actions + (size_t)i * t->action_size);
}

static const ep_actions *actions_of(const ep_plugin *p) {
  for (size_t c = 0; p->entry->capabilities && p->entry->capabilities[c]; c++)
    if (strcmp(p->entry->capabilities[c], EP_CAP_ACTIONS) == 0)
      return p->entry->get_capability(p->instance, EP_CAP_ACTIONS);
  return NULL;
}

void ep_actions_each(const ep_plugin_set *set, void (*visit)(void *data, const ep_action_ref *ref), void *data) {
  for (size_t i = 0; i < set->started_count; i++) {
    const ep_plugin *p = set->started[i];
    const ep_actions *t = actions_of(p);
    if (!t) continue;
    for (uint32_t a = 0; a < t->actions_count; a++) {
      ep_action_ref ref = {.action = action_at(t, a), .plugin = p, .field_size = t->field_size};
      visit(data, &ref);
    }
  }
}

typedef struct find_state {
  const char *name;
  ep_action_ref found;
  const char *names[EP_ACTIONS_MAX];
  size_t count;
} find_state;

static void find_visit(void *data, const ep_action_ref *ref) {
  find_state *s = data;
  if (!s->found.action && strcmp(ref->action->name, s->name) == 0) s->found = *ref;
  if (s->count < EP_ACTIONS_MAX) s->names[s->count++] = ref->action->name;
}

int ep_actions_find(const ep_plugin_set *set, const char *name, ep_action_ref *out) {
  find_state s = {.name = name};
  ep_actions_each(set, find_visit, &s);
  if (s.found.action) {
    *out = s.found;
    return 0;
  }
  const char *hint = ep_suggest(name, s.names, s.count);
  if (hint) return ep_error_set(EP_ENOENT, "no action '%s' (did you mean '%s'?)", name, hint);
  return ep_error_set(EP_ENOENT, "no action '%s' in the loaded plugins (see: edgeprov actions list)", name);
}

int ep_actions_check_table(const void *table, const ep_plugin *plugin, const ep_plugin_set *set) {
  const ep_actions *t = table;
  if (t->struct_size < ACTIONS_SIZE_1_0)
    return ep_error_set(EP_EINVAL, "actions table struct_size %u is smaller than %u", t->struct_size,
                        ACTIONS_SIZE_1_0);
  if (t->actions_count > EP_ACTIONS_MAX)
    return ep_error_set(EP_EINVAL, "%u actions, at most %d allowed", t->actions_count, EP_ACTIONS_MAX);
  if (t->actions_count && (!t->actions || t->action_size < ACTION_SIZE_1_0))
    return ep_error_set(EP_EINVAL, "actions array missing or action_size %u smaller than %u", t->action_size,
                        ACTION_SIZE_1_0);
  for (uint32_t i = 0; i < t->actions_count; i++) {
    const ep_action *a = action_at(t, i);
    if (a->struct_size < ACTION_SIZE_1_0 || a->struct_size > t->action_size)
      return ep_error_set(EP_EINVAL, "action #%u: struct_size %u does not fit the stride %u", i, a->struct_size,
                          t->action_size);
    if (!ep_action_name_valid(a->name))
      return ep_error_set(EP_EINVAL, "action #%u: name '%.64s' is not group.verb ([a-z][a-z0-9_]* parts)", i,
                          a->name ? a->name : "(null)");
    if (!a->run) return ep_error_set(EP_EINVAL, "action '%s' has no run function", a->name);
    ep_fields params;
    if (ep_fields_init(&params, a->params, a->params_count, t->field_size) < 0)
      return ep_error_prefix(EP_EINVAL, "action '%s': bad parameter declaration", a->name);
    ep_fields_free(&params);
    for (uint32_t j = 0; j < i; j++)
      if (strcmp(action_at(t, j)->name, a->name) == 0)
        return ep_error_set(EP_EINVAL, "action '%s' is declared twice", a->name);
    ep_action_ref other;
    if (ep_actions_find(set, a->name, &other) == 0 && other.plugin != plugin)
      return ep_error_set(EP_EEXIST, "action '%s' is already offered by plugin '%s'", a->name,
                          other.plugin->entry->id);
  }
  ep_error_clear();
  return 0;
}

int ep_action_params_new(ep_fields *out, const ep_action_ref *ref) {
  return ep_fields_init(out, ref->action->params, ref->action->params_count, ref->field_size);
}

int ep_action_params_parse(ep_fields *params, const ep_action_ref *ref, const char *const *assignments,
                           size_t count) {
  for (size_t i = 0; i < count; i++) {
    const char *eq = strchr(assignments[i], '=');
    if (!eq || eq == assignments[i])
      return ep_error_set(EP_EINVAL, "action %s: '%.64s' is not name=value", ref->action->name, assignments[i]);
    char name[EP_FIELD_NAME_MAX + 1];
    size_t len = (size_t)(eq - assignments[i]);
    if (len > EP_FIELD_NAME_MAX)
      return ep_error_set(EP_EINVAL, "action %s: parameter name longer than %d bytes", ref->action->name,
                          EP_FIELD_NAME_MAX);
    memcpy(name, assignments[i], len);
    name[len] = '\0';
    ep_field_value *field = ep_fields_find(params, name);
    if (!field) {
      const char *hint = ep_fields_suggest(params, name);
      if (hint)
        return ep_error_set(EP_EINVAL, "action %s: unknown parameter '%s' (did you mean '%s'?)", ref->action->name,
                            name, hint);
      return ep_error_set(EP_EINVAL, "action %s: unknown parameter '%s'", ref->action->name, name);
    }
    if (ep_field_set_text(field, eq + 1) < 0) return ep_error_prefix(EP_EINVAL, "action %s", ref->action->name);
  }
  for (uint32_t i = 0; i < params->count; i++)
    if (ep_field_missing(&params->items[i]))
      return ep_error_set(EP_EINVAL, "action %s: missing required parameter '%s' (%s)", ref->action->name,
                          params->items[i].decl->name, ep_field_type_name(params->items[i].decl->type));
  return 0;
}

int ep_action_run(const ep_action_ref *ref, const ep_fields *params, ep_action_run_opts *opts) {
  const ep_plugin *p = ref->plugin;
  ep_ctx ctx;
  ep_ctx_init(&ctx, p->entry->id, &p->settings, p->ctx.capabilities);
  ctx.config = p->ctx.config;
  ctx.params = params;
  if (opts) {
    ctx.progress = opts->progress;
    ctx.progress_data = opts->progress_data;
    ctx.cancel = opts->cancel;
    ctx.log_line = opts->log_line;
    ctx.log_data = opts->log_data;
    ctx.run_target_disk = opts->target_disk;
    ctx.run_scratch_dir = opts->scratch_dir;
    ctx.run_tpm = opts->tpm;
    ctx.store_secret = opts->store_secret;
    ctx.store_secret_data = opts->store_secret_data;
    if (opts->deadline > 0) snprintf(ctx.run_deadline, sizeof ctx.run_deadline, "%lld", (long long)opts->deadline);
  }
  int32_t r = ref->action->run(p->instance, &ctx);
  if (opts) snprintf(opts->reboot, sizeof opts->reboot, "%s", r == 0 ? ctx.reboot : "");
  if (r < 0)
    return ep_error_set(r, "action %s (plugin %s): %s", ref->action->name, p->entry->id,
                        ep_ctx_error(&ctx, "failed without a message"));
  return 0;
}
