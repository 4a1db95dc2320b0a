/* Fuzzes the agent's --seed reader, ep_cloudinit_seed_read (cloudinit_seed.c), with arbitrary
 * bytes as NoCloud user-data, as edgeprov-agent --installed --seed hands it over. Checks:
 * nothing crashes or leaks; a refused seed leaves the output zeroed; an accepted one has
 * terminated, valid fields that ep_cloudinit_user_data renders again and that read back
 * unchanged (the reader takes nothing the renderer would refuse). */
#define _POSIX_C_SOURCE 200809L /* strnlen */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "provisioning/cloudinit.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void terminated(const char *s, size_t cap, bool nonempty) {
  size_t len = strnlen(s, cap);
  if (len == cap || (nonempty && len == 0)) abort();
}

static bool same(const ep_cloudinit_seed *a, const ep_cloudinit_seed *b) {
  return !strcmp(a->hostname, b->hostname) && !strcmp(a->client_id, b->client_id) &&
         !strcmp(a->client_secret, b->client_secret) && !strcmp(a->project_id, b->project_id) &&
         !strcmp(a->orchestrator, b->orchestrator) && !strcmp(a->token_url, b->token_url) &&
         !strcmp(a->ca_pem, b->ca_pem);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > 256 * 1024) return 0;
  char *text = malloc(size + 1);
  if (!text) return 0;
  memcpy(text, data, size);
  text[size] = '\0';
  ep_cloudinit_seed seed;
  memset(&seed, 0xa5, sizeof seed);
  if (ep_cloudinit_seed_read(&seed, text, size) < 0) {
    static const ep_cloudinit_seed zero;
    if (memcmp(&seed, &zero, sizeof seed) != 0) abort(); /* "on failure *out is zeroed" */
    free(text);
    return 0;
  }
  terminated(seed.hostname, sizeof seed.hostname, true);
  terminated(seed.client_id, sizeof seed.client_id, true);
  terminated(seed.client_secret, sizeof seed.client_secret, true);
  terminated(seed.project_id, sizeof seed.project_id, false);
  terminated(seed.orchestrator, sizeof seed.orchestrator, true);
  terminated(seed.token_url, sizeof seed.token_url, false);
  if (!seed.ca_pem || !seed.ca_pem[0]) abort();

  ep_cloudinit_spec spec = {.instance_id = "i-1", .hostname = seed.hostname, .ca_pem = seed.ca_pem,
                            .client_id = seed.client_id, .client_secret = seed.client_secret,
                            .project_id = seed.project_id, .orchestrator = seed.orchestrator,
                            .token_url = seed.token_url[0] ? seed.token_url : NULL};
  char *again = NULL;
  size_t len = 0;
  if (ep_cloudinit_user_data(&again, &len, &spec) < 0) abort(); /* accepted in, refused out */
  ep_cloudinit_seed back;
  if (ep_cloudinit_seed_read(&back, again, len) < 0 || !same(&seed, &back)) abort();
  ep_cloudinit_seed_clear(&back);
  ep_cloudinit_free(again);
  ep_cloudinit_seed_clear(&seed);
  free(text);
  return 0;
}
