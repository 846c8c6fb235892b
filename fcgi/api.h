/* api.h - nova-api's request pipeline (API.md §1) and its handlers.
 *
 * api_handle runs: route (404) → method (405 + Allow) → OPTIONS → origin
 * of a state-changing request (403) → [prepare] → begin → session (403) →
 * body checks (400/413) → handler → commit → envelope. Handlers translate
 * the request into domain calls (common/) and the result into a view,
 * inside the transaction the route names; they never begin or commit. */
#ifndef NOVA_API_H
#define NOVA_API_H

#include <json-c/json.h>

#include "../common/db.h"
#include "../common/session.h"
#include "http.h"
#include "router.h"

/* What a route does with the caller's session cookie. */
enum api_session {
    SESSION_NONE,     /* not looked at */
    SESSION_REQUIRED, /* 403 "Invalid Session" without a live one */
    SESSION_OPTIONAL, /* register/login: a live one is ended by the handler */
};

typedef struct api_call {
    nova_db *db;
    const nova_config *cfg;
    const http_request *req;
    http_response *resp;
    session session;  /* the caller's live session (has_session) */
    bool has_session; /* SESSION_REQUIRED: always; SESSION_OPTIONAL: if carried */
    int64_t ids[ROUTE_MAX_IDS];
    json_object *body;    /* parsed body; NULL for an empty body or JSON null */
    json_object *data;    /* handler result, put in the envelope (NULL: null) */
    char set_cookie[256]; /* sent only once the transaction has committed */
    /* Results of a route's prepare step, for its handler. */
    struct {
        int64_t user_id;                       /* login: whose password was verified */
        char *verified_hash;                   /* the stored hash a password matched */
        char new_hash[crypto_pwhash_STRBYTES]; /* a new password, hashed */
        bool has_new_hash;
    } prep;
} api_call;

/* A handler returns 0 and sets c->data, or a failure status with err. */
typedef int (*api_handler)(api_call *c, nova_err *err);

/* A route of API.md §4. The pipeline (api_handle) owns the transaction:
 * it runs prepare (if any) outside of it, then opens `tx`, checks the
 * session inside it, runs handler (check → change → events → view), and
 * commits or rolls back. Handlers never begin or commit. prepare is the
 * place for work too slow to hold a lock for (argon2id): it may read the
 * database in autocommit, and its handler must re-check what it relied on. */
typedef struct api_route {
    unsigned method;
    const char *pattern;
    api_handler prepare;
    api_handler handler;
    enum api_session session;
    enum db_tx tx;   /* TX_READ or TX_WRITE */
    unsigned as_400; /* API_AS_400(kind) bits: kinds this endpoint answers with 400 */
} api_route;

/* Where API.md has an endpoint answer 400 for a kind whose own status is
 * another (err_http_status), e.g. "chat unknown → 400". */
#define API_AS_400(kind) (1u << (kind))
/* [ext] attachments: the body is raw bytes, not JSON (the handler reads
 * it; up to api_body_limit). */
#define API_RAW_BODY (1u << 31)

/* The status route answers a failure of this kind with. */
int api_status_of(const api_route *route, int kind);

extern const api_route api_routes[];
extern const size_t api_route_count;

/* Answer one request. resp must be initialised by the caller. */
void api_handle(nova_db *db, const http_request *req, http_response *resp);

/* Handlers: h_user.c (prepare steps: *_prepare) */
int h_user_register_prepare(api_call *c, nova_err *err);
int h_user_login_prepare(api_call *c, nova_err *err);
int h_user_patch_prepare(api_call *c, nova_err *err);
int h_user_register(api_call *c, nova_err *err);
int h_user_login(api_call *c, nova_err *err);
int h_user_logout(api_call *c, nova_err *err);
int h_user_get(api_call *c, nova_err *err);
int h_user_patch(api_call *c, nova_err *err);
int h_user_delete(api_call *c, nova_err *err);
int h_user_by_id(api_call *c, nova_err *err);

/* Handlers: h_friend.c */
int h_friend_group_add(api_call *c, nova_err *err);
int h_friend_group_list(api_call *c, nova_err *err);
int h_friend_group_get(api_call *c, nova_err *err);
int h_friend_group_patch(api_call *c, nova_err *err);
int h_friend_group_delete(api_call *c, nova_err *err);
int h_friend_find(api_call *c, nova_err *err);
int h_friend_invite(api_call *c, nova_err *err);
int h_friend_invitation_list(api_call *c, nova_err *err);
int h_friend_invitation_accept(api_call *c, nova_err *err);
int h_friend_invitation_decline(api_call *c, nova_err *err);
int h_friend_list(api_call *c, nova_err *err);
int h_friend_get(api_call *c, nova_err *err);
int h_friend_patch(api_call *c, nova_err *err);
int h_friend_delete(api_call *c, nova_err *err);

/* Handlers: h_chat.c */
int h_chat_new(api_call *c, nova_err *err);
int h_chat_invite(api_call *c, nova_err *err);
int h_chat_invitation_list(api_call *c, nova_err *err);
int h_chat_invitation_approve(api_call *c, nova_err *err);
int h_chat_invitation_decline(api_call *c, nova_err *err);
int h_chat_invitations_received(api_call *c, nova_err *err);
int h_chat_invitation_accept(api_call *c, nova_err *err);
int h_chat_invitation_refuse(api_call *c, nova_err *err);
int h_chat_list(api_call *c, nova_err *err);
int h_chat_get(api_call *c, nova_err *err);
int h_chat_delete(api_call *c, nova_err *err);
int h_chat_messages(api_call *c, nova_err *err);
int h_chat_filter(api_call *c, nova_err *err);
int h_chat_admin(api_call *c, nova_err *err);
int h_chat_set_owner(api_call *c, nova_err *err);
int h_chat_remove_member(api_call *c, nova_err *err);

/* Handlers: h_attach.c ([ext] attachments) */
int h_attach_upload(api_call *c, nova_err *err);
int h_attach_download(api_call *c, nova_err *err);
/* h_search.c ([ext] search) */
int h_search(api_call *c, nova_err *err);
/* The largest body the adapter reads for this request: body-limit, or
 * attachment-limit for an upload. */
long api_body_limit(const nova_config *cfg, const char *method, const char *path);

/* Helpers shared by handlers. */

/* Answer with data (a view), or with the failure that made it NULL. */
int api_result(api_call *c, json_object *data, nova_err *err);

/* Set the session cookie (token) or clear it (NULL): the header goes out
 * with the answer if the transaction commits. */
void api_set_cookie(api_call *c, const char *token);

#endif
