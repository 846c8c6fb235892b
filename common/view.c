/* view.c - JSON views of users, friends, chats and messages.
 *
 * Lists reuse the User.Basic objects of users they meet more than once
 * (a user cache per call), and compute read_users from one read of the
 * chat's watermarks, so listing N messages costs O(N) queries, not
 * O(N * members). */
#include "view.h"

#include <json-c/printbuf.h>
#include <stdlib.h>
#include <string.h>

#include "attachment.h"
#include "json_util.h"

static const char SQL_USER_VIEW[] =
    "SELECT id, user_name, avatar_url, email, phone FROM users WHERE id = ?";

static json_object *fail_null(nova_err *err, int kind, const char *what, int64_t id)
{
    nova_fail(err, kind, "%s %lld not found", what, (long long)id);
    return NULL;
}

/* Step a one-row lookup: 1 row, 0 none (ERR_NOT_FOUND recorded), -1 error. */
static int step_one(nova_db *db, db_stmt *st, const char *what, int64_t id, nova_err *err)
{
    if (!st) {
        nova_fail(err, ERR_INTERNAL, "internal error");
        return -1;
    }
    int rc = db_step(st);
    if (rc == DB_ROW) return 1;
    db_done(st);
    if (rc == DB_DONE) {
        fail_null(err, ERR_NOT_FOUND, what, id);
        return 0;
    }
    db_fail(db, err);
    return -1;
}

static const char *col_text(db_stmt *st, int i)
{
    const char *s = db_col_text(st, i);
    return s ? s : "";
}

static json_object *user_view(nova_db *db, int64_t user_id, bool detailed, nova_err *err)
{
    db_stmt *st = db_prepare(db, SQL_USER_VIEW);
    if (st) db_bind_i64(st, 1, user_id);
    if (step_one(db, st, "user", user_id, err) != 1) return NULL;
    json_object *o = json_object_new_object();
    json_object_object_add(o, "id", json_i64(db_col_i64(st, 0)));
    json_object_object_add(o, "user_name", json_str(col_text(st, 1)));
    json_object_object_add(o, "avatar_url", json_str(col_text(st, 2)));
    if (detailed) {
        json_object_object_add(o, "email", json_str(col_text(st, 3)));
        json_object_object_add(o, "phone", json_str(col_text(st, 4)));
    }
    db_done(st);
    return o;
}

json_object *view_user_basic(nova_db *db, int64_t user_id, nova_err *err)
{
    return user_view(db, user_id, false, err);
}

json_object *view_user_detailed(nova_db *db, int64_t user_id, nova_err *err)
{
    return user_view(db, user_id, true, err);
}

/* --- a cache of User.Basic objects for list views ----------------------- */

/* Open addressing on user id; grows as needed, so a page of a big group's
 * messages costs one query per distinct user at most. */
typedef struct user_cache {
    int64_t *ids;
    json_object **objs;
    size_t n, cap;
} user_cache;

static size_t cache_slot(const user_cache *c, int64_t id)
{
    uint64_t h = (uint64_t)id * 0x9E3779B97F4A7C15ull;
    size_t i = (size_t)(h >> 20) & (c->cap - 1);
    while (c->objs[i] && c->ids[i] != id)
        i = (i + 1) & (c->cap - 1);
    return i;
}

/* A cached User.Basic appears many times in one answer (every message
 * of its sender, every read_users): its JSON text is made once, when it
 * is cached, and every later serialisation copies it. */
typedef struct rendered {
    size_t len;
    char text[];
} rendered;

static int write_rendered(json_object *o, struct printbuf *pb, int level, int flags)
{
    (void)level, (void)flags; /* a User.Basic is always written plain */
    const rendered *r = json_object_get_userdata(o);
    return printbuf_memappend(pb, r->text, (int)r->len);
}

static void free_rendered(json_object *o, void *userdata)
{
    (void)o;
    free(userdata);
}

static void render_once(json_object *o)
{
    size_t len;
    const char *text = json_text(o, &len);
    rendered *r = text ? malloc(sizeof *r + len) : NULL;
    if (!r) return; /* it is serialised the usual way */
    r->len = len;
    memcpy(r->text, text, len);
    json_object_set_serializer(o, write_rendered, r, free_rendered);
}

static bool cache_put(user_cache *c, int64_t id, json_object *o)
{
    if ((c->n + 1) * 2 > c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 64;
        user_cache grown = {calloc(cap, sizeof *grown.ids), calloc(cap, sizeof *grown.objs), 0,
                            cap};
        if (!grown.ids || !grown.objs) {
            free(grown.ids);
            free(grown.objs);
            return false;
        }
        for (size_t i = 0; i < c->cap; i++) {
            if (!c->objs[i]) continue;
            size_t j = cache_slot(&grown, c->ids[i]);
            grown.ids[j] = c->ids[i];
            grown.objs[j] = c->objs[i];
            grown.n++;
        }
        free(c->ids);
        free(c->objs);
        *c = grown;
    }
    size_t i = cache_slot(c, id);
    if (c->objs[i]) return true;
    render_once(o);
    c->ids[i] = id;
    c->objs[i] = json_object_get(o);
    c->n++;
    return true;
}

