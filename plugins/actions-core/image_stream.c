/* actions-core: image.stream, see image_stream.h. */
#define _GNU_SOURCE /* O_CLOEXEC, posix_memalign */
#include "image_stream.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include "actions_core.h"
#include "fde.h"
#include "fde_route.h"
#include "target_disk.h"

#define WRITE_CHUNK (1u << 20) /* bytes per write: large and aligned, small enough to stay in cache */
#define WRITE_ALIGN 4096

const ep_field_decl image_stream_params[] = {
    EP_FIELD_STRING_DECL("url", NULL, EP_FIELD_REQUIRED, 2048, "image URL: http://, https:// or file://"),
    EP_FIELD_STRING_DECL("sha256", NULL, EP_FIELD_REQUIRED, 64, "SHA-256 (hex) of the image as written (decompressed)"),
    EP_FIELD_STRING_DECL("format", "auto", EP_FIELD_OPTIONAL, 8, "auto (by magic bytes), raw, zstd or gzip"),
    EP_FIELD_STRING_DECL("target", "", EP_FIELD_OPTIONAL, 255, "disk or image file to write; empty: target_serial or the first fixed disk"),
    EP_FIELD_STRING_DECL("target_serial", "", EP_FIELD_OPTIONAL, 64, "choose the disk with this serial number"),
    EP_FIELD_STRING_DECL("ca_file", "", EP_FIELD_OPTIONAL, 255, "PEM CA trusted for https; empty: the system's"),
    EP_FIELD_STRING_DECL("proxy", "", EP_FIELD_OPTIONAL, 255, "HTTP proxy URL; empty: none"),
    EP_FIELD_INT_DECL("retries", "5", EP_FIELD_OPTIONAL, 0, 100, "times a broken or failed download is resumed"),
    EP_FIELD_INT_DECL("retry_delay_ms", "1000", EP_FIELD_OPTIONAL, 0, 600000, "first wait before a retry (doubles)"),
    EP_FIELD_INT_DECL("stall_timeout_ms", "30000", EP_FIELD_OPTIONAL, 1000, 3600000, "a download with no data this long is broken"),
    EP_FIELD_BOOL_DECL("fde", "false", EP_FIELD_OPTIONAL,
                       "encrypt fde_partition as it is written (LUKS2, TPM 2.0 PCRs 7+15, recovery key to the "
                       "orchestrator); fails before writing on a node without a TPM or without Secure Boot enforcing"),
    EP_FIELD_STRING_DECL("fde_partition", "", EP_FIELD_OPTIONAL, GPT_NAME_MAX,
                         "GPT name of the partition to encrypt (16 MiB larger than its file system); required with fde"),
    EP_FIELD_STRING_DECL("fde_mapping", "cryptroot", EP_FIELD_OPTIONAL, FDE_MAPPING_MAX,
                         "device-mapper name of the opened partition (/dev/mapper/NAME), left open for file.write"),
    EP_FIELD_BOOL_DECL("fde_without_secure_boot", "false", EP_FIELD_OPTIONAL,
                       "encrypt even where the firmware does not enforce Secure Boot (off, setup mode, no UEFI); weakens "
                       "the protection: PCR 7 then records Secure Boot off: any OS booted with Secure Boot off opens the disk"),
};
const uint32_t image_stream_params_count = sizeof image_stream_params / sizeof image_stream_params[0];

typedef enum { FORMAT_DETECT, FORMAT_RAW, FORMAT_ZSTD, FORMAT_GZIP } image_format;

/* The writer thread writes full buffers while the run thread downloads, decompresses and
 * hashes into the next one, so the network, zstd, SHA-256 and the disk work at once. */
#define WRITE_BUFFERS 8

typedef struct pending_write {
  uint8_t *data;
  size_t len;
  uint64_t offset;
} pending_write;

typedef struct writer {
  pthread_t thread;
  bool running;
  pthread_mutex_t lock;
  pthread_cond_t changed;
  uint8_t *free_buffers[WRITE_BUFFERS];
  size_t free_count;
  pending_write queue[WRITE_BUFFERS];
  size_t queue_head, queue_count;
  bool closing;     /* no more writes: the thread ends once the queue is empty */
  int32_t error;    /* the first failure, 0 when none */
  char message[512];
} writer;

