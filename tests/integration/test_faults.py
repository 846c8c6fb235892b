"""Faults: kill -9 of nova-api workers in the middle of a stream of writes,
and a full disk under the database (API.md §1 all-or-nothing, docs/API.md
503, DESIGN.md "workers can be killed at any time").

Both tests end with the same read-only audit of the database
(check_invariants): the domain invariants, and that every committed change
has its outbox events."""

import collections
import json
import errno
import os
import pathlib
import random
import re
import signal
import subprocess
import tempfile
import threading
import time

import pytest
import requests

from conftest import barrier, unique_name
from support import metric, scrape

STORAGE_503 = "storage temporarily unavailable, try again"  # nova-api (db_fail)
NGINX_503 = "service unavailable, try again"  # nginx: the worker died mid-request
SYSTEM_ID = 1
FAIL = object()


# -- processes -----------------------------------------------------------------


def children(pid):
    """Live child pids of a process (zombies excluded)."""
    try:
        text = pathlib.Path(f"/proc/{pid}/task/{pid}/children").read_text()
        pids = [int(p) for p in text.split()]
    except FileNotFoundError:  # no CONFIG_PROC_CHILDREN: scan /proc
        pids = []
        for d in pathlib.Path("/proc").iterdir():
            if d.name.isdigit():
                try:
                    stat = (d / "stat").read_text()
                except OSError:
                    continue
                if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                    pids.append(int(d.name))
    return [p for p in pids if proc_state(p) not in (None, "Z")]


def proc_state(pid):
    try:
        return pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None


def worker_pids(stack):
    return sorted(children(stack.procs["api"].pid))


