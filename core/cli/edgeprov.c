/* edgeprov: the operator CLI. main() finds the command in the table (commands.c), parses its
 * options, sets up what it needs and runs it; see cli.h. */
#define _GNU_SOURCE /* getopt_long, explicit_bzero */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/log.h"
#include "base/secret.h"
#include "base/suggest.h"
#include "cli.h"
#include "runtime/site.h"

int cli_usage_error(const cli_call *call, const char *fmt, ...) {
  char name[64];
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "%s: ", cli_command_name(call->command, name, sizeof name));
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputs("\n\n", stderr);
  cli_print_usage(call->command, stderr);
  return EXIT_USAGE;
}

/* ---- the options a command was given ------------------------------------------------------------ */

const char *cli_value(const cli_call *call, int key) {
  const char *value = NULL;
  for (size_t i = 0; i < call->nvalues; i++)
    if (call->values[i].key == key) value = call->values[i].value;
  return value;
}

bool cli_flag(const cli_call *call, int key) {
  for (size_t i = 0; i < call->nvalues; i++)
    if (call->values[i].key == key) return true;
  return false;
}

size_t cli_values(const cli_call *call, int key, const char **out, size_t max) {
  size_t n = 0;
  for (size_t i = 0; i < call->nvalues; i++)
    if (call->values[i].key == key) {
      if (n < max) out[n] = call->values[i].value;
      n++;
    }
  return n;
}

#define OPTIONS_MAX 16 /* options of one command, -h/--help included */

/* Parses the command's options (argv[0] is the command's name) into call with getopt_long.
 * Returns -1 to go on, else the exit status: 0 after --help, EXIT_USAGE after a usage error. */
static int parse_options(cli_call *call, int argc, char **argv) {
  const cli_command *command = call->command;
  struct option longs[OPTIONS_MAX + 1] = {{0}};
  char shorts[2 * OPTIONS_MAX + 3] = ":h"; /* ':': a missing value is told apart from an unknown option */
  size_t n = 0, s = strlen(shorts);
  for (const cli_option *o = command->options; o->name && n < OPTIONS_MAX - 1; o++, n++) {
    longs[n] = (struct option){o->name, o->arg ? required_argument : no_argument, NULL, o->key};
    if (o->letter) {
      shorts[s++] = (char)o->key;
      if (o->arg) shorts[s++] = ':';
    }
  }
  longs[n] = (struct option){"help", no_argument, NULL, 'h'};
  optind = 0; /* glibc: start over (main's getopt_long ran before) */
  opterr = 0;
  for (int ch; (ch = getopt_long(argc, argv, shorts, longs, NULL)) != -1;) {
    if (ch == 'h') {
      cli_print_usage(command, stdout);
      return EXIT_SUCCESS;
    }
    if (ch == '?') {
      /* glibc's '?' with optopt set: a flag given a value (--json=x), or an unknown letter. */
      for (const cli_option *f = command->options; optopt && f->name; f++)
        if (f->key == optopt && !f->arg && strncmp(argv[optind - 1], "--", 2) == 0)
          return cli_usage_error(call, "--%s takes no value (got '%s')", f->name, argv[optind - 1]);
      if (optopt && optopt != '?') return cli_usage_error(call, "unknown option '-%c'", optopt);
      return cli_usage_error(call, "unknown option '%s'", argv[optind - 1]);
    }
    if (ch == ':') return cli_usage_error(call, "option '%s' needs a value", argv[optind - 1]);
    const cli_option *o = command->options;
    while (o->name && o->key != ch) o++;
    if (!o->name) return cli_usage_error(call, "unknown option '%s'", argv[optind - 1]); /* not in the table */
    if (o->choices) {
      size_t k = 0;
      while (o->choices[k] && strcmp(o->choices[k], optarg) != 0) k++;
      if (!o->choices[k]) {
        char list[256] = "";
        for (size_t i = 0, used = 0; o->choices[i]; i++)
          used += (size_t)snprintf(list + used, sizeof list - used, "%s%s", i ? ", " : "", o->choices[i]);
        return cli_usage_error(call, "--%s needs one of %s (got '%s')", o->name, list, optarg);
      }
    }
    if (call->nvalues == CLI_VALUES_MAX) return cli_usage_error(call, "more than %d options", CLI_VALUES_MAX);
    call->values[call->nvalues++] = (cli_given){ch, o->arg ? optarg : NULL};
  }
  call->args = argv + optind;
  call->nargs = argc - optind;
  if (call->nargs < command->min_args) return cli_usage_error(call, "missing %s", command->args);
  if (command->max_args >= 0 && call->nargs > command->max_args)
    return cli_usage_error(call, "unexpected argument '%s'", call->args[command->max_args]);
  for (const cli_option *o = command->options; o->name; o++)
    if ((o->flags & CLI_OPT_REQUIRED) && !cli_flag(call, o->key))
      return cli_usage_error(call, "--%s %s is required", o->name, o->arg ? o->arg : "");
  return -1;
}

