/* api.c - the request pipeline and the route table (API.md §1, §4). */
#include "api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/json_util.h"
#include "../common/log.h"
#include "../common/outbox.h"

/* Shorthands for the route table. NF, NM: this endpoint answers 400 where
 * the object is not found (NF) or the caller is not allowed (NM), as
 * API.md lists per endpoint ("chat unknown → 400"). */
#define OPEN SESSION_NONE
#define AUTH SESSION_REQUIRED
#define MAYBE SESSION_OPTIONAL
#define READ TX_READ
#define WRITE TX_WRITE
#define NF API_AS_400(ERR_NOT_FOUND)
#define NM API_AS_400(ERR_FORBIDDEN)

/* The whole route table of API.md §4, in its order. */
const api_route api_routes[] = {
    {METHOD_POST, "/user/register", h_user_register_prepare, h_user_register, MAYBE, WRITE, 0},
    {METHOD_POST, "/user/login", h_user_login_prepare, h_user_login, MAYBE, WRITE, 0},
    {METHOD_POST, "/user/logout", NULL, h_user_logout, AUTH, WRITE, 0},
    {METHOD_GET, "/user", NULL, h_user_get, AUTH, READ, 0},
    {METHOD_PATCH, "/user", h_user_patch_prepare, h_user_patch, AUTH, WRITE, 0},
    {METHOD_DELETE, "/user", NULL, h_user_delete, AUTH, WRITE, 0},
    {METHOD_GET, "/user/{id}", NULL, h_user_by_id, AUTH, READ, 0},

    {METHOD_POST, "/friend/group/add", NULL, h_friend_group_add, AUTH, WRITE, 0},
    {METHOD_GET, "/friend/group/list", NULL, h_friend_group_list, AUTH, READ, 0},
    {METHOD_GET, "/friend/group/{id}", NULL, h_friend_group_get, AUTH, READ, 0},
    {METHOD_PATCH, "/friend/group/{id}", NULL, h_friend_group_patch, AUTH, WRITE, NF},
    {METHOD_DELETE, "/friend/group/{id}", NULL, h_friend_group_delete, AUTH, WRITE, NF},

    {METHOD_POST, "/friend/find", NULL, h_friend_find, AUTH, READ, 0},
    {METHOD_POST, "/friend/invite", NULL, h_friend_invite, AUTH, WRITE, NF},
    {METHOD_GET, "/friend/invitation", NULL, h_friend_invitation_list, AUTH, READ, 0},
    {METHOD_POST, "/friend/invitation/{id}", NULL, h_friend_invitation_accept, AUTH, WRITE, NF},
    {METHOD_DELETE, "/friend/invitation/{id}", NULL, h_friend_invitation_decline, AUTH, WRITE, NF},
    {METHOD_GET, "/friend", NULL, h_friend_list, AUTH, READ, 0},
    {METHOD_GET, "/friend/{id}", NULL, h_friend_get, AUTH, READ, 0},
    {METHOD_PATCH, "/friend/{id}", NULL, h_friend_patch, AUTH, WRITE, NF},
    {METHOD_DELETE, "/friend/{id}", NULL, h_friend_delete, AUTH, WRITE, NF},

    {METHOD_POST, "/chat/new", NULL, h_chat_new, AUTH, WRITE, 0},
    {METHOD_POST, "/chat/{id}/invite", NULL, h_chat_invite, AUTH, WRITE, NF},
    {METHOD_GET, "/chat/{id}/invitation", NULL, h_chat_invitation_list, AUTH, READ, NF},
    {METHOD_POST, "/chat/{id}/invitation/{id}", NULL, h_chat_invitation_approve, AUTH, WRITE, NF},
    {METHOD_DELETE, "/chat/{id}/invitation/{id}", NULL, h_chat_invitation_decline, AUTH, WRITE, NF},
    /* [ext] the invitee's side of group-invite-flow = consent (docs/API.md) */
    {METHOD_GET, "/chat/invitation", NULL, h_chat_invitations_received, AUTH, READ, 0},
    {METHOD_POST, "/chat/invitation/{id}", NULL, h_chat_invitation_accept, AUTH, WRITE, 0},
    {METHOD_DELETE, "/chat/invitation/{id}", NULL, h_chat_invitation_refuse, AUTH, WRITE, 0},
    {METHOD_GET, "/chat", NULL, h_chat_list, AUTH, READ, 0},
    {METHOD_GET, "/chat/{id}", NULL, h_chat_get, AUTH, READ, NF | NM},
    {METHOD_DELETE, "/chat/{id}", NULL, h_chat_delete, AUTH, WRITE, NF | NM},
    {METHOD_GET, "/chat/{id}/messages", NULL, h_chat_messages, AUTH, READ, 0},
    {METHOD_POST, "/chat/{id}/filter", NULL, h_chat_filter, AUTH, READ, NF},
    {METHOD_POST, "/chat/{id}/{id}/admin", NULL, h_chat_admin, AUTH, WRITE, NF},
    {METHOD_POST, "/chat/{id}/set_owner", NULL, h_chat_set_owner, AUTH, WRITE, NF},
    {METHOD_DELETE, "/chat/{id}/{id}", NULL, h_chat_remove_member, AUTH, WRITE, NF},

    /* [ext] attachments */
    {METHOD_POST, "/chat/{id}/attachment", NULL, h_attach_upload, AUTH, WRITE, API_RAW_BODY},
    {METHOD_GET, "/attachment/{id}", NULL, h_attach_download, AUTH, READ, 0},
    /* [ext] search */
    {METHOD_GET, "/search", NULL, h_search, AUTH, READ, 0},
};
const size_t api_route_count = sizeof api_routes / sizeof api_routes[0];

