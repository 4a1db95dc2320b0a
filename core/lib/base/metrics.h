/* core: a registry of Prometheus figures (counters, gauges, histograms, and gauges computed
 * when scraped) and their text exposition format 0.0.4. Updates are atomic adds on the
 * caller's thread, never a lock once a label set exists; memory is bounded: a family keeps at
 * most EP_METRICS_SETS_MAX label sets, later ones are counted under the value "other", so
 * values a node controls cannot grow it. */
#ifndef EP_CORE_METRICS_H
#define EP_CORE_METRICS_H

#include <stddef.h>
#include <stdint.h>

#define EP_METRICS_FAMILIES_MAX 64     /* families in one registry */
#define EP_METRICS_LABELS_MAX 3        /* label names of one family */
#define EP_METRICS_SETS_MAX 64         /* label sets one family keeps, besides "other" */
#define EP_METRICS_BUCKETS_MAX 20      /* bucket bounds of a histogram, +Inf not counted */
#define EP_METRICS_VALUE_MAX 128       /* longest label value kept, in bytes; longer ones are cut */
#define EP_METRICS_NAME_MAX 128        /* longest family or label name */
#define EP_METRICS_HELP_MAX 512        /* longest help text */
#define EP_METRICS_OTHER "other"       /* the label value of the sets past EP_METRICS_SETS_MAX */
#define EP_METRICS_TEXT_MAX (8u << 20) /* largest exposition rendered */
#define EP_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

typedef struct ep_metrics ep_metrics; /* a registry */
typedef struct ep_metric ep_metric;   /* a family: one name, its help, type and label names */
typedef struct ep_metrics_sink ep_metrics_sink;

/* Fills a computed gauge when the registry is rendered: calls ep_metrics_sink_put for each
 * label set (at most EP_METRICS_SETS_MAX are kept). Runs on the rendering thread, with the
 * registry's lock held: it must not update or render this registry. */
typedef void (*ep_metrics_collect)(void *data, ep_metrics_sink *sink);

/* A new, empty registry; thread-safe. ep_metrics_free frees it and its families (NULL is
 * fine); no update may run then. */
int ep_metrics_new(ep_metrics **out);
void ep_metrics_free(ep_metrics *registry);

/* Registers a family. name: [a-zA-Z_:][a-zA-Z0-9_:]*; labels: a NULL-terminated list of at
 * most EP_METRICS_LABELS_MAX names ([a-zA-Z_][a-zA-Z0-9_]*, not "le" nor starting "__"), or
 * NULL for none. A histogram takes bound_count ascending finite bounds (+Inf is implied).
 * Returns EP_EINVAL naming what is wrong, EP_EEXIST for a name taken, EP_ERANGE when the
 * registry is full, EP_ENOMEM. The family lives as long as the registry. */
int ep_metrics_counter(ep_metric **out, ep_metrics *registry, const char *name, const char *help,
                       const char *const *labels);
int ep_metrics_gauge(ep_metric **out, ep_metrics *registry, const char *name, const char *help,
                     const char *const *labels);
int ep_metrics_histogram(ep_metric **out, ep_metrics *registry, const char *name, const char *help,
                         const char *const *labels, const double *bounds, size_t bound_count);
/* A gauge whose samples collect gives at each render (data is handed to it). */
int ep_metrics_gauge_fn(ep_metric **out, ep_metrics *registry, const char *name, const char *help,
                        const char *const *labels, ep_metrics_collect collect, void *data);

/* Stops calling a computed gauge's collect (it renders no samples after): once this returns,
 * collect runs nowhere and its data may be freed. */
void ep_metrics_detach(ep_metric *family);

/* Updates; values holds one value per label name of the family (NULL for a family without
 * labels). A value is cut at EP_METRICS_VALUE_MAX bytes, and bytes that are not printable
 * ASCII become '?'. family NULL does nothing, so a figure not registered costs a branch.
 * Any thread. */
void ep_metrics_add(ep_metric *counter, const char *const *values, uint64_t n);
void ep_metrics_gauge_add(ep_metric *gauge, const char *const *values, int64_t delta);
void ep_metrics_gauge_set(ep_metric *gauge, const char *const *values, int64_t value);
void ep_metrics_observe(ep_metric *histogram, const char *const *values, double value);

/* One sample of a computed gauge (during its collect). */
void ep_metrics_sink_put(ep_metrics_sink *sink, const char *const *values, double value);

/* Renders every family in registration order as text format 0.0.4 (# HELP, # TYPE, samples;
 * histograms as cumulative _bucket{le=...} with +Inf, _sum and _count) into a malloc'd
 * NUL-terminated text the caller frees, with its length in *ret_len. EP_ENOMEM, EP_ERANGE
 * past EP_METRICS_TEXT_MAX. */
int ep_metrics_render(ep_metrics *registry, char **ret_text, size_t *ret_len);

#endif
