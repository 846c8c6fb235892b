"""[ext] Edit and react (docs/API.md "[ext] Edit and react"): the socket
actions edit_message, react and unreact, edited_at and reactions in the
message views, the notifications to the chat's members, replay on resume,
the limits, recall and account deletion, and a permission matrix of every
new action by every kind of actor."""

import time

import pytest

from conftest import outbox_max
from support import (
    act, action_error, befriend_all, check_note, edit_message as edit, leave, make_group,
    message_in, messages, recall, say, uid, Watch,
)

THUMBS = "\U0001F44D"
FAMILY = "\U0001F468\u200d\U0001F469\u200d\U0001F467\u200d\U0001F466"
WAVE_DARK = "\U0001F44B\U0001F3FF"
HEART = "\u2764\ufe0f"
FLAG_FR = "\U0001F1EB\U0001F1F7"
KEYCAP_1 = "1\ufe0f\u20e3"
ENGLAND = "\U0001F3F4\U000E0067\U000E0062\U000E0065\U000E006E\U000E0067\U000E007F"
GOOD_EMOJI = [THUMBS, FAMILY, WAVE_DARK, HEART, FLAG_FR, KEYCAP_1, ENGLAND, "\u00a9"]
BAD_EMOJI = ["", "a", "ok", "1", THUMBS + THUMBS, THUMBS + " ", "\u200d" + THUMBS,
             THUMBS + "\u200d", "\U0001F3FF", "\ufe0f", THUMBS + "\n", "\u0007",
             THUMBS + "\u0000", "\U0001F1EB", THUMBS * 40, "\U0001F44D\U0001F3FF\U0001F3FF",
             "\U0001F3F4\U000E0067", 5, None, [THUMBS], {"e": THUMBS}]


def trio(alice, bob, carol):
    befriend_all(alice, bob, carol)
    return make_group(alice, [bob, carol])["chat_id"]


def react(sock, mid, emoji, add=True):
    return act(sock, "react" if add else "unreact", {"message_id": mid, "emoji": emoji},
               "reaction_added" if add else "reaction_removed")


def state(stack, mid):
    return (stack.sql("SELECT content, edited_at, edit_count, recalled FROM messages WHERE id = ?",
                      mid),
            stack.sql("SELECT user_id, emoji FROM message_reactions WHERE message_id = ? "
                      "ORDER BY user_id, emoji", mid))


def test_edit_end_to_end(stack, alice, bob, carol, dave):
    cid = trio(alice, bob, carol)
    m = say(alice, cid, "first text")
    assert m["edited_at"] is None and m["reactions"] == []
    reply = say(bob, cid, "a reply", reply_to=m["message_id"])
    w = Watch(alice, bob, carol, dave)
    t0 = time.time()
    note = edit(w.sock(alice), m["message_id"], "second text ✓")
    d = note["data"]
    assert set(d) == {"message_id", "chat_id", "message", "edited_at"}
    assert d["message_id"] == m["message_id"] and d["chat_id"] == cid
    assert d["message"] == "second text ✓" and abs(d["edited_at"] - t0) < 60
    out = w.collect()
    assert out[w.sock(alice)] == []
    for c in (bob, carol):
        evs = out[w.sock(c)]
        assert [e["action"] for e in evs] == ["message_edited"], evs
        assert check_note(evs[0], "message_edited")["data"] == d
    assert out[w.sock(dave)] == []
    # The views: edited_at, the new text, the reply's parent too.
    got = message_in(alice, cid, m["message_id"])
    assert got["message"] == "second text ✓" and got["edited_at"] == d["edited_at"]
    r = message_in(carol, cid, reply["message_id"])
    assert r["reply_to"]["message"] == "second text ✓"
    assert r["reply_to"]["edited_at"] == d["edited_at"]
    assert r["edited_at"] is None
    # The same text again: nothing changes; only the caller's sockets hear
    # the current state (its answer).
    before = state(stack, m["message_id"])
    n = edit(w.sock(alice), m["message_id"], "second text ✓")
    assert n["data"] == d
    assert state(stack, m["message_id"]) == before
    out = w.collect()
    assert all(out[w.sock(c)] == [] for c in (bob, carol, dave)), out
    # Unedited, the same text answers with edited_at null.
    other = say(alice, cid, "never edited")
    n = edit(w.sock(alice), other["message_id"], "never edited")
    assert n["data"]["edited_at"] is None
    assert message_in(bob, cid, other["message_id"])["edited_at"] is None
    w.close()


