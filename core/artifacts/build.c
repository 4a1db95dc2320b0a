/* core/artifacts: see build.h. */
#define _GNU_SOURCE /* mkdtemp, renameat2 */
#include "build.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <libgen.h>
#include <stdarg.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <edgeprov/boot.h>

#include "efi.h"
#include "base/error.h"
#include "base/files.h"
#include "initramfs.h"
#include "microos.h"
#include "microos_files.h" /* generated from micro-os/: microos_init[], microos_udhcpc_script[] */
#include "run.h"

#define DEFAULT_IPXE "/usr/local/share/edgeprov/ipxe/ipxe.efi"
#define DEFAULT_STUB "/usr/lib/systemd/boot/efi/linuxx64.efi.stub"
#define DEFAULT_BUSYBOX "/bin/busybox"
#define DEFAULT_KERNEL_ARGS "console=tty0 console=ttyS0,115200"
#define KERNEL_NAME "vmlinuz"
#define INITRD_NAME "initrd.img"
#define UKI_NAME "micro-os.efi"
#define IPXE_NAME "ipxe.efi"
#define CMDLINE_MAX 2048

/* The resolved inputs of one build. */
typedef struct inputs {
  char kernel[PATH_MAX];
  char version[128];
  char modules_dir[PATH_MAX];
  char busybox[PATH_MAX];
  char agent[PATH_MAX];
  char ipxe[PATH_MAX];  /* "" when none */
  char stub[PATH_MAX];  /* "" when none */
  const char *ca;
  const char *key, *cert; /* NULL: unsigned */
  char orchestrator[256];
  char token_url[1024];
  char base_url[1024];
  char kernel_args[CMDLINE_MAX];
  int64_t epoch;
} inputs;

typedef struct build {
  const ep_site *site;
  inputs in;
  char stage[PATH_MAX]; /* the new directory being filled */
  char work[PATH_MAX];  /* scratch, removed at the end */
  ep_artifacts_report *report;
} build;

static void note(ep_artifacts_report *report, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(ep_artifacts_report *report, const char *fmt, ...) {
  if (report->note_count == 4) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(report->notes[report->note_count++], sizeof report->notes[0], fmt, ap);
  va_end(ap);
}

/* The bytes a value written into a script, a command line or agent.env may hold. */
static bool safe_word(const char *v) {
  if (!*v) return false;
  for (const char *p = v; *p; p++)
    if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
          strchr("-._~:/?#[]@!&()*+,;=%", *p)))
      return false;
  return true;
}

int ep_artifacts_base_url(const ep_config *c, char *buf, size_t size) {
  int n = c->artifacts.base_url ? snprintf(buf, size, "%s", c->artifacts.base_url)
                                : snprintf(buf, size, "%s://%s/boot", c->tls_cert ? "https" : "http", c->listen_https);
  return n < 0 || (size_t)n >= size ? ep_error_set(EP_ERANGE, "artifacts.base_url: too long") : 0;
}

static int exe_sibling(char *buf, size_t size, const char *name) {
  char exe[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0) return ep_error_set(EP_ENOENT, "cannot find the running program");
  exe[n] = '\0';
  snprintf(buf, size, "%s/%s", dirname(exe), name);
  return 0;
}

