/* metrics.c - Prometheus text exposition of counters and histograms. */
#include "metrics.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* From 0.25 ms (a cached read) to 10 s (argon2id under load). */
const double metrics_bucket_bounds[METRICS_BUCKETS] = {
    0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10,
};

void metrics_add(uint64_t *cell, uint64_t n)
{
    __atomic_fetch_add(cell, n, __ATOMIC_RELAXED);
}

void metrics_sub(uint64_t *cell, uint64_t n)
{
    __atomic_fetch_sub(cell, n, __ATOMIC_RELAXED);
}

uint64_t metrics_get(const uint64_t *cell)
{
    return __atomic_load_n(cell, __ATOMIC_RELAXED);
}

void metrics_observe(metrics_hist *h, double seconds)
{
    if (!(seconds >= 0)) seconds = 0; /* NaN or a clock step back */
    size_t i = 0;
    while (i < METRICS_BUCKETS && seconds > metrics_bucket_bounds[i])
        i++;
    metrics_add(&h->bucket[i], 1);
    metrics_add(&h->sum_ns, seconds < 1e9 ? (uint64_t)(seconds * 1e9) : UINT64_MAX / 2);
}

void metrics_text_init(metrics_text *t)
{
    *t = (metrics_text){0};
}

void metrics_text_free(metrics_text *t)
{
    free(t->buf);
    *t = (metrics_text){0};
}

char *metrics_text_take(metrics_text *t, size_t *len)
{
    if (t->failed || !t->buf) {
        metrics_text_free(t);
        *len = 0;
        return NULL;
    }
    char *out = t->buf;
    *len = t->len;
    *t = (metrics_text){0};
    return out;
}

static void appendf(metrics_text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void appendf(metrics_text *t, const char *fmt, ...)
{
    if (t->failed) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        size_t room = t->cap - t->len;
        int n = vsnprintf(t->buf ? t->buf + t->len : NULL, room, fmt, ap);
        va_end(ap);
        if (n < 0) {
            t->failed = true;
            return;
        }
        if ((size_t)n < room) {
            t->len += (size_t)n;
            return;
        }
        size_t cap = t->cap ? t->cap * 2 : 4096;
        while (cap - t->len <= (size_t)n)
            cap *= 2;
        char *grown = realloc(t->buf, cap);
        if (!grown) {
            t->failed = true;
            return;
        }
        t->buf = grown;
        t->cap = cap;
    }
}

void metrics_family(metrics_text *t, const char *name, const char *type, const char *help)
{
    appendf(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void sample_head(metrics_text *t, const char *name, const char *suffix, const char *labels,
                        const char *extra)
{
    bool has = labels && *labels, more = extra && *extra;
    appendf(t, "%s%s%s%s%s%s%s", name, suffix, has || more ? "{" : "", has ? labels : "",
            has && more ? "," : "", more ? extra : "", has || more ? "} " : " ");
}

void metrics_sample(metrics_text *t, const char *name, const char *labels, double value)
{
    sample_head(t, name, "", labels, NULL);
    if (isnan(value))
        appendf(t, "NaN\n");
    else if (value == floor(value) && fabs(value) < 1e15)
        appendf(t, "%.0f\n", value);
    else
        appendf(t, "%.9g\n", value);
}

void metrics_sample_u64(metrics_text *t, const char *name, const char *labels, uint64_t value)
{
    sample_head(t, name, "", labels, NULL);
    appendf(t, "%llu\n", (unsigned long long)value);
}

void metrics_histogram(metrics_text *t, const char *name, const char *labels,
                       const metrics_hist *h)
{
    uint64_t total = 0;
    char le[32];
    for (size_t i = 0; i <= METRICS_BUCKETS; i++) {
        total += metrics_get(&h->bucket[i]);
        if (i < METRICS_BUCKETS)
            snprintf(le, sizeof le, "le=\"%g\"", metrics_bucket_bounds[i]);
        else
            snprintf(le, sizeof le, "le=\"+Inf\"");
        sample_head(t, name, "_bucket", labels, le);
        appendf(t, "%llu\n", (unsigned long long)total);
    }
    sample_head(t, name, "_sum", labels, NULL);
    appendf(t, "%.9g\n", (double)metrics_get(&h->sum_ns) / 1e9);
    sample_head(t, name, "_count", labels, NULL);
    appendf(t, "%llu\n", (unsigned long long)total);
}

void metrics_label_value(const char *value, char *out, size_t size)
{
    size_t n = 0;
    for (const char *p = value; *p && n + 3 < size; p++) {
        if (*p == '\\' || *p == '"') {
            out[n++] = '\\';
            out[n++] = *p;
        } else if (*p == '\n') {
            out[n++] = '\\';
            out[n++] = 'n';
        } else {
            out[n++] = *p;
        }
    }
    if (size) out[n] = '\0';
}
