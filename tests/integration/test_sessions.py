"""Session lifetime and socket limits: idle and absolute expiry (REST and
sockets), the per-user socket cap, and no secret in any log."""

import time

from conftest import fail


def wait_until(pred, timeout=15):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return True
        time.sleep(0.1)
    return False


def test_idle_session_expires_and_its_socket_gets_logout(make_stack):
    st = make_stack(env={"NOVA_SESSION_IDLE": "2", "NOVA_SESSION_TOUCH": "0"})
    a = st.client()
    a.register()
    sock = a.socket()
    assert a.get("/user").status_code == 200
    # Activity keeps it alive...
    for _ in range(3):
        time.sleep(1)
        assert a.get("/user").status_code == 200
    # ...idleness ends it: the daemon's expiry job tells the socket.
    msgs, code = sock.read_to_close(timeout=15)
    assert [m["action"] for m in msgs] == ["logout"] and code == 1000
    assert fail(a.get("/user"), 403) == "Invalid Session"
    assert st.sql("SELECT count(*) FROM sessions WHERE user_id = ?", a.user["id"])[0][0] == 0


def test_absolute_expiry_ends_even_an_active_session(make_stack):
    st = make_stack(env={"NOVA_SESSION_MAX_AGE": "3", "NOVA_SESSION_TOUCH": "0"})
    a = st.client()
    a.register()
    assert wait_until(lambda: a.get("/user").status_code == 403, timeout=10)
    # A fresh login works again.
    a.login()
    assert a.get("/user").status_code == 200


def test_the_oldest_socket_makes_room_beyond_the_per_user_cap(make_stack):
    st = make_stack(env={"NOVA_WS_MAX_PER_USER": "2"})
    a, b = st.client(), st.client()
    a.register()
    b.register()
    s1, s2 = a.socket(), a.socket()
    sb = b.socket()  # another user's sockets do not count
    s3 = a.socket()
    msgs, code = s1.read_to_close()
    assert msgs == [] and code == 1008
    for s in (s2, s3, sb):
        s.request("ping")
        assert s.expect("pong")
        s.close()


def test_no_token_password_or_cookie_in_any_log(make_stack):
    st = make_stack()
    a = st.client()
    secret_pw = "Secr3t-passw0rd"
    a.register(password=secret_pw)
    first = a.token
    sock = a.socket()
    sock.request("ping")
    sock.expect("pong")
    a.ok("PATCH", "/user", {"old_password": secret_pw, "new_password": "N3w-passw0rd!"})
    second = a.token
    a.post("/user/login", {"user_name": a.user["user_name"], "password": "wrong-one"})
    a.login(password="N3w-passw0rd!")
    third = a.token
    sock.close()
    st.stop()
    logs = st.all_logs()
    for nginx_log in ("access.log", "error.log"):
        path = st.dir / "nginx" / nginx_log
        logs += path.read_text(errors="replace") if path.exists() else ""
    assert a.user["user_name"] in logs or "POST /user/register" in logs  # logs exist
    for secret in (first, second, third, secret_pw, "N3w-passw0rd!", "wrong-one"):
        assert secret not in logs


def test_a_dead_peer_is_pinged_and_dropped_while_a_live_one_stays(make_stack):
    st = make_stack(env={"NOVA_WS_PING_INTERVAL": "1"})
    a = st.client()
    a.register()
    dead, live = a.socket(), a.socket()
    # The live socket reads (websocket-client answers pings while reading);
    # the dead one never reads, so it never answers a ping.
    deadline = time.time() + 8
    while time.time() < deadline:
        try:
            live.ws.settimeout(0.5)
            live.ws.recv()
        except Exception:
            pass
    assert wait_until(lambda: st.sql("SELECT sockets FROM realtime_daemons")[0][0] == 1)
    live.request("ping")
    assert live.expect("pong")
    # The dead one was hung up on: reading it now finds the connection gone.
    msgs, code = dead.read_to_close(timeout=5)
    assert code in (None, 1006, 1000, 1001) and all(m.get("action") != "profile_change" for m in msgs)


def test_cookie_secure_and_samesite_when_configured(make_stack):
    st = make_stack(env={"NOVA_COOKIE_SECURE": "1", "NOVA_COOKIE_SAMESITE": "None"})
    c = st.client()
    r = c.post("/user/register", {"user_name": "secure_cookie_user", "password": "secret1"})
    assert r.status_code == 200
    cookie = r.headers["Set-Cookie"]
    assert cookie.startswith("sessionid=")
    attrs = [a.strip() for a in cookie.split(";")[1:]]
    assert "HttpOnly" in attrs and "Secure" in attrs and "SameSite=None" in attrs
    assert "Path=/" in attrs


def test_samesite_none_without_secure_is_refused_at_start(tmp_path):
    import subprocess

    from conftest import BUILD

    r = subprocess.run([str(BUILD / "nova-api"), "--socket", str(tmp_path / "a.sock")],
                       env={"NOVA_DB": str(tmp_path / "x.db"), "NOVA_COOKIE_SAMESITE": "None"},
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "cookie-secure" in r.stderr
