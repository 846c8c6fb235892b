/* actions.c - client packets: parse, check, dispatch (API.md §5).
 *
 * Malformed input never closes the socket: it gets an error packet with
 * code 400 and the request's request_id when one could be read. Actions
 * that change state run the domain code of common/ in their batch's write
 * transaction (group commit, below), tagged with this socket as the
 * events' origin, and the outbox is delivered right after the commit. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/edit_react.h"
#include "../common/json_util.h"
#include "../common/log.h"
#include "../common/message.h"
#include "../common/outbox.h"
#include "rt.h"

typedef struct action_call {
    rt *r;
    conn *c;
    int64_t request_id;
    json_object *data;
    char reply[96]; /* the data of its reply packet ("" : none but a pong's) */
} action_call;

/* An action's work: 0 on success (having emitted events) or a failure
 * kind with err. Write actions run inside their batch's transaction (and
 * savepoint); they never begin or commit. */
typedef int (*action_fn)(action_call *a, nova_err *err);

/* Its pong goes out in its turn, after the events of the batch's earlier
 * actions (step_reply). */
static int act_ping(action_call *a, nova_err *err)
{
    (void)a, (void)err;
    return 0;
}

/* data must be an object: {"chat_id": ...}. */
static int data_object(action_call *a, nova_err *err)
{
    return json_require_object(a->data, "data", err);
}

static int act_send_message(action_call *a, nova_err *err)
{
    int64_t chat_id, reply_to = 0, message_id;
    const char *content;
    int rc;
    if ((rc = data_object(a, err)) ||
        (rc = json_field_int(a->data, "chat_id", true, &chat_id, NULL, err)) ||
        (rc = json_field_string(a->data, "content", true, &content, NULL, err)))
        return rc;
    /* Ids are positive: 0 or a negative number is no message (not "no
     * reply"); null or absent is no reply. */
    json_object *reply;
    if (json_object_object_get_ex(a->data, "reply_to", &reply) && reply &&
        (!json_is_int64(reply, &reply_to) || reply_to <= 0))
        return nova_fail(err, ERR_INVALID, "reply_to must be a message id");
    /* [ext] attachments: an upload of the caller's to this chat; null or
     * absent is none. */
    int64_t attachment_id = 0;
    json_object *file;
    if (json_object_object_get_ex(a->data, "attachment_id", &file) && file &&
        (!json_is_int64(file, &attachment_id) || attachment_id <= 0))
        return nova_fail(err, ERR_INVALID, "attachment_id must be an attachment id");
    return message_send_attachment(a->r->db, a->c->user_id, chat_id, content, reply_to,
                                   attachment_id, &message_id, err);
}

/* recall_message is two operations: {"delete": true} hides the message
 * for the caller, otherwise it is recalled for everyone. */
static int act_recall_message(action_call *a, nova_err *err)
{
    int64_t message_id;
    bool delete_for_me = false;
    int rc;
    if ((rc = data_object(a, err)) ||
        (rc = json_field_int(a->data, "message_id", true, &message_id, NULL, err)) ||
        (rc = json_field_bool(a->data, "delete", false, &delete_for_me, NULL, err)))
        return rc;
    return delete_for_me ? message_delete_for_me(a->r->db, a->c->user_id, message_id, err)
                         : message_recall(a->r->db, a->c->user_id, message_id, err);
}

static int act_messages_read(action_call *a, nova_err *err)
{
    int64_t chat_id;
    int rc;
    if ((rc = data_object(a, err)) ||
        (rc = json_field_int(a->data, "chat_id", true, &chat_id, NULL, err)))
        return rc;
    return message_mark_read(a->r->db, a->c->user_id, chat_id, err);
}

/* typing {"chat_id"} (docs/API.md "[ext] Presence and typing"): replies
 * {"chat_id","sent"}, sent false when rate limited. */
