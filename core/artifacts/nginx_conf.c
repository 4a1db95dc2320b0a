/* core/artifacts: see nginx_conf.h. */
#define _GNU_SOURCE
#include "nginx_conf.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "build.h"
#include "base/error.h"
#include "base/files.h"

/* A value nginx reads as one token inside double quotes. */
static bool nginx_safe(const char *v) {
  if (!*v || strlen(v) > 1000) return false;
  for (const char *p = v; *p; p++)
    if ((unsigned char)*p < 0x21 || strchr("\"'\\$;{}#", *p)) return false;
  return true;
}

static void free_string(char **s) { free(*s); }

int ep_nginx_conf(const ep_config *c, const ep_nginx_conf_options *o, char *buf, size_t size) {
  const char *cert = o->cert ? o->cert : c->tls_cert, *key = o->key ? o->key : c->tls_key;
  const char *dir = o->directory ? o->directory : c->artifacts.directory;
  if (!cert || !key)
    return ep_error_set(EP_EINVAL, "nginx serves HTTPS: set tls.cert and tls.key in the config, or pass --cert and --key");
  /* --cert, --key and --directory may be relative to the current directory; nginx needs them absolute. */
  __attribute__((cleanup(free_string))) char *cert_abs = NULL, *key_abs = NULL, *dir_abs = NULL;
  int r = ep_path_absolute(&cert_abs, cert);
  if (r == 0) r = ep_path_absolute(&key_abs, key);
  if (r == 0) r = ep_path_absolute(&dir_abs, dir);
  if (r < 0) return r;
  cert = cert_abs, key = key_abs, dir = dir_abs;
  if (!o->listen || !nginx_safe(o->listen) || !strchr(o->listen, ':'))
    return ep_error_set(EP_EINVAL, "--listen: expected HOST:PORT");
  if (!nginx_safe(cert)) return ep_error_set(EP_EINVAL, "--cert/tls.cert: a path without quotes, $, ; or spaces");
  if (!nginx_safe(key)) return ep_error_set(EP_EINVAL, "--key/tls.key: a path without quotes, $, ; or spaces");
  if (!nginx_safe(dir)) return ep_error_set(EP_EINVAL, "--directory/artifacts.directory: a path without quotes, $, ; or spaces");
  char base[1024];
  r = ep_artifacts_base_url(c, base, sizeof base);
  if (r < 0) return r;
  const char *host = strstr(base, "://");
  const char *path = host ? strchr(host + 3, '/') : NULL;
  if (!path || !nginx_safe(path) || strstr(path, "..") || strchr(path, '?'))
    return ep_error_set(EP_EINVAL, "artifacts.base_url: \"%s\" needs a path like /boot", base);
  int n = snprintf(buf, size,
                   "# nginx site serving edgeprov's boot artifacts, as edgeprovd's boot-https does.\n"
                   "# Written by `edgeprov artifacts nginx-conf`; include it in nginx's http { } block.\n"
                   "server {\n"
                   "    listen %s ssl;\n"
                   "    ssl_certificate \"%s\";\n"
                   "    ssl_certificate_key \"%s\";\n"
                   "    ssl_protocols TLSv1.2 TLSv1.3;\n"
                   "    server_tokens off;\n"
                   "    keepalive_requests 1000;\n"
                   "\n"
                   "    # Hidden files are never served (regex locations win over prefixes).\n"
                   "    location ~ /\\. {\n"
                   "        return 404;\n"
                   "    }\n"
                   "    location %s/ {\n"
                   "        alias \"%s/\";\n"
                   "        limit_except GET { deny all; }  # GET allows HEAD\n"
                   "        disable_symlinks on;\n"
                   "        autoindex off;\n"
                   "        etag on;\n"
                   "        sendfile on;\n"
                   "        tcp_nopush on;\n"
                   "        add_header Cache-Control no-cache;\n"
                   "        types {\n"
                   "            application/efi efi;\n"
                   "            text/plain ipxe txt pem crt;\n"
                   "            application/json json;\n"
                   "        }\n"
                   "        default_type application/octet-stream;\n"
                   "    }\n"
                   "    location / {\n"
                   "        return 404;\n"
                   "    }\n"
                   "}\n",
                   o->listen, cert, key, path, dir);
  return n < 0 || (size_t)n >= size ? ep_error_set(EP_ERANGE, "nginx config too long") : n;
}
