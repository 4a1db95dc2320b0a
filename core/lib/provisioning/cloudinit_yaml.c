/* core: the cloud-init document tree, see cloudinit_yaml.h.
 *
 * Documents are built as a small tree, site fragments and seeds are loaded into it with
 * libyaml, and the tree is written out through libyaml's emitter, event by event. Values
 * edgeprov writes are never plain scalars (single-quoted, or literal blocks when they span
 * lines), so nothing an operator or a node supplies can be read back as YAML syntax, a
 * boolean, a number or null. Scalars from fragments keep the style they were written in, so
 * they read back as their author meant. */
#define _DEFAULT_SOURCE /* explicit_bzero */
#include "provisioning/cloudinit_yaml.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/error.h"
#include "provisioning/cloudinit_limits.h"

/* ---- The tree ----------------------------------------------------------------------------- */

void ep_ci_node_free(ep_ci_node *n) {
  if (!n) return;
  if (n->text) {
    explicit_bzero(n->text, n->len); /* the credentials file content is a scalar */
    free(n->text);
  }
  for (size_t i = 0; i < n->count; i++) ep_ci_node_free(n->items[i]);
  free(n->items);
  free(n);
}

int ep_ci_reserve(ep_ci_node *n, size_t extra) {
  if (n->cap - n->count >= extra) return 0;
  size_t cap = n->cap ? n->cap : 8;
  while (cap - n->count < extra) cap *= 2;
  ep_ci_node **items = realloc(n->items, cap * sizeof *items);
  if (!items) return EP_ENOMEM;
  n->items = items;
  n->cap = cap;
  return 0;
}

ep_ci_node *ep_ci_node_new(ep_ci_build *b, ep_ci_kind kind) {
  ep_ci_node *n = calloc(1, sizeof *n);
  if (!n) {
    b->oom = true;
    return NULL;
  }
  n->kind = kind;
  n->origin = b->origin;
  return n;
}

ep_ci_node *ep_ci_scalar(ep_ci_build *b, const char *text, size_t len, yaml_scalar_style_t style) {
  ep_ci_node *n = ep_ci_node_new(b, EP_CI_SCALAR);
  if (!n) return NULL;
  n->text = malloc(len + 1);
  if (!n->text) {
    free(n);
    b->oom = true;
    return NULL;
  }
  memcpy(n->text, text, len);
  n->text[len] = '\0';
  n->len = len;
  n->style = style;
  return n;
}

ep_ci_node *ep_ci_str(ep_ci_build *b, const char *text) {
  yaml_scalar_style_t style = strchr(text, '\n') ? YAML_LITERAL_SCALAR_STYLE : YAML_SINGLE_QUOTED_SCALAR_STYLE;
  return ep_ci_scalar(b, text, strlen(text), style);
}

ep_ci_node *ep_ci_plain(ep_ci_build *b, const char *text) {
  return ep_ci_scalar(b, text, strlen(text), YAML_PLAIN_SCALAR_STYLE);
}

ep_ci_node *ep_ci_bool(ep_ci_build *b, bool value) { return ep_ci_plain(b, value ? "true" : "false"); }

void ep_ci_add(ep_ci_build *b, ep_ci_node *seq, ep_ci_node *item) {
  if (!seq || !item || ep_ci_reserve(seq, 1) < 0) {
    ep_ci_node_free(item);
    b->oom = true;
    return;
  }
  seq->items[seq->count++] = item;
}

void ep_ci_put(ep_ci_build *b, ep_ci_node *map, const char *key, ep_ci_node *value) {
  ep_ci_node *k = ep_ci_plain(b, key);
  if (!map || !k || !value || ep_ci_reserve(map, 2) < 0) {
    ep_ci_node_free(k);
    ep_ci_node_free(value);
    b->oom = true;
    return;
  }
  map->items[map->count++] = k;
  map->items[map->count++] = value;
}

ep_ci_node *ep_ci_map_get(const ep_ci_node *map, const char *key, size_t len) {
  for (size_t i = 0; i + 1 < map->count; i += 2)
    if (map->items[i]->len == len && !memcmp(map->items[i]->text, key, len)) return map->items[i + 1];
  return NULL;
}

/* ---- Loading ------------------------------------------------------------------------------ */

