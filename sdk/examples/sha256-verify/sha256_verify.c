/* Example edgeprov plugin: the node action file.verify_sha256, which checks a file's SHA-256
 * digest and reports progress as it reads. It uses only the SDK and its own libcrypto. */
#define _POSIX_C_SOURCE 200809L
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <edgeprov/edgeprov.h>
#include <openssl/evp.h>

typedef struct example_state {
  const ep_host *host;
  ep_ctx *ctx; /* the plugin's context, valid until deinit */
  uint64_t buffer_bytes;
} example_state;

static int32_t parse_hex_digest(const char *hex, unsigned char out[32]) {
  if (strlen(hex) != 64) return -1;
  for (int i = 0; i < 32; i++) {
    unsigned int byte;
    if (!isxdigit((unsigned char)hex[2 * i]) || !isxdigit((unsigned char)hex[2 * i + 1])) return -1;
    if (sscanf(hex + 2 * i, "%2x", &byte) != 1) return -1;
    out[i] = (unsigned char)byte;
  }
  return 0;
}

static void to_hex(const unsigned char digest[32], char out[65]) {
  for (int i = 0; i < 32; i++) snprintf(out + 2 * i, 3, "%02x", digest[i]);
}

/* Reads fd to the end into ctx's digest, reporting progress against total. */
static int32_t hash_file(example_state *s, ep_ctx *ctx, int fd, uint64_t total, unsigned char *buffer,
                         EVP_MD_CTX *md, unsigned char digest[32]) {
  const ep_host *host = s->host;
  uint64_t done = 0;
  for (;;) {
    if (host->cancelled(ctx)) return ep_failf(host, ctx, EP_ECANCELED, "cancelled after %llu bytes",
                                              (unsigned long long)done);
    ssize_t n = read(fd, buffer, (size_t)s->buffer_bytes);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ep_failf(host, ctx, -errno, "read failed after %llu bytes: %s", (unsigned long long)done,
                               strerror(errno));
    if (n == 0) break;
    if (EVP_DigestUpdate(md, buffer, (size_t)n) != 1) return ep_failf(host, ctx, EP_EIO, "SHA-256 update failed");
    done += (uint64_t)n;
    host->progress(ctx, done, total, "hashing");
  }
  unsigned int len = 0;
  if (EVP_DigestFinal_ex(md, digest, &len) != 1 || len != 32)
    return ep_failf(host, ctx, EP_EIO, "SHA-256 final failed");
  return 0;
}

static int32_t verify_sha256_run(void *state, ep_ctx *ctx) {
  example_state *s = state;
  const ep_host *host = s->host;
  const char *path = NULL, *expected_hex = NULL;
  unsigned char expected[32], actual[32];
  if (host->param_string(ctx, "path", &path) < 0 || host->param_string(ctx, "sha256", &expected_hex) < 0)
    return ep_failf(host, ctx, EP_EINVAL, "parameters 'path' and 'sha256' are required");
  if (parse_hex_digest(expected_hex, expected) < 0)
    return ep_failf(host, ctx, EP_EINVAL, "parameter 'sha256': expected 64 hex digits");

  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ep_failf(host, ctx, -errno, "cannot open %s: %s", path, strerror(errno));
  struct stat st;
  uint64_t total = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) ? (uint64_t)st.st_size : 0;
  unsigned char *buffer = host->alloc(ctx, s->buffer_bytes);
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  int32_t r;
  if (!buffer || !md || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1)
    r = ep_failf(host, ctx, EP_ENOMEM, "out of memory");
  else
    r = hash_file(s, ctx, fd, total, buffer, md, actual);
  EVP_MD_CTX_free(md);
  host->free(ctx, buffer);
  close(fd);
  if (r < 0) return r;

  if (memcmp(actual, expected, sizeof actual) != 0) {
    char actual_hex[65];
    to_hex(actual, actual_hex);
    return ep_failf(host, ctx, EP_ECHECKSUM, "%s: sha256 mismatch: expected %s, got %s", path, expected_hex,
                    actual_hex);
  }
  ep_logf(host, ctx, EP_LOG_INFO, "%s: sha256 verified (%llu bytes)", path, (unsigned long long)total);
  return 0;
}

static const ep_field_decl verify_params[] = {
    EP_FIELD_STRING_DECL("path", NULL, EP_FIELD_REQUIRED, 4096, "file to verify"),
    EP_FIELD_STRING_DECL("sha256", NULL, EP_FIELD_REQUIRED, 64, "expected digest, 64 hex digits"),
};

static const ep_action example_actions[] = {
    {
        .struct_size = sizeof(ep_action),
        .name = "file.verify_sha256",
        .description = "Check that a file's SHA-256 digest matches, reporting progress in bytes",
        .params = verify_params,
        .params_count = EP_COUNT(verify_params),
        .run = verify_sha256_run,
    },
};

static const ep_actions example_actions_table = {
    EP_ACTIONS_HEADER,
    .actions = example_actions,
    .actions_count = EP_COUNT(example_actions),
};

static int32_t example_init(const ep_host *host, ep_ctx *ctx, void **ret_state) {
  int64_t kib = 0;
  if (host->setting_int(ctx, "buffer_kib", &kib) < 0)
    return ep_failf(host, ctx, EP_EINVAL, "setting 'buffer_kib' is unavailable");
  example_state *s = host->alloc(ctx, sizeof *s);
  if (!s) return ep_failf(host, ctx, EP_ENOMEM, "out of memory");
  s->host = host;
  s->ctx = ctx;
  s->buffer_bytes = (uint64_t)kib * 1024;
  *ret_state = s;
  return 0;
}

static void example_deinit(void *state) {
  example_state *s = state;
  s->host->free(s->ctx, s);
}

static const void *example_get_capability(void *state, const char *id) {
  (void)state;
  return strcmp(id, EP_CAP_ACTIONS) == 0 ? &example_actions_table : NULL;
}

static const ep_field_decl example_settings[] = {
    EP_FIELD_INT_DECL("buffer_kib", "1024", EP_FIELD_OPTIONAL, 4, 65536, "read buffer size in KiB"),
};

static const char *const example_capabilities[] = {EP_CAP_ACTIONS, NULL};

EP_PLUGIN_EXPORT const ep_plugin_entry ep_plugin = {
    EP_PLUGIN_ENTRY_HEADER,
    .id = "example-sha256",
    .version = EXAMPLE_VERSION,
    .description = "Example node action: verify a file's SHA-256 digest",
    .capabilities = example_capabilities,
    .settings = example_settings,
    .settings_count = EP_COUNT(example_settings),
    .init = example_init,
    .deinit = example_deinit,
    .get_capability = example_get_capability,
};
