/* core: cloud-init NoCloud seed rendering, see cloudinit.h: the spec is checked
 * (cloudinit_check.c), edgeprov's part of the document is built as a tree (cloudinit_yaml.c),
 * the site's fragments are merged in (cloudinit_merge.c) and the tree is emitted.
 *
 * users: the site's accounts only. The image's default user ("default" in cloud-init's list)
 * is not added: it would be an account without keys; a fragment may append "default". With
 * no users the key is left out and cloud-init creates the image's default user as usual. */
#define _DEFAULT_SOURCE /* explicit_bzero */
#include "provisioning/cloudinit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "provisioning/cloudinit_check.h"
#include "provisioning/cloudinit_merge.h"
#include "provisioning/cloudinit_yaml.h"

#define SUDO_RULE "ALL=(ALL) NOPASSWD:ALL"
#define DEFAULT_SHELL "/bin/bash"
#define FIELD_MAX 64 /* longest field name in a message: "users[63].ssh_keys[63]" */

/* ---- Checking the spec -------------------------------------------------------------------- */

static int check_users(const ep_cloudinit_spec *s) {
  if (s->user_count > EP_CLOUDINIT_USERS_MAX)
    return ep_error_set(EP_ERANGE, "users: %zu given; at most %d", s->user_count, EP_CLOUDINIT_USERS_MAX);
  if (s->user_count && !s->users) return ep_error_set(EP_EINVAL, "users: NULL with user_count %zu", s->user_count);
  char field[FIELD_MAX];
  for (size_t i = 0; i < s->user_count; i++) {
    const ep_cloudinit_user *u = &s->users[i];
    snprintf(field, sizeof field, "users[%zu].name", i);
    int r = ep_ci_check_user_name(field, u->name);
    if (r < 0) return r;
    for (size_t j = 0; j < i; j++)
      if (!strcmp(s->users[j].name, u->name))
        return ep_error_set(EP_EINVAL, "%s: '%s' is already users[%zu]", field, u->name, j);
    snprintf(field, sizeof field, "users[%zu].shell", i);
    if (u->shell && (r = ep_ci_check_shell(field, u->shell)) < 0) return r;
    if (u->ssh_key_count > EP_CLOUDINIT_SSH_KEYS_MAX)
      return ep_error_set(EP_ERANGE, "users[%zu].ssh_keys: %zu given; at most %d", i, u->ssh_key_count,
                          EP_CLOUDINIT_SSH_KEYS_MAX);
    if (u->ssh_key_count && !u->ssh_keys)
      return ep_error_set(EP_EINVAL, "users[%zu].ssh_keys: NULL with ssh_key_count %zu", i, u->ssh_key_count);
    for (size_t k = 0; k < u->ssh_key_count; k++) {
      snprintf(field, sizeof field, "users[%zu].ssh_keys[%zu]", i, k);
      if ((r = ep_ci_check_ssh_key(field, u->ssh_keys[k])) < 0) return r;
    }
  }
  return 0;
}

static int check_spec(const ep_cloudinit_spec *s) {
  int r;
  if ((r = ep_ci_check_instance_id(s->instance_id)) < 0 || (r = ep_ci_check_hostname("hostname", s->hostname)) < 0 ||
      (r = ep_ci_check_pem("ca_pem", s->ca_pem)) < 0 ||
      (r = ep_ci_check_credential("client_id", s->client_id, true)) < 0 ||
      (r = ep_ci_check_credential("client_secret", s->client_secret, true)) < 0 ||
      (r = ep_ci_check_credential("project_id", s->project_id, false)) < 0 ||
      (r = ep_ci_check_orchestrator(s->orchestrator)) < 0 || (r = ep_ci_check_token_url(s->token_url)) < 0 ||
      (r = check_users(s)) < 0)
    return r;
  if (s->fragment_count > EP_CLOUDINIT_FRAGMENTS_MAX)
    return ep_error_set(EP_ERANGE, "fragments: %zu given; at most %d", s->fragment_count, EP_CLOUDINIT_FRAGMENTS_MAX);
  if (s->fragment_count && !s->fragments)
    return ep_error_set(EP_EINVAL, "fragments: NULL with fragment_count %zu", s->fragment_count);
  return 0;
}

/* ---- The documents ------------------------------------------------------------------------ */

static ep_ci_node *write_file(ep_ci_build *b, const char *path, const char *content, const char *permissions) {
  ep_ci_node *f = ep_ci_node_new(b, EP_CI_MAP);
  ep_ci_put(b, f, "path", ep_ci_str(b, path));
  ep_ci_put(b, f, "content", ep_ci_str(b, content));
  ep_ci_put(b, f, "owner", ep_ci_str(b, "root:root"));
  ep_ci_put(b, f, "permissions", ep_ci_str(b, permissions));
  ep_ci_put(b, f, "defer", ep_ci_bool(b, false));
  return f;
}

