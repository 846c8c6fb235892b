/* test_domain.c - domain rules of common/, in-process, on the seeded world
 * of the fuzz harnesses (tests/fuzz/world.h: alice, bob, carol, dave, erin,
 * their friendships, the groups Team and Side).
 *
 * What needed the whole stack before: the access gate and its error kinds,
 * what each endpoint answers for each kind (the route table), that a
 * failing operation changes nothing, and account deletion's cascade with
 * the domain invariants checked after it. Each test starts from the
 * pristine world. */
#include <sqlite3.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "../../common/access.h"
#include "../../common/account.h"
#include "../../common/chat.h"
#include "../../common/message.h"
#include "../../common/user.h"
#include "../../fcgi/api.h"
#include "../fuzz/invariants.h"
#include "../fuzz/world.h"

static fuzz_world world;

static int reset(void **state)
{
    (void)state;
    fuzz_world_reset(&world);
    return 0;
}

static int gate(int64_t caller, int64_t chat, enum chat_need need, bool group_only,
                enum chat_role *role)
{
    chat_info info;
    nova_err err;
    nova_err_clear(&err);
    int rc = access_chat(world.db, caller, chat, need, group_only, &info, role, &err);
    assert_int_equal(rc, err.kind);
    if (rc) assert_true(err.msg[0] != '\0');
    return rc;
}

/* The gate names the problem by its kind, in a fixed order: unknown chat,
 * private where a group is needed, then the caller's role. */
static void test_gate_kinds(void **state)
{
    (void)state;
    enum chat_role role;
    assert_int_equal(gate(ALICE, CHAT_TEAM, NEED_OWNER, true, &role), 0);
    assert_int_equal(role, ROLE_OWNER);
    assert_int_equal(gate(BOB, CHAT_TEAM, NEED_STAFF, true, &role), 0);
    assert_int_equal(role, ROLE_ADMIN);
    assert_int_equal(gate(CAROL, CHAT_TEAM, NEED_MEMBER, true, &role), 0);
    assert_int_equal(role, ROLE_MEMBER);

    assert_int_equal(gate(BOB, CHAT_TEAM, NEED_OWNER, true, NULL), ERR_FORBIDDEN);
    assert_int_equal(gate(CAROL, CHAT_TEAM, NEED_STAFF, true, NULL), ERR_FORBIDDEN);
    assert_int_equal(gate(DAVE, CHAT_TEAM, NEED_MEMBER, false, NULL), ERR_FORBIDDEN);
    assert_int_equal(gate(ALICE, 999999, NEED_MEMBER, false, NULL), ERR_NOT_FOUND);
    /* A private chat is refused before its membership is looked at. */
    assert_int_equal(gate(ALICE, CHAT_AB, NEED_MEMBER, true, NULL), ERR_INVALID);
    assert_int_equal(gate(CAROL, CHAT_AB, NEED_MEMBER, true, NULL), ERR_INVALID);
    assert_int_equal(gate(CAROL, CHAT_AB, NEED_MEMBER, false, NULL), ERR_FORBIDDEN);
    assert_int_equal(gate(ALICE, CHAT_AB, NEED_MEMBER, false, NULL), 0);
}

static void test_friendship_facts(void **state)
{
    (void)state;
    bool yes;
    nova_err err;
    assert_int_equal(access_are_friends(world.db, ALICE, BOB, &yes, &err), 0);
    assert_true(yes);
    assert_int_equal(access_are_friends(world.db, BOB, ALICE, &yes, &err), 0);
    assert_true(yes);
    assert_int_equal(access_are_friends(world.db, ALICE, ERIN, &yes, &err), 0);
    assert_false(yes);
    int64_t chat;
    assert_int_equal(access_friendship(world.db, DAVE, ALICE, &chat, &err), 0);
    assert_int_equal(chat, CHAT_DA);
    assert_int_equal(access_friend(world.db, ALICE, ERIN, &err), ERR_NOT_FOUND);
    assert_int_equal(access_friend(world.db, ERIN, BOB, &err), 0);
}

