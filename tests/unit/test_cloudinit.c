/* Unit tests of core/lib/provisioning/cloudinit*.c: NoCloud user-data and meta-data, read back
 * with libyaml, checked by Debian's cloud-init schema validator and by PyYAML (the loader
 * cloud-init uses), and the seed read back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <yaml.h>
#include <cmocka.h>

#include "provisioning/cloudinit.h"
#include "base/error.h"

/* Debian's interpreter: python3-yaml (a dependency of cloud-init) is installed for it, while a
 * python3 found earlier on PATH (pyenv, venv) may lack yaml. */
#define SYSTEM_PYTHON3 "/usr/bin/python3"

#define KEY_ED25519 "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEnHaSEbgBO3L4B4CbCjWG4fTuIUXGuhFznBzDUOR4RY ops@site"
#define KEY_ECDSA                                                                                                       \
  "ecdsa-sha2-nistp256 "                                                                                                \
  "AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBJYDRZ3xluVtV4KTMEe6mXqlXG8Q0agWgo4am8UFC8OK5uDhAAvd0rRJzeWBFYh/" \
  "D7vtR0vQ3uo+JZ4mmFqrfcU= deploy key"
#define KEY_RSA                                                                                                          \
  "ssh-rsa "                                                                                                             \
  "AAAAB3NzaC1yc2EAAAADAQABAAAAgQDKDbKwJWPfEH/QFXpySha1Wmaus9yTrzOPNBrubJyM6f+40iX45IkiuBamFg27hThHGf91ZHBrp9wkaSWp80FD" \
  "Cgcvsh4Vm3p4T8+YYkVQo6NYybeobl7BXuL35CmXDyoG//G9RuVChsMxho/iZBArGbQqaNlLF/n5c7a+q9QQ4w== rsa@site"

static const char ca_pem[] = "-----BEGIN CERTIFICATE-----\n"
                             "MIIBizCCATGgAwIBAgIUPzNpdVDYfBeZOQAwcNNfGZR1cZUwCgYIKoZIzj0EAwIw\n"
                             "GzEZMBcGA1UEAwwQZWRnZXByb3YtdGVzdC1jYTAeFw0yNjExMjUwMzU2NDlaFw0z\n"
                             "NjExMjIwMzU2NDlaMBsxGTAXBgNVBAMMEGVkZ2Vwcm92LXRlc3QtY2EwWTATBgcq\n"
                             "hkjOPQIBBggqhkjOPQMBBwNCAAReTJXWgnN9+ZwPM5Jv3DvYn77QVNRQ0QpUXf88\n"
                             "TwPJT3xlzGAUS8UOpyIaIoqySfAGIyOKvmWGrIHKQqCp+EuRo1MwUTAdBgNVHQ4E\n"
                             "FgQUgs8xaCddztav1acaaERem/1PrK0wHwYDVR0jBBgwFoAUgs8xaCddztav1aca\n"
                             "aERem/1PrK0wDwYDVR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAgNIADBFAiBSX8uJ\n"
                             "sfYR9YWgCJsd8wsyj5eqHoXUBLin9pIQwYuAKgIhAM0UDFfwW4saUim/XJNnImO1\n"
                             "pBU+CoD4bp714dpZLUHr\n"
                             "-----END CERTIFICATE-----\n";

#define SECRET "s3cr3t-Yes:#&*!-0600"
#define EXPECTED_CREDENTIALS "client_id=node-4d2f\nclient_secret=" SECRET "\nproject_id=0600\n"
#define EXPECTED_AGENT_CONF "orchestrator=orch.site.example:50051\ntoken_url=https://orch.site.example:8443/oauth2/token\n"

static const char *const ops_keys[] = {KEY_ED25519, KEY_ECDSA};
static const char *const deploy_keys[] = {KEY_RSA};

/* A full spec, with values that YAML would misread if they were written plain. */
static ep_cloudinit_spec full_spec(ep_cloudinit_user users[2]) {
  users[0] = (ep_cloudinit_user){.name = "ops", .ssh_keys = ops_keys, .ssh_key_count = 2, .sudo = true};
  users[1] = (ep_cloudinit_user){.name = "deploy", .ssh_keys = deploy_keys, .ssh_key_count = 1, .shell = "/bin/sh"};
  return (ep_cloudinit_spec){.instance_id = "123e4567-e89b-12d3-a456-426614174000",
                             .hostname = "node-12.site.example",
                             .ca_pem = ca_pem,
                             .client_id = "node-4d2f",
                             .client_secret = SECRET,
                             .project_id = "0600",
                             .orchestrator = "orch.site.example:50051",
                             .token_url = "https://orch.site.example:8443/oauth2/token",
                             .users = users,
                             .user_count = 2};
}

/* ---- Reading the output back with libyaml ---- */

typedef struct parsed {
  yaml_document_t doc;
  bool loaded;
} parsed;

static void parse(parsed *p, const char *text, size_t len) {
  yaml_parser_t parser;
  assert_true(yaml_parser_initialize(&parser));
  yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
  assert_true(yaml_parser_load(&parser, &p->doc));
  assert_non_null(yaml_document_get_root_node(&p->doc));
  yaml_parser_delete(&parser);
  p->loaded = true;
}

static void parsed_free(parsed *p) {
  if (p->loaded) yaml_document_delete(&p->doc);
  p->loaded = false;
}

/* The node at a path like "write_files/0/content" (numbers index sequences), or NULL. */
static yaml_node_t *at(parsed *p, const char *path) {
  yaml_node_t *n = yaml_document_get_root_node(&p->doc);
  char buf[256];
  snprintf(buf, sizeof buf, "%s", path);
  for (char *save = NULL, *part = strtok_r(buf, "/", &save); n && part; part = strtok_r(NULL, "/", &save)) {
    yaml_node_t *next = NULL;
    if (n->type == YAML_SEQUENCE_NODE) {
      long i = strtol(part, NULL, 10);
      if (i >= 0 && i < n->data.sequence.items.top - n->data.sequence.items.start)
        next = yaml_document_get_node(&p->doc, n->data.sequence.items.start[i]);
    } else if (n->type == YAML_MAPPING_NODE) {
      for (yaml_node_pair_t *pair = n->data.mapping.pairs.start; pair < n->data.mapping.pairs.top; pair++) {
        yaml_node_t *k = yaml_document_get_node(&p->doc, pair->key);
        if (k->type == YAML_SCALAR_NODE && k->data.scalar.length == strlen(part) &&
            !memcmp(k->data.scalar.value, part, k->data.scalar.length))
          next = yaml_document_get_node(&p->doc, pair->value);
      }
    }
    n = next;
  }
  return n;
}

