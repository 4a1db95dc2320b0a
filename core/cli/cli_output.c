/* edgeprov CLI: what every command prints with, see cli_output.h. */
#include "cli_output.h"

#include "base/tpm_credential.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/error.h"
#include "edgeprov/v1/management.pb-c.h"
#include "base/json_text.h"
#include "northbound/mgmt_client.h"
#include "base/validate.h"
#include "provisioning/workflow.h"

#define SHOWN_SLOTS 8 /* escaped texts one printf may show at once */

/* text for the terminal: every control character, bidi control and byte that is not UTF-8
 * made visible (\xNN, \u{NNNN}; flags: what may stay, see validate.h). Node text is checked
 * when it arrives, but records stored before that check may hold anything. The result lives
 * until SHOWN_SLOTS later calls. */
const char *cli_shown_flags(const char *text, unsigned flags) {
  static char *slots[SHOWN_SLOTS];
  static size_t next;
  if (!text) text = "";
  size_t cap = 4 * strlen(text) + 1; /* an escape is at most 4 bytes per byte escaped */
  char *buf = realloc(slots[next], cap);
  if (!buf) return "(out of memory)";
  slots[next] = buf;
  next = (next + 1) % SHOWN_SLOTS;
  ep_text_escape(buf, cap, text, flags);
  return buf;
}

const char *cli_shown(const char *text) { return cli_shown_flags(text, 0); }

/* How northbound/mgmt_client.c words a call that found no edgeprovd (gRPC UNAVAILABLE: connection
 * refused, no socket, a failed TLS handshake); its code, EP_EIO, is shared with other failures. */

int cli_fail(void) {
  fprintf(stderr, "edgeprov: %s\n", cli_shown_flags(ep_error_message(), EP_TEXT_TAB | EP_TEXT_NEWLINE));
  if (ep_error_code() == EP_EIO && strncmp(ep_error_message(), EP_MGMT_UNREACHABLE_PREFIX, strlen(EP_MGMT_UNREACHABLE_PREFIX)) == 0)
    return EXIT_UNREACHABLE;
  return EXIT_FAILURE;
}

/* ---- rendering ------------------------------------------------------------------------------ */

void cli_time_text(int64_t t, char *buf, size_t len) {
  if (t <= 0) {
    snprintf(buf, len, "-");
    return;
  }
  time_t tt = (time_t)t;
  struct tm tm;
  gmtime_r(&tt, &tm);
  strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* The JSON builders return NULL when the value cannot be built (print_json reports it). */
json_t *cli_status_json(const Edgeprov__V1__Status *s) {
  if (!s) return json_null();
  char when[32];
  cli_time_text(s->timestamp, when, sizeof when);
  return json_pack("{s:o, s:s, s:s}", "message", ep_json_text(s->message), "indicator",
                   ep_status_indicator_name(s->indicator), "time", when);
}

/* A Protection as JSON: true, false, or null when not reported. */
static json_t *protection_json(int value) {
  return value == EDGEPROV__V1__PROTECTION__PROTECTION_YES  ? json_true()
         : value == EDGEPROV__V1__PROTECTION__PROTECTION_NO ? json_false()
                                                            : json_null();
}

const char *cli_protection_text(int value, const char *yes, const char *no) {
  return value == EDGEPROV__V1__PROTECTION__PROTECTION_YES ? yes : value == EDGEPROV__V1__PROTECTION__PROTECTION_NO ? no : "-";
}

json_t *cli_host_json(const ep_inv_host *h) {
  json_t *macs = json_array();
  for (size_t i = 0; macs && i < h->n_macs; i++) ep_json_push(&macs, ep_json_text(h->macs[i]));
  char created[32];
  cli_time_text(h->created_at, created, sizeof created);
  json_t *tpm_ek = json_null();
  if (h->tpm_ek.len) {
    char fingerprint[EP_TPM_FINGERPRINT_LEN + 1];
    ep_tpm_ek_fingerprint(fingerprint, h->tpm_ek.data, h->tpm_ek.len);
    tpm_ek = json_pack("{s:s, s:b}", "fingerprint", fingerprint, "first_use", h->tpm_ek_first_use);
  }
  json_t *disk = json_null();
  const Edgeprov__V1__DiskProtection *p = h->disk_protection;
  if (p) {
    char reported[32];
    cli_time_text(p->reported_at, reported, sizeof reported);
    disk = json_pack("{s:o, s:o, s:o, s:s}", "encrypted", protection_json(p->encrypted), "verified_root",
                     protection_json(p->verified_root), "detail", ep_json_text(p->detail), "reported_at", reported);
  }
  return json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:b, s:s, s:s, s:b, s:b, s:o, s:o, s:o, s:o, s:o, s:o, s:s, "
                   "s:I}",
                   "uuid",
                   ep_json_text(h->uuid), "serial", ep_json_text(h->serial), "macs", macs, "ip", ep_json_text(h->ip), "peer_ip",
                   ep_json_text(h->peer_ip), "site",
                   ep_json_text(h->site), "os_profile", ep_json_text(h->os_profile), "fde", h->fde, "desired_state",
                   ep_inv_host_state_name(h->desired_state), "current_state", ep_inv_host_state_name(h->current_state),
                   "auto_onboard", h->auto_onboard, "credentials_unused", h->credentials_unused, "instance_id", ep_json_text(h->instance_id), "host_status",
                   cli_status_json(h->host_status), "onboarding_status", cli_status_json(h->onboarding_status),
                   "registration_status", cli_status_json(h->registration_status), "tpm_ek", tpm_ek, "disk_protection", disk, "created_at", created,
                   "revision", (json_int_t)h->revision);
}

