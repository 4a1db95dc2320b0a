/* core: nodes' logs in the store, see node_log.h. */
#define _GNU_SOURCE /* asprintf */
#include "provisioning/node_log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/error.h"
#include "base/redact.h"
#include "base/validate.h"

#define CAS_RETRIES 16

/* "logs/<uuid>/head" or "logs/<uuid>/<slot>" (slot < 0: the head) into key. */
static void key_of(char key[64], const char *uuid, int slot) {
  if (slot < 0) snprintf(key, 64, "logs/%s/head", uuid);
  else snprintf(key, 64, "logs/%s/%03d", uuid, slot);
}

static void free_head(ep_node_log_head *head) {
  if (!head) return;
  /* A fresh head is malloc'd field by field, an unpacked one by protobuf-c: both free alike. */
  edgeprov__v1__log_head__free_unpacked(head, NULL);
}

/* Loads host uuid's head; a host without a log gets a fresh one, shaped for max_bytes, and
 * *ret_revision 0. */
static int load_head(ep_inventory *inv, const char *uuid, uint64_t max_bytes, ep_node_log_head **ret_head,
                     uint64_t *ret_revision) {
  char key[64];
  key_of(key, uuid, -1);
  uint8_t *data = NULL;
  size_t len = 0;
  int r = ep_inventory_load_raw(inv, key, &data, &len, ret_revision);
  if (r == EP_ENOENT) {
    *ret_revision = 0;
    ep_node_log_head *head = malloc(sizeof *head);
    char *copy = strdup(uuid);
    if (!head || !copy) {
      free(head);
      free(copy);
      return ep_error_set(EP_ENOMEM, "out of memory");
    }
    edgeprov__v1__log_head__init(head);
    head->host_uuid = copy;
    head->slot_seq = 1;
    head->next_line = 1;
    uint64_t slot_bytes = max_bytes / EP_NODE_LOG_SLOTS;
    if (slot_bytes < EP_NODE_LOG_LINE_BYTES_MAX) slot_bytes = EP_NODE_LOG_LINE_BYTES_MAX;
    head->slots = (uint32_t)(max_bytes / slot_bytes);
    head->slot_bytes = (uint32_t)slot_bytes;
    *ret_head = head;
    return 0;
  }
  if (r < 0) return r;
  *ret_head = edgeprov__v1__log_head__unpack(NULL, len, data);
  free(data);
  if (*ret_head && (!(*ret_head)->slots || (*ret_head)->slots > EP_NODE_LOG_SLOTS || !(*ret_head)->slot_bytes)) {
    free_head(*ret_head);
    *ret_head = NULL;
  }
  return *ret_head ? 0 : ep_error_set(EP_EIO, "record %s is corrupt (cannot decode)", key);
}

/* Slot seq of host uuid, or NULL when it is absent or holds another (older) seq. */
static int load_slot(ep_inventory *inv, const char *uuid, const ep_node_log_head *head, uint64_t seq,
                     Edgeprov__V1__LogSlot **ret_slot) {
  char key[64];
  key_of(key, uuid, (int)(seq % head->slots));
  uint8_t *data = NULL;
  size_t len = 0;
  *ret_slot = NULL;
  int r = ep_inventory_load_raw(inv, key, &data, &len, NULL);
  if (r == EP_ENOENT) return 0;
  if (r < 0) return r;
  Edgeprov__V1__LogSlot *slot = edgeprov__v1__log_slot__unpack(NULL, len, data);
  free(data);
  if (!slot) return ep_error_set(EP_EIO, "record %s is corrupt (cannot decode)", key);
  if (slot->slot_seq != seq) {
    edgeprov__v1__log_slot__free_unpacked(slot, NULL);
    return 0;
  }
  *ret_slot = slot;
  return 0;
}

static void free_slot(Edgeprov__V1__LogSlot *slot) {
  if (slot) edgeprov__v1__log_slot__free_unpacked(slot, NULL);
}

/* One write of an append: a packed slot or head. */
typedef struct pending {
  char key[64];
  uint8_t *data;
  size_t len;
} pending;

