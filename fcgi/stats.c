/* stats.c - requests by route and status, their latency, and the database
 * errors of nova-api, in one table shared by the prefork workers. */
#include "stats.h"

#include <stdbool.h>
#include <stdio.h>
#include <sys/mman.h>

#include "../common/db.h"
#include "../common/log.h"
#include "../common/metrics.h"
#include "api.h"

/* The statuses nova-api answers with (API.md §1); anything else counts as
 * "other". */
static const int statuses[] = {200, 400, 403, 404, 405, 409, 413, 429, 500, 501, 503};
enum { N_STATUSES = sizeof statuses / sizeof statuses[0] + 1 };

typedef struct route_cells {
    uint64_t by_status[N_STATUSES];
    metrics_hist latency;
} route_cells;

typedef struct stats_table {
    double started_at;
    uint64_t api_workers, hash_workers;
    uint64_t restarts;
    uint64_t db_internal, db_unavailable;
    size_t n_routes;
    route_cells routes[]; /* api_routes, then one for requests no route took */
} stats_table;

static stats_table *table;
/* This process's database error totals already added to the table. */
static uint64_t seen_internal, seen_unavailable;

int api_stats_init(size_t api_workers, size_t hash_workers)
{
    size_t size = sizeof *table + (api_route_count + 1) * sizeof table->routes[0];
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        log_error("metrics: cannot map the shared counters; nothing is counted");
        return -1;
    }
    table = p; /* zeroed by mmap */
    table->started_at = nova_now();
    table->api_workers = api_workers;
    table->hash_workers = hash_workers;
    table->n_routes = api_route_count;
    api_stats_worker_start();
    return 0;
}

void api_stats_worker_start(void)
{
    db_error_totals(&seen_internal, &seen_unavailable);
}

static size_t status_slot(int status)
{
    for (size_t i = 0; i < N_STATUSES - 1; i++)
        if (statuses[i] == status) return i;
    return N_STATUSES - 1;
}

void api_stats_request_end(int route, int status, double seconds)
{
    if (!table) return;
    route_cells *cells =
        &table->routes[route >= 0 && (size_t)route < table->n_routes ? (size_t)route
                                                                      : table->n_routes];
    metrics_add(&cells->by_status[status_slot(status)], 1);
    metrics_observe(&cells->latency, seconds);
    uint64_t internal, unavailable;
    db_error_totals(&internal, &unavailable);
    metrics_add(&table->db_internal, internal - seen_internal);
    metrics_add(&table->db_unavailable, unavailable - seen_unavailable);
    seen_internal = internal;
    seen_unavailable = unavailable;
}

void api_stats_worker_restarted(void)
{
    if (table) metrics_add(&table->restarts, 1);
}

static const char *method_name(unsigned method)
{
    switch (method) {
    case METHOD_GET: return "GET";
    case METHOD_POST: return "POST";
    case METHOD_PATCH: return "PATCH";
    case METHOD_DELETE: return "DELETE";
    default: return "OPTIONS";
    }
}

/* The labels of route i: its method and pattern, or "" and "unmatched". */
static void route_labels(size_t i, char *out, size_t size)
{
    char pattern[160];
    if (i < table->n_routes) {
        metrics_label_value(api_routes[i].pattern, pattern, sizeof pattern);
        snprintf(out, size, "method=\"%s\",route=\"%s\"", method_name(api_routes[i].method),
                 pattern);
    } else {
        snprintf(out, size, "method=\"\",route=\"unmatched\"");
    }
}

char *api_stats_render(size_t *len)
{
    *len = 0;
    if (!table) return NULL;
    metrics_text t;
    metrics_text_init(&t);
    char labels[256], with_status[300];
    metrics_family(&t, "nova_api_requests_total", "counter",
                   "Requests answered, by route (method and pattern) and status.");
    for (size_t i = 0; i <= table->n_routes; i++) {
        route_labels(i, labels, sizeof labels);
        for (size_t s = 0; s < N_STATUSES; s++) {
            uint64_t n = metrics_get(&table->routes[i].by_status[s]);
            if (!n) continue;
            if (s < N_STATUSES - 1)
                snprintf(with_status, sizeof with_status, "%s,status=\"%d\"", labels, statuses[s]);
            else
                snprintf(with_status, sizeof with_status, "%s,status=\"other\"", labels);
            metrics_sample_u64(&t, "nova_api_requests_total", with_status, n);
        }
    }
    metrics_family(&t, "nova_api_request_duration_seconds", "histogram",
                   "Time from a request's arrival at a worker to its answer, by route.");
    for (size_t i = 0; i <= table->n_routes; i++) {
        uint64_t n = 0;
        for (size_t b = 0; b <= METRICS_BUCKETS; b++)
            n += metrics_get(&table->routes[i].latency.bucket[b]);
        if (!n) continue;
        route_labels(i, labels, sizeof labels);
        metrics_histogram(&t, "nova_api_request_duration_seconds", labels,
                          &table->routes[i].latency);
    }
    metrics_family(&t, "nova_api_workers", "gauge", "Workers the supervisor keeps, by pool.");
    metrics_sample_u64(&t, "nova_api_workers", "pool=\"api\"", table->api_workers);
    metrics_sample_u64(&t, "nova_api_workers", "pool=\"hash\"", table->hash_workers);
    metrics_family(&t, "nova_api_worker_restarts_total", "counter",
                   "Workers that died and were replaced.");
    metrics_sample_u64(&t, "nova_api_worker_restarts_total", NULL, metrics_get(&table->restarts));
    metrics_family(&t, "nova_db_errors_total", "counter",
                   "Database failures: unavailable (503, the storage is away or busy) or "
                   "internal (500).");
    metrics_sample_u64(&t, "nova_db_errors_total", "kind=\"unavailable\"",
                       metrics_get(&table->db_unavailable));
    metrics_sample_u64(&t, "nova_db_errors_total", "kind=\"internal\"",
                       metrics_get(&table->db_internal));
    metrics_family(&t, "nova_api_start_time_seconds", "gauge",
                   "When the nova-api supervisor started (Unix time).");
    metrics_sample(&t, "nova_api_start_time_seconds", NULL, table->started_at);
    return metrics_text_take(&t, len);
}
