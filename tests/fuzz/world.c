/* world.c - the seeded temporary database of the stateful harnesses.
 *
 * Restoring the seeded state after an input is the hot path. Copying the
 * pristine database back (the backup API) is exact but bumps the schema
 * cookie, so every cached statement of the server would be prepared again
 * on every input. Instead, an SQLite session (sqlite3session) records the
 * rows an input changes and the harness applies the inverse with its own
 * statements (see undo()); the triggers of the user name index rebuild it
 * as rows come back, and AUTOINCREMENT counters are put back by hand. The
 * result is checked against the fingerprint of the seeded rows; anything
 * unexpected (an error, no progress, a mismatch), and every
 * FULL_RESTORE_EVERY undos, falls back to the exact copy. */
#define SQLITE_ENABLE_SESSION 1
#define SQLITE_ENABLE_PREUPDATE_HOOK 1
#include <sqlite3.h>

#include "world.h"

#include <dirent.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../common/json_util.h"
#include "../../common/log.h"
#include "../../common/message.h"
#include "../../common/migrate.h"
#include "../../fcgi/api.h"
#include "invariants.h"

enum { FULL_RESTORE_EVERY = 20000, MAX_SEQUENCES = 32 };

void fuzz_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("\nINVARIANT VIOLATED: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputs("\n", stderr);
    va_end(ap);
    abort();
}

static fuzz_world *cleanup_world;
static sqlite3_session *undo_log; /* the rows changed since the last reset */
static void free_undo_tables(void);

/* Remove the temporary database when the process ends normally. */
static void world_cleanup(void)
{
    fuzz_world *w = cleanup_world;
    if (!w) return;
    if (undo_log) sqlite3session_delete(undo_log);
    undo_log = NULL;
    db_close(w->db);
    w->db = NULL;
    sqlite3_close((sqlite3 *)w->pristine);
    w->pristine = NULL;
    free_undo_tables();
    char p[256];
    static const char *const suffixes[] = {"", "-wal", "-shm", "-journal"};
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        snprintf(p, sizeof p, "%s%s", w->path, suffixes[i]);
        unlink(p);
    }
    snprintf(p, sizeof p, "%s/attachments", w->dir); /* [ext] attachments */
    DIR *files = opendir(p);
    for (struct dirent *e; files && (e = readdir(files));)
        if (e->d_name[0] != '.' || !strncmp(e->d_name, ".tmp-", 5))
            unlinkat(dirfd(files), e->d_name, 0);
    if (files) closedir(files);
    rmdir(p);
    rmdir(w->dir);
    config_free(&w->cfg);
}

void fuzz_call(fuzz_world *w, const char *method, const char *path, const char *token,
               const char *body, http_response *resp)
{
    char cookie[TOKEN_LEN + 16];
    snprintf(cookie, sizeof cookie, "sessionid=%s", token ? token : "");
    http_request req = {
        .method = method,
        .path = path,
        .query = "",
        .content_type = body && *body ? "application/json" : NULL,
        .cookie = token ? cookie : NULL,
        .body = body && *body ? body : NULL,
        .body_len = body ? strlen(body) : 0,
    };
    http_response_init(resp);
    api_handle(w->db, &req, resp);
}

void fuzz_call_ok(fuzz_world *w, const char *method, const char *path, const char *token,
                  const char *body)
{
    http_response resp;
    fuzz_call(w, method, path, token, body, &resp);
    if (resp.status != 200)
        fuzz_fail("seeding: %s %s %s -> %d %.*s", method, path, body ? body : "", resp.status,
                  (int)resp.body_len, resp.body ? resp.body : "");
    http_response_free(&resp);
}

bool fuzz_response_token(const http_response *resp, char *out)
{
    static const char prefix[] = "Set-Cookie: sessionid=";
    const char *h = resp->headers, *end = h + resp->headers_len;
    while (h < end) {
        const char *eol = memchr(h, '\n', (size_t)(end - h));
        size_t len = eol ? (size_t)(eol - h) : (size_t)(end - h);
        if (len > sizeof prefix - 1 + TOKEN_LEN && !strncmp(h, prefix, sizeof prefix - 1) &&
            token_well_formed(h + sizeof prefix - 1, TOKEN_LEN)) {
            memcpy(out, h + sizeof prefix - 1, TOKEN_LEN);
            out[TOKEN_LEN] = '\0';
            return true;
        }
        h = eol ? eol + 1 : end;
    }
    return false;
}

