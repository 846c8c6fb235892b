"""The request pipeline of API.md §1 on every route of API.md §4.

The route table below mirrors API.md §4 (and fcgi/api.c): every path with
its methods and whether it needs a session. Pipeline order (§1): unknown
path 404, method 405, OPTIONS, session 403, body 400/413, handler.
"""
import json

import pytest
import requests

from conftest import PASSWORD, TIGHT_ENV, fail, unique_name

# (path pattern, methods, needs a session) - API.md §4, in its order.
ROUTES = [
    ("/user/register", ["POST"], False),
    ("/user/login", ["POST"], False),
    ("/user/logout", ["POST"], True),
    ("/user", ["GET", "PATCH", "DELETE"], True),
    ("/user/{id}", ["GET"], True),
    ("/friend/group/add", ["POST"], True),
    ("/friend/group/list", ["GET"], True),
    ("/friend/group/{id}", ["GET", "PATCH", "DELETE"], True),
    ("/friend/find", ["POST"], True),
    ("/friend/invite", ["POST"], True),
    ("/friend/invitation", ["GET"], True),
    ("/friend/invitation/{id}", ["POST", "DELETE"], True),
    ("/friend", ["GET"], True),
    ("/friend/{id}", ["GET", "PATCH", "DELETE"], True),
    ("/chat/new", ["POST"], True),
    ("/chat/{id}/invite", ["POST"], True),
    ("/chat/{id}/invitation", ["GET"], True),
    ("/chat/{id}/invitation/{id}", ["POST", "DELETE"], True),
    ("/chat", ["GET"], True),
    ("/chat/{id}", ["GET", "DELETE"], True),
    ("/chat/{id}/messages", ["GET"], True),
    ("/chat/{id}/filter", ["POST"], True),
    ("/chat/{id}/{id}/admin", ["POST"], True),
    ("/chat/{id}/set_owner", ["POST"], True),
    ("/chat/{id}/{id}", ["DELETE"], True),
]

# Routes whose handler is not built yet: with a valid session and a valid
# body they answer 501 {"ok":false,"error":"not implemented"}. Entries are
# removed as features land (their own tests then cover them); an entry is
# (method, path with sample ids, JSON body or None), e.g.
#     ("POST", "/chat/7/set_owner", {"chat_owner": 8}),
# Every friend and chat route has landed (commits 5084a57, 9cbff9b): empty.
NOT_IMPLEMENTED = []

METHOD_ORDER = ["GET", "POST", "PATCH", "DELETE"]
ALL_METHODS = METHOD_ORDER + ["PUT"]


def sample(pattern, ids=("7", "8")):
    """The pattern with its {id}s replaced by ids (in order)."""
    out = pattern
    for i in ids:
        out = out.replace("{id}", i, 1)
    return out


def allow_text(methods):
    """The Allow header of API.md §1: the methods, then OPTIONS."""
    return ", ".join([m for m in METHOD_ORDER if m in methods] + ["OPTIONS"])


def route_methods():
    for pattern, methods, needs in ROUTES:
        for m in methods:
            yield pattern, m, needs


# --------------------------------------------------------------------------
# 1. unknown paths


def unknown_paths():
    paths = ["/", "/nope", "/users", "/user/registerx", "/friend/group", "/chat/7/nope"]
    for pattern, _, _ in ROUTES:
        paths.append(sample(pattern) + "/")  # trailing slash
        if "{id}" in pattern:
            for bad in ("0", "07", "9223372036854775808", "99999999999999999999", "abc", "-7",
                        "+7", "7a", "1e3"):
                paths.append(pattern.replace("{id}", bad, 1).replace("{id}", "8"))
            if pattern.count("{id}") == 2:
                paths.append(pattern.replace("{id}", "7", 1).replace("{id}", "0"))
    return sorted(set(paths))


@pytest.mark.parametrize("path", unknown_paths())
def test_unknown_path_is_404_naming_it(stack, path):
    c = stack.client()
    for method in ["GET", "POST", "OPTIONS"]:
        r = c.request(method, path)
        err = fail(r, 404)
        assert path in err, (method, path, err)
        assert "Allow" not in r.headers


def test_api_root_is_404(stack):
    r = requests.get(stack.base + "/api/", timeout=30)
    err = fail(r, 404)
    assert "/" in err