static int resolve_inputs(const ep_config *c, inputs *in, ep_artifacts_report *report) {
  const ep_config_artifacts *a = &c->artifacts;
  int r = a->kernel ? (snprintf(in->kernel, sizeof in->kernel, "%s", a->kernel), 0)
                    : ep_microos_find_kernel(in->kernel, sizeof in->kernel);
  if (r < 0) return r;
  const char *version = ep_microos_kernel_version(in->kernel);
  if (a->modules_dir) {
    snprintf(in->modules_dir, sizeof in->modules_dir, "%s", a->modules_dir);
    const char *base = strrchr(a->modules_dir, '/');
    snprintf(in->version, sizeof in->version, "%s", version ? version : base + 1);
  } else if (version) {
    snprintf(in->version, sizeof in->version, "%s", version);
    snprintf(in->modules_dir, sizeof in->modules_dir, "/lib/modules/%s", version);
  } else {
    return ep_error_set(EP_EINVAL, "artifacts.kernel: %s is not named vmlinuz-<version>: set artifacts.modules_dir",
                        in->kernel);
  }
  if (access(in->modules_dir, R_OK) < 0)
    return ep_error_set(EP_ENOENT, "artifacts.modules_dir: %s: %s (the modules of kernel %s)", in->modules_dir,
                        strerror(errno), in->version);
  snprintf(in->busybox, sizeof in->busybox, "%s", a->busybox ? a->busybox : DEFAULT_BUSYBOX);
  if (access(in->busybox, R_OK) < 0)
    return ep_error_set(EP_ENOENT, "artifacts.busybox: %s: %s (install busybox-static)", in->busybox, strerror(errno));
  if (a->agent) snprintf(in->agent, sizeof in->agent, "%s", a->agent);
  else if ((r = exe_sibling(in->agent, sizeof in->agent, "edgeprov-agent")) < 0) return r;
  if (access(in->agent, X_OK) < 0)
    return ep_error_set(EP_ENOENT, "artifacts.agent: %s: %s", in->agent, strerror(errno));
  const char *ipxe = a->ipxe_efi ? a->ipxe_efi : DEFAULT_IPXE;
  if (access(ipxe, R_OK) == 0) snprintf(in->ipxe, sizeof in->ipxe, "%s", ipxe);
  else note(report, "no iPXE binary at %s (scripts/fetch-ipxe.sh installs one): ipxe.efi left out", ipxe);
  const char *stub = a->efi_stub ? a->efi_stub : DEFAULT_STUB;
  if (access(stub, R_OK) == 0) snprintf(in->stub, sizeof in->stub, "%s", stub);
  else if (a->signing_key)
    return ep_error_set(EP_ENOENT, "artifacts.signing_key: a signed build boots the Micro-OS only as a signed unified "
                                   "kernel image (a signed bare kernel would boot any initramfs), and there is no EFI "
                                   "stub at %s (install systemd-boot-efi or set artifacts.efi_stub)", stub);
  else note(report, "no EFI stub at %s (install systemd-boot-efi): micro-os.efi left out", stub);
  if (!c->tls_ca)
    return ep_error_set(EP_EINVAL, "tls.ca is not set: the Micro-OS must carry the CA that signed the orchestrator's "
                                   "certificate (see README, \"TLS\")");
  in->ca = c->tls_ca;
  in->key = a->signing_key;
  in->cert = a->signing_cert;
  if (in->key) {
    char head[4096] = "";
    FILE *f = fopen(in->key, "re");
    size_t n = f ? fread(head, 1, sizeof head - 1, f) : 0;
    if (f) fclose(f);
    head[n] = '\0';
    if (strstr(head, "ENCRYPTED"))
      return ep_error_set(EP_EINVAL, "artifacts.signing_key: %s is encrypted, and sbsign cannot ask for its passphrase "
                                     "here; keep a decrypted copy only root can read (openssl pkey -in KEY -out "
                                     "KEY.plain; chmod 600) and point signing_key at it", in->key);
  }

  snprintf(in->orchestrator, sizeof in->orchestrator, "%s", c->orchestrator ? c->orchestrator : c->listen_grpc);
  if (!safe_word(in->orchestrator))
    return ep_error_set(EP_EINVAL, "provisioning.orchestrator: \"%s\" cannot go on a kernel command line", in->orchestrator);
  snprintf(in->token_url, sizeof in->token_url, "%s", c->token_url ? c->token_url : "");
  if (in->token_url[0] && !safe_word(in->token_url))
    return ep_error_set(EP_EINVAL, "provisioning.token_url: may only hold URL characters (no $, quotes or spaces) to go "
                                   "on a kernel command line");
  if ((r = ep_artifacts_base_url(c, in->base_url, sizeof in->base_url)) < 0) return r;
  if (!safe_word(in->base_url)) return ep_error_set(EP_EINVAL, "artifacts.base_url: may only hold URL characters");
  int n = snprintf(in->kernel_args, sizeof in->kernel_args, "%s edgeprov.orchestrator=%s%s%s%s%s",
                   a->kernel_args ? a->kernel_args : DEFAULT_KERNEL_ARGS, in->orchestrator,
                   in->token_url[0] ? " edgeprov.token_url=" : "", in->token_url, a->proxy && a->proxy[0] ? " edgeprov.proxy=" : "",
                   a->proxy ? a->proxy : "");
  if (n < 0 || (size_t)n >= sizeof in->kernel_args) return ep_error_set(EP_ERANGE, "the kernel command line is too long");
  const char *epoch = getenv("SOURCE_DATE_EPOCH");
  char *end = NULL;
  in->epoch = epoch && *epoch ? strtoll(epoch, &end, 10) : 0;
  if (epoch && *epoch && (*end || in->epoch < 0))
    return ep_error_set(EP_EINVAL, "SOURCE_DATE_EPOCH: \"%s\" is not a number of seconds", epoch);
  return 0;
}

