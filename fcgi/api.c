/* api.c - the request pipeline and the route table (API.md §1, §4). */
#include "api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/json_util.h"
#include "../common/log.h"

enum { AUTH = 1, OPEN = 0 };

/* The whole route table of API.md §4, in its order. */
const api_route api_routes[] = {
    {METHOD_POST, "/user/register", h_user_register, OPEN},
    {METHOD_POST, "/user/login", h_user_login, OPEN},
    {METHOD_POST, "/user/logout", h_user_logout, AUTH},
    {METHOD_GET, "/user", h_user_get, AUTH},
    {METHOD_PATCH, "/user", h_user_patch, AUTH},
    {METHOD_DELETE, "/user", h_user_delete, AUTH},
    {METHOD_GET, "/user/{id}", h_user_by_id, AUTH},

    {METHOD_POST, "/friend/group/add", h_friend_group_add, AUTH},
    {METHOD_GET, "/friend/group/list", h_friend_group_list, AUTH},
    {METHOD_GET, "/friend/group/{id}", h_friend_group_get, AUTH},
    {METHOD_PATCH, "/friend/group/{id}", h_friend_group_patch, AUTH},
    {METHOD_DELETE, "/friend/group/{id}", h_friend_group_delete, AUTH},

    {METHOD_POST, "/friend/find", h_friend_find, AUTH},
    {METHOD_POST, "/friend/invite", h_friend_invite, AUTH},
    {METHOD_GET, "/friend/invitation", h_friend_invitation_list, AUTH},
    {METHOD_POST, "/friend/invitation/{id}", h_friend_invitation_accept, AUTH},
    {METHOD_DELETE, "/friend/invitation/{id}", h_friend_invitation_decline, AUTH},
    {METHOD_GET, "/friend", h_friend_list, AUTH},
    {METHOD_GET, "/friend/{id}", h_friend_get, AUTH},
    {METHOD_PATCH, "/friend/{id}", h_friend_patch, AUTH},
    {METHOD_DELETE, "/friend/{id}", h_friend_delete, AUTH},

    {METHOD_POST, "/chat/new", h_chat_new, AUTH},
    {METHOD_POST, "/chat/{id}/invite", h_chat_invite, AUTH},
    {METHOD_GET, "/chat/{id}/invitation", h_chat_invitation_list, AUTH},
    {METHOD_POST, "/chat/{id}/invitation/{id}", h_chat_invitation_approve, AUTH},
    {METHOD_DELETE, "/chat/{id}/invitation/{id}", h_chat_invitation_decline, AUTH},
    {METHOD_GET, "/chat", h_chat_list, AUTH},
    {METHOD_GET, "/chat/{id}", h_chat_get, AUTH},
    {METHOD_DELETE, "/chat/{id}", h_chat_delete, AUTH},
    {METHOD_GET, "/chat/{id}/messages", h_chat_messages, AUTH},
    {METHOD_POST, "/chat/{id}/filter", h_chat_filter, AUTH},
    {METHOD_POST, "/chat/{id}/{id}/admin", h_chat_admin, AUTH},
    {METHOD_POST, "/chat/{id}/set_owner", h_chat_set_owner, AUTH},
    {METHOD_DELETE, "/chat/{id}/{id}", h_chat_remove_member, AUTH},
};
const size_t api_route_count = sizeof api_routes / sizeof api_routes[0];

/* Envelope: {"ok": true, "data": ...} or {"ok": false, "error": "..."}. */
static void respond(http_response *resp, int status, json_object *data, const char *error)
{
    json_object *env = json_object_new_object();
    json_object_object_add(env, "ok", json_object_new_boolean(status == 200));
    if (status == 200)
        json_object_object_add(env, "data", json_object_get(data));
    else
        json_object_object_add(env, "error", json_str(error));
    size_t len;
    const char *text = json_text(env, &len);
    free(resp->body);
    resp->body = malloc(len);
    if (resp->body) {
        memcpy(resp->body, text, len);
        resp->body_len = len;
    } else {
        resp->body_len = 0;
    }
    resp->status = status;
    json_object_put(env);
}

static void add_cors(const nova_config *cfg, const http_request *req, http_response *resp,
                     bool preflight)
{
    if (!req->origin || !config_origin_allowed(cfg, req->origin)) return;
    http_add_header(resp, "Access-Control-Allow-Origin", req->origin);
    http_add_header(resp, "Access-Control-Allow-Credentials", "true");
    http_add_header(resp, "Vary", "Origin");
    if (preflight) {
        http_add_header(resp, "Access-Control-Allow-Methods", "GET, POST, PATCH, DELETE, OPTIONS");
        http_add_header(resp, "Access-Control-Allow-Headers",
                        "accept, authorization, content-type");
        http_add_header(resp, "Access-Control-Max-Age", "600");
    }
}

