#!/usr/bin/python3
"""curves.py - how each cost of Nova grows with its work (scripts/bench --plots).

    curves.py --build DIR --out DIR [--quick] [--only NAME,...] [--keep]
              [--history N,...] [--chats N,...] [--groups N,...]
              [--retained N,...] [--missed N,...] [--sockets N,...] [--search N,...]

Starts its own stack the way scripts/bench does (nginx from
scripts/lib/render-nginx, nova-api --workers 4, nova-realtime, a fresh
SQLite database in a temporary directory, cheap password hashes, the rest
the default configuration), registers the users it needs over the API, and
measures one curve per cost:

  history   GET /api/chat/<id>/messages?limit=50, the newest page and a
            page from the middle, and GET /api/chat/<id> (the unread count)
            for a member who has read nothing, vs messages in the chat
  chats     GET /api/chat (every relation with its unread count) vs chats
            of the user
  fanout    send_message until the sender's own new_message, and until the
            first and the last member's socket has it, vs group size
  resume_retained, resume_missed
            ?last_event_id=N until the last missed event, vs events in the
            outbox after N (few of them the user's), and vs events missed
  delivery  delivery latency p50/p99 at --rate msg/s vs sockets open
  search    [ext] GET /api/search (a rare word, a word in every message,
            newest first, no match, a searcher in more chats than the
            index filters) vs messages in the database

Each curve writes OUT/NAME.dat (a '#' header naming the columns, one row
per size) and OUT/NAME.png (gnuplot), plus OUT/NAME.gp, the gnuplot input,
to redraw it. Times are medians over several requests (see REPEAT below);
everything shares the machine with the load generator, so read slopes, not
the last digit. SQLite only (the fills write the file directly).

How the data is made, and why it is what the API would have written:
users, sessions and the private chats of friendships come from the API
itself (register, crossing friend invitations). Long histories, many
chats and big groups are written straight into the database with SQL in
the shapes of common/chat.c and common/message.c: a group is a chats row,
a chat_members and a chat_relations row per member (last_read_id = the
newest message at joining, 0 for a new chat) and the system message
"Group <name> created by <owner> with <owner>, <m1>, ..." from #SYSTEM; a
message is a messages row whose sender, when it is a person, has read the
chat up to it (send_message marks read for the sender), with send_time
increasing with id. Group members need not be friends of the owner: a
friendship ended after the group was made leaves exactly this state. No
outbox rows are written for these fills: the API would have written
new_message/messages_read events, but those are pruned after
NOVA_OUTBOX_RETENTION and nothing measured here reads them. The resume
curves write outbox rows (created_at now, ids from the table's own
sequence, never explicit) whose action and data are copies of a real
new_message event the API wrote, addressed to real users (the events for
other users carry the same payload: nothing but the replay reads them, and
it filters on recipients alone). After the
fills, nova-admin check (the domain invariants) must pass."""

import argparse
import concurrent.futures
import json
import os
import pathlib
import resource
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import http.client

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from setup import Http  # noqa: E402  (bench/setup.py: one keep-alive connection per thread)

ROOT = pathlib.Path(__file__).resolve().parents[1]
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
PASSWORD = "secret1"

FULL = dict(history=[10, 100, 1000, 10000, 100000, 1000000], chats=[1, 10, 100, 1000],
            groups=[2, 10, 100, 1000, 10000], retained=[1000, 10000, 100000, 1000000],
            missed=[10, 100, 1000, 10000, 100000], sockets=[1000, 10000, 100000],
            search=[1000, 10000, 100000, 1000000])
QUICK = dict(history=[10, 100, 1000], chats=[1, 10], groups=[2, 10], retained=[100, 1000],
             missed=[10, 100], sockets=[40, 100], search=[1000, 3000])
CURVES = ["history", "chats", "fanout", "search", "resume", "delivery"]
SEARCH_OWN = 20000  # [ext] search: most messages in the searcher's own chats
PAIRS = 16          # sender/receiver pairs of the delivery curve
RATE = 100          # msg/s of the delivery curve
OWN_EVENTS = 10     # the resuming user's events among the retained ones


def say(*a):
    print("curves:", *a, file=sys.stderr, flush=True)


def csv_ints(s):
    return [int(x) for x in s.split(",") if x]


# --- the stack ----------------------------------------------------------------

