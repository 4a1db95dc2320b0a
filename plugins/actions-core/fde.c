/* actions-core: image.stream's full-disk encryption, see fde.h. */
#define _GNU_SOURCE /* explicit_bzero, pipe2, mkdtemp, memfd_create, close_range */
#include "fde.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libcryptsetup.h>
#include <linux/blkpg.h>
#include <linux/dm-ioctl.h>
#include <linux/fs.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <tss2/tss2_esys.h>
#include <tss2/tss2_rc.h>
#include <tss2/tss2_tctildr.h>

#include "crypt_holder.h"
#include "secure_boot.h"

#define RECOVERY_KEY_BYTES 32        /* 256 random bits, as 64 hex digits: LUKS2 keyslot 0 */
#define RECOVERY_KEY_ITERATIONS 1000 /* pbkdf2: the key has full entropy, slow hashing buys nothing */
#define LUKS_DATA_OFFSET_SECTORS (FDE_HEADER_ROOM / 512)
#define ENROLL_OUTPUT_MAX 2048       /* systemd-cryptenroll's stderr kept for the message */
#define ENROLL_TIMEOUT_S 300
#define ENROLL_KEY_FD 3              /* the recovery key's fd in systemd-cryptenroll: /proc/self/fd/3 */
#define KEY_DIR_BASE "/run"          /* tmpfs: a key file there (no memfd) never reaches a disk */
#define KEY_DIR_PREFIX "edgeprov-fde."
#define DEVICE_WAIT_MS 3000          /* for devtmpfs to show a new partition's node */
#define DA_MAX_TRIES 32              /* the TPM's dictionary-attack settings (fde.md, pitfall 1) */
#define DA_RECOVERY_S 60
#define DA_LOCKOUT_RECOVERY_S 600
#define LOCK_PCR 15                  /* sealed at zero with PCR 7; the unlocking stage extends it (fde.md) */
#define ENROLL_PCRS "7+15"

/* libcryptsetup's last error line, for the messages (it never logs keys). */
static __thread char crypt_last[256];

static void crypt_log_collect(int level, const char *msg, void *data) {
  (void)data;
  if (level != CRYPT_LOG_ERROR || !msg) return;
  snprintf(crypt_last, sizeof crypt_last, "%s", msg);
  crypt_last[strcspn(crypt_last, "\n")] = '\0';
}

/* " (libcryptsetup: ...)" or "" */
static const char *crypt_detail(char *out, size_t cap) {
  if (crypt_last[0]) snprintf(out, cap, " (libcryptsetup: %s)", crypt_last);
  else out[0] = '\0';
  return out;
}

static bool valid_mapping(const char *name) {
  size_t len = strlen(name);
  return len > 0 && len <= FDE_MAPPING_MAX && strcmp(name, ".") && strcmp(name, "..") &&
         strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") == len;
}

/* ---- the TPM ------------------------------------------------------------------------------- */

typedef struct tpm {
  TSS2_TCTI_CONTEXT *tcti;
  ESYS_CONTEXT *esys;
} tpm;

static void tpm_close(tpm *t) {
  if (t->esys) Esys_Finalize(&t->esys);
  if (t->tcti) Tss2_TctiLdr_Finalize(&t->tcti);
}

/* Opens the TPM and asks it a question, so a TCTI that loads but reaches nothing fails here. */
static TSS2_RC tpm_open(tpm *t, const char *tcti, const char **what) {
  *what = "loading its TCTI";
  TSS2_RC rc = Tss2_TctiLdr_Initialize(tcti, &t->tcti);
  if (rc == TSS2_RC_SUCCESS) *what = "Esys_Initialize", rc = Esys_Initialize(&t->esys, t->tcti, NULL);
  if (rc == TSS2_RC_SUCCESS) {
    TPMI_YES_NO more = 0;
    TPMS_CAPABILITY_DATA *data = NULL;
    *what = "asking its properties";
    rc = Esys_GetCapability(t->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, TPM2_CAP_TPM_PROPERTIES,
                            TPM2_PT_FAMILY_INDICATOR, 1, &more, &data);
    free(data);
  }
  if (rc != TSS2_RC_SUCCESS) tpm_close(t);
  return rc;
}

/* TPM2_PT_PERMANENT's lockoutAuthSet: someone took the TPM's lockout hierarchy (an owner's
 * policy). rc is set when the question fails. */
static bool tpm_lockout_auth_set(tpm *t, TSS2_RC *rc) {
  TPMI_YES_NO more = 0;
  TPMS_CAPABILITY_DATA *data = NULL;
  *rc = Esys_GetCapability(t->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, TPM2_CAP_TPM_PROPERTIES, TPM2_PT_PERMANENT, 1,
                           &more, &data);
  bool set = *rc == TSS2_RC_SUCCESS && data && data->data.tpmProperties.count >= 1 &&
             data->data.tpmProperties.tpmProperty[0].property == TPM2_PT_PERMANENT &&
             (data->data.tpmProperties.tpmProperty[0].value & TPMA_PERMANENT_LOCKOUTAUTHSET);
  free(data);
  return set;
}

/* What systemd-cryptenroll will find in the sha256 bank, the one the unlocking stage's PCR 15
 * lock extends. systemd 252 picks the bank itself (sha256 when complete and measured, else sha1
 * when that one is): the token's tpm2-pcr-bank is checked after enrolment (enrolled_bank). */
typedef struct sha256_bank {
  bool complete;   /* TPM2_CAP_PCRS: sha256 with all 24 PCRs allocated, PCRs 7 and 15 readable */
  bool pcr15_zero; /* PCR 15 all zeros: nothing extended it in this boot */
} sha256_bank;

static bool digest_is_all(const TPM2B_DIGEST *d, uint8_t byte) {
  for (size_t i = 0; i < d->size; i++)
    if (d->buffer[i] != byte) return false;
  return true;
}

