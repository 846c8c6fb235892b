/* outbox.c - writing events into the outbox table. */
#include "outbox.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "json_util.h"
#include "log.h"

static const char SQL_OUTBOX_INSERT[] =
    "INSERT INTO outbox (created_at, action, data, recipients, session_id, origin, request_id) "
    "VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id";

static const char SQL_CHAT_MEMBER_IDS[] =
    "SELECT user_id FROM chat_members WHERE chat_id = ? ORDER BY user_id";

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* "[1,2,3]" from sorted, de-duplicated ids; malloc'd. */
static char *recipients_json(const int64_t *users, size_t n)
{
    int64_t *ids = malloc((n ? n : 1) * sizeof *ids);
    char *out = malloc(n * 21 + 3);
    if (!ids || !out) {
        free(ids);
        free(out);
        return NULL;
    }
    memcpy(ids, users, n * sizeof *ids);
    qsort(ids, n, sizeof *ids, cmp_i64);
    size_t len = 0;
    out[len++] = '[';
    for (size_t i = 0; i < n; i++) {
        if (i && ids[i] == ids[i - 1]) continue;
        len += (size_t)sprintf(out + len, "%s%lld", len > 1 ? "," : "", (long long)ids[i]);
    }
    out[len++] = ']';
    out[len] = '\0';
    free(ids);
    return out;
}

/* The current write transaction, as far as the outbox is concerned. */
static struct {
    const char *origin; /* NULL: not a socket action */
    int64_t request_id;
    bool emitted;    /* it wrote an event */
    int64_t last_id; /* the newest event it wrote, 0: none yet */
    int wake_fd;  /* datagram socket for the wake-ups, opened on first use */
} current = {.wake_fd = -1};

static int emit(nova_db *db, const char *action, json_object *data, const int64_t *users,
                size_t n_users, int64_t session_id, nova_err *err)
{
    assert(db->in_write);
    int rc = 0;
    char *recipients = recipients_json(users, n_users);
    db_stmt *st = db_prepare(db, SQL_OUTBOX_INSERT);
    if (!recipients || !st) {
        rc = nova_fail(err, ERR_INTERNAL, "internal error");
        goto out;
    }
    db_bind_double(st, 1, nova_now());
    db_bind_text(st, 2, action);
    db_bind_text(st, 3, json_text(data, NULL));
    db_bind_text(st, 4, recipients);
    if (session_id) db_bind_i64(st, 5, session_id);
    if (current.origin) db_bind_text(st, 6, current.origin);
    db_bind_i64(st, 7, current.origin ? current.request_id : 0);
    int64_t id = 0;
    rc = db_insert_id(db, st, &id, err);
    if (!rc) current.last_id = id;
    /* The first event of a transaction wakes the listeners of other hosts
     * at commit (PostgreSQL's NOTIFY; nothing on SQLite). */
    if (!rc) rc = db_wake_listeners(db, err);
    if (!rc) current.emitted = true;
out:
    free(recipients);
    json_object_put(data);
    return rc;
}

int outbox_emit(nova_db *db, const char *action, json_object *data, const int64_t *users,
                size_t n_users, nova_err *err)
{
    return emit(db, action, data, users, n_users, 0, err);
}

int outbox_emit_session(nova_db *db, const char *action, json_object *data, int64_t user_id,
                        int64_t session_id, nova_err *err)
{
    return emit(db, action, data, &user_id, 1, session_id, err);
}

int outbox_emit_chat(nova_db *db, const char *action, json_object *data, int64_t chat_id,
                     nova_err *err)
{
    idlist members = {0};
    db_stmt *st = db_prepare(db, SQL_CHAT_MEMBER_IDS);
    if (st) db_bind_i64(st, 1, chat_id);
    int rc = db_collect_ids(db, st, &members, err);
    if (rc)
        json_object_put(data);
    else
        rc = emit(db, action, data, members.v, members.n, 0, err);
    idlist_free(&members);
    return rc;
}

