/* shapes.h - the structures of API.md §3 and the notification payloads of
 * §5, checked on JSON values (responses, outbox events, socket packets).
 *
 * Each check aborts through fuzz_fail, naming `where`, when v does not
 * have exactly the documented keys and types, or breaks a rule the
 * structure states (members include the owner and admins, admins never
 * include the owner, a private chat has two members, a reply is in the
 * same chat as its parent, ...). */
#ifndef NOVA_FUZZ_SHAPES_H
#define NOVA_FUZZ_SHAPES_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>

typedef void (*shape_fn)(json_object *v, const char *where);

void shape_user_basic(json_object *v, const char *where);
void shape_user_detailed(json_object *v, const char *where);
void shape_friend_group(json_object *v, const char *where);
void shape_friend(json_object *v, const char *where);
void shape_friend_invitation(json_object *v, const char *where);
void shape_chat(json_object *v, const char *where);
void shape_chat_relation(json_object *v, const char *where);
void shape_chat_invitation(json_object *v, const char *where);
void shape_received_invitation(json_object *v, const char *where);
void shape_message_basic(json_object *v, const char *where);
void shape_message_detailed(json_object *v, const char *where);
void shape_attachment(json_object *v, const char *where); /* [ext] attachments */
bool field_is_set(json_object *obj, const char *key);     /* present and not null */
void shape_null(json_object *v, const char *where);

/* An array whose every element passes f. */
void shape_array_of(json_object *v, shape_fn f, const char *where);

/* Is action one of the notifications of API.md §5? */
bool shape_known_event(const char *action);

/* The data of notification `action` (§5 table). */
void shape_event_data(const char *action, json_object *data, const char *where);

/* Accessors for checks that need a field after its shape was checked. */
int64_t shape_int(json_object *obj, const char *key);
const char *shape_str(json_object *obj, const char *key);

/* The envelope of a REST body (API.md §1): {"ok":true,"data":..} for 200,
 * {"ok":false,"error":"<non-empty>"} otherwise. Returns the data (borrowed
 * from *root, which the caller puts). */
json_object *shape_envelope(const char *body, size_t len, int status, json_object **root,
                            const char *where);

/* Strictly parse text that the server produced (any depth). */
json_object *shape_parse(const char *text, size_t len, const char *where);

#endif
