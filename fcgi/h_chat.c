/* h_chat.c - /chat endpoints (API.md §4 "Chats"). */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../common/chat.h"
#include "../common/json_util.h"
#include "../common/user.h"
#include "../common/validate.h"
#include "../common/view.h"
#include "api.h"

int h_chat_new(api_call *c, nova_err *err)
{
    const char *name;
    json_object *members;
    int rc;
    if ((rc = json_require_object(c->body, "body", err)) ||
        (rc = json_field_string(c->body, "chat_name", true, &name, NULL, err)) ||
        (rc = validate_length(name, "chat_name", 1, CHAT_NAME_MAX, err)) ||
        (rc = json_field_array(c->body, "chat_members", true, &members, NULL, err)))
        return rc;
    idlist ids = {0};
    for (size_t i = 0, n = json_object_array_length(members); i < n && !rc; i++) {
        int64_t id;
        if (!json_is_int64(json_object_array_get_idx(members, i), &id))
            rc = nova_fail(err, ERR_INVALID, "chat_members must be a list of user ids");
        else if (idlist_push(&ids, id))
            rc = nova_fail(err, ERR_INTERNAL, "out of memory");
    }
    int64_t chat_id = 0;
    if (!rc) rc = chat_create_group(c->db, c->session.user_id, name, &ids, &chat_id, err);
    idlist_free(&ids);
    if (rc) return rc;
    return api_result(c, view_chat(c->db, chat_id, c->session.user_id, err), err);
}

static int user_id_field(api_call *c, const char *key, int64_t *id, nova_err *err)
{
    int rc;
    if ((rc = json_require_object(c->body, "body", err)) ||
        (rc = json_field_int(c->body, key, true, id, NULL, err)))
        return rc;
    return 0;
}

int h_chat_invite(api_call *c, nova_err *err)
{
    int64_t user_id;
    int rc = user_id_field(c, "user_id", &user_id, err);
    if (rc) return rc;
    return chat_invite(c->db, c->session.user_id, c->ids[0], user_id, err);
}

int h_chat_invitation_list(api_call *c, nova_err *err)
{
    return api_result(c, chat_invitation_list(c->db, c->session.user_id, c->ids[0], err), err);
}

int h_chat_invitation_approve(api_call *c, nova_err *err)
{
    return chat_invitation_approve(c->db, c->session.user_id, c->ids[0], c->ids[1], err);
}

int h_chat_invitation_decline(api_call *c, nova_err *err)
{
    return chat_invitation_decline(c->db, c->session.user_id, c->ids[0], c->ids[1], err);
}

int h_chat_invitations_received(api_call *c, nova_err *err)
{
    return api_result(c, chat_invitations_received(c->db, c->session.user_id, err), err);
}

/* {"joined": bool}: whether the caller is a member now, or waits for the
 * owner's or an admin's approval. */
int h_chat_invitation_accept(api_call *c, nova_err *err)
{
    bool joined;
    int rc = chat_invitation_accept(c->db, c->session.user_id, c->ids[0], &joined, err);
    if (rc) return rc;
    c->data = json_object_new_object();
    json_object_object_add(c->data, "joined", json_object_new_boolean(joined));
    return 0;
}

int h_chat_invitation_refuse(api_call *c, nova_err *err)
{
    return chat_invitation_refuse(c->db, c->session.user_id, c->ids[0], err);
}

int h_chat_list(api_call *c, nova_err *err)
{
    return api_result(c, chat_list(c->db, c->session.user_id, err), err);
}

int h_chat_get(api_call *c, nova_err *err)
{
    chat_info chat;
    int rc =
        access_chat(c->db, c->session.user_id, c->ids[0], NEED_MEMBER, false, &chat, NULL, err);
    if (rc) return rc;
    return api_result(c, view_chat_relation(c->db, c->ids[0], c->session.user_id, err), err);
}

int h_chat_delete(api_call *c, nova_err *err)
{
    return chat_delete_or_leave(c->db, c->session.user_id, c->ids[0], err);
}

