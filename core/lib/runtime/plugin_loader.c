/* core: the plugin loader, see plugin_loader.h. */
#define _GNU_SOURCE /* strdup, asprintf */
#include "runtime/plugin_loader.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/error.h"
#include "runtime/host_services.h"

/* Capabilities of the edgeprov namespace this host knows (the SDK's EP_CAP_* IDs). */
static const char *const known_capabilities[] = {EP_CAP_OS, EP_CAP_BOOT, EP_CAP_IDENTITY, EP_CAP_STORAGE,
                                                 EP_CAP_ACTIONS};
#define KNOWN_CAPABILITY_COUNT (sizeof known_capabilities / sizeof known_capabilities[0])

static bool is_known_capability(const char *id) {
  for (size_t i = 0; i < KNOWN_CAPABILITY_COUNT; i++)
    if (strcmp(known_capabilities[i], id) == 0) return true;
  return false;
}

bool ep_capability_id_valid(const char *id, bool *known_out) {
  size_t len = id ? strnlen(id, 128) : 0;
  if (len == 0 || len > 127) return false;
  const char *slash = strchr(id, '/');
  if (!slash || slash == id || !slash[1]) return false;
  bool dot = false;
  for (const char *p = id; p < slash; p++) {
    if (*p == '.') {
      if (p == id || p[-1] == '.' || p + 1 == slash) return false;
      dot = true;
    } else if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' || *p == '_')) {
      return false;
    }
  }
  if (!dot || slash[1] == '0') return false;
  for (const char *p = slash + 1; *p; p++)
    if (*p < '0' || *p > '9') return false;
  bool known = strncmp(id, "edgeprov.", 9) != 0 || is_known_capability(id);
  if (known_out) *known_out = known;
  return true;
}

const char *ep_plugin_state_name(ep_plugin_state state) {
  switch (state) {
  case EP_PLUGIN_REFUSED: return "refused";
  case EP_PLUGIN_DISABLED: return "disabled";
  case EP_PLUGIN_READY: return "ready";
  case EP_PLUGIN_FAILED: return "failed";
  case EP_PLUGIN_ACTIVE: return "active";
  }
  return "unknown";
}