static int status_of(const char *method, const char *path, int who, const char *body)
{
    http_response resp;
    fuzz_call(&world, method, path, who >= 0 ? world.tokens[who] : NULL, body, &resp);
    int status = resp.status;
    http_response_free(&resp);
    return status;
}

/* One kind, several statuses: what API.md gives per endpoint comes from
 * the route table, not from the domain. */
static void test_route_statuses_of_kinds(void **state)
{
    (void)state;
    /* unknown chat: 404 for its messages, 400 everywhere else */
    assert_int_equal(status_of("GET", "/chat/999/messages", SESSION_ALICE, NULL), 404);
    assert_int_equal(status_of("GET", "/chat/999", SESSION_ALICE, NULL), 400);
    assert_int_equal(status_of("POST", "/chat/999/filter", SESSION_ALICE, "{\"sender\":[3]}"), 400);
    assert_int_equal(status_of("DELETE", "/chat/999/4", SESSION_ALICE, NULL), 400);
    /* not a member: 403 for messages and filter, 400 for GET/DELETE /chat/<id> */
    assert_int_equal(status_of("GET", "/chat/6/messages", SESSION_DAVE, NULL), 403);
    assert_int_equal(status_of("POST", "/chat/6/filter", SESSION_DAVE, "{\"sender\":[3]}"), 403);
    assert_int_equal(status_of("GET", "/chat/6", SESSION_DAVE, NULL), 400);
    assert_int_equal(status_of("DELETE", "/chat/6", SESSION_DAVE, NULL), 400);
    /* unknown friend group: 404 to read, 400 to change */
    assert_int_equal(status_of("GET", "/friend/group/999", SESSION_ALICE, NULL), 404);
    assert_int_equal(
        status_of("PATCH", "/friend/group/999", SESSION_ALICE, "{\"group_name\":\"x\"}"), 400);
    assert_int_equal(status_of("DELETE", "/friend/group/999", SESSION_ALICE, NULL), 400);
    /* not a friend: 404 to read, 400 to change */
    assert_int_equal(status_of("GET", "/friend/7", SESSION_ALICE, NULL), 404);
    assert_int_equal(status_of("DELETE", "/friend/7", SESSION_ALICE, NULL), 400);
    /* a forbidden role stays 403 on the writes that list it so */
    assert_int_equal(status_of("DELETE", "/chat/6/3", SESSION_BOB, NULL), 403);
    assert_int_equal(status_of("POST", "/chat/6/set_owner", SESSION_BOB, "{\"chat_owner\":4}"),
                     403);
    /* no session: the pipeline's 403, even where the route maps kinds to 400 */
    assert_int_equal(status_of("GET", "/chat/6", -1, NULL), 403);
}

/* A rule that fails in the middle of an operation leaves nothing behind. */
static void test_failures_change_nothing(void **state)
{
    (void)state;
    uint64_t before = inv_fingerprint(world.db, false);
    nova_err err;
    assert_int_equal(db_begin(world.db, &err), 0);
    /* bob is an admin: he may remove members, but not the owner */
    assert_int_equal(chat_remove_member(world.db, BOB, CHAT_TEAM, ALICE, &err), ERR_FORBIDDEN);
    assert_int_equal(chat_set_admin(world.db, ALICE, CHAT_TEAM, BOB, true, &err), ERR_INVALID);
    assert_int_equal(chat_invite(world.db, ALICE, CHAT_TEAM, CAROL, &err), ERR_INVALID);
    assert_int_equal(message_recall(world.db, BOB, MSG_TEAM_ALICE, &err), ERR_FORBIDDEN);
    assert_int_equal(db_commit(world.db, &err), 0);
    assert_true(inv_fingerprint(world.db, false) == before);
}

