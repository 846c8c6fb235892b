"""User endpoints of API.md §4 with the validation rules of API.md §2,
sessions (§1) and their socket side effects (§5 logout / profile_change)."""
import base64
import struct
import uuid
import zlib

import pytest

from conftest import PASSWORD, barrier, fail, unique_name

DETAILED = {"id", "user_name", "avatar_url", "email", "phone"}
BASIC = {"id", "user_name", "avatar_url"}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def register_raw(stack, body, client=None):
    c = client or stack.client()
    return c, c.post("/user/register", body)


def check_png(data):
    """A well-formed PNG: signature, chunks with valid CRCs, IHDR first,
    IEND last, IDAT inflating to exactly the image's rows. Returns (w, h)."""
    assert data[:8] == PNG_SIGNATURE
    pos, chunks, idat = 8, [], b""
    while pos < len(data):
        (length,) = struct.unpack("!I", data[pos:pos + 4])
        ctype = data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + length]
        (crc,) = struct.unpack("!I", data[pos + 8 + length:pos + 12 + length])
        assert zlib.crc32(ctype + body) == crc, ctype
        chunks.append((ctype, body))
        if ctype == b"IDAT":
            idat += body
        pos += 12 + length
    assert pos == len(data)
    assert chunks[0][0] == b"IHDR" and chunks[-1] == (b"IEND", b"")
    w, h, depth, color = struct.unpack("!IIBB", chunks[0][1][:10])
    assert w > 0 and h > 0
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[color]
    row = (w * channels * depth + 7) // 8
    assert len(zlib.decompress(idat)) == h * (1 + row)
    return w, h


def identicon_png(avatar_url):
    prefix = "data:image/png;base64,"
    assert avatar_url.startswith(prefix), avatar_url[:40]
    png = base64.b64decode(avatar_url[len(prefix):], validate=True)
    check_png(png)
    return png


def set_cookie_attrs(r):
    raw = r.headers.get("Set-Cookie")
    assert raw, r.headers
    parts = [p.strip() for p in raw.split(";")]
    name, _, value = parts[0].partition("=")
    attrs = {}
    for p in parts[1:]:
        k, _, v = p.partition("=")
        attrs[k.lower()] = v
    return name, value, attrs


def token_client(stack, token):
    return stack.client().with_token(token)


def assert_dead(stack, token):
    assert fail(token_client(stack, token).get("/user"), 403) == "Invalid Session"


def assert_alive(stack, token, user_id):
    assert token_client(stack, token).ok("GET", "/user")["id"] == user_id


def second_browser(stack, client):
    """Another browser of the same user (a new login, a new session)."""
    other = stack.client()
    other.login(client.user["user_name"], client.password)
    assert other.token != client.token
    return other


def expect_logout_then_close(sock):
    msgs, code = sock.read_to_close()
    assert code == 1000, code  # docs/API.md "Limits and closes"
    assert [m["action"] for m in msgs] == ["logout"], msgs
    m = msgs[0]
    assert m["request_id"] == 0 and m["ok"] is True and m["data"] is None, m
    assert isinstance(m["event_id"], int), m


def session_count(stack, user_id):
    return stack.sql("SELECT count(*) FROM sessions WHERE user_id = ?", user_id)[0][0]


# --------------------------------------------------------------------------
# register


def test_register_returns_user_detailed_and_sets_the_cookie(stack):
    name = unique_name()
    c = stack.client()
    r = c.post("/user/register", {"user_name": name, "password": PASSWORD})
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    env = r.json()
    assert set(env) == {"ok", "data"} and env["ok"] is True
    u = env["data"]
    assert set(u) == DETAILED
    assert u["user_name"] == name and u["email"] == "" and u["phone"] == ""
    assert isinstance(u["id"], int) and not isinstance(u["id"], bool) and u["id"] > 0
    identicon_png(u["avatar_url"])

    cname, value, attrs = set_cookie_attrs(r)
    assert cname == "sessionid"
    assert len(value) >= 22 and value == c.token  # >= 128 bits of base64
    assert attrs["path"] == "/"
    assert "httponly" in attrs
    assert attrs["samesite"] == "Lax"
    assert "secure" not in attrs  # not configured for https
    # the cookie is a session: GET /user answers the same user
    assert c.ok("GET", "/user") == u
    # one session, the default friend group, the stored name
    assert session_count(stack, u["id"]) == 1
    assert stack.sql("SELECT name, is_default FROM friend_groups WHERE user_id = ?",
                     u["id"]) == [("", 1)]
    assert stack.sql("SELECT user_name FROM users WHERE id = ?", u["id"]) == [(name,)]


