"""The first thing a newcomer checks: the stack answers and a socket pongs."""
from conftest import fail


def test_no_session_is_403_json(client):
    assert fail(client.get("/user"), 403) == "Invalid Session"


def test_register_then_socket_pong(user):
    sock = user.socket()
    rid = sock.request("ping", request_id=41)
    msg = sock.expect("pong")
    assert msg == {"action": "pong", "request_id": rid, "ok": True, "data": None}
    sock.close()