static void respond(http_response *resp, int status, json_object *data, const char *error)
{
    http_respond_json(resp, status, data, error);
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
        return nova_fail(err, ERR_INVALID, "Content-Type must be application/json");
    if (req->body_too_large || req->body_len > (size_t)c->cfg->body_limit)
        return nova_fail(err, ERR_TOO_LARGE, "request body is larger than %ld bytes",
                         c->cfg->body_limit);
    if (req->body_len == 0) return 0;
    if (!has_type)
        return nova_fail(err, ERR_INVALID, "a request body needs Content-Type: application/json");
    return json_parse_strict(req->body, req->body_len, (int)c->cfg->json_max_depth, &c->body, err);
}

void api_set_cookie(api_call *c, const char *token)
{
    session_cookie(c->cfg, token, c->set_cookie, sizeof c->set_cookie);
}

int api_result(api_call *c, json_object *data, nova_err *err)
{
    c->data = data;
    return data ? 0 : err->kind ? err->kind : ERR_INTERNAL;
}

/* The session token the request's cookie carries, if well formed. */
static bool cookie_token(const http_request *req, char token[TOKEN_LEN + 1])
{
    return req->cookie && !session_token_from_cookie(req->cookie, token);
}

/* Look up the session the request carries. 0 with *s for a live one;
 * ERR_FORBIDDEN when there is none (s->expired / s->stale say what
 * settle_session must write once the transaction is over); another kind,
 * with err, when the storage could not be asked. */
static int check_session(api_call *c, session *s, nova_err *err)
{
    char token[TOKEN_LEN + 1];
    nova_err why;
    memset(s, 0, sizeof *s);
    int rc = cookie_token(c->req, token) ? session_check(c->db, token, s, &why) : ERR_FORBIDDEN;
    sodium_memzero(token, sizeof token);
    if (rc && rc != ERR_FORBIDDEN) *err = why;
    return rc;
}

/* A state-changing request (anything but GET and OPTIONS) from a browser
 * page of a foreign site is refused, whatever cookie it carries: its
 * Origin (or, without one, its Referer) must be the page's own origin or
 * an allowed one. Requests with neither header (non-browser clients) pass. */
static int check_origin(api_call *c, nova_err *err)
{
    if (http_origin_ok(c->cfg, c->req)) return 0;
    log_info("refused a cross-site %s %.200s", c->req->method, c->req->path);
    return nova_fail(err, ERR_FORBIDDEN, "cross-site request refused");
}

/* End a write transaction: commit (then wake the realtime daemons if it
 * wrote events: SQLite by datagram here; PostgreSQL's NOTIFY went out
 * with the commit) or roll back. */
static int end_write(api_call *c, int rc, nova_err *err)
{
    if (!rc) rc = db_commit(c->db, err);
    if (rc) {
        db_rollback(c->db);
        outbox_discarded();
        return rc;
    }
    outbox_committed(c->db->kind == DB_SQLITE ? c->cfg->wake_socket : NULL);
    return 0;
}

/* After the request's transaction: end an expired session (logout to its
 * sockets) or refresh a stale one, in a small write of its own. Best
 * effort: a busy database must not fail the request. */
