/* Fuzzes what the daemon's gRPC handlers do with a request before and after the inventory: the management API's unary
 * methods (ep_mgmt_unary), WatchEvents' request and the event listing it pages through (ep_inventory_events), and the
 * onboarding service's request checks (OnboardNodeStreamRequest, CreateNodesRequest) through the validators and
 * inventory calls onboarding.c makes, on an inventory over an in-memory edgeprov.storage/1 store.
 *
 * Input: records of [entry][aux][length, 2 bytes LE][request bytes]; the entry byte picks the entry point (so the first
 * input byte picks the first one) and later records act on the state the earlier ones left. Every input starts on a
 * fresh store holding two hosts, an instance in ERROR and its workflow. Checks: nothing crashes or leaks; a reply's
 * status is a gRPC code, an OK reply decodes as its response type and says what was asked, an error names a reason;
 * validators agree with what the inventory accepts; events come once each, in revision order; the store's serial index
 * and host <-> instance links stay consistent. EP_FUZZ_PRINT=1 prints what each record did. */
#define _GNU_SOURCE
#include <ctype.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <edgeprov/identity.h>
#include <edgeprov/storage.h>

#include "edgeprov/v1/management.pb-c.h"
#include "base/error.h"
#include "provisioning/inventory.h"
#include "base/log.h"
#include "northbound/mgmt.h"
#include "onboardingmgr/v1/onboarding.pb-c.h"
#include "runtime/plugin_loader.h"
#include "base/validate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define RECORDS_MAX 16              /* records acted on per input */
#define CREATE_NODES_HOSTS_MAX 1000 /* onboarding.c's bound of one CreateNodes call */
#define MEM_LIMIT_MAX 10000         /* storage.h's bound of list and changes */

/* ---- an in-memory edgeprov.storage/1 (test support: keeps storage.h's contract) --------------------- */

typedef struct mem_record {
  char *key;
  uint8_t *value;
  size_t len;
  uint64_t create_revision, mod_revision;
} mem_record;

typedef struct mem_change {
  uint64_t revision;
  uint32_t kind;
  char *key;
  uint8_t *value; /* NULL for a delete */
  size_t len;
} mem_change;

typedef struct mem_store {
  pthread_mutex_t lock;
  mem_record *records; /* sorted by key, bytewise */
  size_t count, capacity;
  mem_change *log; /* in revision order */
  size_t log_count, log_capacity;
  uint64_t revision;
  uint64_t compacted; /* changes up to this revision are dropped (as storage-sqlite keeps it) */
} mem_store;