void outbox_set_cause(const char *origin, int64_t request_id)
{
    current.origin = origin;
    current.request_id = request_id;
}

void outbox_discarded(void)
{
    current.origin = NULL;
    current.request_id = 0;
    current.emitted = false;
    current.last_id = 0;
}

int64_t outbox_last_emitted(void)
{
    return current.last_id;
}

/* Poke the realtime daemons after a commit that wrote events, so they
 * need not wait for their next poll. */
static void wake(const char *sockets)
{
    for (const char *p = sockets; *p;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        if (len && len < sizeof sa.sun_path) {
            if (current.wake_fd < 0)
                current.wake_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
            if (current.wake_fd < 0) return;
            memcpy(sa.sun_path, p, len);
            ssize_t n =
                sendto(current.wake_fd, "w", 1, MSG_DONTWAIT, (struct sockaddr *)&sa, sizeof sa);
            (void)n;
        }
        p = end ? end + 1 : p + len;
    }
}

void outbox_committed(const char *wake_sockets)
{
    if (current.emitted && wake_sockets) wake(wake_sockets);
    outbox_discarded();
}

/* The newest event is never pruned: its id is the outbox's position
 * (PostgreSQL reads it as max(id); SQLite has sqlite_sequence too). */
static const char SQL_OUTBOX_PRUNE[] =
    "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE created_at < ? AND id < "
    "(SELECT max(id) FROM outbox) ORDER BY id LIMIT ?)";
static const char SQL_OUTBOX_BOUNDS[] = "SELECT (SELECT min(id) FROM outbox), "
                                        "(SELECT seq FROM sqlite_sequence WHERE name = 'outbox')";
static const char SQL_OUTBOX_BOUNDS_PG[] = "SELECT min(id), coalesce(max(id), 0) FROM outbox";

int outbox_prune(nova_db *db, double before, int batch, int *deleted, nova_err *err)
{
    db_stmt *st = db_prepare(db, SQL_OUTBOX_PRUNE);
    if (!st) return nova_fail(err, ERR_INTERNAL, "internal error");
    db_bind_double(st, 1, before);
    db_bind_i64(st, 2, batch);
    int rc = db_exec_done(db, st, err);
    *deleted = rc ? 0 : db_changes(db);
    return rc;
}

int outbox_bounds(nova_db *db, int64_t *oldest, int64_t *newest, nova_err *err)
{
    db_stmt *st = db_prepare_for(db, SQL_OUTBOX_BOUNDS, SQL_OUTBOX_BOUNDS_PG);
    if (!st) return nova_fail(err, ERR_INTERNAL, "internal error");
    int rc = db_step(st);
    if (rc == DB_ROW) {
        *newest = db_col_i64(st, 1);
        *oldest = db_col_is_null(st, 0) ? *newest + 1 : db_col_i64(st, 0);
    }
    db_done(st);
    return rc == DB_ROW ? 0 : db_fail(db, err);
}

/* --- reading ------------------------------------------------------------- */

#define OUTBOX_COLUMNS                                                                             \
    "id, created_at, action, data, recipients, coalesce(session_id, 0), origin, request_id"
static const char SQL_OUTBOX_READ[] =
    "SELECT " OUTBOX_COLUMNS " FROM outbox WHERE id > ?1 AND (?2 <= 0 OR id <= ?2) "
    "AND (CAST(?3 AS TEXT) IS NULL OR action = ?3) ORDER BY id LIMIT ?4";
static const char SQL_OUTBOX_READ_NEWEST[] =
    "SELECT * FROM (SELECT " OUTBOX_COLUMNS " FROM outbox WHERE (CAST(?1 AS TEXT) IS NULL OR action = ?1) "
    "ORDER BY id DESC LIMIT ?2) AS newest ORDER BY id";
