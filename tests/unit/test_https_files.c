/* Unit tests of core/lib/net/https_files.c: the Range parser, the path walk that never leaves
 * the published directory, and file responses (200, 206, 304, 404, 416, ETag, If-Range,
 * content types) as libcurl receives them from a real server on 127.0.0.1. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <cmocka.h>

#include "net/https.h"
#include "net/https_files.h"
#include "testutil.h"
#include "tu_http.h"

#define BIG_SIZE (1024 * 1024 + 123) /* over the size whose body is sent coalesced */

typedef struct fixture {
  char *dir;     /* the temporary tree */
  char *served;  /* dir/art: the published directory */
  ep_https_server *server;
  int port;
} fixture;

static uint8_t file_byte(size_t i) { return (uint8_t)(i * 31 + 7); }

static void write_bytes(const char *path, size_t size) {
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  for (size_t i = 0; i < size; i++) fputc(file_byte(i), f);
  assert_int_equal(fclose(f), 0);
}

static char *served_path(const fixture *f, const char *rel) { return tu_path(f->served, rel); }

/* art/{a.efi (100 bytes), boot.ipxe, info.json, noext, empty.bin, big.img, sub/deep/x.txt,
 * .hidden, link.efi -> a.efi, linkdir -> sub}, and dir/outside.txt beside art. */
static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  f->dir = tu_mkdtemp();
  f->served = tu_path(f->dir, "art");
  if (!f->dir || mkdir(f->served, 0755) != 0) return -1;
  char *p = served_path(f, "a.efi");
  write_bytes(p, 100);
  free(p);
  p = served_path(f, "big.img");
  write_bytes(p, BIG_SIZE);
  free(p);
  free(tu_write(f->served, "boot.ipxe", "#!ipxe\n"));
  free(tu_write(f->served, "info.json", "{}"));
  free(tu_write(f->served, "noext", "x"));
  free(tu_write(f->served, "empty.bin", ""));
  free(tu_write(f->served, ".hidden", "HIDDEN"));
  free(tu_write(f->dir, "outside.txt", "OUTSIDE"));
  p = served_path(f, "sub");
  mkdir(p, 0755);
  free(p);
  p = served_path(f, "sub/deep");
  mkdir(p, 0755);
  free(p);
  free(tu_write(f->served, "sub/deep/x.txt", "deep file"));
  p = served_path(f, "link.efi");
  if (symlink("a.efi", p) != 0) return -1;
  free(p);
  p = served_path(f, "linkdir");
  if (symlink("sub", p) != 0) return -1;
  free(p);
  if (ep_https_server_new(&f->server, "127.0.0.1:0", NULL, NULL) < 0 ||
      ep_https_server_serve_directory(f->server, "/boot", f->served) < 0 ||
      ep_https_server_start(f->server, &f->port) < 0)
    return -1;
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  ep_https_server_free(f->server);
  free(f->served);
  tu_rmdir(f->dir);
  free(f);
  return 0;
}

/* ---- the Range parser ------------------------------------------------------------------ */

static void assert_range(const char *header, uint64_t size, int want, uint64_t first, uint64_t last) {
  uint64_t a = 777, b = 888;
  int r = ep_https_files_parse_range(header, size, &a, &b);
  if (r != want) fail_msg("\"%s\" of %llu bytes: %d, expected %d", header, (unsigned long long)size, r, want);
  if (want == 1 && (a != first || b != last))
    fail_msg("\"%s\" of %llu bytes: %llu-%llu, expected %llu-%llu", header, (unsigned long long)size,
             (unsigned long long)a, (unsigned long long)b, (unsigned long long)first, (unsigned long long)last);
  if (want != 1 && (a != 777 || b != 888)) fail_msg("\"%s\": outputs touched though not satisfied", header);
}

static void range_parser_takes_one_range_of_each_form(void **state) {
  (void)state;
  assert_range("bytes=0-99", 100, 1, 0, 99);
  assert_range("bytes=10-19", 100, 1, 10, 19);
  assert_range("bytes=0-0", 100, 1, 0, 0);
  assert_range("bytes=99-99", 100, 1, 99, 99);
  assert_range("bytes=10-", 100, 1, 10, 99);
  assert_range("bytes=50-1000", 100, 1, 50, 99);          /* the last byte is clamped to the file */
  assert_range("bytes=0-18446744073709551615", 100, 1, 0, 99);
  assert_range("bytes=-1", 100, 1, 99, 99);               /* suffix: the last N bytes */
  assert_range("bytes=-30", 100, 1, 70, 99);
  assert_range("bytes=-100", 100, 1, 0, 99);
  assert_range("bytes=-5000", 100, 1, 0, 99);             /* longer than the file: all of it */
  assert_range("bytes=4294967296-", 8589934592ull, 1, 4294967296ull, 8589934591ull); /* past 32 bits */
}

