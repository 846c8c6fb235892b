/* console.h - the outbox console's JSON API (docs/CONSOLE.md), served by
 * nova-api at /admin/api/ from a route table of its own, never through
 * the chat's router, and only when the console is on (the console
 * setting) and nginx's /admin/api/ location marked the request (the
 * FastCGI parameter NOVA_CONSOLE, which no client header can set). */
#ifndef NOVA_FCGI_CONSOLE_H
#define NOVA_FCGI_CONSOLE_H

#include <stdbool.h>

#include "../common/db.h"
#include "http.h"

/* Is this request the console's? marked: NOVA_CONSOLE=1 came from nginx. */
bool console_wants(const nova_config *cfg, bool marked, const char *path);

/* Answer one console request. resp must be initialised by the caller. */
void console_handle(nova_db *db, const http_request *req, http_response *resp);

#endif
