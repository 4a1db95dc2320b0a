/* core: site cloud-config fragments merged into the user-data tree edgeprov built. */
#ifndef EP_CORE_CLOUDINIT_MERGE_H
#define EP_CORE_CLOUDINIT_MERGE_H

#include <stddef.h>

#include "provisioning/cloudinit_yaml.h"

/* Loads fragment index (text: a YAML mapping of at most EP_CLOUDINIT_FRAGMENT_MAX bytes) and
 * merges it into the mapping doc: sequences on both sides get the fragment's items appended,
 * mappings merge key by key, any other key set on both sides is refused, as are keys that
 * would change what edgeprov sets (fqdn, ca-certs, write_files under /etc/edgeprov).
 * EP_EINVAL / EP_ERANGE ("fragments[1]: 'hostname' is set by edgeprov"), EP_ENOMEM; doc may
 * hold part of the fragment then (the caller frees it). */
int ep_ci_merge_fragment(ep_ci_node *doc, size_t index, const char *text);

#endif
