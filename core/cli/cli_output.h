/* edgeprov CLI: what every command prints with. Text for a terminal is escaped (cli_shown),
 * JSON is built with jansson from the records the management API returns, and the exit
 * statuses are the CLI's: 0 ok, 1 failed (EXIT_FAILURE), 2 usage (EXIT_USAGE), 3 edgeprovd
 * unreachable (EXIT_UNREACHABLE); their meanings are listed in commands.c. */
#ifndef EP_CLI_OUTPUT_H
#define EP_CLI_OUTPUT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h> /* EXIT_SUCCESS, EXIT_FAILURE */

#include "base/json_text.h" /* ep_json_text: stored text as JSON; ep_json_push */
#include "northbound/mgmt_client.h"
#include "provisioning/inventory.h"

#define EXIT_USAGE 2
#define EXIT_UNREACHABLE 3

/* text for the terminal: every control character, bidi control and byte that is not UTF-8
 * made visible (\xNN, \u{NNNN}; flags: what may stay, see validate.h). The result lives
 * until 8 later calls. */
const char *cli_shown_flags(const char *text, unsigned flags);
const char *cli_shown(const char *text);

/* Prints the current error (escaped) on stderr; returns EXIT_UNREACHABLE when it is the
 * management client's "cannot reach edgeprovd", else EXIT_FAILURE. */
int cli_fail(void);

/* t (Unix seconds) as "YYYY-MM-DDTHH:MM:SSZ", "-" for 0. */
void cli_time_text(int64_t t, char *buf, size_t len);

/* JSON values of stored text and records; NULL when out of memory (cli_print_json reports it). */
json_t *cli_status_json(const Edgeprov__V1__Status *s);
/* A reported Protection as words: yes, no, or "-" when the node did not report it. */
const char *cli_protection_text(int value, const char *yes, const char *no);
json_t *cli_host_json(const ep_inv_host *h);
json_t *cli_instance_json(const ep_inv_instance *i);
json_t *cli_action_json(const Edgeprov__V1__WorkflowAction *a, bool with_params);
json_t *cli_workflow_json(const ep_workflow *w, bool with_params);

/* Prints value (taken over) as one JSON text and a newline, ASCII only; a value that cannot
 * be built, encoded or written is an error on stderr. Returns the exit status. */
int cli_print_json(json_t *value, size_t flags);

/* A record that could not go into a JSON list: an error on stderr; EXIT_FAILURE. */
int cli_not_encoded(const char *what, const char *id);

/* A status's message for the terminal, "-" when there is none. */
const char *cli_status_text(const Edgeprov__V1__Status *s);

/* A list command's output as its pages come: a table, or (--json) one JSON array. */
typedef struct listing {
  int json;
  json_t *all; /* --json: the records so far */
  size_t total;
} listing;

/* What a list command shows of one kind of record. */
typedef struct list_kind {
  const char *method;                         /* "ListHosts" */
  const ProtobufCMessageDescriptor *response; /* its List*Response */
  void (*header)(void);                       /* prints the table's header row */
  /* Adds page's records to l (JSON, or printed rows) and sets *ret_next to its next_page_token.
   * Returns EXIT_SUCCESS, or the exit status when a record cannot be shown. */
  int (*page)(listing *l, const ProtobufCMessage *page, const char **ret_next);
  const char *none; /* printed instead of an empty table; NULL: the header alone */
} list_kind;

/* Shows every record of kind, asking for EP_INVENTORY_PAGE_DEFAULT a page (every list the
 * same), as a table or (json) one JSON array; returns the exit status. */
int cli_list_all(ep_mgmt_client *client, const list_kind *kind, int json);

/* Calls method (DeleteHost, DeleteInstance) with request and says that what id is deleted;
 * returns the exit status. */
int cli_delete_record(ep_mgmt_client *client, const char *method, const ProtobufCMessage *request, const char *what,
                      const char *id);

#endif