int64_t fuzz_query_int(fuzz_world *w, const char *sql, int64_t fallback)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db_sqlite_handle(w->db), sql, -1, &st, NULL) != SQLITE_OK)
        fuzz_fail("query %s: %s", sql, sqlite3_errmsg(db_sqlite_handle(w->db)));
    int64_t v = fallback;
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

/* Register a user and keep the session token it gets. */
static void seed_register(fuzz_world *w, int slot, const char *name, int64_t expect_id)
{
    char body[128];
    snprintf(body, sizeof body, "{\"user_name\":\"%s\",\"password\":\"%s-secret\"}", name, name);
    http_response resp;
    fuzz_call(w, "POST", slot == SESSION_ALICE2 ? "/user/login" : "/user/register", NULL, body,
              &resp);
    if (resp.status != 200 || !fuzz_response_token(&resp, w->tokens[slot]))
        fuzz_fail("seeding: cannot register/login %s: %d", name, resp.status);
    http_response_free(&resp);
    w->token_user[slot] = expect_id;
    w->session_id[slot] = fuzz_query_int(w, "SELECT max(id) FROM sessions", 0);
    char sql[96];
    snprintf(sql, sizeof sql, "SELECT user_id FROM sessions WHERE id = %lld",
             (long long)w->session_id[slot]);
    if (fuzz_query_int(w, sql, 0) != expect_id)
        fuzz_fail("seeding: %s is not user %lld", name, (long long)expect_id);
}

static void seed_befriend(fuzz_world *w, int inviter, int accepter, int64_t invitation)
{
    char body[128], path[64];
    snprintf(body, sizeof body, "{\"id\":%lld,\"comment\":\"hello\",\"source\":\"search\"}",
             (long long)w->token_user[accepter]);
    fuzz_call_ok(w, "POST", "/friend/invite", w->tokens[inviter], body);
    snprintf(path, sizeof path, "/friend/invitation/%lld", (long long)invitation);
    fuzz_call_ok(w, "POST", path, w->tokens[accepter], NULL);
}

/* One socket-style action as the realtime daemon runs it. */
static void seed_send(fuzz_world *w, int64_t user, int64_t chat, const char *text, int64_t reply,
                      int64_t expect_id)
{
    nova_err err;
    int64_t id = 0;
    if (db_begin(w->db, &err) || message_send(w->db, user, chat, text, reply, &id, &err) ||
        db_commit(w->db, &err))
        fuzz_fail("seeding: send_message: %s", err.msg);
    if (id != expect_id)
        fuzz_fail("seeding: message %lld, expected %lld", (long long)id, (long long)expect_id);
}

static void seed_recall(fuzz_world *w, int64_t user, int64_t message, bool for_me)
{
    nova_err err;
    if (db_begin(w->db, &err) ||
        (for_me ? message_delete_for_me(w->db, user, message, &err)
                : message_recall(w->db, user, message, &err)) ||
        db_commit(w->db, &err))
        fuzz_fail("seeding: recall_message: %s", err.msg);
}

static void seed_read(fuzz_world *w, int64_t user, int64_t chat)
{
    nova_err err;
    if (db_begin(w->db, &err) || message_mark_read(w->db, user, chat, &err) ||
        db_commit(w->db, &err))
        fuzz_fail("seeding: messages_read: %s", err.msg);
}

