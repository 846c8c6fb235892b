"""Group commit in nova-realtime (issue 12): socket actions that arrive
together commit in one transaction, each in its own savepoint, with the
replies, events and order of running them one by one.

Frames that must arrive together are written to the socket in one send
(one TCP segment through nginx), so that the daemon reads them in one pass
of its loop; the batches are counted by its metrics."""

import json
import os
import signal
import threading
import time

import websocket

from support import befriend, make_group, metric, scrape, uid

BATCHES = "nova_realtime_batches_total"
WRITES = "nova_realtime_batched_writes_total"


def frames(*packets):
    """Client frames (masked, as RFC 6455 wants) for packets, as one bytes."""
    out = b""
    for p in packets:
        f = websocket.ABNF.create_frame(json.dumps(p), websocket.ABNF.OPCODE_TEXT)
        f.get_mask_key = os.urandom
        out += f.format()
    return out


def send_together(sock, *packets):
    sock.ws.sock.sendall(frames(*packets))


def send(rid, chat, content):
    return {"action": "send_message", "request_id": rid, "data": {"chat_id": chat, "content": content}}


def shape(msgs):
    """What a socket saw, without the ids that differ between two runs."""
    return [(m["action"], m.get("request_id"), m.get("code"),
             (m.get("data") or {}).get("message", {}).get("message")
             if m["action"] == "new_message" else None) for m in msgs]


def rt_metrics(stack):
    return scrape(stack, "/metrics/realtime")


# A batch takes no more actions after rt_batch_ms: generous here, so that
# a slow (sanitizer) build still takes the frames that arrived together.
ONE_PASS = {"NOVA_RT_BATCH_MS": "2000"}


def test_a_batch_with_a_failing_action_in_the_middle(make_stack):
    st = make_stack(env=ONE_PASS)
    a, b, stranger = st.client(), st.client(), st.client()
    for c in (a, b, stranger):
        c.register()
    chat = befriend(a, b)
    foreign = befriend(b, stranger)  # a is not in it: sending there fails
    together, alone = a.socket(), a.socket()
    together.ping_barrier()
    alone.ping_barrier()
    packets = [send(1, chat, "first"), send(2, foreign, "not mine"), {"action": "nope",
                                                                      "request_id": 3},
               send(4, chat, "second"), {"action": "ping", "request_id": 5}]

    before = rt_metrics(st)
    send_together(together, *packets)
    got = together.ping_barrier()  # its own ping comes after the batch
    after = rt_metrics(st)
    assert metric(after, WRITES) - metric(before, WRITES) == 3
    assert metric(after, BATCHES) - metric(before, BATCHES) == 1, "the frames were one batch"
    assert metric(after, "nova_db_errors_total", kind="internal") == 0, st.log_text("realtime")
    assert [x[:3] for x in shape(got)] == [
        ("new_message", 1, None), ("messages_read", 1, None), ("error", 2, 400),
        ("error", 3, 400), ("new_message", 4, None), ("messages_read", 4, None),
        ("pong", 5, None)], got
    # The two good messages are committed, the failed one changed nothing.
    texts = [r[0] for r in st.sql("SELECT content FROM messages WHERE sender_id = ? ORDER BY id",
                                  uid(a))]
    assert texts == ["first", "second"], texts

    # The same packets one at a time, each after the previous one's answer,
    # on another socket of the same user, give what the batch gave.
    alone.ping_barrier()  # (it saw the batch's events too)
    solo = []
    for p in packets:
        alone.send(p)
        solo += alone.ping_barrier()
    assert shape(solo) == shape(got), (solo, got)
    together.close()
    alone.close()


def test_a_lone_action_commits_alone_at_once(make_stack):
    st = make_stack()
    a, b = st.client(), st.client()
    a.register()
    b.register()
    chat = befriend(a, b)
    s = a.socket()
    s.ping_barrier()
    before = rt_metrics(st)
    s.send(send(9, chat, "alone"))
    msg = s.expect("new_message")
    assert msg["request_id"] == 9
    after = rt_metrics(st)
    assert metric(after, BATCHES) - metric(before, BATCHES) == 1
    assert metric(after, WRITES) - metric(before, WRITES) == 1
    s.close()


