"""DELETE /user with chats: API.md §6 (and §5 for who hears what).

The deleted user has friends, owns a group, is an admin in another group,
has pending friend and chat invitations (sent and received), messages,
a delete-for-me mark, read marks and two sessions with sockets. Afterwards
every table of sql/001_init.sql is searched for the user's id.
"""

import pytest

from support import (
    DELETED_ID, SYSTEM_ID, Watch, actions, barrier_multi, basic, basics, befriend, by_id,
    chat_invitations, chat_of, check_note, expect_chat, fail, invitations, invite, invite_to,
    make_group, mark_read, message_in, messages, recall, register, relations, say, second_client,
    set_admin, uid,
)


# Every place of the schema that can hold a user id.
USER_COLUMNS = [
    ("users", "id"),
    ("sessions", "user_id"),
    ("friend_groups", "user_id"),
    ("friends", "user_id"),
    ("friends", "friend_id"),
    ("friend_invitations", "sender_id"),
    ("friend_invitations", "receiver_id"),
    ("chats", "owner_id"),
    ("chat_members", "user_id"),
    ("chat_relations", "user_id"),
    ("message_deletions", "user_id"),
    ("chat_invitations", "user_id"),
    ("chat_invitations", "invited_by"),
    ("messages", "sender_id"),
]


def remains(stack, user_id):
    """{(table, column): row count} for every place still naming user_id."""
    out = {}
    for table, col in USER_COLUMNS:
        n = stack.sql(f"SELECT count(*) FROM {table} WHERE {col} = ?", user_id)[0][0]
        if n:
            out[(table, col)] = n
    return out


def test_delete_account_with_chats(stack):
    victim, ann, ben, cat, eve, yan, zoe = (register(stack) for _ in range(7))
    V = uid(victim)

    # Friends: the victim invited ann and cat (they own those private
    # chats); ben invited the victim (the victim owns that one).
    p_va = befriend(victim, ann)
    p_bv = befriend(ben, victim)
    p_vc = befriend(victim, cat)
    befriend(ann, ben)
    befriend(ann, eve)
    private = [p_va, p_bv, p_vc]
    victim.ok("POST", "/friend/group/add", {"group_name": "colleagues"})

    # g1: owned by the victim, with ann and ben; ann invited eve (pending).
    g1 = make_group(victim, [ann, ben])
    G1 = g1["chat_id"]
    invite_to(ann, G1, eve)
    # g2: owned by ann, with the victim (admin) and ben; the victim invited
    # cat (pending, invited_by = victim).
    G2 = make_group(ann, [victim, ben])["chat_id"]
    set_admin(ann, G2, victim)
    invite_to(victim, G2, cat)
    # g3: owned by cat, alone; cat invited the victim (pending, user = victim).
    G3 = make_group(cat, [])["chat_id"]
    invite_to(cat, G3, victim)

    # Messages, a reply to the victim, a delete-for-me and read marks.
    v1 = say(victim, G1, "in my own group")
    v2 = say(victim, G2, "hello from the admin")
    b1 = say(ben, G2, "hi admin", reply_to=v2["message_id"])
    v3 = say(victim, G2, "bye soon")
    say(victim, p_va, "private words")
    recall(victim, b1["message_id"], delete=True)
    mark_read(victim, G2)
    # Pending friend invitations: sent to yan, received from zoe.
    invite(victim, yan, comment="sent")
    invite(zoe, victim, comment="received")

    # Everything is in place.
    found = remains(stack, V)
    for key in USER_COLUMNS:
        assert key in found, (key, found)

    # Two sessions with a socket each; everyone else watching.
    victim2 = second_client(stack, victim)
    sv1, sv2 = victim.socket(), victim2.socket()
    barrier_multi(victim, [sv1, sv2])
    g1_chat = chat_of(ann, G1)
    w = Watch(ann, ben, cat, eve, yan, zoe)

    assert victim.ok("DELETE", "/user") is None

    # Every session ends: each socket gets logout (last) and is closed.
    for s in (sv1, sv2):
        msgs, _ = s.read_to_close()
        assert msgs and msgs[-1]["action"] == "logout", msgs
        check_note(msgs[-1], "logout")
        assert msgs[-1]["data"] is None
    for c in (victim, victim2):
        assert fail(c.get("/user"), 403) == "Invalid Session"
    fail(stack.client().post("/user/login", {"user_name": victim.user["user_name"], "password": victim.password}), 403)
    fail(ann.get(f"/user/{V}"), 404)

    # Notifications.
    ev = w.events()
    for c in (ann, ben):
        e = ev[uid(c)]
        core = [x for x in e if x["action"] != "new_message"]
        assert sorted(actions(core)) == sorted(
            ["friend_deleted", "chat_deleted", "admin_state_change", "member_deleted"]), e
        for x in e:
            check_note(x, x["action"])
            if x["action"] == "new_message":  # only a system message in g2 may come with it
                m = x["data"]["message"]
                assert m["chat_id"] == G2 and m["sender"]["id"] == SYSTEM_ID, x
        by = {x["action"]: x for x in core}
        assert by["friend_deleted"]["data"] == {"friend": victim.user}
        assert set(by["chat_deleted"]["data"]) == {"chat"}
        expect_chat(by["chat_deleted"]["data"]["chat"], G1, g1["chat_name"], victim, [victim, ann, ben],
                    last_message=g1_chat["last_message"])
        assert g1_chat["last_message"]["message_id"] == v1["message_id"]
        assert by["admin_state_change"]["data"] == {"chat_id": G2, "user_id": V, "is_admin": False}
        assert by["member_deleted"]["data"] == {"chat_id": G2, "user_id": V}
        assert actions(e).index("admin_state_change") < actions(e).index("member_deleted"), e
    # cat: a friend (no chat_deleted for the private chat, nothing for g3's invitation).
    assert actions(ev[uid(cat)]) == ["friend_deleted"], ev[uid(cat)]
    assert ev[uid(cat)][0]["data"] == {"friend": victim.user}
    # eve (invited to the deleted g1), yan and zoe (invitations): nothing.
    assert ev[uid(eve)] == [] and ev[uid(yan)] == [] and ev[uid(zoe)] == []
    w.close()

    # Nothing of the user remains anywhere.
    assert remains(stack, V) == {}

    # The owned group and the private chats are gone with their messages.
    for cid in [G1] + private:
        for q in ("SELECT count(*) FROM chats WHERE id = ?",
                  "SELECT count(*) FROM chat_members WHERE chat_id = ?",
                  "SELECT count(*) FROM chat_relations WHERE chat_id = ?",
                  "SELECT count(*) FROM messages WHERE chat_id = ?",
                  "SELECT count(*) FROM chat_invitations WHERE chat_id = ?"):
            assert stack.sql(q, cid) == [(0,)], (cid, q)
    # g2 lives on without the victim; the victim's messages are #DELETED's.
    chat = chat_of(ann, G2)
    expect_chat(chat, G2, chat["chat_name"], ann, [ann, ben], admins=[])
    for mid, text in ((v2["message_id"], "hello from the admin"), (v3["message_id"], "bye soon")):
        m = message_in(ben, G2, mid)
        assert m["message"] == text, m
        assert m["sender"]["id"] == DELETED_ID and m["sender"]["user_name"] == "#DELETED", m
        assert stack.sql("SELECT sender_id, content FROM messages WHERE id = ?", mid) == [(DELETED_ID, text)]
    reply = message_in(ann, G2, b1["message_id"])
    assert reply["reply_to_id"] == v2["message_id"]
    assert reply["reply_to"]["sender"]["id"] == DELETED_ID
    assert reply["deleted"] is False
    for m in messages(ann, G2):
        assert V not in [u["id"] for u in m["read_users"]], m
    assert chat_invitations(ann, G2) == []
    assert chat_invitations(cat, G3) == []
    # The friends' lists forget the victim.
    for c in (ann, ben, cat):
        assert V not in [f["friend"]["id"] for f in c.ok("GET", "/friend")]
        assert not {G1, p_va, p_bv, p_vc} & {r["chat"]["chat_id"] for r in relations(c)}
    assert invitations(yan) == []