static void range_parser_refuses_what_cannot_be_satisfied(void **state) {
  (void)state;
  assert_range("bytes=100-", 100, -1, 0, 0);  /* starts at the end */
  assert_range("bytes=100-200", 100, -1, 0, 0);
  assert_range("bytes=5000-", 100, -1, 0, 0);
  assert_range("bytes=-0", 100, -1, 0, 0);    /* an empty suffix */
  assert_range("bytes=0-", 0, -1, 0, 0);      /* nothing in an empty file */
  assert_range("bytes=-5", 0, -1, 0, 0);
}

static void range_parser_ignores_what_it_does_not_support(void **state) {
  (void)state;
  const char *ignored[] = {
      "",                   "bytes",           "bytes=",         "bytes=-",          "bytes=a-b",
      "bytes=1-2,4-5",      "bytes=0-0,-1",    "bits=0-10",      "bytes= 0-10",
      "bytes=0 -10",        "bytes=0- 10",     "bytes=+1-2",     "bytes=1-+2",       "bytes=--5",
      "bytes=-+5",          "bytes=- 5",       "bytes=1-2x",     "bytes=1x-2",       "bytes=-5x",
      "bytes=20-10",        "bytes=1",         "bytes=0-10 ",    "bytes=99999999999999999999-",
      "bytes=0-99999999999999999999", "bytes=-99999999999999999999",
  };
  for (size_t i = 0; i < sizeof ignored / sizeof ignored[0]; i++) assert_range(ignored[i], 100, 0, 0, 0);
}

/* ---- the path walk --------------------------------------------------------------------- */

static void assert_open_refused(const fixture *f, const char *rel, int want_errno) {
  errno = 0;
  int fd = ep_https_files_open(f->served, rel);
  if (fd >= 0) {
    close(fd);
    fail_msg("\"%s\" was opened", rel);
  }
  if (errno != want_errno) fail_msg("\"%s\": errno %d (%s), expected %d", rel, errno, strerror(errno), want_errno);
}

static void open_reads_files_inside_the_directory(void **state) {
  fixture *f = *state;
  int fd = ep_https_files_open(f->served, "sub/deep/x.txt");
  assert_true(fd >= 0);
  char buf[32] = {0};
  assert_int_equal(read(fd, buf, sizeof buf - 1), 9);
  assert_string_equal(buf, "deep file");
  assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
  assert_int_equal(fcntl(fd, F_GETFL) & O_ACCMODE, O_RDONLY);
  close(fd);
  fd = ep_https_files_open(f->served, "a.efi");
  assert_true(fd >= 0);
  close(fd);
  fd = ep_https_files_open(f->served, "Name_1.2-x"); /* allowed characters, missing file */
  assert_int_equal(fd, -1);
  assert_int_equal(errno, ENOENT);
}

static void open_refuses_every_way_out(void **state) {
  fixture *f = *state;
  const char *invalid[] = {"",          "..",          "../outside.txt", "sub/../../outside.txt", "sub/../a.efi",
                           ".",         "./a.efi",     ".hidden",        "sub/.x",                "sub/",
                           "/a.efi",    "sub//deep/x.txt", "-a.efi",     "a efi",                 "a%2eefi",
                           "a\\efi",    "\xc3\xa9.efi"};
  for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++) assert_open_refused(f, invalid[i], EINVAL);
  assert_open_refused(f, "link.efi", EACCES);       /* a symbolic link, even to a file inside */
  /* A linked directory: Linux reports O_DIRECTORY | O_NOFOLLOW on a link as ENOTDIR. */
  errno = 0;
  assert_int_equal(ep_https_files_open(f->served, "linkdir/deep/x.txt"), -1);
  assert_true(errno == EACCES || errno == ENOTDIR);
  assert_open_refused(f, "a.efi/x", ENOTDIR);
  assert_open_refused(f, "a.efi/", ENOTDIR);
  assert_open_refused(f, "sub/deep/x.txt/", ENOTDIR);
  assert_open_refused(f, "missing/x", ENOENT);
}

