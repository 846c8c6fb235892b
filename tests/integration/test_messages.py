"""Messages: the socket actions (send_message, recall_message,
messages_read), read marks, GET /chat/<id>/messages and its paging, and
POST /chat/<id>/filter.

Written from API.md (§3 ChatMessage, §4 messages and filter, §5 actions,
error packets and notifications) and DESIGN.md (read marks are a
watermark). The database is read only to check what was stored.
"""

import time

import pytest

from support import (
    DELETED_ID, RECALLED_TEXT, SYSTEM_ID, UNKNOWN, Watch, action_error, actions, basic,
    basic_of, basics, befriend, befriend_all, by_id, check_message_detailed, check_note,
    fail, filter_messages, leave, make_group, mark_read, message_in, messages,
    private_chat_id, recall, register, relation, remove_member, say, say_many,
    is_new_message, second_client, send_message, table_counts, uid, unread, utf8_request,
    wait_for,
)


def trio(alice, bob, carol):
    """alice owns a group with bob and carol; returns its id."""
    befriend_all(alice, bob, carol)
    return make_group(alice, [bob, carol])["chat_id"]


def ids(users):
    return sorted(u["id"] for u in users)


def message_rows(stack, chat_id):
    return stack.sql(
        "SELECT id, sender_id, content, reply_to_id, recalled FROM messages WHERE chat_id = ? ORDER BY id",
        chat_id)


# =============================================================================
# send_message
# =============================================================================


def test_send_message(stack, alice, bob, carol, dave):
    cid = trio(alice, bob, carol)
    befriend(alice, dave)
    alice2 = second_client(stack, alice)
    w = Watch(alice, bob, carol, dave)
    sa2 = w.add(alice2)
    sa = w.sock(alice)
    content = "héllo 中文 😀 \"quoted\" \\ back"
    t0 = time.time()
    rid, seen, nm = send_message(sa, alice, cid, content)
    assert seen == []
    check_note(nm, "new_message", request_id=rid)
    assert set(nm["data"]) == {"message"}
    m = check_message_detailed(nm["data"]["message"])
    assert m["chat_id"] == cid and m["message"] == content
    assert m["sender"] == basic(alice.user)
    assert m["reply_to_id"] is None and m["reply_to"] is None and m["replied_by"] == []
    assert m["deleted"] is False
    assert ids(m["read_users"]) in ([], [uid(alice)]), m  # nobody else has read it
    assert abs(m["send_time"] - t0) < 3600, (m["send_time"], t0)  # UNIX seconds, not ms

    out = w.collect()
    # The sending socket: the chat is then marked read for the sender.
    assert actions(out[sa]) == ["messages_read"], out[sa]
    assert check_note(out[sa][0], "messages_read", request_id=rid)["data"] == {
        "chat_id": cid, "user_id": uid(alice)}
    # Every other socket of every member: new_message then messages_read, request_id 0.
    for s in (sa2, w.sock(bob), w.sock(carol)):
        assert actions(out[s]) == ["new_message", "messages_read"], out[s]
        got = check_note(out[s][0], "new_message")["data"]["message"]
        assert {k: v for k, v in got.items() if k != "read_users"} == \
            {k: v for k, v in m.items() if k != "read_users"}
        assert ids(got["read_users"]) in ([], [uid(alice)])
        assert check_note(out[s][1], "messages_read")["data"] == {"chat_id": cid, "user_id": uid(alice)}
    assert out[w.sock(dave)] == []
    w.close()

    # Stored, and listed newest first with the sender as its only reader.
    assert message_rows(stack, cid)[-1] == (m["message_id"], uid(alice), content, None, 0)
    for c in (alice, bob, carol):
        ms = messages(c, cid)
        assert len(ms) == 2 and ms[0]["message_id"] == m["message_id"], ms
        assert basic_of(ms[0]) == basic_of(m)
        assert ms[0]["read_users"] == [basic(alice.user)]
        assert ms[0]["reply_to"] is None and ms[0]["replied_by"] == []


