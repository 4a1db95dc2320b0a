/* core: nodes' logs, kept centrally in the store beside the inventory, so any replica can show
 * them: the lines a node's agent sends with its action reports, secrets redacted before they
 * are stored (base/redact), per host and tagged with the workflow run (its generation) and the
 * action. Bounded per host (max_bytes, logs.max_bytes_per_host): the log is a ring of at most
 * EP_NODE_LOG_SLOTS slots of max_bytes / slots bytes (a slot holds at least
 * EP_NODE_LOG_LINE_BYTES_MAX), and when the last slot is full the oldest is overwritten, so the
 * oldest lines go first. The ring's shape is fixed when a host's log starts (a changed setting
 * applies to logs started after it). Every append moves the host's log head
 * ("logs/<uuid>/head"), which the inventory's change log carries as an Event (resource log):
 * a follower reads the new lines with ep_node_log_read. Thread-safe, replicas included (the
 * head is written with compare-and-set). */
#ifndef EP_CORE_NODE_LOG_H
#define EP_CORE_NODE_LOG_H

#include <stddef.h>
#include <stdint.h>

#include "provisioning/inventory.h"
#include "runtime/config.h"

#define EP_NODE_LOG_SLOTS 128
#define EP_NODE_LOG_LINE_BYTES_MAX 1024 /* a stored line: its text (512 bytes, and what masking adds), action, numbers */
#define EP_NODE_LOG_READ_MAX 1000 /* lines one read returns at most */

typedef Edgeprov__V1__LogLine ep_node_log_line;
typedef Edgeprov__V1__LogHead ep_node_log_head;

/* Appends count lines (each validated by the caller: printable, bounded) of host uuid's action
 * number action (action_name) of workflow run run, redacted first (together: a secret may span
 * lines; a masked block may become one line, and empty lines are dropped), in transactions of
 * up to 16 lines. *ret_redacted (may be NULL) gets how many secrets were masked. */
int ep_node_log_append(ep_inventory *inv, const char *uuid, uint32_t run, uint32_t action, const char *action_name,
                       char *const *lines, size_t count, uint64_t max_bytes, size_t *ret_redacted);

/* Calls visit for host uuid's kept lines with a seq above after_seq, oldest first, at most
 * limit (0 or more than EP_NODE_LOG_READ_MAX + 1: that; one more than a page lets a caller
 * tell whether more follow) of them, of run only when run > 0; visit returns non-zero
 * to stop. *ret_head (may be NULL) gets the log's head (zeroed when the host has no log):
 * next_line - 1 is the last line written. */
int ep_node_log_read(ep_inventory *inv, const char *uuid, uint64_t after_seq, uint32_t run, size_t limit,
                     int (*visit)(void *data, const ep_node_log_line *line), void *data, ep_node_log_head *ret_head);

/* Removes host uuid's log (with the host). */
int ep_node_log_delete(ep_inventory *inv, const char *uuid);

#endif