typedef struct stream_job {
  const ep_host *host;
  ep_ctx *ctx;
  int fd;
  char target[TARGET_PATH_MAX];
  image_format format;
  uint8_t magic[4]; /* the first bytes, kept until the format is known */
  size_t magic_len;
  ZSTD_DCtx *zstd;
  size_t zstd_pending; /* ZSTD_decompressStream's last hint: 0 once a frame is complete */
  z_stream gz;
  bool gz_ready;
  bool gz_done;
  uint8_t *buf; /* the buffer being filled: WRITE_CHUNK bytes, aligned */
  size_t used;
  uint64_t written;  /* bytes handed to the writer (all written once it has drained) */
  uint64_t received; /* image bytes consumed: where a resumed download starts */
  uint64_t total;    /* the image's size when the server said */
  const ep_fetch_status *live; /* the running fetch's status (its total) */
  EVP_MD_CTX *sha;   /* of every byte handed to the writer */
  writer w;
  fde_route route;   /* where the writer puts each byte: the disk, or around an encrypted partition */
  bool fde;
  bool fde_recheck; /* started over from byte 0 after the GPT was read: the new one must match */
  fde_job fde_job;
} stream_job;

static void *writer_main(void *arg) {
  stream_job *j = arg;
  writer *w = &j->w;
  pthread_mutex_lock(&w->lock);
  for (;;) {
    while (!w->queue_count && !w->closing) pthread_cond_wait(&w->changed, &w->lock);
    if (!w->queue_count) break;
    pending_write p = w->queue[w->queue_head];
    pthread_mutex_unlock(&w->lock);
    char message[sizeof w->message] = "";
    int32_t error = fde_route_write(&j->route, p.data, p.len, p.offset, message, sizeof message);
    pthread_mutex_lock(&w->lock);
    if (error && !w->error) w->error = error, memcpy(w->message, message, sizeof message);
    w->queue_head = (w->queue_head + 1) % WRITE_BUFFERS;
    w->queue_count--;
    w->free_buffers[w->free_count++] = p.data;
    pthread_cond_broadcast(&w->changed);
  }
  pthread_mutex_unlock(&w->lock);
  return NULL;
}

static int32_t writer_start(stream_job *j) {
  writer *w = &j->w;
  memset(w, 0, sizeof *w);
  pthread_mutex_init(&w->lock, NULL);
  pthread_cond_init(&w->changed, NULL);
  for (size_t i = 0; i < WRITE_BUFFERS; i++) {
    if (posix_memalign((void **)&w->free_buffers[i], WRITE_ALIGN, WRITE_CHUNK) != 0)
      return ep_failf(j->host, j->ctx, EP_ENOMEM, "out of memory");
    w->free_count++;
  }
  j->buf = w->free_buffers[--w->free_count];
  if (pthread_create(&w->thread, NULL, writer_main, j) != 0)
    return ep_failf(j->host, j->ctx, EP_ENOMEM, "cannot start the writer thread");
  w->running = true;
  return 0;
}

/* Waits until everything handed over is written; returns the writer's error, if any. */
static int32_t writer_drain(stream_job *j) {
  writer *w = &j->w;
  pthread_mutex_lock(&w->lock);
  while (w->queue_count && !w->error) pthread_cond_wait(&w->changed, &w->lock);
  int32_t error = w->error;
  pthread_mutex_unlock(&w->lock);
  return error ? ep_failf(j->host, j->ctx, error, "%s", w->message) : 0;
}

/* Stops the thread (after the queue is written) and frees the buffers. */
static void writer_stop(stream_job *j) {
  writer *w = &j->w;
  if (w->running) {
    pthread_mutex_lock(&w->lock);
    w->closing = true;
    pthread_cond_broadcast(&w->changed);
    pthread_mutex_unlock(&w->lock);
    pthread_join(w->thread, NULL);
    w->running = false;
  }
  for (size_t i = 0; i < w->free_count; i++) free(w->free_buffers[i]);
  w->free_count = 0;
  free(j->buf);
  j->buf = NULL;
  pthread_mutex_destroy(&w->lock);
  pthread_cond_destroy(&w->changed);
}

