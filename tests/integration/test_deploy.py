"""Running Nova the ways an operator does: under spawn-fcgi, with an
out-of-date database, with --help, with nova-admin, and stopping on SIGTERM."""

import shutil
import socket
import signal
import sqlite3
import subprocess

import pytest

from conftest import BUILD, Stack, fail


class SpawnFcgiStack(Stack):
    """nova-api started by spawn-fcgi (fd 0 is the FastCGI socket)."""

    def start_api(self):
        self._spawn(
            "api",
            [shutil.which("spawn-fcgi"), "-n", "-s", str(self.api_sock), "--",
             str(BUILD / "nova-api")],
        )
        self._wait_for(self.api_sock)


@pytest.mark.skipif(not shutil.which("spawn-fcgi"), reason="spawn-fcgi not installed")
def test_nova_api_under_spawn_fcgi():
    s = SpawnFcgiStack().start()
    try:
        c = s.client()
        user = c.register()
        assert c.ok("GET", "/user")["id"] == user["id"]
        fail(c.get("/no/such/path"), 404)
    finally:
        s.stop()
        reports = s.sanitizer_reports()
        s.cleanup()
    assert not reports, reports


def run(binary, *args, env=None):
    return subprocess.run([str(BUILD / binary), *args], capture_output=True, text=True,
                          env=env, timeout=30)


@pytest.mark.parametrize("binary", ["nova-api", "nova-realtime", "nova-admin"])
def test_help_describes_every_option(binary):
    r = run(binary, "--help")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("usage: " + binary)
    assert "NOVA_DB" in r.stdout and "--db" in r.stdout
    bad = run(binary, "--no-such-flag")
    assert bad.returncode == 2 and "unknown" in bad.stderr


def test_daemons_refuse_an_out_of_date_schema(tmp_path):
    db = tmp_path / "old.db"
    # A database at an older schema version than this build.
    con = sqlite3.connect(db)
    con.execute("PRAGMA user_version = 0")
    con.execute("CREATE TABLE t (x)")
    con.commit()
    con.close()
    env = {"NOVA_DB": str(db), "PATH": "/usr/bin:/bin"}
    for binary, args in [("nova-api", ["--socket", str(tmp_path / "a.sock")]),
                         ("nova-realtime", ["--listen", str(tmp_path / "r.sock")])]:
        r = run(binary, *args, env=env)
        assert r.returncode == 1, (binary, r.stderr)
        assert "nova-admin migrate" in r.stderr, r.stderr
    # nova-admin migrate refuses too: the file is not a Nova database at
    # version 0 with foreign tables... it applies 001 on top, which works
    # only on an empty database, so use a fresh file for the positive case.
    fresh = tmp_path / "fresh.db"
    env["NOVA_DB"] = str(fresh)
    r = run("nova-admin", "migrate", env=env)
    assert r.returncode == 0 and "applied 001_init" in r.stdout, r
    again = run("nova-admin", "migrate", env=env)
    assert again.returncode == 0 and "applied" not in again.stdout
    assert run("nova-admin", "version", env=env).stdout.split()[1] == "1,"


def test_nova_admin_shows_the_outbox_and_sessions(stack):
    a = stack.client()
    a.register()
    a.ok("PATCH", "/user", {"avatar_url": "https://example.com/a.png"})
    r = stack.admin("outbox", "--action", "profile_change", "--limit", "5")
    assert "profile_change" in r.stdout
    assert f"to users [{a.user['id']}]" in r.stdout
    newest = int(stack.sql("SELECT max(id) FROM outbox")[0][0])
    since = stack.admin("outbox", "--since", str(newest))
    assert since.stdout.strip() == "no events"
    sessions = stack.admin("sessions", "--user", a.user["user_name"])
    lines = sessions.stdout.strip().splitlines()
    assert len(lines) == 2 and a.user["user_name"] in lines[1]
    # Never a token: the cookie value must not appear in what is printed.
    assert a.token not in sessions.stdout and a.token not in r.stdout
    bad = stack.admin("outbox", "--since", "x", check=False)
    assert bad.returncode == 2


