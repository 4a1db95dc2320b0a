/* core/artifacts: see microos.h. */
#define _GNU_SOURCE /* strverscmp, realpath */
#include "microos.h"

#include <dirent.h>
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/error.h"
#include "run.h"

#define LOADER "/lib64/ld-linux-x86-64.so.2"
#define LDD_OUTPUT_MAX (64 * 1024)
#define MODULES_MAX 512
#define TEXT_MAX (64u << 20) /* longest modules.* file read, and longest list written */

/* Adds source's real file at its real path, and the name it was found by as a symlink. */
static int add_library(ep_initramfs *fs, const char *found_as) {
  char real[PATH_MAX], dir_copy[PATH_MAX], dir_real[PATH_MAX], base_copy[PATH_MAX], link[PATH_MAX * 2];
  if (!realpath(found_as, real)) return ep_error_set(EP_ENOENT, "cannot resolve %s: %s", found_as, strerror(errno));
  snprintf(dir_copy, sizeof dir_copy, "%s", found_as);
  snprintf(base_copy, sizeof base_copy, "%s", found_as);
  if (!realpath(dirname(dir_copy), dir_real)) return ep_error_set(EP_ENOENT, "cannot resolve the directory of %s", found_as);
  snprintf(link, sizeof link, "%s/%s", dir_real, basename(base_copy));
  int r = ep_initramfs_add_file(fs, real, real, 0755);
  if (r < 0 || strcmp(link, real) == 0) return r;
  /* A link in the same directory points by name, else by absolute path. */
  char real_dir[PATH_MAX], real_copy[PATH_MAX];
  snprintf(real_copy, sizeof real_copy, "%s", real);
  snprintf(real_dir, sizeof real_dir, "%s", dirname(real_copy));
  const char *target = strcmp(real_dir, dir_real) == 0 ? strrchr(real, '/') + 1 : real;
  return ep_initramfs_add_symlink(fs, link, target);
}

/* Libraries that load others by name at run time (dlopen), which no listing of needed
 * libraries shows: tpm2-tss's TCTI loader opens the TCTI of /dev/tpmrm0 (the agent's TPM
 * identity). The module is taken from the loader's own directory. */
static const char *const run_time_modules[][2] = {{"libtss2-tctildr.so.0", "libtss2-tcti-device.so.0"}};

static int add_needed(ep_initramfs *fs, const char *source);

static int add_run_time_modules(ep_initramfs *fs, const char *library) {
  const char *base = strrchr(library, '/');
  for (size_t i = 0; base && i < sizeof run_time_modules / sizeof run_time_modules[0]; i++) {
    if (strcmp(base + 1, run_time_modules[i][0]) != 0) continue;
    char module_path[PATH_MAX];
    snprintf(module_path, sizeof module_path, "%.*s/%s", (int)(base - library), library, run_time_modules[i][1]);
    if (access(module_path, R_OK) != 0)
      return ep_error_set(EP_ENOENT, "%s loads %s at run time, which is not installed (%s)", library,
                          run_time_modules[i][1], module_path);
    int r = add_library(fs, module_path); /* where the loader looks for it, as on this machine */
    return r < 0 ? r : add_needed(fs, module_path);
  }
  return 0;
}

/* Adds every shared library source needs (as the dynamic loader lists them), and the modules
 * those load at run time. */
static int add_needed(ep_initramfs *fs, const char *source) {
  char *out = malloc(LDD_OUTPUT_MAX);
  if (!out) return ep_error_set(EP_ENOMEM, "out of memory");
  const char *argv[] = {LOADER, "--list", source, NULL};
  int r = ep_run(argv, out, LDD_OUTPUT_MAX);
  if (r < 0) r = ep_error_prefix(r, "cannot list the libraries of %s", source);
  for (char *save = NULL, *line = r == 0 ? strtok_r(out, "\n", &save) : NULL; r == 0 && line;
       line = strtok_r(NULL, "\n", &save)) {
    while (*line == '\t' || *line == ' ') line++;
    char *arrow = strstr(line, " => ");
    char *path = arrow ? arrow + 4 : line;
    if (strncmp(path, "not found", 9) == 0) {
      r = ep_error_set(EP_ENOENT, "%s needs %.*s, which is not installed", source, (int)(arrow - line), line);
      break;
    }
    if (path[0] != '/') continue; /* linux-vdso.so.1 and the like: provided by the kernel */
    char *space = strchr(path, ' ');
    if (space) *space = '\0';
    r = add_library(fs, path);
    if (r == 0) r = add_run_time_modules(fs, path);
  }
  free(out);
  return r;
}