static size_t count_at(parsed *p, const char *path) {
  yaml_node_t *n = at(p, path);
  assert_non_null(n);
  if (n->type == YAML_SEQUENCE_NODE) return (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
  assert_int_equal(n->type, YAML_MAPPING_NODE);
  return (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
}

/* Asserts the scalar at path is exactly want and, when quoted, was written so that it reads
 * back as a string (any style but plain); plain: it was written plain (a boolean). */
static void assert_scalar(parsed *p, const char *path, const char *want, bool plain) {
  yaml_node_t *n = at(p, path);
  if (!n) fail_msg("no node at %s", path);
  assert_int_equal(n->type, YAML_SCALAR_NODE);
  assert_int_equal(n->data.scalar.length, strlen(want));
  assert_memory_equal(n->data.scalar.value, want, strlen(want));
  if (plain) assert_int_equal(n->data.scalar.style, YAML_PLAIN_SCALAR_STYLE);
  else assert_int_not_equal(n->data.scalar.style, YAML_PLAIN_SCALAR_STYLE);
}

/* Renders spec; asserts failure with code and a message starting with prefix. */
static void assert_refused(const ep_cloudinit_spec *spec, int code, const char *prefix) {
  char *out = (char *)0x1;
  size_t len = 7;
  int r = ep_cloudinit_user_data(&out, &len, spec);
  if (r != code) fail_msg("expected %d, got %d (%s) for '%s'", code, r, ep_error_message(), prefix);
  assert_ptr_equal(out, (char *)0x1); /* outputs untouched on failure */
  assert_int_equal(len, 7);
  if (strncmp(ep_error_message(), prefix, strlen(prefix)))
    fail_msg("message '%s' does not start with '%s'", ep_error_message(), prefix);
  assert_null(strstr(ep_error_message(), SECRET));
  assert_null(strchr(ep_error_message(), '\n'));
}

/* ---- Tests ---- */

static void full_spec_round_trips(void **state) {
  (void)state;
  ep_cloudinit_user users[2];
  ep_cloudinit_spec spec = full_spec(users);
  char *out = NULL;
  size_t len = 0;
  assert_int_equal(ep_cloudinit_user_data(&out, &len, &spec), 0);
  assert_int_equal(len, strlen(out));
  assert_true(len < EP_CLOUDINIT_MAX);
  assert_int_equal(strncmp(out, "#cloud-config\n", 14), 0);
  /* Fixed parts, as written. */
  assert_non_null(strstr(out, "\nhostname: 'node-12.site.example'\n"));
  assert_non_null(strstr(out, "\npreserve_hostname: false\n"));
  assert_non_null(strstr(out, "\nssh_pwauth: false\n"));
  assert_non_null(strstr(out, "  permissions: '0600'\n"));
  assert_non_null(strstr(out, "  owner: 'root:root'\n"));
  assert_non_null(strstr(out, "  defer: false\n"));

  parsed p = {0};
  parse(&p, out, len);
  assert_int_equal(count_at(&p, ""), 6);
  assert_scalar(&p, "hostname", "node-12.site.example", false);
  assert_scalar(&p, "preserve_hostname", "false", true);
  assert_scalar(&p, "ssh_pwauth", "false", true);
  assert_int_equal(count_at(&p, "ca_certs/trusted"), 1);
  assert_scalar(&p, "ca_certs/trusted/0", ca_pem, false);
  assert_int_equal(count_at(&p, "users"), 2);
  assert_scalar(&p, "users/0/name", "ops", false);
  assert_scalar(&p, "users/0/lock_passwd", "true", true);
  assert_scalar(&p, "users/0/shell", "/bin/bash", false);
  assert_scalar(&p, "users/0/sudo", "ALL=(ALL) NOPASSWD:ALL", false);
  assert_int_equal(count_at(&p, "users/0/ssh_authorized_keys"), 2);
  assert_scalar(&p, "users/0/ssh_authorized_keys/0", KEY_ED25519, false);
  assert_scalar(&p, "users/0/ssh_authorized_keys/1", KEY_ECDSA, false);
  assert_scalar(&p, "users/1/name", "deploy", false);
  assert_scalar(&p, "users/1/shell", "/bin/sh", false);
  assert_null(at(&p, "users/1/sudo"));
  assert_scalar(&p, "users/1/ssh_authorized_keys/0", KEY_RSA, false);
  assert_int_equal(count_at(&p, "write_files"), 2);
  assert_scalar(&p, "write_files/0/path", EP_CLOUDINIT_CREDENTIALS_PATH, false);
  assert_scalar(&p, "write_files/0/content", EXPECTED_CREDENTIALS, false);
  assert_scalar(&p, "write_files/0/permissions", "0600", false);
  assert_scalar(&p, "write_files/0/owner", "root:root", false);
  assert_scalar(&p, "write_files/0/defer", "false", true);
  assert_scalar(&p, "write_files/1/path", EP_CLOUDINIT_AGENT_CONF_PATH, false);
  assert_scalar(&p, "write_files/1/content", EXPECTED_AGENT_CONF, false);
  assert_scalar(&p, "write_files/1/permissions", "0644", false);
  parsed_free(&p);
  ep_cloudinit_free(out);

  /* No users: the key is left out (the image's default user); no token_url, no project_id. */
  spec.user_count = 0;
  spec.token_url = NULL;
  spec.project_id = NULL;
  assert_int_equal(ep_cloudinit_user_data(&out, &len, &spec), 0);
  parse(&p, out, len);
  assert_null(at(&p, "users"));
  assert_scalar(&p, "write_files/0/content", "client_id=node-4d2f\nclient_secret=" SECRET "\nproject_id=\n", false);
  assert_scalar(&p, "write_files/1/content", "orchestrator=orch.site.example:50051\n", false);
  parsed_free(&p);
  ep_cloudinit_free(out);
}

/* Values that plain YAML would read as booleans, numbers or null stay strings. */
static void misreadable_values_stay_strings(void **state) {
  (void)state;
  const char *hostnames[] = {"yes", "no", "0600", "1e3", "null", "true", "on", "0x1f", "12"};
  ep_cloudinit_user users[2];
  ep_cloudinit_spec spec = full_spec(users);
  for (size_t i = 0; i < sizeof hostnames / sizeof hostnames[0]; i++) {
    spec.hostname = hostnames[i];
    char *out = NULL;
    size_t len = 0;
    assert_int_equal(ep_cloudinit_user_data(&out, &len, &spec), 0);
    parsed p = {0};
    parse(&p, out, len);
    assert_scalar(&p, "hostname", hostnames[i], false);
    parsed_free(&p);
    ep_cloudinit_free(out);
    assert_int_equal(ep_cloudinit_meta_data(&out, &len, &spec), 0);
    parse(&p, out, len);
    assert_scalar(&p, "local-hostname", hostnames[i], false);
    parsed_free(&p);
    ep_cloudinit_free(out);
  }
}

static void meta_data(void **state) {
  (void)state;
  ep_cloudinit_user users[2];
  ep_cloudinit_spec spec = full_spec(users);
  char *out = NULL;
  size_t len = 0;
  assert_int_equal(ep_cloudinit_meta_data(&out, &len, &spec), 0);
  assert_string_equal(out, "instance-id: '123e4567-e89b-12d3-a456-426614174000'\nlocal-hostname: 'node-12.site.example'\n");
  assert_int_equal(len, strlen(out));
  ep_cloudinit_free(out);
  spec.instance_id = "0600";
  assert_int_equal(ep_cloudinit_meta_data(&out, &len, &spec), 0);
  assert_string_equal(out, "instance-id: '0600'\nlocal-hostname: 'node-12.site.example'\n");
  ep_cloudinit_free(out);
  spec.instance_id = "i-1/../x";
  out = NULL;
  assert_int_equal(ep_cloudinit_meta_data(&out, &len, &spec), EP_EINVAL);
  assert_null(out);
  assert_non_null(strstr(ep_error_message(), "instance_id: "));
  spec.instance_id = "i-1";
  spec.hostname = "a\nruncmd: [reboot]";
  assert_int_equal(ep_cloudinit_meta_data(&out, &len, &spec), EP_EINVAL);
  assert_string_equal(ep_error_message(), "hostname: character 0x0a at byte 1; only printable ASCII without spaces is allowed");
}

/* Injection through fields is refused with the field named. */
static void bad_fields_refused(void **state) {
  (void)state;
  ep_cloudinit_user users[2];
  ep_cloudinit_spec spec = full_spec(users);

  const char *newline_keys[] = {KEY_ED25519, KEY_ED25519 "\nruncmd: [reboot]"};
  users[0].ssh_keys = newline_keys;
  assert_refused(&spec, EP_EINVAL, "users[0].ssh_keys[1]: character 0x0a at byte");
  const char *cr_keys[] = {KEY_ED25519 "\r"};
  users[0].ssh_keys = cr_keys;
  users[0].ssh_key_count = 1;
  assert_refused(&spec, EP_EINVAL, "users[0].ssh_keys[0]: character 0x0d");
  const char *bad_type[] = {"ssh-foo AAAAC3NzaC1lZDI1NTE5AAAAIEnHaSEbgBO3L4B4CbCjWG4fTuIUXGuhFznBzDUOR4RY"};
  users[0].ssh_keys = bad_type;
  assert_refused(&spec, EP_EINVAL, "users[0].ssh_keys[0]: key type 'ssh-foo' is not");
  const char *options[] = {"command=\"/bin/sh\" " KEY_ED25519};
  users[0].ssh_keys = options;
  assert_refused(&spec, EP_EINVAL, "users[0].ssh_keys[0]: key type 'command=\"/bin/sh\"' is not");
  const char *mismatch[] = {"ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIEnHaSEbgBO3L4B4CbCjWG4fTuIUXGuhFznBzDUOR4RY x"};
  users[0].ssh_keys = mismatch;
  assert_refused(&spec, EP_EINVAL, "users[0].ssh_keys[0]: the base64 key after 'ssh-rsa' is missing or is not a ssh-rsa key");
  const char *no_blob[] = {"ssh-ed25519"};
  users[0].ssh_keys = no_blob;
  assert_refused(&spec, EP_EINVAL, "users[0].ssh_keys[0]: the base64 key");
  char *huge_key = malloc(EP_CLOUDINIT_SSH_KEY_MAX + 2);
  assert_non_null(huge_key);
  snprintf(huge_key, EP_CLOUDINIT_SSH_KEY_MAX + 2, "%s ", KEY_ED25519);
  memset(huge_key + strlen(huge_key), 'c', EP_CLOUDINIT_SSH_KEY_MAX + 1 - strlen(huge_key));
  huge_key[EP_CLOUDINIT_SSH_KEY_MAX + 1] = '\0';
  const char *huge[] = {huge_key};
  users[0].ssh_keys = huge;
  assert_refused(&spec, EP_ERANGE, "users[0].ssh_keys[0]: longer than 8192 bytes");
  free(huge_key);
  users[0].ssh_keys = ops_keys;
  users[0].ssh_key_count = 2;

  users[0].name = "root: x";
  assert_refused(&spec, EP_EINVAL, "users[0].name: 'root: x' is not a user name");
  users[0].name = "root";
  assert_refused(&spec, EP_EINVAL, "users[0].name: 'root' is refused");
  users[0].name = "default";
  assert_refused(&spec, EP_EINVAL, "users[0].name: 'default' is cloud-init's word");
  users[0].name = "Ops";
  assert_refused(&spec, EP_EINVAL, "users[0].name: 'Ops' is not a user name");
  users[0].name = "deploy";
  assert_refused(&spec, EP_EINVAL, "users[1].name: 'deploy' is already users[0]");
  users[0].name = "ops";
  users[1].shell = "sh";
  assert_refused(&spec, EP_EINVAL, "users[1].shell: 'sh' is not an absolute path");
  users[1].shell = "/bin/sh\nruncmd: [reboot]";
  assert_refused(&spec, EP_EINVAL, "users[1].shell: character 0x0a");
  users[1].shell = NULL;

  spec.hostname = "a\nruncmd: [reboot]";
  assert_refused(&spec, EP_EINVAL, "hostname: character 0x0a at byte 1");
  spec.hostname = "-node";
  assert_refused(&spec, EP_EINVAL, "hostname: '-node' is not an RFC 1123 host name");
  spec.hostname = "node..site";
  assert_refused(&spec, EP_EINVAL, "hostname: 'node..site' is not");
  char label[80];
  memset(label, 'a', 64);
  label[64] = '\0';
  spec.hostname = label;
  assert_refused(&spec, EP_EINVAL, "hostname: 'aaaa");
  char long_name[300];
  for (size_t i = 0; i < sizeof long_name - 1; i++) long_name[i] = i % 2 ? '.' : 'a';
  long_name[sizeof long_name - 1] = '\0';
  spec.hostname = long_name;
  assert_refused(&spec, EP_EINVAL, "hostname: longer than 253 characters");
  long_name[253] = '\0'; /* 127 labels, 253 characters: taken */
  char *ok = NULL;
  size_t ok_len = 0;
  assert_int_equal(ep_cloudinit_user_data(&ok, &ok_len, &spec), 0);
  ep_cloudinit_free(ok);
  spec.hostname = "";
  assert_refused(&spec, EP_EINVAL, "hostname: required");
  spec.hostname = "node-12";

  spec.instance_id = NULL;
  assert_refused(&spec, EP_EINVAL, "instance_id: required");
  spec.instance_id = "id with space";
  assert_refused(&spec, EP_EINVAL, "instance_id: space 0x20 at byte 2");
  spec.instance_id = "i-1";

  spec.client_secret = SECRET "\nproject_id=evil";
  assert_refused(&spec, EP_EINVAL, "client_secret: character 0x0a at byte 20");
  spec.client_secret = NULL;
  assert_refused(&spec, EP_EINVAL, "client_secret: required");
  spec.client_secret = SECRET;
  spec.client_id = "id x";
  assert_refused(&spec, EP_EINVAL, "client_id: space 0x20");
  spec.client_id = "node-4d2f";
  char long_id[600];
  memset(long_id, 'x', sizeof long_id - 1);
  long_id[sizeof long_id - 1] = '\0';
  spec.project_id = long_id;
  assert_refused(&spec, EP_ERANGE, "project_id: longer than 511 bytes");
  spec.project_id = "p";

  spec.ca_pem = "-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n";
  assert_refused(&spec, EP_EINVAL, "ca_pem: line 1: expected -----BEGIN CERTIFICATE-----");
  spec.ca_pem = "-----BEGIN CERTIFICATE-----\nMIIB\n";
  assert_refused(&spec, EP_EINVAL, "ca_pem: the last CERTIFICATE block has no");
  spec.ca_pem = "-----BEGIN CERTIFICATE-----\nMI IB\n-----END CERTIFICATE-----\n";
  assert_refused(&spec, EP_EINVAL, "ca_pem: line 2: not base64");
  spec.ca_pem = "-----BEGIN CERTIFICATE-----\r\nMIIB\r\n-----END CERTIFICATE-----\r\n";
  assert_refused(&spec, EP_EINVAL, "ca_pem: character 0x0d");
  spec.ca_pem = "\n";
  assert_refused(&spec, EP_EINVAL, "ca_pem: no certificate");
  spec.ca_pem = NULL;
  assert_refused(&spec, EP_EINVAL, "ca_pem: required");
  spec.ca_pem = ca_pem;

  spec.orchestrator = "orch.site.example";
  assert_refused(&spec, EP_EINVAL, "orchestrator: 'orch.site.example' is not host:port");
  spec.orchestrator = "orch:70000";
  assert_refused(&spec, EP_EINVAL, "orchestrator: 'orch:70000' is not host:port");
  spec.orchestrator = "orch:50051\ntoken_url=https://evil";
  assert_refused(&spec, EP_EINVAL, "orchestrator: character 0x0a");
  spec.orchestrator = "[fd00::1]:50051";
  char *out = NULL;
  size_t len = 0;
  assert_int_equal(ep_cloudinit_user_data(&out, &len, &spec), 0);
  ep_cloudinit_free(out);
  spec.orchestrator = "10.0.0.1:50051";
  spec.token_url = "http://10.0.0.1/token";
  assert_refused(&spec, EP_EINVAL, "token_url: 'http://10.0.0.1/token' is not an https:// URL");

  spec.token_url = NULL;
  spec.users = NULL;
  assert_refused(&spec, EP_EINVAL, "users: NULL with user_count 2");
  spec.user_count = EP_CLOUDINIT_USERS_MAX + 1;
  assert_refused(&spec, EP_ERANGE, "users: 65 given");
  assert_int_equal(ep_cloudinit_user_data(&out, &len, NULL), EP_EINVAL);
}

/* Renders the full spec with fragments; returns the output (caller frees). */
static char *render_with(const char *const *fragments, size_t count, size_t *len) {
  static ep_cloudinit_user users[2];
  ep_cloudinit_spec spec = full_spec(users);
  spec.fragments = fragments;
  spec.fragment_count = count;
  char *out = NULL;
  int r = ep_cloudinit_user_data(&out, len, &spec);
  if (r != 0) fail_msg("render: %d %s", r, ep_error_message());
  return out;
}

static void refused_fragments(const char *const *fragments, size_t count, int code, const char *message) {
  ep_cloudinit_user users[2];
  ep_cloudinit_spec spec = full_spec(users);
  spec.fragments = fragments;
  spec.fragment_count = count;
  assert_refused(&spec, code, message);
}

#define FRAGS(...) ((const char *const[]){__VA_ARGS__}), (sizeof((const char *const[]){__VA_ARGS__}) / sizeof(const char *))

static void fragments_merge(void **state) {
  (void)state;
  const char *const frags[] = {
      "#cloud-config\n"
      "runcmd:\n  - [systemctl, enable, --now, edgeprov-agent]\n"
      "packages: [curl, jq]\n"
      "package_upgrade: true\n"
      "write_files:\n  - path: /etc/motd\n    content: |\n      Managed by edgeprov.\n    permissions: '0644'\n"
      "ca_certs:\n  remove_defaults: false\n  trusted:\n    - |\n" /* a site CA, appended after edgeprov's */
      "      -----BEGIN CERTIFICATE-----\n      MIIB\n      -----END CERTIFICATE-----\n"
      "ntp: {enabled: true, servers: [ntp1.site.example]}\n"
      "note: \"x\\nruncmd: [rm -rf /]\"\n",
      "runcmd: [\"echo second\"]\n"
      "users: [default]\n"
      "ntp: {pools: [pool.ntp.org]}\n"
      "write_files: [{path: /etc/edgeprov-site.conf, content: \"yes\"}]\n"};
  size_t len = 0;
  char *out = render_with(frags, 2, &len);
  parsed p = {0};
  parse(&p, out, len);
  /* Sequences: the fragments' items after edgeprov's, in order. */
  assert_int_equal(count_at(&p, "runcmd"), 2);
  assert_scalar(&p, "runcmd/0/3", "edgeprov-agent", true);
  assert_scalar(&p, "runcmd/1", "echo second", false);
  assert_int_equal(count_at(&p, "write_files"), 4);
  assert_scalar(&p, "write_files/0/path", EP_CLOUDINIT_CREDENTIALS_PATH, false);
  assert_scalar(&p, "write_files/0/content", EXPECTED_CREDENTIALS, false);
  assert_scalar(&p, "write_files/2/path", "/etc/motd", true);
  assert_scalar(&p, "write_files/2/content", "Managed by edgeprov.\n", false);
  assert_scalar(&p, "write_files/2/permissions", "0644", false);
  assert_scalar(&p, "write_files/3/content", "yes", false); /* quoted in the fragment: still a string */
  assert_int_equal(count_at(&p, "users"), 3);
  assert_scalar(&p, "users/2", "default", true);
  assert_int_equal(count_at(&p, "ca_certs/trusted"), 2);
  assert_scalar(&p, "ca_certs/trusted/0", ca_pem, false);
  assert_scalar(&p, "ca_certs/trusted/1", "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n", false);
  assert_scalar(&p, "ca_certs/remove_defaults", "false", true);
  /* Plain scalars from fragments stay plain (true is a boolean for cloud-init). */
  assert_scalar(&p, "package_upgrade", "true", true);
  assert_scalar(&p, "packages/1", "jq", true);
  /* Mappings merge key by key. */
  assert_scalar(&p, "ntp/enabled", "true", true);
  assert_scalar(&p, "ntp/servers/0", "ntp1.site.example", true);
  assert_scalar(&p, "ntp/pools/0", "pool.ntp.org", true);
  /* A value holding YAML text is an inert string. */
  assert_scalar(&p, "note", "x\nruncmd: [rm -rf /]", false);
  assert_scalar(&p, "hostname", "node-12.site.example", false);
  parsed_free(&p);
  ep_cloudinit_free(out);

  /* Empty sequences and mappings merge as nothing. */
  out = render_with(FRAGS("write_files: []\nca_certs: {}\nruncmd: []\n"), &len);
  parse(&p, out, len);
  assert_int_equal(count_at(&p, "write_files"), 2);
  assert_int_equal(count_at(&p, "ca_certs"), 1);
  assert_int_equal(count_at(&p, "runcmd"), 0);
  parsed_free(&p);
  ep_cloudinit_free(out);
}

static void fragments_refused(void **state) {
  (void)state;
  static const char good[] = "runcmd: [a]\ntimezone: UTC\n";
  refused_fragments(FRAGS(good, "hostname: evil\n"), EP_EINVAL, "fragments[1]: 'hostname' is set by edgeprov");
  refused_fragments(FRAGS("preserve_hostname: true\n"), EP_EINVAL, "fragments[0]: 'preserve_hostname' is set by edgeprov");
  refused_fragments(FRAGS("ssh_pwauth: true\n"), EP_EINVAL, "fragments[0]: 'ssh_pwauth' is set by edgeprov");
  refused_fragments(FRAGS(good, "timezone: Europe/Paris\n"), EP_EINVAL, "fragments[1]: 'timezone' is set by fragments[0]");
  refused_fragments(FRAGS("fqdn: evil.example\n"), EP_EINVAL, "fragments[0]: 'fqdn' would change the host name");
  refused_fragments(FRAGS("prefer_fqdn_over_hostname: true\n"), EP_EINVAL, "fragments[0]: 'prefer_fqdn_over_hostname'");
  refused_fragments(FRAGS("ca-certs: {remove-defaults: true}\n"), EP_EINVAL, "fragments[0]: 'ca-certs' is the deprecated");
  refused_fragments(FRAGS("write_files: 5\n"), EP_EINVAL,
                    "fragments[0]: 'write_files' is a scalar here and a sequence in edgeprov");
  refused_fragments(FRAGS("ca_certs: {trusted: x}\n"), EP_EINVAL,
                    "fragments[0]: 'ca_certs.trusted' is a scalar here and a sequence in edgeprov");
  refused_fragments(FRAGS("ca_certs: [x]\n"), EP_EINVAL, "fragments[0]: 'ca_certs' is a sequence here and a mapping");
  refused_fragments(FRAGS("write_files: [{path: /etc/edgeprov/credentials, content: x}]\n"), EP_EINVAL,
                    "fragments[0]: write_files[0].path: under /etc/edgeprov");
  refused_fragments(FRAGS("write_files: [{path: /etc/motd}, {path: \"//etc/./x/../edgeprov//agent.conf\", append: true}]\n"),
                    EP_EINVAL, "fragments[0]: write_files[1].path: under /etc/edgeprov");
  refused_fragments(FRAGS("write_files: [{path: etc/edgeprov}]\n"), EP_EINVAL, "fragments[0]: write_files[0].path: under");
  refused_fragments(FRAGS("write_files: [/etc/motd]\n"), EP_EINVAL, "fragments[0]: write_files[0]: expected a mapping");
  /* Not a mapping. */
  refused_fragments(FRAGS(good, "- a\n- b\n"), EP_EINVAL, "fragments[1]: is a sequence; expected a mapping");
  refused_fragments(FRAGS("just text\n"), EP_EINVAL, "fragments[0]: is a scalar; expected a mapping");
  refused_fragments(FRAGS("#cloud-config\n"), EP_EINVAL, "fragments[0]: empty; expected a mapping");
  refused_fragments(FRAGS("a: [1\n"), EP_EINVAL, "fragments[0]: line 2 column 1: did not find expected");
  /* Anchors, aliases, tags, merge keys, several documents, repeated keys. */
  refused_fragments(FRAGS("a: &x [1]\nb: *x\n"), EP_EINVAL, "fragments[0]: line 1: anchors and aliases");
  refused_fragments(FRAGS("a: &x 1\n"), EP_EINVAL, "fragments[0]: line 1: anchors and aliases");
  refused_fragments(FRAGS("a: !!str yes\n"), EP_EINVAL, "fragments[0]: line 1: tags (!name) are refused");
  refused_fragments(FRAGS("a: !custom {b: 1}\n"), EP_EINVAL, "fragments[0]: line 1: tags");
  refused_fragments(FRAGS("<<: {hostname: evil}\n"), EP_EINVAL, "fragments[0]: line 1: merge keys (<<) are refused");
  refused_fragments(FRAGS("a: [x, =]\n"), EP_EINVAL, "fragments[0]: line 1: a plain '=' cannot be loaded by cloud-init");
  refused_fragments(FRAGS("a: <<\n"), EP_EINVAL, "fragments[0]: line 1: a plain '<<' cannot be loaded");
  refused_fragments(FRAGS("a: 1\n---\nb: 2\n"), EP_EINVAL, "fragments[0]: line 2: a second YAML document");
  refused_fragments(FRAGS("a: 1\nb: {c: 1, c: 2}\n"), EP_EINVAL, "fragments[0]: line 2: key 'c' appears twice");
  refused_fragments(FRAGS("? [a]\n: 1\n"), EP_EINVAL, "fragments[0]: line 1: a key must be a string");
  refused_fragments(FRAGS(NULL), EP_EINVAL, "fragments[0]: NULL");
  refused_fragments(FRAGS("a: \"\\xff\\u0000\"\n", "\xff: 1\n"), EP_EINVAL, "fragments[1]: byte 0: invalid leading UTF-8 octet");
  /* Billion laughs: refused at the first anchor, nothing expanded. */
  refused_fragments(FRAGS("a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n"
                          "b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
                          "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n"),
                    EP_EINVAL, "fragments[0]: line 1: anchors and aliases");
}

static void fragment_limits(void **state) {
  (void)state;
  /* One fragment past its bound. */
  char *big = malloc(EP_CLOUDINIT_FRAGMENT_MAX + 2);
  assert_non_null(big);
  memcpy(big, "a: ", 3);
  memset(big + 3, 'x', EP_CLOUDINIT_FRAGMENT_MAX - 2);
  big[EP_CLOUDINIT_FRAGMENT_MAX + 1] = '\0';
  refused_fragments(FRAGS(big), EP_ERANGE, "fragments[0]: longer than 65536 bytes");
  big[EP_CLOUDINIT_FRAGMENT_MAX] = '\0'; /* exactly at the bound: taken */
  size_t len = 0;
  char *out = render_with(FRAGS(big), &len);
  ep_cloudinit_free(out);

  /* Nesting. */
  char deep[256] = "a: ";
  for (int i = 0; i < EP_CLOUDINIT_DEPTH_MAX; i++) strcat(deep, "[");
  strcat(deep, "1");
  for (int i = 0; i < EP_CLOUDINIT_DEPTH_MAX; i++) strcat(deep, "]");
  refused_fragments(FRAGS(deep), EP_ERANGE, "fragments[0]: line 1: nested deeper than 32 levels");
  memmove(deep + 3, deep + 4, strlen(deep + 4) + 1); /* one level less: the top mapping is level 1 */
  deep[strlen(deep) - 1] = '\0';
  out = render_with(FRAGS(deep), &len);
  ep_cloudinit_free(out);

  /* Total output: 17 fragments of 64 KiB each take more than 1 MiB. */
  enum { N = 17 };
  char *many[N];
  for (int i = 0; i < N; i++) {
    many[i] = malloc(EP_CLOUDINIT_FRAGMENT_MAX + 1);
    assert_non_null(many[i]);
    int n = snprintf(many[i], 16, "k%d: ", i);
    memset(many[i] + n, 'y', EP_CLOUDINIT_FRAGMENT_MAX - (size_t)n);
    many[i][EP_CLOUDINIT_FRAGMENT_MAX] = '\0';
  }
  refused_fragments((const char *const *)many, N, EP_ERANGE, "cloud-init user-data: longer than 1048576 bytes");
  out = render_with((const char *const *)many, N - 2, &len); /* 15 fit */
  assert_true(len > 15 * (size_t)EP_CLOUDINIT_FRAGMENT_MAX && len <= EP_CLOUDINIT_MAX);
  ep_cloudinit_free(out);
  for (int i = 0; i < N; i++) free(many[i]);

  /* Keys in one mapping: 1025 in a fragment; 1024 in all once merged. */
  char *keys[2];
  for (int f = 0; f < 2; f++) {
    keys[f] = malloc(16 * (EP_CLOUDINIT_KEYS_MAX + 1) + 1);
    assert_non_null(keys[f]);
    keys[f][0] = '\0';
  }
  for (int i = 0; i <= EP_CLOUDINIT_KEYS_MAX; i++) sprintf(keys[0] + strlen(keys[0]), "k%d: 1\n", i);
  refused_fragments(FRAGS(keys[0]), EP_ERANGE, "fragments[0]: line 1: a mapping with more than 1024 keys");
  *strrchr(keys[0], 'k') = '\0'; /* 1024 keys: taken alone (nested), refused next to edgeprov's at the top */
  sprintf(keys[1], "nested:\n");
  for (int i = 0; i < EP_CLOUDINIT_KEYS_MAX; i++) sprintf(keys[1] + strlen(keys[1]), "  k%d: 1\n", i);
  out = render_with(FRAGS(keys[1]), &len);
  ep_cloudinit_free(out);
  refused_fragments(FRAGS(keys[0]), EP_ERANGE, "fragments[0]: 'k1018': more than 1024 keys in one mapping");
  free(keys[0]);
  free(keys[1]);

  const char *too_many[EP_CLOUDINIT_FRAGMENTS_MAX + 1];
  for (int i = 0; i <= EP_CLOUDINIT_FRAGMENTS_MAX; i++) too_many[i] = "a: 1\n";
  refused_fragments(too_many, EP_CLOUDINIT_FRAGMENTS_MAX + 1, EP_ERANGE, "fragments: 33 given");
  free(big);
}

/* ---- Checks by the real cloud-init and PyYAML ---- */

/* Runs argv; its exit status, its stdout in out (cap bytes, NUL-terminated). */
static int run(char *const argv[], char *out, size_t cap) {
  int fds[2];
  assert_int_equal(pipe(fds), 0);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    dup2(fds[1], 1);
    dup2(fds[1], 2);
    close(fds[0]);
    close(fds[1]);
    execvp(argv[0], argv);
    _exit(127);
  }
  close(fds[1]);
  size_t got = 0;
  for (ssize_t n; (n = read(fds[0], out + got, cap - 1 - got)) > 0;) got += (size_t)n;
  out[got] = '\0';
  char drain[256];
  while (read(fds[0], drain, sizeof drain) > 0) {
  }
  close(fds[0]);
  int status;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static void write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  assert_int_equal(fputs(text, f) >= 0, 1);
  assert_int_equal(fclose(f), 0);
}

static int schema_check(const char *path, char *out, size_t cap) {
  char *argv[] = {"cloud-init", "schema", "--config-file", (char *)path, NULL};
  return run(argv, out, cap);
}

/* PyYAML (what cloud-init loads user-data with) reads the credentials file's content, its
 * mode and the types of the values edgeprov writes. */
static const char pyyaml_check[] =
    "import sys, yaml\n"
    "d = yaml.safe_load(open(sys.argv[1]))\n"
    "assert isinstance(d['hostname'], str) and d['preserve_hostname'] is False and d['ssh_pwauth'] is False\n"
    "f = [w for w in d['write_files'] if w['path'] == '/etc/edgeprov/credentials']\n"
    "assert len(f) == 1, f\n"
    "f = f[0]\n"
    "assert f['permissions'] == '0600' and f['owner'] == 'root:root' and f['defer'] is False, f\n"
    "assert all(isinstance(u['name'], str) for u in d.get('users', []) if isinstance(u, dict))\n"
    "sys.stdout.write(f['content'])\n";

static void cloud_init_accepts(void **state) {
  (void)state;
  char dir[] = "/tmp/ep-cloudinit-XXXXXX";
  assert_non_null(mkdtemp(dir));
  char path[128], out[16384];
  char *version_argv[] = {"cloud-init", "--version", NULL};
  if (run(version_argv, out, sizeof out) != 0) fail_msg("cloud-init is not installed (scripts/install-deps.sh): %s", out);
  print_message("%s", out);

  ep_cloudinit_user users[2];
  ep_cloudinit_spec specs[4];
  specs[0] = full_spec(users);
  specs[1] = specs[0];
  specs[1].user_count = 0;
  specs[1].token_url = NULL;
  specs[1].project_id = NULL;
  specs[2] = specs[0];
  specs[2].hostname = "0600";
  const char *const frags[] = {"runcmd: [[systemctl, enable, --now, edgeprov-agent]]\npackages: [curl]\n"
                               "write_files: [{path: /etc/motd, content: \"hi\\n\", permissions: '0644'}]\n"
                               "users: [default]\nca_certs: {remove_defaults: false}\n",
                               "runcmd: [\"echo done\"]\ntimezone: UTC\nntp: {enabled: true}\n"};
  specs[3] = specs[0];
  specs[3].fragments = frags;
  specs[3].fragment_count = 2;
  for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
    char *text = NULL;
    size_t len = 0;
    assert_int_equal(ep_cloudinit_user_data(&text, &len, &specs[i]), 0);
    snprintf(path, sizeof path, "%s/user-data-%zu", dir, i);
    write_file(path, text);
    int status = schema_check(path, out, sizeof out);
    if (status != 0 || !strstr(out, "Valid cloud-config") || strstr(out, "DEPRECAT"))
      fail_msg("cloud-init schema on spec %zu: exit %d:\n%s\n--- user-data:\n%s", i, status, out, text);
    char *py_argv[] = {SYSTEM_PYTHON3, "-c", (char *)pyyaml_check, path, NULL};
    status = run(py_argv, out, sizeof out);
    if (status != 0) fail_msg("PyYAML check on spec %zu: exit %d: %s", i, status, out);
    const char *project = specs[i].project_id ? specs[i].project_id : "";
    char want[512];
    snprintf(want, sizeof want, "client_id=node-4d2f\nclient_secret=" SECRET "\nproject_id=%s\n", project);
    assert_string_equal(out, want);
    ep_cloudinit_free(text);
    unlink(path);
  }

  /* The check can fail: a wrong type, and edgeprov's own output with the quotes taken off
   * permissions (YAML 1.1 reads 0600 as the number 384). */
  snprintf(path, sizeof path, "%s/broken-0", dir);
  write_file(path, "#cloud-config\nwrite_files: 5\n");
  int status = schema_check(path, out, sizeof out);
  if (status == 0) fail_msg("cloud-init schema accepted write_files: 5: %s", out);
  assert_non_null(strstr(out, "write_files: 5 is not of type 'array'"));
  unlink(path);
  char *text = NULL;
  size_t len = 0;
  assert_int_equal(ep_cloudinit_user_data(&text, &len, &specs[0]), 0);
  char *quoted = strstr(text, "permissions: '0600'");
  assert_non_null(quoted);
  memcpy(quoted, "permissions:  0600 ", 19);
  snprintf(path, sizeof path, "%s/broken-1", dir);
  write_file(path, text);
  status = schema_check(path, out, sizeof out);
  if (status == 0) fail_msg("cloud-init schema accepted permissions: 0600 (a number): %s", out);
  assert_non_null(strstr(out, "is not of type 'string'"));
  ep_cloudinit_free(text);
  unlink(path);
  assert_int_equal(rmdir(dir), 0);
}

