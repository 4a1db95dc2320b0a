/* Fuzzes the embedded HTTPS server's request handling (https.c over libmicrohttpd: request
 * line, headers, chunked and plain bodies, the urlencoded form decoder, HTTP Basic) and the
 * OAuth2 token endpoint behind it (token_endpoint.c), by feeding arbitrary bytes as one
 * plaintext connection through ep_https_server_serve_fd. Checks: nothing crashes or leaks,
 * every answer is an HTTP/1.x response, what a handler is given keeps https.h's bounds, a
 * token is issued only for the right client secret, and the secret is never sent back. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <edgeprov/identity.h>

#include "http_exchange.h"
#include "net/https.h"
#include "runtime/plugin_loader.h"
#include "southbound/token_endpoint.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define INPUT_MAX (EP_HTTPS_BODY_MAX + 16 * 1024) /* room for a body past the limit (413) */
#define RESPONSE_KEPT (256 * 1024)
#define CLIENT_ID "node-1"
#define CLIENT_SECRET "fuzz-secret-4f1d"
#define TOKEN "fuzz-token.payload.signature"

/* ---- an identity plugin that knows one client ------------------------------------------------ */

static int32_t fake_issue(void *state, const char *client_id, const char *secret, const char *audience,
                          ep_identity_credentials_fn visit, void *data) {
  (void)state;
  if (!client_id || !secret || !audience) abort(); /* the endpoint checked them */
  if (strcmp(client_id, CLIENT_ID) != 0 || strcmp(secret, CLIENT_SECRET) != 0) return EP_EPERM;
  if (!audience[0] || strpbrk(audience, "\"\\")) return EP_EINVAL;
  ep_identity_credentials c = {.struct_size = sizeof c, .client_id = client_id, .client_secret = TOKEN};
  return visit(data, &c);
}

static int32_t fake_verify(void *state, const char *token, const char *audience, ep_identity_claims_fn visit,
                           void *data) {
  (void)state;
  if (strcmp(token, TOKEN) != 0) abort(); /* the endpoint verifies what it was issued */
  ep_identity_claims claims = {.struct_size = sizeof claims, .subject = CLIENT_ID, .audience = audience,
                               .expires_at = (int64_t)time(NULL) + 300};
  return visit(data, &claims);
}

static const char *fake_token_url(void *state) {
  (void)state;
  return "";
}

static int32_t fake_jwks(void *state, ep_identity_text_fn visit, void *data) {
  (void)state;
  return visit(data, "{\"keys\":[]}");
}

static const ep_identity fake_identity = {.struct_size = sizeof fake_identity, .issue_token = fake_issue,
                                          .verify_token = fake_verify, .token_url = fake_token_url,
                                          .jwks = fake_jwks};
static const char *const fake_caps[] = {EP_CAP_IDENTITY, NULL};
static const void *fake_capability(void *state, const char *id) {
  (void)state;
  return strcmp(id, EP_CAP_IDENTITY) == 0 ? &fake_identity : NULL;
}
static const ep_plugin_entry fake_entry = {EP_PLUGIN_ENTRY_HEADER, .id = "fuzz-identity", .capabilities = fake_caps,
                                           .get_capability = fake_capability};
static ep_plugin fake_plugin = {.entry = &fake_entry, .state = EP_PLUGIN_ACTIVE};
static ep_plugin *started[] = {&fake_plugin};
static const ep_plugin_set plugins = {.started = started, .started_count = 1};

/* ---- a route that checks what a handler is given ---------------------------------------------- */

static void handle_check(void *data, const ep_https_request *req, ep_https_response *resp) {
  (void)data;
  if (!req->method || !req->path || !req->content_type || !req->authorization) abort();
  if (req->body_len > EP_HTTPS_BODY_MAX || (req->body_len && !req->body)) abort();
  if (req->form_count > EP_HTTPS_FORM_FIELDS_MAX) abort();
  for (size_t i = 0; i < req->form_count; i++)
    if (strnlen(req->form[i].name, EP_HTTPS_FORM_NAME_MAX) == EP_HTTPS_FORM_NAME_MAX ||
        strnlen(req->form[i].value, EP_HTTPS_FORM_VALUE_MAX) == EP_HTTPS_FORM_VALUE_MAX)
      abort();
  if (req->basic_password && !req->basic_user) abort();
  for (size_t i = 0; i < req->form_count; i++)
    if (ep_https_form_value(req, req->form[i].name) == NULL) abort();
  resp->status = 200;
  if (asprintf(&resp->body, "fields=%zu body=%zu\n", req->form_count, req->body_len) < 0) resp->body = NULL;
  resp->len = resp->body ? strlen(resp->body) : 0;
}

static ep_https_server *server;

static void setup(void) {
  if (ep_https_server_new(&server, "127.0.0.1:0", NULL, NULL) < 0 || ep_token_endpoint_route(server, &plugins) < 0 ||
      ep_https_server_route(server, "POST", "/check", handle_check, NULL) < 0 ||
      ep_https_server_route(server, "PUT", "/check", handle_check, NULL) < 0)
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, setup);
  if (size > INPUT_MAX) return 0;
  fuzz_exchange x = {.request = data, .request_len = size, .response = malloc(RESPONSE_KEPT + 1), .response_cap = RESPONSE_KEPT};
  if (!x.response) abort();
  fuzz_exchange_run(server, &x);

  if (getenv("EP_FUZZ_PRINT")) fprintf(stderr, "---- response\n%s\n", x.response); /* to look at seeds */
  if (x.response_len && strncmp(x.response, "HTTP/1.", 7) != 0) abort();
  if (memmem(x.response, x.response_len, CLIENT_SECRET, strlen(CLIENT_SECRET))) abort();
  /* A token only for a request that carried the secret (as is, URL-encoded or in Basic). */
  if (memmem(x.response, x.response_len, TOKEN, strlen(TOKEN)) &&
      !memmem(data, size, CLIENT_SECRET, strlen(CLIENT_SECRET)) && !memmem(data, size, "Basic ", 6) &&
      !memchr(data, '%', size))
    abort();
  free(x.response);
  return 0;
}
