/* core/artifacts: `edgeprov artifacts build`, the curation step. Assembles the Micro-OS
 * (kernel + initramfs, and a unified kernel image), takes the iPXE EFI binary, signs what
 * the firmware runs with the site's db key, writes the CA for the firmware, lets every
 * enabled boot plugin add its artifacts (boot.ipxe, ...), and replaces the artifact
 * directory in one step. */
#ifndef EP_ARTIFACTS_BUILD_H
#define EP_ARTIFACTS_BUILD_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime/site.h"

#define EP_ARTIFACT_NAME_MAX 63
#define EP_ARTIFACTS_MAX 64

/* What a build made, for the CLI to print. */
typedef struct ep_artifacts_report {
  char directory[PATH_MAX];
  char kernel[PATH_MAX];
  char kernel_version[128];
  bool is_signed;
  bool uki;   /* micro-os.efi was built */
  bool ipxe;  /* ipxe.efi was curated */
  bool unchanged; /* the new build is byte-identical to the one it replaced */
  size_t modules;
  size_t initramfs_entries;
  size_t file_count;
  char files[EP_ARTIFACTS_MAX][EP_ARTIFACT_NAME_MAX + 1];
  uint64_t sizes[EP_ARTIFACTS_MAX];
  char notes[4][256]; /* what was left out and why ("no iPXE binary at ...") */
  size_t note_count;
} ep_artifacts_report;

/* Builds the site's artifacts into artifacts.directory (out_dir overrides it). Time stamps
 * are SOURCE_DATE_EPOCH when set, else 0, so the same inputs give the same bytes. Nothing
 * changes in the directory unless the whole build succeeds. The site's plugins must be
 * started. Returns 0 or a negative code with a message that names the setting or file. */
int ep_artifacts_build(const ep_site *site, const char *out_dir, ep_artifacts_report *report);

/* The orchestrator address and token URL the Micro-OS is given; base_url of the
 * artifacts (artifacts.base_url, else https://<listen.https>/boot). */
int ep_artifacts_base_url(const ep_config *config, char *buf, size_t size);

#endif
