/* fuzz_rest.c - libFuzzer harness for the whole REST pipeline, in process.
 *
 * An input is up to MAX_REQUESTS requests separated by the byte 0x1E (a
 * byte JSON text never contains outside strings and never inside them
 * unescaped). Each request is
 *
 *     byte 0   method: METHODS[b & 15]; (b & 0x30) == 0x30 marks the body
 *              as larger than the limit (as the FastCGI adapter does)
 *     byte 1   session: b & 7 picks alice, bob, carol, dave, erin, alice's
 *              second session, the newest cookie a response of this input
 *              set, or none; b & 8: no Content-Type; b & 16: the cookie
 *              hidden among others (or, with no session, a well-formed
 *              unknown token); (b >> 5) & 3: no Origin, the allowed one,
 *              another one, "null"
 *     then     PATH '\n' QUERY '\n' CONTENT-TYPE '\n' BODY
 *
 * and runs through api_handle against the seeded database of world.h,
 * which is restored before every input. After every request it checks the
 * contract of API.md (status among 200/400/403/404/405/409/413, the JSON
 * envelope, the documented shape of the data of every route, the pipeline
 * order, headers, cookies, CORS), that a failed request, a GET and an
 * OPTIONS change nothing, that new outbox events are well formed and
 * addressed; after every input, the database invariants (invariants.h). */
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "../../common/json_util.h"
#include "../../fcgi/api.h"
#include "invariants.h"
#include "shapes.h"
#include "world.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { MAX_REQUESTS = 16, DEEP_CHECK_EVERY = 1000 };

static const char *const METHODS[16] = {
    "GET", "POST", "PATCH", "DELETE", "OPTIONS", "GET",   "POST",  "DELETE",
    "PUT", "HEAD", "",      "get",    "POST ",   "PATCH", "TRACE", "OPTIONS",
};
static const char ALLOWED_ORIGIN[] = "https://app.example.org";
static const char *const ORIGINS[4] = {NULL, ALLOWED_ORIGIN, "https://evil.example", "null"};

static fuzz_world world;
static uint64_t fingerprint; /* of the current state */
static long long inputs;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_world_init(&world);
    inv_check_db(world.db, true);
    inv_check_outbox(world.db, 0);
    return 0;
}

/* --- decoding ------------------------------------------------------------ */

typedef struct fuzz_request {
    http_request req;
    char *path, *query, *content_type, *cookie;
    int64_t caller; /* user of the session the cookie names, 0 when none */
    char token[TOKEN_LEN + 1];
} fuzz_request;

/* The next '\n'-terminated field of [*p, end) as a C string (NULs cut). */
static char *take_field(const uint8_t **p, const uint8_t *end)
{
    const uint8_t *nl = memchr(*p, '\n', (size_t)(end - *p));
    size_t len = nl ? (size_t)(nl - *p) : (size_t)(end - *p);
    char *s = strndup((const char *)*p, len);
    if (!s) abort();
    *p = nl ? nl + 1 : end;
    return s;
}

static int64_t session_user(const char *token)
{
    unsigned char hash[TOKEN_HASH_LEN];
    token_hash(token, strlen(token), hash);
    static const char sql[] = "SELECT user_id FROM sessions WHERE token_hash = ?";
    sqlite3_stmt *st = world_prepare_lite(world.db, sql);
    sqlite3_bind_blob(st, 1, hash, sizeof hash, SQLITE_STATIC);
    int64_t user = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_reset(st);
    return user;
}

static void decode(const uint8_t *p, size_t n, const char *latest, fuzz_request *r)
{
    memset(r, 0, sizeof *r);
    const uint8_t *end = p + n;
    uint8_t m = n > 0 ? p[0] : 0, f = n > 1 ? p[1] : 0;
    p += n > 2 ? 2 : n;
    r->path = take_field(&p, end);
    r->query = take_field(&p, end);
    r->content_type = take_field(&p, end);
    r->req.method = METHODS[m & 15];
    r->req.path = r->path;
    r->req.query = r->query;
    r->req.content_type = f & 8 ? NULL : r->content_type;
    r->req.origin = ORIGINS[(f >> 5) & 3];
    r->req.body_too_large = (m & 0x30) == 0x30;
    if (!r->req.body_too_large && p < end) {
        r->req.body = (const char *)p;
        r->req.body_len = (size_t)(end - p);
    }

    int sel = f & 7;
    const char *tok = sel < N_SESSIONS ? world.tokens[sel] : sel == 6 && latest[0] ? latest : NULL;
    if (tok) snprintf(r->token, sizeof r->token, "%s", tok);
    size_t cap = 128;
    r->cookie = malloc(cap);
    if (!r->cookie) abort();
    if (tok && (f & 16))
        snprintf(r->cookie, cap, "lang=en; sessionid=%s ;theme=dark", tok);
    else if (tok)
        snprintf(r->cookie, cap, "sessionid=%s", tok);
    else if (f & 16)
        snprintf(r->cookie, cap, "sessionid=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    else {
        free(r->cookie);
        r->cookie = NULL;
    }
    r->req.cookie = r->cookie;
    r->caller = tok ? session_user(tok) : 0;
}

