/* core: edgeprovd's own Prometheus figures (README, "Metrics") in the process's registry, and
 * the one-line hooks the services call. Until ep_figures_register every hook is a load and a
 * branch: a program that serves no metrics (the CLI, the agent, edgeprovd without
 * listen.metrics) pays nothing else. */
#ifndef EP_CORE_FIGURES_H
#define EP_CORE_FIGURES_H

#include <stdbool.h>
#include <stdint.h>

#include "base/metrics.h"

/* The process's registry: made on first use, lives until the process ends. */
ep_metrics *ep_figures_registry(void);

/* Registers the figures in the process's registry; once (later calls return 0). Call before
 * the services that update them start. EP_ENOMEM. */
int ep_figures_register(void);

/* An onboarding ended: credentials issued and ONBOARDED answered (ok), or refused or failed. */
void ep_figures_onboarding(bool ok);

/* A gRPC call a server answered: its method path ("/pkg.Service/Method") and status name. */
void ep_figures_rpc_call(const char *method, const char *code);

/* Calls open on the gRPC servers went up (+1) or down (-1). */
void ep_figures_rpc_calls_open(int delta);

/* Bytes of published files (the boot artifacts) read to be sent. */
void ep_figures_artifact_bytes(uint64_t n);

/* A monotonic clock reading for ep_figures_storage_txn (0 while the figures are off). */
int64_t ep_figures_clock(void);

/* A storage transaction that began at started (ep_figures_clock) has returned. */
void ep_figures_storage_txn(int64_t started);

/* A workflow created at created_at (seconds since the epoch) ended (SUCCESS or FAILED). */
void ep_figures_workflow_end(int64_t created_at, bool failed);

/* What one node's workflow stream saw of the action running: a duration is measured only
 * from a report that starts an attempt (0 bytes done), and streamed bytes are counted from the
 * bytes_done of the reports, so a stream that resumes mid-action counts neither twice. */
typedef struct ep_figures_action {
  bool seen;         /* index and attempts describe the action the last report was about */
  bool timed;        /* started_ns is when its first attempt began */
  uint32_t index, attempts;
  uint64_t bytes;    /* bytes_done of its last report */
  int64_t started_ns;
} ep_figures_action;

/* A node's report was recorded: action index, attempt, bytes done, and its state's name
 * ("RUNNING"; "SUCCESS", "FAILED" and "TIMEOUT" end the action). One stream's reports arrive
 * in order: t belongs to that stream. */
void ep_figures_action_report(ep_figures_action *t, uint32_t index, uint32_t attempts, uint64_t bytes_done,
                              const char *state);

#endif