static int parse_error(const char *what, const yaml_parser_t *p) {
  if (p->error == YAML_MEMORY_ERROR) return ep_error_set(EP_ENOMEM, "%s: out of memory", what);
  if (p->error == YAML_READER_ERROR)
    return ep_error_set(EP_EINVAL, "%s: byte %zu: %s (expected UTF-8 text)", what, p->problem_offset,
                        p->problem ? p->problem : "unreadable");
  return ep_error_set(EP_EINVAL, "%s: line %zu column %zu: %s%s%s", what, p->problem_mark.line + 1,
                      p->problem_mark.column + 1, p->problem ? p->problem : "not YAML", p->context ? " " : "",
                      p->context ? p->context : "");
}

static void parser_input(yaml_parser_t *p, const char *text, size_t len) {
  yaml_parser_set_input_string(p, (const unsigned char *)text, len);
  yaml_parser_set_encoding(p, YAML_UTF8_ENCODING);
}

/* First pass over the events: refuses what the tree cannot carry faithfully or safely
 * (aliases and anchors: billion laughs; tags; several documents; deep nesting). */
static int fragment_scan(const char *what, const char *text, size_t len) {
  yaml_parser_t p;
  if (!yaml_parser_initialize(&p)) return ep_error_set(EP_ENOMEM, "%s: out of memory", what);
  parser_input(&p, text, len);
  int r = 0, depth = 0, documents = 0;
  for (bool end = false; !end && r == 0;) {
    yaml_event_t ev;
    if (!yaml_parser_parse(&p, &ev)) {
      r = parse_error(what, &p);
      break;
    }
    const yaml_char_t *anchor = NULL, *tag = NULL;
    switch (ev.type) {
    case YAML_SCALAR_EVENT:
      anchor = ev.data.scalar.anchor;
      tag = ev.data.scalar.tag;
      break;
    case YAML_SEQUENCE_START_EVENT:
      anchor = ev.data.sequence_start.anchor;
      tag = ev.data.sequence_start.tag;
      depth++;
      break;
    case YAML_MAPPING_START_EVENT:
      anchor = ev.data.mapping_start.anchor;
      tag = ev.data.mapping_start.tag;
      depth++;
      break;
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT:
      depth--;
      break;
    case YAML_DOCUMENT_START_EVENT:
      documents++;
      break;
    case YAML_STREAM_END_EVENT:
      end = true;
      break;
    default:
      break;
    }
    size_t line = ev.start_mark.line + 1;
    if (ev.type == YAML_ALIAS_EVENT || anchor)
      r = ep_error_set(EP_EINVAL,
                       "%s: line %zu: anchors and aliases (&name, *name) are refused; write the value out",
                       what, line);
    else if (tag)
      r = ep_error_set(EP_EINVAL, "%s: line %zu: tags (!name) are refused; write plain YAML", what, line);
    else if (depth > EP_CLOUDINIT_DEPTH_MAX)
      r = ep_error_set(EP_ERANGE, "%s: line %zu: nested deeper than %d levels", what, line,
                       EP_CLOUDINIT_DEPTH_MAX);
    else if (documents > 1)
      r = ep_error_set(EP_EINVAL, "%s: line %zu: a second YAML document; give one mapping per fragment", what,
                       line);
    yaml_event_delete(&ev);
  }
  yaml_parser_delete(&p);
  return r;
}