def test_own_new_message_carries_the_request_id(stack, alice, bob):
    """[ext] on the socket whose action caused it, request_id is that
    action's id; every other socket sees 0."""
    befriend(alice, bob)
    cid = make_group(alice, [bob])["chat_id"]
    alice2 = second_client(stack, alice)
    w = Watch(alice, bob)
    sa2 = w.add(alice2)
    sa = w.sock(alice)
    sa.send({"action": "send_message", "request_id": 4242, "data": {"chat_id": cid, "content": "ext"}})
    msg = sa.recv()
    assert msg["action"] == "new_message" and msg["request_id"] == 4242, msg
    out = w.collect()
    assert [(e["action"], e["request_id"]) for e in out[sa]] == [("messages_read", 4242)]
    assert [(e["action"], e["request_id"]) for e in out[sa2]] == [("new_message", 0), ("messages_read", 0)]
    assert [(e["action"], e["request_id"]) for e in out[w.sock(bob)]] == \
        [("new_message", 0), ("messages_read", 0)]
    w.close()


def test_send_message_in_a_private_chat(stack, alice, bob):
    pid = befriend(alice, bob)
    start = unread(alice, pid)
    w = Watch(alice, bob)
    _, _, nm = send_message(w.sock(bob), bob, pid, "private hello")
    ev = w.events()
    assert actions(ev[uid(alice)]) == ["new_message", "messages_read"]
    assert ev[uid(alice)][0]["data"]["message"]["message_id"] == nm["data"]["message"]["message_id"]
    assert messages(alice, pid)[0]["message"] == "private hello"
    assert unread(alice, pid) == start + 1 and unread(bob, pid) == 0
    w.close()


def test_reply(stack, alice, bob, carol):
    cid = trio(alice, bob, carol)
    m1 = say(alice, cid, "question")
    w = Watch(alice, bob, carol)
    _, _, nm = send_message(w.sock(bob), bob, cid, "answer", reply_to=m1["message_id"])
    r = nm["data"]["message"]
    assert r["reply_to_id"] == m1["message_id"]
    assert r["reply_to"] == basic_of(message_in(bob, cid, m1["message_id"]))
    assert r["reply_to"]["message"] == "question" and r["reply_to"]["sender"] == basic(alice.user)
    ev = w.events()
    assert ev[uid(alice)][0]["data"]["message"]["reply_to"] == r["reply_to"]
    w.close()
    # The original lists its replies; a reply to the reply, and to the system message.
    got = message_in(carol, cid, m1["message_id"])
    assert got["replied_by"] == [basic_of(message_in(carol, cid, r["message_id"]))]
    r2 = say(carol, cid, "and more", reply_to=r["message_id"])
    assert r2["reply_to"]["message_id"] == r["message_id"]
    m1b = say(alice, cid, "second answer", reply_to=m1["message_id"])
    got = message_in(alice, cid, m1["message_id"])
    assert sorted(x["message_id"] for x in got["replied_by"]) == sorted([r["message_id"], m1b["message_id"]])
    created = messages(alice, cid)[-1]
    r3 = say(bob, cid, "re: created", reply_to=created["message_id"])
    assert r3["reply_to"]["sender"]["id"] == SYSTEM_ID
    assert message_rows(stack, cid)[-1][3] == created["message_id"]


