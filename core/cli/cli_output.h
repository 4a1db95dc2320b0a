/* edgeprov CLI: what every command prints with. Text for a terminal is escaped (cli_shown),
 * JSON is built with jansson from the records the management API returns, and the exit
 * statuses are the CLI's: 0 ok, 1 failed (EXIT_FAILURE), 2 usage (EXIT_USAGE). */
#ifndef EP_CLI_OUTPUT_H
#define EP_CLI_OUTPUT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/json_text.h" /* ep_json_text: stored text as JSON */
#include "provisioning/inventory.h"

#define EXIT_USAGE 2

/* text for the terminal: every control character, bidi control and byte that is not UTF-8
 * made visible (\xNN, \u{NNNN}; flags: what may stay, see validate.h). The result lives
 * until 8 later calls. */
const char *cli_shown_flags(const char *text, unsigned flags);
const char *cli_shown(const char *text);

/* Prints the current error (escaped) on stderr; returns EXIT_FAILURE. */
int cli_fail(void);

/* Prints text (a usage) on stderr; returns EXIT_USAGE. */
int cli_usage(const char *text);

/* t (Unix seconds) as "YYYY-MM-DDTHH:MM:SSZ", "-" for 0. */
void cli_time_text(int64_t t, char *buf, size_t len);

/* JSON values of stored text and records; NULL when out of memory (cli_print_json reports it). */
json_t *cli_status_json(const Edgeprov__V1__Status *s);
json_t *cli_host_json(const ep_inv_host *h);
json_t *cli_instance_json(const ep_inv_instance *i);
json_t *cli_action_json(const Edgeprov__V1__WorkflowAction *a, bool with_params);
json_t *cli_workflow_json(const ep_workflow *w, bool with_params);

/* Prints value (taken over) as one JSON text and a newline, ASCII only; a value that cannot
 * be built, encoded or written is an error on stderr. Returns the exit status. */
int cli_print_json(json_t *value, size_t flags);

/* A record that could not go into a JSON list: an error on stderr; EXIT_FAILURE. */
int cli_not_encoded(const char *what, const char *id);

#endif
