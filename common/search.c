/* search.c - [ext] full-text search (docs/API.md "[ext] Search").
 *
 * A search runs in three steps, all in the caller's read snapshot: the
 * ids of one page of hits (one statement, ranked inside the engine's
 * index), the snippet of each hit (one statement per hit, at most a page),
 * and the ChatMessage.Basic of the page (one statement). The client's
 * words never become SQL: they are quoted into the engine's own query
 * language (an FTS5 expression, a tsquery) and bound as one parameter. */
#include "search.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "access.h"
#include "json_util.h"
#include "utf8.h"
#include "view.h"

/* One word of q: a slice of it, and whether it ends in '*'. */
typedef struct term {
    const char *s;
    size_t len;
    bool prefix;
} term;

/* The code point at *p (valid UTF-8: utf8_length checked it); moves *p. */
static unsigned next_code_point(const unsigned char **p)
{
    const unsigned char *s = *p;
    unsigned c = s[0];
    int extra = c < 0x80 ? 0 : c < 0xe0 ? 1 : c < 0xf0 ? 2 : 3;
    if (extra) c &= 0x3fu >> extra;
    for (int i = 1; i <= extra; i++)
        c = (c << 6) | (s[i] & 0x3fu);
    *p = s + 1 + extra;
    return c;
}

/* Could the tokenizer find a word in s[len]? ASCII letters and digits, and
 * every code point beyond ASCII but the common punctuation blocks (Latin-1
 * signs, General Punctuation, CJK symbols). */
