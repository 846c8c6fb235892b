"""Socket hardening (issue 9): large events and bursts, resuming through
them, the internal wake socket, large cookie headers, the write lock held by
another process, strict inputs (last_event_id, reply_to, unmasked and
oversized control frames), and permessage-deflate. Everything goes through
the real nginx at /ws/, with websocket-client or a minimal raw client
written here (for what websocket-client cannot send or negotiate)."""

import base64
import json
import os
import socket
import struct
import threading
import zlib

import pytest

from conftest import Socket, barrier, outbox_max

BIG_AVATAR = "data:image/png;base64," + "A" * 98000  # API.md §2: <= 100 000 chars


def befriend(a, b):
    a.ok("POST", "/friend/invite", {"id": b.user["id"], "comment": "", "source": "search"})
    inv = [i for i in b.ok("GET", "/friend/invitation") if i["sender"]["id"] == a.user["id"]]
    b.ok("POST", f"/friend/invitation/{inv[0]['id']}")


def group(owner, *members):
    for m in members:
        befriend(owner, m)
    return owner.ok("POST", "/chat/new", {"chat_name": "g",
                                          "chat_members": [m.user["id"] for m in members]})["chat_id"]


def registered(stack, n):
    out = []
    for _ in range(n):
        c = stack.client()
        c.register()
        out.append(c)
    return out


def events_for(stack, user_id, after):
    rows = stack.sql("SELECT id, action, recipients FROM outbox WHERE id > ? "
                     "AND session_id IS NULL ORDER BY id", after)
    return [(r[0], r[1]) for r in rows if user_id in json.loads(r[2])]


# --------------------------------------------------------------------------
# a minimal WebSocket client: raw frames, permessage-deflate


