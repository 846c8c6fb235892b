/* search.h - [ext] full-text search of the messages a caller can read
 * (docs/API.md "[ext] Search"). */
#ifndef NOVA_SEARCH_H
#define NOVA_SEARCH_H

#include <stdbool.h>
#include <stdint.h>

#include <json-c/json.h>

#include "db.h"
#include "err.h"

/* One search, as the client asked it (nothing checked yet). */
typedef struct search_query {
    const char *q;      /* the words */
    int64_t chat_id;    /* only this chat; 0: every chat of the caller */
    const char *sort;   /* "relevance", "newest"; NULL: relevance */
    int64_t limit;      /* hits per page; 0: the default */
    const char *cursor; /* the previous page's next_cursor; NULL: the first page */
} search_query;

/* The page of hits {"hits": [...], "next_cursor": ...} of q for viewer, in
 * *out. 0, or ERR_INVALID (a bad query, limit, sort or cursor),
 * ERR_NOT_FOUND / ERR_FORBIDDEN (chat_id unknown / not the caller's), or
 * a storage failure. Runs in the caller's read transaction. */
int search_messages(nova_db *db, int64_t viewer, const search_query *q, json_object **out,
                    nova_err *err);

#endif
