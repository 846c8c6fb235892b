/* edit_react.c - editing one's messages, and emoji reactions. */
#include "edit_react.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "access.h"
#include "json_util.h"
#include "message.h"
#include "outbox.h"
#include "user.h"
#include "validate.h"

edit_react_limits edit_react_limits_of(const nova_config *cfg)
{
    return (edit_react_limits){cfg->edit_window, cfg->edit_max, cfg->react_distinct,
                               cfg->react_per_user, cfg->emoji_bytes};
}

/* --- what an emoji is ------------------------------------------------------ */

/* One strict UTF-8 code point at s[*i], or -1 (overlong, surrogate, out of
 * range, truncated). */
static long next_cp(const unsigned char *s, size_t len, size_t *i)
{
    unsigned char c = s[*i];
    size_t n;
    long cp, min;
    if (c < 0x80) {
        (*i)++;
        return c;
    } else if ((c & 0xE0) == 0xC0) {
        n = 1, cp = c & 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
        n = 2, cp = c & 0x0F, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
        n = 3, cp = c & 0x07, min = 0x10000;
    } else {
        return -1;
    }
    for (size_t k = 1; k <= n; k++) {
        if (*i + k >= len || (s[*i + k] & 0xC0) != 0x80) return -1;
        cp = (cp << 6) | (s[*i + k] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return -1;
    *i += n + 1;
    return cp;
}

/* Pictographs that start an emoji (docs/API.md lists these ranges). */
static bool is_pictograph(long c)
{
    static const long ranges[][2] = {
        {0x00A9, 0x00A9},   {0x00AE, 0x00AE},   {0x203C, 0x203C},   {0x2049, 0x2049},
        {0x2122, 0x2122},   {0x2139, 0x2139},   {0x2194, 0x2199},   {0x21A9, 0x21AA},
        {0x231A, 0x231B},   {0x2328, 0x2328},   {0x23CF, 0x23CF},   {0x23E9, 0x23F3},
        {0x23F8, 0x23FA},   {0x24C2, 0x24C2},   {0x25AA, 0x25AB},   {0x25B6, 0x25B6},
        {0x25C0, 0x25C0},   {0x25FB, 0x25FE},   {0x2600, 0x27BF},   {0x2934, 0x2935},
        {0x2B05, 0x2B07},   {0x2B1B, 0x2B1C},   {0x2B50, 0x2B50},   {0x2B55, 0x2B55},
        {0x3030, 0x3030},   {0x303D, 0x303D},   {0x3297, 0x3297},   {0x3299, 0x3299},
        {0x1F000, 0x1F1E5}, {0x1F200, 0x1F3FA}, {0x1F400, 0x1FAFF},
    };
    for (size_t k = 0; k < sizeof ranges / sizeof ranges[0]; k++)
        if (c >= ranges[k][0] && c <= ranges[k][1]) return true;
    return false;
}

static bool is_regional(long c)
{
    return c >= 0x1F1E6 && c <= 0x1F1FF;
}
static bool is_skin(long c)
{
    return c >= 0x1F3FB && c <= 0x1F3FF;
}
static bool is_vs(long c)
{
    return c == 0xFE0E || c == 0xFE0F;
}
static bool is_keycap_base(long c)
{
    return (c >= '0' && c <= '9') || c == '#' || c == '*';
}
static bool is_tag(long c)
{
    return c >= 0xE0020 && c <= 0xE007E;
}

enum emoji_state {
    E_NEED,  /* an element must start: at the beginning, after a ZWJ */
    E_BASE,  /* after a pictograph (and maybe its modifier or selector) */
    E_RI,    /* after a first regional indicator: the second must follow */
    E_KEY,   /* after a keycap's base (and maybe FE0F): U+20E3 must follow */
    E_TAG,   /* inside a tag sequence: tags, then U+E007F */
    E_CLOSED /* an element that takes nothing more but a ZWJ */
};

int emoji_check(const char *str, size_t len, size_t max_bytes, nova_err *err)
{
    const unsigned char *s = (const unsigned char *)str;
    if (!len) return nova_fail(err, ERR_INVALID, "emoji must not be empty");
    if (memchr(s, 0, len)) return nova_fail(err, ERR_INVALID, "emoji must be a single emoji");
    if (len > max_bytes)
        return nova_fail(err, ERR_INVALID, "emoji is longer than %zu bytes", max_bytes);
    enum emoji_state st = E_NEED;
    bool mod = false, vs = false;
    for (size_t i = 0; i < len;) {
        long c = next_cp(s, len, &i);
        if (c < 0) return nova_fail(err, ERR_INVALID, "emoji is not valid UTF-8");
        bool ok = false;
        switch (st) {
        case E_NEED:
            if (is_regional(c))
                st = E_RI, ok = true;
            else if (is_keycap_base(c))
                st = E_KEY, vs = false, ok = true;
            else if (is_pictograph(c) && !is_skin(c))
                st = E_BASE, mod = vs = false, ok = true;
            break;
        case E_BASE:
            if (is_skin(c) && !mod && !vs)
                mod = ok = true;
            else if (is_vs(c) && !vs && !mod)
                vs = ok = true;
            else if (c == 0x200D)
                st = E_NEED, ok = true;
            else if (is_tag(c) && !mod && !vs)
                st = E_TAG, ok = true;
            break;
        case E_RI:
            if (is_regional(c)) st = E_CLOSED, ok = true;
            break;
        case E_KEY:
            if (c == 0xFE0F && !vs)
                vs = ok = true;
            else if (c == 0x20E3)
                st = E_CLOSED, ok = true;
            break;
        case E_TAG:
            if (is_tag(c))
                ok = true;
            else if (c == 0xE007F)
                st = E_CLOSED, ok = true;
            break;
        case E_CLOSED:
            if (c == 0x200D) st = E_NEED, ok = true;
            break;
        }
        if (!ok) return nova_fail(err, ERR_INVALID, "emoji must be a single emoji");
    }
    if (st != E_BASE && st != E_CLOSED)
        return nova_fail(err, ERR_INVALID, "emoji must be a single emoji");
    return 0;
}

/* --- editing ----------------------------------------------------------------- */

static const char SQL_EDIT_LOOKUP[] =
    "SELECT chat_id, sender_id, recalled, send_time, edit_count, content, edited_at "
    "FROM messages WHERE id = ?";
static const char SQL_EDIT[] =
    "UPDATE messages SET content = ?2, edited_at = ?3, edit_count = edit_count + 1 "
    "WHERE id = ?1";

typedef struct target {
    int64_t chat_id, sender_id, edit_count;
    bool recalled, same;
    double send_time, edited_at; /* edited_at 0: never */
} target;

/* The message (404 when unknown), in a chat user_id is a member of. When
 * content is given, t->same says whether it is the message's text. */
static int load_target(nova_db *db, int64_t user_id, int64_t message_id, const char *content,
                       target *t, nova_err *err)
{
    db_stmt *st = db_prepare(db, SQL_EDIT_LOOKUP);
    if (!st) return nova_fail(err, ERR_INTERNAL, "internal error");
    db_bind_i64(st, 1, message_id);
    int rc = db_step(st);
    if (rc == DB_ROW) {
        t->chat_id = db_col_i64(st, 0);
        t->sender_id = db_col_i64(st, 1);
        t->recalled = db_col_i64(st, 2) != 0;
        t->send_time = db_col_double(st, 3);
        t->edit_count = db_col_i64(st, 4);
        const char *old = db_col_text(st, 5);
        t->same = content && old && !strcmp(old, content);
        t->edited_at = db_col_is_null(st, 6) ? 0 : db_col_double(st, 6);
    }
    db_done(st);
    if (rc == DB_DONE)
        return nova_fail(err, ERR_NOT_FOUND, "message %lld not found", (long long)message_id);
    if (rc != DB_ROW) return db_fail(db, err);
    chat_info chat;
    return access_chat(db, user_id, t->chat_id, NEED_MEMBER, false, &chat, NULL, err);
}

/* message_edited to the chat's members, or only to `only` (a call that
 * changed nothing: its caller's answer, with the current state). */
static int edited_event(nova_db *db, int64_t message_id, const target *t, const char *content,
                        double edited_at, int64_t only, nova_err *err)
{
    json_object *data = json_object_new_object();
    json_object_object_add(data, "message_id", json_i64(message_id));
    json_object_object_add(data, "chat_id", json_i64(t->chat_id));
    json_object_object_add(data, "message", json_str(content));
    json_object_object_add(data, "edited_at", edited_at ? json_time(edited_at) : NULL);
    return only ? outbox_emit(db, "message_edited", data, &only, 1, err)
                : outbox_emit_chat(db, "message_edited", data, t->chat_id, err);
}

int message_edit(nova_db *db, const edit_react_limits *lim, int64_t user_id, int64_t message_id,
                 const char *content, nova_err *err)
{
    target t;
    int rc = load_target(db, user_id, message_id, content, &t, err);
    if (rc) return rc;
    if (t.recalled || t.sender_id != user_id || user_id == USER_SYSTEM_ID)
        return nova_fail(err, ERR_FORBIDDEN, "only the sender may edit a message");
    if ((rc = validate_message_content(content, err))) return rc;
    if (t.same) return edited_event(db, message_id, &t, content, t.edited_at, user_id, err);
    double now = nova_now();
    if (lim->edit_window > 0 && now - t.send_time > (double)lim->edit_window)
        return nova_fail(err, ERR_FORBIDDEN, "the edit window of %ld seconds has passed",
                         lim->edit_window);
    if (t.edit_count >= lim->edit_max)
        return nova_fail(err, ERR_CONFLICT, "a message may be edited at most %ld times",
                         lim->edit_max);
    db_stmt *st = db_prepare(db, SQL_EDIT);
    if (!st) return nova_fail(err, ERR_INTERNAL, "internal error");
    db_bind_i64(st, 1, message_id);
    db_bind_text(st, 2, content);
    db_bind_double(st, 3, now);
    if ((rc = db_exec_done(db, st, err))) return rc;
    return edited_event(db, message_id, &t, content, now, 0, err);
}

/* --- reactions --------------------------------------------------------------- */

static const char SQL_REACTION_HAS[] =
    "SELECT count(*) FROM message_reactions WHERE message_id = ?1 AND user_id = ?2 AND emoji = ?3";
static const char SQL_REACTION_MINE[] =
    "SELECT count(*) FROM message_reactions WHERE message_id = ?1 AND user_id = ?2";
static const char SQL_REACTION_DISTINCT[] =
    "SELECT count(DISTINCT emoji), coalesce(sum(CASE WHEN emoji = ?2 THEN 1 ELSE 0 END), 0) "
    "FROM message_reactions WHERE message_id = ?1";
static const char SQL_REACTION_COUNT[] =
    "SELECT count(*) FROM message_reactions WHERE message_id = ?1 AND emoji = ?2";
static const char SQL_REACTION_ADD[] =
    "INSERT INTO message_reactions (message_id, user_id, emoji) VALUES (?1, ?2, ?3)";
static const char SQL_REACTION_REMOVE[] =
    "DELETE FROM message_reactions WHERE message_id = ?1 AND user_id = ?2 AND emoji = ?3";
static const char SQL_REACTIONS_CLEAR[] = "DELETE FROM message_reactions WHERE message_id = ?1";

/* Two integers of a one-row statement bound with (message_id, user_id or
 * emoji, emoji): b may be NULL. */
static int count_of(nova_db *db, const char *sql, int64_t message_id, int64_t user_id,
                    const char *emoji, int64_t *a, int64_t *b, nova_err *err)
{
    db_stmt *st = db_prepare(db, sql);
    if (!st) return nova_fail(err, ERR_INTERNAL, "internal error");
    int n = db_param_count(st);
    db_bind_i64(st, 1, message_id);
    if (user_id) {
        db_bind_i64(st, 2, user_id);
        if (n >= 3) db_bind_text(st, 3, emoji);
    } else {
        db_bind_text(st, 2, emoji);
    }
    int rc = db_step(st);
    if (rc == DB_ROW) {
        *a = db_col_i64(st, 0);
        if (b) *b = db_col_i64(st, 1);
    }
    db_done(st);
    return rc == DB_ROW ? 0 : db_fail(db, err);
}

static int exec3(nova_db *db, const char *sql, int64_t message_id, int64_t user_id,
                 const char *emoji, nova_err *err)
{
    db_stmt *st = db_prepare(db, sql);
    if (!st) return nova_fail(err, ERR_INTERNAL, "internal error");
    db_bind_i64(st, 1, message_id);
    db_bind_i64(st, 2, user_id);
    db_bind_text(st, 3, emoji);
    return db_exec_done(db, st, err);
}

int message_react(nova_db *db, const edit_react_limits *lim, int64_t user_id, int64_t message_id,
                  const char *emoji, size_t emoji_len, bool add, nova_err *err)
{
    target t;
    int rc = load_target(db, user_id, message_id, NULL, &t, err);
    if (rc) return rc;
    if (t.recalled) return nova_fail(err, ERR_INVALID, "a recalled message takes no reactions");
    if ((rc = emoji_check(emoji, emoji_len, (size_t)lim->emoji_bytes, err))) return rc;
    int64_t has = 0, count = 0;
    if ((rc = count_of(db, SQL_REACTION_HAS, message_id, user_id, emoji, &has, NULL, err)))
        return rc;
    bool noop = add == (has > 0); /* already so: the caller alone hears it */
    if (!noop && add) {
        int64_t mine = 0, distinct = 0, same = 0;
        if ((rc = count_of(db, SQL_REACTION_MINE, message_id, user_id, NULL, &mine, NULL, err)) ||
            (rc = count_of(db, SQL_REACTION_DISTINCT, message_id, 0, emoji, &distinct, &same, err)))
            return rc;
        if (mine >= lim->react_per_user)
            return nova_fail(err, ERR_CONFLICT, "at most %ld reactions per user on a message",
                             lim->react_per_user);
        if (!same && distinct >= lim->react_distinct)
            return nova_fail(err, ERR_CONFLICT, "at most %ld different emojis on a message",
                             lim->react_distinct);
    }
    if ((!noop && (rc = exec3(db, add ? SQL_REACTION_ADD : SQL_REACTION_REMOVE, message_id, user_id,
                              emoji, err))) ||
        (rc = count_of(db, SQL_REACTION_COUNT, message_id, 0, emoji, &count, NULL, err)))
        return rc;
    json_object *data = json_object_new_object();
    json_object_object_add(data, "message_id", json_i64(message_id));
    json_object_object_add(data, "chat_id", json_i64(t.chat_id));
    json_object_object_add(data, "user_id", json_i64(user_id));
    json_object_object_add(data, "emoji", json_str(emoji));
    json_object_object_add(data, "count", json_i64(count));
    const char *action = add ? "reaction_added" : "reaction_removed";
    return noop ? outbox_emit(db, action, data, &user_id, 1, err)
                : outbox_emit_chat(db, action, data, t.chat_id, err);
}

int reactions_clear(nova_db *db, int64_t message_id, nova_err *err)
{
    db_stmt *st = db_prepare(db, SQL_REACTIONS_CLEAR);
    if (!st) return nova_fail(err, ERR_INTERNAL, "internal error");
    db_bind_i64(st, 1, message_id);
    return db_exec_done(db, st, err);
}
