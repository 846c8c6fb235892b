"""PostgreSQL going away and coming back (issue 11, "storage unavailable").

Each test runs its own PostgreSQL cluster (conftest's PgCluster), so that
stopping it touches no other test. While the server is down, nova-api
answers 503 with the JSON envelope and nova-realtime answers socket actions
with an error packet; neither process dies. When it is back, both recover by
themselves: REST works again, the sockets that stayed open receive what is
committed afterwards, each event exactly once, and nothing the outage cut
off is half-applied."""

import subprocess
import threading
import time

import pytest

from conftest import BUILD, PgCluster, Stack
from support import befriend, metric, scrape, send_message, unique_name, until

REQ = "nova_api_requests_total"

pytestmark = pytest.mark.postgres_only

UNAVAILABLE = {"ok": False, "error": "storage temporarily unavailable, try again"}


@pytest.fixture
def own_stack():
    cluster = PgCluster()
    st = Stack(cluster=cluster).start()
    yield st, cluster
    cluster.resume()  # the stack's database must be reachable to drop it
    st.stop_and_check()
    cluster.stop()


def next_of(sock, action):
    """The next packet of an action, skipping others."""
    while True:
        m = sock.recv()
        if m["action"] == action:
            return m


def answers(client, status):
    r = client.request("GET", "/user")
    return r if r.status_code == status else None


@pytest.mark.parametrize("mode", ["immediate", "fast"], ids=["crash", "shutdown"])
def test_postgres_away_is_503_and_both_daemons_recover(own_stack, mode):
    st, cluster = own_stack
    a, b = st.client(), st.client()
    a.register()
    b.register()
    chat = befriend(a, b)
    sa, sb = a.socket(), b.socket()
    sa.ping_barrier()
    sb.ping_barrier()
    send_message(sa, a, chat, "before")
    assert next_of(sb, "new_message")["data"]["message"]["message"] == "before"
    rows_before = st.sql("SELECT count(*) FROM messages")[0][0]

    cluster.halt(mode)
    # REST: every route that needs the storage answers 503 JSON, reads too.
    for method, path, body in (("GET", "/user", None), ("PATCH", "/user", {"avatar_url": "https://example.com/x.png"}),
                               ("GET", "/friend", None), ("POST", "/user/login",
                                                          {"user_name": a.user["user_name"],
                                                           "password": a.password})):
        r = a.request(method, path, body)
        assert r.status_code == 503, (path, r.status_code, r.text)
        assert r.json() == UNAVAILABLE
    # The socket stays open; an action gets an error packet, not a crash.
    rid = sa.request("send_message", {"chat_id": chat, "content": "during"})
    msg = next_of(sa, "error")
    assert msg["action"] == "error" and msg["request_id"] == rid and msg["ok"] is False, msg
    assert msg["code"] == 503, msg
    for name in ("api", "realtime"):
        assert st.procs[name].poll() is None, f"{name} died:\n{st.log_text(name)}"
    # The metrics still answer, and count the outage as unavailable
    # storage (not as internal errors); the daemon's lag is not guessed.
    api = scrape(st)
    assert metric(api, "nova_db_errors_total", kind="unavailable") >= 4, api
    assert metric(api, REQ, method="GET", route="/user", status="503") >= 1
    # (A plain HTTP request to the daemon, this scrape, once left its
    # descriptor's WebSocket byte follower behind: libpq's reconnect on
    # that number then read frames and hung the daemon.)
    rt = scrape(st, "/metrics/realtime")
    assert metric(rt, "nova_db_errors_total", kind="unavailable") >= 1
    assert ("nova_realtime_outbox_lag_events", frozenset()) not in rt
    assert metric(rt, "nova_realtime_sockets_open") == 2

    cluster.resume()
    # Both come back by themselves, without a restart: each worker within
    # its reconnect gap (a quarter of a second) of the first success.
    until(lambda: answers(a, 200))
    time.sleep(0.3)
    for _ in range(10):
        assert answers(a, 200), "a worker did not reconnect"
    # A REST change reaches the open socket of the other user (the tailer
    # and its LISTEN connection are back), exactly once.
    b.ok("PATCH", "/user", {"avatar_url": "https://example.com/back.png"})
    a.ok("PATCH", "/user", {"avatar_url": "https://example.com/again.png"})
    seen = []
    while True:
        m = sa.recv()
        seen.append(m)
        if m["action"] == "profile_change" and m["data"] is None:
            break
    # The socket action of the outage was not applied; a new one is.
    send_message(sa, a, chat, "after")
    assert next_of(sb, "new_message")["data"]["message"]["message"] == "after"
    contents = [r[0] for r in st.sql("SELECT content FROM messages WHERE chat_id = ? "
                                     "AND sender_id = ? ORDER BY id", chat, a.user["id"])]
    assert contents == ["before", "after"]
    assert st.sql("SELECT count(*) FROM messages")[0][0] == rows_before + 1
    ids = [m.get("event_id") for m in seen if "event_id" in m]
    assert len(ids) == len(set(ids)), seen
    # Logs: the outage is logged, but not once per poll for its whole length.
    errors = st.log_text("realtime").count(" error ")
    assert errors < 100, st.log_text("realtime")[-3000:]


