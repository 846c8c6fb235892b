/* shapes.c - API.md §3 structures and §5 payloads, checked. */
#include "shapes.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/json_util.h"
#include "../../common/validate.h"
#include "world.h"

/* --- small helpers ------------------------------------------------------- */

static const char *type_name(json_object *v)
{
    return v ? json_type_to_name(json_object_get_type(v)) : "null";
}

/* The end of the key list of keys_exactly (a typed null pointer). */
#define KEYS_END ((const char *)NULL)

/* v must be an object with exactly the given keys (KEYS_END-terminated). */
static void keys_exactly(json_object *v, const char *where, ...)
{
    if (!json_object_is_type(v, json_type_object) || !v)
        fuzz_fail("%s: expected an object, got %s", where, type_name(v));
    va_list ap;
    va_start(ap, where);
    int n = 0;
    for (const char *k = va_arg(ap, const char *); k; k = va_arg(ap, const char *)) {
        if (!json_object_object_get_ex(v, k, NULL)) fuzz_fail("%s: missing key '%s'", where, k);
        n++;
    }
    va_end(ap);
    if (json_object_object_length(v) != n) {
        json_object_object_foreach(v, key, val)
        {
            (void)val;
            bool listed = false;
            va_start(ap, where);
            for (const char *k = va_arg(ap, const char *); k && !listed;
                 k = va_arg(ap, const char *))
                listed = !strcmp(k, key);
            va_end(ap);
            if (!listed) fuzz_fail("%s: unexpected key '%s'", where, key);
        }
    }
}

static json_object *field(json_object *obj, const char *key)
{
    json_object *v = NULL;
    json_object_object_get_ex(obj, key, &v);
    return v;
}

static void want_int(json_object *obj, const char *key, int64_t min, const char *where)
{
    json_object *v = field(obj, key);
    int64_t i;
    if (!json_is_int64(v, &i))
        fuzz_fail("%s.%s: expected an integer, got %s", where, key, type_name(v));
    if (i < min) fuzz_fail("%s.%s: %lld is below %lld", where, key, (long long)i, (long long)min);
}

static void want_string(json_object *obj, const char *key, bool non_empty, const char *where)
{
    json_object *v = field(obj, key);
    if (!json_object_is_type(v, json_type_string) || !v)
        fuzz_fail("%s.%s: expected a string, got %s", where, key, type_name(v));
    if (non_empty && !json_object_get_string_len(v)) fuzz_fail("%s.%s: empty string", where, key);
    if (utf8_length(json_object_get_string(v)) < 0) fuzz_fail("%s.%s: not valid UTF-8", where, key);
}

static void want_bool(json_object *obj, const char *key, const char *where)
{
    json_object *v = field(obj, key);
    if (!json_object_is_type(v, json_type_boolean) || !v)
        fuzz_fail("%s.%s: expected a boolean, got %s", where, key, type_name(v));
}

static void want_number(json_object *obj, const char *key, const char *where)
{
    json_object *v = field(obj, key);
    if (!v || !(json_object_is_type(v, json_type_double) || json_object_is_type(v, json_type_int)))
        fuzz_fail("%s.%s: expected a number, got %s", where, key, type_name(v));
}

int64_t shape_int(json_object *obj, const char *key)
{
    int64_t i = 0;
    json_is_int64(field(obj, key), &i);
    return i;
}

const char *shape_str(json_object *obj, const char *key)
{
    json_object *v = field(obj, key);
    return json_object_is_type(v, json_type_string) && v ? json_object_get_string(v) : "";
}

static void sub(char *buf, size_t size, const char *where, const char *key)
{
    snprintf(buf, size, "%s.%s", where, key);
}

void shape_array_of(json_object *v, shape_fn f, const char *where)
{
    if (!json_object_is_type(v, json_type_array) || !v)
        fuzz_fail("%s: expected an array, got %s", where, type_name(v));
    char w[256];
    for (size_t i = 0, n = json_object_array_length(v); i < n; i++) {
        snprintf(w, sizeof w, "%s[%zu]", where, i);
        f(json_object_array_get_idx(v, i), w);
    }
}

void shape_null(json_object *v, const char *where)
{
    if (v) fuzz_fail("%s: expected null, got %s", where, type_name(v));
}

