/* fuzz_socket.c - libFuzzer harness for the socket packet handler.
 *
 * An input is up to MAX_FRAMES client messages separated by the byte 0x1E.
 * The first byte of each picks how it arrives: b & 1 marks a binary frame,
 * (b >> 1) % N_CONNS the socket (alice's two sessions, bob, carol, dave,
 * erin); the rest is the message. Each goes to actions_handle on an rt
 * whose database is the seeded one of world.h (restored before every
 * input) and whose conns have no wsi, so their packets stay queued; after
 * each message the queues are read, checked and freed.
 *
 * Checked after every message (API.md §5): every packet is JSON of one of
 * the three documented forms (error with code 400, pong, notification with
 * event_id); the socket that sent the message gets exactly one error or
 * pong, carrying the request's request_id, or, for an action that worked,
 * its events with that request_id while other sockets see 0; a failed
 * action changes nothing and emits nothing; every new outbox event reaches
 * exactly the sockets of its recipients (and of its session), once, in
 * order, and chat events are addressed to exactly the chat's members; a
 * sent message is stored as sent. typing ([ext] Presence and typing) gets
 * its reply {"chat_id","sent"} (no event_id) and its event goes to the
 * chat's members but the typer. After every input: the database
 * invariants (invariants.h). */
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/json_util.h"
#include "../../common/outbox.h"
#include "../../realtime/rt.h"
#include "invariants.h"
#include "shapes.h"
#include "world.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { MAX_FRAMES = 24, N_CONNS = 6, DEEP_CHECK_EVERY = 1000 };

static fuzz_world world;
static rt server;
static conn conns[N_CONNS];
static int64_t seeded_outbox;
static uint64_t fingerprint;

static void release(void)
{
    for (int i = 0; i < N_CONNS; i++) {
        rt_unregister(&server, &conns[i]);
        conn_free_queue(&conns[i]);
    }
    rt_registry_free(&server);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_world_init(&world);
    inv_check_db(world.db, true);
    server.cfg = &world.cfg;
    server.db = world.db;
    server.wake_fd = -1;
    snprintf(server.name, sizeof server.name, "fuzz:1");
    if (rt_registry_init(&server, 64)) fuzz_fail("registry");
    /* Sockets: alice (two sessions), bob, carol, dave, erin. */
    static const int slots[N_CONNS] = {SESSION_ALICE, SESSION_ALICE2, SESSION_BOB,
                                       SESSION_CAROL, SESSION_DAVE,   SESSION_ERIN};
    for (int i = 0; i < N_CONNS; i++) {
        conns[i].id = (uint64_t)i + 1;
        conns[i].user_id = world.token_user[slots[i]];
        conns[i].session_id = world.session_id[slots[i]];
        rt_register(&server, &conns[i]);
    }
    seeded_outbox = inv_outbox_newest(world.db);
    atexit(release);
    return 0;
}

/* --- what the client sent ------------------------------------------------- */

typedef struct sent {
    bool is_object;
    bool bad_request_id; /* present but not an integer: an error packet */
    int64_t request_id;  /* what the reply must carry */
    const char *action;  /* NULL unless a string */
    json_object *msg, *data;
} sent;

static void read_sent(const char *text, size_t len, bool binary, sent *s)
{
    memset(s, 0, sizeof *s);
    nova_err err;
    if (binary || json_parse_strict(text, len, (int)world.cfg.json_max_depth, &s->msg, &err))
        return;
    s->is_object = s->msg && json_object_is_type(s->msg, json_type_object);
    if (!s->is_object) return;
    json_object *rid, *action;
    if (json_object_object_get_ex(s->msg, "request_id", &rid) &&
        !json_is_int64(rid, &s->request_id)) {
        s->request_id = 0;
        s->bad_request_id = true;
    }
    /* A name holding a NUL ("ping\u0000") names no action: it is not the
     * C string it starts with. */
    if (json_object_object_get_ex(s->msg, "action", &action) && action &&
        json_object_is_type(action, json_type_string) &&
        strlen(json_object_get_string(action)) == (size_t)json_object_get_string_len(action))
        s->action = json_object_get_string(action);
    json_object_object_get_ex(s->msg, "data", &s->data);
}

/* --- the outbox rows a message caused ------------------------------------ */

typedef struct event_row {
    int64_t id, session_id, request_id;
    char *action, *data, *recipients, *origin;
} event_row;