def test_largest_id_is_a_known_path(stack):
    # 2^63 - 1 fits in 63 bits: the path is known (OPTIONS answers), the
    # object is not (404 from the handler, after the session check).
    c = stack.client()
    r = c.request("OPTIONS", "/user/9223372036854775807")
    assert r.status_code == 200, r.text
    assert r.headers["Allow"] == "GET, OPTIONS"
    assert fail(c.get("/user/9223372036854775807"), 403) == "Invalid Session"
    c.register()
    fail(c.get("/user/9223372036854775807"), 404)


def test_query_string_is_not_part_of_the_path(stack):
    c = stack.client()
    assert fail(c.get("/user?x=1&y=/"), 403) == "Invalid Session"
    c.register()
    assert c.ok("GET", "/user?x=1")["id"] == c.user["id"]


# --------------------------------------------------------------------------
# 2. method not allowed


@pytest.mark.parametrize("route", ROUTES, ids=[r[0] for r in ROUTES])
def test_other_methods_are_405_with_allow(stack, route):
    pattern, methods, _ = route
    path = sample(pattern)
    c = stack.client()
    for method in ALL_METHODS:
        if method in methods:
            continue
        r = c.request(method, path)
        fail(r, 405)
        assert r.headers["Allow"] == allow_text(methods), (method, path, r.headers)


def test_405_comes_before_the_session_and_body_checks(stack):
    c = stack.client().with_token("garbage")
    r = c.request("PUT", "/user", raw="not json", headers={"Content-Type": "text/plain"})
    fail(r, 405)
    assert r.headers["Allow"] == "GET, PATCH, DELETE, OPTIONS"
    r = c.request("GET", "/user/register")
    fail(r, 405)
    assert r.headers["Allow"] == "POST, OPTIONS"


# --------------------------------------------------------------------------
# 3. OPTIONS


@pytest.mark.parametrize("route", ROUTES, ids=[r[0] for r in ROUTES])
def test_options_is_200_empty_with_allow(stack, route):
    pattern, methods, _ = route
    c = stack.client().with_token("garbage")  # no session needed
    r = c.request("OPTIONS", sample(pattern))
    assert r.status_code == 200, r.text
    assert r.content == b""
    assert r.headers["Allow"] == allow_text(methods)
    assert "Access-Control-Allow-Origin" not in r.headers


def test_options_allow_examples_of_api_md(stack):
    c = stack.client()
    assert c.request("OPTIONS", "/user/register").headers["Allow"] == "POST, OPTIONS"
    assert c.request("OPTIONS", "/user").headers["Allow"] == "GET, PATCH, DELETE, OPTIONS"


# --------------------------------------------------------------------------
# 4. session


def logged_out_token(stack):
    c = stack.client()
    c.register()
    token = c.token
    assert c.ok("POST", "/user/logout") is None
    return token


@pytest.mark.parametrize("cookie", ["none", "garbage", "well_formed_unknown", "logged_out"])
def test_session_routes_without_a_valid_session_are_403(stack, cookie):
    token = {
        "none": None,
        "garbage": "garbage",
        "well_formed_unknown": "A" * 43,
        "logged_out": None,
    }[cookie]
    if cookie == "logged_out":
        token = logged_out_token(stack)
    c = stack.client().with_token(token)
    checked = 0
    for pattern, method, needs in route_methods():
        if not needs:
            continue
        body = {} if method in ("POST", "PATCH") else None
        r = c.request(method, sample(pattern), body)
        assert fail(r, 403) == "Invalid Session", (method, pattern)
        checked += 1
    assert checked == sum(len(m) for _, m, needs in ROUTES if needs) == 32


def test_session_check_comes_before_the_body_check(stack):
    c = stack.client()
    for raw, ctype in [("not json", "text/plain"), ("{", "application/json"), ("[]", None)]:
        h = {"Content-Type": ctype} if ctype else {}
        r = c.request("PATCH", "/user", raw=raw, headers=h)
        assert fail(r, 403) == "Invalid Session"


def test_open_routes_ignore_a_bad_cookie(stack):
    name = unique_name()
    c = stack.client().with_token("garbage")
    c.register(name)
    d = stack.client().with_token("A" * 43)
    assert d.login(name)["user_name"] == name
    # and without any body they reach the handler: 400, not 403
    fail(stack.client().post("/user/register"), 400)
    fail(stack.client().post("/user/login"), 400)