class Stack:
    """nginx + nova-api + nova-realtime, as scripts/bench starts them; nginx
    with two workers and reuseport so that 10 000 proxied sockets (two
    descriptors each) fit each worker's descriptor limit."""

    def __init__(self, build, keep):
        self.build = pathlib.Path(build)
        self.keep = keep
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="nova-curves."))
        self.db = self.dir / "nova.db"
        self.procs = {}
        self.env = dict(os.environ, NOVA_CONFIG="", NOVA_DB=str(self.db),
                        NOVA_PWHASH_OPSLIMIT="1", NOVA_PWHASH_MEMLIMIT="8192",
                        NOVA_LOGIN_RATE="100000r/s", NOVA_LOGIN_BURST="1000000",
                        NOVA_OUTBOX_POLL_MS=os.environ.get("NOVA_OUTBOX_POLL_MS", "10"),
                        NOVA_LOG_LEVEL=os.environ.get("NOVA_LOG_LEVEL", "1"),
                        NOVA_WAKE_SOCKET=str(self.dir / "wake.sock"))
        self.env.pop("NOVA_METRICS_LISTEN", None)
        self.api_sock = self.dir / "api.sock"
        self.rt_sock = self.dir / "rt.sock"

    def spawn(self, name, argv):
        with open(self.dir / f"{name}.log", "ab") as log:
            self.procs[name] = subprocess.Popen(argv, env=self.env, stdout=log,
                                                stderr=subprocess.STDOUT, cwd=self.dir)

    def wait_for(self, path):
        for _ in range(400):
            if path.exists():
                return
            for name, p in self.procs.items():
                if p.poll() is not None:
                    raise RuntimeError(f"{name} exited:\n" + self.log(name)[-2000:])
            time.sleep(0.05)
        raise RuntimeError(f"{path} did not appear")

    def log(self, name):
        p = self.dir / f"{name}.log"
        return p.read_text(errors="replace") if p.exists() else ""

    def admin(self, *args):
        return subprocess.run([str(self.build / "nova-admin"), *args], env=self.env,
                              capture_output=True, text=True)

    def start(self):
        r = self.admin("migrate")
        if r.returncode:
            raise RuntimeError("nova-admin migrate: " + r.stderr)
        self.spawn("api", [str(self.build / "nova-api"), "--socket", str(self.api_sock),
                           "--workers", "4"])
        self.wait_for(self.api_sock)
        self.spawn("realtime", [str(self.build / "nova-realtime"), "--listen", str(self.rt_sock)])
        self.wait_for(self.rt_sock)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        prefix = self.dir / "nginx"
        subprocess.run([str(ROOT / "scripts/lib/render-nginx"), str(prefix),
                        f"127.0.0.1:{self.port}", str(self.api_sock), str(self.rt_sock)],
                       env=self.env, check=True)
        site = prefix / "nova-site.conf"
        text = site.read_text()
        listen = f"listen 127.0.0.1:{self.port};"
        if listen not in text:
            raise RuntimeError(f"no '{listen}' in {site}")
        site.write_text(text.replace(listen, f"listen 127.0.0.1:{self.port} reuseport;", 1))
        conf = prefix / "nginx.conf"
        conf.write_text("".join("worker_processes 2;\n" if line.startswith("worker_processes ")
                                else line for line in conf.read_text().splitlines(True)))
        self.spawn("nginx", [NGINX, "-p", str(prefix), "-c", str(conf), "-e",
                             str(prefix / "error.log"), "-g", "daemon off;"])
        for _ in range(200):
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                c.request("GET", "/api/user")
                if c.getresponse().status == 403:
                    break
            except OSError:
                pass
            time.sleep(0.05)
        else:
            raise RuntimeError("the stack does not answer")
        return self

    def rt_pid(self):
        return self.procs["realtime"].pid

    def stop(self):
        for name in ["nginx"] + [n for n in self.procs if n != "nginx"]:
            p = self.procs.pop(name, None)
            if not p or p.poll() is not None:
                continue
            p.terminate()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if self.keep:
            say(f"logs and database kept in {self.dir}")
        else:
            shutil.rmtree(self.dir, ignore_errors=True)


# --- data -------------------------------------------------------------------

