/* copy.c - every row of one Nova database into another, of either engine.
 *
 * Each table is described once below: its columns with their types, the
 * query that reads it in key order (ids ascending, so that a reply's
 * message comes before the reply) and the insert that writes it. Tables are
 * listed in the order their references need. realtime_daemons is not
 * copied: it is each running daemon's own state. */
#include "copy.h"

#include <string.h>

#include "../common/migrate.h"
#include "../common/outbox.h"

struct copy_table {
    const char *name;
    const char *types; /* one letter a column: i integer, r real, t text, b blob */
    const char *select;
    const char *insert;
    const char *pg_sequence; /* moves the identity past the copied ids, or NULL */
};

static const struct copy_table tables[] = {
    {"users", "itttttir",
     "SELECT id, user_name, password_hash, email, phone, avatar_url, is_system, created_at "
     "FROM users WHERE id > 2 ORDER BY id", /* 1 and 2: made by the migration */
     "INSERT INTO users (id, user_name, password_hash, email, phone, avatar_url, is_system, "
     "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
     "SELECT setval(pg_get_serial_sequence('users', 'id'), (SELECT max(id) FROM users))"},
    {"friend_groups", "iiti", "SELECT id, user_id, name, is_default FROM friend_groups ORDER BY id",
     "INSERT INTO friend_groups (id, user_id, name, is_default) VALUES (?, ?, ?, ?)",
     "SELECT setval(pg_get_serial_sequence('friend_groups', 'id'), "
     "(SELECT coalesce(max(id), 1) FROM friend_groups))"},
    {"chats", "itir", "SELECT id, name, owner_id, created_at FROM chats ORDER BY id",
     "INSERT INTO chats (id, name, owner_id, created_at) VALUES (?, ?, ?, ?)",
     "SELECT setval(pg_get_serial_sequence('chats', 'id'), (SELECT coalesce(max(id), 1) FROM chats))"},
    {"friends", "iitiir",
     "SELECT user_id, friend_id, nickname, group_id, chat_id, created_at FROM friends "
     "ORDER BY user_id, friend_id",
     "INSERT INTO friends (user_id, friend_id, nickname, group_id, chat_id, created_at) "
     "VALUES (?, ?, ?, ?, ?, ?)",
     NULL},
    {"friend_invitations", "iiitir",
     "SELECT id, sender_id, receiver_id, comment, source_chat_id, created_at "
     "FROM friend_invitations ORDER BY id",
     "INSERT INTO friend_invitations (id, sender_id, receiver_id, comment, source_chat_id, "
     "created_at) VALUES (?, ?, ?, ?, ?, ?)",
     "SELECT setval(pg_get_serial_sequence('friend_invitations', 'id'), "
     "(SELECT coalesce(max(id), 1) FROM friend_invitations))"},
    {"chat_members", "iiiir",
     "SELECT id, chat_id, user_id, is_admin, joined_at FROM chat_members ORDER BY id",
     "INSERT INTO chat_members (id, chat_id, user_id, is_admin, joined_at) VALUES (?, ?, ?, ?, ?)",
     "SELECT setval(pg_get_serial_sequence('chat_members', 'id'), "
     "(SELECT coalesce(max(id), 1) FROM chat_members))"},
    {"chat_relations", "iiti",
     "SELECT chat_id, user_id, nickname, last_read_id FROM chat_relations "
     "ORDER BY chat_id, user_id",
     "INSERT INTO chat_relations (chat_id, user_id, nickname, last_read_id) VALUES (?, ?, ?, ?)",
     NULL},
    {"messages", "iiitrii",
     "SELECT id, chat_id, sender_id, content, send_time, reply_to_id, recalled FROM messages "
     "ORDER BY id",
     "INSERT INTO messages (id, chat_id, sender_id, content, send_time, reply_to_id, recalled) "
     "VALUES (?, ?, ?, ?, ?, ?, ?)",
     "SELECT setval(pg_get_serial_sequence('messages', 'id'), "
     "(SELECT coalesce(max(id), 1) FROM messages))"},
    {"message_deletions", "ii",
     "SELECT user_id, message_id FROM message_deletions ORDER BY user_id, message_id",
     "INSERT INTO message_deletions (user_id, message_id) VALUES (?, ?)", NULL},
    {"chat_invitations", "iiiir",
     "SELECT id, chat_id, user_id, invited_by, created_at FROM chat_invitations ORDER BY id",
     "INSERT INTO chat_invitations (id, chat_id, user_id, invited_by, created_at) "
     "VALUES (?, ?, ?, ?, ?)",
     "SELECT setval(pg_get_serial_sequence('chat_invitations', 'id'), "
     "(SELECT coalesce(max(id), 1) FROM chat_invitations))"},
    {"sessions", "ibirrr",
     "SELECT id, token_hash, user_id, created_at, last_seen, expires_at FROM sessions ORDER BY id",
     "INSERT INTO sessions (id, token_hash, user_id, created_at, last_seen, expires_at) "
     "VALUES (?, ?, ?, ?, ?, ?)",
     "SELECT setval(pg_get_serial_sequence('sessions', 'id'), "
     "(SELECT coalesce(max(id), 1) FROM sessions))"},
    {"outbox", "irtttiti",
     "SELECT id, created_at, action, data, recipients, session_id, origin, request_id FROM outbox "
     "ORDER BY id",
     "INSERT INTO outbox (id, created_at, action, data, recipients, session_id, origin, "
     "request_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
     "SELECT setval(pg_get_serial_sequence('outbox', 'id'), "
     "(SELECT coalesce(max(id), 1) FROM outbox))"},
};

