"""Group chats: creation, views, leaving and deleting, invitations, roles,
removal, every chat notification of API.md §5, and one whole session.

Written from API.md (§3 structures and system texts, §4 Chats, §5
notifications); the database is read (stack.sql) only to check what the
API cannot show (what was stored, and that deleted things are gone).
"""

import pytest

from support import (
    DELETED_ID, SYSTEM_ID, UNKNOWN, Watch, actions, add_member, approve, approved_text, barrier,
    basic, basic_of, basics, befriend, befriend_all, by_id, chat_invitations, chat_member_rows,
    chat_of, check_chat_invitation, check_message_basic, check_note, check_system_detailed,
    created_text, decline, expect_chat, fail, invitation_from, invite, invite_to, leave, left_text,
    make_group, mark_read, message_in, messages, private_chat_id, recall, register, relation,
    relations, remove_member, removed_text, say, say_many, send_message, set_admin, set_owner, uid,
    unique_name, unread, utf8_ok, utf8_request,
)


def owned_chats(stack, client):
    return stack.sql("SELECT count(*) FROM chats WHERE owner_id = ?", uid(client))[0][0]


def club(alice, bob, carol):
    """alice owns a group with bob (admin) and carol (plain member)."""
    befriend_all(alice, bob, carol)
    cid = make_group(alice, [bob, carol])["chat_id"]
    set_admin(alice, cid, bob)
    return cid


# =============================================================================
# POST /chat/new
# =============================================================================


def test_create_group(stack, alice, bob, carol):
    befriend_all(alice, bob, carol)
    name = unique_name("grp")
    chat = utf8_ok(alice, "POST", "/chat/new", {"chat_name": name, "chat_members": [uid(bob), uid(carol)]})
    cid = chat["chat_id"]
    expect_chat(chat, cid, name, alice, [alice, bob, carol], admins=())
    text = created_text(name, alice, [alice, bob, carol])
    lm = check_message_basic(chat["last_message"])
    assert lm["message"] == text
    assert lm["chat_id"] == cid
    assert lm["sender"]["id"] == SYSTEM_ID and lm["sender"]["user_name"] == "#SYSTEM", lm
    assert lm["reply_to_id"] is None and lm["deleted"] is False, lm

    # Stored: the chat, three members (none admin), three relations, one message.
    assert stack.sql("SELECT name, owner_id FROM chats WHERE id = ?", cid) == [(name, uid(alice))]
    assert chat_member_rows(stack, cid) == sorted((uid(c), 0) for c in (alice, bob, carol))
    assert stack.sql("SELECT user_id FROM chat_relations WHERE chat_id = ? ORDER BY user_id", cid) == \
        sorted((uid(c),) for c in (alice, bob, carol))
    assert stack.sql("SELECT id, sender_id, content, reply_to_id, recalled FROM messages WHERE chat_id = ?",
                     cid) == [(lm["message_id"], SYSTEM_ID, text, None, 0)]

    # Every member sees the same chat (nothing is viewer-specific yet).
    for c in (alice, bob, carol):
        rel = relation(c, cid)
        assert rel["chat"] == chat, (rel, chat)
        assert rel in relations(c)
        ms = messages(c, cid)
        assert len(ms) == 1, ms
        check_system_detailed(ms[0], cid, text)
        assert basic_of(ms[0]) == lm


def test_create_text_lists_owner_first_then_request_order(alice, bob, carol, dave):
    befriend_all(alice, bob, carol, dave)
    name = unique_name("ord")
    chat = utf8_ok(alice, "POST", "/chat/new",
                   {"chat_name": name, "chat_members": [uid(dave), uid(alice), uid(bob)]})
    expect_chat(chat, chat["chat_id"], name, alice, [alice, bob, dave])
    assert chat["last_message"]["message"] == f"Group {name} created by {alice.user['user_name']} with " \
        f"{alice.user['user_name']}, {dave.user['user_name']}, {bob.user['user_name']}"
    # carol, a friend who was not listed, is not a member.
    fail(carol.get(f"/chat/{chat['chat_id']}"), 400)


def test_create_alone(stack, alice):
    name = unique_name("solo")
    chat = utf8_ok(alice, "POST", "/chat/new", {"chat_name": name, "chat_members": []})
    expect_chat(chat, chat["chat_id"], name, alice, [alice])
    assert chat["last_message"]["message"] == f"Group {name} created by {alice.user['user_name']} with " \
        f"{alice.user['user_name']}"
    assert chat_member_rows(stack, chat["chat_id"]) == [(uid(alice), 0)]


def test_create_owner_listed_is_not_doubled(stack, alice, bob):
    befriend(alice, bob)
    chat = make_group(alice, [alice, bob])
    assert chat_member_rows(stack, chat["chat_id"]) == sorted([(uid(alice), 0), (uid(bob), 0)])


def test_create_name_lengths(stack, alice):
    for name in ("x", "中" * 60, "😀" * 60, "a b" * 20, "é" * 59 + "x", "  padded  ", " "):
        chat = utf8_ok(alice, "POST", "/chat/new", {"chat_name": name, "chat_members": []})
        assert chat["chat_name"] == name, chat
        assert relation(alice, chat["chat_id"])["chat"]["chat_name"] == name
    before = owned_chats(stack, alice)
    for name in ("", "a" * 61, "中" * 61, "😀" * 61):
        fail(utf8_request(alice, "POST", "/chat/new", {"chat_name": name, "chat_members": []}), 400)
    assert owned_chats(stack, alice) == before


def test_create_with_a_non_friend_is_400(stack, alice, bob, carol, dave):
    befriend(alice, bob)
    befriend(alice, dave)
    assert alice.ok("DELETE", f"/friend/{uid(dave)}") is None  # a former friend
    w = Watch(bob, carol)
    before = owned_chats(stack, alice)
    for members in ([uid(carol)], [uid(bob), uid(carol)], [uid(dave)], [UNKNOWN], [SYSTEM_ID],
                    [DELETED_ID], [uid(bob), DELETED_ID]):
        fail(alice.post("/chat/new", {"chat_name": "nope", "chat_members": members}), 400)
    assert owned_chats(stack, alice) == before
    assert w.events() == {uid(bob): [], uid(carol): []}
    w.close()


def _bodies(bob_id):
    return [
        {},
        {"chat_name": "x"},
        {"chat_members": [bob_id]},
        {"chat_name": 5, "chat_members": [bob_id]},
        {"chat_name": None, "chat_members": [bob_id]},
        {"chat_name": ["x"], "chat_members": [bob_id]},
        {"chat_name": True, "chat_members": [bob_id]},
        {"chat_name": "x", "chat_members": bob_id},
        {"chat_name": "x", "chat_members": str(bob_id)},
        {"chat_name": "x", "chat_members": None},
        {"chat_name": "x", "chat_members": {"id": bob_id}},
        {"chat_name": "x", "chat_members": [str(bob_id)]},
        {"chat_name": "x", "chat_members": [True]},
        {"chat_name": "x", "chat_members": [bob_id + 0.5]},
        {"chat_name": "x", "chat_members": [[bob_id]]},
        {"chat_name": "x", "chat_members": [None]},
        [],
        ["x", [bob_id]],
        "x",
        5,
    ]


