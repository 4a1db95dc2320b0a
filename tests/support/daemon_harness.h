/* Test support: runs a real edgeprovd (storage-sqlite, management API on a UNIX socket in
 * a temporary directory) for integration tests and benchmarks. */
#ifndef EP_TEST_DAEMON_HARNESS_H
#define EP_TEST_DAEMON_HARNESS_H

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "edgeprov/v1/management.pb-c.h"
#include "northbound/mgmt_client.h"

typedef struct harness {
  const char *daemon_path;
  char dir[64];
  char address[128];
  char config_path[128];
  char log_path[128];
  pid_t pid;
} harness;

/* Makes the directory and the config: data and socket in dir, plugins from plugin_dir,
 * onboarding on 127.0.0.1:<grpc_port> (0: any), extra appended to the config. */
static inline int harness_init_with(harness *h, const char *daemon_path, const char *plugin_dir, int grpc_port,
                                    const char *plugins_group, const char *extra);

static inline int harness_init(harness *h, const char *daemon_path, const char *plugin_dir) {
  return harness_init_with(h, daemon_path, plugin_dir, 0,
                           "plugins = { enabled = [ \"storage-sqlite\" ]; required = [ \"storage-sqlite\" ]; };", "");
}

static inline int harness_init_with(harness *h, const char *daemon_path, const char *plugin_dir, int grpc_port,
                                    const char *plugins_group, const char *extra) {
  memset(h, 0, sizeof *h);
  h->daemon_path = daemon_path;
  snprintf(h->dir, sizeof h->dir, "/tmp/edgeprov-harness-XXXXXX");
  if (!mkdtemp(h->dir)) return -1;
  snprintf(h->address, sizeof h->address, "unix:%s/mgmt.sock", h->dir);
  snprintf(h->config_path, sizeof h->config_path, "%s/site.conf", h->dir);
  snprintf(h->log_path, sizeof h->log_path, "%s/edgeprovd.log", h->dir);
  FILE *conf = fopen(h->config_path, "w");
  if (!conf) return -1;
  fprintf(conf,
          "listen = { management = \"%s\"; grpc = \"127.0.0.1:%d\"; https = \"127.0.0.1:0\"; };\n"
          "paths = { data = \"%s\"; plugins = [ \"%s\" ]; };\n%s\n%s\n",
          h->address, grpc_port, h->dir, plugin_dir, plugins_group, extra);
  fclose(conf);
  return 0;
}

/* Starts edgeprovd and waits (up to 10 s) until its management API answers. */
static inline int harness_start(harness *h) {
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    if (!freopen(h->log_path, "a", stderr)) _exit(126);
    const char *level = getenv("EDGEPROV_HARNESS_LOG_LEVEL"); /* default: warnings only */
    execl(h->daemon_path, h->daemon_path, "--config", h->config_path, "--log-level", level ? level : "warn",
          (char *)NULL);
    _exit(127);
  }
  h->pid = pid;
  /* A fresh channel per attempt: a channel that failed to connect backs off for seconds. */
  for (int attempt = 0; attempt < 1000; attempt++) {
    if (waitpid(h->pid, NULL, WNOHANG) == h->pid) { /* it exited: its log says why */
      h->pid = 0;
      return -1;
    }
    ep_mgmt_client *client = NULL;
    Edgeprov__V1__ListRequest req = EDGEPROV__V1__LIST_REQUEST__INIT;
    req.page_size = 1;
    ProtobufCMessage *reply = NULL;
    int r = ep_mgmt_client_new(&client, h->address, NULL, NULL);
    if (r == 0)
      r = ep_mgmt_client_call(client, "ListHosts", &req.base, &edgeprov__v1__list_hosts_response__descriptor, &reply);
    ep_mgmt_client_free(client);
    if (r == 0) {
      protobuf_c_message_free_unpacked(reply, NULL);
      return 0;
    }
    usleep(10000);
  }
  return -1;
}

/* Sends sig and reaps the daemon; returns its wait status. */
static inline int harness_signal(harness *h, int sig) {
  int status = 0;
  if (h->pid <= 0) return -1;
  kill(h->pid, sig);
  waitpid(h->pid, &status, 0);
  h->pid = 0;
  return status;
}

/* Stops a running daemon and removes the directory. */
static inline void harness_cleanup(harness *h) {
  if (h->pid > 0) harness_signal(h, SIGKILL);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", h->dir);
  if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", h->dir);
}

#endif
