/* presence.c - who is online across every nova-realtime, and typing. */
#include "presence.h"

#include <string.h>

#include "access.h"
#include "view.h"

static const char SQL_LOCK_USER[] = "SELECT id FROM users WHERE id = ?1";
static const char SQL_LOCK_USER_PG[] = "SELECT id FROM users WHERE id = ?1 FOR UPDATE";
static const char SQL_ROWS_OF[] = "SELECT count(*) FROM presence WHERE user_id = ?1";
static const char SQL_UPSERT[] =
    "INSERT INTO presence (instance, user_id, sockets, watchers, gone_at) "
    "VALUES (?1, ?2, ?3, ?4, NULL) "
    "ON CONFLICT (instance, user_id) DO UPDATE SET sockets = ?3, watchers = ?4, gone_at = NULL";
static const char SQL_START_GRACE[] = "UPDATE presence SET sockets = 0, watchers = 0, gone_at = ?3 "
                                      "WHERE instance = ?1 AND user_id = ?2 AND sockets > 0";
static const char SQL_DELETE_ROW[] = "DELETE FROM presence WHERE instance = ?1 AND user_id = ?2";
/* The friends who watch: a socket that asked for presence open somewhere. */
static const char SQL_WATCHING_FRIENDS[] =
    "SELECT DISTINCT f.friend_id FROM friends f JOIN presence p ON p.user_id = f.friend_id "
    "WHERE f.user_id = ?1 AND p.watchers > 0 ORDER BY f.friend_id";
static const char SQL_WATCHES[] =
    "SELECT count(*) FROM presence WHERE user_id = ?1 AND watchers > 0";

/* Run a statement with ?1 = id and read one integer. */
static int one_i64(nova_db *db, db_stmt *st, int64_t *out, nova_err *err)
{
    if (!st) return nova_fail(err, ERR_INTERNAL, "internal error");
    int rc = db_step(st);
    *out = rc == DB_ROW ? db_col_i64(st, 0) : 0;
    db_done(st);
    return rc >= 0 ? 0 : db_fail(db, err);
}

/* Take turns with the other hosts on this user's transitions (PostgreSQL:
 * a row lock until the transaction ends; SQLite: the write lock already). */
static int lock_user(nova_db *db, int64_t user_id, nova_err *err)
{
    db_stmt *st = db_prepare_for(db, SQL_LOCK_USER, SQL_LOCK_USER_PG);
    if (st) db_bind_i64(st, 1, user_id);
    int64_t ignored;
    return one_i64(db, st, &ignored, err);
}

static int rows_of(nova_db *db, int64_t user_id, int64_t *n, nova_err *err)
{
    db_stmt *st = db_prepare(db, SQL_ROWS_OF);
    if (st) db_bind_i64(st, 1, user_id);
    return one_i64(db, st, n, err);
}

/* `presence` {"user": User.Basic of about, "online"} to the given users. */
static int emit_presence(nova_db *db, int64_t about, bool online, const int64_t *to, size_t n,
                         nova_err *err)
{
    if (!n) return 0;
    json_object *user = view_user_basic(db, about, err);
    if (!user) return err->kind == ERR_NOT_FOUND ? 0 : err->kind; /* deleted meanwhile */
    json_object *data = json_object_new_object();
    json_object_object_add(data, "user", user);
    json_object_object_add(data, "online", json_object_new_boolean(online));
    return outbox_emit(db, "presence", data, to, n, err);
}

static int emit_to_friends(nova_db *db, int64_t user_id, bool online, nova_err *err)
{
    idlist friends = {0};
    db_stmt *st = db_prepare(db, SQL_WATCHING_FRIENDS);
    if (st) db_bind_i64(st, 1, user_id);
    int rc = db_collect_ids(db, st, &friends, err);
    if (!rc) rc = emit_presence(db, user_id, online, friends.v, friends.n, err);
    idlist_free(&friends);
    return rc;
}

int presence_set(nova_db *db, const char *instance, int64_t user_id, long sockets, long watchers,
                 bool grace, double now, nova_err *err)
{
    int64_t before, after;
    int rc;
    if ((rc = lock_user(db, user_id, err)) || (rc = rows_of(db, user_id, &before, err))) return rc;
    db_stmt *st = db_prepare(db, sockets > 0 ? SQL_UPSERT
                                 : grace     ? SQL_START_GRACE
                                             : SQL_DELETE_ROW);
    if (!st) return nova_fail(err, ERR_INTERNAL, "internal error");
    db_bind_text(st, 1, instance);
    db_bind_i64(st, 2, user_id);
    if (sockets > 0) {
        db_bind_i64(st, 3, sockets);
        db_bind_i64(st, 4, watchers);
    } else if (grace)
        db_bind_double(st, 3, now);
    if ((rc = db_exec_done(db, st, err))) return rc;
    if (sockets > 0) return before ? 0 : emit_to_friends(db, user_id, true, err);
    if (grace || !before) return 0;
    if ((rc = rows_of(db, user_id, &after, err))) return rc;
    return after ? 0 : emit_to_friends(db, user_id, false, err);
}