@pytest.mark.parametrize("case", range(20))
def test_create_invalid_is_400(stack, alice, bob, case):
    befriend(alice, bob)
    body = _bodies(uid(bob))[case]
    before = owned_chats(stack, alice)
    fail(alice.post("/chat/new", body), 400)
    assert owned_chats(stack, alice) == before


def test_create_without_body_is_400(stack, alice):
    before = owned_chats(stack, alice)
    fail(alice.post("/chat/new"), 400)
    assert owned_chats(stack, alice) == before


def test_create_notifications(stack, alice, bob, carol, dave):
    befriend_all(alice, bob, carol, dave)
    w = Watch(alice, bob, carol, dave)
    chat = make_group(alice, [bob, carol])
    cid = chat["chat_id"]
    text = chat["last_message"]["message"]
    ev = w.events()
    for c in (alice, bob, carol):
        e = ev[uid(c)]
        assert actions(e) == ["new_group_chat", "new_message"], e
        assert check_note(e[0], "new_group_chat")["data"] == {"chat_id": cid}
        check_note(e[1], "new_message")
        assert set(e[1]["data"]) == {"message"}
        m = check_system_detailed(e[1]["data"]["message"], cid, text)
        assert basic_of(m) == chat["last_message"]
    assert ev[uid(dave)] == []  # a friend who is not a member hears nothing
    w.close()


def test_chat_routes_need_a_session(stack):
    anon = stack.client()
    for method, path, body in (
        ("POST", "/chat/new", {"chat_name": "x", "chat_members": []}),
        ("GET", "/chat", None),
        ("GET", "/chat/1", None),
        ("DELETE", "/chat/1", None),
        ("POST", "/chat/1/invite", {"user_id": 1}),
        ("GET", "/chat/1/invitation", None),
        ("POST", "/chat/1/invitation/1", None),
        ("DELETE", "/chat/1/invitation/1", None),
        ("GET", "/chat/1/messages", None),
        ("POST", "/chat/1/filter", {"sender": [1]}),
        ("POST", "/chat/1/1/admin", True),
        ("POST", "/chat/1/set_owner", {"chat_owner": 1}),
        ("DELETE", "/chat/1/1", None),
    ):
        assert fail(anon.request(method, path, body), 403) == "Invalid Session", (method, path)


def test_chat_bad_ids_are_unknown_paths(alice):
    for path in ("/chat/0", "/chat/abc", "/chat/-1", "/chat/1/"):
        fail(alice.get(path), 404)
    fail(alice.get("/chat/0/messages"), 404)
    fail(alice.delete("/chat/1/0"), 404)
    fail(alice.get("/chat/9223372036854775808"), 404)  # beyond 63 bits
    fail(alice.get("/chat/9223372036854775807"), 400)  # a well-formed id of no chat
    fail(alice.get("/chat/9223372036854775807/messages"), 404)


# =============================================================================
# GET /chat, GET /chat/<id>
# =============================================================================


def test_get_chat_lists_private_and_group_chats(stack, alice, bob, carol):
    p_ab = befriend(alice, bob)  # bob accepted: he owns the private chat
    p_ac = befriend(alice, carol)
    chat = make_group(alice, [bob])
    gid = chat["chat_id"]

    rels = relations(alice)
    assert {r["chat"]["chat_id"] for r in rels} == {p_ab, p_ac, gid}
    for r in rels:
        assert relation(alice, r["chat"]["chat_id"]) == r
    priv = relation(alice, p_ab)["chat"]
    expect_chat(priv, p_ab, "", bob, [alice, bob])
    assert priv["last_message"]["message"] == f"{bob.user['user_name']} added {alice.user['user_name']} as a friend"
    assert priv["last_message"]["sender"]["id"] == SYSTEM_ID
    assert relation(alice, gid)["chat"] == chat

    assert {r["chat"]["chat_id"] for r in relations(bob)} == {p_ab, gid}
    assert {r["chat"]["chat_id"] for r in relations(carol)} == {p_ac}
    # Not a member, or unknown: 400.
    fail(carol.get(f"/chat/{gid}"), 400)
    fail(carol.get(f"/chat/{p_ab}"), 400)
    fail(alice.get(f"/chat/{UNKNOWN}"), 400)


def test_last_message_skips_recalled_and_deleted(stack, alice, bob, carol):
    befriend_all(alice, bob, carol)
    chat = make_group(alice, [bob, carol])
    cid = chat["chat_id"]
    created = chat["last_message"]
    m1 = say(alice, cid, "first")
    m2 = say(bob, cid, "second")
    for c in (alice, bob, carol):
        assert chat_of(c, cid)["last_message"] == basic_of(message_in(c, cid, m2["message_id"]))
    # bob deletes m2 for himself: he now sees m1, the others still m2.
    recall(bob, m2["message_id"], delete=True)
    assert chat_of(bob, cid)["last_message"] == basic_of(message_in(bob, cid, m1["message_id"]))
    assert chat_of(alice, cid)["last_message"]["message_id"] == m2["message_id"]
    # alice recalls m1: bob falls back to the creation message.
    recall(alice, m1["message_id"])
    assert chat_of(bob, cid)["last_message"] == created
    assert chat_of(carol, cid)["last_message"]["message_id"] == m2["message_id"]
    # bob deletes the creation message too: nothing left for him.
    recall(bob, created["message_id"], delete=True)
    assert chat_of(bob, cid)["last_message"] == ""
    assert [r for r in relations(bob) if r["chat"]["chat_id"] == cid][0]["chat"]["last_message"] == ""
    assert chat_of(alice, cid)["last_message"] == basic_of(message_in(alice, cid, m2["message_id"]))
    # carol recalls nothing, deletes nothing: m2, unrecalled, is hers too.
    assert chat_of(carol, cid)["last_message"]["deleted"] is False


def test_unread_count(stack, alice, bob, carol):
    befriend_all(alice, bob, carol)
    cid = make_group(alice, [bob, carol])["chat_id"]
    for c in (alice, bob, carol):
        mark_read(c, cid)
        assert unread(c, cid) == 0
    say_many(alice, cid, 3)
    assert (unread(alice, cid), unread(bob, cid), unread(carol, cid)) == (0, 3, 3)
    say(bob, cid)  # sending marks the whole chat read for bob
    assert (unread(alice, cid), unread(bob, cid), unread(carol, cid)) == (1, 0, 4)
    mark_read(carol, cid)
    assert (unread(alice, cid), unread(bob, cid), unread(carol, cid)) == (1, 0, 0)
    for c in (alice, bob, carol):
        rel = [r for r in relations(c) if r["chat"]["chat_id"] == cid][0]
        assert rel == relation(c, cid)