int ep_microos_add_elf(ep_initramfs *fs, const char *source, const char *path_in_image) {
  int r = ep_initramfs_add_file(fs, path_in_image, source, 0755);
  return r < 0 ? r : add_needed(fs, source);
}

/* ---- full-disk encryption and dm-verity ------------------------------------------------ */

#define MULTIARCH_LIB "/usr/lib/x86_64-linux-gnu"

typedef struct host_file {
  const char *path;
  const char *package; /* the Debian package that installs it */
} host_file;

/* Programs, at the same path in the Micro-OS. tpm2 (tpm2-tools' multi-call program): the installed
 * microvisor's /init extends PCR 15 with it once its data partition is unlocked (docs/design/fde.md). */
static const host_file fde_programs[] = {
    {"/usr/sbin/cryptsetup", "cryptsetup-bin"},
    {"/usr/sbin/veritysetup", "cryptsetup-bin"},
    {"/usr/bin/systemd-cryptenroll", "systemd"},
    {"/usr/bin/tpm2", "tpm2-tools"},
};

/* Libraries loaded by dlopen(): systemd's TPM2 code (cryptenroll, the token plugin) opens
 * tpm2-tss by soname and its TCTI by name; libcryptsetup opens token plugins from its plugin
 * directory (/lib/x86_64-linux-gnu/cryptsetup, /lib being a link to usr/lib). */
static const host_file fde_run_time[] = {
    {MULTIARCH_LIB "/libtss2-esys.so.0", "libtss2-esys-3.0.2-0"},
    {MULTIARCH_LIB "/libtss2-rc.so.0", "libtss2-rc0"},
    {MULTIARCH_LIB "/libtss2-mu.so.0", "libtss2-mu0"},
    {MULTIARCH_LIB "/libtss2-tcti-device.so.0", "libtss2-tcti-device0"},
    {MULTIARCH_LIB "/cryptsetup/libcryptsetup-token-systemd-tpm2.so", "systemd"},
};

static int host_file_missing(const host_file *f) {
  return ep_error_set(EP_ENOENT,
                      "the Micro-OS needs %s for full-disk encryption and dm-verity: %s (install the Debian package "
                      "%s; scripts/install-deps.sh does)",
                      f->path, strerror(errno), f->package);
}

int ep_microos_add_fde_tools(ep_initramfs *fs) {
  int r = 0;
  for (size_t i = 0; r == 0 && i < sizeof fde_programs / sizeof fde_programs[0]; i++) {
    const host_file *f = &fde_programs[i];
    if (access(f->path, X_OK) != 0) return host_file_missing(f);
    r = ep_microos_add_elf(fs, f->path, f->path);
  }
  for (size_t i = 0; r == 0 && i < sizeof fde_run_time / sizeof fde_run_time[0]; i++) {
    const host_file *f = &fde_run_time[i];
    if (access(f->path, R_OK) != 0) return host_file_missing(f);
    r = add_library(fs, f->path);
    if (r == 0) r = add_needed(fs, f->path);
  }
  return r;
}

/* ---- kernel modules ------------------------------------------------------------------- */

typedef struct module {
  char name[64];  /* normalized: '-' → '_' */
  char *line;     /* its modules.dep line: "path: dep dep ..." (points into dep_text) */
  int state;      /* 0 unvisited, 1 visiting, 2 added */
  bool requested; /* named by the caller (not only a dependency) */
  bool always;    /* loaded whatever the hardware: needed by a module that is not PCI-gated */
  int mark;       /* closure walks: the walk that last saw it */
} module;

typedef struct modules_ctx {
  module *items;
  size_t count;
  char *dep_text;
  char *builtin_text;
  ep_initramfs *fs;
  const char *dir;
  const char *version;
  ep_buf order;    /* the load order file being written */
  size_t added;
} modules_ctx;

static void module_name_of(const char *path, size_t len, char *out, size_t size) {
  const char *base = path;
  for (size_t i = 0; i < len; i++)
    if (path[i] == '/') base = path + i + 1;
  size_t n = 0;
  while (base + n < path + len && base[n] != '.' && n + 1 < size) {
    out[n] = base[n] == '-' ? '_' : base[n];
    n++;
  }
  out[n] = '\0';
}