static TSS2_RC tpm_sha256_bank(tpm *t, sha256_bank *out) {
  memset(out, 0, sizeof *out);
  TPMI_YES_NO more = 0;
  TPMS_CAPABILITY_DATA *caps = NULL;
  TSS2_RC rc = Esys_GetCapability(t->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, TPM2_CAP_PCRS, 0, 1, &more, &caps);
  if (rc == TSS2_RC_SUCCESS && caps) {
    const TPML_PCR_SELECTION *banks = &caps->data.assignedPCR;
    for (UINT32 i = 0; i < banks->count && i < TPM2_NUM_PCR_BANKS; i++) {
      const TPMS_PCR_SELECTION *b = &banks->pcrSelections[i];
      if (b->hash == TPM2_ALG_SHA256 && b->sizeofSelect >= 3 && b->pcrSelect[0] == 0xff && b->pcrSelect[1] == 0xff &&
          b->pcrSelect[2] == 0xff)
        out->complete = true;
    }
  }
  free(caps);
  if (rc != TSS2_RC_SUCCESS) return rc;
  TPML_PCR_SELECTION want = {.count = 1,
                             .pcrSelections = {{.hash = TPM2_ALG_SHA256, .sizeofSelect = 3, .pcrSelect = {0, 0, 0}}}};
  want.pcrSelections[0].pcrSelect[0] = 1u << 7;
  want.pcrSelections[0].pcrSelect[LOCK_PCR / 8] |= (uint8_t)(1u << (LOCK_PCR % 8));
  UINT32 counter = 0;
  TPML_PCR_SELECTION *got = NULL;
  TPML_DIGEST *values = NULL;
  rc = Esys_PCR_Read(t->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &want, &counter, &got, &values);
  /* Both PCRs, in index order (7, then 15), 32 bytes each: anything less counts as not there. */
  bool both = rc == TSS2_RC_SUCCESS && got && got->count == 1 && got->pcrSelections[0].hash == TPM2_ALG_SHA256 &&
              got->pcrSelections[0].sizeofSelect >= 2 && (got->pcrSelections[0].pcrSelect[0] & (1u << 7)) &&
              (got->pcrSelections[0].pcrSelect[LOCK_PCR / 8] & (1u << (LOCK_PCR % 8))) && values && values->count == 2 &&
              values->digests[0].size == 32 && values->digests[1].size == 32;
  if (both) {
    out->pcr15_zero = digest_is_all(&values->digests[1], 0x00);
  } else {
    out->complete = false; /* no such PCRs in that bank: not one to seal to */
  }
  free(got);
  free(values);
  return rc;
}

/* A node's TPM counts the unclean power-offs of an unsealed boot as authorization failures; three
 * locked the prototype's disk (fde.md, pitfall 1). There is no PIN, so the counter protects
 * nothing: reset it and allow more, with the empty lockout authorization of a TPM nobody took.
 * A TPM whose lockout authorization is set keeps its owner's policy. A failure is a warning: the
 * disk still unlocks while the TPM is not in lockout. */
static void tpm_relax_lockout(fde_job *f) {
  tpm t = {0};
  const char *what = "";
  TSS2_RC rc = tpm_open(&t, f->tpm, &what);
  if (rc == TSS2_RC_SUCCESS) {
    what = "reading TPM2_PT_PERMANENT";
    if (tpm_lockout_auth_set(&t, &rc)) {
      tpm_close(&t);
      ep_logf(f->host, f->ctx, EP_LOG_INFO,
              "fde: the TPM's lockout authorization is set (its owner took it): its dictionary-attack policy is left as "
              "the owner set it");
      return;
    }
  }
  if (rc == TSS2_RC_SUCCESS) {
    what = "TPM2_DictionaryAttackLockReset";
    rc = Esys_DictionaryAttackLockReset(t.esys, ESYS_TR_RH_LOCKOUT, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE);
  }
  if (rc == TSS2_RC_SUCCESS) {
    what = "TPM2_DictionaryAttackParameters";
    rc = Esys_DictionaryAttackParameters(t.esys, ESYS_TR_RH_LOCKOUT, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE,
                                         DA_MAX_TRIES, DA_RECOVERY_S, DA_LOCKOUT_RECOVERY_S);
  }
  tpm_close(&t);
  if (rc != TSS2_RC_SUCCESS)
    ep_logf(f->host, f->ctx, EP_LOG_WARN,
            "fde: the TPM's dictionary-attack lockout was left as it was (%s failed: %s): unclean power-offs may lock "
            "the disk until the TPM recovers; the recovery key opens it",
            what, Tss2_RC_Decode(rc));
  else
    ep_logf(f->host, f->ctx, EP_LOG_INFO, "fde: TPM dictionary-attack lockout reset (max tries %d, recovery %d s, lockout recovery %d s)",
            DA_MAX_TRIES, DA_RECOVERY_S, DA_LOCKOUT_RECOVERY_S);
}

/* ---- checks before writing ------------------------------------------------------------------ */

/* The PATH entry that holds an executable name, into out; false when none does. */
static bool find_program(const char *name, char *out, size_t cap) {
  const char *path = getenv("PATH");
  if (!path || !*path) path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  for (const char *p = path; *p;) {
    size_t len = strcspn(p, ":");
    if (len && (size_t)snprintf(out, cap, "%.*s/%s", (int)len, p, name) < cap && access(out, X_OK) == 0) return true;
    p += len;
    if (*p == ':') p++;
  }
  return false;
}

static void sweep_stale_key_dirs(fde_job *f);

/* Closes a mapping of that name left by an earlier attempt on this disk, so the partition can be
 * told anew; one that reads anything but a partition of the target is another device's: never
 * closed, the run fails. */
static int32_t close_stale_mapping(fde_job *f) {
  struct crypt_device *cd = NULL;
  if (crypt_init_by_name(&cd, f->mapping) < 0) return 0; /* none (or no device-mapper: nothing to close) */
  crypt_status_info status = crypt_status(cd, f->mapping);
  int32_t r = 0;
  char other[NAME_MAX + 1] = "";
  int ours = status == CRYPT_ACTIVE || status == CRYPT_BUSY ? crypt_mapping_on_disk("", f->mapping, f->disk_name, other, sizeof other) : 1;
  if (ours != 1) {
    const char *device = crypt_get_device_name(cd);
    char reads[NAME_MAX + 16];
    if (other[0]) snprintf(reads, sizeof reads, "/dev/%s", other);
    else snprintf(reads, sizeof reads, "%.250s", device ? device : "a device sysfs does not show");
    r = ep_failf(f->host, f->ctx, EP_EFAILED,
                 "fde: fde_mapping %s is in use by another device (/dev/mapper/%s reads %s, not a partition of %s): "
                 "choose another fde_mapping or close it: nothing written",
                 f->mapping, f->mapping, reads, f->disk);
  } else if (status == CRYPT_ACTIVE || status == CRYPT_BUSY) {
    int rc = crypt_deactivate(cd, f->mapping);
    char detail[300];
    if (rc < 0)
      r = ep_failf(f->host, f->ctx, EP_EFAILED,
                   "fde: /dev/mapper/%s is open (an earlier attempt's?) and cannot be closed: %s%s: nothing written",
                   f->mapping, strerror(-rc), crypt_detail(detail, sizeof detail));
    else
      ep_logf(f->host, f->ctx, EP_LOG_INFO, "fde: closed /dev/mapper/%s, left open by an earlier attempt", f->mapping);
  }
  crypt_free(cd);
  return r;
}

