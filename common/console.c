/* console.c - the outbox console's queries and their JSON. */
#include "console.h"

#include <stdlib.h>
#include <string.h>

#include "json_util.h"
#include "session.h"

/* How much of an event's data the list shows. */
enum { PREVIEW_BYTES = 160 };

static const char SQL_SAMPLE_UPSERT[] =
    "INSERT INTO realtime_samples (daemon, minute, lag, sockets) VALUES (?1, ?2, ?3, ?4) "
    "ON CONFLICT (daemon, minute) DO UPDATE SET sockets = excluded.sockets, lag = CASE WHEN "
    "excluded.lag > realtime_samples.lag THEN excluded.lag ELSE realtime_samples.lag END";
static const char SQL_SAMPLE_PRUNE[] = "DELETE FROM realtime_samples WHERE minute < ?1";
static const char SQL_SERIES_EVENTS[] =
    "SELECT CAST(created_at / 60 AS INTEGER) AS m, count(*) FROM outbox WHERE created_at >= ?1 "
    "GROUP BY m ORDER BY m";
static const char SQL_SERIES_EVENTS_PG[] =
    "SELECT floor(created_at / 60)::bigint AS m, count(*) FROM outbox WHERE created_at >= ?1 "
    "GROUP BY m ORDER BY m";
static const char SQL_SERIES_LAG[] =
    "SELECT daemon, minute, lag FROM realtime_samples WHERE minute >= ?1 ORDER BY daemon, minute";
static const char SQL_USER_ID_BY_NAME[] = "SELECT id FROM users WHERE user_name = ?1";
static const char SQL_USER_NAME[] = "SELECT user_name FROM users WHERE id = ?1";

int console_record_sample(nova_db *db, const char *daemon, int64_t minute, int64_t lag,
                          int64_t sockets, nova_err *err)
{
    db_stmt *st = db_prepare(db, SQL_SAMPLE_UPSERT);
    if (!st) return nova_fail(err, ERR_INTERNAL, "internal error");
    db_bind_text(st, 1, daemon);
    db_bind_i64(st, 2, minute);
    db_bind_i64(st, 3, lag);
    db_bind_i64(st, 4, sockets);
    return db_exec_done(db, st, err);
}

int console_prune_samples(nova_db *db, double before, nova_err *err)
{
    db_stmt *st = db_prepare(db, SQL_SAMPLE_PRUNE);
    if (!st) return nova_fail(err, ERR_INTERNAL, "internal error");
    db_bind_i64(st, 1, (int64_t)(before / 60));
    return db_exec_done(db, st, err);
}

static void put(json_object *o, const char *key, json_object *v)
{
    json_object_object_add(o, key, v);
}

/* --- stats -------------------------------------------------------------- */

typedef struct daemons_ctx {
    json_object *list;
    int64_t newest;
    double now;
} daemons_ctx;

static void add_daemon(void *ctx, const outbox_daemon *d)
{
    daemons_ctx *c = ctx;
    json_object *o = json_object_new_object();
    put(o, "name", json_str(d->name));
    put(o, "pid", json_i64(d->pid));
    put(o, "started_at", json_time(d->started_at));
    put(o, "delivered_id", json_i64(d->delivered_id));
    put(o, "lag", json_i64(c->newest > d->delivered_id ? c->newest - d->delivered_id : 0));
    put(o, "sockets", json_i64(d->sockets));
    put(o, "updated_at", json_time(d->updated_at));
    put(o, "stale", json_object_new_boolean(c->now - d->updated_at > CONSOLE_DAEMON_STALE));
    json_object_array_add(c->list, o);
}

json_object *console_stats(nova_db *db, nova_err *err)
{
    double now = nova_now();
    outbox_stats s;
    int64_t oldest, newest;
    if (outbox_stats_read(db, now, &s, err) || outbox_bounds(db, &oldest, &newest, err))
        return NULL;
    json_object *o = json_object_new_object();
    put(o, "now", json_time(now));
    put(o, "rows", json_i64(s.rows));
    put(o, "oldest_id", s.rows ? json_i64(s.oldest_id) : NULL);
    put(o, "newest_id", s.rows ? json_i64(s.newest_id) : NULL);
    put(o, "oldest_at", s.rows ? json_time(s.oldest_at) : NULL);
    put(o, "newest_at", s.rows ? json_time(s.newest_at) : NULL);
    put(o, "position", json_i64(newest));
    put(o, "events_last_minute", json_i64(s.last_minute));
    put(o, "events_per_second", json_object_new_double((double)s.last_minute / 60.0));
    put(o, "events_per_minute_10m", json_object_new_double((double)s.last_10_minutes / 10.0));
    daemons_ctx c = {.list = json_object_new_array(), .newest = newest, .now = now};
    put(o, "daemons", c.list);
    if (outbox_daemons(db, add_daemon, &c, err)) {
        json_object_put(o);
        return NULL;
    }
    return o;
}