# =============================================================================
# DELETE /chat/<id>: delete (owner) or leave (anyone else)
# =============================================================================


def test_delete_private_chat_is_400(stack, alice, bob):
    pid = befriend(alice, bob)
    fail(alice.delete(f"/chat/{pid}"), 400)
    fail(bob.delete(f"/chat/{pid}"), 400)
    assert stack.sql("SELECT count(*) FROM chat_members WHERE chat_id = ?", pid) == [(2,)]
    relation(alice, pid)
    relation(bob, pid)


def test_delete_chat_not_a_member_or_unknown_is_400(stack, alice, bob, carol, dave):
    befriend_all(alice, bob, carol)
    cid = make_group(alice, [bob])["chat_id"]
    fail(carol.delete(f"/chat/{cid}"), 400)
    fail(dave.delete(f"/chat/{cid}"), 400)
    fail(alice.delete(f"/chat/{UNKNOWN}"), 400)
    assert chat_member_rows(stack, cid) == sorted([(uid(alice), 0), (uid(bob), 0)])


def test_owner_deletes_the_group(stack, alice, bob, carol, dave, erin):
    befriend_all(alice, bob, carol)
    befriend(bob, dave)
    chat = make_group(alice, [bob, carol])
    cid, name = chat["chat_id"], chat["chat_name"]
    m1 = say(bob, cid, "hello")
    m2 = say(carol, cid, "reply", reply_to=m1["message_id"])
    recall(bob, m1["message_id"], delete=True)
    invite_to(bob, cid, dave)
    msg_ids = [r[0] for r in stack.sql("SELECT id FROM messages WHERE chat_id = ?", cid)]
    assert len(msg_ids) == 3
    assert stack.sql("SELECT count(*) FROM message_deletions WHERE user_id = ?", uid(bob)) == [(1,)]
    assert stack.sql("SELECT count(*) FROM chat_invitations WHERE chat_id = ?", cid) == [(1,)]
    last = basic_of(message_in(alice, cid, m2["message_id"]))
    assert chat_of(bob, cid)["last_message"] == last

    w = Watch(alice, bob, carol, dave, erin)
    leave(alice, cid)
    ev = w.events()
    for c in (alice, bob, carol):
        e = ev[uid(c)]
        assert actions(e) == ["chat_deleted"], e
        check_note(e[0], "chat_deleted")
        assert set(e[0]["data"]) == {"chat"}
        expect_chat(e[0]["data"]["chat"], cid, name, alice, [alice, bob, carol], last_message=last)
    assert ev[uid(dave)] == [] and ev[uid(erin)] == []
    w.close()

    # The chat, its members, relations, messages, deletions and invitations are gone.
    for q in ("SELECT count(*) FROM chats WHERE id = ?",
              "SELECT count(*) FROM chat_members WHERE chat_id = ?",
              "SELECT count(*) FROM chat_relations WHERE chat_id = ?",
              "SELECT count(*) FROM messages WHERE chat_id = ?",
              "SELECT count(*) FROM chat_invitations WHERE chat_id = ?"):
        assert stack.sql(q, cid) == [(0,)], q
    marks = ",".join("?" * len(msg_ids))
    assert stack.sql(f"SELECT count(*) FROM message_deletions WHERE message_id IN ({marks})", *msg_ids) == [(0,)]
    for c in (alice, bob, carol):
        fail(c.get(f"/chat/{cid}"), 400)
        fail(c.get(f"/chat/{cid}/messages"), 404)
        assert cid not in [r["chat"]["chat_id"] for r in relations(c)]
    fail(alice.delete(f"/chat/{cid}"), 400)
    # bob and dave are still friends.
    bob.ok("GET", f"/friend/{uid(dave)}")


def test_member_leaves(stack, alice, bob, carol, dave):
    befriend_all(alice, bob, carol, dave)
    chat = make_group(alice, [bob, carol])
    cid = chat["chat_id"]
    w = Watch(alice, bob, carol, dave)
    leave(carol, cid)
    ev = w.events()
    text = left_text(carol)
    for c in (alice, bob):
        e = ev[uid(c)]
        assert actions(e) == ["member_deleted", "new_message"], e
        assert check_note(e[0], "member_deleted")["data"] == {"chat_id": cid, "user_id": uid(carol)}
        check_system_detailed(check_note(e[1], "new_message")["data"]["message"], cid, text)
    e = ev[uid(carol)]
    assert actions(e) == ["member_deleted"], e  # the leaver too, but not the message
    assert check_note(e[0], "member_deleted")["data"] == {"chat_id": cid, "user_id": uid(carol)}
    assert ev[uid(dave)] == []
    w.close()

    expect_chat(chat_of(alice, cid), cid, chat["chat_name"], alice, [alice, bob])
    check_system_detailed(messages(bob, cid)[0], cid, text)
    assert chat_member_rows(stack, cid) == sorted([(uid(alice), 0), (uid(bob), 0)])
    fail(carol.get(f"/chat/{cid}"), 400)
    fail(carol.get(f"/chat/{cid}/messages"), 403)
    assert cid not in [r["chat"]["chat_id"] for r in relations(carol)]
    fail(carol.delete(f"/chat/{cid}"), 400)  # not a member any more


def test_admin_leaves_losing_admin_rights_first(stack, alice, bob, carol, dave):
    cid = club(alice, bob, carol)
    befriend(alice, dave)
    w = Watch(alice, bob, carol, dave)
    leave(bob, cid)
    ev = w.events()
    for c in (alice, carol):
        e = ev[uid(c)]
        assert actions(e) == ["admin_state_change", "member_deleted", "new_message"], e
        assert check_note(e[0], "admin_state_change")["data"] == {
            "chat_id": cid, "user_id": uid(bob), "is_admin": False}
        assert check_note(e[1], "member_deleted")["data"] == {"chat_id": cid, "user_id": uid(bob)}
        check_system_detailed(e[2]["data"]["message"], cid, left_text(bob))
    e = ev[uid(bob)]
    assert actions(e) == ["admin_state_change", "member_deleted"], e
    assert e[0]["data"] == {"chat_id": cid, "user_id": uid(bob), "is_admin": False}
    assert e[1]["data"] == {"chat_id": cid, "user_id": uid(bob)}
    assert ev[uid(dave)] == []
    w.close()
    c = chat_of(alice, cid)
    assert c["chat_admins"] == [] and by_id(c["chat_members"]) == basics(alice, carol)
    assert chat_member_rows(stack, cid) == sorted([(uid(alice), 0), (uid(carol), 0)])