/* Is the media type application/json (parameters allowed)? */
static bool is_json_type(const char *ct)
{
    static const char json[] = "application/json";
    while (*ct == ' ' || *ct == '\t')
        ct++;
    if (strncasecmp(ct, json, sizeof json - 1)) return false;
    ct += sizeof json - 1;
    while (*ct == ' ' || *ct == '\t')
        ct++;
    return *ct == '\0' || *ct == ';';
}

static int check_body(api_call *c, nova_err *err)
{
    const http_request *req = c->req;
    bool has_type = req->content_type && req->content_type[0];
    if (has_type && !is_json_type(req->content_type))
        return nova_fail(err, 400, "Content-Type must be application/json");
    if (req->body_too_large || req->body_len > (size_t)c->cfg->body_limit)
        return nova_fail(err, 413, "request body is larger than %ld bytes", c->cfg->body_limit);
    if (req->body_len == 0) return 0;
    if (!has_type)
        return nova_fail(err, 400, "a request body needs Content-Type: application/json");
    return json_parse_strict(req->body, req->body_len, (int)c->cfg->json_max_depth, &c->body, err);
}

void api_set_cookie(api_call *c, const char *token)
{
    char cookie[256];
    session_cookie(c->cfg, token, cookie, sizeof cookie);
    http_add_header(c->resp, "Set-Cookie", cookie);
}

int api_result(api_call *c, json_object *data, nova_err *err)
{
    c->data = data;
    return data ? 0 : err->status ? err->status : 500;
}

/* The session token the request's cookie carries, if well formed. */
static bool cookie_token(const http_request *req, char token[TOKEN_LEN + 1])
{
    return req->cookie && !session_token_from_cookie(req->cookie, token);
}

int api_optional_session(api_call *c, session *s)
{
    char token[TOKEN_LEN + 1];
    nova_err ignored;
    if (!cookie_token(c->req, token)) return -1;
    int rc = session_lookup(c->db, token, s, &ignored);
    sodium_memzero(token, sizeof token);
    return rc;
}

void api_handle(nova_db *db, const http_request *req, http_response *resp)
{
    const nova_config *cfg = db->cfg;
    nova_err err;
    nova_err_clear(&err);
    api_call call = {.db = db, .cfg = cfg, .req = req, .resp = resp};
    bool snapshot = false; /* a read transaction is open */

    /* 1. route, 2. method */
    unsigned method = router_method(req->method), allowed = 0;
    const api_route *route = NULL;
    for (size_t i = 0; i < api_route_count; i++) {
        int64_t ids[ROUTE_MAX_IDS];
        size_t n_ids;
        if (!router_match(api_routes[i].pattern, req->path, ids, &n_ids)) continue;
        allowed |= api_routes[i].method;
        if (api_routes[i].method == method && !route) {
            route = &api_routes[i];
            memcpy(call.ids, ids, sizeof ids);
        }
    }
    if (!allowed) {
        nova_fail(&err, 404, "no such path: %.200s", req->path);
        goto fail;
    }
    char allow[96];
    router_allow_text(allowed | METHOD_OPTIONS, allow, sizeof allow);
    /* 3. OPTIONS */
    if (method == METHOD_OPTIONS) {
        resp->status = 200;
        http_add_header(resp, "Allow", allow);
        add_cors(cfg, req, resp, true);
        return;
    }
    if (!route) {
        http_add_header(resp, "Allow", allow);
        nova_fail(&err, 405, "method %.16s not allowed on %.200s", req->method ? req->method : "",
                  req->path);
        goto fail;
    }
    add_cors(cfg, req, resp, false);
    /* A GET runs in one read snapshot, session check included; whatever
     * the session needs written (expiry, last_seen) waits until after. */
    if (method == METHOD_GET) {
        if (db_begin_read(db, &err)) goto fail;
        snapshot = true;
    }
    /* 4. session */
    if (route->needs_session) {
        char token[TOKEN_LEN + 1];
        nova_err why;
        int rc = cookie_token(req, token) ? session_check(db, token, &call.session, &why) : 403;
        sodium_memzero(token, sizeof token);
        if (!snapshot) session_settle(db, &call.session);
        if (rc) {
            nova_fail(&err, rc, "%s", rc == 403 ? "Invalid Session" : why.msg);
            goto fail;
        }
    }
    /* 5. body */
    if (method != METHOD_GET && check_body(&call, &err)) goto fail;
    /* 6. handler */
    int status = route->handler(&call, &err);
    if (snapshot) {
        db_rollback(db);
        snapshot = false;
        session_settle(db, &call.session);
    }
    if (status) {
        if (db->in_write) db_rollback(db);
        goto fail;
    }
    respond(resp, 200, call.data, NULL);
    json_object_put(call.data);
    json_object_put(call.body);
    return;
fail:
    if (snapshot) {
        db_rollback(db);
        session_settle(db, &call.session);
    }
    /* 7. never leak internals: 5xx messages are generic by construction. */
    if (!err.status) nova_fail(&err, 500, "internal error");
    respond(resp, err.status, NULL, err.msg);
    json_object_put(call.data);
    json_object_put(call.body);
}
