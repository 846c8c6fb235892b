/* copy.c - a database copied row by row through the storage seam, so that
 * either engine can be the source and either the destination.
 *
 * copy_tables describes every table that is copied: its columns, the type
 * each value travels as, its key and its id sequence, in an order that
 * satisfies every foreign key (users before what refers to them, messages
 * by id: a reply is always younger than the message it replies to). The
 * source is read a page at a time by primary key (key > the last one
 * read), so that PostgreSQL never hands a whole table over at once.
 * realtime_daemons and realtime_samples are not copied: they are each
 * running daemon's own state and history. */
#include "copy.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>

#include "../common/migrate.h"
#include "../common/outbox.h"

enum { PAGE = 500, MAX_KEYS = 2 };

/* How a table's ids are handed out, on each engine. */
enum copy_sequence {
    SEQ_NONE,    /* no id column */
    SEQ_ROWID,   /* SQLite: max(id) + 1, nothing to carry; PostgreSQL: an identity */
    SEQ_AUTOINC, /* SQLite: AUTOINCREMENT (sqlite_sequence); PostgreSQL: an identity */
    SEQ_OUTBOX,  /* as SEQ_AUTOINC, and its position is outbox_bounds' newest */
};

struct copy_table {
    const char *name;
    /* One letter per column, in the order of the column list of the SQL:
     * i integer, r real (double), t text, b blob. */
    const char *types;
    int keys; /* the first `keys` columns are the primary key, integers */
    enum copy_sequence sequence;
    const char *select; /* the rows after the key ?1..?keys, by key, at most ?(keys + 1) */
    const char *insert; /* every column, bound in order */
};

#define USERS "id, user_name, password_hash, email, phone, avatar_url, is_system, created_at"
#define SESSIONS "id, token_hash, user_id, created_at, last_seen, expires_at"
#define FRIEND_GROUPS "id, user_id, name, is_default"
#define CHATS "id, name, owner_id, created_at, message_count"
#define FRIENDS "user_id, friend_id, nickname, group_id, chat_id, created_at"
#define FRIEND_INVITATIONS "id, sender_id, receiver_id, comment, source_chat_id, created_at"
#define CHAT_MEMBERS "id, chat_id, user_id, is_admin, joined_at"
#define CHAT_RELATIONS "chat_id, user_id, nickname, last_read_id, read_count"
#define MESSAGES "id, chat_id, sender_id, content, send_time, reply_to_id, recalled"
#define MESSAGE_DELETIONS "user_id, message_id"
#define CHAT_INVITATIONS "id, chat_id, user_id, invited_by, created_at, accepted, approved_by"
#define OPERATORS "id, name, password_hash, created_at"
#define OPERATOR_SESSIONS "id, token_hash, operator_id, created_at, last_seen, expires_at"
#define OUTBOX "id, created_at, action, data, recipients, session_id, origin, request_id"
#define ATTACHMENTS "id, chat_id, uploader_id, message_id, hash, name, size, mime, created_at"

/* The select and insert of a table keyed by id, and of one keyed by the
 * pair (a, b). */
#define BY_ID(table, columns, params)                                                              \
    "SELECT " columns " FROM " table " WHERE id > ?1 ORDER BY id LIMIT ?2",                        \
        "INSERT INTO " table " (" columns ") VALUES (" params ")"
#define BY_PAIR(table, columns, a, b, params)                                                      \
    "SELECT " columns " FROM " table " WHERE (" a ", " b ") > (?1, ?2) ORDER BY " a ", " b         \
    " LIMIT ?3",                                                                                   \
        "INSERT INTO " table " (" columns ") VALUES (" params ")"

