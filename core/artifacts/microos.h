/* core/artifacts: what goes into the Micro-OS initramfs — the agent and its libraries, the
 * node-side plugins, busybox, the kernel modules a node needs, the CA, the agent's config
 * and the /init of micro-os/. */
#ifndef EP_ARTIFACTS_MICROOS_H
#define EP_ARTIFACTS_MICROOS_H

#include <stddef.h>

#include "initramfs.h"

/* Modules every Micro-OS carries (plus artifacts.modules): virtio for VMs, the common Intel
 * NICs, NVMe, AHCI, USB sticks, the file systems the workflow writes and the loop device it
 * writes them through (file.write), a USB keyboard for the rescue shell, and device-mapper
 * for full-disk encryption (dm-crypt: xts(ecb(aes)), AES-NI where the CPU has it, else the
 * built-in aes-generic) and the verified root (dm-verity, EROFS). Nothing runs modprobe
 * there, so what the kernel would request on demand is named too (ecb, xts, crc32c_generic
 * before libcrc32c and erofs). Dependencies are added. */
#define EP_MICROOS_MODULES                                                                      \
  "virtio_pci", "virtio_net", "virtio_blk", "virtio_scsi", "e1000", "e1000e", "igb", "igc",     \
      "ixgbe", "i40e", "ice", "nvme", "ahci", "sd_mod", "crc32c_generic", "ext4", "vfat",          \
      "nls_cp437", "nls_iso8859_1", "efivarfs", "loop", "xhci_pci", "usb_storage", "usbhid", "hid_generic", \
      "dm_mod", "dm_crypt", "ecb", "xts", "aesni_intel", "dm_bufio", "reed_solomon", "dm_verity", "libcrc32c", "erofs"

/* Adds an ELF program or library at path_in_image, with every shared library it needs (as
 * the dynamic loader resolves them here) at their own paths, symlinks included. */
int ep_microos_add_elf(ep_initramfs *fs, const char *source, const char *path_in_image);

/* Adds what full-disk encryption and dm-verity need, from this machine: cryptsetup,
 * veritysetup, systemd-cryptenroll and tpm2 (tpm2-tools: /init's PCR 15 lock in installed mode)
 * with their libraries, and what they load with dlopen()
 * (no library listing shows it): tpm2-tss's ESAPI, RC, MU and device TCTI, and libcryptsetup's
 * systemd-tpm2 token plugin. A missing file is an error naming its Debian package. */
int ep_microos_add_fde_tools(ep_initramfs *fs);

/* Adds the named modules with their dependencies from modules_dir (which has modules.dep)
 * under /usr/lib/modules/<version>/, and /etc/edgeprov/modules listing them in load order,
 * and /etc/edgeprov/modules.pci gating the named modules whose aliases (modules.alias) are
 * all PCI IDs: "path|dependencies only gated modules need|patterns" lines, so /init skips the
 * drivers of absent devices (an empty file without modules.alias).
 * A module built into the kernel (modules.builtin) is skipped; an unknown one is an error
 * naming it. *ret_count gets the number of modules added. */
int ep_microos_add_modules(ep_initramfs *fs, const char *modules_dir, const char *version, const char *const *names,
                           size_t count, size_t *ret_count);

/* The kernel version of a Debian kernel file name (".../vmlinuz-6.1.0-56-amd64" →
 * "6.1.0-56-amd64"), or NULL. */
const char *ep_microos_kernel_version(const char *kernel_path);

/* The newest /boot/vmlinuz-* into buf (version order); EP_ENOENT when there is none. */
int ep_microos_find_kernel(char *buf, size_t size);

#endif
