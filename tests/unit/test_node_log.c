/* Unit tests of core/lib/provisioning/node_log.c on the real storage-sqlite plugin: lines are
 * kept in order with their run and action, read after a line and by run, redacted before they
 * are stored, bounded per host with the oldest lines going first, announced by an event of
 * the host's log head, and removed with the host. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "base/error.h"
#include "provisioning/inventory.h"
#include "provisioning/node_log.h"
#include "site_fixture.h"

#define HOST_A "aaaaaaaa-0000-4000-8000-00000000000a"
#define HOST_B "bbbbbbbb-0000-4000-8000-00000000000b"

typedef struct seen {
  uint64_t seqs[4096];
  char texts[8][600];
  uint32_t runs[8];
  size_t count;
  size_t stop_after; /* 0: never */
} seen;

static int keep(void *data, const ep_node_log_line *line) {
  seen *s = data;
  if (s->count < 4096) s->seqs[s->count] = line->seq;
  if (s->count < 8) {
    snprintf(s->texts[s->count], sizeof s->texts[0], "%s|%s|%u", line->text, line->action_name, line->action);
    s->runs[s->count] = line->run;
  }
  s->count++;
  return s->stop_after && s->count >= s->stop_after;
}

static int setup(void **state) {
  tu_site *t = tu_site_open("\"storage-sqlite\"", "", NULL);
  *state = t;
  return t ? 0 : -1;
}

static int teardown(void **state) {
  tu_site_close(*state);
  return 0;
}

static void lines_are_kept_in_order_by_run_and_read_after_a_line(void **state) {
  tu_site *t = *state;
  char *first[] = {"erasing /dev/vda", "erased"};
  char *second[] = {"streaming", "done", "syncing"};
  assert_int_equal(ep_node_log_append(t->inv, HOST_A, 1, 0, "disk.erase", first, 2, EP_CONFIG_LOG_MAX_BYTES_DEFAULT, NULL), 0);
  assert_int_equal(ep_node_log_append(t->inv, HOST_A, 2, 1, "image.stream", second, 3, EP_CONFIG_LOG_MAX_BYTES_DEFAULT, NULL),
                   0);
  seen s = {0};
  ep_node_log_head head;
  assert_int_equal(ep_node_log_read(t->inv, HOST_A, 0, 0, 0, keep, &s, &head), 0);
  assert_int_equal(s.count, 5);
  assert_int_equal(head.next_line, 6);
  for (size_t i = 0; i < 5; i++) assert_int_equal(s.seqs[i], i + 1);
  assert_string_equal(s.texts[0], "erasing /dev/vda|disk.erase|0");
  assert_string_equal(s.texts[4], "syncing|image.stream|1");
  assert_int_equal(s.runs[2], 2);

  seen after = {0};
  assert_int_equal(ep_node_log_read(t->inv, HOST_A, 3, 0, 0, keep, &after, NULL), 0);
  assert_int_equal(after.count, 2);
  assert_int_equal(after.seqs[0], 4);

  seen run1 = {0};
  assert_int_equal(ep_node_log_read(t->inv, HOST_A, 0, 1, 0, keep, &run1, NULL), 0);
  assert_int_equal(run1.count, 2);

  seen limited = {0};
  assert_int_equal(ep_node_log_read(t->inv, HOST_A, 0, 0, 3, keep, &limited, NULL), 0);
  assert_int_equal(limited.count, 3);

  /* Another host has its own log; a host without one reads as empty. */
  seen none = {0};
  assert_int_equal(ep_node_log_read(t->inv, HOST_B, 0, 0, 0, keep, &none, &head), 0);
  assert_int_equal(none.count, 0);
  assert_int_equal(head.next_line, 0);
}