/* ---- the initramfs ---------------------------------------------------------------------- */

static int agent_env(const ep_config *c, const inputs *in, char *buf, size_t size) {
  const char *proxy = c->artifacts.proxy ? c->artifacts.proxy : "";
  const char *no_proxy = c->artifacts.no_proxy ? c->artifacts.no_proxy : "";
  /* KEY=value lines, parsed (never sourced) by /init; every value passed safe_word or a
   * config check, so it holds no space, quote or newline. */
  int n = snprintf(buf, size,
                   "# The Micro-OS agent's settings, written by `edgeprov artifacts build`.\n"
                   "EDGEPROV_ORCHESTRATOR=%s\nEDGEPROV_TOKEN_URL=%s\nEDGEPROV_PROXY=%s\nEDGEPROV_NO_PROXY=%s\n",
                   in->orchestrator, in->token_url, proxy, no_proxy);
  return n < 0 || (size_t)n >= size ? ep_error_set(EP_ERANGE, "agent.env too long") : n;
}

/* The plugins a node runs: the enabled plugins that offer node actions. */
static int add_node_plugins(ep_initramfs *fs, const ep_site *site) {
  for (size_t i = 0; i < site->plugins->started_count; i++) {
    const ep_plugin *p = site->plugins->started[i];
    bool node_side = false;
    for (size_t k = 0; p->entry->capabilities && p->entry->capabilities[k]; k++)
      node_side |= strcmp(p->entry->capabilities[k], EP_CAP_ACTIONS) == 0;
    if (!node_side) continue;
    char dest[PATH_MAX];
    snprintf(dest, sizeof dest, "/usr/lib/edgeprov/plugins/%s.so", p->entry->id);
    int r = ep_microos_add_elf(fs, p->path, dest);
    if (r < 0) return ep_error_prefix(r, "plugin %s", p->entry->id);
  }
  return 0;
}