static void request_free(fuzz_request *r)
{
    free(r->path);
    free(r->query);
    free(r->content_type);
    free(r->cookie);
}

/* --- checks -------------------------------------------------------------- */

static bool has_header(const http_response *resp, const char *name, const char *value)
{
    char line[512];
    snprintf(line, sizeof line, "%s: %s\r\n", name, value ? value : "");
    if (value) return memmem(resp->headers, resp->headers_len, line, strlen(line)) != NULL;
    snprintf(line, sizeof line, "%s: ", name);
    return memmem(resp->headers, resp->headers_len, line, strlen(line)) != NULL;
}

/* Every header line is "Name: value\r\n" with no other CR or LF. */
static void check_headers(const http_response *resp, const char *where)
{
    if (resp->headers_len >= sizeof resp->headers) fuzz_fail("%s: header overflow", where);
    const char *h = resp->headers, *end = h + resp->headers_len;
    while (h < end) {
        const char *crlf = memmem(h, (size_t)(end - h), "\r\n", 2);
        if (!crlf) fuzz_fail("%s: unterminated header line", where);
        const char *colon = memchr(h, ':', (size_t)(crlf - h));
        if (!colon || colon == h || colon[1] != ' ')
            fuzz_fail("%s: malformed header line '%.*s'", where, (int)(crlf - h), h);
        for (const char *c = h; c < crlf; c++)
            if (*c == '\r' || *c == '\n' || *c == '\0')
                fuzz_fail("%s: control character in a header", where);
        h = crlf + 2;
    }
}

/* Reference: the media type (before any ';', without surrounding blanks)
 * is application/json, case-insensitively. */
static bool json_media_type(const char *ct)
{
    const char *semi = strchr(ct, ';');
    size_t len = semi ? (size_t)(semi - ct) : strlen(ct);
    while (len && (*ct == ' ' || *ct == '\t'))
        ct++, len--;
    while (len && (ct[len - 1] == ' ' || ct[len - 1] == '\t'))
        len--;
    return len == 16 && !strncasecmp(ct, "application/json", 16);
}

static const api_route *match_route(const char *method, const char *path, int64_t *ids,
                                    bool *path_known)
{
    unsigned m = router_method(method);
    const api_route *found = NULL;
    *path_known = false;
    for (size_t i = 0; i < api_route_count; i++) {
        int64_t tmp[ROUTE_MAX_IDS];
        size_t n;
        if (!router_match(api_routes[i].pattern, path, tmp, &n)) continue;
        *path_known = true;
        if (!found && api_routes[i].method == m) {
            found = &api_routes[i];
            memcpy(ids, tmp, n * sizeof *ids);
        }
    }
    return found;
}

static bool is_handler(const api_route *r, api_handler h)
{
    return r && r->handler == h;
}

/* --- reference answers, straight from the tables ------------------------- */

/* A one-value query with up to two integer parameters (sql constant). */
static int64_t query_int(const char *sql, int64_t a, int64_t b, int64_t fallback)
{
    sqlite3_stmt *st = world_prepare_lite(world.db, sql);
    if (!st) fuzz_fail("cannot prepare %s", sql);
    sqlite3_bind_int64(st, 1, a);
    if (sqlite3_bind_parameter_count(st) > 1) sqlite3_bind_int64(st, 2, b);
    int64_t v = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : fallback;
    sqlite3_reset(st);
    return v;
}

/* The request body as JSON (NULL when empty or not JSON). */
static json_object *request_json(const fuzz_request *r)
{
    json_object *v = NULL;
    nova_err err;
    if (r->req.body_len && json_parse_strict(r->req.body, r->req.body_len, 32, &v, &err))
        return NULL;
    return v;
}

/* The integer at a dotted path ("chat.chat_id") of an object. */
static int64_t int_at(json_object *o, const char *path)
{
    char key[64];
    const char *dot;
    while ((dot = strchr(path, '.'))) {
        snprintf(key, sizeof key, "%.*s", (int)(dot - path), path);
        o = json_object_object_get(o, key);
        path = dot + 1;
    }
    return shape_int(o, path);
}

/* Ids of an array of objects (at a dotted path) in order, compared with
 * the ids a bound reference query yields (column 0), in order. */
static void same_ids(json_object *arr, const char *key, sqlite3_stmt *st, const char *what,
                     const char *where)
{
    size_t i = 0, n = json_object_array_length(arr);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t want = sqlite3_column_int64(st, 0);
        if (i >= n || int_at(json_object_array_get_idx(arr, i), key) != want) {
            sqlite3_reset(st);
            fuzz_fail("%s: %s differ from the tables at position %zu (want %lld)", where, what, i,
                      (long long)want);
        }
        i++;
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) fuzz_fail("%s: reference query failed", where);
    if (i != n) fuzz_fail("%s: %zu %s, the tables say %zu", where, n, what, i);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Like same_ids where the contract fixes no order: the same ids, each
 * once, in any order. */