/* ---- what a command needs ------------------------------------------------------------------------ */

typedef struct server_options {
  const char *server;
  const char *ca_file;
  const char *token_file;
} server_options;

/* Opens the site, prints its diagnostics, and starts its plugins when start is set.
 * Returns the site, or NULL after printing why. */
static ep_site *open_site(const char *config_path, bool start) {
  ep_diags diags = {0};
  ep_site *site = NULL;
  const char *path = ep_site_config_path(config_path);
  int r = ep_site_open(&site, path, &diags);
  ep_diags_print(&diags, stderr);
  bool bad = r < 0 || diags.errors > 0;
  ep_diags_clear(&diags);
  if (r < 0 && r != EP_EINVAL && r != EP_ENOENT) fprintf(stderr, "edgeprov: %s\n", ep_error_message());
  if (bad) {
    fprintf(stderr, "edgeprov: %s is not valid (run: edgeprov config check %s)\n", path ? path : "the config",
            path ? path : "FILE");
    ep_site_free(site);
    return NULL;
  }
  if (start && ep_plugins_start(site->plugins, site->config) < 0) {
    fprintf(stderr, "edgeprov: %s\n", ep_error_message());
    ep_site_free(site);
    return NULL;
  }
  return site;
}

void cli_print_problems(const ep_site *site) {
  char line[EP_ERROR_MESSAGE_MAX + 512];
  for (size_t i = 0; i < site->plugins->count; i++)
    if (ep_site_plugin_problem(site->plugins->items[i], line, sizeof line))
      fprintf(stderr, "edgeprov: warning: %s\n", line);
}

/* Connects to the management API: --server, else $EDGEPROV_SERVER, else the config's
 * listen.management. Returns NULL after printing why. */
static ep_mgmt_client *connect_server(const char *config_path, const server_options *opts) {
  const char *address = opts->server ? opts->server : getenv("EDGEPROV_SERVER");
  ep_config *config = NULL;
  char *token = NULL;
  ep_mgmt_client *client = NULL;
  if (!address || !*address) {
    ep_diags diags = {0};
    const char *path = ep_site_config_path(config_path);
    int r = path ? ep_config_load(&config, path, NULL, &diags) : ep_config_new_defaults(&config, NULL);
    ep_diags_print(&diags, stderr);
    ep_diags_clear(&diags);
    if (r < 0) {
      fprintf(stderr, "edgeprov: cannot read %s to find the server; pass --server ADDRESS\n", path);
      return NULL;
    }
    address = config->listen_management;
  }
  if (opts->token_file && ep_read_secret_file(&token, opts->token_file, EP_OPERATOR_TOKEN_MAX) < 0)
    fprintf(stderr, "edgeprov: --token-file: %s\n", ep_error_message());
  else if (ep_mgmt_client_new(&client, address, opts->ca_file, token) < 0)
    fprintf(stderr, "edgeprov: %s\n", ep_error_message());
  if (token) {
    explicit_bzero(token, strlen(token));
    free(token);
  }
  ep_config_free(config);
  return client;
}

/* Runs the command (argv[0] its name) with what its row needs; returns the exit status. */
static int run_command(const cli_command *command, const char *config_path, const server_options *server, int argc,
                       char **argv) {
  cli_call call = {.command = command, .config_path = config_path};
  int status = parse_options(&call, argc, argv);
  if (status >= 0) return status;
  /* --log-level (actions run) shows the plugins' own lines, those of their start too. */
  for (const cli_option *o = command->options; o->name; o++)
    if (strcmp(o->name, "log-level") == 0 && cli_value(&call, o->key))
      ep_log_setup(stderr, ep_log_level_parse(cli_value(&call, o->key)));
  switch (command->needs) {
  case CLI_NEEDS_NOTHING: break;
  case CLI_NEEDS_CONFIG:
  case CLI_NEEDS_PLUGINS:
    if (!(call.site = open_site(config_path, command->needs == CLI_NEEDS_PLUGINS))) return EXIT_FAILURE;
    if (command->needs == CLI_NEEDS_PLUGINS) cli_print_problems(call.site);
    break;
  case CLI_NEEDS_DAEMON:
    if (!(call.client = connect_server(config_path, server))) return EXIT_FAILURE;
    break;
  }
  status = command->run(&call);
  ep_mgmt_client_free(call.client);
  ep_site_free(call.site);
  return status;
}

