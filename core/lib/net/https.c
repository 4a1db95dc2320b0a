/* core: the embedded HTTPS server over libmicrohttpd, see https.h. */
#define _GNU_SOURCE /* strdup, explicit_bzero */
#include "net/https.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "base/error.h"
#include "net/https_files.h"

typedef struct route {
  char *method;
  char *path;
  ep_https_handler handler;
  void *data;
} route;

typedef struct mount {
  char *url_path; /* "/boot" */
  char *directory;
} mount;

struct ep_https_server {
  mount mounts[EP_HTTPS_MOUNTS_MAX];
  size_t mount_count;
  struct MHD_Daemon *mhd;
  struct sockaddr_storage addr;
  char *cert;
  char *key;
  route routes[EP_HTTPS_ROUTES_MAX];
  size_t route_count;
};

/* What is being received for one request: a raw body, or a form decoded as it arrives. */
typedef struct upload {
  uint8_t data[EP_HTTPS_BODY_MAX];
  size_t len;
  bool too_large;
  bool is_form;                          /* application/x-www-form-urlencoded */
  struct MHD_PostProcessor *form_parser; /* while the form arrives */
  ep_https_form_field form[EP_HTTPS_FORM_FIELDS_MAX];
  size_t form_count;
  bool form_invalid;
} upload;

const char *ep_https_form_value(const ep_https_request *request, const char *name) {
  for (size_t i = 0; i < request->form_count; i++)
    if (strcmp(request->form[i].name, name) == 0) return request->form[i].value;
  return NULL;
}

/* Receives a form field from libmicrohttpd, possibly in pieces (off > 0 continues it). */
static enum MHD_Result on_form_field(void *cls, enum MHD_ValueKind kind, const char *key, const char *filename,
                                     const char *content_type, const char *transfer_encoding, const char *data,
                                     uint64_t off, size_t size) {
  (void)kind, (void)filename, (void)content_type, (void)transfer_encoding;
  upload *u = cls;
  ep_https_form_field *field = u->form_count ? &u->form[u->form_count - 1] : NULL;
  if (off == 0 || !field || strcmp(field->name, key) != 0) {
    if (u->form_count == EP_HTTPS_FORM_FIELDS_MAX || strlen(key) >= EP_HTTPS_FORM_NAME_MAX) {
      u->form_invalid = true;
      return MHD_YES;
    }
    field = &u->form[u->form_count++];
    memcpy(field->name, key, strlen(key) + 1);
    field->value[0] = '\0';
  }
  size_t used = strlen(field->value);
  if (used + size >= EP_HTTPS_FORM_VALUE_MAX || memchr(data, '\0', size)) {
    u->form_invalid = true;
    return MHD_YES;
  }
  memcpy(field->value + used, data, size);
  field->value[used + size] = '\0';
  return MHD_YES;
}

static int parse_address(const char *address, struct sockaddr_storage *out) {
  char host[256];
  const char *colon = strrchr(address, ':');
  if (!colon || (size_t)(colon - address) >= sizeof host) return -1;
  memcpy(host, address, (size_t)(colon - address));
  host[colon - address] = '\0';
  const char *digits = colon + 1;
  if (!*digits || strspn(digits, "0123456789") != strlen(digits) || strlen(digits) > 5) return -1;
  long port = strtol(digits, NULL, 10);
  if (port > 65535) return -1;
  memset(out, 0, sizeof *out);
  struct sockaddr_in *v4 = (struct sockaddr_in *)out;
  struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)out;
  size_t hl = strlen(host);
  if (hl > 2 && host[0] == '[' && host[hl - 1] == ']') {
    host[hl - 1] = '\0';
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons((uint16_t)port);
    return inet_pton(AF_INET6, host + 1, &v6->sin6_addr) == 1 ? 0 : -1;
  }
  if (strcmp(host, "localhost") == 0) snprintf(host, sizeof host, "127.0.0.1");
  v4->sin_family = AF_INET;
  v4->sin_port = htons((uint16_t)port);
  return inet_pton(AF_INET, host, &v4->sin_addr) == 1 ? 0 : -1;
}

static bool is_loopback(const struct sockaddr_storage *a) {
  if (a->ss_family == AF_INET) return (ntohl(((const struct sockaddr_in *)a)->sin_addr.s_addr) >> 24) == 127;
  return a->ss_family == AF_INET6 && IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)a)->sin6_addr);
}

