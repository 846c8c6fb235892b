"""The Debian package on this machine: installed with apt, the installed
programs serve through an nginx that includes the installed site and
snippets (two users register, become friends, and a message sent on one's
WebSocket arrives on the other's), and purging removes what the package
made. scripts/test-package builds the package and runs this once per CI
run (NOVA_DEB names the .deb); it needs root.

There is no systemd as PID 1 here, so the test does what the installed
units say: it reads them from /lib/systemd/system and runs each
ExecStartPre and ExecStart as their User and Group, with their
Environment and UMask, the runtime directory they name, and nova-api's
listening sockets made as the .socket units make them (owner, group,
mode) and passed in as LISTEN_FDS; readiness comes on NOTIFY_SOCKET
(Type=notify)."""

import fcntl
import grp
import os
import pathlib
import pwd
import shlex
import signal
import socket
import subprocess
import sys
import shutil
import tempfile
import time

import pytest
import requests

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests/integration"))
from conftest import NGINX, Client, fail, free_port  # noqa: E402
from support import befriend, is_new_message, register, send_message, uid, wait_for  # noqa: E402

DEB = os.environ.get("NOVA_DEB", "")
UNITS = pathlib.Path("/lib/systemd/system")
UNIT_NAMES = ("nova-api.service", "nova-api.socket", "nova-api-hash.socket",
              "nova-realtime.service")
SITE = pathlib.Path("/etc/nginx/sites-available/nova")
SNIPPETS = [pathlib.Path("/etc/nginx/snippets") / n for n in ("nova-fastcgi.conf", "nova-error.conf")]
SYSTEMD_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

pytestmark = [
    pytest.mark.skipif(os.getuid() != 0, reason="installs and purges a package: needs root"),
    pytest.mark.skipif(not DEB, reason="NOVA_DEB names no package (scripts/test-package builds it)"),
]


def sh(*argv, timeout=300):
    """Run a command as root; fail with its output if it fails."""
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env)
    assert r.returncode == 0, (argv, r.stdout, r.stderr)
    return r


def installed():
    r = subprocess.run(["dpkg-query", "-W", "-f=${Status}", "nova"], capture_output=True, text=True)
    return r.returncode == 0 and r.stdout.strip() != "unknown ok not-installed"


def purge():
    sh("apt-get", "purge", "-y", "-q", "-o", "DPkg::Lock::Timeout=120", "nova")


def unit(name):
    """An installed unit's settings: {key: [value, ...]} (a key given more
    than once, such as Environment, keeps every value in order)."""
    out = {}
    for line in (UNITS / name).read_text().splitlines():
        line = line.strip()
        if line and not line.startswith(("#", ";", "[")):
            key, value = line.split("=", 1)
            out.setdefault(key.strip(), []).append(value.strip())
    return out


def group_members(name):
    try:
        return grp.getgrnam(name).gr_mem
    except KeyError:
        return None


class NotifySocket:
    """The service manager's end of sd_notify, reachable by the units' user."""

    def __init__(self, path):
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        os.chmod(self.path, 0o666)
        self.sock.settimeout(30)

    def wait_ready(self, count):
        """The MAINPIDs of the first count services that say READY=1."""
        pids = set()
        while len(pids) < count:
            fields = dict(f.split("=", 1) for f in self.sock.recv(4096).decode().split("\n") if "=" in f)
            if fields.get("READY") == "1":
                pids.add(int(fields["MAINPID"]))
        return pids


