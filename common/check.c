/* check.c - the domain invariants, checked on a live database.
 *
 * nova-admin check reports them to an operator; the fuzz harnesses assert
 * them after every input. Each rule is a query that lists the rows
 * breaking it (none: the rule holds), plus the stored profile fields
 * against the validators and the engine's own integrity and foreign-key
 * checks. Everything runs in one read snapshot, so a serving stack is not
 * disturbed and the report describes one moment. */
#include "check.h"

#include <stdio.h>
#include <string.h>

#include "validate.h"

/* Each query lists the rows that break the rule it is named after. */
static const struct {
    const char *rule;
    const char *sql;
} rules[] = {
    {"friendships are symmetric and share one private chat",
     "SELECT f.user_id, f.friend_id FROM friends f WHERE NOT EXISTS (SELECT 1 FROM friends g "
     "WHERE g.user_id = f.friend_id AND g.friend_id = f.user_id AND g.chat_id = f.chat_id)"},
    {"a friendship's chat is a private chat the friend is a member of",
     "SELECT f.user_id, f.chat_id FROM friends f LEFT JOIN chats c ON c.id = f.chat_id "
     "WHERE c.id IS NULL OR c.name <> '' OR NOT EXISTS (SELECT 1 FROM chat_members m "
     "WHERE m.chat_id = f.chat_id AND m.user_id = f.user_id)"},
    {"a private chat has exactly two members, who are friends over it",
     "SELECT id, members FROM (SELECT c.id, (SELECT count(*) FROM chat_members m "
     "WHERE m.chat_id = c.id) AS members, (SELECT count(*) FROM friends f WHERE f.chat_id = c.id) "
     "AS sides FROM chats c WHERE c.name = '') AS private WHERE members <> 2 OR sides <> 2"},
    {"a private chat has no admin",
     "SELECT m.chat_id, m.user_id FROM chat_members m JOIN chats c ON c.id = m.chat_id "
     "WHERE c.name = '' AND m.is_admin = 1"},
    {"the owner of a chat is a member",
     "SELECT c.id, c.owner_id FROM chats c WHERE NOT EXISTS (SELECT 1 FROM chat_members m "
     "WHERE m.chat_id = c.id AND m.user_id = c.owner_id)"},
    {"the owner of a chat is never flagged admin",
     "SELECT c.id, c.owner_id FROM chats c JOIN chat_members m ON m.chat_id = c.id "
     "AND m.user_id = c.owner_id WHERE m.is_admin = 1"},
    {"every member has a chat_relations row",
     "SELECT m.chat_id, m.user_id FROM chat_members m WHERE NOT EXISTS (SELECT 1 FROM "
     "chat_relations r WHERE r.chat_id = m.chat_id AND r.user_id = m.user_id)"},
    {"a group chat's name is 1-60 characters",
     "SELECT id, length(name) FROM chats WHERE name <> '' AND length(name) > 60"},
    {"the two system users exist unchanged, and no one else is a system user",
     "SELECT id, user_name FROM users WHERE (is_system = 1) <> (id IN (1, 2)) OR (id IN (1, 2) "
     "AND (password_hash IS NOT NULL OR user_name <> CASE id WHEN 1 THEN '#SYSTEM' "
     "ELSE '#DELETED' END)) UNION ALL SELECT 0, 'missing' WHERE (SELECT count(*) FROM users "
     "WHERE id IN (1, 2)) <> 2"},
    {"system users own, join and hold nothing",
     "SELECT 'member', user_id FROM chat_members WHERE user_id IN (1, 2) "
     "UNION ALL SELECT 'owner', owner_id FROM chats WHERE owner_id IN (1, 2) "
     "UNION ALL SELECT 'friend', user_id FROM friends WHERE user_id IN (1, 2) OR friend_id IN (1, "
     "2) "
     "UNION ALL SELECT 'session', user_id FROM sessions WHERE user_id IN (1, 2) "
     "UNION ALL SELECT 'friend group', user_id FROM friend_groups WHERE user_id IN (1, 2) "
     "UNION ALL SELECT 'friend invitation', sender_id FROM friend_invitations "
     "WHERE sender_id IN (1, 2) OR receiver_id IN (1, 2) "
     "UNION ALL SELECT 'chat invitation', user_id FROM chat_invitations "
     "WHERE user_id IN (1, 2) OR invited_by IN (1, 2) "
     "UNION ALL SELECT 'relation', user_id FROM chat_relations WHERE user_id IN (1, 2) "
     "UNION ALL SELECT 'hidden message', user_id FROM message_deletions WHERE user_id IN (1, 2)"},
    {"every user has exactly one default friend group",
     "SELECT id, n FROM (SELECT u.id, (SELECT count(*) FROM friend_groups g WHERE g.user_id = "
     "u.id AND g.is_default = 1) AS n FROM users u WHERE u.is_system = 0) AS defaults "
     "WHERE n <> 1"},
    {"the default group is named '' and others 1-100 characters",
     "SELECT id, name FROM friend_groups WHERE (is_default = 1 AND name <> '') "
     "OR (is_default = 0 AND (length(name) < 1 OR length(name) > 100))"},
    {"a friend's nickname is at most 100 characters",
     "SELECT user_id, friend_id FROM friends WHERE length(nickname) > 100"},
    {"no pending friend invitation between friends",
     "SELECT i.id, i.sender_id FROM friend_invitations i JOIN friends f "
     "ON f.user_id = i.sender_id AND f.friend_id = i.receiver_id"},
    {"no crossing friend invitations (the second one accepts the first)",
     "SELECT a.id, b.id FROM friend_invitations a JOIN friend_invitations b "
     "ON a.sender_id = b.receiver_id AND a.receiver_id = b.sender_id"},
    {"a friend invitation's comment is at most 500 characters",
     "SELECT id, length(comment) FROM friend_invitations WHERE length(comment) > 500"},
    {"a chat invitation is to a group, by someone else, of a non-member",
     "SELECT i.id, i.user_id FROM chat_invitations i JOIN chats c ON c.id = i.chat_id "
     "WHERE c.name = '' OR i.user_id = i.invited_by OR EXISTS (SELECT 1 FROM chat_members m "
     "WHERE m.chat_id = i.chat_id AND m.user_id = i.user_id)"},
    {"the consent marks of a chat invitation are those of every invitation of its pair",
     "SELECT a.id, b.id FROM chat_invitations a JOIN chat_invitations b ON b.chat_id = a.chat_id "
     "AND b.user_id = a.user_id AND b.id > a.id WHERE a.accepted <> b.accepted "
     "OR coalesce(a.approved_by, 0) <> coalesce(b.approved_by, 0)"},
    {"a reply is in the chat of the message it replies to, which is older",
     "SELECT m.id, m.reply_to_id FROM messages m JOIN messages p ON p.id = m.reply_to_id "
     "WHERE p.chat_id <> m.chat_id OR p.id >= m.id"},
    {"a recalled message is rewritten (text, #DELETED, no reply)",
     "SELECT id, sender_id FROM messages WHERE recalled = 1 AND (sender_id <> 2 "
     "OR content <> 'Message recalled' OR reply_to_id IS NOT NULL)"},
    {"messages are never empty (but for a file: [ext] attachments)",
     "SELECT id, chat_id FROM messages WHERE content = '' "
     "AND NOT EXISTS (SELECT 1 FROM attachments a WHERE a.message_id = messages.id)"},
    /* [ext] attachments */
    {"an attachment is in its message's chat, sent by its uploader, never recalled",
     "SELECT a.id, a.message_id FROM attachments a JOIN messages m ON m.id = a.message_id "
     "WHERE m.chat_id <> a.chat_id OR m.recalled = 1 "
     "OR (a.uploader_id IS NOT NULL AND m.sender_id <> a.uploader_id)"},
    {"an attachment names its file by a 64-digit hash, 1-255 characters of name, a known type",
     "SELECT id, chat_id FROM attachments WHERE length(hash) <> 64 OR lower(hash) <> hash "
     "OR length(name) < 1 OR length(name) > 255 OR size < 0 OR mime NOT IN ('image/png', "
     "'image/jpeg', 'image/gif', 'image/webp', 'application/pdf', 'text/plain', "
     "'application/octet-stream')"},
    {"a chat's message count is the number of its messages",
     "SELECT c.id, c.message_count FROM chats c WHERE c.message_count <> "
     "(SELECT count(*) FROM messages m WHERE m.chat_id = c.id)"},
    {"a read count is the number of the chat's messages up to the read watermark",
     "SELECT r.chat_id, r.user_id FROM chat_relations r WHERE r.read_count <> "
     "(SELECT count(*) FROM messages m WHERE m.chat_id = r.chat_id AND m.id <= r.last_read_id)"},
    {"a read watermark never passes the chat's newest message",
     "SELECT r.chat_id, r.user_id FROM chat_relations r WHERE r.last_read_id > "
     "(SELECT coalesce(max(m.id), 0) FROM messages m WHERE m.chat_id = r.chat_id)"},
};

