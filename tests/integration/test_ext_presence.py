"""[ext] Presence and typing (docs/API.md): friends see each other come
online and go offline live, across two nova-realtime processes on one
database (SQLite, or PostgreSQL with NOTIFY), with a snapshot on connect,
an offline grace period and the expiry of a killed daemon's sockets;
`typing` reaches a chat's other members on every daemon, is rate limited
and never replayed."""

import signal
import socket as pysocket
import time

import pytest
import websocket

from conftest import BUILD, Socket, Stack, free_port, outbox_max
from support import basic, befriend, check_error_packet, check_note, make_group, register, until

PRESENCE_ENV = {
    "NOVA_PRESENCE_HEARTBEAT_MS": "200",
    "NOVA_PRESENCE_TIMEOUT_MS": "2000",
    "NOVA_PRESENCE_GRACE_MS": "1000",
    "NOVA_TYPING_INTERVAL_MS": "1000",
}
GRACE = 1.0


class TwoRealtimes(Stack):
    """The usual stack (nginx in front of nova-realtime "realtime") and a
    second nova-realtime on the same database, reached directly over TCP."""

    def start(self):
        super().start()
        self.rt2_port = free_port()
        self.start_second()
        return self

    def start_second(self):
        env = self.env
        self.env = dict(env, NOVA_WAKE_SOCKET="")  # the first one owns the wake socket
        self._spawn("realtime2", [str(BUILD / "nova-realtime"), "--listen", str(self.rt2_port)])
        self.env = env
        deadline = time.time() + 20
        while True:
            try:
                pysocket.create_connection(("127.0.0.1", self.rt2_port), timeout=1).close()
                return
            except OSError:
                assert time.time() < deadline, self.log_text("realtime2")
                time.sleep(0.05)


class Direct(Socket):
    """A socket straight to the second daemon (no nginx, no Origin)."""

    def __init__(self, stack, token, query=""):
        self.ws = websocket.create_connection(
            f"ws://127.0.0.1:{stack.rt2_port}/ws/{query}", cookie=f"sessionid={token}",
            suppress_origin=True, timeout=10)
        self.next_request_id = 1


@pytest.fixture(scope="module")
def st():
    s = TwoRealtimes(env=PRESENCE_ENV).start()
    yield s
    s.stop_and_check()


def on1(client, presence=True, query=""):
    """A socket on daemon 1 (through nginx)."""
    return client.socket(query=("?presence=1" if presence else "?presence=0") + query)


def on2(stack, client, presence=True, query=""):
    return Direct(stack, client.token, ("?presence=1" if presence else "") + query)


def snapshot(sock):
    """The socket's presence_snapshot (other events may come first: it is
    sent once the socket counts; no presence event comes before it)."""
    msg, seen = next_of(sock, "presence_snapshot")
    assert "presence" not in [m["action"] for m in seen], seen
    assert msg == {"action": "presence_snapshot", "request_id": 0, "ok": True,
                   "data": msg["data"]}, msg
    assert set(msg["data"]) == {"online"}, msg
    return [u["id"] for u in msg["data"]["online"]]


def next_of(sock, action, timeout=10):
    """The next packet of this action; the others before it are returned too."""
    seen = []
    while True:
        m = sock.recv(timeout)
        if m["action"] == action:
            return m, seen
        seen.append(m)


def presence_of(sock, timeout=10):
    msg, _ = next_of(sock, "presence", timeout)
    check_note(msg, "presence")
    assert set(msg["data"]) == {"user", "online"}, msg
    return msg["data"]["user"], msg["data"]["online"]


def no_presence(sock):
    seen = sock.ping_barrier()
    assert not [m for m in seen if m["action"] in ("presence", "presence_snapshot")], seen


def online_rows(stack, user_id):
    return stack.sql("SELECT instance, sockets FROM presence WHERE user_id = ? ORDER BY instance",
                     user_id)


