/* plugins/common: the iPXE script the boot plugins publish (boot-https's boot.ipxe,
 * boot-usb's autoexec.ipxe). */
#ifndef EP_PLUGIN_IPXE_SCRIPT_H
#define EP_PLUGIN_IPXE_SCRIPT_H

#include <stddef.h>
#include <stdint.h>

#include <edgeprov/boot.h>
#include <edgeprov/host.h>

/* How the script boots the Micro-OS and configures the node's network. */
typedef struct ep_ipxe_options {
  int attempts;      /* rounds over every NIC before giving up, 1..100 */
  int retry_delay_s; /* pause between rounds, 0..300 */
  int static_ip;     /* 1: pass iPXE's address as a static ip= to the Micro-OS; 0: it runs DHCP */
  int use_uki;       /* 1: chain build->uki (one signed EFI file) instead of kernel + initrd */
} ep_ipxe_options;

/* The settings both boot plugins declare for their script, and their reader: checks each
 * (bounds, network = "dhcp" | "static"), and on a bad one sets an error naming the setting
 * and returns < 0. use_uki is left 0 for the plugin to decide. */
#define EP_IPXE_SETTINGS                                                                            \
  EP_FIELD_INT_DECL("attempts", "5", EP_FIELD_OPTIONAL, 1, 100,                                     \
                    "rounds over every NIC before the script gives up"),                            \
      EP_FIELD_INT_DECL("retry_delay_s", "5", EP_FIELD_OPTIONAL, 0, 300, "seconds between two rounds"), \
      EP_FIELD_STRING_DECL("network", "dhcp", EP_FIELD_OPTIONAL, 16,                               \
                           "dhcp: the Micro-OS runs DHCP again; static: it keeps the address iPXE got (ip=)")

int32_t ep_ipxe_options_read(const ep_host *host, ep_ctx *ctx, ep_ipxe_options *out);

/* Writes the script into buf (NUL-terminated). It loops over the NICs (net0, net1, ...)
 * with DHCP, fetches the kernel and initrd from build->base_url (each fetch retried), and
 * passes build->kernel_args, initrd=<name>, edgeprov.mac= and edgeprov.ip= (the NIC it
 * booted from) on the kernel command line; after `attempts` rounds it says so and drops to
 * the iPXE shell. Strings in build are validated by the core (see ep_boot_build).
 * Returns the length, or -1 when buf is too small or use_uki is set (or the build
 * is signed: a signed build boots only its UKI) without a UKI. */
int ep_ipxe_script(char *buf, size_t size, const ep_boot_build *build, const ep_ipxe_options *options);

#endif
