/* The storage contract suite, see storage_contract.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

#include "storage_contract.h"
#include "testutil.h"

/* ---- opening the store through the loader --------------------------------------------- */

static const sc_backend *backend;

void sc_use(const sc_backend *b) { backend = b; }

int store_open_with(store *s, const char *dir, const char *extra) {
  memset(s, 0, sizeof *s);
  char section[2048] = "";
  if (!extra && backend->settings) backend->settings(dir, section, sizeof section);
  char text[4096];
  snprintf(text, sizeof text,
           "paths = { data = \"%s\"; plugins = [ \"%s\" ]; };\n"
           "plugins = { enabled = [ \"%s\" ]; };\n%s",
           dir, EP_PLUGIN_OUTPUT_DIR, backend->plugin, extra ? extra : section);
  char *path = tu_write(dir, "site.conf", text);
  ep_diags diags = {0};
  int r = ep_site_open(&s->site, path, &diags);
  free(path);
  if (diags.errors) ep_diags_print(&diags, stderr);
  ep_diags_clear(&diags);
  if (r < 0) return r;
  if ((r = ep_plugins_start(s->site->plugins, s->site->config)) < 0) return r;
  s->st = ep_plugins_capability(s->site->plugins, EP_CAP_STORAGE, &s->plugin);
  if (!s->plugin) s->plugin = ep_plugins_find(s->site->plugins, backend->plugin);
  if (s->st) s->inst = s->plugin->instance;
  return 0;
}

void store_open(store *s, const char *dir) {
  assert_int_equal(store_open_with(s, dir, NULL), 0);
  assert_non_null(s->st);
  assert_true(s->st->struct_size >= sizeof(ep_storage));
}

void store_close(store *s) {
  ep_site_free(s->site);
  memset(s, 0, sizeof *s);
}

const char *message(const store *s) { return ep_ctx_error(&s->plugin->ctx, ""); }

int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  f->dir = tu_mkdtemp();
  if (!f->dir || (backend->prepare && backend->prepare(f->dir) < 0)) return -1;
  if (store_open_with(&f->s, f->dir, NULL) < 0 || !f->s.st) return -1;
  *state = f;
  return 0;
}

int teardown(void **state) {
  fixture *f = *state;
  store_close(&f->s);
  tu_rmdir(f->dir);
  free(f);
  return 0;
}

/* ---- helpers -------------------------------------------------------------------------- */

ep_storage_op put_op(const char *key, const char *value, uint64_t expect) {
  return (ep_storage_op){.struct_size = sizeof(ep_storage_op),
                         .kind = EP_STORAGE_PUT,
                         .key = key,
                         .value = (const uint8_t *)value,
                         .value_len = strlen(value),
                         .expect_mod_revision = expect};
}

ep_storage_op delete_op(const char *key, uint64_t expect) {
  return (ep_storage_op){.struct_size = sizeof(ep_storage_op),
                         .kind = EP_STORAGE_DELETE,
                         .key = key,
                         .expect_mod_revision = expect};
}

int txn(store *s, const ep_storage_op *ops, uint32_t count, uint64_t *rev, uint32_t *failed) {
  return s->st->txn(s->inst, ops, count, sizeof(ep_storage_op), rev, failed);
}

uint64_t put(store *s, const char *key, const char *value) {
  ep_storage_op op = put_op(key, value, EP_STORAGE_EXPECT_ANY);
  uint64_t rev = 0;
  assert_int_equal(txn(s, &op, 1, &rev, NULL), 0);
  return rev;
}

uint64_t del(store *s, const char *key) {
  ep_storage_op op = delete_op(key, EP_STORAGE_EXPECT_ANY);
  uint64_t rev = 0;
  assert_int_equal(txn(s, &op, 1, &rev, NULL), 0);
  return rev;
}

int32_t copy_record(void *data, const ep_storage_record *rec) {
  got *g = data;
  snprintf(g->key, sizeof g->key, "%s", rec->key);
  g->value_len = rec->value_len;
  size_t n = rec->value_len < sizeof g->value - 1 ? (size_t)rec->value_len : sizeof g->value - 1;
  memcpy(g->value, rec->value, n);
  g->value[n] = '\0';
  g->create_revision = rec->create_revision;
  g->mod_revision = rec->mod_revision;
  return 0;
}

int get(store *s, const char *key, got *g) {
  memset(g, 0, sizeof *g);
  return s->st->get(s->inst, key, copy_record, g);
}

uint64_t revision(store *s) {
  uint64_t rev = UINT64_MAX;
  assert_int_equal(s->st->revision(s->inst, &rev), 0);
  return rev;
}

int32_t collect_record(void *data, const ep_storage_record *rec) {
  page *p = data;
  assert_true(p->count < PAGE_MAX);
  copy_record(&p->items[p->count++], rec);
  return p->stop_after && p->count >= p->stop_after;
}