# =============================================================================
# Invitations
# =============================================================================


def test_invite_notifies_owner_and_admins_only(stack, alice, bob, carol, dave, erin):
    cid = club(alice, bob, carol)
    befriend(carol, erin)
    befriend(alice, dave)
    assert chat_invitations(alice, cid) == []
    w = Watch(alice, bob, carol, dave, erin)
    invite_to(carol, cid, erin)
    ev = w.events()
    seen = []
    for c in (alice, bob):
        e = ev[uid(c)]
        assert actions(e) == ["chat_invitation"], e
        check_note(e[0], "chat_invitation")
        assert set(e[0]["data"]) == {"invitation"}
        inv = check_chat_invitation(e[0]["data"]["invitation"])
        assert inv["chat_id"] == cid
        assert inv["user"] == basic(erin.user) and inv["invited_by"] == basic(carol.user), inv
        seen.append(inv)
    assert seen[0] == seen[1]
    # Not the inviter (a plain member), not the invitee, not an outsider.
    assert ev[uid(carol)] == [] and ev[uid(erin)] == [] and ev[uid(dave)] == []
    w.close()
    assert chat_invitations(alice, cid) == [seen[0]]
    assert chat_invitations(bob, cid) == [seen[0]]
    assert stack.sql("SELECT id, chat_id, user_id, invited_by FROM chat_invitations WHERE chat_id = ?", cid) == \
        [(seen[0]["invitation_id"], cid, uid(erin), uid(carol))]
    # An invitation does not make a member.
    fail(erin.get(f"/chat/{cid}"), 400)
    assert uid(erin) not in [u["id"] for u in chat_of(alice, cid)["chat_members"]]


def test_invite_by_the_owner_notifies_the_owner_too(alice, bob, carol, erin):
    cid = club(alice, bob, carol)
    befriend(alice, erin)
    w = Watch(alice, bob, carol, erin)
    invite_to(alice, cid, erin)
    ev = w.events()
    assert actions(ev[uid(alice)]) == ["chat_invitation"]
    assert actions(ev[uid(bob)]) == ["chat_invitation"]
    assert ev[uid(carol)] == [] and ev[uid(erin)] == []
    inv = ev[uid(alice)][0]["data"]["invitation"]
    assert inv["invited_by"] == basic(alice.user) and inv["user"] == basic(erin.user)
    w.close()


def test_invitation_list_access(alice, bob, carol, dave):
    cid = club(alice, bob, carol)
    assert chat_invitations(alice, cid) == []
    assert chat_invitations(bob, cid) == []  # an admin may
    fail(carol.get(f"/chat/{cid}/invitation"), 403)  # a plain member may not
    fail(dave.get(f"/chat/{cid}/invitation"), 403)  # nor an outsider
    fail(alice.get(f"/chat/{UNKNOWN}/invitation"), 400)


def test_invite_replaces_the_same_inviters_invitation(stack, alice, bob, carol, erin):
    cid = club(alice, bob, carol)
    befriend(carol, erin)
    befriend(alice, erin)
    invite_to(carol, cid, erin)
    first = chat_invitations(alice, cid)
    assert len(first) == 1
    invite_to(carol, cid, erin)
    again = chat_invitations(alice, cid)
    assert len(again) == 1, again
    assert again[0]["user"] == basic(erin.user) and again[0]["invited_by"] == basic(carol.user)
    assert stack.sql("SELECT count(*) FROM chat_invitations WHERE chat_id = ? AND user_id = ?",
                     cid, uid(erin)) == [(1,)]
    # Another inviter makes a second invitation of the same user.
    invite_to(alice, cid, erin)
    both = chat_invitations(bob, cid)
    assert len(both) == 2, both
    assert sorted(i["invited_by"]["id"] for i in both) == sorted([uid(alice), uid(carol)])
    assert all(i["user"] == basic(erin.user) for i in both)
    assert len({i["invitation_id"] for i in both}) == 2


def test_invite_errors(stack, alice, bob, carol, dave, erin):
    cid = club(alice, bob, carol)
    befriend(carol, erin)
    befriend(erin, dave)
    pid = private_chat_id(stack, alice, bob)
    path = f"/chat/{cid}/invite"
    fail(carol.post(path, {"user_id": uid(dave)}), 400)  # not carol's friend
    fail(carol.post(path, {"user_id": uid(carol)}), 400)  # yourself
    fail(carol.post(path, {"user_id": UNKNOWN}), 400)  # nobody
    fail(carol.post(path, {"user_id": SYSTEM_ID}), 400)
    fail(carol.post(f"/chat/{UNKNOWN}/invite", {"user_id": uid(erin)}), 400)  # chat unknown
    fail(alice.post(f"/chat/{pid}/invite", {"user_id": uid(carol)}), 400)  # private chat
    fail(erin.post(path, {"user_id": uid(dave)}), 403)  # caller not a member
    fail(alice.post(path, {"user_id": uid(bob)}), 400)  # already a member
    fail(carol.post(path, {"user_id": uid(alice)}), 400)  # already a member (the owner)
    for body in ({}, {"user_id": str(uid(erin))}, {"user_id": True}, {"user_id": None},
                 {"user_id": [uid(erin)]}, [uid(erin)], uid(erin)):
        fail(carol.post(path, body), 400)
    fail(carol.post(path), 400)
    assert chat_invitations(alice, cid) == []
    assert stack.sql("SELECT count(*) FROM chat_invitations WHERE chat_id IN (?, ?)", cid, pid) == [(0,)]


def test_approve(stack, alice, bob, carol, dave, erin):
    cid = club(alice, bob, carol)
    befriend(carol, erin)
    befriend(alice, dave)
    say_many(alice, cid, 3)
    invite_to(carol, cid, erin)
    w = Watch(alice, bob, carol, dave, erin)
    approve(alice, cid, erin)
    ev = w.events()
    text = approved_text(alice, erin, carol)
    for c in (alice, bob, carol):
        e = ev[uid(c)]
        assert actions(e) == ["member_added", "new_message"], e
        assert check_note(e[0], "member_added")["data"] == {"chat_id": cid, "user_id": uid(erin)}
        check_system_detailed(check_note(e[1], "new_message")["data"]["message"], cid, text)
    e = ev[uid(erin)]
    assert sorted(actions(e)) == ["member_added", "new_group_chat", "new_message"], e
    assert actions(e).index("new_group_chat") < actions(e).index("new_message"), e
    assert actions(e).index("member_added") < actions(e).index("new_message"), e
    by = {x["action"]: x for x in e}
    assert check_note(by["new_group_chat"], "new_group_chat")["data"] == {"chat_id": cid}
    assert check_note(by["member_added"], "member_added")["data"] == {"chat_id": cid, "user_id": uid(erin)}
    check_system_detailed(check_note(by["new_message"], "new_message")["data"]["message"], cid, text)
    assert ev[uid(dave)] == []
    w.close()

    chat = chat_of(erin, cid)
    expect_chat(chat, cid, chat["chat_name"], alice, [alice, bob, carol, erin], admins=[bob])
    assert chat["last_message"]["message"] == text
    assert chat_invitations(alice, cid) == []
    assert stack.sql("SELECT count(*) FROM chat_invitations WHERE chat_id = ?", cid) == [(0,)]
    assert chat_member_rows(stack, cid) == sorted(
        [(uid(alice), 0), (uid(bob), 1), (uid(carol), 0), (uid(erin), 0)])
    assert stack.sql("SELECT count(*) FROM chat_relations WHERE chat_id = ? AND user_id = ?",
                     cid, uid(erin)) == [(1,)]


