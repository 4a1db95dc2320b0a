/* edgeprov CLI: everything printed from the command table (commands.c): a command's usage, the
 * top-level help, the command list, the man page edgeprov(1) and the bash completion. The build
 * writes the last two with the hidden options --man and --bash-completion (core/CMakeLists.txt). */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

#define TEXT_WIDTH 80     /* help text wraps before this column */
#define OPTION_COLUMN 24   /* where an option's help starts in a usage */

/* ---- usage ----------------------------------------------------------------------------------- */

const char *cli_command_name(const cli_command *command, char *buf, size_t len) {
  snprintf(buf, len, "edgeprov %s%s%s", command->group, command->verb ? " " : "", command->verb ? command->verb : "");
  return buf;
}

/* The option's value as a usage shows it: its choices ("running|onboarded"), else its name
 * ("UUID"); "" for a flag. */
static const char *option_arg(const cli_option *o, char *buf, size_t len) {
  if (!o->choices) return o->arg ? o->arg : "";
  buf[0] = '\0';
  for (size_t i = 0, used = 0; o->choices[i] && used < len; i++)
    used += (size_t)snprintf(buf + used, len - used, "%s%s", i ? "|" : "", o->choices[i]);
  return buf;
}

/* The synopsis words of one option: "--uuid UUID", "[--serial SERIAL]", "[--mac MAC]...". */
static void synopsis_word(const cli_option *o, char *buf, size_t len) {
  bool required = o->flags & CLI_OPT_REQUIRED;
  char arg[128];
  snprintf(buf, len, "%s--%s%s%s%s%s", required ? "" : "[", o->name, o->arg ? " " : "", option_arg(o, arg, sizeof arg),
           required ? "" : "]", o->flags & CLI_OPT_REPEAT ? "..." : "");
}

/* Prints text's lines, each after indent. */
static void print_lines(FILE *out, const char *indent, const char *text) {
  for (const char *line = text; *line;) {
    size_t n = strcspn(line, "\n");
    fprintf(out, "%s%.*s\n", indent, (int)n, line);
    line += n + (line[n] ? 1 : 0);
  }
}

/* Prints help after an option of width used, wrapped at TEXT_WIDTH and indented to OPTION_COLUMN. */
static void print_option_help(FILE *out, int used, const char *help) {
  int column = used;
  if (column > OPTION_COLUMN - 2) { /* at least two blanks between an option and its help */
    fputc('\n', out);
    column = 0;
  }
  fprintf(out, "%*s", OPTION_COLUMN - column, "");
  column = OPTION_COLUMN;
  for (const char *word = help; *word;) {
    size_t n = strcspn(word, " ");
    if (column > OPTION_COLUMN && column + 1 + (int)n > TEXT_WIDTH) {
      fprintf(out, "\n%*s", OPTION_COLUMN, "");
      column = OPTION_COLUMN;
    } else if (column > OPTION_COLUMN) {
      fputc(' ', out);
      column++;
    }
    fprintf(out, "%.*s", (int)n, word);
    column += (int)n;
    word += n;
    while (*word == ' ') word++;
  }
  fputc('\n', out);
}

static void print_option(FILE *out, const cli_option *o) {
  char letter[8] = "    "; /* "-f, " */
  if (o->letter) snprintf(letter, sizeof letter, "-%c, ", o->key);
  char arg[128];
  int used = fprintf(out, "  %s--%s%s%s", letter, o->name, o->arg ? " " : "", option_arg(o, arg, sizeof arg));
  char help[512];
  snprintf(help, sizeof help, "%s%s", o->help, o->flags & CLI_OPT_REQUIRED ? " (required)" : "");
  print_option_help(out, used, help);
}

void cli_print_usage(const cli_command *command, FILE *out) {
  char name[64];
  cli_command_name(command, name, sizeof name);
  int column = fprintf(out, "Usage: %s", name);
  int indent = column + 1;
  char word[160];
  for (const cli_option *o = command->options; o->name; o++) {
    synopsis_word(o, word, sizeof word);
    if (column + 1 + (int)strlen(word) > TEXT_WIDTH) column = fprintf(out, "\n%*s", indent - 1, "") - 1;
    column += fprintf(out, " %s", word);
  }
  if (command->args) {
    if (column + 1 + (int)strlen(command->args) > TEXT_WIDTH) fprintf(out, "\n%*s", indent - 1, "");
    fprintf(out, " %s", command->args);
  }
  fprintf(out, "\n\n%c%s.\n", toupper((unsigned char)command->summary[0]), command->summary + 1);
  if (command->details) {
    fputc('\n', out);
    print_lines(out, "", command->details);
  }
  fprintf(out, "\nOptions:\n");
  for (const cli_option *o = command->options; o->name; o++) print_option(out, o);
  print_option(out, &(cli_option){"help", 'h', true, NULL, 0, NULL, "print this help"});
  fprintf(out, "\nGlobal options (--config, --server ...) go before the command: see edgeprov --help.\n");
}

