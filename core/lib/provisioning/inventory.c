/* core: the inventory, see inventory.h. */
#define _GNU_SOURCE /* strdup, asprintf, pthread_condattr_setclock */
#include "provisioning/inventory.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <edgeprov/storage.h>

#include "base/clock.h"
#include "base/error.h"
#include "base/tpm_credential.h"
#include "base/redact.h"
#include "base/figures.h"
#include "base/log.h"
#include "runtime/plugin_loader.h"
#include "base/validate.h"

#define HOSTS_PREFIX "hosts/"
#define INSTANCES_PREFIX "instances/"
#define SERIALS_PREFIX "serials/"
#define WORKFLOWS_PREFIX "workflows/"
#define LOGS_PREFIX "logs/" /* node_log.c: "logs/<uuid>/head" and "logs/<uuid>/<slot>" */
#define LOG_HEAD_SUFFIX "/head"
#define RECOVERY_PREFIX "recovery/" /* recovery_keys.c: "recovery/<uuid>", deleted with its host; never an event */
#define CAS_RETRIES 16 /* read-modify-write attempts before giving up under contention */

/* Waiting for changes. With a store that can be waited on (ABI 1.4 wait), one follower
 * thread waits on the store and publishes each new revision (known) to the waiters of this
 * process: a commit of another process or replica reaches them as soon as the store tells.
 * With an older store, each waiter asks the store itself, at least every
 * POLL_FALLBACK_MS. */
#define POLL_FALLBACK_MS 500
#define LEAD_ROLES_LOGGED 8
#define FOLLOW_SLICE_MS 1000 /* the follower's longest wait, which bounds how late it sees a stop */

struct ep_inventory {
  const ep_storage *st;
  void *state;
  pthread_mutex_t lock;
  pthread_cond_t changed;
  uint64_t wakes;   /* bumped by ep_inventory_wake */
  uint64_t commits; /* bumped by every commit of this process */
  uint64_t known;   /* the highest revision the follower has seen (follower only) */
  bool following, stopping, follower_failed;
  pthread_t follower;
  char lead_roles[LEAD_ROLES_LOGGED][64]; /* ep_inventory_lead's roles, for its log lines */
  bool leading[LEAD_ROLES_LOGGED];
};

/* ---- names and transitions ------------------------------------------------------------- */

const char *ep_inv_host_state_name(ep_inv_host_state s) {
  switch (s) {
  case EDGEPROV__V1__HOST_STATE__HOST_STATE_REGISTERED: return "REGISTERED";
  case EDGEPROV__V1__HOST_STATE__HOST_STATE_ONBOARDED: return "ONBOARDED";
  case EDGEPROV__V1__HOST_STATE__HOST_STATE_UNTRUSTED: return "UNTRUSTED";
  case EDGEPROV__V1__HOST_STATE__HOST_STATE_DELETED: return "DELETED";
  default: return "-";
  }
}

const char *ep_inv_instance_state_name(ep_inv_instance_state s) {
  switch (s) {
  case EDGEPROV__V1__INSTANCE_STATE__INSTANCE_STATE_RUNNING: return "RUNNING";
  case EDGEPROV__V1__INSTANCE_STATE__INSTANCE_STATE_PROVISIONING: return "PROVISIONING";
  case EDGEPROV__V1__INSTANCE_STATE__INSTANCE_STATE_ERROR: return "ERROR";
  case EDGEPROV__V1__INSTANCE_STATE__INSTANCE_STATE_DELETED: return "DELETED";
  default: return "-";
  }
}

const char *ep_status_indicator_name(ep_status_indicator i) {
  switch (i) {
  case EDGEPROV__V1__STATUS_INDICATOR__STATUS_INDICATOR_IDLE: return "IDLE";
  case EDGEPROV__V1__STATUS_INDICATOR__STATUS_INDICATOR_IN_PROGRESS: return "IN_PROGRESS";
  case EDGEPROV__V1__STATUS_INDICATOR__STATUS_INDICATOR_ERROR: return "ERROR";
  default: return "-";
  }
}

bool ep_inv_host_transition_allowed(ep_inv_host_state from, ep_inv_host_state to, const char **reason) {
  const char *why = NULL;
  if (to == EDGEPROV__V1__HOST_STATE__HOST_STATE_UNSPECIFIED)
    why = "a host cannot go back to no state";
  else if (from == EDGEPROV__V1__HOST_STATE__HOST_STATE_DELETED)
    why = "the host is deleted";
  else if (from == EDGEPROV__V1__HOST_STATE__HOST_STATE_ONBOARDED && to == EDGEPROV__V1__HOST_STATE__HOST_STATE_REGISTERED)
    why = "an onboarded host must be invalidated (UNTRUSTED) before it registers again";
  else if (from == EDGEPROV__V1__HOST_STATE__HOST_STATE_UNTRUSTED && to == EDGEPROV__V1__HOST_STATE__HOST_STATE_ONBOARDED)
    why = "an untrusted host must register again before it is onboarded";
  if (reason) *reason = why;
  return why == NULL;
}

bool ep_inv_instance_transition_allowed(ep_inv_instance_state from, ep_inv_instance_state to, const char **reason) {
  const char *why = NULL;
  if (to == EDGEPROV__V1__INSTANCE_STATE__INSTANCE_STATE_UNSPECIFIED)
    why = "an instance cannot go back to no state";
  else if (from == EDGEPROV__V1__INSTANCE_STATE__INSTANCE_STATE_DELETED)
    why = "the instance is deleted";
  else if (from == EDGEPROV__V1__INSTANCE_STATE__INSTANCE_STATE_UNSPECIFIED &&
           to == EDGEPROV__V1__INSTANCE_STATE__INSTANCE_STATE_RUNNING)
    why = "an instance must be provisioned first";
  /* UNSPECIFIED -> ERROR is allowed: provisioning can fail before its first step (a workflow
   * that cannot be rendered), and ERROR is where an operator sees why and re-arms it. */
  if (reason) *reason = why;
  return why == NULL;
}

/* ---- storage access ---------------------------------------------------------------------- */

static int storage_failed(int r, const char *what);

/* The follower: waits on the store for revisions past known and wakes this process's waiters
 * with each. A store error is logged once per outage and retried after a pause; waiters then
 * fall back to asking the store themselves. */
static void *follow_store(void *arg) {
  ep_inventory *inv = arg;
  pthread_mutex_lock(&inv->lock);
  while (!inv->stopping) {
    uint64_t known = inv->known; /* this process's commits publish theirs too */
    pthread_mutex_unlock(&inv->lock);
    uint64_t revision = 0;
    int32_t r = inv->st->wait(inv->state, known, FOLLOW_SLICE_MS, &revision);
    bool failed = r < 0 && r != EP_ETIMEDOUT && r != EP_ECANCELED;
    if (failed && !inv->follower_failed) /* once per outage */
      ep_log(EP_LOG_WARN, "inventory", "waiting on the store failed (waiters poll it until it answers): %s",
             ep_error_message());
    if (failed) usleep(POLL_FALLBACK_MS * 1000);
    pthread_mutex_lock(&inv->lock);
    if (inv->follower_failed != failed) pthread_cond_broadcast(&inv->changed); /* waiters switch over */
    if (!failed && inv->follower_failed) ep_log(EP_LOG_INFO, "inventory", "the store answers again");
    inv->follower_failed = failed;
    if (r == 0 && revision > inv->known) { /* never back: a commit may have published a later one */
      inv->known = revision;
      pthread_cond_broadcast(&inv->changed);
    }
  }
  pthread_mutex_unlock(&inv->lock);
  return NULL;
}

