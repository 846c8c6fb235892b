"""Integration harness: a real nginx, nova-api workers and nova-realtime.

Each Stack runs on a free loopback port with its own temporary directory
(database, unix sockets, nginx prefix, logs). The binaries come from
NOVA_BUILD_DIR (default: build-asan, the sanitizer build); when a stack
stops, its logs are searched for sanitizer reports and the test fails if
any is found.

Tests talk to the stack like the browser does: HTTP through nginx with a
cookie jar per client (Client), and WebSocket through nginx at /ws/ (Socket).

NOVA_TEST_ENGINE=postgres runs every stack on PostgreSQL instead: one
private cluster for the whole run (scripts/lib/pg-cluster, on a unix socket
and on TCP at 127.0.0.1), a fresh database per stack. Tests of SQLite's own
file (disk full, WAL, VACUUM INTO) are marked sqlite_only and skipped there.
"""

import atexit
import glob
import json
import os
import pathlib
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
import uuid

import pytest
import requests
import websocket

ROOT = pathlib.Path(__file__).resolve().parents[2]
BUILD = pathlib.Path(os.environ.get("NOVA_BUILD_DIR", ROOT / "build-asan"))
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
PASSWORD = "secret1"


ENGINE = os.environ.get("NOVA_TEST_ENGINE", "sqlite")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PgCluster:
    """The run's PostgreSQL server (started on first use, stopped at exit);
    a test that stops and restarts PostgreSQL makes one of its own."""

    _one = None

    def __init__(self):
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="nova-pg-"))
        self.port = free_port()
        self.resume()
        atexit.register(self.stop)

    def resume(self):
        """Start the server (again)."""
        env = dict(os.environ, PG_CLUSTER_OPTS="-c fsync=off -c full_page_writes=off")
        subprocess.run([str(ROOT / "scripts/lib/pg-cluster"), "start", str(self.dir),
                        f"127.0.0.1:{self.port}"], env=env, check=True, capture_output=True)

    def halt(self, mode="immediate"):
        """Stop the server, keeping its data: "immediate" is a crash (no
        checkpoint, every connection cut), "fast" an orderly shutdown."""
        bin_dir = sorted(glob.glob("/usr/lib/postgresql/*/bin"))[-1]
        argv = [f"{bin_dir}/pg_ctl", "-D", str(self.dir / "db"), "-m", mode, "-w", "stop"]
        if os.getuid() == 0:
            argv = ["runuser", "-u", "postgres", "--", *argv]
        subprocess.run(argv, check=True, capture_output=True, cwd="/")

    @classmethod
    def get(cls):
        if cls._one is None:
            cls._one = PgCluster()
        return cls._one

    def uri(self, name, host=None):
        """A database's URI: over the unix socket, or TCP to host."""
        if host:
            return f"postgresql://nova@{host}:{self.port}/{name}"
        return f"postgresql://nova@{str(self.dir).replace('/', '%2F')}:{self.port}/{name}"

    def connect(self, name="postgres"):
        import psycopg2

        con = psycopg2.connect(host=str(self.dir), port=self.port, user="nova", dbname=name)
        con.autocommit = True
        return con

    def create_database(self):
        name = "nova_" + uuid.uuid4().hex[:16]
        con = self.connect()
        try:
            con.cursor().execute(f'CREATE DATABASE "{name}"')
        finally:
            con.close()
        return name

    def drop_database(self, name):
        con = self.connect()
        try:
            con.cursor().execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            con.close()

    def stop(self):
        subprocess.run([str(ROOT / "scripts/lib/pg-cluster"), "stop", str(self.dir)],
                       capture_output=True)
        shutil.rmtree(self.dir, ignore_errors=True)


PG_WRITE_LOCK = 1315927649  # common/db_pg.c: the writers' advisory lock


