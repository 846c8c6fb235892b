"""Operating Nova (issue 13, first parts): the configuration file as the
daemons read it, and nova-admin backup of a live stack restored into a new
one that answers the same."""

import os
import signal
import socket
import sqlite3
import subprocess
import threading

from conftest import BUILD, ROOT, PgCluster, Stack, fail, unique_name
from support import befriend, make_group


def test_daemons_read_the_configuration_file(tmp_path, make_stack):
    """A setting from the file takes effect in the real daemons (a body
    limit of 2048 bytes gives 413 beyond it), the environment wins over
    the file, and a bad line stops a daemon naming the file and line."""
    conf = tmp_path / "nova.conf"
    conf.write_text("# test\nbody-limit = 2048\nws-max-frame = 4096\n")
    st = make_stack(env={"NOVA_CONFIG": str(conf)})
    c = st.client()
    c.register()
    r = c.post("/friend/group/add", {"group_name": "x" * 3000})
    assert fail(r, 413)

    env = dict(os.environ, NOVA_CONFIG=str(conf), NOVA_BODY_LIMIT="8192", NOVA_DB=str(st.db_path))
    conf.write_text("body-limit = 2048\nbody-limit = many\n")
    r = subprocess.run([str(BUILD / "nova-api"), "--socket", str(tmp_path / "x.sock")], env=env,
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2
    assert f"{conf}:2: body-limit wants an integer" in r.stderr, r.stderr
    conf.write_text("no-such-thing = 1\n")
    r = subprocess.run([str(BUILD / "nova-realtime")], env=env, capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 2 and f'{conf}:1: unknown setting "no-such-thing"' in r.stderr, r.stderr
    # --help works whatever the file says
    r = subprocess.run([str(BUILD / "nova-admin"), "--help"], env=env, capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0 and "--config" in r.stdout


def snapshot(c, chat_id):
    """What a user sees, as the API answers it."""
    return {
        "user": c.ok("GET", "/user"),
        "friends": sorted(c.ok("GET", "/friend"), key=lambda f: f["friend"]["id"]),
        "chats": sorted(c.ok("GET", "/chat"), key=lambda r: r["chat"]["chat_id"]),
        "messages": c.ok("GET", f"/chat/{chat_id}/messages"),
    }


def test_backup_of_a_serving_stack_restores_to_the_same_answers(stack, tmp_path, alice, bob, carol):
    befriend(alice, bob)
    befriend(alice, carol)
    chat = make_group(alice, [bob, carol])["chat_id"]
    for text in ("one", "two", "three"):
        alice.ok("PATCH", "/user", {"user_name": alice.user["user_name"]})  # events too
        sb = bob.socket()
        sb.request("send_message", {"chat_id": chat, "content": text})
        sb.ping_barrier()
        sb.close()
    before = snapshot(alice, chat)
    token = alice.token

    # Writes go on, elsewhere, while the backup is made.
    others = [stack.client() for _ in range(2)]
    for o in others:
        o.register()
    stop = threading.Event()

    def churn():
        i = 0
        while not stop.is_set():
            for o in others:
                o.ok("POST", "/friend/group/add", {"group_name": f"g{i}"})
            i += 1

    t = threading.Thread(target=churn)
    t.start()
    try:
        copy = tmp_path / "backup.db"
        r = stack.admin("backup", str(copy))
        assert "backed up" in r.stdout, r.stdout
        again = stack.admin("backup", str(copy), check=False)
        assert again.returncode == 1 and "exists already" in again.stderr
    finally:
        stop.set()
        t.join(30)

    con = sqlite3.connect(str(copy))
    assert con.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    assert con.execute("PRAGMA foreign_key_check").fetchall() == []
    con.close()

    # Restore: a new stack on the copy answers what the old one did. On
    # PostgreSQL the backup is copied into a new database.
    if stack.pg_name:
        restored = Stack(pg_name=PgCluster.get().create_database())
        subprocess.run([str(BUILD / "nova-admin"), "copy", restored.db_uri()], check=True,
                       capture_output=True, env=dict(restored.env, NOVA_DB=str(copy)))
    else:
        restored = Stack(env={"NOVA_DB": str(tmp_path / "restored.db")})
        restored.db_path = tmp_path / "restored.db"
        os.replace(copy, restored.db_path)
    restored.start()
    try:
        again = restored.client().with_token(token)
        assert snapshot(again, chat) == before
        fresh = restored.client()
        fresh.login(bob.user["user_name"], bob.password)
        assert fresh.ok("GET", "/friend/" + str(alice.user["id"]))["friend"]["id"] == alice.user["id"]
        # and it keeps working: a new account, a new message
        newcomer = restored.client()
        newcomer.register(unique_name())
        s = fresh.socket()
        rid = s.request("send_message", {"chat_id": chat, "content": "after the restore"})
        msg = s.recv()
        assert msg["action"] == "new_message" and msg["request_id"] == rid, msg
        assert msg["data"]["message"]["message"] == "after the restore"
        s.close()
    finally:
        restored.stop_and_check()


def test_json_logs_are_one_valid_object_a_line(make_stack):
    """log-format = json: every line of the daemons' logs is one JSON object
    with time, program, pid, level and msg, also when a request's path holds
    quotes, backslashes, control characters or bytes that are not UTF-8;
    and still no token in them."""
    import json
    import socket as sock_mod

    st = make_stack(env={"NOVA_LOG_FORMAT": "json"})
    c = st.client()
    c.register()
    s = c.socket()
    s.request("ping")
    s.recv()
    s.close()
    raw = sock_mod.create_connection(("127.0.0.1", st.port))
    raw.sendall(b'GET /api/x"y\\z%01%ff%c3 HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n')
    while raw.recv(4096):
        pass
    raw.close()
    c.ok("GET", "/user")
    st.stop_proc("realtime")
    seen = {"nova-api": 0, "nova-realtime": 0}
    for name in ("api", "realtime"):
        for line in st.log_text(name).splitlines():
            if not line.startswith("{"):
                continue  # sanitizer or library output
            entry = json.loads(line)
            assert set(entry) == {"time", "program", "pid", "level", "msg"}, entry
            assert entry["level"] in ("error", "info", "debug")
            assert isinstance(entry["pid"], int) and entry["msg"]
            seen[entry["program"]] = seen.get(entry["program"], 0) + 1
            assert c.token not in line
    assert seen["nova-api"] >= 3 and seen["nova-realtime"] >= 2, seen
    assert 'x\\"y' in st.log_text("api")  # the quote, escaped, in a valid line


def test_check_reports_the_invariants_of_a_live_database(make_stack):
    st = make_stack()
    a, b, c = st.client(), st.client(), st.client()
    for x in (a, b, c):
        x.register()
    befriend(a, b)
    befriend(a, c)
    make_group(a, [b, c])
    ok = st.admin("check")
    lines = ok.stdout.splitlines()
    assert ok.returncode == 0 and lines[-1].startswith(f"{len(lines) - 1} of {len(lines) - 1} rules hold")
    assert all(line.startswith("ok ") for line in lines[:-1]) and len(lines) > 20
    assert "integrity_check" in ok.stdout
    assert "integrity_check" not in st.admin("check", "--quick").stdout

    # Break two rules behind Nova's back: a one-sided friendship and an
    # admin flag on a chat's owner.
    con = st.writer()
    con.execute("DELETE FROM friends WHERE user_id = ? AND friend_id = ?", (b.user["id"], a.user["id"]))
    con.execute("UPDATE chat_members SET is_admin = 1 WHERE user_id = ? AND chat_id IN "
                "(SELECT id FROM chats WHERE owner_id = ? AND name <> '')", (a.user["id"], a.user["id"]))
    # And an event's recipient lost from the index resuming sockets read.
    con.execute("DELETE FROM outbox_recipients WHERE user_id = ? AND event_id = "
                "(SELECT max(event_id) FROM outbox_recipients WHERE user_id = ?)",
                (c.user["id"], c.user["id"]))
    con.commit()
    con.close()
    bad = st.admin("check", check=False)
    assert bad.returncode == 1, bad.stdout
    broken = [line for line in bad.stdout.splitlines() if line.startswith("BROKEN")]
    assert len(broken) >= 3, bad.stdout
    assert any("recipients, and only they, are indexed" in line for line in broken)
    assert any("friendships are symmetric" in line and str(a.user["id"]) in line for line in broken)
    assert any("never flagged admin" in line for line in broken)
    assert "breaks the domain's invariants" in bad.stdout.splitlines()[-1]


# -- systemd: units, socket activation, readiness -----------------------------


def test_systemd_units_verify_clean(tmp_path):
    """The units (systemd/*.in, rendered for this build's binaries) pass
    systemd-analyze verify without a word."""
    units = tmp_path / "units"
    subprocess.run([str(ROOT / "scripts/gen-units"), str(units), str(BUILD), "/etc", "/var", "/run"],
                   check=True)
    manpath = tmp_path / "man"
    for section in ("8", "5"):
        (manpath / f"man{section}").mkdir(parents=True)
        for page in (BUILD / "man").glob(f"*.{section}"):
            (manpath / f"man{section}" / page.name).write_bytes(page.read_bytes())
    files = sorted(str(p) for p in units.iterdir())
    assert len(files) == 4
    r = subprocess.run(["systemd-analyze", "verify", *files], capture_output=True, text=True,
                       env=dict(os.environ, MANPATH=str(manpath), SYSTEMD_LOG_LEVEL="notice"))
    assert r.returncode == 0 and r.stdout == "" and r.stderr == "", (r.stdout, r.stderr)
    api = (units / "nova-api.service").read_text()
    assert "Type=notify" in api and f"ExecStart={BUILD}/nova-api" in api and "User=nova" in api


class NotifySocket:
    """The service manager's end of sd_notify: a datagram socket."""

    def __init__(self, path):
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(20)

    def wait_for(self, word):
        while True:
            msg = self.sock.recv(4096).decode()
            if word in msg.split("\n"):
                return msg


class ActivatedStack(Stack):
    """A stack whose nova-api gets its two listening sockets from "the
    service manager" (this test: LISTEN_FDS, LISTEN_PID, LISTEN_FDNAMES, fds
    3 and 4, as systemd passes them) and reports readiness on NOTIFY_SOCKET."""

    def start_api(self):
        self.notify = NotifySocket(self.dir / "notify.sock")
        self.listeners = []
        for path in (self.api_sock, self.hash_sock):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.bind(str(path))
            s.listen(64)
            self.listeners.append(s)
        self.env["NOVA_HASH_SOCKET"] = str(self.hash_sock)  # render-nginx sends login there
        env = dict(self.env, NOTIFY_SOCKET=self.notify.path, LISTEN_FDS="2",
                   LISTEN_FDNAMES="api:hash")
        fds = [s.fileno() for s in self.listeners]

        def as_systemd_does():
            os.dup2(fds[0], 3)
            os.dup2(fds[1], 4)
            for k, v in env.items():
                os.environ[k] = v
            os.environ["LISTEN_PID"] = str(os.getpid())

        log = open(self.dir / "api.log", "ab")
        self.logs["api"] = self.dir / "api.log"
        self.procs["api"] = subprocess.Popen(
            [str(BUILD / "nova-api"), "--workers", "2", "--hash-workers", "1"],
            stdout=log, stderr=subprocess.STDOUT, cwd=self.dir, preexec_fn=as_systemd_does,
            close_fds=False)
        log.close()
        self.ready = self.notify.wait_for("READY=1")


def test_nova_api_socket_activation_and_readiness(make_stack):
    st = ActivatedStack()
    try:
        st.start()
        assert f"MAINPID={st.procs['api'].pid}" in st.ready
        c = st.client()
        c.register()  # through the hashing socket
        assert c.ok("GET", "/user")["id"] == c.user["id"]  # through the main one
        assert "the socket of the service manager" in st.log_text("api")
        assert "2 workers" in st.log_text("api") and "1 password-hashing" in st.log_text("api")
        st.procs["api"].send_signal(signal.SIGTERM)
        st.notify.wait_for("STOPPING=1")
        assert st.procs["api"].wait(15) == 0
        # The sockets are systemd's: nova-api does not remove them.
        assert st.api_sock.exists() and st.hash_sock.exists()
    finally:
        st.stop_and_check()


def test_nova_realtime_reports_readiness(make_stack, tmp_path):
    notify = NotifySocket(tmp_path / "notify.sock")
    st = make_stack(env={"NOTIFY_SOCKET": notify.path})
    pids = set()
    while len(pids) < 2:  # nova-api's supervisor and nova-realtime, in any order
        msg = notify.wait_for("READY=1")
        pids.add(int(msg.split("MAINPID=")[1].split()[0]))
    assert pids == {st.procs["api"].pid, st.procs["realtime"].pid}
    st.procs["realtime"].send_signal(signal.SIGTERM)
    notify.wait_for("STOPPING=1")
    assert st.procs["realtime"].wait(15) == 0


def test_the_sample_configuration_is_every_setting_at_its_default(tmp_path):
    """The installed sample (nova.conf.sample, written from --help) lists
    every setting; uncommented as it is, it is a valid file that changes
    nothing: each program starts with it and reports the same settings."""
    import re

    sample = (BUILD / "nova.conf.sample").read_text()
    setting = re.compile(r"^# ([a-z0-9-]+) = ")
    names = {m.group(1) for m in map(setting.match, sample.splitlines()) if m}
    for binary in ("nova-api", "nova-realtime", "nova-admin"):
        shown = subprocess.run([str(BUILD / binary), "--help"], capture_output=True, text=True).stdout
        for line in shown.splitlines():
            if line.startswith("  --") and not line.startswith(("  --help", "  --config")):
                assert line.split()[0][2:] in names, line
    active = tmp_path / "nova.conf"
    active.write_text("\n".join(line[2:] if setting.match(line) else line
                                for line in sample.splitlines()))
    env = dict(os.environ, NOVA_CONFIG=str(active), NOVA_DB=str(tmp_path / "x.db"))
    r = subprocess.run([str(BUILD / "nova-admin"), "migrate"], env=env, capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0, r.stderr
