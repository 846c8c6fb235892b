/* api.h - nova-api's request pipeline (API.md §1) and its handlers.
 *
 * api_handle runs: route (404) → method (405 + Allow) → OPTIONS → session
 * (403) → body checks (400/413) → handler → envelope. Handlers translate
 * the request into domain calls (common/) and the result into a view; they
 * never open transactions of their own making beyond begin/commit around
 * one domain operation. */
#ifndef NOVA_API_H
#define NOVA_API_H

#include <json-c/json.h>

#include "../common/db.h"
#include "../common/session.h"
#include "http.h"
#include "router.h"

typedef struct api_call {
    nova_db *db;
    const nova_config *cfg;
    const http_request *req;
    http_response *resp;
    session session; /* the caller's session (routes that need one) */
    int64_t ids[ROUTE_MAX_IDS];
    json_object *body; /* parsed body; NULL for an empty body or JSON null */
    json_object *data; /* handler result, put in the envelope (NULL: null) */
} api_call;

/* A handler returns 0 and sets c->data, or a failure status with err. */
typedef int (*api_handler)(api_call *c, nova_err *err);

typedef struct api_route {
    unsigned method;
    const char *pattern;
    api_handler handler;
    int needs_session;
} api_route;

extern const api_route api_routes[];
extern const size_t api_route_count;

/* Answer one request. resp must be initialised by the caller. */
void api_handle(nova_db *db, const http_request *req, http_response *resp);

/* Handlers: user.c */
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
int h_chat_list(api_call *c, nova_err *err);
int h_chat_get(api_call *c, nova_err *err);
int h_chat_delete(api_call *c, nova_err *err);
int h_chat_messages(api_call *c, nova_err *err);
int h_chat_filter(api_call *c, nova_err *err);
int h_chat_admin(api_call *c, nova_err *err);
int h_chat_set_owner(api_call *c, nova_err *err);
int h_chat_remove_member(api_call *c, nova_err *err);

/* Helpers shared by handlers. */

/* Run one domain write in a transaction: begin, op, commit; on failure
 * return its status from the handler (the pipeline rolls back). */
#define API_WRITE(c, err, op)                                                                      \
    do {                                                                                           \
        int rc_ = db_begin((c)->db, (err));                                                        \
        if (!rc_) rc_ = (op);                                                                      \
        if (!rc_) rc_ = db_commit((c)->db, (err));                                                 \
        if (rc_) return rc_;                                                                       \
    } while (0)

/* Answer with data (a view), or with the failure that made it NULL. */
int api_result(api_call *c, json_object *data, nova_err *err);

/* Set the session cookie (token) or clear it (NULL). */
void api_set_cookie(api_call *c, const char *token);
/* The session the request carried, if valid: 0 and *s, else nonzero. */
int api_optional_session(api_call *c, session *s);

#endif