static void secrets_are_redacted_before_they_are_stored(void **state) {
  tu_site *t = *state;
  char *lines[] = {"password: hunter2-very-secret", "Authorization: Bearer eyJhbGciOiJFUzI1NiJ9.payload.sig",
                   "client_secret=s3cr3t-value", "an ordinary line"};
  size_t masked = 0;
  assert_int_equal(ep_node_log_append(t->inv, HOST_A, 1, 0, "file.write", lines, 4, EP_CONFIG_LOG_MAX_BYTES_DEFAULT, &masked),
                   0);
  assert_true(masked >= 3);
  seen s = {0};
  assert_int_equal(ep_node_log_read(t->inv, HOST_A, 0, 0, 0, keep, &s, NULL), 0);
  assert_int_equal(s.count, 4);
  assert_null(strstr(s.texts[0], "hunter2"));
  assert_null(strstr(s.texts[1], "payload"));
  assert_null(strstr(s.texts[2], "s3cr3t"));
  assert_non_null(strstr(s.texts[3], "an ordinary line"));
  /* Nowhere in the store either. */
  assert_int_equal(tu_grep_tree(t->dir, "hunter2"), 1);
  assert_int_equal(tu_grep_tree(t->dir, "s3cr3t"), 1);
}

static void a_log_is_bounded_and_the_oldest_lines_go_first(void **state) {
  tu_site *t = *state;
  char text[301];
  memset(text, 'x', 300);
  text[300] = '\0';
  char *lines[16];
  for (int i = 0; i < 16; i++) lines[i] = text;
  uint64_t max = EP_CONFIG_LOG_MAX_BYTES_MIN; /* 32 KiB: about 100 lines of 300 bytes */
  for (int i = 0; i < 64; i++) /* 1,024 lines, 300 KiB */
    assert_int_equal(ep_node_log_append(t->inv, HOST_A, 1, 0, "test.count", lines, 16, max, NULL), 0);
  seen s = {0};
  ep_node_log_head head;
  assert_int_equal(ep_node_log_read(t->inv, HOST_A, 0, 0, 0, keep, &s, &head), 0);
  assert_int_equal(head.next_line, 1025);
  assert_true(s.count * 300 <= max);         /* bounded */
  assert_true(s.count * 300 >= max / 2);     /* and not emptied */
  assert_int_equal(s.seqs[s.count - 1], 1024); /* the newest kept */
  for (size_t i = 1; i < s.count; i++) assert_int_equal(s.seqs[i], s.seqs[i - 1] + 1); /* no hole */
  /* What the store holds is bounded too (a few slots of slack). */
  uint8_t *data = NULL;
  size_t len = 0, total = 0;
  char key[64];
  for (int slot = 0; slot < EP_NODE_LOG_SLOTS; slot++) {
    snprintf(key, sizeof key, "logs/%s/%03d", HOST_A, slot);
    if (ep_inventory_load_raw(t->inv, key, &data, &len, NULL) == 0) total += len;
    free(data);
    data = NULL;
  }
  assert_true(total <= max + max / 8);
}

typedef struct log_events {
  int count;
  uint64_t next_line;
} log_events;

static int count_log_events(void *data, const ep_inv_event *e) {
  log_events *l = data;
  if (e->resource_case == EDGEPROV__V1__EVENT__RESOURCE_LOG && e->log && strcmp(e->log->host_uuid, HOST_A) == 0) {
    l->count++;
    l->next_line = e->log->next_line;
  }
  return 0;
}

static void an_append_is_an_event_and_the_log_goes_with_its_host(void **state) {
  tu_site *t = *state;
  uint64_t before = 0;
  assert_int_equal(ep_inventory_revision(t->inv, &before), 0);
  char *lines[] = {"one", "two"};
  assert_int_equal(ep_node_log_append(t->inv, HOST_A, 1, 0, "disk.erase", lines, 2, EP_CONFIG_LOG_MAX_BYTES_DEFAULT, NULL), 0);
  log_events l = {0};
  assert_int_equal(ep_inventory_events(t->inv, before, 100, count_log_events, &l), 0);
  assert_int_equal(l.count, 1);
  assert_int_equal(l.next_line, 3);
  assert_int_equal(ep_node_log_delete(t->inv, HOST_A), 0);
  seen s = {0};
  assert_int_equal(ep_node_log_read(t->inv, HOST_A, 0, 0, 0, keep, &s, NULL), 0);
  assert_int_equal(s.count, 0);
  assert_int_equal(ep_node_log_delete(t->inv, HOST_A), 0); /* again: nothing to do */
  assert_int_equal(ep_node_log_append(t->inv, "not-a-uuid", 1, 0, "x", lines, 2, EP_CONFIG_LOG_MAX_BYTES_DEFAULT, NULL),
                   EP_EINVAL);
}

