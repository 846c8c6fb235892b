"""Nova on several hosts (issue 11): two hosts, each with its own nginx,
nova-api pool, nova-realtime and data directory, on distinct loopback
addresses (127.0.0.2 and 127.0.0.3), sharing nothing but one PostgreSQL
database reached over TCP. Events cross hosts by the outbox and the
writers' NOTIFY; sessions by the database."""

import json
import os
import signal
import threading
import time

import pytest

from conftest import PgCluster, Stack
from support import befriend, make_group, send_message, unique_name

pytestmark = pytest.mark.postgres_only


@pytest.fixture
def hosts():
    one = Stack(engine="postgres", host="127.0.0.2", tcp=True).start()
    two = Stack(host="127.0.0.3", shared=one).start()
    yield one, two
    two.stop_and_check()
    one.stop_and_check()


def next_of(sock, action, timeout=10):
    while True:
        m = sock.recv(timeout)
        if m["action"] == action:
            return m


def registered(stack):
    c = stack.client()
    c.register()
    return c


def test_each_host_is_its_own_stack_on_one_database(hosts):
    one, two = hosts
    assert one.base.startswith("http://127.0.0.2:") and two.base.startswith("http://127.0.0.3:")
    assert one.dir != two.dir and one.pg_name == two.pg_name
    for st in hosts:
        assert "@127.0.0.1:" in st.env["NOVA_DB"], st.env["NOVA_DB"]  # TCP, not the socket
    a = registered(one)
    # A user registered on one host exists on the other.
    found = registered(two).ok("POST", "/friend/find", {"id": a.user["id"]})
    assert [u["id"] for u in found] == [a.user["id"]]


def test_friends_on_two_hosts_befriend_and_chat_live_both_ways(hosts):
    one, two = hosts
    a, b = registered(one), registered(two)
    sa, sb = a.socket(), b.socket()
    sa.ping_barrier()
    sb.ping_barrier()
    chat = befriend(a, b)  # a invites through host one, b accepts through host two
    assert next_of(sa, "friend_created")["data"]["friend"]["id"] == b.user["id"]
    assert next_of(sb, "friend_created")["data"]["friend"]["id"] == a.user["id"]
    # Socket actions on one host reach sockets on the other, both ways.
    for sender, sock, client, receiver in ((sa, sa, a, sb), (sb, sb, b, sa)):
        text = unique_name("across ")
        send_message(sock, client, chat, text)
        while True:  # (the friendship's system message comes first)
            got = next_of(receiver, "new_message")["data"]["message"]
            if got["message"] == text:
                break
        assert got["sender"]["id"] == client.user["id"]
    # A REST change on host one reaches b's socket on host two: a makes a
    # group with b, and b hears of it.
    group = make_group(a, [b])
    assert next_of(sb, "new_group_chat")["data"]["chat_id"] == group["chat_id"]


def test_a_session_made_on_one_host_works_on_the_other(hosts):
    one, two = hosts
    a = registered(one)
    there = a.on(two)
    assert there.ok("GET", "/user")["id"] == a.user["id"]
    s1, s2 = a.socket(), there.socket()
    s1.ping_barrier()
    s2.ping_barrier()
    # A change through host two reaches the socket on host one and vice versa.
    there.ok("PATCH", "/user", {"avatar_url": "https://example.com/2.png"})
    assert next_of(s1, "profile_change")["event_id"] == next_of(s2, "profile_change")["event_id"]
    # Logging out on host two ends the session everywhere.
    there.ok("POST", "/user/logout")
    msgs, code = s1.read_to_close()
    assert any(m["action"] == "logout" for m in msgs), msgs
    r = a.request("GET", "/user")
    assert r.status_code == 403, r.text


def kill_host(stack):
    """kill -9 every process of a host: daemons, nova-api's workers, nginx's."""
    pids = []
    for p in stack.procs.values():
        if p.poll() is None:
            pids.append(p.pid)
            children = f"/proc/{p.pid}/task/{p.pid}/children"
            if os.path.exists(children):
                pids += [int(x) for x in open(children).read().split()]
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    for p in stack.procs.values():
        p.wait(10)
    return pids


