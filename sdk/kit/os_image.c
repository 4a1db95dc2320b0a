/* The shared half of the image-based OS plugins, see os_image.h. */
#define _GNU_SOURCE /* O_CLOEXEC */
#include "edgeprov-kit/os_image.h"

#include <errno.h>
#include <fcntl.h>
#include <libconfig.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct os_state {
  const ep_host *host;
  ep_ctx *ctx;
  const ep_os_image_def *def;
  const char *profile;      /* settings: host-owned, valid until deinit */
  const char *image_url;
  const char *image_format;
  const char *description;
  char image_sha256[65];    /* lower case */
  const char *template_text; /* def->builtin_template or file_text */
  char *file_text;          /* template_file's contents (host allocator), or NULL */
  const char *template_file; /* the setting (host-owned), NULL for the built-in template */
  int32_t fde;               /* the setting: every instance encrypts its disk */
} os_state;

/* ---- checks of settings ------------------------------------------------------------------------ */

static bool profile_name_valid(const char *name) {
  size_t len = strlen(name);
  if (len == 0 || len > 63) return false;
  for (size_t i = 0; i < len; i++) {
    char c = name[i];
    bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
    if (!alnum && (i == 0 || !strchr("._-", c))) return false;
  }
  return true;
}

/* True when text is printable ASCII without spaces (a URL as the node's fetcher takes it). */
static bool url_chars_valid(const char *text) {
  for (const char *p = text; *p; p++)
    if (*p <= ' ' || *p >= 0x7f) return false;
  return true;
}

static bool has_control_chars(const char *text) {
  for (const unsigned char *p = (const unsigned char *)text; *p; p++)
    if (*p < 0x20 || *p == 0x7f) return true;
  return false;
}

static int32_t read_settings(os_state *s) {
  const ep_host *h = s->host;
  const char *sha = NULL;
  if (h->setting_string(s->ctx, "profile", &s->profile) < 0 || !profile_name_valid(s->profile))
    return ep_failf(h, s->ctx, EP_EINVAL,
                    "setting 'profile': '%.63s' is not a profile name (a lower-case letter or digit, then letters, "
                    "digits, '.', '_' or '-'; at most 63)",
                    s->profile ? s->profile : "");
  if (h->setting_string(s->ctx, "image_url", &s->image_url) < 0)
    return ep_failf(h, s->ctx, EP_EINVAL, "setting 'image_url' is required");
  bool scheme = strncmp(s->image_url, "http://", 7) == 0 || strncmp(s->image_url, "https://", 8) == 0 ||
                strncmp(s->image_url, "file://", 7) == 0;
  if (!scheme || !strstr(s->image_url, "://")[3] || !url_chars_valid(s->image_url))
    return ep_failf(h, s->ctx, EP_EINVAL,
                    "setting 'image_url': '%.200s' is not an http://, https:// or file:// URL (no spaces or control "
                    "characters)",
                    s->image_url);
  if (h->setting_string(s->ctx, "image_sha256", &sha) < 0)
    return ep_failf(h, s->ctx, EP_EINVAL, "setting 'image_sha256' is required");
  size_t len = strlen(sha);
  bool hex = len == 64;
  for (size_t i = 0; hex && i < len; i++) {
    char c = sha[i];
    if (c >= 'A' && c <= 'F') c = (char)(c - 'A' + 'a');
    hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
    s->image_sha256[i] = c;
  }
  if (!hex)
    return ep_failf(h, s->ctx, EP_EINVAL,
                    "setting 'image_sha256': expected 64 hexadecimal digits (sha256sum of the decompressed image), "
                    "got %zu characters",
                    len);
  s->image_sha256[64] = '\0';
  if (h->setting_string(s->ctx, "image_format", &s->image_format) < 0 ||
      (strcmp(s->image_format, "auto") && strcmp(s->image_format, "raw") && strcmp(s->image_format, "zstd") &&
       strcmp(s->image_format, "gzip")))
    return ep_failf(h, s->ctx, EP_EINVAL, "setting 'image_format': '%.8s' is not auto, raw, zstd or gzip",
                    s->image_format ? s->image_format : "");
  if (h->setting_string(s->ctx, "description", &s->description) < 0 || has_control_chars(s->description))
    return ep_failf(h, s->ctx, EP_EINVAL, "setting 'description': must be one line of text");
  if (h->setting_bool(s->ctx, "fde", &s->fde) < 0)
    return ep_failf(h, s->ctx, EP_EINVAL, "setting 'fde' is unavailable");
  return 0;
}

/* ---- the template --------------------------------------------------------------------------------- */

static bool action_name_valid(const char *name) {
  size_t len = strlen(name);
  bool start = true, dot = false;
  if (len == 0 || len > 63) return false;
  for (size_t i = 0; i < len; i++) {
    char c = name[i];
    if (c == '.') {
      if (start) return false;
      start = dot = true;
    } else if ((c >= 'a' && c <= 'z') || (!start && ((c >= '0' && c <= '9') || c == '_'))) {
      start = false;
    } else {
      return false;
    }
  }
  return dot && !start;
}