static void open_bounds_depth_and_length(void **state) {
  fixture *f = *state;
  /* Eight components are walked; a ninth is refused before anything is opened. */
  char rel[64] = "";
  char *dir = strdup(f->served);
  for (int i = 0; i < 7; i++) {
    char *next = tu_path(dir, "d");
    assert_int_equal(mkdir(next, 0755), 0);
    free(dir);
    dir = next;
    strcat(rel, "d/");
  }
  free(tu_write(dir, "f", "eight"));
  char *eighth = tu_path(dir, "d"); /* there, so only the depth refuses the ninth component */
  assert_int_equal(mkdir(eighth, 0755), 0);
  free(tu_write(eighth, "f", "nine"));
  free(eighth);
  free(dir);
  char eight[512];
  snprintf(eight, sizeof eight, "%sf", rel);
  int fd = ep_https_files_open(f->served, eight);
  assert_true(fd >= 0);
  close(fd);
  char nine[512];
  snprintf(nine, sizeof nine, "%sd/f", rel);
  assert_open_refused(f, nine, EINVAL);

  /* A component of 128 bytes is fine, 129 is not; a path over 255 bytes is refused whole. */
  char name[200];
  memset(name, 'n', 128);
  name[128] = '\0';
  free(tu_write(f->served, name, "long name"));
  fd = ep_https_files_open(f->served, name);
  assert_true(fd >= 0);
  close(fd);
  memset(name, 'n', 129);
  name[129] = '\0';
  assert_open_refused(f, name, EINVAL);
  char longest[300];
  memset(longest, 'a', 256);
  for (int i = 100; i < 256; i += 101) longest[i] = '/';
  longest[256] = '\0';
  assert_open_refused(f, longest, EINVAL);
  longest[255] = '\0'; /* 255 bytes: walked, and simply not there */
  assert_open_refused(f, longest, ENOENT);
}

/* ---- responses ------------------------------------------------------------------------- */

/* GETs (or HEADs) /boot/<rel> with the given extra headers. */
static long get(const fixture *f, const char *method, const char *rel, const char *const *headers, tu_response *out) {
  char url[512];
  snprintf(url, sizeof url, "http://127.0.0.1:%d/boot/%s", f->port, rel);
  tu_request req = {.method = method, .url = url, .headers = headers};
  assert_int_equal(tu_http(&req, out), CURLE_OK);
  return out->status;
}

static void assert_body_is_file_bytes(const tu_response *r, size_t first, size_t len) {
  assert_int_equal(r->len, len);
  for (size_t i = 0; i < len; i++)
    if ((uint8_t)r->body[i] != file_byte(first + i)) fail_msg("body byte %zu is not file byte %zu", i, first + i);
}

static void whole_file_with_etag_and_headers(void **state) {
  fixture *f = *state;
  tu_response r;
  char v[256];
  assert_int_equal(get(f, NULL, "a.efi", NULL, &r), 200);
  assert_body_is_file_bytes(&r, 0, 100);
  assert_string_equal(tu_header(&r, "Content-Type", v, sizeof v), "application/efi");
  assert_string_equal(tu_header(&r, "Accept-Ranges", v, sizeof v), "bytes");
  assert_string_equal(tu_header(&r, "Cache-Control", v, sizeof v), "no-cache");
  assert_string_equal(tu_header(&r, "Content-Length", v, sizeof v), "100");
  assert_non_null(tu_header(&r, "ETag", v, sizeof v));
  assert_true(v[0] == '"' && v[strlen(v) - 1] == '"');
  assert_null(tu_header(&r, "Content-Range", v, sizeof v));
  tu_response_clear(&r);

  /* HEAD: the same headers, no body. */
  assert_int_equal(get(f, "HEAD", "a.efi", NULL, &r), 200);
  assert_int_equal(r.len, 0);
  assert_string_equal(tu_header(&r, "Content-Length", v, sizeof v), "100");
  tu_response_clear(&r);

  /* A file in a subdirectory, an empty file, and a large one (sent coalesced). */
  assert_int_equal(get(f, NULL, "sub/deep/x.txt", NULL, &r), 200);
  assert_string_equal(r.body, "deep file");
  tu_response_clear(&r);
  assert_int_equal(get(f, NULL, "empty.bin", NULL, &r), 200);
  assert_int_equal(r.len, 0);
  assert_string_equal(tu_header(&r, "Content-Length", v, sizeof v), "0");
  tu_response_clear(&r);
  assert_int_equal(get(f, NULL, "big.img", NULL, &r), 200);
  assert_body_is_file_bytes(&r, 0, BIG_SIZE);
  tu_response_clear(&r);
}

