/* h_search.c - [ext] GET /api/search (docs/API.md "[ext] Search"). The
 * rules are common/search.c's. */
#include <stdlib.h>

#include "../common/search.h"
#include "api.h"

int h_search(api_call *c, nova_err *err)
{
    char *q = malloc((size_t)c->cfg->search_max_query + 1);
    char sort[16], cursor[32];
    if (!q) return nova_fail(err, ERR_INTERNAL, "out of memory");
    search_query sq = {0};
    int got, rc = 0;
    if ((got = http_query_text(c->req->query, "q", q, (size_t)c->cfg->search_max_query + 1,
                               err)) < 0)
        rc = -got;
    else if (got)
        sq.q = q;
    if (!rc && (got = http_query_text(c->req->query, "sort", sort, sizeof sort, err)) < 0)
        rc = -got;
    else if (!rc && got)
        sq.sort = sort;
    if (!rc && (got = http_query_text(c->req->query, "cursor", cursor, sizeof cursor, err)) < 0)
        rc = -got;
    else if (!rc && got)
        sq.cursor = cursor;
    if (!rc) rc = http_query_id(c->req->query, "chat_id", &sq.chat_id, err);
    if (!rc) rc = http_query_id(c->req->query, "limit", &sq.limit, err);
    json_object *page = NULL;
    if (!rc) rc = search_messages(c->db, c->session.user_id, &sq, &page, err);
    free(q);
    if (rc) return rc;
    return api_result(c, page, err);
}