def test_writes_cut_off_by_a_crash_are_whole_or_absent(own_stack):
    """Writers keep writing while PostgreSQL crashes and comes back: every
    request that answered 200 is there with its event, none that answered
    503 left a trace, and the database's invariants hold."""
    st, cluster = own_stack
    clients = []
    for _ in range(4):
        c = st.client()
        c.register()
        clients.append(c)
    results = []
    stop = threading.Event()

    def write(c):
        n = 0
        while not stop.is_set():
            n += 1
            group = unique_name("g")[:30]
            r = c.request("POST", "/friend/group/add", {"group_name": group})
            results.append((c.user["id"], group, r.status_code))
            time.sleep(0.01)

    threads = [threading.Thread(target=write, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    time.sleep(0.5)
    cluster.halt("immediate")
    time.sleep(1.0)
    cluster.resume()
    until(lambda: answers(clients[0], 200))
    time.sleep(0.5)
    stop.set()
    for t in threads:
        t.join()

    statuses = {s for _, _, s in results}
    assert statuses <= {200, 503}, statuses
    assert 200 in statuses and 503 in statuses, statuses
    stored = {(u, n) for u, n in st.sql("SELECT user_id, name FROM friend_groups WHERE name <> ''")}
    ok = {(u, g) for u, g, s in results if s == 200}
    failed = {(u, g) for u, g, s in results if s == 503}
    assert ok <= stored, ok - stored
    assert not (failed & stored), failed & stored
    check = st.admin("check", check=False)
    assert check.returncode == 0, check.stdout


@pytest.mark.parametrize("version,words", [(0, "nova-admin migrate"), (99, "upgrade Nova")])
def test_daemons_refuse_a_mismatched_postgres_schema(version, words, tmp_path):
    """The same schema rule as on SQLite: migrate applies what is missing,
    twice is a no-op, and the daemons start only on exactly their version."""
    st = Stack(engine="postgres")
    try:
        env = dict(st.env)
        migrate = st.admin("migrate")
        # The same versions as SQLite's, one file each.
        from conftest import ROOT
        names = sorted(p.stem for p in (ROOT / "sql/postgres").glob("[0-9]*.sql"))
        assert names == sorted(p.stem for p in (ROOT / "sql").glob("[0-9]*.sql")), names
        for name in names:
            assert f"applied {name}" in migrate.stdout, (name, migrate)
        assert "applied" not in st.admin("migrate").stdout
        assert st.admin("version").stdout.split()[1] == f"{int(names[-1][:3])},"
        w = st.writer()
        w.execute("UPDATE nova_schema SET version = ?", (version,))
        w.commit()
        w.close()
        for binary, args in [("nova-api", ["--socket", str(tmp_path / "a.sock")]),
                             ("nova-realtime", ["--listen", str(tmp_path / "r.sock")])]:
            r = subprocess.run([str(BUILD / binary), *args], env=env, capture_output=True,
                               text=True, timeout=30)
            assert r.returncode == 1, (binary, r.stderr)
            assert words in r.stderr, r.stderr
    finally:
        st.cleanup()
