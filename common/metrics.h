/* metrics.h - counters, gauges and latency histograms, written in the
 * Prometheus text exposition format (version 0.0.4).
 *
 * The counters are plain uint64_t cells that may live in memory shared by
 * several processes (nova-api's prefork workers add to one mmap'd table):
 * metrics_add and metrics_observe update them with relaxed atomics, and a
 * scrape reads each cell once, so a reader sees every increment that
 * finished before it, never a torn value. Histograms keep one cell per
 * bucket (not cumulative); the writer sums them into Prometheus's
 * cumulative "le" buckets. */
#ifndef NOVA_METRICS_H
#define NOVA_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Upper bounds of the latency buckets, in seconds (+Inf is implied). */
enum { METRICS_BUCKETS = 14 };
extern const double metrics_bucket_bounds[METRICS_BUCKETS];

typedef struct metrics_hist {
    uint64_t bucket[METRICS_BUCKETS + 1]; /* the last one: above every bound */
    uint64_t sum_ns;                       /* sum of the observations, nanoseconds */
} metrics_hist;

void metrics_add(uint64_t *cell, uint64_t n);
void metrics_sub(uint64_t *cell, uint64_t n);
uint64_t metrics_get(const uint64_t *cell);
void metrics_observe(metrics_hist *h, double seconds);

/* The text of a scrape, grown as it is written. On out of memory it stops
 * growing and remembers so (failed); metrics_text_take then gives NULL. */
typedef struct metrics_text {
    char *buf;
    size_t len, cap;
    bool failed;
} metrics_text;

void metrics_text_init(metrics_text *t);
void metrics_text_free(metrics_text *t);
/* The text (malloc'd, the caller's to free) and its length, or NULL. */
char *metrics_text_take(metrics_text *t, size_t *len);

/* "# HELP name help" and "# TYPE name type" (counter, gauge, histogram). */
void metrics_family(metrics_text *t, const char *name, const char *type, const char *help);
/* One sample: name{labels} value. labels is the inside of the braces
 * ("route=\"/user\",status=\"200\""), NULL or "" for none; label values
 * come from metrics_label_value when they are not constants. */
void metrics_sample(metrics_text *t, const char *name, const char *labels, double value);
void metrics_sample_u64(metrics_text *t, const char *name, const char *labels, uint64_t value);
/* The _bucket, _sum and _count samples of a histogram. */
void metrics_histogram(metrics_text *t, const char *name, const char *labels,
                       const metrics_hist *h);
/* A label value escaped as the format wants (backslash, quote, newline),
 * cut to fit size. */
void metrics_label_value(const char *value, char *out, size_t size);

#endif
