/* core/artifacts: the EFI side of the boot artifacts — the CA as an EFI signature list for
 * the firmware's TlsCaCertificate, the Micro-OS as a unified kernel image, and Secure Boot
 * signatures (sbsign). */
#ifndef EP_ARTIFACTS_EFI_H
#define EP_ARTIFACTS_EFI_H

#include <stddef.h>
#include <stdint.h>

/* Writes the certificates of the PEM file pem_path as one EFI_SIGNATURE_LIST each (type
 * EFI_CERT_X509_GUID, DER, owner owner_guid) to out_path: what OVMF reads from
 * etc/edk2/https/cacerts and exposes as TlsCaCertificate, and what db enrollment takes. */
int ep_efi_write_esl(const char *pem_path, const char *out_path);

/* Writes the first certificate of pem_path in DER to out_path. */
int ep_efi_write_der(const char *pem_path, const char *out_path);

/* Makes a unified kernel image: stub (systemd's linuxx64.efi.stub) with .osrel, .cmdline,
 * .linux and .initrd sections, by objcopy, time-stamped epoch: the same inputs give the same
 * bytes. */
int ep_efi_make_uki(const char *stub, const char *kernel, const char *initrd, const char *cmdline, const char *work_dir,
                    const char *out_path, int64_t epoch);

/* Signs in_path with the db key and certificate into out_path (sbsign; an existing
 * signature, like Debian's on its kernel, is removed first so ours is the only one). The
 * signature's signing time is epoch (sbsign runs under faketime), so the same input and key
 * give the same bytes. */
int ep_efi_sign(const char *key, const char *cert, const char *in_path, const char *out_path, const char *work_dir,
                int64_t epoch);

/* Checks that path carries a valid signature by cert (sbverify). */
int ep_efi_verify(const char *cert, const char *path);

#endif