int32_t collect_change(void *data, const ep_storage_change *c) {
  change_log *log = data;
  assert_true(log->count < PAGE_MAX);
  assert_true(c->struct_size >= sizeof(ep_storage_change));
  log->items[log->count].revision = c->revision;
  log->items[log->count].kind = c->kind;
  snprintf(log->items[log->count].key, 64, "%s", c->key);
  log->items[log->count].has_value = c->value != NULL;
  if (c->value) snprintf(log->items[log->count].value, 64, "%.*s", (int)c->value_len, (const char *)c->value);
  log->count++;
  return 0;
}

int changes(store *s, uint64_t after, uint32_t limit, change_log *log) {
  memset(log, 0, sizeof *log);
  return s->st->changes(s->inst, after, limit, collect_change, log);
}

/* ---- tests ---------------------------------------------------------------------------- */

static void put_get_and_revisions(void **state) {
  store *s = &((fixture *)*state)->s;
  got g;
  assert_int_equal(revision(s), 0);
  assert_int_equal(put(s, "a", "one"), 1);
  assert_int_equal(get(s, "a", &g), 0);
  assert_string_equal(g.key, "a");
  assert_string_equal(g.value, "one");
  assert_int_equal(g.value_len, 3);
  assert_int_equal(g.create_revision, 1);
  assert_int_equal(g.mod_revision, 1);

  assert_int_equal(put(s, "b", "bee"), 2);
  assert_int_equal(put(s, "a", "two"), 3);
  assert_int_equal(get(s, "a", &g), 0);
  assert_string_equal(g.value, "two");
  assert_int_equal(g.create_revision, 1);
  assert_int_equal(g.mod_revision, 3);

  assert_int_equal(put(s, "empty", ""), 4);
  assert_int_equal(get(s, "empty", &g), 0);
  assert_int_equal(g.value_len, 0);
  assert_int_equal(revision(s), 4);

  assert_int_equal(get(s, "missing", &g), EP_ENOENT);
  assert_string_equal(message(s), "key 'missing' not found");

  /* Binary values come back byte for byte, NULs included. */
  const uint8_t bin[] = {0, 1, 2, 0xff, 0};
  ep_storage_op op = {.struct_size = sizeof op, .kind = EP_STORAGE_PUT, .key = "bin", .value = bin,
                      .value_len = sizeof bin, .expect_mod_revision = EP_STORAGE_EXPECT_ANY};
  assert_int_equal(txn(s, &op, 1, NULL, NULL), 0);
  assert_int_equal(get(s, "bin", &g), 0);
  assert_int_equal(g.value_len, sizeof bin);
  assert_memory_equal(g.value, bin, sizeof bin);
}

static void compare_and_set(void **state) {
  store *s = &((fixture *)*state)->s;
  uint64_t rev = 0;
  uint32_t failed = 99;
  got g;
  ep_storage_op create = put_op("k", "v1", EP_STORAGE_EXPECT_ABSENT);
  assert_int_equal(txn(s, &create, 1, &rev, &failed), 0);
  assert_int_equal(rev, 1);

  /* Creating it again conflicts; nothing changes. */
  rev = 77;
  assert_int_equal(txn(s, &create, 1, &rev, &failed), EP_ECONFLICT);
  assert_int_equal(failed, 0);
  assert_int_equal(rev, 77);
  assert_string_equal(message(s), "op 0: key 'k' exists (mod_revision 1), expected absent");

  ep_storage_op update = put_op("k", "v2", 1);
  assert_int_equal(txn(s, &update, 1, &rev, &failed), 0);
  assert_int_equal(rev, 2);
  ep_storage_op stale = put_op("k", "v3", 1);
  assert_int_equal(txn(s, &stale, 1, &rev, &failed), EP_ECONFLICT);
  assert_string_equal(message(s), "op 0: key 'k' has mod_revision 2, expected 1");

  /* A conflict in op 2 leaves ops 0 and 1 unwritten. */
  ep_storage_op ops[] = {put_op("x", "x", EP_STORAGE_EXPECT_ANY), put_op("y", "y", EP_STORAGE_EXPECT_ABSENT),
                         put_op("k", "v4", 1)};
  failed = 99;
  assert_int_equal(txn(s, ops, 3, &rev, &failed), EP_ECONFLICT);
  assert_int_equal(failed, 2);
  assert_int_equal(get(s, "x", &g), EP_ENOENT);
  assert_int_equal(get(s, "y", &g), EP_ENOENT);
  assert_int_equal(get(s, "k", &g), 0);
  assert_string_equal(g.value, "v2");
  assert_int_equal(revision(s), 2);

  ep_storage_op ghost = put_op("ghost", "g", 5);
  assert_int_equal(txn(s, &ghost, 1, &rev, &failed), EP_ECONFLICT);
  assert_string_equal(message(s), "op 0: key 'ghost' does not exist, expected mod_revision 5");

  /* A conditional delete. */
  ep_storage_op wrong = delete_op("k", 1), right = delete_op("k", 2);
  assert_int_equal(txn(s, &wrong, 1, &rev, &failed), EP_ECONFLICT);
  assert_int_equal(txn(s, &right, 1, &rev, &failed), 0);
  assert_int_equal(rev, 3);
  assert_int_equal(get(s, "k", &g), EP_ENOENT);
}