/* ---- Reading the seed back (ep_cloudinit_seed_read) ---- */

static void seed_round_trips(void **state) {
  (void)state;
  /* A site fragment appends its own CA and files: the seed still takes edgeprov's. */
  const char *const frags[] = {"ca_certs:\n  trusted:\n    - |\n"
                               "      -----BEGIN CERTIFICATE-----\n      MIIB\n      -----END CERTIFICATE-----\n"
                               "write_files: [{path: /etc/motd, content: \"client_id=not-this\"}]\n"};
  for (size_t with_fragment = 0; with_fragment < 2; with_fragment++) {
    size_t len = 0;
    char *text = render_with(frags, with_fragment, &len);
    ep_cloudinit_seed seed;
    int r = ep_cloudinit_seed_read(&seed, text, len);
    if (r != 0) fail_msg("seed_read: %d %s", r, ep_error_message());
    assert_string_equal(seed.hostname, "node-12.site.example");
    assert_string_equal(seed.client_id, "node-4d2f");
    assert_string_equal(seed.client_secret, SECRET);
    assert_string_equal(seed.project_id, "0600");
    assert_string_equal(seed.orchestrator, "orch.site.example:50051");
    assert_string_equal(seed.token_url, "https://orch.site.example:8443/oauth2/token");
    assert_string_equal(seed.ca_pem, ca_pem);
    ep_cloudinit_seed_clear(&seed);
    assert_null(seed.ca_pem);
    assert_int_equal(seed.client_secret[0], 0);
    ep_cloudinit_free(text);
  }
  /* Without a token URL, agent.conf has none and the seed says "". */
  ep_cloudinit_user users[2];
  ep_cloudinit_spec spec = full_spec(users);
  spec.token_url = NULL;
  spec.project_id = NULL;
  char *text = NULL;
  size_t len = 0;
  assert_int_equal(ep_cloudinit_user_data(&text, &len, &spec), 0);
  ep_cloudinit_seed seed;
  assert_int_equal(ep_cloudinit_seed_read(&seed, text, len), 0);
  assert_string_equal(seed.token_url, "");
  assert_string_equal(seed.project_id, "");
  ep_cloudinit_seed_clear(&seed);
  ep_cloudinit_free(text);
}

