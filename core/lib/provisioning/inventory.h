/* core: the inventory (Host and Instance, desired vs current state) on the site's storage
 * capability. Records are encoded edgeprov.v1 messages under "hosts/<uuid>" and
 * "instances/<id>", with a unique index "serials/<serial>" -> uuid. Every change is a
 * store revision, readable as an event. */
#ifndef EP_CORE_INVENTORY_H
#define EP_CORE_INVENTORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <edgeprov/storage.h>

#include "edgeprov/v1/inventory.pb-c.h"
#include "edgeprov/v1/workflow.pb-c.h"

struct ep_plugin_set;

typedef Edgeprov__V1__Host ep_inv_host;
typedef Edgeprov__V1__Instance ep_inv_instance;
typedef Edgeprov__V1__Event ep_inv_event;
typedef Edgeprov__V1__Workflow ep_workflow;
typedef Edgeprov__V1__HostState ep_inv_host_state;
typedef Edgeprov__V1__InstanceState ep_inv_instance_state;
typedef Edgeprov__V1__StatusIndicator ep_status_indicator;

#define EP_INVENTORY_PAGE_DEFAULT 100
#define EP_INVENTORY_PAGE_MAX 1000

typedef struct ep_inventory ep_inventory;

/* What an operator gives to register a host. uuid is required; the others may be NULL/0. */
typedef struct ep_inv_host_spec {
  const char *uuid;
  const char *serial;
  const char *const *macs;
  size_t mac_count;
  const char *ip;
  const char *site;
  const char *os_profile;
  bool auto_onboard;
  const uint8_t *tpm_ek; /* DER SubjectPublicKeyInfo of the node's TPM endorsement key, or NULL */
  size_t tpm_ek_len;
  bool fde; /* every instance of the host encrypts its disk */
} ep_inv_host_spec;

/* Opens the inventory on the first active edgeprov.storage/1 plugin of plugins, which must
 * outlive it. Returns 0, or EP_ENOENT when no storage plugin is active. Thread-safe after. */
int ep_inventory_new(ep_inventory **out, const struct ep_plugin_set *plugins);
void ep_inventory_free(ep_inventory *inv);

/* Registers a host: validates every field (EP_EINVAL naming it), refuses a UUID or serial
 * already known (EP_EEXIST). Desired state ONBOARDED with auto_onboard, else REGISTERED.
 * *ret_host (free with ep_inv_host_free) is the stored record. */
int ep_inventory_add_host(ep_inventory *inv, const ep_inv_host_spec *spec, ep_inv_host **ret_host);

/* Finds a host by UUID or by serial; EP_ENOENT when none. */
int ep_inventory_get_host(ep_inventory *inv, const char *uuid, ep_inv_host **ret_host);
int ep_inventory_find_host_by_serial(ep_inventory *inv, const char *serial, ep_inv_host **ret_host);

/* One page of hosts in UUID order after page_token ("" for the first). *ret_next is "" on
 * the last page. Free the array with ep_inv_hosts_free and *ret_next with free. */
int ep_inventory_list_hosts(ep_inventory *inv, const char *page_token, uint32_t page_size, ep_inv_host ***ret_hosts,
                            size_t *ret_count, char **ret_next);

/* Removes a host and its serial index. Refused (EP_EPERM) while it has an instance. */
int ep_inventory_delete_host(ep_inventory *inv, const char *uuid, uint64_t *ret_revision);

/* Moves a host's current state, refusing an illegal transition (EP_EPERM with the reason),
 * and sets its host status text and indicator. */
int ep_inventory_set_host_state(ep_inventory *inv, const char *uuid, ep_inv_host_state current, const char *status,
                                ep_status_indicator indicator, ep_inv_host **ret_host);

/* What a node's onboarding message tells of it: the IP it reports (ip) and the address it came
 * from (peer_ip; "" or NULL keep them), and when its address first fetched a boot artifact
 * (artifact_fetched_at, 0: unknown). */
typedef struct ep_inv_contact {
  const char *ip, *peer_ip;
  int64_t artifact_fetched_at;
} ep_inv_contact;

/* Records that the node of host uuid sent an onboarding message: registration status "Node
 * connected", contact's addresses, and the start of its timeline: first_contact_at (now) and
 * artifact_fetched_at, each set once per onboarding. An address that is not one is not kept. */
