/* actions-core: image.stream's full-disk encryption (fde=true; docs/design/fde.md C(i)): the
 * node's side of encrypting one partition of the image as it is written. Checks before a byte is
 * written (a TPM 2.0 that opens, device-mapper, systemd-cryptenroll), then, before the first byte
 * of the partition: the kernel told of the partition (BLKPG), LUKS2 on it with a recovery key
 * that the orchestrator stores (host->store_secret) before anything else, the TPM's
 * dictionary-attack lockout relaxed, the TPM enrolled with systemd-cryptenroll (PCRs 7+15: PCR 15
 * is zero here and the installed OS's unlocking stage extends it once it is done, so nothing
 * booted after it unseals; docs/design/fde.md), and the mapping opened for the partition's bytes
 * (fde_route). Run thread only. */
#ifndef EP_ACTIONS_CORE_FDE_H
#define EP_ACTIONS_CORE_FDE_H

#include <limits.h>
#include <stdbool.h>

#include <edgeprov/edgeprov.h>

#include "fde_route.h"
#include "gpt.h"
#include "target_disk.h"

#define FDE_MAPPING_MAX 127
#define FDE_TCTI_MAX 256 /* run.tpm, with its NUL */

typedef struct fde_job {
  const ep_host *host;
  ep_ctx *ctx;
  char disk[TARGET_PATH_MAX];      /* the target (a block device) */
  char disk_name[NAME_MAX + 1];    /* its sysfs name, found by its device numbers ("sda") */
  char part_name[GPT_NAME_MAX + 1]; /* fde_partition */
  char mapping[FDE_MAPPING_MAX + 1]; /* fde_mapping */
  char tpm[FDE_TCTI_MAX];          /* run.tpm */
  gpt_partition part;              /* once planned */
  char part_dev[PATH_MAX];         /* the partition's block device node, once the kernel knows it */
  char mapping_dev[PATH_MAX];      /* /dev/mapper/<mapping>, once open */
  char private_dir[PATH_MAX];      /* 0700 under /run, for the key file when memfd_create is missing */
  bool planned;                    /* the GPT is read and the route set */
  bool activated;                  /* the mapping is open (ours) */
  int mapping_fd;
} fde_job;

/* The node's TPM 2.0 (site value run.tpm) opens and answers a question, and its sha256 PCR 15 is
 * all zeros (what enrolment seals to); its TCTI into tcti_out. Else fails "fde: no TPM 2.0 on this
 * node (...): nothing written" or "fde: PCR 15 of this node's TPM is not zero (...): nothing
 * written". image.stream's and disk.erase's (fde=true) check before they touch the disk. Returns
 * 0 or a negative code with the message set. */
int32_t fde_tpm_check(const ep_host *host, ep_ctx *ctx, char tcti_out[FDE_TCTI_MAX]);

/* The firmware enforces Secure Boot (efivarfs: SecureBoot=1, SetupMode=0), or the action's
 * parameter fde_without_secure_boot is true (then a warning is logged). Else fails "fde: Secure
 * Boot is not enforcing on this node (why): ...: <outcome>". Call after fde_tpm_check, before the
 * disk is touched. Returns 0 or a negative code with the message set. */
int32_t fde_secure_boot_check(const ep_host *host, ep_ctx *ctx, const char *outcome);

/* Reads the parameters fde_partition and fde_mapping and checks, before anything is written:
 * the node's TPM (run.tpm) opens and answers ("fde: no TPM 2.0 on this node (...): nothing
 * written" otherwise) with PCR 15 at zero, Secure Boot is enforcing (fde_secure_boot_check), disk
 * is a block device, device-mapper is there (/dev/mapper/control),
 * systemd-cryptenroll is installed; closes a mapping of that name left by an earlier attempt.
 * Returns 0 or a negative code with the message set. */
int32_t fde_preflight(fde_job *f, const ep_host *host, ep_ctx *ctx, const char *disk);

/* Reads the primary GPT in the image's first len bytes and sets route (split, partition bounds,
 * the disk's fd and names). Returns 0 or a negative code with the message set. */
int32_t fde_plan(fde_job *f, const uint8_t *buf, size_t len, fde_route *route);

/* After a download started over from byte 0 (a server that ignores Range): reads the GPT in the
 * new first len bytes and fails unless it gives the planned partition (number, start, end, name).
 * Call before any of the new bytes is routed. Returns 0 or a negative code with the message set. */
int32_t fde_replan(fde_job *f, const uint8_t *buf, size_t len);

/* Encrypts the partition and opens its mapping (see the file's comment); sets route->mapping_fd.
 * Call once the writer has written every byte before the partition's first one. Returns 0 or a
 * negative code with the message set; nothing of the image is in the partition then. */
int32_t fde_prepare(fde_job *f, fde_route *route);

/* Releases what the job holds: the mapping's fd; the mapping itself only when the run failed
 * (success leaves it open for file.write), and the private directory. */
void fde_finish(fde_job *f, bool success);

#endif
