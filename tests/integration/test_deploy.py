"""Running Nova the ways an operator does: under spawn-fcgi, with an
out-of-date database, with --help, with nova-admin, stopping on SIGTERM,
with the separate password-hashing pool, and under scripts/run (which
restarts what dies)."""

import os
import pathlib
import re
import shutil
import time
import socket
import signal
import sqlite3
import subprocess

import pytest
import requests

from conftest import BUILD, Stack, fail, unique_name


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
        s.stop_and_check()


def run(binary, *args, env=None):
    return subprocess.run([str(BUILD / binary), *args], capture_output=True, text=True,
                          env=env, timeout=30)


MAN_PAGES = {"nova-api": "nova-api.8", "nova-realtime": "nova-realtime.8",
             "nova-admin": "nova-admin.8"}


def help_options(binary):
    text = run(binary, "--help").stdout
    return [m for m in re.findall(r"^  --([a-z0-9-]+)", text, re.M) if m != "help"]


@pytest.mark.parametrize("page", list(MAN_PAGES.values()) + ["nova.conf.5"])
def test_man_pages_render_cleanly_and_match_help(page):
    """The man pages of the build render with man(1), draw no warning from
    groff, and list exactly the options --help lists (nova.conf(5): the
    settings of all three programs)."""
    path = BUILD / "man" / page
    assert path.exists(), f"{path} was not built"
    lint = subprocess.run(["groff", "-man", "-ww", "-z", str(path)], capture_output=True, text=True)
    assert lint.returncode == 0 and lint.stderr == "", lint.stderr
    shown = subprocess.run(["man", "--warnings", "-l", str(path)], capture_output=True, text=True,
                           env=dict(os.environ, MANWIDTH="80", MANPAGER="cat", PAGER="cat"))
    assert shown.returncode == 0 and shown.stderr == "", shown.stderr
    text = path.read_text()
    if page == "nova.conf.5":
        want = {o for b in MAN_PAGES for o in help_options(b)} - {"config"}
        listed = set(re.findall(r"^\.B (\S+) = \\fIvalue", text, re.M))
    else:
        binary = next(b for b, p in MAN_PAGES.items() if p == page)
        want = set(help_options(binary))
        listed = set(re.findall(r"^\.BI \\-\\-(\S+) ", text, re.M))
    listed = {o.replace("\\-", "-") for o in listed}
    assert listed == want, (sorted(listed - want), sorted(want - listed))


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
    from conftest import ROOT
    migrations = sorted(p.stem for p in (ROOT / "sql").glob("[0-9]*.sql"))
    assert r.returncode == 0 and migrations[0] == "001_init", (r, migrations)
    for name in migrations:
        assert f"applied {name}" in r.stdout, (name, r)
    again = run("nova-admin", "migrate", env=env)
    assert again.returncode == 0 and "applied" not in again.stdout
    latest = int(migrations[-1][:3])
    assert run("nova-admin", "version", env=env).stdout.split()[1] == f"{latest},"


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
        assert not (s.dir / "hash.sock").exists()
    finally:
        s.stop_and_check()


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

    # The operator's view, with the engine's own shell.
    shell = (["psql", "-AtX", stack.db_uri(), "-c"] if stack.pg_name
             else ["sqlite3", str(stack.db_path)])
    recent = subprocess.run([*shell, "select * from outbox_recent limit 1"],
                            capture_output=True, text=True, check=True).stdout
    assert recent.startswith(f"{want}|") and "|profile_change|users [" in recent


# -- the password-hashing pool (issue 9, finding 9) ------------------------------


