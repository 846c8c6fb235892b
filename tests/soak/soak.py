#!/usr/bin/python3
"""soak.py SECONDS - the load and fault soak behind scripts/soak.

Starts a real stack (nginx + nova-api with 4 workers + nova-realtime, on a
free loopback port with a temporary database, binaries from
NOVA_BUILD_DIR) with the harness of tests/integration, prepares users,
friendships and chats over the REST API, then for SECONDS runs at once:

  * wrk, 64 connections, a mix of reads and writes by 8 logged-in users
    (mix.lua), counting every answer by status;
  * churn.py: 2000 WebSockets (100 users x 20) that connect, ping, now and
    then send a message to their group, read, and disconnect (cleanly or by
    dropping the connection), over and over;
  * a sender posting a message every 50 ms to a group of 8 listeners, whose
    sockets disconnect every few seconds and resume with ?last_event_id;
  * a sampler reading VmRSS of every nova-api worker and of nova-realtime
    from /proc every few seconds.

Then it checks, and exits 1 when any check fails:
  * wrk saw no 5xx, no unexpected 4xx, no socket errors;
  * every listener received every event addressed to it exactly once, in
    order (compared with the outbox);
  * the sender's messages were all stored, none answered with an error;
  * the churn saw no refused handshake, failed connect, error packet or
    unexpected close;
  * no process died; the resident memory of each process is flat: the mean
    of the last third of the samples after warm-up (20% of the run, at
    least 10 s) exceeds the mean of the first third by at most
    max(2.5 MiB, 10%) (each SQLite connection's page cache, 2 MB, may
    still be filling as the database grows);
  * every ping of the churning sockets and of a probe socket is answered
    (their latencies are printed, not judged: this is a shared machine);
  * the database passes integrity_check and the domain audit of
    tests/integration/test_faults.py.
"""

import asyncio
import collections
import json
import os
import pathlib
import random
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT / "tests/integration"))
sys.path.insert(0, str(HERE))
os.environ.setdefault("NOVA_BUILD_DIR", str(ROOT / "build"))

from conftest import Stack  # noqa: E402
from test_faults import check_invariants, children  # noqa: E402
from wsmini import WS  # noqa: E402

WORKERS = 4
WRK_USERS = 8
WRK_CONNECTIONS = 64
CHURN_USERS, CHURN_PER_USER, CHURN_GROUP, CHURN_PROCS = 100, 20, 5, 2
LISTENERS = 8
SEND_INTERVAL = 0.05
SAMPLE_EVERY = 2.0
RSS_TOLERANCE_KB, RSS_TOLERANCE_FRACTION = 2560, 0.10


def log(msg):
    print(f"[soak {time.strftime('%H:%M:%S')}] {msg}", flush=True)


# -- setup over REST --------------------------------------------------------------


def befriend(a, b):
    a.ok("POST", "/friend/invite", {"id": b.user["id"], "comment": "", "source": "search"})
    inv = [i for i in b.ok("GET", "/friend/invitation") if i["sender"]["id"] == a.user["id"]]
    b.ok("POST", f"/friend/invitation/{inv[0]['id']}")


def group(owner, members, name):
    for m in members:
        befriend(owner, m)
    return owner.ok("POST", "/chat/new",
                    {"chat_name": name, "chat_members": [m.user["id"] for m in members]})["chat_id"]


def register(st, prefix):
    c = st.client()
    c.register(f"soak{prefix}{random.randrange(16**8):08x}")
    return c