def test_edit_errors(stack, alice, bob, carol):
    cid = trio(alice, bob, carol)
    m = say(alice, cid, "text")
    sa = alice.socket()
    before = state(stack, m["message_id"])
    bad = [None, 5, "x", [], {}, {"message_id": m["message_id"]},
           {"content": "x"}, {"message_id": "1", "content": "x"},
           {"message_id": m["message_id"], "content": ""},
           {"message_id": m["message_id"], "content": 5},
           {"message_id": m["message_id"], "content": None},
           {"message_id": 999999999, "content": "x"},
           {"message_id": -1, "content": "x"}, {"message_id": True, "content": "x"}]
    for data in bad:
        action_error(sa, "edit_message", data)
    # A system message (the group's creation) is nobody's to edit.
    sysmsg = messages(alice, cid)[-1]
    assert sysmsg["sender"]["user_name"] == "#SYSTEM"
    action_error(sa, "edit_message", {"message_id": sysmsg["message_id"], "content": "x"})
    # A recalled message neither.
    r = say(alice, cid, "to recall")
    react(sa, r["message_id"], THUMBS)
    recall(alice, r["message_id"])
    action_error(sa, "edit_message", {"message_id": r["message_id"], "content": "x"})
    action_error(sa, "react", {"message_id": r["message_id"], "emoji": THUMBS})
    rv = message_in(alice, cid, r["message_id"])
    assert rv["reactions"] == [] and rv["edited_at"] is None and rv["deleted"] is True
    assert state(stack, r["message_id"])[1] == []
    assert state(stack, m["message_id"]) == before
    sa.close()


def test_recall_after_edit_hides_edit(stack, alice, bob, carol):
    cid = trio(alice, bob, carol)
    m = say(alice, cid, "text")
    sa = alice.socket()
    edit(sa, m["message_id"], "edited")
    recall(alice, m["message_id"], sock=sa)
    v = message_in(bob, cid, m["message_id"])
    assert v["edited_at"] is None and v["message"] == "Message recalled"
    sa.close()


def test_reactions_end_to_end(stack, alice, bob, carol, dave):
    cid = trio(alice, bob, carol)
    m = say(alice, cid, "react to me")
    mid = m["message_id"]
    w = Watch(alice, bob, carol, dave)
    n = react(w.sock(bob), mid, THUMBS)
    assert n["data"] == {"message_id": mid, "chat_id": cid, "user_id": uid(bob),
                         "emoji": THUMBS, "count": 1}
    out = w.collect()
    assert out[w.sock(bob)] == [] and out[w.sock(dave)] == []
    for c in (alice, carol):
        assert [e["action"] for e in out[w.sock(c)]] == ["reaction_added"]
        assert check_note(out[w.sock(c)][0], "reaction_added")["data"] == n["data"]
    assert react(w.sock(carol), mid, HEART)["data"]["count"] == 1
    assert react(w.sock(alice), mid, THUMBS)["data"]["count"] == 2
    w.collect()
    # Idempotent: again changes nothing; the caller alone hears the current count.
    before = state(stack, mid)
    n = react(w.sock(bob), mid, THUMBS)
    assert n["data"]["count"] == 2 and n["data"]["user_id"] == uid(bob)
    assert state(stack, mid) == before
    assert all(v == [] for v in w.collect().values())
    # Per viewer: me; order: the oldest reaction of each emoji first.
    def view(c):
        return message_in(c, cid, mid)["reactions"]
    assert view(bob) == [{"emoji": THUMBS, "count": 2, "me": True},
                         {"emoji": HEART, "count": 1, "me": False}]
    assert view(carol) == [{"emoji": THUMBS, "count": 2, "me": False},
                           {"emoji": HEART, "count": 1, "me": True}]
    # The history page keeps every other field as it was.
    page = messages(alice, cid)
    assert page[0]["message_id"] == mid and page[0]["reactions"][0]["me"] is True
    # Unreact.
    n = react(w.sock(bob), mid, THUMBS, add=False)
    assert n["data"] == {"message_id": mid, "chat_id": cid, "user_id": uid(bob),
                         "emoji": THUMBS, "count": 1}
    out = w.collect()
    assert [e["action"] for e in out[w.sock(alice)]] == ["reaction_removed"], out
    assert out[w.sock(bob)] == [] and out[w.sock(dave)] == []
    before = state(stack, mid)
    assert react(w.sock(bob), mid, THUMBS, add=False)["data"]["count"] == 1
    assert state(stack, mid) == before
    assert all(v == [] for v in w.collect().values())
    # bob's was the oldest thumbs-up: the oldest left (alice's) is newer than the heart.
    assert view(bob) == [{"emoji": HEART, "count": 1, "me": False},
                         {"emoji": THUMBS, "count": 1, "me": False}]
    react(w.sock(alice), mid, THUMBS, add=False)
    assert view(alice) == [{"emoji": HEART, "count": 1, "me": False}]
    w.close()