void ep_ci_key_path(char out[EP_CI_KEY_PATH_MAX], const char *path, const ep_ci_node *key) {
  size_t n = (size_t)snprintf(out, EP_CI_KEY_PATH_MAX, "%s%s", path, *path ? "." : "");
  if (n >= EP_CI_KEY_PATH_MAX) n = EP_CI_KEY_PATH_MAX - 1;
  for (size_t i = 0; i < key->len && n + 1 < EP_CI_KEY_PATH_MAX; i++) {
    unsigned char c = (unsigned char)key->text[i];
    out[n++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
  }
  out[n] = '\0';
}

typedef struct loaded {
  yaml_document_t *doc;
  const char *what;
  ep_ci_build b;
} loaded;

/* Copies a loaded node into the tree; refuses non-scalar, empty, "<<" and repeated keys. */
static int convert(ep_ci_node **out, loaded *l, const yaml_node_t *yn) {
  size_t line = yn->start_mark.line + 1;
  ep_ci_node *n = NULL;
  if (yn->type == YAML_SCALAR_NODE) {
    yaml_scalar_style_t style = yn->data.scalar.style;
    const char *v = (const char *)yn->data.scalar.value;
    /* PyYAML (cloud-init's loader) resolves these plain scalars to tags it cannot construct,
     * which would make the whole user-data unreadable on the node. */
    if (style == YAML_PLAIN_SCALAR_STYLE && (!strcmp(v, "=") || !strcmp(v, "<<")))
      return ep_error_set(EP_EINVAL, "%s: line %zu: a plain '%s' cannot be loaded by cloud-init; quote it",
                          l->what, line, v);
    if (style == YAML_FOLDED_SCALAR_STYLE) style = YAML_LITERAL_SCALAR_STYLE; /* same string, written exactly */
    n = ep_ci_scalar(&l->b, (const char *)yn->data.scalar.value, yn->data.scalar.length, style);
  } else if (yn->type == YAML_SEQUENCE_NODE) {
    n = ep_ci_node_new(&l->b, EP_CI_SEQ);
    for (yaml_node_item_t *it = yn->data.sequence.items.start; n && it < yn->data.sequence.items.top; it++) {
      ep_ci_node *child = NULL;
      int r = convert(&child, l, yaml_document_get_node(l->doc, *it));
      if (r < 0) {
        ep_ci_node_free(n);
        return r;
      }
      ep_ci_add(&l->b, n, child);
    }
  } else if (yn->type == YAML_MAPPING_NODE) {
    /* Keys are looked up one by one: their number bounds the work. */
    if (yn->data.mapping.pairs.top - yn->data.mapping.pairs.start > EP_CLOUDINIT_KEYS_MAX)
      return ep_error_set(EP_ERANGE, "%s: line %zu: a mapping with more than %d keys", l->what, line,
                          EP_CLOUDINIT_KEYS_MAX);
    n = ep_ci_node_new(&l->b, EP_CI_MAP);
    for (yaml_node_pair_t *pair = yn->data.mapping.pairs.start; n && pair < yn->data.mapping.pairs.top; pair++) {
      const yaml_node_t *k = yaml_document_get_node(l->doc, pair->key);
      size_t kline = k->start_mark.line + 1;
      int r = 0;
      if (k->type != YAML_SCALAR_NODE)
        r = ep_error_set(EP_EINVAL, "%s: line %zu: a key must be a string, not a %s", l->what, kline,
                         k->type == YAML_MAPPING_NODE ? "mapping" : "sequence");
      else if (k->data.scalar.length == 0)
        r = ep_error_set(EP_EINVAL, "%s: line %zu: empty key", l->what, kline);
      else if (k->data.scalar.length == 2 && !memcmp(k->data.scalar.value, "<<", 2))
        r = ep_error_set(EP_EINVAL, "%s: line %zu: merge keys (<<) are refused; write the keys out", l->what,
                         kline);
      else if (ep_ci_map_get(n, (const char *)k->data.scalar.value, k->data.scalar.length)) {
        ep_ci_node shown = {.text = (char *)k->data.scalar.value, .len = k->data.scalar.length};
        char name[EP_CI_KEY_PATH_MAX];
        ep_ci_key_path(name, "", &shown);
        r = ep_error_set(EP_EINVAL, "%s: line %zu: key '%s' appears twice in one mapping", l->what, kline, name);
      }
      ep_ci_node *key = NULL, *value = NULL;
      if (r == 0) r = convert(&key, l, k);
      if (r == 0) r = convert(&value, l, yaml_document_get_node(l->doc, pair->value));
      if (r < 0) {
        ep_ci_node_free(key);
        ep_ci_node_free(n);
        return r;
      }
      if (key && value && ep_ci_reserve(n, 2) == 0) {
        n->items[n->count++] = key;
        n->items[n->count++] = value;
      } else {
        ep_ci_node_free(key);
        ep_ci_node_free(value);
        l->b.oom = true;
      }
    }
  }
  if (l->b.oom || !n) {
    ep_ci_node_free(n);
    return ep_error_set(EP_ENOMEM, "%s: line %zu: out of memory", l->what, line);
  }
  *out = n;
  return 0;
}

const char *ep_ci_kind_name(ep_ci_kind kind) {
  return kind == EP_CI_MAP ? "mapping" : kind == EP_CI_SEQ ? "sequence" : "scalar";
}

int ep_ci_load(ep_ci_node **out, const char *what, int origin, const char *text, size_t len) {
  int r = fragment_scan(what, text, len);
  if (r < 0) return r;
  yaml_parser_t p;
  yaml_document_t doc;
  if (!yaml_parser_initialize(&p)) return ep_error_set(EP_ENOMEM, "%s: out of memory", what);
  parser_input(&p, text, len);
  if (!yaml_parser_load(&p, &doc)) {
    r = parse_error(what, &p);
    yaml_parser_delete(&p);
    return r;
  }
  const yaml_node_t *root = yaml_document_get_root_node(&doc);
  if (!root)
    r = ep_error_set(EP_EINVAL, "%s: empty; expected a mapping of cloud-config keys", what);
  else if (root->type != YAML_MAPPING_NODE)
    r = ep_error_set(EP_EINVAL, "%s: is a %s; expected a mapping of cloud-config keys (key: value)", what,
                     root->type == YAML_SEQUENCE_NODE ? "sequence" : "scalar");
  else {
    loaded l = {.doc = &doc, .what = what, .b = {.origin = origin}};
    r = convert(out, &l, root);
  }
  yaml_document_delete(&doc);
  yaml_parser_delete(&p);
  return r;
}

/* ---- Emitting ----------------------------------------------------------------------------- */

/* The output: grows up to EP_CLOUDINIT_MAX bytes, zeroing what it leaves behind (it holds the
 * client secret). */
typedef struct outbuf {
  ep_buf buf;
  bool over;
} outbuf;

static int out_write(void *data, unsigned char *bytes, size_t size) {
  outbuf *o = data;
  int r = ep_buf_append(&o->buf, bytes, size);
  if (r == EP_ERANGE) o->over = true;
  return r == 0;
}

static int emit(yaml_emitter_t *e, yaml_event_t *ev, int initialized) { return initialized && yaml_emitter_emit(e, ev); }

/* Plain scalars may resolve to other types (true, 0600, null) and are written only where the
 * tree says plain; the rest carry no tag and are quoted or block, so they read back as strings. */
static int emit_node(yaml_emitter_t *e, const ep_ci_node *n) {
  yaml_event_t ev;
  switch (n->kind) {
  case EP_CI_SCALAR:
    return emit(e, &ev,
                yaml_scalar_event_initialize(&ev, NULL, NULL, (const yaml_char_t *)n->text, (int)n->len,
                                             n->style == YAML_PLAIN_SCALAR_STYLE, 1, n->style));
  case EP_CI_SEQ:
    if (!emit(e, &ev, yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_SEQUENCE_STYLE))) return 0;
    for (size_t i = 0; i < n->count; i++)
      if (!emit_node(e, n->items[i])) return 0;
    return emit(e, &ev, yaml_sequence_end_event_initialize(&ev));
  case EP_CI_MAP:
    if (!emit(e, &ev, yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_MAPPING_STYLE))) return 0;
    for (size_t i = 0; i < n->count; i++)
      if (!emit_node(e, n->items[i])) return 0;
    return emit(e, &ev, yaml_mapping_end_event_initialize(&ev));
  }
  return 0;
}

