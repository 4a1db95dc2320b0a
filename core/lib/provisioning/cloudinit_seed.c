/* core: reading a node's NoCloud user-data back (the agent on an OS without cloud-init), see
 * ep_cloudinit_seed_read in cloudinit.h. */
#define _DEFAULT_SOURCE /* explicit_bzero, strdup */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "provisioning/cloudinit.h"
#include "provisioning/cloudinit_check.h"
#include "provisioning/cloudinit_yaml.h"

/* The scalar child key of map, as a NUL-terminated string without embedded NULs, or NULL. */
static const char *scalar_at(const ep_ci_node *map, const char *key) {
  const ep_ci_node *v = map && map->kind == EP_CI_MAP ? ep_ci_map_get(map, key, strlen(key)) : NULL;
  return v && v->kind == EP_CI_SCALAR && strlen(v->text) == v->len ? v->text : NULL;
}

/* The content of the write_files entry whose path is path, or NULL. */
static const char *written_file(const ep_ci_node *files, const char *path) {
  for (size_t i = 0; files && files->kind == EP_CI_SEQ && i < files->count; i++) {
    const char *p = scalar_at(files->items[i], "path");
    if (p && !strcmp(p, path)) return scalar_at(files->items[i], "content");
  }
  return NULL;
}

/* Copies the value of the "key=" line of a key=value file into out (cap bytes): 1 when found,
 * 0 when not, EP_ERANGE when longer. */
static int key_value(char *out, size_t cap, const char *file, const char *key, const char *field) {
  size_t klen = strlen(key);
  for (const char *line = file; *line;) {
    size_t n = strcspn(line, "\n");
    if (n > klen && !memcmp(line, key, klen) && line[klen] == '=') {
      if (n - klen - 1 >= cap) return ep_error_set(EP_ERANGE, "user-data: %s: longer than %zu bytes", field, cap - 1);
      memcpy(out, line + klen + 1, n - klen - 1);
      out[n - klen - 1] = '\0';
      return 1;
    }
    line += n;
    if (*line) line++;
  }
  return 0;
}

static int seed_fields(ep_cloudinit_seed *out, const ep_ci_node *doc) {
  const char *host = scalar_at(doc, "hostname");
  if (!host) return ep_error_set(EP_EINVAL, "user-data: hostname: missing (not written by edgeprov?)");
  int r = ep_ci_check_hostname("user-data: hostname", host);
  if (r < 0) return r;
  snprintf(out->hostname, sizeof out->hostname, "%s", host);

  const ep_ci_node *ca = ep_ci_map_get(doc, "ca_certs", 8);
  const ep_ci_node *trusted = ca && ca->kind == EP_CI_MAP ? ep_ci_map_get(ca, "trusted", 7) : NULL;
  const ep_ci_node *first = trusted && trusted->kind == EP_CI_SEQ && trusted->count ? trusted->items[0] : NULL;
  if (!first || first->kind != EP_CI_SCALAR || strlen(first->text) != first->len)
    return ep_error_set(EP_EINVAL, "user-data: ca_certs.trusted[0]: missing (the orchestrator CA)");
  if ((r = ep_ci_check_pem("user-data: ca_certs.trusted[0]", first->text)) < 0) return r;
  if (!(out->ca_pem = strdup(first->text))) return ep_error_set(EP_ENOMEM, "user-data: out of memory");

  const ep_ci_node *files = ep_ci_map_get(doc, "write_files", 11);
  const char *credentials = written_file(files, EP_CLOUDINIT_CREDENTIALS_PATH);
  const char *conf = written_file(files, EP_CLOUDINIT_AGENT_CONF_PATH);
  if (!credentials) return ep_error_set(EP_EINVAL, "user-data: write_files: no %s", EP_CLOUDINIT_CREDENTIALS_PATH);
  if (!conf) return ep_error_set(EP_EINVAL, "user-data: write_files: no %s", EP_CLOUDINIT_AGENT_CONF_PATH);
  struct {
    const char *file, *key, *field;
    char *out;
    size_t cap;
    bool required;
  } wanted[] = {
      {credentials, "client_id", "credentials: client_id", out->client_id, sizeof out->client_id, true},
      {credentials, "client_secret", "credentials: client_secret", out->client_secret, sizeof out->client_secret, true},
      {credentials, "project_id", "credentials: project_id", out->project_id, sizeof out->project_id, false},
      {conf, "orchestrator", "agent.conf: orchestrator", out->orchestrator, sizeof out->orchestrator, true},
      {conf, "token_url", "agent.conf: token_url", out->token_url, sizeof out->token_url, false},
  };
  for (size_t i = 0; i < sizeof wanted / sizeof wanted[0]; i++) {
    if ((r = key_value(wanted[i].out, wanted[i].cap, wanted[i].file, wanted[i].key, wanted[i].field)) < 0) return r;
    if (r == 0 && wanted[i].required) return ep_error_set(EP_EINVAL, "user-data: %s: missing", wanted[i].field);
  }
  if ((r = ep_ci_check_credential("user-data: credentials: client_id", out->client_id, true)) < 0 ||
      (r = ep_ci_check_credential("user-data: credentials: client_secret", out->client_secret, true)) < 0 ||
      (r = ep_ci_check_credential("user-data: credentials: project_id", out->project_id, false)) < 0 ||
      (r = ep_ci_check_orchestrator(out->orchestrator)) < 0 ||
      (r = ep_ci_check_token_url(out->token_url[0] ? out->token_url : NULL)) < 0)
    return r;
  return 0;
}

int ep_cloudinit_seed_read(ep_cloudinit_seed *out, const char *user_data, size_t len) {
  static const char header[] = "#cloud-config\n";
  if (!out || !user_data) return ep_error_set(EP_EINVAL, "user-data: NULL argument");
  memset(out, 0, sizeof *out);
  if (len > EP_CLOUDINIT_MAX) return ep_error_set(EP_ERANGE, "user-data: longer than %d bytes", EP_CLOUDINIT_MAX);
  if (len < sizeof header - 1 || memcmp(user_data, header, sizeof header - 1))
    return ep_error_set(EP_EINVAL, "user-data: does not start with #cloud-config");
  ep_ci_node *doc = NULL;
  int r = ep_ci_load(&doc, "user-data", EP_CI_ORIGIN_EDGEPROV, user_data, len);
  if (r == 0) r = seed_fields(out, doc);
  ep_ci_node_free(doc);
  if (r < 0) ep_cloudinit_seed_clear(out);
  return r;
}

void ep_cloudinit_seed_clear(ep_cloudinit_seed *seed) {
  if (!seed) return;
  free(seed->ca_pem);
  explicit_bzero(seed, sizeof *seed);
}