static const struct copy_table copy_tables[] = {
    /* #SYSTEM (1) and #DELETED (2) come with the migration. */
    {"users", "itttttir", 1, SEQ_ROWID,
     "SELECT " USERS " FROM users WHERE id > ?1 AND id > 2 ORDER BY id LIMIT ?2",
     "INSERT INTO users (" USERS ") VALUES (?, ?, ?, ?, ?, ?, ?, ?)"},
    {"sessions", "ibirrr", 1, SEQ_AUTOINC, BY_ID("sessions", SESSIONS, "?, ?, ?, ?, ?, ?")},
    {"friend_groups", "iiti", 1, SEQ_ROWID, BY_ID("friend_groups", FRIEND_GROUPS, "?, ?, ?, ?")},
    {"chats", "itiri", 1, SEQ_AUTOINC, BY_ID("chats", CHATS, "?, ?, ?, ?, ?")},
    {"friends", "iitiir", 2, SEQ_NONE,
     BY_PAIR("friends", FRIENDS, "user_id", "friend_id", "?, ?, ?, ?, ?, ?")},
    {"friend_invitations", "iiitir", 1, SEQ_AUTOINC,
     BY_ID("friend_invitations", FRIEND_INVITATIONS, "?, ?, ?, ?, ?, ?")},
    {"chat_members", "iiiir", 1, SEQ_ROWID, BY_ID("chat_members", CHAT_MEMBERS, "?, ?, ?, ?, ?")},
    {"chat_relations", "iitii", 2, SEQ_NONE,
     BY_PAIR("chat_relations", CHAT_RELATIONS, "chat_id", "user_id", "?, ?, ?, ?, ?")},
    {"messages", "iiitrii", 1, SEQ_AUTOINC, BY_ID("messages", MESSAGES, "?, ?, ?, ?, ?, ?, ?")},
    {"message_deletions", "ii", 2, SEQ_NONE,
     BY_PAIR("message_deletions", MESSAGE_DELETIONS, "user_id", "message_id", "?, ?")},
    {"attachments", "iiiittitr", 1, SEQ_AUTOINC,
     BY_ID("attachments", ATTACHMENTS, "?, ?, ?, ?, ?, ?, ?, ?, ?")},
    {"chat_invitations", "iiiirii", 1, SEQ_AUTOINC,
     BY_ID("chat_invitations", CHAT_INVITATIONS, "?, ?, ?, ?, ?, ?, ?")},
    {"operators", "ittr", 1, SEQ_AUTOINC, BY_ID("operators", OPERATORS, "?, ?, ?, ?")},
    {"operator_sessions", "ibirrr", 1, SEQ_AUTOINC,
     BY_ID("operator_sessions", OPERATOR_SESSIONS, "?, ?, ?, ?, ?, ?")},
    {"outbox", "irtttiti", 1, SEQ_OUTBOX, BY_ID("outbox", OUTBOX, "?, ?, ?, ?, ?, ?, ?, ?")},
};
enum { N_TABLES = sizeof copy_tables / sizeof copy_tables[0] };

/* A database that is about to be migrated must have no tables at all (not
 * somebody else's database named by mistake). */
static const char SQL_ANY_TABLE[] = "SELECT name FROM sqlite_master WHERE type = 'table' LIMIT 1";
static const char SQL_ANY_TABLE_PG[] =
    "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() LIMIT 1";

/* The last id a table's sequence handed out (0: none), by name. */
static const char SQL_SEQUENCE_OF[] =
    "SELECT coalesce((SELECT seq FROM sqlite_sequence WHERE name = ?1), 0)";
static const char SQL_SEQUENCE_OF_PG[] =
    "SELECT coalesce(pg_sequence_last_value(pg_get_serial_sequence(?1, 'id')::regclass), 0)";

/* Move a table's sequence to ?2 (SQLite: AUTOINCREMENT tables only). */
static const char SQL_SETVAL_PG[] = "SELECT setval(pg_get_serial_sequence(?1, 'id'), ?2)";
static const char SQL_SEQUENCE_RAISE[] =
    "UPDATE sqlite_sequence SET seq = ?2 WHERE name = ?1 AND seq < ?2";