def test_new_member_starts_with_the_history_read(alice, bob, carol, erin):
    cid = club(alice, bob, carol)
    befriend(alice, erin)
    say_many(alice, cid, 5)
    say_many(bob, cid, 2)
    add_member(alice, cid, erin)
    start = unread(erin, cid)
    # Everything sent before joining counts as read (the approval message
    # itself is posted as erin joins, so 0 or 1).
    assert start in (0, 1), start
    say_many(alice, cid, 2)
    assert unread(erin, cid) == start + 2
    mark_read(erin, cid)
    assert unread(erin, cid) == 0


def test_approve_by_an_admin(alice, bob, carol, erin):
    cid = club(alice, bob, carol)
    befriend(carol, erin)
    invite_to(carol, cid, erin)
    approve(bob, cid, erin)
    ms = messages(erin, cid)
    check_system_detailed(ms[0], cid, approved_text(bob, erin, carol))
    assert uid(erin) in [u["id"] for u in chat_of(alice, cid)["chat_members"]]


def test_approve_clears_every_invitation_of_the_user(stack, alice, bob, carol, dave, erin):
    cid = club(alice, bob, carol)
    befriend(carol, erin)
    befriend(bob, erin)
    befriend(alice, dave)
    invite_to(carol, cid, erin)
    invite_to(bob, cid, erin)
    invite_to(alice, cid, dave)
    assert len(chat_invitations(alice, cid)) == 3
    approve(alice, cid, erin)
    left = chat_invitations(alice, cid)
    assert [(i["user"]["id"], i["invited_by"]["id"]) for i in left] == [(uid(dave), uid(alice))]
    assert stack.sql("SELECT count(*) FROM chat_invitations WHERE chat_id = ? AND user_id = ?",
                     cid, uid(erin)) == [(0,)]
    assert uid(erin) in [u["id"] for u in chat_of(alice, cid)["chat_members"]]
    fail(alice.post(f"/chat/{cid}/invitation/{uid(erin)}"), 400)  # nothing pending any more


def test_decline_removes_every_invitation_of_the_user(stack, alice, bob, carol, dave, erin):
    cid = club(alice, bob, carol)
    befriend(carol, erin)
    befriend(bob, erin)
    befriend(alice, dave)
    invite_to(carol, cid, erin)
    invite_to(bob, cid, erin)
    invite_to(alice, cid, dave)
    decline(bob, cid, erin)
    left = chat_invitations(alice, cid)
    assert [(i["user"]["id"], i["invited_by"]["id"]) for i in left] == [(uid(dave), uid(alice))]
    assert stack.sql("SELECT count(*) FROM chat_invitations WHERE chat_id = ? AND user_id = ?",
                     cid, uid(erin)) == [(0,)]
    fail(erin.get(f"/chat/{cid}"), 400)
    fail(alice.post(f"/chat/{cid}/invitation/{uid(erin)}"), 400)
    fail(alice.delete(f"/chat/{cid}/invitation/{uid(erin)}"), 400)
    # A new invitation after a decline works.
    invite_to(carol, cid, erin)
    approve(alice, cid, erin)
    relation(erin, cid)


def test_approve_and_decline_errors(stack, alice, bob, carol, dave, erin):
    cid = club(alice, bob, carol)
    befriend(carol, erin)
    befriend(alice, dave)
    invite_to(carol, cid, erin)
    pending = chat_invitations(alice, cid)
    pid = private_chat_id(stack, alice, bob)
    for method in ("POST", "DELETE"):
        fail(alice.request(method, f"/chat/{UNKNOWN}/invitation/{uid(erin)}"), 400)  # chat unknown
        fail(carol.request(method, f"/chat/{cid}/invitation/{uid(erin)}"), 403)  # plain member
        fail(dave.request(method, f"/chat/{cid}/invitation/{uid(erin)}"), 403)  # outsider
        fail(erin.request(method, f"/chat/{cid}/invitation/{uid(erin)}"), 403)  # the invitee
        fail(alice.request(method, f"/chat/{cid}/invitation/{uid(dave)}"), 400)  # no invitation
        fail(alice.request(method, f"/chat/{cid}/invitation/{UNKNOWN}"), 400)
        fail(alice.request(method, f"/chat/{pid}/invitation/{uid(carol)}"), 400)  # private chat
    assert chat_invitations(alice, cid) == pending
    fail(erin.get(f"/chat/{cid}"), 400)


def test_former_members_and_admins_lose_their_powers(stack, alice, bob, carol, dave, erin):
    cid = club(alice, bob, carol)
    befriend(bob, dave)
    befriend(carol, dave)
    befriend(alice, erin)
    invite_to(alice, cid, erin)
    remove_member(alice, cid, bob)  # the admin is removed
    leave(carol, cid)  # the plain member leaves
    fail(bob.get(f"/chat/{cid}/invitation"), 403)
    fail(bob.post(f"/chat/{cid}/invitation/{uid(erin)}"), 403)
    fail(bob.delete(f"/chat/{cid}/invitation/{uid(erin)}"), 403)
    fail(bob.post(f"/chat/{cid}/invite", {"user_id": uid(dave)}), 403)
    fail(carol.post(f"/chat/{cid}/invite", {"user_id": uid(dave)}), 403)
    fail(bob.delete(f"/chat/{cid}/{uid(alice)}"), 403)
    assert [(i["user"]["id"], i["invited_by"]["id"]) for i in chat_invitations(alice, cid)] == \
        [(uid(erin), uid(alice))]
    assert chat_member_rows(stack, cid) == [(uid(alice), 0)]


