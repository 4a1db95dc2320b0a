/* core: the context a plugin call runs in (ep_ctx, opaque to plugins), one per loaded plugin
 * and one per action run. A leaf: the loader, the host services and actions all use it, and
 * it knows none of them (capability lookups go through ep_capability_lookup). */
#ifndef EP_CORE_PLUGIN_CTX_H
#define EP_CORE_PLUGIN_CTX_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <edgeprov/host.h>

#include "base/error.h"
#include "base/fields.h"

struct ep_config;

/* How host->capability is answered: find returns the table of the first active provider of
 * capability_id (NULL when none) and sets *ret_state to that provider's instance. */
typedef struct ep_capability_lookup {
  const void *(*find)(const void *set, const char *capability_id, void **ret_state);
  const void *set;
} ep_capability_lookup;

/* Receives the log lines an action run writes, besides the process log (plugin's thread). */
typedef void (*ep_log_line_fn)(void *data, int32_t level, const char *message);

/* Receives progress reports of an action run (from the plugin's thread). */
typedef void (*ep_progress_fn)(void *data, uint64_t done, uint64_t total, const char *message);

/* Hands a secret an action made to the orchestrator (host->store_secret): 0 once stored, or a
 * negative code with the error API's message set. Called on the plugin's thread during its run. */
typedef int32_t (*ep_store_secret_fn)(void *data, const char *kind, const char *value);

/* A context: one per loaded plugin (settings, log name) and one per action run (adds
 * parameters, progress and cancellation). Owned by the core; plugins see it as opaque. */
#define EP_CTX_PUBLISHED_MAX 4

/* A directory a plugin asked the HTTPS server to serve (publish_directory). */
typedef struct ep_published_dir {
  char url_path[128];
  char directory[4096];
} ep_published_dir;

struct ep_ctx {
  const char *plugin_id;              /* names log lines and errors */
  const ep_fields *settings;          /* the plugin's validated settings */
  const ep_fields *params;            /* the run's validated parameters, NULL outside a run */
  ep_progress_fn progress;            /* NULL: progress is dropped */
  ep_log_line_fn log_line;            /* NULL: lines go to the process log only */
  void *log_data;
  void *progress_data;
  const atomic_int *cancel;           /* non-zero asks the run to stop; NULL: never */
  ep_capability_lookup capabilities; /* answers host->capability; find NULL: none */
  const struct ep_config *config;     /* site values; NULL: none */
  char reboot[16];                    /* what request_reboot asked for during a run, "" when nothing */
  const char *run_target_disk;        /* run.* site values of an action run, NULL when unknown */
  const char *run_scratch_dir;
  char run_deadline[24];
  const char *run_tpm;                /* the node's TPM (TCTI) for run.tpm, NULL or "" when none */
  ep_store_secret_fn store_secret;    /* NULL: the run is not a node's (store_secret is EP_ENOTSUP) */
  void *store_secret_data;
  bool publishing;                     /* true during init: publish_directory is allowed */
  ep_published_dir published[EP_CTX_PUBLISHED_MAX];
  size_t published_count;
  int32_t error_code;                 /* last set_error, 0 when none */
  char error_message[EP_ERROR_MESSAGE_MAX];
};

/* Prepares a context: everything zero but the plugin's ID, settings and capability lookup. */
void ep_ctx_init(ep_ctx *ctx, const char *plugin_id, const ep_fields *settings, ep_capability_lookup capabilities);

/* The message the plugin set with set_error, or fallback when it set none. */
const char *ep_ctx_error(const ep_ctx *ctx, const char *fallback);

#endif
