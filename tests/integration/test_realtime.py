"""Lossless delivery: resume with last_event_id, resync after pruning,
kill -9 of nova-realtime, slow consumers, request_id on the originating
socket only, and two daemons side by side (API.md §5 [ext], DESIGN.md)."""

import json
import signal
import threading
import time

import pytest

from conftest import Stack, barrier
from support import befriend


def group(owner, *members):
    for m in members:
        befriend(owner, m)
    return owner.ok("POST", "/chat/new", {"chat_name": "g", "chat_members": [m.user["id"] for m in members]})["chat_id"]


def events_for(stack, user_id, after):
    """The outbox events addressed to a user after an id, as the client
    should receive them: [(event_id, action)] in order."""
    rows = stack.sql("SELECT id, action, recipients FROM outbox WHERE id > ? "
                     "AND session_id IS NULL ORDER BY id", after)
    return [(r[0], r[1]) for r in rows if user_id in json.loads(r[2])]


def drain(sock):
    """Read everything queued for a socket (by ping), return notifications."""
    return sock.ping_barrier()


def send(sock, chat_id, text, request_id=None):
    """send_message and wait until it is committed (its own new_message and
    messages_read come back), so later REST changes are ordered after it."""
    rid = sock.request("send_message", {"chat_id": chat_id, "content": text}, request_id)
    got = []
    while len(got) < 2:
        m = sock.recv()
        if m.get("request_id") == rid and m["action"] in ("new_message", "messages_read"):
            got.append(m["action"])
        elif m["action"] == "error":
            raise AssertionError(m)
    return rid


def test_resume_replays_exactly_the_missed_events_in_order(stack):
    a, b, c = stack.client(), stack.client(), stack.client()
    for x in (a, b, c):
        x.register()
    chat = group(a, b)
    befriend(a, c)
    sa, sb = a.socket(), b.socket()
    # b has read everything addressed to it so far (barrier), so it knows
    # every event up to `last`; then it drops off.
    barrier(b, sb)
    last = stack.sql("SELECT max(id) FROM outbox")[0][0]
    sb.close()

    for i in range(5):
        send(sa, chat, f"while away {i}")
    b.ok("PATCH", "/user", {"avatar_url": "https://example.com/b.png"})
    c.ok("PATCH", "/user", {"avatar_url": "https://example.com/c.png"})  # not for b
    drain(sa)

    expected = events_for(stack, b.user["id"], last)
    assert [e[1] for e in expected].count("new_message") == 5
    assert expected[-1][1] == "profile_change"

    sb = b.socket(query=f"?last_event_id={last}")
    got = [sb.recv() for _ in expected]
    assert [(m["event_id"], m["action"]) for m in got] == expected
    assert all(m["request_id"] == 0 and m["ok"] is True for m in got)
    texts = [m["data"]["message"]["message"] for m in got if m["action"] == "new_message"]
    assert texts == [f"while away {i}" for i in range(5)]
    # Then live, with no duplicate at the switch.
    send(sa, chat, "live again")
    live = sb.recv()
    assert live["action"] == "new_message" and live["event_id"] > expected[-1][0]
    assert live["data"]["message"]["message"] == "live again"
    assert [m["action"] for m in drain(sb)] == ["messages_read"]
    sa.close()
    sb.close()


def test_resume_reads_narrow_events_by_their_index_and_wide_ones_too(make_stack):
    """Events with at most 64 recipients are found through outbox_recipients,
    wider ones (a big group's) through their own index; a resuming user gets
    exactly theirs of both kinds, in order, and none of a wide event of a
    group they are not in."""
    st = make_stack()
    owner, me = st.client(), st.client()
    owner.register()
    me.register()
    crowd = []
    for _ in range(66):
        c = st.client()
        c.register()
        crowd.append(c)
    big = group(owner, me, *crowd)             # 68 members: wide
    other = owner.ok("POST", "/chat/new", {"chat_name": "o", "chat_members": [
        c.user["id"] for c in crowd[:65]]})["chat_id"]  # 66 members, without me: wide, not mine
    so, sm = owner.socket(), me.socket()
    barrier(me, sm)
    last = st.sql("SELECT max(id) FROM outbox")[0][0]
    sm.close()
    send(so, big, "to the big group")
    send(so, other, "to the other group")
    me.ok("PATCH", "/user", {"avatar_url": "https://example.com/me.png"})  # narrow: mine
    send(so, big, "again to the big group")
    drain(so)
    wide = st.sql("SELECT id FROM outbox WHERE id > ? AND action = 'new_message'", last)
    assert len(wide) == 3
    for (event_id,) in wide:
        assert st.sql("SELECT count(*) FROM outbox_recipients WHERE event_id = ?", event_id) == [(0,)]
    expected = events_for(st, me.user["id"], last)
    assert [a for _, a in expected] == ["new_message", "messages_read", "profile_change",
                                        "new_message", "messages_read"], expected
    sm = me.socket(query=f"?last_event_id={last}")
    got = [sm.recv() for _ in expected]
    assert [(m["event_id"], m["action"]) for m in got] == expected
    assert [m["data"]["message"]["message"] for m in got if m["action"] == "new_message"] == [
        "to the big group", "again to the big group"]
    assert drain(sm) == []
    assert st.admin("check").returncode == 0
    so.close()
    sm.close()