static void content_type_follows_the_extension(void **state) {
  fixture *f = *state;
  const char *cases[][2] = {{"boot.ipxe", "text/plain; charset=utf-8"},
                            {"sub/deep/x.txt", "text/plain; charset=utf-8"},
                            {"info.json", "application/json"},
                            {"a.efi", "application/efi"},
                            {"big.img", "application/octet-stream"},
                            {"noext", "application/octet-stream"}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    tu_response r;
    char v[128];
    assert_int_equal(get(f, "HEAD", cases[i][0], NULL, &r), 200);
    assert_string_equal(tu_header(&r, "Content-Type", v, sizeof v), cases[i][1]);
    tu_response_clear(&r);
  }
}

static void ranges_answer_206_or_416(void **state) {
  fixture *f = *state;
  tu_response r;
  char v[256];
  const char *mid[] = {"Range: bytes=10-19", NULL};
  assert_int_equal(get(f, NULL, "a.efi", mid, &r), 206);
  assert_body_is_file_bytes(&r, 10, 10);
  assert_string_equal(tu_header(&r, "Content-Range", v, sizeof v), "bytes 10-19/100");
  tu_response_clear(&r);

  const char *suffix[] = {"Range: bytes=-7", NULL};
  assert_int_equal(get(f, NULL, "a.efi", suffix, &r), 206);
  assert_body_is_file_bytes(&r, 93, 7);
  assert_string_equal(tu_header(&r, "Content-Range", v, sizeof v), "bytes 93-99/100");
  tu_response_clear(&r);

  const char *open_end[] = {"Range: bytes=1000000-", NULL};
  assert_int_equal(get(f, NULL, "big.img", open_end, &r), 206);
  assert_body_is_file_bytes(&r, 1000000, BIG_SIZE - 1000000);
  tu_response_clear(&r);

  const char *past[] = {"Range: bytes=100-", NULL};
  assert_int_equal(get(f, NULL, "a.efi", past, &r), 416);
  assert_string_equal(tu_header(&r, "Content-Range", v, sizeof v), "bytes */100");
  tu_response_clear(&r);
  const char *on_empty[] = {"Range: bytes=0-", NULL};
  assert_int_equal(get(f, NULL, "empty.bin", on_empty, &r), 416);
  assert_string_equal(tu_header(&r, "Content-Range", v, sizeof v), "bytes */0");
  tu_response_clear(&r);

  /* Several ranges are not supported: the whole file, as RFC 9110 allows. */
  const char *multi[] = {"Range: bytes=0-1,5-6", NULL};
  assert_int_equal(get(f, NULL, "a.efi", multi, &r), 200);
  assert_body_is_file_bytes(&r, 0, 100);
  assert_null(tu_header(&r, "Content-Range", v, sizeof v));
  tu_response_clear(&r);
}

