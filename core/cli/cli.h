/* edgeprov CLI: the command table (commands.c) and what a command gets from it. A command is one
 * row: its words, what it needs, its options and arguments, its usage. main() (edgeprov.c) looks
 * the row up, parses the options with getopt_long, answers -h/--help and usage errors, sets up
 * what the row needs, then calls the row's function; --help, the man page, the completion and the
 * --help test (tests/integration/cli_help.sh) are all printed from the same rows. */
#ifndef EP_CLI_H
#define EP_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "cli_output.h" /* the exit statuses */
#include "northbound/mgmt_client.h"
#include "runtime/site.h"

/* What a command needs before it runs; set up by main() after its options were parsed, so
 * --help and usage errors never load a plugin or contact edgeprovd. */
typedef enum cli_needs {
  CLI_NEEDS_NOTHING, /* its arguments alone */
  CLI_NEEDS_CONFIG,  /* the site config, its plugins loaded but not started (call->site) */
  CLI_NEEDS_PLUGINS, /* the site's plugins started (call->site) */
  CLI_NEEDS_DAEMON,  /* a client of edgeprovd's management API (call->client), connected lazily */
} cli_needs;

#define CLI_OPT_REQUIRED 0x1u /* the command cannot run without it */
#define CLI_OPT_REPEAT 0x2u   /* each value counts (cli_values); otherwise the last one given does */

/* One option of a command. -h/--help is every command's and not listed. */
typedef struct cli_option {
  const char *name;            /* long name: "uuid" for --uuid */
  int key;                     /* a letter: what the command looks its value up by */
  bool letter;                 /* -<key> works too */
  const char *arg;             /* the value's name in the usage ("UUID"); NULL: a flag */
  unsigned flags;              /* CLI_OPT_* */
  const char *const *choices;  /* the only values it takes (NULL-terminated); NULL: any */
  const char *help;
} cli_option;

typedef struct cli_call cli_call;

typedef struct cli_command {
  const char *group;          /* "host" */
  const char *verb;           /* "add"; NULL when the group is the whole command ("watch") */
  cli_needs needs;
  int (*run)(cli_call *call); /* returns the exit status */
  const char *args;           /* the arguments as the usage shows them ("UUID|SERIAL"); NULL: none */
  int min_args, max_args;     /* max_args -1: any number */
  const cli_option *options;  /* ends with {0} */
  const char *summary;        /* one line, in `edgeprov --help` */
  const char *details;        /* more for its own --help and the man page (lines); NULL: none */
} cli_command;

extern const cli_command cli_commands[];
extern const size_t cli_command_count;
/* The options before the command (--config, --server ...); -h/--help is listed apart. */
extern const cli_option cli_global_options[];

typedef struct cli_exit_status {
  int status;
  const char *meaning;
} cli_exit_status;
/* Every exit status a command may return, with its meaning; ends with {0, NULL}. */
extern const cli_exit_status cli_exit_statuses[];

#define CLI_VALUES_MAX 64 /* options on one command line */

/* One option as given. */
typedef struct cli_value {
  int key;
  const char *value; /* NULL for a flag */
} cli_given;

/* A command as invoked: its row, its options and arguments, and what it needs. */
struct cli_call {
  const cli_command *command;
  char **args; /* the positional arguments, between the row's min_args and max_args */
  int nargs;
  cli_given values[CLI_VALUES_MAX];
  size_t nvalues;
  const char *config_path; /* --config; NULL: the default (ep_site_config_path) */
  ep_site *site;           /* CLI_NEEDS_CONFIG, CLI_NEEDS_PLUGINS */
  ep_mgmt_client *client;  /* CLI_NEEDS_DAEMON */
};

/* The value of option key as last given; NULL when not given (or a flag). */
const char *cli_value(const cli_call *call, int key);
/* Whether option key was given. */
bool cli_flag(const cli_call *call, int key);
/* Every value of option key, in order, into out (at most max); returns how many were given. */
size_t cli_values(const cli_call *call, int key, const char **out, size_t max);

/* "edgeprov host add" for command, in buf. */
const char *cli_command_name(const cli_command *command, char *buf, size_t len);
/* Prints the command's usage (synopsis, summary, details, options) to out. */
void cli_print_usage(const cli_command *command, FILE *out);
/* A usage error: "edgeprov host add: <fmt>" and the command's usage on stderr; EXIT_USAGE. */
int cli_usage_error(const cli_call *call, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* What cli_docs.c prints from the table: the command list of `edgeprov --commands` (one line a
 * command: its words, min and max arguments, required options, options), the man page
 * edgeprov(1) in roff (`edgeprov --man`), and the bash completion (`edgeprov --bash-completion`). */
void cli_print_command_list(FILE *out);
void cli_print_man(FILE *out);
void cli_print_completion(FILE *out);
/* The top-level help: every command of the table, the global options, the exit statuses. */
void cli_print_help(FILE *out);
/* The usage of a group's commands (`edgeprov host`): each verb with its summary. */
void cli_print_group_usage(const char *group, FILE *out);

/* Prints on stderr, as warnings, why an enabled plugin of the site is not active. */
void cli_print_problems(const ep_site *site);

/* The commands, one file per group. */
/* host_cmds.c */
int ep_cli_host_add(cli_call *call);
int ep_cli_host_list(cli_call *call);
int ep_cli_host_show(cli_call *call);
int ep_cli_host_approve(cli_call *call);
int ep_cli_host_invalidate(cli_call *call);
int ep_cli_host_delete(cli_call *call);
int ep_cli_host_recovery_key(cli_call *call);
/* instance_cmds.c */
int ep_cli_instance_create(cli_call *call);
int ep_cli_instance_list(cli_call *call);
int ep_cli_instance_show(cli_call *call);
int ep_cli_instance_render(cli_call *call);
int ep_cli_instance_retry(cli_call *call);
int ep_cli_instance_delete(cli_call *call);
/* fleet_cmds.c */
int ep_cli_events(cli_call *call);
int ep_cli_watch(cli_call *call);
int ep_cli_logs(cli_call *call);
/* artifacts_cmds.c */
int ep_cli_artifacts_build(cli_call *call);
int ep_cli_artifacts_keys(cli_call *call);
int ep_cli_artifacts_nginx_conf(cli_call *call);
int ep_cli_usb_image(cli_call *call);
/* site_cmds.c */
int ep_cli_config_check(cli_call *call);
int ep_cli_plugins_list(cli_call *call);
int ep_cli_plugins_describe(cli_call *call);
int ep_cli_actions_list(cli_call *call);
int ep_cli_actions_run(cli_call *call);

#endif
