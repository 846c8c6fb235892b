/* attachment.c - upload, link, download checks and garbage collection of
 * attachments (docs/API.md "[ext] Attachments"). */
#include "attachment.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "access.h"
#include "json_util.h"
#include "log.h"
#include "utf8.h"

/* --- what the bytes are ------------------------------------------------ */

static bool starts(const unsigned char *b, size_t n, const char *magic, size_t len)
{
    return n >= len && !memcmp(b, magic, len);
}

/* Valid UTF-8 (no overlong forms, no surrogates), no NUL or control
 * character but tab, LF, FF and CR. */
static bool is_text(const unsigned char *b, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = b[i];
        if (c < 0x80) {
            if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r' && c != '\f') || c == 0x7F)
                return false;
            i++;
            continue;
        }
        size_t len;
        unsigned cp;
        if (c >= 0xC2 && c <= 0xDF)
            len = 2, cp = c & 0x1F;
        else if (c >= 0xE0 && c <= 0xEF)
            len = 3, cp = c & 0x0F;
        else if (c >= 0xF0 && c <= 0xF4)
            len = 4, cp = c & 0x07;
        else
            return false;
        if (i + len > n) return false;
        for (size_t k = 1; k < len; k++) {
            if ((b[i + k] & 0xC0) != 0x80) return false;
            cp = (cp << 6) | (b[i + k] & 0x3F);
        }
        if ((len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
            (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
            return false;
        i += len;
    }
    return true;
}

const char *attachment_sniff(const unsigned char *b, size_t n)
{
    if (starts(b, n, "\x89PNG\r\n\x1a\n", 8)) return "image/png";
    if (starts(b, n, "\xff\xd8\xff", 3)) return "image/jpeg";
    if (starts(b, n, "GIF87a", 6) || starts(b, n, "GIF89a", 6)) return "image/gif";
    if (n >= 12 && starts(b, n, "RIFF", 4) && !memcmp(b + 8, "WEBP", 4)) return "image/webp";
    if (starts(b, n, "%PDF-", 5)) return "application/pdf";
    if (n && is_text(b, n)) return "text/plain";
    return "application/octet-stream";
}

bool attachment_inline(const char *mime)
{
    return !strcmp(mime, "image/png") || !strcmp(mime, "image/jpeg") ||
           !strcmp(mime, "image/gif") || !strcmp(mime, "image/webp");
}

int attachment_validate_name(const char *name, nova_err *err)
{
    size_t len = strlen(name);
    if (!len || len > ATTACHMENT_NAME_MAX)
        return nova_fail(err, ERR_INVALID, "name must be 1 to %d bytes", ATTACHMENT_NAME_MAX);
    if (utf8_length(name) < 0) return nova_fail(err, ERR_INVALID, "name must be UTF-8");
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        if (*p < 0x20 || *p == 0x7F || *p == '/' || *p == '\\')
            return nova_fail(err, ERR_INVALID,
                             "name must not hold '/', '\\' or a control character");
    if (!strcmp(name, ".") || !strcmp(name, ".."))
        return nova_fail(err, ERR_INVALID, "name must not be \".\" or \"..\"");
    return 0;
}

/* --- storing the bytes ------------------------------------------------- */

static int io_fail(nova_err *err, int e, const char *what, const char *path)
{
    if (e == ENOSPC || e == EDQUOT || e == EROFS || e == EIO) {
        log_error("attachments: %s %s: %s", what, path, strerror(e));
        return nova_fail(err, ERR_UNAVAILABLE, "storage temporarily unavailable, try again");
    }
    log_error("attachments: %s %s: %s", what, path, strerror(e));
    return nova_fail(err, ERR_INTERNAL, "internal error");
}

static int fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    int e = errno;
    close(fd);
    errno = e;
    return rc;
}

int attachment_store(const char *dir, const char *hex, const void *bytes, size_t len, nova_err *err)
{
    char path[4096], tmp[4096];
    if (snprintf(path, sizeof path, "%s/%s", dir, hex) >= (int)sizeof path ||
        snprintf(tmp, sizeof tmp, "%s/.tmp-%s-%ld", dir, hex, (long)getpid()) >= (int)sizeof tmp)
        return nova_fail(err, ERR_INTERNAL, "internal error");
    /* Deduplicated: the same content is there already. Its time is
     * touched, so that attachments-gc (which spares young files) does not
     * take it while this upload's row is not yet committed. */
    if (!access(path, F_OK)) {
        if (utimensat(AT_FDCWD, path, NULL, 0) && errno == EROFS)
            return io_fail(err, errno, "touch", path);
        return 0;
    }
    if (mkdir(dir, 0750) && errno != EEXIST) return io_fail(err, errno, "mkdir", dir);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0) return io_fail(err, errno, "create", tmp);
    /* nginx's workers read it as the group (whatever the umask) */
    int e = fchmod(fd, 0640) ? errno : 0;
    const char *p = bytes;
    size_t left = len;
    while (left && !e) {
        ssize_t n = write(fd, p, left);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            e = n < 0 ? errno : ENOSPC;
            break;
        }
        p += n;
        left -= (size_t)n;
    }
    if (!e && fsync(fd)) e = errno;
    if (close(fd) && !e) e = errno;
    if (!e && rename(tmp, path)) e = errno;
    if (e) {
        unlink(tmp);
        return io_fail(err, e, "write", tmp);
    }
    if (fsync_dir(dir)) {
        e = errno;
        /* The file is named but perhaps not durably: take it back (no
         * row names it yet) and fail cleanly. */
        unlink(path);
        return io_fail(err, e, "fsync", dir);
    }
    return 0;
}