class DbWriter:
    """A direct connection that writes behind Nova's back (tests only), on
    either engine, with ? parameters. begin() takes Nova's write lock as a
    writer of another process would (SQLite: BEGIN IMMEDIATE; PostgreSQL:
    the advisory lock every Nova writer takes)."""

    def __init__(self, stack):
        self.pg = bool(stack.pg_name)
        if self.pg:
            self.con = stack.cluster.connect(stack.pg_name)
            self.con.autocommit = False
        else:
            import sqlite3

            self.con = sqlite3.connect(str(stack.db_path), timeout=10, isolation_level=None)
            self.con.execute("PRAGMA foreign_keys=ON")

    def begin(self):
        if self.pg:
            self.con.cursor().execute("SELECT pg_advisory_xact_lock(%s)", (PG_WRITE_LOCK,))
        else:
            self.con.execute("BEGIN IMMEDIATE")
        return self

    def execute(self, sql, params=()):
        if self.pg:
            return pg_query(self.con, sql, params)
        return self.con.execute(sql, params).fetchall()

    def commit(self):
        if self.pg:
            self.con.commit()
        elif self.con.in_transaction:
            self.con.execute("COMMIT")

    def close(self):
        self.con.close()


def pg_query(con, query, params):
    """Run SQLite-style SQL (? parameters) on a psycopg2 connection."""
    cur = con.cursor()
    cur.execute(query.replace("%", "%%").replace("?", "%s"), params)
    rows = cur.fetchall() if cur.description else []
    return [tuple(bytes(v) if isinstance(v, memoryview) else v for v in r) for r in rows]