static const char SQL_SEQUENCE_ADD[] =
    "INSERT INTO sqlite_sequence (name, seq) SELECT ?1, ?2 "
    "WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = ?1)";

/* The outbox's position when no retained event carries it (an old SQLite
 * database whose outbox was pruned empty): an event addressed to nobody. */
static const char SQL_POSITION_EVENT[] =
    "INSERT INTO outbox (id, created_at, action, data, recipients, request_id) "
    "VALUES (?1, ?2, 'position', '{}', '[]', 0)";

/* What the copy learnt of each table. */
struct copied {
    long long rows;
    int64_t last_id; /* the largest id copied; 0 for none or no id */
};

/* Every insert binds one value per letter of its table's types, and every
 * letter is a type copy_value knows. */
static int check_tables(nova_db *dst, nova_err *err)
{
    for (int i = 0; i < N_TABLES; i++) {
        const struct copy_table *t = &copy_tables[i];
        db_stmt *st = db_prepare(dst, t->insert);
        int params = st ? db_param_count(st) : -1;
        db_done(st);
        assert(t->keys >= 1 && t->keys <= MAX_KEYS);
        if (params != (int)strlen(t->types) || strspn(t->types, "irtb") != strlen(t->types))
            return nova_fail(err, ERR_INTERNAL, "copy: table %s has %d columns but %zu types",
                             t->name, params, strlen(t->types));
    }
    return 0;
}

/* One value from the current row of `from` into parameter col + 1 of `to`;
 * SQL NULL stays unbound, which is NULL. */
static void copy_value(db_stmt *from, db_stmt *to, int col, char type)
{
    if (db_col_is_null(from, col)) return;
    switch (type) {
    case 'i':
        db_bind_i64(to, col + 1, db_col_i64(from, col));
        break;
    case 'r':
        db_bind_double(to, col + 1, db_col_double(from, col));
        break;
    case 't':
        db_bind_text(to, col + 1, db_col_text(from, col));
        break;
    case 'b': {
        size_t len;
        const void *bytes = db_col_blob(from, col, &len);
        db_bind_blob(to, col + 1, bytes ? bytes : "", len); /* empty, not NULL */
        break;
    }
    default:
        assert(!"a column type of copy_tables is not one of i, r, t, b");
    }
}

/* Copy one table's rows, a page at a time. */
static int copy_rows(nova_db *src, nova_db *dst, const struct copy_table *t, struct copied *c,
                     nova_err *err)
{
    int64_t key[MAX_KEYS] = {0};
    int columns = (int)strlen(t->types);
    for (;;) {
        db_stmt *page = db_prepare(src, t->select);
        if (!page) return nova_fail(err, ERR_INTERNAL, "internal error");
        for (int k = 0; k < t->keys; k++)
            db_bind_i64(page, k + 1, key[k]);
        db_bind_i64(page, t->keys + 1, PAGE);
        int rows = 0, step;
        while ((step = db_step(page)) == DB_ROW) {
            db_stmt *insert = db_prepare(dst, t->insert);
            if (!insert) {
                db_done(page);
                return nova_fail(err, ERR_INTERNAL, "internal error");
            }
            for (int col = 0; col < columns; col++)
                copy_value(page, insert, col, t->types[col]);
            for (int k = 0; k < t->keys; k++)
                key[k] = db_col_i64(page, k);
            int rc = db_exec_done(dst, insert, err);
            if (rc) {
                db_done(page);
                return rc;
            }
            rows++;
        }
        db_done(page);
        if (step != DB_DONE) return db_fail(src, err);
        c->rows += rows;
        if (rows < PAGE) break;
    }
    c->last_id = t->sequence != SEQ_NONE ? key[0] : 0;
    return 0;
}

