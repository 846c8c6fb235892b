"""What nginx answers itself, before or instead of nova-api: every such
answer speaks the API's envelope (API.md §1: JSON, the status, and
{"ok": false, "error": ...}); nova-api sees the path exactly as the client
sent it (not exactly a route: 404 from nova-api); JSON is compressed for
clients that accept it.

Most requests here are written on a raw socket: requests and curl refuse
to send (or repair) what these tests need nginx to see."""

import gzip
import json
import os
import signal
import socket
import time
import zlib

import pytest
import requests

from conftest import fail


# -- a raw HTTP/1.1 client ------------------------------------------------------


class Answer:
    def __init__(self, status, reason, headers, body):
        self.status, self.reason, self.headers, self.body = status, reason, headers, body

    def header(self, name):
        return self.headers.get(name.lower())

    def __repr__(self):
        return f"<{self.status} {self.headers} {self.body[:300]!r}>"


def _read_exactly(sock, buf, n):
    while len(buf) < n:
        chunk = sock.recv(65536)
        if not chunk:
            raise EOFError(f"closed after {len(buf)} of {n} bytes")
        buf += chunk
    return buf


def raw(stack, data, timeout=10, send_after=None):
    """Send bytes to nginx and parse one HTTP/1.1 answer (None when nginx
    closes the connection without answering). send_after: (seconds, bytes)
    to send once the first part has gone."""
    with socket.create_connection(("127.0.0.1", stack.port), timeout=timeout) as s:
        s.sendall(data)
        if send_after:
            time.sleep(send_after[0])
            s.sendall(send_after[1])
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = s.recv(65536)
            if not chunk:
                assert buf == b"", buf  # closed in the middle of an answer
                return None
            buf += chunk
        head, body = buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        version, status, *reason = lines[0].split(" ", 2)
        assert version == "HTTP/1.1", lines[0]
        headers = {}
        for line in lines[1:]:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
        if "content-length" in headers:
            body = _read_exactly(s, body, int(headers["content-length"]))
        elif headers.get("transfer-encoding") == "chunked":
            out = b""
            while True:
                while b"\r\n" not in body:
                    body = _read_exactly(s, body, len(body) + 1)
                size_line, body = body.split(b"\r\n", 1)
                size = int(size_line, 16)
                body = _read_exactly(s, body, size + 2)
                out, body = out + body[:size], body[size + 2:]
                if size == 0:
                    break
            body = out
        return Answer(int(status), reason[0] if reason else "", headers, body)


