/* console.c - the console's pipeline and handlers: route (404) → method
 * (405) → origin of a POST (403) → [login: verify the password outside any
 * transaction] → begin → operator session (401) → handler → commit →
 * envelope. Chat sessions mean nothing here: only the nova_admin cookie of
 * an operator session opens it. */
#include "console.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../common/console.h"
#include "../common/json_util.h"
#include "../common/log.h"
#include "../common/operator.h"
#include "../common/session.h"
#include "router.h"

static const char PREFIX[] = "/admin/api";

typedef struct console_call {
    nova_db *db;
    const nova_config *cfg;
    const http_request *req;
    operator_session op;
    int64_t ids[ROUTE_MAX_IDS];
    json_object *body;
    json_object *data;
    char set_cookie[256];
    int64_t login_id; /* login: whose password was verified */
    char *login_hash; /* and the stored hash it matched */
} console_call;

typedef int (*console_handler)(console_call *c, nova_err *err);

typedef struct console_route {
    unsigned method;
    const char *pattern; /* under /admin/api */
    console_handler prepare; /* outside the transaction (login: argon2id) */
    console_handler handler;
    bool open; /* no operator session needed (login) */
    enum db_tx tx;
} console_route;

static int h_login_prepare(console_call *c, nova_err *err);
static int h_login(console_call *c, nova_err *err);
static int h_logout(console_call *c, nova_err *err);
static int h_me(console_call *c, nova_err *err);
static int h_stats(console_call *c, nova_err *err);
static int h_series(console_call *c, nova_err *err);
static int h_events(console_call *c, nova_err *err);
static int h_event(console_call *c, nova_err *err);
static int h_tail(console_call *c, nova_err *err);
static int h_sessions(console_call *c, nova_err *err);

static const console_route routes[] = {
    {METHOD_POST, "/login", h_login_prepare, h_login, true, TX_WRITE},
    {METHOD_POST, "/logout", NULL, h_logout, false, TX_WRITE},
    {METHOD_GET, "/me", NULL, h_me, false, TX_READ},
    {METHOD_GET, "/stats", NULL, h_stats, false, TX_READ},
    {METHOD_GET, "/series", NULL, h_series, false, TX_READ},
    {METHOD_GET, "/events", NULL, h_events, false, TX_READ},
    {METHOD_GET, "/events/{id}", NULL, h_event, false, TX_READ},
    {METHOD_GET, "/tail", NULL, h_tail, false, TX_READ},
    {METHOD_GET, "/sessions", NULL, h_sessions, false, TX_READ},
};
enum { N_ROUTES = sizeof routes / sizeof routes[0] };

bool console_wants(const nova_config *cfg, bool marked, const char *path)
{
    return cfg->console && marked && path && !strncmp(path, PREFIX, sizeof PREFIX - 1) &&
           path[sizeof PREFIX - 1] == '/';
}

/* --- handlers ------------------------------------------------------------- */

static int result(console_call *c, json_object *data, nova_err *err)
{
    c->data = data;
    return data ? 0 : err->kind ? err->kind : ERR_INTERNAL;
}

/* Verify name and password before the transaction (argon2id is slow). An
 * unknown name is verified against a reference hash of the same cost, so
 * the answer's timing does not tell which names exist. */
static int h_login_prepare(console_call *c, nova_err *err)
{
    const char *name, *password;
    int rc = json_require_object(c->body, "body", err);
    if (!rc) rc = json_field_string(c->body, "name", true, &name, NULL, err);
    if (!rc) rc = json_field_string(c->body, "password", true, &password, NULL, err);
    if (rc) return rc;
    nova_err lookup;
    rc = operator_find(c->db, name, &c->login_id, &c->login_hash, &lookup);
    if (rc && rc != ERR_NOT_FOUND) {
        *err = lookup;
        return rc;
    }
    bool ok = password_verify(rc ? password_dummy_hash(c->cfg) : c->login_hash, password);
    if (rc || !ok) {
        log_info("console: a failed operator login");
        return nova_fail(err, ERR_FORBIDDEN, "wrong name or password");
    }
    return 0;
}

/* Under the write lock: the operator is still there with the hash that
 * matched (not removed or changed meanwhile); then the session. */
static int h_login(console_call *c, nova_err *err)
{
    const char *name;
    json_field_string(c->body, "name", true, &name, NULL, err);
    int64_t id;
    char *hash;
    int rc = operator_find(c->db, name, &id, &hash, err);
    bool same = !rc && id == c->login_id && !strcmp(hash, c->login_hash);
    free(hash);
    if (rc == ERR_NOT_FOUND || (!rc && !same))
        return nova_fail(err, ERR_FORBIDDEN, "wrong name or password");
    if (rc) return rc;
    char token[TOKEN_LEN + 1];
    rc = operator_session_create(c->db, id, token, err);
    if (!rc) operator_cookie(c->cfg, token, c->set_cookie, sizeof c->set_cookie);
    sodium_memzero(token, sizeof token);
    if (rc) return rc;
    json_object *o = json_object_new_object();
    json_object_object_add(o, "name", json_str(name));
    log_info("console: operator %s logged in", name);
    return result(c, o, err);
}

