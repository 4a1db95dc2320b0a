/* Tests of the OS plugins os-ubuntu and os-microvisor, loaded for real with actions-core: their
 * settings and checks, profiles and fragments, the workflow templates against the template
 * contract and the core's renderer, template_file, and the ubuntu installer: written by the
 * real file.write action, run in a scratch root (what cloud-init would write, a stand-in
 * systemctl) before and after cloud-init, again with every step done, and after an interruption. */
#include <libconfig.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <cmocka.h>

#include <edgeprov/os.h>

#include "runtime/action.h"
#include "provisioning/cloudinit.h"
#include "base/error.h"
#include "runtime/site.h"
#include "testutil.h"
#include "provisioning/workflow.h"

#define SHA_UBUNTU "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
#define SHA_MICROVISOR "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855" /* upper case on purpose */
#define SHA_NOT_HEX "zf86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08" /* 64 characters */
#define URL_UBUNTU "https://images.example/ubuntu-22.04-server.raw.zst"
#define URL_MICROVISOR "file:///srv/images/microvisor-3.0.raw"
#define HOST_UUID "44444444-4444-4444-8444-444444444444"
#define INSTANCE_ID "123e4567-e89b-12d3-a456-426614174000"

#define UBUNTU_SECTION                                                                                \
  "os-ubuntu = { image_url = \"" URL_UBUNTU "\"; image_sha256 = \"" SHA_UBUNTU "\"; image_format = \"zstd\";" \
  " description = \"Ubuntu for the stores\"; };\n"
#define MICROVISOR_SECTION \
  "os-microvisor = { profile = \"emt-3.0\"; image_url = \"" URL_MICROVISOR "\"; image_sha256 = \"" SHA_MICROVISOR "\"; };\n"

/* The variables of the template contract: the core's, then the node agent's. */
static const char *const variables[] = {
    "host.uuid", "host.serial", "host.hostname", "host.ip", "instance.id", "instance.fde",
    "profile.name", "profile.image_url", "profile.image_sha256", "profile.image_format", "profile.os_type",
    "site.orchestrator", "site.token_url", "cloudinit.user_data", "cloudinit.meta_data",
    "node.target_disk", "node.ca_file", "node.efivars_dir", "node.client_id", "node.client_secret",
};

static const char ca_pem[] = TU_CA_PEM;

typedef struct fixture {
  char *dir;
  ep_site *site;
  ep_diags diags;
} fixture;

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  f->dir = tu_mkdtemp();
  free(tu_write(f->dir, "ca.pem", ca_pem));
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  ep_site_free(f->site);
  ep_diags_clear(&f->diags);
  tu_rmdir(f->dir);
  free(f);
  return 0;
}

/* Opens a site with actions-core and both OS plugins enabled, plus sections, and starts it.
 * Returns the number of config errors. */
static size_t open_site(fixture *f, const char *sections) {
  char text[8192];
  snprintf(text, sizeof text,
           "paths = { data = \"%s\"; plugins = [ \"%s\" ]; };\n"
           "plugins = { enabled = [ \"actions-core\", \"os-ubuntu\", \"os-microvisor\" ]; };\n"
           "listen = { grpc = \"orch.site.example:50051\"; };\n"
           "provisioning = { token_url = \"https://orch.site.example:8443/oauth2/token\"; };\n"
           "tls = { ca = \"%s/ca.pem\"; };\n%s",
           f->dir, EP_PLUGIN_OUTPUT_DIR, f->dir, sections);
  char *path = tu_write(f->dir, "site.conf", text);
  ep_site_free(f->site);
  f->site = NULL;
  ep_diags_clear(&f->diags);
  assert_int_equal(ep_site_open(&f->site, path, &f->diags), 0);
  free(path);
  assert_int_equal(ep_plugins_start(f->site->plugins, f->site->config), 0);
  return f->diags.errors;
}

/* open_site with os-ubuntu's template_file set to path. */
static size_t open_site_with_ubuntu_template(fixture *f, const char *path) {
  char sections[2048];
  snprintf(sections, sizeof sections,
           "os-ubuntu = { image_url = \"" URL_UBUNTU "\"; image_sha256 = \"" SHA_UBUNTU "\"; template_file = \"%s\"; };\n"
           MICROVISOR_SECTION,
           path);
  return open_site(f, sections);
}

static ep_plugin *plugin(fixture *f, const char *id) {
  ep_plugin *p = ep_plugins_find(f->site->plugins, id);
  assert_non_null(p);
  return p;
}

/* The OS table of an active plugin, and its state in *ret_state. */
static const ep_os *os_of(fixture *f, const char *id, void **ret_state) {
  ep_plugin *p = plugin(f, id);
  if (p->state != EP_PLUGIN_ACTIVE) fail_msg("%s is %s: %s", id, ep_plugin_state_name(p->state), p->reason ? p->reason : "");
  *ret_state = p->instance;
  const ep_os *os = p->entry->get_capability(p->instance, EP_CAP_OS);
  assert_non_null(os);
  return os;
}

/* ---- visitors ------------------------------------------------------------------------------- */

typedef struct seen {
  int profiles;
  char name[64], os_type[16], url[256], sha256[65], format[8], description[128];
  uint32_t fde;
  int texts;
  char *text[4];
} seen;

static int32_t keep_profile(void *data, const ep_os_profile *p) {
  seen *s = data;
  s->profiles++;
  assert_int_equal(p->struct_size, sizeof *p);
  snprintf(s->name, sizeof s->name, "%s", p->name);
  snprintf(s->os_type, sizeof s->os_type, "%s", p->os_type);
  snprintf(s->url, sizeof s->url, "%s", p->image_url);
  snprintf(s->sha256, sizeof s->sha256, "%s", p->image_sha256);
  snprintf(s->format, sizeof s->format, "%s", p->image_format);
  snprintf(s->description, sizeof s->description, "%s", p->description);
  s->fde = p->fde;
  return 0;
}

static int32_t keep_text(void *data, const char *text) {
  seen *s = data;
  assert_true(s->texts < 4);
  s->text[s->texts++] = strdup(text);
  return 0;
}

static void seen_free(seen *s) {
  for (int i = 0; i < s->texts; i++) free(s->text[i]);
  memset(s, 0, sizeof *s);
}

/* The one template of profile from os-ID. Caller frees. */
static char *template_of(fixture *f, const char *id, const char *profile) {
  void *state = NULL;
  const ep_os *os = os_of(f, id, &state);
  seen s = {0};
  assert_int_equal(os->workflow_template(state, profile, keep_text, &s), 0);
  assert_int_equal(s.texts, 1);
  return s.text[0];
}

