"""The outbox console (docs/CONSOLE.md): operators made by nova-admin, the
JSON API under /admin/api/ through nginx, and the page in a real headless
Chromium. A chat user's session never opens it; off (the default), all of
/admin/ is a 404."""

import os
import pathlib
import shutil
import subprocess
import time

import pytest
import requests

from conftest import BUILD, Stack, fail, secrets_in_logs, unique_name
from support import befriend, make_group, say

OP_PASSWORD = "operator-secret-1"


def add_operator(stack, name, password=OP_PASSWORD, check=True):
    r = subprocess.run([str(BUILD / "nova-admin"), "operator", "add", name],
                       input=password + "\n", env=stack.env, capture_output=True, text=True)
    if check:
        assert r.returncode == 0, r.stderr
    return r


class Console:
    """One operator's browser: a cookie jar for /admin/api/ through nginx.
    Every answer's text is kept, to look for secrets afterwards."""

    seen = []
    tokens = set()

    def __init__(self, stack):
        self.stack = stack
        self.http = requests.Session()

    def call(self, method, path, **kw):
        r = self.http.request(method, self.stack.base + "/admin/api/" + path, timeout=30, **kw)
        Console.seen.append(r.text + str(r.headers))
        if self.token:
            Console.tokens.add(self.token)
        return r

    def get(self, path, **kw):
        return self.call("GET", path, **kw)

    def ok(self, path, **kw):
        r = self.get(path, **kw)
        assert r.status_code == 200, (path, r.status_code, r.text)
        env = r.json()
        assert env["ok"] is True, env
        return env["data"]

    def login(self, name, password=OP_PASSWORD):
        return self.call("POST", "login", json={"name": name, "password": password})

    @property
    def token(self):
        return self.http.cookies.get("nova_admin")


@pytest.fixture(scope="module")
def console_stack():
    s = Stack(env={"NOVA_CONSOLE": "1"}).start()
    add_operator(s, "ops")
    yield s
    s.stop()
    reports = s.sanitizer_reports()
    leaked = secrets_in_logs(s, Console.tokens | {OP_PASSWORD})
    s.cleanup() if not reports and not leaked else None
    assert not reports, "sanitizer reports:\n" + "\n".join(reports)
    assert Console.tokens and not leaked, f"{len(leaked)} operator tokens or passwords in the logs"


@pytest.fixture
def ops(console_stack):
    c = Console(console_stack)
    r = c.login("ops")
    assert r.status_code == 200, r.text
    return c


def test_operator_commands(console_stack):
    st = console_stack
    name = unique_name("op")
    assert "added operator" in add_operator(st, name).stdout
    again = add_operator(st, name, check=False)
    assert again.returncode == 1 and "already" in again.stderr
    short = add_operator(st, unique_name("op"), "short", check=False)
    assert short.returncode == 1 and "at least 8" in short.stderr
    bad = add_operator(st, "no spaces allowed", check=False)
    assert bad.returncode == 2
    listed = st.admin("operator", "list").stdout
    assert name in listed and "ops" in listed and OP_PASSWORD not in listed

    c = Console(st)
    assert c.login(name).status_code == 200
    assert c.ok("me")["name"] == name
    line = next(l for l in st.admin("operator", "list").stdout.splitlines() if l.startswith(name))
    assert line.split()[-1] == "1", line  # one live console session
    assert st.admin("operator", "remove", name).returncode == 0
    fail(c.get("me"), 401)  # removing an operator ends their sessions
    gone = st.admin("operator", "remove", name, check=False)
    assert gone.returncode == 1 and "no operator" in gone.stderr
    assert name not in st.admin("operator", "list").stdout
    # the password is stored as argon2id, never as given
    rows = st.sql("SELECT password_hash FROM operators WHERE name = ?", "ops")
    assert rows and rows[0][0].startswith("$argon2id$")


def test_login_logout_and_wrong_passwords(console_stack):
    c = Console(console_stack)
    fail(c.get("stats"), 401)
    fail(c.login("ops", "wrong password"), 401)
    fail(c.login("nobody-" + unique_name(), OP_PASSWORD), 401)
    fail(c.call("POST", "login", data="not json", headers={"Content-Type": "application/json"}), 400)
    fail(c.call("POST", "login", json={"name": "ops"}), 400)
    fail(c.call("POST", "login", json={"name": "ops", "password": OP_PASSWORD},
                headers={"Origin": "http://evil.example"}), 403)
    assert c.token is None
    r = c.login("ops")
    assert r.status_code == 200 and r.json()["data"] == {"name": "ops"}
    cookie = r.headers["Set-Cookie"]
    for attr in ("nova_admin=", "Path=/admin/", "HttpOnly", "SameSite=Strict"):
        assert attr in cookie, cookie
    token = c.token
    assert c.ok("me")["name"] == "ops"
    fail(c.get("login"), 405)
    fail(c.get("no-such-thing"), 404)
    assert c.call("POST", "logout").status_code == 200
    fail(c.get("me"), 401)
    # the old token is dead for good
    again = Console(console_stack)
    again.http.cookies.set("nova_admin", token)
    fail(again.get("stats"), 401)


