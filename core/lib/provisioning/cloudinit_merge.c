/* core: site cloud-config fragments merged into edgeprov's user-data, see cloudinit_merge.h.
 *
 * Fragments are operator input (site configuration) and may run commands as root on the
 * node; the merge rules keep them from replacing what edgeprov sets by accident (host name,
 * credentials, agent.conf, CA), they are not a sandbox. */
#include "provisioning/cloudinit_merge.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "provisioning/cloudinit_limits.h"

/* Parses fragment index into a tree (a mapping). */
static int fragment_load(ep_ci_node **out, size_t index, const char *text) {
  char what[32];
  snprintf(what, sizeof what, "fragments[%zu]", index);
  if (!text) return ep_error_set(EP_EINVAL, "%s: NULL", what);
  size_t len = strnlen(text, EP_CLOUDINIT_FRAGMENT_MAX + 1);
  if (len > EP_CLOUDINIT_FRAGMENT_MAX)
    return ep_error_set(EP_ERANGE, "%s: longer than %d bytes", what, EP_CLOUDINIT_FRAGMENT_MAX);
  return ep_ci_load(out, what, (int)index, text, len);
}

/* Whether path, taken from / with '.', '..' and repeated '/' resolved, is /etc/edgeprov or
 * below it. */
static bool under_edgeprov(const char *path, size_t len) {
  char *norm = malloc(len + 2);
  if (!norm) return true; /* refuse rather than guess */
  size_t n = 0;
  for (size_t i = 0; i < len;) {
    size_t start = i;
    while (i < len && path[i] != '/') i++;
    size_t c = i - start;
    if (c == 0 || (c == 1 && path[start] == '.')) {
      /* nothing */
    } else if (c == 2 && path[start] == '.' && path[start + 1] == '.') {
      while (n > 0 && norm[n - 1] != '/') n--;
      if (n > 0) n--;
    } else {
      norm[n++] = '/';
      memcpy(norm + n, path + start, c);
      n += c;
    }
    if (i < len) i++;
  }
  static const char dir[] = "/etc/edgeprov";
  size_t dir_len = sizeof dir - 1;
  bool under = n >= dir_len && !memcmp(norm, dir, dir_len) && (n == dir_len || norm[dir_len] == '/');
  free(norm);
  return under;
}

/* Keys a fragment may not set at the top, besides those edgeprov sets itself. */
static int fragment_policy(size_t index, const ep_ci_node *frag) {
  static const char *const hostname_keys[] = {"fqdn", "prefer_fqdn_over_hostname"};
  for (size_t i = 0; i < sizeof hostname_keys / sizeof hostname_keys[0]; i++)
    if (ep_ci_map_get(frag, hostname_keys[i], strlen(hostname_keys[i])))
      return ep_error_set(EP_EINVAL, "fragments[%zu]: '%s' would change the host name edgeprov sets; leave it out", index,
                          hostname_keys[i]);
  if (ep_ci_map_get(frag, "ca-certs", 8))
    return ep_error_set(EP_EINVAL,
                        "fragments[%zu]: 'ca-certs' is the deprecated spelling that cloud-init ignores next to "
                        "edgeprov's ca_certs; use 'ca_certs' (its trusted list is appended to)",
                        index);
  const ep_ci_node *files = ep_ci_map_get(frag, "write_files", 11);
  for (size_t i = 0; files && files->kind == EP_CI_SEQ && i < files->count; i++) {
    const ep_ci_node *item = files->items[i];
    const ep_ci_node *path = item->kind == EP_CI_MAP ? ep_ci_map_get(item, "path", 4) : NULL;
    if (!path || path->kind != EP_CI_SCALAR || !path->len)
      return ep_error_set(EP_EINVAL, "fragments[%zu]: write_files[%zu]: expected a mapping with a path", index, i);
    if (under_edgeprov(path->text, path->len))
      return ep_error_set(EP_EINVAL, "fragments[%zu]: write_files[%zu].path: under /etc/edgeprov, which edgeprov writes",
                          index, i);
  }
  return 0;
}

/* Merges the mapping src (fragment index) into dst, taking src's children. */
static int merge_map(ep_ci_node *dst, ep_ci_node *src, size_t index, const char *path) {
  for (size_t i = 0; i + 1 < src->count; i += 2) {
    ep_ci_node *k = src->items[i], *v = src->items[i + 1];
    ep_ci_node *have = ep_ci_map_get(dst, k->text, k->len);
    char where[EP_CI_KEY_PATH_MAX];
    ep_ci_key_path(where, path, k);
    if (!have) {
      if (dst->count / 2 >= EP_CLOUDINIT_KEYS_MAX)
        return ep_error_set(EP_ERANGE, "fragments[%zu]: '%s': more than %d keys in one mapping, fragments merged", index,
                            where, EP_CLOUDINIT_KEYS_MAX);
      if (ep_ci_reserve(dst, 2) < 0) return ep_error_set(EP_ENOMEM, "fragments[%zu]: out of memory", index);
      dst->items[dst->count++] = k;
      dst->items[dst->count++] = v;
      src->items[i] = src->items[i + 1] = NULL;
    } else if (have->kind == EP_CI_MAP && v->kind == EP_CI_MAP) {
      int r = merge_map(have, v, index, where);
      if (r < 0) return r;
    } else if (have->kind == EP_CI_SEQ && v->kind == EP_CI_SEQ) {
      if (ep_ci_reserve(have, v->count) < 0) return ep_error_set(EP_ENOMEM, "fragments[%zu]: out of memory", index);
      if (v->count) memcpy(have->items + have->count, v->items, v->count * sizeof *v->items);
      have->count += v->count;
      v->count = 0;
    } else {
      char by[32];
      if (have->origin == EP_CI_ORIGIN_EDGEPROV) snprintf(by, sizeof by, "edgeprov");
      else snprintf(by, sizeof by, "fragments[%d]", have->origin);
      if (have->kind == EP_CI_SCALAR && v->kind == EP_CI_SCALAR)
        return ep_error_set(EP_EINVAL, "fragments[%zu]: '%s' is set by %s", index, where, by);
      return ep_error_set(EP_EINVAL,
                          "fragments[%zu]: '%s' is a %s here and a %s in %s; only sequences (appended) and "
                          "mappings (merged) combine",
                          index, where, ep_ci_kind_name(v->kind), ep_ci_kind_name(have->kind), by);
    }
  }
  return 0;
}

int ep_ci_merge_fragment(ep_ci_node *doc, size_t index, const char *text) {
  ep_ci_node *frag = NULL;
  int r = fragment_load(&frag, index, text);
  if (r == 0) r = fragment_policy(index, frag);
  if (r == 0) r = merge_map(doc, frag, index, "");
  ep_ci_node_free(frag);
  return r;
}