static void delete_and_multi_op_atomicity(void **state) {
  store *s = &((fixture *)*state)->s;
  got g;
  uint64_t rev = 0;
  ep_storage_op three[] = {put_op("m/1", "1", EP_STORAGE_EXPECT_ABSENT), put_op("m/2", "2", EP_STORAGE_EXPECT_ANY),
                           put_op("m/3", "3", EP_STORAGE_EXPECT_ABSENT)};
  assert_int_equal(txn(s, three, 3, &rev, NULL), 0);
  assert_int_equal(rev, 1);
  for (int i = 1; i <= 3; i++) {
    char key[8];
    snprintf(key, sizeof key, "m/%d", i);
    assert_int_equal(get(s, key, &g), 0);
    assert_int_equal(g.create_revision, 1);
    assert_int_equal(g.mod_revision, 1);
  }
  ep_storage_op mixed[] = {delete_op("m/1", 1), put_op("m/2", "two", 1), put_op("m/4", "4", EP_STORAGE_EXPECT_ABSENT)};
  assert_int_equal(txn(s, mixed, 3, &rev, NULL), 0);
  assert_int_equal(rev, 2);
  assert_int_equal(get(s, "m/1", &g), EP_ENOENT);
  assert_int_equal(get(s, "m/2", &g), 0);
  assert_int_equal(g.create_revision, 1);
  assert_int_equal(g.mod_revision, 2);
  assert_int_equal(get(s, "m/4", &g), 0);
  assert_int_equal(g.create_revision, 2);

  /* Deleting a missing key commits (a new revision) and logs nothing. */
  assert_int_equal(del(s, "m/none"), 3);
  change_log log;
  assert_int_equal(changes(s, 2, 100, &log), 0);
  assert_int_equal(log.count, 0);

  /* A deleted key comes back with a new create_revision. */
  assert_int_equal(put(s, "m/1", "again"), 4);
  assert_int_equal(get(s, "m/1", &g), 0);
  assert_int_equal(g.create_revision, 4);
}

static void list_with_prefix_and_paging(void **state) {
  store *s = &((fixture *)*state)->s;
  put(s, "a", "before");
  for (int i = 0; i < 25; i++) {
    char key[16];
    snprintf(key, sizeof key, "host/%02d", i);
    put(s, key, key);
  }
  put(s, "host0", "after the prefix");
  put(s, "hosu", "after");
  uint64_t now = revision(s);

  page p = {0};
  uint64_t at = 0;
  int32_t more = -1;
  char after[EP_STORAGE_KEY_MAX + 1] = "";
  int seen = 0;
  int pages = 0;
  for (;;) {
    memset(&p, 0, sizeof p);
    assert_int_equal(s->st->list(s->inst, "host/", after, 10, collect_record, &p, &at, &more), 0);
    assert_int_equal(at, now);
    for (int i = 0; i < p.count; i++) {
      char want[16];
      snprintf(want, sizeof want, "host/%02d", seen + i);
      assert_string_equal(p.items[i].key, want);
      assert_string_equal(p.items[i].value, want);
      assert_int_equal(p.items[i].mod_revision, 2 + seen + i);
    }
    seen += p.count;
    pages++;
    if (!more) break;
    snprintf(after, sizeof after, "%s", p.items[p.count - 1].key);
  }
  assert_int_equal(seen, 25);
  assert_int_equal(pages, 3);
  assert_int_equal(p.count, 5);

  /* Exactly a full last page: more is 0. */
  memset(&p, 0, sizeof p);
  assert_int_equal(s->st->list(s->inst, "host/", "host/14", 10, collect_record, &p, &at, &more), 0);
  assert_int_equal(p.count, 10);
  assert_int_equal(more, 0);

  /* start_after before the prefix starts at the prefix; after it, the page is empty. */
  memset(&p, 0, sizeof p);
  assert_int_equal(s->st->list(s->inst, "host/", "a", 2, collect_record, &p, NULL, &more), 0);
  assert_int_equal(p.count, 2);
  assert_string_equal(p.items[0].key, "host/00");
  assert_int_equal(more, 1);
  memset(&p, 0, sizeof p);
  assert_int_equal(s->st->list(s->inst, "host/", "host/99", 10, collect_record, &p, NULL, &more), 0);
  assert_int_equal(p.count, 0);
  assert_int_equal(more, 0);

  /* The empty prefix lists everything in bytewise order. */
  memset(&p, 0, sizeof p);
  assert_int_equal(s->st->list(s->inst, "", "", 100, collect_record, &p, NULL, &more), 0);
  assert_int_equal(p.count, 28);
  assert_string_equal(p.items[0].key, "a");
  assert_string_equal(p.items[26].key, "host0");
  assert_string_equal(p.items[27].key, "hosu");
  assert_int_equal(more, 0);

  /* A visitor may stop early; the call still succeeds and says more remain. */
  memset(&p, 0, sizeof p);
  p.stop_after = 3;
  assert_int_equal(s->st->list(s->inst, "host/", "", 10, collect_record, &p, NULL, &more), 0);
  assert_int_equal(p.count, 3);
  assert_int_equal(more, 1);
}