static void seed(fuzz_world *w)
{
    seed_register(w, SESSION_ALICE, "alice", ALICE);
    seed_register(w, SESSION_BOB, "bob", BOB);
    seed_register(w, SESSION_CAROL, "carol", CAROL);
    seed_register(w, SESSION_DAVE, "dave", DAVE);
    seed_register(w, SESSION_ERIN, "erin", ERIN);
    seed_register(w, SESSION_ALICE2, "alice", ALICE); /* a second session of alice's */

    fuzz_call_ok(w, "PATCH", "/user", w->tokens[SESSION_DAVE],
                 "{\"old_password\":\"dave-secret\",\"email\":\"dave@example.org\","
                 "\"phone\":\"13800000000\",\"avatar_url\":\"https://example.org/dave.png\"}");

    /* Friendships, each with its private chat 1..5. */
    seed_befriend(w, SESSION_ALICE, SESSION_BOB, 1);
    seed_befriend(w, SESSION_ALICE, SESSION_CAROL, 2);
    seed_befriend(w, SESSION_BOB, SESSION_CAROL, 3);
    seed_befriend(w, SESSION_DAVE, SESSION_ALICE, 4);
    seed_befriend(w, SESSION_ERIN, SESSION_BOB, 5);

    /* Friend groups, a nickname, pending friend invitations. */
    fuzz_call_ok(w, "POST", "/friend/group/add", w->tokens[SESSION_ALICE],
                 "{\"group_name\":\"Work\"}");
    fuzz_call_ok(w, "POST", "/friend/group/add", w->tokens[SESSION_BOB],
                 "{\"group_name\":\"Close\"}");
    fuzz_call_ok(w, "PATCH", "/friend/4", w->tokens[SESSION_ALICE],
                 "{\"nickname\":\"bobby\",\"group_id\":6}");
    fuzz_call_ok(w, "POST", "/friend/invite", w->tokens[SESSION_ERIN],
                 "{\"id\":3,\"comment\":\"hi alice\",\"source\":\"search\"}");
    fuzz_call_ok(w, "POST", "/friend/invite", w->tokens[SESSION_DAVE],
                 "{\"id\":5,\"comment\":\"\",\"source\":\"search\"}");
    fuzz_call_ok(w, "POST", "/friend/invite", w->tokens[SESSION_CAROL],
                 "{\"id\":7,\"comment\":\"we met\",\"source\":\"search\"}");

    /* Groups with an admin and pending chat invitations. */
    fuzz_call_ok(w, "POST", "/chat/new", w->tokens[SESSION_ALICE],
                 "{\"chat_name\":\"Team\",\"chat_members\":[4,5]}");
    fuzz_call_ok(w, "POST", "/chat/6/4/admin", w->tokens[SESSION_ALICE], "true");
    fuzz_call_ok(w, "POST", "/chat/new", w->tokens[SESSION_CAROL],
                 "{\"chat_name\":\"Side\",\"chat_members\":[4]}");
    fuzz_call_ok(w, "POST", "/chat/6/invite", w->tokens[SESSION_BOB], "{\"user_id\":7}");
    fuzz_call_ok(w, "POST", "/chat/6/invite", w->tokens[SESSION_ALICE], "{\"user_id\":6}");
    fuzz_call_ok(w, "POST", "/chat/7/invite", w->tokens[SESSION_CAROL], "{\"user_id\":3}");

    /* Messages, a reply, a hidden and a recalled one, read marks. */
    seed_send(w, ALICE, CHAT_TEAM, "hello team", 0, MSG_TEAM_ALICE);
    seed_send(w, BOB, CHAT_TEAM, "hi alice", MSG_TEAM_ALICE, MSG_TEAM_BOB_REPLY);
    seed_send(w, CAROL, CHAT_TEAM, "yo", 0, MSG_TEAM_CAROL_HIDDEN);
    seed_send(w, CAROL, CHAT_TEAM, "oops", 0, MSG_TEAM_RECALLED);
    seed_recall(w, CAROL, MSG_TEAM_RECALLED, false);
    seed_recall(w, BOB, MSG_TEAM_CAROL_HIDDEN, true);
    seed_send(w, ALICE, CHAT_AB, "hey bob", 0, MSG_AB_ALICE);
    seed_send(w, BOB, CHAT_SIDE, "side note", 0, MSG_SIDE_BOB);
    seed_read(w, BOB, CHAT_TEAM);

    /* The corpus names these ids: check them. */
    struct {
        const char *sql;
        int64_t want;
    } checks[] = {
        {"SELECT max(id) FROM chats", N_CHATS_SEEDED},
        {"SELECT id FROM chats WHERE name = 'Team'", CHAT_TEAM},
        {"SELECT id FROM chats WHERE name = 'Side'", CHAT_SIDE},
        {"SELECT chat_id FROM friends WHERE user_id = 6 AND friend_id = 3", CHAT_DA},
        {"SELECT chat_id FROM friends WHERE user_id = 7 AND friend_id = 4", CHAT_EB},
        {"SELECT id FROM friend_groups WHERE name = 'Work'", GROUP_WORK},
        {"SELECT id FROM friend_groups WHERE name = 'Close'", GROUP_CLOSE},
        {"SELECT id FROM friend_invitations WHERE sender_id = 7", FINV_ERIN_ALICE},
        {"SELECT id FROM friend_invitations WHERE sender_id = 6", FINV_DAVE_CAROL},
        {"SELECT id FROM friend_invitations WHERE sender_id = 5", FINV_CAROL_ERIN},
        {"SELECT max(id) FROM messages", N_MESSAGES_SEEDED},
        {"SELECT count(*) FROM chat_invitations", 3},
        {"SELECT max(id) FROM sessions", N_SESSIONS},
    };
    for (size_t i = 0; i < sizeof checks / sizeof checks[0]; i++) {
        int64_t got = fuzz_query_int(w, checks[i].sql, -1);
        if (got != checks[i].want)
            fuzz_fail("seeding: %s gave %lld, expected %lld", checks[i].sql, (long long)got,
                      (long long)checks[i].want);
    }
}