int ep_inventory_new(ep_inventory **out, const ep_plugin_set *plugins) {
  ep_plugin *plugin = NULL;
  const ep_storage *st = ep_plugins_capability(plugins, EP_CAP_STORAGE, &plugin);
  if (!st) return ep_error_set(EP_ENOENT, "no storage plugin is active (enable storage-sqlite)");
  ep_inventory *inv = calloc(1, sizeof *inv);
  if (!inv) return ep_error_set(EP_ENOMEM, "out of memory");
  inv->st = st;
  inv->state = plugin->instance;
  pthread_mutex_init(&inv->lock, NULL);
  pthread_condattr_t attr;
  pthread_condattr_init(&attr);
  pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
  pthread_cond_init(&inv->changed, &attr);
  pthread_condattr_destroy(&attr);
  if (EP_STORAGE_HAS(st, wake) && st->wait && st->wake) {
    int32_t r = st->revision(inv->state, &inv->known);
    if (r < 0 || pthread_create(&inv->follower, NULL, follow_store, inv) != 0) {
      int code = r < 0 ? storage_failed(r, "revision") : ep_error_set(EP_ENOMEM, "cannot start the store follower");
      ep_inventory_free(inv);
      return code;
    }
    inv->following = true;
  }
  *out = inv;
  return 0;
}

void ep_inventory_free(ep_inventory *inv) {
  if (!inv) return;
  if (inv->following) {
    pthread_mutex_lock(&inv->lock);
    inv->stopping = true;
    pthread_mutex_unlock(&inv->lock);
    inv->st->wake(inv->state);
    pthread_join(inv->follower, NULL);
  }
  pthread_cond_destroy(&inv->changed);
  pthread_mutex_destroy(&inv->lock);
  free(inv);
}

static int storage_failed(int r, const char *what) {
  /* The plugin recorded its message on this thread through host->set_error. */
  return ep_error_prefix(r, "storage: %s", what);
}

typedef struct blob {
  uint8_t *data;
  size_t len;
  uint64_t mod_revision;
} blob;

static int32_t copy_record(void *data, const ep_storage_record *record) {
  blob *b = data;
  b->data = malloc(record->value_len ? record->value_len : 1);
  if (!b->data) return 1;
  memcpy(b->data, record->value, record->value_len);
  b->len = record->value_len;
  b->mod_revision = record->mod_revision;
  return 0;
}

/* Reads key into *out (caller frees out->data). EP_ENOENT when absent. */
static int load(ep_inventory *inv, const char *key, blob *out) {
  blob b = {0};
  int32_t r = inv->st->get(inv->state, key, copy_record, &b);
  if (r == EP_ENOENT) return EP_ENOENT;
  if (r < 0) return storage_failed(r, key);
  if (!b.data) return ep_error_set(EP_ENOMEM, "out of memory reading %s", key);
  *out = b;
  return 0;
}

/* Commits ops; wakes waiters on success. EP_ECONFLICT is returned with *ret_failed set and
 * no message (callers explain it). */
static int commit(ep_inventory *inv, ep_storage_op *ops, uint32_t count, uint64_t *ret_revision, uint32_t *ret_failed) {
  uint64_t revision = 0;
  uint32_t failed = 0;
  for (uint32_t i = 0; i < count; i++) ops[i].struct_size = sizeof(ep_storage_op);
  int64_t started = ep_figures_clock();
  int32_t r = inv->st->txn(inv->state, ops, count, sizeof(ep_storage_op), &revision, &failed);
  ep_figures_storage_txn(started);
  if (r == EP_ECONFLICT) {
    if (ret_failed) *ret_failed = failed;
    return EP_ECONFLICT;
  }
  if (r < 0) return storage_failed(r, "write");
  pthread_mutex_lock(&inv->lock);
  inv->commits++;
  /* With a working follower, waiters wake for a revision they have not seen: this commit's is
   * published here (revisions are handed out in commit order, so the store holds every one
   * before it), and a commit that adds nothing new wakes no one. Without it, waiters poll and
   * each commit is their cue. */
  bool published = inv->following && !inv->follower_failed;
  bool wake = !published || revision > inv->known;
  if (published && revision > inv->known) inv->known = revision;
  if (wake) pthread_cond_broadcast(&inv->changed);
  pthread_mutex_unlock(&inv->lock);
  if (ret_revision) *ret_revision = revision;
  return 0;
}

int ep_inventory_load_raw(ep_inventory *inv, const char *key, uint8_t **ret_data, size_t *ret_len,
                          uint64_t *ret_mod_revision) {
  blob b = {0};
  int r = load(inv, key, &b);
  if (r < 0) return r;
  *ret_data = b.data;
  *ret_len = b.len;
  if (ret_mod_revision) *ret_mod_revision = b.mod_revision;
  return 0;
}

int ep_inventory_commit_raw(ep_inventory *inv, ep_storage_op *ops, uint32_t count, uint64_t *ret_revision) {
  return commit(inv, ops, count, ret_revision, NULL);
}

static char *key_of(const char *prefix, const char *id) {
  char *key = NULL;
  return asprintf(&key, "%s%s", prefix, id) < 0 ? NULL : key;
}

/* ---- encoding ---------------------------------------------------------------------------- */

static int pack_host(const ep_inv_host *host, uint8_t **ret_data, size_t *ret_len) {
  size_t len = edgeprov__v1__host__get_packed_size(host);
  uint8_t *data = malloc(len ? len : 1);
  if (!data) return ep_error_set(EP_ENOMEM, "out of memory");
  edgeprov__v1__host__pack(host, data);
  *ret_data = data;
  *ret_len = len;
  return 0;
}

static int pack_instance(const ep_inv_instance *instance, uint8_t **ret_data, size_t *ret_len) {
  size_t len = edgeprov__v1__instance__get_packed_size(instance);
  uint8_t *data = malloc(len ? len : 1);
  if (!data) return ep_error_set(EP_ENOMEM, "out of memory");
  edgeprov__v1__instance__pack(instance, data);
  *ret_data = data;
  *ret_len = len;
  return 0;
}

static int unpack_host(const uint8_t *data, size_t len, uint64_t revision, const char *key, ep_inv_host **out) {
  ep_inv_host *host = edgeprov__v1__host__unpack(NULL, len, data);
  if (!host) return ep_error_set(EP_EIO, "record %s is corrupt (cannot decode)", key);
  host->revision = revision;
  *out = host;
  return 0;
}

static int unpack_instance(const uint8_t *data, size_t len, uint64_t revision, const char *key, ep_inv_instance **out) {
  ep_inv_instance *instance = edgeprov__v1__instance__unpack(NULL, len, data);
  if (!instance) return ep_error_set(EP_EIO, "record %s is corrupt (cannot decode)", key);
  instance->revision = revision;
  *out = instance;
  return 0;
}

void ep_inv_host_free(ep_inv_host *host) {
  if (host) edgeprov__v1__host__free_unpacked(host, NULL);
}

void ep_inv_instance_free(ep_inv_instance *instance) {
  if (instance) edgeprov__v1__instance__free_unpacked(instance, NULL);
}

void ep_inv_hosts_free(ep_inv_host **hosts, size_t count) {
  for (size_t i = 0; i < count; i++) ep_inv_host_free(hosts[i]);
  free(hosts);
}

void ep_inv_instances_free(ep_inv_instance **instances, size_t count) {
  for (size_t i = 0; i < count; i++) ep_inv_instance_free(instances[i]);
  free(instances);
}

/* Replaces *status (of a record that came from unpack, so malloc-owned) with a new one. */
/* Sets a status; the same message and indicator again keep the record as it is (its
 * timestamp says since when the status holds), so a repeated report writes nothing. */
static int set_status(Edgeprov__V1__Status **status, const char *message, ep_status_indicator indicator) {
  if (*status && (*status)->indicator == indicator && strcmp((*status)->message, message ? message : "") == 0) return 0;
  Edgeprov__V1__Status *s = malloc(sizeof *s);
  char *text = strdup(message ? message : "");
  if (!s || !text) {
    free(s);
    free(text);
    return ep_error_set(EP_ENOMEM, "out of memory");
  }
  edgeprov__v1__status__init(s);
  s->message = text;
  s->indicator = indicator;
  s->timestamp = (int64_t)time(NULL);
  if (*status) edgeprov__v1__status__free_unpacked(*status, NULL);
  *status = s;
  return 0;
}

/* ---- hosts ------------------------------------------------------------------------------- */

static int load_host(ep_inventory *inv, const char *uuid, ep_inv_host **out) {
  char *key = key_of(HOSTS_PREFIX, uuid);
  if (!key) return ep_error_set(EP_ENOMEM, "out of memory");
  blob b = {0};
  int r = load(inv, key, &b);
  if (r == EP_ENOENT) r = ep_error_set(EP_ENOENT, "no host with uuid %s", uuid);
  if (r == 0) {
    r = unpack_host(b.data, b.len, b.mod_revision, key, out);
    free(b.data);
  }
  free(key);
  return r;
}

