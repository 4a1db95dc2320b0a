/* actions-core: whether the node's firmware enforces UEFI Secure Boot, from its SecureBoot and
 * SetupMode variables in efivarfs. full-disk encryption requires it at enrolment: the TPM seals to
 * PCR 7, which with Secure Boot off records only that, and any OS booted so reproduces it. */
#ifndef EP_ACTIONS_CORE_SECURE_BOOT_H
#define EP_ACTIONS_CORE_SECURE_BOOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SECURE_BOOT_EFI_DIR "/sys/firmware/efi" /* the kernel's; tests pass a directory of their own */
#define SECURE_BOOT_WHY_MAX 160

typedef enum secure_boot_state {
  SECURE_BOOT_ENFORCING,  /* SecureBoot=1 and SetupMode=0 */
  SECURE_BOOT_NO_EFI,     /* the node did not boot from UEFI */
  SECURE_BOOT_NO_VARIABLE, /* no SecureBoot or SetupMode variable (firmware without Secure Boot, no efivarfs) */
  SECURE_BOOT_OFF,        /* SecureBoot=0 */
  SECURE_BOOT_SETUP_MODE, /* SecureBoot=1 but SetupMode=1: no platform key, nothing is enforced */
  SECURE_BOOT_UNREADABLE, /* a variable that cannot be read or has the wrong size or value */
} secure_boot_state;

/* An efivarfs file's content holding one byte: its 4 bytes of attributes (little-endian) into
 * *ret_attributes, then the byte into *ret_value. False (nothing set) unless len is 5. */
bool efivar_parse_u8(const uint8_t *buf, size_t len, uint32_t *ret_attributes, uint8_t *ret_value);

/* Reads efi_dir/efivars/SecureBoot-8be4df61-... and SetupMode-8be4df61-... (efi_dir is
 * SECURE_BOOT_EFI_DIR on a node). Unless enforcing, why gets what is missing or off, for a message
 * ("SecureBoot=0", "SetupMode=1: no platform key enrolled", "no EFI: ..."; cap bytes). */
secure_boot_state secure_boot_read(const char *efi_dir, char *why, size_t cap);

#endif
