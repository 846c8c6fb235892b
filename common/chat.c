/* chat.c - private and group chats. */
#include "chat.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_util.h"
#include "message.h"
#include "outbox.h"
#include "user.h"
#include "view.h"

static const char SQL_CHAT_INSERT[] = "INSERT INTO chats (name, owner_id, created_at) "
                                      "VALUES (?, ?, ?) RETURNING id";
static const char SQL_MEMBER_INSERT[] =
    "INSERT INTO chat_members (chat_id, user_id, joined_at) VALUES (?, ?, ?)";
static const char SQL_RELATION_UPSERT[] =
    "INSERT INTO chat_relations (chat_id, user_id, last_read_id, read_count) "
    "VALUES (?1, ?2, (SELECT coalesce(max(id), 0) FROM messages WHERE chat_id = ?1), "
    "(SELECT message_count FROM chats WHERE id = ?1)) "
    "ON CONFLICT (chat_id, user_id) DO UPDATE SET last_read_id = CASE WHEN "
    "excluded.last_read_id > chat_relations.last_read_id THEN excluded.last_read_id ELSE "
    "chat_relations.last_read_id END, read_count = CASE WHEN "
    "excluded.last_read_id > chat_relations.last_read_id THEN excluded.read_count ELSE "
    "chat_relations.read_count END";
static const char SQL_CHAT_DELETE[] = "DELETE FROM chats WHERE id = ?";

int chat_add_member(nova_db *db, int64_t chat_id, int64_t user_id, nova_err *err)
{
    db_stmt *st = db_prepare(db, SQL_MEMBER_INSERT);
    if (!st) return nova_fail(err, ERR_INTERNAL, "internal error");
    db_bind_i64(st, 1, chat_id);
    db_bind_i64(st, 2, user_id);
    db_bind_double(st, 3, nova_now());
    int rc = db_exec_done(db, st, err);
    if (rc) return rc;
    st = db_prepare(db, SQL_RELATION_UPSERT);
    if (!st) return nova_fail(err, ERR_INTERNAL, "internal error");
    db_bind_i64(st, 1, chat_id);
    db_bind_i64(st, 2, user_id);
    return db_exec_done(db, st, err);
}

static int chat_insert(nova_db *db, const char *name, int64_t owner, int64_t *chat_id,
                       nova_err *err)
{
    db_stmt *st = db_prepare(db, SQL_CHAT_INSERT);
    if (!st) return nova_fail(err, ERR_INTERNAL, "internal error");
    db_bind_text(st, 1, name);
    db_bind_i64(st, 2, owner);
    db_bind_double(st, 3, nova_now());
    return db_insert_id(db, st, chat_id, err);
}

int chat_create_private(nova_db *db, int64_t owner, int64_t other, int64_t *chat_id, nova_err *err)
{
    int rc;
    if ((rc = chat_insert(db, "", owner, chat_id, err)) ||
        (rc = chat_add_member(db, *chat_id, owner, err)) ||
        (rc = chat_add_member(db, *chat_id, other, err)))
        return rc;
    return 0;
}

int chat_destroy(nova_db *db, int64_t chat_id, nova_err *err)
{
    db_stmt *st = db_prepare(db, SQL_CHAT_DELETE);
    if (!st) return nova_fail(err, ERR_INTERNAL, "internal error");
    db_bind_i64(st, 1, chat_id);
    return db_exec_done(db, st, err);
}

/* --- group chats -------------------------------------------------------- */

static const char SQL_MEMBER_SET_ADMIN[] =
    "UPDATE chat_members SET is_admin = ? WHERE chat_id = ? AND user_id = ?";
static const char SQL_MEMBER_DELETE[] =
    "DELETE FROM chat_members WHERE chat_id = ? AND user_id = ?";
static const char SQL_CHAT_SET_OWNER[] = "UPDATE chats SET owner_id = ? WHERE id = ?";
static const char SQL_INVITATION_DELETE_SAME[] =
    "DELETE FROM chat_invitations WHERE chat_id = ? AND user_id = ? AND invited_by = ?";