def test_send_message_errors(stack, alice, bob, carol, dave):
    befriend_all(alice, bob, carol, dave)
    cid = make_group(alice, [bob])["chat_id"]
    other = make_group(alice, [carol])["chat_id"]
    foreign = say(alice, other, "elsewhere")
    w = Watch(alice, bob, carol, dave)
    sa = w.sock(alice)
    before = message_rows(stack, cid)
    for data in (
        {"chat_id": cid, "content": ""},
        {"chat_id": cid, "content": 5},
        {"chat_id": cid, "content": None},
        {"chat_id": cid, "content": ["x"]},
        {"chat_id": cid, "content": True},
        {"chat_id": cid},
        {"content": "x"},
        {"chat_id": str(cid), "content": "x"},
        {"chat_id": True, "content": "x"},
        {"chat_id": UNKNOWN, "content": "x"},
        {"chat_id": -cid, "content": "x"},
        {"chat_id": cid + 0.5, "content": "x"},
        {"chat_id": cid, "content": "x", "reply_to": foreign["message_id"]},
        {"chat_id": cid, "content": "x", "reply_to": UNKNOWN},
        {"chat_id": cid, "content": "x", "reply_to": str(foreign["message_id"])},
        None,
        [],
        "x",
    ):
        seen, _ = action_error(sa, "send_message", data)
        assert seen == [], (data, seen)
    # Not a member: a friend of the owner, and a stranger.
    for c in (carol, dave):
        seen, _ = action_error(w.sock(c), "send_message", {"chat_id": cid, "content": "let me in"})
        assert seen == []
    # carol is not a member of alice and bob's private chat either.
    seen, _ = action_error(w.sock(carol), "send_message",
                           {"chat_id": private_chat_id(stack, alice, bob), "content": "x"})
    assert seen == []
    assert message_rows(stack, cid) == before
    assert w.events() == {uid(alice): [], uid(bob): [], uid(carol): [], uid(dave): []}
    # An id beyond 64 bits: an error packet too (its request_id may be 0 when
    # the server refuses the whole packet as out of its number range).
    for data in ({"chat_id": 2 ** 63, "content": "x"}, {"chat_id": cid, "content": "x", "reply_to": 2 ** 64}):
        rid = sa.request("send_message", data)
        err = sa.recv()
        assert err["action"] == "error" and err["code"] == 400 and err["request_id"] in (rid, 0), err
    assert message_rows(stack, cid) == before
    assert w.events() == {uid(alice): [], uid(bob): [], uid(carol): [], uid(dave): []}
    # The socket is still usable after all those errors.
    send_message(sa, alice, cid, "still here")
    w.close()


def test_errors_and_notifications_without_a_request_id_carry_0(stack, alice, bob):
    befriend(alice, bob)
    cid = make_group(alice, [bob])["chat_id"]
    w = Watch(alice, bob)
    sa = w.sock(alice)
    sa.send({"action": "send_message", "data": {"chat_id": cid, "content": ""}})
    err = sa.recv()
    assert err["action"] == "error" and err["request_id"] == 0 and err["code"] == 400, err
    sa.send({"action": "send_message", "data": {"chat_id": cid, "content": "no id"}})
    _, nm = wait_for(sa, is_new_message(cid, "no id", uid(alice)))
    assert nm["request_id"] == 0, nm
    ev = w.collect()
    assert [(e["action"], e["request_id"]) for e in ev[sa]] == [("messages_read", 0)]
    assert [(e["action"], e["request_id"]) for e in ev[w.sock(bob)]] == [("new_message", 0), ("messages_read", 0)]
    w.close()


def test_a_removed_or_departed_member_cannot_send(stack, alice, bob, carol):
    cid = trio(alice, bob, carol)
    remove_member(alice, cid, bob)
    leave(carol, cid)
    for c in (bob, carol):
        s = c.socket()
        seen, _ = action_error(s, "send_message", {"chat_id": cid, "content": "still?"})
        s.close()
    assert [r[1] for r in message_rows(stack, cid)] == [SYSTEM_ID] * 3


# =============================================================================
# GET /chat/<id>/messages
# =============================================================================