def request(method, target, headers=(), body=b"", version="HTTP/1.1", host="127.0.0.1"):
    """The bytes of one request (Connection: close), headers as given."""
    lines = [f"{method} {target} {version}"]
    if host is not None:
        lines.append(f"Host: {host}")
    lines += list(headers) + ["Connection: close"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def envelope(answer, status):
    """Assert nginx's answer is the API's failure envelope with status."""
    assert answer is not None, "no answer at all"
    assert answer.status == status, answer
    assert answer.header("content-type") == "application/json", answer
    assert b"<html" not in answer.body.lower(), answer
    env = json.loads(answer.body)
    assert env["ok"] is False and isinstance(env["error"], str) and env["error"], env
    return env["error"]


# -- 400: the request line, the URI or a header is malformed --------------------

BAD_REQUESTS = {
    "nul in the path": b"GET /api/us%00er HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    "no request line": b"GARBAGE\r\n\r\n",
    "lowercase method": b"get /api/user HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    "no Host": b"GET /api/user HTTP/1.1\r\nConnection: close\r\n\r\n",
    "two Hosts": b"GET /api/user HTTP/1.1\r\nHost: x\r\nHost: y\r\nConnection: close\r\n\r\n",
    "bad Host": b"GET /api/user HTTP/1.1\r\nHost: a/b\r\nConnection: close\r\n\r\n",
    "space in a header name":
        b"GET /api/user HTTP/1.1\r\nHost: x\r\nBad Header: y\r\nConnection: close\r\n\r\n",
    "nul in a header": b"GET /api/user HTTP/1.1\r\nHost: x\r\nX: a\x00b\r\nConnection: close\r\n\r\n",
    "bad Content-Length":
        b"POST /api/user/login HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n"
        b"Connection: close\r\n\r\n",
    "Content-Length and chunked":
        b"POST /api/user/login HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
        b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
    "bad chunk size":
        b"POST /api/user/login HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
        b"Connection: close\r\n\r\nzz\r\n",
}


@pytest.mark.parametrize("data", BAD_REQUESTS.values(), ids=BAD_REQUESTS.keys())
def test_malformed_requests_are_400_json(stack, data):
    envelope(raw(stack, data), 400)


def test_400_requests_never_reach_nova_api(stack):
    before = stack.log_text("api").count("\n")
    envelope(raw(stack, BAD_REQUESTS["nul in the path"]), 400)
    envelope(raw(stack, BAD_REQUESTS["no request line"]), 400)
    assert stack.log_text("api").count("\n") == before


# -- 403/404: nginx's own locations ---------------------------------------------


def test_nginx_404_is_json(stack):
    # The error locations are internal: asking for one directly is nginx's 404.
    envelope(raw(stack, request("GET", "/.nova-error/400")), 404)


# -- 405: methods nginx refuses itself ------------------------------------------


def test_trace_is_405_json(stack):
    envelope(raw(stack, request("TRACE", "/api/user")), 405)


def test_post_to_the_static_site_is_405_json(stack):
    envelope(raw(stack, request("POST", "/index.html", ["Content-Length: 0"])), 405)


def test_unknown_methods_still_reach_nova_api(stack):
    # Not refused by nginx: nova-api's 405 names the methods in Allow.
    a = raw(stack, request("FOO", "/api/user"))
    envelope(a, 405)
    assert a.header("allow") == "GET, PATCH, DELETE, OPTIONS", a


# -- 408: too slow a client is disconnected, with no answer at all --------------


def test_a_client_too_slow_is_disconnected_without_html(make_stack):
    st = make_stack(env={"NOVA_NGINX_CLIENT_TIMEOUT": "1s"})
    # headers never finished, and a body that stops short: nginx sends
    # nothing (no HTML 408) and closes.
    assert raw(st, b"GET /api/user HTTP/1.1\r\nHost: x\r\n") is None
    assert raw(st, b"POST /api/user/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                   b"\r\nContent-Length: 100\r\n\r\n{\"user_name\"") is None
    # ... and the same requests sent in time are answered.
    envelope(raw(st, b"GET /api/user HTTP/1.1\r\nHost: x\r\n",
                 send_after=(0.2, b"Connection: close\r\n\r\n")), 403)


# -- 413, 414, 431: too large ---------------------------------------------------


def test_body_far_over_the_limit_is_413_json_before_it_is_sent(stack):
    # Content-Length beyond nginx's client_max_body_size: answered at once.
    for path in ("/api/user", "/api/x.html", "/api/user/register"):
        envelope(raw(stack, request("POST", path, ["Content-Type: application/json",
                                                   "Content-Length: 100000000"])), 413)


def test_uri_too_long_is_414_json(stack):
    envelope(raw(stack, request("GET", "/api/" + "a" * 9000)), 414)


def test_header_too_large_is_431_json(stack):
    envelope(raw(stack, request("GET", "/api/user", ["X-Big: " + "a" * 9000])), 431)
    # a cookie over the buffer, as a browser would send it
    envelope(raw(stack, request("GET", "/api/user", ["Cookie: sessionid=" + "b" * 9000])), 431)
    # many headers, each small, together more than the buffers hold
    many = [f"X-H{i}: " + "c" * 4000 for i in range(10)]
    envelope(raw(stack, request("GET", "/api/user", many)), 431)


# -- 429: the login rate limit --------------------------------------------------


def test_rate_limited_login_is_429_json(make_stack):
    st = make_stack(env={"NOVA_LOGIN_RATE": "1r/m", "NOVA_LOGIN_BURST": "1"})
    body = b'{"user_name":"nobody","password":"secret1"}'
    req = request("POST", "/api/user/login",
                  ["Content-Type: application/json", f"Content-Length: {len(body)}"], body)
    answers = [raw(st, req) for _ in range(3)]
    assert [a.status for a in answers[:2]] == [403, 403], answers  # nova-api: no such user
    envelope(answers[2], 429)


# -- 500: nginx itself fails ----------------------------------------------------


def test_nginx_internal_error_is_500_json(make_stack):
    st = make_stack()
    # A body over client_body_buffer_size (128k) goes to a temporary file;
    # make that impossible (a file where the directory was: ENOTDIR even
    # for root).
    tmp_body = st.dir / "nginx" / "tmp" / "body"
    os.rename(tmp_body, str(tmp_body) + ".moved")
    tmp_body.write_text("not a directory")
    big = b'{"user_name": "' + b"x" * 200_000 + b'"}'
    envelope(raw(st, request("PATCH", "/api/user", ["Content-Type: application/json",
                                                     f"Content-Length: {len(big)}"], big)), 500)
    # small bodies stay in memory and still work
    c = st.client()
    c.register()
    assert c.ok("GET", "/user")["id"] == c.user["id"]


# -- 501, 505: what nginx does not implement ------------------------------------


@pytest.mark.parametrize("encoding", ["gzip", "identity", "chunked, gzip", "x-unknown"])
def test_unknown_transfer_encoding_is_501_json(stack, encoding):
    envelope(raw(stack, request("POST", "/api/user/login",
                                [f"Transfer-Encoding: {encoding}"])), 501)


def test_http_2_over_plain_http_1_is_505_json(stack):
    envelope(raw(stack, request("GET", "/api/user", version="HTTP/2.0")), 505)


# -- 502/503, 504: the backends -------------------------------------------------


def test_backends_down_are_503_json(make_stack):
    st = make_stack()
    c = st.client()
    c.register()
    st.stop_proc("api")
    for path in ("/api/user", "/api/user/login"):  # both pools
        envelope(raw(st, request("GET", path)), 503)
    st.stop_proc("realtime")
    ws = request("GET", "/ws/", ["Upgrade: websocket", "Connection: Upgrade",
                                 "Sec-WebSocket-Version: 13",
                                 "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="])
    envelope(raw(st, ws), 503)


def test_backend_too_slow_is_504_json(make_stack):
    # A slow argon2id (64 passes over 64 MiB: about 2 s here) behind a
    # 300 ms FastCGI timeout: nginx gives up and says so, in JSON.
    st = make_stack(env={"NOVA_API_TIMEOUT": "300ms", "NOVA_PWHASH_OPSLIMIT": "64",
                         "NOVA_PWHASH_MEMLIMIT": str(64 << 20)})
    body = b'{"user_name":"slowpoke","password":"secret1"}'
    a = raw(st, request("POST", "/api/user/register",
                        ["Content-Type: application/json", f"Content-Length: {len(body)}"], body))
    assert "may or may not have been applied" in envelope(a, 504)


# -- every error location answers JSON whatever the path looks like ------------


def test_error_answers_are_json_even_for_html_looking_paths(stack):
    for path in ("/api/page.html", "/api/x.css", "/index.html"):
        a = raw(stack, request("POST", path, ["Content-Length: 100000000"]))
        envelope(a, 413)
        assert a.header("cache-control") == "no-store", a


# -- nova-api routes on the raw path (API.md §1) --------------------------------

NOT_ROUTES = [
    "//user", "/user/../user", "/user/./", "/./user", "/us%65r", "/user%2f", "/%75ser",
    "/user/%2e%2e/user", "/chat//messages", "/user//", "/friend/group//list",
    "/friend/group/list/..", "/user/login/../../user", "/user/login%00",
]


@pytest.mark.parametrize("path", NOT_ROUTES)
def test_a_path_that_is_not_exactly_a_route_is_404_from_nova_api(user, path):
    if "%00" in path:  # nginx refuses a NUL in the path before nova-api
        envelope(raw(user.stack, request("GET", "/api" + path)), 400)
        return
    for method in ("GET", "POST", "OPTIONS"):
        a = raw(user.stack, request(method, "/api" + path, [f"Cookie: sessionid={user.token}",
                                                            "Content-Length: 0"]))
        err = envelope(a, 404)
        assert err == f"no such path: {path}", (method, path, err)


def test_paths_outside_api_that_normalise_into_it_are_404(stack):
    for target in ("//api/user", "///api/user", "/x/../api/user", "/api/../api/user"):
        a = raw(stack, request("GET", target))
        assert "no such path" in envelope(a, 404), (target, a)


def test_the_query_is_not_part_of_the_raw_path(user):
    a = raw(user.stack, request("GET", "/api/user?x=/../&y=%2F",
                                [f"Cookie: sessionid={user.token}"]))
    assert a.status == 200 and json.loads(a.body)["data"]["id"] == user.user["id"], a
    a = raw(user.stack, request("GET", "/api/user/?x=1"))
    assert envelope(a, 404) == "no such path: /user/"


def test_an_encoded_login_path_is_rate_limited_and_unknown(make_stack):
    # "/api/user/logi%6e" is the login location to nginx (its limit applies)
    # but not the login route to nova-api: no way round the limit.
    st = make_stack(env={"NOVA_LOGIN_RATE": "1r/m", "NOVA_LOGIN_BURST": "1"})
    req = request("POST", "/api/user/logi%6e", ["Content-Length: 0"])
    answers = [raw(st, req) for _ in range(3)]
    assert [envelope(a, a.status) for a in answers[:2]] == ["no such path: /user/logi%6e"] * 2
    envelope(answers[2], 429)


# -- compression (issue 9 finding 11) -------------------------------------------


def _big_json_user(stack):
    c = stack.client()
    c.register()
    # a 60 kB avatar: the response is large and repetitive enough to compress
    avatar = "data:image/png;base64," + "QUJD" * 15000
    c.ok("PATCH", "/user", {"avatar_url": avatar})
    return c


def test_json_is_gzipped_for_clients_that_accept_it(stack):
    c = _big_json_user(stack)
    plain = c.get("/user", headers={"Accept-Encoding": "identity"}, stream=True)
    plain_bytes = plain.raw.read(decode_content=False)
    assert plain.headers.get("Content-Encoding") is None, plain.headers
    assert "Accept-Encoding" in plain.headers.get("Vary", ""), plain.headers

    zipped = c.get("/user", headers={"Accept-Encoding": "gzip"}, stream=True)
    assert zipped.status_code == 200
    assert zipped.headers["Content-Encoding"] == "gzip", zipped.headers
    assert zipped.headers["Content-Type"] == "application/json"
    wire = zipped.raw.read(decode_content=False)
    assert len(wire) < len(plain_bytes) // 10, (len(wire), len(plain_bytes))
    assert gzip.decompress(wire) == plain_bytes
    assert json.loads(plain_bytes)["data"]["id"] == c.user["id"]


def test_compressed_or_not_an_error_is_the_same_envelope(stack):
    # nova-api's answers carry no Content-Length, so nginx compresses even
    # small ones (gzip_min_length cannot tell): the client sees the same JSON.
    for encoding in ("gzip", "identity", "br"):
        r = requests.get(stack.base + "/api/user", headers={"Accept-Encoding": encoding},
                         timeout=30)
        if encoding == "gzip":
            assert r.headers.get("Content-Encoding") == "gzip", r.headers
        if encoding != "br":  # requests cannot decode br without the brotli module
            assert fail(r, 403) == "Invalid Session"


def brotli_loaded(stack):
    return "ngx_http_brotli_filter_module" in (stack.dir / "nginx" / "nginx.conf").read_text()


def test_brotli_when_the_module_is_installed(stack):
    if not os.path.exists("/usr/lib/nginx/modules/ngx_http_brotli_filter_module.so"):
        assert not brotli_loaded(stack)
        pytest.skip("nginx's brotli module (libnginx-mod-http-brotli-filter) is not installed")
    assert brotli_loaded(stack)
    c = _big_json_user(stack)
    gz = c.get("/user", headers={"Accept-Encoding": "gzip"}, stream=True)
    br = c.get("/user", headers={"Accept-Encoding": "br, gzip"}, stream=True)
    assert br.headers["Content-Encoding"] == "br", br.headers
    br_bytes, gz_bytes = br.raw.read(decode_content=False), gz.raw.read(decode_content=False)
    assert 0 < len(br_bytes) <= len(gz_bytes), (len(br_bytes), len(gz_bytes))
    try:
        import brotli
    except ImportError:
        return
    assert brotli.decompress(br_bytes) == zlib.decompress(gz_bytes, 16 + zlib.MAX_WBITS)
