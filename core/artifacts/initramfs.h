/* core/artifacts: the Micro-OS initramfs as a tree of entries, written as a reproducible
 * cpio (newc) archive compressed with zstd by libarchive. */
#ifndef EP_ARTIFACTS_INITRAMFS_H
#define EP_ARTIFACTS_INITRAMFS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define EP_INITRAMFS_ENTRIES_MAX 8192
#define EP_INITRAMFS_PATH_MAX 512

typedef struct ep_initramfs ep_initramfs;

int ep_initramfs_new(ep_initramfs **out);
void ep_initramfs_free(ep_initramfs *fs);

/* Adds entries; path is absolute in the image ("/usr/bin/x"). Missing parent directories
 * are added (0755). Adding the same path twice is accepted when both describe the same
 * thing, else EP_EEXIST. Every call returns 0 or a negative code with a message. */
int ep_initramfs_add_file(ep_initramfs *fs, const char *path, const char *source, mode_t perm);
int ep_initramfs_add_data(ep_initramfs *fs, const char *path, const void *data, size_t len, mode_t perm);
int ep_initramfs_add_symlink(ep_initramfs *fs, const char *path, const char *target);
int ep_initramfs_add_dir(ep_initramfs *fs, const char *path);
int ep_initramfs_add_chardev(ep_initramfs *fs, const char *path, mode_t perm, unsigned major, unsigned minor);

/* True when path is in the tree. */
int ep_initramfs_has(const ep_initramfs *fs, const char *path);

/* Writes the archive to out_path: entries sorted by path, owner root, every time stamp
 * mtime, inode numbers in order, zstd at a fixed level on one thread, so the same tree
 * gives the same bytes. */
int ep_initramfs_write(const ep_initramfs *fs, const char *out_path, int64_t mtime);

#endif