static sqlite3_int64 changes_at_reset;
static uint64_t pristine_rows; /* fingerprint without the name index */
static struct {
    char name[64];
    sqlite3_int64 seq;
} sequences[MAX_SEQUENCES];
static int n_sequences;

/* Track every table but the name index's shadow tables (its triggers
 * rebuild it) and SQLite's own (sqlite_sequence has no primary key). */
static int track_table(void *ctx, const char *table)
{
    (void)ctx;
    /* The FTS5 indexes follow their tables through their triggers. */
    return strncmp(table, "users_name_trigram", 18) && strncmp(table, "message_search", 14) &&
           strncmp(table, "sqlite_", 7);
}

static void session_start(fuzz_world *w)
{
    if (sqlite3session_create(db_sqlite_handle(w->db), "main", &undo_log) != SQLITE_OK)
        fuzz_fail("sqlite3session_create: %s", sqlite3_errmsg(db_sqlite_handle(w->db)));
    sqlite3session_table_filter(undo_log, track_table, NULL);
    if (sqlite3session_attach(undo_log, NULL) != SQLITE_OK) fuzz_fail("sqlite3session_attach");
}

static void save_sequences(fuzz_world *w)
{
    sqlite3_stmt *st;
    sqlite3_prepare_v2(db_sqlite_handle(w->db), "SELECT name, seq FROM sqlite_sequence", -1, &st, NULL);
    n_sequences = 0;
    while (sqlite3_step(st) == SQLITE_ROW && n_sequences < MAX_SEQUENCES) {
        snprintf(sequences[n_sequences].name, sizeof sequences[0].name, "%s",
                 (const char *)sqlite3_column_text(st, 0));
        sequences[n_sequences++].seq = sqlite3_column_int64(st, 1);
    }
    sqlite3_finalize(st);
}

static void restore_sequences(fuzz_world *w)
{
    static const char set_sql[] = "UPDATE sqlite_sequence SET seq = ? WHERE name = ?";
    for (int i = 0; i < n_sequences; i++) {
        db_stmt *prepared = db_prepare(w->db, set_sql);
        sqlite3_stmt *set = prepared ? db_sqlite_stmt(prepared) : NULL;
        if (!set) fuzz_fail("prepare: %s", sqlite3_errmsg(db_sqlite_handle(w->db)));
        sqlite3_bind_int64(set, 1, sequences[i].seq);
        sqlite3_bind_text(set, 2, sequences[i].name, -1, SQLITE_STATIC);
        if (sqlite3_step(set) != SQLITE_DONE) fuzz_fail("restoring sqlite_sequence");
        db_done(prepared);
    }
}