int ep_inventory_get_host(ep_inventory *inv, const char *uuid, ep_inv_host **ret_host) {
  char canonical[EP_UUID_TEXT_LEN + 1];
  if (ep_validate_uuid(canonical, "uuid", uuid) < 0) return EP_EINVAL;
  return load_host(inv, canonical, ret_host);
}

int ep_inventory_find_host_by_serial(ep_inventory *inv, const char *serial, ep_inv_host **ret_host) {
  if (ep_validate_serial("serial", serial) < 0) return EP_EINVAL;
  char *key = key_of(SERIALS_PREFIX, serial);
  if (!key) return ep_error_set(EP_ENOMEM, "out of memory");
  blob b = {0};
  int r = load(inv, key, &b);
  free(key);
  if (r == EP_ENOENT) return ep_error_set(EP_ENOENT, "no host with serial %s", serial);
  if (r < 0) return r;
  char uuid[EP_UUID_TEXT_LEN + 1];
  snprintf(uuid, sizeof uuid, "%.*s", (int)(b.len < EP_UUID_TEXT_LEN ? b.len : EP_UUID_TEXT_LEN), (const char *)b.data);
  free(b.data);
  return load_host(inv, uuid, ret_host);
}

/* A host record from an operator's spec, validated field by field; strings point into
 * canon (which must outlive the record) or into the spec. */
typedef struct host_canon {
  char uuid[EP_UUID_TEXT_LEN + 1];
  char ip[EP_IP_TEXT_MAX + 1];
  char macs[EP_MACS_MAX][EP_MAC_TEXT_LEN + 1];
  char *mac_ptrs[EP_MACS_MAX];
  Edgeprov__V1__Status registration;
  Edgeprov__V1__Status host_status;
} host_canon;

static int host_from_spec(ep_inv_host *host, host_canon *canon, const ep_inv_host_spec *spec) {
  edgeprov__v1__host__init(host);
  if (!spec->uuid) return ep_error_set(EP_EINVAL, "uuid: required");
  if (ep_validate_uuid(canon->uuid, "uuid", spec->uuid) < 0) return EP_EINVAL;
  host->uuid = canon->uuid;
  if (spec->serial && *spec->serial) {
    if (ep_validate_serial("serial", spec->serial) < 0) return EP_EINVAL;
    host->serial = (char *)spec->serial;
  }
  if (spec->mac_count > EP_MACS_MAX) return ep_error_set(EP_EINVAL, "macs: %zu given, at most %d", spec->mac_count, EP_MACS_MAX);
  for (size_t i = 0; i < spec->mac_count; i++) {
    char field[32];
    snprintf(field, sizeof field, "macs[%zu]", i);
    if (ep_validate_mac(canon->macs[i], field, spec->macs[i]) < 0) return EP_EINVAL;
    for (size_t j = 0; j < i; j++)
      if (strcmp(canon->macs[i], canon->macs[j]) == 0) return ep_error_set(EP_EINVAL, "%s: %s is listed twice", field, canon->macs[i]);
    canon->mac_ptrs[i] = canon->macs[i];
  }
  host->n_macs = spec->mac_count;
  host->macs = canon->mac_ptrs;
  if (spec->ip && *spec->ip) {
    if (ep_validate_ip(canon->ip, "ip", spec->ip) < 0) return EP_EINVAL;
    host->ip = canon->ip;
  }
  if (spec->site && *spec->site) {
    if (ep_validate_name("site", spec->site) < 0) return EP_EINVAL;
    host->site = (char *)spec->site;
  }
  if (spec->os_profile && *spec->os_profile) {
    if (ep_validate_name("os_profile", spec->os_profile) < 0) return EP_EINVAL;
    host->os_profile = (char *)spec->os_profile;
  }
  if (spec->tpm_ek_len) {
    ep_tpm_ek ek;
    if (ep_tpm_ek_from_bytes(&ek, spec->tpm_ek, spec->tpm_ek_len, "tpm_ek") < 0) return EP_EINVAL;
    if (ek.der_len != spec->tpm_ek_len || memcmp(ek.der, spec->tpm_ek, ek.der_len) != 0)
      return ep_error_set(EP_EINVAL, "tpm_ek: not in its canonical form (DER SubjectPublicKeyInfo)");
    host->tpm_ek.data = (uint8_t *)spec->tpm_ek;
    host->tpm_ek.len = spec->tpm_ek_len;
  }
  host->auto_onboard = spec->auto_onboard;
  host->fde = spec->fde;
  host->desired_state = spec->auto_onboard ? EDGEPROV__V1__HOST_STATE__HOST_STATE_ONBOARDED
                                           : EDGEPROV__V1__HOST_STATE__HOST_STATE_REGISTERED;
  host->current_state = EDGEPROV__V1__HOST_STATE__HOST_STATE_UNSPECIFIED;
  host->created_at = (int64_t)time(NULL);
  edgeprov__v1__status__init(&canon->registration);
  canon->registration.message = "Pre-registered, waiting for the node";
  canon->registration.indicator = EDGEPROV__V1__STATUS_INDICATOR__STATUS_INDICATOR_IDLE;
  canon->registration.timestamp = host->created_at;
  host->registration_status = &canon->registration;
  edgeprov__v1__status__init(&canon->host_status);
  canon->host_status.message = "Registered";
  canon->host_status.indicator = EDGEPROV__V1__STATUS_INDICATOR__STATUS_INDICATOR_IDLE;
  canon->host_status.timestamp = host->created_at;
  host->host_status = &canon->host_status;
  return 0;
}

int ep_inventory_add_host(ep_inventory *inv, const ep_inv_host_spec *spec, ep_inv_host **ret_host) {
  ep_inv_host host;
  host_canon canon;
  int r = host_from_spec(&host, &canon, spec);
  if (r < 0) return r;
  uint8_t *data = NULL;
  size_t len = 0;
  char *host_key = key_of(HOSTS_PREFIX, host.uuid);
  char *serial_key = host.serial[0] ? key_of(SERIALS_PREFIX, host.serial) : NULL;
  if (!host_key || (host.serial[0] && !serial_key)) {
    r = ep_error_set(EP_ENOMEM, "out of memory");
    goto out;
  }
  r = pack_host(&host, &data, &len);
  if (r < 0) goto out;
  ep_storage_op ops[2] = {
      {.kind = EP_STORAGE_PUT, .key = host_key, .value = data, .value_len = len, .expect_mod_revision = EP_STORAGE_EXPECT_ABSENT},
      {.kind = EP_STORAGE_PUT, .key = serial_key, .value = (const uint8_t *)host.uuid, .value_len = EP_UUID_TEXT_LEN,
       .expect_mod_revision = EP_STORAGE_EXPECT_ABSENT},
  };
  uint64_t revision = 0;
  uint32_t failed = 0;
  r = commit(inv, ops, serial_key ? 2 : 1, &revision, &failed);
  if (r == EP_ECONFLICT) {
    if (failed == 0) {
      r = ep_error_set(EP_EEXIST, "uuid: a host with uuid %s already exists", host.uuid);
    } else {
      ep_inv_host *owner = NULL;
      r = ep_error_set(EP_EEXIST, "serial: %s is already registered", host.serial);
      if (ep_inventory_find_host_by_serial(inv, host.serial, &owner) == 0) {
        r = ep_error_set(EP_EEXIST, "serial: %s is already registered to host %s", host.serial, owner->uuid);
        ep_inv_host_free(owner);
      }
    }
    goto out;
  }
  if (r < 0) goto out;
  r = unpack_host(data, len, revision, host_key, ret_host);
out:
  free(data);
  free(host_key);
  free(serial_key);
  return r;
}

typedef struct page {
  void **items;
  size_t count;
  size_t capacity;
  char *last_key;
  int error;
  bool instances;
} page;