/* The whole of a modules.* file (at most TEXT_MAX bytes), NUL-terminated (malloc'd), or NULL. */
static char *read_text(const char *path) {
  FILE *f = fopen(path, "re");
  if (!f) return NULL;
  ep_buf text;
  ep_buf_init(&text, path, TEXT_MAX, 0);
  char chunk[16384];
  size_t n;
  int r = 0;
  while (r == 0 && (n = fread(chunk, 1, sizeof chunk, f)) > 0) r = ep_buf_append(&text, chunk, n);
  fclose(f);
  char *out = r == 0 ? ep_buf_take(&text, NULL) : NULL;
  ep_buf_free(&text);
  return out;
}

static module *find_module(modules_ctx *m, const char *name) {
  for (size_t i = 0; i < m->count; i++)
    if (strcmp(m->items[i].name, name) == 0) return &m->items[i];
  return NULL;
}

static bool is_builtin(const modules_ctx *m, const char *name) {
  if (!m->builtin_text) return false;
  for (const char *p = m->builtin_text; *p;) {
    const char *end = strchr(p, '\n');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    char n[64];
    module_name_of(p, len, n, sizeof n);
    if (strcmp(n, name) == 0) return true;
    p = end ? end + 1 : p + len;
  }
  return false;
}

/* The modules mod's modules.dep line names (all it needs, directly or not), in order: fn
 * on each until one fails. A dependency modules.dep does not list is an error. */
static int for_each_dep(modules_ctx *m, module *mod, int (*fn)(modules_ctx *, module *, void *), void *data) {
  const char *colon = strchr(mod->line, ':'), *eol = strchr(mod->line, '\n');
  if (!eol) eol = mod->line + strlen(mod->line);
  for (const char *p = colon + 1; p < eol;) {
    while (p < eol && *p == ' ') p++;
    const char *end = p;
    while (end < eol && *end != ' ') end++;
    if (end > p) {
      char dep[64];
      module_name_of(p, (size_t)(end - p), dep, sizeof dep);
      module *d = find_module(m, dep);
      if (!d) return ep_error_set(EP_ENOENT, "modules.dep: %s needs %s, which it does not list", mod->name, dep);
      int r = fn(m, d, data);
      if (r < 0) return r;
    }
    p = end;
  }
  return 0;
}

/* mod's path relative to the modules directory, from its modules.dep line. */
static size_t rel_len_of(const module *mod) { return (size_t)(strchr(mod->line, ':') - mod->line); }

static int visit(modules_ctx *m, module *mod);
static int visit_dep(modules_ctx *m, module *mod, void *data) {
  (void)data;
  return visit(m, mod);
}

/* Adds a module after its dependencies (depth first). */
static int visit(modules_ctx *m, module *mod) {
  if (mod->state == 2) return 0;
  if (mod->state == 1) return ep_error_set(EP_EINVAL, "modules.dep: %s depends on itself", mod->name);
  mod->state = 1;
  int r = for_each_dep(m, mod, visit_dep, NULL);
  if (r < 0) return r;
  size_t rel_len = rel_len_of(mod);
  char rel[PATH_MAX], source[PATH_MAX * 2], target[PATH_MAX * 2];
  if (rel_len >= sizeof rel) return ep_error_set(EP_ERANGE, "modules.dep: path too long");
  memcpy(rel, mod->line, rel_len);
  rel[rel_len] = '\0';
  snprintf(source, sizeof source, "%s/%s", m->dir, rel);
  snprintf(target, sizeof target, "/usr/lib/modules/%s/%s", m->version, rel);
  r = ep_initramfs_add_file(m->fs, target, source, 0644);
  if (r == 0) r = ep_buf_append(&m->order, rel, rel_len);
  if (r == 0) r = ep_buf_append(&m->order, "\n", 1);
  mod->state = 2;
  m->added++;
  return r;
}

/* ---- PCI gates: drivers whose hardware is absent are not loaded --------------------------- */

/* Calls fn on mod and every module it needs (each once per walk: mark). */
typedef struct closure_walk {
  int walk;
  int (*fn)(modules_ctx *, module *, void *);
  void *data;
} closure_walk;

static int walk_closure(modules_ctx *m, module *mod, void *data) {
  closure_walk *w = data;
  if (mod->mark == w->walk) return 0;
  mod->mark = w->walk;
  int r = w->fn(m, mod, w->data);
  return r < 0 ? r : for_each_dep(m, mod, walk_closure, w);
}