static int act_typing(action_call *a, nova_err *err)
{
    int64_t chat_id;
    bool sent;
    int rc;
    if ((rc = data_object(a, err)) ||
        (rc = json_field_int(a->data, "chat_id", true, &chat_id, NULL, err)) ||
        (rc = presence_typing_action(a->r, a->c, chat_id, &sent, err)))
        return rc;
    snprintf(a->reply, sizeof a->reply, "{\"chat_id\":%lld,\"sent\":%s}", (long long)chat_id,
             sent ? "true" : "false");
    return 0;
}

/* [ext] edit_message {message_id, content} (docs/API.md). */
static int act_edit_message(action_call *a, nova_err *err)
{
    int64_t message_id;
    const char *content;
    int rc;
    if ((rc = data_object(a, err)) ||
        (rc = json_field_int(a->data, "message_id", true, &message_id, NULL, err)) ||
        (rc = json_field_string(a->data, "content", true, &content, NULL, err)))
        return rc;
    edit_react_limits lim = edit_react_limits_of(a->r->cfg);
    return message_edit(a->r->db, &lim, a->c->user_id, message_id, content, err);
}

/* [ext] react / unreact {message_id, emoji}. */
static int react_call(action_call *a, bool add, nova_err *err)
{
    int64_t message_id;
    const char *emoji;
    int rc;
    if ((rc = data_object(a, err)) ||
        (rc = json_field_int(a->data, "message_id", true, &message_id, NULL, err)) ||
        (rc = json_field_string(a->data, "emoji", true, &emoji, NULL, err)))
        return rc;
    json_object *e = json_object_object_get(a->data, "emoji");
    edit_react_limits lim = edit_react_limits_of(a->r->cfg);
    return message_react(a->r->db, &lim, a->c->user_id, message_id, emoji,
                         (size_t)json_object_get_string_len(e), add, err);
}

static int act_react(action_call *a, nova_err *err)
{
    return react_call(a, true, err);
}

static int act_unreact(action_call *a, nova_err *err)
{
    return react_call(a, false, err);
}

/* The socket actions of API.md §5, each with the transaction it runs in. */
static const struct {
    const char *name;
    action_fn fn;
    enum db_tx tx;
} actions[] = {
    {"ping", act_ping, TX_NONE},
    {"send_message", act_send_message, TX_WRITE},
    {"recall_message", act_recall_message, TX_WRITE},
    {"messages_read", act_messages_read, TX_WRITE},
    {"typing", act_typing, TX_WRITE},
    {"edit_message", act_edit_message, TX_WRITE},
    {"react", act_react, TX_WRITE},
    {"unreact", act_unreact, TX_WRITE},
};
enum { N_ACTIONS = sizeof actions / sizeof actions[0] };
_Static_assert((int)N_ACTIONS < (int)RT_ACTION_SLOTS, "rt_metrics has a slot per action and one more");

const char *actions_name(size_t i)
{
    return i < N_ACTIONS ? actions[i].name : NULL;
}

/* --- running them: the FIFO and its batches --------------------------------
 *
 * Every message goes into the daemon's FIFO and runs at the end of the
 * loop's pass, with the others that arrived in it: the write actions of
 * one batch share one transaction (group commit: one commit, one fsync,
 * for all of them), each in its own savepoint, so that one that fails
 * changes nothing and leaves the others whole. What a socket sees does
 * not change: after the commit, the batch is delivered step by step, each
 * step's events (and every earlier commit's) before its reply, so replies,
 * events and their order are those of running the actions one by one. A
 * batch that finds the write lock taken waits, whole, and is retried every
 * rt_retry_ms; a lone action commits at once, without a savepoint. */

typedef struct pending_action {
    struct pending_action *next;
    conn *c;
    bool binary;
    size_t len;
    char text[]; /* len bytes */
} pending_action;

/* One message of a batch, from parsing to its reply. */
typedef struct step {
    action_call a;
    json_object *msg;
    size_t slot;   /* its action in actions[], or N_ACTIONS */
    bool skip;     /* its socket is closing: it does not run */
    bool write;    /* runs in the batch's transaction */
    bool pong;     /* its reply is a pong */
    bool ran;      /* its write ran, and is kept if the batch commits */
    int code;      /* its reply is an error packet with this code */
    int64_t upto;  /* the events to deliver before its reply */
    double took;   /* seconds its action ran */
    char origin[128];
    nova_err err;
} step;