def test_resume_with_nothing_missed_and_bad_arguments(stack):
    a = stack.client()
    a.register()
    newest = stack.sql("SELECT max(id) FROM outbox")[0][0]
    s = a.socket(query=f"?last_event_id={newest}")
    assert drain(s) == []
    s.close()
    s = a.socket(query="?last_event_id=abc")
    err = s.recv()
    assert err["action"] == "error" and err["code"] == 400 and "last_event_id" in err["error"]
    # The socket still works, live.
    a.ok("PATCH", "/user", {"avatar_url": "https://example.com/x.png"})
    assert s.recv()["action"] == "profile_change"
    s.close()


def test_resync_required_when_the_missed_events_were_pruned(make_stack):
    st = make_stack()
    a = st.client()
    a.register()
    s = a.socket()
    a.ok("PATCH", "/user", {"avatar_url": "https://example.com/1.png"})
    first = s.recv()["event_id"]
    s.close()
    a.ok("PATCH", "/user", {"avatar_url": "https://example.com/2.png"})
    a.ok("PATCH", "/user", {"avatar_url": "https://example.com/2b.png"})
    newest = st.sql("SELECT max(id) FROM outbox")[0][0]
    r = st.admin("outbox", "prune", "--older-than", "0")
    assert r.stdout.startswith("pruned ")
    # Everything old goes but the newest event: it keeps the position.
    assert st.sql("SELECT id FROM outbox") == [(newest,)]

    s = a.socket(query=f"?last_event_id={first}")
    msg = s.recv()
    assert msg == {"action": "resync_required", "request_id": 0, "ok": True,
                   "data": {"oldest_event_id": newest}}
    a.ok("PATCH", "/user", {"avatar_url": "https://example.com/3.png"})
    live = s.recv()
    assert live["action"] == "profile_change" and live["event_id"] == newest + 1
    s.close()

    # An id this database never handed out: resync too.
    s = a.socket(query=f"?last_event_id={newest + 1000}")
    assert s.recv()["action"] == "resync_required"
    s.close()


def test_request_id_only_on_the_originating_socket(stack):
    a, b = stack.client(), stack.client()
    a.register()
    b.register()
    chat = group(a, b)
    s1, s2, sb = a.socket(), a.socket(), b.socket()
    for s in (s1, s2, sb):
        drain(s)
    s1.request("send_message", {"chat_id": chat, "content": "mine"}, 77)
    m1 = [s1.recv(), s1.recv()]
    assert [(m["action"], m["request_id"]) for m in m1] == [("new_message", 77), ("messages_read", 77)]
    m2 = [s2.recv(), s2.recv()]
    assert [(m["action"], m["request_id"]) for m in m2] == [("new_message", 0), ("messages_read", 0)]
    mb = [sb.recv(), sb.recv()]
    assert [(m["action"], m["request_id"]) for m in mb] == [("new_message", 0), ("messages_read", 0)]
    assert m1[0]["event_id"] == m2[0]["event_id"] == mb[0]["event_id"]
    for s in (s1, s2, sb):
        s.close()


def test_kill_9_of_realtime_loses_nothing_for_a_client_that_resumes(make_stack):
    st = make_stack()
    a = st.client()
    a.register()
    sock = a.socket()
    received = []
    stop = threading.Event()
    errors = []

    def writer():
        i = 0
        while not stop.is_set() and i < 400:
            r = a.patch("/user", {"avatar_url": f"https://example.com/{i}.png"})
            if r.status_code != 200:
                errors.append(r.status_code)
            i += 1

    t = threading.Thread(target=writer)
    t.start()
    # Read a little, then kill the daemon in the middle of the stream.
    for _ in range(20):
        received.append(sock.recv())
    st.procs["realtime"].send_signal(signal.SIGKILL)
    st.procs["realtime"].wait()
    # Drain what was already on its way, until the connection drops.
    try:
        while True:
            msg = sock.recv(timeout=5)
            received.append(msg)
    except Exception:
        pass
    sock.close()
    st.start_realtime()
    t.join()
    assert not errors
    last = max(m["event_id"] for m in received)
    sock = a.socket(query=f"?last_event_id={last}")
    expected_total = st.sql("SELECT count(*) FROM outbox WHERE action = 'profile_change'")[0][0]
    while len(received) < expected_total:
        received.append(sock.recv())
    ids = [m["event_id"] for m in received]
    assert len(ids) == len(set(ids)), "an event was delivered twice"
    all_ids = [r[0] for r in st.sql("SELECT id FROM outbox WHERE action = 'profile_change' ORDER BY id")]
    assert sorted(ids) == all_ids
    assert ids == sorted(ids), "events out of order"
    assert drain(sock) == []
    sock.close()