class InstalledStack:
    """The installed programs, run as their units say, behind an nginx on a
    free loopback port that includes the installed site (its listen line
    changed to that port) and, through it, the installed snippets."""

    host = "127.0.0.1"

    def __init__(self, workdir):
        self.dir = pathlib.Path(workdir)
        os.chmod(self.dir, 0o755)  # nginx's workers (www-data) write its temp dirs
        self.port = free_port()
        self.metrics_port = free_port()
        self.base = f"http://{self.host}:{self.port}"
        self.ws_url = f"ws://{self.host}:{self.port}/ws/"
        self.procs = {}
        self.listeners = []
        self.notify = NotifySocket(self.dir / "notify.sock")

    # -- the units, done by hand ---------------------------------------------

    def _as_unit(self, u, fds=()):
        """What a service's process is given: its user, group (and the
        user's groups), umask, environment and the sockets fds, as 3, 4..."""
        user = pwd.getpwnam(u["User"][0])
        gid = grp.getgrnam(u.get("Group", [user.pw_name])[0]).gr_gid
        umask = int(u.get("UMask", ["0022"])[0], 8)
        env = {"PATH": SYSTEMD_PATH, "LANG": "C.UTF-8", "HOME": user.pw_dir,
               "USER": user.pw_name, "LOGNAME": user.pw_name, "NOTIFY_SOCKET": self.notify.path}
        env.update(v.split("=", 1) for v in u.get("Environment", []))
        if fds:
            env["LISTEN_FDS"] = str(len(fds))
            env["LISTEN_FDNAMES"] = ":".join(self.fd_names)

        def child():
            for i, fd in enumerate(fds):
                os.dup2(fd, 3 + i)
            if fds:
                env["LISTEN_PID"] = str(os.getpid())
            os.initgroups(user.pw_name, gid)
            os.setgid(gid)
            os.setuid(user.pw_uid)
            os.umask(umask)
            os.chdir("/")
            os.environ.clear()
            os.environ.update(env)

        return child

    def _run_unit(self, name, fds=()):
        u = unit(name)
        for pre in u.get("ExecStartPre", []):
            r = subprocess.run(shlex.split(pre), preexec_fn=self._as_unit(u), capture_output=True,
                               text=True, timeout=60)
            assert r.returncode == 0, (name, pre, r.stdout, r.stderr)
        log = open(self.dir / f"{name}.log", "ab")
        self.procs[name] = subprocess.Popen(
            shlex.split(u["ExecStart"][0]), preexec_fn=self._as_unit(u, fds), close_fds=False,
            stdout=log, stderr=subprocess.STDOUT)
        log.close()
        return u

    def _make_runtime_directory(self, u):
        for name in u.get("RuntimeDirectory", []):
            path = pathlib.Path("/run") / name
            path.mkdir(exist_ok=True)
            os.chown(path, pwd.getpwnam(u["User"][0]).pw_uid, grp.getgrnam(u["Group"][0]).gr_gid)
            os.chmod(path, int(u.get("RuntimeDirectoryMode", ["0755"])[0], 8))

    def _listen(self, socket_unit):
        """A .socket unit's ListenStream, made as systemd makes it."""
        s = unit(socket_unit)
        path = s["ListenStream"][0]
        pathlib.Path(path).parent.mkdir(exist_ok=True)
        if os.path.exists(path):
            os.unlink(path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(path)
        sock.listen(128)
        os.chown(path, pwd.getpwnam(s["SocketUser"][0]).pw_uid, grp.getgrnam(s["SocketGroup"][0]).gr_gid)
        os.chmod(path, int(s["SocketMode"][0], 8))
        self.listeners.append(sock)
        self.fd_names.append(s["FileDescriptorName"][0])
        # Above 3 and 4, where the child puts the sockets.
        return fcntl.fcntl(sock.fileno(), fcntl.F_DUPFD, 10)

    def start(self):
        api, rt = unit("nova-api.service"), unit("nova-realtime.service")
        self._make_runtime_directory(rt)
        self.fd_names = []
        fds = [self._listen(name) for name in api["Sockets"][0].split()]
        self._run_unit("nova-api.service", fds)
        self._run_unit("nova-realtime.service")
        pids = self.notify.wait_ready(2)
        assert pids == {p.pid for p in self.procs.values()}, pids
        self._start_nginx()
        return self

    def _start_nginx(self):
        site = SITE.read_text()
        assert site.count("\n    listen 80;\n") == 1, site
        # The operator's metrics listener, on loopback as installed.
        assert site.count("\n    listen 127.0.0.1:9180;\n") == 1, site
        (self.dir / "nova-site").write_text(
            site.replace("\n    listen 80;\n", f"\n    listen {self.host}:{self.port};\n")
                .replace("\n    listen 127.0.0.1:9180;\n",
                         f"\n    listen 127.0.0.1:{self.metrics_port};\n"))
        d = self.dir
        (d / "nginx.conf").write_text(f"""user www-data;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log {d}/access.log;
    client_body_temp_path {d}/tmp/body;
    proxy_temp_path {d}/tmp/proxy;
    fastcgi_temp_path {d}/tmp/fastcgi;
    uwsgi_temp_path {d}/tmp/uwsgi;
    scgi_temp_path {d}/tmp/scgi;
    include {d}/nova-site;
}}
""")
        (d / "tmp").mkdir()
        log = open(d / "nginx.log", "ab")
        self.procs["nginx"] = subprocess.Popen(
            [NGINX, "-p", str(d), "-c", str(d / "nginx.conf"), "-e", str(d / "error.log"),
             "-g", "daemon off;"], stdout=log, stderr=subprocess.STDOUT)
        log.close()
        for _ in range(200):
            try:
                if requests.get(self.base + "/api/user", timeout=2).status_code == 403:
                    return
            except requests.ConnectionError:
                pass
            assert self.procs["nginx"].poll() is None, self.logs()
            time.sleep(0.05)
        raise AssertionError("nginx did not answer:\n" + self.logs())

    def stop(self):
        for name, p in self.procs.items():
            if p.poll() is None:
                p.send_signal(signal.SIGQUIT if name == "nginx" else signal.SIGTERM)
        codes = {}
        for name, p in self.procs.items():
            try:
                codes[name] = p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
                codes[name] = p.wait()
        for s in self.listeners:
            s.close()
        return codes

    def logs(self):
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')}"
                         for p in sorted(self.dir.glob("*.log")))

    # -- what the tests' helpers need ----------------------------------------

    def client(self):
        return Client(self)

    def sql(self, query, *params):
        import sqlite3

        db = dict(v.split("=", 1) for v in unit("nova-api.service")["Environment"])["NOVA_DB"]
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
        try:
            return con.execute(query, params).fetchall()
        finally:
            con.close()


