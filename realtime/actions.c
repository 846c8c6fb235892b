/* actions.c - client packets: parse, check, dispatch (API.md §5).
 *
 * Malformed input never closes the socket: it gets an error packet with
 * code 400 and the request's request_id when one could be read. Actions
 * that change state run the domain code of common/ in one write
 * transaction, tagged with this socket as the events' origin, and the
 * outbox is delivered right after the commit. */
#include <stdio.h>
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

/* An action returns 0 on success (having replied or emitted events) or a
 * failure status with err. */
typedef int (*action_fn)(action_call *a, nova_err *err);

static int act_ping(action_call *a, nova_err *err)
{
    (void)err;
    char text[128];
    int len = snprintf(text, sizeof text,
                       "{\"action\":\"pong\",\"request_id\":%lld,\"ok\":true,\"data\":null}",
                       (long long)a->request_id);
    conn_send_text(a->r, a->c, text, (size_t)len);
    return 0;
}

/* Run one domain write for this socket: events are tagged with the
 * socket as their origin (so it alone sees its request_id), committed,
 * and delivered at once (this daemon's own commits do not move
 * data_version, so the poller would only see them later). */
static int in_transaction(action_call *a, nova_err *err, int (*op)(action_call *a, nova_err *err))
{
    rt *r = a->r;
    char origin[128];
    snprintf(origin, sizeof origin, "%s#%llu", r->name, (unsigned long long)a->c->id);
    int rc = db_begin(r->db, err);
    if (rc) return rc;
    outbox_set_origin(r->db, origin, a->request_id);
    rc = op(a, err);
    outbox_clear_origin(r->db);
    if (!rc) rc = db_commit(r->db, err);
    if (rc) {
        db_rollback(r->db);
        return rc;
    }
    tail_run(r);
    return 0;
}

/* data must be an object: {"chat_id": ...}. */
static int data_object(action_call *a, nova_err *err)
{
    return json_require_object(a->data, "data", err);
}

static int do_send(action_call *a, nova_err *err)
{
    int64_t chat_id, reply_to = 0, message_id;
    const char *content;
    int rc;
    if ((rc = data_object(a, err)) ||
        (rc = json_field_int(a->data, "chat_id", true, &chat_id, NULL, err)) ||
        (rc = json_field_string(a->data, "content", true, &content, NULL, err)))
        return rc;
    json_object *reply;
    if (json_object_object_get_ex(a->data, "reply_to", &reply) && reply &&
        !json_is_int64(reply, &reply_to))
        return nova_fail(err, ERR_INVALID, "field 'reply_to' must be a message id");
    return message_send(a->r->db, a->c->user_id, chat_id, content, reply_to, &message_id, err);
}

static int do_recall(action_call *a, nova_err *err)
{
    int64_t message_id;
    bool delete_for_me = false;
    int rc;
    if ((rc = data_object(a, err)) ||
        (rc = json_field_int(a->data, "message_id", true, &message_id, NULL, err)) ||
        (rc = json_field_bool(a->data, "delete", false, &delete_for_me, NULL, err)))
        return rc;
    return message_recall(a->r->db, a->c->user_id, message_id, delete_for_me, err);
}

static int do_read(action_call *a, nova_err *err)
{
    int64_t chat_id;
    int rc;
    if ((rc = data_object(a, err)) ||
        (rc = json_field_int(a->data, "chat_id", true, &chat_id, NULL, err)))
        return rc;
    return message_mark_read(a->r->db, a->c->user_id, chat_id, err);
}

static int act_send_message(action_call *a, nova_err *err)
{
    return in_transaction(a, err, do_send);
}

static int act_recall_message(action_call *a, nova_err *err)
{
    return in_transaction(a, err, do_recall);
}

static int act_messages_read(action_call *a, nova_err *err)
{
    return in_transaction(a, err, do_read);
}

static const struct {
    const char *name;
    action_fn fn;
} actions[] = {
    {"ping", act_ping},
    {"send_message", act_send_message},
    {"recall_message", act_recall_message},
    {"messages_read", act_messages_read},
};

void actions_handle(rt *r, conn *c, const char *text, size_t len, bool binary)
{
    if (binary) {
        conn_send_error(r, c, 0, 400, "binary frames are not supported; send JSON text");
        return;
    }
    nova_err err;
    nova_err_clear(&err);
    json_object *msg = NULL;
    if (json_parse_strict(text, len, (int)r->cfg->json_max_depth, &msg, &err)) {
        conn_send_error(r, c, 0, 400, err.msg);
        return;
    }
    action_call a = {.r = r, .c = c};
    const char *name;
    json_object *rid;
    if (json_require_object(msg, "a packet", &err)) goto fail;
    if (json_object_object_get_ex(msg, "request_id", &rid) && !json_is_int64(rid, &a.request_id)) {
        nova_fail(&err, ERR_INVALID, "request_id must be an integer");
        goto fail;
    }
    if (json_field_string(msg, "action", true, &name, NULL, &err)) goto fail;
    json_object_object_get_ex(msg, "data", &a.data);
    for (size_t i = 0; i < sizeof actions / sizeof actions[0]; i++) {
        if (strcmp(actions[i].name, name)) continue;
        if (actions[i].fn(&a, &err)) goto fail;
        json_object_put(msg);
        return;
    }
    nova_fail(&err, ERR_INVALID, "unknown action '%.64s'", name);
fail:
    /* Domain failures are 400 packets; storage trouble keeps its 5xx. */
    conn_send_error(r, c, a.request_id, err_socket_code(err.kind), err.msg);
    json_object_put(msg);
}