class Data:
    """Users registered over the API and direct SQL writes in the API's
    shapes (see the module's docstring)."""

    def __init__(self, stack):
        self.stack = stack
        self.http = Http(stack.port)
        self.users = []  # (id, name, token)
        self.tag = "%x" % (int(time.time()) & 0xFFFFFF)

    def register(self, n):
        """n more users, each with the session of its registration."""
        first = len(self.users)
        names = [f"c{first + i}_{self.tag}" for i in range(n)]

        def one(name):
            data, token = self.http.call("POST", "/user/register",
                                         body={"user_name": name, "password": PASSWORD})
            return data["id"], name, token

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            self.users += list(pool.map(one, names))
        return list(range(first, first + n))

    def befriend(self, a, b):
        """a and b become friends over the API; their private chat's id."""
        (ida, _, toka), (idb, _, tokb) = self.users[a], self.users[b]
        self.http.call("POST", "/friend/invite", toka, {"id": idb, "comment": "", "source": "search"})
        self.http.call("POST", "/friend/invite", tokb, {"id": ida, "comment": "", "source": "search"})
        chats, _ = self.http.call("GET", "/chat", toka)
        for rel in chats:
            chat = rel["chat"]
            if chat["chat_name"] == "" and any(m["id"] == idb for m in chat["chat_members"]):
                return chat["chat_id"]
        raise RuntimeError(f"no private chat between users {ida} and {idb}")

    def users_file(self, path, idxs):
        """A users.txt for nova-loadgen: "index user_id name token"."""
        with open(path, "w") as f:
            for k, i in enumerate(idxs):
                uid, name, tok = self.users[i]
                f.write(f"{k} {uid} {name} {tok}\n")

    def sql(self):
        con = sqlite3.connect(str(self.stack.db), timeout=60, isolation_level=None)
        con.execute("PRAGMA foreign_keys=ON")
        return con

    def checkpoint(self):
        """Fold the WAL into the database after a fill: a fill of a million
        rows leaves a WAL of gigabytes, whose checkpoint (nova-realtime's
        checkpoint thread runs one every second) would otherwise land in a
        later measurement, as CPU of the daemon and I/O."""
        con = self.sql()
        try:
            busy, _, _ = con.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            if busy:
                con.execute("PRAGMA wal_checkpoint(PASSIVE)")
        finally:
            con.close()

    def add_messages(self, con, chat_id, senders, n, text):
        """n messages in chat_id, sent in turn by senders (user ids), each
        sender's read mark moved to its newest message as send_message does.
        In the caller's transaction."""
        t0 = time.time()
        last = {}
        rows = ((chat_id, senders[i % len(senders)], f"{text} {i}", t0 + i * 1e-4)
                for i in range(n))
        con.executemany("INSERT INTO messages (chat_id, sender_id, content, send_time) "
                        "VALUES (?, ?, ?, ?)", rows)
        for uid in senders:
            (mid,) = con.execute("SELECT max(id) FROM messages WHERE chat_id = ? AND sender_id = ?",
                                 (chat_id, uid)).fetchone()
            last[uid] = mid
            con.execute("UPDATE chat_relations SET last_read_id = max(last_read_id, ?) "
                        "WHERE chat_id = ? AND user_id = ?", (mid, chat_id, uid))
        self.recount(con, chat_id)
        return last

    @staticmethod
    def recount(con, chat_id):
        """The chat's message count and its members' read counts (schema
        004) after rows were written behind the domain's back."""
        con.execute("UPDATE chats SET message_count = (SELECT count(*) FROM messages "
                    "WHERE chat_id = ?1) WHERE id = ?1", (chat_id,))
        con.execute("UPDATE chat_relations SET read_count = (SELECT count(*) FROM messages m "
                    "WHERE m.chat_id = ?1 AND m.id <= chat_relations.last_read_id) "
                    "WHERE chat_id = ?1", (chat_id,))

    def add_group(self, con, name, member_idxs):
        """A group made as chat_create_group makes it: owner first."""
        ids = [self.users[i][0] for i in member_idxs]
        now = time.time()
        (chat_id,) = con.execute("INSERT INTO chats (name, owner_id, created_at) VALUES (?, ?, ?) "
                                 "RETURNING id", (name, ids[0], now)).fetchone()
        con.executemany("INSERT INTO chat_members (chat_id, user_id, joined_at) VALUES (?, ?, ?)",
                        ((chat_id, uid, now) for uid in ids))
        con.executemany("INSERT INTO chat_relations (chat_id, user_id, last_read_id) VALUES (?, ?, 0)",
                        ((chat_id, uid) for uid in ids))
        names = [self.users[i][1] for i in member_idxs]
        text = f"Group {name} created by {names[0]} with " + ", ".join(names)
        con.execute("INSERT INTO messages (chat_id, sender_id, content, send_time) VALUES (?, 1, ?, ?)",
                    (chat_id, text, now))
        self.recount(con, chat_id)
        return chat_id

    def check(self):
        r = self.stack.admin("check")
        if r.returncode:
            raise RuntimeError("nova-admin check fails after the fills:\n" + r.stdout + r.stderr)