static int32_t collect(void *data, const ep_storage_record *record) {
  page *p = data;
  if (p->count == p->capacity) {
    size_t capacity = p->capacity ? p->capacity * 2 : 16;
    void **items = realloc(p->items, capacity * sizeof *items);
    if (!items) return p->error = ep_error_set(EP_ENOMEM, "out of memory"), 1;
    p->items = items;
    p->capacity = capacity;
  }
  void *item = NULL;
  int r = p->instances ? unpack_instance(record->value, record->value_len, record->mod_revision, record->key, (ep_inv_instance **)&item)
                       : unpack_host(record->value, record->value_len, record->mod_revision, record->key, (ep_inv_host **)&item);
  if (r == EP_ENOMEM) return p->error = r, 1;
  if (r < 0) /* one damaged record must not hide the others from listings and the reconciler */
    ep_log(EP_LOG_WARN, "inventory", "%s: skipped in listings: %s", record->key, ep_error_message());
  else
    p->items[p->count++] = item;
  free(p->last_key);
  p->last_key = strdup(record->key);
  return 0;
}

/* Lists one page under prefix; the page token is the last ID of the previous page. */
static int list_page(ep_inventory *inv, const char *prefix, bool instances, const char *page_token, uint32_t page_size,
                     void ***ret_items, size_t *ret_count, char **ret_next) {
  char token[EP_UUID_TEXT_LEN + 1] = "";
  if (page_token && *page_token && ep_validate_uuid(token, "page_token", page_token) < 0) return EP_EINVAL;
  if (page_size == 0) page_size = EP_INVENTORY_PAGE_DEFAULT;
  if (page_size > EP_INVENTORY_PAGE_MAX)
    return ep_error_set(EP_EINVAL, "page_size: %u is above the limit of %d", page_size, EP_INVENTORY_PAGE_MAX);
  char *start_after = token[0] ? key_of(prefix, token) : strdup("");
  if (!start_after) return ep_error_set(EP_ENOMEM, "out of memory");
  page p = {.instances = instances};
  uint64_t revision = 0;
  int32_t more = 0;
  int32_t r = inv->st->list(inv->state, prefix, start_after, page_size, collect, &p, &revision, &more);
  free(start_after);
  if (r == 0 && p.error) r = p.error;
  else if (r < 0) r = storage_failed(r, "list");
  char *next = strdup(more && p.last_key ? p.last_key + strlen(prefix) : "");
  if (r == 0 && !next) r = ep_error_set(EP_ENOMEM, "out of memory");
  if (r < 0) {
    for (size_t i = 0; i < p.count; i++)
      instances ? ep_inv_instance_free(p.items[i]) : ep_inv_host_free(p.items[i]);
    free(p.items);
    free(p.last_key);
    free(next);
    return r;
  }
  free(p.last_key);
  *ret_items = p.items;
  *ret_count = p.count;
  *ret_next = next;
  return 0;
}

int ep_inventory_list_hosts(ep_inventory *inv, const char *page_token, uint32_t page_size, ep_inv_host ***ret_hosts,
                            size_t *ret_count, char **ret_next) {
  return list_page(inv, HOSTS_PREFIX, false, page_token, page_size, (void ***)ret_hosts, ret_count, ret_next);
}

int ep_inventory_list_instances(ep_inventory *inv, const char *page_token, uint32_t page_size,
                                ep_inv_instance ***ret_instances, size_t *ret_count, char **ret_next) {
  return list_page(inv, INSTANCES_PREFIX, true, page_token, page_size, (void ***)ret_instances, ret_count, ret_next);
}

int ep_inventory_delete_host(ep_inventory *inv, const char *uuid, uint64_t *ret_revision) {
  for (int attempt = 0; attempt < CAS_RETRIES; attempt++) {
    ep_inv_host *host = NULL;
    int r = ep_inventory_get_host(inv, uuid, &host);
    if (r < 0) return r;
    if (host->instance_id[0]) {
      r = ep_error_set(EP_EPERM, "host %s has instance %s; delete it first (edgeprov instance delete %s)", host->uuid,
                       host->instance_id, host->instance_id);
      ep_inv_host_free(host);
      return r;
    }
    char *host_key = key_of(HOSTS_PREFIX, host->uuid);
    char *serial_key = host->serial[0] ? key_of(SERIALS_PREFIX, host->serial) : NULL;
    /* Its disk's recovery key goes with it, in the same transaction (deleting an absent key
     * writes nothing): a host added again under the UUID never finds the old one. */
    char recovery_key[sizeof RECOVERY_PREFIX + EP_UUID_TEXT_LEN];
    snprintf(recovery_key, sizeof recovery_key, RECOVERY_PREFIX "%s", host->uuid);
    ep_storage_op ops[3] = {
        {.kind = EP_STORAGE_DELETE, .key = host_key, .expect_mod_revision = host->revision},
        {.kind = EP_STORAGE_DELETE, .key = recovery_key, .expect_mod_revision = EP_STORAGE_EXPECT_ANY},
        {.kind = EP_STORAGE_DELETE, .key = serial_key, .expect_mod_revision = EP_STORAGE_EXPECT_ANY},
    };
    r = host_key && (serial_key || !host->serial[0]) ? commit(inv, ops, serial_key ? 3 : 2, ret_revision, NULL)
                                                      : ep_error_set(EP_ENOMEM, "out of memory");
    free(host_key);
    free(serial_key);
    ep_inv_host_free(host);
    if (r != EP_ECONFLICT) return r;
  }
  return ep_error_set(EP_ECONFLICT, "host %s keeps changing; try again", uuid);
}

/* Read-modify-write of one host with compare-and-set, retried under contention. mutate
 * changes the decoded record (strings it sets must be malloc'd or outlive the call, see
 * set_status) or returns a negative code to refuse. A mutation that leaves the record as it
 * was writes nothing: what a peer repeats costs a read, never a revision or change-log entry. */
static int update_host(ep_inventory *inv, const char *uuid, int (*mutate)(ep_inv_host *host, void *data), void *data,
                       ep_inv_host **ret_host) {
  for (int attempt = 0; attempt < CAS_RETRIES; attempt++) {
    ep_inv_host *host = NULL;
    int r = ep_inventory_get_host(inv, uuid, &host);
    if (r < 0) return r;
    uint64_t expect = host->revision;
    char *key = key_of(HOSTS_PREFIX, host->uuid);
    uint8_t *bytes = NULL, *before = NULL;
    size_t len = 0, before_len = 0;
    host->revision = 0;
    r = key ? pack_host(host, &before, &before_len) : ep_error_set(EP_ENOMEM, "out of memory");
    if (r == 0) r = mutate(host, data);
    host->revision = 0;
    if (r == 0) r = pack_host(host, &bytes, &len);
    uint64_t revision = expect;
    if (r == 0 && !(len == before_len && memcmp(bytes, before, len) == 0)) {
      ep_storage_op op = {.kind = EP_STORAGE_PUT, .key = key, .value = bytes, .value_len = len, .expect_mod_revision = expect};
      r = commit(inv, &op, 1, &revision, NULL);
    }
    free(before);
    if (r == 0 && ret_host) {
      host->revision = revision;
      *ret_host = host;
      host = NULL;
    }
    free(bytes);
    free(key);
    ep_inv_host_free(host);
    if (r != EP_ECONFLICT) return r;
  }
  return ep_error_set(EP_ECONFLICT, "host %s keeps changing; try again", uuid);
}

typedef struct state_change {
  ep_inv_host_state state;
  const char *status;
  ep_status_indicator indicator;
} state_change;

static int change_current(ep_inv_host *host, void *data) {
  const state_change *c = data;
  const char *why = NULL;
  if (!ep_inv_host_transition_allowed(host->current_state, c->state, &why))
    return ep_error_set(EP_EPERM, "host %s: %s -> %s refused: %s", host->uuid, ep_inv_host_state_name(host->current_state),
                        ep_inv_host_state_name(c->state), why);
  host->current_state = c->state;
  return set_status(&host->host_status, c->status, c->indicator);
}

int ep_inventory_set_host_state(ep_inventory *inv, const char *uuid, ep_inv_host_state current, const char *status,
                                ep_status_indicator indicator, ep_inv_host **ret_host) {
  state_change c = {current, status, indicator};
  return update_host(inv, uuid, change_current, &c, ret_host);
}

static int change_used(ep_inv_host *host, void *data) {
  (void)data;
  host->credentials_unused = false;
  return 0;
}