static int mark_always(modules_ctx *m, module *mod, void *data) {
  (void)m;
  (void)data;
  mod->always = true;
  return 0;
}

/* Appends a gated module's dependency to its line ("rel|" so far, then "dep dep"). */
static int gate_dep(modules_ctx *m, module *mod, void *data) {
  (void)m;
  ep_buf *g = data;
  if (mod->always || mod->requested) return 0; /* loaded anyway, or gated (or not) on its own */
  int r = g->data[g->len - 1] != '|' ? ep_buf_append(g, " ", 1) : 0;
  return r == 0 ? ep_buf_append(g, mod->line, rel_len_of(mod)) : r;
}

/* The PCI patterns of module name in modules.alias ("alias pci:v...d...sv*sd*bc*sc*i* name"),
 * as " pat pat" after "pci:"; *only_pci is false when it has any other alias (a file system,
 * a virtio or USB device, a crypto name: it is always loaded). */
static int pci_patterns(const char *alias_text, const char *name, ep_buf *out, bool *only_pci) {
  *only_pci = true;
  bool any = false;
  for (const char *p = alias_text; *p;) {
    const char *eol = strchr(p, '\n');
    if (!eol) eol = p + strlen(p);
    if (eol - p > 6 && !strncmp(p, "alias ", 6)) {
      const char *pat = p + 6, *sp = memchr(pat, ' ', (size_t)(eol - pat));
      char owner[64];
      if (sp) module_name_of(sp + 1, (size_t)(eol - sp - 1), owner, sizeof owner);
      if (sp && !strcmp(owner, name)) {
        any = true;
        if (strncmp(pat, "pci:", 4) != 0) *only_pci = false;
        else {
          int r = ep_buf_append(out, " ", 1);
          if (r == 0) r = ep_buf_append(out, pat + 4, (size_t)(sp - pat - 4));
          if (r < 0) return r;
        }
      }
    }
    p = *eol ? eol + 1 : eol;
  }
  if (!any) *only_pci = false;
  return 0;
}

/* Writes /etc/edgeprov/modules.pci: one line per requested module whose aliases are all PCI
 * device IDs, "rel|deps|patterns": its path, the dependencies only such modules need, and
 * its modalias patterns without "pci:" (shell globs). /init skips a line's module and deps
 * when no PCI device's modalias matches a pattern (unless another loaded line needs a dep). */
static int add_pci_gates(modules_ctx *m) {
  char path[PATH_MAX];
  snprintf(path, sizeof path, "%s/modules.alias", m->dir);
  char *alias_text = read_text(path);
  if (!alias_text) return ep_initramfs_add_data(m->fs, "/etc/edgeprov/modules.pci", "", 0, 0644); /* none: load all */
  int r = 0, walk = 0;
  ep_buf out, pats;
  ep_buf_init(&out, "/etc/edgeprov/modules.pci", TEXT_MAX, 0);
  ep_buf_init(&pats, "PCI patterns", TEXT_MAX, 0);
  bool *gated = calloc(m->count ? m->count : 1, sizeof *gated);
  if (!gated) r = ep_error_set(EP_ENOMEM, "out of memory");
  for (size_t i = 0; r == 0 && i < m->count; i++) {
    module *mod = &m->items[i];
    if (!mod->requested) continue;
    ep_buf_reset(&pats);
    bool only_pci = false;
    r = pci_patterns(alias_text, mod->name, &pats, &only_pci);
    gated[i] = r == 0 && only_pci;
    closure_walk w = {.walk = ++walk, .fn = mark_always};
    if (r == 0 && !gated[i]) r = walk_closure(m, mod, &w);
  }
  for (size_t i = 0; r == 0 && i < m->count; i++) {
    if (!gated[i]) continue;
    module *mod = &m->items[i];
    ep_buf_reset(&pats);
    bool only_pci;
    r = pci_patterns(alias_text, mod->name, &pats, &only_pci);
    if (r == 0) r = ep_buf_append(&out, mod->line, rel_len_of(mod));
    if (r == 0) r = ep_buf_append(&out, "|", 1);
    mod->mark = ++walk; /* the module itself is not its own dependency */
    closure_walk w = {.walk = walk, .fn = gate_dep, .data = &out};
    if (r == 0) r = for_each_dep(m, mod, walk_closure, &w);
    if (r == 0) r = ep_buf_append(&out, "|", 1);
    if (r == 0) r = ep_buf_append(&out, pats.data + 1, pats.len - 1);
    if (r == 0) r = ep_buf_append(&out, "\n", 1);
  }
  if (r == 0) r = ep_initramfs_add_data(m->fs, "/etc/edgeprov/modules.pci", out.data ? out.data : "", out.len, 0644);
  free(gated);
  ep_buf_free(&out);
  ep_buf_free(&pats);
  free(alias_text);
  return r;
}