/* With fde, before the buffer goes to the writer: the GPT is read from the first one, and the
 * partition is encrypted and its mapping opened once every byte before it is written. The writer
 * only reads the route for buffers queued after these changes (the queue's lock orders them). */
static int32_t fde_step(stream_job *j) {
  if (!j->fde) return 0;
  int32_t r = 0;
  if (j->fde_recheck) { /* the first buffer of a download started over: its table before any byte goes */
    r = fde_replan(&j->fde_job, j->buf, j->used);
    if (r < 0) return r;
    j->fde_recheck = false;
  }
  if (!j->fde_job.planned) r = fde_plan(&j->fde_job, j->buf, j->used, &j->route);
  if (r == 0 && j->route.mapping_fd < 0 && j->written + j->used > j->route.part_start) {
    r = writer_drain(j);
    if (r == 0) r = fde_prepare(&j->fde_job, &j->route);
  }
  return r;
}

/* Hands the filled buffer to the writer and takes a free one (waiting while all are busy). */
static int32_t flush(stream_job *j) {
  if (!j->used) return 0;
  /* Hashed here, while the data is still in the cache; the writer only writes. */
  if (EVP_DigestUpdate(j->sha, j->buf, j->used) != 1) return ep_failf(j->host, j->ctx, EP_EIO, "SHA-256 failed");
  int32_t r = fde_step(j);
  if (r < 0) return r;
  writer *w = &j->w;
  pthread_mutex_lock(&w->lock);
  while (!w->free_count && !w->error) pthread_cond_wait(&w->changed, &w->lock);
  int32_t error = w->error;
  if (!error) {
    w->queue[(w->queue_head + w->queue_count) % WRITE_BUFFERS] = (pending_write){j->buf, j->used, j->written};
    w->queue_count++;
    j->buf = w->free_buffers[--w->free_count];
    pthread_cond_broadcast(&w->changed);
  }
  pthread_mutex_unlock(&w->lock);
  if (error) return ep_failf(j->host, j->ctx, error, "%s", w->message);
  j->written += j->used;
  j->used = 0;
  char message[64];
  snprintf(message, sizeof message, "%llu MiB written", (unsigned long long)(j->written >> 20));
  uint64_t total = j->total ? j->total : j->live ? j->live->total : 0;
  j->host->progress(j->ctx, j->received, total, message);
  return 0;
}

static int32_t put_raw(stream_job *j, const uint8_t *bytes, size_t len) {
  while (len) {
    size_t n = WRITE_CHUNK - j->used < len ? WRITE_CHUNK - j->used : len;
    memcpy(j->buf + j->used, bytes, n);
    j->used += n, bytes += n, len -= n;
    if (j->used == WRITE_CHUNK) {
      int32_t r = flush(j);
      if (r < 0) return r;
    }
  }
  return 0;
}

static int32_t put_zstd(stream_job *j, const uint8_t *bytes, size_t len) {
  ZSTD_inBuffer in = {bytes, len, 0};
  while (in.pos < in.size) {
    ZSTD_outBuffer out = {j->buf, WRITE_CHUNK, j->used};
    size_t hint = ZSTD_decompressStream(j->zstd, &out, &in);
    if (ZSTD_isError(hint))
      return ep_failf(j->host, j->ctx, EP_EFAILED, "zstd: %s at image byte %llu", ZSTD_getErrorName(hint),
                      (unsigned long long)j->received);
    j->zstd_pending = hint;
    j->used = out.pos;
    if (j->used == WRITE_CHUNK) {
      int32_t r = flush(j);
      if (r < 0) return r;
    }
  }
  return 0;
}