static int build_initramfs(build *b, const char *out_path) {
  const ep_config *c = b->site->config;
  ep_initramfs *fs = NULL;
  int r = ep_initramfs_new(&fs);
  if (r < 0) return r;
  const char *const merged[][2] = {{"/bin", "usr/bin"}, {"/sbin", "usr/sbin"}, {"/lib", "usr/lib"}, {"/lib64", "usr/lib64"}};
  for (size_t i = 0; r == 0 && i < 4; i++) r = ep_initramfs_add_symlink(fs, merged[i][0], merged[i][1]);
  const char *const dirs[] = {"/usr/bin", "/usr/sbin", "/usr/lib64", "/dev", "/proc", "/sys", "/run", "/tmp", "/root",
                              "/mnt", "/var/lib/edgeprov-agent", "/etc/edgeprov"};
  for (size_t i = 0; r == 0 && i < sizeof dirs / sizeof dirs[0]; i++) r = ep_initramfs_add_dir(fs, dirs[i]);
  if (r == 0) r = ep_initramfs_add_chardev(fs, "/dev/console", 0600, 5, 1);
  if (r == 0) r = ep_initramfs_add_data(fs, "/init", microos_init, sizeof microos_init - 1, 0755);
  if (r == 0)
    r = ep_initramfs_add_data(fs, "/usr/share/udhcpc/default.script", microos_udhcpc_script,
                              sizeof microos_udhcpc_script - 1, 0755);
  if (r == 0) r = ep_initramfs_add_file(fs, "/usr/bin/busybox", b->in.busybox, 0755);
  if (r == 0) r = ep_microos_add_elf(fs, b->in.agent, "/usr/bin/edgeprov-agent");
  if (r == 0) r = add_node_plugins(fs, b->site);
  if (r == 0) r = ep_microos_add_fde_tools(fs);
  if (r == 0) r = ep_initramfs_add_file(fs, "/etc/edgeprov/ca.pem", b->in.ca, 0644);
  char env[4096];
  int n = r == 0 ? agent_env(c, &b->in, env, sizeof env) : 0;
  if (n < 0) r = n;
  if (r == 0) r = ep_initramfs_add_data(fs, "/etc/edgeprov/agent.env", env, (size_t)n, 0644);
  static const char passwd[] = "root:x:0:0:root:/root:/bin/sh\n", group[] = "root:x:0:\n";
  if (r == 0) r = ep_initramfs_add_data(fs, "/etc/passwd", passwd, sizeof passwd - 1, 0644);
  if (r == 0) r = ep_initramfs_add_data(fs, "/etc/group", group, sizeof group - 1, 0644);
  if (r == 0) {
    const char *defaults[] = {EP_MICROOS_MODULES};
    size_t count = sizeof defaults / sizeof defaults[0];
    const char **names = calloc(count + c->artifacts.modules.count, sizeof *names);
    if (!names) r = ep_error_set(EP_ENOMEM, "out of memory");
    for (size_t i = 0; names && i < count; i++) names[i] = defaults[i];
    for (size_t i = 0; names && i < c->artifacts.modules.count; i++) names[count + i] = c->artifacts.modules.items[i];
    if (names)
      r = ep_microos_add_modules(fs, b->in.modules_dir, b->in.version, names, count + c->artifacts.modules.count,
                                 &b->report->modules);
    free(names);
  }
  if (r == 0) r = ep_initramfs_write(fs, out_path, b->in.epoch);
  ep_initramfs_free(fs);
  return r;
}

/* ---- artifacts -------------------------------------------------------------------------- */

static bool artifact_name_valid(const char *name) {
  size_t n = strlen(name);
  if (n == 0 || n > EP_ARTIFACT_NAME_MAX || name[0] == '.' || name[0] == '-') return false;
  for (size_t i = 0; i < n; i++)
    if (!((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= 'A' && name[i] <= 'Z') || (name[i] >= '0' && name[i] <= '9') ||
          strchr("._-", name[i])))
      return false;
  return strcmp(name, "SHA256SUMS") != 0 && strcmp(name, "manifest.json") != 0;
}

static int stage_path(const build *b, const char *name, char *buf, size_t size) {
  int n = snprintf(buf, size, "%s/%s", b->stage, name);
  return n < 0 || (size_t)n >= size ? ep_error_set(EP_ERANGE, "path too long") : 0;
}

/* Writes a new file of the stage; EP_EEXIST when the build has it already. */
static int write_stage_file(const build *b, const char *name, const uint8_t *content, uint64_t len) {
  char path[PATH_MAX];
  int r = stage_path(b, name, path, sizeof path);
  if (r < 0) return r;
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0)
    return errno == EEXIST ? ep_error_set(EP_EEXIST, "artifact %s is already part of this build", name)
                           : ep_error_set(EP_EIO, "cannot write %s: %s", path, strerror(errno));
  for (uint64_t done = 0; done < len;) {
    ssize_t w = write(fd, content + done, (size_t)(len - done));
    if (w <= 0) {
      close(fd);
      return ep_error_set(EP_EIO, "cannot write %s: %s", path, strerror(errno));
    }
    done += (uint64_t)w;
  }
  return close(fd) == 0 ? 0 : ep_error_set(EP_EIO, "cannot write %s", path);
}