static bool has_word(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + len;
    while (p < end) {
        unsigned c = next_code_point(&p);
        if ((c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z')) return true;
        if (c >= 0x80 && !(c >= 0xa0 && c <= 0xbf) && !(c >= 0x2000 && c <= 0x206f) &&
            !(c >= 0x3000 && c <= 0x303f) && c != 0xd7 && c != 0xf7)
            return true;
    }
    return false;
}

static long code_points(const char *s, size_t len)
{
    long n = 0;
    for (size_t i = 0; i < len; i++)
        n += ((unsigned char)s[i] & 0xc0) != 0x80;
    return n;
}

/* Split q into its words (docs/API.md "What matches"). */
static int parse_terms(const nova_config *cfg, const char *q, term *terms, size_t *n,
                       nova_err *err)
{
    if (!q || !*q) return nova_fail(err, ERR_INVALID, "the query parameter q is required");
    if (strlen(q) > (size_t)cfg->search_max_query)
        return nova_fail(err, ERR_INVALID, "q is longer than %ld bytes", cfg->search_max_query);
    if (utf8_length(q) < 0) return nova_fail(err, ERR_INVALID, "q is not UTF-8");
    for (const char *p = q; *p; p++)
        if ((unsigned char)*p < 0x20 && !strchr("\t\n\r", *p))
            return nova_fail(err, ERR_INVALID, "q holds a control character");
    *n = 0;
    for (const char *p = q; *p;) {
        p += strspn(p, " \t\n\r");
        size_t len = strcspn(p, " \t\n\r");
        if (!len) break;
        term t = {p, len, false};
        p += len;
        while (t.len && t.s[t.len - 1] == '*') {
            t.len--;
            t.prefix = true;
        }
        if (!has_word(t.s, t.len)) {
            if (t.prefix)
                return nova_fail(err, ERR_INVALID, "a word ending in * needs 2 characters before it");
            continue;
        }
        if (t.prefix && code_points(t.s, t.len) < 2)
            return nova_fail(err, ERR_INVALID, "a word ending in * needs 2 characters before it");
        if (*n == (size_t)cfg->search_max_terms)
            return nova_fail(err, ERR_INVALID, "q has more than %ld words", cfg->search_max_terms);
        terms[(*n)++] = t;
    }
    if (!*n) return nova_fail(err, ERR_INVALID, "q has no word to search for");
    return 0;
}

/* Append s[len] to pb with every `quote` doubled (and, for a tsquery, every
 * backslash too). */
static void append_quoted(struct printbuf *pb, const char *s, size_t len, char quote)
{
    printbuf_memappend(pb, &quote, 1);
    for (size_t i = 0; i < len; i++) {
        if (s[i] == quote || (quote == '\'' && s[i] == '\\')) printbuf_memappend(pb, &s[i], 1);
        printbuf_memappend(pb, &s[i], 1);
    }
    printbuf_memappend(pb, &quote, 1);
}

/* The FTS5 expression: every word in body, and (chats given) the row's
 * chat token one of theirs: body : ("a" "b" *) AND chat : (c1 OR c2). */
static void fts_expression(struct printbuf *pb, const term *terms, size_t n, const idlist *chats)
{
    printbuf_strappend(pb, "body : (");
    for (size_t i = 0; i < n; i++) {
        if (i) printbuf_strappend(pb, " ");
        append_quoted(pb, terms[i].s, terms[i].len, '"');
        if (terms[i].prefix) printbuf_strappend(pb, " *");
    }
    printbuf_strappend(pb, ")");
    if (!chats) return;
    printbuf_strappend(pb, " AND chat : (");
    for (size_t i = 0; i < chats->n; i++)
        sprintbuf(pb, "%sc%lld", i ? " OR " : "", (long long)chats->v[i]);
    printbuf_strappend(pb, ")");
}

/* The tsquery text: 'a' & 'b':* (each quoted lexeme goes through the
 * configuration's parser: punctuation inside makes a phrase). */
static void ts_expression(struct printbuf *pb, const term *terms, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (i) printbuf_strappend(pb, " & ");
        append_quoted(pb, terms[i].s, terms[i].len, '\'');
        if (terms[i].prefix) printbuf_strappend(pb, ":*");
    }
}

/* A cursor this endpoint gave: "r<offset>" (relevance) or "n<message id>"
 * (newest), the number positive and without a leading zero. */
static int parse_cursor(const char *cursor, bool newest, int64_t max_offset, int64_t *out,
                        nova_err *err)
{
    int64_t v = 0;
    const char *p = cursor + 1;
    if (cursor[0] != (newest ? 'n' : 'r') || *p < '1' || *p > '9')
        return nova_fail(err, ERR_INVALID, "cursor is not one of this search's");
    for (; *p; p++) {
        if (*p < '0' || *p > '9' || v > (INT64_MAX - 9) / 10)
            return nova_fail(err, ERR_INVALID, "cursor is not one of this search's");
        v = v * 10 + (*p - '0');
    }
    if (!newest && v > max_offset)
        return nova_fail(err, ERR_INVALID, "cursor is not one of this search's");
    *out = v;
    return 0;
}

static const char SQL_MEMBER_CHATS[] =
    "SELECT chat_id FROM chat_members WHERE user_id = ?1 ORDER BY chat_id LIMIT ?2";

/* The ids of a page of hits. ?1 the expression, ?2 only ids below it,
 * ?3 the viewer, ?5 LIMIT, ?6 OFFSET. SQLite: ?4 1 to check each hit's
 * chat against the viewer's (the chats are not in the expression).
 * PostgreSQL: ?4 the one chat to search, 0 for all of the viewer's; the
 * newest page is read chat by chat (each through its (chat_id, id) index
 * or the words' GIN index, as the planner finds cheaper: a word in every
 * message stops after a page per chat), then merged. */
#define SQLITE_HITS                                                                                \
    "SELECT rowid FROM message_search WHERE message_search MATCH ?1 AND rowid < ?2 "              \
    "AND NOT EXISTS (SELECT 1 FROM message_deletions d WHERE d.user_id = ?3 "                     \
    "AND d.message_id = message_search.rowid) "                                                   \
    "AND (?4 = 0 OR (SELECT m.chat_id FROM messages m WHERE m.id = message_search.rowid) IN "     \
    "(SELECT c.chat_id FROM chat_members c WHERE c.user_id = ?3)) "
#define PG_MATCH                                                                                   \
    "m.recalled = 0 AND m.search_words @@ to_tsquery('nova_search', ?1) AND m.id < ?2 "            \
    "AND NOT EXISTS (SELECT 1 FROM message_deletions d WHERE d.user_id = ?3 "                     \
    "AND d.message_id = m.id) "
#define PG_CHATS "c.user_id = ?3 AND (?4::bigint = 0 OR c.chat_id = ?4::bigint)"
static const char SQL_HITS_RELEVANT[] =
    SQLITE_HITS "ORDER BY bm25(message_search, 1.0, 0.0), rowid DESC LIMIT ?5 OFFSET ?6";
static const char SQL_HITS_RELEVANT_PG[] =
    "SELECT m.id FROM messages m WHERE " PG_MATCH
    "AND m.chat_id IN (SELECT c.chat_id FROM chat_members c WHERE " PG_CHATS ") "
    "ORDER BY ts_rank(m.search_words, to_tsquery('nova_search', ?1)) DESC, m.id DESC "
    "LIMIT ?5 OFFSET ?6";
static const char SQL_HITS_NEWEST[] = SQLITE_HITS "ORDER BY rowid DESC LIMIT ?5 OFFSET ?6";
static const char SQL_HITS_NEWEST_PG[] =
    "SELECT x.id FROM chat_members c CROSS JOIN LATERAL (SELECT m.id FROM messages m "
    "WHERE m.chat_id = c.chat_id AND " PG_MATCH "ORDER BY m.id DESC LIMIT ?5) x "
    "WHERE " PG_CHATS " ORDER BY x.id DESC LIMIT ?5 OFFSET ?6";

/* The snippet of one hit, with the markers ?1 and ?2 around matched words,
 * and its text. PostgreSQL: ?1 is the whole options string of ts_headline
 * and ?2 unused but bound. */
static const char SQL_SNIPPET[] =
    "SELECT snippet(message_search, 0, ?1, ?2, '', ?3), body FROM message_search "
    "WHERE message_search MATCH ?4 AND rowid = ?5";
static const char SQL_SNIPPET_PG[] =
    "SELECT ts_headline('nova_search', content, to_tsquery('nova_search', ?4), ?1 || ?2 || ?3), "
    "content FROM messages WHERE id = ?5";

/* Marker pairs, tried in order: the first that the text does not hold. */
static const char *const MARKERS[][2] = {
    {"\x01", "\x02"},
    {"\xef\xb7\x90", "\xef\xb7\x91"}, /* U+FDD0, U+FDD1: noncharacters */
};
#define N_MARKERS (sizeof MARKERS / sizeof MARKERS[0])

static void add_segment(json_object *list, const char *s, size_t len, bool match)
{
    if (!len) return;
    json_object *o = json_object_new_object();
    json_object_object_add(o, "text", json_object_new_string_len(s, (int)len));
    json_object_object_add(o, "match", json_object_new_boolean(match));
    json_object_array_add(list, o);
}

#define ELLIPSIS "\xe2\x80\xa6"

/* Drop the markers from marked[len] into out (a new printbuf). */
static struct printbuf *unmarked(const char *marked, size_t len, const char *open,
                                 const char *close)
{
    size_t lo = strlen(open), lc = strlen(close);
    struct printbuf *out = printbuf_new();
    for (const char *p = marked, *end = marked + len; p < end;) {
        if ((size_t)(end - p) >= lo && !memcmp(p, open, lo))
            p += lo;
        else if ((size_t)(end - p) >= lc && !memcmp(p, close, lc))
            p += lc;
        else
            printbuf_memappend(out, p++, 1);
    }
    return out;
}

/* The segments of a marked snippet of text (docs/API.md "The answer"):
 * whitespace at its ends trimmed, "…" where it does not reach an end of
 * the text. */
static json_object *segments(const char *marked, const char *text, const char *open,
                             const char *close)
{
    size_t lo = strlen(open), lc = strlen(close);
    const char *s = marked, *end = marked + strlen(marked);
    while (s < end && strchr(" \t\n\r", *s))
        s++;
    while (end > s && strchr(" \t\n\r", end[-1]))
        end--;
    struct printbuf *plain = unmarked(s, (size_t)(end - s), open, close);
    size_t len = (size_t)plain->bpos, tlen = strlen(text);
    bool lead = len > tlen || memcmp(text, plain->buf, len);
    bool trail = len > tlen || memcmp(text + tlen - len, plain->buf, len);
    printbuf_free(plain);

    json_object *list = json_object_new_array();
    struct printbuf *cur = printbuf_new();
    bool in_match = false;
    if (lead) printbuf_strappend(cur, ELLIPSIS);
    for (const char *p = s; p < end;) {
        if (!in_match && (size_t)(end - p) >= lo && !memcmp(p, open, lo)) {
            add_segment(list, cur->buf, (size_t)cur->bpos, false);
            printbuf_reset(cur);
            in_match = true;
            p += lo;
        } else if (in_match && (size_t)(end - p) >= lc && !memcmp(p, close, lc)) {
            add_segment(list, cur->buf, (size_t)cur->bpos, true);
            printbuf_reset(cur);
            in_match = false;
            p += lc;
        } else {
            printbuf_memappend(cur, p++, 1);
        }
    }
    if (in_match) {
        add_segment(list, cur->buf, (size_t)cur->bpos, true);
        printbuf_reset(cur);
    }
    if (trail) printbuf_strappend(cur, ELLIPSIS);
    add_segment(list, cur->buf, (size_t)cur->bpos, false);
    printbuf_free(cur);
    return list;
}

/* The snippet of hit id: the first marker pair its text does not hold;
 * the whole text unmarked when it holds them all. */
static int snippet_of(nova_db *db, int64_t id, const char *expr, json_object **out, nova_err *err)
{
    const nova_config *cfg = db->cfg;
    for (size_t k = 0; k <= N_MARKERS; k++) {
        const char *open = k < N_MARKERS ? MARKERS[k][0] : "\x01";
        const char *close = k < N_MARKERS ? MARKERS[k][1] : "\x02";
        db_stmt *st = db_prepare_for(db, SQL_SNIPPET, SQL_SNIPPET_PG);
        if (!st) return nova_fail(err, ERR_INTERNAL, "internal error");
        char opts[96];
        if (db->kind == DB_POSTGRES) {
            /* ts_headline's options: ?1 || ?2 || ?3 */
            snprintf(opts, sizeof opts, "\", MaxWords=%ld, MinWords=%ld, ShortWord=0",
                     cfg->search_snippet_words, cfg->search_snippet_words / 2);
            char start[24], stop[24];
            snprintf(start, sizeof start, "StartSel=\"%s\", ", open);
            snprintf(stop, sizeof stop, "StopSel=\"%s", close);
            db_bind_text(st, 1, start);
            db_bind_text(st, 2, stop);
            db_bind_text(st, 3, opts);
        } else {
            db_bind_text(st, 1, open);
            db_bind_text(st, 2, close);
            db_bind_i64(st, 3, cfg->search_snippet_words);
        }
        db_bind_text(st, 4, expr);
        db_bind_i64(st, 5, id);
        int rc = db_step(st);
        if (rc != DB_ROW) {
            db_done(st);
            if (rc == DB_DONE) return nova_fail(err, ERR_NOT_FOUND, "message %lld not found",
                                                (long long)id);
            return db_fail(db, err);
        }
        const char *marked = db_col_text(st, 0), *text = db_col_text(st, 1);
        if (!marked) marked = "";
        if (!text) text = "";
        if (k == N_MARKERS) {
            /* every pair is in the text: no highlight at all */
            *out = json_object_new_array();
            add_segment(*out, text, strlen(text), false);
        } else if (!strstr(text, open) && !strstr(text, close)) {
            *out = segments(marked, text, open, close);
        }
        db_done(st);
        if (*out) return 0;
    }
    return nova_fail(err, ERR_INTERNAL, "internal error");
}

/* The viewer's chats in *chats, or none (NULL) when there are more than
 * the index is asked to filter: then each hit's chat is checked. */
static int chat_tokens(nova_db *db, int64_t viewer, int64_t chat_id, idlist *chats, bool *all,
                       nova_err *err)
{
    *all = true;
    if (chat_id) return idlist_push(chats, chat_id) ? nova_fail(err, ERR_INTERNAL, "out of memory")
                                                    : 0;
    db_stmt *st = db_prepare(db, SQL_MEMBER_CHATS);
    if (!st) return nova_fail(err, ERR_INTERNAL, "internal error");
    db_bind_i64(st, 1, viewer);
    db_bind_i64(st, 2, db->cfg->search_chat_tokens + 1);
    int rc;
    while ((rc = db_step(st)) == DB_ROW)
        if (idlist_push(chats, db_col_i64(st, 0))) break;
    db_done(st);
    if (rc == DB_ROW) return nova_fail(err, ERR_INTERNAL, "out of memory");
    if (rc != DB_DONE) return db_fail(db, err);
    if (chats->n > (size_t)db->cfg->search_chat_tokens) *all = false;
    return 0;
}

int search_messages(nova_db *db, int64_t viewer, const search_query *q, json_object **out,
                    nova_err *err)
{
    const nova_config *cfg = db->cfg;
    term terms[64];
    size_t n_terms = 0;
    int rc = parse_terms(cfg, q->q, terms, &n_terms, err);
    if (rc) return rc;
    bool newest = q->sort && !strcmp(q->sort, "newest");
    if (q->sort && !newest && strcmp(q->sort, "relevance"))
        return nova_fail(err, ERR_INVALID, "sort must be relevance or newest");
    int64_t limit = q->limit ? q->limit : 20;
    if (limit < 1 || limit > cfg->search_max_limit)
        return nova_fail(err, ERR_INVALID, "limit must be 1 to %ld", cfg->search_max_limit);
    int64_t from = 0; /* newest: below this id (0: none); relevance: the offset */
    if (q->cursor && (rc = parse_cursor(q->cursor, newest, cfg->search_max_offset, &from, err)))
        return rc;
    if (q->chat_id) {
        chat_info chat;
        rc = access_chat(db, viewer, q->chat_id, NEED_MEMBER, false, &chat, NULL, err);
        if (rc) return rc;
    }

    idlist chats = {0}, ids = {0};
    bool in_index = true;
    struct printbuf *expr = printbuf_new();
    json_object *hits = json_object_new_array(), *next = NULL;
    /* words: the words alone, for the snippets (no chat to check there) */
    struct printbuf *words = printbuf_new();
    if (db->kind == DB_POSTGRES) {
        ts_expression(expr, terms, n_terms);
        ts_expression(words, terms, n_terms);
    } else if (!(rc = chat_tokens(db, viewer, q->chat_id, &chats, &in_index, err))) {
        fts_expression(expr, terms, n_terms, in_index ? &chats : NULL);
        fts_expression(words, terms, n_terms, NULL);
    }
    if (rc || (db->kind != DB_POSTGRES && in_index && !chats.n)) goto done; /* in no chat */

    db_stmt *st = newest ? db_prepare_for(db, SQL_HITS_NEWEST, SQL_HITS_NEWEST_PG)
                         : db_prepare_for(db, SQL_HITS_RELEVANT, SQL_HITS_RELEVANT_PG);
    if (!st) {
        rc = nova_fail(err, ERR_INTERNAL, "internal error");
        goto done;
    }
    db_bind_text(st, 1, expr->buf);
    db_bind_i64(st, 2, newest && from ? from : INT64_MAX);
    db_bind_i64(st, 3, viewer);
    db_bind_i64(st, 4, db->kind == DB_POSTGRES ? q->chat_id : !in_index);
    db_bind_i64(st, 5, limit + 1);
    db_bind_i64(st, 6, newest ? 0 : from);
    while ((rc = db_step(st)) == DB_ROW)
        if (idlist_push(&ids, db_col_i64(st, 0))) break;
    db_done(st);
    if (rc == DB_ROW) {
        rc = nova_fail(err, ERR_INTERNAL, "out of memory");
        goto done;
    }
    if (rc != DB_DONE) {
        rc = db_fail(db, err);
        goto done;
    }
    rc = 0;
    bool more = ids.n > (size_t)limit;
    if (more) ids.n = (size_t)limit;
    if (more && newest) {
        char c[24];
        snprintf(c, sizeof c, "n%lld", (long long)ids.v[ids.n - 1]);
        next = json_object_new_string(c);
    } else if (more && from + limit < cfg->search_max_offset) {
        char c[24];
        snprintf(c, sizeof c, "r%lld", (long long)(from + limit));
        next = json_object_new_string(c);
    }
    json_object *basics = ids.n ? view_message_basics(db, ids.v, ids.n, viewer, err) : NULL;
    if (ids.n && !basics) rc = err->kind;
    for (size_t i = 0; i < ids.n && !rc; i++) {
        json_object *snippet = NULL;
        if ((rc = snippet_of(db, ids.v[i], words->buf, &snippet, err))) break;
        json_object *hit = json_object_new_object();
        json_object_object_add(hit, "message",
                               json_object_get(json_object_array_get_idx(basics, i)));
        json_object_object_add(hit, "snippet", snippet);
        json_object_array_add(hits, hit);
    }
    json_object_put(basics);
done:
    printbuf_free(expr);
    printbuf_free(words);
    idlist_free(&chats);
    idlist_free(&ids);
    if (rc) {
        json_object_put(hits);
        json_object_put(next);
        return rc;
    }
    *out = json_object_new_object();
    json_object_object_add(*out, "hits", hits);
    json_object_object_add(*out, "next_cursor", next);
    return 0;
}