/* Read a message into its step: the action it names, or the error packet
 * it gets (code 400). */
static void step_parse(rt *r, step *s, const pending_action *p)
{
    s->slot = N_ACTIONS;
    s->a = (action_call){.r = r, .c = p->c};
    nova_err_clear(&s->err);
    if (!p->c->registered || p->c->close_when_drained) {
        s->skip = true;
        return;
    }
    if (p->binary) {
        nova_fail(&s->err, ERR_INVALID, "binary frames are not supported; send JSON text");
        s->code = 400;
        return;
    }
    const char *name;
    json_object *rid;
    if (json_parse_strict(p->text, p->len, (int)r->cfg->json_max_depth, &s->msg, &s->err)) {
        s->code = 400;
        return;
    }
    if (json_require_object(s->msg, "a packet", &s->err)) goto fail;
    if (json_object_object_get_ex(s->msg, "request_id", &rid) &&
        !json_is_int64(rid, &s->a.request_id)) {
        nova_fail(&s->err, ERR_INVALID, "request_id must be an integer");
        goto fail;
    }
    if (json_field_string(s->msg, "action", true, &name, NULL, &s->err)) goto fail;
    json_object_object_get_ex(s->msg, "data", &s->a.data);
    for (size_t i = 0; i < N_ACTIONS; i++)
        if (!strcmp(actions[i].name, name)) {
            s->slot = i;
            s->write = actions[i].tx == TX_WRITE;
            return;
        }
    nova_fail(&s->err, ERR_INVALID, "unknown action '%.64s'", name);
fail:
    s->code = err_socket_code(s->err.kind);
}

/* Run one step inside the batch's transaction (if it writes). savepoint:
 * the step is undone alone when it fails. 0, or -1 when the transaction
 * itself failed (then the step and the whole batch fail with s->err). */
static int step_run(rt *r, step *s, bool savepoint)
{
    if (s->code || s->skip) return 0; /* a parse error: its reply is ready */
    double start = rt_now();
    int rc = 0;
    if (!s->write) {
        rc = actions[s->slot].fn(&s->a, &s->err);
        s->pong = !rc && !strcmp(actions[s->slot].name, "ping");
    } else {
        /* Its events name this socket as their origin, so that it alone
         * sees its request_id. */
        rt_origin_format(r, s->a.c, s->origin, sizeof s->origin);
        outbox_set_cause(s->origin, s->a.request_id);
        if (savepoint && db_savepoint(r->db, DB_SAVE, &s->err)) {
            s->code = err_socket_code(s->err.kind);
            return -1;
        }
        rc = actions[s->slot].fn(&s->a, &s->err);
        if (savepoint && db_savepoint(r->db, rc ? DB_UNDO : DB_RELEASE, rc ? NULL : &s->err)) {
            if (!rc) s->err.kind = ERR_UNAVAILABLE;
            s->code = err_socket_code(s->err.kind);
            return -1;
        }
        s->ran = !rc;
    }
    s->took = rt_now() - start;
    if (rc) s->code = err_socket_code(s->err.kind);
    return 0;
}

/* The reply of a step, after the events before it. */
static void step_reply(rt *r, step *s, bool committed)
{
    conn *c = s->a.c;
    if (committed && s->upto > r->last_id) tail_run_upto(r, s->upto);
    if (s->slot < N_ACTIONS) metrics_observe(&r->metrics.action_time[s->slot], s->took);
    if (s->code) {
        r->metrics.actions_failed[s->slot]++;
        conn_send_error(r, c, s->a.request_id, s->code, s->err.msg);
    } else {
        r->metrics.actions_ok[s->slot]++;
        if (s->pong)
            conn_send_packet(r, c, &(packet_fields){.action = "pong", .request_id = s->a.request_id});
        else if (s->a.reply[0])
            conn_send_packet(r, c,
                             &(packet_fields){.action = actions[s->slot].name,
                                              .request_id = s->a.request_id,
                                              .data = s->a.reply});
    }
    json_object_put(s->msg);
}