def test_messages_newest_first_and_paging(stack, alice, bob):
    befriend(alice, bob)
    cid = make_group(alice, [bob])["chat_id"]
    sent = say_many(alice, cid, 6)
    full = messages(bob, cid)
    assert [m["message_id"] for m in full[:6]] == [m["message_id"] for m in reversed(sent)]
    assert len(full) == 7 and full[6]["sender"]["id"] == SYSTEM_ID
    assert [r[0] for r in message_rows(stack, cid)] == sorted(m["message_id"] for m in full)
    ids_ = [m["message_id"] for m in full]
    m4 = sent[3]["message_id"]
    k = ids_.index(m4)
    assert messages(bob, cid, "?limit=3") == full[:3]
    assert messages(bob, cid, "?limit=1") == full[:1]
    assert messages(bob, cid, "?limit=100") == full
    assert messages(bob, cid, f"?before={m4}") == full[k + 1:]
    assert messages(bob, cid, f"?limit=2&before={m4}") == full[k + 1:k + 3]
    assert messages(bob, cid, f"?before={m4}&limit=2") == full[k + 1:k + 3]
    assert messages(bob, cid, f"?before={full[-1]['message_id']}") == []
    assert messages(bob, cid, f"?before={ids_[0] + 1000}") == full


def test_messages_unknown_is_404_not_a_member_403(stack, alice, bob, carol):
    pid = befriend(alice, bob)
    befriend(alice, carol)
    cid = make_group(alice, [bob])["chat_id"]
    fail(alice.get(f"/chat/{UNKNOWN}/messages"), 404)
    fail(carol.get(f"/chat/{cid}/messages"), 403)
    fail(carol.get(f"/chat/{pid}/messages"), 403)


# =============================================================================
# recall_message
# =============================================================================


def test_recall(stack, alice, bob, carol, dave):
    cid = trio(alice, bob, carol)
    befriend(alice, dave)
    m1 = say(bob, cid, "original")
    m2 = say(alice, cid, "regrettable", reply_to=m1["message_id"])
    w = Watch(alice, bob, carol, dave)
    sa = w.sock(alice)
    rid, seen, note = recall(alice, m2["message_id"], sock=sa)
    assert seen == []
    assert check_note(note, "message_recalled", request_id=rid)["data"] == {"message_id": m2["message_id"]}
    ev = w.events()
    assert ev[uid(alice)] == []
    for c in (bob, carol):
        assert actions(ev[uid(c)]) == ["message_recalled"], ev[uid(c)]
        assert check_note(ev[uid(c)][0], "message_recalled")["data"] == {"message_id": m2["message_id"]}
    assert ev[uid(dave)] == []
    w.close()

    for c in (alice, bob, carol):
        r = message_in(c, cid, m2["message_id"])
        assert r["message"] == RECALLED_TEXT
        assert r["sender"]["id"] == DELETED_ID and r["sender"]["user_name"] == "#DELETED", r
        assert r["reply_to_id"] is None and r["reply_to"] is None, r
        assert r["deleted"] is True, r
        assert r["chat_id"] == cid
        # last_message skips it.
        assert relation(c, cid)["chat"]["last_message"]["message_id"] == m1["message_id"]
    assert stack.sql("SELECT sender_id, content, reply_to_id, recalled FROM messages WHERE id = ?",
                     m2["message_id"]) == [(DELETED_ID, RECALLED_TEXT, None, 1)]
    # The other messages are untouched.
    assert message_in(alice, cid, m1["message_id"])["message"] == "original"
    # Recalled once, it is no longer alice's: recalling again fails.
    s = alice.socket()
    action_error(s, "recall_message", {"message_id": m2["message_id"]})
    s.close()


def test_recall_with_delete_false_recalls(stack, alice, bob):
    befriend(alice, bob)
    cid = make_group(alice, [bob])["chat_id"]
    m = say(bob, cid, "take back")
    w = Watch(alice, bob)
    recall(bob, m["message_id"], delete=False, sock=w.sock(bob))
    ev = w.events()
    assert actions(ev[uid(alice)]) == ["message_recalled"] and ev[uid(bob)] == []
    w.close()
    r = message_in(alice, cid, m["message_id"])
    assert (r["message"], r["sender"]["id"], r["deleted"]) == (RECALLED_TEXT, DELETED_ID, True)


