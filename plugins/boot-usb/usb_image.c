/* boot-usb: the GPT + FAT32 image writer, see usb_image.h. */
#define _GNU_SOURCE /* pread/pwrite with off_t, ftruncate */
#include "usb_image.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#define SECTOR 512u
#define MIB (1ull << 20)
#define ESP_START_LBA 2048u /* the ESP starts at 1 MiB; as much is left after it for the backup GPT */
#define ESP_MIN (64 * MIB)
#define ESP_SMALL_MAX (512 * MIB) /* up to this size clusters are one sector, above it 4 KiB */
#define GPT_ENTRIES 128u
#define GPT_ENTRY_SIZE 128u
#define GPT_ARRAY_SECTORS (GPT_ENTRIES * GPT_ENTRY_SIZE / SECTOR)
#define FAT_RESERVED 32u   /* reserved sectors: boot sector, FSInfo, backups at 6 and 7 */
#define FAT_BACKUP_BOOT 6u
#define FAT32_MIN_CLUSTERS 65525u
#define FAT_EOC 0x0FFFFFFFu
#define FAT_DATE 0x0021u   /* 1980-01-01, every timestamp (times are 00:00:00) */
#define COPY_CHUNK (1u << 20)
#define VOLUME_LABEL "EDGEPROV   "

/* Clusters of the three directories; the files follow. */
enum { ROOT_CLUSTER = 2, EFI_CLUSTER = 3, BOOT_CLUSTER = 4, FIRST_FILE_CLUSTER = 5 };

/* EFI System Partition, C12A7328-F81F-11D2-BA4B-00A0C93EC93B, as stored (mixed endian). */
static const uint8_t esp_type_guid[16] = {0x28, 0x73, 0x2a, 0xc1, 0x1f, 0xf8, 0xd2, 0x11,
                                          0xba, 0x4b, 0x00, 0xa0, 0xc9, 0x3e, 0xc9, 0x3b};

/* Where everything goes. Sectors of the ESP count from its start. */
typedef struct layout {
  uint64_t disk_sectors, esp_sectors;
  uint32_t spc;         /* sectors per cluster */
  uint32_t fat_sectors; /* of one FAT */
  uint32_t data_start;  /* first sector of cluster 2 */
  uint32_t clusters;    /* data clusters */
  uint32_t next_free;   /* first cluster after the files */
  uint32_t first[USB_IMAGE_FILES_MAX]; /* each file's first cluster, 0 when empty */
} layout;

static void put16(uint8_t *p, uint32_t v) { p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8); }
static void put32(uint8_t *p, uint32_t v) { put16(p, v), put16(p + 2, v >> 16); }
static void put64(uint8_t *p, uint64_t v) { put32(p, (uint32_t)v), put32(p + 4, (uint32_t)(v >> 32)); }
static uint64_t div_up(uint64_t a, uint64_t b) { return (a + b - 1) / b; }

/* A file's directory entries fit a directory of one 512-byte cluster: ., .. and per file
 * its entry and up to two long-name entries. */
_Static_assert(2 + USB_IMAGE_FILES_MAX * (1 + (USB_IMAGE_NAME_MAX + 12) / 13) <= SECTOR / 32, "directory too small");

/* An RFC 9562 version 8 (custom) UUID from 16 digest bytes, in GPT's mixed-endian order. */
static void guid_from(uint8_t g[16], const uint8_t *bytes) {
  memcpy(g, bytes, 16);
  g[7] = (uint8_t)((g[7] & 0x0f) | 0x80);
  g[8] = (uint8_t)((g[8] & 0x3f) | 0x80);
}