static int32_t put_gzip(stream_job *j, const uint8_t *bytes, size_t len) {
  j->gz.next_in = (Bytef *)bytes;
  j->gz.avail_in = (uInt)len;
  while (j->gz.avail_in > 0) {
    if (j->gz_done) { /* another gzip member follows (as gzip -c a b > c makes) */
      inflateReset(&j->gz);
      j->gz_done = false;
    }
    j->gz.next_out = j->buf + j->used;
    j->gz.avail_out = (uInt)(WRITE_CHUNK - j->used);
    int z = inflate(&j->gz, Z_NO_FLUSH);
    if (z != Z_OK && z != Z_STREAM_END && !(z == Z_BUF_ERROR && j->gz.avail_out == 0))
      return ep_failf(j->host, j->ctx, EP_EFAILED, "gzip: %s at image byte %llu", j->gz.msg ? j->gz.msg : "corrupt data",
                      (unsigned long long)j->received);
    j->gz_done = z == Z_STREAM_END;
    j->used = WRITE_CHUNK - j->gz.avail_out;
    if (j->used == WRITE_CHUNK) {
      int32_t r = flush(j);
      if (r < 0) return r;
    }
  }
  return 0;
}

static int32_t put(stream_job *j, const uint8_t *bytes, size_t len) {
  switch (j->format) {
  case FORMAT_ZSTD: return put_zstd(j, bytes, len);
  case FORMAT_GZIP: return put_gzip(j, bytes, len);
  default: return put_raw(j, bytes, len);
  }
}

static int32_t start_format(stream_job *j) {
  if (j->format == FORMAT_DETECT) {
    static const uint8_t zstd_magic[4] = {0x28, 0xb5, 0x2f, 0xfd}, gzip_magic[2] = {0x1f, 0x8b};
    j->format = j->magic_len == 4 && !memcmp(j->magic, zstd_magic, 4)   ? FORMAT_ZSTD
                : j->magic_len >= 2 && !memcmp(j->magic, gzip_magic, 2) ? FORMAT_GZIP
                                                                       : FORMAT_RAW;
  }
  if (j->format == FORMAT_ZSTD && !(j->zstd = ZSTD_createDCtx()))
    return ep_failf(j->host, j->ctx, EP_ENOMEM, "out of memory");
  if (j->format == FORMAT_GZIP) {
    if (inflateInit2(&j->gz, 15 + 32) != Z_OK) return ep_failf(j->host, j->ctx, EP_ENOMEM, "out of memory");
    j->gz_ready = true;
  }
  return put(j, j->magic, j->magic_len);
}

/* Receives the download: keeps the first four bytes until the format is known. */
static int32_t on_data(void *data, const uint8_t *bytes, uint64_t len) {
  stream_job *j = data;
  if (j->host->cancelled(j->ctx))
    return ep_failf(j->host, j->ctx, EP_ECANCELED, "cancelled after %llu bytes", (unsigned long long)j->received);
  int32_t r = 0;
  if (j->format == FORMAT_DETECT) {
    size_t take = len < sizeof j->magic - j->magic_len ? (size_t)len : sizeof j->magic - j->magic_len;
    memcpy(j->magic + j->magic_len, bytes, take);
    j->magic_len += take;
    bytes += take;
    len -= take;
    j->received += take;
    if (j->magic_len < sizeof j->magic) return 0;
    r = start_format(j);
  }
  j->received += len; /* counted first, so progress reports include this chunk */
  if (r == 0 && len) r = put(j, bytes, (size_t)len);
  return r;
}

/* The decompressor reached the end of its stream (or there is none). */
static bool complete(const stream_job *j) {
  if (j->format == FORMAT_ZSTD) return j->zstd_pending == 0;
  if (j->format == FORMAT_GZIP) return j->gz_done;
  return true;
}

static void to_hex(const unsigned char *digest, char out[65]) {
  for (int i = 0; i < 32; i++) snprintf(out + 2 * i, 3, "%02x", digest[i]);
}