def test_recall_errors(stack, alice, bob, carol, dave):
    cid = trio(alice, bob, carol)
    befriend(alice, dave)
    m = say(alice, cid, "mine")
    created = messages(alice, cid)[-1]
    w = Watch(alice, bob, carol, dave)
    before = message_rows(stack, cid)
    cases = [
        (bob, {"message_id": m["message_id"]}),  # not the sender
        (bob, {"message_id": m["message_id"], "delete": False}),
        (alice, {"message_id": created["message_id"]}),  # a system message
        (alice, {"message_id": UNKNOWN}),
        (alice, {"message_id": UNKNOWN, "delete": True}),
        (dave, {"message_id": m["message_id"]}),  # not a member
        (dave, {"message_id": m["message_id"], "delete": True}),
        (alice, {"message_id": str(m["message_id"])}),
        (alice, {"message_id": True}),
        (alice, {"message_id": m["message_id"], "delete": "yes"}),
        (alice, {"message_id": m["message_id"], "delete": 1}),
        (alice, {}),
        (alice, None),
        (alice, [m["message_id"]]),
    ]
    for c, data in cases:
        seen, _ = action_error(w.sock(c), "recall_message", data)
        assert seen == [], (data, seen)
    assert message_rows(stack, cid) == before
    assert stack.sql("SELECT count(*) FROM message_deletions WHERE message_id = ?", m["message_id"]) == [(0,)]
    assert w.events() == {uid(alice): [], uid(bob): [], uid(carol): [], uid(dave): []}
    w.close()


def test_delete_for_me(stack, alice, bob, carol, dave):
    cid = trio(alice, bob, carol)
    befriend(alice, dave)
    m1 = say(alice, cid, "keep or hide")
    bob2 = second_client(stack, bob)
    w = Watch(alice, bob, carol, dave)
    sb2 = w.add(bob2)
    sb = w.sock(bob)
    rid, seen, note = recall(bob, m1["message_id"], delete=True, sock=sb)
    assert seen == []
    assert check_note(note, "message_deleted", request_id=rid)["data"] == {"message_id": m1["message_id"]}
    out = w.collect()
    assert out[sb] == []
    assert actions(out[sb2]) == ["message_deleted"]
    assert check_note(out[sb2][0], "message_deleted")["data"] == {"message_id": m1["message_id"]}
    for c in (alice, carol, dave):
        assert out[w.sock(c)] == [], c.user
    w.close()

    mine = message_in(bob, cid, m1["message_id"])
    assert mine["deleted"] is True
    for c in (alice, carol):
        theirs = message_in(c, cid, m1["message_id"])
        assert theirs["deleted"] is False
        assert theirs["message"] == "keep or hide" and theirs["sender"] == basic(alice.user)
    assert stack.sql("SELECT user_id, message_id FROM message_deletions WHERE message_id = ?",
                     m1["message_id"]) == [(uid(bob), m1["message_id"])]
    assert stack.sql("SELECT sender_id, content, recalled FROM messages WHERE id = ?", m1["message_id"]) == \
        [(uid(alice), "keep or hide", 0)]
    # As a reply target, it is deleted for bob only.
    m2 = say(carol, cid, "about that", reply_to=m1["message_id"])
    assert message_in(bob, cid, m2["message_id"])["reply_to"]["deleted"] is True
    assert message_in(alice, cid, m2["message_id"])["reply_to"]["deleted"] is False
    # The sender may still recall it for everyone.
    recall(alice, m1["message_id"])
    assert message_in(carol, cid, m1["message_id"])["message"] == RECALLED_TEXT


def test_delete_for_me_in_a_chat_one_left_is_refused(stack, alice, bob, carol):
    cid = trio(alice, bob, carol)
    m = say(alice, cid, "before you go")
    leave(carol, cid)
    s = carol.socket()
    action_error(s, "recall_message", {"message_id": m["message_id"], "delete": True})
    s.close()
    assert stack.sql("SELECT count(*) FROM message_deletions WHERE message_id = ?", m["message_id"]) == [(0,)]