static const char SQL_INVITATION_INSERT[] =
    "INSERT INTO chat_invitations (chat_id, user_id, invited_by, created_at) VALUES (?, ?, ?, ?) "
    "RETURNING id";
static const char SQL_INVITATIONS_OF_CHAT[] =
    "SELECT id FROM chat_invitations WHERE chat_id = ? ORDER BY id";
static const char SQL_FIRST_INVITER[] =
    "SELECT invited_by FROM chat_invitations WHERE chat_id = ? AND user_id = ? ORDER BY id LIMIT 1";
static const char SQL_INVITATIONS_DELETE_USER[] =
    "DELETE FROM chat_invitations WHERE chat_id = ? AND user_id = ?";
static const char SQL_CHAT_STAFF[] =
    "SELECT user_id FROM chat_members WHERE chat_id = ?1 AND (is_admin = 1 OR user_id = "
    "(SELECT owner_id FROM chats WHERE id = ?1))";
static const char SQL_CHATS_OF_USER[] =
    "SELECT chat_id FROM chat_members WHERE user_id = ? ORDER BY chat_id";
static const char SQL_GROUPS_OWNED[] =
    "SELECT id FROM chats WHERE owner_id = ? AND name <> '' ORDER BY id";
static const char SQL_GROUPS_JOINED[] =
    "SELECT m.chat_id FROM chat_members m JOIN chats c ON c.id = m.chat_id "
    "WHERE m.user_id = ?1 AND c.owner_id <> ?1 AND c.name <> '' ORDER BY m.chat_id";

/* A {chat_id, <key>: value, ...} event payload. */
static json_object *chat_event(int64_t chat_id)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "chat_id", json_i64(chat_id));
    return o;
}

static int emit_member_event(nova_db *db, const char *action, int64_t chat_id, int64_t user_id,
                             nova_err *err)
{
    json_object *data = chat_event(chat_id);
    json_object_object_add(data, "user_id", json_i64(user_id));
    return outbox_emit_chat(db, action, data, chat_id, err);
}

static int set_admin(nova_db *db, int64_t chat_id, int64_t user_id, bool is_admin, bool notify,
                     nova_err *err)
{
    db_stmt *st = db_prepare(db, SQL_MEMBER_SET_ADMIN);
    if (!st) return nova_fail(err, ERR_INTERNAL, "internal error");
    db_bind_i64(st, 1, is_admin);
    db_bind_i64(st, 2, chat_id);
    db_bind_i64(st, 3, user_id);
    int rc = db_exec_done(db, st, err);
    if (rc || !notify) return rc;
    json_object *data = chat_event(chat_id);
    json_object_object_add(data, "user_id", json_i64(user_id));
    json_object_object_add(data, "is_admin", json_object_new_boolean(is_admin));
    return outbox_emit_chat(db, "admin_state_change", data, chat_id, err);
}

/* Take a member out: admin rights first (admin_state_change), then
 * member_deleted to every member including them, then the row. */
static int remove_member(nova_db *db, int64_t chat_id, int64_t user_id, enum chat_role role,
                         nova_err *err)
{
    int rc;
    if (role == ROLE_ADMIN && (rc = set_admin(db, chat_id, user_id, false, true, err))) return rc;
    if ((rc = emit_member_event(db, "member_deleted", chat_id, user_id, err))) return rc;
    db_stmt *st = db_prepare(db, SQL_MEMBER_DELETE);
    if (!st) return nova_fail(err, ERR_INTERNAL, "internal error");
    db_bind_i64(st, 1, chat_id);
    db_bind_i64(st, 2, user_id);
    return db_exec_done(db, st, err);
}

/* Delete a group with chat_deleted {chat} to its members first. */
static int delete_group(nova_db *db, int64_t chat_id, nova_err *err)
{
    json_object *chat = view_chat(db, chat_id, 0, err);
    if (!chat) return err->kind;
    json_object *data = json_object_new_object();
    json_object_object_add(data, "chat", chat);
    int rc = outbox_emit_chat(db, "chat_deleted", data, chat_id, err);
    return rc ? rc : chat_destroy(db, chat_id, err);
}