static int32_t finish(stream_job *j, const char *expected) {
  int32_t r = 0;
  if (j->format == FORMAT_DETECT) r = start_format(j); /* an image shorter than its magic */
  if (r == 0) r = flush(j);
  if (r == 0) r = writer_drain(j);
  if (r < 0) return r;
  if (!complete(j))
    return ep_failf(j->host, j->ctx, EP_EFAILED, "the image ends in the middle of its %s stream (truncated at byte %llu)",
                    j->format == FORMAT_ZSTD ? "zstd" : "gzip", (unsigned long long)j->received);
  if (j->fde && j->route.mapping_fd < 0)
    return ep_failf(j->host, j->ctx, EP_EFAILED, "fde: the image ends at byte %llu, before partition '%s' (byte %llu)",
                    (unsigned long long)j->written, j->fde_job.part_name, (unsigned long long)j->route.part_start);
  if (fsync(j->fd) < 0) return ep_failf(j->host, j->ctx, EP_EIO, "%s: fsync: %s", j->target, strerror(errno));
  if (j->fde && fsync(j->route.mapping_fd) < 0)
    return ep_failf(j->host, j->ctx, EP_EIO, "%s: fsync: %s", j->route.mapping_name, strerror(errno));
  unsigned char digest[32];
  unsigned int len = 0;
  char got[65];
  if (EVP_DigestFinal_ex(j->sha, digest, &len) != 1) return ep_failf(j->host, j->ctx, EP_EIO, "SHA-256 failed");
  to_hex(digest, got);
  if (strcasecmp(got, expected) != 0)
    return ep_failf(j->host, j->ctx, EP_ECHECKSUM, "sha256 mismatch: expected %s, got %s (%llu bytes written to %s)",
                    expected, got, (unsigned long long)j->written, j->target);
  char message[64];
  snprintf(message, sizeof message, "%llu MiB written, sha256 verified", (unsigned long long)(j->written >> 20));
  j->host->progress(j->ctx, j->received, j->total ? j->total : j->received, message);
  ep_logf(j->host, j->ctx, EP_LOG_INFO, "%s: %llu bytes written from %llu received, sha256 %s%s%s", j->target,
          (unsigned long long)j->written, (unsigned long long)j->received, got,
          j->fde ? "; partition encrypted, open as " : "", j->fde ? j->route.mapping_name : "");
  return 0;
}

static bool hex64(const char *s) {
  if (strlen(s) != 64) return false;
  for (int i = 0; i < 64; i++)
    if (!strchr("0123456789abcdefABCDEF", s[i])) return false;
  return true;
}

/* Waits ms, or less when the run is cancelled. */
static void pause_ms(const ep_host *host, ep_ctx *ctx, int64_t ms) {
  for (int64_t waited = 0; waited < ms && !host->cancelled(ctx); waited += 50) {
    struct timespec ts = {0, 50 * 1000000L};
    nanosleep(&ts, NULL);
  }
}

/* Opens the target for writing: a block device as it is, a file created or truncated. */
static int32_t open_target(stream_job *j) {
  struct stat st;
  bool block = stat(j->target, &st) == 0 && S_ISBLK(st.st_mode);
  j->fd = open(j->target, O_WRONLY | O_CLOEXEC | (block ? 0 : O_CREAT | O_TRUNC), 0644);
  if (j->fd < 0) return ep_failf(j->host, j->ctx, -errno, "target: cannot open %s: %s", j->target, strerror(errno));
  return 0;
}

/* Starts over from byte 0 (the server cannot resume). */
static int32_t restart(stream_job *j) {
  int32_t r = writer_drain(j);
  if (r < 0) return r;
  ZSTD_freeDCtx(j->zstd);
  j->zstd = NULL;
  if (j->gz_ready) inflateEnd(&j->gz);
  j->gz_ready = j->gz_done = false;
  j->magic_len = j->used = 0;
  j->written = j->received = 0;
  j->zstd_pending = 0;
  j->fde_recheck = j->fde && j->fde_job.planned; /* the route was made from the first download's table */
  return EVP_DigestInit_ex(j->sha, EVP_sha256(), NULL) == 1 ? 0 : ep_failf(j->host, j->ctx, EP_EIO, "SHA-256 failed");
}

