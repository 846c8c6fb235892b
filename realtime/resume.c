/* resume.c - replay what a reconnecting client missed (?last_event_id=N).
 *
 * Every event with id > N addressed to the socket's user (or session) is
 * replayed in id order before any live event, read through the index of
 * the events' recipients (outbox_read_for: only this user's events, however
 * many others are retained). While replaying, the socket
 * is skipped by live delivery (tail.c) and the replay reads up to the
 * daemon's live position instead; once it has caught up, the socket turns
 * live. Being single-threaded, the switch has no gap and no duplicate.
 * The replay fills the socket's queue only up to its room, one event at a
 * time, so a long replay of large events never floods memory, never trips
 * the slow-consumer limit, and always makes progress.
 *
 * When events after N were already pruned (or N is from another
 * database), the client gets resync_required {oldest_event_id} and should
 * reload over REST; the socket then continues live. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/log.h"
#include "../common/outbox.h"
#include "../common/presence.h"
#include "rt.h"

static void send_resync(rt *r, conn *c, int64_t oldest)
{
    char data[64];
    snprintf(data, sizeof data, "{\"oldest_event_id\":%lld}", (long long)oldest);
    conn_send_packet(r, c, &(packet_fields){.action = "resync_required", .data = data});
    r->metrics.resyncs++;
}

/* last_event_id is a plain decimal: no sign, no leading zero (but "0"),
 * no percent-encoding, at most 19 digits, within int64. */
static bool parse_event_id(const char *s, int64_t *out)
{
    size_t n = strlen(s);
    if (!n || n > 19 || (s[0] == '0' && n > 1)) return false;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return false;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (v > INT64_MAX) return false;
    *out = (int64_t)v;
    return true;
}

void resume_start(rt *r, conn *c, const char *arg, bool too_long)
{
    int64_t n;
    if (!arg && !too_long) return;
    r->metrics.resumes++;
    if (too_long || !parse_event_id(arg, &n)) {
        conn_send_error(
            r, c, 0, 400,
            "last_event_id must be an event id: decimal digits, no sign or leading zero");
        return;
    }
    int64_t oldest, newest;
    nova_err err;
    if (outbox_bounds(r->db, &oldest, &newest, &err)) {
        conn_send_error(r, c, 0, err_socket_code(err.kind), "cannot resume now; reload");
        return;
    }
    if (n > newest || n + 1 < oldest) {
        send_resync(r, c, oldest);
        return;
    }
    if (n >= r->last_id) return; /* nothing missed */
    c->replaying = true;
    c->cursor = n;
    resume_step(r, c);
}

/* Fill the queue up to half of ws_max_queue, one event at a time (at least
 * one, however large), never a whole batch blindly: a replay always makes
 * progress and never trips the slow-consumer limit. The rest is read when
 * the queue has drained (SERVER_WRITEABLE). */
void resume_step(rt *r, conn *c)
{
    if (!c->replaying || c->close_when_drained) return;
    size_t room = (size_t)r->cfg->ws_max_queue / 2;
    if (c->queued_bytes >= room) return;
    outbox_reader rd;
    outbox_event ev;
    nova_err err;
    if (outbox_read_for(r->db, &rd, c->user_id, c->cursor, r->last_id, r->cfg->outbox_batch, &err))
        return;
    int rc;
    long rows = 0;
    bool full = false;
    while ((rc = outbox_next(&rd, &ev)) > 0) {
        if (c->head && c->queued_bytes >= room) {
            full = true;
            break;
        }
        c->cursor = ev.id;
        rows++;
        if (!outbox_event_for(&ev, c->user_id, c->session_id)) continue;
        if (presence_event_ephemeral(&ev)) continue; /* never replayed (delivered live) */
        conn_send_packet(r, c,
                         &(packet_fields){.action = ev.action, .event_id = ev.id, .data = ev.data});
        r->metrics.replayed++;
        if (outbox_event_ends_session(&ev)) conn_close_after_drain(c, CLOSE_LOGGED_OUT, NULL);
        if (c->close_when_drained) break;
    }
    outbox_read_end(&rd);
    if (rc < 0) {
        conn_close_after_drain(c, CLOSE_SERVER_ERROR, "replay failed, reconnect");
        return;
    }
    if (!full && rows < r->cfg->outbox_batch && !c->close_when_drained) {
        /* Caught up with the live position: live from the next event. */
        c->cursor = r->last_id;
        c->replaying = false;
        log_debug("socket %llu resumed", (unsigned long long)c->id);
    } else {
        conn_want_write(c);
    }
}
