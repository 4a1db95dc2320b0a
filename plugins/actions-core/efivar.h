/* actions-core: reading a UEFI variable as efivarfs shows it (4 bytes of attributes, little
 * endian, then the payload), for efi.boot_order and the Secure Boot check. */
#ifndef EP_ACTIONS_CORE_EFIVAR_H
#define EP_ACTIONS_CORE_EFIVAR_H

#include <stddef.h>
#include <stdint.h>

/* Reads variable name (a file name: "BootOrder", "SecureBoot-<guid>") from the directory fd dir
 * into raw, at most 4 + max bytes. Returns the payload's length (it starts at raw + 4), or -errno
 * (-ENOENT when absent, -EFBIG when larger than max, -EINVAL when shorter than its attributes). */
int efivar_read_at(int dir, const char *name, uint8_t *raw, size_t max);

/* The little-endian 32-bit word at p (a variable's attributes). */
uint32_t efivar_le32(const uint8_t *p);

#endif