static void retry_tick(lws_sorted_usec_list_t *sul);
static void flush_tick(lws_sorted_usec_list_t *sul);

static void schedule_retry(rt *r)
{
    if (r->ctx)
        lws_sul_schedule(r->ctx, 0, &r->retry_timer, retry_tick,
                         (lws_usec_t)r->cfg->rt_retry_ms * LWS_US_PER_MS);
}

/* Drop the FIFO's first entry (its step has replied). */
static void fifo_pop(rt *r)
{
    pending_action *p = r->pending_head;
    r->pending_head = p->next;
    if (!r->pending_head) r->pending_tail = NULL;
    r->n_pending--;
    p->c->pending--;
    conn_update_rx(r, p->c);
    free(p);
}

/* Run the first actions of the FIFO as one batch. ACTION_BUSY when it
 * needs the write lock and found it taken (nothing ran), else 0. */
static int run_batch(rt *r)
{
    size_t n = 0, max = (size_t)r->cfg->rt_batch_max, writes = 0;
    for (pending_action *p = r->pending_head; p && n < max; p = p->next)
        n++;
    step *steps = calloc(n, sizeof *steps);
    if (!steps) return ACTION_BUSY; /* out of memory: try again shortly */
    pending_action *p = r->pending_head;
    for (size_t i = 0; i < n; i++, p = p->next) {
        step_parse(r, &steps[i], p);
        if (steps[i].write && !steps[i].code && !steps[i].skip) writes++;
    }
    bool in_tx = false, failed = false;
    nova_err tx_err;
    nova_err_clear(&tx_err);
    if (writes) {
        bool busy = false;
        if (db_begin_nowait(r->db, &busy, &tx_err)) {
            failed = true; /* every write of the batch fails with tx_err */
        } else if (busy) {
            for (size_t i = 0; i < n; i++)
                json_object_put(steps[i].msg);
            free(steps);
            return ACTION_BUSY;
        } else {
            in_tx = true;
        }
    }
    /* Run in order, taking no more steps once rt_batch_ms has passed (the
     * rest wait for the next batch). */
    double start = rt_now(), limit = (double)r->cfg->rt_batch_ms / 1000.0;
    size_t ran = 0;
    for (; ran < n; ran++) {
        step *s = &steps[ran];
        if (ran && rt_now() - start > limit) break;
        if (s->write && !s->code && !s->skip && failed) {
            s->err = tx_err;
            s->code = err_socket_code(tx_err.kind);
            continue;
        }
        if (in_tx && step_run(r, s, writes > 1) < 0) {
            tx_err = s->err;
            failed = true;
            ran++;
            break;
        }
        if (!in_tx && !s->write) step_run(r, s, false);
        s->upto = outbox_last_emitted();
    }
    bool committed = false;
    size_t kept = 0;
    for (size_t i = 0; i < ran; i++)
        kept += steps[i].ran;
    if (in_tx) {
        /* Commit what was kept; with nothing kept there is nothing to
         * commit (a lone write that failed ran without a savepoint: the
         * rollback undoes it). */
        if (!failed && kept && !db_commit(r->db, &tx_err)) {
            committed = true;
            outbox_committed(NULL); /* no wake-up: delivered right here */
        } else {
            if (!failed && kept) failed = true; /* the commit failed */
            db_rollback(r->db);
            outbox_discarded();
        }
    }
    /* A failed transaction took every write with it. */
    for (size_t i = 0; i < ran && failed; i++)
        if (steps[i].ran) {
            steps[i].ran = false;
            steps[i].err = tx_err;
            steps[i].code = err_socket_code(tx_err.kind);
        }
    if (in_tx) {
        r->metrics.batches++;
        for (size_t i = 0; i < ran; i++)
            r->metrics.batched_writes += steps[i].write && !steps[i].skip;
    }
    for (size_t i = 0; i < ran; i++) {
        step *s = &steps[i];
        if (!s->skip && s->a.c->registered && !s->a.c->close_when_drained)
            step_reply(r, s, committed);
        else
            json_object_put(s->msg);
        fifo_pop(r);
    }
    for (size_t i = ran; i < n; i++)
        json_object_put(steps[i].msg);
    free(steps);
    if (committed) tail_run(r);
    return 0;
}

