/* core: the Prometheus figures registry and its text format, see metrics.h. */
#define _GNU_SOURCE /* strdup */
#include "base/metrics.h"

#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/error.h"

typedef enum { KIND_COUNTER, KIND_GAUGE, KIND_HISTOGRAM, KIND_GAUGE_FN } kind;

/* One label set of a family and its value(s). */
typedef struct series {
  char *values[EP_METRICS_LABELS_MAX];
  _Atomic uint64_t count;                              /* counter; a gauge's int64 bits */
  _Atomic uint64_t buckets[EP_METRICS_BUCKETS_MAX + 1]; /* histogram: per bucket, the last is +Inf */
  _Atomic uint64_t sum_bits;                           /* histogram: the double sum's bits */
} series;

struct ep_metric {
  ep_metrics *registry;
  kind kind;
  char *name;
  char *help;
  char *labels[EP_METRICS_LABELS_MAX];
  size_t label_count;
  double bounds[EP_METRICS_BUCKETS_MAX];
  size_t bound_count;
  ep_metrics_collect collect; /* KIND_GAUGE_FN; NULL once detached (registry's lock) */
  void *collect_data;
  pthread_mutex_t lock; /* taken only to add a series */
  series *sets[EP_METRICS_SETS_MAX];
  _Atomic size_t set_count; /* sets[0..set_count) are published, never removed */
  series *other;            /* label sets past the bound; NULL for a family without labels */
  atomic_bool other_used;
};

struct ep_metrics {
  pthread_mutex_t lock; /* guards families, registration, rendering and collect */
  ep_metric *families[EP_METRICS_FAMILIES_MAX];
  size_t family_count;
};

struct ep_metrics_sink {
  const ep_metric *family;
  ep_buf *out;
  size_t samples;
  int error;
};

/* ---- names and values -------------------------------------------------------------------- */

static bool name_valid(const char *name, bool colon_ok) {
  size_t len = name ? strnlen(name, EP_METRICS_NAME_MAX + 1) : 0;
  if (len == 0 || len > EP_METRICS_NAME_MAX) return false;
  for (size_t i = 0; i < len; i++) {
    char c = name[i];
    bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colon_ok && c == ':');
    if (!letter && !(i > 0 && c >= '0' && c <= '9')) return false;
  }
  return true;
}

/* A label value as kept: at most EP_METRICS_VALUE_MAX bytes of printable ASCII ('?' for any
 * other byte), so the exposition is always valid UTF-8 whatever the caller hands in. */
static void clean_value(char out[EP_METRICS_VALUE_MAX + 1], const char *value) {
  size_t i = 0;
  for (; value && value[i] && i < EP_METRICS_VALUE_MAX; i++)
    out[i] = (unsigned char)value[i] >= 0x20 && (unsigned char)value[i] < 0x7f ? value[i] : '?';
  out[i] = '\0';
}

static void series_free(series *s) {
  if (!s) return;
  for (size_t i = 0; i < EP_METRICS_LABELS_MAX; i++) free(s->values[i]);
  free(s);
}

/* A series with values (cleaned copies; all "other" when values is NULL), or NULL. */
static series *series_new(const ep_metric *m, const char values[][EP_METRICS_VALUE_MAX + 1]) {
  series *s = calloc(1, sizeof *s);
  if (!s) return NULL;
  for (size_t i = 0; i < m->label_count; i++)
    if (!(s->values[i] = strdup(values ? values[i] : EP_METRICS_OTHER))) {
      series_free(s);
      return NULL;
    }
  return s;
}

static bool series_matches(const series *s, size_t label_count, const char values[][EP_METRICS_VALUE_MAX + 1]) {
  for (size_t i = 0; i < label_count; i++)
    if (strcmp(s->values[i], values[i]) != 0) return false;
  return true;
}

/* The series of values: found without a lock, else added under the family's lock; "other"
 * when the family holds EP_METRICS_SETS_MAX sets already (or memory ran out). */