static void changes_in_revision_order(void **state) {
  store *s = &((fixture *)*state)->s;
  put(s, "a", "A");
  put(s, "b", "B");
  ep_storage_op ops[] = {put_op("c", "C", EP_STORAGE_EXPECT_ABSENT), delete_op("a", 1)};
  assert_int_equal(txn(s, ops, 2, NULL, NULL), 0);
  del(s, "b");

  change_log log;
  assert_int_equal(changes(s, 0, 100, &log), 0);
  assert_int_equal(log.count, 5);
  const struct {
    uint64_t revision;
    uint32_t kind;
    const char *key;
    const char *value;
  } want[] = {{1, EP_STORAGE_PUT, "a", "A"},
              {2, EP_STORAGE_PUT, "b", "B"},
              {3, EP_STORAGE_PUT, "c", "C"},
              {3, EP_STORAGE_DELETE, "a", NULL},
              {4, EP_STORAGE_DELETE, "b", NULL}};
  for (int i = 0; i < 5; i++) {
    assert_int_equal(log.items[i].revision, want[i].revision);
    assert_int_equal(log.items[i].kind, want[i].kind);
    assert_string_equal(log.items[i].key, want[i].key);
    assert_int_equal(log.items[i].has_value, want[i].value != NULL);
    if (want[i].value) assert_string_equal(log.items[i].value, want[i].value);
  }

  assert_int_equal(changes(s, 2, 100, &log), 0);
  assert_int_equal(log.count, 3);
  assert_int_equal(log.items[0].revision, 3);
  assert_int_equal(changes(s, 4, 100, &log), 0);
  assert_int_equal(log.count, 0);

  /* limit counts changes, but a page never splits a transaction. */
  assert_int_equal(changes(s, 0, 1, &log), 0);
  assert_int_equal(log.count, 1);
  assert_int_equal(changes(s, 2, 1, &log), 0);
  assert_int_equal(log.count, 2);
  assert_int_equal(log.items[1].revision, 3);
  assert_int_equal(changes(s, 0, 3, &log), 0);
  assert_int_equal(log.count, 4);
}

static void compaction(void **state) {
  store *s = &((fixture *)*state)->s;
  for (int i = 1; i <= 5; i++) {
    char key[8];
    snprintf(key, sizeof key, "k%d", i);
    put(s, key, "v");
  }
  assert_int_equal(s->st->compact(s->inst, 3), 0);
  change_log log;
  assert_int_equal(changes(s, 2, 100, &log), 0);
  assert_int_equal(log.count, 3);
  assert_int_equal(log.items[0].revision, 3);
  assert_int_equal(changes(s, 1, 100, &log), EP_ECOMPACTED);
  assert_string_equal(message(s), "after_revision 1 is compacted: the change log starts after revision 2");
  assert_int_equal(changes(s, 0, 100, &log), EP_ECOMPACTED);

  /* Compacting less than before is a no-op; compacting the future is refused. */
  assert_int_equal(s->st->compact(s->inst, 2), 0);
  assert_int_equal(changes(s, 2, 100, &log), 0);
  assert_int_equal(s->st->compact(s->inst, 7), EP_ERANGE);
  assert_string_equal(message(s), "before_revision 7 is past the store revision 5");
  assert_int_equal(s->st->compact(s->inst, 6), 0);
  assert_int_equal(changes(s, 5, 100, &log), 0);
  assert_int_equal(log.count, 0);
  assert_int_equal(changes(s, 4, 100, &log), EP_ECOMPACTED);

  /* Records stay; only the log shrinks. */
  got g;
  assert_int_equal(get(s, "k1", &g), 0);
  assert_int_equal(revision(s), 5);
}