static void same_id_set(json_object *arr, const char *key, sqlite3_stmt *st, const char *what,
                        const char *where)
{
    size_t n = json_object_array_length(arr), m = 0, cap = 16;
    int64_t *got = calloc(n ? n : 1, sizeof *got), *want = malloc(cap * sizeof *want);
    if (!got || !want) abort();
    for (size_t i = 0; i < n; i++)
        got[i] = int_at(json_object_array_get_idx(arr, i), key);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (m == cap && !(want = realloc(want, (cap *= 2) * sizeof *want))) abort();
        want[m++] = sqlite3_column_int64(st, 0);
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) fuzz_fail("%s: reference query failed", where);
    qsort(got, n, sizeof *got, cmp_i64);
    qsort(want, m, sizeof *want, cmp_i64);
    bool same = n == m && (!n || !memcmp(got, want, n * sizeof *got));
    for (size_t i = 1; same && i < n; i++)
        if (got[i] == got[i - 1]) same = false;
    free(got);
    free(want);
    if (!same) fuzz_fail("%s: %zu %s, not the %zu of the tables", where, n, what, m);
}

/* POST /friend/find against a plain scan (the trigram index must agree). */
static void check_find(const fuzz_request *r, json_object *d, const char *where)
{
    static const char by_id[] = "SELECT id FROM users WHERE id = ?1 AND id <> ?2 AND is_system = 0";
    static const char by_name[] =
        "SELECT id FROM users WHERE instr(user_name, ?1) > 0 AND id <> ?2 AND is_system = 0 "
        "ORDER BY id LIMIT 50";
    json_object *body = request_json(r), *id, *name;
    sqlite3_stmt *st = NULL;
    int64_t i;
    if (json_object_object_get_ex(body, "id", &id) && json_is_int64(id, &i)) {
        st = world_prepare_lite(world.db, by_id);
        sqlite3_bind_int64(st, 1, i);
    } else if (json_object_object_get_ex(body, "name_contains", &name) &&
               json_object_is_type(name, json_type_string)) {
        st = world_prepare_lite(world.db, by_name);
        sqlite3_bind_text(st, 1, json_object_get_string(name), -1, SQLITE_TRANSIENT);
    }
    if (st) {
        sqlite3_bind_int64(st, 2, r->caller);
        same_ids(d, "id", st, "users found", where);
    }
    json_object_put(body);
}

/* The last value of a positive integer query parameter (0: absent). */
static int64_t query_param(const char *query, const char *name)
{
    int64_t v = 0;
    size_t n = strlen(name);
    for (const char *p = query; p && *p; p = strchr(p, '&') ? strchr(p, '&') + 1 : NULL)
        if (!strncmp(p, name, n) && p[n] == '=') v = strtoll(p + n + 1, NULL, 10);
    return v;
}

/* [ext] GET /search: each hit a message the caller may read (a member of
 * its chat now, not recalled, not deleted for the caller), of the one chat
 * asked for, matched by a snippet of its own text, newest first when asked. */
static void check_search(const fuzz_request *r, json_object *d, const char *where)
{
    static const char readable[] =
        "SELECT count(*) FROM messages m JOIN chat_members c ON c.chat_id = m.chat_id "
        "AND c.user_id = ?2 WHERE m.id = ?1 AND m.recalled = 0 AND NOT EXISTS "
        "(SELECT 1 FROM message_deletions x WHERE x.user_id = ?2 AND x.message_id = m.id)";
    json_object *hits = json_object_object_get(d, "hits"), *next = NULL;
    if (!json_object_is_type(d, json_type_object) || json_object_object_length(d) != 2 ||
        !json_object_is_type(hits, json_type_array) ||
        !json_object_object_get_ex(d, "next_cursor", &next) ||
        (next && !json_object_is_type(next, json_type_string)))
        fuzz_fail("%s: not {\"hits\": [...], \"next_cursor\": ...}", where);
    int64_t chat = query_param(r->req.query, "chat_id"), prev = INT64_MAX;
    bool newest = r->req.query && strstr(r->req.query, "sort=newest");
    for (size_t i = 0, n = json_object_array_length(hits); i < n; i++) {
        json_object *hit = json_object_array_get_idx(hits, i), *m = NULL, *snippet = NULL;
        if (!json_object_is_type(hit, json_type_object) || json_object_object_length(hit) != 2 ||
            !json_object_object_get_ex(hit, "message", &m) ||
            !json_object_object_get_ex(hit, "snippet", &snippet) ||
            !json_object_is_type(snippet, json_type_array) ||
            !json_object_array_length(snippet))
            fuzz_fail("%s: a malformed hit", where);
        shape_message_basic(m, where);
        int64_t id = shape_int(m, "message_id");
        if (query_int(readable, id, r->caller, 0) != 1)
            fuzz_fail("%s: message %lld is not one the caller may read", where, (long long)id);
        if (chat && shape_int(m, "chat_id") != chat) fuzz_fail("%s: a hit of another chat", where);
        if (newest && id >= prev) fuzz_fail("%s: hits not newest first", where);
        prev = id;
        const char *text = shape_str(m, "message");
        bool matched = false;
        for (size_t k = 0, ns = json_object_array_length(snippet); k < ns; k++) {
            json_object *seg = json_object_array_get_idx(snippet, k);
            json_object *match = json_object_object_get(seg, "match");
            const char *t = shape_str(seg, "text");
            if (json_object_object_length(seg) != 2 || !json_object_is_type(match, json_type_boolean) ||
                !*t)
                fuzz_fail("%s: a malformed snippet segment", where);
            if (json_object_get_boolean(match)) {
                matched = true;
                if (!strstr(text, t)) fuzz_fail("%s: a match that is not in the text", where);
            }
        }
        if (!matched && !strstr(text, "\xef\xb7\x90") && !strstr(text, "\xef\xb7\x91"))
            fuzz_fail("%s: a snippet with no match", where);
    }
}