def timed_get(port, path, token, n):
    """n GETs over one keep-alive connection: the median and p90 in ms, and
    the last body."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    hdr = {"Cookie": "sessionid=" + token}
    ms = []
    body = None
    for _ in range(n + 1):  # the first one warms the caches, not counted
        t = time.perf_counter()
        c.request("GET", path, headers=hdr)
        r = c.getresponse()
        body = r.read()
        dt = (time.perf_counter() - t) * 1000
        if r.status != 200:
            raise RuntimeError(f"GET {path}: {r.status} {body[:200]!r}")
        ms.append(dt)
    c.close()
    ms = sorted(ms[1:])
    return statistics.median(ms), ms[min(len(ms) - 1, int(len(ms) * 0.9))], json.loads(body)


def loadgen(stack, args, timeout=900):
    """Run nova-loadgen; its "key value" lines as a dict."""
    argv = [str(stack.build / "bench/nova-loadgen"), *map(str, args), "--port", str(stack.port)]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    with open(stack.dir / "loadgen.log", "a") as f:
        f.write(" ".join(argv) + "\n" + r.stderr)
    if r.returncode:
        raise RuntimeError("nova-loadgen failed: " + r.stderr[-1500:])
    out = {}
    for line in r.stdout.splitlines():
        k, _, v = line.partition(" ")
        out[k] = v
    return out


# --- output -----------------------------------------------------------------

def write_dat(out, name, header, rows, notes=()):
    with open(out / f"{name}.dat", "w") as f:
        for n in notes:
            f.write(f"# {n}\n")
        f.write("# " + " ".join(header) + "\n")
        for r in rows:
            f.write(" ".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in r) + "\n")


def plot(out, name, title, xlabel, ylabel, series, logy=True, linear_ref=None):
    """series: (column, title) of NAME.dat against column 1, log x.
    linear_ref: a column whose last point a dashed line of slope 1 goes
    through: where the curve runs parallel to it, the cost grows linearly;
    below it on the left, a fixed cost dominates there."""
    def q(text):  # a gnuplot string
        return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"') + '"'

    dat = out / f"{name}.dat"  # named relative to OUT, where gnuplot runs
    lines = ["set terminal pngcairo size 900,560 noenhanced font ',11'",
             f"set output {q(name + '.png')}",
             f"set title {q(title)}", f"set xlabel {q(xlabel)}", f"set ylabel {q(ylabel)}",
             "set logscale x", "set grid", "set key top left", "set format x '%.0s%c'"]
    if logy:
        lines.append("set logscale y")
    plots = [f"{q(dat.name)} using 1:{col} with linespoints lw 2 pt 7 title {q(t)}" for col, t in series]
    if linear_ref:
        with open(dat) as f:
            last = [line.split() for line in f if not line.startswith("#")][-1]
        x1, y1 = float(last[0]), float(last[linear_ref - 1])
        lines.append(f"x1 = {x1}; y1 = {y1}")
        plots.append("y1 * x / x1 with lines dt 2 lc rgb 'gray' title 'linear (slope 1)'")
    lines.append("plot " + ", \\\n     ".join(plots))
    gp = out / f"{name}.gp"
    gp.write_text("\n".join(lines) + "\n")
    if shutil.which("gnuplot"):
        subprocess.run(["gnuplot", gp.name], check=True, cwd=out)
    else:
        say(f"gnuplot is missing: {name}.png not drawn (Debian: apt-get install gnuplot-nox)")


# --- the curves -----------------------------------------------------------------

def curve_history(d, out, sizes, repeat):
    """Page time vs chat length: one private chat per length, filled with
    SQL. A sends everything (A has read it all), B reads nothing, so B's
    unread count is the chat's length (the friendship's system message is
    unread for both members)."""
    rows = []
    for n in sizes:
        a, b = d.register(2)
        chat = d.befriend(a, b)
        con = d.sql()
        con.execute("BEGIN IMMEDIATE")
        d.add_messages(con, chat, [d.users[a][0]], n - 1, "history message")
        con.execute("COMMIT")
        d.checkpoint()
        ids = [r[0] for r in con.execute("SELECT id FROM messages WHERE chat_id = ? ORDER BY id",
                                         (chat,))]
        con.close()
        assert len(ids) == n, (len(ids), n)
        mid = ids[len(ids) // 2]
        tok_a, tok_b = d.users[a][2], d.users[b][2]
        reps = max(3, repeat if n < 100000 else repeat // 2)
        new50, new90, page = timed_get(d.stack.port, f"/api/chat/{chat}/messages?limit=50", tok_a, reps)
        assert page["ok"] and len(page["data"]) == min(50, n), len(page["data"])
        deep50, deep90, page = timed_get(d.stack.port, f"/api/chat/{chat}/messages?limit=50&before={mid}",
                                         tok_a, reps)
        assert len(page["data"]) == min(50, len(ids) // 2)
        unr50, unr90, rel = timed_get(d.stack.port, f"/api/chat/{chat}", tok_b, reps)
        assert rel["data"]["unread_count"] == n, rel["data"]["unread_count"]
        read50, _, rel = timed_get(d.stack.port, f"/api/chat/{chat}", tok_a, reps)
        assert rel["data"]["unread_count"] == 0
        rows.append((n, new50, new90, deep50, deep90, unr50, unr90, read50))
        say(f"history {n}: newest page {new50:.2f} ms, middle page {deep50:.2f} ms, "
            f"GET /chat/<id> with {n} unread {unr50:.2f} ms, all read {read50:.2f} ms")
    write_dat(out, "history", ["messages", "newest_p50_ms", "newest_p90_ms", "middle_p50_ms",
                               "middle_p90_ms", "unread_all_p50_ms", "unread_all_p90_ms",
                               "unread_none_p50_ms"], rows,
              ["GET /api/chat/<id>/messages?limit=50 (newest page; before=<the middle message>)",
               "and GET /api/chat/<id> as a member who has read nothing (unread = messages)",
               "and as the sender (unread 0); times in ms through nginx, one request at a time"])
    plot(out, "history", "History page and unread count vs messages in the chat",
         "messages in the chat", "ms per request (median)",
         [(2, "GET messages?limit=50, newest page"), (4, "GET messages?limit=50, middle page"),
          (6, "GET /api/chat/<id>, all unread"), (8, "GET /api/chat/<id>, all read")],
         linear_ref=6)


def curve_search(d, out, sizes, repeat, chats=10, others=40):
    """[ext] Search time vs messages in the database: a searcher in `chats`
    groups, which hold the first SEARCH_OWN messages of each size (then no
    more), and `others` groups of other users, which hold the rest: every
    message says "note <i> topic<i % 100> plan", so that "topic7" matches
    1 % of the messages, "plan" all of them, "zzqx" none. Relevance ranks
    every match in the searcher's chats (the chat tokens keep the others'
    out inside the index); newest stops after the page. One more searcher
    in more chats than NOVA_SEARCH_CHAT_TOKENS is filtered row by row over
    every match in the database."""
    me = d.register(1)[0]
    other = d.register(2)
    many = d.register(1)[0]  # in 510 chats: over the default 500 tokens
    con = d.sql()
    mine = [d.add_group(con, f"search-mine-{k}", [me] + other) for k in range(chats)]
    theirs = [d.add_group(con, f"search-theirs-{k}", other) for k in range(others)]
    for k in range(500):
        d.add_group(con, f"search-many-{k}", [many] + other[:1])
    con.close()
    tok = d.users[me][2]
    tok_many = d.users[many][2]
    senders = [d.users[i][0] for i in other]
    # the many-chats searcher also reads the searcher's chats
    con = d.sql()
    now = time.time()
    for c in mine:
        con.execute("INSERT INTO chat_members (chat_id, user_id, joined_at) VALUES (?, ?, ?)",
                    (c, d.users[many][0], now))
        con.execute("INSERT INTO chat_relations (chat_id, user_id, last_read_id) VALUES (?, ?, 0)",
                    (c, d.users[many][0]))
    con.close()
    have = 0
    rows = []
    for n in sizes:
        con = d.sql()
        con.execute("BEGIN IMMEDIATE")
        t0 = time.time()
        rowsql = ("INSERT INTO messages (chat_id, sender_id, content, send_time) "
                  "VALUES (?, ?, ?, ?)")
        batch = []
        for i in range(have, n):
            group = mine[i % chats] if i < SEARCH_OWN else theirs[i % others]
            batch.append((group, senders[i % 2], f"note {i} topic{i % 100} plan", t0 + i * 1e-5))
            if len(batch) == 10000:
                con.executemany(rowsql, batch)
                batch = []
        con.executemany(rowsql, batch)
        for c in mine + theirs:
            d.recount(con, c)
        con.execute("COMMIT")
        con.close()
        d.checkpoint()
        have = n
        own = min(n, SEARCH_OWN)
        reps = max(3, repeat if n < 100000 else repeat // 2)
        res = []
        for q, sort, want in [("topic7", "relevance", own // 100), ("plan", "relevance", own),
                              ("plan", "newest", own), ("zzqx", "relevance", 0)]:
            p50, _, page = timed_get(d.stack.port, f"/api/search?q={q}&sort={sort}&limit=20",
                                     tok, reps)
            got = len(page["data"]["hits"])
            assert got == min(20, want), (q, got, want)
            res.append(p50)
        many50, _, page = timed_get(d.stack.port, "/api/search?q=topic7&limit=20", tok_many, reps)
        assert len(page["data"]["hits"]) == min(20, own // 100), len(page["data"]["hits"])
        rows.append((n, *res, many50))
        say(f"search over {n} messages ({own} in the searcher's chats): topic7 {res[0]:.2f} ms, "
            f"plan {res[1]:.2f} ms, plan newest {res[2]:.2f} ms, no match {res[3]:.2f} ms, "
            f"topic7 by a searcher in 510 chats {many50:.2f} ms")
    write_dat(out, "search", ["messages", "rare_p50_ms", "every_p50_ms", "every_newest_p50_ms",
                              "none_p50_ms", "rare_many_chats_p50_ms"], rows,
              [f"GET /api/search?q=...&limit=20 through nginx, one request at a time; the searcher's "
               f"{chats} chats hold min(messages, {SEARCH_OWN}), other users' chats the rest",
               "rare: topic7 (1 % of the messages); every: plan (all of them); none: zzqx;",
               "many chats: a searcher in 510 chats (over NOVA_SEARCH_CHAT_TOKENS: row by row)"])
    plot(out, "search", "Search vs messages in the database",
         "messages in the database", "ms per request (median)",
         [(2, "q=topic7 (1 %), relevance"), (3, "q=plan (every message), relevance"),
          (4, "q=plan, newest"), (5, "no match"), (6, "q=topic7, searcher in 510 chats (row by row)")])


def curve_chats(d, out, sizes, repeat, per_chat=20, read=10):
    """GET /api/chat vs chats of the user: K groups of three (the user owns
    them), each with per_chat messages from the two others; the user has
    read the first `read`, so every unread count is per_chat - read."""
    rows = []
    for k in sizes:
        c, x, y = d.register(3)
        con = d.sql()
        con.execute("BEGIN IMMEDIATE")
        for j in range(k):
            chat = d.add_group(con, f"list {j}", [c, x, y])
            d.add_messages(con, chat, [d.users[x][0], d.users[y][0]], per_chat, "list message")
            (mid,) = con.execute("SELECT id FROM messages WHERE chat_id = ? ORDER BY id LIMIT 1 OFFSET ?",
                                 (chat, read)).fetchone()  # read the system message and `read` more
            con.execute("UPDATE chat_relations SET last_read_id = ? WHERE chat_id = ? AND user_id = ?",
                        (mid, chat, d.users[c][0]))
            d.recount(con, chat)
        con.execute("COMMIT")
        con.close()
        d.checkpoint()
        p50, p90, body = timed_get(d.stack.port, "/api/chat", d.users[c][2], repeat)
        assert len(body["data"]) == k
        assert all(rel["unread_count"] == per_chat - read for rel in body["data"]), body["data"][0]
        rows.append((k, p50, p90, p50 / k * 1000.0, len(json.dumps(body)) / k))
        say(f"chats {k}: GET /api/chat {p50:.2f} ms, {p50 / k * 1000:.0f} us per chat")
    write_dat(out, "chats", ["chats", "p50_ms", "p90_ms", "us_per_chat", "bytes_per_chat"], rows,
              [f"GET /api/chat of a user in K three-member groups, {per_chat} messages each, "
               f"{per_chat - read} of them unread; ms through nginx, one request at a time"])
    plot(out, "chats", "Chat list (GET /api/chat, with unread counts) vs chats of the user",
         "chats of the user", "ms per request (median)", [(2, "GET /api/chat, p50"), (3, "p90")],
         linear_ref=2)


def own_client_echo(d, chat, members, messages, gap):
    """The sender on a client of its own (websocket-client) while
    nova-loadgen holds the other members' sockets: send_message until the
    sender's own new_message, in ms, per message. Apart from the load
    generator, whose one loop reads every member's socket, this is what
    the daemon makes the sender wait."""
    import websocket  # Debian: python3-websocket

    uf = d.stack.dir / "fanout-others.txt"
    d.users_file(uf, members[1:])
    argv = [str(d.stack.build / "bench/nova-loadgen"), "idle", "--users", str(uf),
            "--sockets", str(len(members) - 1), "--rt-pid", str(d.stack.rt_pid()), "--settle", "0.5",
            "--inflight", "128", "--hold", "3600", "--prefix", "h", "--port", str(d.stack.port)]
    with open(d.stack.dir / "loadgen.log", "a") as log:
        holder = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=log, text=True)
    try:
        for line in holder.stdout:
            if line.startswith("h.holding"):
                break
        else:
            raise RuntimeError("nova-loadgen idle did not open the members' sockets")
        cookie = "sessionid=" + d.users[members[0]][2]
        ws = websocket.create_connection(f"ws://127.0.0.1:{d.stack.port}/ws/", cookie=cookie,
                                         suppress_origin=True, timeout=60)
        # A second socket of the sender, straight on nova-realtime's own
        # socket (no nginx): when the daemon wrote the sender's copy.
        raw = socket.socket(socket.AF_UNIX)
        raw.connect(str(d.stack.rt_sock))
        direct = websocket.create_connection("ws://localhost/ws/", socket=raw, cookie=cookie,
                                             suppress_origin=True, timeout=60)
        seen = {}

        def watch():
            try:
                while True:
                    text = direct.recv()
                    if not text:  # closed: the measurement is over
                        return
                    m = json.loads(text)
                    if m.get("action") == "new_message":
                        seen[m["data"]["message"]["message"]] = time.perf_counter()
            except (websocket.WebSocketException, OSError):
                pass

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        time.sleep(0.3)
        ms, ms_direct = [], []
        for rid in range(1, messages + 1):
            text = f"own client {rid}"
            t = time.perf_counter()
            ws.send(json.dumps({"action": "send_message", "request_id": rid,
                                "data": {"chat_id": chat, "content": text}}))
            while True:
                m = json.loads(ws.recv())
                if m.get("request_id") == rid and m.get("action") in ("new_message", "error"):
                    break
            if m["action"] == "error":
                raise RuntimeError(f"send_message: {m}")
            ms.append((time.perf_counter() - t) * 1000)
            time.sleep(gap)
            if text not in seen:
                raise RuntimeError("the sender's direct socket did not get its message")
            ms_direct.append((seen[text] - t) * 1000)
        ws.close()
        direct.close()
        watcher.join(5)
        return statistics.median(ms), statistics.median(ms_direct)
    finally:
        holder.terminate()
        holder.wait(30)


def curve_fanout(d, out, sizes, pool, messages):
    """One message to a group of G members, one socket per member (the
    sender is the owner)."""
    rows = []
    for g in sizes:
        members = pool[:g]
        con = d.sql()
        con.execute("BEGIN IMMEDIATE")
        chat = d.add_group(con, f"fanout {g}", members)
        con.execute("COMMIT")
        con.close()
        d.checkpoint()
        uf = d.stack.dir / f"fanout-{g}.txt"
        d.users_file(uf, members)
        # The sender alone online: what the send itself costs (the
        # transaction, the outbox row with g recipients), no sockets to fill.
        alone = loadgen(d.stack, ["fanout", "--users", uf, "--sockets", 1, "--chat", chat,
                                  "--messages", messages, "--gap", 0.2, "--prefix", "a"])
        if int(alone["a.messages"]) < messages:
            raise RuntimeError(f"fanout {g}, sender alone: {alone}")
        gap = 0.5 + g / 2000.0  # the messages_read that follows reaches everyone too
        r = loadgen(d.stack, ["fanout", "--users", uf, "--sockets", g, "--chat", chat,
                              "--messages", messages, "--gap", gap, "--inflight", 128,
                              "--prefix", "f"], timeout=600 + g)
        if int(r["f.messages"]) < messages or int(r.get("f.errors", 0)):
            raise RuntimeError(f"fanout {g}: {r}")
        own, own_direct = own_client_echo(d, chat, members, messages, gap)
        # Every member has read the chat (as if each had sent messages_read):
        # the sender alone again.
        con = d.sql()
        con.execute("BEGIN IMMEDIATE")
        con.execute("UPDATE chat_relations SET last_read_id = (SELECT max(id) FROM messages "
                    "WHERE chat_id = ?1) WHERE chat_id = ?1", (chat,))
        d.recount(con, chat)
        con.execute("COMMIT")
        con.close()
        read = loadgen(d.stack, ["fanout", "--users", uf, "--sockets", 1, "--chat", chat,
                                 "--messages", messages, "--gap", 0.2, "--prefix", "a"])
        if int(read["a.messages"]) < messages:
            raise RuntimeError(f"fanout {g}, sender alone, all read: {read}")
        last = float(r["f.p50_ms"])
        rows.append((g, float(r["f.ack_p50_ms"]), float(r["f.first_p50_ms"]), last,
                     float(r["f.p90_ms"]), last / g * 1000.0, float(alone["a.p50_ms"]),
                     float(read["a.p50_ms"]), own, own_direct))
        say(f"fanout {g}: own echo alone {alone['a.p50_ms']} ms ({read['a.p50_ms']} ms once all "
            f"have read), with everyone {r['f.ack_p50_ms']} ms (own client {own:.3f} ms, without nginx {own_direct:.3f} ms), first {r['f.first_p50_ms']} ms, "
            f"last {last:.2f} ms")
    write_dat(out, "fanout", ["members", "send_ack_p50_ms", "first_p50_ms", "last_p50_ms",
                              "last_p90_ms", "last_us_per_member", "send_ack_alone_p50_ms",
                              "send_ack_alone_all_read_p50_ms", "send_ack_own_client_p50_ms",
                              "sender_copy_direct_p50_ms"], rows,
              [f"send_message to a group of N members with a socket each, {messages} messages:",
               "until the sender's own new_message, the first and the last member's;",
               "send_ack_alone: until the sender's own new_message with no other member online;",
               "send_ack_alone_all_read: the same once every member has read the chat;",
               "send_ack_own_client: every member online, the sender on a client of its own;",
               "sender_copy_direct: the same send, until a second socket of the sender's,",
               "straight on nova-realtime's socket (no nginx), has its copy"])
    plot(out, "fanout", "Send and fan-out vs group size", "members (one socket each)",
         "ms from send_message (median)",
         [(7, "send -> sender's own new_message, sender alone online"),
          (8, "the same once every member has read the chat"),
          (2, "send -> sender's own new_message, every member online"),
          (9, "the same, the sender on a client of its own"),
          (10, "the same, the sender's copy on a socket without nginx"), (3, "send -> first member"),
          (4, "send -> last member")], linear_ref=4)


def outbox_high(con):
    row = con.execute("SELECT seq FROM sqlite_sequence WHERE name = 'outbox'").fetchone()
    return row[0] if row else 0


def wait_delivered(d, high, timeout=600):
    """Until nova-realtime's live position has passed the fill (it reads
    every new row once), so the replay is measured alone."""
    end = time.time() + timeout
    con = d.sql()
    try:
        while time.time() < end:
            row = con.execute("SELECT max(delivered_id) FROM realtime_daemons").fetchone()
            if row[0] is not None and row[0] >= high:
                time.sleep(0.5)
                return
            time.sleep(0.2)
    finally:
        con.close()
    raise RuntimeError(f"nova-realtime did not reach outbox id {high}")


def curve_resume(d, out, retained, missed, repeat, pool):
    """A user U resumes with ?last_event_id=N: (1) after R events of which
    OWN_EVENTS are U's (spread evenly), the rest for other users; (2)
    after M events all U's."""
    u, v = d.register(2)
    chat = d.befriend(u, v)
    import websocket  # Debian: python3-websocket

    ws = websocket.create_connection(f"ws://127.0.0.1:{d.stack.port}/ws/",
                                     cookie="sessionid=" + d.users[v][2], suppress_origin=True,
                                     timeout=30)
    ws.send(json.dumps({"action": "send_message", "request_id": 7,
                        "data": {"chat_id": chat, "content": "a template for the resume curves"}}))
    while json.loads(ws.recv()).get("request_id") != 7:
        pass
    ws.close()
    con = d.sql()
    action, data, recipients = con.execute(
        "SELECT action, data, recipients FROM outbox WHERE action = 'new_message' "
        "ORDER BY id DESC LIMIT 1").fetchone()
    con.close()
    assert sorted(json.loads(recipients)) == sorted([d.users[u][0], d.users[v][0]])
    own = json.dumps(sorted([d.users[u][0], d.users[v][0]]))
    others = [json.dumps([d.users[i][0], d.users[j][0]]) for i, j in zip(pool[0::2], pool[1::2])]
    uf = d.stack.dir / "resume-users.txt"
    d.users_file(uf, [u])

    def fill(total, mine):
        """total events after the current end of the outbox, `mine` of them
        U's, spread evenly: (N, id of U's last event)."""
        con = d.sql()
        con.execute("BEGIN IMMEDIATE")
        n0 = outbox_high(con)
        step = total // mine if mine else 0
        now = time.time()
        rows = ((now, action, data, own if mine and i % step == step - 1 and i // step < mine
                 else others[i % len(others)]) for i in range(total))
        con.executemany("INSERT INTO outbox (created_at, action, data, recipients) VALUES (?, ?, ?, ?)",
                        rows)
        (last,) = con.execute("SELECT max(id) FROM outbox WHERE id > ? AND recipients = ?",
                              (n0, own)).fetchone()
        high = outbox_high(con)
        con.execute("COMMIT")
        con.close()
        wait_delivered(d, high)
        d.checkpoint()
        return n0, last

    def replay(after, until, expect):
        ms = []
        for _ in range(repeat):
            r = loadgen(d.stack, ["replay", "--users", uf, "--user", 0, "--after", after,
                                  "--until", until, "--prefix", "r"])
            if int(r["r.events"]) != expect or int(r["r.errors"]):
                raise RuntimeError(f"replay after {after}: {r}, expected {expect} events")
            ms.append(float(r["r.total_ms"]))
        return statistics.median(ms)

    rows = []
    for total in retained:
        n0, last = fill(total, OWN_EVENTS)
        t = replay(n0, last, OWN_EVENTS)
        rows.append((total, t, total / t))
        say(f"resume: {total} events retained after N, {OWN_EVENTS} the user's: {t:.1f} ms")
    write_dat(out, "resume_retained", ["events_after_N", "total_ms", "events_scanned_per_ms"], rows,
              [f"connect with ?last_event_id=N until the last of the user's {OWN_EVENTS} events",
               "among R events after N (the others for other users); median of "
               f"{repeat} connects"])
    plot(out, "resume_retained", f"Resume of {OWN_EVENTS} events vs events in the outbox after N",
         "events in the outbox after N (all users)", "ms, connect -> last missed event (median)",
         [(2, f"resume, {OWN_EVENTS} of them the user's")], linear_ref=2)
    rows = []
    for m in missed:
        n0, last = fill(m, m)
        t = replay(n0, last, m)
        rows.append((m, t, m / t * 1000.0))
        say(f"resume: {m} events missed: {t:.1f} ms")
    write_dat(out, "resume_missed", ["events_missed", "total_ms", "events_per_s"], rows,
              [f"connect with ?last_event_id=N until the last of M events, all the user's; "
               f"median of {repeat} connects"])
    plot(out, "resume_missed", "Resume vs events missed", "events missed (all the user's)",
         "ms, connect -> last missed event (median)", [(2, "resume")], linear_ref=2)