static mem_store store = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* Index of key, or of where it would go (*found false). */
static size_t mem_find(const mem_store *s, const char *key, bool *found) {
  size_t lo = 0, hi = s->count;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int c = strcmp(s->records[mid].key, key);
    if (c == 0) {
      *found = true;
      return mid;
    }
    if (c < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  *found = false;
  return lo;
}

static const char *mem_key_problem(const char *key) {
  if (!key) return "is NULL";
  size_t len = strnlen(key, EP_STORAGE_KEY_MAX + 1);
  if (len == 0) return "is empty";
  if (len > EP_STORAGE_KEY_MAX) return "is too long";
  uint32_t cp;
  for (size_t i = 0, n; i < len; i += n)
    if ((n = ep_utf8_next(key + i, len - i, &cp)) == 0) return "is not valid UTF-8";
  return NULL;
}

static int32_t mem_check_bound(const char *name, const char *text) {
  if (!text) return ep_error_set(EP_EINVAL, "%s is NULL", name);
  if (strnlen(text, EP_STORAGE_KEY_MAX + 1) > EP_STORAGE_KEY_MAX)
    return ep_error_set(EP_EINVAL, "%s is too long", name);
  return 0;
}

static int32_t mem_check_limit(uint32_t limit) {
  if (limit < 1 || limit > MEM_LIMIT_MAX) return ep_error_set(EP_EINVAL, "limit %u is out of range", limit);
  return 0;
}

static int32_t mem_get(void *state, const char *key, ep_storage_visit_fn visit, void *data) {
  mem_store *s = state;
  const char *problem = mem_key_problem(key);
  if (problem) return ep_error_set(EP_EINVAL, "key %s", problem);
  pthread_mutex_lock(&s->lock);
  bool found;
  size_t i = mem_find(s, key, &found);
  if (found && visit) {
    const mem_record *m = &s->records[i];
    ep_storage_record rec = {.struct_size = sizeof rec,
                             .key = m->key,
                             .value = m->value,
                             .value_len = m->len,
                             .create_revision = m->create_revision,
                             .mod_revision = m->mod_revision};
    visit(data, &rec);
  }
  pthread_mutex_unlock(&s->lock);
  return found ? 0 : ep_error_set(EP_ENOENT, "key '%.100s' not found", key);
}

static const ep_storage_op *mem_op(const ep_storage_op *ops, uint32_t op_size, uint32_t i) {
  return (const ep_storage_op *)((const char *)ops + (size_t)i * op_size);
}

static void *mem_dup(const void *p, size_t len) {
  void *copy = malloc(len ? len : 1);
  if (copy && len) memcpy(copy, p, len);
  return copy;
}

static int32_t mem_txn(void *state, const ep_storage_op *ops, uint32_t count, uint32_t op_size, uint64_t *ret_revision,
                       uint32_t *ret_failed_op) {
  mem_store *s = state;
  if (!ops || count < 1 || count > EP_STORAGE_TXN_OPS_MAX || op_size < sizeof(ep_storage_op))
    return ep_error_set(EP_EINVAL, "txn: bad ops, count %u or op_size %u", count, op_size);
  for (uint32_t i = 0; i < count; i++) {
    const ep_storage_op *op = mem_op(ops, op_size, i);
    const char *problem = mem_key_problem(op->key);
    if (op->kind != EP_STORAGE_PUT && op->kind != EP_STORAGE_DELETE)
      return ep_error_set(EP_EINVAL, "op %u: unknown kind %u", i, op->kind);
    if (problem) return ep_error_set(EP_EINVAL, "op %u: key %s", i, problem);
    if (op->kind == EP_STORAGE_PUT && (op->value_len > EP_STORAGE_VALUE_MAX || (op->value_len && !op->value)))
      return ep_error_set(EP_EINVAL, "op %u: bad value", i);
    for (uint32_t k = 0; k < i; k++)
      if (strcmp(mem_op(ops, op_size, k)->key, op->key) == 0) return ep_error_set(EP_EINVAL, "op %u: key repeats", i);
  }
  pthread_mutex_lock(&s->lock);
  int32_t r = 0;
  for (uint32_t i = 0; i < count && r == 0; i++) { /* every expectation before any write */
    const ep_storage_op *op = mem_op(ops, op_size, i);
    bool found;
    size_t at = mem_find(s, op->key, &found);
    uint64_t expect = op->expect_mod_revision;
    if (expect == EP_STORAGE_EXPECT_ANY) continue;
    if (expect == EP_STORAGE_EXPECT_ABSENT ? found : !found || s->records[at].mod_revision != expect) {
      if (ret_failed_op) *ret_failed_op = i;
      r = ep_error_set(EP_ECONFLICT, "op %u: key '%.100s' is not as expected", i, op->key);
    }
  }
  /* Room for every write first, so applying them cannot fail half-way. */
  if (r == 0 && s->count + count > s->capacity) {
    size_t capacity = (s->count + count) * 2;
    mem_record *records = realloc(s->records, capacity * sizeof *records);
    if (records)
      s->records = records, s->capacity = capacity;
    else
      r = ep_error_set(EP_ENOMEM, "out of memory");
  }
  if (r == 0 && s->log_count + count > s->log_capacity) {
    size_t capacity = (s->log_count + count) * 2;
    mem_change *log = realloc(s->log, capacity * sizeof *log);
    if (log)
      s->log = log, s->log_capacity = capacity;
    else
      r = ep_error_set(EP_ENOMEM, "out of memory");
  }
  uint64_t revision = s->revision + 1;
  for (uint32_t i = 0; i < count && r == 0; i++) {
    const ep_storage_op *op = mem_op(ops, op_size, i);
    bool found;
    size_t at = mem_find(s, op->key, &found);
    if (op->kind == EP_STORAGE_DELETE && !found) continue; /* no record, no change */
    mem_change *c = &s->log[s->log_count];
    *c = (mem_change){.revision = revision, .kind = op->kind, .key = strdup(op->key)};
    if (op->kind == EP_STORAGE_PUT) {
      c->value = mem_dup(op->value, op->value_len);
      c->len = op->value_len;
    }
    mem_record fresh = {.key = strdup(op->key),
                        .value = mem_dup(op->value, op->value_len),
                        .len = op->value_len,
                        .create_revision = found ? s->records[at].create_revision : revision,
                        .mod_revision = revision};
    if (!c->key || (op->kind == EP_STORAGE_PUT && (!c->value || !fresh.key || !fresh.value)))
      abort(); /* test support: an allocation failure here is the fuzzer's, not the code's */
    s->log_count++;
    if (found) {
      free(s->records[at].key);
      free(s->records[at].value);
      if (op->kind == EP_STORAGE_PUT) {
        s->records[at] = fresh;
        continue;
      }
      memmove(&s->records[at], &s->records[at + 1], (s->count - at - 1) * sizeof *s->records);
      s->count--;
    } else {
      memmove(&s->records[at + 1], &s->records[at], (s->count - at) * sizeof *s->records);
      s->records[at] = fresh;
      s->count++;
      continue;
    }
    free(fresh.key);
    free(fresh.value);
  }
  if (r == 0) s->revision = revision;
  pthread_mutex_unlock(&s->lock);
  if (r == 0 && ret_revision) *ret_revision = revision;
  return r;
}

static int32_t mem_list(void *state, const char *prefix, const char *start_after, uint32_t limit,
                        ep_storage_visit_fn visit, void *data, uint64_t *ret_revision, int32_t *ret_more) {
  mem_store *s = state;
  int32_t r;
  if ((r = mem_check_bound("prefix", prefix)) < 0 || (r = mem_check_bound("start_after", start_after)) < 0 ||
      (r = mem_check_limit(limit)) < 0)
    return r;
  size_t plen = strlen(prefix);
  pthread_mutex_lock(&s->lock);
  bool found;
  size_t i = mem_find(s, strcmp(start_after, prefix) >= 0 ? start_after : prefix, &found);
  if (found && strcmp(start_after, prefix) >= 0) i++; /* strictly after start_after */
  uint32_t visited = 0;
  bool stopped = false;
  for (; i < s->count && strncmp(s->records[i].key, prefix, plen) == 0 && visited < limit && !stopped; i++) {
    const mem_record *m = &s->records[i];
    ep_storage_record rec = {.struct_size = sizeof rec,
                             .key = m->key,
                             .value = m->value,
                             .value_len = m->len,
                             .create_revision = m->create_revision,
                             .mod_revision = m->mod_revision};
    visited++;
    if (visit && visit(data, &rec) != 0) stopped = true;
  }
  int32_t more = i < s->count && strncmp(s->records[i].key, prefix, plen) == 0;
  uint64_t revision = s->revision;
  pthread_mutex_unlock(&s->lock);
  if (ret_revision) *ret_revision = revision;
  if (ret_more) *ret_more = more;
  return 0;
}

static int32_t mem_changes(void *state, uint64_t after_revision, uint32_t limit, ep_storage_change_fn visit,
                           void *data) {
  mem_store *s = state;
  int32_t r = mem_check_limit(limit);
  if (r < 0) return r;
  pthread_mutex_lock(&s->lock);
  if (after_revision < s->compacted) {
    r = ep_error_set(EP_ECOMPACTED, "after_revision %llu is compacted (the log starts after %llu)",
                     (unsigned long long)after_revision, (unsigned long long)s->compacted);
  } else {
    uint32_t visited = 0;
    uint64_t last = 0;
    for (size_t i = 0; i < s->log_count; i++) {
      const mem_change *m = &s->log[i];
      if (m->revision <= after_revision) continue;
      if (visited >= limit && m->revision != last) break; /* a transaction is never split */
      ep_storage_change c = {.struct_size = sizeof c,
                             .kind = m->kind,
                             .revision = m->revision,
                             .key = m->key,
                             .value = m->value,
                             .value_len = m->len};
      visited++;
      last = m->revision;
      if (visit && visit(data, &c) != 0) break;
    }
  }
  pthread_mutex_unlock(&s->lock);
  return r;
}

static int32_t mem_revision(void *state, uint64_t *ret_revision) {
  mem_store *s = state;
  pthread_mutex_lock(&s->lock);
  if (ret_revision) *ret_revision = s->revision;
  pthread_mutex_unlock(&s->lock);
  return 0;
}

static int32_t mem_compact(void *state, uint64_t before_revision) {
  mem_store *s = state;
  int32_t r = 0;
  pthread_mutex_lock(&s->lock);
  if (before_revision > s->revision + 1) {
    r = ep_error_set(EP_ERANGE, "before_revision %llu is past the store revision %llu",
                     (unsigned long long)before_revision, (unsigned long long)s->revision);
  } else if (before_revision > 0 && before_revision - 1 > s->compacted) {
    size_t keep = 0;
    for (size_t i = 0; i < s->log_count; i++) {
      if (s->log[i].revision < before_revision) {
        free(s->log[i].key);
        free(s->log[i].value);
      } else {
        s->log[keep++] = s->log[i];
      }
    }
    s->log_count = keep;
    s->compacted = before_revision - 1;
  }
  pthread_mutex_unlock(&s->lock);
  return r;
}

static void mem_reset(mem_store *s) {
  for (size_t i = 0; i < s->count; i++) free(s->records[i].key), free(s->records[i].value);
  for (size_t i = 0; i < s->log_count; i++) free(s->log[i].key), free(s->log[i].value);
  s->count = s->log_count = 0;
  s->revision = s->compacted = 0;
}

static const ep_storage mem_table = {.struct_size = sizeof mem_table,
                                     .get = mem_get,
                                     .txn = mem_txn,
                                     .list = mem_list,
                                     .changes = mem_changes,
                                     .revision = mem_revision,
                                     .compact = mem_compact};

/* ---- an identity plugin that only counts revocations (all mgmt.c asks of it) ------------------------ */

static unsigned revocations;

static int32_t fake_revoke(void *state, const char *node_id) {
  (void)state;
  char uuid[EP_UUID_TEXT_LEN + 1];
  /* mgmt.c revokes the stored host's UUID: canonical already */
  if (ep_validate_uuid(uuid, "node_id", node_id) < 0 || strcmp(uuid, node_id) != 0) abort();
  revocations++;
  return 0;
}

static const ep_identity fake_identity = {.struct_size = sizeof fake_identity, .revoke = fake_revoke};

static const char *const fake_caps[] = {EP_CAP_STORAGE, EP_CAP_IDENTITY, NULL};
static const void *fake_capability(void *state, const char *id) {
  (void)state;
  if (strcmp(id, EP_CAP_STORAGE) == 0) return &mem_table;
  return strcmp(id, EP_CAP_IDENTITY) == 0 ? &fake_identity : NULL;
}
static const ep_plugin_entry fake_entry = {EP_PLUGIN_ENTRY_HEADER, .id = "fuzz-memory", .capabilities = fake_caps,
                                           .get_capability = fake_capability};
static ep_plugin fake_plugin = {.entry = &fake_entry, .state = EP_PLUGIN_ACTIVE, .instance = &store};
static ep_plugin *started[] = {&fake_plugin};
static const ep_plugin_set plugins = {.started = started, .started_count = 1};

/* ---- the fixture every input starts from ------------------------------------------------------------ */

#define HOST_A "aaaaaaaa-0000-4000-8000-00000000000a"
#define HOST_B "bbbbbbbb-0000-4000-8000-00000000000b"
#define INSTANCE_PLACEHOLDER "@" /* an instance id of "@" in a request means the fixture's */

static ep_inventory *inv;
static char fixture_instance[EP_UUID_TEXT_LEN + 1];

static bool tracing;    /* EP_FUZZ_PRINT: what each record did, to look at seeds */

static void trace(const char *what, int code, const char *message) {
  if (tracing) fprintf(stderr, "fuzz_southbound: %-16s %4d %s\n", what, code, message);
}

static void check(bool ok, const char *what) {
  if (ok) return;
  fprintf(stderr, "fuzz_southbound: %s (last error: %s)\n", what, ep_error_message());
  abort();
}

static void fixture(void) {
  mem_reset(&store);
  const char *macs[] = {"52:54:00:00:00:0a"};
  ep_inv_host_spec a = {.uuid = HOST_A,
                    .serial = "SERA0001",
                    .macs = macs,
                    .mac_count = 1,
                    .ip = "10.0.0.10",
                    .os_profile = "ubuntu-22.04",
                    .auto_onboard = true};
  ep_inv_host_spec b = {.uuid = HOST_B, .serial = "SERB0002"};
  ep_inv_host *host = NULL;
  check(ep_inventory_add_host(inv, &a, &host) == 0, "fixture: host A");
  ep_inv_host_free(host);
  check(ep_inventory_add_host(inv, &b, &host) == 0, "fixture: host B");
  ep_inv_host_free(host);
  ep_inv_instance *instance = NULL;
  check(ep_inventory_create_instance(inv, HOST_A, NULL, false, &instance) == 0, "fixture: instance");
  memcpy(fixture_instance, instance->id, sizeof fixture_instance);
  ep_inv_instance_free(instance);
  check(ep_inventory_set_instance_state(inv, fixture_instance, EDGEPROV__V1__INSTANCE_STATE__INSTANCE_STATE_ERROR,
                                        "fixture", EDGEPROV__V1__STATUS_INDICATOR__STATUS_INDICATOR_ERROR, NULL) == 0,
        "fixture: instance ERROR");
  ep_workflow w = EDGEPROV__V1__WORKFLOW__INIT;
  w.instance_id = fixture_instance;
  w.host_uuid = HOST_A;
  check(ep_inventory_put_workflow(inv, &w, 0, NULL) == 0, "fixture: workflow");
}

static void setup(void) {
  ep_log_setup(stderr, EP_LOG_ERROR);
  tracing = getenv("EP_FUZZ_PRINT") != NULL;
  check(ep_inventory_new(&inv, &plugins) == 0, "ep_inventory_new on the memory store");
}

/* ---- helpers ---------------------------------------------------------------------------------------- */

static bool uuid_of(char out[EP_UUID_TEXT_LEN + 1], const char *text) {
  return ep_validate_uuid(out, "uuid", text) == 0;
}

static bool host_exists(const char *uuid) {
  ep_inv_host *host = NULL;
  int r = ep_inventory_get_host(inv, uuid, &host);
  ep_inv_host_free(host);
  check(r == 0 || r == EP_ENOENT || r == EP_EINVAL, "get_host: unexpected error");
  return r == 0;
}

/* A refusal names its reason and, for a field, the field. */
static void check_refusal(int r, const char *field) {
  check(r < 0, "refusal expected");
  check(ep_error_message()[0] != '\0', "an error without a message");
  if (field) check(strstr(ep_error_message(), field) != NULL, "a validation error that does not name its field");
}

/* The validators of validate.h on one decoded field, against what they promise. */
static bool validate_uuid(const char *text, char out[EP_UUID_TEXT_LEN + 1]) {
  bool want = strlen(text) == EP_UUID_TEXT_LEN;
  for (size_t i = 0; want && i < EP_UUID_TEXT_LEN; i++)
    want = (i == 8 || i == 13 || i == 18 || i == 23) ? text[i] == '-' : isxdigit((unsigned char)text[i]) != 0;
  int r = ep_validate_uuid(out, "uuid", text);
  check((r == 0) == want, "ep_validate_uuid disagrees with 8-4-4-4-12 hex digits");
  if (r < 0) return check_refusal(r, "uuid"), false;
  for (size_t i = 0; i < EP_UUID_TEXT_LEN; i++)
    check(out[i] == tolower((unsigned char)text[i]), "uuid: not lower-cased");
  check(out[EP_UUID_TEXT_LEN] == '\0', "uuid: not terminated");
  return true;
}

static bool validate_serial(const char *text) {
  size_t len = strlen(text);
  bool want = len >= 5 && len <= 20;
  for (size_t i = 0; want && i < len; i++)
    want =
        (text[i] >= 'A' && text[i] <= 'Z') || (text[i] >= 'a' && text[i] <= 'z') || (text[i] >= '0' && text[i] <= '9');
  int r = ep_validate_serial("serialnum", text);
  check((r == 0) == want, "ep_validate_serial disagrees with ^[A-Za-z0-9]{5,20}$");
  if (r < 0) check_refusal(r, "serialnum");
  return r == 0;
}

static bool validate_mac(const char *text, char out[EP_MAC_TEXT_LEN + 1]) {
  int r = ep_validate_mac(out, "mac_id", text);
  if (r < 0) return check_refusal(r, "mac_id"), false;
  char again[EP_MAC_TEXT_LEN + 1];
  check(strlen(out) == EP_MAC_TEXT_LEN && ep_validate_mac(again, "mac_id", out) == 0 && strcmp(again, out) == 0,
        "mac: the normal form is not a fixed point");
  for (size_t i = 0; i < EP_MAC_TEXT_LEN; i++)
    check(i % 3 == 2 ? out[i] == ':' : out[i] == tolower((unsigned char)text[i]), "mac: not normalised");
  return true;
}

static bool validate_ip(const char *field, const char *text, char out[EP_IP_TEXT_MAX + 1]) {
  int r = ep_validate_ip(out, field, text);
  if (r < 0) return check_refusal(r, field), false;
  char again[EP_IP_TEXT_MAX + 1];
  check(out[0] && strlen(out) <= EP_IP_TEXT_MAX && ep_validate_ip(again, field, out) == 0 && strcmp(again, out) == 0,
        "ip: the canonical form is not a fixed point");
  return true;
}

/* The inventory's cross-record invariants: host and serial index agree, an instance and its host point at each other.
 */
static void check_store(void) {
  pthread_mutex_lock(&store.lock);
  for (size_t i = 0; i < store.count; i++) {
    const mem_record *m = &store.records[i];
    if (strncmp(m->key, "hosts/", 6) == 0) {
      ep_inv_host *h = edgeprov__v1__host__unpack(NULL, m->len, m->value);
      check(h && strcmp(h->uuid, m->key + 6) == 0, "a host record that is not its key's host");
      if (h->serial[0]) {
        char key[64];
        snprintf(key, sizeof key, "serials/%s", h->serial);
        bool found;
        size_t at = mem_find(&store, key, &found);
        check(found && store.records[at].len == EP_UUID_TEXT_LEN &&
                  memcmp(store.records[at].value, h->uuid, EP_UUID_TEXT_LEN) == 0,
              "a host's serial is not indexed to it");
      }
      if (h->instance_id[0]) {
        char key[64];
        snprintf(key, sizeof key, "instances/%s", h->instance_id);
        bool found;
        mem_find(&store, key, &found);
        check(found, "a host points at a missing instance");
      }
      edgeprov__v1__host__free_unpacked(h, NULL);
    } else if (strncmp(m->key, "serials/", 8) == 0) {
      char key[64];
      snprintf(key, sizeof key, "hosts/%.*s", (int)(m->len < 40 ? m->len : 40), (const char *)m->value);
      bool found;
      size_t at = mem_find(&store, key, &found);
      check(found, "a serial indexed to a missing host");
      ep_inv_host *h = edgeprov__v1__host__unpack(NULL, store.records[at].len, store.records[at].value);
      check(h && strcmp(h->serial, m->key + 8) == 0, "a serial indexed to a host without it");
      edgeprov__v1__host__free_unpacked(h, NULL);
    } else if (strncmp(m->key, "instances/", 10) == 0) {
      ep_inv_instance *in = edgeprov__v1__instance__unpack(NULL, m->len, m->value);
      check(in && strcmp(in->id, m->key + 10) == 0, "an instance record that is not its key's");
      char key[64];
      snprintf(key, sizeof key, "hosts/%s", in->host_uuid);
      bool found;
      size_t at = mem_find(&store, key, &found);
      check(found, "an instance of a missing host");
      ep_inv_host *h = edgeprov__v1__host__unpack(NULL, store.records[at].len, store.records[at].value);
      check(h && strcmp(h->instance_id, in->id) == 0, "an instance whose host does not point back");
      edgeprov__v1__host__free_unpacked(h, NULL);
      edgeprov__v1__instance__free_unpacked(in, NULL);
    }
  }
  pthread_mutex_unlock(&store.lock);
}

/* ---- 1. the management API's unary methods ---------------------------------------------------------- */

typedef struct mgmt_method {
  const char *name;
  const ProtobufCMessageDescriptor *request, *response;
} mgmt_method;

static const mgmt_method mgmt_methods[] = {
    {"AddHost", &edgeprov__v1__add_host_request__descriptor, &edgeprov__v1__host_response__descriptor},
    {"GetHost", &edgeprov__v1__get_host_request__descriptor, &edgeprov__v1__host_response__descriptor},
    {"ListHosts", &edgeprov__v1__list_request__descriptor, &edgeprov__v1__list_hosts_response__descriptor},
    {"DeleteHost", &edgeprov__v1__delete_host_request__descriptor, &edgeprov__v1__delete_response__descriptor},
    {"CreateInstance", &edgeprov__v1__create_instance_request__descriptor,
     &edgeprov__v1__instance_response__descriptor},
    {"DeleteInstance", &edgeprov__v1__delete_instance_request__descriptor, &edgeprov__v1__delete_response__descriptor},
    {"ListInstances", &edgeprov__v1__list_request__descriptor, &edgeprov__v1__list_instances_response__descriptor},
    {"SetDesiredState", &edgeprov__v1__set_desired_state_request__descriptor, &edgeprov__v1__host_response__descriptor},
    {"RetryInstance", &edgeprov__v1__retry_instance_request__descriptor, &edgeprov__v1__instance_response__descriptor},
    {"GetInstance", &edgeprov__v1__get_instance_request__descriptor, &edgeprov__v1__instance_detail__descriptor},
    {"RenderWorkflow", &edgeprov__v1__render_workflow_request__descriptor,
     &edgeprov__v1__render_workflow_response__descriptor},
    {"GetLogs", &edgeprov__v1__get_logs_request__descriptor, &edgeprov__v1__get_logs_response__descriptor},
    {"GetRecoveryKey", &edgeprov__v1__get_recovery_key_request__descriptor,
     &edgeprov__v1__get_recovery_key_response__descriptor},
};
#define MGMT_METHODS (sizeof mgmt_methods / sizeof mgmt_methods[0])

static const mgmt_method *mgmt_method_named(const char *name) {
  for (size_t i = 0; i < MGMT_METHODS; i++)
    if (strcmp(mgmt_methods[i].name, name) == 0) return &mgmt_methods[i];
  return NULL;
}

/* What the reply of a decoded request must say. */
static void check_mgmt_ok(const mgmt_method *m, const ProtobufCMessage *request, const ProtobufCMessage *response,
                          unsigned revoked_before) {
  char uuid[EP_UUID_TEXT_LEN + 1], again[EP_UUID_TEXT_LEN + 1];
  if (m->response == &edgeprov__v1__host_response__descriptor) {
    const Edgeprov__V1__Host *h = ((const Edgeprov__V1__HostResponse *)response)->host;
    check(h && uuid_of(again, h->uuid) && strcmp(again, h->uuid) == 0, "a HostResponse without a canonical host");
    check(h->revision > 0, "a HostResponse without a revision");
    if (strcmp(m->name, "AddHost") == 0) {
      const Edgeprov__V1__AddHostRequest *q = (const void *)request;
      check(uuid_of(uuid, q->uuid) && strcmp(uuid, h->uuid) == 0, "AddHost: not the host asked for");
      check(strcmp(q->serial, h->serial) == 0 && q->n_macs == h->n_macs, "AddHost: serial or MACs changed");
      check(h->desired_state == (q->auto_onboard ? EDGEPROV__V1__HOST_STATE__HOST_STATE_ONBOARDED
                                                 : EDGEPROV__V1__HOST_STATE__HOST_STATE_REGISTERED),
            "AddHost: desired state does not follow auto_onboard");
      for (size_t i = 0; i < q->n_macs; i++) {
        char mac[EP_MAC_TEXT_LEN + 1];
        check(ep_validate_mac(mac, "mac", q->macs[i]) == 0 && strcmp(mac, h->macs[i]) == 0, "AddHost: a MAC changed");
      }
    } else if (strcmp(m->name, "GetHost") == 0) {
      const Edgeprov__V1__GetHostRequest *q = (const void *)request;
      if (q->uuid[0])
        check(uuid_of(uuid, q->uuid) && strcmp(uuid, h->uuid) == 0, "GetHost: not the host asked for");
      else
        check(strcmp(q->serial, h->serial) == 0, "GetHost: not the serial asked for");
    } else { /* SetDesiredState */
      const Edgeprov__V1__SetDesiredStateRequest *q = (const void *)request;
      check(uuid_of(uuid, q->uuid) && strcmp(uuid, h->uuid) == 0, "SetDesiredState: not the host asked for");
      check(h->desired_state == q->desired_state, "SetDesiredState: state not set");
      if (q->desired_state == EDGEPROV__V1__HOST_STATE__HOST_STATE_UNTRUSTED)
        check(h->current_state == q->desired_state && revocations == revoked_before + 1,
              "SetDesiredState UNTRUSTED: not invalidated, or credentials kept");
    }
  } else if (m->response == &edgeprov__v1__instance_response__descriptor) {
    const Edgeprov__V1__Instance *in = ((const Edgeprov__V1__InstanceResponse *)response)->instance;
    check(in && uuid_of(again, in->id) && strcmp(again, in->id) == 0, "an InstanceResponse without a canonical id");
    if (strcmp(m->name, "CreateInstance") == 0) {
      const Edgeprov__V1__CreateInstanceRequest *q = (const void *)request;
      check(uuid_of(uuid, q->host_uuid) && strcmp(uuid, in->host_uuid) == 0,
            "CreateInstance: not on the host asked for");
    } else {
      check(in->current_state == EDGEPROV__V1__INSTANCE_STATE__INSTANCE_STATE_PROVISIONING,
            "RetryInstance: not re-armed");
    }
  } else if (m->response == &edgeprov__v1__instance_detail__descriptor) {
    const Edgeprov__V1__InstanceDetail *d = (const void *)response;
    check(d->instance && uuid_of(again, d->instance->id) && strcmp(again, d->instance->id) == 0,
          "GetInstance: no canonical instance");
    for (size_t i = 0; d->workflow && i < d->workflow->n_actions; i++)
      check(d->workflow->actions[i]->n_params == 0, "GetInstance: a workflow action's parameters went out");
  } else if (m->response == &edgeprov__v1__render_workflow_response__descriptor) {
    check(((const Edgeprov__V1__RenderWorkflowResponse *)response)->workflow != NULL, "RenderWorkflow: no workflow");
  } else if (m->response == &edgeprov__v1__get_logs_response__descriptor) {
    const Edgeprov__V1__GetLogsRequest *q = (const void *)request;
    const Edgeprov__V1__GetLogsResponse *l = (const void *)response;
    check(l->n_lines <= (q->limit ? q->limit : 1000), "GetLogs: more lines than the limit");
    for (size_t i = 0; i < l->n_lines; i++) {
      check(l->lines[i]->seq > q->after_line && l->lines[i]->seq < l->next_line, "GetLogs: a line outside the range");
      check(i == 0 || l->lines[i]->seq > l->lines[i - 1]->seq, "GetLogs: lines out of order");
      check(!q->run || l->lines[i]->run == q->run, "GetLogs: a line of another run");
    }
  } else if (m->response == &edgeprov__v1__get_recovery_key_response__descriptor) {
    /* The fuzzed site has no secrets.recovery_key_file: no key is ever stored or read. */
    check(false, "GetRecoveryKey answered OK on a site without a site key");
  } else if (m->response == &edgeprov__v1__delete_response__descriptor) {
    const Edgeprov__V1__DeleteResponse *d = (const void *)response;
    check(d->revision > 0 && d->revision <= store.revision, "a DeleteResponse revision the store never had");
    if (strcmp(m->name, "DeleteHost") == 0) {
      const Edgeprov__V1__DeleteHostRequest *q = (const void *)request;
      check(!host_exists(q->uuid), "DeleteHost: the host is still there");
      check(revocations == revoked_before + 1, "DeleteHost: credentials not revoked");
    } else {
      const Edgeprov__V1__DeleteInstanceRequest *q = (const void *)request;
      ep_inv_instance *in = NULL;
      check(ep_inventory_get_instance(inv, q->id, &in) == EP_ENOENT, "DeleteInstance: the instance is still there");
    }
  } else { /* a list: at most a page, in ID order, the token the last ID */
    const Edgeprov__V1__ListRequest *q = (const void *)request;
    uint32_t page = q->page_size ? q->page_size : EP_INVENTORY_PAGE_DEFAULT;
    bool hosts = m->response == &edgeprov__v1__list_hosts_response__descriptor;
    const Edgeprov__V1__ListHostsResponse *lh = (const void *)response;
    const Edgeprov__V1__ListInstancesResponse *li = (const void *)response;
    size_t n = hosts ? lh->n_hosts : li->n_instances;
    const char *next = hosts ? lh->next_page_token : li->next_page_token;
    check(n <= page, "a list longer than its page");
    const char *last = q->page_token;
    for (size_t i = 0; i < n; i++) {
      const char *id = hosts ? lh->hosts[i]->uuid : li->instances[i]->id;
      check(strcasecmp(id, last) > 0, "a list out of order, or not after its page token");
      last = id;
    }
    check(!next[0] || (n == page && strcmp(next, last) == 0),
          "a next_page_token that is not the last ID of a full page");
  }
}

static void run_mgmt(const mgmt_method *m, const char *name, const uint8_t *request, size_t len) {
  ProtobufCMessage *decoded = m ? protobuf_c_message_unpack(m->request, NULL, len, request) : NULL;
  uint8_t *rewritten = NULL;
  /* DeleteInstance and RetryInstance of "@": the fixture's instance (its ID is random). */
  if (decoded && m &&
      (m->request == &edgeprov__v1__delete_instance_request__descriptor ||
       m->request == &edgeprov__v1__retry_instance_request__descriptor)) {
    char **id = m->request == &edgeprov__v1__delete_instance_request__descriptor
                    ? &((Edgeprov__V1__DeleteInstanceRequest *)decoded)->id
                    : &((Edgeprov__V1__RetryInstanceRequest *)decoded)->id;
    if (strcmp(*id, INSTANCE_PLACEHOLDER) == 0) {
      free(*id);
      *id = strdup(fixture_instance);
      check(*id != NULL, "out of memory");
      len = protobuf_c_message_get_packed_size(decoded);
      rewritten = malloc(len);
      check(rewritten && protobuf_c_message_pack(decoded, rewritten) == len, "re-encoding a request");
      request = rewritten;
    }
  }
  unsigned revoked_before = revocations;
  ep_mgmt_reply reply;
  ep_mgmt_unary(inv, &plugins, name, request, len, &reply);
  trace(name, reply.status, reply.message);

  check(reply.status >= EP_STATUS_OK && reply.status <= EP_STATUS_UNAUTHENTICATED && reply.status != 2 &&
            reply.status != 15,
        "a reply status that is not a gRPC code the API answers");
  check(memchr(reply.message, '\0', sizeof reply.message) != NULL, "a reply message without its NUL");
  if (!m) {
    check(reply.status == EP_STATUS_UNIMPLEMENTED && !reply.data, "an unknown method not UNIMPLEMENTED");
  } else if (!decoded) {
    check(reply.status == EP_STATUS_INVALID_ARGUMENT && !reply.data, "a request that does not decode not refused");
  } else if (reply.status == EP_STATUS_OK) {
    check(reply.message[0] == '\0' && reply.data != NULL, "an OK reply with a message or without data");
    ProtobufCMessage *response = protobuf_c_message_unpack(m->response, NULL, reply.len, reply.data);
    check(response != NULL, "an OK reply that does not decode as its response type");
    check_mgmt_ok(m, decoded, response, revoked_before);
    protobuf_c_message_free_unpacked(response, NULL);
  } else {
    check(reply.data == NULL && reply.len == 0, "an error reply with data");
    check(reply.message[0] != '\0', "an error reply without a message");
  }
  ep_mgmt_reply_clear(&reply);
  if (decoded) protobuf_c_message_free_unpacked(decoded, NULL);
  free(rewritten);
}

/* ---- 2. WatchEvents: its request and the pages of events it sends ----------------------------------- */

typedef struct watch {
  uint64_t after;     /* revision of the last event seen */
  uint64_t head;      /* store revision when the walk started */
  size_t seen;        /* events seen so far */
  size_t expected_n;  /* events the change log holds after the request's revision */
  uint64_t *expected; /* their revisions, in order */
  int32_t *kinds;
} watch;

/* The records the change log turns into events: hosts, instances, workflows and log heads (not
 * indexes, log slots or recovery keys). */
static bool is_event_key(const char *key) {
  size_t len = strlen(key);
  return strncmp(key, "hosts/", 6) == 0 || strncmp(key, "instances/", 10) == 0 || strncmp(key, "workflows/", 10) == 0 ||
         (strncmp(key, "logs/", 5) == 0 && len > 5 + 5 && strcmp(key + len - 5, "/head") == 0);
}

static int watch_visit(void *data, const ep_inv_event *event) {
  watch *w = data;
  check(event->revision > w->after || (event->revision == w->after && w->seen > 0), "an event out of order");
  check(event->revision <= w->head, "an event past the store revision");
  check(w->seen < w->expected_n && w->expected[w->seen] == event->revision && w->kinds[w->seen] == (int32_t)event->kind,
        "an event not in the change log, twice, or skipped over");
  bool named = false;
  switch (event->resource_case) {
  case EDGEPROV__V1__EVENT__RESOURCE_HOST: named = event->host && event->host->uuid[0]; break;
  case EDGEPROV__V1__EVENT__RESOURCE_INSTANCE: named = event->instance && event->instance->id[0]; break;
  case EDGEPROV__V1__EVENT__RESOURCE_WORKFLOW: named = event->workflow && event->workflow->instance_id[0]; break;
  case EDGEPROV__V1__EVENT__RESOURCE_LOG: named = event->log && event->log->host_uuid[0]; break;
  default: break;
  }
  check(named, "an event without its resource");
  size_t len = edgeprov__v1__event__get_packed_size(event); /* what the stream sends */
  uint8_t *bytes = malloc(len ? len : 1);
  check(bytes && edgeprov__v1__event__pack(event, bytes) == len, "packing an event");
  free(bytes);
  w->after = event->revision;
  w->seen++;
  return 0;
}

static void run_watch(uint8_t aux, const uint8_t *request, size_t len) {
  Edgeprov__V1__WatchEventsRequest *req = edgeprov__v1__watch_events_request__unpack(NULL, len, request);
  if (!req) return;                                      /* handle_watch answers INVALID_ARGUMENT */
  uint32_t limit = aux == 255 ? MEM_LIMIT_MAX + 1 : aux; /* 0 and past the maximum are refused */
  watch w = {.after = req->after_revision, .head = store.revision};
  edgeprov__v1__watch_events_request__free_unpacked(req, NULL);
  w.expected = calloc(store.log_count + 1, sizeof *w.expected);
  w.kinds = calloc(store.log_count + 1, sizeof *w.kinds);
  check(w.expected && w.kinds, "out of memory");
  for (size_t i = 0; i < store.log_count; i++) {
    const mem_change *c = &store.log[i];
    if (c->revision <= w.after || !is_event_key(c->key)) continue;
    w.kinds[w.expected_n] =
        c->kind == EP_STORAGE_PUT ? EDGEPROV__V1__EVENT__KIND__KIND_PUT : EDGEPROV__V1__EVENT__KIND__KIND_DELETE;
    w.expected[w.expected_n++] = c->revision;
  }
  uint64_t start = w.after, last = 0;
  int r = ep_inventory_events_page(inv, w.after, limit, watch_visit, &w, &last);
  trace("WatchEvents", r, ep_error_message());
  if (limit < 1 || limit > MEM_LIMIT_MAX) {
    check(r == EP_EINVAL, "a limit out of range not refused");
  } else if (start < store.compacted) {
    check(r == EP_ECOMPACTED && w.seen == 0, "events from a compacted revision not refused");
  } else {
    check(r == 0, "ep_inventory_events failed");
    /* Resume as mgmt_server.c's handle_watch does: after the last change read, event or index
     * (a page of workflows/ changes only delivers no event but moves on). */
    for (size_t pages = 0; r == 0 && w.seen < w.expected_n && pages < 4096; pages++) {
      uint64_t from = last;
      r = ep_inventory_events_page(inv, from, limit, watch_visit, &w, &last);
      if (last == from) break;
    }
    check(r == 0, "ep_inventory_events failed on a later page");
    if (tracing)
      fprintf(stderr, "fuzz_southbound: %zu of %zu events after %llu (limit %u)\n", w.seen, w.expected_n,
              (unsigned long long)start, limit);
    check(w.seen == w.expected_n, "a watcher cannot get past index-only changes");
  }
  free(w.expected);
  free(w.kinds);
}

/* aux picks a compaction point around the store's revision (past it is refused). */
static void run_compact(uint8_t aux) {
  uint64_t before = aux % (store.revision + 3), compacted = store.compacted;
  int r = ep_inventory_compact(inv, before);
  trace("compact", r, ep_error_message());
  if (before > store.revision + 1) {
    check(r == EP_ERANGE, "a compaction past the store revision not refused");
  } else {
    check(r == 0, "ep_inventory_compact failed");
    check(store.compacted == (before && before - 1 > compacted ? before - 1 : compacted), "compaction point wrong");
  }
}

/* ---- 3. the onboarding service's requests ----------------------------------------------------------- */

static const char *const peers[] = {"", "192.0.2.7", "2001:db8::7", "::ffff:10.1.2.3"};

/* OnboardNodeStreamRequest: onboarding.c's check_request, then what find_host and the stream write, with the same
 * validators and inventory calls. */
static void run_onboard(uint8_t aux, const uint8_t *request, size_t len) {
  Onboardingmgr__V1__OnboardNodeStreamRequest *req =
      onboardingmgr__v1__onboard_node_stream_request__unpack(NULL, len, request);
  if (!req) return; /* INVALID_ARGUMENT */
  const char *peer = peers[aux % 4];
  char uuid[EP_UUID_TEXT_LEN + 1], mac[EP_MAC_TEXT_LEN + 1] = "", ip[EP_IP_TEXT_MAX + 1] = "";
  bool ok = req->uuid[0] != '\0';
  ok = ok && validate_uuid(req->uuid, uuid);
  ok = ok && (!req->serialnum[0] || validate_serial(req->serialnum));
  ok = ok && (!req->mac_id[0] || validate_mac(req->mac_id, mac));
  ok = ok && (!req->host_ip[0] || validate_ip("host_ip", req->host_ip, ip));
  ep_inv_host *host = NULL;
  int r = ok ? ep_inventory_get_host(inv, uuid, &host) : EP_EINVAL;
  trace("OnboardNode", r, ep_error_message());
  if (ok) check(r == 0 || r == EP_ENOENT, "get_host of a valid UUID failed");
  if (r == 0) {
    check(strcmp(host->uuid, uuid) == 0, "get_host: another host");
    bool mac_known = host->n_macs == 0;
    for (size_t i = 0; !mac_known && i < host->n_macs; i++) mac_known = strcmp(mac, host->macs[i]) == 0;
    bool match = (!host->serial[0] || strcmp(req->serialnum, host->serial) == 0) && mac_known;
    const char *status = match ? "Node connected" : "Onboarding refused: the node's identifiers do not match";
    ep_status_indicator indicator = match ? EDGEPROV__V1__STATUS_INDICATOR__STATUS_INDICATOR_IDLE
                                          : EDGEPROV__V1__STATUS_INDICATOR__STATUS_INDICATOR_ERROR;
    r = ep_inventory_set_registration_status(inv, host->uuid, status, indicator, match ? req->host_ip : NULL,
                                             match ? peer : NULL);
    check(r == 0, "set_registration_status of a checked request failed");
    ep_inv_host *after = NULL;
    check(ep_inventory_get_host(inv, uuid, &after) == 0, "the host went away");
    check(after->registration_status && strcmp(after->registration_status->message, status) == 0 &&
              after->registration_status->indicator == indicator,
          "registration status not recorded");
    if (match && ip[0]) check(strcmp(after->ip, ip) == 0, "the node's IP not recorded in canonical form");
    if (match && peer[0]) {
      char canonical[EP_IP_TEXT_MAX + 1];
      check(ep_validate_ip(canonical, "peer", peer) == 0 && strcmp(after->peer_ip, canonical) == 0,
            "peer IP not recorded");
    }
    check(after->desired_state == host->desired_state && after->current_state == host->current_state,
          "registration changed the host's state");
    ep_inv_host_free(after);
    ep_inv_host_free(host);
  }
  /* The same call with the node's fields unchecked (as a caller that skipped check_request would make it): the
   * inventory must refuse what does not validate. */
  const char *raw_peer = (aux & 4) ? req->mac_id : peer;
  char canonical[EP_IP_TEXT_MAX + 1];
  bool ip_ok = !req->host_ip[0] || ep_validate_ip(canonical, "host_ip", req->host_ip) == 0;
  bool peer_ok = !raw_peer[0] || ep_validate_ip(canonical, "peer_ip", raw_peer) == 0;
  bool known = uuid_of(uuid, req->uuid) && host_exists(uuid);
  r = ep_inventory_set_registration_status(inv, req->uuid, "Node connected", (ep_status_indicator)((aux >> 4) % 4),
                                           req->host_ip, raw_peer);
  trace("registration", r, ep_error_message());
  if (!ip_ok || !peer_ok) {
    check_refusal(r, ip_ok ? "peer_ip" : "host_ip");
    check(r == EP_EINVAL, "a bad IP refused with another code than EINVAL");
  } else if (!known) {
    check(r == EP_EINVAL || r == EP_ENOENT, "registration of an unknown host not refused");
  } else {
    check(r == 0, "registration of a known host failed");
  }
  onboardingmgr__v1__onboard_node_stream_request__free_unpacked(req, NULL);
}

/* CreateNodesRequest: handle_create_nodes' bound and loop, every HwData a host spec. */
static void run_create_nodes(const uint8_t *request, size_t len) {
  Onboardingmgr__V1__CreateNodesRequest *req = onboardingmgr__v1__create_nodes_request__unpack(NULL, len, request);
  if (!req) return; /* INVALID_ARGUMENT */
  size_t hosts = 0;
  for (size_t i = 0; i < req->n_payload; i++) hosts += req->payload[i]->n_hwdata;
  int r = 0;
  for (size_t i = 0; hosts <= CREATE_NODES_HOSTS_MAX && r == 0 && i < req->n_payload; i++) {
    for (size_t j = 0; r == 0 && j < req->payload[i]->n_hwdata; j++) {
      const Onboardingmgr__V1__HwData *hw = req->payload[i]->hwdata[j];
      char uuid[EP_UUID_TEXT_LEN + 1], mac[EP_MAC_TEXT_LEN + 1], ip[EP_IP_TEXT_MAX + 1];
      bool uuid_ok = validate_uuid(hw->uuid, uuid);
      bool valid = uuid_ok && (!hw->serialnum[0] || validate_serial(hw->serialnum)) &&
                   (!hw->mac_id[0] || validate_mac(hw->mac_id, mac)) &&
                   (!hw->sut_ip[0] || validate_ip("ip", hw->sut_ip, ip));
      bool existed = uuid_ok && host_exists(uuid);
      const char *macs[1] = {hw->mac_id};
      ep_inv_host_spec spec = {.uuid = hw->uuid,
                           .serial = hw->serialnum,
                           .macs = macs,
                           .mac_count = hw->mac_id[0] ? 1 : 0,
                           .ip = hw->sut_ip,
                           .auto_onboard = true};
      ep_inv_host *host = NULL;
      r = ep_inventory_add_host(inv, &spec, &host);
      trace("CreateNodes", r, ep_error_message());
      if (r == 0) {
        check(valid && !existed, "add_host accepted what the validators refuse, or a UUID twice");
        check(strcmp(host->uuid, uuid) == 0 && strcmp(host->serial, hw->serialnum) == 0 &&
                  host->desired_state == EDGEPROV__V1__HOST_STATE__HOST_STATE_ONBOARDED && host->auto_onboard,
              "add_host stored another host than asked");
        check(host->n_macs == spec.mac_count && (!spec.mac_count || strcmp(host->macs[0], mac) == 0),
              "add_host: MAC not stored in normal form");
        check(!hw->sut_ip[0] || strcmp(host->ip, ip) == 0, "add_host: IP not stored in canonical form");
        check(host_exists(uuid), "an added host cannot be read");
      } else {
        check_refusal(r, NULL);
        check(r == (valid ? EP_EEXIST : EP_EINVAL), "add_host refused with another reason than expected");
        check(!valid || existed || hw->serialnum[0], "add_host refused a new UUID without a serial");
        if (uuid_ok) check(host_exists(uuid) == existed, "a refused add_host changed the store");
      }
      ep_inv_host_free(host);
    }
  }
  onboardingmgr__v1__create_nodes_request__free_unpacked(req, NULL);
}

/* ---- input ------------------------------------------------------------------------------------------ */

/* After the methods, however many there are (numbered by hand, the entries past the ninth method
 * were methods again and never ran). */
enum {
  ENTRY_MGMT_FIRST = 0,                  /* 0..MGMT_METHODS - 1: mgmt_methods[entry] */
  ENTRY_MGMT_UNKNOWN = MGMT_METHODS,     /* the request bytes are the method name */
  ENTRY_WATCH = MGMT_METHODS + 1,
  ENTRY_ONBOARD = MGMT_METHODS + 2,
  ENTRY_CREATE_NODES = MGMT_METHODS + 3,
  ENTRY_COMPACT = MGMT_METHODS + 4,
  ENTRIES = MGMT_METHODS + 5,
};

static void run_record(uint8_t entry, uint8_t aux, const uint8_t *request, size_t len) {
  ep_error_clear();
  if (entry < MGMT_METHODS) {
    run_mgmt(&mgmt_methods[entry], mgmt_methods[entry].name, request, len);
  } else if (entry == ENTRY_MGMT_UNKNOWN) {
    char name[65];
    snprintf(name, sizeof name, "%.*s", (int)(len < 64 ? len : 64), (const char *)request);
    const mgmt_method *m = mgmt_method_named(name);
    check(ep_mgmt_is_watch(name) == (strcmp(name, "WatchEvents") == 0), "ep_mgmt_is_watch: another method");
    run_mgmt(m, name, request + len, 0); /* a known name called with an empty request */
  } else if (entry == ENTRY_WATCH) {
    run_watch(aux, request, len);
  } else if (entry == ENTRY_ONBOARD) {
    run_onboard(aux, request, len);
  } else if (entry == ENTRY_CREATE_NODES) {
    run_create_nodes(request, len);
  } else {
    run_compact(aux);
  }
  check_store();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, setup);
  /* Every method the daemon registers is one this fuzzer knows how to check. */
  for (size_t i = 0; ep_mgmt_unary_methods[i]; i++) check(mgmt_method_named(ep_mgmt_unary_methods[i]), "a new method");
  fixture();
  for (int n = 0; size >= 4 && n < RECORDS_MAX; n++) {
    uint8_t entry = data[0] % ENTRIES, aux = data[1];
    size_t len = (size_t)data[2] | (size_t)data[3] << 8;
    data += 4, size -= 4;
    if (len > size) len = size;
    run_record(entry, aux, data, len);
    data += len, size -= len;
  }
  return 0;
}
