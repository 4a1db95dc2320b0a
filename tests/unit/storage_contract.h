/* The storage contract suite: what sdk/include/edgeprov/storage.h promises, run once per
 * backend (test_storage_sqlite, test_storage_postgres) on the real plugin loaded through the
 * core. A backend says how to ready an empty store and which settings its plugin needs. */
#ifndef EP_TEST_STORAGE_CONTRACT_H
#define EP_TEST_STORAGE_CONTRACT_H

#include <stddef.h>
#include <stdint.h>

#include <edgeprov/storage.h>

#include "runtime/host_services.h"
#include "runtime/site.h"

typedef struct sc_backend {
  const char *plugin; /* the plugin's ID: "storage-sqlite" */
  /* Readies an empty store for a site whose data directory is dir (fresh): 0, or -1. NULL:
   * nothing to do. */
  int (*prepare)(const char *dir);
  /* Writes the plugin's settings section for dir into buf ("" when it needs none). NULL:
   * none. */
  void (*settings)(const char *dir, char *buf, size_t size);
  /* Asserts what the backend keeps in dir is as it should be (file modes), while the store
   * is open. NULL: nothing to check. */
  void (*check_dir)(const char *dir);
  /* How late, at most, a wait may see a commit of another instance of the store (another
   * process or replica): a backend that cannot be told polls. */
  int other_writer_ms;
} sc_backend;

/* Chooses the backend the helpers below open; sc_run does it too. */
void sc_use(const sc_backend *backend);

/* Runs the contract tests on backend; returns the number of failures. */
int sc_run(const sc_backend *backend);

/* ---- opening the store through the loader --------------------------------------------- */

typedef struct store {
  ep_site *site;
  ep_plugin *plugin;
  const ep_storage *st;
  void *inst;
} store;

/* Writes a site config for data dir dir (with extra text instead of the backend's settings
 * section when extra is not NULL) and starts the plugin. Returns 0 with s filled; the plugin
 * may still have failed (s->st NULL). */
int store_open_with(store *s, const char *dir, const char *extra);
/* Opens the store of dir and asserts it started. */
void store_open(store *s, const char *dir);
void store_close(store *s);
/* The plugin's last error message. */
const char *message(const store *s);

/* A test's store in a fresh data directory, readied by the backend. */
typedef struct fixture {
  char *dir;
  store s;
} fixture;
int setup(void **state);
int teardown(void **state);

/* ---- helpers -------------------------------------------------------------------------- */

ep_storage_op put_op(const char *key, const char *value, uint64_t expect);
ep_storage_op delete_op(const char *key, uint64_t expect);
int txn(store *s, const ep_storage_op *ops, uint32_t count, uint64_t *rev, uint32_t *failed);
/* A put or delete without expectation that must succeed; returns its revision. */
uint64_t put(store *s, const char *key, const char *value);
uint64_t del(store *s, const char *key);

typedef struct got {
  char key[EP_STORAGE_KEY_MAX + 1];
  char value[256];
  uint64_t value_len;
  uint64_t create_revision;
  uint64_t mod_revision;
} got;

int32_t copy_record(void *data, const ep_storage_record *rec);
int get(store *s, const char *key, got *g);
uint64_t revision(store *s);

#define PAGE_MAX 64

typedef struct page {
  got items[PAGE_MAX];
  int count;
  int stop_after; /* 0: never */
} page;

int32_t collect_record(void *data, const ep_storage_record *rec);

typedef struct change_log {
  struct {
    uint64_t revision;
    uint32_t kind;
    char key[64];
    char value[64];
    int has_value;
  } items[PAGE_MAX];
  int count;
} change_log;

int32_t collect_change(void *data, const ep_storage_change *c);
int changes(store *s, uint64_t after, uint32_t limit, change_log *log);
int32_t count_only(void *data, const ep_storage_record *rec);
int compare_u64(const void *x, const void *y);

#endif