def test_tokens_are_random(stack):
    tokens = set()
    for _ in range(3):
        c = stack.client()
        c.register()
        tokens.add(c.token)
        c.login()
        tokens.add(c.token)
    assert len(tokens) == 6


def test_identicon_is_deterministic_and_differs_between_names(stack, tight_stack):
    name, other = unique_name(), unique_name()
    a = stack.client()
    a.register(name)
    b = stack.client()
    b.register(other)
    assert a.user["avatar_url"] != b.user["avatar_url"]
    # the same name on another installation: the same picture
    c = tight_stack.client()
    c.register(name)
    assert c.user["avatar_url"] == a.user["avatar_url"]
    # a name change and regenerate, then back: the original picture again
    renamed = unique_name()
    u = a.ok("PATCH", "/user", {"user_name": renamed, "avatar_url": ""})
    assert u["user_name"] == renamed
    assert u["avatar_url"] != a.user["avatar_url"]
    identicon_png(u["avatar_url"])
    u = a.ok("PATCH", "/user", {"user_name": name, "avatar_url": ""})
    assert u["avatar_url"] == a.user["avatar_url"]


@pytest.mark.parametrize("length", [2, 32])
def test_user_name_length_boundaries(stack, length):
    name = uuid.uuid4().hex[:length]
    c = stack.client()
    assert c.register(name)["user_name"] == name
    fail(stack.client().post("/user/register", {"user_name": name + "x" * (33 - length),
                                                "password": PASSWORD}), 400)


def test_user_name_of_one_char(tight_stack):
    # A one-character name space is tiny: use the stack only this file
    # registers short names on.
    c = tight_stack.client()
    assert c.register("Q")["user_name"] == "Q"
    assert c.login("Q")["id"] == c.user["id"]
    fail(tight_stack.client().post("/user/register", {"user_name": "Q", "password": PASSWORD}),
         409)


def test_user_name_33_chars_is_400(stack):
    name = uuid.uuid4().hex + "a"
    assert len(name) == 33
    c = stack.client()
    fail(c.post("/user/register", {"user_name": name, "password": PASSWORD}), 400)
    assert c.token is None
    assert stack.sql("SELECT count(*) FROM users WHERE user_name = ?", name) == [(0,)]


@pytest.mark.parametrize("ch", list("-_()@."))
def test_user_name_allowed_punctuation(stack, ch):
    name = ch + unique_name() + ch
    assert stack.client().register(name)["user_name"] == name


def test_user_name_every_allowed_char_at_once(stack):
    name = "aZ09-_()@." + uuid.uuid4().hex[:8]
    c = stack.client()
    assert c.register(name)["user_name"] == name
    assert c.login(name)["user_name"] == name


@pytest.mark.parametrize(
    "bad",
    ["", " ", "a b", "a#b", "#SYSTEM", "#DELETED", "a!", "a/b", "a\\b", "a+b", "a,b", "a:b",
     "a'b", 'a"b', "a<b", "a=b", "a%b", "a*b", "é", "aé", "a\tb", "a\nb", "a\u00a0b",
     "名字", "a\u0000b", "x" * 100],
)
def test_user_name_forbidden(stack, bad):
    c = stack.client()
    err = fail(c.post("/user/register", {"user_name": bad, "password": PASSWORD}), 400)
    assert c.token is None, err
    # the same rule on PATCH /user
    u = stack.client()
    u.register()
    fail(u.patch("/user", {"user_name": bad}), 400)
    assert u.ok("GET", "/user")["user_name"] == u.user["user_name"]


