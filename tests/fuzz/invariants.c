/* invariants.c - database invariants of the stateful fuzz harnesses. */
#include "invariants.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/check.h"
#include "../../common/json_util.h"
#include "../../common/validate.h"
#include "shapes.h"
#include "world.h"

/* The connection's statement cache (db.h) keeps these prepared: sql must
 * be a constant string. */
static sqlite3_stmt *prepare(nova_db *db, const char *sql)
{
    db_stmt *prepared = db_prepare(db, sql);
    sqlite3_stmt *st = prepared ? db_sqlite_stmt(prepared) : NULL;
    if (!st) fuzz_fail("cannot prepare an invariant query: %s\n%s", sqlite3_errmsg(db_sqlite_handle(db)), sql);
    return st;
}

static void read_begin(nova_db *db);
static void read_end(nova_db *db);

/* The whole content, table by table, for the fingerprint. */
static const char *const dump_sql[] = {
    "SELECT * FROM users ORDER BY id",
    "SELECT id, token_hash, user_id, created_at, expires_at FROM sessions ORDER BY id",
    "SELECT * FROM friend_groups ORDER BY id",
    "SELECT * FROM chats ORDER BY id",
    "SELECT * FROM friends ORDER BY user_id, friend_id",
    "SELECT * FROM friend_invitations ORDER BY id",
    "SELECT * FROM chat_members ORDER BY id",
    "SELECT * FROM chat_relations ORDER BY chat_id, user_id",
    "SELECT * FROM messages ORDER BY id",
    "SELECT * FROM message_deletions ORDER BY user_id, message_id",
    "SELECT * FROM chat_invitations ORDER BY id",
    "SELECT * FROM outbox ORDER BY id",
    "SELECT * FROM realtime_daemons ORDER BY name",
    "SELECT * FROM sqlite_sequence ORDER BY name",
    /* last: the FTS5 indexes (the user names, [ext] search), which an
     * undo rebuilds by their triggers: equal content, other pages */
    "SELECT rowid, * FROM users_name_trigram_data ORDER BY rowid",
    "SELECT rowid, * FROM message_search_data ORDER BY rowid",
};
#define INDEX_DUMPS 2

/* The domain invariants (common/check.c), each one asserted. */
static void fail_broken(void *ctx, const char *rule, const char *broken)
{
    (void)ctx;
    if (broken) fuzz_fail("database: %s: broken by row %s", rule, broken);
}