def test_online_offline_across_two_daemons_to_friends_only(st):
    a, b, c = register(st), register(st), register(st)
    befriend(a, b)
    befriend(c, register(st))  # c has friends, not b
    sa, sc = on1(a), on1(c)
    assert snapshot(sa) == [] and snapshot(sc) == []
    until(lambda: online_rows(st, a.user["id"]))
    # b comes online on the other daemon: its snapshot has a, a hears of b.
    sb = on2(st, b)
    assert snapshot(sb) == [a.user["id"]]
    user, online = presence_of(sa)
    assert user == basic(b.user) and online is True
    no_presence(sc)  # a stranger, on the same daemon as a: nothing
    rows = until(lambda: online_rows(st, b.user["id"]))
    assert len(rows) == 1 and rows[0][1] == 1, rows
    # b leaves: offline only after the grace period.
    closed = time.time()
    sb.close()
    user, online = presence_of(sa)
    assert user == basic(b.user) and online is False
    assert time.time() - closed >= GRACE * 0.9
    no_presence(sc)
    until(lambda: not online_rows(st, b.user["id"]))
    # b's view of a, now on daemon 2 again: a is still online.
    sb = on2(st, b)
    assert snapshot(sb) == [a.user["id"]]
    assert presence_of(sa) == (basic(b.user), True)
    for s in (sa, sb, sc):
        s.close()


def test_a_reload_within_the_grace_does_not_flap(st):
    a, b = register(st), register(st)
    befriend(a, b)
    sa = on1(a)
    snapshot(sa)
    sb = on2(st, b)
    snapshot(sb)
    assert presence_of(sa) == (basic(b.user), True)
    sb.close()
    sb = on1(b)  # the page reloads, on the other daemon this time
    assert snapshot(sb) == [a.user["id"]]
    time.sleep(GRACE * 2.5)
    no_presence(sa)  # neither offline nor online again
    rows = online_rows(st, b.user["id"])
    assert [r[1] for r in rows] == [1], rows  # daemon 2's row ended, daemon 1's holds one socket
    sb.close()
    assert presence_of(sa) == (basic(b.user), False)
    sa.close()


def test_several_sockets_count_until_the_last_closes(st):
    a, b = register(st), register(st)
    befriend(a, b)
    sa = on1(a)
    snapshot(sa)
    b1, b2, b3 = on1(b, presence=False), on2(st, b), on2(st, b, presence=False)
    assert presence_of(sa) == (basic(b.user), True)
    until(lambda: sorted(r[1] for r in online_rows(st, b.user["id"])) == [1, 2])
    b1.close()
    b2.close()
    time.sleep(GRACE * 2)
    no_presence(sa)
    b3.close()
    assert presence_of(sa) == (basic(b.user), False)
    sa.close()


def test_sockets_that_did_not_ask_get_no_presence_packets(st):
    """The existing web client (no ?presence=1) sees nothing new."""
    a, b = register(st), register(st)
    befriend(a, b)
    plain = a.socket()
    watcher = on1(a)
    snapshot(watcher)
    sb = on2(st, b)
    snapshot(sb)
    assert presence_of(watcher) == (basic(b.user), True)
    no_presence(plain)
    for s in (plain, watcher, sb):
        s.close()


def test_without_watchers_nothing_is_written_to_the_outbox(st):
    """Sockets that do not ask for presence (the existing web client) cause
    no presence event at all: transitions go only to friends who watch."""
    a, b = register(st), register(st)
    befriend(a, b)
    before = outbox_max(st)
    sa, sb = on1(a, False), on2(st, b, False)
    until(lambda: online_rows(st, a.user["id"]) and online_rows(st, b.user["id"]))
    sa.close()
    sb.close()
    until(lambda: not online_rows(st, a.user["id"]) and not online_rows(st, b.user["id"]))
    assert st.sql("SELECT count(*) FROM outbox WHERE id > ? AND action = 'presence'",
                  before)[0][0] == 0


def test_a_new_friend_gets_the_current_state_and_an_ended_one_the_end(st):
    a, b = register(st), register(st)
    sa, sb = on1(a), on2(st, b)
    assert snapshot(sa) == [] and snapshot(sb) == []
    until(lambda: online_rows(st, a.user["id"]) and online_rows(st, b.user["id"]))
    no_presence(sa)  # strangers: nothing
    befriend(a, b)
    assert presence_of(sa) == (basic(b.user), True)
    assert presence_of(sb) == (basic(a.user), True)
    a.ok("DELETE", f"/friend/{b.user['id']}")
    assert presence_of(sa) == (basic(b.user), False)
    assert presence_of(sb) == (basic(a.user), False)
    # No longer friends: b's going is not told to a.
    sb.close()
    time.sleep(GRACE * 2)
    no_presence(sa)
    sa.close()