int chat_create_group(nova_db *db, int64_t owner, const char *name, const idlist *members,
                      int64_t *chat_id, nova_err *err)
{
    idlist all = {0};
    int rc = idlist_push(&all, owner) ? nova_fail(err, ERR_INTERNAL, "out of memory") : 0;
    for (size_t i = 0; i < members->n && !rc; i++) {
        int64_t id = members->v[i];
        if (idlist_contains(&all, id)) continue;
        bool friend;
        if ((rc = access_are_friends(db, owner, id, &friend, err))) break;
        if (!friend) {
            rc = nova_fail(err, ERR_INVALID, "user %lld is not your friend", (long long)id);
            break;
        }
        if (idlist_push(&all, id)) rc = nova_fail(err, ERR_INTERNAL, "out of memory");
    }
    if (!rc) rc = chat_insert(db, name, owner, chat_id, err);
    for (size_t i = 0; i < all.n && !rc; i++)
        rc = chat_add_member(db, *chat_id, all.v[i], err);
    if (!rc) rc = outbox_emit(db, "new_group_chat", chat_event(*chat_id), all.v, all.n, err);

    /* "Group <name> created by <owner> with <m1>, <m2>, ..." */
    char *owner_name = NULL, *text = NULL;
    size_t len = 0;
    FILE *f = rc ? NULL : open_memstream(&text, &len);
    if (!rc && !f) rc = nova_fail(err, ERR_INTERNAL, "out of memory");
    for (size_t i = 0; i < all.n && !rc; i++) {
        char *member = user_name_of(db, all.v[i]);
        if (!member) {
            rc = nova_fail(err, ERR_INTERNAL, "internal error");
            break;
        }
        if (i == 0) {
            owner_name = member;
            fprintf(f, "Group %s created by %s with %s", name, member, member);
        } else {
            fprintf(f, ", %s", member);
            free(member);
        }
    }
    if (f) fclose(f);
    if (!rc) rc = message_post_system(db, *chat_id, err, "%s", text);
    free(text);
    free(owner_name);
    idlist_free(&all);
    return rc;
}

int chat_delete_or_leave(nova_db *db, int64_t user_id, int64_t chat_id, nova_err *err)
{
    chat_info chat;
    enum chat_role role;
    int rc = access_chat(db, user_id, chat_id, NEED_MEMBER, true, &chat, &role, err);
    if (rc) return rc;
    if (role == ROLE_OWNER) return delete_group(db, chat_id, err);
    if ((rc = remove_member(db, chat_id, user_id, role, err))) return rc;
    char *name = user_name_of(db, user_id);
    rc = name ? message_post_system(db, chat_id, err, "%s left the chat", name)
              : nova_fail(err, ERR_INTERNAL, "internal error");
    free(name);
    return rc;
}

/* --- invitations ----------------------------------------------------------
 *
 * The default flow is API.md's simplified one: a member invites a friend,
 * the owner or an admin approves, the invitee is never asked. With
 * group-invite-flow = consent (docs/API.md "Group invitations with
 * consent") the invitee accepts or declines too, and an approval is needed
 * only when no inviter is the owner or an admin. The consent marks
 * (accepted, approved_by; schema 009) concern the pair (chat, invitee) and
 * are kept equal on every pending invitation of the pair. */

static const char SQL_PAIR_STATE[] =
    "SELECT coalesce(max(accepted), 0), coalesce(max(approved_by), 0), count(*) "
    "FROM chat_invitations WHERE chat_id = ? AND user_id = ?";
static const char SQL_PAIR_SET[] =
    "UPDATE chat_invitations SET accepted = ?3, approved_by = nullif(?4, 0) "
    "WHERE chat_id = ?1 AND user_id = ?2";
static const char SQL_PAIR_INVITERS[] =
    "SELECT invited_by FROM chat_invitations WHERE chat_id = ? AND user_id = ? ORDER BY id";

/* Where the pair (chat, invitee) stands: pending = its invitations. */
typedef struct pair_state {
    bool accepted;
    int64_t approver; /* 0: not approved */
    int64_t pending;
} pair_state;