def test_a_chat_session_never_reaches_the_console(console_stack, ops):
    st = console_stack
    user = st.client()
    user.register()
    chat_token = user.token
    for path in ("me", "stats", "series", "events", "events/1", "tail", "sessions"):
        fail(user.http.get(st.base + "/admin/api/" + path, timeout=30), 401)
    # the chat token under the console's cookie name is no operator session
    forged = Console(st)
    forged.http.cookies.set("nova_admin", chat_token)
    fail(forged.get("stats"), 401)
    # and the operator's cookie is no chat session
    r = requests.get(st.base + "/api/user", cookies={"sessionid": ops.token}, timeout=30)
    fail(r, 403)
    # the chat's /api/ never serves the console, whatever the client sends
    for headers in ({}, {"NOVA_CONSOLE": "1"}, {"Nova-Console": "1"}):
        r = requests.get(st.base + "/api/admin/api/stats", cookies={"nova_admin": ops.token},
                         headers=headers, timeout=30)
        fail(r, 404)
    r = requests.get(st.base + "//admin/api/stats", cookies={"nova_admin": ops.token}, timeout=30)
    fail(r, 404)


def test_console_off_is_a_404(stack):
    for path in ("/admin/", "/admin/index.html", "/admin/admin.js", "/admin/api/stats"):
        fail(requests.get(stack.base + path, timeout=30), 404)
    fail(requests.post(stack.base + "/admin/api/login", json={"name": "x", "password": "y"},
                       timeout=30), 404)


def test_stats_series_and_tail(console_stack, ops):
    st = console_stack
    a = st.client()
    a.register()
    start = ops.ok("tail")
    assert start["events"] == [] and start["after"] == start["position"]
    for _ in range(3):
        a.ok("PATCH", "/user", {"user_name": a.user["user_name"]})
    s = ops.ok("stats")
    assert s["rows"] >= 3 and s["events_last_minute"] >= 3 and s["newest_id"] == s["position"]
    assert s["events_per_second"] > 0
    daemon = s["daemons"][0]
    assert daemon["pid"] > 0 and daemon["lag"] >= 0 and daemon["stale"] is False
    assert daemon["delivered_id"] <= s["position"]

    tail = ops.ok(f"tail?after={start['after']}")
    assert [e["action"] for e in tail["events"]] == ["profile_change"] * 3
    assert tail["after"] == tail["events"][-1]["id"]
    assert ops.ok(f"tail?after={tail['after']}")["events"] == []

    deadline = time.time() + 10
    while True:
        series = ops.ok("series?hours=1")
        if series["lag"] or time.time() > deadline:
            break
        time.sleep(0.3)
    assert series["hours"] == 1 and series["to"] - series["from"] == 59 * 60
    assert sum(n for _, n in series["events"]) >= 3
    assert all(series["from"] <= t <= series["to"] and t % 60 == 0 for t, _ in series["events"])
    assert series["lag"] and series["lag"][0]["daemon"] == daemon["name"]
    assert all(lag >= 0 for _, lag in series["lag"][0]["points"])