typedef struct protection_change {
  int encrypted, verified_root;
  const char *detail;
} protection_change;

static int change_protection(ep_inv_host *host, void *data) {
  const protection_change *c = data;
  Edgeprov__V1__DiskProtection *p = host->disk_protection;
  if (p && (int)p->encrypted == c->encrypted && (int)p->verified_root == c->verified_root &&
      strcmp(p->detail, c->detail) == 0)
    return 0; /* a report that changes nothing writes nothing */
  Edgeprov__V1__DiskProtection *fresh = malloc(sizeof *fresh);
  char *detail = strdup(c->detail);
  if (!fresh || !detail) {
    free(fresh);
    free(detail);
    return ep_error_set(EP_ENOMEM, "out of memory");
  }
  edgeprov__v1__disk_protection__init(fresh);
  fresh->encrypted = (Edgeprov__V1__Protection)c->encrypted;
  fresh->verified_root = (Edgeprov__V1__Protection)c->verified_root;
  fresh->detail = detail;
  fresh->reported_at = (int64_t)time(NULL);
  if (p) edgeprov__v1__disk_protection__free_unpacked(p, NULL);
  host->disk_protection = fresh;
  return 0;
}

int ep_inventory_set_disk_protection(ep_inventory *inv, const char *uuid, int encrypted, int verified_root,
                                     const char *detail) {
  protection_change c = {encrypted, verified_root, detail ? detail : ""};
  return update_host(inv, uuid, change_protection, &c, NULL);
}

typedef struct tpm_ek_change {
  const uint8_t *der;
  size_t der_len;
} tpm_ek_change;

static int change_tpm_ek(ep_inv_host *host, void *data) {
  const tpm_ek_change *c = data;
  if (host->tpm_ek.len) /* the same one: nothing changes, nothing is written */
    return host->tpm_ek.len == c->der_len && memcmp(host->tpm_ek.data, c->der, c->der_len) == 0
               ? 0
               : ep_error_set(EP_EEXIST, "host %s: another TPM endorsement key is recorded", host->uuid);
  uint8_t *copy = malloc(c->der_len); /* freed with the record */
  if (!copy) return ep_error_set(EP_ENOMEM, "out of memory");
  memcpy(copy, c->der, c->der_len);
  free(host->tpm_ek.data);
  host->tpm_ek.data = copy;
  host->tpm_ek.len = c->der_len;
  host->tpm_ek_first_use = true;
  return 0;
}

int ep_inventory_credentials_used(ep_inventory *inv, const char *uuid) {
  return update_host(inv, uuid, change_used, NULL, NULL);
}

static int change_status(ep_inv_host *host, void *data) {
  const state_change *c = data;
  return set_status(&host->host_status, c->status, c->indicator);
}

int ep_inventory_set_host_status(ep_inventory *inv, const char *uuid, const char *status,
                                 ep_status_indicator indicator, ep_inv_host **ret_host) {
  state_change c = {EDGEPROV__V1__HOST_STATE__HOST_STATE_UNSPECIFIED, status, indicator};
  return update_host(inv, uuid, change_status, &c, ret_host);
}

static int change_desired(ep_inv_host *host, void *data) {
  const state_change *c = data;
  if (c->state != EDGEPROV__V1__HOST_STATE__HOST_STATE_REGISTERED && c->state != EDGEPROV__V1__HOST_STATE__HOST_STATE_ONBOARDED &&
      c->state != EDGEPROV__V1__HOST_STATE__HOST_STATE_UNTRUSTED)
    return ep_error_set(EP_EINVAL, "desired_state: %s cannot be asked for", ep_inv_host_state_name(c->state));
  host->desired_state = c->state;
  if (c->state == EDGEPROV__V1__HOST_STATE__HOST_STATE_UNTRUSTED) {
    host->current_state = c->state;
    host->credentials_unused = false; /* revoked with the host */
    host->artifact_fetched_at = host->first_contact_at = host->onboarded_at = 0; /* its next onboarding starts afresh */
    if (host->tpm_ek_first_use) { /* trusted on first use: the next node proves its TPM afresh */
      free(host->tpm_ek.data);
      host->tpm_ek.data = NULL;
      host->tpm_ek.len = 0;
      host->tpm_ek_first_use = false;
    }
    return set_status(&host->host_status, c->status, c->indicator);
  }
  return 0;
}

int ep_inventory_set_desired_state(ep_inventory *inv, const char *uuid, ep_inv_host_state desired, ep_inv_host **ret_host) {
  state_change c = {desired, "Invalidated by an operator", EDGEPROV__V1__STATUS_INDICATOR__STATUS_INDICATOR_ERROR};
  return update_host(inv, uuid, change_desired, &c, ret_host);
}

typedef struct registration {
  const char *status;
  ep_status_indicator indicator;
  char *ip, *peer_ip; /* canonical, "" to keep */
  bool contact;                /* the node itself connected: its timeline starts */
  int64_t artifact_fetched_at; /* 0: unknown */
} registration;

/* Replaces *field with value unless they are equal. */
static int set_text(char **field, const char *value) {
  if (strcmp(*field, value) == 0) return 0;
  char *copy = strdup(value);
  if (!copy) return ep_error_set(EP_ENOMEM, "out of memory");
  if (*field != protobuf_c_empty_string) free(*field);
  *field = copy;
  return 0;
}

static int change_registration(ep_inv_host *host, void *data) {
  registration *g = data;
  int r = g->ip[0] ? set_text(&host->ip, g->ip) : 0;
  if (r == 0 && g->peer_ip[0]) r = set_text(&host->peer_ip, g->peer_ip);
  if (g->contact && !host->first_contact_at) host->first_contact_at = (int64_t)time(NULL);
  if (g->contact && !host->artifact_fetched_at && g->artifact_fetched_at) host->artifact_fetched_at = g->artifact_fetched_at;
  return r < 0 ? r : set_status(&host->registration_status, g->status, g->indicator);
}

int ep_inventory_set_registration_status(ep_inventory *inv, const char *uuid, const char *status,
                                         ep_status_indicator indicator, const char *ip, const char *peer_ip) {
  char canonical_ip[EP_IP_TEXT_MAX + 1] = "", canonical_peer[EP_IP_TEXT_MAX + 1] = "";
  if (ip && *ip && ep_validate_ip(canonical_ip, "host_ip", ip) < 0) return EP_EINVAL;
  if (peer_ip && *peer_ip && ep_validate_ip(canonical_peer, "peer_ip", peer_ip) < 0) return EP_EINVAL;
  registration g = {status, indicator, canonical_ip, canonical_peer, false, 0};
  return update_host(inv, uuid, change_registration, &g, NULL);
}

/* The registration change a contact makes (g's texts live in static buffers of the calling
 * thread until its next call). Returns 0. */
static int contact_registration(const ep_inv_contact *contact, registration *g) {
  static _Thread_local char canonical_ip[EP_IP_TEXT_MAX + 1], canonical_peer[EP_IP_TEXT_MAX + 1];
  canonical_ip[0] = canonical_peer[0] = '\0';
  /* Facts about the node, never a reason to refuse it: what is not an address is not kept (a
   * link-local peer with a zone, say). */
  if (contact->ip && *contact->ip && ep_validate_ip(canonical_ip, "host_ip", contact->ip) < 0) canonical_ip[0] = '\0';
  if (contact->peer_ip && *contact->peer_ip && ep_validate_ip(canonical_peer, "peer_ip", contact->peer_ip) < 0)
    canonical_peer[0] = '\0';
  *g = (registration){"Node connected", EDGEPROV__V1__STATUS_INDICATOR__STATUS_INDICATOR_IDLE, canonical_ip, canonical_peer,
                      true, contact->artifact_fetched_at};
  return 0;
}

int ep_inventory_node_connected(ep_inventory *inv, const char *uuid, const ep_inv_contact *contact) {
  registration g;
  if (contact_registration(contact, &g) < 0) return EP_EINVAL;
  return update_host(inv, uuid, change_registration, &g, NULL);
}

typedef struct onboarded {
  state_change state;
  registration *contact;      /* NULL: none */
  tpm_ek_change first_use_ek; /* der NULL: none */
} onboarded;