static ep_ci_node *user_node(ep_ci_build *b, const ep_cloudinit_user *u) {
  ep_ci_node *m = ep_ci_node_new(b, EP_CI_MAP);
  ep_ci_put(b, m, "name", ep_ci_str(b, u->name));
  ep_ci_put(b, m, "lock_passwd", ep_ci_bool(b, true));
  ep_ci_put(b, m, "shell", ep_ci_str(b, u->shell ? u->shell : DEFAULT_SHELL));
  if (u->sudo) ep_ci_put(b, m, "sudo", ep_ci_str(b, SUDO_RULE));
  if (u->ssh_key_count) {
    ep_ci_node *keys = ep_ci_node_new(b, EP_CI_SEQ);
    for (size_t k = 0; k < u->ssh_key_count; k++) ep_ci_add(b, keys, ep_ci_str(b, u->ssh_keys[k]));
    ep_ci_put(b, m, "ssh_authorized_keys", keys);
  }
  return m;
}

/* edgeprov's own part of the user-data. */
static int user_data_tree(ep_ci_node **out, const ep_cloudinit_spec *s) {
  /* Key=value files the node reads; values were checked to be printable ASCII. */
  char credentials[3 * (EP_CLOUDINIT_CREDENTIAL_MAX + 16)];
  char agent_conf[EP_CLOUDINIT_ORCHESTRATOR_MAX + EP_CLOUDINIT_TOKEN_URL_MAX + 32];
  snprintf(credentials, sizeof credentials, "client_id=%s\nclient_secret=%s\nproject_id=%s\n", s->client_id,
           s->client_secret, s->project_id ? s->project_id : "");
  snprintf(agent_conf, sizeof agent_conf, "orchestrator=%s\n%s%s%s", s->orchestrator, s->token_url ? "token_url=" : "",
           s->token_url ? s->token_url : "", s->token_url ? "\n" : "");

  ep_ci_build b = {.origin = EP_CI_ORIGIN_EDGEPROV};
  ep_ci_node *doc = ep_ci_node_new(&b, EP_CI_MAP);
  ep_ci_put(&b, doc, "hostname", ep_ci_str(&b, s->hostname));
  ep_ci_put(&b, doc, "preserve_hostname", ep_ci_bool(&b, false));
  ep_ci_put(&b, doc, "ssh_pwauth", ep_ci_bool(&b, false));
  ep_ci_node *ca = ep_ci_node_new(&b, EP_CI_MAP), *trusted = ep_ci_node_new(&b, EP_CI_SEQ);
  ep_ci_add(&b, trusted, ep_ci_str(&b, s->ca_pem));
  ep_ci_put(&b, ca, "trusted", trusted);
  ep_ci_put(&b, doc, "ca_certs", ca);
  if (s->user_count) {
    ep_ci_node *users = ep_ci_node_new(&b, EP_CI_SEQ);
    for (size_t i = 0; i < s->user_count; i++) ep_ci_add(&b, users, user_node(&b, &s->users[i]));
    ep_ci_put(&b, doc, "users", users);
  }
  ep_ci_node *files = ep_ci_node_new(&b, EP_CI_SEQ);
  ep_ci_add(&b, files, write_file(&b, EP_CLOUDINIT_CREDENTIALS_PATH, credentials, "0600"));
  ep_ci_add(&b, files, write_file(&b, EP_CLOUDINIT_AGENT_CONF_PATH, agent_conf, "0644"));
  ep_ci_put(&b, doc, "write_files", files);
  explicit_bzero(credentials, sizeof credentials);
  if (b.oom) {
    ep_ci_node_free(doc);
    return ep_error_set(EP_ENOMEM, "cloud-init user-data: out of memory");
  }
  *out = doc;
  return 0;
}

/* ---- API ---------------------------------------------------------------------------------- */

int ep_cloudinit_user_data(char **out, size_t *ret_len, const ep_cloudinit_spec *spec) {
  if (!out || !ret_len || !spec) return ep_error_set(EP_EINVAL, "cloud-init user-data: NULL argument");
  int r = check_spec(spec);
  if (r < 0) return r;
  ep_ci_node *doc = NULL;
  if ((r = user_data_tree(&doc, spec)) < 0) return r;
  for (size_t i = 0; i < spec->fragment_count && r == 0; i++) r = ep_ci_merge_fragment(doc, i, spec->fragments[i]);
  if (r == 0) r = ep_ci_render(out, ret_len, "cloud-init user-data", "#cloud-config\n", doc);
  ep_ci_node_free(doc);
  return r;
}

int ep_cloudinit_meta_data(char **out, size_t *ret_len, const ep_cloudinit_spec *spec) {
  if (!out || !ret_len || !spec) return ep_error_set(EP_EINVAL, "cloud-init meta-data: NULL argument");
  int r;
  if ((r = ep_ci_check_instance_id(spec->instance_id)) < 0 || (r = ep_ci_check_hostname("hostname", spec->hostname)) < 0)
    return r;
  ep_ci_build b = {.origin = EP_CI_ORIGIN_EDGEPROV};
  ep_ci_node *doc = ep_ci_node_new(&b, EP_CI_MAP);
  ep_ci_put(&b, doc, "instance-id", ep_ci_str(&b, spec->instance_id));
  ep_ci_put(&b, doc, "local-hostname", ep_ci_str(&b, spec->hostname));
  if (b.oom) r = ep_error_set(EP_ENOMEM, "cloud-init meta-data: out of memory");
  else r = ep_ci_render(out, ret_len, "cloud-init meta-data", "", doc);
  ep_ci_node_free(doc);
  return r;
}

void ep_cloudinit_free(char *text) {
  if (!text) return;
  explicit_bzero(text, strlen(text));
  free(text);
}