/* The usage of a group's commands (`edgeprov host`): each with its summary. */
void cli_print_group_usage(const char *group, FILE *out) {
  fprintf(out, "Usage: edgeprov %s COMMAND [OPTIONS] [ARGS]\n\nCommands:\n", group);
  for (size_t i = 0; i < cli_command_count; i++)
    if (strcmp(cli_commands[i].group, group) == 0)
      fprintf(out, "  %-14s %s\n", cli_commands[i].verb, cli_commands[i].summary);
  fprintf(out, "\nRun 'edgeprov %s COMMAND --help' for a command's options.\n", group);
}

void cli_print_help(FILE *out) {
  fprintf(out, "Usage: edgeprov [GLOBAL OPTIONS] COMMAND [OPTIONS] [ARGS]\n"
               "\n"
               "Operator CLI of edgeprov, the zero-touch edge node provisioning framework.\n"
               "\n"
               "Commands:\n");
  for (size_t i = 0; i < cli_command_count; i++) {
    const cli_command *c = &cli_commands[i];
    int used = fprintf(out, "  %s%s%s", c->group, c->verb ? " " : "", c->verb ? c->verb : "");
    char word[160];
    for (const cli_option *o = c->options; o->name; o++)
      if (o->flags & CLI_OPT_REQUIRED) {
        synopsis_word(o, word, sizeof word);
        used += fprintf(out, " %s", word);
      }
    if (c->args) used += fprintf(out, " %s", c->args);
    print_option_help(out, used, c->summary);
  }
  fprintf(out, "\nEvery command answers -h/--help with its options and arguments; the commands that read\n"
               "state take --json.\n\nGlobal options:\n");
  for (const cli_option *o = cli_global_options; o->name; o++) print_option(out, o);
  print_option(out, &(cli_option){"help", 'h', true, NULL, 0, NULL, "print this help"});
  fprintf(out, "\nExit status:\n");
  for (const cli_exit_status *s = cli_exit_statuses; s->meaning; s++) {
    char code[8];
    snprintf(code, sizeof code, "%d", s->status);
    print_option_help(out, fprintf(out, "  %s", code), s->meaning);
  }
}


/* ---- the command list (edgeprov --commands) -------------------------------------------------- */

void cli_print_command_list(FILE *out) {
  for (size_t i = 0; i < cli_command_count; i++) {
    const cli_command *c = &cli_commands[i];
    fprintf(out, "%s%s%s\t%d\t%d\t", c->group, c->verb ? " " : "", c->verb ? c->verb : "", c->min_args, c->max_args);
    int required = 0;
    for (const cli_option *o = c->options; o->name; o++)
      if (o->flags & CLI_OPT_REQUIRED) fprintf(out, "%s--%s", required++ ? " " : "", o->name);
    fprintf(out, "%s\t", required ? "" : "-");
    for (const cli_option *o = c->options; o->name; o++) fprintf(out, "--%s ", o->name);
    fprintf(out, "--help\n");
  }
}

/* ---- edgeprov(1) ------------------------------------------------------------------------------ */

/* text for roff: backslashes escaped, a dash that starts a word (an option) a minus sign, and
 * a line that would start with a control character ('.' or '\'') protected. */
static void roff(FILE *out, const char *text) {
  bool line_start = true, word_start = true;
  for (const char *p = text; *p; p++) {
    if (line_start && (*p == '.' || *p == '\'')) fputs("\\&", out);
    if (*p == '\\') fputs("\\e", out);
    else if (*p == '-' && (word_start || p[-1] == '-')) fputs("\\-", out);
    else fputc(*p, out);
    line_start = *p == '\n';
    word_start = *p == ' ' || *p == '\n' || *p == '[' || *p == '(' || *p == '|' || *p == '`';
  }
}

/* A list item: the tag in bold, then the text. */
static void roff_item(FILE *out, const char *tag, const char *text) {
  fputs(".TP\n.B ", out);
  roff(out, tag);
  fputc('\n', out);
  roff(out, text);
  fputc('\n', out);
}

static void roff_option(FILE *out, const cli_option *o) {
  char tag[256], text[768], arg[128];
  snprintf(tag, sizeof tag, "%s%c%s--%s%s%s", o->letter ? "-" : "", o->letter ? o->key : ' ', o->letter ? ", " : "",
           o->name, o->arg ? " " : "", option_arg(o, arg, sizeof arg));
  snprintf(text, sizeof text, "%s%s", o->help, o->flags & CLI_OPT_REQUIRED ? " (required)" : "");
  roff_item(out, o->letter ? tag : tag + 1, text);
}