/* Ids of an array of users, checked distinct. */
static size_t user_ids(json_object *arr, int64_t *ids, size_t cap, const char *where)
{
    size_t n = json_object_array_length(arr);
    if (n > cap) fuzz_fail("%s: more than %zu users", where, cap);
    for (size_t i = 0; i < n; i++) {
        ids[i] = shape_int(json_object_array_get_idx(arr, i), "id");
        for (size_t j = 0; j < i; j++)
            if (ids[j] == ids[i]) fuzz_fail("%s: user %lld listed twice", where, (long long)ids[i]);
    }
    return n;
}

static bool in_ids(const int64_t *ids, size_t n, int64_t id)
{
    for (size_t i = 0; i < n; i++)
        if (ids[i] == id) return true;
    return false;
}

/* --- users and friends -------------------------------------------------- */

static void user_common(json_object *v, const char *where)
{
    want_int(v, "id", 1, where);
    want_string(v, "user_name", true, where);
    want_string(v, "avatar_url", false, where);
    int64_t id = shape_int(v, "id");
    const char *name = shape_str(v, "user_name");
    nova_err err;
    if (id == 1 || id == 2) {
        if (strcmp(name, id == 1 ? "#SYSTEM" : "#DELETED"))
            fuzz_fail("%s: system user %lld is named '%s'", where, (long long)id, name);
    } else if (validate_user_name(name, &err)) {
        fuzz_fail("%s: user %lld has an invalid name '%s'", where, (long long)id, name);
    } else if (validate_avatar_url(shape_str(v, "avatar_url"), &err) ||
               !shape_str(v, "avatar_url")[0]) {
        fuzz_fail("%s: user %lld has an invalid avatar_url", where, (long long)id);
    }
}

void shape_user_basic(json_object *v, const char *where)
{
    keys_exactly(v, where, "id", "user_name", "avatar_url", KEYS_END);
    user_common(v, where);
}

void shape_user_detailed(json_object *v, const char *where)
{
    keys_exactly(v, where, "id", "user_name", "avatar_url", "email", "phone", KEYS_END);
    user_common(v, where);
    want_string(v, "email", false, where);
    want_string(v, "phone", false, where);
    nova_err err;
    if (validate_email(shape_str(v, "email"), &err) || validate_phone(shape_str(v, "phone"), &err))
        fuzz_fail("%s: stored email or phone is invalid", where);
}

void shape_friend_group(json_object *v, const char *where)
{
    keys_exactly(v, where, "group_id", "group_name", KEYS_END);
    want_int(v, "group_id", 1, where);
    want_string(v, "group_name", false, where);
    if (utf8_length(shape_str(v, "group_name")) > 100)
        fuzz_fail("%s: group_name longer than 100 characters", where);
}

void shape_friend(json_object *v, const char *where)
{
    char w[256];
    keys_exactly(v, where, "friend", "nickname", "group", KEYS_END);
    sub(w, sizeof w, where, "friend");
    shape_user_detailed(field(v, "friend"), w);
    want_string(v, "nickname", false, where);
    if (utf8_length(shape_str(v, "nickname")) > 100)
        fuzz_fail("%s: nickname longer than 100 characters", where);
    sub(w, sizeof w, where, "group");
    shape_friend_group(field(v, "group"), w);
    int64_t id = shape_int(field(v, "friend"), "id");
    if (id <= 2) fuzz_fail("%s: a system user as a friend", where);
}

void shape_friend_invitation(json_object *v, const char *where)
{
    char w[256];
    keys_exactly(v, where, "id", "sender", "receiver", "comment", "source", KEYS_END);
    want_int(v, "id", 1, where);
    sub(w, sizeof w, where, "sender");
    shape_user_basic(field(v, "sender"), w);
    sub(w, sizeof w, where, "receiver");
    shape_user_basic(field(v, "receiver"), w);
    want_string(v, "comment", false, where);
    json_object *source = field(v, "source");
    if (json_object_is_type(source, json_type_string) && source) {
        if (strcmp(json_object_get_string(source), "search"))
            fuzz_fail("%s.source: '%s' is neither \"search\" nor a chat id", where,
                      json_object_get_string(source));
    } else {
        want_int(v, "source", 1, where);
    }
    if (shape_int(field(v, "sender"), "id") == shape_int(field(v, "receiver"), "id"))
        fuzz_fail("%s: an invitation to oneself", where);
}