static int pair_state_of(nova_db *db, int64_t chat_id, int64_t user_id, pair_state *ps,
                         nova_err *err)
{
    db_stmt *st = db_prepare(db, SQL_PAIR_STATE);
    if (!st) return nova_fail(err, ERR_INTERNAL, "internal error");
    db_bind_i64(st, 1, chat_id);
    db_bind_i64(st, 2, user_id);
    if (db_step(st) != DB_ROW) {
        db_done(st);
        return db_fail(db, err);
    }
    ps->accepted = db_col_i64(st, 0) != 0;
    ps->approver = db_col_i64(st, 1);
    ps->pending = db_col_i64(st, 2);
    db_done(st);
    return 0;
}

static int pair_set(nova_db *db, int64_t chat_id, int64_t user_id, const pair_state *ps,
                    nova_err *err)
{
    db_stmt *st = db_prepare(db, SQL_PAIR_SET);
    if (!st) return nova_fail(err, ERR_INTERNAL, "internal error");
    db_bind_i64(st, 1, chat_id);
    db_bind_i64(st, 2, user_id);
    db_bind_i64(st, 3, ps->accepted);
    db_bind_i64(st, 4, ps->approver);
    return db_exec_done(db, st, err);
}

/* The owner and the admins of a chat. */
static int chat_staff(nova_db *db, int64_t chat_id, idlist *staff, nova_err *err)
{
    db_stmt *st = db_prepare(db, SQL_CHAT_STAFF);
    if (st) db_bind_i64(st, 1, chat_id);
    return db_collect_ids(db, st, staff, err);
}

/* The staff and every inviter of the pair, each once. */
static int staff_and_inviters(nova_db *db, int64_t chat_id, int64_t user_id, idlist *to,
                              nova_err *err)
{
    idlist inviters = {0};
    db_stmt *st = db_prepare(db, SQL_PAIR_INVITERS);
    if (st) {
        db_bind_i64(st, 1, chat_id);
        db_bind_i64(st, 2, user_id);
    }
    int rc = chat_staff(db, chat_id, to, err);
    if (!rc) rc = db_collect_ids(db, st, &inviters, err);
    for (size_t i = 0; !rc && i < inviters.n; i++) {
        bool seen = false;
        for (size_t j = 0; j < to->n && !seen; j++)
            seen = to->v[j] == inviters.v[i];
        if (!seen && idlist_push(to, inviters.v[i]))
            rc = nova_fail(err, ERR_INTERNAL, "out of memory");
    }
    idlist_free(&inviters);
    return rc;
}

/* {chat_id, user: User.Basic} to the staff and the inviters of the pair. */
static int emit_to_inviters(nova_db *db, const char *action, int64_t chat_id, int64_t user_id,
                            nova_err *err)
{
    idlist to = {0};
    int rc = staff_and_inviters(db, chat_id, user_id, &to, err);
    json_object *user = rc ? NULL : view_user_basic(db, user_id, err);
    if (!rc && !user) rc = err->kind;
    if (!rc) {
        json_object *data = chat_event(chat_id);
        json_object_object_add(data, "user", user);
        rc = outbox_emit(db, action, data, to.v, to.n, err);
    }
    idlist_free(&to);
    return rc;
}

/* chat_invitation_received to the invitee: the pair's current view. */
static int emit_received(nova_db *db, int64_t chat_id, int64_t user_id, nova_err *err)
{
    json_object *inv = view_received_invitation(db, chat_id, user_id, err);
    if (!inv) return err->kind;
    json_object *data = json_object_new_object();
    json_object_object_add(data, "invitation", inv);
    return outbox_emit(db, "chat_invitation_received", data, &user_id, 1, err);
}