static void validation_errors_name_the_field(void **state) {
  store *s = &((fixture *)*state)->s;
  got g;
  char long_key[EP_STORAGE_KEY_MAX + 2];
  memset(long_key, 'k', sizeof long_key - 1);
  long_key[sizeof long_key - 1] = '\0';
  char max_key[EP_STORAGE_KEY_MAX + 1];
  memset(max_key, 'k', sizeof max_key - 1);
  max_key[sizeof max_key - 1] = '\0';

  assert_int_equal(s->st->get(s->inst, NULL, copy_record, &g), EP_EINVAL);
  assert_string_equal(message(s), "key is NULL");
  assert_int_equal(get(s, "", &g), EP_EINVAL);
  assert_string_equal(message(s), "key is empty");
  assert_int_equal(get(s, long_key, &g), EP_EINVAL);
  assert_string_equal(message(s), "key is longer than 512 bytes");
  assert_int_equal(get(s, "bad\xff", &g), EP_EINVAL);
  assert_string_equal(message(s), "key is not valid UTF-8");
  assert_int_equal(get(s, "\xc0\xaf", &g), EP_EINVAL); /* overlong '/' */
  assert_int_equal(get(s, max_key, &g), EP_ENOENT);     /* 512 bytes is fine */
  assert_int_equal(get(s, "h\xc3\xb4te", &g), EP_ENOENT);

  ep_storage_op ops[EP_STORAGE_TXN_OPS_MAX + 1];
  for (int i = 0; i <= EP_STORAGE_TXN_OPS_MAX; i++) ops[i] = put_op("same", "v", EP_STORAGE_EXPECT_ANY);
  uint64_t rev = 0;
  assert_int_equal(s->st->txn(s->inst, NULL, 1, sizeof(ep_storage_op), &rev, NULL), EP_EINVAL);
  assert_string_equal(message(s), "ops is NULL");
  assert_int_equal(txn(s, ops, 0, &rev, NULL), EP_EINVAL);
  assert_string_equal(message(s), "count 0 is out of range [1, 128]");
  assert_int_equal(txn(s, ops, EP_STORAGE_TXN_OPS_MAX + 1, &rev, NULL), EP_EINVAL);
  assert_string_equal(message(s), "count 129 is out of range [1, 128]");
  assert_int_equal(s->st->txn(s->inst, ops, 1, 8, &rev, NULL), EP_EINVAL);
  assert_non_null(strstr(message(s), "op_size 8 is smaller than ep_storage_op of ABI 1.0"));

  ep_storage_op three[] = {put_op("a", "v", EP_STORAGE_EXPECT_ANY), put_op("b", "v", EP_STORAGE_EXPECT_ANY),
                           put_op("c", "v", EP_STORAGE_EXPECT_ANY)};
  three[2].kind = 7;
  assert_int_equal(txn(s, three, 3, &rev, NULL), EP_EINVAL);
  assert_string_equal(message(s), "op 2: unknown kind 7 (expected EP_STORAGE_PUT or EP_STORAGE_DELETE)");
  three[2].kind = EP_STORAGE_PUT;
  three[1].key = long_key;
  assert_int_equal(txn(s, three, 3, &rev, NULL), EP_EINVAL);
  assert_string_equal(message(s), "op 1: key is longer than 512 bytes");
  three[1].key = NULL;
  assert_int_equal(txn(s, three, 3, &rev, NULL), EP_EINVAL);
  assert_string_equal(message(s), "op 1: key is NULL");
  three[1].key = "";
  assert_int_equal(txn(s, three, 3, &rev, NULL), EP_EINVAL);
  assert_string_equal(message(s), "op 1: key is empty");
  three[1].key = "b";
  three[0].value_len = EP_STORAGE_VALUE_MAX + 1; /* refused before the value is read */
  assert_int_equal(txn(s, three, 3, &rev, NULL), EP_EINVAL);
  assert_string_equal(message(s), "op 0: value of 4194305 bytes is longer than 4194304 bytes");
  three[0].value = NULL;
  three[0].value_len = 5;
  assert_int_equal(txn(s, three, 3, &rev, NULL), EP_EINVAL);
  assert_string_equal(message(s), "op 0: value is NULL but value_len is 5");
  three[0] = put_op("a", "v", EP_STORAGE_EXPECT_ANY);
  three[2].key = "a";
  assert_int_equal(txn(s, three, 3, &rev, NULL), EP_EINVAL);
  assert_string_equal(message(s), "op 2: key 'a' repeats op 0 (keys of a transaction must be distinct)");

  page p = {0};
  int32_t more = 0;
  assert_int_equal(s->st->list(s->inst, "", "", 0, collect_record, &p, NULL, &more), EP_EINVAL);
  assert_string_equal(message(s), "limit 0 is out of range [1, 10000]");
  assert_int_equal(s->st->list(s->inst, "", "", 10001, collect_record, &p, NULL, &more), EP_EINVAL);
  assert_string_equal(message(s), "limit 10001 is out of range [1, 10000]");
  assert_int_equal(s->st->list(s->inst, NULL, "", 10, collect_record, &p, NULL, &more), EP_EINVAL);
  assert_string_equal(message(s), "prefix is NULL (use \"\" for none)");
  assert_int_equal(s->st->list(s->inst, "", long_key, 10, collect_record, &p, NULL, &more), EP_EINVAL);
  assert_string_equal(message(s), "start_after is longer than 512 bytes");
  change_log log;
  assert_int_equal(changes(s, 0, 0, &log), EP_EINVAL);
  assert_string_equal(message(s), "limit 0 is out of range [1, 10000]");

  /* Nothing was written by any refused call. */
  assert_int_equal(revision(s), 0);

  /* A caller built against a later minor passes a larger stride. */
  struct bigger_op {
    ep_storage_op op;
    uint64_t appended;
  } big[2] = {{put_op("s/1", "one", EP_STORAGE_EXPECT_ABSENT), 42},
              {put_op("s/2", "two", EP_STORAGE_EXPECT_ABSENT), 43}};
  assert_int_equal(s->st->txn(s->inst, &big[0].op, 2, sizeof big[0], &rev, NULL), 0);
  assert_int_equal(get(s, "s/2", &g), 0);
  assert_string_equal(g.value, "two");

  /* The largest value round-trips. */
  uint8_t *value = malloc(EP_STORAGE_VALUE_MAX);
  assert_non_null(value);
  for (uint32_t i = 0; i < EP_STORAGE_VALUE_MAX; i++) value[i] = (uint8_t)(i * 7);
  ep_storage_op huge = {.struct_size = sizeof huge, .kind = EP_STORAGE_PUT, .key = "huge", .value = value,
                        .value_len = EP_STORAGE_VALUE_MAX, .expect_mod_revision = EP_STORAGE_EXPECT_ANY};
  assert_int_equal(txn(s, &huge, 1, &rev, NULL), 0);
  assert_int_equal(get(s, "huge", &g), 0);
  assert_int_equal(g.value_len, EP_STORAGE_VALUE_MAX);
  free(value);
}