def test_event_filters_paging_and_detail(console_stack, ops):
    st = console_stack
    alice, bob, carol = (st.client() for _ in range(3))
    for c in (alice, bob, carol):
        c.register()
    befriend(alice, bob)
    befriend(alice, carol)
    chat = make_group(alice, [bob, carol])["chat_id"]
    other = make_group(alice, [bob])["chat_id"]
    since = int(time.time())
    for i in range(5):
        say(bob, chat, f"hello {i}")
    say(alice, other, "elsewhere")

    def events(query):
        return ops.ok("events?" + query)["events"]

    mine = events(f"action=new_message&chat={chat}")  # the creation's system message too
    assert len(mine) == 6 and all(e["action"] == "new_message" for e in mine)
    assert [e["id"] for e in mine] == sorted((e["id"] for e in mine), reverse=True)
    assert all(sorted(e["recipients"]) == sorted([alice.user["id"], bob.user["id"],
                                                  carol.user["id"]]) for e in mine)
    assert len(events(f"action=new_message&chat={other}")) >= 1
    # by user, name or id: carol gets nothing of the other chat
    by_name = events(f"user={carol.user['user_name']}&action=new_message")
    by_id = events(f"user={carol.user['id']}&action=new_message")
    assert by_name == by_id and {e["id"] for e in by_name} >= {e["id"] for e in mine}
    assert all(carol.user["id"] in e["recipients"] for e in by_name)
    assert not {e["id"] for e in by_name} & {e["id"] for e in events(f"chat={other}")}
    assert events("user=" + unique_name("nobody")) == []
    # time
    recent = {e["id"] for e in events(f"chat={chat}&action=new_message&since={since}")}
    assert {e["id"] for e in mine[:5]} <= recent <= {e["id"] for e in mine}
    assert events(f"chat={chat}&until={since - 3600}") == []
    # paging: 2 at a time, in order, no duplicates, to the end
    seen, before = [], None
    while True:
        page = ops.ok(f"events?chat={chat}&action=new_message&limit=2"
                      + (f"&before={before}" if before else ""))
        seen += [e["id"] for e in page["events"]]
        before = page["next_before"]
        if before is None:
            break
        assert before == seen[-1]
    assert seen == [e["id"] for e in mine]
    # one event in full, its recipients by name
    one = ops.ok(f"events/{mine[0]['id']}")
    assert one["data"]["message"]["message"] == "hello 4"
    names = {u["id"]: u["user_name"] for u in one["recipient_users"]}
    assert names == {c.user["id"]: c.user["user_name"] for c in (alice, bob, carol)}
    assert one["origin"] and one["request_id"]
    fail(ops.get("events/999999999"), 404)
    fail(ops.get("events/abc"), 404)


def test_sessions_and_no_token_anywhere(console_stack, ops):
    st = console_stack
    u = st.client()
    u.register()
    second = st.client()
    second.login(u.user["user_name"], u.password)
    d = ops.ok("sessions?user=" + u.user["user_name"])
    assert len(d["sessions"]) == 2
    for s in d["sessions"]:
        assert set(s) == {"id", "user_id", "user_name", "created_at", "last_seen",
                          "idle_expires_at", "expires_at"}
        assert s["user_name"] == u.user["user_name"] and s["expires_at"] > s["created_at"]
    assert len(ops.ok("sessions")["sessions"]) >= 2
    u.ok("POST", "/user/logout")
    assert len(ops.ok("sessions?user=" + u.user["user_name"])["sessions"]) == 1
    # the logout event in full names its one session, never a token
    logout = ops.ok("events?action=logout&limit=1")["events"][0]
    assert logout["session_id"] and logout["recipients"] == [u.user["id"]]
    ops.ok(f"events/{logout['id']}")
    tokens = [u.token, second.token, ops.token] + [
        t for t in (c.http.cookies.get("sessionid") for c in (u, second)) if t]
    text = "\n".join(Console.seen)
    assert ops.token and second.token
    for t in tokens:
        if t:
            assert t not in text.replace("nova_admin=" + ops.token, ""), "a token in an answer"


@pytest.mark.parametrize("query", [
    "events?limit=0", "events?limit=501", "events?limit=x", "events?chat=-1", "events?chat=1.5",
    "events?since=yesterday", "events?until=-5", "events?before=0", "events?action=%01", "events?user=a%0ab",
    "events?user=" + "x" * 200, "series?hours=0", "series?hours=169", "series?hours=",
    "tail?after=-1", "tail?after=x", "tail?limit=201", "sessions?user=%00",
])
def test_bad_input_is_400(ops, query):
    fail(ops.get(query), 400)


# --- the page in a real browser ------------------------------------------------

CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")


def browser():
    from selenium import webdriver

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1280,2200", "--no-first-run", "--disable-extensions"):
        opts.add_argument(arg)
    from selenium.webdriver.chrome.service import Service

    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)


def shoot(driver, tmp_path, name):
    path = tmp_path / name
    driver.save_screenshot(str(path))
    out = os.environ.get("NOVA_SCREENSHOTS")
    if out:
        pathlib.Path(out).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, pathlib.Path(out) / name)
    assert path.stat().st_size > 1000
    return path


@pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER),
                    reason="needs Debian's chromium and chromium-driver (scripts/install-deps --test)")
