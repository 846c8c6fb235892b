/* validate.h - the field rules of API.md §2.
 *
 * Each validator returns 0 or ERR_INVALID with a message naming the field.
 * Lengths count Unicode code points; inputs are NUL-terminated UTF-8
 * (json_parse_strict has already rejected invalid UTF-8 and NULs). */
#ifndef NOVA_VALIDATE_H
#define NOVA_VALIDATE_H

#include <stddef.h>

#include "err.h"
#include "utf8.h"

int validate_user_name(const char *s, nova_err *err);
int validate_password(const char *s, const char *field, nova_err *err);
int validate_email(const char *s, nova_err *err);
int validate_phone(const char *s, nova_err *err);
int validate_avatar_url(const char *s, nova_err *err);

/* A message's content (send_message, edit_message): not empty. */
int validate_message_content(const char *content, nova_err *err);

/* A string of min..max code points (friend group names, nicknames,
 * invitation comments, chat names). */
int validate_length(const char *s, const char *field, long min, long max, nova_err *err);

enum {
    USER_NAME_MAX = 32,
    PASSWORD_MIN = 6,
    EMAIL_MAX = 100,
    AVATAR_DATA_MAX = 100000,
    AVATAR_HTTP_MAX = 500,
    GROUP_NAME_MAX = 100,
    NICKNAME_MAX = 100,
    COMMENT_MAX = 500,
    CHAT_NAME_MAX = 60,
};

#endif