json_t *cli_instance_json(const ep_inv_instance *i) {
  char created[32];
  cli_time_text(i->created_at, created, sizeof created);
  return json_pack("{s:o, s:o, s:o, s:b, s:s, s:s, s:o, s:s, s:I}", "id", ep_json_text(i->id), "host_uuid",
                   ep_json_text(i->host_uuid), "os_profile", ep_json_text(i->os_profile), "fde", i->fde,
                   "desired_state",
                   ep_inv_instance_state_name(i->desired_state), "current_state", ep_inv_instance_state_name(i->current_state),
                   "provisioning_status", cli_status_json(i->provisioning_status), "created_at", created, "revision",
                   (json_int_t)i->revision);
}

/* Prints value (taken over; NULL: it could not be built) as JSON, every non-ASCII character
 * and DEL as \u escapes so no raw control or bidi character reaches the terminal. A value
 * that cannot be built, encoded or written is an error on stderr, never empty output. */
int cli_print_json(json_t *value, size_t flags) {
  char *text = value ? json_dumps(value, flags | JSON_ENSURE_ASCII | JSON_PRESERVE_ORDER) : NULL;
  json_decref(value);
  if (!text) {
    fprintf(stderr, "edgeprov: cannot encode the answer as JSON (out of memory)\n");
    return EXIT_FAILURE;
  }
  for (const char *p = text; *p;) { /* DEL is valid in a JSON string (and only there), but not for a terminal */
    size_t n = strcspn(p, "\x7f");
    fwrite(p, 1, n, stdout);
    p += n;
    if (*p) {
      fputs("\\u007f", stdout);
      p++;
    }
  }
  free(text);
  putchar('\n');
  if (fflush(stdout) != 0 || ferror(stdout)) {
    fprintf(stderr, "edgeprov: cannot write the output: %s\n", strerror(errno));
    return EXIT_FAILURE;
  }
  return EXIT_SUCCESS;
}

/* A record that could not go into a JSON list: the list is not printed short. */
int cli_not_encoded(const char *what, const char *id) {
  fprintf(stderr, "edgeprov: %s %s: cannot encode it as JSON (out of memory)\n", what, cli_shown(id));
  return EXIT_FAILURE;
}