/* Is there a row in any copied table of db, or an outbox position? */
static int check_empty(nova_db *db, nova_err *err)
{
    for (int i = 0; i < N_TABLES; i++) {
        const struct copy_table *t = &copy_tables[i];
        db_stmt *st = db_prepare(db, t->select);
        if (!st) return nova_fail(err, ERR_INTERNAL, "internal error");
        for (int k = 0; k < t->keys; k++)
            db_bind_i64(st, k + 1, 0);
        db_bind_i64(st, t->keys + 1, 1);
        int step = db_step(st);
        db_done(st);
        if (step < 0) return db_fail(db, err);
        if (step == DB_ROW)
            return nova_fail(err, ERR_CONFLICT,
                             "the destination holds data already (table %s): copy only into a "
                             "new, empty database",
                             t->name);
    }
    int64_t oldest, newest;
    int rc = outbox_bounds(db, &oldest, &newest, err);
    if (!rc && newest)
        rc = nova_fail(err, ERR_CONFLICT,
                       "the destination's outbox has handed out ids already: copy only into a "
                       "new, empty database");
    return rc;
}

/* The last id src's sequence of t handed out, or 0. */
static int source_sequence(nova_db *src, const struct copy_table *t, int64_t *seq, nova_err *err)
{
    if (t->sequence == SEQ_OUTBOX) {
        int64_t oldest;
        return outbox_bounds(src, &oldest, seq, err);
    }
    db_stmt *st = db_prepare_for(src, SQL_SEQUENCE_OF, SQL_SEQUENCE_OF_PG);
    if (!st) return nova_fail(err, ERR_INTERNAL, "internal error");
    db_bind_text(st, 1, t->name);
    int step = db_step(st);
    if (step == DB_ROW) *seq = db_col_i64(st, 0);
    db_done(st);
    return step == DB_ROW ? 0 : db_fail(src, err);
}

/* Bind (name, position) to sql of dst and run it. */
static int run_position(nova_db *dst, const char *sql, const char *name, int64_t position,
                        nova_err *err)
{
    db_stmt *st = db_prepare(dst, sql);
    if (!st) return nova_fail(err, ERR_INTERNAL, "internal error");
    db_bind_text(st, 1, name);
    db_bind_i64(st, 2, position);
    return db_exec_done(dst, st, err);
}

/* Hand out ids after `position` from now on in dst's table t (copying
 * explicit ids leaves PostgreSQL's identities where they were). */
static int set_sequence(nova_db *dst, const struct copy_table *t, int64_t position, nova_err *err)
{
    if (!position) return 0;
    if (dst->kind == DB_POSTGRES) return run_position(dst, SQL_SETVAL_PG, t->name, position, err);
    if (t->sequence == SEQ_ROWID) return 0;
    int rc = run_position(dst, SQL_SEQUENCE_RAISE, t->name, position, err);
    return rc ? rc : run_position(dst, SQL_SEQUENCE_ADD, t->name, position, err);
}

/* Insert the event that carries the outbox position `newest`. */
static int keep_outbox_position(nova_db *dst, int64_t newest, nova_err *err)
{
    db_stmt *st = db_prepare(dst, SQL_POSITION_EVENT);
    if (!st) return nova_fail(err, ERR_INTERNAL, "internal error");
    db_bind_i64(st, 1, newest);
    db_bind_double(st, 2, nova_now());
    return db_exec_done(dst, st, err);
}

/* Every table, then every sequence, inside the open snapshot of src and
 * write transaction of dst. */
static int copy_all(nova_db *src, nova_db *dst, FILE *out, long long *total, nova_err *err)
{
    struct copied copied[N_TABLES] = {{0}};
    int rc = check_empty(dst, err);
    for (int i = 0; !rc && i < N_TABLES; i++) {
        rc = copy_rows(src, dst, &copy_tables[i], &copied[i], err);
        if (!rc && out) fprintf(out, "%-20s %10lld rows\n", copy_tables[i].name, copied[i].rows);
        *total += copied[i].rows;
    }
    for (int i = 0; !rc && i < N_TABLES; i++) {
        const struct copy_table *t = &copy_tables[i];
        if (t->sequence == SEQ_NONE) continue;
        int64_t seq = 0;
        rc = source_sequence(src, t, &seq, err);
        if (!rc && t->sequence == SEQ_OUTBOX && seq > copied[i].last_id) {
            rc = keep_outbox_position(dst, seq, err);
            if (!rc && out)
                fprintf(out, "outbox position #%lld kept by an event addressed to nobody\n",
                        (long long)seq);
        }
        if (!rc) rc = set_sequence(dst, t, seq > copied[i].last_id ? seq : copied[i].last_id, err);
    }
    return rc;
}