/* The boot plugins' add: a new file in the stage, under a checked name. */
static int32_t add_from_plugin(void *data, const char *name, const uint8_t *content, uint64_t len) {
  if (!name || !artifact_name_valid(name))
    return ep_error_set(EP_EINVAL, "artifact name \"%.80s\" is not [A-Za-z0-9][A-Za-z0-9._-]* (at most %d)",
                        name ? name : "(null)", EP_ARTIFACT_NAME_MAX);
  if (len > (64u << 20)) return ep_error_set(EP_ERANGE, "artifact %s: larger than 64 MiB", name);
  return write_stage_file(data, name, content, len);
}

static int curate_boot_plugins(build *b) {
  char kernel_args[CMDLINE_MAX];
  snprintf(kernel_args, sizeof kernel_args, "%s", b->in.kernel_args);
  ep_boot_build info = {.struct_size = sizeof info, .is_signed = b->in.key != NULL, .base_url = b->in.base_url,
                        .kernel = b->in.key ? "" : KERNEL_NAME, /* signed: no bare kernel to boot (place_kernel) */
                        .initrd = INITRD_NAME, .uki = b->report->uki ? UKI_NAME : "",
                        .ipxe_efi = b->report->ipxe ? IPXE_NAME : "", .kernel_args = kernel_args};
  for (size_t i = 0; i < b->site->plugins->started_count; i++) {
    const ep_plugin *p = b->site->plugins->started[i];
    const ep_boot *boot = p->entry->get_capability(p->instance, EP_CAP_BOOT);
    if (!boot || !boot->curate) continue;
    ep_ctx *ctx = (ep_ctx *)&p->ctx;
    ctx->error_message[0] = '\0';
    int32_t r = boot->curate(p->instance, &info, add_from_plugin, b);
    if (r < 0) return ep_error_set(r, "boot plugin %s: %s", p->entry->id, ep_ctx_error(ctx, ep_error_message()));
  }
  return 0;
}

static int copy_file(const char *from, const char *to) {
  const char *argv[] = {"cp", "--", from, to, NULL};
  return ep_run(argv, NULL, 0);
}

/* Puts an EFI executable into the stage: signed with the db key when the site has one. */
static int place_efi(build *b, const char *source, const char *name) {
  char path[PATH_MAX];
  int r = stage_path(b, name, path, sizeof path);
  if (r < 0) return r;
  if (!b->in.key) return copy_file(source, path);
  r = ep_efi_sign(b->in.key, b->in.cert, source, path, b->work, b->in.epoch);
  return r == 0 ? ep_efi_verify(b->in.cert, path) : r;
}

/* The bare kernel. A signed build never signs it: signed, it would boot under Secure Boot with any initramfs and
 * command line (rdinit=/bin/sh), and the TPM (PCR 7 unchanged) would unseal a node's disk; the signed UKI carries
 * both inside its signature. It is still placed, with every signature removed (the distribution's too), for tools
 * that build their own images from it; Secure Boot firmware refuses to start it, and no iPXE script names it. */
static int place_kernel(build *b) {
  if (!b->in.key) return place_efi(b, b->in.kernel, KERNEL_NAME);
  char path[PATH_MAX];
  int r = stage_path(b, KERNEL_NAME, path, sizeof path);
  if (r < 0 || (r = copy_file(b->in.kernel, path)) < 0) return r;
  const char *detach[] = {"sbattach", "--remove", path, NULL};
  for (int i = 0; i < 8 && ep_run(detach, NULL, 0) == 0; i++) { /* one signature a run; fails once none is left */
  }
  const char *list[] = {"sh", "-c", "sbverify --list \"$0\" 2>/dev/null | grep -q '^signature [0-9]'", path, NULL};
  return ep_run(list, NULL, 0) == 0
             ? ep_error_set(EP_EIO, "%s: a signature is left on the kernel after sbattach --remove", b->in.kernel)
             : 0;
}