/* Packs the slot (seq, lines) into p. */
static int pack_slot(pending *p, const char *uuid, const ep_node_log_head *head, uint64_t seq, ep_node_log_line **lines,
                     size_t count) {
  Edgeprov__V1__LogSlot slot = EDGEPROV__V1__LOG_SLOT__INIT;
  slot.slot_seq = seq;
  slot.lines = lines;
  slot.n_lines = count;
  key_of(p->key, uuid, (int)(seq % head->slots));
  p->len = edgeprov__v1__log_slot__get_packed_size(&slot);
  if (!(p->data = malloc(p->len ? p->len : 1))) return ep_error_set(EP_ENOMEM, "out of memory");
  edgeprov__v1__log_slot__pack(&slot, p->data);
  return 0;
}

/* The lines of one append, redacted together (a secret may span lines: a private key's body,
 * a YAML block under a secret key), then split again. */
typedef struct batch {
  ep_node_log_line *lines;
  char *text; /* the redacted lines, each NUL-terminated in place */
  size_t count;
  size_t redacted;
} batch;

static void batch_clear(batch *b) {
  free(b->text);
  free(b->lines);
  memset(b, 0, sizeof *b);
}

static int batch_make(batch *b, uint32_t run, uint32_t action, const char *action_name, char *const *lines, size_t count) {
  memset(b, 0, sizeof *b);
  size_t total = 1;
  for (size_t i = 0; i < count; i++) total += strlen(lines[i]) + 1;
  char *joined = malloc(total);
  if (!joined) return ep_error_set(EP_ENOMEM, "out of memory");
  size_t used = 0;
  for (size_t i = 0; i < count; i++) {
    size_t len = strlen(lines[i]);
    memcpy(joined + used, lines[i], len);
    used += len;
    joined[used++] = '\n';
  }
  joined[used ? used - 1 : 0] = '\0'; /* no newline after the last */
  b->text = ep_redact_text(joined, &b->redacted);
  free(joined);
  if (!b->text) return ep_error_set(EP_ENOMEM, "out of memory");
  size_t split = 1;
  for (const char *p = b->text; *p; p++) split += *p == '\n';
  if (!(b->lines = calloc(split, sizeof *b->lines))) return batch_clear(b), ep_error_set(EP_ENOMEM, "out of memory");
  int64_t now = (int64_t)time(NULL);
  for (char *line = b->text, *next; line; line = next) {
    next = strchr(line, '\n');
    if (next) *next++ = '\0';
    if (!*line) continue; /* an empty line says nothing */
    ep_node_log_line *l = &b->lines[b->count++];
    edgeprov__v1__log_line__init(l);
    l->time = now;
    l->run = run;
    l->action = action;
    l->action_name = (char *)(action_name ? action_name : "");
    l->text = line;
  }
  return 0;
}

/* Builds the writes of appending lines[0..count) onto head (advanced in place) and the current
 * slot (NULL: none yet): the slots filled, then the head. out has room for count + 2. */
static int plan_append(const char *uuid, ep_node_log_head *head, Edgeprov__V1__LogSlot *current, ep_node_log_line *add,
                       size_t count, pending *out, size_t *ret_count) {
  uint64_t slot_cap = head->slot_bytes;
  size_t n = 0, kept = current ? current->n_lines : 0, size = 0;
  ep_node_log_line **lines = calloc(kept + count + 1, sizeof *lines);
  if (!lines) return ep_error_set(EP_ENOMEM, "out of memory");
  for (size_t i = 0; i < kept; i++) {
    lines[i] = current->lines[i];
    size += edgeprov__v1__log_line__get_packed_size(lines[i]) + 3;
  }
  size_t used = kept;
  int r = 0;
  for (size_t i = 0; r == 0 && i < count; i++) {
    ep_node_log_line *line = &add[i];
    line->seq = head->next_line++;
    size_t line_size = edgeprov__v1__log_line__get_packed_size(line) + 3;
    if (used && size + line_size > slot_cap) { /* this slot is full: the next one, the oldest, is overwritten */
      r = pack_slot(&out[n++], uuid, head, head->slot_seq, lines, used);
      head->slot_seq++;
      used = size = 0;
    }
    lines[used++] = line;
    size += line_size;
  }
  if (r == 0 && used) r = pack_slot(&out[n++], uuid, head, head->slot_seq, lines, used);
  free(lines);
  if (r == 0) {
    key_of(out[n].key, uuid, -1);
    out[n].len = edgeprov__v1__log_head__get_packed_size(head);
    if (!(out[n].data = malloc(out[n].len ? out[n].len : 1))) r = ep_error_set(EP_ENOMEM, "out of memory");
    else edgeprov__v1__log_head__pack(head, out[n++].data);
  }
  *ret_count = n;
  return r;
}