/* A new reference to the User.Basic of user_id (cached), or NULL. */
static json_object *cached_user(nova_db *db, user_cache *c, int64_t user_id, nova_err *err)
{
    if (c->cap) {
        size_t i = cache_slot(c, user_id);
        if (c->objs[i]) return json_object_get(c->objs[i]);
    }
    json_object *o = view_user_basic(db, user_id, err);
    if (o) cache_put(c, user_id, o);
    return o;
}

static void user_cache_free(user_cache *c)
{
    for (size_t i = 0; i < c->cap; i++)
        json_object_put(c->objs[i]);
    free(c->ids);
    free(c->objs);
    memset(c, 0, sizeof *c);
}

/* Add a user array built from the ids a statement yields (column 0). */
static int add_users(nova_db *db, user_cache *cache, json_object *o, const char *key, db_stmt *st,
                     nova_err *err)
{
    idlist ids = {0};
    int rc = db_collect_ids(db, st, &ids, err);
    json_object *arr = json_object_new_array();
    for (size_t i = 0; i < ids.n && !rc; i++) {
        json_object *u = cached_user(db, cache, ids.v[i], err);
        if (!u)
            rc = err->kind;
        else
            json_object_array_add(arr, u);
    }
    idlist_free(&ids);
    json_object_object_add(o, key, arr);
    return rc;
}

/* --- friends ------------------------------------------------------------ */

static const char SQL_GROUP_VIEW[] = "SELECT id, name FROM friend_groups WHERE id = ?";

json_object *view_friend_group(nova_db *db, int64_t group_id, nova_err *err)
{
    db_stmt *st = db_prepare(db, SQL_GROUP_VIEW);
    if (st) db_bind_i64(st, 1, group_id);
    if (step_one(db, st, "friend group", group_id, err) != 1) return NULL;
    json_object *o = json_object_new_object();
    json_object_object_add(o, "group_id", json_i64(db_col_i64(st, 0)));
    json_object_object_add(o, "group_name", json_str(col_text(st, 1)));
    db_done(st);
    return o;
}

static const char SQL_FRIEND_VIEW[] =
    "SELECT nickname, group_id FROM friends WHERE user_id = ? AND friend_id = ?";

json_object *view_friend(nova_db *db, int64_t owner_id, int64_t friend_id, nova_err *err)
{
    db_stmt *st = db_prepare(db, SQL_FRIEND_VIEW);
    if (st) {
        db_bind_i64(st, 1, owner_id);
        db_bind_i64(st, 2, friend_id);
    }
    if (step_one(db, st, "friend", friend_id, err) != 1) return NULL;
    json_object *nickname = json_str(col_text(st, 0));
    int64_t group_id = db_col_i64(st, 1);
    db_done(st);
    json_object *user = view_user_detailed(db, friend_id, err);
    json_object *group = user ? view_friend_group(db, group_id, err) : NULL;
    if (!group) {
        json_object_put(nickname);
        json_object_put(user);
        return NULL;
    }
    json_object *o = json_object_new_object();
    json_object_object_add(o, "friend", user);
    json_object_object_add(o, "nickname", nickname);
    json_object_object_add(o, "group", group);
    return o;
}

static const char SQL_FRIEND_INVITATION_VIEW[] =
    "SELECT id, sender_id, receiver_id, comment, source_chat_id FROM friend_invitations "
    "WHERE id = ?";

json_object *view_friend_invitation(nova_db *db, int64_t invitation_id, nova_err *err)
{
    db_stmt *st = db_prepare(db, SQL_FRIEND_INVITATION_VIEW);
    if (st) db_bind_i64(st, 1, invitation_id);
    if (step_one(db, st, "invitation", invitation_id, err) != 1) return NULL;
    int64_t sender = db_col_i64(st, 1), receiver = db_col_i64(st, 2);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "id", json_i64(db_col_i64(st, 0)));
    json_object *comment = json_str(col_text(st, 3));
    json_object *source = db_col_is_null(st, 4) ? json_str("search") : json_i64(db_col_i64(st, 4));
    db_done(st);
    json_object *s = view_user_basic(db, sender, err);
    json_object *r = s ? view_user_basic(db, receiver, err) : NULL;
    json_object_object_add(o, "sender", s);
    json_object_object_add(o, "receiver", r);
    json_object_object_add(o, "comment", comment);
    json_object_object_add(o, "source", source);
    if (!r) {
        json_object_put(o);
        return NULL;
    }
    return o;
}