/* --- rows ----------------------------------------------------------------- */

#define ATTACHMENT_COLUMNS                                                                         \
    "SELECT a.id, a.chat_id, coalesce(a.message_id, 0), a.name, a.size, a.mime, a.created_at "     \
    "FROM attachments a "
static const char SQL_ATTACHMENT_INSERT[] =
    "INSERT INTO attachments (chat_id, uploader_id, hash, name, size, mime, created_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id";
static const char SQL_ATTACHMENT_VIEW[] = ATTACHMENT_COLUMNS "WHERE a.id = ?";
static const char SQL_ATTACHMENTS_OF_MESSAGES[] =
    ATTACHMENT_COLUMNS "WHERE a.message_id IN (SELECT value FROM json_each(?1))";
static const char SQL_ATTACHMENTS_OF_MESSAGES_PG[] =
    ATTACHMENT_COLUMNS "WHERE a.message_id IN "
                       "(SELECT value::bigint FROM json_array_elements_text(?1::json))";
static const char SQL_ATTACHMENT_UNSENT[] =
    "SELECT 1 FROM attachments WHERE id = ?1 AND uploader_id = ?2 AND chat_id = ?3 "
    "AND message_id IS NULL";
static const char SQL_ATTACHMENT_LINK[] =
    "UPDATE attachments SET message_id = ?2 WHERE id = ?1 AND message_id IS NULL";
static const char SQL_ATTACHMENT_FORGET[] = "DELETE FROM attachments WHERE message_id = ?";
static const char SQL_ATTACHMENT_DOWNLOAD[] =
    "SELECT a.hash, a.mime, a.name, a.size, coalesce(a.uploader_id, 0), "
    "coalesce(a.message_id, 0), coalesce(m.recalled, 0), "
    "EXISTS (SELECT 1 FROM chat_members c WHERE c.chat_id = a.chat_id AND c.user_id = ?2), "
    "EXISTS (SELECT 1 FROM message_deletions d WHERE d.user_id = ?2 "
    "AND d.message_id = a.message_id) "
    "FROM attachments a LEFT JOIN messages m ON m.id = a.message_id WHERE a.id = ?1";

static json_object *row_view(db_stmt *st)
{
    json_object *o = json_object_new_object();
    int64_t id = db_col_i64(st, 0), message = db_col_i64(st, 2);
    char url[64];
    snprintf(url, sizeof url, "/api/attachment/%lld", (long long)id);
    const char *name = db_col_text(st, 3);
    json_object_object_add(o, "attachment_id", json_i64(id));
    json_object_object_add(o, "chat_id", json_i64(db_col_i64(st, 1)));
    json_object_object_add(o, "message_id", message ? json_i64(message) : NULL);
    json_object_object_add(o, "name", json_str(name ? name : ""));
    json_object_object_add(o, "size", json_i64(db_col_i64(st, 4)));
    const char *mime = db_col_text(st, 5);
    json_object_object_add(o, "mime", json_str(mime ? mime : ""));
    json_object_object_add(o, "url", json_str(url));
    json_object_object_add(o, "upload_time", json_time(db_col_double(st, 6)));
    return o;
}