/* Rules in each engine's own words: SQLite's AUTOINCREMENT record, and
 * PostgreSQL's identity sequence, must both stay ahead of every id. */
static const char RULE_SEQUENCE[] = "outbox ids stay below the outbox's id sequence";
static const char SQL_SEQUENCE_SQLITE[] =
    "SELECT max(id), (SELECT seq FROM sqlite_sequence WHERE name = 'outbox') FROM outbox "
    "HAVING max(id) > (SELECT seq FROM sqlite_sequence WHERE name = 'outbox')";
static const char SQL_SEQUENCE_PG[] =
    "SELECT max(id), (SELECT last_value FROM outbox_id_seq) FROM outbox "
    "HAVING max(id) > (SELECT last_value FROM outbox_id_seq)";

/* outbox_recipients holds exactly each event's recipients (its triggers
 * keep it: resuming sockets read through it). */
static const char RULE_RECIPIENTS[] =
    "every narrow event's recipients, and only they, are indexed";
#define NARROW_SQLITE                                                                              \
    "SELECT o.id, j.value FROM outbox o, json_each(o.recipients) j "                               \
    "WHERE json_array_length(o.recipients) <= 64"
#define NARROW_PG                                                                                  \
    "SELECT o.id, j.value::bigint FROM outbox o, json_array_elements_text(o.recipients::json) j " \
    "WHERE json_array_length(o.recipients::json) <= 64"
