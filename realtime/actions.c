/* actions.c - client packets: parse, check, dispatch (API.md §5).
 *
 * Malformed input never closes the socket: it gets an error packet with
 * code 400 and the request's request_id when one could be read. Actions
 * that change state run the domain code of common/ in one write
 * transaction, tagged with this socket as the events' origin, and the
 * outbox is delivered right after the commit. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
} action_call;

/* An action's work: 0 on success (having replied or emitted events) or a
 * failure kind with err. Write actions run inside the transaction
 * actions_run opened for them. */
typedef int (*action_fn)(action_call *a, nova_err *err);

static int act_ping(action_call *a, nova_err *err)
{
    (void)err;
    conn_send_packet(a->r, a->c, &(packet_fields){.action = "pong", .request_id = a->request_id});
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
    return message_send(a->r->db, a->c->user_id, chat_id, content, reply_to, &message_id, err);
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
};
enum { N_ACTIONS = sizeof actions / sizeof actions[0] };
_Static_assert((int)N_ACTIONS < (int)RT_ACTION_SLOTS, "rt_metrics has a slot per action and one more");

const char *actions_name(size_t i)
{
    return i < N_ACTIONS ? actions[i].name : NULL;
}

typedef struct action_run {
    action_call *a;
    action_fn fn;
} action_run;

static int run_in_write(rt *r, void *ctx, nova_err *err)
{
    (void)r;
    action_run *run = ctx;
    return run->fn(run->a, err);
}

/* Parse and run one message; ACTION_BUSY when it must wait for the write
 * lock (nothing was sent or changed then). */
static int actions_run(rt *r, conn *c, const char *text, size_t len, bool binary)
{
    if (binary) {
        conn_send_error(r, c, 0, 400, "binary frames are not supported; send JSON text");
        r->metrics.actions_failed[N_ACTIONS]++;
        return 0;
    }
    nova_err err;
    nova_err_clear(&err);
    json_object *msg = NULL;
    if (json_parse_strict(text, len, (int)r->cfg->json_max_depth, &msg, &err)) {
        conn_send_error(r, c, 0, 400, err.msg);
        r->metrics.actions_failed[N_ACTIONS]++;
        return 0;
    }
    action_call a = {.r = r, .c = c};
    size_t slot = N_ACTIONS; /* no known action (yet) */
    const char *name;
    json_object *rid;
    if (json_require_object(msg, "a packet", &err)) goto fail;
    if (json_object_object_get_ex(msg, "request_id", &rid) && !json_is_int64(rid, &a.request_id)) {
        nova_fail(&err, ERR_INVALID, "request_id must be an integer");
        goto fail;
    }
    if (json_field_string(msg, "action", true, &name, NULL, &err)) goto fail;
    json_object_object_get_ex(msg, "data", &a.data);
    for (size_t i = 0; i < N_ACTIONS; i++) {
        if (strcmp(actions[i].name, name)) continue;
        double start = rt_now();
        int rc;
        if (actions[i].tx == TX_WRITE) {
            /* The events are tagged with this socket as their origin, so
             * that it alone sees its request_id. */
            char origin[128];
            rt_origin_format(r, c, origin, sizeof origin);
            action_run run = {&a, actions[i].fn};
            rc = rt_write(r, origin, a.request_id, run_in_write, &run, &err);
        } else {
            rc = actions[i].fn(&a, &err);
        }
        if (rc == ACTION_BUSY) {
            json_object_put(msg);
            return ACTION_BUSY;
        }
        slot = i;
        metrics_observe(&r->metrics.action_time[i], rt_now() - start);
        if (rc) goto fail;
        r->metrics.actions_ok[i]++;
        json_object_put(msg);
        return 0;
    }
    nova_fail(&err, ERR_INVALID, "unknown action '%.64s'", name);
fail:
    r->metrics.actions_failed[slot]++;
    /* Domain failures are 400 packets; storage trouble keeps its 5xx. */
    conn_send_error(r, c, a.request_id, err_socket_code(err.kind), err.msg);
    json_object_put(msg);
    return 0;
}

/* --- actions waiting for the write lock ---------------------------------- */

typedef struct pending_action {
    struct pending_action *next;
    conn *c;
    bool binary;
    size_t len;
    char text[]; /* len bytes */
} pending_action;

static void retry_tick(lws_sorted_usec_list_t *sul);

static void schedule_retry(rt *r)
{
    if (r->ctx)
        lws_sul_schedule(r->ctx, 0, &r->retry_timer, retry_tick,
                         (lws_usec_t)r->cfg->rt_retry_ms * LWS_US_PER_MS);
}

/* Keep a message for later, behind the socket's earlier ones. */
static void pending_push(rt *r, conn *c, const char *text, size_t len, bool binary)
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
    if (r->n_pending++ == 0) schedule_retry(r);
    c->pending++;
    conn_update_rx(r, c); /* read nothing more from it meanwhile */
}

/* Run the waiting actions in order until one finds the lock taken again. */
static void retry_tick(lws_sorted_usec_list_t *sul)
{
    rt *r = lws_container_of(sul, rt, retry_timer);
    pending_action *p;
    while ((p = r->pending_head)) {
        conn *c = p->c;
        if (c->registered && !c->close_when_drained &&
            actions_run(r, c, p->text, p->len, p->binary) == ACTION_BUSY)
            break;
        r->pending_head = p->next;
        if (!r->pending_head) r->pending_tail = NULL;
        r->n_pending--;
        c->pending--;
        conn_update_rx(r, c);
        free(p);
    }
    if (r->pending_head) schedule_retry(r);
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
    if (!r->pending_head && r->ctx) lws_sul_cancel(&r->retry_timer);
}

void actions_handle(rt *r, conn *c, const char *text, size_t len, bool binary)
{
    /* A socket's messages run in the order it sent them. */
    if (c->pending || actions_run(r, c, text, len, binary) == ACTION_BUSY)
        pending_push(r, c, text, len, binary);
}