static const char SQL_OUTBOX_READ_ONE[] = "SELECT " OUTBOX_COLUMNS " FROM outbox WHERE id = ?1";
/* One user's events: the narrow ones through outbox_recipients' primary
 * key, and every wide one (over 64 recipients, not indexed per recipient:
 * sql/003_outbox_recipients.sql) through outbox_wide, for the caller to
 * keep those addressed to the user. The two are disjoint and each comes in
 * id order, so SQLite merges them as it reads (MERGE (UNION ALL)) and a
 * read that stops after a few rows costs a few rows. SQLite is told which index the wide side takes (its
 * planner would rather range over the primary key). */
#define OUTBOX_COLUMNS_O                                                                           \
    "o.created_at, o.action, o.data, o.recipients, coalesce(o.session_id, 0), o.origin, "         \
    "o.request_id"
/* (The narrow side's id is r.event_id, in its index's order: named so, it
 * needs no sort before the merge.) */
#define OUTBOX_READ_FOR(indexed_by, wide)                                                          \
    "SELECT r.event_id, " OUTBOX_COLUMNS_O " FROM outbox_recipients r "                            \
    "JOIN outbox o ON o.id = r.event_id "                                                          \
    "WHERE r.user_id = ?1 AND r.event_id > ?2 AND r.event_id <= ?3 "                               \
    "UNION ALL SELECT o.id, " OUTBOX_COLUMNS_O " FROM outbox o " indexed_by " WHERE o.id > ?2 "    \
    "AND o.id <= ?3 AND " wide " ORDER BY 1 LIMIT ?4"
static const char SQL_OUTBOX_READ_FOR[] =
    OUTBOX_READ_FOR("INDEXED BY outbox_wide", "json_array_length(o.recipients) > 64");
/* PostgreSQL would append both sides whole and sort them: each side is
 * limited to the batch first (index order), the sort sees at most two. */
static const char SQL_OUTBOX_READ_FOR_PG[] =
    "(SELECT r.event_id, " OUTBOX_COLUMNS_O " FROM outbox_recipients r "
    "JOIN outbox o ON o.id = r.event_id "
    "WHERE r.user_id = ?1 AND r.event_id > ?2 AND r.event_id <= ?3 ORDER BY r.event_id LIMIT ?4) "
    "UNION ALL (SELECT o.id, " OUTBOX_COLUMNS_O " FROM outbox o WHERE o.id > ?2 AND o.id <= ?3 "
    "AND json_array_length(o.recipients::json) > 64 ORDER BY o.id LIMIT ?4) ORDER BY 1 LIMIT ?4";

/* Start a read with a statement of db (from db_prepare or db_prepare_for). */
static int reader_start(nova_db *db, outbox_reader *r, db_stmt *st, nova_err *err)
{
    r->db = db;
    r->st = st;
    return st ? 0 : nova_fail(err, ERR_INTERNAL, "internal error");
}

int outbox_read(nova_db *db, outbox_reader *r, int64_t after, int64_t upto, long limit,
                const char *action, nova_err *err)
{
    int rc = reader_start(db, r, db_prepare(db, SQL_OUTBOX_READ), err);
    if (rc) return rc;
    db_bind_i64(r->st, 1, after);
    db_bind_i64(r->st, 2, upto);
    if (action) db_bind_text(r->st, 3, action);
    db_bind_i64(r->st, 4, limit > 0 ? limit : INT64_MAX);
    return 0;
}

int outbox_read_for(nova_db *db, outbox_reader *r, int64_t user_id, int64_t after, int64_t upto,
                    long limit, nova_err *err)
{
    int rc = reader_start(db, r, db_prepare_for(db, SQL_OUTBOX_READ_FOR, SQL_OUTBOX_READ_FOR_PG),
                          err);
    if (rc) return rc;
    db_bind_i64(r->st, 1, user_id);
    db_bind_i64(r->st, 2, after);
    db_bind_i64(r->st, 3, upto);
    db_bind_i64(r->st, 4, limit > 0 ? limit : INT64_MAX);
    return 0;
}