void cli_print_man(FILE *out) {
  fprintf(out, ".\\\" edgeprov(1), generated from the CLI's command table (edgeprov --man): edit core/cli/commands.c.\n"
               ".TH EDGEPROV 1 \"\" \"edgeprov %s\" \"edgeprov\"\n"
               ".ad l\n.nh\n" /* synopses and option names read better unjustified, unhyphenated */
               ".SH NAME\nedgeprov \\- operator CLI of edgeprov, the zero-touch edge node provisioning framework\n"
               ".SH SYNOPSIS\n.B edgeprov\n[\\fIGLOBAL OPTIONS\\fR] \\fICOMMAND\\fR [\\fIOPTIONS\\fR] [\\fIARGS\\fR]\n"
               ".SH DESCRIPTION\n"
               "edgeprov checks a site config, lists and describes plugins and runs node actions here; it manages\n"
               "hosts and instances, shows changes, nodes and their logs through the management API of\n"
               ".BR edgeprovd (8);\n"
               "and it builds boot artifacts and USB stick images.\n"
               ".PP\nEvery command answers \\fB\\-h\\fR/\\fB\\-\\-help\\fR with its usage, without loading a plugin or\n"
               "contacting edgeprovd; the commands that read state take \\fB\\-\\-json\\fR.\n"
               ".SH COMMANDS\n",
          EP_VERSION);
  for (size_t i = 0; i < cli_command_count; i++) {
    const cli_command *c = &cli_commands[i];
    char name[64], word[160];
    fputs(".SS \"", out);
    roff(out, cli_command_name(c, name, sizeof name) + strlen("edgeprov "));
    fputs("\"\n.B ", out);
    roff(out, name);
    fputc('\n', out);
    for (const cli_option *o = c->options; o->name; o++) {
      synopsis_word(o, word, sizeof word);
      roff(out, word);
      fputc('\n', out);
    }
    if (c->args) {
      roff(out, c->args);
      fputc('\n', out);
    }
    fputs(".PP\n", out);
    fprintf(out, "%c", toupper((unsigned char)c->summary[0]));
    roff(out, c->summary + 1);
    fputs(".\n", out);
    if (c->details) {
      fputs(".PP\n", out);
      roff(out, c->details);
      fputc('\n', out);
    }
    for (const cli_option *o = c->options; o->name; o++) roff_option(out, o);
  }
  fputs(".SH GLOBAL OPTIONS\nThey come before the command.\n", out);
  for (const cli_option *o = cli_global_options; o->name; o++) roff_option(out, o);
  roff_option(out, &(cli_option){"help", 'h', true, NULL, 0, NULL, "print the commands and the global options"});
  fputs(".SH EXIT STATUS\n", out);
  for (const cli_exit_status *s = cli_exit_statuses; s->meaning; s++) {
    char code[8];
    snprintf(code, sizeof code, "%d", s->status);
    roff_item(out, code, s->meaning);
  }
  fputs(".SH ENVIRONMENT\n", out);
  roff_item(out, EP_SITE_CONFIG_ENV, "the site config, when --config is not given");
  roff_item(out, "EDGEPROV_SERVER", "edgeprovd's management API, when --server is not given");
  fputs(".SH FILES\n", out);
  roff_item(out, EP_SITE_CONFIG_SYSTEM, "the site config, when neither --config nor " EP_SITE_CONFIG_ENV " is set");
  fputs(".SH SEE ALSO\n.BR edgeprovd (8)\n", out);
}

/* ---- bash completion -------------------------------------------------------------------------- */

/* Whether values named arg are paths (completed as file names). */
static bool is_path(const char *arg) { return arg && (strcmp(arg, "FILE") == 0 || strcmp(arg, "DIR") == 0); }

