/* agent: the node's credentials kept in a UEFI variable, so a Micro-OS restart (it runs from
 * RAM) does not lose them in the middle of provisioning. */
#ifndef EP_AGENT_FIRMWARE_STORE_H
#define EP_AGENT_FIRMWARE_STORE_H

#include <stddef.h>

/* The variable's name in efivarfs: our own vendor GUID, non-volatile, boot and runtime
 * access (attributes 0x7); only root can read it there. */
#define EP_FIRMWARE_CREDENTIALS "EdgeprovCredentials-6f0d1c52-3b9e-4a51-9f27-8c4e2d7a1b60"
#define EP_FIRMWARE_CREDENTIALS_MAX 1024

/* Writes text (the credentials file's content) into the variable under efivars_dir. Returns
 * 0 or a negative code with the error set (it never names the content). */
int ep_firmware_store_put(const char *efivars_dir, const char *text, size_t len);

/* Reads the variable back into *out (malloc'd, NUL-terminated; the caller zeroes and frees it).
 * EP_ENOENT when there is none. */
int ep_firmware_store_get(const char *efivars_dir, char **out);

/* Removes the variable (clearing efivarfs' immutable flag first). Absent is not an error. */
int ep_firmware_store_delete(const char *efivars_dir);

#endif
