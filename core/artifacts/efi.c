/* core/artifacts: see efi.h. */
#define _GNU_SOURCE
#include "efi.h"

#include <errno.h>
#include <limits.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/error.h"
#include "run.h"

/* EFI_CERT_X509_GUID a5c059a1-94e4-4aa7-87b5-ab155c2bf072, in the GUID's byte layout
 * (first three fields little-endian). */
static const uint8_t cert_x509_guid[16] = {0xa1, 0x59, 0xc0, 0xa5, 0xe4, 0x94, 0xa7, 0x4a,
                                           0x87, 0xb5, 0xab, 0x15, 0x5c, 0x2b, 0xf0, 0x72};
/* The owner GUID of our entries: fixed, so the list is reproducible. */
static const uint8_t edgeprov_owner_guid[16] = {0x65, 0x64, 0x67, 0x65, 0x70, 0x72, 0x6f, 0x76,
                                                0x8e, 0x10, 0x4c, 0x41, 0x9a, 0x7e, 0x00, 0x01};

static void put_u32le(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
  p[2] = (uint8_t)(v >> 16);
  p[3] = (uint8_t)(v >> 24);
}

int ep_efi_write_esl(const char *pem_path, const char *out_path) {
  FILE *in = fopen(pem_path, "re");
  if (!in) return ep_error_set(EP_ENOENT, "cannot read %s: %s", pem_path, strerror(errno));
  FILE *out = fopen(out_path, "wbe");
  if (!out) {
    fclose(in);
    return ep_error_set(EP_EIO, "cannot write %s: %s", out_path, strerror(errno));
  }
  int r = 0, certs = 0;
  X509 *x;
  while (r == 0 && (x = PEM_read_X509(in, NULL, NULL, NULL))) {
    unsigned char *der = NULL;
    int len = i2d_X509(x, &der);
    X509_free(x);
    if (len <= 0) {
      r = ep_error_set(EP_EINVAL, "%s: a certificate cannot be encoded", pem_path);
      break;
    }
    uint8_t header[28 + 16];
    memcpy(header, cert_x509_guid, 16);
    put_u32le(header + 16, (uint32_t)(28 + 16 + len)); /* SignatureListSize */
    put_u32le(header + 20, 0);                         /* SignatureHeaderSize */
    put_u32le(header + 24, (uint32_t)(16 + len));      /* SignatureSize */
    memcpy(header + 28, edgeprov_owner_guid, 16);      /* EFI_SIGNATURE_DATA.SignatureOwner */
    if (fwrite(header, 1, sizeof header, out) != sizeof header || fwrite(der, 1, (size_t)len, out) != (size_t)len)
      r = ep_error_set(EP_EIO, "cannot write %s: %s", out_path, strerror(errno));
    OPENSSL_free(der);
    certs++;
  }
  fclose(in);
  if (fclose(out) != 0 && r == 0) r = ep_error_set(EP_EIO, "cannot write %s: %s", out_path, strerror(errno));
  if (r == 0 && certs == 0) r = ep_error_set(EP_EINVAL, "%s holds no PEM certificate", pem_path);
  return r;
}

int ep_efi_write_der(const char *pem_path, const char *out_path) {
  FILE *in = fopen(pem_path, "re");
  if (!in) return ep_error_set(EP_ENOENT, "cannot read %s: %s", pem_path, strerror(errno));
  X509 *x = PEM_read_X509(in, NULL, NULL, NULL);
  fclose(in);
  if (!x) return ep_error_set(EP_EINVAL, "%s holds no PEM certificate", pem_path);
  FILE *out = fopen(out_path, "wbe");
  int r = out && i2d_X509_fp(out, x) == 1 ? 0 : ep_error_set(EP_EIO, "cannot write %s", out_path);
  if (out && fclose(out) != 0 && r == 0) r = ep_error_set(EP_EIO, "cannot write %s", out_path);
  X509_free(x);
  return r;
}

static int write_text(const char *path, const char *text) {
  FILE *f = fopen(path, "we");
  if (!f) return ep_error_set(EP_EIO, "cannot write %s: %s", path, strerror(errno));
  fputs(text, f);
  return fclose(f) == 0 ? 0 : ep_error_set(EP_EIO, "cannot write %s", path);
}

static int file_size(const char *path, uint64_t *out) {
  struct stat st;
  if (stat(path, &st) < 0) return ep_error_set(EP_ENOENT, "cannot read %s: %s", path, strerror(errno));
  *out = (uint64_t)st.st_size;
  return 0;
}

#define ALIGN_UP(x, a) (((x) + (a)-1) / (a) * (a))

/* objcopy stamps a PE image with the time of day (and SOURCE_DATE_EPOCH does not reach it in
 * binutils 2.40): set the COFF TimeDateStamp to epoch and recompute the optional header's
 * CheckSum, so the image depends on its inputs only. */