class Stack:
    """nginx + nova-api + nova-realtime on a free port with a fresh database.

    workers counts every nova-api worker process; hash_workers of them form
    the separate pool that serves login and register (nova-api
    --hash-socket, as scripts/run runs it); hash_workers=0: one pool."""

    def __init__(self, env=None, workers=3, hash_workers=1, engine=None, host="127.0.0.1",
                 cluster=None, shared=None, tcp=False, pg_name=None):
        """shared: another (PostgreSQL) stack whose database this one uses
        too, as a second host would (over TCP; the owner drops it). tcp:
        reach PostgreSQL over TCP instead of the unix socket."""
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="nova-test-"))
        if shared:
            cluster, tcp = shared.cluster, True
        self.engine = "postgres" if cluster or pg_name else engine or ENGINE
        self.cluster = cluster or (PgCluster.get() if self.engine == "postgres" else None)
        self.tcp = tcp
        self.owns_db = shared is None
        self.host = host
        self.port = free_port()
        self.base = f"http://{host}:{self.port}"
        self.ws_url = f"ws://{host}:{self.port}/ws/"
        self.metrics_base = f"http://127.0.0.1:{free_port()}"
        self.db_path = self.dir / "nova.db"
        self.pg_name = shared.pg_name if shared else pg_name  # pg_name: an existing database
        if self.cluster and not self.pg_name:
            self.pg_name = self.cluster.create_database()
        self.api_sock = self.dir / "api.sock"
        self.rt_sock = self.dir / "rt.sock"
        self.hash_sock = self.dir / "hash.sock"
        assert 0 <= hash_workers < workers, (workers, hash_workers)
        self.workers = workers
        self.hash_workers = hash_workers
        self.env = dict(os.environ)
        self.env.update(
            NOVA_CONFIG="",  # no configuration file of the machine's
            NOVA_DB=self.db_uri("127.0.0.1" if tcp else None),
            # Tests may lower the argon2id cost (API.md allows it).
            NOVA_PWHASH_OPSLIMIT="1",
            NOVA_PWHASH_MEMLIMIT="8192",
            NOVA_LOG_LEVEL="1",
            # The suite registers and logs in far faster than a person: a
            # generous limit so the shared stack never answers 429. The
            # rate-limit test starts its own stack with a tight one.
            NOVA_LOGIN_RATE="10000r/s",
            NOVA_LOGIN_BURST="100000",
            NOVA_WAKE_SOCKET=str(self.dir / "wake.sock"),
            NOVA_ATTACHMENT_DIR=str(self.dir / "attachments"),  # [ext] attachments
            NOVA_METRICS_LISTEN=self.metrics_base[len("http://"):],
            ASAN_OPTIONS=f"log_path={self.dir}/asan:detect_leaks=1:halt_on_error=1",
            UBSAN_OPTIONS=f"log_path={self.dir}/ubsan:print_stacktrace=1:halt_on_error=1",
        )
        self.env.update(env or {})
        self.procs = {}
        self.logs = {}

    def db_uri(self, tcp_host=None):
        """What NOVA_DB says: the file, or the PostgreSQL database's URI."""
        if self.pg_name:
            return self.cluster.uri(self.pg_name, tcp_host)
        return str(self.db_path)

    # -- lifecycle ---------------------------------------------------------

    def _spawn(self, name, argv):
        log = open(self.dir / f"{name}.log", "ab")
        self.logs[name] = self.dir / f"{name}.log"
        self.procs[name] = subprocess.Popen(
            argv, env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=self.dir
        )
        log.close()

    def admin(self, *args, check=True):
        return subprocess.run(
            [str(BUILD / "nova-admin"), *args],
            env=self.env,
            capture_output=True,
            text=True,
            check=check,
        )

    def start(self):
        """Start (or, after stop(), start again) every process."""
        self.procs = {n: p for n, p in self.procs.items() if p.poll() is None}
        self.admin("migrate")
        self.start_api()
        self.start_realtime()
        prefix = self.dir / "nginx"
        subprocess.run(
            [
                str(ROOT / "scripts/lib/render-nginx"),
                str(prefix),
                f"{self.host}:{self.port}",
                str(self.api_sock),
                str(self.rt_sock),
            ],
            env=self.env,
            check=True,
        )
        self._spawn(
            "nginx",
            [NGINX, "-p", str(prefix), "-c", str(prefix / "nginx.conf"),
             "-e", str(prefix / "error.log"), "-g", "daemon off;"],
        )
        self.wait_ready()
        return self

    def start_api(self):
        argv = [str(BUILD / "nova-api"), "--socket", str(self.api_sock),
                "--workers", str(self.workers - self.hash_workers)]
        if self.hash_workers:
            argv += ["--hash-socket", str(self.hash_sock),
                     "--hash-workers", str(self.hash_workers)]
            # render-nginx sends login and register there.
            self.env["NOVA_HASH_SOCKET"] = str(self.hash_sock)
        self._spawn("api", argv)
        self._wait_for(self.api_sock)
        if self.hash_workers:
            self._wait_for(self.hash_sock)

    def start_realtime(self, name="realtime", listen=None):
        listen = listen or self.rt_sock
        self._spawn(name, [str(BUILD / "nova-realtime"), "--listen", str(listen)])
        self._wait_for(listen)

    def _wait_for(self, path, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if os.path.exists(path):
                return
            for name, p in self.procs.items():
                if p.poll() is not None:
                    raise RuntimeError(f"{name} exited early:\n{self.log_text(name)}")
            time.sleep(0.05)
        raise RuntimeError(f"{path} did not appear")

    def wait_ready(self, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                r = requests.get(self.base + "/api/user", timeout=2)
                if r.status_code == 503:  # storage not reached yet
                    time.sleep(0.05)
                    continue
                if r.status_code == 403:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.05)
        raise RuntimeError("stack not ready:\n" + self.log_text("api"))

    def stop_proc(self, name, sig=signal.SIGTERM, timeout=15):
        p = self.procs.get(name)
        if not p or p.poll() is not None:
            return p.returncode if p else None
        p.send_signal(sig)
        try:
            return p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            raise AssertionError(f"{name} did not stop on {sig!r}")

    def stop(self):
        codes = {}
        for name in list(self.procs):
            if name != "nginx":
                codes[name] = self.stop_proc(name)
        self.stop_proc("nginx", signal.SIGQUIT)
        return codes

    def log_text(self, name):
        path = self.logs.get(name)
        return path.read_text(errors="replace") if path and path.exists() else ""

    def all_logs(self):
        return "\n".join(self.log_text(n) for n in self.logs)

    def sanitizer_reports(self):
        reports = []
        for path in glob.glob(str(self.dir / "asan*")) + glob.glob(str(self.dir / "ubsan*")):
            reports.append(pathlib.Path(path).read_text(errors="replace"))
        for name in self.logs:
            text = self.log_text(name)
            if "runtime error:" in text or "AddressSanitizer" in text:
                reports.append(text)
        return reports

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)
        if self.pg_name and self.owns_db:
            self.cluster.drop_database(self.pg_name)
        self.pg_name = None

    def stop_and_check(self):
        """Stop, fail on any sanitizer report (keeping the directory for a
        look), else remove the directory."""
        self.stop()
        reports = self.sanitizer_reports()
        if not reports:
            self.cleanup()
        assert not reports, "sanitizer reports:\n" + "\n".join(reports)

    # -- helpers -----------------------------------------------------------

    def client(self):
        return Client(self)

    def sql(self, query, *params):
        """Read the database directly (sqlite3 module read-only, or
        psycopg2); SQL with ? parameters on both."""
        if self.pg_name:
            con = self.cluster.connect(self.pg_name)
            try:
                return pg_query(con, query, params)
            finally:
                con.close()
        import sqlite3

        con = sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=10)
        try:
            return con.execute(query, params).fetchall()
        finally:
            con.close()

    def writer(self):
        return DbWriter(self)

    def sql_snapshot(self, queries):
        """Several queries (no parameters) in one read snapshot."""
        if self.pg_name:
            con = self.cluster.connect(self.pg_name)
            con.autocommit = False
            con.set_session(isolation_level="REPEATABLE READ", readonly=True)
            try:
                return [pg_query(con, q, ()) for q in queries]
            finally:
                con.rollback()
                con.close()
        import sqlite3

        con = sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=10)
        try:
            con.execute("BEGIN")
            return [con.execute(q).fetchall() for q in queries]
        finally:
            con.close()