/* --- undo ------------------------------------------------------------------
 *
 * sqlite3changeset_apply would do, but it runs PRAGMA defer_foreign_keys,
 * which expires every prepared statement of the connection. So the inverted
 * changeset is applied here with statements of our own, in rounds: a change
 * that breaks a constraint now (a row whose parent comes back later, a
 * unique name still held by a row to be removed) is retried in the next
 * round, until all are done or a round makes no progress. */

enum { MAX_UNDO_TABLES = 24, MAX_COLUMNS = 16 };

typedef struct undo_table {
    char name[64];
    int n_col;
    unsigned char pk[MAX_COLUMNS];
    char *insert_sql, *delete_sql, *update_sql; /* constant for db_prepare */
} undo_table;

typedef struct undo_change {
    undo_table *table;
    int op;
    sqlite3_value *old[MAX_COLUMNS], *new[MAX_COLUMNS];
    bool done;
} undo_change;

static undo_table undo_tables[MAX_UNDO_TABLES];
static int n_undo_tables;

static void append(char **buf, size_t *len, size_t *cap, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void append(char **buf, size_t *len, size_t *cap, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(*buf + *len, *cap - *len, fmt, ap);
        va_end(ap);
        if (n >= 0 && (size_t)n < *cap - *len) {
            *len += (size_t)n;
            return;
        }
        *cap = *cap * 2 + (size_t)n + 64;
        char *bigger = realloc(*buf, *cap);
        if (!bigger) abort();
        *buf = bigger;
    }
}