/* One action of a workflow as JSON; with_params adds its parameters. */
json_t *cli_action_json(const Edgeprov__V1__WorkflowAction *a, bool with_params) {
  json_t *o = json_pack("{s:o, s:i, s:i, s:s, s:i, s:I, s:I, s:o}", "action", ep_json_text(a->action), "timeout_s",
                        (int)a->timeout_s, "retries", (int)a->retries, "state", ep_action_state_name(a->state),
                        "attempts", (int)a->attempts, "bytes_done", (json_int_t)a->bytes_done, "bytes_total",
                        (json_int_t)a->bytes_total, "message", ep_json_text(a->message));
  if (!o || !with_params) return o;
  json_t *params = json_object();
  for (size_t k = 0; params && k < a->n_params; k++)
    if (json_object_set_new(params, a->params[k]->name, ep_json_text(a->params[k]->value)) < 0) {
      json_decref(params);
      params = NULL;
    }
  if (!params || json_object_set_new(o, "params", params) < 0) {
    json_decref(o);
    return NULL;
  }
  return o;
}

json_t *cli_workflow_json(const ep_workflow *w, bool with_params) {
  if (!w) return json_null();
  json_t *actions = json_array();
  for (size_t i = 0; actions && i < w->n_actions; i++) ep_json_push(&actions, cli_action_json(w->actions[i], with_params));
  char created[32];
  cli_time_text(w->created_at, created, sizeof created);
  return json_pack("{s:o, s:o, s:i, s:s, s:s, s:o}", "os_profile", ep_json_text(w->os_profile), "host_uuid",
                   ep_json_text(w->host_uuid), "generation", (int)w->generation, "state",
                   w->state == EDGEPROV__V1__WORKFLOW_STATE__WORKFLOW_STATE_SUCCESS   ? "SUCCESS"
                   : w->state == EDGEPROV__V1__WORKFLOW_STATE__WORKFLOW_STATE_FAILED  ? "FAILED"
                   : w->state == EDGEPROV__V1__WORKFLOW_STATE__WORKFLOW_STATE_RUNNING ? "RUNNING"
                                                                                        : "PENDING",
                   "created_at", created, "actions", actions);
}


const char *cli_status_text(const Edgeprov__V1__Status *s) { return s && s->message[0] ? cli_shown(s->message) : "-"; }

/* ---- lists ----------------------------------------------------------------------------------- */

/* Shows every record of kind, asking for EP_INVENTORY_PAGE_DEFAULT a page (every list the
 * same), as a table or (json) one JSON array; returns the exit status. */
int cli_list_all(ep_mgmt_client *client, const list_kind *kind, int json) {
  Edgeprov__V1__ListRequest req = EDGEPROV__V1__LIST_REQUEST__INIT;
  req.page_size = EP_INVENTORY_PAGE_DEFAULT;
  listing l = {.json = json, .all = json ? json_array() : NULL};
  char *token = NULL;
  bool header = !json;
  do {
    req.page_token = token ? token : "";
    ProtobufCMessage *page = NULL;
    int r = ep_mgmt_client_call(client, kind->method, &req.base, kind->response, &page);
    free(token);
    token = NULL;
    if (r < 0) {
      json_decref(l.all);
      return cli_fail();
    }
    if (header) {
      kind->header();
      header = false;
    }
    const char *next = "";
    int status = kind->page(&l, page, &next);
    if (status == EXIT_SUCCESS && next[0]) token = strdup(next);
    protobuf_c_message_free_unpacked(page, NULL);
    if (status != EXIT_SUCCESS) {
      json_decref(l.all);
      return status;
    }
  } while (token);
  if (json) return cli_print_json(l.all, JSON_INDENT(2));
  if (l.total == 0 && kind->none) printf("%s\n", kind->none);
  return EXIT_SUCCESS;
}

/* Calls method (DeleteHost, DeleteInstance) with request and says that what id is deleted. */
int cli_delete_record(ep_mgmt_client *client, const char *method, const ProtobufCMessage *request, const char *what,
                         const char *id) {
  Edgeprov__V1__DeleteResponse *resp = NULL;
  if (ep_mgmt_client_call(client, method, request, &edgeprov__v1__delete_response__descriptor,
                          (ProtobufCMessage **)&resp) < 0)
    return cli_fail();
  printf("%s %s deleted (revision %" PRIu64 ")\n", what, id, resp->revision);
  protobuf_c_message_free_unpacked(&resp->base, NULL);
  return EXIT_SUCCESS;
}