static bool is_int(const config_setting_t *v) {
  return config_setting_type(v) == CONFIG_TYPE_INT || config_setting_type(v) == CONFIG_TYPE_INT64;
}

/* Checks one entry: { action = "group.verb"; timeout_s = N; retries = N; params = { k = "v"; }; },
 * as the core renders it (timeout_s 1..86400 and retries 0..100, both optional; parameter values
 * strings, integers or booleans), refusing keys the core would silently ignore. */
static int32_t check_entry(os_state *s, const char *what, const config_setting_t *e, int i) {
  const ep_host *h = s->host;
  if (!config_setting_is_group(e))
    return ep_failf(h, s->ctx, EP_EINVAL, "%s: line %d: actions[%d]: expected a group { action = ...; }", what,
                    config_setting_source_line(e), i);
  const char *name = NULL;
  if (!config_setting_lookup_string(e, "action", &name) || !action_name_valid(name))
    return ep_failf(h, s->ctx, EP_EINVAL, "%s: line %d: actions[%d]: 'action' must be an action name (\"group.verb\")",
                    what, config_setting_source_line(e), i);
  for (int k = 0; k < config_setting_length(e); k++) {
    const config_setting_t *m = config_setting_get_elem(e, (unsigned)k);
    const char *key = config_setting_name(m);
    int line = config_setting_source_line(m);
    long long v = is_int(m) ? config_setting_get_int64(m) : 0;
    if (strcmp(key, "action") == 0) continue;
    if (strcmp(key, "timeout_s") == 0) {
      if (!is_int(m) || v < 1 || v > 86400)
        return ep_failf(h, s->ctx, EP_EINVAL, "%s: line %d: actions[%d] (%s): timeout_s must be an integer 1..86400", what,
                        line, i, name);
    } else if (strcmp(key, "retries") == 0) {
      if (!is_int(m) || v < 0 || v > 100)
        return ep_failf(h, s->ctx, EP_EINVAL, "%s: line %d: actions[%d] (%s): retries must be an integer 0..100", what, line,
                        i, name);
    } else if (strcmp(key, "params") == 0) {
      if (!config_setting_is_group(m))
        return ep_failf(h, s->ctx, EP_EINVAL, "%s: line %d: actions[%d] (%s): params must be a group { name = \"value\"; }",
                        what, line, i, name);
      for (int p = 0; p < config_setting_length(m); p++) {
        const config_setting_t *pv = config_setting_get_elem(m, (unsigned)p);
        int type = config_setting_type(pv);
        if (type != CONFIG_TYPE_STRING && type != CONFIG_TYPE_BOOL && !is_int(pv))
          return ep_failf(h, s->ctx, EP_EINVAL,
                          "%s: line %d: actions[%d] (%s): params.%s must be a string, integer or boolean", what,
                          config_setting_source_line(pv), i, name, config_setting_name(pv));
      }
    } else {
      return ep_failf(h, s->ctx, EP_EINVAL,
                      "%s: line %d: actions[%d] (%s): unknown key '%s' (an action has action, timeout_s, retries, params)",
                      what, line, i, name, key);
    }
  }
  return 0;
}

/* Checks text against the template format; what names it in messages. */
static int32_t check_template(os_state *s, const char *what, const char *text) {
  config_t lc;
  config_init(&lc);
  int32_t r = 0;
  if (config_read_string(&lc, text) != CONFIG_TRUE) {
    r = ep_failf(s->host, s->ctx, EP_EINVAL, "%s: line %d: %s", what, config_error_line(&lc), config_error_text(&lc));
    goto done;
  }
  const config_setting_t *root = config_root_setting(&lc);
  for (int i = 0; i < config_setting_length(root); i++) {
    const config_setting_t *m = config_setting_get_elem(root, (unsigned)i);
    if (strcmp(config_setting_name(m), "actions") != 0) {
      r = ep_failf(s->host, s->ctx, EP_EINVAL, "%s: line %d: unknown key '%s' (a template holds only 'actions')", what,
                   config_setting_source_line(m), config_setting_name(m));
      goto done;
    }
  }
  const config_setting_t *actions = config_lookup(&lc, "actions");
  int n = actions ? config_setting_length(actions) : 0;
  if (!actions || !config_setting_is_list(actions) || n < 1 || n > EP_OS_TEMPLATE_ACTIONS_MAX) {
    r = ep_failf(s->host, s->ctx, EP_EINVAL, "%s: 'actions' must be a list ( {...}, ... ) of 1 to %d actions", what,
                 EP_OS_TEMPLATE_ACTIONS_MAX);
    goto done;
  }
  for (int i = 0; r == 0 && i < n; i++) r = check_entry(s, what, config_setting_get_elem(actions, (unsigned)i), i);
done:
  config_destroy(&lc);
  return r;
}