/* --- series ------------------------------------------------------------- */

json_object *console_series(nova_db *db, int hours, nova_err *err)
{
    double now = nova_now();
    int64_t to = (int64_t)(now / 60), from = to - (int64_t)hours * 60 + 1;
    json_object *o = json_object_new_object(), *events = json_object_new_array(),
                *lag = json_object_new_array();
    put(o, "hours", json_i64(hours));
    put(o, "from", json_i64(from * 60));
    put(o, "to", json_i64(to * 60));
    put(o, "events", events);
    put(o, "lag", lag);
    db_stmt *st = db_prepare_for(db, SQL_SERIES_EVENTS, SQL_SERIES_EVENTS_PG);
    int rc = -1;
    if (st) {
        db_bind_double(st, 1, (double)from * 60);
        while ((rc = db_step(st)) == DB_ROW) {
            json_object *p = json_object_new_array();
            json_object_array_add(p, json_i64(db_col_i64(st, 0) * 60));
            json_object_array_add(p, json_i64(db_col_i64(st, 1)));
            json_object_array_add(events, p);
        }
        db_done(st);
    }
    if (rc != DB_DONE) goto fail;
    rc = -1;
    st = db_prepare(db, SQL_SERIES_LAG);
    if (st) {
        db_bind_i64(st, 1, from);
        json_object *points = NULL;
        const char *last = NULL;
        while ((rc = db_step(st)) == DB_ROW) {
            const char *name = db_col_text(st, 0);
            if (!name) name = "";
            if (!points || strcmp(last, name)) {
                json_object *d = json_object_new_object();
                put(d, "daemon", json_str(name));
                points = json_object_new_array();
                put(d, "points", points);
                json_object_array_add(lag, d);
                last = json_object_get_string(json_object_object_get(d, "daemon"));
            }
            json_object *p = json_object_new_array();
            json_object_array_add(p, json_i64(db_col_i64(st, 1) * 60));
            json_object_array_add(p, json_i64(db_col_i64(st, 2)));
            json_object_array_add(points, p);
        }
        db_done(st);
    }
    if (rc != DB_DONE) goto fail;
    return o;
fail:
    json_object_put(o);
    if (!st) nova_fail(err, ERR_INTERNAL, "internal error");
    else db_fail(db, err);
    return NULL;
}

/* --- events ------------------------------------------------------------- */

/* The recipients text "[1,2,3]" as a JSON array of ids. */
static json_object *recipient_ids(const char *recipients)
{
    json_object *a = json_object_new_array();
    int64_t id;
    while (outbox_next_recipient(&recipients, &id))
        json_object_array_add(a, json_i64(id));
    return a;
}

/* The first PREVIEW_BYTES of s, cut before a UTF-8 continuation byte. */
static json_object *preview(const char *s)
{
    size_t len = strlen(s);
    if (len <= PREVIEW_BYTES) return json_str(s);
    size_t cut = PREVIEW_BYTES;
    while (cut && ((unsigned char)s[cut] & 0xC0) == 0x80)
        cut--;
    char buf[PREVIEW_BYTES + 4];
    memcpy(buf, s, cut);
    memcpy(buf + cut, "\xe2\x80\xa6", 4); /* … */
    return json_str(buf);
}

/* An event as the list shows it (full: with its parsed data and origin). */
static json_object *event_json(const outbox_event *ev, bool full)
{
    json_object *o = json_object_new_object();
    put(o, "id", json_i64(ev->id));
    put(o, "created_at", json_time(ev->created_at));
    put(o, "action", json_str(ev->action));
    put(o, "recipients", recipient_ids(ev->recipients));
    put(o, "session_id", ev->session_id ? json_i64(ev->session_id) : NULL);
    put(o, "request_id", ev->request_id ? json_i64(ev->request_id) : NULL);
    if (full) {
        json_object *data = json_tokener_parse(ev->data);
        put(o, "data", data ? data : json_str(ev->data));
        put(o, "origin", ev->origin ? json_str(ev->origin) : NULL);
    } else {
        put(o, "preview", preview(ev->data));
    }
    return o;
}

/* Read every event of a started read into a new array; NULL on failure. */
static json_object *collect(outbox_reader *r, int64_t *last, long *count, nova_err *err)
{
    json_object *list = json_object_new_array();
    outbox_event ev;
    int rc;
    *count = 0;
    while ((rc = outbox_next(r, &ev)) > 0) {
        json_object_array_add(list, event_json(&ev, false));
        *last = ev.id;
        ++*count;
    }
    outbox_read_end(r);
    if (rc < 0) {
        json_object_put(list);
        nova_fail(err, ERR_UNAVAILABLE, "the outbox cannot be read now");
        return NULL;
    }
    return list;
}