static const char SQL_BEAT_UPDATE[] =
    "UPDATE presence_instances SET heartbeat_at = ?2 WHERE instance = ?1";
static const char SQL_BEAT_INSERT[] =
    "INSERT INTO presence_instances (instance, heartbeat_at) VALUES (?1, ?2)";

int presence_heartbeat(nova_db *db, const char *instance, double now, bool *was_known,
                       nova_err *err)
{
    db_stmt *st = db_prepare(db, SQL_BEAT_UPDATE);
    if (!st) return nova_fail(err, ERR_INTERNAL, "internal error");
    db_bind_text(st, 1, instance);
    db_bind_double(st, 2, now);
    int rc = db_exec_done(db, st, err);
    if (rc) return rc;
    *was_known = db_changes(db) > 0;
    if (*was_known) return 0;
    st = db_prepare(db, SQL_BEAT_INSERT);
    if (!st) return nova_fail(err, ERR_INTERNAL, "internal error");
    db_bind_text(st, 1, instance);
    db_bind_double(st, 2, now);
    return db_exec_done(db, st, err);
}

static const char SQL_EXPIRE_ROWS[] =
    "UPDATE presence SET sockets = 0, watchers = 0, gone_at = ?1 WHERE sockets > 0 AND "
    "instance <> ?2 AND "
    "instance NOT IN (SELECT instance FROM presence_instances WHERE heartbeat_at >= ?3)";
static const char SQL_EXPIRE_INSTANCES[] =
    "DELETE FROM presence_instances WHERE heartbeat_at < ?1 AND instance <> ?2";
static const char SQL_GRACE_OVER[] =
    "SELECT DISTINCT user_id FROM presence WHERE sockets = 0 AND gone_at < ?1 ORDER BY user_id "
    "LIMIT ?2";
static const char SQL_GRACE_END[] =
    "DELETE FROM presence WHERE user_id = ?1 AND sockets = 0 AND gone_at < ?2";

int presence_expire(nova_db *db, const char *self, double now, double timeout, double grace,
                    int batch, int *changed, nova_err *err)
{
    *changed = 0;
    db_stmt *st = db_prepare(db, SQL_EXPIRE_ROWS);
    if (!st) return nova_fail(err, ERR_INTERNAL, "internal error");
    db_bind_double(st, 1, now);
    db_bind_text(st, 2, self);
    db_bind_double(st, 3, now - timeout);
    int rc = db_exec_done(db, st, err);
    if (rc) return rc;
    *changed += (int)db_changes(db);
    st = db_prepare(db, SQL_EXPIRE_INSTANCES);
    if (!st) return nova_fail(err, ERR_INTERNAL, "internal error");
    db_bind_double(st, 1, now - timeout);
    db_bind_text(st, 2, self);
    if ((rc = db_exec_done(db, st, err))) return rc;

    idlist users = {0};
    st = db_prepare(db, SQL_GRACE_OVER);
    if (st) {
        db_bind_double(st, 1, now - grace);
        db_bind_i64(st, 2, batch);
    }
    rc = db_collect_ids(db, st, &users, err);
    for (size_t i = 0; i < users.n && !rc; i++) {
        int64_t left;
        if ((rc = lock_user(db, users.v[i], err))) break;
        st = db_prepare(db, SQL_GRACE_END);
        if (!st) {
            rc = nova_fail(err, ERR_INTERNAL, "internal error");
            break;
        }
        db_bind_i64(st, 1, users.v[i]);
        db_bind_double(st, 2, now - grace);
        if ((rc = db_exec_done(db, st, err))) break;
        long gone = db_changes(db);
        *changed += (int)gone;
        /* Another host may have ended it first (we waited for its lock). */
        if (!gone || (rc = rows_of(db, users.v[i], &left, err))) continue;
        if (!left) rc = emit_to_friends(db, users.v[i], false, err);
    }
    idlist_free(&users);
    return rc;
}

static const char SQL_LEAVE_ROWS[] =
    "UPDATE presence SET sockets = 0, watchers = 0, gone_at = ?2 WHERE instance = ?1 AND "
    "sockets > 0";