/* While the write lock is taken: answer what needs no lock (ping, a bad
 * packet) for every socket that has no write waiting before it, so that
 * only the sockets whose writes wait are held up. */
static void run_lockfree(rt *r)
{
    uint64_t walk = ++r->walks;
    pending_action **pp = &r->pending_head, *last = NULL;
    while (*pp) {
        pending_action *p = *pp;
        step s = {0};
        bool blocked = p->c->blocked_walk == walk;
        if (!blocked) step_parse(r, &s, p);
        if (blocked || (s.write && !s.code && !s.skip)) {
            p->c->blocked_walk = walk; /* its later actions wait behind this one */
            json_object_put(s.msg);
            last = p;
            pp = &p->next;
            continue;
        }
        step_run(r, &s, false);
        if (!s.skip) step_reply(r, &s, false);
        else json_object_put(s.msg);
        *pp = p->next;
        r->n_pending--;
        p->c->pending--;
        conn_update_rx(r, p->c);
        free(p);
    }
    r->pending_tail = last;
}

/* Run the FIFO until it is empty or the write lock is taken. */
static void actions_flush(rt *r)
{
    while (r->pending_head) {
        if (run_batch(r) == ACTION_BUSY) {
            if (!r->lock_busy) {
                /* Read nothing more from the sockets that wait. */
                r->lock_busy = true;
                for (pending_action *p = r->pending_head; p; p = p->next)
                    conn_update_rx(r, p->c);
            }
            run_lockfree(r);
            if (r->pending_head)
                schedule_retry(r);
            else
                r->lock_busy = false;
            return;
        }
        if (r->lock_busy) {
            r->lock_busy = false;
            for (pending_action *p = r->pending_head; p; p = p->next)
                conn_update_rx(r, p->c);
        }
    }
}

static void retry_tick(lws_sorted_usec_list_t *sul)
{
    actions_flush(lws_container_of(sul, rt, retry_timer));
}

static void flush_tick(lws_sorted_usec_list_t *sul)
{
    rt *r = lws_container_of(sul, rt, flush_timer);
    r->flush_scheduled = false;
    if (r->lock_busy)
        run_lockfree(r); /* the retry timer tries the lock */
    else
        actions_flush(r);
}

void actions_forget(rt *r, conn *c)
{
    pending_action **pp = &r->pending_head, *last = NULL;
    while (*pp) {
        pending_action *p = *pp;
        if (p->c == c) {
            *pp = p->next;
            r->n_pending--;
            free(p);
        } else {
            last = p;
            pp = &p->next;
        }
    }
    r->pending_tail = last;
    c->pending = 0;
    if (!r->pending_head && r->ctx) {
        lws_sul_cancel(&r->retry_timer);
        r->lock_busy = false;
    }
}

void actions_handle(rt *r, conn *c, const char *text, size_t len, bool binary)
{
    if (r->n_pending >= (size_t)r->cfg->rt_max_pending) {
        conn_send_error(r, c, 0, 503, "storage busy, try again");
        return;
    }
    pending_action *p = malloc(sizeof *p + len);
    if (!p) {
        conn_send_error(r, c, 0, 503, "storage busy, try again");
        return;
    }
    p->next = NULL;
    p->c = c;
    p->binary = binary;
    p->len = len;
    memcpy(p->text, text, len);
    if (r->pending_tail)
        r->pending_tail->next = p;
    else
        r->pending_head = p;
    r->pending_tail = p;
    r->n_pending++;
    c->pending++;
    conn_update_rx(r, c);
    /* Without an event loop (the fuzz harness's rt), a batch of one now. */
    if (!r->ctx) {
        actions_flush(r);
        return;
    }
    /* At the end of this pass of the loop, with whatever else arrived in
     * it; while the lock is taken, only what needs no lock (the retry
     * timer tries the lock). */
    if (!r->flush_scheduled) {
        r->flush_scheduled = true;
        lws_sul_schedule(r->ctx, 0, &r->flush_timer, flush_tick, 0);
    }
}