static const char SQL_RECIPIENTS_SQLITE[] =
    "SELECT * FROM (" NARROW_SQLITE " EXCEPT SELECT event_id, user_id FROM outbox_recipients) "
    "UNION ALL SELECT * FROM (SELECT event_id, user_id FROM outbox_recipients EXCEPT " NARROW_SQLITE
    ") LIMIT 1";
static const char SQL_RECIPIENTS_PG[] =
    "(" NARROW_PG " EXCEPT SELECT event_id, user_id FROM outbox_recipients) "
    "UNION ALL (SELECT event_id, user_id FROM outbox_recipients EXCEPT " NARROW_PG ") LIMIT 1";

/* [ext] search (schema 010): SQLite's FTS5 index holds one row (in its
 * docsize table) per message that is not recalled, and no other. The
 * PostgreSQL index is the server's own, kept on every write. */
static const char RULE_SEARCH[] = "the search index holds exactly the messages not recalled";
static const char SQL_SEARCH_ROWS[] =
    "SELECT * FROM (SELECT id, 'not indexed' FROM messages WHERE recalled = 0 "
    "EXCEPT SELECT id, 'not indexed' FROM message_search_docsize) "
    "UNION ALL SELECT * FROM (SELECT id, 'indexed, but recalled or gone' FROM "
    "message_search_docsize EXCEPT SELECT id, 'indexed, but recalled or gone' FROM messages "
    "WHERE recalled = 0) LIMIT 1";
static const char SQL_SEARCH_ROWS_PG[] = "SELECT NULL, NULL WHERE false";

static const char SQL_PROFILES[] =
    "SELECT id, user_name, email, phone, avatar_url FROM users WHERE is_system = 0";
static const char SQL_FOREIGN_KEYS[] = "PRAGMA foreign_key_check";
static const char SQL_INTEGRITY[] = "PRAGMA integrity_check";
/* PostgreSQL checks every reference on every write and has no offline
 * integrity pass of its own: what it can say is that no constraint is
 * left unvalidated (NOT VALID). */
static const char SQL_FOREIGN_KEYS_PG[] =
    "SELECT conrelid::regclass::text, 0, conname FROM pg_constraint "
    "WHERE contype = 'f' AND NOT convalidated";
static const char SQL_INTEGRITY_PG[] = "SELECT 'ok'";

/* Report one broken rule with its first offending row. */
static void broken(check_report_fn report, void *ctx, const char *rule, db_stmt *st)
{
    char row[160];
    const char *a = db_col_text(st, 0), *b = db_col_text(st, 1);
    snprintf(row, sizeof row, "(%s, %s)", a ? a : "", b ? b : "");
    report(ctx, rule, row);
}