# =============================================================================
# messages_read, read_users, unread_count
# =============================================================================


def test_messages_read(stack, alice, bob, carol, dave):
    cid = trio(alice, bob, carol)
    befriend(alice, dave)
    m1 = say(alice, cid, "one")
    m2 = say(alice, cid, "two")
    for c in (alice, bob, carol):
        for mid in (m1["message_id"], m2["message_id"]):
            assert message_in(c, cid, mid)["read_users"] == [basic(alice.user)]
    assert unread(bob, cid) >= 2

    w = Watch(alice, bob, carol, dave)
    rid, seen, note = mark_read(bob, cid, sock=w.sock(bob))
    assert seen == []
    assert check_note(note, "messages_read", request_id=rid)["data"] == {"chat_id": cid, "user_id": uid(bob)}
    ev = w.events()
    assert ev[uid(bob)] == []
    for c in (alice, carol):
        assert actions(ev[uid(c)]) == ["messages_read"]
        assert check_note(ev[uid(c)][0], "messages_read")["data"] == {"chat_id": cid, "user_id": uid(bob)}
    assert ev[uid(dave)] == []
    w.close()

    assert unread(bob, cid) == 0
    for mid in (m1["message_id"], m2["message_id"]):
        assert by_id(message_in(carol, cid, mid)["read_users"]) == basics(alice, bob)
    created = messages(alice, cid)[-1]
    assert {uid(alice), uid(bob)} <= set(ids(created["read_users"]))

    # carol writes: her mark passes everything before, too.
    m3 = say(carol, cid, "three")
    assert message_in(alice, cid, m3["message_id"])["read_users"] == [basic(carol.user)]
    for mid in (m1["message_id"], m2["message_id"]):
        assert by_id(message_in(bob, cid, mid)["read_users"]) == basics(alice, bob, carol)
    assert (unread(alice, cid), unread(bob, cid), unread(carol, cid)) == (1, 1, 0)
    mark_read(alice, cid)
    assert by_id(message_in(bob, cid, m3["message_id"])["read_users"]) == basics(alice, carol)
    assert (unread(alice, cid), unread(bob, cid), unread(carol, cid)) == (0, 1, 0)


def test_messages_read_errors(stack, alice, bob, carol, dave):
    cid = trio(alice, bob, carol)
    befriend(alice, dave)
    pid = private_chat_id(stack, alice, bob)
    w = Watch(alice, bob, carol, dave)
    for c, data in (
        (dave, {"chat_id": cid}),  # not a member
        (carol, {"chat_id": pid}),  # not a member of a private chat
        (alice, {"chat_id": UNKNOWN}),
        (alice, {"chat_id": str(cid)}),
        (alice, {"chat_id": True}),
        (alice, {}),
        (alice, None),
        (alice, [cid]),
    ):
        seen, _ = action_error(w.sock(c), "messages_read", data)
        assert seen == [], (data, seen)
    assert w.events() == {uid(alice): [], uid(bob): [], uid(carol): [], uid(dave): []}
    w.close()
    # A member who left may no longer mark it read.
    leave(carol, cid)
    s = carol.socket()
    action_error(s, "messages_read", {"chat_id": cid})
    s.close()