/* A list of ChatMessage.Detailed against the tables: which messages,
 * deleted (recalled, or hidden by the viewer) and read_users (watermarks). */
static void check_messages(const fuzz_request *r, int64_t chat, json_object *d, bool paged,
                           const char *where)
{
    static const char page[] = "SELECT id FROM messages WHERE chat_id = ?1 AND id < ?2 "
                               "ORDER BY id DESC LIMIT ?3";
    if (paged) {
        int64_t before = query_param(r->req.query, "before"),
                limit = query_param(r->req.query, "limit");
        sqlite3_stmt *st = world_prepare_lite(world.db, page);
        sqlite3_bind_int64(st, 1, chat);
        sqlite3_bind_int64(st, 2, before > 0 ? before : INT64_MAX);
        sqlite3_bind_int64(st, 3, limit > 0 ? limit : -1);
        same_ids(d, "message_id", st, "messages", where);
    }
    static const char deleted[] =
        "SELECT recalled OR EXISTS (SELECT 1 FROM message_deletions WHERE user_id = ?2 "
        "AND message_id = ?1) FROM messages WHERE id = ?1";
    static const char readers[] = "SELECT user_id FROM chat_relations WHERE chat_id = ?1 AND "
                                  "last_read_id >= ?2 AND last_read_id > 0 ORDER BY user_id";
    for (size_t i = 0, n = json_object_array_length(d); i < n; i++) {
        json_object *m = json_object_array_get_idx(d, i);
        int64_t id = shape_int(m, "message_id");
        if (query_int(deleted, id, r->caller, -1) !=
            json_object_get_boolean(json_object_object_get(m, "deleted")))
            fuzz_fail("%s: message %lld: deleted is wrong", where, (long long)id);
        sqlite3_stmt *st = world_prepare_lite(world.db, readers);
        sqlite3_bind_int64(st, 1, chat);
        sqlite3_bind_int64(st, 2, id);
        char w[320];
        snprintf(w, sizeof w, "%s: message %lld", where, (long long)id);
        same_ids(json_object_object_get(m, "read_users"), "id", st, "read_users", w);
    }
}

/* A UserChatRelation as the caller sees it: unread_count and
 * last_message from the tables, the members and admins too. */
static void check_relation(const fuzz_request *r, json_object *rel, const char *where)
{
    static const char unread[] =
        "SELECT (SELECT count(*) FROM messages m WHERE m.chat_id = r.chat_id AND "
        "m.id > r.last_read_id) FROM chat_relations r WHERE r.chat_id = ?1 AND r.user_id = ?2";
    static const char last[] =
        "SELECT coalesce(max(id), 0) FROM messages m WHERE chat_id = ?1 AND recalled = 0 AND "
        "NOT EXISTS (SELECT 1 FROM message_deletions d WHERE d.user_id = ?2 AND "
        "d.message_id = m.id)";
    /* API.md fixes no order for members and admins. */
    static const char members[] = "SELECT m.user_id FROM chat_members AS m WHERE m.chat_id = ?";
    static const char admins[] = "SELECT user_id FROM chat_members WHERE is_admin AND chat_id = ?";
    json_object *chat = json_object_object_get(rel, "chat");
    int64_t id = shape_int(chat, "chat_id");
    int64_t want = query_int(unread, id, r->caller, -1);
    if (want != shape_int(rel, "unread_count"))
        fuzz_fail("%s: chat %lld: unread_count %lld, the tables say %lld", where, (long long)id,
                  (long long)shape_int(rel, "unread_count"), (long long)want);
    want = query_int(last, id, r->caller, -1);
    json_object *lm = json_object_object_get(chat, "last_message");
    int64_t got = json_object_is_type(lm, json_type_object) ? shape_int(lm, "message_id") : 0;
    if (got != want)
        fuzz_fail("%s: chat %lld: last_message %lld, the tables say %lld", where, (long long)id,
                  (long long)got, (long long)want);
    sqlite3_stmt *st = world_prepare_lite(world.db, members);
    sqlite3_bind_int64(st, 1, id);
    same_id_set(json_object_object_get(chat, "chat_members"), "id", st, "chat_members", where);
    st = world_prepare_lite(world.db, admins);
    sqlite3_bind_int64(st, 1, id);
    same_id_set(json_object_object_get(chat, "chat_admins"), "id", st, "chat_admins", where);
}