int h_chat_messages(api_call *c, nova_err *err)
{
    chat_info chat;
    message_query q = {0};
    int64_t limit = 0;
    int rc;
    if ((rc = access_chat(c->db, c->session.user_id, c->ids[0], NEED_MEMBER, false, &chat, NULL,
                          err)) ||
        (rc = http_query_id(c->req->query, "limit", &limit, err)) ||
        (rc = http_query_id(c->req->query, "before", &q.before, err)))
        return rc;
    q.limit = (long)limit;
    return api_result(c, view_messages(c->db, c->ids[0], c->session.user_id, &q, err), err);
}

/* begin_time/end_time: a number, or a string holding one (API.md §4). */
static int time_field(json_object *body, const char *key, bool *has, double *out, nova_err *err)
{
    json_object *v;
    *has = json_object_object_get_ex(body, key, &v);
    if (!*has) return 0;
    int64_t i;
    if (json_is_int64(v, &i)) {
        *out = (double)i;
        return 0;
    }
    if (json_object_is_type(v, json_type_double)) {
        *out = json_object_get_double(v);
        return 0;
    }
    if (json_object_is_type(v, json_type_string)) {
        const char *s = json_object_get_string(v);
        char *end;
        errno = 0;
        *out = strtod(s, &end);
        if (*s && !errno && !*end && isfinite(*out) && !strchr(" \t\n\r\f\v", s[0])) return 0;
    }
    return nova_fail(err, ERR_INVALID, "field '%s' must be a time: a number or a numeric string",
                     key);
}

int h_chat_filter(api_call *c, nova_err *err)
{
    chat_info chat;
    message_query q = {0};
    json_object *senders = NULL;
    bool has_senders;
    int rc;
    if ((rc = access_chat(c->db, c->session.user_id, c->ids[0], NEED_MEMBER, false, &chat, NULL,
                          err)) ||
        (rc = json_require_object(c->body, "body", err)) ||
        (rc = time_field(c->body, "begin_time", &q.has_begin, &q.begin, err)) ||
        (rc = time_field(c->body, "end_time", &q.has_end, &q.end, err)) ||
        (rc = json_field_array(c->body, "sender", false, &senders, &has_senders, err)))
        return rc;
    if (!q.has_begin && !q.has_end && !has_senders)
        return nova_fail(err, ERR_INVALID, "give at least one of begin_time, end_time, sender");
    idlist ids = {0};
    for (size_t i = 0, n = has_senders ? json_object_array_length(senders) : 0; i < n && !rc; i++) {
        int64_t id;
        enum chat_role role = ROLE_NONE;
        if (!json_is_int64(json_object_array_get_idx(senders, i), &id))
            rc = nova_fail(err, ERR_INVALID, "sender must be a list of user ids");
        else if (id != USER_SYSTEM_ID && id != USER_DELETED_ID &&
                 !(rc = access_chat_role(c->db, &chat, id, &role, err)) && role == ROLE_NONE)
            rc = nova_fail(err, ERR_INVALID, "sender %lld is not a member of this chat",
                           (long long)id);
        if (!rc && idlist_push(&ids, id)) rc = nova_fail(err, ERR_INTERNAL, "out of memory");
    }
    if (!rc) {
        q.senders = has_senders ? &ids : NULL;
        c->data = view_messages(c->db, c->ids[0], c->session.user_id, &q, err);
        if (!c->data) rc = err->kind;
    }
    idlist_free(&ids);
    return rc;
}

int h_chat_admin(api_call *c, nova_err *err)
{
    if (!json_object_is_type(c->body, json_type_boolean))
        return nova_fail(err, ERR_INVALID, "the body must be true or false");
    bool is_admin = json_object_get_boolean(c->body);
    return chat_set_admin(c->db, c->session.user_id, c->ids[0], c->ids[1], is_admin, err);
}

int h_chat_set_owner(api_call *c, nova_err *err)
{
    int64_t owner;
    int rc = user_id_field(c, "chat_owner", &owner, err);
    if (rc) return rc;
    return chat_set_owner(c->db, c->session.user_id, c->ids[0], owner, err);
}

int h_chat_remove_member(api_call *c, nova_err *err)
{
    return chat_remove_member(c->db, c->session.user_id, c->ids[0], c->ids[1], err);
}