/* Lines one transaction appends at most: it then writes at most APPEND_CHUNK + 1 slots and
 * the head, all distinct keys (a ring has at least EP_CONFIG_LOG_MAX_BYTES_MIN /
 * EP_NODE_LOG_LINE_BYTES_MAX = 32 slots) and well within a transaction's operations. */
#define APPEND_CHUNK 16

/* Appends lines[0..count) (count <= APPEND_CHUNK) in one transaction, compare-and-set on the
 * head. */
static int append_chunk(ep_inventory *inv, const char *uuid, ep_node_log_line *lines, size_t count, uint64_t max_bytes) {
  pending writes[APPEND_CHUNK + 2];
  ep_storage_op ops[APPEND_CHUNK + 2];
  for (int attempt = 0; attempt < CAS_RETRIES; attempt++) {
    ep_node_log_head *head = NULL;
    Edgeprov__V1__LogSlot *current = NULL;
    uint64_t head_revision = 0;
    size_t n = 0;
    int r = load_head(inv, uuid, max_bytes, &head, &head_revision);
    if (r == 0) r = load_slot(inv, uuid, head, head->slot_seq, &current);
    if (r == 0) r = plan_append(uuid, head, current, lines, count, writes, &n);
    for (size_t i = 0; r == 0 && i < n; i++) {
      bool is_head = i + 1 == n;
      ops[i] = (ep_storage_op){.kind = EP_STORAGE_PUT, .key = writes[i].key, .value = writes[i].data,
                               .value_len = writes[i].len,
                               .expect_mod_revision = !is_head ? EP_STORAGE_EXPECT_ANY
                                                      : head_revision ? head_revision : EP_STORAGE_EXPECT_ABSENT};
    }
    if (r == 0) r = ep_inventory_commit_raw(inv, ops, (uint32_t)n, NULL);
    for (size_t i = 0; i < n; i++) free(writes[i].data);
    free_slot(current);
    free_head(head);
    if (r != EP_ECONFLICT) return r;
  }
  return ep_error_set(EP_ECONFLICT, "the log of host %s keeps changing", uuid);
}

int ep_node_log_append(ep_inventory *inv, const char *uuid, uint32_t run, uint32_t action, const char *action_name,
                       char *const *lines, size_t count, uint64_t max_bytes, size_t *ret_redacted) {
  char canonical[EP_UUID_TEXT_LEN + 1];
  if (ep_validate_uuid(canonical, "uuid", uuid) < 0) return EP_EINVAL;
  if (ret_redacted) *ret_redacted = 0;
  if (!count) return 0;
  if (max_bytes < EP_CONFIG_LOG_MAX_BYTES_MIN) max_bytes = EP_CONFIG_LOG_MAX_BYTES_MIN;
  batch b;
  int r = batch_make(&b, run, action, action_name, lines, count);
  for (size_t done = 0; r == 0 && done < b.count; done += APPEND_CHUNK)
    r = append_chunk(inv, canonical, b.lines + done, b.count - done < APPEND_CHUNK ? b.count - done : APPEND_CHUNK,
                     max_bytes);
  if (r == 0 && ret_redacted) *ret_redacted = b.redacted;
  batch_clear(&b);
  return r;
}