class RawSocket:
    """A WebSocket through nginx written by hand: any frame (masked or not,
    RSV1, any length), and the server's frames as they are."""

    def __init__(self, stack, token=None, query="", extensions=None, protocol=None,
                 origin=None, cookie=None):
        self.sock = socket.create_connection(("127.0.0.1", stack.port), timeout=10)
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [f"GET /ws/{query} HTTP/1.1", f"Host: 127.0.0.1:{stack.port}",
                 "Upgrade: websocket", "Connection: Upgrade",
                 f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13"]
        if cookie is None and token:
            cookie = f"sessionid={token}"
        if cookie:
            lines.append(f"Cookie: {cookie}")
        if extensions:
            lines.append(f"Sec-WebSocket-Extensions: {extensions}")
        if protocol:
            lines.append(f"Sec-WebSocket-Protocol: {protocol}")
        if origin:
            lines.append(f"Origin: {origin}")
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                break
            self.buf += chunk
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split()[1]) if lines and len(lines[0].split()) > 1 else None
        self.headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            self.headers[k.strip().lower()] = v.strip()
        self.deflate = "permessage-deflate" in self.headers.get("sec-websocket-extensions", "")
        self.inflater = zlib.decompressobj(-15)

    def send_frame(self, opcode, payload, masked=True, rsv1=False, fin=True):
        self.sock.sendall(self.frame_bytes(opcode, payload, masked, rsv1, fin))

    def send_bytewise(self, data):
        """One byte per segment: the daemon reads headers cut anywhere."""
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(len(data)):
            self.sock.send(data[i:i + 1])

    def frame_bytes(self, opcode, payload, masked=True, rsv1=False, fin=True):
        b0 = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode
        n = len(payload)
        mask_bit = 0x80 if masked else 0
        if n < 126:
            head = bytes([b0, mask_bit | n])
        elif n < 65536:
            head = bytes([b0, mask_bit | 126]) + struct.pack("!H", n)
        else:
            head = bytes([b0, mask_bit | 127]) + struct.pack("!Q", n)
        if masked:
            key = os.urandom(4)
            payload = bytes(c ^ key[i % 4] for i, c in enumerate(payload))
            head += key
        return head + payload

    def send_text(self, obj, compress=False):
        data = json.dumps(obj).encode()
        if compress:
            c = zlib.compressobj(wbits=-15)
            data = c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)
            assert data.endswith(b"\x00\x00\xff\xff")
            data = data[:-4]
        self.send_frame(0x1, data, rsv1=compress)

    def _need(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def recv_frame(self, timeout=10):
        """(fin, rsv1, opcode, payload as sent on the wire)."""
        self.sock.settimeout(timeout)
        b0, b1 = self._need(2)
        n = b1 & 0x7f
        if n == 126:
            n = struct.unpack("!H", self._need(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", self._need(8))[0]
        assert not b1 & 0x80, "server frames are never masked"
        return bool(b0 & 0x80), bool(b0 & 0x40), b0 & 0x0f, self._need(n)

    def recv_message(self, timeout=10):
        """(rsv1, payload as on the wire, number of frames) of the next
        message, its fragments put together; lws's own pings skipped."""
        parts, rsv1, frames = [], None, 0
        while True:
            fin, r1, op, payload = self.recv_frame(timeout)
            if op in (0x9, 0xA):
                continue
            assert op == (0x1 if rsv1 is None else 0x0), (op, payload[:100])
            if rsv1 is None:
                rsv1 = r1
            parts.append(payload)
            frames += 1
            if fin:
                return rsv1, b"".join(parts), frames

    def inflate(self, wire):
        return self.inflater.decompress(wire + b"\x00\x00\xff\xff")

    def recv(self, timeout=10):
        """The next text message as JSON (inflated when compressed), and
        whether it was compressed."""
        rsv1, wire, _ = self.recv_message(timeout)
        return json.loads(self.inflate(wire) if rsv1 else wire), rsv1

    def read_to_close(self, timeout=10):
        """(messages before the close, close code or None when it just dropped)."""
        msgs = []
        while True:
            try:
                fin, rsv1, op, payload = self.recv_frame(timeout)
            except (ConnectionError, OSError):
                return msgs, None
            if op == 0x8:
                return msgs, struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
            if op == 0x1:
                if rsv1:
                    payload = self.inflater.decompress(payload + b"\x00\x00\xff\xff")
                msgs.append(json.loads(payload))

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def pong_of(rid):
    return {"action": "pong", "request_id": rid, "ok": True, "data": None}


# --------------------------------------------------------------------------
# 3. large events: a burst to a group, and resuming through it

BURST = 60


def read_until(sock, count, out, closes):
    """Read new_message texts until `count` arrived or the socket closed."""
    try:
        while len(out) < count:
            m = sock.recv(timeout=60)
            if m["action"] == "new_message":
                out.append(m["data"]["message"]["message"])
    except Exception as e:  # the close, as the reader sees it
        closes.append(repr(e))


def test_a_burst_of_large_events_reaches_every_reader_that_keeps_reading(stack):
    big, m1, m2 = registered(stack, 3)
    big.ok("PATCH", "/user", {"avatar_url": BIG_AVATAR})
    chat = group(big, m1, m2)
    sender, r1, r2, r_own = big.socket(), m1.socket(), m2.socket(), big.socket()
    for s in (sender, r1, r2, r_own):
        s.ping_barrier()
    results = {}
    threads = []
    for name, s in (("m1", r1), ("m2", r2), ("own", r_own), ("sender", sender)):
        got, closes = [], []
        results[name] = (got, closes)
        t = threading.Thread(target=read_until, args=(s, BURST, got, closes))
        t.start()
        threads.append(t)
    # One burst: every message sent before any answer is read.
    for i in range(BURST):
        sender.send({"action": "send_message", "request_id": i + 1,
                     "data": {"chat_id": chat, "content": f"burst {i}"}})
    for t in threads:
        t.join(120)
    want = [f"burst {i}" for i in range(BURST)]
    for name, (got, closes) in results.items():
        assert closes == [], (name, closes, len(got))
        assert got == want, (name, len(got))
    assert "too slow" not in stack.log_text("realtime")
    for s in (sender, r1, r2, r_own):
        assert s.ping_barrier() is not None
        s.close()


def test_resuming_through_a_burst_of_large_events_gets_every_event(stack):
    big, m1 = registered(stack, 2)
    big.ok("PATCH", "/user", {"avatar_url": BIG_AVATAR})
    chat = group(big, m1)
    away = m1.socket()
    barrier(m1, away)
    last = outbox_max(stack)
    away.close()
    sender = big.socket()
    sender.ping_barrier()
    for i in range(BURST):
        sender.send({"action": "send_message", "request_id": i + 1,
                     "data": {"chat_id": chat, "content": f"missed {i}"}})
    got = 0
    while got < BURST:  # the sender's own new_message for each
        m = sender.recv(timeout=60)
        got += m["action"] == "new_message"
    expected = events_for(stack, m1.user["id"], last)
    assert [e[1] for e in expected].count("new_message") == BURST
    # Resume twice: each gets every missed event, in order, and stays open.
    for _ in range(2):
        s = m1.socket(query=f"?last_event_id={last}")
        msgs = [s.recv(timeout=60) for _ in expected]
        assert [(m["event_id"], m["action"]) for m in msgs] == expected
        texts = [m["data"]["message"]["message"] for m in msgs if m["action"] == "new_message"]
        assert texts == [f"missed {i}" for i in range(BURST)]
        assert s.ping_barrier() == []
        s.close()
    sender.close()


# --------------------------------------------------------------------------
# 5. nothing internal is reachable from /ws/


@pytest.mark.parametrize("protocol", ["nova-wake", "other", "nova-wake, other", "novax"])
def test_an_unknown_subprotocol_is_refused_with_400(stack, user, protocol):
    for token, origin in ((None, None), (user.token, None), (None, "http://evil.example")):
        s = RawSocket(stack, token, protocol=protocol, origin=origin)
        assert s.status == 400, (protocol, token is not None, origin, s.status)
        s.close()


@pytest.mark.parametrize("protocol", ["nova", "nova-wake, nova", "other,nova"])
def test_a_list_naming_nova_gets_the_nova_checks(stack, user, protocol):
    # A foreign Origin: 403, as for any upgrade.
    s = RawSocket(stack, user.token, protocol=protocol, origin="http://evil.example")
    assert s.status == 403, s.status
    s.close()
    # No session: the error packet 403 and close 1008.
    s = RawSocket(stack, protocol=protocol)
    assert s.status == 101 and s.headers.get("sec-websocket-protocol") == "nova", s.headers
    msgs, code = s.read_to_close()
    assert [(m["action"], m["code"]) for m in msgs] == [("error", 403)], msgs
    assert code == 1008
    s.close()
    # With one: a working socket.
    s = RawSocket(stack, user.token, protocol=protocol)
    assert s.status == 101
    s.send_text({"action": "ping", "request_id": 8})
    assert s.recv()[0] == pong_of(8)
    s.close()


# --------------------------------------------------------------------------
# 6. large cookie headers


def cookie_header(token, size, where):
    parts, n = [], 0
    while len("; ".join(parts)) < size:
        parts.append(f"_ga_{n:04d}=GA1.1.{'7' * 40}.{n:010d}")
        n += 1
    session = f"sessionid={token}"
    if where == "middle":
        parts.insert(len(parts) // 2, session)
    else:
        parts.append(session)
    return "; ".join(parts)


@pytest.mark.parametrize("size", [3900, 7500])
@pytest.mark.parametrize("where", ["middle", "end"])
def test_upgrade_with_a_large_cookie_header(stack, user, size, where):
    cookie = cookie_header(user.token, size, where)
    assert size <= len(cookie) < 8192
    # REST accepts it ...
    r = user.http.get(stack.base + "/api/user", headers={"Cookie": cookie}, timeout=10)
    assert r.status_code == 200, r.text
    # ... and so does the socket, bound to the session.
    sock = Socket(stack, None, headers=[f"Cookie: {cookie}"])
    rid = sock.request("ping")
    assert sock.recv() == pong_of(rid)
    user.ok("PATCH", "/user", {"avatar_url": "https://example.com/c.png"})
    assert sock.recv()["action"] == "profile_change"
    sock.close()


def test_upgrade_with_headers_as_large_as_nginx_accepts(stack, user):
    """nginx takes lines up to 8 KiB and 32 KiB of headers in all: so does
    the socket (here about 28 KiB, the session cookie last of many)."""
    cookie = cookie_header(user.token, 7500, "end")
    extra = [f"X-Analytics-{i}: {'v' * 7000}" for i in range(3)]
    assert len(cookie) + sum(map(len, extra)) > 28000
    sock = Socket(stack, None, headers=extra + [f"Cookie: {cookie}"])
    rid = sock.request("ping")
    assert sock.recv() == pong_of(rid)
    sock.close()


# --------------------------------------------------------------------------
# 8. another process holding the write lock


def test_sockets_stay_responsive_while_another_process_holds_the_write_lock(stack):
    a, b = registered(stack, 2)
    chat = group(a, b)
    pinger, writer = a.socket(), a.socket()
    pinger.ping_barrier()
    writer.ping_barrier()
    locked, release, released = threading.Event(), threading.Event(), threading.Event()

    def hold():
        con = stack.writer().begin()
        locked.set()
        release.wait(30)
        con.commit()
        con.close()
        released.set()

    holder = threading.Thread(target=hold)
    holder.start()
    assert locked.wait(10)
    writer.request("send_message", {"chat_id": chat, "content": "during the hold"}, 501)
    writer.request("send_message", {"chat_id": chat, "content": "after it"}, 502)
    # Ping round trips while the lock is held: far more than K fit in the
    # hold, and the hold ends only after K of them (or a ping went
    # unanswered for 5 s, which fails below).
    K, pongs = 20, 0
    try:
        for rid in range(1000, 1000 + K):
            pinger.send({"action": "ping", "request_id": rid})
            assert pinger.recv(timeout=5) == pong_of(rid)
            pongs += 1
    finally:
        release.set()
        holder.join(30)
    assert pongs == K
    assert released.is_set()
    # Both sends are answered after the release, in the order sent.
    got = [writer.recv(timeout=30) for _ in range(4)]
    assert [(m["action"], m["request_id"]) for m in got] == [
        ("new_message", 501), ("messages_read", 501), ("new_message", 502), ("messages_read", 502)]
    assert [m["data"]["message"]["message"] for m in got if m["action"] == "new_message"] == [
        "during the hold", "after it"]
    pinger.close()
    writer.close()


# --------------------------------------------------------------------------
# 13. loose inputs


@pytest.mark.parametrize("value", ["+5", "%35", "01", "-1", "5a", "%205", "1" * 64,
                                   "1" * 20, "9223372036854775808", ""])
def test_last_event_id_must_be_a_plain_decimal(stack, user, value):
    s = RawSocket(stack, user.token, query=f"?last_event_id={value}")
    assert s.status == 101
    msg, _ = s.recv()
    assert msg["action"] == "error" and msg["code"] == 400 and "last_event_id" in msg["error"], msg
    # The socket then works live.
    s.send_text({"action": "ping", "request_id": 7})
    assert s.recv()[0] == pong_of(7)
    s.close()


@pytest.mark.parametrize("value", ["0", "{newest}", "9223372036854775807"])
def test_last_event_id_plain_decimals_are_accepted(stack, user, value):
    value = value.format(newest=outbox_max(stack))
    s = user.socket(query=f"?last_event_id={value}")
    seen = s.ping_barrier()
    assert all(m["action"] != "error" for m in seen), seen
    s.close()


@pytest.mark.parametrize("reply_to", [0, -1, -9223372036854775808])
def test_reply_to_zero_or_negative_is_not_a_message(stack, reply_to):
    a, b = registered(stack, 2)
    chat = group(a, b)
    s = a.socket()
    s.ping_barrier()
    s.request("send_message", {"chat_id": chat, "content": "x", "reply_to": reply_to}, 9)
    assert s.recv() == {"action": "error", "request_id": 9, "ok": False, "code": 400,
                        "error": "reply_to must be a message id"}
    # null (like absent) is no reply
    s.request("send_message", {"chat_id": chat, "content": "y", "reply_to": None}, 10)
    m = s.recv()
    assert m["action"] == "new_message" and m["request_id"] == 10, m
    assert m["data"]["message"]["reply_to_id"] is None
    s.close()


def test_an_unmasked_client_frame_closes_1002(stack, user):
    s = RawSocket(stack, user.token)
    s.send_text({"action": "ping", "request_id": 1})
    assert s.recv()[0] == pong_of(1)
    s.send_frame(0x1, json.dumps({"action": "ping", "request_id": 2}).encode(), masked=False)
    msgs, code = s.read_to_close()
    assert msgs == [] and code == 1002, (msgs, code)  # the unmasked ping ran nothing
    s.close()


@pytest.mark.parametrize("opcode", [0x9, 0xA, 0x8])
def test_a_control_frame_over_125_bytes_closes_1002(stack, user, opcode):
    s = RawSocket(stack, user.token)
    s.send_text({"action": "ping", "request_id": 1})
    assert s.recv()[0] == pong_of(1)
    s.send_frame(opcode, b"p" * 200)
    msgs, code = s.read_to_close()
    assert msgs == [] and code == 1002, (msgs, code)
    s.close()


def ping_frame(raw, rid, size):
    text = json.dumps({"action": "ping", "request_id": rid, "data": "x" * size}).encode()
    return raw.frame_bytes(0x1, text)


def test_frames_cut_anywhere_are_followed(stack, user):
    """Frame headers of every length form (7, 16 and 64 bit) sent one byte
    at a time, or several frames in one write: the guard follows them."""
    s = RawSocket(stack, user.token)
    s.send_bytewise(ping_frame(s, 1, 10) + ping_frame(s, 2, 300) + s.frame_bytes(0x9, b"hi"))
    frames = [s.recv_frame()[2:] for _ in range(3)]  # lws may send its pong first
    assert sorted(frames) == sorted([(0x1, json.dumps(pong_of(1), separators=(",", ":")).encode()),
                                     (0x1, json.dumps(pong_of(2), separators=(",", ":")).encode()),
                                     (0xA, b"hi")]), frames
    big = ping_frame(s, 3, 70000)  # 64-bit length: its 14 header bytes one by one
    s.send_bytewise(big[:20])
    s.sock.sendall(big[20:])
    assert s.recv()[0] == pong_of(3)
    s.close()
    s = RawSocket(stack, user.token)
    s.sock.sendall(ping_frame(s, 4, 70000) + ping_frame(s, 5, 5) + ping_frame(s, 6, 1000))
    assert [s.recv()[0] for _ in range(3)] == [pong_of(4), pong_of(5), pong_of(6)]
    # and an unmasked one whose header comes byte by byte still closes
    # 1002 (nothing is sent after the header: writing to a closed
    # connection would reset it before the close frame is read)
    s.send_bytewise(s.frame_bytes(0x1, b'{"action":"ping","request_id":7}', masked=False)[:2])
    msgs, code = s.read_to_close()
    assert msgs == [] and code == 1002, (msgs, code)
    s.close()


def test_a_control_frame_of_125_bytes_is_fine(stack, user):
    s = RawSocket(stack, user.token)
    s.send_frame(0x9, b"p" * 125)
    fin, rsv1, op, payload = s.recv_frame()
    assert (op, payload) == (0xA, b"p" * 125)
    s.send_text({"action": "ping", "request_id": 3})
    assert s.recv()[0] == pong_of(3)
    s.close()


# --------------------------------------------------------------------------
# 11. permessage-deflate


def test_permessage_deflate_is_negotiated_and_inflates_to_the_same_json(stack):
    a, b = registered(stack, 2)
    # An avatar that does not compress: its events take many fragments.
    b.ok("PATCH", "/user", {"avatar_url": "data:image/png;base64," +
                            base64.b64encode(os.urandom(73500)).decode()})
    chat = group(a, b)
    s = RawSocket(stack, a.token, extensions="permessage-deflate; client_max_window_bits")
    assert s.status == 101 and s.deflate, s.headers
    # An uncompressed client message is fine, a compressed one too.
    s.send_text({"action": "ping", "request_id": 1})
    assert s.recv() == (pong_of(1), True)
    s.send_text({"action": "ping", "request_id": 2}, compress=True)
    assert s.recv() == (pong_of(2), True)
    s.send_text({"action": "ping", "request_id": 3}, compress=True)
    assert s.recv() == (pong_of(3), True)
    plain = a.socket()
    plain.ping_barrier()
    sa, sb = a.socket(), b.socket()
    sa.ping_barrier()
    sb.ping_barrier()
    for sender, text in ((sa, "hello " * 1000), (sb, "from b"), (sa, "again " * 1000)):
        sender.request("send_message", {"chat_id": chat, "content": text})
        for action in ("new_message", "messages_read"):
            rsv1, wire, frames = s.recv_message()
            assert rsv1
            inflated = s.inflate(wire)
            event = json.loads(inflated)
            assert event["action"] == action, event
            # the same JSON as a socket without compression receives
            assert event == plain.recv()
            if action == "new_message" and sender is sa:
                assert len(wire) * 5 < len(inflated), (len(wire), len(inflated))
            if action == "new_message" and sender is sb:
                assert len(inflated) > 98000 and frames > 1, (len(inflated), frames)
    for x in (plain, sa, sb):
        x.close()
    s.close()


@pytest.mark.parametrize("offer", ["permessage-deflate", "permessage-deflate; server_no_context_takeover",
                                   "permessage-deflate; client_no_context_takeover",
                                   "permessage-deflate; server_max_window_bits=10"])
def test_compressed_client_messages_keep_their_context(stack, user, offer):
    """The client compresses with context takeover (it may, whatever the
    offer): every message must inflate, not only the first."""
    s = RawSocket(stack, user.token, extensions=offer)
    assert s.status == 101 and s.deflate, s.headers
    comp = zlib.compressobj(wbits=-15)
    for rid in range(1, 6):
        data = comp.compress(json.dumps({"action": "ping", "request_id": rid}).encode())
        data += comp.flush(zlib.Z_SYNC_FLUSH)
        s.send_frame(0x1, data[:-4], rsv1=True)
        assert s.recv() == (pong_of(rid), True)
    s.close()


def test_compressed_messages_are_bounded_once_inflated(stack, user):
    s = RawSocket(stack, user.token, extensions="permessage-deflate")
    assert s.deflate
    # inflating to more than lws's 1 KiB buffer, within the limit: fine
    s.send_text({"action": "ping", "request_id": 1, "data": "z" * 100000}, compress=True)
    assert s.recv() == (pong_of(1), True)
    # a small frame that inflates past the message limit: close 1009
    c = zlib.compressobj(wbits=-15)
    bomb = c.compress(b'{"action": "ping", "data": "' + b"0" * 20000000 + b'"}')
    bomb += c.flush(zlib.Z_SYNC_FLUSH)
    assert len(bomb) < 100000
    s.send_frame(0x1, bomb[:-4], rsv1=True)
    msgs, code = s.read_to_close()
    assert msgs == [] and code == 1009, (msgs, code)
    s.close()


def test_a_client_that_does_not_offer_deflate_gets_plain_frames(stack, user):
    s = RawSocket(stack, user.token)
    assert s.status == 101 and "sec-websocket-extensions" not in s.headers, s.headers
    s.send_text({"action": "ping", "request_id": 4})
    assert s.recv() == (pong_of(4), False)
    s.close()


def test_deflate_can_be_turned_off(make_stack):
    st = make_stack(env={"NOVA_WS_DEFLATE": "0"})
    c = st.client()
    c.register()
    s = RawSocket(st, c.token, extensions="permessage-deflate; client_max_window_bits")
    assert s.status == 101 and not s.deflate, s.headers
    s.send_text({"action": "ping", "request_id": 6})
    assert s.recv() == (pong_of(6), False)
    s.close()
