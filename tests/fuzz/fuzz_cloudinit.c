/* Fuzzes the cloud-init renderer (provisioning/cloudinit*.c) with arbitrary bytes as a site
 * fragment, as a host name and as an SSH key, and checks its promises: nothing crashes, and
 * what is accepted parses back with libyaml with edgeprov's values (host name, credentials,
 * key) intact. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "provisioning/cloudinit.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CREDENTIALS "client_id=node-1\nclient_secret=fuzz-secret\nproject_id=p\n"

static const char ca[] =
    "-----BEGIN CERTIFICATE-----\nMIIBizCCATGgAwIBAgIUPzNpdVDYfBeZOQAwcNNfGZR1cZUw\n-----END CERTIFICATE-----\n";
static const char key[] = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEnHaSEbgBO3L4B4CbCjWG4fTuIUXGuhFznBzDUOR4RY ops@site";

/* The node at a path of mapping keys and sequence indexes ("write_files/0/content"). */
static const yaml_node_t *at(yaml_document_t *doc, const char *const *path, size_t depth) {
  const yaml_node_t *n = yaml_document_get_root_node(doc);
  for (size_t d = 0; n && d < depth; d++) {
    const yaml_node_t *next = NULL;
    if (n->type == YAML_SEQUENCE_NODE) {
      long i = strtol(path[d], NULL, 10);
      if (i < n->data.sequence.items.top - n->data.sequence.items.start)
        next = yaml_document_get_node(doc, n->data.sequence.items.start[i]);
    } else if (n->type == YAML_MAPPING_NODE) {
      for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        const yaml_node_t *k = yaml_document_get_node(doc, p->key);
        if (k->type != YAML_SCALAR_NODE || k->data.scalar.length != strlen(path[d]) ||
            memcmp(k->data.scalar.value, path[d], k->data.scalar.length))
          continue;
        if (next) abort(); /* a key edgeprov writes appears twice */
        next = yaml_document_get_node(doc, p->value);
      }
    }
    n = next;
  }
  return n;
}

static void expect(yaml_document_t *doc, const char *const *path, size_t depth, const char *want) {
  const yaml_node_t *n = at(doc, path, depth);
  if (!n || n->type != YAML_SCALAR_NODE || n->data.scalar.length != strlen(want) ||
      memcmp(n->data.scalar.value, want, strlen(want)) || n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE)
    abort();
}

/* Parses accepted output back and checks edgeprov's own values. */
static void check(char *out, size_t len, const ep_cloudinit_spec *spec, bool user_data) {
  if (len != strlen(out) || len > EP_CLOUDINIT_MAX) abort();
  if (user_data && strncmp(out, "#cloud-config\n", 14)) abort();
  yaml_parser_t parser;
  yaml_document_t doc;
  if (!yaml_parser_initialize(&parser)) abort();
  yaml_parser_set_input_string(&parser, (const unsigned char *)out, len);
  if (!yaml_parser_load(&parser, &doc)) abort();
  const yaml_node_t *root = yaml_document_get_root_node(&doc);
  if (!root || root->type != YAML_MAPPING_NODE) abort();
  if (user_data) {
    expect(&doc, (const char *const[]){"hostname"}, 1, spec->hostname);
    expect(&doc, (const char *const[]){"write_files", "0", "path"}, 3, EP_CLOUDINIT_CREDENTIALS_PATH);
    expect(&doc, (const char *const[]){"write_files", "0", "content"}, 3, CREDENTIALS);
    expect(&doc, (const char *const[]){"write_files", "0", "permissions"}, 3, "0600");
    expect(&doc, (const char *const[]){"ca_certs", "trusted", "0"}, 3, ca);
    expect(&doc, (const char *const[]){"users", "0", "ssh_authorized_keys", "0"}, 4, spec->users[0].ssh_keys[0]);
  } else {
    expect(&doc, (const char *const[]){"local-hostname"}, 1, spec->hostname);
  }
  yaml_document_delete(&doc);
  yaml_parser_delete(&parser);
  ep_cloudinit_free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > EP_CLOUDINIT_FRAGMENT_MAX + 16) return 0;
  char *text = malloc(size + 1);
  if (!text) return 0;
  memcpy(text, data, size);
  text[size] = '\0';

  const char *keys[] = {key};
  ep_cloudinit_user user = {.name = "ops", .ssh_keys = keys, .ssh_key_count = 1, .sudo = true};
  const char *fragments[] = {text};
  ep_cloudinit_spec spec = {.instance_id = "i-1", .hostname = "node-1", .ca_pem = ca, .client_id = "node-1",
                            .client_secret = "fuzz-secret", .project_id = "p", .orchestrator = "orch:50051",
                            .users = &user, .user_count = 1, .fragments = fragments, .fragment_count = 1};
  char *out = NULL;
  size_t len = 0;

  /* As a fragment. */
  if (ep_cloudinit_user_data(&out, &len, &spec) == 0) check(out, len, &spec, true);
  else if (out) abort();

  /* As a host name, and as an SSH key. */
  spec.fragment_count = 0;
  spec.hostname = text;
  if (ep_cloudinit_user_data(&out, &len, &spec) == 0) check(out, len, &spec, true);
  if (ep_cloudinit_meta_data(&out, &len, &spec) == 0) check(out, len, &spec, false);
  spec.hostname = "node-1";
  keys[0] = text;
  if (ep_cloudinit_user_data(&out, &len, &spec) == 0) check(out, len, &spec, true);
  free(text);
  return 0;
}