/* Run one rule's query: 1 when it is broken (or cannot be checked). */
static int run_rule(db_stmt *st, const char *rule, check_report_fn report, void *ctx)
{
    int rc = st ? db_step(st) : -1;
    if (rc == DB_ROW)
        broken(report, ctx, rule, st);
    else
        report(ctx, rule, rc < 0 ? "the query failed" : NULL);
    db_done(st);
    return rc != DB_DONE;
}

static int run_rules(nova_db *db, check_report_fn report, void *ctx)
{
    int failed = 0;
    for (size_t i = 0; i < sizeof rules / sizeof rules[0]; i++)
        failed += run_rule(db_prepare(db, rules[i].sql), rules[i].rule, report, ctx);
    failed += run_rule(db_prepare_for(db, SQL_RECIPIENTS_SQLITE, SQL_RECIPIENTS_PG),
                       RULE_RECIPIENTS, report, ctx);
    failed += run_rule(db_prepare_for(db, SQL_SEARCH_ROWS, SQL_SEARCH_ROWS_PG), RULE_SEARCH,
                       report, ctx);
    return failed + run_rule(db_prepare_for(db, SQL_SEQUENCE_SQLITE, SQL_SEQUENCE_PG),
                             RULE_SEQUENCE, report, ctx);
}

static int run_profiles(nova_db *db, check_report_fn report, void *ctx)
{
    static const char rule[] = "stored profiles pass the validation rules of API.md section 2";
    db_stmt *st = db_prepare(db, SQL_PROFILES);
    if (!st) {
        report(ctx, rule, "the query failed");
        return 1;
    }
    char row[96] = "";
    while (!row[0] && db_step(st) == DB_ROW) {
        const char *name = db_col_text(st, 1), *email = db_col_text(st, 2),
                   *phone = db_col_text(st, 3), *avatar = db_col_text(st, 4);
        nova_err err;
        const char *bad = !name || validate_user_name(name, &err) ? "user_name"
                          : !email || validate_email(email, &err) ? "email"
                          : !phone || validate_phone(phone, &err) ? "phone"
                          : !avatar || !avatar[0] || validate_avatar_url(avatar, &err)
                              ? "avatar_url"
                              : NULL;
        if (bad) snprintf(row, sizeof row, "(user %lld, %s)", (long long)db_col_i64(st, 0), bad);
    }
    db_done(st);
    report(ctx, rule, row[0] ? row : NULL);
    return row[0] != '\0';
}

static int run_engine_checks(nova_db *db, bool deep, check_report_fn report, void *ctx)
{
    int failed = 0;
    db_stmt *st = db_prepare_for(db, SQL_FOREIGN_KEYS, SQL_FOREIGN_KEYS_PG);
    if (st && db_step(st) == DB_ROW) {
        char row[160];
        snprintf(row, sizeof row, "(table %s, row %lld, refers to %s)",
                 db_col_text(st, 0) ? db_col_text(st, 0) : "", (long long)db_col_i64(st, 1),
                 db_col_text(st, 2) ? db_col_text(st, 2) : "");
        report(ctx, "every reference holds (foreign keys)", row);
        failed++;
    } else {
        report(ctx, "every reference holds (foreign keys)", st ? NULL : "the query failed");
        failed += !st;
    }
    db_done(st);
    if (!deep) return failed;
    st = db_prepare_for(db, SQL_INTEGRITY, SQL_INTEGRITY_PG);
    const char *r = st && db_step(st) == DB_ROW ? db_col_text(st, 0) : NULL;
    bool ok = r && !strcmp(r, "ok");
    char row[200];
    snprintf(row, sizeof row, "(%s)", r ? r : "the check failed");
    report(ctx, "the database file is intact (integrity_check)", ok ? NULL : row);
    db_done(st);
    return failed + !ok;
}

int check_database(nova_db *db, bool deep, check_report_fn report, void *ctx, nova_err *err)
{
    int rc = db_begin_read(db, err);
    if (rc) return -1;
    int failed = run_rules(db, report, ctx) + run_profiles(db, report, ctx) +
                 run_engine_checks(db, deep, report, ctx);
    db_rollback(db);
    return failed;
}