static void reopen_keeps_data_and_revision(void **state) {
  fixture *f = *state;
  store *s = &f->s;
  put(s, "keep/1", "one");
  put(s, "keep/2", "two");
  del(s, "keep/1");
  assert_int_equal(s->st->compact(s->inst, 2), 0);
  if (backend->check_dir) backend->check_dir(f->dir);
  store_close(s);

  store_open(s, f->dir);
  assert_int_equal(revision(s), 3);
  got g;
  assert_int_equal(get(s, "keep/2", &g), 0);
  assert_string_equal(g.value, "two");
  assert_int_equal(g.mod_revision, 2);
  assert_int_equal(get(s, "keep/1", &g), EP_ENOENT);
  change_log log;
  assert_int_equal(changes(s, 0, 10, &log), EP_ECOMPACTED);
  assert_int_equal(changes(s, 1, 10, &log), 0);
  assert_int_equal(log.count, 2);
  assert_int_equal(put(s, "keep/3", "three"), 4);
  if (backend->check_dir) backend->check_dir(f->dir);
}

/* ---- concurrency: group commit --------------------------------------------------------- */

#define WRITERS 8
#define TXNS_PER_WRITER 200

typedef struct writer_arg {
  store *s;
  int id;
  uint64_t revs[TXNS_PER_WRITER];
  int failures;
} writer_arg;

static void *writer_thread(void *p) {
  writer_arg *a = p;
  for (int i = 0; i < TXNS_PER_WRITER; i++) {
    char key[32], value[32];
    snprintf(key, sizeof key, "c/%d/%03d", a->id, i);
    snprintf(value, sizeof value, "v%d.%d", a->id, i);
    ep_storage_op op = put_op(key, value, EP_STORAGE_EXPECT_ABSENT);
    if (a->s->st->txn(a->s->inst, &op, 1, sizeof op, &a->revs[i], NULL) != 0) a->failures++;
  }
  return NULL;
}

typedef struct reader_arg {
  store *s;
  atomic_int *stop;
  int reads;
  int failures;
} reader_arg;

int32_t count_only(void *data, const ep_storage_record *rec) {
  (void)rec;
  ++*(int *)data;
  return 0;
}

/* Reads while the writers commit: every read must succeed without waiting for them. */
static void *reader_thread(void *p) {
  reader_arg *a = p;
  while (!atomic_load(a->stop)) {
    int n = 0;
    uint64_t rev = 0;
    int32_t more = 0;
    if (a->s->st->list(a->s->inst, "c/", "", 100, count_only, &n, &rev, &more) != 0) a->failures++;
    if (a->s->st->revision(a->s->inst, &rev) != 0) a->failures++;
    a->reads++;
  }
  return NULL;
}