def prepare(st):
    wrk = [register(st, "w") for _ in range(WRK_USERS)]
    users = []
    # A ring of friendships (i, i+1) and a group per user with its two
    # neighbours, holding 30 messages (sent over a socket).
    for i, u in enumerate(wrk):
        befriend(u, wrk[(i + 1) % len(wrk)])
    chats = []
    for i, u in enumerate(wrk):
        nb = [wrk[(i + 1) % len(wrk)], wrk[(i - 1) % len(wrk)]]
        chats.append(u.ok("POST", "/chat/new", {"chat_name": f"wrk {i}",
                                                "chat_members": [m.user["id"] for m in nb]})["chat_id"])
    for i, u in enumerate(wrk):
        s = u.socket()
        for k in range(30):
            s.request("send_message", {"chat_id": chats[i], "content": f"history {k}"})
        s.ping_barrier()
        s.close()
        users.append({"cookie": f"sessionid={u.token}", "chat": chats[i],
                      "friend": wrk[(i + 1) % len(wrk)].user["id"]})

    sender = register(st, "s")
    listeners = [register(st, "l") for _ in range(LISTENERS)]
    listen_chat = group(sender, listeners, "listened")

    churn = [register(st, "c") for _ in range(CHURN_USERS)]
    slots = []
    for g in range(0, CHURN_USERS, CHURN_GROUP):
        members = churn[g:g + CHURN_GROUP]
        chat = group(members[0], members[1:], f"churn {g // CHURN_GROUP}")
        for m in members:
            slots += [{"token": m.token, "chat_id": chat}] * CHURN_PER_USER
    return users, sender, listeners, listen_chat, slots


# -- memory -------------------------------------------------------------------------


def rss_kb(pid):
    try:
        for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


class Sampler(threading.Thread):
    """VmRSS of each nova-api worker and of nova-realtime every
    SAMPLE_EVERY seconds; the sockets nova-realtime reports holding
    (realtime_daemons, updated every second) every half second."""

    def __init__(self, st):
        super().__init__(daemon=True)
        self.st = st
        self.samples = []  # (t, {label: kb}, sockets)
        self.sockets = []  # (t, None, sockets)
        self.stop = threading.Event()
        self.t0 = time.time()

    def run(self):
        next_rss = 0.0
        while not self.stop.is_set():
            now = time.time() - self.t0
            try:
                sockets = self.st.sql("SELECT sum(sockets) FROM realtime_daemons")[0][0]
            except Exception:  # noqa: BLE001 - a busy database only costs a sample
                sockets = None
            if sockets is not None:
                self.sockets.append((now, None, sockets))
            if now >= next_rss:
                next_rss += SAMPLE_EVERY
                procs = {f"api-worker[{p}]": p for p in sorted(children(self.st.procs["api"].pid))}
                procs["realtime"] = self.st.procs["realtime"].pid
                self.samples.append((now, {label: rss_kb(pid) for label, pid in procs.items()}, sockets))
            self.stop.wait(0.5)


def memory_verdict(samples, warmup):
    """[(label, first_kb, last_kb, growth_kb, ok)] over the samples after
    warm-up, comparing the first and the last third."""
    after = [s for s in samples if s[0] >= warmup]
    labels = sorted({k for _, row, _ in samples for k in row})
    out = []
    for label in labels:
        series = [row.get(label) for _, row, _ in after]
        if len(series) < 6 or any(v is None for v in series):
            out.append((label, None, None, None, False))
            continue
        third = len(series) // 3
        first, last = statistics.mean(series[:third]), statistics.mean(series[-third:])
        growth = last - first
        ok = growth <= max(RSS_TOLERANCE_KB, RSS_TOLERANCE_FRACTION * first)
        out.append((label, first, last, growth, ok))
    return out


# -- sender and listeners ---------------------------------------------------------------


