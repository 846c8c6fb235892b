/* attachment.h - files uploaded to a chat and carried by messages
 * (docs/API.md "[ext] Attachments", schema 008).
 *
 * The bytes live under cfg->attachment_dir, one file per content, named by
 * the hex SHA-256 of the content; rows of the attachments table name them.
 * nova-api decides who may download (attachment_for_download); nginx
 * serves the file from its internal location. */
#ifndef NOVA_ATTACHMENT_H
#define NOVA_ATTACHMENT_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "db.h"

enum { ATTACHMENT_NAME_MAX = 255 }; /* bytes of a file name */

/* The media type of these bytes, from their first bytes: image/png,
 * image/jpeg, image/gif, image/webp, application/pdf, text/plain (valid
 * UTF-8 with no control character but tab, CR, LF, FF), else
 * application/octet-stream. */
const char *attachment_sniff(const unsigned char *b, size_t n);

/* May a downloaded file of this type be shown inline (raster images)? */
bool attachment_inline(const char *mime);

/* A file name: 1..255 bytes of UTF-8, no control character, no '/' or
 * '\\', not "." or "..". 0 or ERR_INVALID. */
int attachment_validate_name(const char *name, nova_err *err);

/* Store len bytes in dir as <hex>, unless a file of that name is there
 * (then only its time is touched): temporary file, fsync, rename, fsync of
 * the directory. A full or read-only disk (ENOSPC, EDQUOT, EROFS, EIO) is
 * ERR_UNAVAILABLE, and no temporary file is left. */
int attachment_store(const char *dir, const char *hex, const void *bytes, size_t len,
                     nova_err *err);

/* POST /chat/<id>/attachment: the caller must be a member of the chat; the
 * file is stored, then its row inserted. *view: the Attachment. */
int attachment_upload(nova_db *db, int64_t user_id, int64_t chat_id, const char *name,
                      const void *bytes, size_t len, json_object **view, nova_err *err);

/* send_message with attachment_id: it must be the caller's upload to this
 * chat, not yet sent (else ERR_INVALID). */
int attachment_check_unsent(nova_db *db, int64_t user_id, int64_t chat_id, int64_t attachment_id,
                            nova_err *err);

/* Link a checked attachment to the message just posted. */
int attachment_link(nova_db *db, int64_t attachment_id, int64_t message_id, nova_err *err);

/* A recalled message loses its attachment (the row goes; the file goes
 * with the next attachments-gc unless another row names it). */
int attachment_forget_message(nova_db *db, int64_t message_id, nova_err *err);

/* Attachment views of the messages with these ids (one statement), as an
 * object keyed by the decimal message id. */
int attachment_views_of(nova_db *db, const int64_t *message_ids, size_t n, json_object **map,
                        nova_err *err);

typedef struct attachment_file {
    char hash[65];
    char mime[64];
    char name[ATTACHMENT_NAME_MAX + 1];
    int64_t size;
} attachment_file;

/* GET /attachment/<id>: the file, if user_id may download it now: a
 * current member of its chat, and its message neither recalled nor deleted
 * by user_id for themselves (an unsent one: only its uploader). Every
 * refusal is ERR_NOT_FOUND (nobody learns what exists). */
int attachment_for_download(nova_db *db, int64_t user_id, int64_t attachment_id,
                            attachment_file *out, nova_err *err);

/* nova-admin attachments-gc: delete the rows of uploads not sent within
 * cfg->attachment_expiry seconds (or whose uploader is gone), then every
 * file of the directory that no row names and that is older than
 * grace seconds (an upload in flight names its file only at commit), and
 * stale temporary files. Counts in *rows and *files. */
int attachment_gc(nova_db *db, const nova_config *cfg, double grace, long *rows, long *files,
                  nova_err *err);

#endif