/* --- messages ----------------------------------------------------------- */

/* A message as one row: every statement below reads these columns, with
 * the viewer as ?1 (whether they deleted it for themselves). */
#define MESSAGE_COLUMNS                                                                            \
    "SELECT m.id, m.chat_id, m.content, m.send_time, m.sender_id, coalesce(m.reply_to_id, 0), "   \
    "m.recalled, EXISTS (SELECT 1 FROM message_deletions d WHERE d.user_id = ?1 AND "            \
    "d.message_id = m.id), m.edited_at FROM messages m "
static const char SQL_MESSAGE_VIEW[] = MESSAGE_COLUMNS "WHERE m.id = ?2";
/* The messages of a list of ids (a JSON array), and those replying to one. */
static const char SQL_MESSAGES_BY_ID[] =
    MESSAGE_COLUMNS "WHERE m.id IN (SELECT value FROM json_each(?2)) ORDER BY m.id";
static const char SQL_MESSAGES_BY_ID_PG[] =
    MESSAGE_COLUMNS "WHERE m.id IN (SELECT value::bigint FROM json_array_elements_text(?2::json)) "
                    "ORDER BY m.id";
static const char SQL_MESSAGES_REPLYING[] =
    MESSAGE_COLUMNS "WHERE m.reply_to_id IN (SELECT value FROM json_each(?2)) ORDER BY m.id";
static const char SQL_MESSAGES_REPLYING_PG[] =
    MESSAGE_COLUMNS "WHERE m.reply_to_id IN "
                    "(SELECT value::bigint FROM json_array_elements_text(?2::json)) ORDER BY m.id";
static const char SQL_CHAT_WATERMARKS[] =
    "SELECT r.user_id, r.last_read_id, u.user_name, u.avatar_url FROM chat_relations r "
    "JOIN users u ON u.id = r.user_id WHERE r.chat_id = ?1 AND r.last_read_id >= ?2 "
    "AND r.last_read_id > 0 ORDER BY r.user_id";

typedef struct message_row {
    int64_t id, chat_id, sender, reply_to; /* reply_to 0: none */
    double send_time;
    double edited_at; /* [ext] 0: never edited */
    bool deleted;     /* recalled, or deleted by the viewer */
    char *content;
} message_row;

typedef struct message_rows {
    message_row *v;
    size_t n, cap;
} message_rows;

static void rows_free(message_rows *r)
{
    for (size_t i = 0; i < r->n; i++)
        free(r->v[i].content);
    free(r->v);
    memset(r, 0, sizeof *r);
}

/* Read every row a bound MESSAGE_COLUMNS statement yields (and end it). */
static int rows_read(nova_db *db, db_stmt *st, message_rows *out, nova_err *err)
{
    if (!st) return nova_fail(err, ERR_INTERNAL, "internal error");
    int rc;
    while ((rc = db_step(st)) == DB_ROW) {
        if (out->n == out->cap) {
            size_t cap = out->cap ? out->cap * 2 : 16;
            message_row *grown = realloc(out->v, cap * sizeof *grown);
            if (!grown) break;
            out->v = grown;
            out->cap = cap;
        }
        message_row *m = &out->v[out->n];
        m->content = strdup(col_text(st, 2));
        if (!m->content) break;
        m->id = db_col_i64(st, 0);
        m->chat_id = db_col_i64(st, 1);
        m->send_time = db_col_double(st, 3);
        m->sender = db_col_i64(st, 4);
        m->reply_to = db_col_i64(st, 5);
        m->deleted = db_col_i64(st, 6) || db_col_i64(st, 7);
        m->edited_at = db_col_is_null(st, 8) ? 0 : db_col_double(st, 8);
        out->n++;
    }
    db_done(st);
    if (rc == DB_ROW) return nova_fail(err, ERR_INTERNAL, "out of memory");
    return rc == DB_DONE ? 0 : db_fail(db, err);
}

