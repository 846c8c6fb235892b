/* h_friend.c - /friend endpoints (API.md §4 "Friend groups", "Friends"). */
#include <string.h>

#include "../common/access.h"
#include "../common/friend.h"
#include "../common/json_util.h"
#include "../common/validate.h"
#include "../common/view.h"
#include "api.h"

static int group_name_field(api_call *c, const char **name, nova_err *err)
{
    int rc;
    if ((rc = json_require_object(c->body, "body", err)) ||
        (rc = json_field_string(c->body, "group_name", true, name, NULL, err)) ||
        (rc = validate_length(*name, "group_name", 1, GROUP_NAME_MAX, err)))
        return rc;
    return 0;
}

int h_friend_group_add(api_call *c, nova_err *err)
{
    const char *name;
    int64_t id;
    int rc = group_name_field(c, &name, err);
    if (rc) return rc;
    if ((rc = friend_group_add(c->db, c->session.user_id, name, &id, err))) return rc;
    return api_result(c, view_friend_group(c->db, id, err), err);
}

int h_friend_group_list(api_call *c, nova_err *err)
{
    return api_result(c, friend_group_list(c->db, c->session.user_id, err), err);
}

int h_friend_group_get(api_call *c, nova_err *err)
{
    int rc = friend_group_check(c->db, c->session.user_id, c->ids[0], err);
    if (rc) return rc;
    return api_result(c, view_friend_group(c->db, c->ids[0], err), err);
}

int h_friend_group_patch(api_call *c, nova_err *err)
{
    const char *name;
    int rc = group_name_field(c, &name, err);
    if (rc) return rc;
    if ((rc = friend_group_rename(c->db, c->session.user_id, c->ids[0], name, err))) return rc;
    return api_result(c, view_friend_group(c->db, c->ids[0], err), err);
}

int h_friend_group_delete(api_call *c, nova_err *err)
{
    return friend_group_delete(c->db, c->session.user_id, c->ids[0], err);
}

int h_friend_find(api_call *c, nova_err *err)
{
    int64_t id = 0;
    const char *name = NULL;
    bool has_id, has_name;
    int rc;
    if ((rc = json_require_object(c->body, "body", err)) ||
        (rc = json_field_int(c->body, "id", false, &id, &has_id, err)) ||
        (rc = json_field_string(c->body, "name_contains", false, &name, &has_name, err)))
        return rc;
    return api_result(
        c, friend_find(c->db, c->session.user_id, has_id, id, has_name ? name : NULL, err), err);
}

int h_friend_invite(api_call *c, nova_err *err)
{
    int64_t target;
    const char *comment;
    int rc;
    if ((rc = json_require_object(c->body, "body", err)) ||
        (rc = json_field_int(c->body, "id", true, &target, NULL, err)) ||
        (rc = json_field_string(c->body, "comment", true, &comment, NULL, err)) ||
        (rc = validate_length(comment, "comment", 0, COMMENT_MAX, err)))
        return rc;
    /* Read, not judged: the domain checks it only when it is needed. */
    friend_source source = {.given = false};
    json_object *v;
    if (json_object_object_get_ex(c->body, "source", &v)) {
        source.given = true;
        source.search = json_object_is_type(v, json_type_string) &&
                        !strcmp(json_object_get_string(v), "search");
        if (!source.search && !json_is_int64(v, &source.chat_id)) source.chat_id = 0;
    }
    bool became_friends;
    if ((rc = friend_invite(c->db, c->session.user_id, target, comment, &source, &became_friends,
                            err)))
        return rc;
    if (became_friends)
        return api_result(c, view_friend(c->db, c->session.user_id, target, err), err);
    return 0;
}

int h_friend_invitation_list(api_call *c, nova_err *err)
{
    return api_result(c, friend_invitation_list(c->db, c->session.user_id, err), err);
}

int h_friend_invitation_accept(api_call *c, nova_err *err)
{
    int64_t inviter;
    int rc = friend_invitation_accept(c->db, c->session.user_id, c->ids[0], &inviter, err);
    if (rc) return rc;
    return api_result(c, view_friend(c->db, c->session.user_id, inviter, err), err);
}

int h_friend_invitation_decline(api_call *c, nova_err *err)
{
    return friend_invitation_decline(c->db, c->session.user_id, c->ids[0], err);
}

int h_friend_list(api_call *c, nova_err *err)
{
    return api_result(c, friend_list(c->db, c->session.user_id, err), err);
}

int h_friend_get(api_call *c, nova_err *err)
{
    int rc = access_friend(c->db, c->session.user_id, c->ids[0], err);
    if (rc) return rc;
    return api_result(c, view_friend(c->db, c->session.user_id, c->ids[0], err), err);
}

int h_friend_patch(api_call *c, nova_err *err)
{
    const char *nickname = NULL;
    int64_t group_id = 0;
    bool has_group;
    int rc;
    if ((rc = json_require_object(c->body, "body", err)) ||
        (rc = json_field_string(c->body, "nickname", false, &nickname, NULL, err)) ||
        (nickname && (rc = validate_length(nickname, "nickname", 0, NICKNAME_MAX, err))) ||
        (rc = json_field_int(c->body, "group_id", false, &group_id, &has_group, err)))
        return rc;
    if (has_group && group_id <= 0)
        return nova_fail(err, ERR_NOT_FOUND, "friend group %lld not found", (long long)group_id);
    if ((rc = friend_update(c->db, c->session.user_id, c->ids[0], nickname, group_id, err)))
        return rc;
    return api_result(c, view_friend(c->db, c->session.user_id, c->ids[0], err), err);
}

int h_friend_delete(api_call *c, nova_err *err)
{
    return friend_delete(c->db, c->session.user_id, c->ids[0], err);
}