def check_installed():
    nova = pwd.getpwnam("nova")
    assert nova.pw_uid < 1000 and nova.pw_dir == "/var/lib/nova", nova
    assert "www-data" in group_members("nova")  # nginx reaches /run/nova
    state = os.stat("/var/lib/nova")
    assert (state.st_uid, oct(state.st_mode & 0o777)) == (nova.pw_uid, "0o700")
    assert os.stat("/var/lib/nova/nova.db").st_uid == nova.pw_uid  # migrated as nova
    # [ext] attachments: nginx (group nova) reads them, outside the database's directory
    files = os.stat("/var/lib/nova-attachments")
    assert (files.st_uid, files.st_gid, oct(files.st_mode & 0o777)) == (
        nova.pw_uid, nova.pw_gid, "0o750")
    assert "/var/lib/nova-attachments" in SITE.read_text()
    conffiles = sh("dpkg-query", "-W", "-f=${Conffiles}", "nova").stdout
    for path in ["/etc/nova/nova.conf", str(SITE), *map(str, SNIPPETS)]:
        assert f" {path} " in conffiles, conffiles
    assert "db = /var/lib/nova/nova.db" in pathlib.Path("/etc/nova/nova.conf").read_text()
    # The site is there for the administrator to enable, not enabled.
    assert not pathlib.Path("/etc/nginx/sites-enabled/nova").exists()
    for path in ("/run/nova/api.sock", "/run/nova/hash.sock", "/run/nova/realtime.sock",
                 "/etc/nginx/snippets/nova-fastcgi.conf", "/usr/share/nova/www"):
        assert path in SITE.read_text()
    # Enabled (the symlinks of deb-systemd-helper), for the next boot.
    wants = {p.name for p in pathlib.Path("/etc/systemd/system").glob("*.wants/nova-*")}
    assert wants == set(UNIT_NAMES), wants


