/* router.h - matching PATH_INFO against the route table.
 *
 * A pattern is a path whose segments are literals or "{id}". An {id}
 * matches a positive decimal integer that fits in 63 bits, written without
 * sign or leading zeros; anything else makes the path unknown. */
#ifndef NOVA_ROUTER_H
#define NOVA_ROUTER_H

#include <stddef.h>
#include <stdint.h>

enum {
    METHOD_GET = 1,
    METHOD_POST = 2,
    METHOD_PATCH = 4,
    METHOD_DELETE = 8,
    METHOD_OPTIONS = 16,
};

enum { ROUTE_MAX_IDS = 3 };

/* Method bit of a method name, 0 for anything else. */
unsigned router_method(const char *name);

/* Write "GET, POST, OPTIONS"-style text of a method mask. */
void router_allow_text(unsigned methods, char *out, size_t size);

/* Does path match pattern? On a match, the {id} values are stored in ids
 * (at most ROUTE_MAX_IDS) and their count in *n_ids. */
int router_match(const char *pattern, const char *path, int64_t ids[ROUTE_MAX_IDS], size_t *n_ids);

/* Parse a path id as the router does: 1..INT64_MAX, digits only, no
 * leading zero. 0 on success. */
int router_parse_id(const char *s, size_t len, int64_t *out);

#endif
