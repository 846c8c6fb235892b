"""The WebSocket at /ws/ (API.md §5): authentication, ping, malformed input,
message size and fragments, notification routing and envelope, Origin."""
import json

import pytest
import websocket

from conftest import TIGHT_ENV, Socket, barrier, outbox_max


def assert_error(msg, request_id, code=400):
    assert set(msg) == {"action", "request_id", "ok", "code", "error"}, msg
    assert msg["action"] == "error" and msg["ok"] is False, msg
    assert msg["code"] == code and msg["request_id"] == request_id, msg
    assert isinstance(msg["error"], str) and msg["error"], msg


def assert_pong(sock, request_id=None):
    """Ping (with the given id) and expect exactly the pong: the socket works."""
    rid = sock.request("ping", request_id=request_id)
    assert sock.recv() == {"action": "pong", "request_id": rid, "ok": True, "data": None}


def assert_notification(msg, action):
    assert msg["action"] == action, msg
    assert set(msg) == {"action", "request_id", "ok", "event_id", "data"}, msg
    assert msg["request_id"] == 0 and msg["ok"] is True, msg
    assert isinstance(msg["event_id"], int) and not isinstance(msg["event_id"], bool), msg
    assert msg["event_id"] > 0, msg


# --------------------------------------------------------------------------
# connect


def logged_out_token(stack):
    c = stack.client()
    c.register()
    t = c.token
    c.ok("POST", "/user/logout")
    return t


@pytest.mark.parametrize("kind", ["none", "garbage", "unknown", "logged_out"])
def test_connect_without_a_valid_session(stack, kind):
    token = {"none": None, "garbage": "garbage", "unknown": "A" * 43, "logged_out": None}[kind]
    if kind == "logged_out":
        token = logged_out_token(stack)
    sock = Socket(stack, token)
    msgs, code = sock.read_to_close()
    assert len(msgs) == 1, msgs
    assert_error(msgs[0], 0, 403)
    assert code == 1008  # docs/API.md "Limits and closes"


def test_connect_with_the_cookie_among_others(stack, user):
    sock = Socket(stack, None, headers=[f"Cookie: a=b; sessionid={user.token}; c=d"])
    assert_pong(sock, 5)
    sock.close()


# --------------------------------------------------------------------------
# ping


def test_ping_echoes_the_request_id(user):
    sock = user.socket()
    for rid in (1, 77, 0, 2**62, 9223372036854775807):
        assert_pong(sock, rid)
    sock.send({"action": "ping"})
    assert sock.recv() == {"action": "pong", "request_id": 0, "ok": True, "data": None}
    sock.send({"action": "ping", "request_id": 12, "data": {"any": ["thing"]}})
    assert sock.recv() == {"action": "pong", "request_id": 12, "ok": True, "data": None}
    sock.close()


def test_pings_in_a_row_answer_in_order(user):
    sock = user.socket()
    for rid in range(1, 21):
        sock.send({"action": "ping", "request_id": rid})
    assert [sock.recv()["request_id"] for _ in range(20)] == list(range(1, 21))
    sock.close()


# --------------------------------------------------------------------------
# malformed input: error packet 400, the socket keeps working