/* An ex-member changes nothing in the chat, their own messages included. */
static void test_ex_member_cannot_recall(void **state)
{
    (void)state;
    nova_err err;
    assert_int_equal(db_begin(world.db, &err), 0);
    assert_int_equal(chat_delete_or_leave(world.db, BOB, CHAT_TEAM, &err), 0);
    assert_int_equal(message_recall(world.db, BOB, MSG_TEAM_BOB_REPLY, &err), ERR_FORBIDDEN);
    assert_int_equal(message_delete_for_me(world.db, BOB, MSG_TEAM_BOB_REPLY, &err), ERR_FORBIDDEN);
    assert_int_equal(db_commit(world.db, &err), 0);
    assert_int_equal(fuzz_query_int(&world, "SELECT recalled FROM messages WHERE id = 9", -1), 0);
}

/* DELETE /user of carol (owner of Side, member of Team, friend of alice and
 * bob): everything of API.md §6, and every invariant still holds. */
static void test_account_delete_cascade(void **state)
{
    (void)state;
    int64_t outbox_before = inv_outbox_newest(world.db);
    nova_err err;
    assert_int_equal(db_begin(world.db, &err), 0);
    assert_int_equal(account_delete(world.db, CAROL, &err), 0);
    assert_int_equal(db_commit(world.db, &err), 0);
    inv_check_db(world.db, true);
    inv_check_outbox(world.db, outbox_before);

    static const char *const gone[] = {
        "SELECT count(*) FROM users WHERE id = 5",
        "SELECT count(*) FROM sessions WHERE user_id = 5",
        "SELECT count(*) FROM friends WHERE user_id = 5 OR friend_id = 5",
        "SELECT count(*) FROM friend_groups WHERE user_id = 5",
        "SELECT count(*) FROM friend_invitations WHERE sender_id = 5 OR receiver_id = 5",
        "SELECT count(*) FROM chat_invitations WHERE user_id = 5 OR invited_by = 5",
        "SELECT count(*) FROM chat_members WHERE user_id = 5",
        "SELECT count(*) FROM chat_relations WHERE user_id = 5",
        "SELECT count(*) FROM messages WHERE sender_id = 5",
        "SELECT count(*) FROM chats WHERE id IN (2, 3, 7)", /* alice-carol, bob-carol, Side */
    };
    for (size_t i = 0; i < sizeof gone / sizeof gone[0]; i++)
        if (fuzz_query_int(&world, gone[i], -1) != 0) fail_msg("still there: %s", gone[i]);
    /* carol's Team messages passed to #DELETED; Team itself lives on */
    assert_int_equal(fuzz_query_int(&world, "SELECT sender_id FROM messages WHERE id = 10", -1),
                     USER_DELETED_ID);
    assert_int_equal(fuzz_query_int(&world, "SELECT count(*) FROM chats WHERE id = 6", -1), 1);

    char sql[256];
    struct {
        const char *action;
        int min;
    } events[] = {{"friend_deleted", 4}, {"chat_deleted", 1}, {"member_deleted", 1}, {"logout", 1}};
    for (size_t i = 0; i < sizeof events / sizeof events[0]; i++) {
        snprintf(sql, sizeof sql, "SELECT count(*) FROM outbox WHERE id > %lld AND action = '%s'",
                 (long long)outbox_before, events[i].action);
        if (fuzz_query_int(&world, sql, -1) < events[i].min)
            fail_msg("fewer than %d %s events", events[i].min, events[i].action);
    }
    /* logout comes last: the user's sockets see everything else first */
    snprintf(sql, sizeof sql, "SELECT action FROM outbox WHERE id > %lld ORDER BY id DESC LIMIT 1",
             (long long)outbox_before);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db_sqlite_handle(world.db), sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "logout");
    sqlite3_finalize(st);
}

int main(void)
{
    fuzz_world_init(&world);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_gate_kinds, reset),
        cmocka_unit_test_setup(test_friendship_facts, reset),
        cmocka_unit_test_setup(test_route_statuses_of_kinds, reset),
        cmocka_unit_test_setup(test_failures_change_nothing, reset),
        cmocka_unit_test_setup(test_ex_member_cannot_recall, reset),
        cmocka_unit_test_setup(test_account_delete_cascade, reset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