def test_delete_account_plain_member_of_a_group(stack):
    """A plain member (not admin): members get member_deleted only (and
    perhaps a system message), no admin_state_change."""
    owner, member, other = (register(stack) for _ in range(3))
    befriend(owner, member)
    befriend(owner, other)
    cid = make_group(owner, [member, other])["chat_id"]
    m = say(member, cid, "last words")
    w = Watch(owner, other)
    assert member.ok("DELETE", "/user") is None
    ev = w.events()
    e = ev[uid(other)]
    core = [x for x in e if x["action"] != "new_message"]
    assert actions(core) == ["member_deleted"], e
    assert core[0]["data"] == {"chat_id": cid, "user_id": uid(member)}
    e = ev[uid(owner)]
    assert sorted(x["action"] for x in e if x["action"] != "new_message") == \
        ["friend_deleted", "member_deleted"], e
    w.close()
    chat = chat_of(owner, cid)
    expect_chat(chat, cid, chat["chat_name"], owner, [owner, other])
    got = message_in(other, cid, m["message_id"])
    assert got["sender"]["id"] == DELETED_ID and got["message"] == "last words"
    assert remains(stack, uid(member)) == {}


def test_delete_account_without_anything(stack):
    lone = register(stack)
    s = lone.socket()
    s.ping_barrier()  # the socket is bound to its session before the delete
    assert lone.ok("DELETE", "/user") is None
    msgs, _ = s.read_to_close()
    assert msgs and msgs[-1]["action"] == "logout", msgs
    assert remains(stack, uid(lone)) == {}
    assert fail(lone.get("/user"), 403) == "Invalid Session"
    fail(lone.delete("/user"), 403)


def test_deleted_name_can_be_registered_again(stack):
    first = register(stack)
    name = first.user["user_name"]
    assert first.ok("DELETE", "/user") is None
    again = register(stack, name)
    assert again.user["user_name"] == name
    assert again.ok("GET", "/user")["user_name"] == name
    assert again.ok("GET", "/chat") == []


def test_delete_account_needs_a_session(stack):
    assert fail(stack.client().delete("/user"), 403) == "Invalid Session"


@pytest.mark.parametrize("owner_too", [False, True])
def test_deleted_owner_or_member_no_longer_in_any_view(stack, owner_too):
    a, b, c = (register(stack) for _ in range(3))
    befriend(a, b)
    befriend(a, c)
    cid = make_group(a, [b, c])["chat_id"]
    set_admin(a, cid, b)
    gone = a if owner_too else b
    assert gone.ok("DELETE", "/user") is None
    if owner_too:
        for x in (b, c):
            fail(x.get(f"/chat/{cid}"), 400)
            fail(x.get(f"/chat/{cid}/messages"), 404)
    else:
        chat = chat_of(c, cid)
        assert by_id(chat["chat_members"]) == basics(a, c) and chat["chat_admins"] == []
        assert chat["chat_owner"] == basic(a.user)
    assert remains(stack, uid(gone)) == {}
