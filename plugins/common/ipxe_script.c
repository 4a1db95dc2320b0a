/* plugins/common: the iPXE script, see ipxe_script.h. */
#include "ipxe_script.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

typedef struct script_buf {
  char *buf;
  size_t size;
  size_t len;
  int overflow;
} script_buf;

static void put(script_buf *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(script_buf *o, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(o->buf + o->len, o->len < o->size ? o->size - o->len : 0, fmt, ap);
  va_end(ap);
  if (n < 0 || o->len + (size_t)n >= o->size) o->overflow = 1;
  else o->len += (size_t)n;
}

int32_t ep_ipxe_options_read(const ep_host *host, ep_ctx *ctx, ep_ipxe_options *out) {
  int64_t attempts, delay;
  const char *network;
  int32_t rc;
  if ((rc = host->setting_int(ctx, "attempts", &attempts)) < 0)
    return ep_failf(host, ctx, rc, "setting attempts: cannot read it");
  if (attempts < 1 || attempts > 100)
    return ep_failf(host, ctx, EP_ERANGE, "setting attempts: %lld is not in 1..100", (long long)attempts);
  if ((rc = host->setting_int(ctx, "retry_delay_s", &delay)) < 0)
    return ep_failf(host, ctx, rc, "setting retry_delay_s: cannot read it");
  if (delay < 0 || delay > 300)
    return ep_failf(host, ctx, EP_ERANGE, "setting retry_delay_s: %lld is not in 0..300 (seconds)", (long long)delay);
  if ((rc = host->setting_string(ctx, "network", &network)) < 0)
    return ep_failf(host, ctx, rc, "setting network: cannot read it");
  if (strcmp(network, "dhcp") != 0 && strcmp(network, "static") != 0)
    return ep_failf(host, ctx, EP_EINVAL, "setting network: '%.32s' is neither 'dhcp' nor 'static'", network);
  out->attempts = (int)attempts;
  out->retry_delay_s = (int)delay;
  out->static_ip = strcmp(network, "static") == 0;
  out->use_uki = 0;
  return 0;
}

int ep_ipxe_script(char *buf, size_t size, const ep_boot_build *build, const ep_ipxe_options *opt) {
  if (!buf || size == 0) return -1;
  /* A signed build boots only its signed UKI: it offers no bare kernel (core/artifacts/build.c). */
  int use_uki = opt->use_uki || build->is_signed;
  if (use_uki && !build->uki[0]) return -1;
  script_buf o = {buf, size, 0, 0};
  buf[0] = '\0';
  put(&o, "#!ipxe\n"
          "# edgeprov: boots the Micro-OS from the orchestrator's artifact server.\n"
          "# Written by `edgeprov artifacts build`; edits are lost on the next build.\n"
          "set edgeprov-base %s\n"
          "set edgeprov-round:int32 0\n"
          ":round\n"
          "inc edgeprov-round\n"
          "set edgeprov-nic:int32 0\n"
          ":nic\n"
          "isset ${net${edgeprov-nic}/mac} || goto round-failed\n"
          "echo edgeprov: round ${edgeprov-round}/%d, net${edgeprov-nic} ${net${edgeprov-nic}/mac}\n"
          "ifclose ||\n"
          "dhcp net${edgeprov-nic} || goto next-nic\n",
      build->base_url, opt->attempts);
  /* What the Micro-OS learns of the NIC that booted it: its MAC (so it brings up that one)
   * and the address iPXE got (static ip= when the site wants no second DHCP). */
  char net_args[512];
  snprintf(net_args, sizeof net_args,
           opt->static_ip ? "edgeprov.mac=${net${edgeprov-nic}/mac} edgeprov.ip=${net${edgeprov-nic}/ip} "
                            "ip=${net${edgeprov-nic}/ip}::${net${edgeprov-nic}/gateway}:${net${edgeprov-nic}/netmask}:::off:${dns}"
                          : "edgeprov.mac=${net${edgeprov-nic}/mac} edgeprov.ip=${net${edgeprov-nic}/ip}");
  /* Each fetch is tried three times before the next NIC. */
  if (use_uki) {
    put(&o,
        "set edgeprov-try:int32 0\n"
        ":fetch-uki\n"
        "inc edgeprov-try\n"
        "imgfetch --name %s ${edgeprov-base}/%s && goto boot-uki ||\n"
        "iseq ${edgeprov-try} 3 && goto next-nic || goto fetch-uki\n"
        ":boot-uki\n"
        "echo edgeprov: booting %s\n"
        "chain %s %s %s || goto next-nic\n",
        build->uki, build->uki, build->uki, build->uki, build->kernel_args, net_args);
  } else {
    put(&o,
        "set edgeprov-try:int32 0\n"
        ":fetch-kernel\n"
        "inc edgeprov-try\n"
        "kernel --name %s ${edgeprov-base}/%s initrd=%s %s %s && goto fetch-initrd ||\n"
        "iseq ${edgeprov-try} 3 && goto next-nic || goto fetch-kernel\n"
        ":fetch-initrd\n"
        "set edgeprov-try:int32 0\n"
        ":fetch-initrd-again\n"
        "inc edgeprov-try\n"
        "initrd --name %s ${edgeprov-base}/%s && goto boot-micro-os ||\n"
        "iseq ${edgeprov-try} 3 && goto next-nic || goto fetch-initrd-again\n"
        ":boot-micro-os\n"
        "echo edgeprov: booting the Micro-OS\n"
        "boot || goto next-nic\n",
        build->kernel, build->kernel, build->initrd, build->kernel_args, net_args, build->initrd, build->initrd);
  }
  put(&o,
      ":next-nic\n"
      "imgfree ||\n"
      "inc edgeprov-nic\n"
      "goto nic\n"
      ":round-failed\n"
      "iseq ${edgeprov-round} %d && goto give-up ||\n"
      "echo edgeprov: no NIC could boot the Micro-OS, trying again in %d s\n"
      "sleep %d\n"
      "goto round\n"
      ":give-up\n"
      "echo edgeprov: could not boot the Micro-OS from ${edgeprov-base} after %d rounds\n"
      "shell\n",
      opt->attempts, opt->retry_delay_s, opt->retry_delay_s, opt->attempts);
  return o.overflow ? -1 : (int)o.len;
}