def test_system_names_cannot_be_registered(stack):
    for name in ("#SYSTEM", "#DELETED"):
        fail(stack.client().post("/user/register", {"user_name": name, "password": PASSWORD}),
             400)
    assert stack.sql("SELECT count(*) FROM users WHERE user_name IN ('#SYSTEM', '#DELETED')") \
        == [(2,)]


def test_taken_name_is_409(stack):
    name = unique_name()
    stack.client().register(name)
    c = stack.client()
    fail(c.post("/user/register", {"user_name": name, "password": "other-pass"}), 409)
    assert c.token is None
    assert stack.sql("SELECT count(*) FROM users WHERE user_name = ?", name) == [(1,)]


@pytest.mark.parametrize("password,ok", [
    ("12345", False), ("123456", True), ("abc def", False), ("abcdef ", False),
    (" abcdef", False), ("abc\tdef", False), ("abc\ndef", False), ("ééééé", False),
    ("éééééé", True), ("x" * 200, True), ("", False), ("p@ss!#$%^&*", True),
])
def test_password_rules(stack, password, ok):
    name = unique_name()
    c = stack.client()
    r = c.post("/user/register", {"user_name": name, "password": password})
    if ok:
        assert r.status_code == 200, r.text
        assert stack.client().login(name, password)["user_name"] == name
    else:
        fail(r, 400)
        assert c.token is None
        assert stack.sql("SELECT count(*) FROM users WHERE user_name = ?", name) == [(0,)]


@pytest.mark.parametrize("field,value", [
    ("user_name", 1), ("user_name", None), ("user_name", ["a"]), ("user_name", {"a": 1}),
    ("user_name", True), ("password", 123456), ("password", None), ("password", True),
    ("password", ["secret1"]),
])
def test_register_strict_types_name_the_field(stack, field, value):
    body = {"user_name": unique_name(), "password": PASSWORD}
    body[field] = value
    c = stack.client()
    err = fail(c.post("/user/register", body), 400)
    assert field in err, err
    assert c.token is None


@pytest.mark.parametrize("missing", ["user_name", "password"])
def test_register_missing_field_is_400_naming_it(stack, missing):
    body = {"user_name": unique_name(), "password": PASSWORD}
    del body[missing]
    for path in ("/user/register", "/user/login"):
        err = fail(stack.client().post(path, body), 400)
        assert missing in err, (path, err)


@pytest.mark.parametrize("raw", ["[]", '"x"', "null", "3", '[{"user_name": "a", "password": "secret1"}]'])
def test_register_body_not_an_object_is_400(stack, raw):
    for path in ("/user/register", "/user/login"):
        r = stack.client().request("POST", path, raw=raw,
                                   headers={"Content-Type": "application/json"})
        fail(r, 400)


def test_register_with_a_session_cookie_still_registers(stack):
    a = stack.client()
    first = a.register()
    old = a.token
    second = a.register()
    assert second["id"] != first["id"]
    assert a.ok("GET", "/user")["id"] == second["id"]
    # docs/API.md: registering while logged in ends the old session
    assert_dead(stack, old)
    assert session_count(stack, first["id"]) == 0


# --------------------------------------------------------------------------
# login


def test_login_sets_a_new_session(stack):
    a = stack.client()
    a.register()
    b = stack.client()
    r = b.post("/user/login", {"user_name": a.user["user_name"], "password": PASSWORD})
    assert r.status_code == 200, r.text
    assert r.json()["data"] == a.user
    cname, value, attrs = set_cookie_attrs(r)
    assert cname == "sessionid" and value == b.token and value != a.token
    assert attrs["path"] == "/" and "httponly" in attrs and attrs["samesite"] == "Lax"
    # two browsers, two sessions, both alive
    assert session_count(stack, a.user["id"]) == 2
    assert a.ok("GET", "/user")["id"] == b.ok("GET", "/user")["id"] == a.user["id"]