static series *series_of(ep_metric *m, const char *const *values) {
  if (m->label_count == 0) return m->sets[0];
  char clean[EP_METRICS_LABELS_MAX][EP_METRICS_VALUE_MAX + 1];
  for (size_t i = 0; i < m->label_count; i++) clean_value(clean[i], values ? values[i] : "");
  size_t n = atomic_load_explicit(&m->set_count, memory_order_acquire);
  for (size_t i = 0; i < n; i++)
    if (series_matches(m->sets[i], m->label_count, clean)) return m->sets[i];
  pthread_mutex_lock(&m->lock);
  series *found = NULL;
  size_t now = atomic_load_explicit(&m->set_count, memory_order_relaxed);
  for (size_t i = n; i < now && !found; i++)
    if (series_matches(m->sets[i], m->label_count, clean)) found = m->sets[i];
  if (!found && now < EP_METRICS_SETS_MAX && (found = series_new(m, clean))) {
    m->sets[now] = found;
    atomic_store_explicit(&m->set_count, now + 1, memory_order_release);
  }
  pthread_mutex_unlock(&m->lock);
  if (found) return found;
  atomic_store_explicit(&m->other_used, true, memory_order_relaxed);
  return m->other;
}

/* ---- registry ---------------------------------------------------------------------------- */

int ep_metrics_new(ep_metrics **out) {
  ep_metrics *r = calloc(1, sizeof *r);
  if (!r) return ep_error_set(EP_ENOMEM, "out of memory");
  pthread_mutex_init(&r->lock, NULL);
  *out = r;
  return 0;
}

static void family_free(ep_metric *m) {
  if (!m) return;
  free(m->name);
  free(m->help);
  for (size_t i = 0; i < EP_METRICS_LABELS_MAX; i++) free(m->labels[i]);
  size_t n = atomic_load(&m->set_count);
  for (size_t i = 0; i < n; i++) series_free(m->sets[i]);
  series_free(m->other);
  pthread_mutex_destroy(&m->lock);
  free(m);
}

void ep_metrics_free(ep_metrics *r) {
  if (!r) return;
  for (size_t i = 0; i < r->family_count; i++) family_free(r->families[i]);
  pthread_mutex_destroy(&r->lock);
  free(r);
}