int ep_microos_add_modules(ep_initramfs *fs, const char *modules_dir, const char *version, const char *const *names,
                           size_t count, size_t *ret_count) {
  char path[PATH_MAX];
  modules_ctx m = {.fs = fs, .dir = modules_dir, .version = version};
  ep_buf_init(&m.order, "/etc/edgeprov/modules", TEXT_MAX, 0);
  snprintf(path, sizeof path, "%s/modules.dep", modules_dir);
  if (!(m.dep_text = read_text(path)))
    return ep_error_set(EP_ENOENT, "artifacts.modules_dir: cannot read %s: %s", path, strerror(errno));
  snprintf(path, sizeof path, "%s/modules.builtin", modules_dir);
  m.builtin_text = read_text(path);
  int r = 0;
  size_t lines = 1;
  for (const char *p = m.dep_text; *p; p++) lines += *p == '\n';
  if (!(m.items = calloc(lines, sizeof *m.items))) r = ep_error_set(EP_ENOMEM, "out of memory");
  for (char *p = m.dep_text; r == 0 && *p;) {
    char *colon = strchr(p, ':'), *eol = strchr(p, '\n');
    if (!eol) eol = p + strlen(p);
    if (colon && colon < eol) {
      module *mod = &m.items[m.count++];
      module_name_of(p, (size_t)(colon - p), mod->name, sizeof mod->name);
      mod->line = p;
    }
    p = *eol ? eol + 1 : eol;
  }
  for (size_t i = 0; r == 0 && i < count; i++) {
    char want[64];
    module_name_of(names[i], strlen(names[i]), want, sizeof want);
    module *mod = find_module(&m, want);
    if (mod) mod->requested = true;
    if (mod) r = visit(&m, mod);
    else if (!is_builtin(&m, want))
      r = ep_error_set(EP_ENOENT, "kernel module '%s' is neither in %s/modules.dep nor built into kernel %s", names[i],
                       modules_dir, version);
  }
  if (r == 0 && m.added > MODULES_MAX) r = ep_error_set(EP_ERANGE, "more than %d kernel modules", MODULES_MAX);
  if (r == 0) r = ep_initramfs_add_data(fs, "/etc/edgeprov/modules", m.order.data ? m.order.data : "", m.order.len, 0644);
  if (r == 0) r = add_pci_gates(&m);
  if (r == 0) {
    char line[256];
    int n = snprintf(line, sizeof line, "%s\n", version);
    r = ep_initramfs_add_data(fs, "/etc/edgeprov/kernel-version", line, (size_t)n, 0644);
  }
  if (r == 0 && ret_count) *ret_count = m.added;
  ep_buf_free(&m.order);
  free(m.items);
  free(m.dep_text);
  free(m.builtin_text);
  return r;
}

const char *ep_microos_kernel_version(const char *kernel_path) {
  const char *base = strrchr(kernel_path, '/');
  base = base ? base + 1 : kernel_path;
  if (strncmp(base, "vmlinuz-", 8) != 0 || !base[8]) return NULL;
  for (const char *p = base + 8; *p; p++)
    if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '.' || *p == '-' ||
          *p == '_' || *p == '+'))
      return NULL;
  return base + 8;
}

int ep_microos_find_kernel(char *buf, size_t size) {
  DIR *d = opendir("/boot");
  if (!d) return ep_error_set(EP_ENOENT, "no /boot: set artifacts.kernel (install linux-image-amd64)");
  char best[256] = "";
  struct dirent *e;
  while ((e = readdir(d)))
    if (ep_microos_kernel_version(e->d_name) && strlen(e->d_name) < sizeof best &&
        (!best[0] || strverscmp(e->d_name, best) > 0))
      snprintf(best, sizeof best, "%s", e->d_name);
  closedir(d);
  if (!best[0]) return ep_error_set(EP_ENOENT, "no /boot/vmlinuz-*: set artifacts.kernel (install linux-image-amd64)");
  snprintf(buf, size, "/boot/%s", best);
  return 0;
}