def test_login_wrong_password_and_unknown_user_are_the_same_403(stack):
    a = stack.client()
    a.register()
    c = stack.client()
    wrong = fail(c.post("/user/login", {"user_name": a.user["user_name"], "password": "wrong-1"}),
                 403)
    unknown = fail(c.post("/user/login", {"user_name": unique_name(), "password": PASSWORD}), 403)
    assert wrong == unknown
    assert c.token is None
    assert session_count(stack, a.user["id"]) == 1
    # the password is compared exactly
    fail(c.post("/user/login", {"user_name": a.user["user_name"], "password": PASSWORD.upper()}),
         403)


@pytest.mark.parametrize("body", [
    {"user_name": "", "password": PASSWORD},
    {"user_name": "a b", "password": PASSWORD},
    {"user_name": "x" * 33, "password": PASSWORD},
    {"user_name": "ok_name", "password": "12345"},
    {"user_name": "ok_name", "password": "with space"},
    {"user_name": 5, "password": PASSWORD},
    {"user_name": "ok_name", "password": 123456},
    {"user_name": "ok_name"},
    {"password": PASSWORD},
    {},
])
def test_login_malformed_is_400(stack, body):
    c = stack.client()
    fail(c.post("/user/login", body), 400)
    assert c.token is None


def test_login_malformed_password_of_an_existing_user_is_400(stack):
    a = stack.client()
    a.register()
    fail(stack.client().post("/user/login", {"user_name": a.user["user_name"], "password": "123"}),
         400)


@pytest.mark.parametrize("name", ["#SYSTEM", "#DELETED"])
def test_system_users_cannot_log_in(stack, name):
    c = stack.client()
    for password in (PASSWORD, "", "whatever-1"):
        r = c.post("/user/login", {"user_name": name, "password": password})
        fail(r, 400)  # '#' makes the name malformed (API.md §2, §3)
        assert "Set-Cookie" not in r.headers
    assert stack.sql("SELECT count(*) FROM sessions WHERE user_id IN (1, 2)") == [(0,)]


def test_login_with_a_valid_session_ends_it(stack):
    a = stack.client()
    a.register()
    old = a.token
    sock = a.socket()
    sock.ping_barrier()
    a.login()
    assert a.token != old
    assert_dead(stack, old)
    assert_alive(stack, a.token, a.user["id"])
    expect_logout_then_close(sock)
    assert session_count(stack, a.user["id"]) == 1


def test_login_as_another_user_ends_the_previous_session(stack):
    a = stack.client()
    a.register()
    b = stack.client()
    b.register()
    a_token = a.token
    sock = a.socket()
    sock.ping_barrier()
    # browser of a logs in as b: a's session in this browser ends
    a.login(b.user["user_name"])
    assert a.user["id"] == b.user["id"]
    assert_dead(stack, a_token)
    expect_logout_then_close(sock)
    assert session_count(stack, a.user["id"]) == 2  # b's two browsers


def test_failed_login_keeps_the_session(stack):
    a = stack.client()
    a.register()
    fail(a.post("/user/login", {"user_name": a.user["user_name"], "password": "wrong-1"}), 403)
    fail(a.post("/user/login", {"user_name": "a b", "password": PASSWORD}), 400)
    assert a.ok("GET", "/user")["id"] == a.user["id"]


# --------------------------------------------------------------------------
# logout


def test_logout_ends_only_this_session(stack):
    a = stack.client()
    a.register()
    b = second_browser(stack, a)
    sa, sb = a.socket(), b.socket()
    sa.ping_barrier()
    sb.ping_barrier()
    old = a.token
    r = a.post("/user/logout")
    assert r.status_code == 200, r.text
    assert r.json() == {"ok": True, "data": None}
    assert_dead(stack, old)
    assert fail(a.get("/user"), 403) == "Invalid Session"
    expect_logout_then_close(sa)
    # the other browser: alive, its socket got nothing
    assert b.ok("GET", "/user")["id"] == a.user["id"]
    assert barrier(b, sb) == []
    assert session_count(stack, a.user["id"]) == 1
    # logging out again: no session
    assert fail(token_client(stack, old).post("/user/logout"), 403) == "Invalid Session"
    sb.close()