def test_a_slow_consumer_is_closed_while_a_fast_one_keeps_receiving(make_stack):
    import socket as pysocket

    import websocket

    st = make_stack(env={"NOVA_WS_MAX_QUEUE": "1048576"})
    a, slow, fast = st.client(), st.client(), st.client()
    for x in (a, slow, fast):
        x.register()
    chat = group(a, slow, fast)
    sa, sf = a.socket(), fast.socket()
    # The slow client never reads, with a tiny receive buffer.
    ss = websocket.create_connection(
        st.ws_url, cookie=f"sessionid={slow.token}", timeout=10,
        sockopt=((pysocket.SOL_SOCKET, pysocket.SO_RCVBUF, 4096),))
    drain(sa)
    drain(sf)
    n, big = 150, "x" * 100000
    got = []

    def read_fast():
        while len(got) < n:
            m = sf.recv(timeout=60)
            if m["action"] == "new_message":
                got.append(m["data"]["message"]["message"].split()[0])

    reader = threading.Thread(target=read_fast)
    reader.start()
    for i in range(n):
        send(sa, chat, f"{i} {big}")
    reader.join(120)
    assert got == [str(i) for i in range(n)], "the fast reader missed messages"
    assert f"of user {slow.user['id']} is too slow" in st.log_text("realtime")
    # The slow socket is closed by the server: reading it ends (after what
    # was already buffered on the way) with the close, not more live events.
    ss.settimeout(30)
    code, count = None, 0
    while True:
        try:
            op, frame = ss.recv_data_frame(True)
        except Exception:
            break
        if op == websocket.ABNF.OPCODE_CLOSE:
            code = int.from_bytes(frame.data[:2], "big") if len(frame.data) >= 2 else None
            break
        count += 1
    assert count < n, "the slow socket was never cut off"
    assert code in (1008, None)
    sf.close()
    sa.close()


class TwoDaemons(Stack):
    """One nginx upstream with two nova-realtime processes."""

    def start(self):
        self.rt_sock2 = self.dir / "rt2.sock"
        self.env["NOVA_WAKE_SOCKET"] = f"{self.dir}/wake1.sock,{self.dir}/wake2.sock"
        self.admin("migrate")
        self.start_api()
        for name, sock, wake in (("realtime", self.rt_sock, "wake1"),
                                 ("realtime2", self.rt_sock2, "wake2")):
            env = self.env
            self.env = dict(env, NOVA_WAKE_SOCKET=f"{self.dir}/{wake}.sock")
            self.start_realtime(name, sock)
            self.env = env
        import subprocess
        from conftest import NGINX, ROOT
        prefix = self.dir / "nginx"
        subprocess.run([str(ROOT / "scripts/lib/render-nginx"), str(prefix),
                        f"127.0.0.1:{self.port}", str(self.api_sock),
                        f"{self.rt_sock},{self.rt_sock2}"], env=self.env, check=True)
        self._spawn("nginx", [NGINX, "-p", str(prefix), "-c", str(prefix / "nginx.conf"),
                              "-e", str(prefix / "error.log"), "-g", "daemon off;"])
        self.wait_ready()
        return self


def test_two_daemons_deliver_everything_once_to_their_own_sockets():
    st = TwoDaemons().start()
    try:
        a, b = st.client(), st.client()
        a.register()
        b.register()
        chat = group(a, b)
        sockets = [a.socket() for _ in range(3)] + [b.socket() for _ in range(3)]
        for s in sockets:
            drain(s)
        # Both daemons hold sockets (least_conn spreads them).
        deadline = time.time() + 10
        while time.time() < deadline:
            counts = [r[0] for r in st.sql("SELECT sockets FROM realtime_daemons")]
            if len(counts) == 2 and all(counts):
                break
            time.sleep(0.2)
        assert len(counts) == 2 and all(counts), counts
        for i in range(10):
            send(sockets[0], chat, f"m{i}", request_id=100 + i)
        # A REST-made event per user closes the stream: once a socket has
        # it, it has everything before it (one user's events arrive in
        # commit order), whichever daemon holds the socket.
        a.ok("PATCH", "/user", {"avatar_url": "https://example.com/a.png"})
        b.ok("PATCH", "/user", {"avatar_url": "https://example.com/b.png"})
        for idx, s in enumerate(sockets):
            msgs = []
            while not msgs or msgs[-1]["action"] != "profile_change":
                msgs.append(s.recv())
            news = [m for m in msgs if m["action"] == "new_message"]
            ids = [m["event_id"] for m in msgs]
            assert len(ids) == len(set(ids)) and ids == sorted(ids)
            if idx == 0:
                # send() already read these, matched by their request_id.
                assert news == []
                continue
            assert [m["data"]["message"]["message"] for m in news] == [f"m{i}" for i in range(10)]
            assert [m["request_id"] for m in news] == [0] * 10
            assert [m["action"] for m in msgs].count("profile_change") == 1
        for s in sockets:
            s.close()
    finally:
        st.stop_and_check()