def test_kill_9_of_a_host_and_its_clients_resume_on_the_other(hosts):
    one, two = hosts
    a, b = registered(one), registered(two)
    chat = befriend(a, b)
    sa, sb = a.socket(), b.socket()
    sa.ping_barrier()
    sb.ping_barrier()
    send_message(sb, b, chat, "before")
    last = next_of(sa, "new_message")["event_id"]

    killed = kill_host(one)
    assert len(killed) >= 5, killed  # nginx + workers, api + workers, realtime
    # While a is away, b writes through host two.
    texts = [f"missed {i} {unique_name()}" for i in range(5)]
    for t in texts:
        send_message(sb, b, chat, t)
    b.ok("PATCH", "/user", {"avatar_url": "https://example.com/away.png"})

    # a's client reconnects to host two, with its cookie and last_event_id.
    a2 = a.on(two)
    s = a2.socket(query=f"?last_event_id={last}")
    replayed = []
    while len([m for m in replayed if m["action"] == "new_message"]) < len(texts):
        replayed.append(s.recv())
    ids = [m["event_id"] for m in replayed]
    assert ids == sorted(set(ids)) and ids[0] > last, ids
    assert [m["data"]["message"]["message"] for m in replayed
            if m["action"] == "new_message"] == texts
    # Exactly what the outbox holds for a after `last`, nothing more, once.
    want = [r[0] for r in two.sql("SELECT id, recipients FROM outbox WHERE id > ? "
                                  "AND session_id IS NULL ORDER BY id", last)
            if a.user["id"] in json.loads(r[1])]
    got = ids + [m["event_id"] for m in s.ping_barrier() if "event_id" in m]
    assert got == want, (got, want)
    # Then live delivery goes on.
    send_message(sb, b, chat, "live again")
    assert next_of(s, "new_message")["data"]["message"]["message"] == "live again"


def test_outbox_ids_become_visible_in_order_with_writers_on_both_hosts(hosts):
    """Writers on both hosts commit events as fast as they can while a
    tailer reads `id > last` in a loop: no id may ever appear behind the
    tailer (it would be skipped for good)."""
    one, two = hosts
    clients = [registered(st) for st in (one, two) for _ in range(4)]
    start = one.sql("SELECT coalesce(max(id), 0) FROM outbox")[0][0]
    stop = threading.Event()
    errors = []

    def write(c):
        i = 0
        while not stop.is_set():
            i += 1
            r = c.request("PATCH", "/user", {"avatar_url": f"https://example.com/{i}.png"})
            if r.status_code != 200:
                errors.append(r.text)

    seen = []
    late = []
    tail_stop = threading.Event()

    def tail():
        con = one.cluster.connect(one.pg_name)
        last = start
        try:
            final = False
            while not final:
                final = tail_stop.is_set()  # one more pass after the writers ended
                cur = con.cursor()
                cur.execute("SELECT id FROM outbox WHERE id > %s ORDER BY id", (last,))
                ids = [r[0] for r in cur.fetchall()]
                if ids:
                    seen.extend(ids)
                    last = ids[-1]
                # Anything below `last` that was not seen has appeared late.
                cur.execute("SELECT id FROM outbox WHERE id > %s AND id <= %s", (start, last))
                missing = {r[0] for r in cur.fetchall()} - set(seen)
                if missing:
                    late.extend(sorted(missing))
                    seen.extend(sorted(missing))
        finally:
            con.close()

    threads = [threading.Thread(target=write, args=(c,)) for c in clients]
    tailer = threading.Thread(target=tail)
    tailer.start()
    for t in threads:
        t.start()
    time.sleep(4)
    stop.set()
    for t in threads:
        t.join()
    tail_stop.set()
    tailer.join()
    assert not errors, errors[:3]
    total = one.sql("SELECT count(*) FROM outbox WHERE id > ?", start)[0][0]
    assert total > 100, total  # the writers really wrote, from both hosts
    assert not late, f"{len(late)} ids became visible behind the tailer: {late[:10]}"
    final = [r[0] for r in one.sql("SELECT id FROM outbox WHERE id > ? ORDER BY id", start)]
    assert sorted(set(seen)) == final