def test_logout_without_session_is_403(stack):
    assert fail(stack.client().post("/user/logout"), 403) == "Invalid Session"
    assert fail(stack.client().with_token("junk").post("/user/logout"), 403) == "Invalid Session"


# --------------------------------------------------------------------------
# GET /user, GET /user/<id>


def test_get_user_is_detailed(user):
    u = user.ok("GET", "/user")
    assert set(u) == DETAILED
    assert u == user.user


def test_get_user_by_id_is_basic(stack):
    a = stack.client()
    a.register()
    b = stack.client()
    b.register()
    b.ok("PATCH", "/user", {"old_password": PASSWORD, "email": "b@example.com",
                            "phone": "13800138000"})
    u = a.ok("GET", f"/user/{b.user['id']}")
    assert u == {"id": b.user["id"], "user_name": b.user["user_name"],
                 "avatar_url": b.user["avatar_url"]}
    assert set(u) == BASIC
    # one's own id works too
    assert a.ok("GET", f"/user/{a.user['id']}") == {k: a.user[k] for k in BASIC}


def test_get_unknown_user_is_404(user):
    biggest = user.stack.sql("SELECT max(id) FROM users")[0][0]
    for uid in (biggest + 1000, 9223372036854775807):
        fail(user.get(f"/user/{uid}"), 404)


# --------------------------------------------------------------------------
# PATCH /user


def patch(c, body):
    return c.patch("/user", body)


def test_patch_changes_fields_and_returns_detailed(user):
    new = unique_name()
    u = user.ok("PATCH", "/user", {
        "old_password": PASSWORD, "user_name": new, "email": "a.b+c_d-e@mail-x.example.org",
        "phone": "19912345678", "avatar_url": "https://cdn.example/a.png",
    })
    assert u == {"id": user.user["id"], "user_name": new,
                 "email": "a.b+c_d-e@mail-x.example.org", "phone": "19912345678",
                 "avatar_url": "https://cdn.example/a.png"}
    assert user.ok("GET", "/user") == u
    # "" clears email and phone
    u = user.ok("PATCH", "/user", {"old_password": PASSWORD, "email": "", "phone": ""})
    assert u["email"] == "" and u["phone"] == ""
    # the new name logs in, the old does not exist any more
    assert user.stack.client().login(new, PASSWORD)["id"] == user.user["id"]
    fail(user.stack.client().post("/user/login", {"user_name": user.user["user_name"],
                                                  "password": PASSWORD}), 403)


def test_patch_own_name_is_fine(user):
    u = user.ok("PATCH", "/user", {"user_name": user.user["user_name"]})
    assert u == user.user


def test_patch_name_taken_is_409(stack, user):
    other = stack.client()
    other.register()
    fail(patch(user, {"user_name": other.user["user_name"],
                      "avatar_url": "http://x.example/a.png"}), 409)
    assert user.ok("GET", "/user") == user.user


def email_of(length):
    domain = "@example.com"
    return "a" * (length - len(domain)) + domain


@pytest.mark.parametrize("email,ok", [
    ("", True), ("a@b.co", True), ("a_b.c+d-e@x-y.z.example", True), ("A9@B9.C9", True),
    ("a@-.x", True), (email_of(100), True), (email_of(101), False),
    ("a@b", False), ("@b.com", False), ("a@.com", False), ("a@b.com.", False),
    ("a@b..com", False), ("a b@c.com", False), ("a@b c.com", False), ("a@@b.com", False),
    ("a@b@c.com", False), ("ä@b.com", False), ("a@bä.com", False), ("a@b_c.com", False),
    ("a!@b.com", False), ("plain", False), ("a@b.com ", False), (" a@b.com", False),
    ("a@b.com\n", False),
])
def test_email_rules(user, email, ok):
    r = patch(user, {"old_password": PASSWORD, "email": email})
    if ok:
        assert r.status_code == 200, r.text
        assert r.json()["data"]["email"] == email
    else:
        fail(r, 400)
        assert user.ok("GET", "/user")["email"] == ""