static int change_onboarded(ep_inv_host *host, void *data) {
  onboarded *o = data;
  int r = o->first_use_ek.der ? change_tpm_ek(host, &o->first_use_ek) : 0;
  if (r == 0 && o->contact) r = change_registration(host, o->contact);
  if (r == 0) r = change_current(host, &o->state);
  if (r == 0) {
    host->credentials_unused = true;
    host->onboarded_at = (int64_t)time(NULL);
  }
  return r;
}

int ep_inventory_set_onboarded(ep_inventory *inv, const char *uuid, const ep_inv_contact *contact,
                               const uint8_t *first_use_ek, size_t first_use_ek_len, ep_inv_host **ret_host) {
  registration g;
  onboarded o = {{EDGEPROV__V1__HOST_STATE__HOST_STATE_ONBOARDED, "Onboarded", EDGEPROV__V1__STATUS_INDICATOR__STATUS_INDICATOR_IDLE},
                 contact ? &g : NULL, {first_use_ek, first_use_ek_len}};
  if (contact && contact_registration(contact, &g) < 0) return EP_EINVAL;
  return update_host(inv, uuid, change_onboarded, &o, ret_host);
}

/* ---- instances ----------------------------------------------------------------------------- */

int ep_inventory_get_instance(ep_inventory *inv, const char *id, ep_inv_instance **ret_instance) {
  char canonical[EP_UUID_TEXT_LEN + 1];
  if (ep_validate_uuid(canonical, "id", id) < 0) return EP_EINVAL;
  char *key = key_of(INSTANCES_PREFIX, canonical);
  if (!key) return ep_error_set(EP_ENOMEM, "out of memory");
  blob b = {0};
  int r = load(inv, key, &b);
  if (r == EP_ENOENT) r = ep_error_set(EP_ENOENT, "no instance with id %s", canonical);
  if (r == 0) {
    r = unpack_instance(b.data, b.len, b.mod_revision, key, ret_instance);
    free(b.data);
  }
  free(key);
  return r;
}

/* Writes the instance record and the host that points at it in one transaction. */
static int commit_instance_and_host(ep_inventory *inv, const ep_inv_instance *instance, uint64_t instance_expect,
                                    bool delete_instance, ep_inv_host *host, uint64_t *ret_revision) {
  uint64_t host_expect = host->revision;
  host->revision = 0;
  uint8_t *host_data = NULL, *instance_data = NULL;
  size_t host_len = 0, instance_len = 0;
  char *host_key = key_of(HOSTS_PREFIX, host->uuid);
  char *instance_key = key_of(INSTANCES_PREFIX, instance->id);
  int r = host_key && instance_key ? pack_host(host, &host_data, &host_len) : ep_error_set(EP_ENOMEM, "out of memory");
  if (r == 0 && !delete_instance) r = pack_instance(instance, &instance_data, &instance_len);
  if (r == 0) {
    ep_storage_op ops[2] = {
        {.kind = delete_instance ? EP_STORAGE_DELETE : EP_STORAGE_PUT, .key = instance_key, .value = instance_data,
         .value_len = instance_len, .expect_mod_revision = instance_expect},
        {.kind = EP_STORAGE_PUT, .key = host_key, .value = host_data, .value_len = host_len, .expect_mod_revision = host_expect},
    };
    r = commit(inv, ops, 2, ret_revision, NULL);
  }
  host->revision = host_expect;
  free(host_data);
  free(instance_data);
  free(host_key);
  free(instance_key);
  return r;
}

int ep_inventory_create_instance(ep_inventory *inv, const char *host_uuid, const char *os_profile, bool fde,
                                 ep_inv_instance **ret_instance) {
  if (os_profile && *os_profile && ep_validate_name("os_profile", os_profile) < 0) return EP_EINVAL;
  for (int attempt = 0; attempt < CAS_RETRIES; attempt++) {
    ep_inv_host *host = NULL;
    int r = ep_inventory_get_host(inv, host_uuid, &host);
    if (r < 0) return r;
    const char *profile = os_profile && *os_profile ? os_profile : host->os_profile;
    if (host->instance_id[0])
      r = ep_error_set(EP_EEXIST, "host %s already has instance %s", host->uuid, host->instance_id);
    else if (!profile[0])
      r = ep_error_set(EP_EINVAL, "os_profile: host %s has no OS profile; name one (--os PROFILE)", host->uuid);
    else if (host->current_state == EDGEPROV__V1__HOST_STATE__HOST_STATE_UNTRUSTED ||
             host->current_state == EDGEPROV__V1__HOST_STATE__HOST_STATE_DELETED)
      r = ep_error_set(EP_EPERM, "host %s is %s; it cannot get an instance", host->uuid, ep_inv_host_state_name(host->current_state));
    if (r < 0) {
      ep_inv_host_free(host);
      return r;
    }
    char id[EP_UUID_TEXT_LEN + 1];
    Edgeprov__V1__Status status = EDGEPROV__V1__STATUS__INIT;
    ep_inv_instance instance = EDGEPROV__V1__INSTANCE__INIT;
    r = ep_uuid_random(id);
    instance.id = id;
    instance.host_uuid = host->uuid;
    instance.os_profile = (char *)profile;
    instance.fde = fde;
    instance.desired_state = EDGEPROV__V1__INSTANCE_STATE__INSTANCE_STATE_RUNNING;
    instance.created_at = (int64_t)time(NULL);
    status.message = "Waiting for the host to onboard";
    status.indicator = EDGEPROV__V1__STATUS_INDICATOR__STATUS_INDICATOR_IDLE;
    status.timestamp = instance.created_at;
    instance.provisioning_status = &status;
    char *old_id = host->instance_id;
    host->instance_id = id;
    uint64_t revision = 0;
    if (r == 0) r = commit_instance_and_host(inv, &instance, EP_STORAGE_EXPECT_ABSENT, false, host, &revision);
    host->instance_id = old_id;
    if (r == 0) {
      uint8_t *data = NULL;
      size_t len = 0;
      r = pack_instance(&instance, &data, &len);
      if (r == 0) r = unpack_instance(data, len, revision, "new instance", ret_instance);
      free(data);
    }
    ep_inv_host_free(host);
    if (r != EP_ECONFLICT) return r;
  }
  return ep_error_set(EP_ECONFLICT, "host %s keeps changing; try again", host_uuid);
}

int ep_inventory_delete_instance(ep_inventory *inv, const char *id, uint64_t *ret_revision) {
  for (int attempt = 0; attempt < CAS_RETRIES; attempt++) {
    ep_inv_instance *instance = NULL;
    ep_inv_host *host = NULL;
    int r = ep_inventory_get_instance(inv, id, &instance);
    if (r < 0) return r;
    r = ep_inventory_get_host(inv, instance->host_uuid, &host);
    if (r == 0) {
      char *old_id = host->instance_id;
      host->instance_id = strcmp(old_id, instance->id) == 0 ? "" : old_id;
      r = commit_instance_and_host(inv, instance, instance->revision, true, host, ret_revision);
      host->instance_id = old_id;
    }
    if (r == 0) r = ep_inventory_delete_workflow(inv, instance->id); /* a workflow without its instance is garbage */
    ep_inv_host_free(host);
    ep_inv_instance_free(instance);
    if (r != EP_ECONFLICT) return r;
  }
  return ep_error_set(EP_ECONFLICT, "instance %s keeps changing; try again", id);
}