/* The lists of the caller's things, against the tables. API.md fixes one
 * order only, the default friend group first: everything else is checked
 * as a set, so these queries say what the lists hold, not how the
 * implementation reads them. */
static void check_list(api_handler h, const fuzz_request *r, json_object *d, const char *where)
{
    static const char groups[] = "SELECT g.id FROM friend_groups AS g WHERE g.user_id = ?";
    static const char default_group[] =
        "SELECT id FROM friend_groups WHERE is_default <> 0 AND user_id = ?";
    static const char friends[] = "SELECT f.friend_id FROM friends AS f WHERE f.user_id = ?";
    static const char invitations[] =
        "SELECT i.id FROM friend_invitations AS i WHERE i.receiver_id = ?";
    static const char chats[] = "SELECT m.chat_id FROM chat_members AS m WHERE m.user_id = ?";
    const char *sql = h == h_friend_group_list        ? groups
                      : h == h_friend_list            ? friends
                      : h == h_friend_invitation_list ? invitations
                                                      : chats;
    const char *key = h == h_friend_group_list        ? "group_id"
                      : h == h_friend_list            ? "friend.id"
                      : h == h_friend_invitation_list ? "id"
                                                      : "chat.chat_id";
    sqlite3_stmt *st = world_prepare_lite(world.db, sql);
    sqlite3_bind_int64(st, 1, r->caller);
    same_id_set(d, key, st, "entries", where);
    if (h == h_friend_group_list) {
        int64_t first =
            json_object_array_length(d) ? int_at(json_object_array_get_idx(d, 0), "group_id") : 0;
        if (first != query_int(default_group, r->caller, 0, -1))
            fuzz_fail("%s: the default group is not first", where);
    }
}