int outbox_read_newest(nova_db *db, outbox_reader *r, long count, const char *action, nova_err *err)
{
    int rc = reader_start(db, r, db_prepare(db, SQL_OUTBOX_READ_NEWEST), err);
    if (rc) return rc;
    if (action) db_bind_text(r->st, 1, action);
    db_bind_i64(r->st, 2, count);
    return 0;
}

int outbox_read_one(nova_db *db, outbox_reader *r, int64_t id, outbox_event *ev, nova_err *err)
{
    int rc = reader_start(db, r, db_prepare(db, SQL_OUTBOX_READ_ONE), err);
    if (rc) return rc;
    db_bind_i64(r->st, 1, id);
    rc = outbox_next(r, ev);
    if (rc > 0) return 0;
    if (rc == 0) return nova_fail(err, ERR_NOT_FOUND, "no event %lld", (long long)id);
    return db_fail(db, err);
}

int outbox_next(outbox_reader *r, outbox_event *ev)
{
    if (!r->st) return 0;
    int rc = db_step(r->st);
    if (rc == DB_ROW) {
        db_stmt *st = r->st;
        ev->id = db_col_i64(st, 0);
        ev->created_at = db_col_double(st, 1);
        ev->action = db_col_text(st, 2);
        ev->data = db_col_text(st, 3);
        ev->recipients = db_col_text(st, 4);
        ev->session_id = db_col_i64(st, 5);
        ev->origin = db_col_text(st, 6);
        ev->request_id = db_col_i64(st, 7);
        /* The schema makes these NOT NULL; keep readers safe regardless. */
        if (!ev->action) ev->action = "";
        if (!ev->data) ev->data = "null";
        if (!ev->recipients) ev->recipients = "[]";
        return 1;
    }
    if (rc != DB_DONE) {
        nova_err err;
        db_fail(r->db, &err); /* logs it (an outage once a second) */
    }
    db_done(r->st);
    r->st = NULL;
    return rc == DB_DONE ? 0 : -1;
}

void outbox_read_end(outbox_reader *r)
{
    db_done(r->st);
    r->st = NULL;
}

int outbox_next_recipient(const char **p, int64_t *user_id)
{
    const char *s = *p;
    while (*s && (*s < '0' || *s > '9'))
        s++;
    if (!*s) {
        *p = s;
        return 0;
    }
    char *end;
    *user_id = strtoll(s, &end, 10);
    *p = end;
    return 1;
}

bool outbox_event_for(const outbox_event *ev, int64_t user_id, int64_t session_id)
{
    if (ev->session_id && ev->session_id != session_id) return false;
    const char *p = ev->recipients;
    int64_t id;
    while (outbox_next_recipient(&p, &id))
        if (id == user_id) return true;
    return false;
}

bool outbox_event_ends_session(const outbox_event *ev)
{
    return !strcmp(ev->action, "logout");
}

/* --- for operators --------------------------------------------------------- */

static const char SQL_OUTBOX_STATS[] =
    "SELECT count(*), min(id), max(id), min(created_at), max(created_at), "
    "(SELECT count(*) FROM outbox WHERE created_at >= ?1 - 60), "
    "(SELECT count(*) FROM outbox WHERE created_at >= ?1 - 600) FROM outbox";
static const char SQL_OUTBOX_DAEMONS[] =
    "SELECT name, pid, started_at, delivered_id, sockets, updated_at FROM realtime_daemons "
    "ORDER BY name";