json_object *console_events(nova_db *db, const outbox_filter *f, nova_err *err)
{
    outbox_reader r;
    if (outbox_search(db, &r, f, err)) return NULL;
    int64_t last = 0;
    long count;
    json_object *list = collect(&r, &last, &count, err);
    if (!list) return NULL;
    json_object *o = json_object_new_object();
    put(o, "events", list);
    put(o, "next_before", count == f->limit && last > 1 ? json_i64(last) : NULL);
    return o;
}

json_object *console_tail(nova_db *db, int64_t after, long limit, nova_err *err)
{
    int64_t oldest, newest;
    if (outbox_bounds(db, &oldest, &newest, err)) return NULL;
    json_object *list;
    int64_t last = after;
    long count = 0;
    if (after >= 0) {
        outbox_reader r;
        if (outbox_read(db, &r, after, newest, limit, NULL, err)) return NULL;
        if (!(list = collect(&r, &last, &count, err))) return NULL;
    } else {
        list = json_object_new_array();
        last = newest;
    }
    json_object *o = json_object_new_object();
    put(o, "events", list);
    put(o, "after", json_i64(last)); /* ask for the events after this one next */
    put(o, "position", json_i64(newest));
    put(o, "resync", json_object_new_boolean(after > 0 && after + 1 < oldest));
    return o;
}

json_object *console_event(nova_db *db, int64_t id, nova_err *err)
{
    outbox_reader r;
    outbox_event ev;
    int rc = outbox_read_one(db, &r, id, &ev, err);
    json_object *o = rc ? NULL : event_json(&ev, true);
    outbox_read_end(&r);
    if (!o) return NULL;
    /* The ids were copied: now resolve them, one indexed lookup each. */
    json_object *ids = json_object_object_get(o, "recipients"), *users = json_object_new_array();
    for (size_t i = 0; i < json_object_array_length(ids); i++) {
        int64_t uid = json_object_get_int64(json_object_array_get_idx(ids, i));
        db_stmt *st = db_prepare(db, SQL_USER_NAME);
        if (!st) {
            json_object_put(users);
            json_object_put(o);
            nova_fail(err, ERR_INTERNAL, "internal error");
            return NULL;
        }
        db_bind_i64(st, 1, uid);
        json_object *u = json_object_new_object();
        put(u, "id", json_i64(uid));
        rc = db_step(st);
        put(u, "user_name", rc == DB_ROW ? json_str(db_col_text(st, 0)) : NULL); /* gone: null */
        db_done(st);
        json_object_array_add(users, u);
        if (rc != DB_ROW && rc != DB_DONE) {
            json_object_put(users);
            json_object_put(o);
            db_fail(db, err);
            return NULL;
        }
    }
    put(o, "recipient_users", users);
    return o;
}

/* --- sessions ----------------------------------------------------------- */

typedef struct sessions_ctx {
    json_object *list;
    long idle;
} sessions_ctx;

static void add_session(void *ctx, const session_row *s)
{
    sessions_ctx *c = ctx;
    json_object *o = json_object_new_object();
    put(o, "id", json_i64(s->id));
    put(o, "user_id", json_i64(s->user_id));
    put(o, "user_name", json_str(s->user_name));
    put(o, "created_at", json_time(s->created_at));
    put(o, "last_seen", json_time(s->last_seen));
    put(o, "idle_expires_at", json_time(s->last_seen + (double)c->idle));
    put(o, "expires_at", json_time(s->expires_at));
    json_object_array_add(c->list, o);
}

json_object *console_sessions(nova_db *db, const char *user_name, nova_err *err)
{
    sessions_ctx c = {.list = json_object_new_array(), .idle = db->cfg->session_idle};
    if (session_list(db, user_name, nova_now(), add_session, &c, err)) {
        json_object_put(c.list);
        return NULL;
    }
    json_object *o = json_object_new_object();
    put(o, "sessions", c.list);
    return o;
}

/* The id of the user named name: 0, ERR_NOT_FOUND, or another kind. */
int console_user_id(nova_db *db, const char *name, int64_t *id, nova_err *err)
{
    db_stmt *st = db_prepare(db, SQL_USER_ID_BY_NAME);
    if (!st) return nova_fail(err, ERR_INTERNAL, "internal error");
    db_bind_text(st, 1, name);
    int rc = db_step(st);
    if (rc == DB_ROW) *id = db_col_i64(st, 0);
    db_done(st);
    if (rc == DB_DONE) return nova_fail(err, ERR_NOT_FOUND, "no user %.64s", name);
    return rc == DB_ROW ? 0 : db_fail(db, err);
}