def test_events_keep_one_order_across_batches_of_many_sockets(make_stack):
    """Senders in one group each pipeline messages; every member's socket
    sees the same events in the same order, ids increasing, each sender's
    messages in the order sent, and the messages' ids in that order too."""
    st = make_stack(env=ONE_PASS)
    users = [st.client() for _ in range(4)]
    for u in users:
        u.register()
    for u in users[1:]:
        befriend(users[0], u)
    chat = make_group(users[0], users[1:])["chat_id"]
    socks = [u.socket() for u in users]
    for s in socks:
        s.ping_barrier()
    per_sender = 15
    before = rt_metrics(st)

    def pipeline(i):
        packets = [send(100 + k, chat, f"u{i} m{k}") for k in range(per_sender)]
        for k in range(0, per_sender, 5):
            send_together(socks[i], *packets[k:k + 5])

    threads = [threading.Thread(target=pipeline, args=(i,)) for i in range(len(users))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    total = per_sender * len(users)
    orders = []
    for i, s in enumerate(socks):
        news = []
        while len(news) < total:
            m = s.recv(timeout=20)
            assert m["action"] != "error", m
            if m["action"] == "new_message":
                news.append(m)
        ids = [m["event_id"] for m in news]
        assert ids == sorted(ids) and len(set(ids)) == total, ids
        orders.append([m["data"]["message"]["message"] for m in news])
        mine = [m["request_id"] for m in news if m["data"]["message"]["sender"]["id"] == uid(users[i])]
        assert mine == list(range(100, 100 + per_sender)), mine
    assert all(o == orders[0] for o in orders), "every socket saw one order"
    in_db = [r[0] for r in st.sql("SELECT content FROM messages WHERE chat_id = ? AND sender_id != 1 "
                                  "ORDER BY id", chat)]
    assert in_db == orders[0]
    after = rt_metrics(st)
    writes = metric(after, WRITES) - metric(before, WRITES)
    assert writes == total
    assert metric(after, BATCHES) - metric(before, BATCHES) < writes, "some actions shared a commit"
    for s in socks:
        s.close()


def test_kill_9_in_the_middle_of_batches_applies_each_action_whole_or_not(make_stack):
    """Senders pipeline batches while nova-realtime is killed: after it is
    back, every message either exists with all it wrote (its event, the
    sender's read mark) or not at all; every message whose new_message its
    sender saw exists; the database's invariants hold."""
    st = make_stack()
    users = [st.client() for _ in range(3)]
    for u in users:
        u.register()
    for u in users[1:]:
        befriend(users[0], u)
    chat = make_group(users[0], users[1:])["chat_id"]
    acked, stop = set(), threading.Event()

    def sender(i):
        s = users[i].socket()
        s.ping_barrier()
        k = 0
        try:
            while not stop.is_set():
                send_together(s, *[send(k + j + 1, chat, f"u{i} m{k + j}") for j in range(8)])
                k += 8
                time.sleep(0.005)
                s.ws.settimeout(0.01)
                try:
                    while True:
                        m = json.loads(s.ws.recv())
                        if m["action"] == "new_message" and m["request_id"]:
                            acked.add(m["data"]["message"]["message"])
                except (websocket.WebSocketTimeoutException, TimeoutError):
                    pass
        except (websocket.WebSocketException, OSError, json.JSONDecodeError):
            pass  # the daemon died under us

    threads = [threading.Thread(target=sender, args=(i,)) for i in range(len(users))]
    for t in threads:
        t.start()
    time.sleep(0.6)
    os.kill(st.procs["realtime"].pid, signal.SIGKILL)
    st.procs["realtime"].wait()
    stop.set()
    for t in threads:
        t.join(10)
    os.unlink(st.rt_sock)
    st.start_realtime()

    sent = {r[0]: r[1] for r in st.sql(
        "SELECT content, id FROM messages WHERE chat_id = ? AND sender_id != 1", chat)}
    assert sent, "some messages were committed before the kill"
    assert acked <= set(sent), acked - set(sent)
    # Each committed message has its new_message event: nothing half applied.
    events = st.sql("SELECT data FROM outbox WHERE action = 'new_message'")
    with_event = {json.loads(d)["message"]["message"] for (d,) in events}
    assert set(sent) <= with_event, set(sent) - with_event
    r = st.admin("check", check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    # And the daemon serves again.
    s = users[0].socket()
    s.ping_barrier()
    s.close()