static int pin_pe_timestamp(const char *path, int64_t epoch) {
  FILE *f = fopen(path, "r+be");
  if (!f) return ep_error_set(EP_EIO, "cannot open %s: %s", path, strerror(errno));
  int r = 0;
  uint8_t *data = NULL;
  long size = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
  if (size < 0x40 || size > (1L << 30) || !(data = malloc((size_t)size + 1)) || fseek(f, 0, SEEK_SET) != 0 ||
      fread(data, 1, (size_t)size, f) != (size_t)size) {
    r = ep_error_set(EP_EIO, "cannot read %s", path);
    goto out;
  }
  uint32_t pe = (uint32_t)data[0x3c] | (uint32_t)data[0x3d] << 8 | (uint32_t)data[0x3e] << 16 | (uint32_t)data[0x3f] << 24;
  if ((uint64_t)pe + 24 + 68 > (uint64_t)size || memcmp(data + pe, "PE\0\0", 4) != 0) {
    r = ep_error_set(EP_EINVAL, "%s is not a PE image", path);
    goto out;
  }
  put_u32le(data + pe + 8, (uint32_t)epoch);
  uint32_t checksum_at = pe + 24 + 64;
  put_u32le(data + checksum_at, 0);
  data[size] = 0; /* pads an odd length */
  uint64_t sum = 0;
  for (long i = 0; i < size; i += 2) {
    if ((uint32_t)i == checksum_at || (uint32_t)i == checksum_at + 2) continue;
    sum += (uint32_t)data[i] | (uint32_t)data[i + 1] << 8;
    sum = (sum & 0xffff) + (sum >> 16);
  }
  sum = (sum & 0xffff) + (sum >> 16);
  put_u32le(data + checksum_at, (uint32_t)(sum + (uint64_t)size));
  if (fseek(f, 0, SEEK_SET) != 0 || fwrite(data, 1, (size_t)size, f) != (size_t)size)
    r = ep_error_set(EP_EIO, "cannot write %s", path);
out:
  free(data);
  if (fclose(f) != 0 && r == 0) r = ep_error_set(EP_EIO, "cannot write %s", path);
  return r;
}

int ep_efi_make_uki(const char *stub, const char *kernel, const char *initrd, const char *cmdline, const char *work_dir,
                    const char *out_path, int64_t epoch) {
  char osrel[PATH_MAX], cmd[PATH_MAX];
  snprintf(osrel, sizeof osrel, "%s/uki-osrel", work_dir);
  snprintf(cmd, sizeof cmd, "%s/uki-cmdline", work_dir);
  uint64_t kernel_size = 0;
  int r = write_text(osrel, "ID=edgeprov-microos\nNAME=\"edgeprov Micro-OS\"\nPRETTY_NAME=\"edgeprov Micro-OS\"\n");
  if (r == 0) r = write_text(cmd, cmdline);
  if (r == 0) r = file_size(kernel, &kernel_size);
  if (r < 0) return r;
  /* Section addresses above the stub's own (it ends below 0x20000); the kernel at 16 MiB,
   * the initramfs after it. */
  uint64_t linux_vma = 0x1000000, initrd_vma = ALIGN_UP(linux_vma + kernel_size, 0x100000);
  char a_osrel[PATH_MAX + 16], a_cmd[PATH_MAX + 16], a_linux[PATH_MAX + 16], a_initrd[PATH_MAX + 16], v_linux[64],
      v_initrd[64];
  snprintf(a_osrel, sizeof a_osrel, ".osrel=%s", osrel);
  snprintf(a_cmd, sizeof a_cmd, ".cmdline=%s", cmd);
  snprintf(a_linux, sizeof a_linux, ".linux=%s", kernel);
  snprintf(a_initrd, sizeof a_initrd, ".initrd=%s", initrd);
  snprintf(v_linux, sizeof v_linux, ".linux=0x%llx", (unsigned long long)linux_vma);
  snprintf(v_initrd, sizeof v_initrd, ".initrd=0x%llx", (unsigned long long)initrd_vma);
  const char *argv[] = {"objcopy",
                        "--add-section", a_osrel, "--change-section-vma", ".osrel=0x20000",
                        "--add-section", a_cmd, "--change-section-vma", ".cmdline=0x30000",
                        "--add-section", a_linux, "--change-section-vma", v_linux,
                        "--add-section", a_initrd, "--change-section-vma", v_initrd,
                        stub, out_path, NULL};
  r = ep_run(argv, NULL, 0);
  unlink(osrel);
  unlink(cmd);
  if (r == 0) r = pin_pe_timestamp(out_path, epoch);
  return r < 0 ? ep_error_prefix(r, "cannot make the unified kernel image") : 0;
}

int ep_efi_sign(const char *key, const char *cert, const char *in_path, const char *out_path, const char *work_dir,
                int64_t epoch) {
  char unsigned_copy[PATH_MAX];
  snprintf(unsigned_copy, sizeof unsigned_copy, "%s/sign-input.efi", work_dir);
  /* sbattach --remove fails on an image without a signature: then sign the input as it is. */
  const char *detach[] = {"sbattach", "--remove", unsigned_copy, NULL};
  const char *copy[] = {"cp", "--", in_path, unsigned_copy, NULL};
  int r = ep_run(copy, NULL, 0);
  if (r < 0) return r;
  const char *input = ep_run(detach, NULL, 0) == 0 ? unsigned_copy : in_path;
  /* sbsign stamps the signature with the time of day; a frozen clock makes it the build's. */
  char frozen[32];
  time_t t = (time_t)epoch;
  struct tm tm;
  strftime(frozen, sizeof frozen, "%Y-%m-%d %H:%M:%S", gmtime_r(&t, &tm));
  const char *argv[] = {"env", "TZ=UTC", "faketime", "-f", frozen, "sbsign", "--key", key, "--cert", cert,
                        "--output", out_path, input, NULL};
  r = ep_run(argv, NULL, 0);
  unlink(unsigned_copy);
  return r < 0 ? ep_error_prefix(r, "cannot sign %s", in_path) : 0;
}

int ep_efi_verify(const char *cert, const char *path) {
  const char *argv[] = {"sbverify", "--cert", cert, path, NULL};
  int r = ep_run(argv, NULL, 0);
  return r < 0 ? ep_error_prefix(r, "%s does not verify against %s", path, cert) : 0;
}