int ep_inventory_set_instance_state(ep_inventory *inv, const char *id, ep_inv_instance_state current, const char *status,
                                    ep_status_indicator indicator, ep_inv_instance **ret_instance) {
  for (int attempt = 0; attempt < CAS_RETRIES; attempt++) {
    ep_inv_instance *instance = NULL;
    int r = ep_inventory_get_instance(inv, id, &instance);
    if (r < 0) return r;
    const char *why = NULL;
    if (!ep_inv_instance_transition_allowed(instance->current_state, current, &why)) {
      r = ep_error_set(EP_EPERM, "instance %s: %s -> %s refused: %s", instance->id,
                       ep_inv_instance_state_name(instance->current_state), ep_inv_instance_state_name(current), why);
      ep_inv_instance_free(instance);
      return r;
    }
    /* Nothing changes: nothing is written (a node repeating its report costs a read). */
    bool same = instance->current_state == current && instance->provisioning_status &&
                instance->provisioning_status->indicator == indicator &&
                strcmp(instance->provisioning_status->message, status ? status : "") == 0;
    if (current == EDGEPROV__V1__INSTANCE_STATE__INSTANCE_STATE_RUNNING &&
        instance->current_state != EDGEPROV__V1__INSTANCE_STATE__INSTANCE_STATE_RUNNING)
      instance->running_at = (int64_t)time(NULL);
    else if (current != EDGEPROV__V1__INSTANCE_STATE__INSTANCE_STATE_RUNNING)
      instance->running_at = 0; /* provisioned again (re-armed), or failed */
    instance->current_state = current;
    uint64_t expect = instance->revision;
    instance->revision = 0;
    uint8_t *data = NULL;
    size_t len = 0;
    char *key = key_of(INSTANCES_PREFIX, instance->id);
    r = key ? set_status(&instance->provisioning_status, status, indicator) : ep_error_set(EP_ENOMEM, "out of memory");
    if (r == 0 && !same) r = pack_instance(instance, &data, &len);
    uint64_t revision = expect;
    if (r == 0 && !same) {
      ep_storage_op op = {.kind = EP_STORAGE_PUT, .key = key, .value = data, .value_len = len, .expect_mod_revision = expect};
      r = commit(inv, &op, 1, &revision, NULL);
    }
    if (r == 0 && ret_instance) {
      instance->revision = revision;
      *ret_instance = instance;
      instance = NULL;
    }
    free(data);
    free(key);
    ep_inv_instance_free(instance);
    if (r != EP_ECONFLICT) return r;
  }
  return ep_error_set(EP_ECONFLICT, "instance %s keeps changing; try again", id);
}

/* ---- workflows ------------------------------------------------------------------------------- */

int ep_inventory_get_workflow(ep_inventory *inv, const char *instance_id, ep_workflow **ret_workflow) {
  char canonical[EP_UUID_TEXT_LEN + 1];
  if (ep_validate_uuid(canonical, "instance_id", instance_id) < 0) return EP_EINVAL;
  char *key = key_of(WORKFLOWS_PREFIX, canonical);
  if (!key) return ep_error_set(EP_ENOMEM, "out of memory");
  blob b = {0};
  int r = load(inv, key, &b);
  if (r == EP_ENOENT) r = ep_error_set(EP_ENOENT, "instance %s has no workflow", canonical);
  if (r == 0) {
    ep_workflow *w = edgeprov__v1__workflow__unpack(NULL, b.len, b.data);
    if (!w) r = ep_error_set(EP_EIO, "record %s is corrupt (cannot decode)", key);
    else w->revision = b.mod_revision, *ret_workflow = w;
    free(b.data);
  }
  free(key);
  return r;
}

int ep_inventory_put_workflow(ep_inventory *inv, const ep_workflow *workflow, uint64_t expect_revision,
                              uint64_t *ret_revision) {
  char canonical[EP_UUID_TEXT_LEN + 1];
  if (ep_validate_uuid(canonical, "instance_id", workflow->instance_id) < 0) return EP_EINVAL;
  ep_workflow copy = *workflow;
  copy.revision = 0;
  size_t len = edgeprov__v1__workflow__get_packed_size(&copy);
  uint8_t *data = malloc(len ? len : 1);
  char *key = key_of(WORKFLOWS_PREFIX, canonical);
  int r = data && key ? 0 : ep_error_set(EP_ENOMEM, "out of memory");
  if (r == 0) {
    edgeprov__v1__workflow__pack(&copy, data);
    ep_storage_op op = {.kind = EP_STORAGE_PUT, .key = key, .value = data, .value_len = len,
                        .expect_mod_revision = expect_revision ? expect_revision : EP_STORAGE_EXPECT_ABSENT};
    r = commit(inv, &op, 1, ret_revision, NULL);
  }
  free(data);
  free(key);
  return r;
}

int ep_inventory_delete_workflow(ep_inventory *inv, const char *instance_id) {
  char canonical[EP_UUID_TEXT_LEN + 1];
  if (ep_validate_uuid(canonical, "instance_id", instance_id) < 0) return EP_EINVAL;
  char *key = key_of(WORKFLOWS_PREFIX, canonical);
  if (!key) return ep_error_set(EP_ENOMEM, "out of memory");
  ep_storage_op op = {.kind = EP_STORAGE_DELETE, .key = key, .expect_mod_revision = EP_STORAGE_EXPECT_ANY};
  int r = commit(inv, &op, 1, NULL, NULL);
  free(key);
  return r;
}

int ep_inventory_retry_instance(ep_inventory *inv, const char *id, ep_inv_instance **ret_instance) {
  ep_inv_instance *instance = NULL;
  int r = ep_inventory_get_instance(inv, id, &instance);
  if (r == 0 && instance->current_state != EDGEPROV__V1__INSTANCE_STATE__INSTANCE_STATE_ERROR)
    r = ep_error_set(EP_EPERM, "instance %s is %s; only a failed (ERROR) instance is retried", instance->id,
                     ep_inv_instance_state_name(instance->current_state));
  if (r == 0) r = ep_inventory_delete_workflow(inv, instance->id);
  if (r == 0)
    r = ep_inventory_set_instance_state(inv, instance->id, EDGEPROV__V1__INSTANCE_STATE__INSTANCE_STATE_PROVISIONING,
                                        "Retried by an operator: a new workflow follows",
                                        EDGEPROV__V1__STATUS_INDICATOR__STATUS_INDICATOR_IN_PROGRESS, ret_instance);
  ep_inv_instance_free(instance);
  return r;
}

void ep_workflow_strip_for_operators(ep_workflow *w) {
  for (size_t i = 0; i < w->n_actions; i++) {
    Edgeprov__V1__WorkflowAction *a = w->actions[i];
    char *masked = a->message ? ep_redact_text(a->message, NULL) : NULL;
    if (masked) {
      if (a->message != protobuf_c_empty_string) free(a->message);
      a->message = masked;
    }
    for (size_t k = 0; k < a->n_params; k++) protobuf_c_message_free_unpacked(&a->params[k]->base, NULL);
    free(a->params);
    a->params = NULL;
    a->n_params = 0;
  }
}

void ep_workflow_free(ep_workflow *workflow) {
  if (workflow) edgeprov__v1__workflow__free_unpacked(workflow, NULL);
}

/* ---- events ---------------------------------------------------------------------------------- */

/* True when key is a host's log head, "logs/<uuid>/head"; copies the UUID into host. */
static bool is_log_head(const char *key, char host[EP_UUID_TEXT_LEN + 1]) {
  size_t prefix = strlen(LOGS_PREFIX), suffix = strlen(LOG_HEAD_SUFFIX), len = strlen(key);
  if (len != prefix + EP_UUID_TEXT_LEN + suffix || strncmp(key, LOGS_PREFIX, prefix) != 0 ||
      strcmp(key + prefix + EP_UUID_TEXT_LEN, LOG_HEAD_SUFFIX) != 0)
    return false;
  memcpy(host, key + prefix, EP_UUID_TEXT_LEN);
  host[EP_UUID_TEXT_LEN] = '\0';
  return true;
}

typedef struct event_walk {
  int (*visit)(void *data, const ep_inv_event *event);
  void *data;
  int error;
  uint64_t last; /* revision of the last change read, event or index */
} event_walk;