static const char SQL_LEAVE_INSTANCE[] = "DELETE FROM presence_instances WHERE instance = ?1";

int presence_leave(nova_db *db, const char *instance, double now, nova_err *err)
{
    db_stmt *st = db_prepare(db, SQL_LEAVE_ROWS);
    if (!st) return nova_fail(err, ERR_INTERNAL, "internal error");
    db_bind_text(st, 1, instance);
    db_bind_double(st, 2, now);
    int rc = db_exec_done(db, st, err);
    if (rc) return rc;
    st = db_prepare(db, SQL_LEAVE_INSTANCE);
    if (!st) return nova_fail(err, ERR_INTERNAL, "internal error");
    db_bind_text(st, 1, instance);
    return db_exec_done(db, st, err);
}

static const char SQL_ONLINE_FRIENDS[] =
    "SELECT DISTINCT f.friend_id FROM friends f JOIN presence p ON p.user_id = f.friend_id "
    "WHERE f.user_id = ?1 ORDER BY f.friend_id";

json_object *presence_snapshot(nova_db *db, int64_t user_id, nova_err *err)
{
    db_stmt *st = db_prepare(db, SQL_ONLINE_FRIENDS);
    if (st) db_bind_i64(st, 1, user_id);
    json_object *list = view_list_plain(db, st, view_user_basic, err);
    if (!list) return NULL;
    json_object *data = json_object_new_object();
    json_object_object_add(data, "online", list);
    return data;
}

int presence_friendship(nova_db *db, int64_t a, int64_t b, bool made, nova_err *err)
{
    int64_t sides[2][2] = {{a, b}, {b, a}};
    for (int i = 0; i < 2; i++) {
        int64_t rows, watches = 0;
        db_stmt *st = db_prepare(db, SQL_WATCHES);
        if (st) db_bind_i64(st, 1, sides[i][0]);
        int rc = one_i64(db, st, &watches, err);
        if (!rc && watches) rc = rows_of(db, sides[i][1], &rows, err);
        if (!rc && watches && rows) rc = emit_presence(db, sides[i][1], made, &sides[i][0], 1, err);
        if (rc) return rc;
    }
    return 0;
}

static const char SQL_OTHER_MEMBERS[] =
    "SELECT user_id FROM chat_members WHERE chat_id = ?1 AND user_id <> ?2 ORDER BY user_id";

int presence_typing_check(nova_db *db, int64_t user_id, int64_t chat_id, nova_err *err)
{
    chat_info chat;
    return access_chat(db, user_id, chat_id, NEED_MEMBER, false, &chat, NULL, err);
}

int presence_typing_emit(nova_db *db, int64_t user_id, int64_t chat_id, nova_err *err)
{
    int rc;
    idlist others = {0};
    db_stmt *st = db_prepare(db, SQL_OTHER_MEMBERS);
    if (st) {
        db_bind_i64(st, 1, chat_id);
        db_bind_i64(st, 2, user_id);
    }
    rc = db_collect_ids(db, st, &others, err);
    json_object *user = rc || !others.n ? NULL : view_user_basic(db, user_id, err);
    if (!rc && others.n && !user) rc = err->kind;
    if (user) {
        json_object *data = json_object_new_object();
        json_object_object_add(data, "chat_id", json_object_new_int64(chat_id));
        json_object_object_add(data, "user", user);
        rc = outbox_emit(db, "typing", data, others.v, others.n, err);
    }
    idlist_free(&others);
    return rc;
}

/* Like outbox_prune, the newest event is kept (it is the position). */
static const char SQL_PRUNE[] =
    "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE action IN ('presence', 'typing') "
    "AND created_at < ?1 AND id < (SELECT max(id) FROM outbox) ORDER BY created_at LIMIT ?2)";

int presence_prune(nova_db *db, double before, int batch, int *deleted, nova_err *err)
{
    db_stmt *st = db_prepare(db, SQL_PRUNE);
    if (!st) return nova_fail(err, ERR_INTERNAL, "internal error");
    db_bind_double(st, 1, before);
    db_bind_i64(st, 2, batch);
    int rc = db_exec_done(db, st, err);
    *deleted = rc ? 0 : (int)db_changes(db);
    return rc;
}

bool presence_event_ephemeral(const outbox_event *ev)
{
    return !strcmp(ev->action, "presence") || !strcmp(ev->action, "typing");
}

bool presence_event_is_presence(const outbox_event *ev)
{
    return !strcmp(ev->action, "presence");
}