int outbox_stats_read(nova_db *db, double now, outbox_stats *out, nova_err *err)
{
    memset(out, 0, sizeof *out);
    db_stmt *st = db_prepare(db, SQL_OUTBOX_STATS);
    if (!st) return nova_fail(err, ERR_INTERNAL, "internal error");
    db_bind_double(st, 1, now);
    int rc = db_step(st);
    if (rc == DB_ROW) {
        out->rows = db_col_i64(st, 0);
        if (out->rows) {
            out->oldest_id = db_col_i64(st, 1);
            out->newest_id = db_col_i64(st, 2);
            out->oldest_at = db_col_double(st, 3);
            out->newest_at = db_col_double(st, 4);
        }
        out->last_minute = db_col_i64(st, 5);
        out->last_10_minutes = db_col_i64(st, 6);
    }
    db_done(st);
    return rc == DB_ROW ? 0 : db_fail(db, err);
}

int outbox_daemons(nova_db *db, void (*each)(void *ctx, const outbox_daemon *d), void *ctx,
                   nova_err *err)
{
    db_stmt *st = db_prepare(db, SQL_OUTBOX_DAEMONS);
    if (!st) return nova_fail(err, ERR_INTERNAL, "internal error");
    int rc;
    while ((rc = db_step(st)) == DB_ROW) {
        const char *name = db_col_text(st, 0);
        outbox_daemon d = {.name = name ? name : "",
                           .pid = db_col_i64(st, 1),
                           .started_at = db_col_double(st, 2),
                           .delivered_id = db_col_i64(st, 3),
                           .sockets = db_col_i64(st, 4),
                           .updated_at = db_col_double(st, 5)};
        each(ctx, &d);
    }
    db_done(st);
    return rc == DB_DONE ? 0 : db_fail(db, err);
}

/* The filters of outbox_search. Where the dialects differ is the JSON:
 * "is ?3 among the recipients" and "the chat the data is about". */
static const char SQL_OUTBOX_SEARCH[] =
    "SELECT " OUTBOX_COLUMNS " FROM outbox WHERE (?1 <= 0 OR id < ?1) "
    "AND (CAST(?2 AS TEXT) IS NULL OR action = ?2) "
    "AND (?3 <= 0 OR EXISTS (SELECT 1 FROM json_each(recipients) WHERE value = ?3)) "
    "AND (?4 <= 0 OR ?4 IN (json_extract(data, '$.chat_id'), json_extract(data, '$.chat.chat_id'), "
    "json_extract(data, '$.message.chat_id'))) "
    "AND (?5 <= 0 OR created_at >= ?5) AND (?6 <= 0 OR created_at < ?6) "
    "ORDER BY id DESC LIMIT ?7";
static const char SQL_OUTBOX_SEARCH_PG[] =
    "SELECT " OUTBOX_COLUMNS " FROM outbox WHERE (?1::bigint <= 0 OR id < ?1::bigint) "
    "AND (?2::text IS NULL OR action = ?2::text) "
    "AND (?3::bigint <= 0 OR recipients::jsonb @> to_jsonb(?3::bigint)) "
    "AND (?4::bigint <= 0 OR to_jsonb(?4::bigint) IN (data::jsonb -> 'chat_id', "
    "data::jsonb -> 'chat' -> 'chat_id', data::jsonb -> 'message' -> 'chat_id')) "
    "AND (?5::float8 <= 0 OR created_at >= ?5::float8) "
    "AND (?6::float8 <= 0 OR created_at < ?6::float8) "
    "ORDER BY id DESC LIMIT ?7::bigint";

int outbox_search(nova_db *db, outbox_reader *r, const outbox_filter *f, nova_err *err)
{
    int rc = reader_start(db, r, db_prepare_for(db, SQL_OUTBOX_SEARCH, SQL_OUTBOX_SEARCH_PG), err);
    if (rc) return rc;
    db_bind_i64(r->st, 1, f->before);
    if (f->action) db_bind_text(r->st, 2, f->action);
    db_bind_i64(r->st, 3, f->user_id);
    db_bind_i64(r->st, 4, f->chat_id);
    db_bind_double(r->st, 5, f->since);
    db_bind_double(r->st, 6, f->until);
    db_bind_i64(r->st, 7, f->limit > 0 ? f->limit : INT64_MAX);
    return 0;
}