def test_cookie_among_others(stack):
    c = stack.client()
    c.register()
    r = requests.get(
        stack.base + "/api/user",
        headers={"Cookie": f"theme=dark; sessionid={c.token}; lang=en"},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    assert r.json()["data"]["id"] == c.user["id"]


# --------------------------------------------------------------------------
# 5. body


def patch_raw(c, raw, ctype="application/json"):
    h = {"Content-Type": ctype} if ctype is not None else {}
    return c.request("PATCH", "/user", raw=raw, headers=h)


def current(c):
    return c.ok("GET", "/user")


@pytest.mark.parametrize(
    "ctype",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
     "application/jsonx", "application/json-patch+json", "text/json", "json"],
)
def test_non_json_content_type_is_400(user, ctype):
    new = unique_name()
    r = patch_raw(user, json.dumps({"user_name": new}), ctype)
    fail(r, 400)
    assert current(user)["user_name"] == user.user["user_name"]


def test_json_body_without_content_type_is_400(user):
    new = unique_name()
    r = patch_raw(user, json.dumps({"user_name": new}), None)
    assert "Content-Type" not in r.request.headers
    fail(r, 400)
    assert current(user)["user_name"] == user.user["user_name"]


@pytest.mark.parametrize("ctype", ["application/json; charset=utf-8", "application/json;charset=UTF-8",
                                   "application/json"])
def test_json_content_type_with_parameters_is_accepted(user, ctype):
    new = unique_name()
    r = patch_raw(user, json.dumps({"user_name": new}), ctype)
    assert r.status_code == 200, r.text
    assert r.json()["data"]["user_name"] == new
    user.user["user_name"] = new


@pytest.mark.parametrize(
    "raw",
    ["{", "}", "{'user_name': 'x'}", '{"user_name": }', '{"user_name": "x",}', "nul",
     '{"user_name": "x"} x', '{"user_name": "x"}{}', '{"user_name": "x"}]', "[1] [2]",
     '{"a": NaN}', '{"a": Infinity}', '{"a": 1e400}', '{"a": 01}', '{"a": "\t"}',
     '{"a": "\\x"}', '{"user_name": "x" /* c */}'],
)
def test_invalid_json_is_400(user, raw):
    fail(patch_raw(user, raw), 400)
    assert current(user)["user_name"] == user.user["user_name"]


def test_invalid_utf8_is_400(user):
    r = user.request("PATCH", "/user", raw=b'{"user_name": "\xff\xfe"}',
                     headers={"Content-Type": "application/json"})
    fail(r, 400)


def test_trailing_whitespace_is_fine(user):
    new = unique_name()
    r = patch_raw(user, json.dumps({"user_name": new}) + " \r\n\t\n")
    assert r.status_code == 200, r.text
    assert current(user)["user_name"] == new


def nested(levels):
    """An object body nested exactly `levels` deep (the body counts as 1)."""
    inner = "1"
    for _ in range(levels - 1):
        inner = "[" + inner + "]"
    return inner


def test_nesting_32_is_fine_33_is_400(user):
    old = user.user["user_name"]
    new = unique_name()
    r = patch_raw(user, '{"user_name": "%s", "x": %s}' % (new, nested(33)))
    err = fail(r, 400)
    assert current(user)["user_name"] == old, err
    r = patch_raw(user, '{"user_name": "%s", "x": %s}' % (new, nested(31)))
    assert r.status_code == 200, r.text
    assert current(user)["user_name"] == new
    # deeper still, and objects count as well as arrays
    fail(patch_raw(user, "[" * 1000 + "]" * 1000), 400)
    deep_objects = '{"a":' * 33 + "1" + "}" * 33
    fail(patch_raw(user, deep_objects), 400)


@pytest.mark.parametrize("raw", ["[]", '["user_name"]', '"x"', "1", "true", "null"])
def test_body_not_an_object_is_400(user, raw):
    fail(patch_raw(user, raw), 400)
    c = user.stack.client()
    fail(c.request("POST", "/user/register", raw=raw, headers={"Content-Type": "application/json"}), 400)
    fail(c.request("POST", "/user/login", raw=raw, headers={"Content-Type": "application/json"}), 400)


def test_empty_body_is_null(user):
    # PATCH /user needs an object: null is not one.
    fail(patch_raw(user, ""), 400)
    fail(patch_raw(user, "", None), 400)
    # logout takes no body: an empty one (with or without a type) is fine.
    r = user.request("POST", "/user/logout", raw="", headers={})
    assert r.status_code == 200, r.text
    assert r.json() == {"ok": True, "data": None}