int32_t fde_tpm_check(const ep_host *host, ep_ctx *ctx, char tcti_out[FDE_TCTI_MAX]) {
  const char *tcti = NULL;
  int32_t r = host->site_string(ctx, "run.tpm", &tcti);
  if (r < 0 || !tcti || !*tcti)
    return ep_failf(host, ctx, EP_EFAILED,
                    "fde: no TPM 2.0 on this node (the agent has none: --tpm off, or no /dev/tpmrm0 for --tpm auto): "
                    "nothing written");
  if (strlen(tcti) >= FDE_TCTI_MAX) return ep_failf(host, ctx, EP_EINVAL, "fde: run.tpm is longer than %d bytes", FDE_TCTI_MAX - 1);
  tpm t = {0};
  const char *what = "";
  TSS2_RC rc = tpm_open(&t, tcti, &what);
  if (rc != TSS2_RC_SUCCESS)
    return ep_failf(host, ctx, EP_EFAILED, "fde: no TPM 2.0 on this node (%s: %s failed: %s): nothing written", tcti, what,
                    Tss2_RC_Decode(rc));
  /* systemd-cryptenroll seals to PCR 15's value now: it must be the zero the installed OS's
   * unlocking stage finds before it extends it; and to the sha256 bank, the one that stage locks. */
  sha256_bank bank;
  rc = tpm_sha256_bank(&t, &bank);
  tpm_close(&t); /* systemd-cryptenroll talks to it later: a TPM without a resource manager takes one client */
  if (rc != TSS2_RC_SUCCESS)
    return ep_failf(host, ctx, EP_EFAILED,
                    "fde: cannot read the sha256 PCRs 7 and 15 of this node's TPM (%s: %s): nothing written", tcti,
                    Tss2_RC_Decode(rc));
  if (!bank.complete)
    return ep_failf(host, ctx, EP_EFAILED,
                    "fde: this node's TPM has no complete sha256 PCR bank (all 24 PCRs): systemd-cryptenroll would seal to "
                    "another bank, which the installed OS's PCR 15 lock does not touch: nothing written");
  if (!bank.pcr15_zero)
    return ep_failf(host, ctx, EP_EFAILED,
                    "fde: PCR 15 of this node's TPM is not zero (something in this boot extended it), so the installed OS "
                    "could not unseal what would be enrolled now: nothing written");
  snprintf(tcti_out, FDE_TCTI_MAX, "%s", tcti);
  return 0;
}

int32_t fde_secure_boot_check(const ep_host *host, ep_ctx *ctx, const char *outcome) {
  int32_t without = 0;
  host->param_bool(ctx, "fde_without_secure_boot", &without);
  char why[SECURE_BOOT_WHY_MAX];
  if (secure_boot_read(SECURE_BOOT_EFI_DIR, why, sizeof why) == SECURE_BOOT_ENFORCING) return 0;
  if (!without)
    return ep_failf(host, ctx, EP_EFAILED,
                    "fde: Secure Boot is not enforcing on this node (%s): its PCR 7 records Secure Boot off, which any OS "
                    "booted with Secure Boot off reproduces, and would open the disk; turn Secure Boot on (or set "
                    "fde_without_secure_boot): %s",
                    why, outcome);
  ep_logf(host, ctx, EP_LOG_WARN,
          "fde: Secure Boot is not enforcing on this node (%s), and fde_without_secure_boot is set: PCR 7 then records "
          "Secure Boot off: any OS booted with Secure Boot off opens the disk",
          why);
  return 0;
}

int32_t fde_preflight(fde_job *f, const ep_host *host, ep_ctx *ctx, const char *disk) {
  memset(f, 0, sizeof *f);
  f->host = host;
  f->ctx = ctx;
  f->mapping_fd = -1;
  crypt_set_log_callback(NULL, crypt_log_collect, NULL);
  const char *part = "", *mapping = "";
  host->param_string(ctx, "fde_partition", &part);
  host->param_string(ctx, "fde_mapping", &mapping);
  if (!*part) return ep_failf(host, ctx, EP_EINVAL, "fde_partition: required when fde is true (the GPT name of the partition to encrypt)");
  if (strlen(part) > GPT_NAME_MAX) return ep_failf(host, ctx, EP_EINVAL, "fde_partition: longer than a GPT name");
  if (!valid_mapping(mapping))
    return ep_failf(host, ctx, EP_EINVAL, "fde_mapping: '%.64s' is not a device-mapper name ([A-Za-z0-9_.-], 1 to %d bytes)", mapping,
                    FDE_MAPPING_MAX);
  if (!EP_HOST_HAS(host, store_secret))
    return ep_failf(host, ctx, EP_ENOTSUP, "fde: the host is too old (ABI 1.6 store_secret is needed for the recovery key): nothing written");
  snprintf(f->part_name, sizeof f->part_name, "%s", part);
  snprintf(f->mapping, sizeof f->mapping, "%s", mapping);
  snprintf(f->disk, sizeof f->disk, "%s", disk);

  /* A node asked for FDE without a TPM never gets a clear copy of the image. */
  int32_t r = fde_tpm_check(host, ctx, f->tpm);
  if (r < 0) return r;
  /* Nor does one whose PCR 7 would say nothing of what it boots. */
  if ((r = fde_secure_boot_check(host, ctx, "nothing written")) < 0) return r;

  struct stat st;
  if (stat(disk, &st) < 0 || !S_ISBLK(st.st_mode))
    return ep_failf(host, ctx, EP_EINVAL, "fde: target %s is not a block device: the encrypted partition needs one: nothing written", disk);
  /* sysfs names the disk by its numbers: a udev link (/dev/disk/by-id/...) names nothing there. */
  if (sysfs_block_name("", major(st.st_rdev), minor(st.st_rdev), f->disk_name, sizeof f->disk_name) < 0)
    return ep_failf(host, ctx, EP_EIO, "fde: target %s (%u:%u) is not in /sys/dev/block: nothing written", disk, major(st.st_rdev),
                    minor(st.st_rdev));
  /* devtmpfs makes the node once dm_mod is loaded; a static /dev may have one without the driver,
   * which then fails where the mapping is opened, with libcryptsetup's reason. */
  if (stat("/dev/mapper/control", &st) < 0 || !S_ISCHR(st.st_mode))
    return ep_failf(host, ctx, EP_EFAILED,
                    "fde: device-mapper is not available on this node (no /dev/mapper/control: dm_mod and dm_crypt not "
                    "loaded?): nothing written");
  char program[PATH_MAX];
  if (!find_program("systemd-cryptenroll", program, sizeof program))
    return ep_failf(host, ctx, EP_EFAILED, "fde: systemd-cryptenroll is not installed on this node (it enrolls the TPM): nothing written");
  sweep_stale_key_dirs(f);
  return close_stale_mapping(f);
}

