/* actions-core: Secure Boot's state from efivarfs, see secure_boot.h. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* O_CLOEXEC */
#endif
#include "secure_boot.h"

#include "efivar.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define GLOBAL_VARIABLE_GUID "8be4df61-93ca-11d2-aa0d-00e098032b8c" /* EFI_GLOBAL_VARIABLE */
#define EFIVAR_READ_MAX 16 /* more than a one-byte variable's 5: a longer file is refused, not cut */

bool efivar_parse_u8(const uint8_t *buf, size_t len, uint32_t *ret_attributes, uint8_t *ret_value) {
  if (len != 5) return false;
  *ret_attributes = efivar_le32(buf);
  *ret_value = buf[4];
  return true;
}

/* Reads the global variable name under efi_dir/efivars. Returns 1 with *ret_value set, 0 when
 * there is no such variable, -1 with why set. */
static int read_u8_variable(const char *efi_dir, const char *name, uint8_t *ret_value, char *why, size_t cap) {
  char dir_path[4096], file[64];
  if ((size_t)snprintf(dir_path, sizeof dir_path, "%s/efivars", efi_dir) >= sizeof dir_path) {
    snprintf(why, cap, "the path of the %s variable is too long", name);
    return -1;
  }
  snprintf(file, sizeof file, "%s-" GLOBAL_VARIABLE_GUID, name);
  int dir = open(dir_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0 && errno == ENOENT) return 0;
  if (dir < 0) {
    snprintf(why, cap, "cannot read the %s variable: %s", name, strerror(errno));
    return -1;
  }
  uint8_t buf[EFIVAR_READ_MAX];
  int n = efivar_read_at(dir, file, buf, sizeof buf - 4);
  close(dir);
  if (n == -ENOENT) return 0;
  if (n == -EFBIG || n == -EINVAL || (n >= 0 && n != 1)) {
    if (n >= 0) snprintf(why, cap, "the %s variable holds %d bytes, not 4 of attributes and 1 of value", name, n + 4);
    else snprintf(why, cap, "the %s variable holds %s bytes, not 4 of attributes and 1 of value", name,
                  n == -EFBIG ? "more than 16" : "fewer than 4");
    return -1;
  }
  if (n < 0) {
    snprintf(why, cap, "cannot read the %s variable: %s", name, strerror(-n));
    return -1;
  }
  uint32_t attributes = 0;
  efivar_parse_u8(buf, 5, &attributes, ret_value);
  return 1;
}

secure_boot_state secure_boot_read(const char *efi_dir, char *why, size_t cap) {
  struct stat st;
  if (stat(efi_dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
    snprintf(why, cap, "no EFI: the node did not boot from UEFI (no %s)", efi_dir);
    return SECURE_BOOT_NO_EFI;
  }
  uint8_t secure_boot = 0, setup_mode = 0;
  int sb = read_u8_variable(efi_dir, "SecureBoot", &secure_boot, why, cap);
  if (sb < 0) return SECURE_BOOT_UNREADABLE;
  if (sb == 0) {
    snprintf(why, cap, "no SecureBoot variable in %s/efivars (firmware without Secure Boot, or efivarfs not mounted)",
             efi_dir);
    return SECURE_BOOT_NO_VARIABLE;
  }
  if (secure_boot == 0) { /* a firmware in setup mode says SecureBoot=0 too: named, it says why */
    char ignored[SECURE_BOOT_WHY_MAX];
    bool setup = read_u8_variable(efi_dir, "SetupMode", &setup_mode, ignored, sizeof ignored) == 1 && setup_mode == 1;
    snprintf(why, cap, "SecureBoot=0%s", setup ? ", SetupMode=1: no platform key enrolled" : "");
    return setup ? SECURE_BOOT_SETUP_MODE : SECURE_BOOT_OFF;
  }
  if (secure_boot != 1) {
    snprintf(why, cap, "SecureBoot=%u, neither 0 nor 1", secure_boot);
    return SECURE_BOOT_UNREADABLE;
  }
  int sm = read_u8_variable(efi_dir, "SetupMode", &setup_mode, why, cap);
  if (sm < 0) return SECURE_BOOT_UNREADABLE;
  if (sm == 0) {
    snprintf(why, cap, "SecureBoot=1 but no SetupMode variable in %s/efivars", efi_dir);
    return SECURE_BOOT_NO_VARIABLE;
  }
  if (setup_mode == 1) {
    snprintf(why, cap, "SecureBoot=1, SetupMode=1: no platform key enrolled");
    return SECURE_BOOT_SETUP_MODE;
  }
  if (setup_mode != 0) {
    snprintf(why, cap, "SetupMode=%u, neither 0 nor 1", setup_mode);
    return SECURE_BOOT_UNREADABLE;
  }
  if (cap) why[0] = '\0';
  return SECURE_BOOT_ENFORCING;
}