/* The data of a 200 answer, by route (API.md §4). */
static void check_data(const api_route *route, const int64_t *ids, const fuzz_request *r,
                       json_object *d, const char *where)
{
    char w[300];
    snprintf(w, sizeof w, "%s data", where);
    api_handler h = route->handler;
    if (h == h_user_register || h == h_user_login || h == h_user_get || h == h_user_patch) {
        shape_user_detailed(d, w);
        if (h != h_user_register && h != h_user_login && shape_int(d, "id") != r->caller)
            fuzz_fail("%s: not the caller's profile", w);
    } else if (h == h_user_by_id) {
        shape_user_basic(d, w);
        if (shape_int(d, "id") != ids[0]) fuzz_fail("%s: another user than asked", w);
    } else if (h == h_friend_group_add || h == h_friend_group_get || h == h_friend_group_patch) {
        shape_friend_group(d, w);
        if (h != h_friend_group_add && shape_int(d, "group_id") != ids[0])
            fuzz_fail("%s: another group than asked", w);
    } else if (h == h_friend_group_list) {
        shape_array_of(d, shape_friend_group, w);
        check_list(h, r, d, w);
        if (!json_object_array_length(d) ||
            shape_str(json_object_array_get_idx(d, 0), "group_name")[0])
            fuzz_fail("%s: the default group is not first", w);
    } else if (h == h_friend_find) {
        shape_array_of(d, shape_user_basic, w);
        size_t n = json_object_array_length(d);
        if (n > 50) fuzz_fail("%s: %zu users found, more than 50", w, n);
        for (size_t i = 0; i < n; i++) {
            int64_t id = shape_int(json_object_array_get_idx(d, i), "id");
            if (id == r->caller || id <= 2) fuzz_fail("%s: finds the caller or a system user", w);
        }
        check_find(r, d, w);
    } else if (h == h_friend_invite) {
        if (d) shape_friend(d, w);
    } else if (h == h_friend_invitation_list) {
        shape_array_of(d, shape_friend_invitation, w);
        check_list(h, r, d, w);
    } else if (h == h_friend_invitation_accept || h == h_friend_get || h == h_friend_patch) {
        shape_friend(d, w);
        if (h != h_friend_invitation_accept &&
            shape_int(json_object_object_get(d, "friend"), "id") != ids[0])
            fuzz_fail("%s: another friend than asked", w);
    } else if (h == h_friend_list) {
        shape_array_of(d, shape_friend, w);
        check_list(h, r, d, w);
    } else if (h == h_chat_new) {
        shape_chat(d, w);
        if (shape_int(json_object_object_get(d, "chat_owner"), "id") != r->caller)
            fuzz_fail("%s: the new chat is not the caller's", w);
    } else if (h == h_chat_invitation_list) {
        shape_array_of(d, shape_chat_invitation, w);
        for (size_t i = 0, n = json_object_array_length(d); i < n; i++)
            if (shape_int(json_object_array_get_idx(d, i), "chat_id") != ids[0])
                fuzz_fail("%s: an invitation to another chat", w);
    } else if (h == h_chat_list || h == h_chat_get) {
        if (h == h_chat_list)
            shape_array_of(d, shape_chat_relation, w);
        else
            shape_chat_relation(d, w);
        if (h == h_chat_get && shape_int(json_object_object_get(d, "chat"), "chat_id") != ids[0])
            fuzz_fail("%s: another chat than asked", w);
        if (h == h_chat_get)
            check_relation(r, d, w);
        else
            check_list(h, r, d, w);
        if (h == h_chat_list)
            for (size_t i = 0, n = json_object_array_length(d); i < n; i++)
                check_relation(r, json_object_array_get_idx(d, i), w);
    } else if (h == h_chat_messages || h == h_chat_filter) {
        shape_array_of(d, shape_message_detailed, w);
        int64_t prev = INT64_MAX;
        for (size_t i = 0, n = json_object_array_length(d); i < n; i++) {
            json_object *m = json_object_array_get_idx(d, i);
            int64_t id = shape_int(m, "message_id");
            if (id >= prev) fuzz_fail("%s: messages not newest first", w);
            if (shape_int(m, "chat_id") != ids[0]) fuzz_fail("%s: a message of another chat", w);
            prev = id;
        }
        check_messages(r, ids[0], d, h == h_chat_messages, w);
    } else if (h == h_chat_invitations_received) {
        /* [ext] the consent flow only (404 in the default one) */
        shape_array_of(d, shape_received_invitation, w);
    } else if (h == h_chat_invitation_accept) {
        if (!json_object_is_type(d, json_type_object) || json_object_object_length(d) != 1 ||
            !json_object_is_type(json_object_object_get(d, "joined"), json_type_boolean))
            fuzz_fail("%s: not {\"joined\": bool}", w);
    } else if (h == h_search) { /* [ext] search */
        check_search(r, d, w);
    } else if (h == h_attach_upload) { /* [ext] attachments */
        shape_attachment(d, w);
        if (shape_int(d, "chat_id") != ids[0] || field_is_set(d, "message_id"))
            fuzz_fail("%s: an upload of another chat, or already sent", w);
    } else {
        /* Every other route answers null. */
        shape_null(d, w);
    }
}