int compare_u64(const void *x, const void *y) {
  uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
  return a < b ? -1 : a > b;
}

static void concurrent_transactions(void **state) {
  store *s = &((fixture *)*state)->s;
  static writer_arg writers[WRITERS];
  pthread_t threads[WRITERS], reader;
  atomic_int stop = 0;
  reader_arg r = {.s = s, .stop = &stop};
  assert_int_equal(pthread_create(&reader, NULL, reader_thread, &r), 0);
  for (int i = 0; i < WRITERS; i++) {
    writers[i] = (writer_arg){.s = s, .id = i};
    assert_int_equal(pthread_create(&threads[i], NULL, writer_thread, &writers[i]), 0);
  }
  for (int i = 0; i < WRITERS; i++) pthread_join(threads[i], NULL);
  atomic_store(&stop, 1);
  pthread_join(reader, NULL);
  assert_int_equal(r.failures, 0);
  assert_true(r.reads > 0);

  /* Every transaction was acknowledged with its own revision, 1..N without gaps. */
  static uint64_t all[WRITERS * TXNS_PER_WRITER];
  for (int i = 0; i < WRITERS; i++) {
    assert_int_equal(writers[i].failures, 0);
    memcpy(&all[i * TXNS_PER_WRITER], writers[i].revs, sizeof writers[i].revs);
  }
  qsort(all, WRITERS * TXNS_PER_WRITER, sizeof all[0], compare_u64);
  for (int i = 0; i < WRITERS * TXNS_PER_WRITER; i++) assert_int_equal(all[i], (uint64_t)i + 1);
  assert_int_equal(revision(s), WRITERS * TXNS_PER_WRITER);

  /* And every key is there with the revision its writer was told. */
  for (int w = 0; w < WRITERS; w++)
    for (int i = 0; i < TXNS_PER_WRITER; i++) {
      char key[32], value[32];
      snprintf(key, sizeof key, "c/%d/%03d", w, i);
      snprintf(value, sizeof value, "v%d.%d", w, i);
      got g;
      assert_int_equal(get(s, key, &g), 0);
      assert_string_equal(g.value, value);
      assert_int_equal(g.mod_revision, writers[w].revs[i]);
    }
  int n = 0;
  int32_t more = 1;
  assert_int_equal(s->st->list(s->inst, "c/", "", 10000, count_only, &n, NULL, &more), 0);
  assert_int_equal(n, WRITERS * TXNS_PER_WRITER);
  assert_int_equal(more, 0);
}

/* ---- waiting for a revision (ABI 1.4) ------------------------------------------------- */

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

typedef struct waiter {
  store *s;
  uint64_t after, seen;
  uint32_t timeout_ms;
  int32_t result;
  double started, returned;
} waiter;

static void *wait_thread(void *p) {
  waiter *w = p;
  w->started = now_s();
  w->result = w->s->st->wait(w->s->inst, w->after, w->timeout_ms, &w->seen);
  w->returned = now_s();
  return NULL;
}

/* Starts a waiter for a revision past the store's current one and lets it get waiting. */
static void start_waiter(store *s, waiter *w, pthread_t *thread, uint32_t timeout_ms) {
  *w = (waiter){.s = s, .after = revision(s), .timeout_ms = timeout_ms, .result = 99};
  assert_int_equal(pthread_create(thread, NULL, wait_thread, w), 0);
  usleep(150 * 1000);
}

static void wait_for_a_revision(void **state) {
  fixture *f = *state;
  store *s = &f->s;
  assert_true(EP_STORAGE_HAS(s->st, wake));
  uint64_t r1 = put(s, "w/a", "1"), seen = 0;
  /* Already past: at once, with the revision. */
  double t = now_s();
  assert_int_equal(s->st->wait(s->inst, r1 - 1, 5000, &seen), 0);
  assert_int_equal(seen, r1);
  assert_true(now_s() - t < 0.2);
  /* Nothing comes: EP_ETIMEDOUT after the timeout, not before. */
  t = now_s();
  assert_int_equal(s->st->wait(s->inst, r1, 300, &seen), EP_ETIMEDOUT);
  double waited = now_s() - t;
  if (waited < 0.28 || waited > 1.5) fail_msg("a 300 ms wait took %.3f s", waited);
  /* A commit of this instance wakes a waiter at once. */
  waiter w;
  pthread_t thread;
  start_waiter(s, &w, &thread, 10000);
  uint64_t r2 = put(s, "w/b", "2");
  double committed = now_s(); /* the waiter may have returned already: late is then <= 0 */
  pthread_join(thread, NULL);
  assert_int_equal(w.result, 0);
  assert_true(w.seen >= r2);
  if (w.returned - committed > 0.3) fail_msg("the waiter saw the commit %.3f s late", w.returned - committed);
  /* wake: a wait in progress ends with EP_ECANCELED, at once; a later one is not affected. */
  start_waiter(s, &w, &thread, 10000);
  double woken = now_s();
  s->st->wake(s->inst);
  pthread_join(thread, NULL);
  assert_int_equal(w.result, EP_ECANCELED);
  if (w.returned - woken > 0.3) fail_msg("wake took %.3f s", w.returned - woken);
  assert_int_equal(s->st->wait(s->inst, r2, 100, NULL), EP_ETIMEDOUT);
}