@pytest.mark.parametrize("phone,ok", [
    ("", True), ("13800138000", True), ("10000000000", True), ("19999999999", True),
    ("23800138000", False), ("03800138000", False), ("1380013800", False),
    ("138001380000", False), ("1380013800a", False), ("+1380013800", False),
    ("138 0013 800", False), ("1380013800０", False), (" 13800138000", False),
])
def test_phone_rules(user, phone, ok):
    r = patch(user, {"old_password": PASSWORD, "phone": phone})
    if ok:
        assert r.status_code == 200, r.text
        assert r.json()["data"]["phone"] == phone
    else:
        fail(r, 400)
        assert user.ok("GET", "/user")["phone"] == ""


def data_url(total, type_letters):
    prefix = f"data:image/{type_letters};base64,"
    n = total - len(prefix)
    assert n % 4 == 0
    return prefix + "A" * n


@pytest.mark.parametrize("url,ok", [
    ("data:image/png;base64,iVBORw0KGgo=", True),
    ("data:image/jpeg;base64,/9j/4AAQ", True),
    ("data:image/GIF;base64,R0lGOD==", True),
    (data_url(100000, "abcde"), True),
    (data_url(100001, "abcdef"), False),
    ("data:image/;base64,AAAA", False),
    ("data:image/svg+xml;base64,AAAA", False),
    ("data:image/png1;base64,AAAA", False),
    ("data:image/png;base64,A@@A", False),
    ("data:image/png,AAAA", False),
    ("data:text/plain;base64,AAAA", False),
    ("http://example.com/a.png", True),
    ("https://example.com/a.png?x=1#y", True),
    ("https://example.com/" + "a" * 480, True),  # 500 chars
    ("https://example.com/" + "a" * 481, False),  # 501 chars
    ("https://example.com/" + "é" * 480, True),  # 500 characters, more bytes
    ("ftp://example.com/a.png", False),
    ("javascript:alert(1)", False),
    ("//example.com/a.png", False),
    ("example.com/a.png", False),
    ("http://exa mple.com/a.png", False),
    ("not a url", False),
])
def test_avatar_url_rules(user, url, ok):
    r = patch(user, {"avatar_url": url})  # no old_password needed
    if ok:
        assert r.status_code == 200, r.text[:300]
        assert r.json()["data"]["avatar_url"] == url
        assert user.ok("GET", "/user")["avatar_url"] == url
    else:
        fail(r, 400)
        assert user.ok("GET", "/user")["avatar_url"] == user.user["avatar_url"]


def test_avatar_url_empty_regenerates_the_identicon(user):
    original = user.user["avatar_url"]
    assert user.ok("PATCH", "/user", {"avatar_url": "http://x.example/me.png"})["avatar_url"] \
        == "http://x.example/me.png"
    u = user.ok("PATCH", "/user", {"avatar_url": ""})
    assert u["avatar_url"] == original
    identicon_png(u["avatar_url"])


@pytest.mark.parametrize("field", ["new_password", "email", "phone"])
def test_old_password_required(user, field):
    value = {"new_password": "another1", "email": "x@y.example", "phone": "13800138000"}[field]
    new = unique_name()
    err = fail(patch(user, {field: value, "user_name": new}), 400)
    assert "old_password" in err, err
    fail(patch(user, {field: value, "user_name": new, "old_password": "wrong-pass"}), 403)
    fail(patch(user, {field: value, "user_name": new, "old_password": ""}), 403)
    assert user.ok("GET", "/user") == user.user
    # the password did not change
    assert user.stack.client().login(user.user["user_name"], PASSWORD)["id"] == user.user["id"]