static void check_response(const fuzz_request *r, const http_response *resp, bool valid_session,
                           int index)
{
    char where[300];
    snprintf(where, sizeof where, "request %d: %s %.200s", index, r->req.method, r->req.path);
    int st = resp->status;
    if (st != 200 && st != 400 && st != 403 && st != 404 && st != 405 && st != 409 && st != 413)
        fuzz_fail("%s: status %d is not one the contract allows: %.*s", where, st,
                  (int)resp->body_len, resp->body ? resp->body : "");
    check_headers(resp, where);

    int64_t ids[ROUTE_MAX_IDS] = {0};
    bool path_known;
    const api_route *route = match_route(r->req.method, r->req.path, ids, &path_known);
    bool options = !strcmp(r->req.method, "OPTIONS");

    /* Pipeline order (API.md §1). */
    if (!path_known && st != 404) fuzz_fail("%s: unknown path but status %d", where, st);
    if (path_known && !route && !options && st != 405)
        fuzz_fail("%s: method not allowed but status %d", where, st);
    if (st == 405 && !has_header(resp, "Allow", NULL)) fuzz_fail("%s: 405 without Allow", where);
    if (options && path_known) {
        if (st != 200 || resp->body_len || !has_header(resp, "Allow", NULL))
            fuzz_fail("%s: OPTIONS must be 200 with Allow and no body (%d, %zu bytes)", where, st,
                      resp->body_len);
    } else if (resp->raw) { /* [ext] attachments: nginx serves the bytes */
        if (st != 200 || !is_handler(route, h_attach_download) ||
            !has_header(resp, "X-Accel-Redirect", NULL) || resp->body_len)
            fuzz_fail("%s: a raw answer that is not a download (%d)", where, st);
    } else {
        json_object *root = NULL;
        json_object *d = shape_envelope(resp->body, resp->body_len, st, &root, where);
        const char *error = st == 200 ? "" : shape_str(root, "error");
        bool invalid_session = !strcmp(error, "Invalid Session");
        /* A state-changing request from a foreign page is refused first
         * (the fuzzer's requests carry no Host: only the listed origin is
         * trusted). */
        bool cross_site = route && route->method != METHOD_GET && r->req.origin &&
                          strcmp(r->req.origin, ALLOWED_ORIGIN);
        bool refused = !strcmp(error, "cross-site request refused");
        if (cross_site != refused || (refused && st != 403))
            fuzz_fail("%s: origin %s on %s but %d '%s'", where,
                      r->req.origin ? r->req.origin : "none", r->req.method, st, error);
        if (route && route->session == SESSION_REQUIRED && !valid_session && !cross_site &&
            (st != 403 || !invalid_session))
            fuzz_fail("%s: no valid session but %d '%s'", where, st, error);
        if (invalid_session && valid_session)
            fuzz_fail("%s: 'Invalid Session' with a valid session", where);
        /* Body checks, in the order of API.md §1 step 5. */
        bool past_auth =
            route && !cross_site && (route->session != SESSION_REQUIRED || valid_session);
        bool no_type = !r->req.content_type || !r->req.content_type[0];
        if (past_auth && route->method != METHOD_GET && !(route->as_400 & API_RAW_BODY)) {
            if (!no_type && !json_media_type(r->req.content_type)) {
                if (st != 400)
                    fuzz_fail("%s: Content-Type '%s' but %d", where, r->req.content_type, st);
            } else if (r->req.body_too_large) {
                if (st != 413) fuzz_fail("%s: body over the limit but %d", where, st);
            } else if (r->req.body_len && no_type && st != 400) {
                fuzz_fail("%s: a body without Content-Type but %d", where, st);
            }
        }
        if (st == 200) check_data(route, ids, r, d, where);
        json_object_put(root);
    }

    /* CORS only for the allowed origin, on routed requests. */
    bool acao = has_header(resp, "Access-Control-Allow-Origin", NULL);
    if (acao && (!r->req.origin || strcmp(r->req.origin, ALLOWED_ORIGIN)))
        fuzz_fail("%s: CORS headers for origin %s", where, r->req.origin ? r->req.origin : "none");
    if (r->req.origin && !strcmp(r->req.origin, ALLOWED_ORIGIN) &&
        (route || (options && path_known)) &&
        !has_header(resp, "Access-Control-Allow-Origin", ALLOWED_ORIGIN))
        fuzz_fail("%s: no CORS headers for the allowed origin", where);

    /* Cookies: set by login/register, cleared by logout/delete, rotated by
     * a password change; never elsewhere or on failure. */
    bool cookie = has_header(resp, "Set-Cookie", NULL);
    bool may_cookie = is_handler(route, h_user_register) || is_handler(route, h_user_login) ||
                      is_handler(route, h_user_logout) || is_handler(route, h_user_delete) ||
                      is_handler(route, h_user_patch);
    if (cookie && (st != 200 || !may_cookie)) fuzz_fail("%s: Set-Cookie on %d", where, st);
    bool must_cookie = is_handler(route, h_user_register) || is_handler(route, h_user_login) ||
                       is_handler(route, h_user_logout) || is_handler(route, h_user_delete);
    if (st == 200 && must_cookie && !cookie) fuzz_fail("%s: no Set-Cookie", where);
    char token[TOKEN_LEN + 1];
    if (st == 200 && fuzz_response_token(resp, token)) {
        if (is_handler(route, h_user_logout) || is_handler(route, h_user_delete))
            fuzz_fail("%s: sets a session while ending one", where);
        int64_t user = session_user(token);
        json_object *root = shape_parse(resp->body, resp->body_len, where);
        int64_t id = shape_int(json_object_object_get(root, "data"), "id");
        json_object_put(root);
        if (!user || user != id)
            fuzz_fail("%s: the new cookie is not a session of user %lld", where, (long long)id);
    }
}

/* Session rules of API.md §4 after a successful request: logout and
 * account deletion end the session; login and register end the one the
 * request carried; a password change rotates the caller's session and ends
 * the user's others. */
static void check_sessions(const fuzz_request *r, const http_response *resp, int index)
{
    if (resp->status != 200 || !r->caller) return;
    int64_t ids[ROUTE_MAX_IDS];
    bool known;
    const api_route *route = match_route(r->req.method, r->req.path, ids, &known);
    if (!route) return;
    bool still_valid = session_user(r->token) != 0;
    char token[TOKEN_LEN + 1];
    bool new_token = fuzz_response_token(resp, token);
    api_handler h = route->handler;
    if ((h == h_user_logout || h == h_user_delete || h == h_user_login || h == h_user_register) &&
        still_valid)
        fuzz_fail("request %d: %s %s answered 200 but the session it carried is still valid", index,
                  r->req.method, r->req.path);
    if (h == h_user_delete) {
        static const char sql[] = "SELECT count(*) FROM users WHERE id = ?";
        if (query_int(sql, r->caller, 0, -1) != 0)
            fuzz_fail("request %d: DELETE /user answered 200 but the user remains", index);
    }
    if (h == h_user_patch && new_token) {
        static const char sql[] = "SELECT count(*) FROM sessions WHERE user_id = ?";
        int64_t n = query_int(sql, r->caller, 0, -1);
        if (still_valid || session_user(token) != r->caller || n != 1)
            fuzz_fail("request %d: a password change must rotate the session and end the "
                      "others (old token %s, %lld sessions left)",
                      index, still_valid ? "still valid" : "ended", (long long)n);
    }
}

