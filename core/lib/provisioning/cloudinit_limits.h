/* core: the limits of cloud-init seeds and the paths edgeprov writes on the node, shared by the
 * cloud-init files of provisioning/ (and public through cloudinit.h). */
#ifndef EP_CORE_CLOUDINIT_LIMITS_H
#define EP_CORE_CLOUDINIT_LIMITS_H

#define EP_CLOUDINIT_MAX (1024 * 1024)           /* longest user-data or meta-data rendered */
#define EP_CLOUDINIT_FRAGMENT_MAX (64 * 1024)    /* longest site fragment (bytes of YAML) */
#define EP_CLOUDINIT_FRAGMENTS_MAX 32            /* most fragments in one spec */
#define EP_CLOUDINIT_DEPTH_MAX 32                /* deepest nesting of sequences/mappings in a fragment */
#define EP_CLOUDINIT_KEYS_MAX 1024               /* most keys in one mapping, fragments merged */
#define EP_CLOUDINIT_USERS_MAX 64                /* most users in one spec */
#define EP_CLOUDINIT_SSH_KEYS_MAX 64             /* most authorized keys per user */
#define EP_CLOUDINIT_SSH_KEY_MAX 8192            /* longest authorized key line */
#define EP_CLOUDINIT_CA_MAX (64 * 1024)          /* longest CA bundle (PEM) */
#define EP_CLOUDINIT_CREDENTIAL_MAX 511          /* longest client_id, client_secret, project_id (agent keeps 512) */
#define EP_CLOUDINIT_TOKEN_URL_MAX 1023          /* longest token_url (agent keeps 1024) */
#define EP_CLOUDINIT_ORCHESTRATOR_MAX 300        /* longest orchestrator host:port */
#define EP_CLOUDINIT_HOSTNAME_MAX 253            /* longest hostname */

/* Where the node finds what edgeprov writes; fragments may not write under /etc/edgeprov. */
#define EP_CLOUDINIT_CREDENTIALS_PATH "/etc/edgeprov/credentials" /* 0600 root:root */
#define EP_CLOUDINIT_AGENT_CONF_PATH "/etc/edgeprov/agent.conf"   /* 0644 root:root */

#endif