/* ---- settings and profiles ------------------------------------------------------------------- */

static void plugins_are_active_with_their_settings(void **state) {
  fixture *f = *state;
  assert_int_equal(open_site(f, UBUNTU_SECTION MICROVISOR_SECTION), 0);
  void *st = NULL;
  seen s = {0};

  const ep_os *os = os_of(f, "os-ubuntu", &st);
  assert_int_equal(os->profiles(st, keep_profile, &s), 0);
  assert_int_equal(s.profiles, 1);
  assert_string_equal(s.name, "ubuntu-22.04");
  assert_string_equal(s.os_type, "mutable");
  assert_string_equal(s.url, URL_UBUNTU);
  assert_string_equal(s.sha256, SHA_UBUNTU);
  assert_string_equal(s.format, "zstd");
  assert_string_equal(s.description, "Ubuntu for the stores");
  assert_int_equal(s.fde, 0); /* full-disk encryption is opt-in */
  /* Its fragment enables the installer, and the core's cloud-init renderer takes it. */
  assert_int_equal(os->cloudinit_fragments(st, "ubuntu-22.04", keep_text, &s), 0);
  assert_int_equal(s.texts, 1);
  assert_non_null(strstr(s.text[0], "edgeprov-install.service"));
  ep_cloudinit_spec spec = {.instance_id = INSTANCE_ID, .hostname = "edge-sn42", .ca_pem = ca_pem, .client_id = "c",
                            .client_secret = "s", .orchestrator = "orch.site.example:50051",
                            .fragments = (const char *const *)s.text, .fragment_count = 1};
  char *user_data = NULL;
  size_t len = 0;
  if (ep_cloudinit_user_data(&user_data, &len, &spec) < 0) fail_msg("fragment refused: %s", ep_error_message());
  assert_non_null(strstr(user_data, "runcmd:"));
  ep_cloudinit_free(user_data);
  seen_free(&s);
  /* Another profile is not there. */
  assert_int_equal(os->workflow_template(st, "ubuntu-24.04", keep_text, &s), EP_ENOENT);
  assert_non_null(strstr(ep_error_message(), "'ubuntu-24.04'"));
  assert_int_equal(os->cloudinit_fragments(st, "emt-3.0", keep_text, &s), EP_ENOENT);
  assert_int_equal(s.texts, 0);

  os = os_of(f, "os-microvisor", &st);
  assert_int_equal(os->profiles(st, keep_profile, &s), 0);
  assert_int_equal(s.profiles, 1);
  assert_string_equal(s.name, "emt-3.0");
  assert_string_equal(s.os_type, "immutable");
  assert_string_equal(s.url, URL_MICROVISOR);
  assert_string_equal(s.sha256, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  assert_string_equal(s.format, "auto");
  assert_non_null(strstr(s.description, "Microvisor"));
  assert_int_equal(os->cloudinit_fragments(st, "emt-3.0", keep_text, &s), 0);
  assert_int_equal(s.texts, 0);
  assert_int_equal(os->workflow_template(st, "microvisor", keep_text, &s), EP_ENOENT);
  seen_free(&s);
}

static void missing_sha256_refuses_the_plugin(void **state) {
  fixture *f = *state;
  assert_int_not_equal(open_site(f, "os-ubuntu = { image_url = \"" URL_UBUNTU "\"; };\n" MICROVISOR_SECTION), 0);
  assert_true(tu_has_diag(&f->diags, 0, "missing required setting 'image_sha256'"));
  assert_int_equal(plugin(f, "os-ubuntu")->state, EP_PLUGIN_REFUSED);
  assert_int_equal(plugin(f, "os-microvisor")->state, EP_PLUGIN_ACTIVE);
}

/* Settings the core accepts by type that the plugin's init refuses, naming the setting. */
static void bad_settings_fail_init_naming_the_setting(void **state) {
  fixture *f = *state;
  static const struct {
    const char *section, *setting;
  } cases[] = {
      {"image_url = \"" URL_UBUNTU "\"; image_sha256 = \"abc123\";", "'image_sha256'"},
      {"image_url = \"" URL_UBUNTU "\"; image_sha256 = \"" SHA_NOT_HEX "\";", "'image_sha256'"},
      {"image_url = \"ftp://images.example/u.raw\"; image_sha256 = \"" SHA_UBUNTU "\";", "'image_url'"},
      {"image_url = \"https://images.example/a b.raw\"; image_sha256 = \"" SHA_UBUNTU "\";", "'image_url'"},
      {"image_url = \"" URL_UBUNTU "\"; image_sha256 = \"" SHA_UBUNTU "\"; image_format = \"qcow2\";", "'image_format'"},
      {"image_url = \"" URL_UBUNTU "\"; image_sha256 = \"" SHA_UBUNTU "\"; profile = \"Ubuntu 22\";", "'profile'"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char sections[1024];
    snprintf(sections, sizeof sections, "os-ubuntu = { %s };\n" MICROVISOR_SECTION, cases[i].section);
    assert_int_equal(open_site(f, sections), 0);
    ep_plugin *p = plugin(f, "os-ubuntu");
    assert_int_equal(p->state, EP_PLUGIN_FAILED);
    if (!strstr(p->reason, cases[i].setting)) fail_msg("case %zu: reason '%s' does not name %s", i, p->reason, cases[i].setting);
    assert_int_equal(plugin(f, "os-microvisor")->state, EP_PLUGIN_ACTIVE);
  }
}

/* ---- the templates ----------------------------------------------------------------------------- */

static bool known_variable(const char *name, size_t len) {
  for (size_t i = 0; i < sizeof variables / sizeof variables[0]; i++)
    if (strlen(variables[i]) == len && strncmp(variables[i], name, len) == 0) return true;
  return false;
}

/* Every ${...} anywhere in text names a variable of the contract. */
static void check_variables(const char *text) {
  int count = 0;
  for (const char *p = strstr(text, "${"); p; p = strstr(p + 2, "${")) {
    const char *end = strchr(p, '}');
    if (!end || !known_variable(p + 2, (size_t)(end - p - 2)))
      fail_msg("unknown variable reference '%.40s' in the template", p);
    count++;
  }
  assert_true(count > 0);
}

/* The declaration of parameter name in ref, or NULL. */
static const ep_field_decl *declared(const ep_action_ref *ref, const char *name) {
  for (uint32_t i = 0; i < ref->action->params_count; i++) {
    const ep_field_decl *d = (const void *)((const char *)ref->action->params + (size_t)i * ref->field_size);
    if (strcmp(d->name, name) == 0) return d;
  }
  return NULL;
}

/* Checks text against the template contract; expects these actions in this order. */
static void check_template(fixture *f, const char *text, const char *const *expected, int expected_count) {
  config_t lc;
  config_init(&lc);
  if (config_read_string(&lc, text) != CONFIG_TRUE)
    fail_msg("template: line %d: %s", config_error_line(&lc), config_error_text(&lc));
  const config_setting_t *actions = config_lookup(&lc, "actions");
  assert_non_null(actions);
  assert_true(config_setting_is_list(actions));
  assert_int_equal(config_setting_length(actions), expected_count);
  for (int i = 0; i < expected_count; i++) {
    const config_setting_t *e = config_setting_get_elem(actions, (unsigned)i);
    assert_true(config_setting_is_group(e));
    assert_int_equal(config_setting_length(e), 4);
    const config_setting_t *name = config_setting_get_member(e, "action");
    const config_setting_t *timeout = config_setting_get_member(e, "timeout_s");
    const config_setting_t *retries = config_setting_get_member(e, "retries");
    const config_setting_t *params = config_setting_get_member(e, "params");
    assert_true(name && config_setting_type(name) == CONFIG_TYPE_STRING);
    assert_true(timeout && config_setting_type(timeout) == CONFIG_TYPE_INT);
    assert_true(retries && config_setting_type(retries) == CONFIG_TYPE_INT);
    assert_true(params && config_setting_is_group(params));
    assert_in_range(config_setting_get_int(timeout), 1, 86400);
    assert_in_range(config_setting_get_int(retries), 0, 100);
    assert_string_equal(config_setting_get_string(name), expected[i]);
    ep_action_ref ref;
    if (ep_actions_find(f->site->plugins, config_setting_get_string(name), &ref) < 0)
      fail_msg("actions[%d]: %s", i, ep_error_message());
    assert_string_equal(ref.plugin->entry->id, "actions-core");
    for (int k = 0; k < config_setting_length(params); k++) {
      const config_setting_t *pv = config_setting_get_elem(params, (unsigned)k);
      if (!declared(&ref, config_setting_name(pv)))
        fail_msg("actions[%d] (%s): %s declares no parameter '%s'", i, expected[i], expected[i], config_setting_name(pv));
      assert_int_equal(config_setting_type(pv), CONFIG_TYPE_STRING);
    }
  }
  config_destroy(&lc);
  check_variables(text);
}

/* The params group of the file.write entry writing path, from text (NULL when none).
 * *lc must be destroyed by the caller. */
static const config_setting_t *file_write_of(config_t *lc, const char *text, const char *path) {
  config_init(lc);
  assert_int_equal(config_read_string(lc, text), CONFIG_TRUE);
  const config_setting_t *actions = config_lookup(lc, "actions");
  for (int i = 0; i < config_setting_length(actions); i++) {
    const config_setting_t *e = config_setting_get_elem(actions, (unsigned)i), *params = config_setting_get_member(e, "params");
    const char *action = NULL, *p = NULL;
    if (config_setting_lookup_string(e, "action", &action) && strcmp(action, "file.write") == 0 &&
        config_setting_lookup_string(params, "path", &p) && strcmp(p, path) == 0)
      return params;
  }
  return NULL;
}

static void expect_param(const config_setting_t *params, const char *name, const char *value) {
  const char *have = NULL;
  if (!config_setting_lookup_string(params, name, &have)) fail_msg("no parameter %s", name);
  assert_string_equal(have, value);
}

static void templates_follow_the_contract(void **state) {
  fixture *f = *state;
  assert_int_equal(open_site(f, UBUNTU_SECTION MICROVISOR_SECTION), 0);
  static const char *const ubuntu[] = {"disk.erase", "image.stream", "file.write", "file.write",
                                       "file.write", "file.write",   "efi.boot_order", "system.reboot"};
  static const char *const microvisor[] = {"disk.erase", "image.stream", "file.write", "file.write", "efi.boot_order",
                                           "system.reboot"};
  char *text = template_of(f, "os-ubuntu", "ubuntu-22.04");
  check_template(f, text, ubuntu, 8);
  config_t lc;
  const config_setting_t *p = file_write_of(&lc, text, "/var/lib/cloud/seed/nocloud/user-data");
  assert_non_null(p);
  expect_param(p, "partition_label", "cloudimg-rootfs");
  expect_param(p, "content", "${cloudinit.user_data}");
  expect_param(p, "mode", "0600"); /* it holds the node's credentials */
  config_destroy(&lc);
  p = file_write_of(&lc, text, "/var/lib/cloud/seed/nocloud/meta-data");
  assert_non_null(p);
  expect_param(p, "content", "${cloudinit.meta_data}");
  config_destroy(&lc);
  p = file_write_of(&lc, text, "/usr/local/sbin/edgeprov-install");
  assert_non_null(p);
  expect_param(p, "mode", "0755");
  config_destroy(&lc);
  p = file_write_of(&lc, text, "/etc/systemd/system/edgeprov-install.service");
  assert_non_null(p);
  const char *unit = NULL;
  assert_true(config_setting_lookup_string(p, "content", &unit));
  assert_non_null(strstr(unit, "ExecStart=/usr/local/sbin/edgeprov-install\n"));
  assert_non_null(strstr(unit, "WantedBy=multi-user.target\n"));
  config_destroy(&lc);
  free(text);

  text = template_of(f, "os-microvisor", "emt-3.0");
  check_template(f, text, microvisor, 6);
  p = file_write_of(&lc, text, "/user-data");
  assert_non_null(p);
  expect_param(p, "partition_label", "data");
  expect_param(p, "mode", "0600");
  config_destroy(&lc);
  free(text);
}

/* Renders profile with the core's renderer (which checks actions, parameters and variables
 * itself) for a sample host and instance, each asking for full-disk encryption or not. Free
 * with ep_workflow_free. */
static ep_workflow *render_fde(fixture *f, const char *profile, bool host_fde, bool instance_fde) {
  Edgeprov__V1__Host host = EDGEPROV__V1__HOST__INIT;
  Edgeprov__V1__Instance instance = EDGEPROV__V1__INSTANCE__INIT;
  host.uuid = HOST_UUID;
  host.serial = "SN0042";
  host.ip = "192.0.2.10";
  host.fde = host_fde;
  instance.id = INSTANCE_ID;
  instance.host_uuid = HOST_UUID;
  instance.os_profile = (char *)profile;
  instance.fde = instance_fde;
  ep_workflow *w = NULL;
  if (ep_workflow_render(&w, f->site->plugins, f->site->config, &host, &instance, 1) < 0)
    fail_msg("rendering %s: %s", profile, ep_error_message());
  return w;
}

static ep_workflow *render(fixture *f, const char *profile) { return render_fde(f, profile, false, false); }

/* The value of parameter name of the rendered action writing path. */
static const char *rendered_param(const ep_workflow *w, const char *path, const char *name) {
  for (size_t i = 0; i < w->n_actions; i++) {
    const Edgeprov__V1__WorkflowAction *a = w->actions[i];
    const char *value = NULL;
    bool match = false;
    for (size_t k = 0; k < a->n_params; k++) {
      if (strcmp(a->params[k]->name, "path") == 0) match = strcmp(a->params[k]->value, path) == 0;
      if (strcmp(a->params[k]->name, name) == 0) value = a->params[k]->value;
    }
    if (match && value) return value;
  }
  fail_msg("no rendered %s for %s", name, path);
  return NULL;
}

static void the_core_renders_both_templates(void **state) {
  fixture *f = *state;
  assert_int_equal(open_site(f, UBUNTU_SECTION MICROVISOR_SECTION), 0);
  ep_workflow *w = render(f, "ubuntu-22.04");
  assert_int_equal(w->n_actions, 8);
  const char *user_data = rendered_param(w, "/var/lib/cloud/seed/nocloud/user-data", "content");
  assert_true(strncmp(user_data, "#cloud-config\n", 14) == 0);
  assert_non_null(strstr(user_data, "edgeprov-install.service"));
  const char *installer = rendered_param(w, "/usr/local/sbin/edgeprov-install", "content");
  assert_non_null(strstr(installer, "profile='ubuntu-22.04'\n"));
  assert_non_null(strstr(installer, "instance_id='" INSTANCE_ID "'\n"));
  assert_non_null(strstr(installer, "host_uuid='" HOST_UUID "'\n"));
  ep_workflow_free(w);

  w = render(f, "emt-3.0");
  assert_int_equal(w->n_actions, 6);
  user_data = rendered_param(w, "/user-data", "content");
  assert_null(strstr(user_data, "runcmd"));
  ep_workflow_free(w);
}

/* ---- template_file ----------------------------------------------------------------------------- */

static const char custom_template[] =
    "# a site's own workflow: no erase\n"
    "actions = (\n"
    "  { action = \"image.stream\"; timeout_s = 7200; retries = 3;\n"
    "    params = { url = \"${profile.image_url}\"; sha256 = \"${profile.image_sha256}\"; target = \"${node.target_disk}\"; }; },\n"
    "  { action = \"system.reboot\"; timeout_s = 60; retries = 0; params = { mode = \"kexec\"; }; }\n"
    ");\n";

static void template_file_replaces_the_built_in_one(void **state) {
  fixture *f = *state;
  char *path = tu_write(f->dir, "custom.conf", custom_template);
  assert_int_equal(open_site_with_ubuntu_template(f, path), 0);
  char *text = template_of(f, "os-ubuntu", "ubuntu-22.04");
  assert_string_equal(text, custom_template);
  free(text);
  ep_workflow *w = render(f, "ubuntu-22.04");
  assert_int_equal(w->n_actions, 2);
  ep_workflow_free(w);
  /* The other plugin keeps its built-in template. */
  text = template_of(f, "os-microvisor", "emt-3.0");
  assert_non_null(strstr(text, "partition_label = \"data\""));
  free(text);
  free(path);
}

/* ${instance.fde}: "true" when the OS profile (setting fde), the host or the instance asks for
 * full-disk encryption, "false" when none does. The template encrypts when asked (its
 * image.stream takes fde = "${instance.fde}"), and the site keeps recovery keys. */
static const char fde_template[] =
    "actions = (\n"
    "  { action = \"image.stream\"; params = { url = \"${profile.image_url}\"; sha256 = \"${profile.image_sha256}\";\n"
    "      target = \"${node.target_disk}\"; fde = \"${instance.fde}\"; fde_partition = \"cloudimg-rootfs\"; }; },\n"
    "  { action = \"file.write\"; params = { target = \"${node.target_disk}\"; path = \"/fde\";\n"
    "      content = \"fde=${instance.fde}\"; }; }\n"
    ");\n";

/* A site key for recovery keys (secrets.recovery_key_file), as a section of the site config. */
static const char *recovery_section(fixture *f, char *out, size_t cap) {
  free(tu_write(f->dir, "recovery.key", "0123456789abcdef0123456789abcdef0123456789abcdef\n"));
  snprintf(out, cap, "secrets = { recovery_key_file = \"%s/recovery.key\"; };\n", f->dir);
  return out;
}

static void instance_fde_is_true_when_the_profile_the_host_or_the_instance_asks(void **state) {
  fixture *f = *state;
  char *path = tu_write(f->dir, "fde.conf", fde_template);
  char sections[3072], secrets[1024];
  for (int profile_fde = 0; profile_fde <= 1; profile_fde++) {
    snprintf(sections, sizeof sections,
             "os-ubuntu = { image_url = \"" URL_UBUNTU "\"; image_sha256 = \"" SHA_UBUNTU "\";"
             " template_file = \"%s\";%s };\n"
             MICROVISOR_SECTION "%s",
             path, profile_fde ? " fde = true;" : "", recovery_section(f, secrets, sizeof secrets));
    assert_int_equal(open_site(f, sections), 0);
    /* The profile carries the setting to the core (ep_os_profile.fde, ABI 1.6). */
    void *st = NULL;
    seen s = {0};
    const ep_os *os = os_of(f, "os-ubuntu", &st);
    assert_int_equal(os->profiles(st, keep_profile, &s), 0);
    assert_int_equal(s.fde, (uint32_t)profile_fde);
    assert_int_equal(ep_workflow_check_templates(f->site->plugins, &f->diags), 0);
    for (int host_fde = 0; host_fde <= 1; host_fde++)
      for (int instance_fde = 0; instance_fde <= 1; instance_fde++) {
        ep_workflow *w = render_fde(f, "ubuntu-22.04", host_fde, instance_fde);
        const char *want = profile_fde || host_fde || instance_fde ? "fde=true" : "fde=false";
        const char *have = rendered_param(w, "/fde", "content");
        if (strcmp(have, want) != 0)
          fail_msg("profile %d, host %d, instance %d: rendered '%s', want '%s'", profile_fde, host_fde, instance_fde,
                   have, want);
        ep_workflow_free(w);
      }
  }
  /* The setting is the profile's: os-microvisor's, not set, does not ask. */
  void *st = NULL;
  seen s = {0};
  const ep_os *os = os_of(f, "os-microvisor", &st);
  assert_int_equal(os->profiles(st, keep_profile, &s), 0);
  assert_int_equal(s.fde, 0);
  free(path);
}

/* Renders profile for a host asking fde or not; returns the render's code (its message in
 * ep_error_message()), the workflow freed. */
static int render_code(fixture *f, const char *profile, bool host_fde) {
  Edgeprov__V1__Host host = EDGEPROV__V1__HOST__INIT;
  Edgeprov__V1__Instance instance = EDGEPROV__V1__INSTANCE__INIT;
  host.uuid = HOST_UUID;
  host.fde = host_fde;
  instance.id = INSTANCE_ID;
  instance.host_uuid = HOST_UUID;
  instance.os_profile = (char *)profile;
  ep_workflow *w = NULL;
  int r = ep_workflow_render(&w, f->site->plugins, f->site->config, &host, &instance, 1);
  if (r < 0) assert_null(w);
  ep_workflow_free(w);
  return r;
}

/* fde asked, but the template does not pass it to an image.stream (a site's template_file copied
 * before FDE, a vendor's template without the params): the render fails, naming the profile, the
 * template and why, rather than a node writing a clear disk. Unasked, the same template renders. */
static void fde_asked_without_an_encrypting_image_stream_fails_the_render(void **state) {
  fixture *f = *state;
  static const char *const templates[] = {
      /* no fde param at all (the custom template above) */
      "actions = (\n"
      "  { action = \"image.stream\"; params = { url = \"${profile.image_url}\"; sha256 = \"${profile.image_sha256}\";\n"
      "      target = \"${node.target_disk}\"; fde_partition = \"cloudimg-rootfs\"; }; }\n"
      ");\n",
      /* fde on something else than image.stream */
      "actions = (\n"
      "  { action = \"disk.erase\"; params = { target = \"${node.target_disk}\"; fde = \"${instance.fde}\"; }; },\n"
      "  { action = \"image.stream\"; params = { url = \"${profile.image_url}\"; sha256 = \"${profile.image_sha256}\"; }; }\n"
      ");\n",
      /* fde written as false */
      "actions = (\n"
      "  { action = \"image.stream\"; params = { url = \"${profile.image_url}\"; sha256 = \"${profile.image_sha256}\";\n"
      "      fde = \"false\"; fde_partition = \"cloudimg-rootfs\"; }; }\n"
      ");\n",
  };
  char secrets[1024], sections[3072];
  recovery_section(f, secrets, sizeof secrets);
  for (size_t i = 0; i < sizeof templates / sizeof templates[0]; i++) {
    char *path = tu_write(f->dir, "nofde.conf", templates[i]);
    snprintf(sections, sizeof sections,
             "os-ubuntu = { image_url = \"" URL_UBUNTU "\"; image_sha256 = \"" SHA_UBUNTU "\"; template_file = \"%s\"; };\n"
             MICROVISOR_SECTION "%s",
             path, secrets);
    assert_int_equal(open_site(f, sections), 0);
    assert_int_equal(render_code(f, "ubuntu-22.04", false), 0);
    assert_int_equal(render_code(f, "ubuntu-22.04", true), EP_EINVAL);
    char want[1200];
    snprintf(want, sizeof want,
             "profile ubuntu-22.04 (template %s): fde asked (host/instance/profile: the host) but the workflow template "
             "has no image.stream with fde = \"${instance.fde}\"",
             path);
    if (!strstr(ep_error_message(), want)) fail_msg("template %zu: '%s' does not say '%s'", i, ep_error_message(), want);
    free(path);
  }
}

/* fde asked on a site that keeps no recovery keys: the render fails naming the setting (a node
 * would otherwise fail only after luksFormat, when it hands over the key). */
static void fde_asked_without_a_recovery_key_file_fails_the_render(void **state) {
  fixture *f = *state;
  assert_int_equal(open_site(f, UBUNTU_SECTION MICROVISOR_SECTION), 0);
  const char *const profiles[] = {"ubuntu-22.04", "emt-3.0"};
  for (size_t i = 0; i < 2; i++) {
    assert_int_equal(render_code(f, profiles[i], false), 0);
    assert_int_equal(render_code(f, profiles[i], true), EP_EPERM);
    if (!strstr(ep_error_message(), "fde asked (host/instance/profile: the host) but secrets.recovery_key_file is not set"))
      fail_msg("%s: '%s'", profiles[i], ep_error_message());
  }
  /* With a site key, both built-in templates encrypt when asked. */
  char secrets[1024], sections[3072];
  snprintf(sections, sizeof sections, UBUNTU_SECTION MICROVISOR_SECTION "%s", recovery_section(f, secrets, sizeof secrets));
  assert_int_equal(open_site(f, sections), 0);
  for (size_t i = 0; i < 2; i++) {
    for (int host_fde = 0; host_fde <= 1; host_fde++) {
      ep_workflow *w = render_fde(f, profiles[i], host_fde, false);
      /* disk.erase and image.stream both get it: a node without a TPM keeps its old disk. */
      int seen_fde = 0;
      for (size_t k = 0; k < w->n_actions; k++) {
        const Edgeprov__V1__WorkflowAction *a = w->actions[k];
        for (size_t p = 0; p < a->n_params; p++)
          if (strcmp(a->params[p]->name, "fde") == 0) {
            assert_true(strcmp(a->action, "disk.erase") == 0 || strcmp(a->action, "image.stream") == 0);
            assert_string_equal(a->params[p]->value, host_fde ? "true" : "false");
            seen_fde |= strcmp(a->action, "disk.erase") == 0 ? 1 : 2;
          }
      }
      if (seen_fde != 3) fail_msg("%s: fde passed to %s", profiles[i], seen_fde == 1 ? "disk.erase only" : "image.stream only");
      ep_workflow_free(w);
    }
  }
}

/* The copy installed for operators is the built-in template, and loads as a template_file. */
static void installed_copy_is_the_built_in_template(void **state) {
  fixture *f = *state;
  assert_int_equal(open_site(f, UBUNTU_SECTION MICROVISOR_SECTION), 0);
  char *built_in = template_of(f, "os-ubuntu", "ubuntu-22.04");
  char *installed = tu_slurp(OS_UBUNTU_INSTALLED_CONF);
  assert_non_null(installed);
  assert_string_equal(installed, built_in);
  assert_int_equal(open_site(f, "os-ubuntu = { image_url = \"" URL_UBUNTU "\"; image_sha256 = \"" SHA_UBUNTU
                                "\"; template_file = \"" OS_UBUNTU_INSTALLED_CONF "\"; };\n" MICROVISOR_SECTION),
                   0);
  char *loaded = template_of(f, "os-ubuntu", "ubuntu-22.04");
  assert_string_equal(loaded, built_in);
  free(loaded);
  free(installed);
  free(built_in);
}

static void bad_template_file_fails_init_naming_it(void **state) {
  fixture *f = *state;
  char *typo = tu_write(f->dir, "typo.conf",
                        "actions = (\n  { action = \"system.reboot\"; timout_s = 60; params = { mode = \"reboot\"; }; }\n);\n");
  char *broken = tu_write(f->dir, "broken.conf", "actions = ( { action = \"disk.erase\" } \n");
  char missing[512];
  snprintf(missing, sizeof missing, "%s/no-such-template.conf", f->dir);
  const struct {
    const char *file, *expect;
  } cases[] = {
      {missing, "No such file"}, {typo, "line 2"}, {broken, "line"}, {"relative/template.conf", "absolute"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char sections[2048];
    snprintf(sections, sizeof sections,
             "os-ubuntu = { image_url = \"" URL_UBUNTU "\"; image_sha256 = \"" SHA_UBUNTU "\"; template_file = \"%s\"; };\n"
             MICROVISOR_SECTION,
             cases[i].file);
    assert_int_equal(open_site(f, sections), 0);
    ep_plugin *p = plugin(f, "os-ubuntu");
    assert_int_equal(p->state, EP_PLUGIN_FAILED);
    if (!strstr(p->reason, "template_file") || !strstr(p->reason, cases[i].file) || !strstr(p->reason, cases[i].expect))
      fail_msg("case %zu: reason '%s' does not name template_file, %s and '%s'", i, p->reason, cases[i].file,
               cases[i].expect);
  }
  free(typo);
  free(broken);
}

/* ---- the core's up-front template check --------------------------------------------------------- */

static void built_in_templates_pass_the_check(void **state) {
  fixture *f = *state;
  assert_int_equal(open_site(f, UBUNTU_SECTION MICROVISOR_SECTION), 0);
  size_t mistakes = ep_workflow_check_templates(f->site->plugins, &f->diags);
  if (mistakes != 0) {
    ep_diags_print(&f->diags, stderr);
    fail_msg("%zu mistakes in the built-in templates", mistakes);
  }
}

/* A template_file with one mistake per line: the plugin's own format check passes it, the
 * core's check names each with the file, the line and a "did you mean". */
static const char mistakes_template[] =
    "actions = (\n"
    "  { action = \"disk.eraze\"; params = { target = \"${node.target_disk}\"; }; },\n"
    "  { action = \"disk.erase\"; params = { targte = \"${node.target_disk}\"; }; },\n"
    "  { action = \"disk.erase\"; params = { target = \"${node.target_dsk}\"; }; },\n"
    "  { action = \"file.write\"; params = { target = \"${node.target_disk}\"; content = \"x\"; }; },\n"
    "  { action = \"file.write\"; params = { target = \"${node.target_disk}\"; path = \"/x\"; content = \"x\"; uid = \"-1\"; }; },\n"
    "  { action = \"file.write\"; params = { target = \"${node.target_disk}\"; path = \"/x\"; content = \"${profile.nmae}\"; }; },\n"
    "  { action = \"system.reboot\"; params = { mode = \"reboot\"; }; }\n"
    ");\n";

static void template_check_names_every_mistake(void **state) {
  fixture *f = *state;
  char *path = tu_write(f->dir, "mistakes.conf", mistakes_template);
  assert_int_equal(open_site_with_ubuntu_template(f, path), 0);
  assert_int_equal(plugin(f, "os-ubuntu")->state, EP_PLUGIN_ACTIVE);
  const struct {
    int line;
    const char *expect;
  } want[] = {
      {2, "template of profile ubuntu-22.04: actions[0]: no action 'disk.eraze' (did you mean 'disk.erase'?)"},
      {3, "actions[1] (disk.erase): no parameter 'targte' (did you mean 'target'?)"},
      {4, "actions[2] (disk.erase): target: no variable ${node.target_dsk} (did you mean ${node.target_disk}?)"},
      {5, "actions[3] (file.write): missing required parameter 'path' (string)"},
      {5 + 1, "actions[4] (file.write): "},
      {7, "actions[5] (file.write): content: no variable ${profile.nmae} (did you mean ${profile.name}?)"},
  };
  size_t n = sizeof want / sizeof want[0];
  assert_int_equal(ep_workflow_check_templates(f->site->plugins, &f->diags), n);
  assert_int_equal(f->diags.count, n);
  for (size_t i = 0; i < n; i++) {
    const ep_diag *d = &f->diags.items[i];
    assert_int_equal(d->severity, EP_DIAG_ERROR);
    assert_non_null(d->file);
    assert_string_equal(d->file, path);
    if (d->line != want[i].line || !strstr(d->message, want[i].expect))
      fail_msg("mistake %zu: %s:%d: %s; want line %d and '%s'", i, d->file, d->line, d->message, want[i].line,
               want[i].expect);
  }
  assert_non_null(strstr(f->diags.items[4].message, "uid")); /* the literal -1 is below uid's 0 */
  free(path);
}

/* The render does the same checks itself: a template that skipped the up-front check (the
 * plugins changed, a caller that did not check) fails cleanly. It used to abort in protobuf-c. */
static void render_of_a_bad_template_fails_cleanly(void **state) {
  fixture *f = *state;
  char *path = tu_write(f->dir, "mistakes.conf", mistakes_template);
  assert_int_equal(open_site_with_ubuntu_template(f, path), 0);
  Edgeprov__V1__Host host = EDGEPROV__V1__HOST__INIT;
  Edgeprov__V1__Instance instance = EDGEPROV__V1__INSTANCE__INIT;
  host.uuid = HOST_UUID;
  instance.id = INSTANCE_ID;
  instance.host_uuid = HOST_UUID;
  instance.os_profile = "ubuntu-22.04";
  ep_workflow *w = NULL;
  assert_int_equal(ep_workflow_render(&w, f->site->plugins, f->site->config, &host, &instance, 1), EP_EINVAL);
  assert_null(w);
  char want[1024];
  snprintf(want, sizeof want, "template of profile ubuntu-22.04 (%s): line 2: actions[0]: no action 'disk.eraze'", path);
  if (!strstr(ep_error_message(), want)) fail_msg("'%s' does not say '%s'", ep_error_message(), want);
  free(path);
}

/* What only a render can see is the render's error (the reconciler puts it in the Instance's
 * status): a site without TLS derives an http:// token URL, which a node must not use. */
static void render_refuses_a_token_url_that_is_not_https(void **state) {
  fixture *f = *state;
  char text[4096];
  snprintf(text, sizeof text,
           "paths = { data = \"%s\"; plugins = [ \"%s\" ]; };\n"
           "plugins = { enabled = [ \"actions-core\", \"os-ubuntu\", \"os-microvisor\" ]; };\n"
           "listen = { grpc = \"orch.site.example:50051\"; };\n"
           "tls = { ca = \"%s/ca.pem\"; };\n" UBUNTU_SECTION MICROVISOR_SECTION,
           f->dir, EP_PLUGIN_OUTPUT_DIR, f->dir);
  char *path = tu_write(f->dir, "site.conf", text);
  assert_int_equal(ep_site_open(&f->site, path, &f->diags), 0);
  free(path);
  assert_int_equal(f->diags.errors, 0);
  assert_int_equal(ep_plugins_start(f->site->plugins, f->site->config), 0);
  assert_int_equal(ep_workflow_check_templates(f->site->plugins, &f->diags), 0); /* the template is fine */
  Edgeprov__V1__Host host = EDGEPROV__V1__HOST__INIT;
  Edgeprov__V1__Instance instance = EDGEPROV__V1__INSTANCE__INIT;
  host.uuid = HOST_UUID;
  instance.id = INSTANCE_ID;
  instance.host_uuid = HOST_UUID;
  instance.os_profile = "ubuntu-22.04";
  ep_workflow *w = NULL;
  assert_true(ep_workflow_render(&w, f->site->plugins, f->site->config, &host, &instance, 1) < 0);
  assert_null(w);
  if (!strstr(ep_error_message(), "token_url") || !strstr(ep_error_message(), "not an https:// URL"))
    fail_msg("'%s' does not name token_url and why", ep_error_message());
}

/* ---- the ubuntu installer ------------------------------------------------------------------------ */

static int run(const char *cmd) {
  int status = system(cmd);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static bool exists(const char *dir, const char *rel) {
  char path[1024];
  snprintf(path, sizeof path, "%s/%s", dir, rel);
  return access(path, F_OK) == 0;
}

static char *slurp(const char *dir, const char *rel) {
  char path[1024];
  snprintf(path, sizeof path, "%s/%s", dir, rel);
  return tu_slurp(path);
}

/* Writes content to path below root with the real file.write action (directory mode). */
static void file_write(fixture *f, const char *root, const char *path, const char *content, const char *mode) {
  ep_action_ref ref;
  ep_fields params;
  assert_int_equal(ep_actions_find(f->site->plugins, "file.write", &ref), 0);
  assert_int_equal(ep_action_params_new(&params, &ref), 0);
  char *a[6];
  assert_true(asprintf(&a[0], "directory=%s", root) > 0);
  assert_true(asprintf(&a[1], "path=%s", path) > 0);
  assert_true(asprintf(&a[2], "content=%s", content) > 0);
  assert_true(asprintf(&a[3], "mode=%s", mode) > 0);
  assert_true(asprintf(&a[4], "uid=%u", (unsigned)getuid()) > 0);
  assert_true(asprintf(&a[5], "gid=%u", (unsigned)getgid()) > 0);
  if (ep_action_params_parse(&params, &ref, (const char *const *)a, 6) < 0) fail_msg("file.write: %s", ep_error_message());
  ep_action_run_opts opts = {0};
  if (ep_action_run(&ref, &params, &opts) < 0) fail_msg("file.write %s: %s", path, ep_error_message());
  ep_fields_free(&params);
  for (int i = 0; i < 6; i++) free(a[i]);
}

/* Runs the installer in root with a systemctl that only records its arguments in
 * root/systemctl.log; returns its exit status. */
static int run_installer(const char *dir, const char *root) {
  char cmd[4096];
  snprintf(cmd, sizeof cmd,
           "EDGEPROV_INSTALL_ROOT='%s' PATH='%s/fakebin':\"$PATH\" '%s/usr/local/sbin/edgeprov-install' >>'%s/install.out' 2>&1",
           root, dir, root, dir);
  return run(cmd);
}

/* Does for root what cloud-init does with the rendered user-data in file (write_files, and
 * ca_certs as cloud-init 23.1 and later store them), with the credentials the agent fills in. */
static const char cloud_init_stand_in[] =
    "import os, sys, yaml\n"
    "doc, root = yaml.safe_load(open(sys.argv[1])), sys.argv[2]\n"
    "for f in doc['write_files']:\n"
    "    path = root + f['path']\n"
    "    os.makedirs(os.path.dirname(path), exist_ok=True)\n"
    "    text = f['content'].replace('${node.client_id}', 'edgenode-1').replace('${node.client_secret}', 's3cret')\n"
    "    open(path, 'w').write(text)\n"
    "    os.chmod(path, int(f['permissions'], 8))\n"
    "ca = root + '/usr/local/share/ca-certificates'\n"
    "os.makedirs(ca, exist_ok=True)\n"
    "for i, cert in enumerate(doc['ca_certs']['trusted'], 1):\n"
    "    open('%s/cloud-init-ca-cert-%d.crt' % (ca, i), 'w').write(cert)\n";

static void installer_is_idempotent_and_resumable(void **state) {
  fixture *f = *state;
  assert_int_equal(open_site(f, UBUNTU_SECTION MICROVISOR_SECTION), 0);
  ep_workflow *w = render(f, "ubuntu-22.04");
  const char *installer = rendered_param(w, "/usr/local/sbin/edgeprov-install", "content");
  const char *unit = rendered_param(w, "/etc/systemd/system/edgeprov-install.service", "content");
  assert_null(strstr(installer, "${"));

  char root[512], cmd[8192];
  snprintf(root, sizeof root, "%s/root", f->dir);
  snprintf(cmd, sizeof cmd,
           "mkdir -p '%1$s/fakebin' '%2$s/usr/local/bin' && "
           "printf '#!/bin/sh\\necho \"$*\" >>\"$EDGEPROV_INSTALL_ROOT/systemctl.log\"\\n' >'%1$s/fakebin/systemctl' && "
           "chmod 0755 '%1$s/fakebin/systemctl'",
           f->dir, root);
  assert_int_equal(run(cmd), 0);
  file_write(f, root, "/usr/local/sbin/edgeprov-install", installer, "0755");
  file_write(f, root, "/etc/systemd/system/edgeprov-install.service", unit, "0644");
  free(tu_write(f->dir, "user-data", rendered_param(w, "/var/lib/cloud/seed/nocloud/user-data", "content")));
  free(tu_write(f->dir, "cloud-init.py", cloud_init_stand_in));
  ep_workflow_free(w);

  /* POSIX sh parses it. */
  snprintf(cmd, sizeof cmd, "sh -n '%s/usr/local/sbin/edgeprov-install'", root);
  assert_int_equal(run(cmd), 0);

  /* Before cloud-init wrote /etc/edgeprov it fails, and marks nothing done. */
  assert_int_not_equal(run_installer(f->dir, root), 0);
  assert_false(exists(root, "var/lib/edgeprov-install/config.done"));
  assert_false(exists(root, "systemctl.log"));

  /* What cloud-init and the image provide. */
  snprintf(cmd, sizeof cmd,
           "/usr/bin/python3 '%1$s/cloud-init.py' '%1$s/user-data' '%2$s' && "
           "chmod 0644 '%2$s/etc/edgeprov/credentials' && "
           "printf '#!/bin/sh\\n' >'%2$s/usr/local/bin/edgeprov-agent' && chmod 0755 '%2$s/usr/local/bin/edgeprov-agent'",
           f->dir, root);
  assert_int_equal(run(cmd), 0);

  /* First run: every step. */
  assert_int_equal(run_installer(f->dir, root), 0);
  char *log = slurp(root, "systemctl.log");
  assert_non_null(log);
  assert_string_equal(log, "daemon-reload\nenable edgeprov-agent.service\nstart --no-block edgeprov-agent.service\n");
  free(log);
  char *env = slurp(root, "etc/edgeprov/agent.env");
  assert_non_null(env);
  assert_string_equal(env, "# by edgeprov-install for instance " INSTANCE_ID " (ubuntu-22.04)\n"
                           "EDGEPROV_AGENT_ARGS=--orchestrator orch.site.example:50051 "
                           "--token-url https://orch.site.example:8443/oauth2/token\n");
  free(env);
  char *ca = slurp(root, "etc/edgeprov/ca.pem");
  assert_non_null(ca);
  assert_true(strncmp(ca, ca_pem, sizeof ca_pem - 2) == 0); /* up to its last line break */
  assert_string_equal(strstr(ca, "-----END CERTIFICATE-----"), "-----END CERTIFICATE-----\n");
  free(ca);
  char *agent_unit = slurp(root, "etc/systemd/system/edgeprov-agent.service");
  assert_non_null(agent_unit);
  assert_non_null(strstr(agent_unit, "\nEnvironmentFile=/etc/edgeprov/agent.env\n"));
  assert_non_null(strstr(agent_unit, "\nExecStart=/usr/local/bin/edgeprov-agent --installed --ca /etc/edgeprov/ca.pem "
                                     "--state-dir /etc/edgeprov $EDGEPROV_AGENT_ARGS\n"));
  free(agent_unit);
  struct stat st;
  char path[1024];
  snprintf(path, sizeof path, "%s/etc/edgeprov/credentials", root);
  assert_int_equal(stat(path, &st), 0);
  assert_int_equal(st.st_mode & 07777, 0600);
  snprintf(path, sizeof path, "%s/usr/local/sbin/edgeprov-install", root);
  assert_int_equal(stat(path, &st), 0);
  assert_int_equal(st.st_mode & 07777, 0755);
  for (const char *const *s = (const char *const[]){"config", "unit", "enable", "start", NULL}; *s; s++) {
    char marker[128];
    snprintf(marker, sizeof marker, "var/lib/edgeprov-install/%s.done", *s);
    assert_true(exists(root, marker));
  }

  /* Second run with every marker present: nothing is written, systemctl is not called. */
  snprintf(cmd, sizeof cmd,
           "rm '%1$s/systemctl.log' '%1$s/etc/edgeprov/agent.env' '%1$s/etc/edgeprov/ca.pem' "
           "'%1$s/etc/systemd/system/edgeprov-agent.service'",
           root);
  assert_int_equal(run(cmd), 0);
  assert_int_equal(run_installer(f->dir, root), 0);
  assert_false(exists(root, "systemctl.log"));
  assert_false(exists(root, "etc/edgeprov/agent.env"));
  assert_false(exists(root, "etc/edgeprov/ca.pem"));
  assert_false(exists(root, "etc/systemd/system/edgeprov-agent.service"));

  /* Interrupted before starting the agent: the next run does only that. */
  snprintf(cmd, sizeof cmd, "rm '%s/var/lib/edgeprov-install/start.done'", root);
  assert_int_equal(run(cmd), 0);
  assert_int_equal(run_installer(f->dir, root), 0);
  log = slurp(root, "systemctl.log");
  assert_non_null(log);
  assert_string_equal(log, "start --no-block edgeprov-agent.service\n");
  free(log);
  assert_true(exists(root, "var/lib/edgeprov-install/start.done"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(plugins_are_active_with_their_settings, setup, teardown),
      cmocka_unit_test_setup_teardown(missing_sha256_refuses_the_plugin, setup, teardown),
      cmocka_unit_test_setup_teardown(bad_settings_fail_init_naming_the_setting, setup, teardown),
      cmocka_unit_test_setup_teardown(templates_follow_the_contract, setup, teardown),
      cmocka_unit_test_setup_teardown(the_core_renders_both_templates, setup, teardown),
      cmocka_unit_test_setup_teardown(template_file_replaces_the_built_in_one, setup, teardown),
      cmocka_unit_test_setup_teardown(fde_asked_without_an_encrypting_image_stream_fails_the_render, setup, teardown),
      cmocka_unit_test_setup_teardown(fde_asked_without_a_recovery_key_file_fails_the_render, setup, teardown),
      cmocka_unit_test_setup_teardown(instance_fde_is_true_when_the_profile_the_host_or_the_instance_asks, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(installed_copy_is_the_built_in_template, setup, teardown),
      cmocka_unit_test_setup_teardown(bad_template_file_fails_init_naming_it, setup, teardown),
      cmocka_unit_test_setup_teardown(built_in_templates_pass_the_check, setup, teardown),
      cmocka_unit_test_setup_teardown(template_check_names_every_mistake, setup, teardown),
      cmocka_unit_test_setup_teardown(render_of_a_bad_template_fails_cleanly, setup, teardown),
      cmocka_unit_test_setup_teardown(render_refuses_a_token_url_that_is_not_https, setup, teardown),
      cmocka_unit_test_setup_teardown(installer_is_idempotent_and_resumable, setup, teardown),
  };
  return cmocka_run_group_tests_name("os_plugins", tests, NULL, NULL);
}