/* The first inviter of a pending invitation (ERR_NOT_FOUND without one). */
static int pending_inviter(nova_db *db, int64_t chat_id, int64_t user_id, int64_t *inviter,
                           nova_err *err)
{
    idlist ids = {0};
    db_stmt *st = db_prepare(db, SQL_FIRST_INVITER);
    if (st) {
        db_bind_i64(st, 1, chat_id);
        db_bind_i64(st, 2, user_id);
    }
    int rc = db_collect_ids(db, st, &ids, err);
    if (!rc && !ids.n)
        rc = nova_fail(err, ERR_NOT_FOUND, "user %lld has no pending invitation to this chat",
                       (long long)user_id);
    if (!rc) *inviter = ids.v[0];
    idlist_free(&ids);
    return rc;
}

static int clear_invitations(nova_db *db, int64_t chat_id, int64_t user_id, nova_err *err)
{
    db_stmt *st = db_prepare(db, SQL_INVITATIONS_DELETE_USER);
    if (!st) return nova_fail(err, ERR_INTERNAL, "internal error");
    db_bind_i64(st, 1, chat_id);
    db_bind_i64(st, 2, user_id);
    return db_exec_done(db, st, err);
}

/* The invitee joins: member, new_group_chat, member_added, every pending
 * invitation of the pair removed, and the system message: API.md's
 * "member approved", or, in the consent flow when the approval was the
 * inviter's own (an owner or admin who invited; own_approval), "<member>
 * joined the group, invited by <inviter>". */
static int admit(nova_db *db, int64_t chat_id, int64_t user_id, int64_t approver, int64_t inviter,
                 bool own_approval, nova_err *err)
{
    int rc;
    if ((rc = chat_add_member(db, chat_id, user_id, err)) ||
        (rc = outbox_emit(db, "new_group_chat", chat_event(chat_id), &user_id, 1, err)) ||
        (rc = emit_member_event(db, "member_added", chat_id, user_id, err)) ||
        (rc = clear_invitations(db, chat_id, user_id, err)))
        return rc;
    char *who = user_name_of(db, approver), *member = user_name_of(db, user_id),
         *by = user_name_of(db, inviter);
    if (!who || !member || !by)
        rc = nova_fail(err, ERR_INTERNAL, "internal error");
    else if (own_approval)
        rc =
            message_post_system(db, chat_id, err, "%s joined the group, invited by %s", member, by);
    else
        rc = message_post_system(
            db, chat_id, err, "%s approved %s to join the group, invited by %s", who, member, by);
    free(who);
    free(member);
    free(by);
    return rc;
}

int chat_invite(nova_db *db, int64_t caller, int64_t chat_id, int64_t user_id, nova_err *err)
{
    chat_info chat;
    enum chat_role caller_role, target_role;
    bool friend;
    int rc;
    if ((rc = access_chat(db, caller, chat_id, NEED_MEMBER, true, &chat, &caller_role, err)))
        return rc;
    if (user_id == caller) return nova_fail(err, ERR_INVALID, "you cannot invite yourself");
    if ((rc = access_are_friends(db, caller, user_id, &friend, err))) return rc;
    if (!friend)
        return nova_fail(err, ERR_INVALID, "user %lld is not your friend", (long long)user_id);
    if ((rc = access_chat_role(db, &chat, user_id, &target_role, err))) return rc;
    if (target_role != ROLE_NONE)
        return nova_fail(err, ERR_INVALID, "user %lld is already a member", (long long)user_id);

    /* The pair's marks are kept in both flows, so that a server switching
     * flows finds them right (an owner's or admin's invitation is their
     * approval); only the consent flow acts on them. */
    bool consent = config_invite_consent(db->cfg);
    pair_state ps = {0};
    if ((rc = pair_state_of(db, chat_id, user_id, &ps, err))) return rc;
    db_stmt *st = db_prepare(db, SQL_INVITATION_DELETE_SAME);
    if (!st) return nova_fail(err, ERR_INTERNAL, "internal error");
    db_bind_i64(st, 1, chat_id);
    db_bind_i64(st, 2, user_id);
    db_bind_i64(st, 3, caller);
    if ((rc = db_exec_done(db, st, err))) return rc;
    st = db_prepare(db, SQL_INVITATION_INSERT);
    if (!st) return nova_fail(err, ERR_INTERNAL, "internal error");
    db_bind_i64(st, 1, chat_id);
    db_bind_i64(st, 2, user_id);
    db_bind_i64(st, 3, caller);
    db_bind_double(st, 4, nova_now());
    int64_t invitation_id = 0;
    if ((rc = db_insert_id(db, st, &invitation_id, err))) return rc;

    bool by_staff = caller_role == ROLE_OWNER || caller_role == ROLE_ADMIN;
    if (by_staff && !ps.approver) ps.approver = caller;
    if (consent && ps.accepted && ps.approver)
        return admit(db, chat_id, user_id, ps.approver, caller, ps.approver == caller, err);
    if ((rc = pair_set(db, chat_id, user_id, &ps, err))) return rc;

    /* chat_invitation to the owner and admins only. */
    idlist staff = {0};
    rc = chat_staff(db, chat_id, &staff, err);
    json_object *inv = rc ? NULL : view_chat_invitation(db, invitation_id, err);
    if (!rc && !inv) rc = err->kind;
    if (!rc) {
        json_object *data = json_object_new_object();
        json_object_object_add(data, "invitation", inv);
        rc = outbox_emit(db, "chat_invitation", data, staff.v, staff.n, err);
    }
    idlist_free(&staff);
    if (!rc && consent) rc = emit_received(db, chat_id, user_id, err);
    return rc;
}

