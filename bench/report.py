#!/usr/bin/python3
"""report.py RESULTS [key=value ...] - scripts/bench's table.

RESULTS holds "key value" lines (a key may repeat: one line per run); each
number in the table is the median of its key's values. The key=value
arguments describe the run (printed above the table)."""

import statistics
import sys


def load(path):
    vals = {}
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) != 2:
                continue
            try:
                vals.setdefault(parts[0], []).append(float(parts[1]))
            except ValueError:
                pass
    return vals


def main():
    vals = load(sys.argv[1])
    meta = dict(a.split("=", 1) for a in sys.argv[2:])

    def med(key):
        v = vals.get(key)
        return statistics.median(v) if v else None

    def runs(key):
        return len(vals.get(key, []))

    def fmt(v, digits):
        if v is None:
            return "n/a"
        if digits == 0:
            return f"{v:,.0f}"
        return f"{v:,.{digits}f}"

    rows = []

    def row(label, unit, key, digits=1, note=""):
        n = runs(key)
        rows.append((label, unit, fmt(med(key), digits), (f"{n} runs" if n > 1 else "") +
                     (("; " if n > 1 and note else "") + note)))

    def sep(title):
        rows.append((title, None, None, None))

    wrk = meta.get("wrk", "")
    sep(f"REST through nginx (wrk {wrk}, nova-api and the trivial responder with {meta.get('workers')} workers each)")
    row("GET /api/user", "req/s", "rest.user.rps", 0)
    row("GET /api/user", "p99 ms", "rest.user.p99_ms", 2)
    row("trivial FastCGI responder, same nginx", "req/s", "rest.trivial.rps", 0)
    row("trivial FastCGI responder, same nginx", "p99 ms", "rest.trivial.p99_ms", 2)
    row("GET /api/user / trivial", "ratio", "rest.user_ratio", 2, "per run, then median")
    row(f"GET /api/chat/<id>/messages?limit=50 ({meta.get('chat_messages', '?')} msgs in chat)",
        "req/s", "rest.messages.rps", 0)
    row("GET /api/chat/<id>/messages?limit=50", "p99 ms", "rest.messages.p99_ms", 2)
    row("GET messages / trivial", "ratio", "rest.messages_ratio", 3, "per run, then median")
    row("GET /api/search?q=bench&limit=20 (the word in every message of that chat) [ext]",
        "req/s", "rest.search.rps", 0)
    row("GET /api/search", "p99 ms", "rest.search.p99_ms", 2)
    row("GET search / trivial", "ratio", "rest.search_ratio", 3, "per run, then median")
    row("GET /api/attachment/<id>, 256 KiB (X-Accel-Redirect) [ext]", "req/s",
        "rest.attachment.rps", 0)
    row("the same file as a static file of the same nginx", "req/s", "rest.static.rps", 0)
    row("GET attachment / static file", "ratio", "rest.attachment_ratio", 2, "per run, then median")
    row("CPU per request: nova-api worker, GET /api/user", "us", "rest.user.backend_us", 0)
    row("CPU per request: trivial responder worker", "us", "rest.trivial.backend_us", 0)
    row("CPU per request: nova-api worker, GET messages", "us", "rest.messages.backend_us", 0)
    row("CPU per request: nginx, GET /api/user", "us", "rest.user.nginx_us", 0)
    row("CPU per request: nginx, trivial", "us", "rest.trivial.nginx_us", 0)
    row("CPU per request: nginx, GET messages", "us", "rest.messages.nginx_us", 0)
    for k in ("user", "trivial", "messages"):
        bad = sum(vals.get(f"rest.{k}.non2xx", [0])) + sum(vals.get(f"rest.{k}.socket_errors", [0]))
        if bad:
            rows.append((f"  !! {k}: non-2xx responses or socket errors", "count", fmt(bad, 0), ""))

    socks = meta.get("sockets", "1000")
    sep(f"Socket send path ({socks} sockets open, {meta.get('pairs')} sender/receiver pairs in private chats)")
    # Nova's send path, then the same loads against the trivial relay.
    for what, paced, daemon, key in (
            ("send_message", "send_message paced", "nova-realtime", "send"),
            ("trivial relay, same nginx", "trivial relay paced", "relay", "relay")):
        row(f"{what}, closed loop (1 in flight per sender)", "msg/s", f"{key}_closed.msgs_per_s", 0)
        row(f"  {daemon} CPU during it", "% of a core", f"{key}_closed.rt_cpu_pct", 0)
        for q in ("p50", "p99"):
            row("  delivery latency at that load", f"{q} ms", f"{key}_closed.{q}_ms", 2)
        for q in ("p50", "p99"):
            row(f"{paced} at {meta.get('rate')} msg/s: delivery latency", f"{q} ms",
                f"{key}_paced.{q}_ms", 2)
    lost = sum(sum(vals.get(f"{k}.lost", [0])) for k in
               ("send_closed", "send_paced", "relay_closed", "relay_paced"))
    if lost:
        rows.append(("  !! messages not delivered", "count", fmt(lost, 0), ""))

    sep(f"Fan-out: one message to a {meta.get('group')}-member group, one socket per member")
    n_msgs = int(med("fanout.samples") or 0)
    row("send -> last member has it", "p50 ms", "fanout.p50_ms", 1, f"over {n_msgs} messages")
    row("send -> last member has it", "p90 ms", "fanout.p90_ms", 1)
    row("send -> first member has it", "p50 ms", "fanout.first_p50_ms", 1)
    row("same, straight to nova-realtime's socket (no nginx): last", "p50 ms", "fanout_direct.p50_ms", 1)
    row("same, straight to nova-realtime's socket (no nginx): first", "p50 ms",
        "fanout_direct.first_p50_ms", 1)
    row("trivial relay, same nginx: send -> last member has it", "p50 ms", "relay_fanout.p50_ms", 1)
    row("trivial relay, same nginx: send -> last member has it", "p90 ms", "relay_fanout.p90_ms", 1)
    row("trivial relay, same nginx: send -> first member has it", "p50 ms",
        "relay_fanout.first_p50_ms", 1)
    row("trivial relay, straight to its socket (no nginx): last", "p50 ms",
        "relay_fanout_direct.p50_ms", 1)

    sep("REST-caused event: PATCH /api/user -> profile_change on a socket")
    row("wake socket on (NOVA_WAKE_SOCKET set)", "p50 ms", "wake_on.p50_ms", 2)
    row("wake socket on", "p99 ms", "wake_on.p99_ms", 2)
    row(f"wake socket off (outbox poll every {meta.get('poll_ms', '10')} ms)", "p50 ms",
        "wake_off.p50_ms", 2)
    row("wake socket off", "p99 ms", "wake_off.p99_ms", 2)
    row("  PATCH /api/user response time (for scale)", "p50 ms", "wake_on.http_p50_ms", 2)

    idle = meta.get("idle", "10000")
    sep(f"Memory: nova-realtime, fresh start, then {idle} idle sockets ({meta.get('idle_route', '')})")
    row("VmRSS with 0 sockets", "KiB", "idle.rss0_kib", 0)
    row(f"VmRSS with {idle} idle sockets", "KiB", "idle.rss_kib", 0)
    row("per idle socket", "bytes", "idle.per_socket_bytes", 0)
    row(f"CPU of nova-realtime holding {idle} idle sockets", "% of a core", "idle.idle_cpu_pct", 1)
    row(f"send_message paced at {meta.get('rate')} msg/s with {idle} sockets open: delivery",
        "p50 ms", "idle_paced.p50_ms", 2)
    row(f"send_message paced at {meta.get('rate')} msg/s with {idle} sockets open: delivery",
        "p99 ms", "idle_paced.p99_ms", 2)

    sep(f"Resume: one socket reconnects with ?last_event_id=N, {meta.get('resume_events')} events missed")
    row("connect -> last missed event received", "ms", "resume.total_ms", 1)
    row("replay rate", "events/s", "resume.events_per_s", 0)
    row(f"same with {idle} idle sockets open, {meta.get('resume_busy')} events: connect -> last", "ms",
        "resume_busy.total_ms", 1)
    row(f"same with {idle} idle sockets open: replay rate", "events/s", "resume_busy.events_per_s", 0)

    sep(f"A page of the {meta.get('group')}-member group after every member has read it")
    row("GET /api/chat/<group>/messages?limit=50, one request at a time", "ms", "group_page.ms", 1)
    row("  response size", "MiB", "group_page.mib", 2)
    row("  the same, 5 users' 3 reactions on every message [ext]", "ms", "group_page_reacted.ms", 1)

    sep(f"The engine's own commits ({meta.get('engine', 'sqlite')}), one writer, single-row "
        "transactions")
    row("commits/s (SQLite: BEGIN IMMEDIATE, Nova's pragmas; PostgreSQL: the writers' lock)",
        "1/s", "commit.rate", 0)
    row("  the same with NOTIFY, as Nova's writers send it (PostgreSQL)", "1/s",
        "commit_notify.rate", 0)

    # The targets of the performance issue: Nova against the baselines of
    # the same run (the trivial responder, the trivial relay). The engine's
    # own commit rate, the baseline of every write, is the section above.
    sep("Against the baselines of this run (targets of the performance issue)")

    def target(label, key, op, goal, digits=2):
        v = med(key)
        met = "" if v is None else ("met" if (v >= goal if op == ">=" else v <= goal) else "NOT met")
        n = runs(key)
        note = f"target {'≥' if op == '>=' else '≤'} {goal}" + (f", {met}" if met else "") + \
            (f"; {n} runs, per run, then median" if n > 1 else "")
        rows.append((label, "ratio", fmt(v, digits), note))

    target("send_message closed loop / relay closed loop", "ratio.send_closed", ">=", 0.5)
    target(f"send_message at {meta.get('rate')} msg/s p99 / relay's p99", "ratio.paced_p99", "<=", 1.5)
    target(f"fan-out to {meta.get('group')}: last receipt p50 / relay's p50", "ratio.fanout_p50",
           "<=", 1.5)
    target(f"fan-out to {meta.get('group')}: last receipt p90 / relay's p90", "ratio.fanout_p90",
           "<=", 1.5)
    target("GET /api/user req/s / trivial responder's", "rest.user_ratio", ">=", 0.85)
    target("nova-api CPU per GET messages?limit=50 / trivial responder's", "rest.messages_cpu_ratio",
           "<=", 6, 1)

    sep(f"[ext] Presence and typing: {meta.get('sockets')} friends of one user online, each on a socket of its own")
    row("connect -> presence_snapshot listing them", "ms", "presence.snapshot_ms", 1)
    row("connect -> the last friend's presence online", "ms", "presence.online_fanout_ms", 1)
    row("typing in the group -> the last member's typing", "ms", "typing.fanout_ms", 1)

    w1 = max(len(r[0]) for r in rows if r[1] is not None)
    w2 = max(len(r[1]) for r in rows if r[1] is not None)
    w3 = max(len(r[2]) for r in rows if r[1] is not None)
    print(f"Nova benchmark  {meta.get('date', '')}  {meta.get('machine', '')}  "
          f"engine: {meta.get('engine', 'sqlite')}")
    print(f"{meta.get('load', '')}")
    for label, unit, value, note in rows:
        if unit is None:
            print(f"\n{label}")
            continue
        print(f"  {label:<{w1}}  {unit:<{w2}}  {value:>{w3}}  {note}".rstrip())


if __name__ == "__main__":
    main()