@pytest.mark.parametrize("hash_workers", [1, 0], ids=["split", "one-pool"])
def test_a_burst_of_logins_does_not_hold_up_other_requests(make_stack, hash_workers):
    """With libsodium's interactive argon2id cost (as in production), fire a
    burst of parallel logins, then one GET /user of another user. With the
    hashing pool (nova-api --hash-socket, where nginx sends login and
    register) the GET is answered while more logins are still unfinished
    than half the burst, more than the workers of both pools together: every
    hashing worker was busy and logins were still queued, so the GET did not
    wait for them.
    With one pool ("one-pool", the old layout) the GET queues behind the
    burst, and the same count says so. No clock is read."""
    import threading

    workers = 3
    st = make_stack(env={"NOVA_PWHASH_OPSLIMIT": "2", "NOVA_PWHASH_MEMLIMIT": str(64 << 20)},
                    workers=workers, hash_workers=hash_workers)
    hasher, other = st.client(), st.client()
    hasher.register()
    other.register()
    burst = 32
    done = []
    lock = threading.Lock()

    def login():
        c = st.client()
        c.login(hasher.user["user_name"], hasher.password)
        with lock:
            done.append(c)

    threads = [threading.Thread(target=login) for _ in range(burst)]
    for t in threads:
        t.start()
    # Every login has been sent once the first one is answered (each takes
    # a whole argon2id hash); now the other user asks for their profile.
    while not done:
        time.sleep(0.01)
    assert other.ok("GET", "/user")["id"] == other.user["id"]
    with lock:
        unfinished = burst - len(done)
    for t in threads:
        t.join(60)
    assert len(done) == burst
    # Split: about burst - 1 unfinished (all but the first); one pool: about
    # none (the GET was accepted after the whole queue of logins). Half the
    # burst tells them apart with room for the client threads' own lag, and
    # is more than the workers of both pools: every hashing worker was busy.
    assert burst // 2 > workers
    if hash_workers:
        assert unfinished > burst // 2, unfinished
    else:
        assert unfinished < burst // 2, unfinished