MALFORMED = [
    ("not json", "hello", 0),
    ("empty text", "", 0),
    ("broken json", '{"action": "ping"', 0),
    ("trailing garbage", '{"action": "ping", "request_id": 3} x', 0),
    ("json array", '["ping"]', 0),
    ("json number", "42", 0),
    ("json string", '"ping"', 0),
    ("json null", "null", 0),
    ("json true", "true", 0),
    ("missing action", '{"request_id": 0, "data": null}', 0),
    ("missing action, no id", "{}", 0),
    ("action number", '{"action": 1}', 0),
    ("action null", '{"action": null}', 0),
    ("action array", '{"action": ["ping"]}', 0),
    ("request_id string", '{"action": "ping", "request_id": "5"}', 0),
    ("request_id float", '{"action": "ping", "request_id": 1.5}', 0),
    ("request_id bool", '{"action": "ping", "request_id": true}', 0),
    ("request_id null", '{"action": "ping", "request_id": null}', 0),
    ("request_id object", '{"action": "ping", "request_id": {}}', 0),
    ("request_id beyond 64 bits", '{"action": "ping", "request_id": 9223372036854775808}', 0),
    ("unknown action", '{"action": "frobnicate", "request_id": 9}', 9),
    ("unknown action, no id", '{"action": "frobnicate"}', 0),
    ("action case", '{"action": "PING", "request_id": 10}', 10),
    ("empty action", '{"action": "", "request_id": 11}', 11),
    ("deep nesting", '{"action": "ping", "request_id": 4, "data": ' + "[" * 100 + "]" * 100 + "}", 0),
    ("NaN", '{"action": "ping", "request_id": 4, "data": NaN}', 0),
]