static size_t load_events(int64_t after, event_row *rows, size_t cap)
{
    static const char sql[] = "SELECT id, action, data, recipients, coalesce(session_id, 0), "
                              "origin, request_id FROM outbox WHERE id > ? ORDER BY id";
    sqlite3_stmt *st = world_prepare_lite(world.db, sql);
    sqlite3_bind_int64(st, 1, after);
    size_t n = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        if (n == cap) fuzz_fail("one message caused more than %zu events", cap);
        event_row *e = &rows[n++];
        e->id = sqlite3_column_int64(st, 0);
        e->action = strdup((const char *)sqlite3_column_text(st, 1));
        e->data = strdup((const char *)sqlite3_column_text(st, 2));
        e->recipients = strdup((const char *)sqlite3_column_text(st, 3));
        e->session_id = sqlite3_column_int64(st, 4);
        const char *origin = (const char *)sqlite3_column_text(st, 5);
        e->origin = origin ? strdup(origin) : NULL;
        e->request_id = sqlite3_column_int64(st, 6);
    }
    sqlite3_reset(st);
    return n;
}

static void free_events(event_row *rows, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(rows[i].action);
        free(rows[i].data);
        free(rows[i].recipients);
        free(rows[i].origin);
    }
}

/* Is the event for this socket? Read independently of the daemon's own
 * parser: the recipients as the JSON array they are. */
static bool addressed(const event_row *e, const conn *c)
{
    if (e->session_id && e->session_id != c->session_id) return false;
    json_object *arr = json_tokener_parse(e->recipients);
    if (!arr || !json_object_is_type(arr, json_type_array))
        fuzz_fail("event %lld: recipients %s are not a JSON array", (long long)e->id, e->recipients);
    bool found = false;
    for (size_t i = 0, n = json_object_array_length(arr); i < n && !found; i++)
        found = json_object_get_int64(json_object_array_get_idx(arr, i)) == c->user_id;
    json_object_put(arr);
    return found;
}

/* The members of a chat as the JSON text the outbox writes ("[3,4]"). */
static void members_text(int64_t chat_id, int64_t but, char *out, size_t size)
{
    static const char sql[] =
        "SELECT '[' || coalesce(group_concat(user_id, ','), '') || ']' FROM "
        "(SELECT user_id FROM chat_members WHERE chat_id = ? AND user_id <> ? ORDER BY user_id)";
    sqlite3_stmt *st = world_prepare_lite(world.db, sql);
    sqlite3_bind_int64(st, 1, chat_id);
    sqlite3_bind_int64(st, 2, but);
    snprintf(out, size, "%s",
             sqlite3_step(st) == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 0) : "?");
    sqlite3_reset(st);
}

/* Socket actions only cause chat events and message_deleted: check whom
 * they address (membership does not change through the socket). */
static void check_addressing(const event_row *e, const conn *origin, const char *where)
{
    json_object *data = shape_parse(e->data, strlen(e->data), where);
    int64_t chat_id = 0, but = 0;
    if (!strcmp(e->action, "typing")) {
        chat_id = shape_int(data, "chat_id");
        but = origin->user_id; /* the typer's own sockets are not told */
    } else if (!strcmp(e->action, "new_message")) {
        chat_id = shape_int(json_object_object_get(data, "message"), "chat_id");
    } else if (!strcmp(e->action, "messages_read")) {
        chat_id = shape_int(data, "chat_id");
    } else if (!strcmp(e->action, "message_edited") || !strcmp(e->action, "reaction_added") ||
               !strcmp(e->action, "reaction_removed")) {
        /* [ext] to the members, or (a call that changed nothing) to the caller only */
        char self[32];
        snprintf(self, sizeof self, "[%lld]", (long long)origin->user_id);
        if (strcmp(e->recipients, self)) chat_id = shape_int(data, "chat_id");
    } else if (!strcmp(e->action, "message_recalled")) {
        static const char sql[] = "SELECT chat_id FROM messages WHERE id = ?";
        sqlite3_stmt *st = world_prepare_lite(world.db, sql);
        sqlite3_bind_int64(st, 1, shape_int(data, "message_id"));
        chat_id = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
        sqlite3_reset(st);
    } else if (!strcmp(e->action, "message_deleted")) {
        char want[32];
        snprintf(want, sizeof want, "[%lld]", (long long)origin->user_id);
        if (strcmp(e->recipients, want))
            fuzz_fail("%s: message_deleted to %s, not to the deleting user", where, e->recipients);
    } else {
        fuzz_fail("%s: a socket action caused '%s'", where, e->action);
    }
    if (chat_id) {
        char want[512];
        members_text(chat_id, but, want, sizeof want);
        if (strcmp(e->recipients, want))
            fuzz_fail("%s: %s of chat %lld to %s, but its members are %s", where, e->action,
                      (long long)chat_id, e->recipients, want);
    }
    json_object_put(data);
}