def test_race_two_admins_approve_the_same_user(stack, alice, bob, carol, erin):
    """Two approvals at once: exactly one wins; one membership, one message."""
    import threading

    cid = club(alice, bob, carol)
    befriend(carol, erin)
    prefixes = tuple(f"{x.user['user_name']} approved {erin.user['user_name']} " for x in (alice, bob))
    for rnd in range(1, 4):
        invite_to(carol, cid, erin)
        results = []
        go = threading.Barrier(2)

        def run(c):
            go.wait()
            results.append(c.post(f"/chat/{cid}/invitation/{uid(erin)}").status_code)

        ts = [threading.Thread(target=run, args=(c,)) for c in (alice, bob)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        assert sorted(results) == [200, 400], results
        assert stack.sql("SELECT count(*) FROM chat_members WHERE chat_id = ? AND user_id = ?",
                         cid, uid(erin)) == [(1,)]
        approved = [m for m in messages(alice, cid) if m["message"].startswith(prefixes)]
        assert len(approved) == rnd, approved
        assert chat_invitations(alice, cid) == []
        leave(erin, cid)


# =============================================================================
# Roles: admin, owner
# =============================================================================


def test_set_and_unset_admin(stack, alice, bob, carol, dave):
    befriend_all(alice, bob, carol, dave)
    cid = make_group(alice, [bob, carol])["chat_id"]
    w = Watch(alice, bob, carol, dave)
    for state in (True, False):
        set_admin(alice, cid, bob, state)
        ev = w.events()
        for c in (alice, bob, carol):
            e = ev[uid(c)]
            assert actions(e) == ["admin_state_change"], e
            assert check_note(e[0], "admin_state_change")["data"] == {
                "chat_id": cid, "user_id": uid(bob), "is_admin": state}
        assert ev[uid(dave)] == []
        chat = chat_of(carol, cid)
        assert chat["chat_admins"] == ([basic(bob.user)] if state else [])
        assert chat_member_rows(stack, cid) == sorted(
            [(uid(alice), 0), (uid(bob), int(state)), (uid(carol), 0)])
    w.close()


def test_admin_errors(stack, alice, bob, carol, dave):
    cid = club(alice, bob, carol)
    befriend(alice, dave)
    pid = private_chat_id(stack, alice, bob)
    path = f"/chat/{cid}/{uid(carol)}/admin"
    w = Watch(alice, bob, carol)
    for body in (1, 0, "true", "false", {}, [True], {"is_admin": True}, None):
        fail(alice.post(path, body), 400)
    fail(alice.post(path), 400)  # empty body: null
    fail(alice.post(path, raw="null", headers={"Content-Type": "application/json"}), 400)
    fail(alice.post(f"/chat/{UNKNOWN}/{uid(carol)}/admin", True), 400)  # chat unknown
    fail(alice.post(f"/chat/{pid}/{uid(bob)}/admin", True), 400)  # private
    fail(bob.post(path, True), 403)  # an admin is not the owner
    fail(carol.post(path, True), 403)  # herself
    fail(dave.post(path, True), 403)  # an outsider
    fail(alice.post(f"/chat/{cid}/{uid(dave)}/admin", True), 400)  # not a member
    fail(alice.post(f"/chat/{cid}/{UNKNOWN}/admin", True), 400)
    fail(alice.post(f"/chat/{cid}/{uid(alice)}/admin", True), 400)  # the owner
    fail(alice.post(f"/chat/{cid}/{uid(alice)}/admin", False), 400)
    fail(alice.post(path, False), 400)  # already not an admin
    fail(alice.post(f"/chat/{cid}/{uid(bob)}/admin", True), 400)  # already an admin
    assert chat_member_rows(stack, cid) == sorted([(uid(alice), 0), (uid(bob), 1), (uid(carol), 0)])
    assert w.events() == {uid(alice): [], uid(bob): [], uid(carol): []}
    w.close()


def test_set_owner(stack, alice, bob, carol, dave):
    cid = club(alice, bob, carol)
    befriend(alice, dave)
    w = Watch(alice, bob, carol, dave)
    set_owner(alice, cid, bob)  # bob was an admin
    ev = w.events()
    for c in (alice, bob, carol):
        e = ev[uid(c)]
        owner = [x for x in e if x["action"] == "owner_state_change"]
        assert len(owner) == 1, e
        assert check_note(owner[0], "owner_state_change")["data"] == {"chat_id": cid, "owner_id": uid(bob)}
        # Nothing else but (optionally) the matching admin changes.
        for x in e:
            if x["action"] != "owner_state_change":
                assert x["action"] == "admin_state_change", e
                assert (x["data"]["user_id"], x["data"]["is_admin"]) in (
                    (uid(alice), True), (uid(bob), False)), e
                assert x["data"]["chat_id"] == cid
    assert ev[uid(dave)] == []
    chat = chat_of(carol, cid)
    expect_chat(chat, cid, chat["chat_name"], bob, [alice, bob, carol], admins=[alice])
    assert stack.sql("SELECT owner_id FROM chats WHERE id = ?", cid) == [(uid(bob),)]
    assert chat_member_rows(stack, cid) == sorted([(uid(alice), 1), (uid(bob), 0), (uid(carol), 0)])

    # The powers moved: the old owner is an admin now, the new one is owner.
    fail(alice.post(f"/chat/{cid}/{uid(carol)}/admin", True), 403)
    fail(alice.post(f"/chat/{cid}/set_owner", {"chat_owner": uid(carol)}), 403)
    fail(bob.delete(f"/chat/{cid}/{uid(bob)}"), 403)  # the owner cannot be removed
    set_owner(bob, cid, carol)  # carol was a plain member
    chat = chat_of(alice, cid)
    expect_chat(chat, cid, chat["chat_name"], carol, [alice, bob, carol], admins=[alice, bob])
    assert chat_member_rows(stack, cid) == sorted([(uid(alice), 1), (uid(bob), 1), (uid(carol), 0)])
    w.close()


def test_set_owner_errors(stack, alice, bob, carol, dave):
    cid = club(alice, bob, carol)
    befriend(alice, dave)
    pid = private_chat_id(stack, alice, bob)
    path = f"/chat/{cid}/set_owner"
    fail(alice.post(f"/chat/{UNKNOWN}/set_owner", {"chat_owner": uid(bob)}), 400)
    fail(alice.post(f"/chat/{pid}/set_owner", {"chat_owner": uid(bob)}), 400)
    fail(bob.post(path, {"chat_owner": uid(carol)}), 403)  # an admin
    fail(carol.post(path, {"chat_owner": uid(carol)}), 403)  # a plain member
    fail(dave.post(path, {"chat_owner": uid(carol)}), 403)  # an outsider
    fail(alice.post(path, {"chat_owner": uid(dave)}), 400)  # not a member
    fail(alice.post(path, {"chat_owner": UNKNOWN}), 400)
    fail(alice.post(path, {"chat_owner": uid(alice)}), 400)  # already owner
    for body in ({}, {"chat_owner": str(uid(bob))}, {"chat_owner": True}, {"chat_owner": None},
                 {"chat_owner": [uid(bob)]}, [uid(bob)], uid(bob)):
        fail(alice.post(path, body), 400)
    fail(alice.post(path), 400)
    assert stack.sql("SELECT owner_id FROM chats WHERE id = ?", cid) == [(uid(alice),)]
    assert chat_member_rows(stack, cid) == sorted([(uid(alice), 0), (uid(bob), 1), (uid(carol), 0)])


# =============================================================================
# DELETE /chat/<id>/<member_id>: remove a member
# =============================================================================


def test_remove_member(stack, alice, bob, carol, dave):
    befriend_all(alice, bob, carol, dave)
    chat = make_group(alice, [bob, carol])
    cid = chat["chat_id"]
    w = Watch(alice, bob, carol, dave)
    remove_member(alice, cid, carol)
    ev = w.events()
    text = removed_text(alice, carol)
    for c in (alice, bob):
        e = ev[uid(c)]
        assert actions(e) == ["member_deleted", "new_message"], e
        assert check_note(e[0], "member_deleted")["data"] == {"chat_id": cid, "user_id": uid(carol)}
        check_system_detailed(check_note(e[1], "new_message")["data"]["message"], cid, text)
    e = ev[uid(carol)]
    assert actions(e) == ["member_deleted"], e
    assert check_note(e[0], "member_deleted")["data"] == {"chat_id": cid, "user_id": uid(carol)}
    assert ev[uid(dave)] == []
    w.close()
    expect_chat(chat_of(bob, cid), cid, chat["chat_name"], alice, [alice, bob])
    assert chat_member_rows(stack, cid) == sorted([(uid(alice), 0), (uid(bob), 0)])
    fail(carol.get(f"/chat/{cid}"), 400)
    fail(carol.get(f"/chat/{cid}/messages"), 403)
    fail(alice.delete(f"/chat/{cid}/{uid(carol)}"), 400)  # not a member any more


def test_admin_removes_a_plain_member(stack, alice, bob, carol):
    cid = club(alice, bob, carol)
    remove_member(bob, cid, carol)
    check_system_detailed(messages(alice, cid)[0], cid, removed_text(bob, carol))
    assert chat_member_rows(stack, cid) == sorted([(uid(alice), 0), (uid(bob), 1)])


def test_owner_removes_an_admin(stack, alice, bob, carol):
    cid = club(alice, bob, carol)
    remove_member(alice, cid, bob)
    chat = chat_of(carol, cid)
    expect_chat(chat, cid, chat["chat_name"], alice, [alice, carol], admins=[])
    check_system_detailed(messages(alice, cid)[0], cid, removed_text(alice, bob))
    assert chat_member_rows(stack, cid) == sorted([(uid(alice), 0), (uid(carol), 0)])
    fail(bob.get(f"/chat/{cid}"), 400)


def test_remove_errors(stack, alice, bob, carol, dave, erin):
    befriend_all(alice, bob, carol, dave, erin)
    cid = make_group(alice, [bob, carol, erin])["chat_id"]
    set_admin(alice, cid, bob)
    set_admin(alice, cid, erin)
    pid = private_chat_id(stack, alice, bob)
    rows = chat_member_rows(stack, cid)
    fail(alice.delete(f"/chat/{UNKNOWN}/{uid(carol)}"), 400)  # chat unknown
    fail(alice.delete(f"/chat/{pid}/{uid(bob)}"), 400)  # private
    fail(carol.delete(f"/chat/{cid}/{uid(carol)}"), 403)  # neither owner nor admin
    fail(carol.delete(f"/chat/{cid}/{uid(bob)}"), 403)
    fail(dave.delete(f"/chat/{cid}/{uid(carol)}"), 403)  # an outsider
    fail(alice.delete(f"/chat/{cid}/{uid(dave)}"), 400)  # not a member
    fail(bob.delete(f"/chat/{cid}/{uid(dave)}"), 400)
    fail(alice.delete(f"/chat/{cid}/{UNKNOWN}"), 400)
    fail(alice.delete(f"/chat/{cid}/{uid(alice)}"), 403)  # the owner
    fail(bob.delete(f"/chat/{cid}/{uid(alice)}"), 403)
    fail(bob.delete(f"/chat/{cid}/{uid(erin)}"), 403)  # an admin, by a non-owner
    fail(bob.delete(f"/chat/{cid}/{uid(bob)}"), 403)
    assert chat_member_rows(stack, cid) == rows


# =============================================================================
# Every chat notification of API.md §5, with an outsider listening
# =============================================================================


def test_every_chat_notification_reaches_exactly_its_recipients(stack, alice, bob, carol, dave, erin):
    """One group, four users with sockets (dave never a member), erin joins
    later: each row of the §5 table for chats, who gets it and who not."""
    befriend_all(alice, bob, carol, erin)
    befriend(alice, dave)
    befriend(carol, erin)
    w = Watch(alice, bob, carol, dave, erin)
    A, B, C, D, E = (uid(x) for x in (alice, bob, carol, dave, erin))

    def check(expected):
        """expected: {user id: [actions]}; everyone else watched: []."""
        ev = w.events()
        for u, evs in ev.items():
            assert actions(evs) == expected.get(u, []), (u, evs)
            for e in evs:
                check_note(e, e["action"])
        return ev

    # new_group_chat + new_message: the members.
    cid = make_group(alice, [bob, carol])["chat_id"]
    check({A: ["new_group_chat", "new_message"], B: ["new_group_chat", "new_message"],
           C: ["new_group_chat", "new_message"]})

    # new_message + messages_read (send_message): the members.
    m = say(bob, cid, "hi all")
    ev = check({A: ["new_message", "messages_read"], B: ["new_message", "messages_read"],
                C: ["new_message", "messages_read"]})
    assert ev[A][1]["data"] == {"chat_id": cid, "user_id": B}

    # messages_read: the members.
    mark_read(carol, cid)
    ev = check({A: ["messages_read"], B: ["messages_read"], C: ["messages_read"]})
    assert ev[B][0]["data"] == {"chat_id": cid, "user_id": C}

    # message_deleted: the deleting user only.
    recall(carol, m["message_id"], delete=True)
    ev = check({C: ["message_deleted"]})
    assert ev[C][0]["data"] == {"message_id": m["message_id"]}

    # message_recalled: the members.
    recall(bob, m["message_id"])
    ev = check({A: ["message_recalled"], B: ["message_recalled"], C: ["message_recalled"]})
    assert ev[A][0]["data"] == {"message_id": m["message_id"]}

    # admin_state_change: the members.
    set_admin(alice, cid, bob)
    ev = check({A: ["admin_state_change"], B: ["admin_state_change"], C: ["admin_state_change"]})
    assert ev[C][0]["data"] == {"chat_id": cid, "user_id": B, "is_admin": True}

    # chat_invitation: owner and admins (not the inviting plain member, not the invitee).
    invite_to(carol, cid, erin)
    ev = check({A: ["chat_invitation"], B: ["chat_invitation"]})
    assert ev[A][0]["data"]["invitation"]["user"]["id"] == E

    # member_added (+ new_group_chat for the new one, + new_message): members incl. the new one.
    approve(bob, cid, erin)
    ev = w.events()
    for u in (A, B, C):
        assert actions(ev[u]) == ["member_added", "new_message"], ev[u]
        assert ev[u][0]["data"] == {"chat_id": cid, "user_id": E}
    assert sorted(actions(ev[E])) == ["member_added", "new_group_chat", "new_message"], ev[E]
    assert ev[D] == []

    # owner_state_change: the members (now including erin).
    set_owner(alice, cid, carol)
    ev = w.events()
    for u in (A, B, C, E):
        owner = [x for x in ev[u] if x["action"] == "owner_state_change"]
        assert [x["data"] for x in owner] == [{"chat_id": cid, "owner_id": C}], ev[u]
        assert set(actions(ev[u])) <= {"owner_state_change", "admin_state_change"}, ev[u]
    assert ev[D] == []

    # member_deleted (removal): the members and the removed one; the message: the rest.
    remove_member(carol, cid, erin)
    ev = check({A: ["member_deleted", "new_message"], B: ["member_deleted", "new_message"],
                C: ["member_deleted", "new_message"], E: ["member_deleted"]})
    assert ev[E][0]["data"] == {"chat_id": cid, "user_id": E}

    # chat_deleted: the members of the deleted group.
    leave(carol, cid)  # carol owns it now: this deletes the group
    ev = check({A: ["chat_deleted"], B: ["chat_deleted"], C: ["chat_deleted"]})
    assert ev[A][0]["data"]["chat"]["chat_id"] == cid
    assert ev[A][0]["data"]["chat"]["chat_owner"]["id"] == C
    w.close()


# =============================================================================
# A whole session, as documented
# =============================================================================


def test_full_session_as_documented(stack):
    """Register, befriend, create a group, invite, approve, chat, recall,
    read, leave, delete the account: the flow API.md describes, checked at
    every step through the API, the sockets and the database."""
    alice, bob, carol, dave = (register(stack) for _ in range(4))

    # Friends: alice invites bob and carol; they accept. bob befriends dave.
    for other in (bob, carol):
        invite(alice, other, comment="hi")
        inv = invitation_from(other, alice)
        other.ok("POST", f"/friend/invitation/{inv['id']}")
    invite(bob, dave)
    dave.ok("POST", f"/friend/invitation/{invitation_from(dave, bob)['id']}")

    sa, sb, sc, sd = alice.socket(), bob.socket(), carol.socket(), dave.socket()
    for c, s in ((alice, sa), (bob, sb), (carol, sc), (dave, sd)):
        barrier(c, s)

    # alice creates the group with bob and carol.
    name = unique_name("club")
    chat = utf8_ok(alice, "POST", "/chat/new", {"chat_name": name, "chat_members": [uid(bob), uid(carol)]})
    cid = chat["chat_id"]
    assert chat["last_message"]["message"] == created_text(name, alice, [alice, bob, carol])
    for c, s in ((alice, sa), (bob, sb), (carol, sc)):
        assert s.expect("new_group_chat")["data"] == {"chat_id": cid}
        assert s.expect("new_message")["data"]["message"]["message"] == chat["last_message"]["message"]

    # bob invites dave; alice (owner) sees the invitation and approves it.
    invite_to(bob, cid, dave)
    inv = sa.expect("chat_invitation")["data"]["invitation"]
    assert inv["user"] == basic(dave.user) and inv["invited_by"] == basic(bob.user)
    assert chat_invitations(alice, cid) == [inv]
    approve(alice, cid, dave)
    assert sorted(actions(barrier(dave, sd))) == ["member_added", "new_group_chat", "new_message"]
    expect_chat(chat_of(dave, cid), cid, name, alice, [alice, bob, carol, dave])
    assert messages(dave, cid)[0]["message"] == approved_text(alice, dave, bob)
    for c, s in ((alice, sa), (bob, sb), (carol, sc), (dave, sd)):
        barrier(c, s)

    # Chat: bob writes, dave replies, alice writes and recalls.
    rid, _, nm = send_message(sb, bob, cid, "hello everyone")
    assert nm["request_id"] == rid
    m1 = nm["data"]["message"]
    _, _, nm = send_message(sd, dave, cid, "hi bob", reply_to=m1["message_id"])
    m2 = nm["data"]["message"]
    assert m2["reply_to_id"] == m1["message_id"] and m2["reply_to"]["message"] == "hello everyone"
    _, _, nm = send_message(sa, alice, cid, "oops")
    m3 = nm["data"]["message"]
    recall(alice, m3["message_id"], sock=sa)
    r3 = message_in(carol, cid, m3["message_id"])
    assert (r3["message"], r3["sender"]["id"], r3["deleted"]) == ("Message recalled", DELETED_ID, True)
    assert message_in(bob, cid, m1["message_id"])["replied_by"] == [basic_of(message_in(bob, cid, m2["message_id"]))]
    assert chat_of(carol, cid)["last_message"]["message_id"] == m2["message_id"]

    # carol reads everything.
    assert unread(carol, cid) >= 3
    mark_read(carol, cid, sock=sc)
    assert unread(carol, cid) == 0
    assert uid(carol) in [u["id"] for u in message_in(alice, cid, m2["message_id"])["read_users"]]

    # carol leaves.
    for c, s in ((alice, sa), (bob, sb), (carol, sc), (dave, sd)):
        barrier(c, s)
    leave(carol, cid)
    assert actions(barrier(carol, sc)) == ["member_deleted"]
    assert actions(barrier(alice, sa)) == ["member_deleted", "new_message"]
    assert messages(alice, cid)[0]["message"] == left_text(carol)

    # dave deletes his account: bob loses a friend, the group a member, his
    # messages pass to #DELETED.
    barrier(bob, sb)
    assert dave.ok("DELETE", "/user") is None
    msgs, _ = sd.read_to_close()
    assert msgs and msgs[-1]["action"] == "logout", msgs
    ev = barrier(bob, sb)
    assert {"friend_deleted", "member_deleted"} <= set(actions(ev)), ev
    assert [e for e in ev if e["action"] == "friend_deleted"][0]["data"] == {"friend": dave.user}
    r2 = message_in(bob, cid, m2["message_id"])
    assert r2["sender"]["id"] == DELETED_ID and r2["message"] == "hi bob"
    expect_chat(chat_of(alice, cid), cid, name, alice, [alice, bob])
    assert stack.sql("SELECT count(*) FROM users WHERE id = ?", uid(dave)) == [(0,)]
    for s in (sa, sb, sc):
        s.close()