/* One read transaction around a batch of queries (fewer file locks). */
static void read_begin(nova_db *db)
{
    if (!sqlite3_get_autocommit(db_sqlite_handle(db)) || db->in_write)
        fuzz_fail("a transaction is still open after the request");
    if (sqlite3_exec(db_sqlite_handle(db), "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
        fuzz_fail("BEGIN: %s", sqlite3_errmsg(db_sqlite_handle(db)));
}

static void read_end(nova_db *db)
{
    if (sqlite3_exec(db_sqlite_handle(db), "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        fuzz_fail("COMMIT: %s", sqlite3_errmsg(db_sqlite_handle(db)));
}

void inv_check_db(nova_db *db, bool deep)
{
    if (!sqlite3_get_autocommit(db_sqlite_handle(db)) || db->in_write)
        fuzz_fail("a transaction is still open after the request");
    nova_err err;
    if (check_database(db, deep, fail_broken, NULL, &err) < 0)
        fuzz_fail("cannot check the database: %s", err.msg);
    /* The name index agrees with the users table (a write-free command,
     * but SQLite counts it as a change: the caller resets afterwards). */
    if (deep && sqlite3_exec(db_sqlite_handle(db),
                             "INSERT INTO users_name_trigram (users_name_trigram, rank) "
                             "VALUES ('integrity-check', 1)",
                             NULL, NULL, NULL) != SQLITE_OK)
        fuzz_fail("database: the user name index is corrupt: %s", sqlite3_errmsg(db_sqlite_handle(db)));
    /* [ext] search: the message index agrees with the messages it covers */
    if (deep && sqlite3_exec(db_sqlite_handle(db),
                             "INSERT INTO message_search (message_search, rank) "
                             "VALUES ('integrity-check', 1)",
                             NULL, NULL, NULL) != SQLITE_OK)
        fuzz_fail("database: the message search index is corrupt: %s",
                  sqlite3_errmsg(db_sqlite_handle(db)));
}

/* --- fingerprint --------------------------------------------------------- */

/* A simple 64-bit mix over 8-byte words (not cryptographic; equal
 * content gives equal hashes, a change almost surely a different one). */
static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, b + i, 8);
        h = (h ^ w) * 0x100000001b3ull;
        h ^= h >> 29;
    }
    for (; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ull;
    return (h ^ n) * 0x9E3779B97F4A7C15ull;
}

uint64_t inv_fingerprint(nova_db *db, bool with_index)
{
    uint64_t h = 0xcbf29ce484222325ull;
    read_begin(db);
    size_t tables = sizeof dump_sql / sizeof dump_sql[0] - (with_index ? 0 : INDEX_DUMPS);
    for (size_t t = 0; t < tables; t++) {
        sqlite3_stmt *st = prepare(db, dump_sql[t]);
        h = fnv(h, &t, sizeof t);
        int rc;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            for (int c = 0, n = sqlite3_column_count(st); c < n; c++) {
                int type = sqlite3_column_type(st, c);
                h = fnv(h, &type, sizeof type);
                if (type == SQLITE_INTEGER) {
                    sqlite3_int64 v = sqlite3_column_int64(st, c);
                    h = fnv(h, &v, sizeof v);
                } else if (type == SQLITE_FLOAT) {
                    double v = sqlite3_column_double(st, c);
                    h = fnv(h, &v, sizeof v);
                } else if (type != SQLITE_NULL) {
                    const void *b = sqlite3_column_blob(st, c);
                    h = fnv(h, b, (size_t)sqlite3_column_bytes(st, c));
                }
            }
            h = fnv(h, "\n", 1);
        }
        sqlite3_reset(st);
        if (rc != SQLITE_DONE) fuzz_fail("fingerprint query failed: %s", sqlite3_errmsg(db_sqlite_handle(db)));
    }
    read_end(db);
    return h;
}

/* --- outbox -------------------------------------------------------------- */

int64_t inv_outbox_newest(nova_db *db)
{
    static const char sql[] = "SELECT coalesce(max(id), 0) FROM outbox";
    sqlite3_stmt *st = prepare(db, sql);
    int64_t v = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_reset(st);
    return v;
}

static bool has_recipient(json_object *recipients, int64_t id)
{
    for (size_t i = 0, n = json_object_array_length(recipients); i < n; i++)
        if (json_object_get_int64(json_object_array_get_idx(recipients, i)) == id) return true;
    return false;
}

static void check_event(int64_t id, const char *action, const char *data_text,
                        const char *recipients_text, bool has_session, const char *where)
{
    if (!shape_known_event(action)) fuzz_fail("%s: unknown action '%s'", where, action);
    json_object *data = shape_parse(data_text, strlen(data_text), where);
    shape_event_data(action, data, where);
    json_object *rcpt = shape_parse(recipients_text, strlen(recipients_text), where);
    if (!json_object_is_type(rcpt, json_type_array) || !rcpt)
        fuzz_fail("%s: recipients are not an array: %s", where, recipients_text);
    size_t n = json_object_array_length(rcpt);
    if (!n) fuzz_fail("%s: event %lld (%s) has no recipient", where, (long long)id, action);
    int64_t prev = 0;
    for (size_t i = 0; i < n; i++) {
        int64_t u;
        if (!json_is_int64(json_object_array_get_idx(rcpt, i), &u) || u <= prev || u <= 2)
            fuzz_fail("%s: recipients not sorted distinct user ids: %s", where, recipients_text);
        prev = u;
    }
    bool single = !strcmp(action, "logout") || !strcmp(action, "profile_change") ||
                  !strcmp(action, "message_deleted") || !strcmp(action, "friend_created") ||
                  !strcmp(action, "friend_deleted");
    if (single && n != 1) fuzz_fail("%s: %s to %zu users: %s", where, action, n, recipients_text);
    if (has_session != !strcmp(action, "logout"))
        fuzz_fail("%s: %s %s restricted to a session", where, action,
                  has_session ? "is" : "is not");
    const char *about = !strcmp(action, "owner_state_change") ? "owner_id" : "user_id";
    if (!strcmp(action, "member_added") || !strcmp(action, "member_deleted") ||
        !strcmp(action, "messages_read") || !strcmp(action, "admin_state_change") ||
        !strcmp(action, "owner_state_change")) {
        if (!has_recipient(rcpt, shape_int(data, about)))
            fuzz_fail("%s: %s does not reach user %lld: %s", where, action,
                      (long long)shape_int(data, about), recipients_text);
    }
    if (!strcmp(action, "friend_created") || !strcmp(action, "friend_deleted")) {
        if (has_recipient(rcpt, shape_int(json_object_object_get(data, "friend"), "id")))
            fuzz_fail("%s: %s sent to the friend it describes", where, action);
    }
    if (!strcmp(action, "new_message")) {
        int64_t sender = shape_int(
            json_object_object_get(json_object_object_get(data, "message"), "sender"), "id");
        if (sender > 2 && !has_recipient(rcpt, sender))
            fuzz_fail("%s: new_message does not reach its sender %lld", where, (long long)sender);
    }
    if (!strcmp(action, "chat_deleted")) {
        json_object *members =
            json_object_object_get(json_object_object_get(data, "chat"), "chat_members");
        size_t m = json_object_array_length(members);
        bool same = m == n;
        for (size_t i = 0; same && i < m; i++)
            same = has_recipient(rcpt, shape_int(json_object_array_get_idx(members, i), "id"));
        if (!same) fuzz_fail("%s: chat_deleted not sent to exactly the members", where);
    }
    json_object_put(data);
    json_object_put(rcpt);
}

void inv_check_outbox(nova_db *db, int64_t after_id)
{
    static const char sql[] = "SELECT id, action, data, recipients, session_id FROM outbox "
                              "WHERE id > ? ORDER BY id";
    sqlite3_stmt *st = prepare(db, sql);
    sqlite3_bind_int64(st, 1, after_id);
    while (sqlite3_step(st) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(st, 0);
        char where[64];
        snprintf(where, sizeof where, "outbox event %lld", (long long)id);
        check_event(id, (const char *)sqlite3_column_text(st, 1),
                    (const char *)sqlite3_column_text(st, 2),
                    (const char *)sqlite3_column_text(st, 3),
                    sqlite3_column_type(st, 4) != SQLITE_NULL, where);
    }
    sqlite3_reset(st);
}