def test_read_mark_is_a_watermark(stack, alice, bob):
    """DESIGN.md: marking a chat read writes one row, however long the chat."""
    befriend(alice, bob)
    cid = make_group(alice, [bob])["chat_id"]
    rels_before_sending = stack.sql("SELECT count(*) FROM chat_relations")[0][0]
    sent = say_many(alice, cid, 40)
    assert stack.sql("SELECT count(*) FROM chat_relations")[0][0] == rels_before_sending
    assert unread(bob, cid) >= 40

    q = "SELECT chat_id, user_id, nickname, last_read_id FROM chat_relations ORDER BY chat_id, user_id"
    before = stack.sql(q)
    counts = table_counts(stack)
    mark_read(bob, cid)
    after = stack.sql(q)
    assert len(after) == len(before)
    gone = [r for r in before if r not in after]
    new = [r for r in after if r not in before]
    assert len(gone) == 1 and len(new) == 1, (gone, new)
    assert gone[0][:3] == new[0][:3] == (cid, uid(bob), "")
    assert new[0][3] == sent[-1]["message_id"]  # the newest message read
    assert table_counts(stack) == counts  # nothing was added anywhere
    assert unread(bob, cid) == 0
    ms = messages(alice, cid)
    assert all(uid(bob) in ids(m["read_users"]) for m in ms if m["sender"]["id"] != SYSTEM_ID)


# =============================================================================
# POST /chat/<id>/filter
# =============================================================================


@pytest.fixture
def history(stack, alice, bob, carol, dave):
    """A group of alice (owner), bob and carol with messages a1 b1 a2 b2 a3
    (a3 recalled); dave is alice's friend but not a member. Returns (chat
    id, alice's view of the whole history, {label: message id})."""
    cid = trio(alice, bob, carol)
    befriend(alice, dave)
    lab = {}
    for who, label in ((alice, "a1"), (bob, "b1"), (alice, "a2"), (bob, "b2"), (alice, "a3")):
        lab[label] = say(who, cid, label)["message_id"]
    recall(alice, lab["a3"])
    lab["created"] = messages(alice, cid)[-1]["message_id"]
    return cid, messages(alice, cid), lab


def test_filter_by_sender(alice, bob, carol, history):
    cid, full, lab = history
    pick = lambda *labels: [m for m in full if m["message_id"] in {lab[x] for x in labels}]  # noqa: E731
    assert filter_messages(alice, cid, {"sender": [uid(bob)]}) == pick("b2", "b1")
    assert filter_messages(alice, cid, {"sender": [uid(alice)]}) == pick("a2", "a1")
    assert filter_messages(alice, cid, {"sender": [uid(alice), uid(bob)]}) == pick("b2", "a2", "b1", "a1")
    assert filter_messages(alice, cid, {"sender": [SYSTEM_ID]}) == pick("created")
    assert filter_messages(alice, cid, {"sender": [DELETED_ID]}) == pick("a3")
    assert filter_messages(alice, cid, {"sender": [SYSTEM_ID, DELETED_ID, uid(bob)]}) == \
        pick("a3", "b2", "b1", "created")
    assert filter_messages(alice, cid, {"sender": [uid(carol)]}) == []  # a member without messages
    assert filter_messages(alice, cid, {"sender": []}) == []  # matches nothing
    assert filter_messages(alice, cid, {"sender": [], "begin_time": 0}) == []
    # Any member may filter.
    assert [m["message_id"] for m in filter_messages(carol, cid, {"sender": [uid(bob)]})] == \
        [lab["b2"], lab["b1"]]