def test_get_ignores_the_content_type(user):
    r = user.request("GET", "/user", headers={"Content-Type": "text/plain"})
    assert r.status_code == 200, r.text
    assert r.json()["data"]["id"] == user.user["id"]


def test_body_checks_apply_to_every_route_with_a_body(stack):
    """Step 5 comes before the handler on every non-GET session route."""
    c = stack.client()
    c.register()
    for pattern, method, needs in route_methods():
        if not needs or method == "GET" or pattern == "/user" and method == "DELETE":
            continue
        if pattern == "/user/logout":
            continue
        path = sample(pattern)
        fail(c.request(method, path, raw='{"a": 1}', headers={"Content-Type": "text/plain"}), 400)
        fail(c.request(method, path, raw='{"a": 1}'), 400)
        fail(c.request(method, path, raw="{", headers={"Content-Type": "application/json"}), 400)
    # logout and DELETE /user with a bad body do nothing
    fail(c.request("POST", "/user/logout", raw="{", headers={"Content-Type": "application/json"}), 400)
    fail(c.request("DELETE", "/user", raw="x", headers={"Content-Type": "text/plain"}), 400)
    assert c.ok("GET", "/user")["id"] == c.user["id"]


def test_body_over_the_default_limit_is_413(user):
    limit = 1048576
    old = user.user["user_name"]
    new = unique_name()
    head = '{"user_name": "%s", "pad": "' % new
    tail = '"}'
    over = head + "x" * (limit + 1 - len(head) - len(tail)) + tail
    assert len(over) == limit + 1
    fail(patch_raw(user, over), 413)
    assert current(user)["user_name"] == old
    exact = head + "x" * (limit - len(head) - len(tail)) + tail
    assert len(exact) == limit
    r = patch_raw(user, exact)
    assert r.status_code == 200, r.text[:200]
    assert current(user)["user_name"] == new


def test_small_body_limit_just_under_and_over(tight_stack):
    limit = int(TIGHT_ENV["NOVA_BODY_LIMIT"])
    c = tight_stack.client()
    c.register()
    old = c.user["user_name"]
    new = unique_name()
    head = '{"user_name": "%s", "pad": "' % new
    tail = '"}'

    def body(size):
        b = head + "x" * (size - len(head) - len(tail)) + tail
        assert len(b.encode()) == size
        return b

    # over the limit: 413 from nova-api, up to twice it; beyond, nginx's own
    # 413, in the same JSON envelope
    for size in (limit + 1, limit + 100, 2 * limit - 1, 2 * limit + 1, 4 * limit):
        fail(patch_raw(c, body(size)), 413)
    assert current(c)["user_name"] == old
    # no session: 403 comes first (API.md §1 step 4 before 5)
    anon = tight_stack.client()
    assert fail(patch_raw(anon, body(limit + 1)), 403) == "Invalid Session"
    r = patch_raw(c, body(limit))
    assert r.status_code == 200, r.text
    assert current(c)["user_name"] == new
    r = patch_raw(c, body(limit - 1).replace(new, old))
    assert r.status_code == 200, r.text
    assert current(c)["user_name"] == old


def test_413_on_open_routes_too(tight_stack):
    limit = int(TIGHT_ENV["NOVA_BODY_LIMIT"])
    c = tight_stack.client()
    body = json.dumps({"user_name": unique_name(), "password": PASSWORD, "pad": "x" * limit})
    fail(c.request("POST", "/user/register", raw=body,
                   headers={"Content-Type": "application/json"}), 413)
    assert c.token is None


# --------------------------------------------------------------------------
# 6. routes not built yet


def test_not_implemented_routes_answer_501(stack):
    c = stack.client()
    c.register()
    for method, path, body in NOT_IMPLEMENTED:
        r = c.request(method, path, body)
        assert r.status_code == 501, (method, path, r.text)
        assert r.headers["Content-Type"].startswith("application/json")
        assert r.json() == {"ok": False, "error": "not implemented"}


def test_implemented_routes_never_answer_501(stack):
    """Every route not listed in NOT_IMPLEMENTED has a handler: with a
    session and a JSON object body it answers anything but 501."""
    c = stack.client()
    c.register()
    listed = {(m, p) for m, p, _ in NOT_IMPLEMENTED}
    for pattern, method, needs in route_methods():
        path = sample(pattern)
        if not needs or (method, path) in listed or (pattern, method) == ("/user", "DELETE"):
            continue
        if pattern == "/user/logout":
            continue
        body = {} if method in ("POST", "PATCH") else None
        r = c.request(method, path, body)
        assert r.status_code != 501, (method, path, r.text)
        assert r.headers["Content-Type"].startswith("application/json"), (method, path)
        env = r.json()
        assert env["ok"] is (r.status_code == 200), (method, path, env)