/* ---- the record: SHA256SUMS and manifest.json ------------------------------------------ */

static int sha256_file(const char *path, char hex[65]) {
  FILE *f = fopen(path, "rbe");
  if (!f) return ep_error_set(EP_EIO, "cannot read %s: %s", path, strerror(errno));
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  unsigned char digest[32];
  static __thread unsigned char buf[1 << 16];
  size_t n;
  EVP_DigestInit_ex(md, EVP_sha256(), NULL);
  while ((n = fread(buf, 1, sizeof buf, f)) > 0) EVP_DigestUpdate(md, buf, n);
  int bad = ferror(f);
  fclose(f);
  EVP_DigestFinal_ex(md, digest, NULL);
  EVP_MD_CTX_free(md);
  if (bad) return ep_error_set(EP_EIO, "cannot read %s", path);
  for (int i = 0; i < 32; i++) snprintf(hex + 2 * i, 3, "%02x", digest[i]);
  return 0;
}

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int write_record(build *b) {
  DIR *d = opendir(b->stage);
  if (!d) return ep_error_set(EP_EIO, "cannot list %s", b->stage);
  char *names[EP_ARTIFACTS_MAX];
  size_t count = 0;
  struct dirent *e;
  int r = 0;
  while ((e = readdir(d)))
    if (e->d_name[0] != '.') {
      if (count == EP_ARTIFACTS_MAX) {
        r = ep_error_set(EP_ERANGE, "more than %d artifacts", EP_ARTIFACTS_MAX);
        break;
      }
      names[count++] = strdup(e->d_name);
    }
  closedir(d);
  qsort(names, count, sizeof *names, by_name);
  json_t *manifest = json_object(), *files = json_object(), *in = json_object();
  char path[PATH_MAX], hex[65], sums[EP_ARTIFACTS_MAX * 140] = "";
  size_t used = 0;
  for (size_t i = 0; r == 0 && i < count; i++) {
    struct stat st;
    if ((r = stage_path(b, names[i], path, sizeof path)) < 0 || (r = sha256_file(path, hex)) < 0) break;
    stat(path, &st);
    used += (size_t)snprintf(sums + used, sizeof sums - used, "%s  %s\n", hex, names[i]);
    json_object_set_new(files, names[i], json_pack("{s:s,s:I}", "sha256", hex, "size", (json_int_t)st.st_size));
    snprintf(b->report->files[b->report->file_count], sizeof b->report->files[0], "%s", names[i]);
    b->report->sizes[b->report->file_count++] = (uint64_t)st.st_size;
  }
  /* The inputs: what a rebuild compares to tell whether the CA or keys rotated. */
  const char *const input_files[][2] = {{"kernel", b->in.kernel}, {"agent", b->in.agent}, {"busybox", b->in.busybox},
                                        {"ca", b->in.ca}, {"ipxe_efi", b->in.ipxe}, {"efi_stub", b->in.stub},
                                        {"signing_cert", b->in.cert ? b->in.cert : ""}};
  for (size_t i = 0; r == 0 && i < sizeof input_files / sizeof input_files[0]; i++) {
    if (!input_files[i][1][0]) continue;
    if ((r = sha256_file(input_files[i][1], hex)) == 0) json_object_set_new(in, input_files[i][0], json_string(hex));
  }
  json_object_set_new(manifest, "format", json_integer(1));
  json_object_set_new(manifest, "kernel_version", json_string(b->in.version));
  json_object_set_new(manifest, "base_url", json_string(b->in.base_url));
  json_object_set_new(manifest, "kernel_cmdline", json_string(b->in.kernel_args));
  json_object_set_new(manifest, "signed", json_boolean(b->in.key != NULL));
  /* What boots the Micro-OS: a signed build only the signed UKI (no bare kernel is offered). */
  json_object_set_new(manifest, "micro_os", json_string(b->in.key ? "uki" : b->report->uki ? "kernel+uki" : "kernel"));
  json_object_set_new(manifest, "kernel_signed", json_false()); /* vmlinuz never carries the site's signature */
  json_object_set_new(manifest, "source_date_epoch", json_integer(b->in.epoch));
  json_object_set_new(manifest, "inputs", in);
  json_object_set_new(manifest, "files", files);
  if (r == 0) r = write_stage_file(b, "SHA256SUMS", (const uint8_t *)sums, used);
  if (r == 0 && (r = stage_path(b, "manifest.json", path, sizeof path)) == 0 &&
      json_dump_file(manifest, path, JSON_INDENT(2) | JSON_SORT_KEYS) < 0)
    r = ep_error_set(EP_EIO, "cannot write %s", path);
  json_decref(manifest);
  for (size_t i = 0; i < count; i++) free(names[i]);
  return r;
}