int32_t fde_plan(fde_job *f, const uint8_t *buf, size_t len, fde_route *route) {
  char message[700];
  int rc = gpt_find_partition(buf, len, f->part_name, &f->part, message, sizeof message);
  if (rc < 0) return ep_failf(f->host, f->ctx, rc == EP_ENOENT ? EP_ENOENT : EP_EINVAL, "fde_partition: %s", message);
  if (f->part.end <= f->part.start) /* gpt.c refuses it: kept so the subtraction below cannot wrap */
    return ep_failf(f->host, f->ctx, EP_EINVAL, "fde_partition: partition %u '%s' ends (byte %llu) before it starts (byte %llu)",
                    f->part.number, f->part_name, (unsigned long long)f->part.end, (unsigned long long)f->part.start);
  uint64_t size = f->part.end - f->part.start;
  if (size <= FDE_HEADER_ROOM + (UINT64_C(1) << 20))
    return ep_failf(f->host, f->ctx, EP_EINVAL,
                    "image not built for FDE: partition %u '%s' has %llu bytes, not room for a file system and LUKS2's 16 MiB",
                    f->part.number, f->part_name, (unsigned long long)size);
  if (f->part.start < (uint64_t)f->part.sector_size * 34)
    return ep_failf(f->host, f->ctx, EP_EINVAL, "fde_partition: partition %u starts inside the GPT", f->part.number);
  route->split = true;
  route->part_start = f->part.start;
  route->part_end = f->part.end;
  route->part_name = f->part_name;
  route->mapping_fd = -1;
  f->planned = true;
  ep_logf(f->host, f->ctx, EP_LOG_INFO, "fde: partition %u '%s' (image bytes %llu-%llu) is encrypted as /dev/mapper/%s", f->part.number,
          f->part_name, (unsigned long long)f->part.start, (unsigned long long)f->part.end, f->mapping);
  return 0;
}

int32_t fde_replan(fde_job *f, const uint8_t *buf, size_t len) {
  char message[700];
  int rc = gpt_same_partition(buf, len, &f->part, message, sizeof message);
  if (rc < 0)
    return ep_failf(f->host, f->ctx, rc == EP_ENOENT ? EP_ENOENT : EP_EINVAL,
                    "fde: the download started over from byte 0 and %s: nothing of the new download written", message);
  ep_logf(f->host, f->ctx, EP_LOG_INFO, "fde: the image read again from byte 0 has partition %u '%s' as before", f->part.number,
          f->part_name);
  return 0;
}

/* Why device-mapper cannot be used here, into why (cap bytes); false when it can (DM_VERSION answers). */
static bool dm_unusable(char *why, size_t cap) {
  int fd = open("/dev/mapper/control", O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    snprintf(why, cap, "/dev/mapper/control: %s", strerror(errno));
    return true;
  }
  struct dm_ioctl io = {.version = {DM_VERSION_MAJOR, 0, 0}, .data_size = sizeof io};
  bool bad = ioctl(fd, DM_VERSION, &io) < 0;
  if (bad) snprintf(why, cap, "DM_VERSION on /dev/mapper/control: %s", strerror(errno));
  close(fd);
  return bad;
}

/* ---- the partition's device ------------------------------------------------------------------ */

static bool read_line(const char *path, char *out, size_t cap) {
  FILE *file = fopen(path, "r");
  if (!file) return false;
  bool ok = fgets(out, (int)cap, file) != NULL;
  fclose(file);
  if (ok) out[strcspn(out, "\n")] = '\0';
  return ok;
}

static bool read_u64(const char *path, uint64_t *out) {
  char line[64], *end = NULL;
  if (!read_line(path, line, sizeof line)) return false;
  errno = 0;
  unsigned long long v = strtoull(line, &end, 10);
  if (errno || end == line) return false;
  *out = v;
  return true;
}

/* The kernel's partitions of the disk (sysfs): calls visit with each one's name, number, start
 * and size in bytes; stops when visit returns non-zero and returns that. */
typedef int (*part_visit_fn)(void *data, const char *name, uint64_t number, uint64_t start, uint64_t size);

static int each_partition(const char *disk_name, part_visit_fn visit, void *data) {
  char dir_path[PATH_MAX];
  snprintf(dir_path, sizeof dir_path, "/sys/class/block/%s", disk_name);
  DIR *dir = opendir(dir_path);
  if (!dir) return 0;
  int r = 0;
  struct dirent *e;
  while (!r && (e = readdir(dir))) {
    if (strncmp(e->d_name, disk_name, strlen(disk_name)) != 0) continue;
    char path[PATH_MAX + 300];
    uint64_t number, start, size;
    snprintf(path, sizeof path, "%s/%s/partition", dir_path, e->d_name);
    if (!read_u64(path, &number)) continue;
    snprintf(path, sizeof path, "%s/%s/start", dir_path, e->d_name);
    if (!read_u64(path, &start)) continue;
    snprintf(path, sizeof path, "%s/%s/size", dir_path, e->d_name);
    if (!read_u64(path, &size)) continue;
    r = visit(data, e->d_name, number, start * 512, size * 512); /* sysfs counts 512-byte sectors */
  }
  closedir(dir);
  return r;
}