int ep_https_server_new(ep_https_server **out, const char *address, const char *cert_pem, const char *key_pem) {
  ep_https_server *s = calloc(1, sizeof *s);
  if (!s) return ep_error_set(EP_ENOMEM, "out of memory");
  int r = 0;
  if (parse_address(address, &s->addr) < 0)
    r = ep_error_set(EP_EINVAL, "'listen.https': '%s' is not host:port with an IP address", address);
  else if (!cert_pem && !is_loopback(&s->addr))
    r = ep_error_set(EP_EINVAL, "'listen.https' %s is not a loopback address: HTTPS needs tls.cert and tls.key", address);
  else if (cert_pem && (!(s->cert = strdup(cert_pem)) || !(s->key = strdup(key_pem ? key_pem : ""))))
    r = ep_error_set(EP_ENOMEM, "out of memory");
  if (r < 0) {
    ep_https_server_free(s);
    return r;
  }
  *out = s;
  return 0;
}

int ep_https_server_route(ep_https_server *s, const char *method, const char *path, ep_https_handler handler, void *data) {
  if (s->mhd || s->route_count == EP_HTTPS_ROUTES_MAX) return ep_error_set(EP_EINVAL, "cannot add route %s", path);
  route *rt = &s->routes[s->route_count];
  rt->method = strdup(method);
  rt->path = strdup(path);
  rt->handler = handler;
  rt->data = data;
  if (!rt->method || !rt->path) return ep_error_set(EP_ENOMEM, "out of memory");
  s->route_count++;
  return 0;
}

int ep_https_server_serve_directory(ep_https_server *s, const char *url_path, const char *directory) {
  if (s->mhd || s->mount_count == EP_HTTPS_MOUNTS_MAX)
    return ep_error_set(EP_EINVAL, "cannot serve %s: too many directories, or the server runs", url_path);
  for (size_t i = 0; i < s->mount_count; i++)
    if (strcmp(s->mounts[i].url_path, url_path) == 0)
      return ep_error_set(EP_EEXIST, "%s is already served from %s", url_path, s->mounts[i].directory);
  mount *m = &s->mounts[s->mount_count];
  if (!(m->url_path = strdup(url_path)) || !(m->directory = strdup(directory))) {
    free(m->url_path);
    return ep_error_set(EP_ENOMEM, "out of memory");
  }
  s->mount_count++;
  return 0;
}

/* The published directory url falls under, with *rel set to the rest of the path. */
static const mount *find_mount(const ep_https_server *s, const char *url, const char **rel) {
  for (size_t i = 0; i < s->mount_count; i++) {
    size_t n = strlen(s->mounts[i].url_path);
    if (strncmp(url, s->mounts[i].url_path, n) == 0 && url[n] == '/') {
      *rel = url + n + 1;
      return &s->mounts[i];
    }
  }
  return NULL;
}

/* Answers with body (malloc'd, taken); allow, when not NULL, is the Allow header of a 405. */
static enum MHD_Result respond_allow(struct MHD_Connection *connection, int status, const char *type, char *body,
                                     size_t len, const char *allow) {
  struct MHD_Response *resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
  if (!resp) {
    free(body);
    return MHD_NO;
  }
  MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
  MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
  if (allow) MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
  enum MHD_Result r = MHD_queue_response(connection, (unsigned)status, resp);
  MHD_destroy_response(resp);
  return r;
}

static enum MHD_Result respond(struct MHD_Connection *connection, int status, const char *type, char *body, size_t len) {
  return respond_allow(connection, status, type, body, len, NULL);
}

static enum MHD_Result respond_text(struct MHD_Connection *connection, int status, const char *text) {
  char *body = strdup(text);
  return body ? respond(connection, status, "text/plain", body, strlen(body)) : MHD_NO;
}

/* 405 with the methods the path takes in Allow (RFC 9110 section 15.5.6). */
static enum MHD_Result respond_not_allowed(struct MHD_Connection *connection, const char *allow) {
  char *body = strdup("method not allowed\n");
  return body ? respond_allow(connection, 405, "text/plain", body, strlen(body), allow) : MHD_NO;
}

/* The per-request state of a file request: no state, only a mark that its headers were seen. */
static char file_request;

