/* Fuzzes the identity validators (validate.c) with arbitrary text and checks their
 * promises: whatever is accepted comes out normalised and validates again to itself. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/validate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char text[512];
  if (size >= sizeof text) size = sizeof text - 1;
  memcpy(text, data, size);
  text[size] = '\0';
  char uuid[EP_UUID_TEXT_LEN + 1], again_uuid[EP_UUID_TEXT_LEN + 1];
  if (ep_validate_uuid(uuid, "uuid", text) == 0) {
    if (strlen(uuid) != EP_UUID_TEXT_LEN || ep_validate_uuid(again_uuid, "uuid", uuid) != 0 || strcmp(uuid, again_uuid))
      abort();
    for (const char *p = uuid; *p; p++)
      if (*p >= 'A' && *p <= 'Z') abort();
  }
  char mac[EP_MAC_TEXT_LEN + 1], again_mac[EP_MAC_TEXT_LEN + 1];
  if (ep_validate_mac(mac, "mac", text) == 0 &&
      (mac[2] != ':' || ep_validate_mac(again_mac, "mac", mac) != 0 || strcmp(mac, again_mac)))
    abort();
  char ip[EP_IP_TEXT_MAX + 1], again_ip[EP_IP_TEXT_MAX + 1];
  if (ep_validate_ip(ip, "ip", text) == 0 && (ep_validate_ip(again_ip, "ip", ip) != 0 || strcmp(ip, again_ip))) abort();
  if (ep_validate_serial("serial", text) == 0 && (strlen(text) < 5 || strlen(text) > 20)) abort();
  if (ep_validate_name("name", text) == 0 && (strlen(text) > EP_NAME_MAX || strchr(text, '/'))) abort();
  if (ep_validate_text("status", text, 128) == 0)
    for (const char *p = text; *p; p++)
      if ((unsigned char)*p < 0x20 || *p == 0x7f || p - text >= 128) abort();
  return 0;
}