/* --- messages ------------------------------------------------------------ */

/* [ext] edit and react: edited_at null or a time not before send_time
 * (never on a system message); reactions [{emoji, count >= 1, me}],
 * each emoji once. */
static void shape_edited_at(json_object *v, const char *where)
{
    json_object *e = field(v, "edited_at");
    if (!e) return;
    want_number(v, "edited_at", where);
    if (json_object_get_double(e) < json_object_get_double(field(v, "send_time")))
        fuzz_fail("%s: edited before it was sent", where);
    if (shape_int(field(v, "sender"), "id") == 1)
        fuzz_fail("%s: a system message with edited_at", where);
}

static void shape_reactions(json_object *v, const char *where)
{
    if (!json_object_is_type(v, json_type_array)) fuzz_fail("%s: not an array", where);
    for (size_t i = 0, n = json_object_array_length(v); i < n; i++) {
        json_object *r = json_object_array_get_idx(v, i);
        keys_exactly(r, where, "emoji", "count", "me", KEYS_END);
        want_string(r, "emoji", true, where);
        want_int(r, "count", 1, where);
        want_bool(r, "me", where);
        for (size_t k = 0; k < i; k++)
            if (!strcmp(shape_str(json_object_array_get_idx(v, k), "emoji"), shape_str(r, "emoji")))
                fuzz_fail("%s: emoji %s twice", where, shape_str(r, "emoji"));
    }
}

static void message_common(json_object *v, const char *where)
{
    char w[256];
    want_int(v, "message_id", 1, where);
    want_int(v, "chat_id", 1, where);
    want_string(v, "message", true, where);
    want_number(v, "send_time", where);
    sub(w, sizeof w, where, "sender");
    shape_user_basic(field(v, "sender"), w);
    json_object *reply = field(v, "reply_to_id");
    if (reply) want_int(v, "reply_to_id", 1, where);
    want_bool(v, "deleted", where);
    if (reply && shape_int(v, "reply_to_id") >= shape_int(v, "message_id"))
        fuzz_fail("%s: replies to a message that is not older", where);
    /* A recalled message is rewritten (API.md §5 recall_message). */
    if (!strcmp(shape_str(v, "message"), "Message recalled") &&
        shape_int(field(v, "sender"), "id") == 2 && !json_object_get_boolean(field(v, "deleted")))
        fuzz_fail("%s: a recalled message that is not deleted", where);
}

void shape_message_basic(json_object *v, const char *where)
{
    keys_exactly(v, where, "message_id", "chat_id", "message", "send_time", "sender", "reply_to_id",
                 "deleted", "edited_at", KEYS_END);
    message_common(v, where);
    shape_edited_at(v, where);
}

void shape_attachment(json_object *v, const char *where)
{
    keys_exactly(v, where, "attachment_id", "chat_id", "message_id", "name", "size", "mime", "url",
                 "upload_time", KEYS_END);
    if (shape_int(v, "attachment_id") <= 0 || shape_int(v, "size") <= 0 ||
        !shape_str(v, "name")[0] || !shape_str(v, "mime")[0])
        fuzz_fail("%s: a malformed attachment", where);
}

bool field_is_set(json_object *obj, const char *key)
{
    json_object *v;
    return json_object_object_get_ex(obj, key, &v) && v;
}