/* A full ring of the default size: more lines than one read returns, a delete of more keys
 * than one transaction holds, a large append on the smallest ring, and a secret spanning lines. */
static void a_full_ring_reads_in_pages_and_deletes_whole(void **state) {
  tu_site *t = *state;
  char text[501];
  memset(text, 'y', 500);
  text[500] = '\0';
  char **lines = calloc(2200, sizeof *lines);
  for (int i = 0; i < 2200; i++) lines[i] = text;
  assert_int_equal(ep_node_log_append(t->inv, HOST_A, 1, 0, "image.stream", lines, 2200, EP_CONFIG_LOG_MAX_BYTES_DEFAULT, NULL),
                   0);
  seen s = {0};
  ep_node_log_head head;
  assert_int_equal(ep_node_log_read(t->inv, HOST_A, 0, 0, 0, keep, &s, &head), 0);
  assert_int_equal(s.count, EP_NODE_LOG_READ_MAX + 1); /* a page and one more: more follow */
  assert_int_equal(head.next_line, 2201);
  assert_true(head.slot_seq > EP_NODE_LOG_SLOTS); /* the ring went round */
  seen rest = {0};
  assert_int_equal(ep_node_log_read(t->inv, HOST_A, s.seqs[EP_NODE_LOG_READ_MAX - 1], 0, 0, keep, &rest, NULL), 0);
  assert_true(rest.count > 0);
  assert_int_equal(rest.seqs[rest.count - 1], 2200); /* the newest line is reachable */

  assert_int_equal(ep_node_log_delete(t->inv, HOST_A), 0);
  char key[64];
  uint8_t *data = NULL;
  size_t len = 0;
  for (int slot = 0; slot < EP_NODE_LOG_SLOTS; slot++) {
    snprintf(key, sizeof key, "logs/%s/%03d", HOST_A, slot);
    assert_int_equal(ep_inventory_load_raw(t->inv, key, &data, &len, NULL), EP_ENOENT);
  }
  /* The smallest ring takes a boot log's 256 long lines in one call. */
  assert_int_equal(ep_node_log_append(t->inv, HOST_B, 0, 0, "boot log", lines, 256, EP_CONFIG_LOG_MAX_BYTES_MIN, NULL), 0);
  free(lines);
  /* A private key logged line by line is masked whole. */
  char *pem[] = {"-----BEGIN PRIVATE KEY-----", "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC", "-----END PRIVATE KEY-----",
                 "", "after the key"};
  assert_int_equal(ep_node_log_append(t->inv, HOST_A, 2, 0, "file.write", pem, 5, EP_CONFIG_LOG_MAX_BYTES_DEFAULT, NULL), 0);
  seen k = {0};
  assert_int_equal(ep_node_log_read(t->inv, HOST_A, 0, 2, 0, keep, &k, NULL), 0);
  assert_true(k.count >= 1);
  for (size_t i = 0; i < k.count && i < 8; i++) assert_null(strstr(k.texts[i], "MIIEvQ"));
  assert_non_null(strstr(k.texts[k.count - 1], "after the key")); /* and the empty line dropped */
  assert_int_equal(tu_grep_tree(t->dir, "MIIEvQIBADAN"), 1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(lines_are_kept_in_order_by_run_and_read_after_a_line, setup, teardown),
      cmocka_unit_test_setup_teardown(secrets_are_redacted_before_they_are_stored, setup, teardown),
      cmocka_unit_test_setup_teardown(a_log_is_bounded_and_the_oldest_lines_go_first, setup, teardown),
      cmocka_unit_test_setup_teardown(an_append_is_an_event_and_the_log_goes_with_its_host, setup, teardown),
      cmocka_unit_test_setup_teardown(a_full_ring_reads_in_pages_and_deletes_whole, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