def check_purged():
    assert not installed()
    with pytest.raises(KeyError):
        pwd.getpwnam("nova")
    assert group_members("nova") is None
    for path in ["/var/lib/nova", "/var/lib/nova-attachments", "/etc/nova", "/run/nova", SITE,
                 *SNIPPETS,
                 *(UNITS / n for n in UNIT_NAMES), "/usr/bin/nova-api", "/usr/share/nova"]:
        assert not os.path.lexists(path), path
    assert not list(pathlib.Path("/etc/systemd/system").glob("*.wants/nova-*"))


def drive(st):
    """Two users through nginx: REST to register and befriend, WebSocket to
    send a message and see it arrive; nginx's own errors in JSON."""
    page = requests.get(st.base + "/", timeout=10)
    assert page.status_code == 200 and "<html" in page.text.lower()  # the static root
    a, b = register(st), register(st)
    chat_id = befriend(a, b)
    sa, sb = a.socket(), b.socket()
    try:
        sb.ping_barrier()  # b's socket serves its session before the message
        text = "hello from the installed package"
        send_message(sa, a, chat_id, text)
        _, msg = wait_for(sb, is_new_message(chat_id, text, uid(a)))
        assert msg["data"]["message"]["message"] == text
    finally:
        sa.close()
        sb.close()
    assert st.sql("SELECT count(*) FROM messages WHERE content = ?", text)[0][0] == 1
    # [ext] attachments: stored by nova-api (0640), served by nginx as www-data.
    png = b"\x89PNG\r\n\x1a\n" + b"installed" * 10
    up = a.request("POST", f"/chat/{chat_id}/attachment?name=p.png", raw=png)
    assert up.status_code == 200, up.text
    att = up.json()["data"]
    assert att["mime"] == "image/png"
    got = a.get(f"/attachment/{att['attachment_id']}")
    assert got.status_code == 200 and got.content == png, (got.status_code, got.text[:300])
    assert got.headers["X-Content-Type-Options"] == "nosniff"
    fail(b.get(f"/attachment/{att['attachment_id']}"), 404)  # unsent: the uploader's alone
    fail(a.get("/no/such/path"), 404)  # nova-api's own answer
    long_uri = requests.get(st.base + "/api/" + "x" * 9000, timeout=10)  # nginx's, the snippet's JSON
    assert long_uri.status_code == 414 and long_uri.json()["ok"] is False


def test_the_package_installs_serves_and_purges():
    if installed():
        purge()  # left by an earlier run that could not clean up
    sh("apt-get", "install", "-y", "-q", "--no-install-recommends",
       "-o", "DPkg::Lock::Timeout=120", str(pathlib.Path(DEB).resolve()))
    try:
        check_installed()
        st = InstalledStack(tempfile.mkdtemp(prefix="nova-package-"))
        try:
            st.start()
            drive(st)
            # The installed metrics listener has counted what drive() did.
            for path, family in (("/metrics", "nova_api_requests_total{method=\"POST\","
                                              "route=\"/user/register\",status=\"200\"} 2"),
                                 ("/metrics/realtime", "nova_realtime_sockets_opened_total ")):
                m = requests.get(f"http://127.0.0.1:{st.metrics_port}{path}", timeout=10)
                assert m.status_code == 200 and family in m.text, (path, m.text[:2000])
        except BaseException:
            print(st.logs())
            raise
        finally:
            codes = st.stop()
        shutil.rmtree(st.dir, ignore_errors=True)
        assert codes["nova-api.service"] == 0 and codes["nova-realtime.service"] == 0, codes
    finally:
        purge()
    check_purged()