# Every session token a client of the suite held: at the end of the run the
# shared stack's logs (daemons and nginx) must contain none of them.
SEEN_TOKENS = set()


def secrets_in_logs(stack, secrets):
    """The secrets that appear in any log of a stack (daemons and nginx)."""
    text = stack.all_logs()
    for name in ("access.log", "error.log"):
        path = stack.dir / "nginx" / name
        if path.exists():
            text += path.read_text(errors="replace")
    return [s for s in secrets if s and s in text]


def unique_name(prefix="u"):
    return f"{prefix}{uuid.uuid4().hex[:12]}"


class Client:
    """One browser: a cookie jar and helpers for the REST API."""

    def __init__(self, stack):
        self.stack = stack
        self.http = requests.Session()
        self.user = None
        self.password = PASSWORD

    def request(self, method, path, body=None, raw=None, headers=None, **kw):
        r = self._request(method, path, body, raw, headers, **kw)
        token = self.http.cookies.get("sessionid")
        if token:
            SEEN_TOKENS.add(token)
        return r

    def _request(self, method, path, body=None, raw=None, headers=None, **kw):
        h = dict(headers or {})
        data = raw
        if body is not None:
            data = json.dumps(body)
            h.setdefault("Content-Type", "application/json")
        return self.http.request(
            method, self.stack.base + "/api" + path, data=data, headers=h, timeout=30, **kw
        )

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body, **kw)

    def patch(self, path, body=None, **kw):
        return self.request("PATCH", path, body, **kw)

    def delete(self, path, body=None, **kw):
        return self.request("DELETE", path, body, **kw)

    def ok(self, method, path, body=None, **kw):
        """Call and insist on 200 + ok envelope; return data."""
        r = self.request(method, path, body, **kw)
        assert r.status_code == 200, (method, path, r.status_code, r.text)
        env = r.json()
        assert env["ok"] is True and "data" in env, env
        return env["data"]

    def register(self, name=None, password=PASSWORD):
        name = name or unique_name()
        self.user = self.ok("POST", "/user/register", {"user_name": name, "password": password})
        self.password = password
        return self.user

    def login(self, name=None, password=None):
        name = name or self.user["user_name"]
        self.user = self.ok(
            "POST", "/user/login", {"user_name": name, "password": password or self.password}
        )
        return self.user

    def with_token(self, token):
        """Send this token as the session cookie from now on."""
        self.http.cookies.clear()
        if token:
            # Same domain and path as the server's cookie, so that a new
            # Set-Cookie replaces it instead of adding a second one.
            self.http.cookies.set("sessionid", token, domain=self.stack.host, path="/")
        return self

    def on(self, stack):
        """The same user and session, talking to another stack (host)."""
        other = Client(stack)
        other.user, other.password = self.user, self.password
        return other.with_token(self.token)

    @property
    def token(self):
        return self.http.cookies.get("sessionid")

    def socket(self, **kw):
        return Socket(self.stack, self.token, **kw)