class Listener:
    def __init__(self, client, start_id):
        self.c = client
        self.uid = client.user["id"]
        self.start = start_id
        self.last = start_id
        self.ids = []
        self.problems = []
        self.reconnects = 0
        self.target = None

    async def run(self, host, port, deadline, rng):
        final_deadline = None
        while True:
            ws = await WS.connect(host, port, f"/ws/?last_event_id={self.last}", self.c.token)
            hold_until = time.time() + rng.uniform(2, 6)
            while True:
                now = time.time()
                if now >= deadline and self.target is not None:
                    final_deadline = final_deadline or now + 60
                    if self.last >= self.target or now >= final_deadline:
                        await ws.close()
                        return
                wait = 0.2 if now >= deadline else max(0.01, min(hold_until, deadline) - now)
                try:
                    raw = await asyncio.wait_for(ws.recv(), wait)
                except asyncio.TimeoutError:
                    if now < deadline and time.time() >= hold_until:
                        break
                    continue
                if raw is None:
                    self.problems.append(f"closed by the server ({ws.close_code})")
                    break
                msg = json.loads(raw)
                if "event_id" not in msg:
                    self.problems.append(f"packet without event_id: {str(msg)[:200]}")
                    continue
                eid = msg["event_id"]
                if eid <= self.last:
                    self.problems.append(f"event {eid} after {self.last}: duplicate or out of order")
                self.ids.append(eid)
                self.last = max(self.last, eid)
            if time.time() < deadline:
                self.reconnects += 1
                await ws.close(clean=rng.random() < 0.5)
                await asyncio.sleep(rng.uniform(0, 0.5))


class Sender:
    def __init__(self, client, chat):
        self.c = client
        self.chat = chat
        self.sent = 0
        self.acked = set()
        self.errors = []

    async def run(self, host, port, deadline):
        ws = await WS.connect(host, port, "/ws/", self.c.token)

        async def reader():
            while True:
                raw = await ws.recv()
                if raw is None:
                    return
                msg = json.loads(raw)
                if msg["action"] == "error":
                    self.errors.append(msg)
                elif msg["action"] == "new_message" and msg["request_id"]:
                    self.acked.add(msg["request_id"])

        task = asyncio.create_task(reader())
        while time.time() < deadline:
            self.sent += 1
            ws.send_text(json.dumps({"action": "send_message", "request_id": self.sent,
                                     "data": {"chat_id": self.chat, "content": f"seq {self.sent}"}}))
            await asyncio.sleep(SEND_INTERVAL)
        end = time.time() + 60
        while len(self.acked) + len(self.errors) < self.sent and time.time() < end:
            await asyncio.sleep(0.1)
        await ws.close()
        task.cancel()


class Probe:
    """One more socket that pings every half second: the round trip
    through nginx and nova-realtime's event loop, from a client process
    that is not busy."""

    def __init__(self, client):
        self.c = client
        self.rtt_ms = []
        self.unanswered = 0

    async def run(self, host, port, deadline):
        ws = await WS.connect(host, port, "/ws/", self.c.token)
        rid = 0
        while time.time() < deadline:
            rid += 1
            t = time.perf_counter()
            ws.send_text(json.dumps({"action": "ping", "request_id": rid}))
            end = time.time() + 30
            while True:
                try:
                    raw = await asyncio.wait_for(ws.recv(), max(0.01, end - time.time()))
                except asyncio.TimeoutError:
                    self.unanswered += 1
                    break
                if raw is None:
                    self.unanswered += 1
                    return
                msg = json.loads(raw)
                if msg["action"] == "pong" and msg["request_id"] == rid:
                    self.rtt_ms.append((time.perf_counter() - t) * 1000)
                    break
            await asyncio.sleep(0.5)
        await ws.close()


def cpu_seconds(pid):
    try:
        fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except OSError:
        return None


