/* boot-usb: a GPT disk image holding one FAT32 EFI System Partition, written here byte for
 * byte (no external tools) so the same files always give the same image. */
#ifndef BOOT_USB_IMAGE_H
#define BOOT_USB_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include <edgeprov/host.h>

#define USB_IMAGE_FILES_MAX 4                   /* files on one ESP */
#define USB_IMAGE_FILE_MAX (1ull << 30)         /* largest file accepted, bytes */
#define USB_IMAGE_NAME_MAX 26                   /* longest long file name (two VFAT entries) */

/* The directory a file goes into: the ESP's root or \EFI\BOOT. */
typedef enum usb_image_dir { USB_IMAGE_ROOT, USB_IMAGE_EFI_BOOT } usb_image_dir;

/* One file to put on the ESP. name is its long name ([A-Za-z0-9._-], at most
 * USB_IMAGE_NAME_MAX); short_name its 8.3 name as 11 upper-case characters, space-padded
 * ("BOOTX64 EFI", "AUTOEX~1IPX"), unique in its directory. fd is read with pread from 0 to
 * size; source names it in messages. */
typedef struct usb_image_file {
  usb_image_dir dir;
  const char *name;
  const char *short_name;
  const char *source;
  int fd;
  uint64_t size;
} usb_image_file;

/* Writes the image into fd (an empty regular file, resized here): a protective MBR, a GPT
 * with one EFI System Partition from 1 MiB, sized to the files plus margin (at least 64 MiB,
 * a whole number of MiB), formatted FAT32 and holding \EFI\BOOT and the files. GUIDs and the
 * volume serial are derived from the files' names and content, timestamps are 1980-01-01.
 * out_path names the image in messages. Returns 0 or a negative code after host->set_error. */
int32_t usb_image_write(const ep_host *host, ep_ctx *ctx, int fd, const char *out_path, const usb_image_file *files,
                        size_t count);

#endif