def test_not_implemented_list_is_part_of_the_route_table():
    known = {(m, sample(p)) for p, m, _ in route_methods()}
    for method, path, _ in NOT_IMPLEMENTED:
        assert (method, path) in known, (method, path)


# --------------------------------------------------------------------------
# CORS


def cors_headers(r):
    return {k: v for k, v in r.headers.items() if k.lower().startswith("access-control-")}


def vary_values(r):
    return [v.strip().lower() for v in r.headers.get("Vary", "").split(",") if v.strip()]


@pytest.mark.parametrize("origin", ["http://app.example", "https://second.example"])
def test_cors_allowed_origin_on_normal_responses(tight_stack, origin):
    c = tight_stack.client()
    r = c.request("POST", "/user/register", {"user_name": unique_name(), "password": PASSWORD},
                  headers={"Origin": origin})
    assert r.status_code == 200, r.text
    c.user = r.json()["data"]
    for r in (c.get("/user", headers={"Origin": origin}),
              tight_stack.client().get("/user", headers={"Origin": origin})):
        assert r.headers["Access-Control-Allow-Origin"] == origin
        assert r.headers["Access-Control-Allow-Credentials"] == "true"
        assert "origin" in vary_values(r)
        assert "Access-Control-Allow-Methods" not in r.headers
    assert c.get("/user", headers={"Origin": origin}).status_code == 200


def test_cors_preflight(tight_stack):
    r = tight_stack.client().request(
        "OPTIONS", "/user",
        headers={"Origin": "http://app.example", "Access-Control-Request-Method": "PATCH",
                 "Access-Control-Request-Headers": "content-type"},
    )
    assert r.status_code == 200, r.text
    assert r.content == b""
    assert r.headers["Allow"] == "GET, PATCH, DELETE, OPTIONS"
    assert r.headers["Access-Control-Allow-Origin"] == "http://app.example"
    assert r.headers["Access-Control-Allow-Credentials"] == "true"
    assert r.headers["Access-Control-Allow-Methods"] == "GET, POST, PATCH, DELETE, OPTIONS"
    assert r.headers["Access-Control-Allow-Headers"] == "accept, authorization, content-type"
    assert "origin" in vary_values(r)


@pytest.mark.parametrize(
    "origin",
    ["http://evil.example", "http://app.example.evil", "http://app.example:8080",
     "https://app.example", "http://APP.example.com", "null", "http://app.exampl"],
)
def test_cors_foreign_origin_gets_nothing(tight_stack, origin):
    c = tight_stack.client()
    c.register()
    for r in (
        c.get("/user", headers={"Origin": origin}),
        c.request("OPTIONS", "/user", headers={"Origin": origin,
                                               "Access-Control-Request-Method": "PATCH"}),
    ):
        assert r.status_code == 200, r.text
        assert cors_headers(r) == {}, r.headers


def test_cors_default_is_same_origin_only(stack):
    c = stack.client()
    c.register()
    for origin in ("http://app.example", "http://evil.example"):
        r = c.get("/user", headers={"Origin": origin})
        assert r.status_code == 200
        assert cors_headers(r) == {}
        r = c.request("OPTIONS", "/user", headers={"Origin": origin,
                                                   "Access-Control-Request-Method": "PATCH"})
        assert r.status_code == 200
        assert cors_headers(r) == {}


# --------------------------------------------------------------------------
# rate limit


def test_login_rate_limit_answers_429_json(make_stack):
    s = make_stack(env={"NOVA_LOGIN_RATE": "1r/s", "NOVA_LOGIN_BURST": "2"})
    c = s.client()
    statuses = []
    for _ in range(8):
        r = c.post("/user/login", {"user_name": "nobody", "password": "x"})
        statuses.append(r.status_code)
        if r.status_code == 429:
            fail(r, 429)
        else:
            fail(r, 400)  # password too short: malformed
    assert 429 in statuses, statuses
    assert statuses[0] == 400, statuses
    # register shares the limit
    r = c.post("/user/register", {"user_name": unique_name(), "password": PASSWORD})
    fail(r, 429)
    # other routes are not limited
    for _ in range(5):
        assert fail(c.get("/user"), 403) == "Invalid Session"