json_object *chat_invitation_list(nova_db *db, int64_t caller, int64_t chat_id, nova_err *err)
{
    chat_info chat;
    if (access_chat(db, caller, chat_id, NEED_STAFF, false, &chat, NULL, err)) return NULL;
    db_stmt *st = db_prepare(db, SQL_INVITATIONS_OF_CHAT);
    if (st) db_bind_i64(st, 1, chat_id);
    return view_list_plain(db, st, view_chat_invitation, err);
}

int chat_invitation_approve(nova_db *db, int64_t caller, int64_t chat_id, int64_t user_id,
                            nova_err *err)
{
    chat_info chat;
    enum chat_role target;
    int64_t inviter;
    int rc;
    if ((rc = access_chat(db, caller, chat_id, NEED_STAFF, true, &chat, NULL, err)) ||
        (rc = pending_inviter(db, chat_id, user_id, &inviter, err)) ||
        (rc = access_chat_role(db, &chat, user_id, &target, err)))
        return rc;
    if (target != ROLE_NONE)
        return nova_fail(err, ERR_INVALID, "user %lld is already a member", (long long)user_id);
    if (config_invite_consent(db->cfg)) {
        pair_state ps;
        if ((rc = pair_state_of(db, chat_id, user_id, &ps, err))) return rc;
        if (!ps.accepted) {
            /* Approved; the invitee is still to be asked. */
            ps.approver = caller;
            if ((rc = pair_set(db, chat_id, user_id, &ps, err))) return rc;
            return emit_received(db, chat_id, user_id, err);
        }
    }
    return admit(db, chat_id, user_id, caller, inviter, false, err);
}

int chat_invitation_decline(nova_db *db, int64_t caller, int64_t chat_id, int64_t user_id,
                            nova_err *err)
{
    chat_info chat;
    int64_t inviter;
    int rc;
    if ((rc = access_chat(db, caller, chat_id, NEED_STAFF, true, &chat, NULL, err)) ||
        (rc = pending_inviter(db, chat_id, user_id, &inviter, err)) ||
        (rc = clear_invitations(db, chat_id, user_id, err)))
        return rc;
    if (!config_invite_consent(db->cfg)) return 0;
    return outbox_emit(db, "chat_invitation_withdrawn", chat_event(chat_id), &user_id, 1, err);
}

/* --- the invitee's side (consent flow only) ------------------------------ */

static const char SQL_RECEIVED_PAIRS[] =
    "SELECT chat_id FROM chat_invitations WHERE user_id = ? GROUP BY chat_id "
    "ORDER BY min(id)";

static int need_consent_flow(const nova_db *db, nova_err *err)
{
    if (config_invite_consent(db->cfg)) return 0;
    return nova_fail(err, ERR_NOT_FOUND,
                     "invitations need no consent on this server (group-invite-flow approval)");
}