static int32_t write_at(const ep_host *host, ep_ctx *ctx, int fd, const char *out_path, const void *buf, size_t len,
                        uint64_t off) {
  for (size_t done = 0; done < len;) {
    ssize_t n = pwrite(fd, (const uint8_t *)buf + done, len - done, (off_t)(off + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0)
      return ep_failf(host, ctx, EP_EIO, "%s: cannot write the image: %s", out_path, n < 0 ? strerror(errno) : "no space");
    done += (size_t)n;
  }
  return 0;
}

/* Sizes the ESP to the files plus a quarter and 16 MiB, and lays out the FAT32 in it. */
static void plan(layout *l, const usb_image_file *files, size_t count) {
  uint64_t need = 3 * 4096; /* the directories, counted in the largest cluster used */
  for (size_t i = 0; i < count; i++) need += div_up(files[i].size, 4096) * 4096;
  uint64_t esp = div_up(need + need / 4 + 16 * MIB, MIB) * MIB;
  if (esp < ESP_MIN) esp = ESP_MIN;
  l->esp_sectors = esp / SECTOR;
  l->disk_sectors = ESP_START_LBA + l->esp_sectors + ESP_START_LBA;
  l->spc = esp > ESP_SMALL_MAX ? 8 : 1;
  /* One FAT entry per cluster the space after the reserved sectors could hold (a few more
   * than fit once the FATs take their share), rounded to 4 KiB so clusters stay aligned. */
  uint64_t entries = (l->esp_sectors - FAT_RESERVED) / l->spc + 2;
  l->fat_sectors = (uint32_t)(div_up(entries * 4, 4096) * 8);
  l->data_start = FAT_RESERVED + 2 * l->fat_sectors;
  l->clusters = (uint32_t)((l->esp_sectors - l->data_start) / l->spc);
  uint32_t next = FIRST_FILE_CLUSTER;
  for (size_t i = 0; i < count; i++) {
    l->first[i] = files[i].size ? next : 0;
    next += (uint32_t)div_up(files[i].size, (uint64_t)l->spc * SECTOR);
  }
  l->next_free = next;
}

/* Byte offset of a cluster in the image. */
static uint64_t cluster_offset(const layout *l, uint32_t cluster) {
  return ((uint64_t)ESP_START_LBA + l->data_start + (uint64_t)(cluster - ROOT_CLUSTER) * l->spc) * SECTOR;
}

/* The short name as it reads in a directory listing: "BOOTX64.EFI". */
static void short_display(const char *short_name, char out[13]) {
  size_t o = 0;
  for (size_t i = 0; i < 8 && short_name[i] != ' '; i++) out[o++] = short_name[i];
  if (short_name[8] != ' ') out[o++] = '.';
  for (size_t i = 8; i < 11 && short_name[i] != ' '; i++) out[o++] = short_name[i];
  out[o] = '\0';
}

static size_t lfn_entries(const usb_image_file *f) {
  char shown[13];
  short_display(f->short_name, shown);
  return strcmp(shown, f->name) == 0 ? 0 : div_up(strlen(f->name), 13);
}

static void dirent(uint8_t *e, const char *short_name, uint8_t attr, uint32_t cluster, uint32_t size) {
  memcpy(e, short_name, 11);
  e[11] = attr;
  put16(e + 16, FAT_DATE); /* created */
  put16(e + 18, FAT_DATE); /* accessed */
  put16(e + 20, cluster >> 16);
  put16(e + 24, FAT_DATE); /* written */
  put16(e + 26, cluster & 0xffff);
  put32(e + 28, size);
}

/* Appends a file's VFAT long-name entries (when its name is not its 8.3 name) and its entry
 * at dir + *at. */
static void dirent_file(uint8_t *dir, size_t *at, const usb_image_file *f, uint32_t cluster) {
  static const uint8_t char_pos[13] = {1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30};
  size_t len = strlen(f->name), k = lfn_entries(f);
  uint8_t sum = 0;
  for (size_t i = 0; i < 11; i++) sum = (uint8_t)(((sum & 1) << 7) + (sum >> 1) + (uint8_t)f->short_name[i]);
  for (size_t ord = k; ord >= 1; ord--) {
    uint8_t *e = dir + *at;
    *at += 32;
    e[0] = (uint8_t)(ord | (ord == k ? 0x40 : 0));
    e[11] = 0x0f; /* long-name entry */
    e[13] = sum;
    for (size_t j = 0; j < 13; j++) {
      size_t i = (ord - 1) * 13 + j;
      put16(e + char_pos[j], i < len ? (uint8_t)f->name[i] : i == len ? 0 : 0xffff);
    }
  }
  dirent(dir + *at, f->short_name, 0x20 /* archive */, cluster, (uint32_t)f->size);
  *at += 32;
}

static void boot_sector(uint8_t b[SECTOR], const layout *l, uint32_t serial) {
  memset(b, 0, SECTOR);
  memcpy(b, "\xeb\x58\x90" "EDGEPROV", 11);
  put16(b + 11, SECTOR);
  b[13] = (uint8_t)l->spc;
  put16(b + 14, FAT_RESERVED);
  b[16] = 2;    /* FATs */
  b[21] = 0xf8; /* fixed media */
  put16(b + 24, 32); /* sectors per track and heads: what mkfs.fat writes for images */
  put16(b + 26, 64);
  put32(b + 28, ESP_START_LBA); /* hidden sectors: the partition's start */
  put32(b + 32, (uint32_t)l->esp_sectors);
  put32(b + 36, l->fat_sectors);
  put32(b + 44, ROOT_CLUSTER);
  put16(b + 48, 1); /* FSInfo sector */
  put16(b + 50, FAT_BACKUP_BOOT);
  b[64] = 0x80; /* drive number */
  b[66] = 0x29; /* extended boot signature: serial, label and type follow */
  put32(b + 67, serial);
  memcpy(b + 71, VOLUME_LABEL "FAT32   ", 19);
  memcpy(b + 90, "\xcd\x18\xf4\xeb\xfd", 5); /* not bootable by BIOS: int 18h, then halt */
  b[510] = 0x55, b[511] = 0xaa;
}

static void fsinfo_sector(uint8_t b[SECTOR], const layout *l) {
  memset(b, 0, SECTOR);
  put32(b, 0x41615252);
  put32(b + 484, 0x61417272);
  put32(b + 488, l->clusters - (l->next_free - ROOT_CLUSTER)); /* free clusters */
  put32(b + 492, l->next_free);
  put32(b + 508, 0xaa550000);
}

static void gpt_header(uint8_t h[SECTOR], const layout *l, int backup, const uint8_t disk_guid[16], uint32_t array_crc) {
  uint64_t last = l->disk_sectors - 1;
  memset(h, 0, SECTOR);
  memcpy(h, "EFI PART", 8);
  put32(h + 8, 0x00010000); /* revision 1.0 */
  put32(h + 12, 92);        /* header size */
  put64(h + 24, backup ? last : 1);
  put64(h + 32, backup ? 1 : last);
  put64(h + 40, 2 + GPT_ARRAY_SECTORS);            /* first usable */
  put64(h + 48, last - GPT_ARRAY_SECTORS - 1);     /* last usable */
  memcpy(h + 56, disk_guid, 16);
  put64(h + 72, backup ? last - GPT_ARRAY_SECTORS : 2);
  put32(h + 80, GPT_ENTRIES);
  put32(h + 84, GPT_ENTRY_SIZE);
  put32(h + 88, array_crc);
  put32(h + 16, (uint32_t)crc32(0, h, 92));
}

/* Writes the protective MBR, both GPT headers and both partition arrays. */
static int32_t write_gpt(const ep_host *host, ep_ctx *ctx, int fd, const char *out_path, const layout *l,
                         const uint8_t disk_guid[16], const uint8_t part_guid[16]) {
  uint8_t mbr[SECTOR] = {0}, header[SECTOR], array[GPT_ENTRIES * GPT_ENTRY_SIZE] = {0};
  uint64_t last = l->disk_sectors - 1;
  uint8_t *p = mbr + 446;
  memcpy(p, "\x00\x00\x02\x00\xee\xff\xff\xff", 8); /* from CHS 0/0/2 to the end, type EE */
  put32(p + 8, 1);
  put32(p + 12, last > 0xffffffffu ? 0xffffffffu : (uint32_t)last);
  mbr[510] = 0x55, mbr[511] = 0xaa;

  memcpy(array, esp_type_guid, 16);
  memcpy(array + 16, part_guid, 16);
  put64(array + 32, ESP_START_LBA);
  put64(array + 40, ESP_START_LBA + l->esp_sectors - 1);
  static const char part_name[] = "EFI System Partition";
  for (size_t i = 0; i < sizeof part_name - 1; i++) put16(array + 56 + 2 * i, (uint8_t)part_name[i]);
  uint32_t array_crc = (uint32_t)crc32(0, array, sizeof array);

  int32_t rc = write_at(host, ctx, fd, out_path, mbr, SECTOR, 0);
  if (rc == 0) gpt_header(header, l, 0, disk_guid, array_crc), rc = write_at(host, ctx, fd, out_path, header, SECTOR, SECTOR);
  if (rc == 0) rc = write_at(host, ctx, fd, out_path, array, sizeof array, 2 * SECTOR);
  if (rc == 0) rc = write_at(host, ctx, fd, out_path, array, sizeof array, (last - GPT_ARRAY_SECTORS) * SECTOR);
  if (rc == 0) gpt_header(header, l, 1, disk_guid, array_crc), rc = write_at(host, ctx, fd, out_path, header, SECTOR, last * SECTOR);
  return rc;
}

/* Writes the boot sectors, FSInfo, both FATs and the three directories. */
static int32_t write_fat(const ep_host *host, ep_ctx *ctx, int fd, const char *out_path, const layout *l,
                         const usb_image_file *files, size_t count, uint32_t serial) {
  uint64_t esp = (uint64_t)ESP_START_LBA * SECTOR;
  uint8_t sector[SECTOR];
  int32_t rc = 0;
  boot_sector(sector, l, serial);
  for (uint32_t at = 0; rc == 0 && at <= FAT_BACKUP_BOOT; at += FAT_BACKUP_BOOT)
    rc = write_at(host, ctx, fd, out_path, sector, SECTOR, esp + (uint64_t)at * SECTOR);
  fsinfo_sector(sector, l);
  for (uint32_t at = 1; rc == 0 && at <= FAT_BACKUP_BOOT + 1; at += FAT_BACKUP_BOOT)
    rc = write_at(host, ctx, fd, out_path, sector, SECTOR, esp + (uint64_t)at * SECTOR);
  if (rc < 0) return rc;

  /* The FAT up to the last used cluster; the rest stays zero (free). */
  size_t fat_len = (size_t)div_up((uint64_t)l->next_free * 4, SECTOR) * SECTOR;
  uint8_t *fat = calloc(1, fat_len);
  if (!fat) return ep_failf(host, ctx, EP_ENOMEM, "out of memory");
  put32(fat, 0x0ffffff8);
  for (uint32_t c = 1; c < FIRST_FILE_CLUSTER; c++) put32(fat + 4 * c, FAT_EOC);
  for (size_t i = 0; i < count; i++) {
    uint32_t n = (uint32_t)div_up(files[i].size, (uint64_t)l->spc * SECTOR);
    for (uint32_t c = l->first[i]; n && c < l->first[i] + n; c++) put32(fat + 4 * c, c + 1 < l->first[i] + n ? c + 1 : FAT_EOC);
  }
  for (uint32_t copy = 0; rc == 0 && copy < 2; copy++)
    rc = write_at(host, ctx, fd, out_path, fat, fat_len, esp + (uint64_t)(FAT_RESERVED + copy * l->fat_sectors) * SECTOR);
  free(fat);
  if (rc < 0) return rc;

  /* One cluster each: \ (label, EFI, root files), \EFI (., .., BOOT), \EFI\BOOT (., .., files). */
  uint8_t dir[8 * SECTOR];
  size_t cluster_bytes = (size_t)l->spc * SECTOR;
  for (uint32_t d = ROOT_CLUSTER; rc == 0 && d <= BOOT_CLUSTER; d++) {
    size_t at = 0;
    memset(dir, 0, cluster_bytes);
    if (d == ROOT_CLUSTER) {
      dirent(dir, VOLUME_LABEL, 0x08, 0, 0), at += 32;
      dirent(dir + at, "EFI        ", 0x10, EFI_CLUSTER, 0), at += 32;
    } else {
      dirent(dir, ".          ", 0x10, d, 0), at += 32;
      dirent(dir + at, "..         ", 0x10, d == EFI_CLUSTER ? 0 : EFI_CLUSTER, 0), at += 32;
      if (d == EFI_CLUSTER) dirent(dir + at, "BOOT       ", 0x10, BOOT_CLUSTER, 0), at += 32;
    }
    for (size_t i = 0; d != EFI_CLUSTER && i < count; i++)
      if ((files[i].dir == USB_IMAGE_ROOT) == (d == ROOT_CLUSTER)) dirent_file(dir, &at, &files[i], l->first[i]);
    rc = write_at(host, ctx, fd, out_path, dir, cluster_bytes, cluster_offset(l, d));
  }
  return rc;
}

/* Copies one file into its clusters and feeds it to the digest. */
static int32_t copy_file(const ep_host *host, ep_ctx *ctx, int fd, const char *out_path, const usb_image_file *f,
                         uint64_t off, uint8_t *buf, EVP_MD_CTX *md) {
  for (uint64_t done = 0; done < f->size;) {
    size_t want = f->size - done < COPY_CHUNK ? (size_t)(f->size - done) : COPY_CHUNK;
    ssize_t n = pread(f->fd, buf, want, (off_t)done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ep_failf(host, ctx, EP_EIO, "%s: cannot read it: %s", f->source, strerror(errno));
    if (n == 0) return ep_failf(host, ctx, EP_EIO, "%s: the file shrank while it was copied; run `edgeprov artifacts build` again", f->source);
    if (!EVP_DigestUpdate(md, buf, (size_t)n)) return ep_failf(host, ctx, EP_EFAILED, "SHA-512 failed");
    int32_t rc = write_at(host, ctx, fd, out_path, buf, (size_t)n, off + done);
    if (rc < 0) return rc;
    done += (uint64_t)n;
  }
  if (pread(f->fd, buf, 1, (off_t)f->size) > 0)
    return ep_failf(host, ctx, EP_EIO, "%s: the file grew while it was copied; run `edgeprov artifacts build` again", f->source);
  return 0;
}

static int32_t check_files(const ep_host *host, ep_ctx *ctx, const usb_image_file *files, size_t count) {
  if (count > USB_IMAGE_FILES_MAX) return ep_failf(host, ctx, EP_EINVAL, "at most %d files fit the USB image", USB_IMAGE_FILES_MAX);
  for (size_t i = 0; i < count; i++) {
    const usb_image_file *f = &files[i];
    size_t len = strlen(f->name);
    if (!len || len > USB_IMAGE_NAME_MAX || strspn(f->name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") != len ||
        strlen(f->short_name) != 11)
      return ep_failf(host, ctx, EP_EINVAL, "'%.64s' cannot be a file name on the USB image", f->name);
    if (f->size > USB_IMAGE_FILE_MAX)
      return ep_failf(host, ctx, EP_ERANGE, "%s: %llu bytes, more than the %llu a USB image takes", f->source,
                      (unsigned long long)f->size, (unsigned long long)USB_IMAGE_FILE_MAX);
  }
  return 0;
}

int32_t usb_image_write(const ep_host *host, ep_ctx *ctx, int fd, const char *out_path, const usb_image_file *files,
                        size_t count) {
  uint8_t digest[EVP_MAX_MD_SIZE], disk_guid[16], part_guid[16], *buf = NULL;
  uint32_t serial;
  EVP_MD_CTX *md = NULL;
  layout l;
  int32_t rc = check_files(host, ctx, files, count);
  if (rc < 0) return rc;
  plan(&l, files, count);
  /* Holds by construction (the ESP has room to spare, 512-byte clusters up to 512 MiB and
   * 4 KiB above); checked so a change of the sizing cannot write a broken filesystem. */
  if (l.clusters < FAT32_MIN_CLUSTERS || l.next_free - ROOT_CLUSTER > l.clusters)
    return ep_failf(host, ctx, EP_ERANGE, "%s: the files do not fit the ESP's layout", out_path);
  if (ftruncate(fd, (off_t)(l.disk_sectors * SECTOR)) < 0)
    return ep_failf(host, ctx, EP_EIO, "%s: cannot size the image: %s", out_path, strerror(errno));

  /* GUIDs and the volume serial come from a digest of every file's place, name and bytes. */
  buf = malloc(COPY_CHUNK);
  md = EVP_MD_CTX_new();
  if (!buf || !md) {
    rc = ep_failf(host, ctx, EP_ENOMEM, "out of memory");
    goto out;
  }
  if (!EVP_DigestInit_ex(md, EVP_sha512(), NULL) || !EVP_DigestUpdate(md, "edgeprov boot-usb 1", 20)) {
    rc = ep_failf(host, ctx, EP_EFAILED, "SHA-512 failed");
    goto out;
  }
  for (size_t i = 0; rc == 0 && i < count; i++) {
    uint8_t meta[9];
    meta[0] = (uint8_t)files[i].dir;
    put64(meta + 1, files[i].size);
    if (!EVP_DigestUpdate(md, files[i].name, strlen(files[i].name) + 1) || !EVP_DigestUpdate(md, meta, sizeof meta)) {
      rc = ep_failf(host, ctx, EP_EFAILED, "SHA-512 failed");
      break;
    }
    if (l.first[i])
      rc = copy_file(host, ctx, fd, out_path, &files[i], cluster_offset(&l, l.first[i]), buf, md);
  }
  if (rc < 0) goto out;
  if (!EVP_DigestFinal_ex(md, digest, NULL)) {
    rc = ep_failf(host, ctx, EP_EFAILED, "SHA-512 failed");
    goto out;
  }
  guid_from(disk_guid, digest);
  guid_from(part_guid, digest + 16);
  serial = (uint32_t)digest[32] | (uint32_t)digest[33] << 8 | (uint32_t)digest[34] << 16 | (uint32_t)digest[35] << 24;

  rc = write_fat(host, ctx, fd, out_path, &l, files, count, serial);
  if (rc == 0) rc = write_gpt(host, ctx, fd, out_path, &l, disk_guid, part_guid);
out:
  EVP_MD_CTX_free(md);
  free(buf);
  return rc;
}