/* ---- main ------------------------------------------------------------------------------------------ */

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "edgeprov: ");
  vfprintf(stderr, fmt, ap);
  fputs("\n\n", stderr);
  va_end(ap);
  cli_print_help(stderr);
  return EXIT_USAGE;
}

/* "unknown command 'hots' (did you mean 'host'?)" among the words of the table's column. */
static int unknown_word(const char *what, const char *word, const char *group) {
  const char *words[64];
  size_t n = 0;
  for (size_t i = 0; i < cli_command_count && n < 64; i++)
    if (!group) words[n++] = cli_commands[i].group;
    else if (strcmp(cli_commands[i].group, group) == 0) words[n++] = cli_commands[i].verb;
  const char *hint = ep_suggest(word, words, n);
  fprintf(stderr, "edgeprov: unknown %s '%s%s%s'%s%s%s\n\n", what, group ? group : "", group ? " " : "", word,
          hint ? " (did you mean '" : "", hint ? hint : "", hint ? "'?)" : "");
  if (group) cli_print_group_usage(group, stderr);
  else cli_print_help(stderr);
  return EXIT_USAGE;
}

int main(int argc, char **argv) {
  enum { OPT_MAN = 256, OPT_COMMANDS, OPT_COMPLETION };
  /* The hidden options print what the build makes from the table (core/CMakeLists.txt). */
  static const struct option longs[] = {
      {"config", required_argument, NULL, 'c'},     {"server", required_argument, NULL, 's'},
      {"ca", required_argument, NULL, 'C'},         {"token-file", required_argument, NULL, 't'},
      {"version", no_argument, NULL, 'V'},          {"help", no_argument, NULL, 'h'},
      {"man", no_argument, NULL, OPT_MAN},          {"commands", no_argument, NULL, OPT_COMMANDS},
      {"bash-completion", no_argument, NULL, OPT_COMPLETION}, {NULL, 0, NULL, 0}};
  const char *config_path = NULL;
  server_options server = {0};
  opterr = 0;
  /* '+': the options end at the command, whose own options are its row's. */
  for (int ch; (ch = getopt_long(argc, argv, "+:h", longs, NULL)) != -1;) {
    switch (ch) {
    case 'c': config_path = optarg; break;
    case 's': server.server = optarg; break;
    case 'C': server.ca_file = optarg; break;
    case 't': server.token_file = optarg; break;
    case 'V': printf("edgeprov %s (plugin ABI %d.%d)\n", EP_VERSION, EP_ABI_MAJOR, EP_ABI_MINOR); return EXIT_SUCCESS;
    case 'h': cli_print_help(stdout); return EXIT_SUCCESS;
    case OPT_MAN: cli_print_man(stdout); return fflush(stdout) == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
    case OPT_COMMANDS: cli_print_command_list(stdout); return fflush(stdout) == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
    case OPT_COMPLETION: cli_print_completion(stdout); return fflush(stdout) == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
    case ':': return usage_error("option '%s' needs a value", argv[optind - 1]);
    default: return usage_error("unknown option '%s'", argv[optind - 1]);
    }
  }
  ep_log_setup(stderr, EP_LOG_WARN);
  if (optind >= argc) return usage_error("no command given");
  const char *group = argv[optind];
  const cli_command *command = NULL;
  bool known = false;
  for (size_t i = 0; i < cli_command_count && !command; i++) {
    const cli_command *c = &cli_commands[i];
    if (strcmp(c->group, group) != 0) continue;
    known = true;
    if (!c->verb) command = c;
    else if (optind + 1 < argc && strcmp(c->verb, argv[optind + 1]) == 0) command = c;
  }
  if (!known) return unknown_word("command", group, NULL);
  if (!command) { /* a group without its verb (`edgeprov host`), or with an unknown one */
    const char *verb = optind + 1 < argc ? argv[optind + 1] : NULL;
    if (verb && (strcmp(verb, "-h") == 0 || strcmp(verb, "--help") == 0)) {
      cli_print_group_usage(group, stdout);
      return EXIT_SUCCESS;
    }
    if (verb) return unknown_word("command", verb, group);
    fprintf(stderr, "edgeprov: %s needs a command\n\n", group);
    cli_print_group_usage(group, stderr);
    return EXIT_USAGE;
  }
  /* The command's argv: its name first (getopt_long skips argv[0]), then its words. */
  int first = optind + (command->verb ? 2 : 1);
  char name[64];
  cli_command_name(command, name, sizeof name);
  argv[first - 1] = name;
  return run_command(command, config_path, &server, argc - first + 1, argv + first - 1);
}