int ep_inventory_node_connected(ep_inventory *inv, const char *uuid, const ep_inv_contact *contact);

/* Records that onboarding handed host uuid its credentials: current state ONBOARDED (status
 * "Onboarded"), onboarded_at, and credentials_unused set until ep_inventory_credentials_used;
 * with contact (may be NULL), what ep_inventory_node_connected records, and with first_use_ek
 * (DER, may be NULL) the endorsement key of the node trusted on first use
 * (onboarding.tpm_identity = "first_use": tpm_ek_first_use is set; EP_EEXIST when the host has
 * another by then, recorded by a concurrent onboarding or registered), all in the same write. */
int ep_inventory_set_onboarded(ep_inventory *inv, const char *uuid, const ep_inv_contact *contact,
                               const uint8_t *first_use_ek, size_t first_use_ek_len, ep_inv_host **ret_host);

/* What protects host uuid's installed disk, as its installed OS reported it (values
 * EDGEPROV__V1__PROTECTION__*; detail validated by the caller). Writes only when something
 * changed; reported_at is then now. */
#define EP_DISK_PROTECTION_DETAIL_MAX 256
int ep_inventory_set_disk_protection(ep_inventory *inv, const char *uuid, int encrypted, int verified_root,
                                     const char *detail);

/* Records that the node of host uuid used its credentials (an authenticated call): clears
 * credentials_unused; writes nothing when it is clear already. */
int ep_inventory_credentials_used(ep_inventory *inv, const char *uuid);

/* Sets what the operator wants of a host: ONBOARDED approves it, REGISTERED holds it,
 * UNTRUSTED invalidates it (current state too; its credentials must be revoked). */
int ep_inventory_set_desired_state(ep_inventory *inv, const char *uuid, ep_inv_host_state desired, ep_inv_host **ret_host);

/* Sets a host's status text and indicator (what the node last reported), state unchanged. */
int ep_inventory_set_host_status(ep_inventory *inv, const char *uuid, const char *status,
                                 ep_status_indicator indicator, ep_inv_host **ret_host);

/* Records the outcome of a node's registration attempt in the host's registration status,
 * with the IP the node reports (ip) and the one the server saw (peer_ip) when not NULL or "".
 * Writes nothing when nothing changes. */
int ep_inventory_set_registration_status(ep_inventory *inv, const char *uuid, const char *status,
                                         ep_status_indicator indicator, const char *ip, const char *peer_ip);

/* Creates the host's instance (one per host) with os_profile, or the host's profile when
 * os_profile is NULL or "", asking for full-disk encryption when fde (Instance.fde). */
int ep_inventory_create_instance(ep_inventory *inv, const char *host_uuid, const char *os_profile, bool fde,
                                 ep_inv_instance **ret_instance);
int ep_inventory_get_instance(ep_inventory *inv, const char *id, ep_inv_instance **ret_instance);
int ep_inventory_delete_instance(ep_inventory *inv, const char *id, uint64_t *ret_revision);
int ep_inventory_list_instances(ep_inventory *inv, const char *page_token, uint32_t page_size,
                                ep_inv_instance ***ret_instances, size_t *ret_count, char **ret_next);

/* Moves an instance's current state (illegal transitions refused) and sets its
 * provisioning status. */
int ep_inventory_set_instance_state(ep_inventory *inv, const char *id, ep_inv_instance_state current, const char *status,
                                    ep_status_indicator indicator, ep_inv_instance **ret_instance);

/* Re-arms an Instance in ERROR: drops its workflow (the reconciler renders a new one) and
 * sets it PROVISIONING. EP_EPERM for an Instance that has not failed. */
int ep_inventory_retry_instance(ep_inventory *inv, const char *id, ep_inv_instance **ret_instance);

/* Workflows, one per instance under "workflows/<instance id>" (not events of their own:
 * the instance's provisioning status tells their progress). get: EP_ENOENT when none.
 * put: writes workflow when the stored revision is expect_revision (0: none stored yet),
 * else EP_ECONFLICT; *ret_revision gets the new revision. delete: no error when absent. */
