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

/* Is c a letter or a digit to the tokenizer (unicode61 keeps the letters,
 * numbers and private-use characters; PostgreSQL's parser much the same)?
 * ASCII letters and digits, and every code point beyond ASCII but the
 * blocks of punctuation, symbols, arrows, shapes, emoji, variation
 * selectors and tags, less the digits and letters within them. */
static bool word_char(unsigned c)
{
    if (c < 0x80) return (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z');
    if (c <= 0xbf)
        return c == 0xaa || c == 0xb2 || c == 0xb3 || c == 0xb5 || c == 0xb9 || c == 0xba ||
               (c >= 0xbc && c <= 0xbe);
    if (c == 0xd7 || c == 0xf7) return false;
    if (c >= 0x2000 && c <= 0x2bff)
        return (c >= 0x2070 && c <= 0x209f) || (c >= 0x2150 && c <= 0x218f) ||
               (c >= 0x2460 && c <= 0x24ff) || (c >= 0x2776 && c <= 0x2793);
    if (c >= 0x2e00 && c <= 0x2e7f) return false;
    if (c >= 0x3000 && c <= 0x303f)
        return (c >= 0x3005 && c <= 0x3007) || (c >= 0x3021 && c <= 0x3029) ||
               (c >= 0x3031 && c <= 0x3035) || (c >= 0x3038 && c <= 0x303c);
    if ((c >= 0xfe00 && c <= 0xfe1f) || (c >= 0xfe30 && c <= 0xfe6f)) return false;
    if ((c >= 0xff01 && c <= 0xff0f) || (c >= 0xff1a && c <= 0xff20) ||
        (c >= 0xff3b && c <= 0xff40) || (c >= 0xff5b && c <= 0xff65) ||
        (c >= 0xfff0 && c <= 0xffff))
        return false;
    if (c >= 0x1f000 && c <= 0x1faff) return c >= 0x1f100 && c <= 0x1f10c;
    if (c >= 0xe0000 && c <= 0xe007f) return false;
    return true;
}

/* Could the tokenizer find a word in s[len]? */
static bool has_word(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + len;
    while (p < end)
        if (word_char(next_code_point(&p))) return true;
    return false;
}

/* Letters and digits at the end of s[len], in code points (the prefix of
 * a word ending in '*': "a-*" is the prefix "a"). */
static long last_run(const char *s, size_t len)
{
    long run = 0;
    for (const unsigned char *p = (const unsigned char *)s, *end = p + len; p < end;)
        run = word_char(next_code_point(&p)) ? run + 1 : 0;
    return run;
}

/* Split q into its words (docs/API.md "What matches"). */
static int parse_terms(const nova_config *cfg, const char *q, term *terms, size_t *n, nova_err *err)
{
    if (!q || !*q) return nova_fail(err, ERR_INVALID, "the query parameter q is required");
    if (strlen(q) > (size_t)cfg->search_max_query)
        return nova_fail(err, ERR_INVALID, "q is longer than %ld bytes", cfg->search_max_query);
    if (utf8_length(q) < 0) return nova_fail(err, ERR_INVALID, "q is not UTF-8");
    for (const unsigned char *p = (const unsigned char *)q; *p;) {
        unsigned c = next_code_point(&p);
        if (c < 0x20 || (c >= 0x7f && c <= 0x9f))
            return nova_fail(err, ERR_INVALID, "q holds a control character");
    }
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
                return nova_fail(err, ERR_INVALID,
                                 "a word ending in * needs 2 letters or digits right before it");
            continue;
        }
        if (t.prefix && last_run(t.s, t.len) < 2)
            return nova_fail(err, ERR_INVALID,
                             "a word ending in * needs 2 letters or digits right before it");
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

/* The tsquery text: 'a' & 'e' <-> 'mail' & 'b':*. Each word is cut into
 * its runs of letters and digits, as nova_search_text cuts the messages
 * (PostgreSQL's parser would keep e-mail, 3.14 or an address whole), and
 * a word of several runs becomes a phrase of them. */
static void ts_expression(struct printbuf *pb, const term *terms, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (i) printbuf_strappend(pb, " & ");
        const unsigned char *p = (const unsigned char *)terms[i].s, *end = p + terms[i].len;
        bool first = true;
        while (p < end) {
            const unsigned char *run = p, *q = p;
            while (q < end) {
                const unsigned char *c = q;
                if (!word_char(next_code_point(&c))) break;
                q = c;
            }
            if (q > run) {
                if (!first) printbuf_strappend(pb, " <-> ");
                append_quoted(pb, (const char *)run, (size_t)(q - run), '\'');
                first = false;
            }
            p = q;
            if (p < end) next_code_point(&p); /* the separator */
        }
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
    if (!newest && v >= max_offset)
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
    "SELECT rowid FROM message_search WHERE message_search MATCH ?1 AND rowid < ?2 "               \
    "AND NOT EXISTS (SELECT 1 FROM message_deletions d WHERE d.user_id = ?3 "                      \
    "AND d.message_id = message_search.rowid) "                                                    \
    "AND (?4 = 0 OR (SELECT m.chat_id FROM messages m WHERE m.id = message_search.rowid) IN "      \
    "(SELECT c.chat_id FROM chat_members c WHERE c.user_id = ?3)) "
#define PG_MATCH                                                                                   \
    "m.recalled = 0 AND m.search_words @@ to_tsquery('nova_search', ?1) AND m.id < ?2 "            \
    "AND NOT EXISTS (SELECT 1 FROM message_deletions d WHERE d.user_id = ?3 "                      \
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

/* The text of one hit with every matched word between the markers ?1 and
 * ?2, and the text itself. SQLite: highlight() over the text. PostgreSQL:
 * ts_headline over the text as the index reads it (nova_search_text: one
 * space for every character that is no letter or digit, so that code
 * point i is code point i of the text, and no marker can be in it), with
 * HighlightAll (the whole text, not a fragment of its own choosing). The
 * window of the snippet is cut here, alike for both engines. */
static const char SQL_MARKED[] =
    "SELECT highlight(message_search, 0, ?1, ?2), body FROM message_search "
    "WHERE message_search MATCH ?3 AND rowid = ?4";
static const char SQL_MARKED_PG[] =
    "SELECT ts_headline('nova_search', nova_search_text(content), to_tsquery('nova_search', ?3), "
    "'HighlightAll=true, StartSel=' || ?1 || ', StopSel=' || ?2), content FROM messages "
    "WHERE id = ?4";

/* Marker pairs, tried in order: the first that the text does not hold
 * (PostgreSQL's marked text holds no control character at all). */
static const char *const MARKERS[][2] = {
    /* C0 controls, then U+FDD0 and U+FDD1 (noncharacters) */
    {"\x01", "\x02"},
    {"\xef\xb7\x90", "\xef\xb7\x91"},
};
#define N_MARKERS (sizeof MARKERS / sizeof MARKERS[0])

/* Byte spans [start, end) of the text that matched. */
typedef struct spans {
    size_t *v; /* start, end, start, end... */
    size_t n, cap;
} spans;

static bool spans_push(spans *sp, size_t start, size_t end)
{
    if (sp->n + 2 > sp->cap) {
        size_t cap = sp->cap ? sp->cap * 2 : 16;
        size_t *grown = realloc(sp->v, cap * sizeof *grown);
        if (!grown) return false;
        sp->v = grown;
        sp->cap = cap;
    }
    sp->v[sp->n++] = start;
    sp->v[sp->n++] = end;
    return true;
}

/* The matched spans of text from its marked form. by_code_point: the
 * marked text is another text of as many code points (PostgreSQL's), so
 * positions carry over by code point; else it is text itself, marked. */
static bool match_spans(const char *marked, const char *text, const char *open, const char *close,
                        bool by_code_point, spans *out)
{
    size_t lo = strlen(open), lc = strlen(close), plain = 0, start = 0;
    const unsigned char *tp = (const unsigned char *)text; /* by_code_point: the same place */
    bool in = false;
    for (const unsigned char *p = (const unsigned char *)marked; *p;) {
        size_t here = by_code_point ? (size_t)((const char *)tp - text) : plain;
        if (!in && !strncmp((const char *)p, open, lo)) {
            p += lo;
            in = true;
            start = here;
        } else if (in && !strncmp((const char *)p, close, lc)) {
            p += lc;
            in = false;
            if (!spans_push(out, start, here)) return false;
        } else {
            const unsigned char *q = p;
            next_code_point(&p);
            plain += (size_t)(p - q);
            if (*tp) next_code_point(&tp);
        }
    }
    return !in || spans_push(out, start, strlen(text));
}

static void add_segment(json_object *list, const char *s, size_t len, bool match)
{
    if (!len) return;
    json_object *o = json_object_new_object();
    json_object_object_add(o, "text", json_object_new_string_len(s, (int)len));
    json_object_object_add(o, "match", json_object_new_boolean(match));
    json_object_array_add(list, o);
}

#define ELLIPSIS "\xe2\x80\xa6"
#define SPACE " \t\n\r\f\v"

/* The snippet of text (docs/API.md "The answer"): the `words` consecutive
 * words (runs of non-space) that overlap the most matched spans, the
 * earliest of them, as segments, with "…" where it does not reach an end
 * of the text. */
static json_object *snippet_segments(const char *text, const spans *sp, long words)
{
    size_t n = 0, cap = 0, *w = NULL; /* word i: [w[2i], w[2i+1]) */
    for (size_t i = strspn(text, SPACE); text[i]; i += strspn(text + i, SPACE)) {
        size_t len = strcspn(text + i, SPACE);
        if (2 * n + 2 > cap) {
            size_t grown_cap = cap ? cap * 2 : 64;
            size_t *grown = realloc(w, grown_cap * sizeof *grown);
            if (!grown) break;
            w = grown;
            cap = grown_cap;
        }
        w[2 * n] = i;
        w[2 * n + 1] = i + len;
        n++;
        i += len;
    }
    json_object *list = json_object_new_array();
    if (!n) {
        free(w);
        return list;
    }
    /* hit[i]: word i overlaps a match; the best window by a sliding sum */
    size_t best = 0, best_count = 0, count = 0, window = (size_t)words < n ? (size_t)words : n;
    bool *hit = calloc(n, sizeof *hit);
    for (size_t i = 0, k = 0; hit && i < n; i++) {
        while (k < sp->n && sp->v[k + 1] <= w[2 * i])
            k += 2;
        hit[i] = k < sp->n && sp->v[k] < w[2 * i + 1];
    }
    for (size_t i = 0; hit && i < n; i++) {
        count += hit[i];
        if (i >= window) count -= hit[i - window];
        if (i + 1 >= window && count > best_count) {
            best_count = count;
            best = i + 1 - window;
        }
    }
    /* Some context before the first match, if the end gives nothing up. */
    for (size_t back = window / 4; hit && back && best && hit[best] && !hit[best + window - 1];
         back--)
        best--;
    free(hit);
    size_t from = w[2 * best], to = w[2 * (best + window - 1) + 1];
    free(w);

    struct printbuf *cur = printbuf_new();
    if (best) printbuf_strappend(cur, ELLIPSIS);
    size_t at = from;
    for (size_t k = 0; k < sp->n; k += 2) {
        size_t s = sp->v[k] > from ? sp->v[k] : from, e = sp->v[k + 1] < to ? sp->v[k + 1] : to;
        if (s >= e) continue;
        printbuf_memappend(cur, text + at, (int)(s - at));
        add_segment(list, cur->buf, (size_t)cur->bpos, false);
        printbuf_reset(cur);
        add_segment(list, text + s, e - s, true);
        at = e;
    }
    printbuf_memappend(cur, text + at, (int)(to - at));
    if (text[to + strspn(text + to, SPACE)]) printbuf_strappend(cur, ELLIPSIS);
    add_segment(list, cur->buf, (size_t)cur->bpos, false);
    printbuf_free(cur);
    return list;
}

/* The snippet of hit id: marked with the first marker pair its text does
 * not hold; unmarked when it holds them all. */
static int snippet_of(nova_db *db, int64_t id, const char *expr, json_object **out, nova_err *err)
{
    bool pg = db->kind == DB_POSTGRES;
    for (size_t k = 0; k <= N_MARKERS; k++) {
        const char *open = MARKERS[k < N_MARKERS ? k : 0][0];
        const char *close = MARKERS[k < N_MARKERS ? k : 0][1];
        db_stmt *st = db_prepare_for(db, SQL_MARKED, SQL_MARKED_PG);
        if (!st) return nova_fail(err, ERR_INTERNAL, "internal error");
        db_bind_text(st, 1, open);
        db_bind_text(st, 2, close);
        db_bind_text(st, 3, expr);
        db_bind_i64(st, 4, id);
        int rc = db_step(st);
        if (rc != DB_ROW) {
            db_done(st);
            if (rc == DB_DONE)
                return nova_fail(err, ERR_NOT_FOUND, "message %lld not found", (long long)id);
            return db_fail(db, err);
        }
        const char *marked = db_col_text(st, 0), *text = db_col_text(st, 1);
        if (!marked) marked = "";
        if (!text) text = "";
        spans sp = {0};
        bool done = true, ok = true;
        if (k == N_MARKERS) /* every pair is in the text: no highlight at all */
            ;
        else if (pg || (!strstr(text, open) && !strstr(text, close)))
            ok = match_spans(marked, text, open, close, pg, &sp);
        else
            done = false;
        if (done && ok) *out = snippet_segments(text, &sp, db->cfg->search_snippet_words);
        free(sp.v);
        db_done(st);
        if (!ok) return nova_fail(err, ERR_INTERNAL, "out of memory");
        if (done) return 0;
    }
    return nova_fail(err, ERR_INTERNAL, "internal error");
}

/* The viewer's chats (or the one asked for) in *chats; *in_index false
 * when there are more than the index is asked to filter: then each hit's
 * chat is checked row by row. */
static int chat_tokens(nova_db *db, int64_t viewer, int64_t chat_id, idlist *chats, bool *in_index,
                       nova_err *err)
{
    *in_index = true;
    if (chat_id)
        return idlist_push(chats, chat_id) ? nova_fail(err, ERR_INTERNAL, "out of memory") : 0;
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
    if (chats->n > (size_t)db->cfg->search_chat_tokens) *in_index = false;
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
    int64_t limit = q->limit ? q->limit : cfg->search_max_limit < 20 ? cfg->search_max_limit : 20;
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
    /* Relevance: no page reaches past max_offset results, but the first. */
    if (!newest && from && limit > cfg->search_max_offset - from)
        limit = cfg->search_max_offset - from;
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
