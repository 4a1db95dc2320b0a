/* core: the host-services table handed to plugins, and the contexts behind it. */
#ifndef EP_CORE_HOST_SERVICES_H
#define EP_CORE_HOST_SERVICES_H

#include <stdatomic.h>
#include <stdbool.h>

#include <edgeprov/host.h>

#include "base/error.h"
#include "base/fields.h"

struct ep_config;
struct ep_plugin_set;

/* Receives the log lines an action run writes, besides the process log (plugin's thread). */
typedef void (*ep_log_line_fn)(void *data, int32_t level, const char *message);

/* Receives progress reports of an action run (from the plugin's thread). */
typedef void (*ep_progress_fn)(void *data, uint64_t done, uint64_t total, const char *message);

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
  const struct ep_plugin_set *plugins; /* for capability lookups */
  const struct ep_config *config;     /* site values; NULL: none */
  char reboot[16];                    /* what request_reboot asked for during a run, "" when nothing */
  const char *run_target_disk;        /* run.* site values of an action run, NULL when unknown */
  const char *run_scratch_dir;
  char run_deadline[24];
  bool publishing;                     /* true during init: publish_directory is allowed */
  ep_published_dir published[EP_CTX_PUBLISHED_MAX];
  size_t published_count;
  int32_t error_code;                 /* last set_error, 0 when none */
  char error_message[EP_ERROR_MESSAGE_MAX];
};

/* The table handed to every plugin's init; static, valid for the life of the process. */
const ep_host *ep_host_table(void);

/* Prepares a plugin's context. */
void ep_ctx_init(ep_ctx *ctx, const char *plugin_id, const ep_fields *settings,
                 const struct ep_plugin_set *plugins);

/* The message the plugin set with set_error, or fallback when it set none. */
const char *ep_ctx_error(const ep_ctx *ctx, const char *fallback);

#endif