int ep_ci_render(char **out, size_t *ret_len, const char *what, const char *header, const ep_ci_node *root) {
  outbuf o = {.over = false};
  ep_buf_init(&o.buf, what, EP_CLOUDINIT_MAX, EP_BUF_WIPE);
  yaml_emitter_t e;
  yaml_event_t ev;
  if (!yaml_emitter_initialize(&e)) return ep_error_set(EP_ENOMEM, "%s: out of memory", what);
  yaml_emitter_set_output(&e, out_write, &o);
  yaml_emitter_set_unicode(&e, 1);
  yaml_emitter_set_width(&e, -1); /* no folding of long lines */
  yaml_emitter_set_indent(&e, 2);
  int ok = out_write(&o, (unsigned char *)(uintptr_t)header, strlen(header)) &&
           emit(&e, &ev, yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING)) &&
           emit(&e, &ev, yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1)) && emit_node(&e, root) &&
           emit(&e, &ev, yaml_document_end_event_initialize(&ev, 1)) &&
           emit(&e, &ev, yaml_stream_end_event_initialize(&ev)) && yaml_emitter_flush(&e);
  int r = 0;
  if (!ok && o.over)
    r = ep_error_set(EP_ERANGE, "%s: longer than %d bytes; shorten the site's cloud-config fragments", what, EP_CLOUDINIT_MAX);
  else if (!ok && e.error == YAML_EMITTER_ERROR)
    r = ep_error_set(EP_EINVAL, "%s: YAML emitter: %s", what, e.problem ? e.problem : "failed");
  else if (!ok)
    r = ep_error_set(EP_ENOMEM, "%s: out of memory", what);
  if (e.buffer.start) explicit_bzero(e.buffer.start, (size_t)(e.buffer.end - e.buffer.start));
  yaml_emitter_delete(&e);
  char *text = r == 0 ? ep_buf_take(&o.buf, ret_len) : NULL;
  ep_buf_free(&o.buf);
  if (r == 0 && !text) r = ep_error_set(EP_ENOMEM, "%s: out of memory", what);
  if (r < 0) return r;
  *out = text;
  return 0;
}