/* Migrate dst, refusing one that holds anything but Nova's schema. */
static int prepare_destination(nova_db *dst, FILE *out, nova_err *err)
{
    int version = migrate_db_version(dst), latest = migrate_latest_version();
    if (version < 0) return db_fail(dst, err);
    if (version > latest)
        return nova_fail(err, ERR_CONFLICT,
                         "the destination's schema (version %d) is newer than this build's (%d)",
                         version, latest);
    if (version == 0) {
        db_stmt *st = db_prepare_for(dst, SQL_ANY_TABLE, SQL_ANY_TABLE_PG);
        if (!st) return nova_fail(err, ERR_INTERNAL, "internal error");
        int step = db_step(st);
        char table[64] = "";
        if (step == DB_ROW && db_col_text(st, 0))
            snprintf(table, sizeof table, "%s", db_col_text(st, 0));
        db_done(st);
        if (step < 0) return db_fail(dst, err);
        if (step == DB_ROW)
            return nova_fail(err, ERR_CONFLICT,
                             "the destination is not a Nova database but has tables (%s): copy "
                             "only into a new, empty database",
                             table);
    }
    int rc = migrate_apply(dst, out, err);
    return rc ? rc : check_tables(dst, err);
}

int copy_database(nova_db *src, nova_db *dst, FILE *out, nova_err *err)
{
    double start = nova_now();
    int rc = migrate_check(src, err);
    if (!rc) rc = prepare_destination(dst, out, err);
    if (rc) return rc;
    if ((rc = db_begin_read(src, err))) return rc;
    if ((rc = db_begin(dst, err))) {
        db_rollback(src);
        return rc;
    }
    long long total = 0;
    rc = copy_all(src, dst, out, &total, err);
    if (!rc)
        rc = db_commit(dst, err);
    else
        db_rollback(dst);
    db_rollback(src); /* the end of the snapshot */
    if (!rc && out) fprintf(out, "copied %lld rows in %.2f s\n", total, nova_now() - start);
    return rc;
}

/* Remove a SQLite database file and what SQLite may have left beside it. */
static void remove_database_file(const char *path)
{
    char side[PATH_MAX];
    unlink(path);
    snprintf(side, sizeof side, "%s-wal", path);
    unlink(side);
    snprintf(side, sizeof side, "%s-shm", path);
    unlink(side);
}

int copy_to_new_file(nova_db *src, const nova_config *cfg, const char *path, nova_err *err)
{
    if (db_kind_of(path) != DB_SQLITE)
        return nova_fail(err, ERR_INVALID,
                         "a backup is a SQLite file: to copy into PostgreSQL, "
                         "use nova-admin copy");
    /* Claim the name (O_EXCL) before SQLite opens it: never anybody else's
     * file. SQLite takes an empty file for a new database. */
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0)
        return errno == EEXIST
                   ? nova_fail(err, ERR_CONFLICT, "%s exists already: choose a new file", path)
                   : nova_fail(err, ERR_UNAVAILABLE, "cannot create %s: %s", path, strerror(errno));
    close(fd);
    nova_config file_cfg = *cfg;
    file_cfg.db_path = (char *)path;
    nova_db *dst = db_open(&file_cfg, err);
    int rc = dst ? copy_database(src, dst, NULL, err) : err->kind;
    db_close(dst);
    if (rc) remove_database_file(path);
    return rc;
}