/* Another instance of the store on the same data (another process, another replica). */
static void wait_sees_another_writer(void **state) {
  fixture *f = *state;
  store other;
  store_open(&other, f->dir);
  waiter w;
  pthread_t thread;
  start_waiter(&f->s, &w, &thread, 10000);
  uint64_t r = put(&other, "w/other", "x");
  double committed = now_s(); /* acknowledged: from here the waiter may be late */
  pthread_join(thread, NULL);
  assert_int_equal(w.result, 0);
  assert_true(w.seen >= r);
  double late = w.returned - committed;
  if (late * 1000 > backend->other_writer_ms)
    fail_msg("the waiter saw the other writer's commit %.0f ms late (at most %d)", late * 1000, backend->other_writer_ms);
  got g;
  assert_int_equal(get(&f->s, "w/other", &g), 0);
  store_close(&other);
}

/* ---- one holder per role (ABI 1.5) ----------------------------------------------------- */

static int32_t leads(store *s, const char *role) {
  int32_t leading = -1;
  assert_int_equal(s->st->lead(s->inst, role, &leading), 0);
  return leading;
}

static void one_instance_leads_a_role(void **state) {
  fixture *f = *state;
  assert_true(EP_STORAGE_HAS(f->s.st, lead));
  store other;
  store_open(&other, f->dir);
  assert_int_equal(leads(&f->s, "reconciler"), 1);
  assert_int_equal(leads(&f->s, "reconciler"), 1); /* kept */
  assert_int_equal(leads(&other, "reconciler"), 0); /* another instance holds it */
  assert_int_equal(leads(&other, "housekeeping"), 1); /* roles are independent */
  assert_int_equal(leads(&f->s, "housekeeping"), 0);
  int32_t leading = 7;
  assert_int_equal(f->s.st->lead(f->s.inst, "Not A Role", &leading), EP_EINVAL);
  assert_non_null(strstr(message(&f->s), "role 'Not A Role'"));
  assert_int_equal(leading, 7);
  /* Closing the holder releases its roles: the next instance that asks takes them (a server
   * may end the closed session a moment later: callers ask about every second). */
  store_close(&f->s);
  int32_t taken = 0;
  for (int i = 0; i < 40 && !taken; i++)
    if (!(taken = leads(&other, "reconciler"))) usleep(50 * 1000);
  assert_int_equal(taken, 1);
  store_open(&f->s, f->dir);
  assert_int_equal(leads(&f->s, "reconciler"), 0);
  assert_int_equal(leads(&f->s, "housekeeping"), 0);
  store_close(&other);
  for (int i = 0; i < 40 && !(taken = leads(&f->s, "housekeeping")); i++) usleep(50 * 1000);
  assert_int_equal(taken, 1);
}

int sc_run(const sc_backend *b) {
  sc_use(b);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(put_get_and_revisions, setup, teardown),
      cmocka_unit_test_setup_teardown(compare_and_set, setup, teardown),
      cmocka_unit_test_setup_teardown(delete_and_multi_op_atomicity, setup, teardown),
      cmocka_unit_test_setup_teardown(list_with_prefix_and_paging, setup, teardown),
      cmocka_unit_test_setup_teardown(changes_in_revision_order, setup, teardown),
      cmocka_unit_test_setup_teardown(compaction, setup, teardown),
      cmocka_unit_test_setup_teardown(validation_errors_name_the_field, setup, teardown),
      cmocka_unit_test_setup_teardown(reopen_keeps_data_and_revision, setup, teardown),
      cmocka_unit_test_setup_teardown(concurrent_transactions, setup, teardown),
      cmocka_unit_test_setup_teardown(wait_for_a_revision, setup, teardown),
      cmocka_unit_test_setup_teardown(wait_sees_another_writer, setup, teardown),
      cmocka_unit_test_setup_teardown(one_instance_leads_a_role, setup, teardown),
  };
  char name[128];
  snprintf(name, sizeof name, "storage_contract.%s", b->plugin);
  return _cmocka_run_group_tests(name, tests, sizeof tests / sizeof tests[0], NULL, NULL);
}
