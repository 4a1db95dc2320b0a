/* Unit tests of core/lib/base/log.c: level names, filtering by the most verbose level, the
 * logfmt line (time, level, component, quoted message) with escaping, and whole lines under
 * concurrent writers. Lines are captured in a temporary file set as the sink. */
#include <pthread.h>
#include <regex.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "base/log.h"
#include "testutil.h"

/* One whole line: time to the millisecond in UTC, a level name, a component, a quoted message
 * whose quotes and backslashes are escaped. */
#define LINE_RE \
  "^time=[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z " \
  "level=(error|warn|info|debug) component=[^ ]+ msg=\"([^\"\\\\]|\\\\.)*\"$"

static int setup(void **state) {
  FILE *sink = tmpfile();
  if (!sink) return -1;
  *state = sink;
  return 0;
}

static int teardown(void **state) {
  ep_log_setup(NULL, EP_LOG_INFO); /* back to stderr before the file goes */
  fclose(*state);
  return 0;
}

/* Everything written to sink so far (caller frees); the sink is emptied. */
static char *captured(FILE *sink) {
  fflush(sink);
  long size = ftell(sink);
  rewind(sink);
  char *text = calloc(1, (size_t)size + 1);
  assert_non_null(text);
  assert_int_equal(fread(text, 1, (size_t)size, sink), (size_t)size);
  rewind(sink);
  assert_int_equal(ftruncate(fileno(sink), 0), 0);
  return text;
}

static void assert_line_format(const char *line) {
  regex_t re;
  assert_int_equal(regcomp(&re, LINE_RE, REG_EXTENDED | REG_NOSUB), 0);
  int r = regexec(&re, line, 0, NULL, 0);
  regfree(&re);
  if (r != 0) fail_msg("not a log line: \"%s\"", line);
}

static void level_names_parse(void **state) {
  (void)state;
  assert_int_equal(ep_log_level_parse("error"), EP_LOG_ERROR);
  assert_int_equal(ep_log_level_parse("warn"), EP_LOG_WARN);
  assert_int_equal(ep_log_level_parse("info"), EP_LOG_INFO);
  assert_int_equal(ep_log_level_parse("debug"), EP_LOG_DEBUG);
  assert_int_equal(ep_log_level_parse("INFO"), -1);
  assert_int_equal(ep_log_level_parse("warning"), -1);
  assert_int_equal(ep_log_level_parse("inf"), -1);
  assert_int_equal(ep_log_level_parse(""), -1);
}

static void line_has_time_level_component_and_quoted_message(void **state) {
  FILE *sink = *state;
  ep_log_setup(sink, EP_LOG_INFO);
  ep_log(EP_LOG_WARN, "inventory", "host %s has %d disks", "n1", 3);
  char *text = captured(sink);
  size_t len = strlen(text);
  assert_true(len > 0 && text[len - 1] == '\n');
  text[len - 1] = '\0';
  assert_null(strchr(text, '\n')); /* one line */
  assert_line_format(text);
  assert_non_null(strstr(text, " level=warn component=inventory msg=\"host n1 has 3 disks\""));
  free(text);

  ep_log_message(EP_LOG_ERROR, NULL, "plain");
  text = captured(sink);
  assert_non_null(strstr(text, " level=error component=edgeprov msg=\"plain\"\n")); /* NULL: the core's name */
  free(text);
}

