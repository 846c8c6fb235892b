"""Echo first (NOVA_RT_ECHO_FIRST, realtime/tail.c; docs/BENCHMARKS.md
finding C): an event with that many recipients or more goes to the socket
that caused it before the other members' sockets are woken. What a test can
prove is that nothing is lost or reordered on the way: every member gets
every message, in order, in a burst, with the others' wait short or long,
and with members closing while their wake-up is held. How soon the echo arrives is a benchmark's question
(bench/curves.py, the fan-out curve), not a test's."""

import pytest

from support import Watch, befriend_all, make_group, register, uid, wait_for


def group_of(stack, n):
    owner = register(stack)
    members = [register(stack) for _ in range(n - 1)]
    befriend_all(owner, *members)
    chat = make_group(owner, members)["chat_id"]
    return owner, members, chat


def new_messages(packets, chat):
    return [p["data"]["message"]["message"] for p in packets
            if p.get("action") == "new_message" and p["data"]["message"]["chat_id"] == chat]


@pytest.mark.parametrize("wait_us", ["2000", "300000"])
def test_every_member_gets_every_message_in_order(make_stack, wait_us):
    st = make_stack(env={"NOVA_RT_ECHO_FIRST": "3", "NOVA_RT_ECHO_WAIT_US": wait_us})
    owner, members, chat = group_of(st, 6)
    w = Watch(*members)
    sock = owner.socket()
    texts = [f"burst {i}" for i in range(30)]
    rids = [sock.request("send_message", {"chat_id": chat, "content": t}) for t in texts]
    echoes = []
    for rid in rids:
        _, msg = wait_for(sock, lambda m, rid=rid: m.get("request_id") == rid, rid)
        assert msg["action"] == "new_message", msg
        echoes.append(msg["data"]["message"]["message"])
    assert echoes == texts
    out = w.collect()
    for m in members:
        assert new_messages(out[w.sock(m)], chat) == texts, uid(m)
    sock.close()
    w.close()


def test_members_closing_while_held_break_nothing(make_stack):
    """Sockets that close while their wake-up is held leave the held list
    (a dangling one would be a use-after-free under the sanitizers); the
    members still connected get every message, in order."""
    st = make_stack(env={"NOVA_RT_ECHO_FIRST": "2", "NOVA_RT_ECHO_WAIT_US": "300000"})
    owner, members, chat = group_of(st, 7)
    stay, leave = members[:3], members[3:]
    w = Watch(*stay)
    leaving = [m.socket() for m in leave]
    sock = owner.socket()
    texts = [f"held {i}" for i in range(20)]
    rids = []
    for i, t in enumerate(texts):
        rids.append(sock.request("send_message", {"chat_id": chat, "content": t}))
        if i == 5:
            for s in leaving:
                s.close()
    for rid in rids:
        _, msg = wait_for(sock, lambda m, rid=rid: m.get("request_id") == rid, rid)
        assert msg["action"] == "new_message", msg
    out = w.collect()
    for m in stay:
        assert new_messages(out[w.sock(m)], chat) == texts, uid(m)
    sock.request("send_message", {"chat_id": chat, "content": "after"})
    out = w.collect()
    for m in stay:
        assert new_messages(out[w.sock(m)], chat) == ["after"], uid(m)
    sock.close()
    w.close()


def test_off_and_below_the_threshold_change_nothing(make_stack):
    for env in ({"NOVA_RT_ECHO_FIRST": "0"}, {"NOVA_RT_ECHO_FIRST": "1000"}):
        st = make_stack(env=env)
        owner, members, chat = group_of(st, 3)
        w = Watch(*members)
        sock = owner.socket()
        rid = sock.request("send_message", {"chat_id": chat, "content": "plain"})
        _, msg = wait_for(sock, lambda m: m.get("request_id") == rid, rid)
        assert msg["action"] == "new_message"
        out = w.collect()
        assert all(new_messages(out[w.sock(m)], chat) == ["plain"] for m in members), out
        sock.close()
        w.close()
