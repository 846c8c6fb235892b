#!/usr/bin/python3
"""compression.py - what GET /chat/<id>/messages transfers, raw, gzip and brotli.

    bench/compression.py [--members 5] [--messages 100] [--avatar 100000] [--repeat 3]

The scenario of issue 9 (finding 11): a group of MEMBERS users, each with
an avatar of AVATAR characters (a data: URL of random bytes, so the
avatar itself does not compress: the worst case, like a real PNG), MESSAGES
messages sent in it and read by every member. Every ChatMessage.Detailed
carries its sender and its read_users, each with the avatar, so the
answer repeats the same few avatars hundreds of times.

Starts its own stack (nginx + nova-api + nova-realtime, tests/integration's
Stack) from NOVA_BUILD_DIR (default: build/, built first by scripts/build,
no sanitizers), and prints, for each Accept-Encoding, the bytes on the
wire and the median time of REPEAT requests over loopback. Numbers go to
docs/BENCHMARKS.md; nothing here is a pass/fail test."""

import argparse
import base64
import os
import pathlib
import socket
import statistics
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--members", type=int, default=5)
    ap.add_argument("--messages", type=int, default=100)
    ap.add_argument("--avatar", type=int, default=100_000, help="avatar URL length (chars)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--parallel", type=int, default=8,
                    help="concurrent requests of the memory measurement")
    args = ap.parse_args()

    if "NOVA_BUILD_DIR" not in os.environ:
        subprocess.run([str(ROOT / "scripts/build")], check=True, stdout=sys.stderr)
        os.environ["NOVA_BUILD_DIR"] = str(ROOT / "build")
    sys.path.insert(0, str(ROOT / "tests/integration"))
    from conftest import Stack  # noqa: E402  (reads NOVA_BUILD_DIR)
    from support import befriend  # noqa: E402

    st = Stack(env={"NOVA_LOG_LEVEL": "0"}).start()
    try:
        users = [st.client() for _ in range(args.members)]
        prefix = "data:image/png;base64,"
        raw_len = (args.avatar - len(prefix)) // 4 * 3  # whole base64 quads
        for u in users:
            u.register()
            avatar = prefix + base64.b64encode(os.urandom(raw_len)).decode()
            u.user = u.ok("PATCH", "/user", {"avatar_url": avatar})
        owner = users[0]
        for u in users[1:]:
            befriend(owner, u)
        chat = owner.ok("POST", "/chat/new", {"chat_name": "bench",
                                              "chat_members": [u.user["id"] for u in users[1:]]})
        chat_id = chat["chat_id"]
        socks = [u.socket() for u in users]
        for i in range(args.messages):
            s = socks[i % len(socks)]
            rid = s.request("send_message", {"chat_id": chat_id, "content": f"message {i}"})
            while True:
                m = s.recv()
                if m["action"] == "messages_read" and m["request_id"] == rid:
                    break
        for u, s in zip(users, socks):
            rid = s.request("messages_read", {"chat_id": chat_id})
            while not ((m := s.recv())["action"] == "messages_read" and m["request_id"] == rid):
                pass
            s.close()

        path = f"/api/chat/{chat_id}/messages"
        print(f"GET /chat/<id>/messages: {args.members} members with {args.avatar}-char avatars, "
              f"{args.messages + 1} messages (one system message) read by all")
        print(f"{'Accept-Encoding':<16} {'bytes on the wire':>18} {'ratio':>8} {'median ms':>10}")
        plain = None
        for enc in ("identity", "gzip", "br"):
            sizes, times = [], []
            for _ in range(args.repeat):
                n, ms, got = fetch(st.port, path, owner.token, enc)
                sizes.append(n)
                times.append(ms)
            if got != enc and enc != "identity":
                print(f"{enc:<16} {'(not served: ' + (got or 'identity') + ')':>18}")
                continue
            size = sizes[-1]
            plain = plain or size
            print(f"{enc:<16} {size:>18,} {plain / size:>7.1f}x {statistics.median(times):>10.1f}")
        print(f"nginx workers' resident memory, {args.parallel} requests at once:")
        for enc in ("identity", "gzip", "br"):
            idle, peak = parallel_rss(st, path, owner.token, enc, args.parallel)
            print(f"{enc:<16} {idle / 1024:>8.1f} MiB idle, {peak / 1024:>8.1f} MiB at the peak"
                  f" (+{(peak - idle) / 1024 / args.parallel:.1f} MiB a request)")
    finally:
        st.stop()
        st.cleanup()


def workers_rss_kib(master):
    """Resident memory of nginx's worker processes, KiB."""
    total = 0
    try:
        kids = open(f"/proc/{master}/task/{master}/children").read().split()
    except OSError:
        return 0
    for pid in kids:
        try:
            for line in open(f"/proc/{pid}/status"):
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


def parallel_rss(st, path, token, encoding, n):
    """(idle, peak) resident KiB of nginx's workers while n requests with
    this Accept-Encoding run at once."""
    import threading

    master = st.procs["nginx"].pid
    idle = workers_rss_kib(master)
    threads = [threading.Thread(target=fetch, args=(st.port, path, token, encoding))
               for _ in range(n)]
    for t in threads:
        t.start()
    peak = idle
    while any(t.is_alive() for t in threads):
        peak = max(peak, workers_rss_kib(master))
        time.sleep(0.005)
    return idle, peak


def fetch(port, path, token, encoding):
    """One GET over a fresh connection: (bytes of the body on the wire,
    milliseconds to the last byte, Content-Encoding)."""
    start = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall((f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: sessionid={token}\r\n"
                   f"Accept-Encoding: {encoding}\r\nConnection: close\r\n\r\n").encode())
        data = b""
        while chunk := s.recv(1 << 20):
            data += chunk
    ms = (time.perf_counter() - start) * 1000
    head, body = data.split(b"\r\n\r\n", 1)
    headers = dict(l.split(": ", 1) for l in head.decode().split("\r\n")[1:])
    assert head.startswith(b"HTTP/1.1 200"), head
    return len(body), ms, headers.get("Content-Encoding")


if __name__ == "__main__":
    main()