int attachment_upload(nova_db *db, int64_t user_id, int64_t chat_id, const char *name,
                      const void *bytes, size_t len, json_object **view, nova_err *err)
{
    chat_info chat;
    int rc = access_chat(db, user_id, chat_id, NEED_MEMBER, false, &chat, NULL, err);
    if (rc) return rc;
    if ((rc = attachment_validate_name(name, err))) return rc;
    if (len > (size_t)db->cfg->attachment_limit)
        return nova_fail(err, ERR_TOO_LARGE, "file is larger than %ld bytes",
                         db->cfg->attachment_limit);
    if (!len) return nova_fail(err, ERR_INVALID, "the file is empty");
    unsigned char hash[crypto_hash_sha256_BYTES];
    char hex[crypto_hash_sha256_BYTES * 2 + 1];
    crypto_hash_sha256(hash, bytes, len);
    sodium_bin2hex(hex, sizeof hex, hash, sizeof hash);
    const char *mime = attachment_sniff(bytes, len);
    if ((rc = attachment_store(db->cfg->attachment_dir, hex, bytes, len, err))) return rc;
    db_stmt *st = db_prepare(db, SQL_ATTACHMENT_INSERT);
    if (!st) return nova_fail(err, ERR_INTERNAL, "internal error");
    db_bind_i64(st, 1, chat_id);
    db_bind_i64(st, 2, user_id);
    db_bind_text(st, 3, hex);
    db_bind_text(st, 4, name);
    db_bind_i64(st, 5, (int64_t)len);
    db_bind_text(st, 6, mime);
    db_bind_double(st, 7, nova_now());
    int64_t id;
    /* A failure here leaves a file no row names: attachments-gc takes it
     * (it may be another row's file too: then it stays). */
    if ((rc = db_insert_id(db, st, &id, err))) return rc;
    if (!(st = db_prepare(db, SQL_ATTACHMENT_VIEW)))
        return nova_fail(err, ERR_INTERNAL, "internal error");
    db_bind_i64(st, 1, id);
    rc = db_step(st);
    if (rc == DB_ROW) *view = row_view(st);
    db_done(st);
    return rc == DB_ROW    ? 0
           : rc == DB_DONE ? nova_fail(err, ERR_INTERNAL, "internal error")
                           : db_fail(db, err);
}

int attachment_check_unsent(nova_db *db, int64_t user_id, int64_t chat_id, int64_t attachment_id,
                            nova_err *err)
{
    db_stmt *st = db_prepare(db, SQL_ATTACHMENT_UNSENT);
    if (!st) return nova_fail(err, ERR_INTERNAL, "internal error");
    db_bind_i64(st, 1, attachment_id);
    db_bind_i64(st, 2, user_id);
    db_bind_i64(st, 3, chat_id);
    int rc = db_step(st);
    db_done(st);
    if (rc == DB_ROW) return 0;
    if (rc == DB_DONE)
        return nova_fail(err, ERR_INVALID,
                         "attachment_id must be a file you uploaded to this chat and have not "
                         "sent yet");
    return db_fail(db, err);
}

int attachment_link(nova_db *db, int64_t attachment_id, int64_t message_id, nova_err *err)
{
    db_stmt *st = db_prepare(db, SQL_ATTACHMENT_LINK);
    if (!st) return nova_fail(err, ERR_INTERNAL, "internal error");
    db_bind_i64(st, 1, attachment_id);
    db_bind_i64(st, 2, message_id);
    int rc = db_exec_done(db, st, err);
    if (!rc && db_changes(db) != 1)
        return nova_fail(err, ERR_INVALID, "attachment_id is already sent");
    return rc;
}

int attachment_forget_message(nova_db *db, int64_t message_id, nova_err *err)
{
    db_stmt *st = db_prepare(db, SQL_ATTACHMENT_FORGET);
    if (!st) return nova_fail(err, ERR_INTERNAL, "internal error");
    db_bind_i64(st, 1, message_id);
    return db_exec_done(db, st, err);
}

int attachment_views_of(nova_db *db, const int64_t *ids, size_t n, json_object **map, nova_err *err)
{
    *map = json_object_new_object();
    if (!n) return 0;
    char *list = malloc(n * 21 + 3), *p = list;
    if (!list) return nova_fail(err, ERR_INTERNAL, "out of memory");
    *p++ = '[';
    for (size_t i = 0; i < n; i++)
        p += sprintf(p, "%s%lld", i ? "," : "", (long long)ids[i]);
    *p++ = ']';
    *p = '\0';
    db_stmt *st = db_prepare_for(db, SQL_ATTACHMENTS_OF_MESSAGES, SQL_ATTACHMENTS_OF_MESSAGES_PG);
    if (!st) {
        free(list);
        return nova_fail(err, ERR_INTERNAL, "internal error");
    }
    db_bind_text(st, 1, list);
    int rc;
    while ((rc = db_step(st)) == DB_ROW) {
        char key[24];
        snprintf(key, sizeof key, "%lld", (long long)db_col_i64(st, 2));
        json_object_object_add(*map, key, row_view(st));
    }
    db_done(st);
    free(list);
    return rc == DB_DONE ? 0 : db_fail(db, err);
}