void cli_print_completion(FILE *out) {
  fputs("# bash completion for edgeprov, generated from its command table (edgeprov --bash-completion).\n"
        "_edgeprov() {\n"
        "  local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}\n"
        "  local i word group= verb= skip=\n"
        "  for ((i = 1; i < COMP_CWORD; i++)); do\n"
        "    word=${COMP_WORDS[i]}\n"
        "    if [[ -n $skip ]]; then skip=; continue; fi\n"
        "    if [[ -z $group ]]; then\n"
        "      case $word in\n"
        "        ",
        out);
  int n = 0;
  for (const cli_option *o = cli_global_options; o->name; o++)
    if (o->arg) fprintf(out, "%s--%s", n++ ? "|" : "", o->name);
  fputs(") skip=1 ;;\n"
        "        -*) ;;\n"
        "        *) group=$word ;;\n"
        "      esac\n"
        "    elif [[ -z $verb && $word != -* ]]; then\n"
        "      case $group in\n        ",
        out);
  n = 0;
  for (size_t i = 0; i < cli_command_count; i++) /* the groups with verbs, each once */
    if (cli_commands[i].verb && (i == 0 || strcmp(cli_commands[i - 1].group, cli_commands[i].group) != 0))
      fprintf(out, "%s%s", n++ ? "|" : "", cli_commands[i].group);
  fputs(") verb=$word ;;\n"
        "      esac\n"
        "    fi\n"
        "  done\n"
        "  if [[ -z $group ]]; then\n"
        "    case $prev in\n",
        out);
  for (const cli_option *o = cli_global_options; o->name; o++)
    if (o->arg) fprintf(out, "      --%s) %sreturn ;;\n", o->name, is_path(o->arg) ? "COMPREPLY=($(compgen -f -- \"$cur\")); " : "");
  fputs("    esac\n"
        "    if [[ $cur == -* ]]; then\n"
        "      COMPREPLY=($(compgen -W \"",
        out);
  for (const cli_option *o = cli_global_options; o->name; o++) fprintf(out, "--%s ", o->name);
  fputs("--help\" -- \"$cur\"))\n"
        "    else\n"
        "      COMPREPLY=($(compgen -W \"",
        out);
  for (size_t i = 0; i < cli_command_count; i++)
    if (i == 0 || strcmp(cli_commands[i - 1].group, cli_commands[i].group) != 0)
      fprintf(out, "%s%s", i ? " " : "", cli_commands[i].group);
  fputs("\" -- \"$cur\"))\n"
        "    fi\n"
        "    return\n"
        "  fi\n"
        "  local verbs=\n"
        "  case $group in\n",
        out);
  for (size_t i = 0; i < cli_command_count; i++) {
    const cli_command *c = &cli_commands[i];
    if (!c->verb || (i > 0 && strcmp(cli_commands[i - 1].group, c->group) == 0)) continue;
    fprintf(out, "    %s) verbs=\"", c->group);
    for (size_t k = i; k < cli_command_count && strcmp(cli_commands[k].group, c->group) == 0; k++)
      fprintf(out, "%s%s", k > i ? " " : "", cli_commands[k].verb);
    fputs("\" ;;\n", out);
  }
  fputs("  esac\n"
        "  if [[ -n $verbs && -z $verb ]]; then\n"
        "    COMPREPLY=($(compgen -W \"$verbs --help\" -- \"$cur\"))\n"
        "    return\n"
        "  fi\n"
        "  local options= valued= paths= files=\n"
        "  case \"$group${verb:+ $verb}\" in\n",
        out);
  for (size_t i = 0; i < cli_command_count; i++) {
    const cli_command *c = &cli_commands[i];
    fprintf(out, "    \"%s%s%s\") options=\"", c->group, c->verb ? " " : "", c->verb ? c->verb : "");
    for (const cli_option *o = c->options; o->name; o++) fprintf(out, "--%s ", o->name);
    for (const cli_option *o = c->options; o->name; o++)
      if (o->letter) fprintf(out, "-%c ", o->key);
    fputs("--help\"; valued=\"", out);
    for (const cli_option *o = c->options; o->name; o++)
      if (o->arg) fprintf(out, "--%s ", o->name);
    fputs("\"; paths=\"", out);
    for (const cli_option *o = c->options; o->name; o++)
      if (is_path(o->arg)) fprintf(out, "--%s ", o->name);
    fprintf(out, "\"; files=%s ;;\n", is_path(c->args) ? "1" : "");
  }
  fputs("  esac\n"
        "  if [[ $prev == --* && \" $valued \" == *\" $prev \"* ]]; then\n"
        "    case \"$group${verb:+ $verb} $prev\" in\n",
        out);
  for (size_t i = 0; i < cli_command_count; i++) {
    const cli_command *c = &cli_commands[i];
    for (const cli_option *o = c->options; o->name; o++) {
      if (!o->choices) continue;
      fprintf(out, "      \"%s%s%s --%s\") COMPREPLY=($(compgen -W \"", c->group, c->verb ? " " : "",
              c->verb ? c->verb : "", o->name);
      for (size_t k = 0; o->choices[k]; k++) fprintf(out, "%s%s", k ? " " : "", o->choices[k]);
      fputs("\" -- \"$cur\")) ;;\n", out);
    }
  }
  fputs("      *) [[ \" $paths \" == *\" $prev \"* ]] && COMPREPLY=($(compgen -f -- \"$cur\")) ;;\n"
        "    esac\n"
        "    return\n"
        "  fi\n"
        "  if [[ $cur == -* ]]; then\n"
        "    COMPREPLY=($(compgen -W \"$options\" -- \"$cur\"))\n"
        "  elif [[ -n $files ]]; then\n"
        "    COMPREPLY=($(compgen -f -- \"$cur\"))\n"
        "  fi\n"
        "}\n"
        "complete -F _edgeprov edgeprov\n",
        out);
}