@pytest.mark.parametrize("name,text,rid", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_input_gets_an_error_and_the_socket_keeps_working(user, name, text, rid):
    sock = user.socket()
    assert_pong(sock, 1)
    sock.send(text)
    assert_error(sock.recv(), rid)
    assert_pong(sock, 2)
    # twice in a row, still fine
    sock.send(text)
    sock.send(text)
    assert_error(sock.recv(), rid)
    assert_error(sock.recv(), rid)
    assert_pong(sock, 3)
    sock.close()


def test_nesting_32_is_fine(user):
    sock = user.socket()
    sock.send('{"action": "ping", "request_id": 4, "data": ' + "[" * 31 + "]" * 31 + "}")
    assert sock.recv() == {"action": "pong", "request_id": 4, "ok": True, "data": None}
    sock.close()


def test_binary_frames_get_an_error(user):
    sock = user.socket()
    sock.send_binary(json.dumps({"action": "ping", "request_id": 5}).encode())
    assert_error(sock.recv(), 0)
    sock.send_binary(b"\x00\xff\x10")
    assert_error(sock.recv(), 0)
    assert_pong(sock, 6)
    sock.close()


def test_malformed_input_keeps_notifications_flowing(user):
    sock = user.socket()
    sock.send("junk")
    assert_error(sock.recv(), 0)
    assert barrier(user, sock) == []
    sock.close()


# --------------------------------------------------------------------------
# message size and fragments


def ping_of_size(size, rid=3):
    head = '{"action": "ping", "request_id": %d, "data": "' % rid
    text = head + "x" * (size - len(head) - 2) + '"}'
    assert len(text.encode()) == size
    return text


def test_message_at_the_limit_is_fine(tight_stack):
    limit = int(TIGHT_ENV["NOVA_WS_MAX_FRAME"])
    c = tight_stack.client()
    c.register()
    sock = c.socket()
    sock.send(ping_of_size(limit, 3))
    assert sock.recv() == {"action": "pong", "request_id": 3, "ok": True, "data": None}
    # and as fragments adding up to exactly the limit
    text = ping_of_size(limit, 4)
    sock.send_fragments([text[:1000], text[1000:3000], text[3000:]])
    assert sock.recv() == {"action": "pong", "request_id": 4, "ok": True, "data": None}
    sock.close()


@pytest.mark.parametrize("fragments", [1, 3])
def test_message_over_the_limit_closes_1009(tight_stack, fragments):
    limit = int(TIGHT_ENV["NOVA_WS_MAX_FRAME"])
    c = tight_stack.client()
    c.register()
    sock = c.socket()
    assert_pong(sock, 1)
    text = ping_of_size(limit + 1, 3)
    if fragments == 1:
        sock.send(text)
    else:
        third = len(text) // 3
        sock.send_fragments([text[:third], text[third:2 * third], text[2 * third:]])
    msgs, code = sock.read_to_close()
    assert msgs == [] and code == 1009, (msgs, code)
    # the session is untouched: a new socket works
    sock2 = c.socket()
    assert_pong(sock2, 2)
    sock2.close()


def test_default_limit_allows_large_messages(user):
    sock = user.socket()
    sock.send(ping_of_size(131072, 8))
    assert sock.recv() == {"action": "pong", "request_id": 8, "ok": True, "data": None}
    sock.send(ping_of_size(131073, 9))
    msgs, code = sock.read_to_close()
    assert msgs == [] and code == 1009, (msgs, code)


def test_fragmented_messages_are_reassembled(user):
    sock = user.socket()
    text = json.dumps({"action": "ping", "request_id": 31, "data": "y" * 300})
    sock.send_fragments([text[:5], text[5:6], text[6:200], text[200:]])
    assert sock.recv() == {"action": "pong", "request_id": 31, "ok": True, "data": None}
    # a control frame between fragments is allowed
    sock.ws.send_frame(websocket.ABNF.create_frame(text[:10], websocket.ABNF.OPCODE_TEXT, fin=0))
    sock.ws.ping("hi")
    sock.ws.send_frame(websocket.ABNF.create_frame(text[10:], websocket.ABNF.OPCODE_CONT, fin=1))
    assert sock.recv() == {"action": "pong", "request_id": 31, "ok": True, "data": None}
    # a fragmented malformed message is one error
    sock.send_fragments(["not ", "json"])
    assert_error(sock.recv(), 0)
    # fragmented binary: an error too
    sock.send_fragments([b"ab", b"cd"], opcode=websocket.ABNF.OPCODE_BINARY)
    assert_error(sock.recv(), 0)
    assert_pong(sock, 32)
    sock.close()


def test_utf8_split_across_fragments(user):
    sock = user.socket()
    raw = json.dumps({"action": "ping", "request_id": 40, "data": "héllo wörld"},
                     ensure_ascii=False).encode()
    cut = raw.index("é".encode()) + 1  # in the middle of a character
    sock.ws.send_frame(websocket.ABNF.create_frame(raw[:cut], websocket.ABNF.OPCODE_TEXT, fin=0))
    sock.ws.send_frame(websocket.ABNF.create_frame(raw[cut:], websocket.ABNF.OPCODE_CONT, fin=1))
    assert sock.recv() == {"action": "pong", "request_id": 40, "ok": True, "data": None}
    sock.close()


# --------------------------------------------------------------------------
# notifications


def test_profile_change_reaches_all_sockets_of_the_user_only(stack):
    u = stack.client()
    u.register()
    u2 = stack.client()
    u2.login(u.user["user_name"])
    v = stack.client()
    v.register()
    sockets = [u.socket(), u.socket(), u2.socket()]
    sv = v.socket()
    for s in sockets + [sv]:
        s.ping_barrier()
    before = outbox_max(stack)
    u.ok("PATCH", "/user", {"avatar_url": "http://x.example/1.png"})
    got = []
    for s in sockets:
        m = s.recv()
        assert_notification(m, "profile_change")
        assert m["data"] is None
        assert m["event_id"] > before
        got.append(m["event_id"])
    assert len(set(got)) == 1  # one event, the same id everywhere
    # v's socket got nothing of it
    assert barrier(v, sv) == []
    for s in sockets:
        assert s.ping_barrier() == []
    for s in sockets + [sv]:
        s.close()


def test_logout_reaches_only_the_ended_sessions_sockets(stack):
    a = stack.client()
    a.register()
    b = stack.client()
    b.login(a.user["user_name"])
    sa1, sa2, sb = a.socket(), a.socket(), b.socket()
    for s in (sa1, sa2, sb):
        s.ping_barrier()
    a.ok("POST", "/user/logout")
    for s in (sa1, sa2):
        msgs, code = s.read_to_close()
        assert len(msgs) == 1, msgs
        assert_notification(msgs[0], "logout")
        assert msgs[0]["data"] is None
        assert code == 1000  # docs/API.md "Limits and closes"
    assert barrier(b, sb) == []
    assert_pong(sb, 3)
    sb.close()


def test_event_ids_increase_strictly_on_a_socket(stack):
    a = stack.client()
    a.register()
    b = stack.client()
    b.login(a.user["user_name"])
    s1, s2 = a.socket(), b.socket()
    s1.ping_barrier()
    s2.ping_barrier()
    for i in range(5):
        (a if i % 2 else b).ok("PATCH", "/user", {"avatar_url": f"http://x.example/{i}.png"})
    seen = {}
    for s, key in ((s1, "s1"), (s2, "s2")):
        msgs = [s.recv() for _ in range(5)]
        for m in msgs:
            assert_notification(m, "profile_change")
        ids = [m["event_id"] for m in msgs]
        assert all(x < y for x, y in zip(ids, ids[1:])), ids
        seen[key] = ids
    assert seen["s1"] == seen["s2"]
    # ids are outbox rows: strictly newer than anything before them
    last = seen["s1"][-1]
    assert stack.sql("SELECT action FROM outbox WHERE id = ?", last) == [("profile_change",)]
    # the next event keeps increasing
    a.ok("PATCH", "/user", {"avatar_url": ""})
    m = s1.recv()
    assert_notification(m, "profile_change")
    assert m["event_id"] > last
    s1.close()
    s2.close()


def test_notifications_after_malformed_input_and_pings_keep_their_envelope(user):
    sock = user.socket()
    sock.send("[]")
    assert_error(sock.recv(), 0)
    assert_pong(sock, 6)
    user.ok("PATCH", "/user", {"avatar_url": "http://x.example/z.png"})
    m = sock.recv()
    assert_notification(m, "profile_change")
    assert m["data"] is None
    sock.close()


def test_socket_of_a_rotated_session_stays_bound(stack):
    a = stack.client()
    a.register()
    sock = a.socket()
    sock.ping_barrier()
    a.ok("PATCH", "/user", {"old_password": a.password, "new_password": "rotated-1"})
    a.password = "rotated-1"
    assert_notification(sock.expect("profile_change"), "profile_change")
    # still this session's socket: the next logout of it reaches it
    a.ok("POST", "/user/logout")
    msgs, _ = sock.read_to_close()
    assert [m["action"] for m in msgs] == ["logout"], msgs


# --------------------------------------------------------------------------
# Origin


def bad_status(stack, token, origin):
    with pytest.raises(websocket.WebSocketBadStatusException) as info:
        Socket(stack, token, origin=origin)
    return info.value.status_code


@pytest.mark.parametrize("origin", [
    "http://evil.example", "null", "http://127.0.0.1", "http://127.0.0.1:1",
    "https://{host}", "http://{host}.evil.example", "http://localhost:{port}",
])
def test_foreign_origin_is_refused_with_403(stack, user, origin):
    origin = origin.format(host=f"127.0.0.1:{stack.port}", port=stack.port)
    assert bad_status(stack, user.token, origin) == 403
    assert bad_status(stack, None, origin) == 403


def test_own_origin_and_no_origin_are_allowed(stack, user):
    for sock in (Socket(stack, user.token, origin=f"http://127.0.0.1:{stack.port}"),
                 Socket(stack, user.token, suppress_origin=True),
                 user.socket()):
        assert_pong(sock, 1)
        sock.close()


def test_listed_origins_are_allowed(tight_stack):
    c = tight_stack.client()
    c.register()
    for origin in ("http://app.example", "https://second.example",
                   f"http://127.0.0.1:{tight_stack.port}"):
        sock = Socket(tight_stack, c.token, origin=origin)
        assert_pong(sock, 2)
        sock.close()
    for origin in ("http://evil.example", "http://app.example:81", "https://app.example"):
        assert bad_status(tight_stack, c.token, origin) == 403


def test_listed_origin_is_not_allowed_by_default(stack, user):
    assert bad_status(stack, user.token, "http://app.example") == 403