def test_patch_is_all_or_nothing(user):
    before = user.ok("GET", "/user")
    new = unique_name()
    bad_bodies = [
        {"user_name": new, "phone": "2"},
        {"user_name": new, "old_password": PASSWORD, "phone": "2"},
        {"user_name": new, "old_password": PASSWORD, "email": "bad", "phone": "13800138000"},
        {"user_name": new, "avatar_url": "ftp://x"},
        {"user_name": "bad name", "avatar_url": "http://x.example/a.png"},
        {"user_name": new, "old_password": PASSWORD, "new_password": "short"},
        {"user_name": new, "old_password": PASSWORD, "new_password": "has space"},
        {"user_name": new, "email": 5, "old_password": PASSWORD},
        {"user_name": new, "avatar_url": None},
    ]
    for body in bad_bodies:
        fail(patch(user, body), 400)
        assert user.ok("GET", "/user") == before, body
    assert user.stack.client().login(before["user_name"], PASSWORD)["id"] == before["id"]


@pytest.mark.parametrize("field,value", [
    ("user_name", 1), ("user_name", None), ("email", 5), ("email", None), ("phone", 13800138000),
    ("phone", None), ("avatar_url", 0), ("avatar_url", False), ("new_password", 123456),
    ("old_password", 123456), ("old_password", None),
])
def test_patch_strict_types_name_the_field(user, field, value):
    body = {"old_password": PASSWORD, "user_name": unique_name()}
    body[field] = value
    err = fail(patch(user, body), 400)
    assert field in err, err
    assert user.ok("GET", "/user") == user.user


@pytest.mark.parametrize("raw", ["[]", '["user_name"]', '"x"', "1", "null", ""])
def test_patch_body_not_an_object_is_400(user, raw):
    r = user.request("PATCH", "/user", raw=raw, headers={"Content-Type": "application/json"})
    fail(r, 400)


def test_profile_change_reaches_every_socket_of_the_user(stack, user):
    other = second_browser(stack, user)
    s1, s2 = user.socket(), other.socket()
    s1.ping_barrier()
    s2.ping_barrier()
    user.ok("PATCH", "/user", {"avatar_url": "http://x.example/p.png"})
    for s in (s1, s2):
        m = s.expect("profile_change")
        assert m["data"] is None and m["request_id"] == 0 and m["ok"] is True
        assert s.ping_barrier() == []
    s1.close()
    s2.close()


# --------------------------------------------------------------------------
# password change


def test_password_change_rotates_the_callers_session_and_ends_the_others(stack):
    a = stack.client()
    a.register()
    b = second_browser(stack, a)
    c = second_browser(stack, a)  # no socket
    sa, sb = a.socket(), b.socket()
    sa.ping_barrier()
    sb.ping_barrier()
    old_a, old_b, old_c = a.token, b.token, c.token
    r = a.patch("/user", {"old_password": PASSWORD, "new_password": "brand-new-1"})
    assert r.status_code == 200, r.text
    assert r.json()["data"] == a.user
    cname, value, attrs = set_cookie_attrs(r)
    assert cname == "sessionid" and value == a.token and value != old_a
    assert attrs["path"] == "/" and "httponly" in attrs and attrs["samesite"] == "Lax"
    a.password = "brand-new-1"

    # caller: old token dead, new one alive; its socket stays and gets
    # profile_change only
    assert_dead(stack, old_a)
    assert a.ok("GET", "/user")["id"] == a.user["id"]
    m = sa.expect("profile_change")
    assert m["request_id"] == 0 and m["data"] is None
    assert sa.ping_barrier() == []
    assert barrier(a, sa) == []

    # every other session ended; its socket got logout and was closed
    msgs, code = sb.read_to_close()
    assert code == 1000, code
    actions = [m["action"] for m in msgs]
    assert "logout" in actions and actions[-1] == "logout", msgs
    assert set(actions) <= {"logout", "profile_change"}, msgs
    for t in (old_b, old_c):
        assert_dead(stack, t)
    assert session_count(stack, a.user["id"]) == 1

    # new password works, old does not
    fail(stack.client().post("/user/login", {"user_name": a.user["user_name"],
                                             "password": PASSWORD}), 403)
    assert stack.client().login(a.user["user_name"], "brand-new-1")["id"] == a.user["id"]
    sa.close()


