/* core: cloud-init NoCloud seed (user-data, meta-data) for a node, emitted with libyaml. */
#ifndef EP_CORE_CLOUDINIT_H
#define EP_CORE_CLOUDINIT_H

#include <stdbool.h>
#include <stddef.h>

#include "provisioning/cloudinit_limits.h" /* EP_CLOUDINIT_*_MAX, the paths edgeprov writes */

/* A login account created on the node (cloud-config users). */
typedef struct ep_cloudinit_user {
  const char *name;                /* [a-z_][a-z0-9_-]{0,31}, not "root" or "default" */
  const char *const *ssh_keys;     /* authorized_keys lines: "<type> <base64> [comment]", printable ASCII */
  size_t ssh_key_count;            /* 0: no keys (the password stays locked) */
  bool sudo;                       /* true: "ALL=(ALL) NOPASSWD:ALL" */
  const char *shell;               /* absolute path; NULL: /bin/bash */
} ep_cloudinit_user;

/* What a node's seed is made of. Strings are NUL-terminated and borrowed for the call. */
typedef struct ep_cloudinit_spec {
  const char *instance_id;         /* required, [A-Za-z0-9._-]{1,64} (a UUID in practice) */
  const char *hostname;            /* required, RFC 1123 labels (1-63 each, 253 in all) */
  const char *ca_pem;              /* required, orchestrator CA: one or more PEM CERTIFICATE blocks */
  const char *client_id;           /* required, printable ASCII without spaces */
  const char *client_secret;       /* required, idem; a secret, never in an error message */
  const char *project_id;          /* idem; NULL or "" writes an empty project_id */
  const char *orchestrator;        /* required, host:port of the southbound gRPC ([v6]:port too) */
  const char *token_url;           /* https://...; NULL: the agent derives it from orchestrator */
  const ep_cloudinit_user *users;  /* accounts with SSH keys; none: the image's default user */
  size_t user_count;
  const char *const *fragments;    /* site cloud-config fragments (YAML mappings), merged in order */
  size_t fragment_count;
} ep_cloudinit_spec;

/* Renders NoCloud user-data: "#cloud-config\n" then one YAML mapping (hostname,
 * preserve_hostname: false, ssh_pwauth: false, ca_certs.trusted, users, write_files with the
 * credentials file 0600 and agent.conf 0644), then the fragments merged in: sequences on both
 * sides get the fragment's items appended, mappings merge key by key, any other key set on
 * both sides is refused. On success *out holds ret_len bytes plus a NUL (malloc'd, release
 * with ep_cloudinit_free: it holds the client secret). EP_EINVAL (message names the field,
 * e.g. "users[0].ssh_keys[1]: ...", "fragments[1]: 'hostname' is set by edgeprov"),
 * EP_ERANGE past a limit above, EP_ENOMEM. Any thread; out untouched on failure. */
int ep_cloudinit_user_data(char **out, size_t *ret_len, const ep_cloudinit_spec *spec);

/* Renders NoCloud meta-data (instance-id, local-hostname) from spec->instance_id and
 * spec->hostname (other fields are not looked at). Same ownership and errors as above. */
int ep_cloudinit_meta_data(char **out, size_t *ret_len, const ep_cloudinit_spec *spec);

/* Zeroes and frees text from the functions above; NULL is fine. */
void ep_cloudinit_free(char *text);

/* What a node's agent takes back from the user-data above when no cloud-init runs on the
 * installed OS (an immutable image with the agent baked in reads its NoCloud seed itself). */
typedef struct ep_cloudinit_seed {
  char hostname[EP_CLOUDINIT_HOSTNAME_MAX + 1];
  char client_id[EP_CLOUDINIT_CREDENTIAL_MAX + 1];
  char client_secret[EP_CLOUDINIT_CREDENTIAL_MAX + 1]; /* a secret */
  char project_id[EP_CLOUDINIT_CREDENTIAL_MAX + 1];    /* may be "" */
  char orchestrator[EP_CLOUDINIT_ORCHESTRATOR_MAX + 1];
  char token_url[EP_CLOUDINIT_TOKEN_URL_MAX + 1];      /* "" when agent.conf has none */
  char *ca_pem;                                        /* the first ca_certs.trusted entry (malloc'd) */
} ep_cloudinit_seed;

/* Reads user-data as ep_cloudinit_user_data wrote it (fragments merged in are allowed):
 * "#cloud-config" first, hostname, ca_certs.trusted[0] (edgeprov's CA: fragments append after
 * it) and the write_files entries for EP_CLOUDINIT_CREDENTIALS_PATH (client_id, client_secret,
 * project_id) and EP_CLOUDINIT_AGENT_CONF_PATH (orchestrator, token_url), each value checked as
 * on the way out. At most EP_CLOUDINIT_MAX bytes. EP_EINVAL names the field ("user-data:
 * write_files: no /etc/edgeprov/credentials"); EP_ERANGE, EP_ENOMEM. On failure *out is zeroed;
 * on success release it with ep_cloudinit_seed_clear. Any thread. */
int ep_cloudinit_seed_read(ep_cloudinit_seed *out, const char *user_data, size_t len);

/* Zeroes seed (the client secret) and frees its CA; NULL is fine. */
void ep_cloudinit_seed_clear(ep_cloudinit_seed *seed);

#endif