int attachment_for_download(nova_db *db, int64_t user_id, int64_t attachment_id,
                            attachment_file *out, nova_err *err)
{
    db_stmt *st = db_prepare(db, SQL_ATTACHMENT_DOWNLOAD);
    if (!st) return nova_fail(err, ERR_INTERNAL, "internal error");
    db_bind_i64(st, 1, attachment_id);
    db_bind_i64(st, 2, user_id);
    int rc = db_step(st);
    bool ok = false;
    if (rc == DB_ROW) {
        const char *hash = db_col_text(st, 0), *mime = db_col_text(st, 1),
                   *name = db_col_text(st, 2);
        int64_t uploader = db_col_i64(st, 4), message = db_col_i64(st, 5);
        bool recalled = db_col_i64(st, 6), member = db_col_i64(st, 7), hidden = db_col_i64(st, 8);
        ok = member && !recalled && !hidden && (message || uploader == user_id) && hash &&
             strlen(hash) == 64 && strspn(hash, "0123456789abcdef") == 64;
        if (ok) {
            snprintf(out->hash, sizeof out->hash, "%s", hash);
            snprintf(out->mime, sizeof out->mime, "%s", mime ? mime : "application/octet-stream");
            snprintf(out->name, sizeof out->name, "%s", name ? name : "file");
            out->size = db_col_i64(st, 3);
        }
    }
    db_done(st);
    if (rc != DB_ROW && rc != DB_DONE) return db_fail(db, err);
    if (!ok)
        return nova_fail(err, ERR_NOT_FOUND, "attachment %lld not found", (long long)attachment_id);
    return 0;
}

/* --- garbage collection -------------------------------------------------- */

static const char SQL_GC_UNSENT[] =
    "DELETE FROM attachments WHERE message_id IS NULL AND (created_at < ?1 OR uploader_id IS NULL)";
static const char SQL_GC_NAMED[] = "SELECT 1 FROM attachments WHERE hash = ? LIMIT 1";

static bool is_hash_name(const char *s)
{
    return strlen(s) == 64 && strspn(s, "0123456789abcdef") == 64;
}

int attachment_gc(nova_db *db, const nova_config *cfg, double grace, long *rows, long *files,
                  nova_err *err)
{
    *rows = *files = 0;
    double now = nova_now();
    int rc = db_begin(db, err);
    if (rc) return rc;
    db_stmt *st = db_prepare(db, SQL_GC_UNSENT);
    if (!st) rc = nova_fail(err, ERR_INTERNAL, "internal error");
    if (!rc) {
        db_bind_double(st, 1, now - (double)cfg->attachment_expiry);
        rc = db_exec_done(db, st, err);
    }
    if (!rc) *rows = db_changes(db);
    if (!rc) rc = db_commit(db, err);
    if (rc) {
        db_rollback(db);
        return rc;
    }
    DIR *d = opendir(cfg->attachment_dir);
    if (!d) return errno == ENOENT ? 0 : io_fail(err, errno, "open", cfg->attachment_dir);
    struct dirent *e;
    while (!rc && (e = readdir(d))) {
        bool hashed = is_hash_name(e->d_name), temp = !strncmp(e->d_name, ".tmp-", 5);
        if (!hashed && !temp) continue;
        struct stat sb;
        if (fstatat(dirfd(d), e->d_name, &sb, AT_SYMLINK_NOFOLLOW) || !S_ISREG(sb.st_mode))
            continue;
        if ((double)sb.st_mtime > now - grace) continue; /* young: maybe in flight */
        if (hashed) {
            if ((rc = db_begin_read(db, err))) break;
            if (!(st = db_prepare(db, SQL_GC_NAMED))) {
                db_rollback(db);
                rc = nova_fail(err, ERR_INTERNAL, "internal error");
                break;
            }
            db_bind_text(st, 1, e->d_name);
            int step = db_step(st);
            db_done(st);
            db_rollback(db);
            if (step == DB_ROW) continue;
            if (step != DB_DONE) {
                rc = db_fail(db, err);
                break;
            }
        }
        if (!unlinkat(dirfd(d), e->d_name, 0)) (*files)++;
    }
    closedir(d);
    return rc;
}