int32_t image_stream_run(void *plugin_state, ep_ctx *ctx) {
  const ep_host *host = ((actions_core_state *)plugin_state)->host;
  const char *url = NULL, *sha256 = NULL, *format = NULL, *ca_file = NULL, *proxy = NULL;
  int64_t retries = 0, delay = 0, stall = 0;
  int32_t fde = 0;
  host->param_string(ctx, "url", &url);
  host->param_string(ctx, "sha256", &sha256);
  host->param_string(ctx, "format", &format);
  host->param_string(ctx, "ca_file", &ca_file);
  host->param_string(ctx, "proxy", &proxy);
  host->param_int(ctx, "retries", &retries);
  host->param_int(ctx, "retry_delay_ms", &delay);
  host->param_int(ctx, "stall_timeout_ms", &stall);
  host->param_bool(ctx, "fde", &fde);
  if (!hex64(sha256)) return ep_failf(host, ctx, EP_EINVAL, "sha256: must be 64 hex digits");
  stream_job j = {.host = host, .ctx = ctx, .fd = -1};
  if (!strcmp(format, "auto")) j.format = FORMAT_DETECT;
  else if (!strcmp(format, "raw")) j.format = FORMAT_RAW;
  else if (!strcmp(format, "zstd")) j.format = FORMAT_ZSTD;
  else if (!strcmp(format, "gzip")) j.format = FORMAT_GZIP;
  else return ep_failf(host, ctx, EP_EINVAL, "format: '%s' is not auto, raw, zstd or gzip", format);
  image_format asked = j.format;
  int32_t r = target_disk_resolve(host, ctx, "", j.target);
  if (r < 0) return r;
  j.fde = fde != 0;
  j.fde_job.mapping_fd = -1;
  if (j.fde && (r = fde_preflight(&j.fde_job, host, ctx, j.target)) < 0) {
    fde_finish(&j.fde_job, false);
    return r;
  }
  if (!(j.sha = EVP_MD_CTX_new()) || EVP_DigestInit_ex(j.sha, EVP_sha256(), NULL) != 1)
    r = ep_failf(host, ctx, EP_ENOMEM, "out of memory");
  if (r == 0) r = open_target(&j);
  j.route = (fde_route){.disk_fd = j.fd, .disk_name = j.target, .mapping_fd = -1};
  if (r == 0) r = writer_start(&j);
  if (r == 0 && j.format != FORMAT_DETECT && j.format != FORMAT_RAW) {
    j.magic_len = 0;
    r = start_format(&j);
  }
  bool restarted = false;
  for (int64_t attempt = 0; r == 0; attempt++) {
    ep_fetch_request req = {.struct_size = sizeof req, .url = url, .ca_file = ca_file, .proxy = proxy,
                            .offset = j.received, .stall_timeout_ms = stall};
    ep_fetch_status st = {.struct_size = sizeof st};
    j.live = &st;
    r = host->fetch(ctx, &req, on_data, &j, &st);
    j.live = NULL;
    if (st.total) j.total = st.total;
    if (r == 0) break;
    if (r == EP_ENOTSUP && !restarted) { /* the server cannot resume: start over once */
      ep_logf(host, ctx, EP_LOG_WARN, "%s; starting over from byte 0", st.message);
      restarted = true;
      j.format = asked;
      r = restart(&j);
      if (r == 0 && j.format != FORMAT_DETECT && j.format != FORMAT_RAW) r = start_format(&j);
      continue;
    }
    if (r != EP_EIO || attempt >= retries || host->cancelled(ctx)) {
      if (r == EP_EIO && attempt >= retries)
        r = ep_failf(host, ctx, EP_EIO, "gave up after %lld attempts: %s", (long long)attempt + 1, st.message);
      break;
    }
    int64_t wait = delay << (attempt < 10 ? attempt : 10);
    ep_logf(host, ctx, EP_LOG_WARN, "download broke after %llu bytes (%s); resuming at byte %llu in %lld ms (retry %lld of %lld)",
            (unsigned long long)st.received, st.message, (unsigned long long)j.received, (long long)wait,
            (long long)attempt + 1, (long long)retries);
    pause_ms(host, ctx, wait);
    r = 0;
  }
  if (r == 0) r = finish(&j, sha256);
  writer_stop(&j); /* after a failure it still writes what it holds, then ends */
  if (j.fd >= 0) close(j.fd);
  if (j.fde) fde_finish(&j.fde_job, r == 0); /* success leaves the mapping open for file.write */
  ZSTD_freeDCtx(j.zstd);
  if (j.gz_ready) inflateEnd(&j.gz);
  EVP_MD_CTX_free(j.sha);
  return r;
}