def percentiles(values):
    v = sorted(values)
    if not v:
        return None
    return {"p50": round(v[len(v) // 2], 1), "p99": round(v[len(v) * 99 // 100], 1),
            "max": round(v[-1], 1)}


def expected_events(st, uid, after):
    rows = st.sql("SELECT id FROM outbox WHERE id > ? AND session_id IS NULL AND EXISTS "
                  "(SELECT 1 FROM json_each(recipients) WHERE value = ?) ORDER BY id", after, uid)
    return [r[0] for r in rows]


async def realtime_part(st, listeners, sender, probe, deadline):
    host, port = "127.0.0.1", st.port
    rng = random.Random(7)
    tasks = [asyncio.create_task(sender.run(host, port, deadline))]
    probe_task = asyncio.create_task(probe.run(host, port, deadline))
    tasks += [asyncio.create_task(lst.run(host, port, deadline, random.Random(rng.random())))
              for lst in listeners]
    await tasks[0]  # the sender finishes after its last ack
    for lst in listeners:
        lst.target = max(expected_events(st, lst.uid, lst.start) or [0])
    await asyncio.gather(*tasks[1:], probe_task)


# -- main -----------------------------------------------------------------------------------


def main():
    seconds = int(sys.argv[1]) if len(sys.argv) > 1 else 60
    failures = []
    st = Stack(env={"NOVA_LOG_LEVEL": "0", "NOVA_WS_MAX_PER_USER": "64"}, workers=WORKERS)
    log(f"stack in {st.dir} (build {os.environ['NOVA_BUILD_DIR']}), port {st.port}")
    st.start()
    keep = False
    try:
        t = time.time()
        users, sender_c, listener_cs, listen_chat, slots = prepare(st)
        probe = Probe(register(st, "p"))
        log(f"prepared {WRK_USERS} wrk users, {LISTENERS} listeners, {len(slots)} churn sockets "
            f"in {time.time() - t:.1f}s")

        conf = st.dir / "wrk_users.lua"
        conf.write_text("users = {\n" + "".join(
            f'  {{cookie = "{u["cookie"]}", chat = {u["chat"]}, friend = {u["friend"]}}},\n'
            for u in users) + "}\n")
        # The churn runs in CHURN_PROCS processes (a Python event loop per
        # core), each with its share of the slots.
        churn_confs = []
        for k in range(CHURN_PROCS):
            path = st.dir / f"churn{k}.json"
            path.write_text(json.dumps({"host": "127.0.0.1", "port": st.port, "duration": seconds,
                                        "hold": [3, 12], "send_prob": 0.1, "seed": k + 1,
                                        "ramp": min(5.0, seconds / 4), "slots": slots[k::CHURN_PROCS]}))
            churn_confs.append(path)

        start_id = st.sql("SELECT coalesce(max(id), 0) FROM outbox")[0][0]
        listeners = [Listener(c, start_id) for c in listener_cs]
        sender = Sender(sender_c, listen_chat)
        pids_before = sorted(children(st.procs["api"].pid))

        sampler = Sampler(st)
        sampler.start()
        deadline = time.time() + seconds
        churns = [subprocess.Popen([sys.executable, str(HERE / "churn.py"), str(path)],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                  for path in churn_confs]
        wrk = subprocess.Popen(["wrk", "-t2", f"-c{WRK_CONNECTIONS}", f"-d{seconds}s", "--timeout", "10s",
                                "-s", str(HERE / "mix.lua"), st.base, "--", str(conf)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        log(f"running for {seconds}s: wrk -c{WRK_CONNECTIONS}, {len(slots)} churning sockets, "
            f"{LISTENERS} listeners")
        cpu_pids = {f"api-worker[{p}]": p for p in pids_before}
        cpu_pids["realtime"] = st.procs["realtime"].pid
        cpu_pids["nginx"] = st.procs["nginx"].pid
        cpu_before = {k: cpu_seconds(p) for k, p in cpu_pids.items()}
        t_run = time.time()
        asyncio.run(realtime_part(st, listeners, sender, probe, deadline))
        wrk_out, wrk_err = wrk.communicate(timeout=seconds + 120)
        churn_results = [p.communicate(timeout=seconds + 120) + (p.returncode,) for p in churns]
        sampler.stop.set()
        sampler.join()
        # nginx's worker is its child; the master does nothing.
        nginx_workers = children(st.procs["nginx"].pid)
        cpu_after = {k: cpu_seconds(p) for k, p in cpu_pids.items()}
        cpu_used = {k: (cpu_after[k] - cpu_before[k]) if cpu_after[k] is not None and cpu_before[k] is not None
                    else None for k in cpu_pids}
        cpu_used["nginx"] = None if not nginx_workers else cpu_seconds(nginx_workers[0])
        elapsed = time.time() - t_run
        pids_after = sorted(children(st.procs["api"].pid))

        # -- wrk
        m = re.search(r"^SOAK_WRK (.*)$", wrk_out, re.M)
        if not m:
            failures.append(f"wrk gave no result (exit {wrk.returncode}): {wrk_out[-500:]} {wrk_err[-500:]}")
            w = None
        else:
            w = json.loads(m.group(1))
            statuses = {int(k): v for k, v in w["statuses"].items()}
            five = {k: v for k, v in statuses.items() if k >= 500}
            if five:
                failures.append(f"wrk: 5xx answers {five}; samples {w['samples']}")
            if w["unexpected_4xx"]:
                failures.append(f"wrk: {w['unexpected_4xx']} unexpected 4xx; samples {w['samples']}")
            if any(w["errors"].values()):
                failures.append(f"wrk: socket errors {w['errors']}")
            if not statuses.get(200):
                failures.append("wrk: no successful request")

        # -- churn
        c = collections.Counter()
        pong, lag, samples, all_open = [], [], [], []
        for out, err, code in churn_results:
            try:
                r = json.loads(out.strip().splitlines()[-1])
            except (IndexError, ValueError):
                failures.append(f"churn gave no result (exit {code}): {err[-1500:]}")
                continue
            for k, v in r.items():
                if isinstance(v, int):
                    c[k] += v
            pong.append(r["pong_ms"])
            lag.append(r["loop_lag_ms"])
            samples += r["samples"]
            all_open.append(r["all_open_after_s"])
        for k in ("handshake_refused", "connect_failed", "error_packets", "closed_by_server",
                  "no_pong", "resync_required"):
            if c.get(k):
                failures.append(f"churn: {k} = {c[k]}; samples {samples}")
        peak_sockets = max((s for _, _, s in sampler.sockets), default=0)
        if None in all_open or peak_sockets < len(slots):
            failures.append(f"churn: the {len(slots)} sockets were never all open at once "
                            f"(nova-realtime held at most {peak_sockets})")

        # -- sender and listeners
        if sender.errors:
            failures.append(f"sender: {len(sender.errors)} error packets, e.g. {sender.errors[:3]}")
        if probe.unanswered:
            failures.append(f"probe: {probe.unanswered} pings unanswered within 30 s")
        if len(sender.acked) != sender.sent:
            failures.append(f"sender: {sender.sent} sent, {len(sender.acked)} acknowledged")
        stored = st.sql("SELECT count(*) FROM messages WHERE chat_id = ? AND content LIKE 'seq %'",
                        listen_chat)[0][0]
        if stored != sender.sent:
            failures.append(f"sender: {sender.sent} sent, {stored} stored")
        lost = dup = 0
        for lst in listeners:
            expected = expected_events(st, lst.uid, lst.start)
            got, wanted = collections.Counter(lst.ids), set(expected)
            missing = [e for e in expected if got[e] == 0]
            extra = [e for e, n in got.items() if n > 1 or e not in wanted]
            lost += len(missing)
            dup += len(extra)
            if missing or extra or lst.problems:
                failures.append(f"listener {lst.uid}: {len(expected)} expected, {len(lst.ids)} received, "
                                f"missing {missing[:10]}, duplicate/unexpected {extra[:10]}, "
                                f"problems {lst.problems[:5]}")

        # -- processes and memory
        if st.procs["realtime"].poll() is not None or st.procs["api"].poll() is not None:
            failures.append("a daemon exited")
        if pids_after != pids_before:
            failures.append(f"nova-api workers changed (died?): {pids_before} -> {pids_after}; "
                            + " | ".join(re.findall(r".*restarting.*", st.log_text("api"))[:5]))
        warmup = max(10.0, seconds * 0.2)
        verdict = memory_verdict(sampler.samples, warmup)
        for label, first, last, growth, ok in verdict:
            if not ok:
                failures.append(f"memory of {label} not flat: {first} -> {last} kB"
                                if first is not None else f"memory of {label}: too few samples")

        # -- the database
        bad = check_invariants(st)
        if bad:
            failures.append(f"database audit: {bad}")
        api_errors = [l for l in st.log_text("api").splitlines() if " error " in l]
        rt_errors = [l for l in st.log_text("realtime").splitlines() if " error " in l]

        # -- summary
        print()
        print(f"=== nova soak: {seconds}s ===")
        if w:
            rps = w["requests"] / (w["duration_us"] / 1e6)
            print(f"wrk ({WRK_CONNECTIONS} connections): {w['requests']} requests, {rps:.0f}/s, "
                  f"statuses {dict(sorted(w['statuses'].items()))}, unexpected 4xx {w['unexpected_4xx']}, "
                  f"socket errors {w['errors']}, latency p50 {w['latency_ms']['p50']:.1f} ms "
                  f"p99 {w['latency_ms']['p99']:.1f} ms max {w['latency_ms']['max']:.1f} ms")
        print(f"churn ({len(slots)} sockets in {CHURN_PROCS} processes): {c['connects']} connects "
              f"({c['resumes']} resuming), all open after {all_open} s, "
              f"closes clean/abrupt {c['closes_clean']}/{c['closes_abrupt']}, "
              f"{c['sent']} messages sent, {c['received']} packets received; refused "
              f"{c['handshake_refused']}, failed {c['connect_failed']}, error packets "
              f"{c['error_packets']}, server closes {c['closed_by_server']}, unanswered pings "
              f"{c['no_pong']}; ping->pong ms {pong} (the clients' own loop lag ms {lag})")
        total_ids = sum(len(lst.ids) for lst in listeners)
        print(f"listeners ({LISTENERS}): sender sent {sender.sent}, acknowledged {len(sender.acked)}, "
              f"errors {len(sender.errors)}; {total_ids} events received over "
              f"{sum(lst.reconnects for lst in listeners)} resumed reconnects; lost {lost}, "
              f"duplicated {dup}")
        print(f"probe socket ping->pong ms {percentiles(probe.rtt_ms)} over {len(probe.rtt_ms)} pings")
        print("cpu seconds during the run (" + f"{elapsed:.0f}s wall): " + ", ".join(
            f"{k} {v:.1f}" for k, v in cpu_used.items() if v is not None))
        socks = [s for _, _, s in sampler.sockets]
        print(f"memory (VmRSS kB, sample every {SAMPLE_EVERY:.0f}s, warm-up {warmup:.0f}s; "
              f"sockets held by nova-realtime {min(socks, default=0)}..{max(socks, default=0)}):")
        labels = sorted({k for _, row, _ in sampler.samples for k in row})
        for label in labels:
            series = [row.get(label) for _, row, _ in sampler.samples]
            print(f"  {label:22s} " + " ".join(str(v) if v is not None else "-" for v in series))
        for label, first, last, growth, ok in verdict:
            if first is not None:
                print(f"  {label:22s} first third {first:.0f}, last third {last:.0f}, "
                      f"growth {growth:+.0f} kB -> {'flat' if ok else 'GROWING'}")
        print(f"database: {st.sql('SELECT count(*) FROM outbox')[0][0]} outbox events, "
              f"{st.sql('SELECT count(*) FROM messages')[0][0]} messages, integrity and audit "
              f"{'ok' if not bad else 'FAILED'}; error lines in logs: api {len(api_errors)}, "
              f"realtime {len(rt_errors)}")
        for line in (api_errors + rt_errors)[:5]:
            print("  " + line)
        if failures:
            keep = True
            print("FAILED:")
            for f in failures:
                print("  - " + f[:2000])
            print(f"logs kept in {st.dir}")
        else:
            print("soak: OK")
        return 1 if failures else 0
    finally:
        st.stop()
        if not keep:
            st.cleanup()


if __name__ == "__main__":
    sys.exit(main())