/* The row with this id among rows sorted by id, or NULL. */
static const message_row *row_by_id(const message_rows *r, int64_t id)
{
    size_t lo = 0, hi = r->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (r->v[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < r->n && r->v[lo].id == id ? &r->v[lo] : NULL;
}

/* "[1,2,3]" of ids (malloc'd), for the IN lists above. */
static char *ids_json(const int64_t *ids, size_t n)
{
    char *out = malloc(n * 21 + 3), *p = out;
    if (!out) return NULL;
    *p++ = '[';
    for (size_t i = 0; i < n; i++)
        p += sprintf(p, "%s%lld", i ? "," : "", (long long)ids[i]);
    *p++ = ']';
    *p = '\0';
    return out;
}

/* Read the rows of a set of ids (sql: SQL_MESSAGES_BY_ID or _REPLYING). */
static int rows_of(nova_db *db, const char *sql, const char *sql_pg, int64_t viewer,
                   const int64_t *ids, size_t n, message_rows *out, nova_err *err)
{
    if (!n) return 0;
    char *list = ids_json(ids, n);
    if (!list) return nova_fail(err, ERR_INTERNAL, "out of memory");
    db_stmt *st = db_prepare_for(db, sql, sql_pg);
    if (st) {
        db_bind_i64(st, 1, viewer);
        db_bind_text(st, 2, list);
    }
    int rc = rows_read(db, st, out, err);
    free(list);
    return rc;
}

/* ChatMessage.Basic of a row. */
static json_object *message_basic(nova_db *db, user_cache *cache, const message_row *m,
                                  nova_err *err)
{
    json_object *u = cached_user(db, cache, m->sender, err);
    if (!u) return NULL;
    json_object *o = json_object_new_object();
    json_object_object_add(o, "message_id", json_i64(m->id));
    json_object_object_add(o, "chat_id", json_i64(m->chat_id));
    json_object_object_add(o, "message", json_str(m->content));
    json_object_object_add(o, "send_time", json_time(m->send_time));
    json_object_object_add(o, "sender", u);
    json_object_object_add(o, "reply_to_id", m->reply_to ? json_i64(m->reply_to) : NULL);
    json_object_object_add(o, "deleted", json_object_new_boolean(m->deleted));
    json_object_object_add(o, "edited_at", m->edited_at ? json_time(m->edited_at) : NULL);
    return o;
}

/* Watermarks of a chat: who has read up to which message. */
typedef struct watermarks {
    idlist users, marks;
} watermarks;

/* Load the watermarks of a chat's readers who have read message oldest or
 * later (the others are in no read_users of the messages at hand: a new
 * message costs no reader at all), and their User.Basic into the cache in
 * the same query (through chat_relations_read), so read_users costs no
 * query per reader. */
static int load_watermarks(nova_db *db, user_cache *cache, int64_t chat_id, int64_t oldest,
                           watermarks *w, nova_err *err)
{
    db_stmt *st = db_prepare(db, SQL_CHAT_WATERMARKS);
    if (!st) return nova_fail(err, ERR_INTERNAL, "internal error");
    db_bind_i64(st, 1, chat_id);
    db_bind_i64(st, 2, oldest);
    int rc;
    while ((rc = db_step(st)) == DB_ROW) {
        int64_t user_id = db_col_i64(st, 0);
        json_object *u = json_object_new_object();
        json_object_object_add(u, "id", json_i64(user_id));
        json_object_object_add(u, "user_name", json_str(col_text(st, 2)));
        json_object_object_add(u, "avatar_url", json_str(col_text(st, 3)));
        bool ok = cache_put(cache, user_id, u);
        json_object_put(u);
        if (!ok || idlist_push(&w->users, user_id) || idlist_push(&w->marks, db_col_i64(st, 1))) {
            db_done(st);
            return nova_fail(err, ERR_INTERNAL, "internal error");
        }
    }
    db_done(st);
    return rc == DB_DONE ? 0 : db_fail(db, err);
}

static void watermarks_free(watermarks *w)
{
    idlist_free(&w->users);
    idlist_free(&w->marks);
}

/* [ext] The reactions of a set of messages, in ONE statement: an object
 * mapping each message id (decimal text) to its [{emoji, count, me}] (me:
 * viewer among the reactors; viewer 0: false), emojis in the order of
 * their oldest reaction still there. */
static const char SQL_REACTIONS_OF[] =
    "SELECT message_id, emoji, count(*), max(CASE WHEN user_id = ?1 THEN 1 ELSE 0 END) "
    "FROM message_reactions WHERE message_id IN (SELECT value FROM json_each(?2)) "
    "GROUP BY message_id, emoji ORDER BY message_id, min(seq)";
static const char SQL_REACTIONS_OF_PG[] =
    "SELECT message_id, emoji, count(*), max(CASE WHEN user_id = ?1 THEN 1 ELSE 0 END) "
    "FROM message_reactions WHERE message_id IN "
    "(SELECT value::bigint FROM json_array_elements_text(?2::json)) "
    "GROUP BY message_id, emoji ORDER BY message_id, min(seq)";

static int reactions_of(nova_db *db, int64_t viewer, const int64_t *ids, size_t n,
                        json_object **out, nova_err *err)
{
    *out = json_object_new_object();
    if (!n) return 0;
    char *list = ids_json(ids, n);
    if (!list) return nova_fail(err, ERR_INTERNAL, "out of memory");
    db_stmt *st = db_prepare_for(db, SQL_REACTIONS_OF, SQL_REACTIONS_OF_PG);
    if (!st) {
        free(list);
        return nova_fail(err, ERR_INTERNAL, "internal error");
    }
    db_bind_i64(st, 1, viewer);
    db_bind_text(st, 2, list);
    int rc;
    while ((rc = db_step(st)) == DB_ROW) {
        char key[24];
        snprintf(key, sizeof key, "%lld", (long long)db_col_i64(st, 0));
        json_object *arr;
        if (!json_object_object_get_ex(*out, key, &arr)) {
            arr = json_object_new_array();
            json_object_object_add(*out, key, arr);
        }
        json_object *r = json_object_new_object();
        json_object_object_add(r, "emoji", json_str(col_text(st, 1)));
        json_object_object_add(r, "count", json_i64(db_col_i64(st, 2)));
        json_object_object_add(r, "me", json_object_new_boolean(db_col_i64(st, 3) != 0));
        json_object_array_add(arr, r);
    }
    db_done(st);
    free(list);
    return rc == DB_DONE ? 0 : db_fail(db, err);
}

/* Add "reactions" (that message's array from map, or []) to o. */
static void reactions_add(json_object *o, json_object *map, int64_t message_id)
{
    char key[24];
    snprintf(key, sizeof key, "%lld", (long long)message_id);
    json_object *arr = NULL;
    if (map && json_object_object_get_ex(map, key, &arr))
        json_object_get(arr);
    else
        arr = json_object_new_array();
    json_object_object_add(o, "reactions", arr);
}

/* ChatMessage.Detailed of every row of page (in its order) into list: the
 * messages they reply to and the replies to them are read in one
 * statement each for the whole page, not one per message. */
static int messages_detailed(nova_db *db, user_cache *cache, const watermarks *w,
                             const message_rows *page, int64_t viewer, json_object *list,
                             nova_err *err)
{
    message_rows parents = {0}, replies = {0};
    idlist ids = {0}, parent_ids = {0};
    int rc = 0;
    for (size_t i = 0; i < page->n && !rc; i++)
        if (idlist_push(&ids, page->v[i].id) ||
            (page->v[i].reply_to && idlist_push(&parent_ids, page->v[i].reply_to)))
            rc = nova_fail(err, ERR_INTERNAL, "out of memory");
    if (!rc)
        rc = rows_of(db, SQL_MESSAGES_BY_ID, SQL_MESSAGES_BY_ID_PG, viewer, parent_ids.v,
                     parent_ids.n, &parents, err);
    if (!rc)
        rc = rows_of(db, SQL_MESSAGES_REPLYING, SQL_MESSAGES_REPLYING_PG, viewer, ids.v, ids.n,
                     &replies, err);
    json_object *files = NULL; /* [ext] attachments: one statement for the page */
    if (!rc) rc = attachment_views_of(db, ids.v, ids.n, &files, err);
    json_object *reactions = NULL; /* [ext] message id -> [{emoji, count, me}] */
    if (!rc) rc = reactions_of(db, viewer, ids.v, ids.n, &reactions, err);
    for (size_t i = 0; i < page->n && !rc; i++) {
        const message_row *m = &page->v[i];
        json_object *o = message_basic(db, cache, m, err);
        if (!o) {
            rc = err->kind;
            break;
        }
        json_object_array_add(list, o);
        json_object *readers = json_object_new_array();
        json_object_object_add(o, "read_users", readers);
        for (size_t k = 0; k < w->users.n && !rc; k++) {
            if (w->marks.v[k] < m->id) continue;
            json_object *u = cached_user(db, cache, w->users.v[k], err);
            if (u)
                json_object_array_add(readers, u);
            else
                rc = err->kind;
        }
        json_object *parent = NULL;
        if (!rc && m->reply_to) {
            const message_row *p = row_by_id(&parents, m->reply_to);
            parent = p ? message_basic(db, cache, p, err)
                       : fail_null(err, ERR_NOT_FOUND, "message", m->reply_to);
            if (!parent) rc = err->kind;
        }
        json_object_object_add(o, "reply_to", parent);
        char key[24];
        json_object *file = NULL;
        snprintf(key, sizeof key, "%lld", (long long)m->id);
        if (!m->deleted && json_object_object_get_ex(files, key, &file)) json_object_get(file);
        json_object_object_add(o, "attachment", m->deleted ? NULL : file);
        json_object *by = json_object_new_array();
        json_object_object_add(o, "replied_by", by);
        /* replies is in id order: each message's replies in order too. */
        for (size_t k = 0; k < replies.n && !rc; k++) {
            if (replies.v[k].reply_to != m->id) continue;
            json_object *r = message_basic(db, cache, &replies.v[k], err);
            if (r)
                json_object_array_add(by, r);
            else
                rc = err->kind;
        }
        if (!rc) reactions_add(o, reactions, m->id);
    }
    json_object_put(files);
    json_object_put(reactions);
    rows_free(&parents);
    rows_free(&replies);
    idlist_free(&ids);
    idlist_free(&parent_ids);
    return rc;
}

/* The row of one message, as viewer sees it: 0, or a failure kind. */
static int message_row_of(nova_db *db, int64_t message_id, int64_t viewer, message_rows *out,
                          nova_err *err)
{
    db_stmt *st = db_prepare(db, SQL_MESSAGE_VIEW);
    if (st) {
        db_bind_i64(st, 1, viewer);
        db_bind_i64(st, 2, message_id);
    }
    int rc = rows_read(db, st, out, err);
    if (!rc && !out->n) {
        fail_null(err, ERR_NOT_FOUND, "message", message_id);
        rc = ERR_NOT_FOUND;
    }
    return rc;
}

json_object *view_message_basic(nova_db *db, int64_t message_id, int64_t viewer, nova_err *err)
{
    user_cache cache = {0};
    message_rows row = {0};
    json_object *o = NULL;
    if (!message_row_of(db, message_id, viewer, &row, err))
        o = message_basic(db, &cache, &row.v[0], err);
    rows_free(&row);
    user_cache_free(&cache);
    return o;
}

json_object *view_message_detailed(nova_db *db, int64_t message_id, int64_t viewer, nova_err *err)
{
    user_cache cache = {0};
    watermarks w = {0};
    message_rows row = {0};
    json_object *list = json_object_new_array(), *o = NULL;
    if (!message_row_of(db, message_id, viewer, &row, err) &&
        !load_watermarks(db, &cache, row.v[0].chat_id, row.v[0].id, &w, err) &&
        !messages_detailed(db, &cache, &w, &row, viewer, list, err))
        o = json_object_get(json_object_array_get_idx(list, 0));
    json_object_put(list);
    rows_free(&row);
    watermarks_free(&w);
    user_cache_free(&cache);
    return o;
}

json_object *view_message_basics(nova_db *db, const int64_t *ids, size_t n, int64_t viewer,
                                 nova_err *err)
{
    user_cache cache = {0};
    message_rows rows = {0};
    json_object *list = json_object_new_array();
    int rc = rows_of(db, SQL_MESSAGES_BY_ID, SQL_MESSAGES_BY_ID_PG, viewer, ids, n, &rows, err);
    for (size_t i = 0; i < n && !rc; i++) {
        const message_row *m = row_by_id(&rows, ids[i]);
        json_object *o = m ? message_basic(db, &cache, m, err)
                           : fail_null(err, ERR_NOT_FOUND, "message", ids[i]);
        if (o)
            json_object_array_add(list, o);
        else
            rc = err->kind;
    }
    rows_free(&rows);
    user_cache_free(&cache);
    if (rc) {
        json_object_put(list);
        return NULL;
    }
    return list;
}

static const char SQL_MESSAGES_PAGE[] =
    MESSAGE_COLUMNS "WHERE m.chat_id = ?2 AND m.id < ?3 "
                    "AND m.send_time >= ?4 AND m.send_time <= ?5 "
                    "AND (?6 IS NULL OR m.sender_id IN (SELECT value FROM json_each(?6))) "
                    "ORDER BY m.id DESC LIMIT ?7";
static const char SQL_MESSAGES_PAGE_PG[] =
    MESSAGE_COLUMNS "WHERE m.chat_id = ?2 AND m.id < ?3 "
                    "AND m.send_time >= ?4 AND m.send_time <= ?5 "
                    "AND (?6::text IS NULL OR m.sender_id IN "
                    "(SELECT value::bigint FROM json_array_elements_text(?6::json))) "
                    "ORDER BY m.id DESC LIMIT ?7";

json_object *view_messages(nova_db *db, int64_t chat_id, int64_t viewer, const message_query *q,
                           nova_err *err)
{
    db_stmt *st = db_prepare_for(db, SQL_MESSAGES_PAGE, SQL_MESSAGES_PAGE_PG);
    if (st) {
        db_bind_i64(st, 1, viewer);
        db_bind_i64(st, 2, chat_id);
        db_bind_i64(st, 3, q->before > 0 ? q->before : INT64_MAX);
        db_bind_double(st, 4, q->has_begin ? q->begin : -1e300);
        db_bind_double(st, 5, q->has_end ? q->end : 1e300);
        if (q->senders) {
            char *list = ids_json(q->senders->v, q->senders->n);
            if (list) db_bind_text(st, 6, list);
            free(list);
        }
        db_bind_i64(st, 7, q->limit > 0 ? q->limit : INT64_MAX);
    }
    message_rows page = {0};
    if (rows_read(db, st, &page, err)) {
        rows_free(&page);
        return NULL;
    }
    user_cache cache = {0};
    watermarks w = {0};
    json_object *list = json_object_new_array();
    /* The page is newest first: its last row is its oldest message. */
    int rc = page.n ? load_watermarks(db, &cache, chat_id, page.v[page.n - 1].id, &w, err) : 0;
    if (!rc) rc = messages_detailed(db, &cache, &w, &page, viewer, list, err);
    watermarks_free(&w);
    user_cache_free(&cache);
    rows_free(&page);
    if (rc) {
        json_object_put(list);
        return NULL;
    }
    return list;
}

/* --- chats -------------------------------------------------------------- */

static const char SQL_CHAT_VIEW[] = "SELECT id, name, owner_id FROM chats WHERE id = ?";
static const char SQL_CHAT_ADMINS[] =
    "SELECT user_id FROM chat_members WHERE chat_id = ? AND is_admin = 1 ORDER BY id";
static const char SQL_CHAT_MEMBERS[] =
    "SELECT user_id FROM chat_members WHERE chat_id = ? ORDER BY id";
static const char SQL_CHAT_LAST_MESSAGE[] =
    "SELECT m.id FROM messages m WHERE m.chat_id = ?1 AND m.recalled = 0 AND NOT EXISTS "
    "(SELECT 1 FROM message_deletions d WHERE d.user_id = ?2 AND d.message_id = m.id) "
    "ORDER BY m.id DESC LIMIT 1";

json_object *view_chat(nova_db *db, int64_t chat_id, int64_t viewer, nova_err *err)
{
    db_stmt *st = db_prepare(db, SQL_CHAT_VIEW);
    if (st) db_bind_i64(st, 1, chat_id);
    if (step_one(db, st, "chat", chat_id, err) != 1) return NULL;
    json_object *o = json_object_new_object();
    json_object_object_add(o, "chat_id", json_i64(db_col_i64(st, 0)));
    json_object_object_add(o, "chat_name", json_str(col_text(st, 1)));
    int64_t owner = db_col_i64(st, 2);
    db_done(st);

    user_cache cache = {0};
    json_object *owner_obj = cached_user(db, &cache, owner, err);
    int rc = owner_obj ? 0 : err->kind;
    json_object_object_add(o, "chat_owner", owner_obj);
    if (!rc) {
        st = db_prepare(db, SQL_CHAT_ADMINS);
        if (st) db_bind_i64(st, 1, chat_id);
        rc = add_users(db, &cache, o, "chat_admins", st, err);
    }
    if (!rc) {
        st = db_prepare(db, SQL_CHAT_MEMBERS);
        if (st) db_bind_i64(st, 1, chat_id);
        rc = add_users(db, &cache, o, "chat_members", st, err);
    }
    if (!rc) {
        st = db_prepare(db, SQL_CHAT_LAST_MESSAGE);
        if (st) {
            db_bind_i64(st, 1, chat_id);
            db_bind_i64(st, 2, viewer);
        }
        idlist last = {0};
        rc = db_collect_ids(db, st, &last, err);
        json_object *m = json_str("");
        if (!rc && last.n) {
            message_rows row = {0};
            json_object_put(m);
            m = NULL;
            rc = message_row_of(db, last.v[0], viewer, &row, err);
            if (!rc) m = message_basic(db, &cache, &row.v[0], err);
            if (!rc && !m) rc = err->kind;
            rows_free(&row);
        }
        idlist_free(&last);
        json_object_object_add(o, "last_message", m);
    }
    user_cache_free(&cache);
    if (rc) {
        json_object_put(o);
        return NULL;
    }
    return o;
}

/* The unread count is the chat's message count less the viewer's read
 * count (schema 004): one row of each, whatever the chat's length. */
static const char SQL_CHAT_RELATION[] =
    "SELECT r.nickname, c.message_count - r.read_count FROM chat_relations r "
    "JOIN chats c ON c.id = r.chat_id WHERE r.chat_id = ? AND r.user_id = ?";

json_object *view_chat_relation(nova_db *db, int64_t chat_id, int64_t viewer, nova_err *err)
{
    db_stmt *st = db_prepare(db, SQL_CHAT_RELATION);
    if (st) {
        db_bind_i64(st, 1, chat_id);
        db_bind_i64(st, 2, viewer);
    }
    if (step_one(db, st, "chat", chat_id, err) != 1) return NULL;
    json_object *nickname = json_str(col_text(st, 0));
    int64_t unread = db_col_i64(st, 1);
    db_done(st);
    json_object *chat = view_chat(db, chat_id, viewer, err);
    if (!chat) {
        json_object_put(nickname);
        return NULL;
    }
    json_object *o = json_object_new_object();
    json_object_object_add(o, "chat", chat);
    json_object_object_add(o, "nickname", nickname);
    json_object_object_add(o, "unread_count", json_i64(unread));
    return o;
}

static const char SQL_CHAT_INVITATION_VIEW[] =
    "SELECT id, chat_id, user_id, invited_by, created_at, accepted, approved_by IS NOT NULL "
    "FROM chat_invitations WHERE id = ?";

json_object *view_chat_invitation(nova_db *db, int64_t invitation_id, nova_err *err)
{
    db_stmt *st = db_prepare(db, SQL_CHAT_INVITATION_VIEW);
    if (st) db_bind_i64(st, 1, invitation_id);
    if (step_one(db, st, "invitation", invitation_id, err) != 1) return NULL;
    json_object *o = json_object_new_object();
    json_object_object_add(o, "invitation_id", json_i64(db_col_i64(st, 0)));
    json_object_object_add(o, "chat_id", json_i64(db_col_i64(st, 1)));
    int64_t user = db_col_i64(st, 2), by = db_col_i64(st, 3);
    double created = db_col_double(st, 4);
    bool accepted = db_col_i64(st, 5) != 0, approved = db_col_i64(st, 6) != 0;
    db_done(st);
    json_object *u = view_user_basic(db, user, err);
    json_object *b = u ? view_user_basic(db, by, err) : NULL;
    json_object_object_add(o, "user", u);
    json_object_object_add(o, "invited_by", b);
    json_object_object_add(o, "created_at", json_time(created));
    if (config_invite_consent(db->cfg)) { /* [ext] the consent flow only: else API.md's shape */
        json_object_object_add(o, "accepted", json_object_new_boolean(accepted));
        json_object_object_add(o, "approved", json_object_new_boolean(approved));
    }
    if (!b) {
        json_object_put(o);
        return NULL;
    }
    return o;
}

static const char SQL_RECEIVED_VIEW[] =
    "SELECT c.name, min(i.created_at), coalesce(max(i.approved_by), 0), coalesce(max(i.accepted), "
    "0) FROM chat_invitations i JOIN chats c ON c.id = i.chat_id "
    "WHERE i.chat_id = ?1 AND i.user_id = ?2 GROUP BY c.name";
static const char SQL_RECEIVED_INVITERS[] =
    "SELECT invited_by FROM chat_invitations WHERE chat_id = ? AND user_id = ? ORDER BY id";

/* What an invitee sees of a group it is invited to: its name and who
 * invited them, nothing of its members or messages. */
json_object *view_received_invitation(nova_db *db, int64_t chat_id, int64_t user_id,
                                      nova_err *err)
{
    db_stmt *st = db_prepare(db, SQL_RECEIVED_VIEW);
    if (st) {
        db_bind_i64(st, 1, chat_id);
        db_bind_i64(st, 2, user_id);
    }
    if (step_one(db, st, "invitation to chat", chat_id, err) != 1) return NULL;
    json_object *o = json_object_new_object();
    json_object_object_add(o, "chat_id", json_i64(chat_id));
    json_object_object_add(o, "chat_name", json_str(col_text(st, 0)));
    json_object_object_add(o, "created_at", json_time(db_col_double(st, 1)));
    json_object_object_add(o, "approved", json_object_new_boolean(db_col_i64(st, 2) != 0));
    json_object_object_add(o, "accepted", json_object_new_boolean(db_col_i64(st, 3) != 0));
    db_done(st);
    st = db_prepare(db, SQL_RECEIVED_INVITERS);
    if (st) {
        db_bind_i64(st, 1, chat_id);
        db_bind_i64(st, 2, user_id);
    }
    json_object *by = view_list_plain(db, st, view_user_basic, err);
    if (!by) {
        json_object_put(o);
        return NULL;
    }
    json_object_object_add(o, "invited_by", by);
    return o;
}

/* The views of every id st yields, with one of the two kinds of view. */
static json_object *list_of(nova_db *db, db_stmt *st, int64_t viewer, view_fn view,
                            view_plain_fn plain, nova_err *err)
{
    idlist ids = {0};
    if (db_collect_ids(db, st, &ids, err)) return NULL;
    json_object *arr = json_object_new_array();
    for (size_t i = 0; i < ids.n; i++) {
        json_object *o = view ? view(db, ids.v[i], viewer, err) : plain(db, ids.v[i], err);
        if (!o) {
            json_object_put(arr);
            arr = NULL;
            break;
        }
        json_object_array_add(arr, o);
    }
    idlist_free(&ids);
    return arr;
}

json_object *view_list(nova_db *db, db_stmt *st, int64_t viewer, view_fn view, nova_err *err)
{
    return list_of(db, st, viewer, view, NULL, err);
}

json_object *view_list_plain(nova_db *db, db_stmt *st, view_plain_fn view, nova_err *err)
{
    return list_of(db, st, 0, NULL, view, err);
}