/* --- the packets ------------------------------------------------------------ */

static json_object *field(json_object *o, const char *k)
{
    json_object *v = NULL;
    json_object_object_get_ex(o, k, &v);
    return v;
}

static size_t count_keys(json_object *o)
{
    return o && json_object_is_type(o, json_type_object) ? (size_t)json_object_object_length(o) : 0;
}

/* Check every packet queued to c for this message, then free them. */
static void drain(conn *c, bool is_origin, const sent *s, const event_row *events, size_t n_events,
                  int *errors, int *pongs, int *replies, size_t *delivered, const char *frame_where)
{
    int64_t last_event = 0;
    int k = 0;
    for (queued *q = c->head; q; q = q->next, k++) {
        char where[300];
        snprintf(where, sizeof where, "%s, socket %llu packet %d", frame_where,
                 (unsigned long long)c->id, k);
        const char *text = (const char *)q->pkt->bytes + LWS_PRE;
        if (getenv("NOVA_FUZZ_TRACE"))
            fprintf(stderr, "%s: %.*s\n", where, (int)(q->pkt->len > 200 ? 200 : q->pkt->len),
                    text);
        json_object *p = shape_parse(text, q->pkt->len, where);
        if (!p || !json_object_is_type(p, json_type_object))
            fuzz_fail("%s: not a JSON object: %.*s", where, (int)q->pkt->len, text);
        const char *action = shape_str(p, "action");
        json_object *ok = field(p, "ok");
        int64_t rid;
        if (!json_is_int64(field(p, "request_id"), &rid))
            fuzz_fail("%s: request_id is not an integer", where);
        if (!ok || !json_object_is_type(ok, json_type_boolean))
            fuzz_fail("%s: ok is not a boolean", where);
        if (!strcmp(action, "error")) {
            int64_t code;
            if (count_keys(p) != 5 || json_object_get_boolean(ok) ||
                !json_is_int64(field(p, "code"), &code) || !shape_str(p, "error")[0])
                fuzz_fail("%s: malformed error packet: %.*s", where, (int)q->pkt->len, text);
            if (code != 400)
                fuzz_fail("%s: error code %lld (only 400 is documented): %s", where,
                          (long long)code, shape_str(p, "error"));
            if (!is_origin) fuzz_fail("%s: an error packet on another socket", where);
            if (rid != s->request_id)
                fuzz_fail("%s: error with request_id %lld, the request's is %lld", where,
                          (long long)rid, (long long)s->request_id);
            ++*errors;
        } else if (!strcmp(action, "pong") && !field(p, "event_id")) {
            if (count_keys(p) != 4 || !json_object_get_boolean(ok) || field(p, "data") ||
                !json_object_object_get_ex(p, "data", NULL))
                fuzz_fail("%s: malformed pong: %.*s", where, (int)q->pkt->len, text);
            if (!is_origin || rid != s->request_id)
                fuzz_fail("%s: pong on the wrong socket or with request_id %lld", where,
                          (long long)rid);
            ++*pongs;
        } else if (!strcmp(action, "typing") && !field(p, "event_id")) {
            json_object *d = field(p, "data"), *sent_field = field(d, "sent");
            int64_t chat_id;
            if (count_keys(p) != 4 || !json_object_get_boolean(ok) || count_keys(d) != 2 ||
                !json_is_int64(field(d, "chat_id"), &chat_id) || chat_id <= 0 || !sent_field ||
                !json_object_is_type(sent_field, json_type_boolean))
                fuzz_fail("%s: malformed typing reply: %.*s", where, (int)q->pkt->len, text);
            if (!is_origin || rid != s->request_id)
                fuzz_fail("%s: typing reply on the wrong socket or with request_id %lld", where,
                          (long long)rid);
            ++*replies;
        } else {
            int64_t event_id;
            if (count_keys(p) != 5 || !json_object_get_boolean(ok) ||
                !json_is_int64(field(p, "event_id"), &event_id) ||
                !json_object_object_get_ex(p, "data", NULL))
                fuzz_fail("%s: malformed notification: %.*s", where, (int)q->pkt->len, text);
            if (!shape_known_event(action))
                fuzz_fail("%s: unknown notification '%s'", where, action);
            shape_event_data(action, field(p, "data"), where);
            if (event_id <= last_event) fuzz_fail("%s: events out of order", where);
            last_event = event_id;
            size_t e = 0;
            while (e < n_events && events[e].id != event_id)
                e++;
            if (e == n_events)
                fuzz_fail("%s: event %lld is not a new outbox event", where, (long long)event_id);
            if (strcmp(events[e].action, action))
                fuzz_fail("%s: action differs from the outbox", where);
            if (!addressed(&events[e], c))
                fuzz_fail("%s: event %lld is not for this socket", where, (long long)event_id);
            int64_t want = is_origin ? s->request_id : 0;
            if (rid != want)
                fuzz_fail("%s: notification with request_id %lld, expected %lld", where,
                          (long long)rid, (long long)want);
            delivered[e]++;
        }
        json_object_put(p);
    }
    conn_free_queue(c);
}