def test_presence_is_not_replayed_a_resuming_socket_gets_a_snapshot(st):
    a, b = register(st), register(st)
    befriend(a, b)
    sa = on1(a)
    snapshot(sa)
    mark = outbox_max(st)
    sb = on2(st, b)
    snapshot(sb)
    assert presence_of(sa) == (basic(b.user), True)
    sa.close()
    time.sleep(0.3)
    a.ok("PATCH", "/user", {"user_name": a.user["user_name"]})  # an event that is replayed
    sa = on1(a, query=f"&last_event_id={mark}")
    got = []  # the replay may come before the snapshot (sent once the socket counts)
    while not {"presence_snapshot", "profile_change"} <= {m["action"] for m in got}:
        got.append(sa.recv())
    snap = [m for m in got if m["action"] == "presence_snapshot"]
    assert len(snap) == 1 and [u["id"] for u in snap[0]["data"]["online"]] == [b.user["id"]], got
    assert not [m for m in got if m["action"] == "presence"], got
    no_presence(sa)
    sa.close()
    sb.close()


def test_a_killed_daemon_expires_its_sockets():
    s = TwoRealtimes(env=PRESENCE_ENV).start()
    try:
        a, b = register(s), register(s)
        befriend(a, b)
        sa = on1(a)
        snapshot(sa)
        sb = on2(s, b)
        snapshot(sb)
        assert presence_of(sa) == (basic(b.user), True)
        killed = time.time()
        s.procs["realtime2"].send_signal(signal.SIGKILL)
        s.procs["realtime2"].wait()
        del s.procs["realtime2"]
        user, online = presence_of(sa, timeout=20)
        took = time.time() - killed
        assert user == basic(b.user) and online is False
        assert 2.0 * 0.9 <= took <= 2.0 + GRACE + 5, took  # timeout + grace + a few heartbeats
        assert not online_rows(s, b.user["id"])
        assert len(s.sql("SELECT instance FROM presence_instances")) == 1
        sa.close()
    finally:
        s.stop_and_check()


# -- typing -----------------------------------------------------------------


def typing_reply(msg, rid, chat_id, sent):
    assert msg == {"action": "typing", "request_id": rid, "ok": True,
                   "data": {"chat_id": chat_id, "sent": sent}}, msg


def typing_of(sock):
    msg, _ = next_of(sock, "typing")
    check_note(msg, "typing")
    return msg["data"]


def no_typing(sock):
    seen = sock.ping_barrier()
    assert not [m for m in seen if m["action"] == "typing"], seen


def test_typing_reaches_the_other_members_on_both_daemons_only(st):
    a, b, c, d = register(st), register(st), register(st), register(st)
    for o in (b, c, d):
        befriend(a, o)
    chat = make_group(a, [b, c])["chat_id"]
    a1, a1b, a2 = on1(a, False), on1(a, False), on2(st, a, False)
    b1, c2, d1 = on1(b, False), on2(st, c, False), on1(d, False)
    rid = a1.request("typing", {"chat_id": chat})
    reply, seen = next_of(a1, "typing")
    typing_reply(reply, rid, chat, True)
    want = {"chat_id": chat, "user": basic(a.user)}
    assert typing_of(b1) == want
    assert typing_of(c2) == want
    no_typing(d1)  # a friend of a's, not a member
    no_typing(a1b)  # the typer's own other sockets
    no_typing(a2)
    # In the private chat of a and d: d only.
    private = st.sql("SELECT chat_id FROM friends WHERE user_id = ? AND friend_id = ?",
                     a.user["id"], d.user["id"])[0][0]
    rid = a1.request("typing", {"chat_id": private})
    typing_reply(a1.recv(), rid, private, True)
    assert typing_of(d1) == {"chat_id": private, "user": basic(a.user)}
    no_typing(b1)
    for s in (a1, a1b, a2, b1, c2, d1):
        s.close()


