/* edgeprov CLI: the boot artifacts (artifacts build|keys|nginx-conf) and the USB stick image (usb-image). */
#define _GNU_SOURCE
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <edgeprov/boot.h>

#include "build.h"
#include "base/error.h"
#include "runtime/host_services.h"
#include "keys.h"
#include "nginx_conf.h"

#define NGINX_CONF_MAX 8192

int ep_cli_artifacts_build(cli_call *call) {
  ep_artifacts_report *report = calloc(1, sizeof *report);
  if (!report) return EXIT_FAILURE;
  int r = ep_artifacts_build(call->site, cli_value(call, 'o'), report);
  if (r < 0) {
    fprintf(stderr, "edgeprov: artifacts build: %s\n", ep_error_message());
    free(report);
    return EXIT_FAILURE;
  }
  for (size_t i = 0; i < report->note_count; i++) fprintf(stderr, "edgeprov: note: %s\n", report->notes[i]);
  printf("artifacts in %s%s\n", report->directory, report->unchanged ? " (unchanged: same bytes as before)" : "");
  printf("  kernel %s (%s), %zu modules, %s\n", report->kernel, report->kernel_version, report->modules,
         report->is_signed ? "signed for Secure Boot (artifacts.signing_cert)" : "UNSIGNED (no artifacts.signing_key)");
  for (size_t i = 0; i < report->file_count; i++)
    printf("  %-16s %12" PRIu64 " bytes\n", report->files[i], report->sizes[i]);
  free(report);
  return EXIT_SUCCESS;
}

int ep_cli_artifacts_keys(cli_call *call) {
  const char *out = cli_value(call, 'o'); /* required: see the command's row */
  const char *name = cli_value(call, 'n');
  if (ep_keys_create(out, name ? name : "edgeprov site") < 0) {
    fprintf(stderr, "edgeprov: artifacts keys: %s\n", ep_error_message());
    return EXIT_FAILURE;
  }
  printf("Secure Boot keys in %s: PK, KEK, db (.key private 0600, .crt PEM, .cer DER, .esl)\n"
         "Sign with them: artifacts { signing_key = \"%s/db.key\"; signing_cert = \"%s/db.crt\"; };\n"
         "Enroll db.cer (and KEK.cer, PK.cer) in the firmware's Secure Boot setup.\n",
         out, out, out);
  return EXIT_SUCCESS;
}

/* Writes text to path whole or not at all (a temporary file renamed over it). */
static int write_atomically(const char *path, const char *text, size_t len) {
  char tmp[PATH_MAX];
  snprintf(tmp, sizeof tmp, "%s.tmp-XXXXXX", path);
  int fd = mkstemp(tmp);
  if (fd < 0) return ep_error_set(EP_EIO, "cannot write %s: %s", path, strerror(errno));
  bool ok = write(fd, text, len) == (ssize_t)len && fchmod(fd, 0644) == 0 && fsync(fd) == 0;
  ok = close(fd) == 0 && ok;
  if (!ok || rename(tmp, path) < 0) {
    unlink(tmp);
    return ep_error_set(EP_EIO, "cannot write %s: %s", path, strerror(errno));
  }
  return 0;
}

int ep_cli_artifacts_nginx_conf(cli_call *call) {
  ep_nginx_conf_options o = {.listen = cli_value(call, 'l'), .cert = cli_value(call, 'c'), .key = cli_value(call, 'k'),
                             .directory = cli_value(call, 'd')};
  if (!o.listen) o.listen = "0.0.0.0:443";
  char text[NGINX_CONF_MAX];
  int n = ep_nginx_conf(call->site->config, &o, text, sizeof text);
  const char *out = cli_value(call, 'o');
  if (n >= 0 && out) n = write_atomically(out, text, (size_t)n) < 0 ? -1 : n;
  if (n < 0) {
    fprintf(stderr, "edgeprov: artifacts nginx-conf: %s\n", ep_error_message());
    return EXIT_FAILURE;
  }
  if (out) printf("nginx site config written to %s (test it with: nginx -t)\n", out);
  else fputs(text, stdout);
  return EXIT_SUCCESS;
}

int ep_cli_usb_image(cli_call *call) {
  const ep_site *site = call->site;
  const char *out = cli_value(call, 'o'); /* required; --payload is one of the row's choices */
  const char *payload = cli_value(call, 'p');
  const char *from = cli_value(call, 'f');
  char out_abs[PATH_MAX], from_abs[PATH_MAX];
  if (out[0] == '/') snprintf(out_abs, sizeof out_abs, "%s", out);
  else if (!getcwd(from_abs, sizeof from_abs) || snprintf(out_abs, sizeof out_abs, "%s/%s", from_abs, out) >= (int)sizeof out_abs)
    return cli_usage_error(call, "--out: path too long");
  if (!realpath(from ? from : site->config->artifacts.directory, from_abs)) {
    fprintf(stderr, "edgeprov: usb-image: %s: %s (run: edgeprov artifacts build)\n",
            from ? from : site->config->artifacts.directory, strerror(errno));
    return EXIT_FAILURE;
  }
  for (size_t i = 0; i < site->plugins->started_count; i++) {
    const ep_plugin *p = site->plugins->started[i];
    const ep_boot *boot = p->entry->get_capability(p->instance, EP_CAP_BOOT);
    if (!boot || !boot->write_media) continue;
    ep_boot_media media = {.struct_size = sizeof media, .artifact_dir = from_abs, .out_path = out_abs,
                           .payload = payload ? payload : ""};
    ep_ctx *ctx = (ep_ctx *)&p->ctx;
    ctx->error_message[0] = '\0';
    if (boot->write_media(p->instance, &media) < 0) {
      fprintf(stderr, "edgeprov: usb-image: plugin %s: %s\n", p->entry->id, ep_ctx_error(ctx, "failed"));
      return EXIT_FAILURE;
    }
    printf("USB image written to %s (boot method %s, from %s)\n", out_abs, boot->name, from_abs);
    return EXIT_SUCCESS;
  }
  fprintf(stderr, "edgeprov: usb-image: no enabled boot plugin writes media (enable boot-usb; see: edgeprov plugins list)\n");
  return EXIT_FAILURE;
}