typedef struct part_state {
  fde_job *f;
  int fd;
  bool present;       /* ours is there already, as the GPT says */
  char name[NAME_MAX + 1];
  int32_t error;
} part_state;

static int drop_conflicting(void *data, const char *name, uint64_t number, uint64_t start, uint64_t size) {
  part_state *s = data;
  const gpt_partition *p = &s->f->part;
  if (number == p->number && start == p->start && size == p->end - p->start) {
    s->present = true;
    snprintf(s->name, sizeof s->name, "%s", name);
    return 0;
  }
  if (number != p->number && (start >= p->end || start + size <= p->start)) return 0;
  /* Left from the disk's earlier contents: same number elsewhere, or overlapping ours. */
  struct blkpg_partition bp = {.pno = (int)number};
  struct blkpg_ioctl_arg arg = {.op = BLKPG_DEL_PARTITION, .datalen = sizeof bp, .data = &bp};
  if (ioctl(s->fd, BLKPG, &arg) < 0) {
    s->error = ep_failf(s->f->host, s->f->ctx, -errno,
                        "fde: %s (partition %llu of %s, from the disk's earlier contents) cannot be removed: %s%s", name,
                        (unsigned long long)number, s->f->disk, strerror(errno),
                        errno == EBUSY ? " (mounted, or held by a mapping?)" : "");
    return 1;
  }
  return 0;
}

static int find_number(void *data, const char *name, uint64_t number, uint64_t start, uint64_t size) {
  part_state *s = data;
  (void)start, (void)size;
  if (number != s->f->part.number) return 0;
  snprintf(s->name, sizeof s->name, "%s", name);
  return 1;
}

/* A block device node for sysfs block device name: /dev/<name> once devtmpfs shows it with the
 * right numbers, else made there (a static /dev; /run is nodev on a node, a node made there
 * would not open). */
static int32_t device_node(fde_job *f, const char *name, char *out, size_t cap) {
  char path[PATH_MAX], dev[32];
  snprintf(path, sizeof path, "/sys/class/block/%s/dev", name);
  unsigned major_n, minor_n;
  if (!read_line(path, dev, sizeof dev) || sscanf(dev, "%u:%u", &major_n, &minor_n) != 2)
    return ep_failf(f->host, f->ctx, EP_EIO, "fde: %s: no device numbers in %s", name, path);
  dev_t want = makedev(major_n, minor_n);
  snprintf(out, cap, "/dev/%s", name);
  for (int waited = 0; waited < DEVICE_WAIT_MS; waited += 50) {
    struct stat st;
    if (stat(out, &st) == 0 && S_ISBLK(st.st_mode) && st.st_rdev == want) return 0;
    nanosleep(&(struct timespec){0, 50 * 1000000L}, NULL);
  }
  if (mknod(out, S_IFBLK | 0600, want) < 0) /* EEXIST: something else of that name, never replaced */
    return ep_failf(f->host, f->ctx, -errno, "fde: %s did not appear as block device %u:%u and cannot be made: %s", out, major_n,
                    minor_n, strerror(errno));
  ep_logf(f->host, f->ctx, EP_LOG_INFO, "fde: made %s (%u:%u): devtmpfs did not show it", out, major_n, minor_n);
  return 0;
}

/* Tells the kernel of the one partition (BLKPG_ADD_PARTITION) rather than having it re-read the
 * table (BLKRRPART): a re-read fails while any partition of the disk is in use (a mapping or mount
 * left by an earlier attempt), needs the GPT flushed and valid where the kernel looks (its backup
 * is at the image's end, not the disk's), and drops the other partitions; BLKPG adds exactly the
 * bytes the GPT was read for, whatever the rest of the disk holds. */