void shape_message_detailed(json_object *v, const char *where)
{
    char w[256];
    keys_exactly(v, where, "message_id", "chat_id", "message", "send_time", "sender", "reply_to_id",
                 "deleted", "read_users", "reply_to", "replied_by", "edited_at", "reactions",
                 "attachment", KEYS_END);
    message_common(v, where);
    shape_edited_at(v, where);
    sub(w, sizeof w, where, "reactions");
    shape_reactions(field(v, "reactions"), w);
    int64_t id = shape_int(v, "message_id"), chat = shape_int(v, "chat_id");
    json_object *file = field(v, "attachment"); /* [ext] attachments */
    if (file) {
        shape_attachment(file, where);
        if (shape_int(file, "message_id") != id || shape_int(file, "chat_id") != chat)
            fuzz_fail("%s: an attachment of another message", where);
    }
    sub(w, sizeof w, where, "read_users");
    shape_array_of(field(v, "read_users"), shape_user_basic, w);
    int64_t ids[256];
    user_ids(field(v, "read_users"), ids, 256, w);
    json_object *parent = field(v, "reply_to");
    sub(w, sizeof w, where, "reply_to");
    if (!field(v, "reply_to_id") != !parent)
        fuzz_fail("%s: reply_to and reply_to_id disagree", where);
    if (parent) {
        shape_message_basic(parent, w);
        if (shape_int(parent, "message_id") != shape_int(v, "reply_to_id") ||
            shape_int(parent, "chat_id") != chat)
            fuzz_fail("%s: not the message replied to, or in another chat", w);
    }
    json_object *by = field(v, "replied_by");
    sub(w, sizeof w, where, "replied_by");
    shape_array_of(by, shape_message_basic, w);
    for (size_t i = 0, n = json_object_array_length(by); i < n; i++) {
        json_object *r = json_object_array_get_idx(by, i);
        if (shape_int(r, "reply_to_id") != id || shape_int(r, "chat_id") != chat)
            fuzz_fail("%s[%zu]: not a reply to message %lld of chat %lld", w, i, (long long)id,
                      (long long)chat);
    }
}

/* --- chats --------------------------------------------------------------- */

void shape_chat(json_object *v, const char *where)
{
    char w[256];
    keys_exactly(v, where, "chat_id", "chat_name", "chat_owner", "chat_admins", "chat_members",
                 "last_message", KEYS_END);
    want_int(v, "chat_id", 1, where);
    want_string(v, "chat_name", false, where);
    sub(w, sizeof w, where, "chat_owner");
    shape_user_basic(field(v, "chat_owner"), w);
    json_object *admins = field(v, "chat_admins"), *members = field(v, "chat_members");
    sub(w, sizeof w, where, "chat_admins");
    shape_array_of(admins, shape_user_basic, w);
    int64_t admin_ids[512], member_ids[512];
    size_t n_admins = user_ids(admins, admin_ids, 512, w);
    sub(w, sizeof w, where, "chat_members");
    shape_array_of(members, shape_user_basic, w);
    size_t n_members = user_ids(members, member_ids, 512, w);

    int64_t owner = shape_int(field(v, "chat_owner"), "id");
    if (!in_ids(member_ids, n_members, owner))
        fuzz_fail("%s: the owner %lld is not among the members", where, (long long)owner);
    if (in_ids(admin_ids, n_admins, owner))
        fuzz_fail("%s: the owner %lld is listed as an admin", where, (long long)owner);
    for (size_t i = 0; i < n_admins; i++)
        if (!in_ids(member_ids, n_members, admin_ids[i]))
            fuzz_fail("%s: admin %lld is not a member", where, (long long)admin_ids[i]);
    const char *name = shape_str(v, "chat_name");
    long len = utf8_length(name);
    if (!*name && (n_members != 2 || n_admins))
        fuzz_fail("%s: a private chat with %zu members and %zu admins", where, n_members, n_admins);
    if (len > 60) fuzz_fail("%s: chat_name longer than 60 characters", where);

    json_object *last = field(v, "last_message");
    sub(w, sizeof w, where, "last_message");
    if (json_object_is_type(last, json_type_string) && last) {
        if (json_object_get_string_len(last)) fuzz_fail("%s: a non-empty string", w);
    } else {
        shape_message_basic(last, w);
        if (shape_int(last, "chat_id") != shape_int(v, "chat_id"))
            fuzz_fail("%s: a message of another chat", w);
        if (json_object_get_boolean(field(last, "deleted")))
            fuzz_fail("%s: a recalled or deleted message", w);
    }
}

void shape_chat_relation(json_object *v, const char *where)
{
    char w[256];
    keys_exactly(v, where, "chat", "nickname", "unread_count", KEYS_END);
    sub(w, sizeof w, where, "chat");
    shape_chat(field(v, "chat"), w);
    want_string(v, "nickname", false, where);
    want_int(v, "unread_count", 0, where);
}