def test_hash_workers_default_to_half_the_cores(tmp_path):
    env = {"NOVA_DB": str(tmp_path / "n.db"), "PATH": "/usr/bin:/bin"}
    assert run("nova-admin", "migrate", env=env).returncode == 0
    api = subprocess.Popen([str(BUILD / "nova-api"), "--socket", str(tmp_path / "a.sock"),
                            "--workers", "1", "--hash-socket", str(tmp_path / "h.sock")],
                           env=env, stderr=subprocess.PIPE, text=True)
    try:
        line = api.stderr.readline()
    finally:
        api.send_signal(signal.SIGTERM)
        assert api.wait(15) == 0
    want = max(1, os.sysconf("SC_NPROCESSORS_ONLN") // 2)
    assert f"on {tmp_path / 'h.sock'} with {want} password-hashing workers" in line, line
    assert not (tmp_path / "h.sock").exists() and not (tmp_path / "a.sock").exists()


# -- scripts/run supervises the stack (issue 9, finding 7) -----------------------


class RunScript:
    """scripts/run on a free port with a temporary data directory, using the
    already-built binaries of BUILD (NOVA_BUILD_DIR: no install, no build)."""

    def __init__(self, tmp_path, args=(), data=None):
        from conftest import ROOT, free_port

        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}/ws/"
        self.host = "127.0.0.1"
        self.metrics_port = free_port()
        self.data = data or tmp_path / "data"
        self.log = tmp_path / "run.log"
        self.tmp = tmp_path
        env = dict(os.environ)
        env.update(
            NOVA_PORT=str(self.port), NOVA_DATA_DIR=str(self.data), NOVA_BUILD_DIR=str(BUILD),
            NOVA_METRICS_LISTEN=f"127.0.0.1:{self.metrics_port}",
            NOVA_API_WORKERS="2", NOVA_HASH_WORKERS="1",
            NOVA_PWHASH_OPSLIMIT="1", NOVA_PWHASH_MEMLIMIT="8192",
            NOVA_LOGIN_RATE="10000r/s", NOVA_LOGIN_BURST="100000",
            ASAN_OPTIONS=f"log_path={tmp_path}/asan:detect_leaks=1:halt_on_error=1",
            UBSAN_OPTIONS=f"log_path={tmp_path}/ubsan:print_stacktrace=1:halt_on_error=1",
        )
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen([str(ROOT / "scripts/run"), *args], env=env, stdout=log,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.wait_until(lambda: self.rest_status() == 403, "the stack to come up")

    def log_text(self):
        return self.log.read_text(errors="replace")

    def pid(self, name):
        try:
            return int((self.data / "run" / f"{name}.pid").read_text())
        except (OSError, ValueError):
            return None

    def rest_status(self):
        import requests

        try:
            return requests.get(self.base + "/api/user", timeout=5).status_code
        except requests.ConnectionError:
            return None

    def wait_until(self, check, what, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            assert self.proc.poll() is None, f"scripts/run exited:\n{self.log_text()}"
            try:
                if check():
                    return
            except Exception:
                pass
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}:\n{self.log_text()}")

    def kill9(self, name):
        """kill -9 one daemon; wait until scripts/run has started a new one."""
        old = self.pid(name)
        assert old and alive(old), (name, old)
        os.kill(old, signal.SIGKILL)
        self.wait_until(lambda: self.pid(name) not in (None, old) and alive(self.pid(name)),
                        f"{name} to be restarted")
        return old

    def reports(self):
        import glob
        import pathlib

        return [pathlib.Path(p).read_text(errors="replace")
                for p in glob.glob(f"{self.tmp}/asan*") + glob.glob(f"{self.tmp}/ubsan*")]


def alive(pid):
    try:
        stat = open(f"/proc/{pid}/stat").read()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def answers_rest_and_socket(run_script, client):
    """The stack answers REST and a new WebSocket, for this client."""
    from conftest import Socket

    assert client.ok("GET", "/user")["id"] == client.user["id"]
    sock = Socket(run_script, client.token)
    try:
        sock.request("ping")
        sock.expect("pong")
    finally:
        sock.close()
    return True


def test_scripts_run_restarts_what_dies_and_stops_on_ctrl_c(tmp_path):
    from conftest import Client

    rs = RunScript(tmp_path)
    try:
        c = Client(rs)
        c.register()
        assert answers_rest_and_socket(rs, c)
        assert (rs.data / "nova.db").exists()
        # The operator's metrics listener is up, with nova-api's and the
        # daemon's counters (test_metrics.py checks what they say).
        for path, family in (("/metrics", "nova_api_requests_total"),
                             ("/metrics/realtime", "nova_realtime_sockets_open")):
            m = requests.get(f"http://127.0.0.1:{rs.metrics_port}{path}", timeout=10)
            assert m.status_code == 200 and f"# TYPE {family} " in m.text, (path, m.text[:300])

        # nova-realtime, killed twice in a row: back both times, the second
        # after a longer pause (a crash loop does not spin).
        rs.kill9("realtime")
        rs.wait_until(lambda: answers_rest_and_socket(rs, c), "sockets after a realtime kill")
        rs.kill9("realtime")
        rs.wait_until(lambda: answers_rest_and_socket(rs, c), "sockets after a second kill")
        restarts = [l for l in rs.log_text().splitlines() if l.startswith("run: realtime (pid")]
        assert len(restarts) == 2 and "killed by signal 9" in restarts[0], restarts
        delays = [int(l.rsplit("restarting in ", 1)[1].rstrip("s")) for l in restarts]
        assert delays[1] > delays[0], restarts

        # nova-api's supervisor (its workers follow it), then nginx (its
        # workers too, they hold the port).
        old_workers = children_of(rs.pid("api"))
        assert len(old_workers) == 3, old_workers  # 2 + 1 hashing
        rs.kill9("api")
        rs.wait_until(lambda: answers_rest_and_socket(rs, c), "REST after an api kill")
        rs.wait_until(lambda: not any(alive(p) for p in old_workers), "the old workers to exit")
        assert len(children_of(rs.pid("api"))) == 3
        nginx = rs.kill9("nginx")
        rs.wait_until(lambda: answers_rest_and_socket(rs, c), "the stack after an nginx kill")
        # logins go to the hashing pool of the restarted nova-api
        c.login()
        assert answers_rest_and_socket(rs, c)
        text = rs.log_text()
        for name in ("realtime", "api", "nginx"):
            assert f"run: {name} restarted (pid {rs.pid(name)})" in text, text

        # Ctrl-C stops everything, and the port is free again.
        daemons = [rs.pid(n) for n in ("api", "realtime", "nginx")]
        rs.proc.send_signal(signal.SIGINT)
        assert rs.proc.wait(20) == 0, rs.log_text()
        assert rs.log_text().rstrip().endswith("run: stopped")
        deadline = time.time() + 10
        while any(alive(p) for p in daemons) and time.time() < deadline:
            time.sleep(0.1)
        assert not any(alive(p) for p in daemons), daemons
        assert rs.rest_status() is None
        assert nginx not in daemons
    finally:
        if rs.proc.poll() is None:
            rs.proc.kill()
    assert not rs.reports(), rs.reports()


def test_scripts_run_stops_everything_on_sigterm(tmp_path):
    rs = RunScript(tmp_path)
    daemons = [rs.pid(n) for n in ("api", "realtime", "nginx")]
    workers = children_of(daemons[0]) + children_of(daemons[2])
    assert len(workers) >= 3, workers  # nova-api's 2 + 1, nginx's at least 1
    rs.proc.send_signal(signal.SIGTERM)
    assert rs.proc.wait(20) == 0, rs.log_text()
    deadline = time.time() + 10
    while any(alive(p) for p in daemons + workers) and time.time() < deadline:
        time.sleep(0.1)
    assert not any(alive(p) for p in daemons + workers)
    assert "restarted" not in rs.log_text()
    assert not rs.reports(), rs.reports()


def test_scripts_run_postgres_runs_the_stack_on_its_own_cluster(tmp_path):
    """scripts/run --postgres: a private PostgreSQL cluster in the data
    directory, the same stack on it; the data survives a restart of the
    script, and Ctrl-C stops PostgreSQL too."""
    import tempfile

    from conftest import Client

    # Not under pytest's own directory: every pytest session resets that
    # to mode 0700, which would lock the postgres user out mid-test.
    top = pathlib.Path(tempfile.mkdtemp(prefix="nova-run-pg-"))
    data = top / "data"
    (tmp_path / "first").mkdir()
    rs = RunScript(tmp_path / "first", args=["--postgres"], data=data)
    c = Client(rs)
    c.register()
    assert answers_rest_and_socket(rs, c)
    assert (data / "pg" / "db" / "PG_VERSION").exists()
    assert not (data / "nova.db").exists()
    postmaster = int((data / "pg" / "db" / "postmaster.pid").read_text().split()[0])
    assert alive(postmaster)
    rs.proc.send_signal(signal.SIGINT)
    assert rs.proc.wait(30) == 0, rs.log_text()
    deadline = time.time() + 10
    while alive(postmaster) and time.time() < deadline:
        time.sleep(0.1)
    assert not alive(postmaster), "PostgreSQL still runs after Ctrl-C"

    (tmp_path / "second").mkdir()
    again = RunScript(tmp_path / "second", args=["--postgres"], data=data)
    try:
        c2 = Client(again)
        c2.user, c2.password = c.user, c.password
        assert c2.login()["id"] == c.user["id"]  # the account outlived the restart
    finally:
        again.proc.send_signal(signal.SIGINT)
        assert again.proc.wait(30) == 0, again.log_text()
    assert not rs.reports() and not again.reports()
    shutil.rmtree(top, ignore_errors=True)


def children_of(pid):
    try:
        return [int(p) for p in open(f"/proc/{pid}/task/{pid}/children").read().split()]
    except OSError:
        return []


def test_scripts_run_stops_when_a_daemon_cannot_start(tmp_path):
    """A bad setting is not retried forever: scripts/run says which daemon
    failed and exits non-zero."""
    from conftest import ROOT, free_port

    env = dict(os.environ, NOVA_PORT=str(free_port()), NOVA_DATA_DIR=str(tmp_path / "data"),
               NOVA_BUILD_DIR=str(BUILD), NOVA_NGINX_HEADER_BUFFER="lots",
               NOVA_METRICS_LISTEN=f"127.0.0.1:{free_port()}")  # not a size
    r = subprocess.run([str(ROOT / "scripts/run")], env=env, capture_output=True, text=True,
                       timeout=60, stdin=subprocess.DEVNULL)
    assert r.returncode == 1, r
    assert "run: nginx failed to start" in r.stderr, r.stderr
    assert "run: stopped" in r.stderr
    assert "restarting" not in r.stderr


# -- shared hosting: the whole stack as an unprivileged user (issue 13) ---------


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to make the unprivileged user")
def test_the_whole_stack_runs_as_an_unprivileged_user_under_one_directory(tmp_path):
    """The shared-hosting recipe of the README: a user with no privileges,
    everything (programs, scripts, nginx prefix, database, sockets, logs)
    under one directory of theirs, scripts/run on a high port. Every
    process runs as that user, and the stack serves REST and sockets."""
    import pwd

    from conftest import ROOT, Socket, free_port

    user = "nova-hosting"
    if subprocess.run(["id", "-u", user], capture_output=True).returncode:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                        user], check=True)
    uid = pwd.getpwnam(user).pw_uid
    import pathlib
    import tempfile

    # Outside pytest's private temporary tree (mode 0700: the user could not enter it).
    home = pathlib.Path(tempfile.mkdtemp(prefix="nova-hosting-"))
    os.chmod(home, 0o755)
    nova = home / "nova"
    for part in ("scripts", "nginx"):
        shutil.copytree(ROOT / part, nova / part)
    (nova / "build").mkdir(parents=True)
    for binary in ("nova-api", "nova-realtime", "nova-admin"):
        shutil.copy2(BUILD / binary, nova / "build" / binary)
    subprocess.run(["chown", "-R", f"{user}:", str(home)], check=True)

    port = free_port()
    env = {
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": str(home),
        "NOVA_PORT": str(port), "NOVA_DATA_DIR": str(home / "data"),
        "NOVA_METRICS_LISTEN": f"127.0.0.1:{free_port()}",
        "NOVA_BUILD_DIR": str(nova / "build"), "NOVA_CONFIG": "",
        "NOVA_API_WORKERS": "2", "NOVA_HASH_WORKERS": "1",
        "NOVA_PWHASH_OPSLIMIT": "1", "NOVA_PWHASH_MEMLIMIT": "8192",
        "ASAN_OPTIONS": f"log_path={home}/asan:detect_leaks=1:halt_on_error=1",
        "UBSAN_OPTIONS": f"log_path={home}/ubsan:print_stacktrace=1:halt_on_error=1",
    }
    log = tmp_path / "run.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(["runuser", "-u", user, "--", "env", *[f"{k}={v}" for k, v in env.items()],
                                 str(nova / "scripts/run")], stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    import requests

    try:
        deadline = time.time() + 30
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                if requests.get(base + "/api/user", timeout=2).status_code == 403:
                    break
            except requests.ConnectionError:
                pass
            assert time.time() < deadline, log.read_text()
            time.sleep(0.1)
        http = requests.Session()
        r = http.post(base + "/api/user/register", json={"user_name": unique_name(), "password": "secret1"})
        assert r.status_code == 200, r.text
        class Where:
            ws_url = f"ws://127.0.0.1:{port}/ws/"
        sock = Socket(Where, http.cookies.get("sessionid"))
        rid = sock.request("ping")
        assert sock.expect("pong")["request_id"] == rid
        sock.close()
        # every process of the stack is the user's, and everything it wrote is under home
        run = home / "data" / "run"
        pids = [int((run / f"{name}.pid").read_text()) for name in ("api", "realtime", "nginx")]
        for pid in pids:
            status = open(f"/proc/{pid}/status").read()
            assert f"Uid:\t{uid}\t{uid}" in status, (pid, status)
        assert (home / "data" / "nova.db").exists()
    finally:
        # SIGTERM to scripts/run itself (runuser's child), as its user would.
        children = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True,
                                  text=True).stdout.split()
        for child in children:
            os.kill(int(child), signal.SIGTERM)
        proc.wait(30)
    assert children and proc.returncode == 0, log.read_text()
    import glob

    reports = glob.glob(f"{home}/asan*") + glob.glob(f"{home}/ubsan*")
    assert not reports, [open(r).read() for r in reports]
    shutil.rmtree(home, ignore_errors=True)