def curve_delivery(d, out, sizes, pool, duration, hard):
    """Delivery latency at RATE msg/s (16 senders in private chats) with S
    sockets open, one per user (the senders' among them)."""
    rows, notes = [], []
    pairs = d.stack.dir / "pairs.txt"
    with open(pairs, "w") as f:
        for k in range(PAIRS):
            a, b = 1 + 2 * k, 2 + 2 * k
            f.write(f"{d.befriend(pool[a], pool[b])} {a} {b}\n")
    for s in sizes:
        if s < 2 * PAIRS + 1:
            raise SystemExit(f"curves: --sockets {s}: the {PAIRS} pairs need {2 * PAIRS + 1} sockets")
        # nova-loadgen holds s sockets in one process and each of nginx's
        # two workers about s descriptors (two per proxied socket).
        if s + 1000 > hard or s > len(pool):
            notes.append(f"{s} sockets do not fit: RLIMIT_NOFILE hard limit {hard} per process "
                         f"(the load generator holds every socket, nginx two descriptors each)"
                         if s + 1000 > hard else f"{s} sockets: only {len(pool)} users made")
            say(notes[-1])
            continue
        uf = d.stack.dir / f"delivery-{s}.txt"
        d.users_file(uf, pool[:s])
        r = loadgen(d.stack, ["idle", "--users", uf, "--sockets", s, "--rt-pid", d.stack.rt_pid(),
                              "--settle", 2, "--inflight", 128, "--pairs", pairs, "--npairs", PAIRS,
                              "--rate", RATE, "--duration", duration, "--hold", 0, "--prefix", "i"],
                    timeout=900)
        if int(r.get("i_paced.lost", 0)) or int(r.get("i_paced.errors", 0)):
            raise RuntimeError(f"delivery {s}: {r}")
        rows.append((s, float(r["i_paced.p50_ms"]), float(r["i_paced.p99_ms"]),
                     float(r["i.idle_cpu_pct"])))
        say(f"delivery with {s} sockets: p50 {r['i_paced.p50_ms']} ms, p99 {r['i_paced.p99_ms']} ms")
    write_dat(out, "delivery", ["sockets", "p50_ms", "p99_ms", "rt_idle_cpu_pct"],
              rows, [f"send_message at {RATE} msg/s from {PAIRS} senders in private chats, "
                     f"{duration}s, with S sockets open (one per user)"] + notes)
    plot(out, "delivery", f"Delivery latency at {RATE} msg/s vs sockets open", "sockets open",
         "ms, send -> receipt", [(2, "p50"), (3, "p99")])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=str(ROOT / "build"))
    ap.add_argument("--out", required=True)
    ap.add_argument("--quick", action="store_true", help="tiny sizes, to try the script")
    ap.add_argument("--only", default=",".join(CURVES), help="curves to run: " + ",".join(CURVES))
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    for k in FULL:
        ap.add_argument(f"--{k}", type=csv_ints, help=f"sizes (default {','.join(map(str, FULL[k]))})")
    a = ap.parse_args()
    sizes = dict(QUICK if a.quick else FULL)
    for k in FULL:
        if getattr(a, k):
            sizes[k] = getattr(a, k)
    only = set(a.only.split(","))
    if only - set(CURVES):
        sys.exit(f"curves: unknown curve(s) {','.join(only - set(CURVES))}")
    repeat = 3 if a.quick else 15
    out = pathlib.Path(a.out).resolve()
    out.mkdir(parents=True, exist_ok=True)

    # 10 000 sockets: take every descriptor the hard limit allows (the
    # children inherit it), as scripts/bench does.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = 1048576
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    need = 2 * PAIRS + 1
    if "fanout" in only:
        need = max(need, max(sizes["groups"]))
    if "delivery" in only:
        need = max(need, max(s for s in sizes["sockets"] if s + 1000 <= hard))
    stack = Stack(a.build, a.keep)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(130))
    try:
        stack.start()
        d = Data(stack)
        t = time.time()
        pool = d.register(need)
        say(f"{need} users registered in {time.time() - t:.1f}s")
        if "history" in only:
            curve_history(d, out, sizes["history"], repeat)
        if "chats" in only:
            curve_chats(d, out, sizes["chats"], repeat)
        if "fanout" in only:
            curve_fanout(d, out, sizes["groups"], pool, 3 if a.quick else 9)
        if "delivery" in only:
            curve_delivery(d, out, sizes["sockets"], pool, 3 if a.quick else 8, hard)
        if "search" in only:
            curve_search(d, out, sizes["search"], repeat)
        if "resume" in only:  # last: the biggest fill
            curve_resume(d, out, sizes["retained"], sizes["missed"], 3 if a.quick else 5, pool)
        d.check()
        say(f"nova-admin check passes; data and charts in {out}")
    except BaseException:
        stack.keep = True
        raise
    finally:
        stack.stop()


if __name__ == "__main__":
    main()
