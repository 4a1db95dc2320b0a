/* actions-core: file.write, one file written into a filesystem on the target disk. */
#ifndef EP_ACTIONS_CORE_FILE_WRITE_H
#define EP_ACTIONS_CORE_FILE_WRITE_H

#include <edgeprov/edgeprov.h>

extern const ep_field_decl file_write_params[];
extern const uint32_t file_write_params_count;

/* Writes "content" to "path" inside the filesystem of partition "partition" (its number,
 * 1-based, an int) or "partition_label" (filesystem LABEL or GPT PARTLABEL) of the target
 * disk or image file, or under the host directory "directory" instead. The partition is
 * found in the table on the disk itself (libblkid), attached as a loop device at its offset,
 * mounted on a private directory, written atomically (temp file, fsync, rename, directory
 * fsync) with "mode", "uid" and "gid", then unmounted and detached; every failure undoes
 * what was done. Missing parent directories are created 0755; symlinks resolve inside the
 * filesystem, never on the host. Progress: one report at the end. */
int32_t file_write_run(void *plugin_state, ep_ctx *ctx);

#endif