def wait_workers(stack, n, killed=(), timeout=20):
    """Wait until the supervisor has n workers, none of them in killed
    (a killed worker may still show for a moment)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        pids = worker_pids(stack)
        if len(pids) == n and not set(pids) & set(killed):
            return pids
        time.sleep(0.05)
    raise AssertionError(f"the pool did not come back to {n} workers: {worker_pids(stack)}\n"
                         + stack.log_text("api")[-3000:])


# -- the audit -----------------------------------------------------------------

CREATED_RE = re.compile(r"^Group (.*) created by (\S+) with (.*)$")
APPROVED_RE = re.compile(r"^(\S+) approved (\S+) to join the group, invited by (\S+)$")
FRIEND_RE = re.compile(r"^(\S+) added (\S+) as a friend$")


def check_invariants(st, membership_history=True):
    """Read-only audit; returns {violation: examples} (empty when sound).
    membership_history: no member ever left or was removed, so a group's
    members are exactly those named by its "created" and "approved" system
    messages."""
    bad = {}

    def none(name, sql):
        rows = st.sql(sql)
        if rows:
            bad[name] = rows[:10]

    if not st.pg_name:  # PostgreSQL checks references on every write
        integrity = st.sql("PRAGMA integrity_check")
        if integrity != [("ok",)]:
            bad["integrity_check"] = integrity[:10]
        none("foreign_key_check", "PRAGMA foreign_key_check")
    none("friendship not symmetric (or the two sides name different chats)",
         "SELECT f.user_id, f.friend_id FROM friends f LEFT JOIN friends g "
         "ON g.user_id = f.friend_id AND g.friend_id = f.user_id "
         "WHERE g.user_id IS NULL OR g.chat_id <> f.chat_id")
    none("friendship whose chat is not the pair's private chat",
         "SELECT f.user_id, f.friend_id, f.chat_id FROM friends f LEFT JOIN chats c ON c.id = f.chat_id "
         "WHERE c.id IS NULL OR c.name <> '' OR c.owner_id NOT IN (f.user_id, f.friend_id) "
         "OR (SELECT count(*) FROM chat_members m WHERE m.chat_id = f.chat_id) <> 2 "
         "OR NOT EXISTS (SELECT 1 FROM chat_members m WHERE m.chat_id = f.chat_id AND m.user_id = f.user_id) "
         "OR NOT EXISTS (SELECT 1 FROM chat_relations r WHERE r.chat_id = f.chat_id AND r.user_id = f.user_id)")
    none("private chat not held by exactly one friendship",
         "SELECT c.id FROM chats c WHERE c.name = '' "
         "AND (SELECT count(*) FROM friends f WHERE f.chat_id = c.id) <> 2")
    none("owner not a member",
         "SELECT c.id, c.owner_id FROM chats c WHERE NOT EXISTS "
         "(SELECT 1 FROM chat_members m WHERE m.chat_id = c.id AND m.user_id = c.owner_id)")
    none("owner flagged admin",
         "SELECT c.id, c.owner_id FROM chats c JOIN chat_members m "
         "ON m.chat_id = c.id AND m.user_id = c.owner_id WHERE m.is_admin = 1")
    none("admin in a private chat",
         "SELECT m.chat_id, m.user_id FROM chat_members m JOIN chats c ON c.id = m.chat_id "
         "WHERE c.name = '' AND m.is_admin = 1")
    none("member without a chat_relations row",
         "SELECT m.chat_id, m.user_id FROM chat_members m WHERE NOT EXISTS "
         "(SELECT 1 FROM chat_relations r WHERE r.chat_id = m.chat_id AND r.user_id = m.user_id)")
    none("user without exactly one default friend group",
         "SELECT u.id FROM users u WHERE u.is_system = 0 AND "
         "(SELECT count(*) FROM friend_groups g WHERE g.user_id = u.id AND g.is_default = 1) <> 1")
    none("pending friend invitation between friends",
         "SELECT i.id FROM friend_invitations i JOIN friends f "
         "ON f.user_id = i.sender_id AND f.friend_id = i.receiver_id")
    none("pending chat invitation of a member",
         "SELECT i.id FROM chat_invitations i JOIN chat_members m "
         "ON m.chat_id = i.chat_id AND m.user_id = i.user_id")

    # Every message has exactly one new_message event; every new_message of
    # a chat that still exists has its message.
    # (JSON is read here, not in SQL, so that the audit runs on both engines.)
    events = [(m["message_id"], m["chat_id"]) for m in (json.loads(r[0])["message"] for r in st.sql(
        "SELECT data FROM outbox WHERE action = 'new_message'"))]
    per_message = collections.Counter(m for m, _ in events)
    messages = st.sql("SELECT id, chat_id FROM messages")
    message_ids = {m for m, _ in messages}
    chat_ids = {r[0] for r in st.sql("SELECT id FROM chats")}
    wrong = [(m, per_message[m]) for m, _ in messages if per_message[m] != 1]
    if wrong:
        bad["message without exactly one new_message event"] = wrong[:10]
    lost = [(m, c) for m, c in events if c in chat_ids and m not in message_ids]
    if lost:
        bad["new_message event of a live chat without its message"] = lost[:10]

    names = dict(st.sql("SELECT id, user_name FROM users"))
    members = collections.defaultdict(set)
    for chat, user in st.sql("SELECT chat_id, user_id FROM chat_members"):
        members[chat].add(names[user])
    system = collections.defaultdict(list)
    for chat, mid, text in st.sql(
            "SELECT chat_id, id, content FROM messages WHERE sender_id = ? ORDER BY id", SYSTEM_ID):
        system[chat].append((mid, text))
    first = dict(st.sql("SELECT chat_id, min(id) FROM messages GROUP BY chat_id"))
    new_group = collections.Counter(json.loads(r[0])["chat_id"] for r in st.sql(
        "SELECT data FROM outbox WHERE action = 'new_group_chat'"))
    added = collections.Counter(json.loads(r[0])["chat_id"] for r in st.sql(
        "SELECT data FROM outbox WHERE action = 'member_added'"))
    problems = []
    for chat, name, owner in st.sql("SELECT id, name, owner_id FROM chats"):
        texts = system[chat]
        if name == "":
            made = [(mid, t) for mid, t in texts if FRIEND_RE.match(t)]
            if len(made) != 1 or made[0][0] != first.get(chat) or \
                    set(FRIEND_RE.match(made[0][1]).groups()) != members[chat]:
                problems.append(("private", chat, texts[:3], sorted(members[chat])))
            continue
        created = [(mid, CREATED_RE.match(t)) for mid, t in texts if CREATED_RE.match(t)]
        approved = [APPROVED_RE.match(t) for _, t in texts if APPROVED_RE.match(t)]
        if len(created) != 1 or created[0][0] != first.get(chat) or \
                created[0][1].group(1) != name or created[0][1].group(2) != names[owner]:
            problems.append(("no single 'created' message first", chat, texts[:3]))
            continue
        if new_group[chat] != 1 + len(approved):
            problems.append(("new_group_chat events", chat, new_group[chat], len(approved)))
        if added[chat] != len(approved):
            problems.append(("member_added events", chat, added[chat], len(approved)))
        if membership_history:
            expected = set(created[0][1].group(3).split(", ")) | {m.group(2) for m in approved}
            if expected != members[chat]:
                problems.append(("members", chat, sorted(expected), sorted(members[chat])))
    if problems:
        bad["chat without its system messages / events"] = problems[:10]

    # The newest friend_* event each side got says whether they are friends.
    last = {}
    for _, action, recipients, data in st.sql(
            "SELECT id, action, recipients, data "
            "FROM outbox WHERE action IN ('friend_created', 'friend_deleted') ORDER BY id"):
        last[(json.loads(recipients)[0], json.loads(data)["friend"]["id"])] = action
    friends = set(st.sql("SELECT user_id, friend_id FROM friends"))
    wrong = [(p, last.get(p)) for p in friends if last.get(p) != "friend_created"]
    wrong += [(p, a) for p, a in last.items() if p not in friends and a != "friend_deleted"]
    if wrong:
        bad["friendship and its friend_created/friend_deleted events disagree"] = wrong[:10]
    return bad


def table_counts(st):
    tables = ["users", "sessions", "friend_groups", "friends", "friend_invitations", "chats",
              "chat_members", "chat_relations", "messages", "message_deletions",
              "chat_invitations", "outbox"]
    return {t: st.sql(f"SELECT count(*) FROM {t}")[0][0] for t in tables}


# -- kill -9 of workers during writes -------------------------------------------


def register(st):
    c = st.client()
    c.register()
    return c


class Writer:
    """One thread's stream of writes. The owner and its pool of would-be
    friends belong to this writer alone, so it knows the state exactly and
    every request must answer 200, or 502/503 when its worker was killed
    (then the outcome is unknown and the writer re-reads the state). Any
    other answer (a 4xx: the state is not what the answers said; a 500) is
    a problem."""

    def __init__(self, owner, pool, seed):
        self.o = owner
        self.me = owner.user["id"]
        self.pool = {c.user["id"]: c for c in pool}
        self.rng = random.Random(seed)
        self.statuses = collections.Counter()
        self.problems = []
        self.groups_made = {}  # friend group name -> status
        self.chats_made = {}  # chat name -> status
        self.ops = collections.Counter()
        self.friends, self.groups, self.chats = set(), [], {}

    def call(self, client, method, path, body=None):
        try:
            r = client.request(method, path, body)
        except requests.RequestException as e:
            self.statuses["exception"] += 1
            self.problems.append((method, path, body, repr(e)))
            return 0, FAIL
        self.statuses[r.status_code] += 1
        try:
            env = r.json()
        except ValueError:
            # A worker killed while nginx was already passing its (large)
            # answer on: the client gets a cut body under a 200 it cannot
            # trust, like a dropped connection. The outcome is unknown.
            if r.status_code == 200:
                self.statuses["cut"] += 1
                return 0, FAIL
            self.problems.append((method, path, body, r.status_code, "not JSON", r.text[:200]))
            return r.status_code, FAIL
        # The worker died mid-request: nginx answers 502 (its error_page
        # keeps the status); a worker that met a locked or failing
        # database answers 503. Either way the outcome is unknown.
        if r.status_code in (502, 503):
            allowed = [NGINX_503] if r.status_code == 502 else [STORAGE_503, NGINX_503]
            if env not in [{"ok": False, "error": e} for e in allowed]:
                self.problems.append((method, path, body, r.status_code, env))
            return r.status_code, FAIL
        if r.status_code != 200 or env.get("ok") is not True:
            self.problems.append((method, path, body, r.status_code, env))
            return r.status_code, FAIL
        return 200, env["data"]

    def read(self, client, path):
        for _ in range(100):
            status, data = self.call(client, "GET", path)
            if status == 200:
                return data
            if status not in (0, 502, 503):
                break
            time.sleep(0.02)
        raise AssertionError(f"GET {path} kept failing: {self.problems[-3:]}")

    def refresh(self):
        self.friends = {f["friend"]["id"] for f in self.read(self.o, "/friend")}
        self.groups = [g["group_id"] for g in self.read(self.o, "/friend/group/list")]
        self.chats = {
            rel["chat"]["chat_id"]: {m["id"] for m in rel["chat"]["chat_members"]}
            for rel in self.read(self.o, "/chat")
            if rel["chat"]["chat_name"] != "" and rel["chat"]["chat_owner"]["id"] == self.me
        }

    def check(self, cond, what):
        if not cond:
            self.problems.append(what)

    # Each op returns True when every request answered 200.

    def op_group_add(self):
        name = unique_name("fg")
        status, d = self.call(self.o, "POST", "/friend/group/add", {"group_name": name})
        self.groups_made[name] = status
        if d is FAIL:
            return False
        self.check(d["group_name"] == name, ("group/add answer", name, d))
        self.groups.append(d["group_id"])
        return True

    def op_patch_friend(self):
        if not self.friends:
            return self.op_befriend()
        f, g, nick = self.rng.choice(sorted(self.friends)), self.rng.choice(self.groups), unique_name("n")
        _, d = self.call(self.o, "PATCH", f"/friend/{f}", {"nickname": nick, "group_id": g})
        if d is FAIL:
            return False
        self.check(d["friend"]["id"] == f and d["nickname"] == nick and d["group"]["group_id"] == g,
                   ("PATCH /friend answer", f, nick, g, d))
        return True

    def op_chat_new(self):
        friends = sorted(self.friends)
        members = self.rng.sample(friends, self.rng.randint(0, len(friends)))
        name = unique_name("ch")
        status, d = self.call(self.o, "POST", "/chat/new", {"chat_name": name, "chat_members": members})
        self.chats_made[name] = status
        if d is FAIL:
            return False
        got = {m["id"] for m in d["chat_members"]}
        self.check(got == {self.me, *members} and d["chat_owner"]["id"] == self.me
                   and d["chat_name"] == name, ("/chat/new answer", name, members, d))
        self.chats[d["chat_id"]] = got
        return True

    def op_invite_approve(self):
        options = [(c, f) for c, mem in sorted(self.chats.items()) for f in sorted(self.friends)
                   if f not in mem]
        if not options:
            return self.op_chat_new()
        chat, f = self.rng.choice(options)
        _, d = self.call(self.o, "POST", f"/chat/{chat}/invite", {"user_id": f})
        if d is FAIL:
            return False
        _, d = self.call(self.o, "POST", f"/chat/{chat}/invitation/{f}")
        if d is FAIL:
            return False
        self.chats[chat].add(f)
        return True

    def op_unfriend(self):
        if not self.friends:
            return self.op_befriend()
        f = self.rng.choice(sorted(self.friends))
        _, d = self.call(self.o, "DELETE", f"/friend/{f}")
        if d is FAIL:
            return False
        self.friends.discard(f)
        return True

    def op_befriend(self):
        strangers = sorted(set(self.pool) - self.friends)
        if not strangers:
            return self.op_unfriend()
        f = self.rng.choice(strangers)
        _, d = self.call(self.o, "POST", "/friend/invite", {"id": f, "comment": "hi", "source": "search"})
        if d is FAIL:
            return False
        self.check(d is None, ("invite answer", d))
        status, invs = self.call(self.pool[f], "GET", "/friend/invitation")
        if invs is FAIL:
            return False
        mine = [i for i in invs if i["sender"]["id"] == self.me]
        if len(mine) != 1:
            self.problems.append(("pending invitations from the owner", f, invs))
            return False
        _, d = self.call(self.pool[f], "POST", f"/friend/invitation/{mine[0]['id']}")
        if d is FAIL:
            return False
        self.check(d["friend"]["id"] == self.me, ("accept answer", d))
        self.friends.add(f)
        return True

    def run(self, stop):
        ops = [self.op_group_add, self.op_patch_friend, self.op_chat_new, self.op_chat_new,
               self.op_invite_approve, self.op_invite_approve, self.op_unfriend, self.op_befriend,
               self.op_befriend]
        try:
            self.refresh()
            while not stop.is_set() and len(self.problems) < 20:
                op = self.rng.choice(ops)
                self.ops[op.__name__] += 1
                if not op():
                    self.refresh()
        except Exception as e:  # noqa: BLE001 - reported by the test
            self.problems.append(("writer crashed", repr(e)))


def test_kill_9_of_workers_during_writes_applies_each_request_fully_or_not_at_all(make_stack):
    n_workers, n_writers, storm = 4, 4, 8.0
    st = make_stack(workers=n_workers)
    rng = random.Random(20240601)
    writers = []
    for i in range(n_writers):
        owner = register(st)
        pool = [register(st) for _ in range(3)]
        w = Writer(owner, pool, seed=i)
        # Start from one friend, one group and one chat.
        assert w.op_befriend() and w.op_group_add() and w.op_chat_new(), w.problems
        writers.append(w)

    probe = register(st)
    stop = threading.Event()
    threads = [threading.Thread(target=w.run, args=(stop,)) for w in writers]
    for t in threads:
        t.start()
    killed, started = [], time.time()
    while time.time() - started < storm:
        time.sleep(rng.uniform(0.08, 0.3))
        pids = [p for p in worker_pids(st) if p not in killed]
        if not pids:
            continue
        pid = rng.choice(pids)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            continue
        killed.append(pid)
    stop.set()
    for t in threads:
        t.join(60)
        assert not t.is_alive(), "a writer is stuck"

    statuses = sum((w.statuses for w in writers), collections.Counter())
    ops = sum((w.ops for w in writers), collections.Counter())
    print(f"\nkills {len(killed)}; statuses {dict(statuses)}; ops {dict(ops)}")
    problems = [p for w in writers for p in w.problems]
    assert not problems, problems[:10]
    assert statuses[500] == 0
    assert set(statuses) <= {200, 502, 503}, statuses
    assert len(killed) >= 15, "too few kills to mean anything"
    assert statuses[200] >= 100, statuses

    # The pool recovers: all workers back, then sequential requests succeed.
    wait_workers(st, n_workers, killed=killed)
    for i in range(20):
        probe.ok("GET", "/user")
        probe.ok("POST", "/friend/group/add", {"group_name": f"after storm {i}"})
    # The supervisor noticed and restarted every killed worker.
    deadline = time.time() + 10
    while True:
        logged = {int(p) for p in re.findall(r"worker (\d+) killed by signal 9, restarting",
                                             st.log_text("api"))}
        if logged >= set(killed) or time.time() > deadline:
            break
        time.sleep(0.1)
    assert logged == set(killed), (sorted(set(killed) - logged), sorted(logged - set(killed)))
    assert "exited with" not in st.log_text("api")
    assert st.procs["api"].poll() is None and st.procs["realtime"].poll() is None

    # Every answered request did exactly what it said; unknown outcomes
    # (502/503) happened entirely or not at all.
    groups = collections.Counter(r[0] for r in st.sql("SELECT name FROM friend_groups"))
    chats = collections.Counter(r[0] for r in st.sql("SELECT name FROM chats"))
    for w in writers:
        for name, status in w.groups_made.items():
            assert groups[name] == 1 if status == 200 else groups[name] in (0, 1), (name, status)
        for name, status in w.chats_made.items():
            assert chats[name] == 1 if status == 200 else chats[name] in (0, 1), (name, status)
    # And the server's state is what each writer believes (after a final
    # re-read, which resolves the unknown outcomes).
    for w in writers:
        model = (set(w.friends), sorted(w.groups), {k: set(v) for k, v in w.chats.items()})
        w.refresh()
        assert w.problems == []
        assert (w.friends, sorted(w.groups), w.chats) == model, w.me
        rows = st.sql("SELECT friend_id FROM friends WHERE user_id = ?", w.me)
        assert {r[0] for r in rows} == w.friends

    bad = check_invariants(st)
    assert not bad, bad


# -- a full disk ------------------------------------------------------------------


@pytest.fixture
def small_fs():
    """A 8 MiB tmpfs of our own (needs root and mount); skipped otherwise."""
    d = tempfile.mkdtemp(prefix="nova-fs-")
    try:
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m,mode=0755", "tmpfs", d],
                           capture_output=True, text=True)
        why = r.stderr.strip() or f"exit {r.returncode}" if r.returncode else None
    except FileNotFoundError:
        why = "no mount command"
    if why:
        os.rmdir(d)
        pytest.skip(f"cannot mount a small tmpfs here ({why}; needs root): "
                    "a full disk cannot be simulated")
    yield pathlib.Path(d)
    subprocess.run(["umount", "-l", d], check=False)
    os.rmdir(d)


def fill(path):
    """Write path until the filesystem has not one byte left."""
    with open(path, "wb", buffering=0) as f:
        chunk = 1 << 20
        while chunk:
            try:
                f.write(b"\0" * chunk)
            except OSError as e:
                assert e.errno == errno.ENOSPC, e
                chunk //= 2
    s = os.statvfs(path)
    assert s.f_bavail == 0, s


def storage_503(r):
    assert r.status_code == 503, (r.request.method, r.request.url, r.status_code, r.text)
    assert r.headers["Content-Type"].startswith("application/json")
    assert r.json() == {"ok": False, "error": STORAGE_503}
    assert "Set-Cookie" not in r.headers, r.headers


@pytest.mark.sqlite_only
def test_a_full_disk_answers_503_to_writes_keeps_reads_and_sockets_and_recovers(small_fs, make_stack):
    db = small_fs / "nova.db"
    # Every request touches its session (best effort), so even reads try
    # to write while the disk is full.
    st = make_stack(env={"NOVA_DB": str(db), "NOVA_SESSION_TOUCH": "0"})
    st.db_path = db
    a, b, c = register(st), register(st), register(st)
    for x in (b, c):
        a.ok("POST", "/friend/invite", {"id": x.user["id"], "comment": "", "source": "search"})
        inv = x.ok("GET", "/friend/invitation")[0]
        x.ok("POST", f"/friend/invitation/{inv['id']}")
    chat = a.ok("POST", "/chat/new", {"chat_name": "full", "chat_members": [b.user["id"]]})["chat_id"]
    sa, sb = a.socket(), b.socket()
    barrier(a, sa)
    barrier(b, sb)
    pids = worker_pids(st)
    rt_pid = st.procs["realtime"].pid
    before = table_counts(st)
    stranger = unique_name()

    def writes():
        return [
            ("PATCH", "/user", {"avatar_url": "https://example.com/full.png"}),
            ("POST", "/friend/group/add", {"group_name": "while full"}),
            ("POST", "/chat/new", {"chat_name": "while full", "chat_members": [b.user["id"]]}),
            ("POST", f"/chat/{chat}/invite", {"user_id": c.user["id"]}),
            ("DELETE", f"/friend/{c.user['id']}", None),
        ]

    filler = small_fs / "filler"
    fill(filler)
    try:
        for method, path, body in writes():
            storage_503(a.request(method, path, body))
        storage_503(st.client().post("/user/register", {"user_name": stranger, "password": "secret1"}))
        storage_503(st.client().post("/user/login", {"user_name": a.user["user_name"],
                                                     "password": "secret1"}))
        # Whatever would end or replace a's session fails as a whole: the
        # session (and the cookie the client holds) stays valid.
        token = a.token
        storage_503(a.post("/user/login", {"user_name": a.user["user_name"], "password": "secret1"}))
        storage_503(a.patch("/user", {"old_password": "secret1", "new_password": "secret2"}))
        storage_503(a.post("/user/logout"))
        storage_503(a.delete("/user"))
        assert a.token == token
        # A socket action that writes gets an error packet; the socket stays.
        rid = sa.request("send_message", {"chat_id": chat, "content": "while full"})
        err = sa.recv()
        assert err["action"] == "error" and err["ok"] is False and err["request_id"] == rid, err
        assert err["code"] == 503 and err["error"] == STORAGE_503, err

        # Reads keep working.
        assert a.ok("GET", "/user")["id"] == a.user["id"]
        assert [r["chat"]["chat_id"] for r in a.ok("GET", "/chat") if r["chat"]["chat_name"]] == [chat]
        msgs = a.ok("GET", f"/chat/{chat}/messages?limit=20")
        assert [m["sender"]["id"] for m in msgs] == [SYSTEM_ID]
        assert {f["friend"]["id"] for f in a.ok("GET", "/friend")} == {b.user["id"], c.user["id"]}
        assert [g["group_name"] for g in a.ok("GET", "/friend/group/list")] == [""]
        assert b.ok("GET", f"/user/{a.user['id']}")["user_name"] == a.user["user_name"]
        # Sockets stay up, and a new one can connect.
        assert sa.ping_barrier() == [] and sb.ping_barrier() == []
        sc = c.socket()
        assert sc.ping_barrier() == []
        time.sleep(1.5)  # let nova-realtime's periodic jobs meet the full disk too
        assert sa.ping_barrier() == [] and sb.ping_barrier() == [] and sc.ping_barrier() == []

        # Nothing changed, nothing died.
        assert table_counts(st) == before
        assert worker_pids(st) == pids and st.procs["realtime"].poll() is None
        assert "restarting" not in st.log_text("api")
        assert st.sql("PRAGMA integrity_check") == [("ok",)]
        # The metrics count the full disk as unavailable storage, not as
        # internal errors, in nova-api (all its workers) and nova-realtime.
        api, rt = scrape(st), scrape(st, "/metrics/realtime")
        assert metric(api, "nova_db_errors_total", kind="unavailable") >= 13, api
        assert metric(api, "nova_db_errors_total", kind="internal") == 0
        assert metric(rt, "nova_db_errors_total", kind="unavailable") >= 1
        assert metric(rt, "nova_db_errors_total", kind="internal") == 0

        # Workers that start while the disk is full serve too.
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        pids = wait_workers(st, len(pids), killed=pids)
        for _ in range(2 * len(pids)):
            assert a.ok("GET", "/user")["id"] == a.user["id"]
            storage_503(a.post("/friend/group/add", {"group_name": "while full"}))
        assert table_counts(st) == before
    finally:
        filler.unlink()

    # Service resumes at once, without a restart.
    restarts = st.log_text("api").count("restarting")
    for method, path, body in writes():
        a.ok(method, path, body)
    st.client().register(stranger)
    a.login()
    assert [m["action"] for m in barrier(b, sb)] == ["new_group_chat", "new_message"]
    sb.request("send_message", {"chat_id": chat, "content": "after"})
    got = [sb.recv(), sb.recv()]
    assert [m["action"] for m in got] == ["new_message", "messages_read"], got
    assert got[0]["data"]["message"]["message"] == "after"
    # a's old socket saw every change, then the login replaced its session.
    seen = [m["action"] for m in sa.read_to_close()[0]]
    assert seen == ["profile_change", "new_group_chat", "new_message", "chat_invitation",
                    "friend_deleted", "logout"], seen
    assert worker_pids(st) == pids and st.procs["realtime"].pid == rt_pid
    assert st.procs["realtime"].poll() is None
    assert st.log_text("api").count("restarting") == restarts
    after = table_counts(st)
    assert after["chats"] == before["chats"] and after["friends"] == before["friends"] - 2
    assert after["users"] == before["users"] + 1
    sc.close()
    sb.close()
    bad = check_invariants(st)
    assert not bad, bad