def test_the_page_in_headless_chromium(console_stack, tmp_path):
    pytest.importorskip("selenium", reason="needs python3-selenium (scripts/install-deps --test)")
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import Select, WebDriverWait

    st = console_stack
    alice, bob = st.client(), st.client()
    alice.register()
    bob.register()
    befriend(alice, bob)
    chat = make_group(alice, [bob])["chat_id"]
    for i in range(3):
        say(bob, chat, f"browser {i}")

    d = browser()
    try:
        wait = WebDriverWait(d, 20)
        # a chat user's session: the page asks for a login, the API says 401
        d.get(st.base + "/")
        d.add_cookie({"name": "sessionid", "value": alice.token, "path": "/"})
        d.get(st.base + "/admin/")
        wait.until(EC.visibility_of_element_located((By.ID, "login-form")))
        assert not d.find_element(By.ID, "dashboard").is_displayed()
        status = d.execute_async_script(
            "const done = arguments[0];"
            "fetch('/admin/api/stats', {credentials: 'same-origin'}).then(r => done(r.status));")
        assert status == 401
        shoot(d, tmp_path, "console-login.png")

        d.find_element(By.ID, "login-name").send_keys("ops")
        d.find_element(By.ID, "login-password").send_keys("wrong password")
        d.find_element(By.CSS_SELECTOR, "#login-form button").click()
        wait.until(lambda _: d.find_element(By.ID, "login-error").text)
        d.find_element(By.ID, "login-password").clear()
        d.find_element(By.ID, "login-password").send_keys(OP_PASSWORD)
        d.find_element(By.CSS_SELECTOR, "#login-form button").click()
        wait.until(EC.visibility_of_element_located((By.ID, "dashboard")))
        assert "ops" in d.find_element(By.ID, "who").text
        wait.until(lambda _: "events retained" in d.find_element(By.ID, "stats").text)
        wait.until(lambda _: d.find_elements(By.CSS_SELECTOR, "#chart rect.events"))
        wait.until(lambda _: d.find_elements(By.CSS_SELECTOR, "#daemons tbody tr"))
        wait.until(lambda _: len(d.find_elements(By.CSS_SELECTOR, "#events tbody tr[data-id]")) >= 3)
        Select(d.find_element(By.ID, "chart-hours")).select_by_value("1")
        shoot(d, tmp_path, "console-dashboard.png")

        # filter: the new messages of the chat (its creation's system message too)
        d.find_element(By.ID, "f-action").send_keys("new_message")
        d.find_element(By.ID, "f-chat").send_keys(str(chat))
        d.find_element(By.CSS_SELECTOR, "#filter-form button[type=submit]").click()
        wait.until(lambda _: len(d.find_elements(By.CSS_SELECTOR, "#events tbody tr[data-id]")) == 4
                   and all(r.find_elements(By.TAG_NAME, "td")[2].text == "new_message"
                           for r in d.find_elements(By.CSS_SELECTOR, "#events tbody tr[data-id]")))
        # one event in full, its recipients by name
        d.find_elements(By.CSS_SELECTOR, "#events tbody tr[data-id]")[0].click()
        wait.until(EC.visibility_of_element_located((By.ID, "detail-section")))
        wait.until(lambda _: alice.user["user_name"] in d.find_element(By.ID, "detail-recipients").text)
        assert bob.user["user_name"] in d.find_element(By.ID, "detail-recipients").text
        assert "browser 2" in d.find_element(By.ID, "detail-data").text
        shoot(d, tmp_path, "console-event.png")

        # the live tail picks up an event made through the chat API
        d.find_element(By.ID, "tail-toggle").click()
        time.sleep(1.5)  # its first poll sets the position to follow from
        bob.ok("PATCH", "/user", {"user_name": bob.user["user_name"]})
        newest = st.sql("SELECT max(id) FROM outbox")[0][0]
        wait.until(lambda _: d.find_elements(By.CSS_SELECTOR, f"#tail li[data-id='{newest}']"))
        assert "profile_change" in d.find_element(By.CSS_SELECTOR, f"#tail li[data-id='{newest}']").text

        # sessions per user, never a token
        d.find_element(By.ID, "sessions-refresh").click()
        wait.until(lambda _: bob.user["user_name"] in d.find_element(By.ID, "sessions").text)
        page = d.page_source
        assert alice.token not in page and bob.token not in page
        shoot(d, tmp_path, "console-tail.png")

        d.find_element(By.ID, "logout").click()
        wait.until(EC.visibility_of_element_located((By.ID, "login-form")))
        assert not [c for c in d.get_cookies() if c["name"] == "nova_admin" and c["value"]]
    finally:
        d.quit()