void shape_chat_invitation(json_object *v, const char *where)
{
    char w[256];
    if (json_object_object_get_ex(v, "accepted", NULL)) { /* [ext] the consent flow */
        keys_exactly(v, where, "invitation_id", "chat_id", "user", "invited_by", "created_at",
                     "accepted", "approved", KEYS_END);
        want_bool(v, "accepted", where);
        want_bool(v, "approved", where);
    } else {
        keys_exactly(v, where, "invitation_id", "chat_id", "user", "invited_by", "created_at",
                     KEYS_END);
    }
    want_int(v, "invitation_id", 1, where);
    want_int(v, "chat_id", 1, where);
    sub(w, sizeof w, where, "user");
    shape_user_basic(field(v, "user"), w);
    sub(w, sizeof w, where, "invited_by");
    shape_user_basic(field(v, "invited_by"), w);
    want_number(v, "created_at", where);
}

/* [ext] ReceivedChatInvitation (docs/API.md, the consent flow). */
void shape_received_invitation(json_object *v, const char *where)
{
    char w[256];
    keys_exactly(v, where, "chat_id", "chat_name", "created_at", "approved", "accepted",
                 "invited_by", KEYS_END);
    want_int(v, "chat_id", 1, where);
    if (!shape_str(v, "chat_name")[0]) fuzz_fail("%s: an invitation to a private chat", where);
    want_number(v, "created_at", where);
    want_bool(v, "approved", where);
    want_bool(v, "accepted", where);
    sub(w, sizeof w, where, "invited_by");
    shape_array_of(field(v, "invited_by"), shape_user_basic, w);
    if (!json_object_array_length(field(v, "invited_by"))) fuzz_fail("%s: nobody invited", where);
}

/* --- notifications (API.md §5) ------------------------------------------ */

static const char *const events[] = {
    "logout",
    "profile_change",
    "new_group_chat",
    "new_message",
    "message_recalled",
    "message_deleted",
    "messages_read",
    "admin_state_change",
    "owner_state_change",
    "member_added",
    "member_deleted",
    "chat_deleted",
    "chat_invitation",
    "friend_created",
    "friend_deleted",
    /* [ext] the consent flow of group invitations */
    "chat_invitation_received",
    "chat_invitation_accepted",
    "chat_invitation_declined",
    "chat_invitation_withdrawn",
    /* [ext] edit and react */
    "message_edited",
    "reaction_added",
    "reaction_removed",
};
/* [ext] Presence and typing (docs/API.md) */
static const char *const ext_events[] = {"presence", "typing"};

bool shape_known_event(const char *action)
{
    for (size_t i = 0; i < sizeof events / sizeof events[0]; i++)
        if (!strcmp(events[i], action)) return true;
    for (size_t i = 0; i < sizeof ext_events / sizeof ext_events[0]; i++)
        if (!strcmp(ext_events[i], action)) return true;
    return false;
}