static void check_sent_message(const sent *s, const event_row *events, size_t n, const conn *c,
                               const char *where)
{
    json_object *content = field(s->data, "content"), *reply = field(s->data, "reply_to");
    for (size_t i = 0; i < n; i++) {
        if (strcmp(events[i].action, "new_message")) continue;
        json_object *d = shape_parse(events[i].data, strlen(events[i].data), where);
        json_object *m = field(d, "message");
        if (strcmp(shape_str(m, "message"), json_object_get_string(content)))
            fuzz_fail("%s: the stored message differs from the content sent", where);
        if (shape_int(field(m, "sender"), "id") != c->user_id)
            fuzz_fail("%s: the message is not from the sender's user", where);
        int64_t r = 0;
        if (reply && json_is_int64(reply, &r) && r && shape_int(m, "reply_to_id") != r)
            fuzz_fail("%s: reply_to_id is not the one sent", where);
        json_object_put(d);
        return;
    }
    fuzz_fail("%s: send_message worked but no new_message was emitted", where);
}

/* What an action that worked must have done (API.md §5): a sent message
 * or messages_read leaves the chat read up to its newest message for the
 * sender; a recall rewrites the message, a delete hides it for the user. */
static void check_effect(const sent *s, const conn *c, const char *where)
{
    static const char read_sql[] =
        "SELECT r.last_read_id = (SELECT max(id) FROM messages WHERE chat_id = ?1) "
        "FROM chat_relations r WHERE r.chat_id = ?1 AND r.user_id = ?2";
    static const char recalled_sql[] =
        "SELECT recalled = 1 AND sender_id = 2 FROM messages WHERE id = ?1";
    static const char hidden_sql[] =
        "SELECT count(*) FROM message_deletions WHERE message_id = ?1 AND user_id = ?2";
    int64_t id = 0;
    const char *sql;
    if (!strcmp(s->action, "send_message") || !strcmp(s->action, "messages_read")) {
        json_is_int64(field(s->data, "chat_id"), &id);
        sql = read_sql;
    } else if (!strcmp(s->action, "recall_message")) {
        json_is_int64(field(s->data, "message_id"), &id);
        json_object *del = field(s->data, "delete");
        sql = del && json_object_get_boolean(del) ? hidden_sql : recalled_sql;
    } else {
        return;
    }
    sqlite3_stmt *st = world_prepare_lite(world.db, sql);
    sqlite3_bind_int64(st, 1, id);
    if (sql != recalled_sql) sqlite3_bind_int64(st, 2, c->user_id);
    int ok = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
    sqlite3_reset(st);
    if (ok != 1)
        fuzz_fail("%s: %s worked but its effect is missing (%s)", where, s->action,
                  sql == read_sql       ? "not read up to the newest message"
                  : sql == recalled_sql ? "message not recalled"
                                        : "message not hidden");
}