json_object *chat_invitations_received(nova_db *db, int64_t caller, nova_err *err)
{
    if (need_consent_flow(db, err)) return NULL;
    idlist chats = {0};
    db_stmt *st = db_prepare(db, SQL_RECEIVED_PAIRS);
    if (st) db_bind_i64(st, 1, caller);
    if (db_collect_ids(db, st, &chats, err)) return NULL;
    json_object *arr = json_object_new_array();
    for (size_t i = 0; i < chats.n; i++) {
        json_object *inv = view_received_invitation(db, chats.v[i], caller, err);
        if (!inv) {
            json_object_put(arr);
            arr = NULL;
            break;
        }
        json_object_array_add(arr, inv);
    }
    idlist_free(&chats);
    return arr;
}

/* The caller's pending invitations to chat_id (400 without one). */
static int received_pair(nova_db *db, int64_t caller, int64_t chat_id, pair_state *ps,
                         nova_err *err)
{
    int rc = need_consent_flow(db, err);
    if (!rc) rc = pair_state_of(db, chat_id, caller, ps, err);
    if (!rc && !ps->pending)
        rc = nova_fail(err, ERR_INVALID, "you have no pending invitation to chat %lld",
                       (long long)chat_id);
    return rc;
}

int chat_invitation_accept(nova_db *db, int64_t caller, int64_t chat_id, bool *joined,
                           nova_err *err)
{
    pair_state ps;
    int64_t inviter;
    int rc;
    *joined = false;
    if ((rc = received_pair(db, caller, chat_id, &ps, err)) ||
        (rc = pending_inviter(db, chat_id, caller, &inviter, err)))
        return rc;
    if (ps.approver) {
        *joined = true;
        /* The approval's own invitation names the inviter when there is
         * one (an owner or admin who invited). */
        idlist inviters = {0};
        db_stmt *st = db_prepare(db, SQL_PAIR_INVITERS);
        if (st) {
            db_bind_i64(st, 1, chat_id);
            db_bind_i64(st, 2, caller);
        }
        if ((rc = db_collect_ids(db, st, &inviters, err))) return rc;
        for (size_t i = 0; i < inviters.n; i++)
            if (inviters.v[i] == ps.approver) inviter = ps.approver;
        idlist_free(&inviters);
        return admit(db, chat_id, caller, ps.approver, inviter, inviter == ps.approver, err);
    }
    if (ps.accepted) return 0; /* accepted before: still waiting for an approval */
    ps.accepted = true;
    if ((rc = pair_set(db, chat_id, caller, &ps, err))) return rc;
    return emit_to_inviters(db, "chat_invitation_accepted", chat_id, caller, err);
}

int chat_invitation_refuse(nova_db *db, int64_t caller, int64_t chat_id, nova_err *err)
{
    pair_state ps;
    int rc;
    /* Told before the rows go: they name the inviters. */
    if ((rc = received_pair(db, caller, chat_id, &ps, err)) ||
        (rc = emit_to_inviters(db, "chat_invitation_declined", chat_id, caller, err)))
        return rc;
    return clear_invitations(db, chat_id, caller, err);
}

int chat_set_admin(nova_db *db, int64_t caller, int64_t chat_id, int64_t member_id, bool is_admin,
                   nova_err *err)
{
    chat_info chat;
    enum chat_role target;
    int rc;
    if ((rc = access_chat(db, caller, chat_id, NEED_OWNER, true, &chat, NULL, err))) return rc;
    if ((rc = access_chat_role(db, &chat, member_id, &target, err))) return rc;
    if (target == ROLE_NONE)
        return nova_fail(err, ERR_INVALID, "user %lld is not a member", (long long)member_id);
    if (target == ROLE_OWNER)
        return nova_fail(err, ERR_INVALID, "the owner cannot be made an admin");
    if ((target == ROLE_ADMIN) == is_admin)
        return nova_fail(err, ERR_INVALID, "user %lld is already %s", (long long)member_id,
                         is_admin ? "an admin" : "not an admin");
    return set_admin(db, chat_id, member_id, is_admin, true, err);
}