void shape_event_data(const char *action, json_object *d, const char *where)
{
    char w[256];
    if (!strcmp(action, "logout") || !strcmp(action, "profile_change")) {
        shape_null(d, where);
    } else if (!strcmp(action, "new_group_chat")) {
        keys_exactly(d, where, "chat_id", KEYS_END);
        want_int(d, "chat_id", 1, where);
    } else if (!strcmp(action, "new_message")) {
        keys_exactly(d, where, "message", KEYS_END);
        sub(w, sizeof w, where, "message");
        shape_message_detailed(field(d, "message"), w);
    } else if (!strcmp(action, "message_recalled") || !strcmp(action, "message_deleted")) {
        keys_exactly(d, where, "message_id", KEYS_END);
        want_int(d, "message_id", 1, where);
    } else if (!strcmp(action, "messages_read") || !strcmp(action, "member_added") ||
               !strcmp(action, "member_deleted")) {
        keys_exactly(d, where, "chat_id", "user_id", KEYS_END);
        want_int(d, "chat_id", 1, where);
        want_int(d, "user_id", 3, where);
    } else if (!strcmp(action, "admin_state_change")) {
        keys_exactly(d, where, "chat_id", "user_id", "is_admin", KEYS_END);
        want_int(d, "chat_id", 1, where);
        want_int(d, "user_id", 3, where);
        want_bool(d, "is_admin", where);
    } else if (!strcmp(action, "owner_state_change")) {
        keys_exactly(d, where, "chat_id", "owner_id", KEYS_END);
        want_int(d, "chat_id", 1, where);
        want_int(d, "owner_id", 3, where);
    } else if (!strcmp(action, "chat_deleted")) {
        keys_exactly(d, where, "chat", KEYS_END);
        sub(w, sizeof w, where, "chat");
        shape_chat(field(d, "chat"), w);
        if (!shape_str(field(d, "chat"), "chat_name")[0])
            fuzz_fail("%s: chat_deleted for a private chat", where);
    } else if (!strcmp(action, "chat_invitation")) {
        keys_exactly(d, where, "invitation", KEYS_END);
        sub(w, sizeof w, where, "invitation");
        shape_chat_invitation(field(d, "invitation"), w);
    } else if (!strcmp(action, "chat_invitation_received")) {
        keys_exactly(d, where, "invitation", KEYS_END);
        sub(w, sizeof w, where, "invitation");
        shape_received_invitation(field(d, "invitation"), w);
    } else if (!strcmp(action, "chat_invitation_accepted") ||
               !strcmp(action, "chat_invitation_declined")) {
        keys_exactly(d, where, "chat_id", "user", KEYS_END);
        want_int(d, "chat_id", 1, where);
        sub(w, sizeof w, where, "user");
        shape_user_basic(field(d, "user"), w);
    } else if (!strcmp(action, "chat_invitation_withdrawn")) {
        keys_exactly(d, where, "chat_id", KEYS_END);
        want_int(d, "chat_id", 1, where);
    } else if (!strcmp(action, "friend_created") || !strcmp(action, "friend_deleted")) {
        keys_exactly(d, where, "friend", KEYS_END);
        sub(w, sizeof w, where, "friend");
        shape_user_detailed(field(d, "friend"), w);
    } else if (!strcmp(action, "presence")) {
        keys_exactly(d, where, "user", "online", KEYS_END);
        sub(w, sizeof w, where, "user");
        shape_user_basic(field(d, "user"), w);
        want_bool(d, "online", where);
    } else if (!strcmp(action, "typing")) {
        keys_exactly(d, where, "chat_id", "user", KEYS_END);
        want_int(d, "chat_id", 1, where);
        sub(w, sizeof w, where, "user");
        shape_user_basic(field(d, "user"), w);
    } else if (!strcmp(action, "message_edited")) {
        keys_exactly(d, where, "message_id", "chat_id", "message", "edited_at", KEYS_END);
        want_int(d, "message_id", 1, where);
        want_int(d, "chat_id", 1, where);
        want_string(d, "message", true, where);
        if (field(d, "edited_at")) want_number(d, "edited_at", where); /* null: a no-op, unedited */
    } else if (!strcmp(action, "reaction_added") || !strcmp(action, "reaction_removed")) {
        keys_exactly(d, where, "message_id", "chat_id", "user_id", "emoji", "count", KEYS_END);
        want_int(d, "message_id", 1, where);
        want_int(d, "chat_id", 1, where);
        want_int(d, "user_id", 3, where);
        want_string(d, "emoji", true, where);
        want_int(d, "count", !strcmp(action, "reaction_added") ? 1 : 0, where);
    } else {
        fuzz_fail("%s: unknown notification '%s'", where, action);
    }
}

/* --- bodies -------------------------------------------------------------- */

json_object *shape_parse(const char *text, size_t len, const char *where)
{
    nova_err err;
    nova_err_clear(&err);
    json_object *v = NULL;
    if (json_parse_strict(text, len, 1000, &v, &err))
        fuzz_fail("%s: not valid JSON (%s): %.*s", where, err.msg, (int)(len > 300 ? 300 : len),
                  text);
    return v;
}

json_object *shape_envelope(const char *body, size_t len, int status, json_object **root,
                            const char *where)
{
    if (!body || !len) fuzz_fail("%s: status %d with an empty body", where, status);
    json_object *env = shape_parse(body, len, where);
    *root = env;
    if (status == 200) {
        keys_exactly(env, where, "ok", "data", KEYS_END);
        json_object *ok = field(env, "ok");
        if (!json_object_is_type(ok, json_type_boolean) || !ok || !json_object_get_boolean(ok))
            fuzz_fail("%s: 200 without \"ok\": true", where);
        return field(env, "data");
    }
    keys_exactly(env, where, "ok", "error", KEYS_END);
    json_object *ok = field(env, "ok");
    if (!json_object_is_type(ok, json_type_boolean) || !ok || json_object_get_boolean(ok))
        fuzz_fail("%s: status %d without \"ok\": false", where, status);
    want_string(env, "error", true, where);
    return NULL;
}