static void set_reason(ep_plugin *p, ep_plugin_state state, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_reason(ep_plugin *p, ep_plugin_state state, const char *fmt, ...) {
  char text[EP_ERROR_MESSAGE_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(text, sizeof text, fmt, ap);
  va_end(ap);
  free(p->reason);
  p->reason = strdup(text);
  p->state = state;
}

static void describe_signature(uint32_t sig, char *buf, size_t len) {
  snprintf(buf, len, "0x%08x: pointer %u, off_t %u, time_t %u bytes, %s", sig, sig & 0xff, (sig >> 8) & 0xff,
           (sig >> 16) & 0xff, (sig >> 24) == 1 ? "little-endian" : (sig >> 24) == 2 ? "big-endian" : "unknown order");
}

/* ---- scanning ------------------------------------------------------------------------- */

static ep_plugin *find_valid_by_id(const ep_plugin_set *set, const char *id, const ep_plugin *except) {
  for (size_t i = 0; i < set->count; i++) {
    ep_plugin *p = set->items[i];
    if (p != except && p->entry && strcmp(p->entry->id, id) == 0) return p;
  }
  return NULL;
}

/* Anyone who may write a plugin file, or its directory, may run code in the process that loads
 * it: refuses p (before it is opened) when the file it names or the directory holding it is
 * writable by its group or by any user. Returns true when p was refused. */
static bool refuse_if_writable_by_others(ep_plugin *p) {
  struct stat st;
  if (stat(p->path, &st) == 0 && (st.st_mode & (S_IWGRP | S_IWOTH))) {
    set_reason(p, EP_PLUGIN_REFUSED, "insecure: the file is writable by %s (chmod go-w)",
               st.st_mode & S_IWOTH ? "any user" : "its group");
    return true;
  }
  const char *slash = strrchr(p->path, '/');
  char *dir = slash ? strndup(p->path, (size_t)(slash - p->path) + (slash == p->path)) : strdup(".");
  bool refused = false;
  if (dir && stat(dir, &st) == 0 && (st.st_mode & (S_IWGRP | S_IWOTH))) {
    set_reason(p, EP_PLUGIN_REFUSED, "insecure: its directory %s is writable by %s (chmod go-w %s)", dir,
               st.st_mode & S_IWOTH ? "any user" : "its group", dir);
    refused = true;
  }
  free(dir);
  return refused;
}

/* Runs every check on the entry of p; on failure marks p REFUSED. */
static void check_plugin(ep_plugin_set *set, ep_plugin *p) {
  if (refuse_if_writable_by_others(p)) return;
  dlerror();
  p->handle = dlopen(p->path, RTLD_NOW | RTLD_LOCAL);
  if (!p->handle) {
    const char *why = dlerror();
    set_reason(p, EP_PLUGIN_REFUSED, "cannot be loaded: %s", why ? why : "unknown dlopen error");
    return;
  }
  const ep_plugin_entry *e = dlsym(p->handle, EP_PLUGIN_ENTRY_SYMBOL);
  if (!e) {
    set_reason(p, EP_PLUGIN_REFUSED, "not a plugin (no entry symbol '%s')", EP_PLUGIN_ENTRY_SYMBOL);
    return;
  }
  if (e->struct_size < 3 * sizeof(uint32_t)) {
    set_reason(p, EP_PLUGIN_REFUSED, "entry struct_size %u is too small to be an edgeprov plugin entry",
               e->struct_size);
    return;
  }
  if (e->abi_major != EP_ABI_MAJOR) {
    set_reason(p, EP_PLUGIN_REFUSED, "ABI major mismatch: plugin built for ABI %u.%u, host is %u.%u",
               e->abi_major, e->abi_minor, EP_ABI_MAJOR, EP_ABI_MINOR);
    return;
  }
  if (e->abi_minor > EP_ABI_MINOR) {
    set_reason(p, EP_PLUGIN_REFUSED,
               "ABI minor newer than the host: plugin built for ABI %u.%u, host is %u.%u (upgrade edgeprov)",
               e->abi_major, e->abi_minor, EP_ABI_MAJOR, EP_ABI_MINOR);
    return;
  }
  if (e->build_signature != EP_BUILD_SIGNATURE) {
    char got[96], want[96];
    describe_signature(e->build_signature, got, sizeof got);
    describe_signature(EP_BUILD_SIGNATURE, want, sizeof want);
    set_reason(p, EP_PLUGIN_REFUSED, "bad build signature %s; host expects %s", got, want);
    return;
  }
  if (e->struct_size < EP_PLUGIN_ENTRY_SIZE_1_0) {
    set_reason(p, EP_PLUGIN_REFUSED, "entry struct_size %u is smaller than ABI %u.0's %u", e->struct_size,
               EP_ABI_MAJOR, EP_PLUGIN_ENTRY_SIZE_1_0);
    return;
  }
  if (!ep_plugin_id_valid(e->id)) {
    set_reason(p, EP_PLUGIN_REFUSED, "invalid plugin ID '%.64s': expected [a-z][a-z0-9-]*, at most 63 characters",
               e->id ? e->id : "(null)");
    return;
  }
  snprintf(p->claimed_id, sizeof p->claimed_id, "%s", e->id); /* readable: this host's layout */
  if (!e->version || !*e->version || strnlen(e->version, 64) > 63) {
    set_reason(p, EP_PLUGIN_REFUSED, "plugin '%s' has no version text (or one longer than 63 bytes)", e->id);
    return;
  }
  if (!e->init) {
    set_reason(p, EP_PLUGIN_REFUSED, "plugin '%s' has no init function", e->id);
    return;
  }
  const ep_plugin *other = find_valid_by_id(set, e->id, p);
  if (other) {
    set_reason(p, EP_PLUGIN_REFUSED, "duplicate plugin ID '%s' (already loaded from %s)", e->id, other->path);
    return;
  }
  size_t caps = 0;
  for (; e->capabilities && e->capabilities[caps]; caps++) {
    bool known = false;
    const char *cap = e->capabilities[caps];
    if (caps >= EP_PLUGIN_CAPS_MAX) {
      set_reason(p, EP_PLUGIN_REFUSED, "more than %d capabilities declared", EP_PLUGIN_CAPS_MAX);
      return;
    }
    if (!ep_capability_id_valid(cap, &known)) {
      set_reason(p, EP_PLUGIN_REFUSED, "malformed capability ID '%.128s' (expected namespace.name/revision)", cap);
      return;
    }
    if (!known) {
      set_reason(p, EP_PLUGIN_REFUSED, "unknown capability ID '%s' (this host knows edgeprov.os/1, edgeprov.boot/1, "
                 "edgeprov.identity/1, edgeprov.storage/1, edgeprov.actions/1)", cap);
      return;
    }
  }
  if (caps > 0 && !e->get_capability) {
    set_reason(p, EP_PLUGIN_REFUSED, "plugin '%s' declares capabilities but has no get_capability", e->id);
    return;
  }
  if (ep_fields_init(&p->settings, e->settings, e->settings_count, e->field_size) < 0) {
    set_reason(p, EP_PLUGIN_REFUSED, "invalid setting declaration: %s", ep_error_message());
    return;
  }
  p->entry = e;
  p->state = EP_PLUGIN_READY;
}

static int compare_names(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static int note(ep_plugin_set *set, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int note(ep_plugin_set *set, const char *fmt, ...) {
  char text[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(text, sizeof text, fmt, ap);
  va_end(ap);
  char **items = realloc(set->notes.items, (set->notes.count + 1) * sizeof *items);
  if (!items) return EP_ENOMEM;
  set->notes.items = items;
  if (!(items[set->notes.count] = strdup(text))) return EP_ENOMEM;
  set->notes.count++;
  return 0;
}

/* Lists the *.so names of dir, sorted. */
static int list_shared_objects(const char *dir, ep_strv *out, int *errno_out) {
  DIR *d = opendir(dir);
  if (!d) {
    *errno_out = errno;
    return 0;
  }
  struct dirent *de;
  int r = 0;
  while ((de = readdir(d))) {
    size_t len = strlen(de->d_name);
    if (len < 4 || strcmp(de->d_name + len - 3, ".so") != 0 || de->d_name[0] == '.') continue;
    if (out->count >= EP_PLUGINS_MAX) break;
    char **items = realloc(out->items, (out->count + 1) * sizeof *items);
    if (!items || !(items[out->count] = strdup(de->d_name))) {
      if (items) out->items = items;
      r = EP_ENOMEM;
      break;
    }
    out->items = items;
    out->count++;
  }
  closedir(d);
  if (out->count > 1) qsort(out->items, out->count, sizeof *out->items, compare_names);
  return r;
}

static int add_plugin(ep_plugin_set *set, const char *dir, const char *name) {
  ep_plugin *p = calloc(1, sizeof *p);
  ep_plugin **items = realloc(set->items, (set->count + 1) * sizeof *items);
  if (!p || !items) {
    free(p);
    if (items) set->items = items;
    return EP_ENOMEM;
  }
  set->items = items;
  if (asprintf(&p->path, "%s/%s", dir, name) < 0) {
    free(p);
    return EP_ENOMEM;
  }
  set->items[set->count++] = p;
  size_t stem = strlen(name) > 3 ? strlen(name) - 3 : strlen(name); /* names end in ".so" */
  snprintf(p->claimed_id, sizeof p->claimed_id, "%.*s", (int)stem, name);
  check_plugin(set, p);
  return 0;
}

int ep_plugins_scan(ep_plugin_set **out, const ep_strv *dirs, const ep_capability_check *checks, size_t check_count) {
  if (check_count > EP_CAPABILITY_CHECKS_MAX)
    return ep_error_set(EP_EINVAL, "more than %d capability checks", EP_CAPABILITY_CHECKS_MAX);
  ep_plugin_set *set = calloc(1, sizeof *set);
  if (!set) return ep_error_set(EP_ENOMEM, "out of memory");
  for (size_t i = 0; i < check_count; i++) set->checks[i] = checks[i];
  set->check_count = check_count;
  int r = 0;
  for (size_t d = 0; d < dirs->count && r == 0; d++) {
    ep_strv names = {0};
    int err = 0;
    r = list_shared_objects(dirs->items[d], &names, &err);
    if (err) r = note(set, "plugin directory %s: %s", dirs->items[d], strerror(err));
    for (size_t i = 0; i < names.count && r == 0; i++) {
      if (set->count >= EP_PLUGINS_MAX) {
        r = note(set, "more than %d plugin files; the rest of %s is ignored", EP_PLUGINS_MAX, dirs->items[d]);
        break;
      }
      r = add_plugin(set, dirs->items[d], names.items[i]);
    }
    for (size_t i = 0; i < names.count; i++) free(names.items[i]);
    free(names.items);
  }
  if (r < 0) {
    ep_plugin_set_free(set);
    return ep_error_set(EP_ENOMEM, "out of memory while scanning plugins");
  }
  *out = set;
  return 0;
}

/* ---- configuring ---------------------------------------------------------------------- */

static void dirs_text(const ep_config *config, char *buf, size_t len) {
  size_t used = 0;
  buf[0] = '\0';
  for (size_t i = 0; i < config->plugin_dirs.count && used < len; i++)
    used += (size_t)snprintf(buf + used, len - used, "%s%s", i ? ", " : "", config->plugin_dirs.items[i]);
  if (!config->plugin_dirs.count) snprintf(buf, len, "(no plugin directory configured)");
}

/* The name of the first required setting without a value, or NULL. */
static const char *first_required_setting(const ep_fields *settings) {
  for (uint32_t i = 0; i < settings->count; i++)
    if (ep_field_missing(&settings->items[i])) return settings->items[i].decl->name;
  return NULL;
}

int ep_plugins_configure(ep_plugin_set *set, const ep_config *config, ep_diags *diags) {
  size_t errors_before = diags->errors;
  const char *file = config->path;
  const char **ids = calloc(set->count + 1, sizeof *ids);
  size_t id_count = 0;
  if (!ids) return ep_error_set(EP_ENOMEM, "out of memory");

  for (size_t i = 0; i < set->count; i++) {
    ep_plugin *p = set->items[i];
    if (!p->entry) continue;
    ids[id_count++] = p->entry->id;
    p->required = ep_config_plugin_required(config, p->entry->id);
    if (!ep_config_plugin_enabled(config, p->entry->id)) {
      p->state = EP_PLUGIN_DISABLED;
      continue;
    }
    /* Enabled only because it was found (no plugins.enabled), needing settings the site
     * never gave (no section): installed but not set up, so left off rather than an error. */
    const char *needed = first_required_setting(&p->settings);
    if (needed && !p->required && !ep_config_plugins_listed(config) && !ep_config_has_section(config, p->entry->id)) {
      set_reason(p, EP_PLUGIN_DISABLED, "not set up: needs setting '%s' (see: edgeprov plugins describe %s)", needed,
                 p->entry->id);
      continue;
    }
    if (ep_config_check_plugin_section(config, p->entry->id, &p->settings, diags) > 0)
      set_reason(p, EP_PLUGIN_REFUSED, "invalid settings in %s", file ? file : "the embedded defaults");
  }
  /* Refused files, by the ID a config would give them: a section or a plugins list naming
   * one is told why it was refused, not that the ID is unknown. */
  ep_config_refused *refused = calloc(set->count + 1, sizeof *refused);
  size_t refused_count = 0;
  for (size_t i = 0; refused && i < set->count; i++) {
    const ep_plugin *p = set->items[i];
    if (p->state == EP_PLUGIN_REFUSED && !p->entry)
      refused[refused_count++] = (ep_config_refused){p->claimed_id, p->path, p->reason ? p->reason : "refused"};
  }
  ep_config_check_sections(config, ids, id_count, refused, refused_count, diags);
  free(ids);

  char dirs[512];
  dirs_text(config, dirs, sizeof dirs);
  const ep_strv *wanted[2] = {&config->plugins_required, config->plugins_enabled_set ? &config->plugins_enabled : NULL};
  for (size_t w = 0; w < 2; w++) {
    if (!wanted[w]) continue;
    for (size_t i = 0; i < wanted[w]->count; i++) {
      const char *id = wanted[w]->items[i];
      bool required = ep_config_plugin_required(config, id);
      if (w == 1 && required) continue; /* reported in the first pass */
      if (find_valid_by_id(set, id, NULL)) continue;
      const ep_config_refused *same = NULL;
      for (size_t k = 0; k < refused_count && !same; k++)
        if (strcmp(refused[k].id, id) == 0) same = &refused[k];
      if (same) {
        ep_diags_add(diags, required ? EP_DIAG_ERROR : EP_DIAG_WARNING, file, 0, "%s plugin '%s' refused: %s: %s",
                     required ? "required" : "enabled", id, same->path, same->reason);
        continue;
      }
      /* Not found by its ID: every refused file may be it (an entry that could not be read). */
      char others[1024] = "";
      size_t used = 0;
      for (size_t k = 0; k < refused_count && used < sizeof others; k++)
        used += (size_t)snprintf(others + used, sizeof others - used, "%s%s (%s)", k ? "; " : "", refused[k].path,
                                 refused[k].reason);
      ep_diags_add(diags, required ? EP_DIAG_ERROR : EP_DIAG_WARNING, file, 0, "%s plugin '%s' missing: not found in %s%s%s",
                   required ? "required" : "enabled", id, dirs, refused_count ? "; refused there: " : "", others);
    }
  }
  free(refused);
  return diags->errors > errors_before ? EP_EINVAL : 0;
}

/* ---- starting and stopping ------------------------------------------------------------ */

/* Checks the tables of every declared capability; returns 0 or sets the error API. */
static int check_capabilities(const ep_plugin_set *set, const ep_plugin *p) {
  for (size_t i = 0; p->entry->capabilities && p->entry->capabilities[i]; i++) {
    const char *id = p->entry->capabilities[i];
    const void *table = p->entry->get_capability(p->instance, id);
    if (!table) return ep_error_set(EP_EINVAL, "capability %s declared but get_capability returned NULL", id);
    for (size_t c = 0; c < set->check_count; c++) {
      if (strcmp(set->checks[c].capability_id, id) != 0) continue;
      int r = set->checks[c].check(table, p, set);
      if (r < 0) return ep_error_prefix(r, "capability %s", id);
    }
  }
  return 0;
}

/* Answers host->capability for the plugins of a set (ep_capability_lookup.find). */
static const void *find_capability(const void *set, const char *capability_id, void **ret_state) {
  ep_plugin *provider = NULL;
  const void *table = ep_plugins_capability(set, capability_id, &provider);
  if (table) *ret_state = provider->instance;
  return table;
}

static int start_one(ep_plugin_set *set, ep_plugin *p) {
  ep_ctx_init(&p->ctx, p->entry->id, &p->settings, (ep_capability_lookup){find_capability, set});
  p->ctx.config = set->config;
  void *instance = NULL;
  p->ctx.publishing = true;
  int32_t r = p->entry->init(ep_host_table(), &p->ctx, &instance);
  p->ctx.publishing = false;
  if (r < 0) {
    set_reason(p, EP_PLUGIN_FAILED, "init failed: %s", ep_ctx_error(&p->ctx, "(the plugin gave no message)"));
    return r;
  }
  p->instance = instance;
  r = check_capabilities(set, p);
  if (r < 0) {
    if (p->entry->deinit) p->entry->deinit(instance);
    p->instance = NULL;
    set_reason(p, EP_PLUGIN_FAILED, "bad capability table: %s", ep_error_message());
    return r;
  }
  p->state = EP_PLUGIN_ACTIVE;
  set->started[set->started_count++] = p;
  return 0;
}

int ep_plugins_start(ep_plugin_set *set, const ep_config *config) {
  set->config = config;
  if (!set->started) {
    set->started = calloc(set->count + 1, sizeof *set->started);
    if (!set->started) return ep_error_set(EP_ENOMEM, "out of memory");
  }
  /* Order: the config's enabled list first (in its order), then the rest in scan order. */
  size_t order_count = 0;
  ep_plugin **order = calloc(set->count + 1, sizeof *order);
  if (!order) return ep_error_set(EP_ENOMEM, "out of memory");
  if (config && config->plugins_enabled_set)
    for (size_t i = 0; i < config->plugins_enabled.count; i++) {
      ep_plugin *p = find_valid_by_id(set, config->plugins_enabled.items[i], NULL);
      if (p) order[order_count++] = p;
    }
  for (size_t i = 0; i < set->count; i++) {
    bool listed = false;
    for (size_t j = 0; j < order_count && !listed; j++) listed = order[j] == set->items[i];
    if (!listed) order[order_count++] = set->items[i];
  }

  int r = 0;
  for (size_t i = 0; i < order_count; i++) {
    ep_plugin *p = order[i];
    if (p->state != EP_PLUGIN_READY) {
      if (p->required && p->state != EP_PLUGIN_DISABLED) {
        r = ep_error_set(EP_EFAILED, "required plugin '%s' (%s) %s: %s", p->entry ? p->entry->id : "?", p->path,
                         ep_plugin_state_name(p->state), p->reason ? p->reason : "unusable");
        break;
      }
      continue;
    }
    if (start_one(set, p) < 0 && p->required) {
      r = ep_error_set(EP_EFAILED, "required plugin '%s' (%s): %s", p->entry->id, p->path, p->reason);
      break;
    }
  }
  free(order);
  if (r < 0) ep_plugins_stop(set);
  return r;
}

void ep_plugins_stop(ep_plugin_set *set) {
  if (!set) return;
  while (set->started_count > 0) {
    ep_plugin *p = set->started[--set->started_count];
    if (p->entry->deinit) p->entry->deinit(p->instance);
    p->instance = NULL;
    p->state = EP_PLUGIN_READY;
  }
}

void ep_plugin_set_free(ep_plugin_set *set) {
  if (!set) return;
  ep_plugins_stop(set);
  for (size_t i = 0; i < set->count; i++) {
    ep_plugin *p = set->items[i];
    ep_fields_free(&p->settings);
    if (p->handle) dlclose(p->handle);
    free(p->path);
    free(p->reason);
    free(p);
  }
  for (size_t i = 0; i < set->notes.count; i++) free(set->notes.items[i]);
  free(set->notes.items);
  free(set->items);
  free(set->started);
  free(set);
}

ep_plugin *ep_plugins_find(const ep_plugin_set *set, const char *id) { return find_valid_by_id(set, id, NULL); }

const void *ep_plugins_capability(const ep_plugin_set *set, const char *capability_id, ep_plugin **ret_plugin) {
  for (size_t i = 0; i < set->started_count; i++) {
    ep_plugin *p = set->started[i];
    for (size_t c = 0; p->entry->capabilities && p->entry->capabilities[c]; c++) {
      if (strcmp(p->entry->capabilities[c], capability_id) != 0) continue;
      const void *table = p->entry->get_capability(p->instance, capability_id);
      if (!table) continue;
      if (ret_plugin) *ret_plugin = p;
      return table;
    }
  }
  return NULL;
}
