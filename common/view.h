/* view.h - the structures of API.md §3, built in one place.
 *
 * Responses and event payloads alike are made here. Each function returns
 * a new json_object (owned by the caller) or NULL with err set (404 when
 * the object does not exist). */
#ifndef NOVA_VIEW_H
#define NOVA_VIEW_H

#include <json-c/json.h>
#include <stdint.h>

#include "db.h"

json_object *view_user_basic(nova_db *db, int64_t user_id, nova_err *err);
json_object *view_user_detailed(nova_db *db, int64_t user_id, nova_err *err);

#endif