/* Events written by REST requests carry no socket origin. */
static void check_rest_events(int64_t after)
{
    static const char sql[] =
        "SELECT id FROM outbox WHERE id > ? AND (origin IS NOT NULL OR request_id <> 0)";
    sqlite3_stmt *st = world_prepare_lite(world.db, sql);
    sqlite3_bind_int64(st, 1, after);
    if (sqlite3_step(st) == SQLITE_ROW)
        fuzz_fail("outbox event %lld of a REST request has a socket origin",
                  (long long)sqlite3_column_int64(st, 0));
    sqlite3_reset(st);
}

/* NOVA_FUZZ_PROFILE=1: where the time goes (printed at exit). */
static double prof[4];
static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}
static void prof_print(void)
{
    fprintf(stderr,
            "profile ms: reset %.0f, requests %.0f, checks %.0f, db invariants %.0f; "
            "%lld inputs, %lld resets, %lld full restores\n",
            prof[0], prof[1], prof[2], prof[3], inputs, world.resets, world.full_restores);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int profiling = -1;
    if (profiling < 0 && (profiling = getenv("NOVA_FUZZ_PROFILE") != NULL)) atexit(prof_print);
    double t0 = profiling ? now_ms() : 0, t1;
    fuzz_world_reset(&world);
    if (profiling) prof[0] += (t1 = now_ms()) - t0, t0 = t1;
    fingerprint = world.fingerprint;
    inputs++;

    /* The group invitation flow of this input: the default (API.md's) or,
     * for an odd first byte, the [ext] consent flow (docs/API.md); both
     * are held to the same checks. */
    char *flow = world.cfg.group_invite_flow;
    static char consent[] = "consent";
    if (size && (data[0] & 1)) world.cfg.group_invite_flow = consent;

    char latest[TOKEN_LEN + 1] = "";
    const uint8_t *p = data, *end = data + size;
    for (int i = 0; i < MAX_REQUESTS && p <= end; i++) {
        const uint8_t *sep = memchr(p, 0x1e, (size_t)(end - p));
        size_t n = sep ? (size_t)(sep - p) : (size_t)(end - p);
        if (n == 0 && !sep) break;
        fuzz_request r;
        decode(p, n, latest, &r);
        bool valid_session = r.caller != 0;
        int64_t outbox_before = inv_outbox_newest(world.db);
        sqlite3_int64 changes_before = sqlite3_total_changes64(db_sqlite_handle(world.db));

        http_response resp;
        http_response_init(&resp);
        if (profiling) t0 = now_ms();
        api_handle(world.db, &r.req, &resp);
        if (profiling) prof[1] += (t1 = now_ms()) - t0, t0 = t1;

        if (getenv("NOVA_FUZZ_TRACE"))
            fprintf(stderr, "%d %s %s?%s -> %d %.*s\n", i, r.req.method, r.req.path, r.req.query,
                    resp.status, (int)(resp.body_len > 160 ? 160 : resp.body_len),
                    resp.body ? resp.body : "");
        check_response(&r, &resp, valid_session, i);
        check_sessions(&r, &resp, i);
        /* Nothing written (not even rolled back): the state is unchanged. */
        if (sqlite3_total_changes64(db_sqlite_handle(world.db)) != changes_before) {
            uint64_t after = inv_fingerprint(world.db, true);
            bool reads_only = !strcmp(r.req.method, "GET") || !strcmp(r.req.method, "OPTIONS");
            if (after != fingerprint && (resp.status != 200 || reads_only))
                fuzz_fail("request %d: %s %.200s answered %d but changed the database", i,
                          r.req.method, r.req.path, resp.status);
            if (after != fingerprint) {
                inv_check_outbox(world.db, outbox_before);
                check_rest_events(outbox_before);
            }
            fingerprint = after;
        }
        char token[TOKEN_LEN + 1];
        if (resp.status == 200 && fuzz_response_token(&resp, token))
            memcpy(latest, token, sizeof token);
        if (profiling) prof[2] += now_ms() - t0;
        http_response_free(&resp);
        request_free(&r);
        if (!sep) break;
        p = sep + 1;
    }
    /* The seeded state passed every check at start: only a changed one
     * needs checking again. */
    static long long changed;
    if (profiling) t0 = now_ms();
    if (fuzz_world_dirty(&world)) inv_check_db(world.db, ++changed % DEEP_CHECK_EVERY == 0);
    if (profiling) prof[3] += now_ms() - t0;
    world.cfg.group_invite_flow = flow;
    return 0;
}
