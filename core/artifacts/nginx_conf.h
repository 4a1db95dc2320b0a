/* core/artifacts: an nginx site config that serves the artifact directory the way the
 * embedded server does (`edgeprov artifacts nginx-conf`), for sites that prefer nginx. */
#ifndef EP_ARTIFACTS_NGINX_CONF_H
#define EP_ARTIFACTS_NGINX_CONF_H

#include <stddef.h>

#include "runtime/config.h"

typedef struct ep_nginx_conf_options {
  const char *listen;    /* "host:port" */
  const char *cert;      /* PEM files; NULL: tls.cert and tls.key */
  const char *key;
  const char *directory; /* NULL: artifacts.directory */
} ep_nginx_conf_options;

/* Writes the server block into buf: HTTPS on listen, the directory at the path of
 * artifacts.base_url ("/boot/"), GET and HEAD only, ETag and ranges (nginx's own), no
 * symbolic links, no hidden files, no listings. Every value is checked before it is
 * written (a message names the option). Returns the length or a negative code. */
int ep_nginx_conf(const ep_config *config, const ep_nginx_conf_options *options, char *buf, size_t size);

#endif