static int32_t partition_device(fde_job *f) {
  const char *disk_name = f->disk_name, *real = f->disk;
  int fd = open(real, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ep_failf(f->host, f->ctx, -errno, "fde: cannot open %s: %s", real, strerror(errno));
  part_state s = {.f = f, .fd = fd};
  each_partition(disk_name, drop_conflicting, &s);
  if (!s.error && !s.present) {
    struct blkpg_partition bp = {.start = (long long)f->part.start, .length = (long long)(f->part.end - f->part.start),
                                 .pno = (int)f->part.number};
    struct blkpg_ioctl_arg arg = {.op = BLKPG_ADD_PARTITION, .datalen = sizeof bp, .data = &bp};
    if (ioctl(fd, BLKPG, &arg) < 0)
      s.error = ep_failf(f->host, f->ctx, -errno, "fde: the kernel refused partition %u of %s (BLKPG_ADD_PARTITION): %s%s",
                         f->part.number, real, strerror(errno),
                         errno == EINVAL ? " (a loop device needs partition scanning: losetup -P)" : "");
    else if (!each_partition(disk_name, find_number, &s))
      s.error = ep_failf(f->host, f->ctx, EP_EIO, "fde: partition %u of %s was added but sysfs does not show it", f->part.number, real);
  }
  close(fd);
  if (s.error) return s.error;
  return device_node(f, s.name, f->part_dev, sizeof f->part_dev);
}

/* ---- enrollment ------------------------------------------------------------------------------ */

static bool write_all(int fd, const char *data, size_t len) {
  while (len) {
    ssize_t n = write(fd, data, len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data += n, len -= (size_t)n;
  }
  return true;
}

/* A private directory for the key file where memfd_create is missing: under /run only (tmpfs,
 * gone at the next boot), never a persistent scratch directory. */
static int32_t private_dir(fde_job *f) {
  snprintf(f->private_dir, sizeof f->private_dir, "%s/%sXXXXXX", KEY_DIR_BASE, KEY_DIR_PREFIX);
  if (!mkdtemp(f->private_dir)) { /* 0700 */
    int err = errno;
    f->private_dir[0] = '\0';
    return ep_failf(f->host, f->ctx, -err, "fde: cannot make a private directory under %s for the key file: %s", KEY_DIR_BASE,
                    strerror(err));
  }
  return 0;
}

static void remove_dir_files(const char *path) {
  DIR *dir = opendir(path);
  struct dirent *e;
  while (dir && (e = readdir(dir)))
    if (e->d_name[0] != '.') unlinkat(dirfd(dir), e->d_name, 0);
  if (dir) closedir(dir);
  rmdir(path);
}

static void remove_private_dir(fde_job *f) {
  if (!f->private_dir[0]) return;
  remove_dir_files(f->private_dir);
  f->private_dir[0] = '\0';
}

/* Removes the private directories a run that died left (a key file may be in one): in /run,
 * and in run.scratch_dir where earlier versions made them. Only directories of ours. */
static void sweep_stale_key_dirs(fde_job *f) {
  const char *scratch = NULL;
  const char *bases[2] = {KEY_DIR_BASE, NULL};
  if (f->host->site_string(f->ctx, "run.scratch_dir", &scratch) == 0 && scratch && *scratch && strcmp(scratch, KEY_DIR_BASE))
    bases[1] = scratch;
  for (int b = 0; b < 2 && bases[b]; b++) {
    DIR *dir = opendir(bases[b]);
    struct dirent *e;
    while (dir && (e = readdir(dir))) {
      struct stat st;
      char path[PATH_MAX];
      if (strncmp(e->d_name, KEY_DIR_PREFIX, strlen(KEY_DIR_PREFIX)) != 0 ||
          (size_t)snprintf(path, sizeof path, "%s/%s", bases[b], e->d_name) >= sizeof path)
        continue;
      if (fstatat(dirfd(dir), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(st.st_mode) || st.st_uid != geteuid()) continue;
      remove_dir_files(path);
      ep_logf(f->host, f->ctx, EP_LOG_INFO, "fde: removed %s, left by an earlier run", path);
    }
    if (dir) closedir(dir);
  }
}

/* Puts the recovery key where systemd-cryptenroll reads it and nothing outlives the run: a
 * memfd (made 0600: systemd 252 warns of a 0777 key file), passed as fd ENROLL_KEY_FD; where
 * memfd_create is missing, a 0600 file in a private directory under /run, removed right after.
 * *ret_fd is the memfd (-1 for the file); arg gets the --unlock-key-file= argument. */
static int32_t key_source(fde_job *f, const char *key, int *ret_fd, char *arg, size_t cap) {
  size_t len = strlen(key);
  int fd = memfd_create("edgeprov-recovery-key", MFD_CLOEXEC);
  if (fd >= 0) {
    if (fchmod(fd, 0600) < 0 || !write_all(fd, key, len)) {
      int err = errno;
      close(fd);
      return ep_failf(f->host, f->ctx, EP_EIO, "fde: cannot write the recovery key into a memfd: %s", strerror(err));
    }
    *ret_fd = fd;
    snprintf(arg, cap, "--unlock-key-file=/proc/self/fd/%d", ENROLL_KEY_FD);
    return 0;
  }
  if (errno != ENOSYS && errno != EINVAL)
    return ep_failf(f->host, f->ctx, -errno, "fde: memfd_create for the recovery key: %s", strerror(errno));
  int32_t r = private_dir(f);
  if (r < 0) return r;
  char path[PATH_MAX + 16];
  snprintf(path, sizeof path, "%s/recovery.key", f->private_dir);
  fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    int err = errno;
    remove_private_dir(f);
    return ep_failf(f->host, f->ctx, -err, "fde: cannot make the key file %s: %s", path, strerror(err));
  }
  bool written = write_all(fd, key, len);
  int err = errno;
  close(fd);
  if (!written) {
    remove_private_dir(f);
    return ep_failf(f->host, f->ctx, EP_EIO, "fde: cannot write the key file %s: %s", path, strerror(err));
  }
  *ret_fd = -1;
  snprintf(arg, cap, "--unlock-key-file=%s", path);
  return 0;
}

/* In the child, between fork and exec (async-signal-safe calls only): stdin /dev/null, stdout
 * and stderr the pipe, the key's memfd (if any) as ENROLL_KEY_FD without close-on-exec, every
 * other descriptor closed. */
static void child_fds(int out, int key_fd) {
  int null = open("/dev/null", O_RDONLY);
  if (null >= 0 && null != 0) dup2(null, 0);
  dup2(out, 1);
  dup2(out, 2);
  if (key_fd == ENROLL_KEY_FD) fcntl(key_fd, F_SETFD, 0); /* dup2 onto itself would keep FD_CLOEXEC */
  else if (key_fd >= 0 && dup2(key_fd, ENROLL_KEY_FD) < 0) _exit(126);
  unsigned first = key_fd >= 0 ? ENROLL_KEY_FD + 1 : 3;
  if (close_range(first, ~0U, 0) < 0)
    for (int fd = (int)first; fd < 1024; fd++) close(fd);
}

/* Runs systemd-cryptenroll for the TPM (PCRs 7+15, PCR 15 at zero: fde_tpm_check) with the recovery key (key_source): its LUKS2
 * token is what the installed OS's initramfs (and the microvisor's /init) unlock with, so its
 * own program makes it. Its stderr is the message on failure; it never prints the key. */
static int32_t enroll_tpm(fde_job *f, const char *key) {
  char program[PATH_MAX], unlock_arg[PATH_MAX + 40];
  if (!find_program("systemd-cryptenroll", program, sizeof program))
    return ep_failf(f->host, f->ctx, EP_EFAILED, "fde: systemd-cryptenroll is not installed");
  int key_fd = -1;
  int32_t r = key_source(f, key, &key_fd, unlock_arg, sizeof unlock_arg);
  if (r < 0) return r;
  char device_arg[300];
  snprintf(device_arg, sizeof device_arg, "--tpm2-device=%s", f->tpm);
  char *argv[] = {program, device_arg, "--tpm2-pcrs=" ENROLL_PCRS, unlock_arg, f->part_dev, NULL};
  int out[2];
  if (pipe2(out, O_CLOEXEC) < 0) {
    int err = errno;
    if (key_fd >= 0) close(key_fd);
    remove_private_dir(f);
    return ep_failf(f->host, f->ctx, -err, "fde: pipe: %s", strerror(err));
  }
  pid_t pid = fork();
  int fork_err = errno;
  if (pid == 0) {
    child_fds(out[1], key_fd);
    execv(program, argv);
    _exit(127);
  }
  close(out[1]);
  char text[ENROLL_OUTPUT_MAX] = "";
  size_t used = 0;
  int status = -1;
  bool killed = false;
  if (pid > 0) {
    time_t started = time(NULL);
    for (;;) {
      struct pollfd p = {.fd = out[0], .events = POLLIN};
      int n = poll(&p, 1, 200);
      if (n < 0 && errno != EINTR) break;
      if (n > 0) {
        char chunk[512];
        ssize_t got = read(out[0], chunk, sizeof chunk);
        if (got < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (got <= 0) break; /* the end: every copy of the pipe's write end is closed */
        size_t take = (size_t)got < sizeof text - 1 - used ? (size_t)got : sizeof text - 1 - used;
        memcpy(text + used, chunk, take);
        used += take;
        text[used] = '\0';
      }
      if (!killed && (f->host->cancelled(f->ctx) || time(NULL) - started > ENROLL_TIMEOUT_S)) {
        kill(pid, SIGKILL);
        killed = true;
      }
    }
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
  }
  close(out[0]);
  if (key_fd >= 0) close(key_fd); /* the memfd's pages go with its last descriptor */
  remove_private_dir(f); /* right away: the key stays only in the orchestrator and the LUKS2 keyslot */
  if (pid < 0) return ep_failf(f->host, f->ctx, -fork_err, "fde: cannot start systemd-cryptenroll: %s", strerror(fork_err));
  /* One line of text for the message: newlines to "; " and no trailing separator. */
  for (char *c = text; *c; c++)
    if (*c == '\n' || *c == '\r' || *c == '\t') *c = ' ';
  while (used && text[used - 1] == ' ') text[--used] = '\0';
  if (killed)
    return ep_failf(f->host, f->ctx, f->host->cancelled(f->ctx) ? EP_ECANCELED : EP_ETIMEDOUT,
                    "fde: systemd-cryptenroll did not finish (stopped): %s", text);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    return ep_failf(f->host, f->ctx, EP_EFAILED, "fde: systemd-cryptenroll --tpm2-device=%s --tpm2-pcrs=" ENROLL_PCRS " %s failed (%s %d): %s",
                    f->tpm, f->part_dev, WIFEXITED(status) ? "exit status" : "signal",
                    WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status), text[0] ? text : "no output");
  ep_logf(f->host, f->ctx, EP_LOG_INFO, "fde: TPM enrolled for %s (PCRs " ENROLL_PCRS "): %s", f->part_dev, text[0] ? text : "done");
  return 0;
}

/* The string value of "key" at the top of a JSON object text (no escapes in it: systemd's token
 * fields are plain names), into out (cap bytes); "" when absent or not a plain string. */
static void json_plain_string(const char *json, const char *key, char *out, size_t cap) {
  out[0] = '\0';
  char quoted[64];
  snprintf(quoted, sizeof quoted, "\"%s\"", key);
  const char *p = strstr(json, quoted);
  if (!p) return;
  p += strlen(quoted);
  p += strspn(p, " \t\r\n");
  if (*p++ != ':') return;
  p += strspn(p, " \t\r\n");
  if (*p++ != '"') return;
  size_t len = strcspn(p, "\"\\");
  if (p[len] != '"' || len >= cap) return;
  memcpy(out, p, len);
  out[len] = '\0';
}

/* systemd-cryptenroll chose the PCR bank itself: the key must be sealed in the sha256 bank, the
 * one the installed OS's PCR 15 lock extends (a sha1 seal would survive the lock). Reads the
 * systemd-tpm2 token's tpm2-pcr-bank from the header it wrote. 0, or a negative code with the
 * message set. */
static int32_t check_enrolled_bank(fde_job *f) {
  struct crypt_device *cd = NULL;
  int rc = crypt_init(&cd, f->part_dev);
  if (rc == 0) rc = crypt_load(cd, CRYPT_LUKS2, NULL);
  char bank[32] = "";
  bool found = false;
  for (int i = 0; rc == 0 && !found && i < 32; i++) {
    const char *type = NULL, *json = NULL;
    crypt_token_info status = crypt_token_status(cd, i, &type);
    if ((status != CRYPT_TOKEN_EXTERNAL && status != CRYPT_TOKEN_EXTERNAL_UNKNOWN) || !type || strcmp(type, "systemd-tpm2") != 0)
      continue;
    if (crypt_token_json_get(cd, i, &json) < 0 || !json) continue;
    found = true;
    json_plain_string(json, "tpm2-pcr-bank", bank, sizeof bank);
  }
  crypt_free(cd);
  if (rc < 0)
    return ep_failf(f->host, f->ctx, EP_EIO, "fde: cannot read the LUKS2 header of %s after enrolment: %s", f->part_dev,
                    strerror(-rc));
  if (!found)
    return ep_failf(f->host, f->ctx, EP_EFAILED, "fde: no systemd-tpm2 token on %s after systemd-cryptenroll", f->part_dev);
  if (strcmp(bank, "sha256") != 0)
    return ep_failf(f->host, f->ctx, EP_EFAILED,
                    "fde: systemd-cryptenroll sealed the key to the '%s' PCR bank, not sha256, the bank the installed "
                    "OS's PCR 15 lock extends (this TPM's sha256 bank holds no measurements?): refused, nothing of the "
                    "image written; the recovery key is stored",
                    bank[0] ? bank : "(none named)");
  return 0;
}

/* ---- the whole preparation ------------------------------------------------------------------- */

/* The recovery key: 32 bytes from the kernel's random generator as 64 lowercase hex digits. */
static int32_t make_recovery_key(fde_job *f, char key[2 * RECOVERY_KEY_BYTES + 1]) {
  uint8_t raw[RECOVERY_KEY_BYTES];
  size_t got = 0;
  while (got < sizeof raw) {
    ssize_t n = getrandom(raw + got, sizeof raw - got, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ep_failf(f->host, f->ctx, -errno, "fde: getrandom: %s", strerror(errno));
    got += (size_t)n;
  }
  for (size_t i = 0; i < sizeof raw; i++) snprintf(key + 2 * i, 3, "%02x", raw[i]);
  explicit_bzero(raw, sizeof raw);
  return 0;
}

/* LUKS2 on the partition: aes-xts-plain64 with a 512-bit volume key, 16 MiB of header room, the
 * recovery key in keyslot 0 (pbkdf2, 1000 iterations). */
static int32_t luks_format(fde_job *f, struct crypt_device **ret_cd, const char *key) {
  struct crypt_device *cd = NULL;
  char detail[300];
  crypt_last[0] = '\0';
  int rc = crypt_init(&cd, f->part_dev);
  if (rc == 0) crypt_set_log_callback(cd, crypt_log_collect, NULL);
  const struct crypt_pbkdf_type pbkdf = {.type = CRYPT_KDF_PBKDF2, .hash = "sha256", .iterations = RECOVERY_KEY_ITERATIONS,
                                         .flags = CRYPT_PBKDF_NO_BENCHMARK};
  struct crypt_params_luks2 params = {.pbkdf = &pbkdf, .sector_size = 512};
  const char *step = "crypt_init";
  if (rc == 0) step = "pbkdf", rc = crypt_set_pbkdf_type(cd, &pbkdf);
  if (rc == 0) step = "data offset", rc = crypt_set_data_offset(cd, LUKS_DATA_OFFSET_SECTORS);
  if (rc == 0) step = "luksFormat", rc = crypt_format(cd, CRYPT_LUKS2, "aes", "xts-plain64", NULL, NULL, 64, &params);
  if (rc == 0) {
    step = "adding the recovery key";
    rc = crypt_keyslot_add_by_volume_key(cd, 0, NULL, 0, key, strlen(key));
    if (rc > 0) rc = -EINVAL; /* keyslot 0 was asked for: any other is wrong */
  }
  if (rc < 0) {
    crypt_free(cd);
    return ep_failf(f->host, f->ctx, EP_EFAILED, "fde: LUKS2 on %s: %s failed: %s%s: nothing of the image written into it",
                    f->part_dev, step, strerror(-rc), crypt_detail(detail, sizeof detail));
  }
  *ret_cd = cd;
  return 0;
}

int32_t fde_prepare(fde_job *f, fde_route *route) {
  const ep_host *host = f->host;
  ep_ctx *ctx = f->ctx;
  char key[2 * RECOVERY_KEY_BYTES + 1] = "";
  struct crypt_device *cd = NULL;
  char detail[300];
  host->progress(ctx, 0, 0, "fde: encrypting the partition");
  int32_t r = partition_device(f);
  if (r == 0) r = make_recovery_key(f, key);
  if (r == 0) r = luks_format(f, &cd, key);
  /* The orchestrator has the key before a byte of the image goes in: a disk nobody can open
   * without the TPM is never made. */
  if (r == 0 && (r = host->store_secret(ctx, "recovery_key", key)) < 0) /* its message says why */
    ep_logf(host, ctx, EP_LOG_ERROR, "fde: no recovery key with the orchestrator: nothing of the image written into %s",
            f->part_dev);
  if (r == 0) {
    ep_logf(host, ctx, EP_LOG_INFO, "fde: %s is LUKS2; its recovery key is stored with the orchestrator", f->part_dev);
    tpm_relax_lockout(f);
    r = enroll_tpm(f, key);
    if (r == 0) r = check_enrolled_bank(f);
  }
  if (r == 0) {
    crypt_last[0] = '\0';
    int rc = crypt_activate_by_passphrase(cd, f->mapping, 0, key, strlen(key), 0);
    char why[200];
    if (rc < 0 && dm_unusable(why, sizeof why)) /* libcryptsetup then blames the name */
      r = ep_failf(host, ctx, EP_EFAILED,
                   "fde: cannot open %s as /dev/mapper/%s: device-mapper is not usable on this node (%s; dm_mod and "
                   "dm_crypt loaded?): nothing of the image written into it",
                   f->part_dev, f->mapping, why);
    else if (rc < 0)
      r = ep_failf(host, ctx, EP_EFAILED, "fde: cannot open %s as /dev/mapper/%s: %s%s: nothing of the image written into it",
                   f->part_dev, f->mapping, strerror(-rc), crypt_detail(detail, sizeof detail));
    else
      f->activated = true;
  }
  explicit_bzero(key, sizeof key);
  crypt_free(cd);
  if (r == 0) {
    snprintf(f->mapping_dev, sizeof f->mapping_dev, "/dev/mapper/%s", f->mapping);
    f->mapping_fd = open(f->mapping_dev, O_WRONLY | O_CLOEXEC);
    if (f->mapping_fd < 0) r = ep_failf(host, ctx, -errno, "fde: cannot open %s: %s", f->mapping_dev, strerror(errno));
  }
  if (r == 0) {
    uint64_t size = 0;
    if (ioctl(f->mapping_fd, BLKGETSIZE64, &size) == 0 && size < f->part.end - f->part.start - FDE_HEADER_ROOM)
      r = ep_failf(host, ctx, EP_EIO, "fde: %s has %llu bytes, fewer than the %llu the image puts there", f->mapping_dev,
                   (unsigned long long)size, (unsigned long long)(f->part.end - f->part.start - FDE_HEADER_ROOM));
  }
  if (r == 0) {
    route->mapping_fd = f->mapping_fd;
    route->mapping_name = f->mapping_dev;
    ep_logf(host, ctx, EP_LOG_INFO, "fde: writing partition '%s' through %s (TPM %s, PCRs " ENROLL_PCRS ")", f->part_name, f->mapping_dev, f->tpm);
  }
  return r;
}

void fde_finish(fde_job *f, bool success) {
  if (f->mapping_fd >= 0) close(f->mapping_fd);
  f->mapping_fd = -1;
  if (!success && f->activated) {
    struct crypt_device *cd = NULL;
    if (crypt_init_by_name(&cd, f->mapping) == 0) {
      if (crypt_deactivate(cd, f->mapping) == 0) f->activated = false;
      crypt_free(cd);
    }
    if (f->activated)
      ep_logf(f->host, f->ctx, EP_LOG_WARN, "fde: /dev/mapper/%s stays open; the next attempt closes it", f->mapping);
  }
  remove_private_dir(f);
  crypt_set_log_callback(NULL, NULL, NULL);
}