static int32_t visit_change(void *data, const ep_storage_change *change) {
  event_walk *w = data;
  ep_inv_event event = EDGEPROV__V1__EVENT__INIT;
  ep_inv_host host_id = EDGEPROV__V1__HOST__INIT;
  ep_inv_instance instance_id = EDGEPROV__V1__INSTANCE__INIT;
  ep_inv_host *host = NULL;
  ep_inv_instance *instance = NULL;
  ep_workflow workflow_id = EDGEPROV__V1__WORKFLOW__INIT, *workflow = NULL;
  Edgeprov__V1__LogHead log_id = EDGEPROV__V1__LOG_HEAD__INIT, *log = NULL;
  char log_host[EP_UUID_TEXT_LEN + 1] = "";
  bool put = change->kind == EP_STORAGE_PUT;
  w->last = change->revision;
  event.revision = change->revision;
  event.kind = put ? EDGEPROV__V1__EVENT__KIND__KIND_PUT : EDGEPROV__V1__EVENT__KIND__KIND_DELETE;
  int r = 0;
  if (strncmp(change->key, HOSTS_PREFIX, strlen(HOSTS_PREFIX)) == 0) {
    event.resource_case = EDGEPROV__V1__EVENT__RESOURCE_HOST;
    if (put) r = unpack_host(change->value, change->value_len, change->revision, change->key, &host);
    host_id.uuid = (char *)change->key + strlen(HOSTS_PREFIX);
    event.host = put ? host : &host_id;
  } else if (strncmp(change->key, INSTANCES_PREFIX, strlen(INSTANCES_PREFIX)) == 0) {
    event.resource_case = EDGEPROV__V1__EVENT__RESOURCE_INSTANCE;
    if (put) r = unpack_instance(change->value, change->value_len, change->revision, change->key, &instance);
    instance_id.id = (char *)change->key + strlen(INSTANCES_PREFIX);
    event.instance = put ? instance : &instance_id;
  } else if (strncmp(change->key, WORKFLOWS_PREFIX, strlen(WORKFLOWS_PREFIX)) == 0) {
    event.resource_case = EDGEPROV__V1__EVENT__RESOURCE_WORKFLOW;
    if (put && !(workflow = edgeprov__v1__workflow__unpack(NULL, change->value_len, change->value)))
      r = ep_error_set(EP_EIO, "record %s is corrupt (cannot decode)", change->key);
    if (workflow) workflow->revision = change->revision;
    if (workflow) ep_workflow_strip_for_operators(workflow); /* events are for people: no parameters */
    workflow_id.instance_id = (char *)change->key + strlen(WORKFLOWS_PREFIX);
    event.workflow = put ? workflow : &workflow_id;
  } else if (is_log_head(change->key, log_host)) {
    event.resource_case = EDGEPROV__V1__EVENT__RESOURCE_LOG;
    if (put && !(log = edgeprov__v1__log_head__unpack(NULL, change->value_len, change->value)))
      r = ep_error_set(EP_EIO, "record %s is corrupt (cannot decode)", change->key);
    log_id.host_uuid = log_host;
    event.log = put ? log : &log_id;
  } else {
    return 0; /* indexes and log slots are not events */
  }
  int stop = r < 0 ? (w->error = r, 1) : w->visit(w->data, &event);
  ep_inv_host_free(host);
  ep_inv_instance_free(instance);
  ep_workflow_free(workflow);
  if (log) edgeprov__v1__log_head__free_unpacked(log, NULL);
  return stop;
}

int ep_inventory_events_page(ep_inventory *inv, uint64_t after_revision, uint32_t limit,
                             int (*visit)(void *data, const ep_inv_event *event), void *data, uint64_t *ret_last) {
  event_walk w = {.visit = visit, .data = data, .last = after_revision};
  int32_t r = inv->st->changes(inv->state, after_revision, limit, visit_change, &w);
  if (r < 0) return storage_failed(r, "events");
  if (ret_last) *ret_last = w.last;
  return w.error;
}

int ep_inventory_events(ep_inventory *inv, uint64_t after_revision, uint32_t limit,
                        int (*visit)(void *data, const ep_inv_event *event), void *data) {
  return ep_inventory_events_page(inv, after_revision, limit, visit, data, NULL);
}

int ep_inventory_revision(ep_inventory *inv, uint64_t *ret_revision) {
  int32_t r = inv->st->revision(inv->state, ret_revision);
  return r < 0 ? storage_failed(r, "revision") : 0;
}

#define RETRY_WITH_FOLLOWER 1 /* poll_store: the follower works again */

/* ep_inventory_wait with a store that cannot be waited on (or whose follower failed): asks
 * the store, then sleeps until this process commits, a wake, or POLL_FALLBACK_MS. Called with
 * inv->lock held. */
static int poll_store(ep_inventory *inv, uint64_t after_revision, const struct timespec *deadline, uint64_t wakes) {
  for (;;) {
    uint64_t revision = 0, commits = inv->commits;
    pthread_mutex_unlock(&inv->lock);
    int rr = ep_inventory_revision(inv, &revision);
    pthread_mutex_lock(&inv->lock);
    if (rr < 0) { /* the store cannot answer: a caller that loops must not spin on it */
      struct timespec now, pause;
      clock_gettime(CLOCK_MONOTONIC, &now);
      pause = ep_timespec_add_ms(now, POLL_FALLBACK_MS);
      if (ep_timespec_cmp(&pause, deadline) > 0) pause = *deadline;
      pthread_cond_timedwait(&inv->changed, &inv->lock, &pause);
      return rr;
    }
    if (revision > after_revision || inv->wakes != wakes) return 0;
    if (inv->commits != commits) continue; /* a commit landed while the store was asked */
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (ep_timespec_cmp(&now, deadline) >= 0) return EP_ETIMEDOUT;
    struct timespec step = ep_timespec_add_ms(now, POLL_FALLBACK_MS);
    if (ep_timespec_cmp(&step, deadline) > 0) step = *deadline;
    pthread_cond_timedwait(&inv->changed, &inv->lock, &step);
    if (inv->following && !inv->follower_failed) return RETRY_WITH_FOLLOWER;
  }
}

int ep_inventory_wait(ep_inventory *inv, uint64_t after_revision, int timeout_ms) {
  struct timespec deadline = ep_clock_deadline(CLOCK_MONOTONIC, timeout_ms); /* inv->changed's clock */
  pthread_mutex_lock(&inv->lock);
  uint64_t wakes = inv->wakes;
  int r = 0;
  for (;;) {
    if (!inv->following || inv->follower_failed) {
      r = poll_store(inv, after_revision, &deadline, wakes);
      if (r == RETRY_WITH_FOLLOWER) continue;
      break;
    }
    /* The follower publishes every revision the store tells of, this process's commits too. */
    if (inv->known > after_revision || inv->wakes != wakes) break;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (ep_timespec_cmp(&now, &deadline) >= 0) {
      r = EP_ETIMEDOUT;
      break;
    }
    pthread_cond_timedwait(&inv->changed, &inv->lock, &deadline);
  }
  pthread_mutex_unlock(&inv->lock);
  return r;
}

int ep_inventory_lead(ep_inventory *inv, const char *role, bool *ret_leading) {
  int32_t leading = 1;
  int32_t r = EP_STORAGE_HAS(inv->st, lead) && inv->st->lead ? inv->st->lead(inv->state, role, &leading) : 0;
  if (r < 0) leading = 0;
  pthread_mutex_lock(&inv->lock);
  /* One bit per role this process has said it leads, for the log (the first roles only). */
  size_t slot = 0;
  while (slot < LEAD_ROLES_LOGGED && inv->lead_roles[slot][0] && strcmp(inv->lead_roles[slot], role) != 0) slot++;
  bool known = slot < LEAD_ROLES_LOGGED;
  bool was = known && inv->lead_roles[slot][0] && inv->leading[slot];
  if (known && !inv->lead_roles[slot][0]) snprintf(inv->lead_roles[slot], sizeof inv->lead_roles[slot], "%s", role);
  if (known) inv->leading[slot] = leading;
  pthread_mutex_unlock(&inv->lock);
  if (known && was != (leading != 0))
    ep_log(EP_LOG_INFO, "inventory", "%s: %s", role,
           leading ? "this replica leads it now" : "another replica leads it (or the store cannot say); standing by");
  if (r < 0) return storage_failed(r, "lead");
  *ret_leading = leading != 0;
  return 0;
}

void ep_inventory_wake(ep_inventory *inv) {
  pthread_mutex_lock(&inv->lock);
  inv->wakes++;
  pthread_cond_broadcast(&inv->changed);
  pthread_mutex_unlock(&inv->lock);
}

/* ---- change-log compaction ------------------------------------------------------------------ */

int ep_inventory_compact(ep_inventory *inv, uint64_t before_revision) {
  int32_t r = inv->st->compact(inv->state, before_revision);
  return r < 0 ? storage_failed(r, "compact") : 0;
}