def test_filter_by_time(alice, bob, history):
    cid, full, lab = history
    t = {m["message_id"]: m["send_time"] for m in full}
    tb1, tb2 = t[lab["b1"]], t[lab["b2"]]

    def expect(lo=None, hi=None, who=None):
        return [m for m in full
                if (lo is None or m["send_time"] >= lo) and (hi is None or m["send_time"] <= hi)
                and (who is None or m["sender"]["id"] in who)]

    got = filter_messages(alice, cid, {"begin_time": tb1})
    assert got == expect(lo=tb1) and lab["b1"] in [m["message_id"] for m in got]  # inclusive
    got = filter_messages(alice, cid, {"end_time": tb1})
    assert got == expect(hi=tb1) and lab["b1"] in [m["message_id"] for m in got]
    got = filter_messages(alice, cid, {"begin_time": tb1, "end_time": tb2})
    assert got == expect(tb1, tb2)
    assert {lab["b1"], lab["a2"], lab["b2"]} <= {m["message_id"] for m in got}
    assert filter_messages(alice, cid, {"begin_time": tb1, "end_time": tb1}) == expect(tb1, tb1)
    # Numeric strings are numbers too.
    assert filter_messages(alice, cid, {"begin_time": repr(tb1), "end_time": repr(tb2)}) == expect(tb1, tb2)
    assert filter_messages(alice, cid, {"begin_time": "0"}) == full
    assert filter_messages(alice, cid, {"begin_time": 0}) == full
    assert filter_messages(alice, cid, {"end_time": 1e12}) == full
    assert filter_messages(alice, cid, {"begin_time": 1e12}) == []
    assert filter_messages(alice, cid, {"end_time": 1}) == []
    assert filter_messages(alice, cid, {"begin_time": tb2, "end_time": tb1}) == expect(tb2, tb1)
    # Combined with senders: both must hold.
    assert filter_messages(alice, cid, {"begin_time": tb1, "sender": [uid(alice)]}) == \
        expect(lo=tb1, who={uid(alice)})
    assert filter_messages(alice, cid, {"end_time": tb2, "sender": [uid(bob)]}) == \
        expect(hi=tb2, who={uid(bob)})


@pytest.mark.parametrize("body", [
    {},
    {"begin_time": True},
    {"end_time": False},
    {"begin_time": "abc"},
    {"begin_time": ""},
    {"end_time": "12abc"},
    {"begin_time": [1]},
    {"end_time": {"t": 1}},
    {"sender": "BOB"},
    {"sender": ["BOB"]},
    {"sender": "BOB-INT"},
    {"sender": [True]},
    {"sender": [1.5]},
    {"sender": ["DAVE"]},
    {"sender": [UNKNOWN]},
    {"sender": ["BOB-INT", "DAVE"]},
    {"sender": ["DAVE"], "begin_time": 0},
    {"sender": ["BOB-INT"], "begin_time": "x"},
    [],
    "x",
    5,
], ids=["empty", "begin-true", "end-false", "begin-word", "begin-empty-string", "end-trailing",
        "begin-list", "end-object", "sender-string", "sender-string-ids", "sender-int", "sender-bool",
        "sender-float", "sender-non-member", "sender-unknown", "sender-one-non-member",
        "non-member-with-time", "bad-time-with-sender", "array", "string", "number"])
def test_filter_invalid_is_400(alice, bob, dave, history, body):
    cid, _, _ = history

    def subst(v):
        if v == "BOB":
            return str(uid(bob))
        if v == "BOB-INT":
            return uid(bob)
        if v == "DAVE":
            return uid(dave)
        if isinstance(v, list):
            return [subst(x) for x in v]
        if isinstance(v, dict):
            return {k: subst(x) for k, x in v.items()}
        return v

    fail(utf8_request(alice, "POST", f"/chat/{cid}/filter", subst(body)), 400)


def test_filter_without_body_is_400(alice, history):
    cid, _, _ = history
    fail(alice.post(f"/chat/{cid}/filter"), 400)


def test_filter_unknown_chat_400_not_a_member_403(stack, alice, bob, dave, history):
    cid, _, _ = history
    fail(alice.post(f"/chat/{UNKNOWN}/filter", {"sender": [SYSTEM_ID]}), 400)
    fail(dave.post(f"/chat/{cid}/filter", {"sender": [SYSTEM_ID]}), 403)
    fail(dave.post(f"/chat/{private_chat_id(stack, alice, bob)}/filter", {"begin_time": 0}), 403)


def test_filter_sender_must_still_be_a_member(alice, carol, history):
    cid, _, _ = history
    say(carol, cid, "bye")
    assert len(filter_messages(alice, cid, {"sender": [uid(carol)]})) == 1
    leave(carol, cid)
    fail(alice.post(f"/chat/{cid}/filter", {"sender": [uid(carol)]}), 400)