static enum MHD_Result on_request(void *cls, struct MHD_Connection *connection, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls) {
  (void)version;
  ep_https_server *s = cls;
  upload *u = *con_cls;
  const char *rel = NULL;
  const mount *m = find_mount(s, url, &rel);
  if (m && !*con_cls && strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
    return respond_not_allowed(connection, "GET, HEAD");
  if (m && (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0)) {
    /* Answered on the second call, once the request is read: libmicrohttpd closes the
     * connection after a response queued on the first (headers only) call, and UEFI HTTP
     * boot cannot open a second TLS connection after its HEAD. A stray body is dropped. */
    if (!*con_cls) {
      *con_cls = &file_request;
      return MHD_YES;
    }
    if (*upload_data_size) {
      *upload_data_size = 0;
      return MHD_YES;
    }
    return ep_https_serve_file(connection, method, m->directory, rel);
  }
  if (!u) { /* first call: headers only */
    if (!(u = calloc(1, sizeof *u))) return MHD_NO;
    *con_cls = u;
    const char *type = MHD_lookup_connection_value(connection, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    if (type && strncasecmp(type, MHD_HTTP_POST_ENCODING_FORM_URLENCODED, strlen(MHD_HTTP_POST_ENCODING_FORM_URLENCODED)) == 0)
      u->is_form = (u->form_parser = MHD_create_post_processor(connection, 4096, on_form_field, u)) != NULL;
    return MHD_YES;
  }
  if (*upload_data_size) { /* body arriving */
    if (u->len + *upload_data_size > sizeof u->data)
      u->too_large = true;
    else if (u->form_parser && MHD_post_process(u->form_parser, upload_data, *upload_data_size) != MHD_YES)
      u->form_invalid = true;
    else if (!u->form_parser)
      memcpy(u->data + u->len, upload_data, *upload_data_size);
    u->len += u->too_large ? 0 : *upload_data_size;
    *upload_data_size = 0;
    return MHD_YES;
  }
  if (u->form_parser) { /* the body is complete: destroying the parser delivers its last field */
    if (MHD_destroy_post_processor(u->form_parser) != MHD_YES) u->form_invalid = true;
    u->form_parser = NULL;
  }
  if (u->too_large) return respond_text(connection, 413, "request body too large\n");
  bool path_known = false;
  char allow[128] = ""; /* the methods routed on this path, for a 405 */
  for (size_t i = 0; i < s->route_count; i++) {
    route *rt = &s->routes[i];
    if (strcmp(rt->path, url) != 0) continue;
    path_known = true;
    size_t used = strlen(allow);
    snprintf(allow + used, sizeof allow - used, "%s%s", used ? ", " : "", rt->method);
    if (strcmp(rt->method, method) != 0) continue;
    const char *type = MHD_lookup_connection_value(connection, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    const char *auth = MHD_lookup_connection_value(connection, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    char *password = NULL;
    char *user = MHD_basic_auth_get_username_password(connection, &password);
    ep_https_request req = {.method = method, .path = url, .content_type = type ? type : "",
                            .authorization = auth ? auth : "", .body = u->is_form ? NULL : u->data,
                            .body_len = u->is_form ? 0 : u->len, .form = u->form, .form_count = u->form_count,
                            .form_invalid = u->form_invalid, .basic_user = user, .basic_password = password};
    ep_https_response resp = {.status = 500, .content_type = "text/plain"};
    rt->handler(rt->data, &req, &resp);
    if (password) {
      explicit_bzero(password, strlen(password));
      MHD_free(password);
    }
    if (user) MHD_free(user);
    explicit_bzero(u->form, sizeof u->form); /* a form may carry a client secret */
    if (!resp.body) return respond_text(connection, resp.status, "");
    return respond(connection, resp.status, resp.content_type, resp.body, resp.len);
  }
  return path_known ? respond_not_allowed(connection, allow) : respond_text(connection, 404, "not found\n");
}

static void on_completed(void *cls, struct MHD_Connection *connection, void **con_cls, enum MHD_RequestTerminationCode code) {
  (void)cls, (void)connection, (void)code;
  if (*con_cls == &file_request) {
    *con_cls = NULL;
    return;
  }
  upload *u = *con_cls;
  if (u && u->form_parser) MHD_destroy_post_processor(u->form_parser);
  if (u) explicit_bzero(u->form, sizeof u->form);
  free(u);
  *con_cls = NULL;
}

/* The TLS listener's GnuTLS priorities: TLS 1.3, and TLS 1.2 with forward-secret AEAD suites
 * only: ECDHE (as on the gRPC listener) or DHE-RSA (RFC 7919 groups), with AES-GCM or
 * ChaCha20-Poly1305. No TLS 1.0/1.1, no CBC suites with their SHA-1/SHA-2 MACs, no static RSA
 * key exchange: a client offering only those gets a handshake failure
 * (tests/integration/https_tls.sh). DHE-RSA is there for UEFI HTTP boot: Debian 12's OVMF
 * offers TLS 1.2 with DHE-RSA or RSA key exchange only, no ECDHE (its ClientHello has no
 * supported_groups), and fetches ipxe.efi from this listener. */
#define TLS_PRIORITIES                                                                                  \
  "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-CIPHER-ALL:+AES-256-GCM:+AES-128-GCM:+CHACHA20-POLY1305:" \
  "-MAC-ALL:+AEAD:-KX-ALL:+ECDHE-ECDSA:+ECDHE-RSA:+DHE-RSA:%SERVER_PRECEDENCE"

/* The DHE-RSA group for a client that names none (OVMF): RFC 7919's ffdhe2048, a published
 * safe prime, so nothing to generate or keep secret. Without it GnuTLS offers no DHE. */
static const char dh_params[] =
    "-----BEGIN DH PARAMETERS-----\n"
    "MIIBCAKCAQEA//////////+t+FRYortKmq/cViAnPTzx2LnFg84tNpWp4TZBFGQz\n"
    "+8yTnc4kmz75fS/jY2MMddj2gbICrsRhetPfHtXV/WVhJDP1H18GbtCFY2VVPe0a\n"
    "87VXE15/V8k1mE8McODmi3fipona8+/och3xWKE2rec1MKzKT0g6eXq8CrGCsyT7\n"
    "YdEIqUuyyOP7uWrat2DX9GgdT0Kj3jlN9K5W7edjcrsZCwenyO4KbXCeAvzhzffi\n"
    "7MA0BM0oNC9hkXL+nOmFg/+OTxIy7vKBg8P+OxtMb61zO7X8vC7CIAXFjvGDfRaD\n"
    "ssbzSibBsu/6iGtCOGEoXJf//////////wIBAg==\n"
    "-----END DH PARAMETERS-----\n";

/* Starts libmicrohttpd on s's handlers and limits; over TLS when tls (s has a certificate). */
static struct MHD_Daemon *start_daemon(ep_https_server *s, unsigned int flags, uint16_t port, bool tls) {
  if (tls)
    return MHD_start_daemon(flags | MHD_USE_TLS, port, NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR, &s->addr,
                            MHD_OPTION_HTTPS_MEM_CERT, s->cert, MHD_OPTION_HTTPS_MEM_KEY, s->key,
                            MHD_OPTION_HTTPS_PRIORITIES, TLS_PRIORITIES, MHD_OPTION_HTTPS_MEM_DHPARAMS, dh_params,
                            MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_CONNECTION_TIMEOUT, 30u,
                            MHD_OPTION_CONNECTION_LIMIT, 1024u, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
                            (size_t)EP_HTTPS_CONNECTION_MEMORY, MHD_OPTION_END);
  return MHD_start_daemon(flags, port, NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR, &s->addr,
                          MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_CONNECTION_TIMEOUT, 30u,
                          MHD_OPTION_CONNECTION_LIMIT, 1024u, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
                          (size_t)EP_HTTPS_CONNECTION_MEMORY, MHD_OPTION_END);
}

int ep_https_server_start(ep_https_server *s, int *ret_port) {
  unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION;
  if (s->addr.ss_family == AF_INET6) flags |= MHD_USE_IPv6;
  uint16_t port = s->addr.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&s->addr)->sin6_port)
                                                 : ntohs(((struct sockaddr_in *)&s->addr)->sin_port);
  s->mhd = start_daemon(s, flags, port, s->cert != NULL);
  if (!s->mhd) return ep_error_set(EP_EIO, "cannot start the HTTPS server (address in use, or a bad certificate)");
  const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_BIND_PORT);
  if (ret_port) *ret_port = info ? info->port : port;
  return 0;
}

int ep_https_server_serve_fd(ep_https_server *s, int fd) {
  if (s->mhd) {
    close(fd);
    return ep_error_set(EP_EINVAL, "cannot serve a connection: the server runs");
  }
  struct MHD_Daemon *d = start_daemon(s, MHD_USE_NO_LISTEN_SOCKET, 0, false);
  if (!d) {
    close(fd);
    return ep_error_set(EP_EIO, "cannot start the HTTP server");
  }
  struct sockaddr_in peer = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  int r = 0;
  if (MHD_add_connection(d, fd, (const struct sockaddr *)&peer, sizeof peer) != MHD_YES) /* closes fd */
    r = ep_error_set(EP_EIO, "cannot add the connection");
  for (;;) {
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
    if (r < 0 || !info || info->num_connections == 0) break;
    if (MHD_run_wait(d, 1000) != MHD_YES) r = ep_error_set(EP_EIO, "the HTTP server failed");
  }
  MHD_stop_daemon(d); /* closes a connection still open */
  return r;
}

void ep_https_server_free(ep_https_server *s) {
  if (!s) return;
  if (s->mhd) MHD_stop_daemon(s->mhd);
  for (size_t i = 0; i < s->mount_count; i++) {
    free(s->mounts[i].url_path);
    free(s->mounts[i].directory);
  }
  for (size_t i = 0; i < s->route_count; i++) {
    free(s->routes[i].method);
    free(s->routes[i].path);
  }
  if (s->key) {
    explicit_bzero(s->key, strlen(s->key));
    free(s->key);
  }
  free(s->cert);
  free(s);
}