static int h_logout(console_call *c, nova_err *err)
{
    int rc = operator_session_end(c->db, c->op.id, err);
    if (rc) return rc;
    operator_cookie(c->cfg, NULL, c->set_cookie, sizeof c->set_cookie);
    return result(c, json_object_new_object(), err);
}

static int h_me(console_call *c, nova_err *err)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "name", json_str(c->op.name));
    return result(c, o, err);
}

static int h_stats(console_call *c, nova_err *err)
{
    return result(c, console_stats(c->db, err), err);
}

static int h_series(console_call *c, nova_err *err)
{
    int64_t hours = 3;
    int rc = http_query_id(c->req->query, "hours", &hours, err);
    if (rc) return rc;
    if (hours > CONSOLE_SERIES_MAX_HOURS)
        return nova_fail(err, ERR_INVALID, "hours must be 1 to %d", CONSOLE_SERIES_MAX_HOURS);
    return result(c, console_series(c->db, (int)hours, err), err);
}

/* A time parameter: UNIX seconds, a positive integer. */
static int query_time(const char *query, const char *name, double *out, nova_err *err)
{
    int64_t t = 0;
    int rc = http_query_id(query, name, &t, err);
    if (!rc && t) *out = (double)t;
    return rc;
}

enum { EVENTS_DEFAULT = 50, EVENTS_MAX = 500 };

static int h_events(console_call *c, nova_err *err)
{
    const char *q = c->req->query;
    char action[65], user[160];
    int64_t limit = EVENTS_DEFAULT;
    outbox_filter f = {0};
    int has_action = http_query_text(q, "action", action, sizeof action, err);
    int has_user = has_action < 0 ? 0 : http_query_text(q, "user", user, sizeof user, err);
    if (has_action < 0 || has_user < 0) return ERR_INVALID;
    int rc;
    if ((rc = http_query_id(q, "chat", &f.chat_id, err)) ||
        (rc = http_query_id(q, "before", &f.before, err)) ||
        (rc = http_query_id(q, "limit", &limit, err)) ||
        (rc = query_time(q, "since", &f.since, err)) || (rc = query_time(q, "until", &f.until, err)))
        return rc;
    if (limit > EVENTS_MAX) return nova_fail(err, ERR_INVALID, "limit must be 1 to %d", EVENTS_MAX);
    f.limit = limit;
    if (has_action && *action) f.action = action;
    if (has_user && *user) {
        /* a user id, or a user's name */
        int64_t id = 0;
        size_t len = strlen(user);
        if (strspn(user, "0123456789") == len && !router_parse_id(user, len, &id)) {
            f.user_id = id;
        } else {
            nova_err unknown;
            rc = console_user_id(c->db, user, &f.user_id, &unknown);
            if (rc == ERR_NOT_FOUND) /* no such user: no event is theirs */
                return result(c, json_tokener_parse("{\"events\":[],\"next_before\":null}"), err);
            if (rc) {
                *err = unknown;
                return rc;
            }
        }
    }
    return result(c, console_events(c->db, &f, err), err);
}

static int h_event(console_call *c, nova_err *err)
{
    return result(c, console_event(c->db, c->ids[0], err), err);
}

enum { TAIL_MAX = 200 };

static int h_tail(console_call *c, nova_err *err)
{
    const char *q = c->req->query;
    int64_t after = -1, limit = TAIL_MAX;
    char raw[24];
    int has = http_query_text(q, "after", raw, sizeof raw, err);
    if (has < 0) return ERR_INVALID;
    /* after=0 is a valid start (everything retained) */
    if (has && strcmp(raw, "0") && http_query_id(q, "after", &after, err)) return ERR_INVALID;
    if (has && !strcmp(raw, "0")) after = 0;
    int rc = http_query_id(q, "limit", &limit, err);
    if (rc) return rc;
    if (limit > TAIL_MAX) return nova_fail(err, ERR_INVALID, "limit must be 1 to %d", TAIL_MAX);
    return result(c, console_tail(c->db, after, (long)limit, err), err);
}

static int h_sessions(console_call *c, nova_err *err)
{
    char user[160];
    int has = http_query_text(c->req->query, "user", user, sizeof user, err);
    if (has < 0) return ERR_INVALID;
    return result(c, console_sessions(c->db, has && *user ? user : NULL, err), err);
}

/* --- the pipeline ----------------------------------------------------------- */

