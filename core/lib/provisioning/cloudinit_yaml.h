/* core: the cloud-init document tree: what edgeprov builds, what libyaml loads (site fragments, a
 * seed read back) and what the emitter writes. Internal to the cloud-init files of
 * provisioning/, as is every ep_ci_* name. */
#ifndef EP_CORE_CLOUDINIT_YAML_H
#define EP_CORE_CLOUDINIT_YAML_H

#include <stdbool.h>
#include <stddef.h>
#include <yaml.h>

#define EP_CI_ORIGIN_EDGEPROV (-1) /* origin of what edgeprov writes (else the fragment's index) */
#define EP_CI_KEY_PATH_MAX 160     /* longest key path quoted in a message */

typedef enum ep_ci_kind { EP_CI_SCALAR, EP_CI_SEQ, EP_CI_MAP } ep_ci_kind;

/* A node owns its text and its items. */
typedef struct ep_ci_node ep_ci_node;
struct ep_ci_node {
  ep_ci_kind kind;
  int origin;                /* EP_CI_ORIGIN_EDGEPROV, or the fragment's index */
  yaml_scalar_style_t style; /* scalars: plain only for keys, booleans and fragment plain text */
  char *text;                /* scalars: len bytes plus a NUL (may hold NULs from "\0" escapes) */
  size_t len;
  ep_ci_node **items; /* sequences: the items; mappings: key, value, key, value, ... */
  size_t count, cap;
};

/* Building: the helpers below take NULL (an earlier allocation failed) and record failures in
 * oom, so a document is built without a check per call and checked once at the end. */
typedef struct ep_ci_build {
  int origin; /* given to every node made */
  bool oom;
} ep_ci_build;

/* Frees n and its children, zeroing scalar text (the credentials file is a scalar); NULL is fine. */
void ep_ci_node_free(ep_ci_node *n);

/* Makes room for extra more items in n: 0 or EP_ENOMEM (no message set). */
int ep_ci_reserve(ep_ci_node *n, size_t extra);

/* An empty sequence or mapping, or NULL (b->oom set). */
ep_ci_node *ep_ci_node_new(ep_ci_build *b, ep_ci_kind kind);

/* A scalar holding a copy of len bytes of text, written in style, or NULL (b->oom set). */
ep_ci_node *ep_ci_scalar(ep_ci_build *b, const char *text, size_t len, yaml_scalar_style_t style);

/* A string value: a literal block when it spans lines, else single-quoted (the emitter moves
 * to double quotes when single quotes cannot carry it). Never plain. */
ep_ci_node *ep_ci_str(ep_ci_build *b, const char *text);

/* A plain scalar: keys edgeprov chooses and the booleans true/false. */
ep_ci_node *ep_ci_plain(ep_ci_build *b, const char *text);
ep_ci_node *ep_ci_bool(ep_ci_build *b, bool value);

/* Appends item to the sequence seq, or sets key (a plain scalar) to value in the mapping map;
 * takes item/value (freed on failure, with b->oom set). */
void ep_ci_add(ep_ci_build *b, ep_ci_node *seq, ep_ci_node *item);
void ep_ci_put(ep_ci_build *b, ep_ci_node *map, const char *key, ep_ci_node *value);

/* The value of key (len bytes) in the mapping map, or NULL. */
ep_ci_node *ep_ci_map_get(const ep_ci_node *map, const char *key, size_t len);

/* "path.key" for messages, control and non-ASCII bytes of the key shown as '?', cut to fit. */
void ep_ci_key_path(char out[EP_CI_KEY_PATH_MAX], const char *path, const ep_ci_node *key);

/* "mapping", "sequence" or "scalar". */
const char *ep_ci_kind_name(ep_ci_kind kind);

/* Parses text (len bytes, UTF-8 YAML holding one mapping) into a tree whose nodes carry
 * origin; what names the text in error messages ("fragments[2]", "user-data"). Refuses
 * anchors and aliases, tags, several documents, nesting past EP_CLOUDINIT_DEPTH_MAX, mappings
 * of more than EP_CLOUDINIT_KEYS_MAX keys, non-scalar, empty, "<<" and repeated keys.
 * EP_EINVAL / EP_ERANGE (message names the line), EP_ENOMEM. */
int ep_ci_load(ep_ci_node **out, const char *what, int origin, const char *text, size_t len);

/* Writes header, then root as one YAML document, into *out (ret_len bytes plus a NUL,
 * malloc'd: release with ep_cloudinit_free). At most EP_CLOUDINIT_MAX bytes (EP_ERANGE); the
 * buffer is zeroed as it grows. what names the document in messages. */
int ep_ci_render(char **out, size_t *ret_len, const char *what, const char *header, const ep_ci_node *root);

#endif