/* Reads text edited by replacing from with to; asserts failure with code and prefix. */
static void assert_seed_refused(const char *text, const char *from, const char *to, int code, const char *prefix) {
  char edited[16384];
  const char *at = from ? strstr(text, from) : NULL;
  if (from && !at) fail_msg("'%s' is not in the user-data", from);
  if (at) snprintf(edited, sizeof edited, "%.*s%s%s", (int)(at - text), text, to, at + strlen(from));
  else snprintf(edited, sizeof edited, "%s", text);
  ep_cloudinit_seed seed;
  memset(&seed, 0x55, sizeof seed);
  int r = ep_cloudinit_seed_read(&seed, edited, strlen(edited));
  if (r != code) fail_msg("expected %d, got %d (%s) for '%s'", code, r, ep_error_message(), prefix);
  if (strncmp(ep_error_message(), prefix, strlen(prefix)))
    fail_msg("message '%s' does not start with '%s'", ep_error_message(), prefix);
  assert_null(strstr(ep_error_message(), SECRET));
  assert_null(seed.ca_pem); /* zeroed on failure */
  assert_int_equal(seed.client_secret[0], 0);
}

static void seed_refused(void **state) {
  (void)state;
  size_t len = 0;
  char *text = render_with(NULL, 0, &len);
  assert_true(len < 16000);
  assert_seed_refused(text, "#cloud-config", "#!/bin/sh", EP_EINVAL, "user-data: does not start with #cloud-config");
  assert_seed_refused(text, "hostname:", "host:", EP_EINVAL, "user-data: hostname: missing");
  assert_seed_refused(text, EP_CLOUDINIT_CREDENTIALS_PATH, "/etc/edgeprov/creds", EP_EINVAL,
                      "user-data: write_files: no /etc/edgeprov/credentials");
  assert_seed_refused(text, EP_CLOUDINIT_AGENT_CONF_PATH, "/etc/agent.conf", EP_EINVAL,
                      "user-data: write_files: no /etc/edgeprov/agent.conf");
  assert_seed_refused(text, "client_secret=", "secret=", EP_EINVAL, "user-data: credentials: client_secret: missing");
  assert_seed_refused(text, "client_id=node-4d2f", "client_id=node 4d2f", EP_EINVAL, "user-data: credentials: client_id");
  assert_seed_refused(text, "orchestrator=orch.site.example:50051", "orchestrator=orch.site.example", EP_EINVAL,
                      "orchestrator: ");
  assert_seed_refused(text, "token_url=https://", "token_url=http://", EP_EINVAL, "token_url: ");
  assert_seed_refused(text, "-----BEGIN CERTIFICATE-----", "-----BEGIN PRIVATE KEY-----", EP_EINVAL,
                      "user-data: ca_certs.trusted[0]: ");
  assert_seed_refused(text, "hostname:", "hostname: &a x\nother:", EP_EINVAL, "user-data: line ");
  assert_seed_refused(text, "hostname:", "hostname: [", EP_EINVAL, "user-data: line ");
  ep_cloudinit_free(text);
  char *huge = malloc(EP_CLOUDINIT_MAX + 2);
  assert_non_null(huge);
  memset(huge, 'a', EP_CLOUDINIT_MAX + 1);
  ep_cloudinit_seed seed;
  assert_int_equal(ep_cloudinit_seed_read(&seed, huge, EP_CLOUDINIT_MAX + 1), EP_ERANGE);
  free(huge);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(full_spec_round_trips), cmocka_unit_test(misreadable_values_stay_strings),
      cmocka_unit_test(meta_data),             cmocka_unit_test(bad_fields_refused),
      cmocka_unit_test(fragments_merge),       cmocka_unit_test(fragments_refused),
      cmocka_unit_test(fragment_limits),       cmocka_unit_test(cloud_init_accepts),
      cmocka_unit_test(seed_round_trips),      cmocka_unit_test(seed_refused),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
