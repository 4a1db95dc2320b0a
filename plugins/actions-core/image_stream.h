/* actions-core: image.stream, an OS image streamed from a URL onto the target disk. */
#ifndef EP_ACTIONS_CORE_IMAGE_STREAM_H
#define EP_ACTIONS_CORE_IMAGE_STREAM_H

#include <edgeprov/edgeprov.h>

extern const ep_field_decl image_stream_params[];
extern const uint32_t image_stream_params_count;

/* Fetches "url" (http, https, file; "ca_file", "proxy"), decompresses it on the fly ("format":
 * auto, raw, zstd or gzip), writes it to the target in large aligned writes, fsyncs, and
 * checks the SHA-256 of what was written against "sha256" (EP_ECHECKSUM naming both). A
 * broken connection resumes with a Range request from the last byte received, up to
 * "retries" times. Progress: bytes received of the image's size. With "fde" true, partition
 * "fde_partition" of the image is encrypted as it is written (fde.h) and left open as
 * /dev/mapper/"fde_mapping"; on a node without a TPM 2.0 nothing is written. */
int32_t image_stream_run(void *plugin_state, ep_ctx *ctx);

#endif
