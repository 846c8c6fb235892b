/* outbox.c - writing events into the outbox table. */
#include "outbox.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_util.h"

static const char SQL_OUTBOX_INSERT[] =
    "INSERT INTO outbox (created_at, action, data, recipients, session_id, origin, request_id) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)";

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

static int emit(nova_db *db, const char *action, json_object *data, const int64_t *users,
                size_t n_users, int64_t session_id, nova_err *err)
{
    assert(db->in_write);
    int rc = 0;
    char *recipients = recipients_json(users, n_users);
    sqlite3_stmt *st = db_prepare(db, SQL_OUTBOX_INSERT);
    if (!recipients || !st) {
        rc = nova_fail(err, ERR_INTERNAL, "internal error");
        goto out;
    }
    sqlite3_bind_double(st, 1, nova_now());
    db_bind_text(st, 2, action);
    db_bind_text(st, 3, json_text(data, NULL));
    db_bind_text(st, 4, recipients);
    if (session_id) sqlite3_bind_int64(st, 5, session_id);
    if (db->origin) db_bind_text(st, 6, db->origin);
    sqlite3_bind_int64(st, 7, db->origin ? db->request_id : 0);
    rc = db_exec_done(db, st, err);
    if (!rc) db->emitted = true;
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
    sqlite3_stmt *st = db_prepare(db, SQL_CHAT_MEMBER_IDS);
    if (st) sqlite3_bind_int64(st, 1, chat_id);
    int rc = db_collect_ids(db, st, &members, err);
    if (rc)
        json_object_put(data);
    else
        rc = emit(db, action, data, members.v, members.n, 0, err);
    idlist_free(&members);
    return rc;
}

void outbox_set_origin(nova_db *db, const char *origin, int64_t request_id)
{
    db->origin = origin;
    db->request_id = request_id;
}

void outbox_clear_origin(nova_db *db)
{
    db->origin = NULL;
    db->request_id = 0;
}

static const char SQL_OUTBOX_PRUNE[] =
    "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE created_at < ? ORDER BY id "
    "LIMIT ?)";
static const char SQL_OUTBOX_BOUNDS[] = "SELECT (SELECT min(id) FROM outbox), "
                                        "(SELECT seq FROM sqlite_sequence WHERE name = 'outbox')";

int outbox_prune(nova_db *db, double before, int batch, int *deleted, nova_err *err)
{
    sqlite3_stmt *st = db_prepare(db, SQL_OUTBOX_PRUNE);
    if (!st) return nova_fail(err, ERR_INTERNAL, "internal error");
    sqlite3_bind_double(st, 1, before);
    sqlite3_bind_int(st, 2, batch);
    int rc = db_exec_done(db, st, err);
    *deleted = rc ? 0 : sqlite3_changes(db->sql);
    return rc;
}

int outbox_bounds(nova_db *db, int64_t *oldest, int64_t *newest, nova_err *err)
{
    sqlite3_stmt *st = db_prepare(db, SQL_OUTBOX_BOUNDS);
    if (!st) return nova_fail(err, ERR_INTERNAL, "internal error");
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *newest = sqlite3_column_int64(st, 1);
        *oldest =
            sqlite3_column_type(st, 0) == SQLITE_NULL ? *newest + 1 : sqlite3_column_int64(st, 0);
    }
    db_done(st);
    return rc == SQLITE_ROW ? 0 : db_fail(db, err);
}

bool outbox_addressed_to(const char *recipients, int64_t event_session, int64_t user_id,
                         int64_t session_id)
{
    if (event_session && event_session != session_id) return false;
    for (const char *p = recipients; *p;) {
        if (*p < '0' || *p > '9') {
            p++;
            continue;
        }
        char *end;
        long long id = strtoll(p, &end, 10);
        if (id == user_id) return true;
        p = end;
    }
    return false;
}