static int add_family(ep_metric **out, ep_metrics *r, kind k, const char *name, const char *help,
                      const char *const *labels, const double *bounds, size_t bound_count) {
  if (!name_valid(name, true))
    return ep_error_set(EP_EINVAL, "metric name '%.200s': not [a-zA-Z_:][a-zA-Z0-9_:]* of at most %d characters",
                        name ? name : "", EP_METRICS_NAME_MAX);
  if (!help || strnlen(help, EP_METRICS_HELP_MAX + 1) > EP_METRICS_HELP_MAX)
    return ep_error_set(EP_EINVAL, "metric %s: help text missing or longer than %d bytes", name, EP_METRICS_HELP_MAX);
  size_t label_count = 0;
  for (; labels && labels[label_count]; label_count++) {
    const char *l = labels[label_count];
    if (label_count == EP_METRICS_LABELS_MAX)
      return ep_error_set(EP_EINVAL, "metric %s: more than %d labels", name, EP_METRICS_LABELS_MAX);
    if (!name_valid(l, false) || strncmp(l, "__", 2) == 0 || (k == KIND_HISTOGRAM && strcmp(l, "le") == 0))
      return ep_error_set(EP_EINVAL, "metric %s: label name '%.200s' is not valid", name, l);
    for (size_t j = 0; j < label_count; j++)
      if (strcmp(labels[j], l) == 0) return ep_error_set(EP_EINVAL, "metric %s: label '%s' named twice", name, l);
  }
  if (k == KIND_HISTOGRAM) {
    if (bound_count == 0 || bound_count > EP_METRICS_BUCKETS_MAX)
      return ep_error_set(EP_EINVAL, "metric %s: 1 to %d bucket bounds", name, EP_METRICS_BUCKETS_MAX);
    for (size_t i = 0; i < bound_count; i++)
      if (!isfinite(bounds[i]) || (i > 0 && !(bounds[i] > bounds[i - 1])))
        return ep_error_set(EP_EINVAL, "metric %s: bucket bounds must be finite and ascending", name);
  }
  ep_metric *m = calloc(1, sizeof *m);
  if (!m) return ep_error_set(EP_ENOMEM, "out of memory");
  pthread_mutex_init(&m->lock, NULL);
  m->registry = r;
  m->kind = k;
  m->label_count = label_count;
  m->bound_count = bound_count;
  if (bound_count) memcpy(m->bounds, bounds, bound_count * sizeof *bounds);
  bool ok = (m->name = strdup(name)) && (m->help = strdup(help));
  for (size_t i = 0; ok && i < label_count; i++) ok = (m->labels[i] = strdup(labels[i])) != NULL;
  if (ok && k != KIND_GAUGE_FN) {
    if (label_count == 0) { /* the one series, made now: updates never allocate */
      ok = (m->sets[0] = series_new(m, NULL)) != NULL;
      if (ok) atomic_store(&m->set_count, 1);
    } else {
      ok = (m->other = series_new(m, NULL)) != NULL;
    }
  }
  if (!ok) {
    family_free(m);
    return ep_error_set(EP_ENOMEM, "out of memory");
  }
  pthread_mutex_lock(&r->lock);
  int err = 0;
  for (size_t i = 0; i < r->family_count && !err; i++)
    if (strcmp(r->families[i]->name, name) == 0) err = ep_error_set(EP_EEXIST, "metric %s is registered already", name);
  if (!err && r->family_count == EP_METRICS_FAMILIES_MAX)
    err = ep_error_set(EP_ERANGE, "metric %s: the registry holds %d families already", name, EP_METRICS_FAMILIES_MAX);
  if (!err) r->families[r->family_count++] = m;
  pthread_mutex_unlock(&r->lock);
  if (err) {
    family_free(m);
    return err;
  }
  *out = m;
  return 0;
}

int ep_metrics_counter(ep_metric **out, ep_metrics *r, const char *name, const char *help, const char *const *labels) {
  return add_family(out, r, KIND_COUNTER, name, help, labels, NULL, 0);
}

int ep_metrics_gauge(ep_metric **out, ep_metrics *r, const char *name, const char *help, const char *const *labels) {
  return add_family(out, r, KIND_GAUGE, name, help, labels, NULL, 0);
}

int ep_metrics_histogram(ep_metric **out, ep_metrics *r, const char *name, const char *help, const char *const *labels,
                         const double *bounds, size_t bound_count) {
  return add_family(out, r, KIND_HISTOGRAM, name, help, labels, bounds, bound_count);
}

int ep_metrics_gauge_fn(ep_metric **out, ep_metrics *r, const char *name, const char *help, const char *const *labels,
                        ep_metrics_collect collect, void *data) {
  if (!collect) return ep_error_set(EP_EINVAL, "metric %s: no collect function", name ? name : "");
  ep_metric *m = NULL;
  int err = add_family(&m, r, KIND_GAUGE_FN, name, help, labels, NULL, 0);
  if (err < 0) return err;
  pthread_mutex_lock(&r->lock);
  m->collect = collect;
  m->collect_data = data;
  pthread_mutex_unlock(&r->lock);
  *out = m;
  return 0;
}

void ep_metrics_detach(ep_metric *m) {
  if (!m) return;
  pthread_mutex_lock(&m->registry->lock);
  m->collect = NULL;
  m->collect_data = NULL;
  pthread_mutex_unlock(&m->registry->lock);
}

/* ---- updates ----------------------------------------------------------------------------- */

void ep_metrics_add(ep_metric *m, const char *const *values, uint64_t n) {
  if (!m || m->kind != KIND_COUNTER) return;
  atomic_fetch_add_explicit(&series_of(m, values)->count, n, memory_order_relaxed);
}