def test_page_maps_reactions_to_their_messages(stack, alice, bob, carol):
    """The page reads every message's reactions at once: each gets its own."""
    cid = trio(alice, bob, carol)
    ids = [say(alice, cid, f"m{i}")["message_id"] for i in range(6)]
    sb, sc = bob.socket(), carol.socket()
    for i, mid in enumerate(ids):
        for e in GOOD_EMOJI[:i % 3]:
            react(sb, mid, e)
        if i % 2:
            react(sc, mid, GOOD_EMOJI[0])
    sb.close()
    sc.close()
    for viewer in (alice, bob, carol):
        page = {m["message_id"]: m for m in messages(viewer, cid, "?limit=4")}
        page.update({m["message_id"]: m for m in messages(viewer, cid)})
        for i, mid in enumerate(ids):
            want = {}
            for e in GOOD_EMOJI[:i % 3]:
                want[e] = [1, viewer is bob]
            if i % 2:
                w = want.setdefault(GOOD_EMOJI[0], [0, False])
                w[0] += 1
                w[1] = w[1] or viewer is carol
            got = {r["emoji"]: [r["count"], r["me"]] for r in page[mid]["reactions"]}
            assert got == want, (i, got, want)


def test_emoji_validation(stack, alice, bob, carol):
    cid = trio(alice, bob, carol)
    sa = alice.socket()
    for e in GOOD_EMOJI:
        mid = say(alice, cid)["message_id"]
        assert react(sa, mid, e)["data"]["emoji"] == e
    mid = say(alice, cid)["message_id"]
    for e in BAD_EMOJI:
        action_error(sa, "react", {"message_id": mid, "emoji": e})
        action_error(sa, "unreact", {"message_id": mid, "emoji": e})
    assert state(stack, mid)[1] == []
    sa.close()


def test_limits(make_stack):
    s = make_stack(env={"NOVA_EDIT_MAX": "2", "NOVA_REACT_PER_USER": "2",
                        "NOVA_REACT_DISTINCT": "3", "NOVA_EDIT_WINDOW": "3"})
    users = []
    for _ in range(4):
        c = s.client()
        c.register()
        users.append(c)
    a, b, c, d = users
    befriend_all(a, b, c, d)
    cid = make_group(a, [b, c, d])["chat_id"]
    m = say(a, cid)
    sa, sb, sc = a.socket(), b.socket(), c.socket()
    edit(sa, m["message_id"], "one")
    edit(sa, m["message_id"], "two")
    action_error(sa, "edit_message", {"message_id": m["message_id"], "content": "three"})
    assert message_in(a, cid, m["message_id"])["message"] == "two"
    mid = m["message_id"]
    react(sb, mid, THUMBS)
    react(sb, mid, HEART)
    action_error(sb, "react", {"message_id": mid, "emoji": FLAG_FR})  # per user
    react(sc, mid, FLAG_FR)
    action_error(sc, "react", {"message_id": mid, "emoji": KEYCAP_1})  # distinct
    react(sc, mid, THUMBS)  # an emoji already there is not a new one
    assert [r["count"] for r in message_in(a, cid, mid)["reactions"]] == [2, 1, 1]
    # The edit window.
    late = say(a, cid, "late")
    time.sleep(3.5)
    action_error(sa, "edit_message", {"message_id": late["message_id"], "content": "x"})
    for x in (sa, sb, sc):
        x.close()


