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

static const struct {
    const char *name;
    action_fn fn;
} actions[] = {
    {"ping", act_ping},
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
        nova_fail(&err, 400, "request_id must be an integer");
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
    nova_fail(&err, 400, "unknown action '%.64s'", name);
fail:
    /* Domain failures are 400 packets; storage trouble keeps its 5xx. */
    conn_send_error(r, c, a.request_id, err.status >= 500 ? err.status : 400, err.msg);
    json_object_put(msg);
}