void ep_metrics_gauge_add(ep_metric *m, const char *const *values, int64_t delta) {
  if (!m || m->kind != KIND_GAUGE) return;
  atomic_fetch_add_explicit(&series_of(m, values)->count, (uint64_t)delta, memory_order_relaxed); /* two's complement */
}

void ep_metrics_gauge_set(ep_metric *m, const char *const *values, int64_t value) {
  if (!m || m->kind != KIND_GAUGE) return;
  atomic_store_explicit(&series_of(m, values)->count, (uint64_t)value, memory_order_relaxed);
}

void ep_metrics_observe(ep_metric *m, const char *const *values, double value) {
  if (!m || m->kind != KIND_HISTOGRAM || isnan(value)) return;
  series *s = series_of(m, values);
  size_t b = 0;
  while (b < m->bound_count && value > m->bounds[b]) b++; /* le: the first bound >= value */
  atomic_fetch_add_explicit(&s->buckets[b], 1, memory_order_relaxed);
  uint64_t old = atomic_load_explicit(&s->sum_bits, memory_order_relaxed), next;
  do {
    double sum;
    memcpy(&sum, &old, sizeof sum);
    sum += value;
    memcpy(&next, &sum, sizeof next);
  } while (!atomic_compare_exchange_weak_explicit(&s->sum_bits, &old, next, memory_order_relaxed, memory_order_relaxed));
}

/* ---- the text format --------------------------------------------------------------------- */

/* A double as the text format writes it: a whole number in digits, else the shortest %g that
 * reads back the same, or +Inf, -Inf, NaN. */
static void format_double(char out[32], double v) {
  if (isnan(v)) {
    snprintf(out, 32, "NaN");
    return;
  }
  if (isinf(v)) {
    snprintf(out, 32, "%s", v > 0 ? "+Inf" : "-Inf");
    return;
  }
  if (v > -1e15 && v < 1e15 && v == (double)(int64_t)v) { /* a whole number: no exponent */
    snprintf(out, 32, "%" PRId64, (int64_t)v);
    return;
  }
  for (int precision = 1; precision <= 17; precision++) {
    snprintf(out, 32, "%.*g", precision, v);
    if (strtod(out, NULL) == v) return;
  }
}

/* Appends text escaped as the format wants: backslash and newline always, the double quote
 * too in a label value. */
static int append_escaped(ep_buf *out, const char *text, bool quote) {
  int err = 0;
  for (const char *p = text; *p && !err; p++) {
    if (*p == '\\') err = ep_buf_append_str(out, "\\\\");
    else if (*p == '\n') err = ep_buf_append_str(out, "\\n");
    else if (quote && *p == '"') err = ep_buf_append_str(out, "\\\"");
    else err = ep_buf_append(out, p, 1);
  }
  return err;
}

/* name{l1="v1",...,extra_name="extra_value"} (no braces without labels), then " value\n". */
static int append_sample(ep_buf *out, const ep_metric *m, const char *suffix, char *const *values,
                         const char *extra_name, const char *extra_value, const char *value) {
  int err = ep_buf_printf(out, "%s%s", m->name, suffix);
  size_t total = m->label_count + (extra_name != NULL);
  if (!err && total) err = ep_buf_append_str(out, "{");
  for (size_t i = 0; i < m->label_count && !err; i++) {
    err = ep_buf_printf(out, "%s%s=\"", i ? "," : "", m->labels[i]);
    if (!err) err = append_escaped(out, values[i], true);
    if (!err) err = ep_buf_append_str(out, "\"");
  }
  if (!err && extra_name) err = ep_buf_printf(out, "%s%s=\"%s\"", m->label_count ? "," : "", extra_name, extra_value);
  if (!err && total) err = ep_buf_append_str(out, "}");
  if (!err) err = ep_buf_printf(out, " %s\n", value);
  return err;
}