static const char SQL_HOLDS_DATA[] =
    "SELECT (SELECT count(*) FROM users WHERE id > 2) + (SELECT count(*) FROM outbox) + "
    "(SELECT count(*) FROM sessions) + (SELECT count(*) FROM chats)";
/* The outbox's position when its newest events were all pruned (an old
 * database): an event addressed to nobody, so that ids go on after it. */
static const char SQL_POSITION[] =
    "INSERT INTO outbox (id, created_at, action, data, recipients, request_id) "
    "VALUES (?, ?, 'position', '{}', '[]', 0)";
static const char SQL_MAX_OUTBOX[] = "SELECT coalesce(max(id), 0) FROM outbox";

/* Bind column i of the row at `from` to parameter i + 1 of `to`. */
static void carry(db_stmt *from, db_stmt *to, const char *types)
{
    for (int i = 0; types[i]; i++) {
        if (db_col_is_null(from, i)) continue; /* unbound is NULL */
        switch (types[i]) {
        case 'i':
            db_bind_i64(to, i + 1, db_col_i64(from, i));
            break;
        case 'r':
            db_bind_double(to, i + 1, db_col_double(from, i));
            break;
        case 't':
            db_bind_text(to, i + 1, db_col_text(from, i));
            break;
        default: {
            size_t len;
            const void *p = db_col_blob(from, i, &len);
            db_bind_blob(to, i + 1, p, len);
        }
        }
    }
}

static int copy_table(nova_db *src, nova_db *dst, const struct copy_table *t, long *rows,
                      nova_err *err)
{
    db_stmt *in = db_prepare(src, t->select);
    if (!in) return nova_fail(err, ERR_INTERNAL, "cannot read %s", t->name);
    int rc;
    *rows = 0;
    while ((rc = db_step(in)) == DB_ROW) {
        db_stmt *out = db_prepare(dst, t->insert);
        if (!out) {
            db_done(in);
            return nova_fail(err, ERR_INTERNAL, "cannot write %s", t->name);
        }
        carry(in, out, t->types);
        if ((rc = db_exec_done(dst, out, err))) {
            db_done(in);
            return rc;
        }
        ++*rows;
    }
    db_done(in);
    if (rc < 0) return db_fail(src, err);
    if (t->pg_sequence && dst->kind == DB_POSTGRES)
        return db_exec_done(dst, db_prepare(dst, t->pg_sequence), err);
    return 0;
}

static int64_t single_value(nova_db *db, const char *sql)
{
    db_stmt *st = db_prepare(db, sql);
    int64_t v = st && db_step(st) == DB_ROW ? db_col_i64(st, 0) : -1;
    db_done(st);
    return v;
}

/* Keep the outbox's position: if the source handed out ids beyond its
 * newest row, mark the newest with an event for nobody. */
static int keep_position(nova_db *src, nova_db *dst, nova_err *err)
{
    int64_t oldest, newest;
    int rc = outbox_bounds(src, &oldest, &newest, err);
    if (rc) return rc;
    if (newest <= single_value(dst, SQL_MAX_OUTBOX)) return 0;
    db_stmt *st = db_prepare(dst, SQL_POSITION);
    if (!st) return nova_fail(err, ERR_INTERNAL, "internal error");
    db_bind_i64(st, 1, newest);
    db_bind_double(st, 2, nova_now());
    if ((rc = db_exec_done(dst, st, err))) return rc;
    if (dst->kind != DB_POSTGRES) return 0;
    return db_exec_done(dst, db_prepare(dst, tables[sizeof tables / sizeof tables[0] - 1].pg_sequence),
                        err);
}

int copy_database(nova_db *src, const nova_config *cfg, const char *dest, FILE *out,
                  nova_err *err)
{
    int rc = migrate_check(src, err);
    if (rc) return rc;
    nova_config dcfg = *cfg;
    dcfg.db_path = (char *)dest;
    nova_db *dst = db_open(&dcfg, err);
    if (!dst) return err->kind;
    if ((rc = migrate_apply(dst, NULL, err))) goto done;
    if (single_value(dst, SQL_HOLDS_DATA) != 0) {
        rc = nova_fail(err, ERR_CONFLICT,
                       "the destination holds data already: copy into an empty database");
        goto done;
    }
    double start = nova_now();
    if ((rc = db_begin_read(src, err))) goto done;
    if ((rc = db_begin(dst, err))) {
        db_rollback(src);
        goto done;
    }
    long total = 0;
    for (size_t i = 0; !rc && i < sizeof tables / sizeof tables[0]; i++) {
        long rows = 0;
        rc = copy_table(src, dst, &tables[i], &rows, err);
        if (!rc && out) fprintf(out, "%-20s %ld rows\n", tables[i].name, rows);
        total += rows;
    }
    if (!rc) rc = keep_position(src, dst, err);
    db_rollback(src);
    if (!rc) rc = db_commit(dst, err);
    if (rc)
        db_rollback(dst);
    else if (out)
        fprintf(out, "copied %ld rows in %.2f s\n", total, nova_now() - start); /* (no URI: it may hold a password) */
done:
    db_close(dst);
    return rc;
}