/* The statements that write one table's rows back, built once. */
static undo_table *table_for(fuzz_world *w, const char *name, int n_col, const unsigned char *pk)
{
    for (int i = 0; i < n_undo_tables; i++)
        if (!strcmp(undo_tables[i].name, name)) return &undo_tables[i];
    if (n_undo_tables == MAX_UNDO_TABLES || n_col > MAX_COLUMNS) return NULL;
    undo_table *t = &undo_tables[n_undo_tables++];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->n_col = n_col;
    memcpy(t->pk, pk, (size_t)n_col);
    char cols[MAX_COLUMNS][64];
    sqlite3_stmt *st;
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT name FROM pragma_table_info('%s') ORDER BY cid", name);
    if (sqlite3_prepare_v2(db_sqlite_handle(w->db), sql, -1, &st, NULL) != SQLITE_OK) return NULL;
    int n = 0;
    while (sqlite3_step(st) == SQLITE_ROW && n < MAX_COLUMNS)
        snprintf(cols[n++], sizeof cols[0], "%s", (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    if (n != n_col) return NULL;

    size_t len = 0, cap = 256;
    char *b = malloc(cap);
    if (!b) abort();
    append(&b, &len, &cap, "INSERT INTO \"%s\" VALUES (", name);
    for (int i = 0; i < n; i++)
        append(&b, &len, &cap, "%s?%d", i ? ", " : "", i + 1);
    append(&b, &len, &cap, ")");
    t->insert_sql = b;

    len = 0, cap = 256;
    if (!(b = malloc(cap))) abort();
    append(&b, &len, &cap, "DELETE FROM \"%s\" WHERE 1", name);
    for (int i = 0; i < n; i++)
        if (pk[i]) append(&b, &len, &cap, " AND \"%s\" = ?%d", cols[i], i + 1);
    t->delete_sql = b;

    /* ?(2i+1): set column i?  ?(2i+2): its value;  ?(2n+i+1): key column i. */
    len = 0, cap = 256;
    if (!(b = malloc(cap))) abort();
    append(&b, &len, &cap, "UPDATE \"%s\" SET ", name);
    for (int i = 0; i < n; i++)
        append(&b, &len, &cap, "%s\"%s\" = CASE WHEN ?%d THEN ?%d ELSE \"%s\" END", i ? ", " : "",
               cols[i], 2 * i + 1, 2 * i + 2, cols[i]);
    append(&b, &len, &cap, " WHERE 1");
    for (int i = 0; i < n; i++)
        if (pk[i]) append(&b, &len, &cap, " AND \"%s\" = ?%d", cols[i], 2 * n + i + 1);
    t->update_sql = b;
    return t;
}

static void free_undo_tables(void)
{
    for (int i = 0; i < n_undo_tables; i++) {
        free(undo_tables[i].insert_sql);
        free(undo_tables[i].delete_sql);
        free(undo_tables[i].update_sql);
    }
    n_undo_tables = 0;
}

/* SQLITE_OK (done), SQLITE_CONSTRAINT (retry later) or another error. */
static int apply_change(fuzz_world *w, undo_change *c)
{
    undo_table *t = c->table;
    int n = t->n_col, rc;
    db_stmt *prepared;
    sqlite3_stmt *st;
    if (c->op == SQLITE_INSERT) {
        if (!(prepared = db_prepare(w->db, t->insert_sql))) return SQLITE_ERROR;
        st = db_sqlite_stmt(prepared);
        for (int i = 0; i < n; i++)
            if (c->new[i]) sqlite3_bind_value(st, i + 1, c->new[i]);
    } else if (c->op == SQLITE_DELETE) {
        if (!(prepared = db_prepare(w->db, t->delete_sql))) return SQLITE_ERROR;
        st = db_sqlite_stmt(prepared);
        for (int i = 0; i < n; i++)
            if (t->pk[i] && c->old[i]) sqlite3_bind_value(st, i + 1, c->old[i]);
    } else {
        if (!(prepared = db_prepare(w->db, t->update_sql))) return SQLITE_ERROR;
        st = db_sqlite_stmt(prepared);
        for (int i = 0; i < n; i++) {
            sqlite3_bind_int(st, 2 * i + 1, c->new[i] != NULL && !t->pk[i]);
            if (c->new[i]) sqlite3_bind_value(st, 2 * i + 2, c->new[i]);
            if (t->pk[i] && c->old[i]) sqlite3_bind_value(st, 2 * n + i + 1, c->old[i]);
        }
    }
    rc = sqlite3_step(st);
    db_done(prepared);
    if (rc == SQLITE_DONE) {
        /* A row to delete may be gone already (a cascade removed it); one
         * to update may come back later in the undo: retry it. */
        if (c->op == SQLITE_UPDATE && sqlite3_changes(db_sqlite_handle(w->db)) != 1) return SQLITE_CONSTRAINT;
        return SQLITE_OK;
    }
    return (rc & 0xff) == SQLITE_CONSTRAINT ? SQLITE_CONSTRAINT : rc;
}

/* Apply every pending change of kind op once. */
static void apply_pass(fuzz_world *w, undo_change *v, int n, int op, int *left, bool *ok)
{
    for (int i = 0; *ok && i < n; i++) {
        if (v[i].done || v[i].op != op) continue;
        int rc = apply_change(w, &v[i]);
        if (rc == SQLITE_OK) {
            v[i].done = true;
            --*left;
        } else if (rc != SQLITE_CONSTRAINT) {
            if (getenv("NOVA_FUZZ_PROFILE"))
                fprintf(stderr, "undo: %d on %s failed: %d %s\n", op, v[i].table->name, rc,
                        sqlite3_errmsg(db_sqlite_handle(w->db)));
            *ok = false;
        }
    }
}

/* Read the inverse of what the session recorded into changes[]. */
static int load_changes(fuzz_world *w, void *inverse, int size, undo_change **out, int *count)
{
    sqlite3_changeset_iter *it;
    if (sqlite3changeset_start(&it, size, inverse) != SQLITE_OK) return -1;
    int cap = 64, n = 0, rc = 0;
    undo_change *v = calloc((size_t)cap, sizeof *v);
    if (!v) abort();
    while (sqlite3changeset_next(it) == SQLITE_ROW) {
        const char *name;
        int n_col, op, indirect;
        unsigned char *pk;
        sqlite3changeset_op(it, &name, &n_col, &op, &indirect);
        sqlite3changeset_pk(it, &pk, &n_col);
        undo_table *t = table_for(w, name, n_col, pk);
        if (!t) {
            rc = -1;
            break;
        }
        if (n == cap) {
            undo_change *bigger = realloc(v, (size_t)(cap *= 2) * sizeof *v);
            if (!bigger) abort();
            v = bigger;
            memset(v + n, 0, (size_t)(cap - n) * sizeof *v);
        }
        undo_change *c = &v[n++];
        c->table = t;
        c->op = op;
        for (int i = 0; i < n_col; i++) {
            sqlite3_value *val = NULL;
            if (op != SQLITE_INSERT && sqlite3changeset_old(it, i, &val) == SQLITE_OK && val)
                c->old[i] = sqlite3_value_dup(val);
            val = NULL;
            if (op != SQLITE_DELETE && sqlite3changeset_new(it, i, &val) == SQLITE_OK && val)
                c->new[i] = sqlite3_value_dup(val);
        }
    }
    if (sqlite3changeset_finalize(it) != SQLITE_OK) rc = -1;
    *out = v;
    *count = n;
    return rc;
}

static void free_changes(undo_change *v, int n)
{
    for (int i = 0; i < n; i++)
        for (int k = 0; k < MAX_COLUMNS; k++) {
            sqlite3_value_free(v[i].old[k]);
            sqlite3_value_free(v[i].new[k]);
        }
    free(v);
}

/* Undo the recorded changes; false when the result is not the seed. */
static bool undo(fuzz_world *w)
{
    int size = 0, inverse_size = 0;
    void *changes = NULL, *inverse = NULL;
    bool ok = sqlite3session_changeset(undo_log, &size, &changes) == SQLITE_OK &&
              sqlite3changeset_invert(size, changes, &inverse_size, &inverse) == SQLITE_OK;
    sqlite3session_delete(undo_log);
    undo_log = NULL;
    undo_change *v = NULL;
    int n = 0;
    if (ok) ok = load_changes(w, inverse, inverse_size, &v, &n) == 0;
    sqlite3_free(changes);
    sqlite3_free(inverse);
    ok = ok && sqlite3_exec(db_sqlite_handle(w->db), "BEGIN", NULL, NULL, NULL) == SQLITE_OK;
    /* Rows come back (parents first, by retrying) and updated rows move
     * back for as long as that progresses; only then do rows go, since a
     * delete may cascade to a row an update still has to move away. */
    int left = n;
    while (ok && left) {
        int before = left, step;
        do {
            step = left;
            apply_pass(w, v, n, SQLITE_INSERT, &left, &ok);
            apply_pass(w, v, n, SQLITE_UPDATE, &left, &ok);
        } while (ok && left && left != step);
        apply_pass(w, v, n, SQLITE_DELETE, &left, &ok);
        if (left == before) ok = false; /* no progress */
    }
    if (ok) restore_sequences(w);
    if (!sqlite3_get_autocommit(db_sqlite_handle(w->db)))
        sqlite3_exec(db_sqlite_handle(w->db), ok ? "COMMIT" : "ROLLBACK", NULL, NULL, NULL);
    bool exact = ok && inv_fingerprint(w->db, false) == pristine_rows;
    if (!exact && getenv("NOVA_FUZZ_PROFILE")) {
        fprintf(stderr, "undo of %d changes %s\n", n, ok ? "is not exact" : "failed");
        for (int i = 0; i < n; i++)
            if (!v[i].done || !ok)
                fprintf(stderr, "  %s %s %s: %s\n", v[i].done ? "done" : "left",
                        v[i].op == SQLITE_INSERT   ? "insert"
                        : v[i].op == SQLITE_DELETE ? "delete"
                                                   : "update",
                        v[i].table->name, sqlite3_errmsg(db_sqlite_handle(w->db)));
    }
    free_changes(v, n);
    return exact;
}

/* Copy the whole database from src to dst (both "main"). */
static void copy_db(sqlite3 *dst, sqlite3 *src)
{
    sqlite3_backup *b = sqlite3_backup_init(dst, "main", src, "main");
    if (!b) fuzz_fail("backup init: %s", sqlite3_errmsg(dst));
    int rc = sqlite3_backup_step(b, -1);
    sqlite3_backup_finish(b);
    if (rc != SQLITE_DONE) fuzz_fail("backup: %s", sqlite3_errstr(rc));
}

void fuzz_world_init(fuzz_world *w)
{
    memset(w, 0, sizeof *w);
    const char *tmp = getenv("TMPDIR");
    snprintf(w->dir, sizeof w->dir, "%s/nova-fuzz-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(w->dir)) fuzz_fail("cannot create a temporary directory");
    snprintf(w->path, sizeof w->path, "%s/nova.db", w->dir);

    /* The cheapest argon2id, no log lines, a CORS origin to exercise,
     * sessions that are never touched or expire while fuzzing, and a body
     * limit small enough for 413 to be reachable. */
    setenv("NOVA_DB", w->path, 1);
    setenv("NOVA_PWHASH_OPSLIMIT", "1", 1);
    setenv("NOVA_PWHASH_MEMLIMIT", "8192", 1);
    setenv("NOVA_LOG_LEVEL", "0", 1);
    setenv("NOVA_CORS_ORIGINS", "https://app.example.org", 1);
    setenv("NOVA_SESSION_TOUCH", "86400", 1);
    setenv("NOVA_BODY_LIMIT", "4096", 1);
    setenv("NOVA_WAKE_SOCKET", "", 1);
    char files[256]; /* [ext] attachments: uploads go to the world's directory */
    snprintf(files, sizeof files, "%s/attachments", w->dir);
    setenv("NOVA_ATTACHMENT_DIR", files, 1);
    setenv("NOVA_ATTACHMENT_LIMIT", "8192", 1);
    if (config_load(&w->cfg) || config_check(&w->cfg)) fuzz_fail("configuration");
    /* Errors only: an error line means a 5xx, which is a finding. */
    log_init("fuzz", 0);
    if (crypto_init()) fuzz_fail("libsodium");
    json_util_init();

    nova_err err;
    w->db = db_open(&w->cfg, &err);
    if (!w->db) fuzz_fail("cannot open %s: %s", w->path, err.msg);
    if (migrate_apply(w->db, NULL, &err)) fuzz_fail("migrate: %s", err.msg);
    cleanup_world = w;
    atexit(world_cleanup);
    seed(w);

    sqlite3 *mem;
    if (sqlite3_open(":memory:", &mem) != SQLITE_OK) fuzz_fail("in-memory database");
    copy_db(mem, db_sqlite_handle(w->db));
    w->pristine = mem;
    save_sequences(w);
    pristine_rows = inv_fingerprint(w->db, false);
    w->fingerprint = inv_fingerprint(w->db, true);
    session_start(w);
    changes_at_reset = sqlite3_total_changes64(db_sqlite_handle(w->db));
}

bool fuzz_world_dirty(fuzz_world *w)
{
    return sqlite3_total_changes64(db_sqlite_handle(w->db)) != changes_at_reset;
}

void fuzz_world_reset(fuzz_world *w)
{
    if (w->db->in_write) fuzz_fail("a write transaction was left open");
    if (!sqlite3_get_autocommit(db_sqlite_handle(w->db))) fuzz_fail("a transaction was left open");
    if (!fuzz_world_dirty(w)) return;
    static long undos;
    bool undone = ++undos % FULL_RESTORE_EVERY != 0 && undo(w);
    if (!undone) {
        if (undo_log) sqlite3session_delete(undo_log);
        undo_log = NULL;
        copy_db(db_sqlite_handle(w->db), (sqlite3 *)w->pristine);
        w->full_restores++;
        if (inv_fingerprint(w->db, false) != pristine_rows) fuzz_fail("the restore is not exact");
    }
    w->fingerprint = inv_fingerprint(w->db, true);
    w->resets++;
    session_start(w);
    changes_at_reset = sqlite3_total_changes64(db_sqlite_handle(w->db));
}

struct sqlite3_stmt *world_prepare_lite(nova_db *db, const char *sql)
{
    db_stmt *st = db_prepare(db, sql);
    return st ? db_sqlite_stmt(st) : NULL;
}