def fail(r, status):
    """Assert a failure envelope with the given status; return its error."""
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["Content-Type"].startswith("application/json"), r.headers
    env = r.json()
    assert env["ok"] is False and isinstance(env["error"], str) and env["error"], env
    return env["error"]


class Socket:
    """A WebSocket through nginx, authenticated by a session token.

    websocket-client sends the page's own Origin (http://127.0.0.1:<port>)
    unless told otherwise: origin="..." sends that Origin instead,
    suppress_origin=True sends none (a non-browser client)."""

    def __init__(self, stack, token, query="", headers=None, timeout=10, origin=None,
                 suppress_origin=False):
        cookie = f"sessionid={token}" if token else None
        kw = {}
        if origin is not None:
            kw["origin"] = origin
        if suppress_origin:
            kw["suppress_origin"] = True
        self.ws = websocket.create_connection(
            stack.ws_url + query, cookie=cookie, header=headers or [], timeout=timeout, **kw
        )
        self.next_request_id = 1

    def send(self, packet):
        self.ws.send(packet if isinstance(packet, str) else json.dumps(packet))

    def send_binary(self, data):
        self.ws.send(data, opcode=websocket.ABNF.OPCODE_BINARY)

    def send_fragments(self, parts, opcode=websocket.ABNF.OPCODE_TEXT):
        """Send one message as len(parts) frames (first, continuations, final)."""
        for i, part in enumerate(parts):
            frame = websocket.ABNF.create_frame(
                part, opcode if i == 0 else websocket.ABNF.OPCODE_CONT,
                fin=1 if i == len(parts) - 1 else 0,
            )
            self.ws.send_frame(frame)

    def recv(self, timeout=10):
        self.ws.settimeout(timeout)
        text = self.ws.recv()
        assert text, "socket closed"
        return json.loads(text)

    def request(self, action, data=None, request_id=None):
        rid = request_id if request_id is not None else self.next_request_id
        self.next_request_id += 1
        self.send({"action": action, "request_id": rid, "data": data})
        return rid

    def expect(self, action, timeout=10):
        msg = self.recv(timeout)
        assert msg["action"] == action, msg
        return msg

    def ping_barrier(self):
        """Make sure everything sent to us so far is read: ping, read to pong.
        Returns the notifications that arrived before the pong."""
        rid = self.request("ping")
        seen = []
        while True:
            msg = self.recv()
            if msg["action"] == "pong" and msg["request_id"] == rid:
                return seen
            seen.append(msg)

    def read_to_close(self, timeout=10):
        """Read until the server closes the socket. Returns (messages, close
        code): the JSON packets received before the close, and the code of
        the close frame (None when the connection just dropped)."""
        self.ws.settimeout(timeout)
        msgs = []
        while True:
            try:
                op, frame = self.ws.recv_data_frame(True)
            except websocket.WebSocketConnectionClosedException:
                return msgs, None
            if op == websocket.ABNF.OPCODE_CLOSE:
                data = frame.data or b""
                return msgs, struct.unpack("!H", data[:2])[0] if len(data) >= 2 else None
            if op == websocket.ABNF.OPCODE_TEXT:
                data = frame.data
                msgs.append(json.loads(data.decode() if isinstance(data, bytes) else data))
            elif op == websocket.ABNF.OPCODE_BINARY:
                msgs.append(frame.data)

    def close(self):
        try:
            self.ws.close()
        except Exception:
            pass