int ep_node_log_read(ep_inventory *inv, const char *uuid, uint64_t after_seq, uint32_t run, size_t limit,
                     int (*visit)(void *data, const ep_node_log_line *line), void *data, ep_node_log_head *ret_head) {
  char canonical[EP_UUID_TEXT_LEN + 1];
  if (ep_validate_uuid(canonical, "uuid", uuid) < 0) return EP_EINVAL;
  if (ret_head) edgeprov__v1__log_head__init(ret_head);
  if (limit > EP_NODE_LOG_READ_MAX + 1 || limit == 0) limit = EP_NODE_LOG_READ_MAX + 1;
  ep_node_log_head *head = NULL;
  uint64_t head_revision = 0;
  int r = load_head(inv, canonical, EP_CONFIG_LOG_MAX_BYTES_DEFAULT, &head, &head_revision);
  if (r < 0) return r;
  if (!head_revision) { /* no log */
    free_head(head);
    return 0;
  }
  if (ret_head) {
    ret_head->slot_seq = head->slot_seq;
    ret_head->next_line = head->next_line;
    ret_head->slots = head->slots;
    ret_head->slot_bytes = head->slot_bytes;
  }
  /* Newest slot first, back to the one holding after_seq; then forward. */
  Edgeprov__V1__LogSlot *slots[EP_NODE_LOG_SLOTS] = {0};
  size_t loaded = 0;
  uint64_t oldest = head->slot_seq >= head->slots ? head->slot_seq - head->slots + 1 : 1;
  for (uint64_t seq = head->slot_seq; r == 0 && seq >= oldest && after_seq + 1 < head->next_line; seq--) {
    Edgeprov__V1__LogSlot *slot = NULL;
    r = load_slot(inv, canonical, head, seq, &slot);
    if (r < 0 || !slot) break;
    slots[loaded++] = slot;
    if (slot->n_lines && slot->lines[0]->seq <= after_seq + 1) break;
    if (seq == 1) break;
  }
  size_t sent = 0;
  for (size_t k = loaded; r == 0 && k-- > 0 && sent < limit;) {
    const Edgeprov__V1__LogSlot *slot = slots[k];
    for (size_t i = 0; i < slot->n_lines && sent < limit; i++) {
      const ep_node_log_line *line = slot->lines[i];
      if (line->seq <= after_seq || (run && line->run != run)) continue;
      sent++;
      if (visit(data, line)) {
        k = 0;
        break;
      }
    }
  }
  for (size_t k = 0; k < loaded; k++) free_slot(slots[k]);
  free_head(head);
  return r;
}

int ep_node_log_delete(ep_inventory *inv, const char *uuid) {
  char canonical[EP_UUID_TEXT_LEN + 1];
  if (ep_validate_uuid(canonical, "uuid", uuid) < 0) return EP_EINVAL;
  /* The head first, so readers see no log at once; then the slots, a transaction's worth at a
   * time (a full ring has more keys than one transaction may hold). */
  char keys[EP_NODE_LOG_SLOTS + 1][64];
  ep_storage_op ops[EP_NODE_LOG_SLOTS + 1];
  uint32_t n = 0;
  int r = 0;
  for (int slot = -1; r == 0 && slot < EP_NODE_LOG_SLOTS; slot++) {
    key_of(keys[slot + 1], canonical, slot);
    uint8_t *data = NULL;
    size_t len = 0;
    r = ep_inventory_load_raw(inv, keys[slot + 1], &data, &len, NULL);
    free(data);
    if (r == EP_ENOENT) {
      r = 0;
    } else if (r == 0) {
      ops[n++] = (ep_storage_op){.kind = EP_STORAGE_DELETE, .key = keys[slot + 1], .expect_mod_revision = EP_STORAGE_EXPECT_ANY};
    }
    bool flush = slot == -1 || n == EP_STORAGE_TXN_OPS_MAX || slot + 1 == EP_NODE_LOG_SLOTS;
    if (r == 0 && flush && n) {
      r = ep_inventory_commit_raw(inv, ops, n, NULL);
      n = 0;
    }
  }
  return r;
}
