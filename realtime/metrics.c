/* metrics.c - nova-realtime's metrics in the Prometheus text format,
 * served at GET /metrics on the daemon's own listening socket (behind
 * nginx only /ws/ reaches the daemon, so clients never see it).
 *
 * Counters are kept where things happen (rt->metrics); the gauges (sockets
 * open, bytes queued, actions waiting, outbox position and lag) are read
 * at the scrape. */
#include <stdio.h>
#include <string.h>

#include "../common/outbox.h"
#include "rt.h"

static const char *const close_names[CLOSE_KINDS] = {
    [CLOSE_BY_PEER] = "client_or_network",
    [CLOSE_LOGGED_OUT] = "logged_out",
    [CLOSE_INVALID_SESSION] = "invalid_session",
    [CLOSE_SOCKET_CAP] = "too_many_sockets",
    [CLOSE_TOO_SLOW] = "too_slow",
    [CLOSE_TOO_BIG] = "message_too_big",
    [CLOSE_PROTOCOL_ERROR] = "protocol_error",
    [CLOSE_TRY_AGAIN_LATER] = "try_again_later",
    [CLOSE_SERVER_ERROR] = "server_error",
};

/* Why a socket closed: the close we asked for, if any. */
static enum rt_close_kind close_kind(const conn *c)
{
    if (c->rx_refused) return CLOSE_TOO_BIG;
    return c->close_when_drained ? (enum rt_close_kind)c->close_kind : CLOSE_BY_PEER;
}

void rt_metrics_closed(rt *r, const conn *c)
{
    r->metrics.closes[close_kind(c)]++;
}

/* The sum of what waits in every open socket's queue. */
static uint64_t queued_bytes(const rt *r)
{
    uint64_t total = 0;
    for (size_t b = 0; b < r->n_buckets; b++)
        for (const conn *c = r->buckets[b]; c; c = c->next_in_bucket)
            total += c->queued_bytes;
    return total;
}

/* The outbox's newest id, and the age of the oldest event not yet
 * delivered (0 when there is none): 0, or -1 when the read failed. */
static int outbox_lag(rt *r, int64_t *newest, double *age)
{
    int64_t oldest;
    nova_err err;
    if (outbox_bounds(r->db, &oldest, newest, &err)) return -1;
    *age = 0;
    if (*newest <= r->last_id) return 0;
    outbox_reader rd;
    outbox_event ev;
    if (outbox_read(r->db, &rd, r->last_id, 0, 1, NULL, &err)) return -1;
    int rc = outbox_next(&rd, &ev);
    if (rc > 0) *age = nova_now() - ev.created_at;
    outbox_read_end(&rd);
    return rc < 0 ? -1 : 0;
}

static void actions_metrics(metrics_text *t, const rt_metrics *m)
{
    char labels[96];
    metrics_family(t, "nova_realtime_actions_total", "counter",
                   "Socket actions run, by action and outcome (\"invalid\": no known action).");
    for (size_t i = 0; i < RT_ACTION_SLOTS; i++) {
        const char *name = actions_name(i);
        bool last = !name;
        if (last) name = "invalid";
        snprintf(labels, sizeof labels, "action=\"%s\",outcome=\"ok\"", name);
        metrics_sample_u64(t, "nova_realtime_actions_total", labels, m->actions_ok[i]);
        snprintf(labels, sizeof labels, "action=\"%s\",outcome=\"error\"", name);
        metrics_sample_u64(t, "nova_realtime_actions_total", labels, m->actions_failed[i]);
        if (last) break;
    }
    metrics_family(t, "nova_realtime_action_duration_seconds", "histogram",
                   "Time to run a socket action (with its commit), by action.");
    for (size_t i = 0; actions_name(i); i++) {
        snprintf(labels, sizeof labels, "action=\"%s\"", actions_name(i));
        metrics_histogram(t, "nova_realtime_action_duration_seconds", labels,
                          &m->action_time[i]);
    }
}

