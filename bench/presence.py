#!/usr/bin/python3
"""presence.py - the cost of [ext] presence and typing (scripts/bench).

    presence.py --port PORT --data DIR [--online N] [--rounds R]

With the data of bench/setup.py (DIR/users.txt: the owner, index 0, is a
friend of every member; DIR/group.txt: the group of all of them):
  * N members (1..N) open a socket each with ?presence=1 (all online);
  * the owner connects with ?presence=1, R times: connect -> its
    presence_snapshot (N friends online), and -> the last of the N
    members' `presence` online packet (the owner's own transition fanned
    out to N friends), then closes and waits for its offline (the grace);
  * the owner sends `typing` in the group R times (waiting out the rate
    limit in between): typing -> the last of the N members' typing packet.
Prints `name value` lines for bench/report.py. Needs websocket-client."""

import argparse
import json
import resource
import statistics
import time

import websocket


def sock(port, token, query="?presence=1"):
    return websocket.create_connection(f"ws://127.0.0.1:{port}/ws/{query}",
                                       cookie=f"sessionid={token}", timeout=30,
                                       suppress_origin=True)


def wait_for(ws, pred):
    while True:
        m = json.loads(ws.recv())
        if pred(m):
            return m


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--online", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--typing-interval", type=float, default=2.0)
    ap.add_argument("--grace", type=float, default=3.0)
    a = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, a.online + 256)), hard))
    users = {}
    with open(f"{a.data}/users.txt") as f:
        for line in f:
            i, uid, _name, token = line.split()
            users[int(i)] = (int(uid), token)
    group = int(open(f"{a.data}/group.txt").read().split()[0])
    n = min(a.online, len(users) - 1)
    owner_id, owner_token = users[0]
    # The owner's sockets of the runs before (react.py...) may have closed
    # less than the grace period ago: it is still online, and its first
    # connect here would change nothing. Wait it out.
    time.sleep(a.grace + 0.5)
    members = [sock(a.port, users[i][1]) for i in range(1, n + 1)]
    for ws in members:
        wait_for(ws, lambda m: m["action"] == "presence_snapshot")
    time.sleep(1)

    def about_owner(online):
        return lambda m: (m["action"] == "presence" and m["data"]["user"]["id"] == owner_id
                          and m["data"]["online"] is online)

    snap, fan = [], []
    for _ in range(a.rounds):
        t0 = time.perf_counter()
        ws = sock(a.port, owner_token)
        m = wait_for(ws, lambda m: m["action"] == "presence_snapshot")
        snap.append((time.perf_counter() - t0) * 1000)
        assert len(m["data"]["online"]) >= n, len(m["data"]["online"])
        for s in members:
            wait_for(s, about_owner(True))
        fan.append((time.perf_counter() - t0) * 1000)
        ws.close()
        for s in members:
            wait_for(s, about_owner(False))
    owner = sock(a.port, owner_token, "")
    typing = []
    for r in range(a.rounds):
        t0 = time.perf_counter()
        owner.send(json.dumps({"action": "typing", "request_id": r + 1,
                               "data": {"chat_id": group}}))
        reply = wait_for(owner, lambda m: m["action"] == "typing")
        assert reply["data"]["sent"] is True, reply
        for s in members:
            wait_for(s, lambda m: m["action"] == "typing" and m["data"]["chat_id"] == group)
        typing.append((time.perf_counter() - t0) * 1000)
        time.sleep(a.typing_interval + 0.1)
    print("presence.snapshot_ms", f"{statistics.median(snap):.1f}")
    print("presence.online_fanout_ms", f"{statistics.median(fan):.1f}")
    print("typing.fanout_ms", f"{statistics.median(typing):.1f}")
    print("presence.online", n)
    for s in members + [owner]:
        s.close()


if __name__ == "__main__":
    main()