static void run_frame(const uint8_t *p, size_t n, int index)
{
    uint8_t flags = n ? p[0] : 0;
    bool binary = flags & 1;
    conn *c = &conns[(flags >> 1) % N_CONNS];
    const char *text = n ? (const char *)p + 1 : "";
    size_t len = n ? n - 1 : 0;
    char where[128];
    snprintf(where, sizeof where, "message %d (socket %llu%s)", index, (unsigned long long)c->id,
             binary ? ", binary" : "");

    sent s;
    read_sent(text, len, binary, &s);
    int64_t before = inv_outbox_newest(world.db);
    sqlite3_int64 changes = sqlite3_total_changes64(db_sqlite_handle(world.db));

    actions_handle(&server, c, text, len, binary);

    event_row events[64];
    size_t n_events = load_events(before, events, 64);
    if (server.last_id != (n_events ? events[n_events - 1].id : before))
        fuzz_fail("%s: the tail did not deliver up to the newest event", where);
    size_t delivered[64] = {0};
    int errors = 0, pongs = 0, replies = 0;
    for (int i = 0; i < N_CONNS; i++) {
        int e = 0, po = 0, re = 0;
        drain(&conns[i], &conns[i] == c, &s, events, n_events, &e, &po, &re, delivered, where);
        errors += e;
        pongs += po;
        replies += re;
    }

    /* Exactly one answer: an error, a pong, or the events of the action. */
    if (errors + pongs + replies > 1)
        fuzz_fail("%s: %d errors, %d pongs and %d replies", where, errors, pongs, replies);
    bool typing =
        !binary && s.is_object && !s.bad_request_id && s.action && !strcmp(s.action, "typing");
    if (typing && !errors && replies != 1) fuzz_fail("%s: typing without its reply", where);
    if (!typing && replies)
        fuzz_fail("%s: a typing reply for '%s'", where, s.action ? s.action : "?");
    bool ping =
        !binary && s.is_object && !s.bad_request_id && s.action && !strcmp(s.action, "ping");
    if (ping && pongs != 1) fuzz_fail("%s: ping without pong", where);
    if (!ping && pongs) fuzz_fail("%s: pong for '%s'", where, s.action ? s.action : "?");
    if (errors && n_events) fuzz_fail("%s: an error, yet %zu events were emitted", where, n_events);
    if (!errors && !ping && !typing && !n_events)
        fuzz_fail("%s: neither an error nor any event", where);
    if ((!s.is_object || s.bad_request_id) && !errors)
        fuzz_fail("%s: a non-object message or a bad request_id was not an error", where);

    for (size_t e = 0; e < n_events; e++) {
        char w[200];
        snprintf(w, sizeof w, "%s, event %lld %s", where, (long long)events[e].id,
                 events[e].action);
        char origin[128];
        snprintf(origin, sizeof origin, "%s#%llu", server.name, (unsigned long long)c->id);
        if (!events[e].origin || strcmp(events[e].origin, origin) ||
            events[e].request_id != s.request_id)
            fuzz_fail("%s: origin %s/%lld, expected %s/%lld", w,
                      events[e].origin ? events[e].origin : "NULL", (long long)events[e].request_id,
                      origin, (long long)s.request_id);
        check_addressing(&events[e], c, w);
        size_t want = 0;
        for (int i = 0; i < N_CONNS; i++)
            want += addressed(&events[e], &conns[i]);
        if (delivered[e] != want)
            fuzz_fail("%s: delivered to %zu sockets, addressed to %zu", w, delivered[e], want);
    }
    if (n_events) inv_check_outbox(world.db, before);
    if (n_events && s.action && !strcmp(s.action, "send_message"))
        check_sent_message(&s, events, n_events, c, where);
    if (n_events && s.action) check_effect(&s, c, where);
    free_events(events, n_events);

    /* A failed action changes nothing. */
    if (sqlite3_total_changes64(db_sqlite_handle(world.db)) != changes) {
        uint64_t after = inv_fingerprint(world.db, true);
        if (after != fingerprint && errors)
            fuzz_fail("%s: the action failed but changed the database", where);
        fingerprint = after;
    }
    json_object_put(s.msg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_world_reset(&world);
    fingerprint = world.fingerprint;
    server.last_id = seeded_outbox;

    const uint8_t *p = data, *end = data + size;
    for (int i = 0; i < MAX_FRAMES; i++) {
        const uint8_t *sep = memchr(p, 0x1e, (size_t)(end - p));
        size_t n = sep ? (size_t)(sep - p) : (size_t)(end - p);
        run_frame(p, n, i);
        if (!sep) break;
        p = sep + 1;
    }
    static long long changed;
    if (fuzz_world_dirty(&world)) inv_check_db(world.db, ++changed % DEEP_CHECK_EVERY == 0);
    return 0;
}