static int append_series(ep_buf *out, const ep_metric *m, series *s) {
  char value[32];
  if (m->kind == KIND_COUNTER) {
    snprintf(value, sizeof value, "%" PRIu64, atomic_load_explicit(&s->count, memory_order_relaxed));
    return append_sample(out, m, "", s->values, NULL, NULL, value);
  }
  if (m->kind == KIND_GAUGE) {
    snprintf(value, sizeof value, "%" PRId64, (int64_t)atomic_load_explicit(&s->count, memory_order_relaxed));
    return append_sample(out, m, "", s->values, NULL, NULL, value);
  }
  /* Cumulative buckets read once each, so +Inf and _count agree whatever lands meanwhile. */
  uint64_t cumulative = 0;
  int err = 0;
  for (size_t b = 0; b <= m->bound_count && !err; b++) {
    cumulative += atomic_load_explicit(&s->buckets[b], memory_order_relaxed);
    char le[32];
    if (b < m->bound_count) format_double(le, m->bounds[b]);
    else snprintf(le, sizeof le, "+Inf");
    snprintf(value, sizeof value, "%" PRIu64, cumulative);
    err = append_sample(out, m, "_bucket", s->values, "le", le, value);
  }
  uint64_t bits = atomic_load_explicit(&s->sum_bits, memory_order_relaxed);
  double sum;
  memcpy(&sum, &bits, sizeof sum);
  format_double(value, sum);
  if (!err) err = append_sample(out, m, "_sum", s->values, NULL, NULL, value);
  snprintf(value, sizeof value, "%" PRIu64, cumulative);
  if (!err) err = append_sample(out, m, "_count", s->values, NULL, NULL, value);
  return err;
}

void ep_metrics_sink_put(ep_metrics_sink *sink, const char *const *values, double value) {
  if (sink->error || sink->samples == EP_METRICS_SETS_MAX) return;
  const ep_metric *m = sink->family;
  char clean[EP_METRICS_LABELS_MAX][EP_METRICS_VALUE_MAX + 1];
  char *kept[EP_METRICS_LABELS_MAX];
  for (size_t i = 0; i < m->label_count; i++) {
    clean_value(clean[i], values ? values[i] : "");
    kept[i] = clean[i];
  }
  char text[32];
  format_double(text, value);
  sink->error = append_sample(sink->out, m, "", kept, NULL, NULL, text);
  sink->samples++;
}

static int append_family(ep_buf *out, ep_metric *m) {
  static const char *const type_names[] = {"counter", "gauge", "histogram", "gauge"};
  int err = ep_buf_printf(out, "# HELP %s ", m->name);
  if (!err) err = append_escaped(out, m->help, false);
  if (!err) err = ep_buf_printf(out, "\n# TYPE %s %s\n", m->name, type_names[m->kind]);
  if (m->kind == KIND_GAUGE_FN) {
    if (err || !m->collect) return err;
    ep_metrics_sink sink = {.family = m, .out = out};
    m->collect(m->collect_data, &sink);
    return sink.error;
  }
  size_t n = atomic_load_explicit(&m->set_count, memory_order_acquire);
  for (size_t i = 0; i < n && !err; i++) err = append_series(out, m, m->sets[i]);
  if (!err && m->other && atomic_load_explicit(&m->other_used, memory_order_relaxed))
    err = append_series(out, m, m->other);
  return err;
}

int ep_metrics_render(ep_metrics *r, char **ret_text, size_t *ret_len) {
  ep_buf out;
  ep_buf_init(&out, "metrics", EP_METRICS_TEXT_MAX, 0);
  pthread_mutex_lock(&r->lock);
  int err = 0;
  for (size_t i = 0; i < r->family_count && !err; i++) err = append_family(&out, r->families[i]);
  pthread_mutex_unlock(&r->lock);
  size_t len = 0;
  char *text = err ? NULL : ep_buf_take(&out, &len);
  ep_buf_free(&out);
  if (err) return err;
  if (!text) return EP_ENOMEM;
  *ret_text = text;
  *ret_len = len;
  return 0;
}