static void levels_above_the_maximum_are_dropped(void **state) {
  FILE *sink = *state;
  ep_log_setup(sink, EP_LOG_INFO);
  ep_log(EP_LOG_DEBUG, "t", "debug line");
  ep_log(EP_LOG_INFO, "t", "info line");
  ep_log(EP_LOG_WARN, "t", "warn line");
  ep_log(EP_LOG_ERROR, "t", "error line");
  char *text = captured(sink);
  assert_null(strstr(text, "debug line"));
  assert_non_null(strstr(text, "level=info component=t msg=\"info line\""));
  assert_non_null(strstr(text, "level=warn component=t msg=\"warn line\""));
  assert_non_null(strstr(text, "level=error component=t msg=\"error line\""));
  free(text);

  ep_log_setup(sink, EP_LOG_ERROR);
  ep_log(EP_LOG_WARN, "t", "warn line");
  ep_log(EP_LOG_ERROR, "t", "error line");
  text = captured(sink);
  assert_null(strstr(text, "warn line"));
  assert_non_null(strstr(text, "error line"));
  free(text);

  ep_log_setup(sink, EP_LOG_DEBUG);
  ep_log(EP_LOG_DEBUG, "t", "debug line");
  text = captured(sink);
  assert_non_null(strstr(text, "level=debug component=t msg=\"debug line\""));
  free(text);

  /* Below error (a plugin's bad level) is written as an error, never dropped. */
  ep_log_setup(sink, EP_LOG_ERROR);
  ep_log_message(-7, "t", "below error");
  text = captured(sink);
  assert_non_null(strstr(text, "level=error component=t msg=\"below error\""));
  free(text);
}

static void quotes_backslashes_and_control_characters_are_escaped(void **state) {
  FILE *sink = *state;
  ep_log_setup(sink, EP_LOG_INFO);
  ep_log_message(EP_LOG_INFO, "t", "say \"hi\" \\ next\nline\tend\x01\x1b[31m\x7f" "caf\xc3\xa9");
  char *text = captured(sink);
  assert_non_null(strstr(text, "msg=\"say \\\"hi\\\" \\\\ next\\nline\\x09end\\x01\\x1b[31m\\x7f" "caf\xc3\xa9\"\n"));
  size_t len = strlen(text);
  text[len - 1] = '\0';
  assert_null(strchr(text, '\n')); /* a forged second line is impossible */
  assert_line_format(text);
  free(text);

  /* The component is escaped the same way. */
  ep_log_message(EP_LOG_INFO, "x\"\n", "m");
  text = captured(sink);
  assert_non_null(strstr(text, "component=x\\\"\\n msg=\"m\"\n"));
  free(text);
}

static void long_formatted_message_is_cut_not_dropped(void **state) {
  FILE *sink = *state;
  ep_log_setup(sink, EP_LOG_INFO);
  char big[5000];
  memset(big, 'z', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  ep_log(EP_LOG_INFO, "t", "%s", big);
  char *text = captured(sink);
  char *msg = strstr(text, "msg=\"");
  assert_non_null(msg);
  msg += 5;
  size_t zs = strspn(msg, "z");
  assert_true(zs > 1000 && zs < sizeof big - 1);
  assert_string_equal(msg + zs, "\"\n");
  free(text);
}

#define WRITERS 4
#define LINES_EACH 300

static void *writer(void *arg) {
  intptr_t id = (intptr_t)arg;
  for (int i = 0; i < LINES_EACH; i++)
    ep_log(EP_LOG_INFO, "writer", "thread %ld line %d with some more text to make the line longer", (long)id, i);
  return NULL;
}

static void concurrent_writers_never_interleave_lines(void **state) {
  FILE *sink = *state;
  ep_log_setup(sink, EP_LOG_INFO);
  pthread_t threads[WRITERS];
  for (intptr_t i = 0; i < WRITERS; i++) assert_int_equal(pthread_create(&threads[i], NULL, writer, (void *)i), 0);
  for (int i = 0; i < WRITERS; i++) pthread_join(threads[i], NULL);
  char *text = captured(sink);
  int lines = 0;
  for (char *save = NULL, *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
    assert_line_format(line);
    lines++;
  }
  assert_int_equal(lines, WRITERS * LINES_EACH);
  free(text);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(level_names_parse),
      cmocka_unit_test_setup_teardown(line_has_time_level_component_and_quoted_message, setup, teardown),
      cmocka_unit_test_setup_teardown(levels_above_the_maximum_are_dropped, setup, teardown),
      cmocka_unit_test_setup_teardown(quotes_backslashes_and_control_characters_are_escaped, setup, teardown),
      cmocka_unit_test_setup_teardown(long_formatted_message_is_cut_not_dropped, setup, teardown),
      cmocka_unit_test_setup_teardown(concurrent_writers_never_interleave_lines, setup, teardown),
  };
  return cmocka_run_group_tests_name("log", tests, NULL, NULL);
}