def test_typing_is_rate_limited_per_user_and_chat(st):
    a, b = register(st), register(st)
    befriend(a, b)
    chat = make_group(a, [b])["chat_id"]
    other = make_group(a, [b])["chat_id"]
    sa, sa2, sb = on1(a, False), on1(a, False), on1(b, False)
    rid = sa.request("typing", {"chat_id": chat})
    typing_reply(sa.recv(), rid, chat, True)
    assert typing_of(sb)["chat_id"] == chat
    # Again at once, from the same and from another socket: dropped.
    for s in (sa, sa, sa2):
        rid = s.request("typing", {"chat_id": chat})
        typing_reply(s.recv(), rid, chat, False)
    # Another chat has its own allowance.
    rid = sa.request("typing", {"chat_id": other})
    typing_reply(sa.recv(), rid, other, True)
    assert typing_of(sb)["chat_id"] == other
    no_typing(sb)
    time.sleep(1.1)
    rid = sa2.request("typing", {"chat_id": chat})
    typing_reply(sa2.recv(), rid, chat, True)
    assert typing_of(sb)["chat_id"] == chat
    # A flood: at most one goes out per interval.
    before = st.sql("SELECT count(*) FROM outbox WHERE action = 'typing'")[0][0]
    for _ in range(50):
        sa.request("typing", {"chat_id": other})
    sent = [sa.recv()["data"]["sent"] for _ in range(50)]
    after = st.sql("SELECT count(*) FROM outbox WHERE action = 'typing'")[0][0]
    assert sum(sent) <= 1 and after - before == sum(sent), (sent, before, after)
    for s in (sa, sa2, sb):
        s.close()


def test_typing_is_never_replayed(st):
    a, b = register(st), register(st)
    befriend(a, b)
    chat = make_group(a, [b])["chat_id"]
    sb = on1(b, False)
    sb.ping_barrier()
    mark = outbox_max(st)
    sb.close()
    sa = on1(a, False)
    rid = sa.request("typing", {"chat_id": chat})
    typing_reply(sa.recv(), rid, chat, True)
    b.ok("PATCH", "/user", {"user_name": b.user["user_name"]})
    assert st.sql("SELECT count(*) FROM outbox WHERE action = 'typing' AND id > ?", mark)[0][0] == 1
    sb = on1(b, False, query=f"&last_event_id={mark}")
    msg, seen = next_of(sb, "profile_change")
    assert not [m for m in seen if m["action"] == "typing"], seen
    no_typing(sb)
    sa.close()
    sb.close()


def test_typing_errors_change_nothing(st):
    a, b, x = register(st), register(st), register(st)
    befriend(a, b)
    chat = make_group(a, [b])["chat_id"]
    sx, sa, sb = on1(x, False), on1(a, False), on1(b, False)
    before = outbox_max(st)
    bad = [
        (sx, {"chat_id": chat}),  # not a member
        (sa, {"chat_id": 999999999}),  # unknown chat
        (sa, None),
        (sa, []),
        (sa, {}),
        (sa, {"chat_id": "1"}),
        (sa, {"chat_id": True}),
        (sa, {"chat_id": 1.5}),
        (sa, {"chat_id": -1}),
        (sa, {"chat_id": 0}),
    ]
    for sock, data in bad:
        rid = sock.request("typing", data)
        check_error_packet(sock.recv(), rid)
    # An ex-member.
    a.ok("DELETE", f"/chat/{chat}/{b.user['id']}")  # removed by the owner
    rid = sb.request("typing", {"chat_id": chat})
    check_error_packet(next_of(sb, "error")[0], rid)
    assert st.sql("SELECT count(*) FROM outbox WHERE action = 'typing' AND id > ?", before)[0][0] == 0
    no_typing(sa)
    for s in (sx, sa, sb):
        s.close()


@pytest.mark.postgres_only
def test_presence_and_typing_across_two_hosts_on_one_postgres():
    """Two hosts (each its own nginx, nova-api and nova-realtime) sharing
    one PostgreSQL database, as in test_hosts.py."""
    one = Stack(engine="postgres", host="127.0.0.2", tcp=True, env=PRESENCE_ENV).start()
    two = Stack(host="127.0.0.3", shared=one, env=PRESENCE_ENV).start()
    try:
        a, b = register(one), register(two)
        befriend(a, b)
        chat = make_group(a, [b])["chat_id"]
        sa = a.socket(query="?presence=1")
        assert snapshot(sa) == []
        sb = b.socket(query="?presence=1")
        assert snapshot(sb) == [a.user["id"]]
        assert presence_of(sa) == (basic(b.user), True)
        rid = sa.request("typing", {"chat_id": chat})
        typing_reply(next_of(sa, "typing")[0], rid, chat, True)
        assert typing_of(sb) == {"chat_id": chat, "user": basic(a.user)}
        sb.close()
        assert presence_of(sa) == (basic(b.user), False)
        sa.close()
    finally:
        two.stop_and_check()
        one.stop_and_check()