int ep_inventory_get_workflow(ep_inventory *inv, const char *instance_id, ep_workflow **ret_workflow);
int ep_inventory_put_workflow(ep_inventory *inv, const ep_workflow *workflow, uint64_t expect_revision,
                              uint64_t *ret_revision);
int ep_inventory_delete_workflow(ep_inventory *inv, const char *instance_id);
/* Strips w for people's eyes (the management API, events): drops the parameters of every
 * action (they may hold what only the node should read) and masks in the messages the node
 * reported what looks like a secret (base/redact.h). */
void ep_workflow_strip_for_operators(ep_workflow *w);

void ep_workflow_free(ep_workflow *workflow);

/* Calls visit for each inventory change after after_revision (at most limit), in order.
 * The event is valid during the call only. visit returns non-zero to stop. */
int ep_inventory_events(ep_inventory *inv, uint64_t after_revision, uint32_t limit,
                        int (*visit)(void *data, const ep_inv_event *event), void *data);

/* ep_inventory_events that also tells how far it read: *ret_last is the revision of the last
 * change read, an event or an index change (after_revision when none), where the next page
 * starts. A page of index changes only delivers no event, yet moves *ret_last on. */
int ep_inventory_events_page(ep_inventory *inv, uint64_t after_revision, uint32_t limit,
                             int (*visit)(void *data, const ep_inv_event *event), void *data, uint64_t *ret_last);

/* The store's current revision. */
int ep_inventory_revision(ep_inventory *inv, uint64_t *ret_revision);

/* Blocks until the store revision exceeds after_revision (0), timeout_ms passes
 * (EP_ETIMEDOUT) or ep_inventory_wake is called (0). */
int ep_inventory_wait(ep_inventory *inv, uint64_t after_revision, int timeout_ms);

/* Wakes every ep_inventory_wait (for shutdown). */
void ep_inventory_wake(ep_inventory *inv);

/* Whether this process holds role (background work that must run on one replica: "reconciler",
 * "housekeeping") among the processes on the same store, taking it when nobody does: the
 * store's lead (ABI 1.5); a store without it answers true (one process per store). Call it
 * before each piece of such work. Returns 0 with *ret_leading, or a storage error (then act as
 * not leading). Logs each change of leadership. */
int ep_inventory_lead(ep_inventory *inv, const char *role, bool *ret_leading);

/* Drops the change-log entries of revisions below before_revision (the records stay): a
 * later ep_inventory_events from an older revision gets EP_ECOMPACTED. A before_revision at
 * or below an earlier compaction does nothing; one past the current revision + 1 is
 * EP_ERANGE. Any thread. */
int ep_inventory_compact(ep_inventory *inv, uint64_t before_revision);

/* Transition rules; reason (when not NULL) gets why a transition is refused. */
bool ep_inv_host_transition_allowed(ep_inv_host_state from, ep_inv_host_state to, const char **reason);
bool ep_inv_instance_transition_allowed(ep_inv_instance_state from, ep_inv_instance_state to, const char **reason);

/* Names: "REGISTERED", "RUNNING", "IN_PROGRESS"... ("-" for UNSPECIFIED). */
const char *ep_inv_host_state_name(ep_inv_host_state state);
const char *ep_inv_instance_state_name(ep_inv_instance_state state);
const char *ep_status_indicator_name(ep_status_indicator indicator);

void ep_inv_host_free(ep_inv_host *host);
void ep_inv_instance_free(ep_inv_instance *instance);
void ep_inv_hosts_free(ep_inv_host **hosts, size_t count);
void ep_inv_instances_free(ep_inv_instance **instances, size_t count);

/* Raw records, for the provisioning layer's own record kinds kept beside the inventory's
 * (node_log.c): reads key into *ret_data (malloc'd) with its mod_revision; EP_ENOENT when
 * absent. */
int ep_inventory_load_raw(ep_inventory *inv, const char *key, uint8_t **ret_data, size_t *ret_len,
                          uint64_t *ret_mod_revision);

/* Commits ops in one transaction (waking this process's waiters). EP_ECONFLICT, without a
 * message, when an expectation failed. */
int ep_inventory_commit_raw(ep_inventory *inv, ep_storage_op *ops, uint32_t count, uint64_t *ret_revision);

#endif