static void settle_session(api_call *c, const session *s)
{
    if (!s->expired && !s->stale) return;
    nova_err ignored;
    if (!db_begin(c->db, &ignored)) end_write(c, session_settle(c->db, s, &ignored), &ignored);
}

/* Steps 4-6 inside the route's transaction: session, body, handler. */
static int run_in_transaction(api_call *c, const api_route *route, int body_status,
                              nova_err *body_err, session *seen, int *status, nova_err *err)
{
    int rc = route->tx == TX_WRITE ? db_begin(c->db, err) : db_begin_read(c->db, err);
    if (rc) return rc;
    if (route->session != SESSION_NONE) {
        rc = check_session(c, seen, err);
        c->has_session = !rc;
        if (c->has_session) c->session = *seen;
        if (rc && rc != ERR_FORBIDDEN) {
            /* the storage could not say: err has it */
        } else if (rc && route->session == SESSION_REQUIRED) {
            rc = nova_fail(err, ERR_FORBIDDEN, "Invalid Session");
            *status = 403; /* the pipeline's own answer, whatever the route maps */
        } else {
            rc = 0;
        }
    }
    if (!rc && body_status) {
        *err = *body_err;
        rc = body_status;
    }
    if (!rc) rc = route->handler(c, err);
    if (route->tx == TX_WRITE) return end_write(c, rc, err);
    db_rollback(c->db);
    return rc;
}

int api_status_of(const api_route *route, int kind)
{
    if (route && (route->as_400 & API_AS_400(kind))) return 400;
    return err_http_status(kind);
}

void api_handle(nova_db *db, const http_request *req, http_response *resp)
{
    const nova_config *cfg = db->cfg;
    nova_err err, body_err;
    nova_err_clear(&err);
    nova_err_clear(&body_err);
    api_call call = {.db = db, .cfg = cfg, .req = req, .resp = resp};
    session seen = {0}; /* the session the cookie named, live or not */
    int status = 0;     /* set by the pipeline's own answers (405, 403) */

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
        nova_fail(&err, ERR_NOT_FOUND, "no such path: %.200s", req->path);
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
        nova_fail(&err, ERR_INVALID, "method %.16s not allowed on %.200s",
                  req->method ? req->method : "", req->path);
        status = 405;
        goto fail;
    }
    resp->route = (int)(route - api_routes);
    add_cors(cfg, req, resp, false);
    if (method != METHOD_GET && check_origin(&call, &err)) {
        status = 403;
        goto fail;
    }
    /* 5. body: parsed now, reported after the session check (step 4). */
    int body_status =
        method == METHOD_GET || (route->as_400 & API_RAW_BODY) ? 0 : check_body(&call, &body_err);
    /* Slow work before the transaction. Only a live session may ask for
     * it; the handler checks the session again under the transaction. */
    if (route->prepare) {
        int checked = route->session == SESSION_REQUIRED ? check_session(&call, &seen, &err) : 0;
        if (checked && checked != ERR_FORBIDDEN) goto fail;
        if (checked) {
            nova_fail(&err, ERR_FORBIDDEN, "Invalid Session");
            status = 403;
            goto fail;
        }
        if (route->session == SESSION_REQUIRED) call.session = seen;
        if (body_status) {
            err = body_err;
            goto fail;
        }
        if (route->prepare(&call, &err)) goto fail;
    }
    /* 4-6. session, body and handler in the route's transaction */
    if (run_in_transaction(&call, route, body_status, &body_err, &seen, &status, &err)) goto fail;
    settle_session(&call, &seen);
    if (call.set_cookie[0]) http_add_header(resp, "Set-Cookie", call.set_cookie);
    if (resp->raw)
        resp->status = 200;
    else
        respond(resp, 200, call.data, NULL);
    goto done;
fail:
    settle_session(&call, &seen);
    /* 7. never leak internals: 5xx messages are generic by construction. */
    if (!err.kind) nova_fail(&err, ERR_INTERNAL, "internal error");
    if (!status) status = api_status_of(route, err.kind);
    respond(resp, status, NULL, err.msg);
done:
    json_object_put(call.data);
    json_object_put(call.body);
    free(call.prep.verified_hash);
    sodium_memzero(call.prep.new_hash, sizeof call.prep.new_hash);
    sodium_memzero(call.set_cookie, sizeof call.set_cookie);
}