/* Every file of the stage gets the build's time stamp and mode 0644. */
static int settle_files(const build *b) {
  DIR *d = opendir(b->stage);
  if (!d) return ep_error_set(EP_EIO, "cannot list %s", b->stage);
  struct timespec times[2] = {{b->in.epoch, 0}, {b->in.epoch, 0}};
  struct dirent *e;
  while ((e = readdir(d)))
    if (e->d_name[0] != '.') {
      fchmodat(dirfd(d), e->d_name, 0644, 0);
      utimensat(dirfd(d), e->d_name, times, AT_SYMLINK_NOFOLLOW);
    }
  closedir(d);
  return 0;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st, (void)flag, (void)ftw;
  return remove(path);
}

static void remove_tree(const char *path) {
  if (path[0]) nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static bool same_file_content(const char *a, const char *b) {
  char ha[65], hb[65];
  return sha256_file(a, ha) == 0 && sha256_file(b, hb) == 0 && strcmp(ha, hb) == 0;
}

/* Moves the stage to the artifact directory in one step: a rename when there is none yet,
 * else an exchange of the two (the old one then goes away). */
static int publish(build *b, const char *dir) {
  char old_sums[PATH_MAX + 16], new_sums[PATH_MAX + 16];
  snprintf(old_sums, sizeof old_sums, "%s/SHA256SUMS", dir);
  snprintf(new_sums, sizeof new_sums, "%s/SHA256SUMS", b->stage);
  b->report->unchanged = access(old_sums, F_OK) == 0 && same_file_content(old_sums, new_sums);
  if (rename(b->stage, dir) == 0) {
    b->stage[0] = '\0';
    return 0;
  }
  if (errno != EEXIST && errno != ENOTEMPTY) return ep_error_set(EP_EIO, "cannot move the build to %s: %s", dir, strerror(errno));
  /* Only a previous build is replaced (and then removed): never a directory of anything else. */
  if (access(old_sums, F_OK) != 0)
    return ep_error_set(EP_EEXIST,
                        "%s exists and holds no previous build (no SHA256SUMS): not replaced; give --out an empty or new "
                        "directory",
                        dir);
  if (renameat2(AT_FDCWD, b->stage, AT_FDCWD, dir, RENAME_EXCHANGE) < 0)
    return ep_error_set(EP_EIO, "cannot replace %s: %s", dir, strerror(errno));
  return 0; /* b->stage now holds the previous build, removed by the caller */
}

int ep_artifacts_build(const ep_site *site, const char *out_dir, ep_artifacts_report *report) {
  memset(report, 0, sizeof *report);
  build b = {.site = site, .report = report};
  /* --out may be relative (to the current directory); artifacts.directory is absolute. */
  const char *given = out_dir ? out_dir : site->config->artifacts.directory;
  char *absolute = NULL, dir[PATH_MAX - 16]; /* room for the stage's ".build-XXXXXX" */
  int r = ep_path_absolute(&absolute, given);
  if (r < 0) return r;
  int n = snprintf(dir, sizeof dir, "%s", absolute);
  free(absolute);
  if (n >= (int)sizeof dir) return ep_error_set(EP_EINVAL, "the artifact directory's path is too long: %s", given);
  /* The current directory, or one holding it, is never swapped away under the caller. */
  char cwd[PATH_MAX], real_dir[PATH_MAX];
  if (getcwd(cwd, sizeof cwd) && realpath(dir, real_dir)) {
    size_t len = strlen(real_dir);
    if (strncmp(cwd, real_dir, len) == 0 && (cwd[len] == '\0' || cwd[len] == '/' || len == 1))
      return ep_error_set(EP_EINVAL, "%s is the current directory or holds it: give --out a directory of its own", given);
  }
  snprintf(report->directory, sizeof report->directory, "%s", dir);
  r = resolve_inputs(site->config, &b.in, report);
  if (r < 0) return r;
  snprintf(report->kernel, sizeof report->kernel, "%s", b.in.kernel);
  snprintf(report->kernel_version, sizeof report->kernel_version, "%s", b.in.version);
  report->is_signed = b.in.key != NULL;

  /* The stage sits next to the directory (same file system, so the swap is a rename). */
  char parent[PATH_MAX];
  snprintf(parent, sizeof parent, "%s", dir);
  char *slash = strrchr(parent, '/');
  if (slash && slash != parent) {
    *slash = '\0';
    if (mkdir(parent, 0755) < 0 && errno != EEXIST)
      return ep_error_set(EP_EIO, "cannot create %s: %s", parent, strerror(errno));
  }
  snprintf(b.stage, sizeof b.stage, "%s.build-XXXXXX", dir);
  snprintf(b.work, sizeof b.work, "%s.work-XXXXXX", dir);
  if (!mkdtemp(b.stage) || !mkdtemp(b.work)) {
    r = ep_error_set(EP_EIO, "cannot create a directory next to %s: %s", dir, strerror(errno));
    goto out;
  }
  chmod(b.stage, 0755);
  char path[PATH_MAX], initrd[PATH_MAX];
  if ((r = stage_path(&b, INITRD_NAME, initrd, sizeof initrd)) < 0 || (r = build_initramfs(&b, initrd)) < 0) goto out;
  if ((r = place_kernel(&b)) < 0) goto out;
  if (b.in.stub[0]) {
    char cmdline[CMDLINE_MAX], unsigned_uki[PATH_MAX + 32];
    snprintf(cmdline, sizeof cmdline, "%s", b.in.kernel_args);
    snprintf(unsigned_uki, sizeof unsigned_uki, "%s/micro-os-unsigned.efi", b.work);
    if ((r = ep_efi_make_uki(b.in.stub, b.in.kernel, initrd, cmdline, b.work, unsigned_uki, b.in.epoch)) < 0 ||
        (r = place_efi(&b, unsigned_uki, UKI_NAME)) < 0)
      goto out;
    report->uki = true;
  }
  if (b.in.ipxe[0]) {
    if ((r = place_efi(&b, b.in.ipxe, IPXE_NAME)) < 0) goto out;
    report->ipxe = true;
  }
  if ((r = stage_path(&b, "ca.pem", path, sizeof path)) < 0 || (r = copy_file(b.in.ca, path)) < 0) goto out;
  if ((r = stage_path(&b, "cacerts.esl", path, sizeof path)) < 0 || (r = ep_efi_write_esl(b.in.ca, path)) < 0) {
    r = ep_error_prefix(r, "tls.ca");
    goto out;
  }
  if (b.in.cert) {
    if ((r = stage_path(&b, "db.crt", path, sizeof path)) < 0 || (r = copy_file(b.in.cert, path)) < 0 ||
        (r = stage_path(&b, "db.cer", path, sizeof path)) < 0 || (r = ep_efi_write_der(b.in.cert, path)) < 0) {
      r = ep_error_prefix(r, "artifacts.signing_cert");
      goto out;
    }
  }
  if ((r = curate_boot_plugins(&b)) < 0 || (r = settle_files(&b)) < 0 || (r = write_record(&b)) < 0 ||
      (r = settle_files(&b)) < 0 || (r = publish(&b, dir)) < 0)
    goto out;
out:
  remove_tree(b.stage);
  remove_tree(b.work);
  return r;
}