def test_resume_replays(stack, alice, bob, carol):
    cid = trio(alice, bob, carol)
    mid = say(alice, cid)["message_id"]
    start = outbox_max(stack)  # bob is away from here on
    sa = alice.socket()
    edit(sa, mid, "while bob was away")
    react(sa, mid, THUMBS)
    sa.close()
    sb = bob.socket(query=f"?last_event_id={start}")
    got = [e for e in sb.ping_barrier() if e["action"] in ("message_edited", "reaction_added")]
    assert [e["action"] for e in got] == ["message_edited", "reaction_added"], got
    assert got[0]["data"]["message"] == "while bob was away"
    assert all(e["request_id"] == 0 for e in got)
    assert got[1]["data"]["user_id"] == uid(alice) and got[1]["data"]["count"] == 1
    sb.close()


def test_account_deletion_removes_reactions(stack, alice, bob, carol):
    cid = trio(alice, bob, carol)
    mid = say(alice, cid)["message_id"]
    sb = bob.socket()
    react(sb, mid, THUMBS)
    react(sb, mid, HEART)
    sb.close()
    sc = carol.socket()
    react(sc, mid, THUMBS)
    sc.close()
    assert bob.ok("DELETE", "/user") is None
    assert stack.sql("SELECT count(*) FROM message_reactions WHERE user_id = ?", uid(bob)) == [(0,)]
    assert message_in(alice, cid, mid)["reactions"] == [{"emoji": THUMBS, "count": 1, "me": False}]


# --- the permission matrix ----------------------------------------------------

ACTORS = ("sender", "member", "ex_member", "stranger", "deleted")
# Who may do each action on a message of the sender's (True: allowed).
ALLOWED = {
    "edit_message": {"sender"},
    "react": {"sender", "member"},
    "unreact": {"sender", "member"},
}


@pytest.mark.parametrize("action", sorted(ALLOWED))
@pytest.mark.parametrize("actor", ACTORS)
def test_permission_matrix(stack, alice, bob, carol, dave, erin, action, actor):
    befriend_all(alice, bob, carol, erin)
    cid = make_group(alice, [bob, carol, erin])["chat_id"]
    mid = say(alice, cid, "the message")["message_id"]
    if action == "unreact":  # something to take back, for every actor that could have
        for c in (alice, bob, carol):
            s = c.socket()
            react(s, mid, THUMBS)
            s.close()
    who = {"sender": alice, "member": bob, "ex_member": carol, "stranger": dave,
           "deleted": erin}[actor]
    if actor == "ex_member":
        leave(carol, cid)
    sock = who.socket()
    if actor == "deleted":
        # While a member erin reacted; deleting the account ends the socket
        # (no action can follow) and takes the reactions away.
        react(sock, mid, HEART)
        assert erin.ok("DELETE", "/user") is None
        msgs, _ = sock.read_to_close()
        assert "logout" in [m.get("action") for m in msgs], msgs
        assert stack.sql("SELECT count(*) FROM message_reactions WHERE user_id = ?",
                         uid(erin)) == [(0,)]
        assert HEART not in [r["emoji"] for r in message_in(alice, cid, mid)["reactions"]]
        assert erin.request("GET", "/user").status_code == 403
        return
    before = state(stack, mid)
    data = {"message_id": mid, "content": "changed"} if action == "edit_message" else \
        {"message_id": mid, "emoji": THUMBS if action == "unreact" else HEART}
    if actor in ALLOWED[action]:
        expect = {"edit_message": "message_edited", "react": "reaction_added",
                  "unreact": "reaction_removed"}[action]
        act(sock, action, data, expect)
        assert state(stack, mid) != before
    else:
        action_error(sock, action, data)
        assert state(stack, mid) == before
    sock.close()