/* Reads the site's template file (a regular file of at most EP_OS_TEMPLATE_MAX bytes, text). */
static int32_t read_template_file(os_state *s, const char *path) {
  const ep_host *h = s->host;
  if (path[0] != '/')
    return ep_failf(h, s->ctx, EP_EINVAL, "setting 'template_file': '%s' is not an absolute path", path);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) < 0) {
    int err = errno;
    if (fd >= 0) close(fd);
    return ep_failf(h, s->ctx, err == ENOENT ? EP_ENOENT : EP_EIO, "setting 'template_file': cannot read %s: %s", path,
                    strerror(err));
  }
  int32_t r = 0;
  if (!S_ISREG(st.st_mode))
    r = ep_failf(h, s->ctx, EP_EINVAL, "setting 'template_file': %s is not a regular file", path);
  else if (st.st_size > EP_OS_TEMPLATE_MAX)
    r = ep_failf(h, s->ctx, EP_ERANGE, "setting 'template_file': %s is larger than %d bytes", path, EP_OS_TEMPLATE_MAX);
  else if (!(s->file_text = h->alloc(s->ctx, (uint64_t)st.st_size + 1)))
    r = ep_failf(h, s->ctx, EP_ENOMEM, "out of memory");
  size_t len = 0;
  while (r == 0 && len < (size_t)st.st_size) {
    ssize_t n = read(fd, s->file_text + len, (size_t)st.st_size - len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0)
      r = ep_failf(h, s->ctx, EP_EIO, "setting 'template_file': cannot read %s: %s", path,
                   n ? strerror(errno) : "it shrank while read");
    else
      len += (size_t)n;
  }
  close(fd);
  if (r < 0) return r;
  s->file_text[len] = '\0';
  if (strlen(s->file_text) != len)
    return ep_failf(h, s->ctx, EP_EINVAL, "setting 'template_file': %s holds a NUL byte: not a text file", path);
  return 0;
}

/* ---- edgeprov.os/1 ----------------------------------------------------------------------------- */

static int32_t has_profile(os_state *s, const char *profile) {
  if (profile && strcmp(profile, s->profile) == 0) return 0;
  return ep_failf(s->host, s->ctx, EP_ENOENT, "no OS profile '%.63s' here (this plugin offers '%s')",
                  profile ? profile : "(null)", s->profile);
}

static int32_t os_profiles(void *state, ep_os_profile_fn visit, void *data) {
  os_state *s = state;
  ep_os_profile p = {.struct_size = sizeof p,
                     .name = s->profile,
                     .os_type = s->def->os_type,
                     .image_url = s->image_url,
                     .image_sha256 = s->image_sha256,
                     .image_format = s->image_format,
                     .description = s->description,
                     .template_file = s->template_file,
                     .fde = s->fde != 0};
  return visit ? visit(data, &p) : 0;
}

static int32_t os_workflow_template(void *state, const char *profile, ep_os_text_fn visit, void *data) {
  os_state *s = state;
  int32_t r = has_profile(s, profile);
  return r < 0 ? r : visit ? visit(data, s->template_text) : 0;
}

static int32_t os_cloudinit_fragments(void *state, const char *profile, ep_os_text_fn visit, void *data) {
  os_state *s = state;
  int32_t r = has_profile(s, profile);
  for (size_t i = 0; r == 0 && visit && s->def->fragments && s->def->fragments[i]; i++)
    r = visit(data, s->def->fragments[i]);
  return r;
}

static const ep_os os_table = {
    .struct_size = sizeof(ep_os),
    .profiles = os_profiles,
    .workflow_template = os_workflow_template,
    .cloudinit_fragments = os_cloudinit_fragments,
};

/* ---- the plugin ---------------------------------------------------------------------------------- */

void ep_os_image_deinit(void *state) {
  os_state *s = state;
  if (!s) return;
  s->host->free(s->ctx, s->file_text);
  s->host->free(s->ctx, s);
}

int32_t ep_os_image_init(const ep_os_image_def *def, const ep_host *host, ep_ctx *ctx, void **ret_state) {
  os_state *s = host->alloc(ctx, sizeof *s);
  if (!s) return ep_failf(host, ctx, EP_ENOMEM, "out of memory");
  memset(s, 0, sizeof *s);
  s->host = host;
  s->ctx = ctx;
  s->def = def;
  const char *template_file = NULL;
  int32_t r = read_settings(s);
  if (r == 0 && host->setting_string(ctx, "template_file", &template_file) < 0)
    r = ep_failf(host, ctx, EP_EINVAL, "setting 'template_file' is unavailable");
  if (r == 0 && *template_file) {
    char what[1100];
    snprintf(what, sizeof what, "setting 'template_file': %s", template_file);
    r = read_template_file(s, template_file);
    if (r == 0) r = check_template(s, what, s->file_text);
    s->template_text = s->file_text;
    s->template_file = template_file;
  } else if (r == 0) {
    r = check_template(s, "the built-in template", def->builtin_template);
    s->template_text = def->builtin_template;
  }
  if (r < 0) {
    ep_os_image_deinit(s);
    return r;
  }
  *ret_state = s;
  return 0;
}

const void *ep_os_image_capability(void *state, const char *capability_id) {
  (void)state;
  return strcmp(capability_id, EP_CAP_OS) == 0 ? &os_table : NULL;
}