char *rt_metrics_render(rt *r, size_t *len)
{
    const rt_metrics *m = &r->metrics;
    metrics_text t;
    metrics_text_init(&t);
    char labels[200], name[160];
    metrics_label_value(r->name, name, sizeof name);
    metrics_family(&t, "nova_realtime_info", "gauge", "This daemon, by the name it records.");
    snprintf(labels, sizeof labels, "daemon=\"%s\"", name);
    metrics_sample(&t, "nova_realtime_info", labels, 1);
    metrics_family(&t, "nova_realtime_sockets_open", "gauge", "Authenticated sockets open now.");
    metrics_sample_u64(&t, "nova_realtime_sockets_open", NULL, r->n_conns);
    metrics_family(&t, "nova_realtime_sockets_opened_total", "counter",
                   "Sockets authenticated since the daemon started.");
    metrics_sample_u64(&t, "nova_realtime_sockets_opened_total", NULL, m->sockets_opened);
    metrics_family(&t, "nova_realtime_closes_total", "counter", "Sockets closed, by reason.");
    for (size_t k = 0; k < CLOSE_KINDS; k++) {
        snprintf(labels, sizeof labels, "reason=\"%s\"", close_names[k]);
        metrics_sample_u64(&t, "nova_realtime_closes_total", labels, m->closes[k]);
    }
    metrics_family(&t, "nova_realtime_deliveries_total", "counter",
                   "Events queued to sockets: live, or replayed to resuming sockets.");
    metrics_sample_u64(&t, "nova_realtime_deliveries_total", "mode=\"live\"", m->deliveries);
    metrics_sample_u64(&t, "nova_realtime_deliveries_total", "mode=\"replay\"", m->replayed);
    metrics_family(&t, "nova_realtime_delivery_delay_seconds", "histogram",
                   "From an event's write to its delivery to the live sockets.");
    metrics_histogram(&t, "nova_realtime_delivery_delay_seconds", NULL, &m->delivery_delay);
    metrics_family(&t, "nova_realtime_queued_bytes", "gauge",
                   "Bytes waiting in the send queues of every socket.");
    metrics_sample_u64(&t, "nova_realtime_queued_bytes", NULL, queued_bytes(r));
    metrics_family(&t, "nova_realtime_resumes_total", "counter",
                   "Sockets that resumed with last_event_id.");
    metrics_sample_u64(&t, "nova_realtime_resumes_total", NULL, m->resumes);
    metrics_family(&t, "nova_realtime_resyncs_total", "counter",
                   "Resuming sockets told resync_required (their events were pruned).");
    metrics_sample_u64(&t, "nova_realtime_resyncs_total", NULL, m->resyncs);
    actions_metrics(&t, m);
    metrics_family(&t, "nova_realtime_batches_total", "counter",
                   "Write transactions of socket actions (group commit: one per batch).");
    metrics_sample_u64(&t, "nova_realtime_batches_total", NULL, m->batches);
    metrics_family(&t, "nova_realtime_batched_writes_total", "counter",
                   "Write actions those transactions ran.");
    metrics_sample_u64(&t, "nova_realtime_batched_writes_total", NULL, m->batched_writes);
    metrics_family(&t, "nova_realtime_actions_waiting", "gauge",
                   "Socket actions waiting for their batch or for the write lock.");
    metrics_sample_u64(&t, "nova_realtime_actions_waiting", NULL, r->n_pending);
    metrics_family(&t, "nova_realtime_outbox_position", "gauge",
                   "The newest outbox id this daemon has delivered.");
    metrics_sample(&t, "nova_realtime_outbox_position", NULL, (double)r->last_id);
    int64_t newest;
    double age;
    if (!outbox_lag(r, &newest, &age)) {
        metrics_family(&t, "nova_realtime_outbox_lag_events", "gauge",
                       "Outbox ids committed but not yet delivered by this daemon.");
        metrics_sample(&t, "nova_realtime_outbox_lag_events", NULL,
                       newest > r->last_id ? (double)(newest - r->last_id) : 0);
        metrics_family(&t, "nova_realtime_outbox_lag_seconds", "gauge",
                       "Age of the oldest event not yet delivered (0: none).");
        metrics_sample(&t, "nova_realtime_outbox_lag_seconds", NULL, age);
    }
    uint64_t internal, unavailable;
    db_error_totals(&internal, &unavailable);
    metrics_family(&t, "nova_db_errors_total", "counter",
                   "Database failures: unavailable (the storage is away or busy) or internal.");
    metrics_sample_u64(&t, "nova_db_errors_total", "kind=\"unavailable\"", unavailable);
    metrics_sample_u64(&t, "nova_db_errors_total", "kind=\"internal\"", internal);
    metrics_family(&t, "nova_realtime_start_time_seconds", "gauge",
                   "When this daemon started (Unix time).");
    metrics_sample(&t, "nova_realtime_start_time_seconds", NULL, r->started_at);
    return metrics_text_take(&t, len);
}