def outbox_max(stack):
    """The newest outbox event id (0 when empty)."""
    return stack.sql("SELECT coalesce(max(id), 0) FROM outbox")[0][0]


def barrier(client, sock):
    """Deterministic "nothing else is coming": make the server emit an event
    for this user (profile_change via a no-op PATCH /user) and read the
    socket up to it. Events for one user arrive in commit order, so anything
    that was going to reach the socket before the barrier has arrived.
    Returns the notifications received before the barrier. The barrier is
    recognised by its event_id (newer than anything in the outbox before the
    PATCH), so a stray profile_change of someone else is returned, not
    mistaken for the barrier."""
    return barrier_multi(client, [sock])[0]


def barrier_multi(client, socks):
    """barrier() for several sockets of one user with a single
    profile_change: read each socket up to it. Returns a list of lists."""
    before = outbox_max(client.stack)
    client.ok("PATCH", "/user", {"user_name": client.user["user_name"]})
    out = []
    for sock in socks:
        seen = []
        while True:
            msg = sock.recv()
            if msg["action"] == "profile_change" and msg.get("event_id", before + 1) > before:
                break
            seen.append(msg)
        out.append(seen)
    return out


@pytest.fixture(scope="session")
def stack():
    s = Stack().start()
    yield s
    s.stop()
    reports = s.sanitizer_reports()
    leaked = secrets_in_logs(s, SEEN_TOKENS | {PASSWORD})
    assert len(SEEN_TOKENS) > 0
    s.cleanup() if not reports and not leaked else None
    assert not reports, "sanitizer reports:\n" + "\n".join(reports)
    assert not leaked, f"{len(leaked)} session tokens or passwords appear in the logs"


# Settings of the shared "tight" stack: small limits (body, socket message)
# and a CORS allow-list, for the tests of limits and origins.
TIGHT_ENV = {
    "NOVA_BODY_LIMIT": "2048",
    "NOVA_WS_MAX_FRAME": "4096",
    "NOVA_CORS_ORIGINS": "http://app.example, https://second.example",
}


@pytest.fixture(scope="session")
def tight_stack():
    """A second shared stack with TIGHT_ENV (also serves as "another
    installation" for determinism checks)."""
    s = Stack(env=TIGHT_ENV).start()
    yield s
    s.stop()
    reports = s.sanitizer_reports()
    s.cleanup() if not reports else None
    assert not reports, "sanitizer reports:\n" + "\n".join(reports)


@pytest.fixture
def make_stack():
    """Start extra stacks with special settings; stopped and checked after."""
    made = []

    def make(env=None, **kw):
        s = Stack(env=env, **kw).start()
        made.append(s)
        return s

    yield make
    for s in made:
        s.stop_and_check()


@pytest.fixture
def client(stack):
    return stack.client()


def _registered(stack):
    c = stack.client()
    c.register()
    return c


def _cast_member(name):
    @pytest.fixture(name=name)
    def fresh_user(stack):
        return _registered(stack)

    return fresh_user


# Five fresh users on the shared stack, for tests that need a cast.
alice, bob, carol, dave, erin = map(_cast_member, ("alice", "bob", "carol", "dave", "erin"))


@pytest.fixture
def user(stack):
    c = stack.client()
    c.register()
    return c


def pytest_configure(config):
    config.addinivalue_line("markers", "sqlite_only: tests SQLite's own file; skipped on PostgreSQL")
    config.addinivalue_line("markers", "postgres_only: needs PostgreSQL; skipped on SQLite")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if ENGINE != "sqlite" and "sqlite_only" in item.keywords:
            item.add_marker(pytest.mark.skip(reason="about SQLite's own file"))
        if ENGINE != "postgres" and "postgres_only" in item.keywords:
            item.add_marker(pytest.mark.skip(reason="runs with NOVA_TEST_ENGINE=postgres"))