def test_daemons_stop_cleanly_on_sigterm():
    s = Stack().start()
    try:
        c = s.client()
        c.register()
        sock = c.socket()
        sock.request("ping")
        sock.expect("pong")
        assert s.stop_proc("realtime", signal.SIGTERM) == 0
        assert s.stop_proc("api", signal.SIGTERM) == 0
        assert "stopped" in s.log_text("realtime") and "stopped" in s.log_text("api")
        assert not (s.dir / "rt.sock").exists() and not (s.dir / "api.sock").exists()
    finally:
        s.stop()
        reports = s.sanitizer_reports()
        s.cleanup()
    assert not reports, reports


def test_the_documented_chat_session_runs(stack):
    """README's walkthrough (scripts/demo: curl + scripts/ws) works as written."""
    from conftest import ROOT

    r = subprocess.run([str(ROOT / "scripts/demo")], capture_output=True, text=True,
                       env={"NOVA_URL": stack.base, "PATH": "/usr/bin:/bin"}, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.rstrip().endswith("demo: OK")
    assert '"message":"Message recalled"' in r.stdout


def test_operator_outbox_tools(stack):
    """nova-admin outbox stats / show / tail [-f], and the outbox_recent view."""
    import time

    a = stack.client()
    a.register()
    a.ok("PATCH", "/user", {"avatar_url": "https://example.com/op.png"})
    newest = stack.sql("SELECT max(id) FROM outbox")[0][0]

    # stats: rows, newest id, and the running daemon with its position (it
    # records it every second).
    deadline = time.time() + 10
    pid = stack.procs["realtime"].pid
    while True:
        stats = stack.admin("outbox", "stats").stdout
        daemon = [l.split() for l in stats.splitlines() if l.startswith(f"{socket.gethostname()}:{pid} ")]
        # name, pid, delivered, lag, sockets, seen
        if daemon and daemon[0][2] == f"#{newest}" and daemon[0][3] == "0":
            break
        assert time.time() < deadline, stats
        time.sleep(0.3)
    assert daemon[0][1] == str(pid)
    rows = stack.sql("SELECT count(*) FROM outbox")[0][0]
    assert f"events retained   {rows}" in stats
    assert "events per minute" in stats
    assert "no nova-realtime is running" not in stats

    show = stack.admin("outbox", "show", str(newest)).stdout
    assert show.startswith(f"#{newest} ") and "profile_change" in show
    assert f"to users [{a.user['id']}]" in show
    missing = stack.admin("outbox", "show", "999999999", check=False)
    assert missing.returncode == 1 and "no event #999999999" in missing.stdout

    tail = stack.admin("outbox", "tail").stdout
    assert tail.count("\n#") + tail.startswith("#") == min(rows, 10)
    assert f"#{newest} " in tail

    follow = subprocess.Popen([str(BUILD / "nova-admin"), "outbox", "tail", "-f"],
                              env=stack.env, stdout=subprocess.PIPE, text=True)
    try:
        # It prints the last 10 events (up to `newest`) first; then a new
        # one must appear as it commits.
        deadline = time.time() + 10
        seen = ""
        while f"#{newest} " not in seen:
            assert time.time() < deadline, seen
            seen += follow.stdout.readline()
        a.ok("PATCH", "/user", {"avatar_url": "https://example.com/op2.png"})
        want = stack.sql("SELECT max(id) FROM outbox")[0][0]
        while f"#{want} " not in seen:
            assert time.time() < deadline, seen
            seen += follow.stdout.readline()
    finally:
        follow.send_signal(signal.SIGINT)
        assert follow.wait(10) == 0

    recent = subprocess.run(["sqlite3", str(stack.db_path), "select * from outbox_recent limit 1"],
                            capture_output=True, text=True, check=True).stdout
    assert recent.startswith(f"{want}|") and "|profile_change|users [" in recent