def test_password_change_wrong_old_password_changes_nothing(stack):
    a = stack.client()
    a.register()
    b = second_browser(stack, a)
    old = a.token
    fail(a.patch("/user", {"old_password": "wrong-pass", "new_password": "brand-new-1"}), 403)
    assert a.token == old
    assert_alive(stack, old, a.user["id"])
    assert_alive(stack, b.token, a.user["id"])
    assert stack.client().login(a.user["user_name"], PASSWORD)["id"] == a.user["id"]


# --------------------------------------------------------------------------
# DELETE /user


def test_delete_user_ends_everything_and_frees_the_name(stack):
    a = stack.client()
    a.register()
    b = second_browser(stack, a)
    sa, sb = a.socket(), b.socket()
    sa.ping_barrier()
    sb.ping_barrier()
    watcher = stack.client()
    watcher.register()
    uid, name, old_a, old_b = a.user["id"], a.user["user_name"], a.token, b.token

    r = a.delete("/user")
    assert r.status_code == 200, r.text
    assert r.json() == {"ok": True, "data": None}
    expect_logout_then_close(sa)
    expect_logout_then_close(sb)
    assert_dead(stack, old_a)
    assert_dead(stack, old_b)
    fail(watcher.get(f"/user/{uid}"), 404)
    fail(stack.client().post("/user/login", {"user_name": name, "password": PASSWORD}), 403)
    assert stack.sql("SELECT count(*) FROM users WHERE id = ?", uid) == [(0,)]
    assert session_count(stack, uid) == 0
    assert stack.sql("SELECT count(*) FROM friend_groups WHERE user_id = ?", uid) == [(0,)]

    again = stack.client()
    u = again.register(name)
    assert u["user_name"] == name
    assert again.ok("GET", "/user")["user_name"] == name


def test_delete_user_needs_a_session(stack):
    assert fail(stack.client().delete("/user"), 403) == "Invalid Session"


# --------------------------------------------------------------------------
# secrets at rest and in logs


def db_bytes(stack):
    data = b""
    for suffix in ("", "-wal", "-shm"):
        p = stack.db_path.parent / (stack.db_path.name + suffix)
        if p.exists():
            data += p.read_bytes()
    return data


def test_no_plaintext_tokens_or_passwords_are_stored_or_logged(stack):
    password = "pw-" + uuid.uuid4().hex
    a = stack.client()
    a.register(password=password)
    b = second_browser(stack, a)
    new_password = "pw-" + uuid.uuid4().hex
    first_token = a.token
    a.ok("PATCH", "/user", {"old_password": password, "new_password": new_password})
    a.password = new_password
    sock = a.socket()
    sock.ping_barrier()
    sock.close()
    tokens = [first_token, a.token, b.token]
    rows = stack.sql("SELECT token_hash FROM sessions WHERE user_id = ?", a.user["id"])
    assert len(rows) == 1
    assert isinstance(rows[0][0], bytes) and len(rows[0][0]) >= 16
    stored = stack.sql("SELECT password_hash FROM users WHERE id = ?", a.user["id"])[0][0]
    assert stored.startswith("$argon2id$"), stored
    blob = db_bytes(stack)
    logs = stack.all_logs()
    for prefix in ("nginx/access.log", "nginx/error.log"):
        p = stack.dir / prefix
        if p.exists():
            logs += p.read_text(errors="replace")
    for secret in tokens + [password, new_password]:
        assert secret.encode() not in blob, secret
        assert secret not in logs, secret