static void etag_conditions(void **state) {
  fixture *f = *state;
  tu_response r;
  char etag[128], v[256], h1[256], h2[256];
  assert_int_equal(get(f, "HEAD", "a.efi", NULL, &r), 200);
  assert_non_null(tu_header(&r, "ETag", etag, sizeof etag));
  tu_response_clear(&r);

  /* If-None-Match with the current tag, one of a list, or "*": 304 with the tag, no body. */
  for (int i = 0; i < 3; i++) {
    if (i == 0) snprintf(h1, sizeof h1, "If-None-Match: %s", etag);
    if (i == 1) snprintf(h1, sizeof h1, "If-None-Match: \"nope\", %s", etag);
    if (i == 2) snprintf(h1, sizeof h1, "If-None-Match: *");
    const char *headers[] = {h1, NULL};
    assert_int_equal(get(f, NULL, "a.efi", headers, &r), 304);
    assert_int_equal(r.len, 0);
    assert_string_equal(tu_header(&r, "ETag", v, sizeof v), etag);
    tu_response_clear(&r);
  }
  const char *other[] = {"If-None-Match: \"0-0-0\"", NULL};
  assert_int_equal(get(f, NULL, "a.efi", other, &r), 200);
  assert_int_equal(r.len, 100);
  tu_response_clear(&r);

  /* If-Range: the range only while the tag still matches, else the whole file. */
  snprintf(h1, sizeof h1, "If-Range: %s", etag);
  const char *current[] = {"Range: bytes=0-9", h1, NULL};
  assert_int_equal(get(f, NULL, "a.efi", current, &r), 206);
  assert_body_is_file_bytes(&r, 0, 10);
  tu_response_clear(&r);
  const char *stale[] = {"Range: bytes=0-9", "If-Range: \"stale\"", NULL};
  assert_int_equal(get(f, NULL, "a.efi", stale, &r), 200);
  assert_body_is_file_bytes(&r, 0, 100);
  tu_response_clear(&r);

  /* Replacing the file (same size, same bytes, by a rename) changes its tag. */
  char *tmp = tu_path(f->served, "a.efi.new");
  char *dst = served_path(f, "a.efi");
  write_bytes(tmp, 100);
  assert_int_equal(rename(tmp, dst), 0);
  free(tmp);
  free(dst);
  snprintf(h2, sizeof h2, "If-None-Match: %s", etag);
  const char *old_tag[] = {h2, NULL};
  assert_int_equal(get(f, NULL, "a.efi", old_tag, &r), 200);
  assert_non_null(tu_header(&r, "ETag", v, sizeof v));
  assert_string_not_equal(v, etag);
  tu_response_clear(&r);
  const char *old_range[] = {"Range: bytes=0-9", h1, NULL};
  assert_int_equal(get(f, NULL, "a.efi", old_range, &r), 200);
  tu_response_clear(&r);
}

static void nothing_outside_or_hidden_is_served(void **state) {
  fixture *f = *state;
  const char *not_found[] = {"../outside.txt", "sub/../../outside.txt", ".hidden", "link.efi", "linkdir/deep/x.txt",
                             "missing.efi",    "sub",                   "sub/deep", "a.efi/x",  "%2e%2e/outside.txt",
                             "sub%2f..%2f..%2foutside.txt"};
  for (size_t i = 0; i < sizeof not_found / sizeof not_found[0]; i++) {
    tu_response r;
    long status = get(f, NULL, not_found[i], NULL, &r);
    if (status != 404) fail_msg("/boot/%s: %ld, expected 404", not_found[i], status);
    assert_null(r.body ? strstr(r.body, "OUTSIDE") : NULL);
    assert_null(r.body ? strstr(r.body, "HIDDEN") : NULL);
    tu_response_clear(&r);
  }
}

static void only_get_and_head(void **state) {
  fixture *f = *state;
  const char *methods[] = {"POST", "PUT", "DELETE", "OPTIONS"};
  for (size_t i = 0; i < 4; i++) {
    tu_response r;
    assert_int_equal(get(f, methods[i], "a.efi", NULL, &r), 405);
    tu_response_clear(&r);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(range_parser_takes_one_range_of_each_form),
      cmocka_unit_test(range_parser_refuses_what_cannot_be_satisfied),
      cmocka_unit_test(range_parser_ignores_what_it_does_not_support),
      cmocka_unit_test_setup_teardown(open_reads_files_inside_the_directory, setup, teardown),
      cmocka_unit_test_setup_teardown(open_refuses_every_way_out, setup, teardown),
      cmocka_unit_test_setup_teardown(open_bounds_depth_and_length, setup, teardown),
      cmocka_unit_test_setup_teardown(whole_file_with_etag_and_headers, setup, teardown),
      cmocka_unit_test_setup_teardown(content_type_follows_the_extension, setup, teardown),
      cmocka_unit_test_setup_teardown(ranges_answer_206_or_416, setup, teardown),
      cmocka_unit_test_setup_teardown(etag_conditions, setup, teardown),
      cmocka_unit_test_setup_teardown(nothing_outside_or_hidden_is_served, setup, teardown),
      cmocka_unit_test_setup_teardown(only_get_and_head, setup, teardown),
  };
  return cmocka_run_group_tests_name("https_files", tests, NULL, NULL);
}