int chat_set_owner(nova_db *db, int64_t caller, int64_t chat_id, int64_t new_owner, nova_err *err)
{
    chat_info chat;
    enum chat_role target;
    int rc;
    if ((rc = access_chat(db, caller, chat_id, NEED_OWNER, true, &chat, NULL, err))) return rc;
    if ((rc = access_chat_role(db, &chat, new_owner, &target, err))) return rc;
    if (target == ROLE_NONE)
        return nova_fail(err, ERR_INVALID, "user %lld is not a member", (long long)new_owner);
    if (target == ROLE_OWNER)
        return nova_fail(err, ERR_INVALID, "user %lld is already the owner", (long long)new_owner);

    db_stmt *st = db_prepare(db, SQL_CHAT_SET_OWNER);
    if (!st) return nova_fail(err, ERR_INTERNAL, "internal error");
    db_bind_i64(st, 1, new_owner);
    db_bind_i64(st, 2, chat_id);
    if ((rc = db_exec_done(db, st, err))) return rc;
    json_object *data = chat_event(chat_id);
    json_object_object_add(data, "owner_id", json_i64(new_owner));
    if ((rc = outbox_emit_chat(db, "owner_state_change", data, chat_id, err))) return rc;
    /* The new owner is no admin (owner ∉ admins); the old one becomes one. */
    if (target == ROLE_ADMIN && (rc = set_admin(db, chat_id, new_owner, false, true, err)))
        return rc;
    return set_admin(db, chat_id, caller, true, true, err);
}

int chat_remove_member(nova_db *db, int64_t caller, int64_t chat_id, int64_t member_id,
                       nova_err *err)
{
    chat_info chat;
    enum chat_role role, target;
    int rc;
    if ((rc = access_chat(db, caller, chat_id, NEED_STAFF, true, &chat, &role, err))) return rc;
    if ((rc = access_chat_role(db, &chat, member_id, &target, err))) return rc;
    if (target == ROLE_NONE)
        return nova_fail(err, ERR_INVALID, "user %lld is not a member", (long long)member_id);
    if (target == ROLE_OWNER) return nova_fail(err, ERR_FORBIDDEN, "the owner cannot be removed");
    if (target == ROLE_ADMIN && role != ROLE_OWNER)
        return nova_fail(err, ERR_FORBIDDEN, "only the owner may remove an admin");
    if ((rc = remove_member(db, chat_id, member_id, target, err))) return rc;
    char *remover = user_name_of(db, caller), *member = user_name_of(db, member_id);
    rc = remover && member ? message_post_system(db, chat_id, err, "%s removed %s from the group",
                                                 remover, member)
                           : nova_fail(err, ERR_INTERNAL, "internal error");
    free(remover);
    free(member);
    return rc;
}

json_object *chat_list(nova_db *db, int64_t user_id, nova_err *err)
{
    db_stmt *st = db_prepare(db, SQL_CHATS_OF_USER);
    if (st) db_bind_i64(st, 1, user_id);
    return view_list(db, st, user_id, view_chat_relation, err);
}

int chat_forget_user(nova_db *db, int64_t user_id, nova_err *err)
{
    idlist owned = {0}, joined = {0};
    db_stmt *st = db_prepare(db, SQL_GROUPS_OWNED);
    if (st) db_bind_i64(st, 1, user_id);
    int rc = db_collect_ids(db, st, &owned, err);
    for (size_t i = 0; i < owned.n && !rc; i++)
        rc = delete_group(db, owned.v[i], err);
    if (!rc) {
        st = db_prepare(db, SQL_GROUPS_JOINED);
        if (st) db_bind_i64(st, 1, user_id);
        rc = db_collect_ids(db, st, &joined, err);
    }
    for (size_t i = 0; i < joined.n && !rc; i++) {
        chat_info chat;
        enum chat_role role;
        if (!(rc = access_chat_load(db, joined.v[i], &chat, err)) &&
            !(rc = access_chat_role(db, &chat, user_id, &role, err)))
            rc = remove_member(db, joined.v[i], user_id, role, err);
    }
    idlist_free(&owned);
    idlist_free(&joined);
    return rc;
}