/* The operator session the nova_admin cookie names: 0, ERR_FORBIDDEN when
 * there is none, or another kind when the storage could not say. */
static int check_operator(console_call *c, nova_err *err)
{
    char token[TOKEN_LEN + 1];
    nova_err why;
    int rc = c->req->cookie && !session_token_from_named_cookie(c->req->cookie, OPERATOR_COOKIE, token)
                 ? operator_session_check(c->db, token, &c->op, &why)
                 : ERR_FORBIDDEN;
    sodium_memzero(token, sizeof token);
    if (rc && rc != ERR_FORBIDDEN) *err = why;
    return rc;
}

static int check_body(console_call *c, nova_err *err)
{
    const http_request *req = c->req;
    if (req->body_too_large || req->body_len > (size_t)c->cfg->body_limit)
        return nova_fail(err, ERR_TOO_LARGE, "request body is too large");
    if (req->body_len == 0) return 0;
    const char *ct = req->content_type ? req->content_type : "";
    if (strncasecmp(ct, "application/json", 16) || (ct[16] && ct[16] != ';'))
        return nova_fail(err, ERR_INVALID, "a request body needs Content-Type: application/json");
    return json_parse_strict(req->body, req->body_len, (int)c->cfg->json_max_depth, &c->body, err);
}

/* begin → session → handler → commit or roll back. *status is set for the
 * pipeline's own answer (401). */
static int run(console_call *c, const console_route *route, int *status, nova_err *err)
{
    int rc = route->tx == TX_WRITE ? db_begin(c->db, err) : db_begin_read(c->db, err);
    if (rc) return rc;
    if (!route->open) {
        rc = check_operator(c, err);
        if (rc == ERR_FORBIDDEN) {
            nova_fail(err, ERR_FORBIDDEN, "not logged in as an operator");
            *status = 401;
        }
    }
    if (!rc) rc = route->handler(c, err);
    if (route->tx == TX_WRITE) {
        if (!rc) rc = db_commit(c->db, err);
        if (rc) db_rollback(c->db);
        outbox_discarded();
        return rc;
    }
    db_rollback(c->db);
    return rc;
}

void console_handle(nova_db *db, const http_request *req, http_response *resp)
{
    console_call c = {.db = db, .cfg = db->cfg, .req = req};
    nova_err err;
    nova_err_clear(&err);
    int status = 0;
    const char *path = req->path + sizeof PREFIX - 1;
    unsigned method = router_method(req->method), allowed = 0;
    const console_route *route = NULL;
    for (size_t i = 0; i < N_ROUTES; i++) {
        int64_t ids[ROUTE_MAX_IDS];
        size_t n;
        if (!router_match(routes[i].pattern, path, ids, &n)) continue;
        allowed |= routes[i].method;
        if (routes[i].method == method && !route) {
            route = &routes[i];
            memcpy(c.ids, ids, sizeof ids);
        }
    }
    if (!allowed) {
        nova_fail(&err, ERR_NOT_FOUND, "no such path: %.200s", req->path);
        goto fail;
    }
    if (!route) {
        char allow[64];
        router_allow_text(allowed, allow, sizeof allow);
        http_add_header(resp, "Allow", allow);
        nova_fail(&err, ERR_INVALID, "method not allowed");
        status = 405;
        goto fail;
    }
    if (method != METHOD_GET && !http_origin_ok(c.cfg, req)) {
        log_info("console: refused a cross-site %s %.200s", req->method, req->path);
        nova_fail(&err, ERR_FORBIDDEN, "cross-site request refused");
        goto fail;
    }
    if (method != METHOD_GET && check_body(&c, &err)) goto fail;
    if (route->prepare && route->prepare(&c, &err)) {
        if (err.kind == ERR_FORBIDDEN) status = 401;
        goto fail;
    }
    if (run(&c, route, &status, &err)) {
        if (route->open && err.kind == ERR_FORBIDDEN) status = 401;
        goto fail;
    }
    /* Refresh a stale session in a small write of its own (best effort). */
    if (c.op.stale && route->tx == TX_READ) {
        nova_err ignored;
        if (!db_begin(db, &ignored)) {
            if (operator_session_touch(db, c.op.id, &ignored) || db_commit(db, &ignored))
                db_rollback(db);
        }
    }
    if (c.set_cookie[0]) http_add_header(resp, "Set-Cookie", c.set_cookie);
    http_respond_json(resp, 200, c.data, NULL);
    goto done;
fail:
    if (!err.kind) nova_fail(&err, ERR_INTERNAL, "internal error");
    if (!status) status = err_http_status(err.kind);
    http_respond_json(resp, status, NULL, err.msg);
done:
    json_object_put(c.data);
    json_object_put(c.body);
    free(c.login_hash);
    sodium_memzero(c.set_cookie, sizeof c.set_cookie);
}
