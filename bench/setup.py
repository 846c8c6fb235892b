#!/usr/bin/python3
"""setup.py - the data scripts/bench needs, made over the REST API.

    setup.py --port PORT --users N --pairs P --out DIR

through nginx on 127.0.0.1:PORT:
  * registers an owner and N-1 members (N users in all), each keeping the
    session of its registration;
  * makes every member a friend of the owner (crossing invitations: the
    member invites the owner, the owner's invitation back accepts it);
  * makes P extra friendships between members 1+2k and 2+2k (k < P) and
    finds their private chats (the send-path and resume measurements use
    them);
  * creates one group with all N users (POST /chat/new).

Writes DIR/users.txt ("index user_id user_name token", index 0 is the
owner), DIR/pairs.txt ("chat_id index_a index_b") and DIR/group.txt (the
group's chat_id). Standard library only; a few threads, one keep-alive
connection each.

    setup.py --port PORT --out DIR --mark-read CHAT_ID

has every user of DIR/users.txt mark the chat read (messages_read over a
socket of its own, one user at a time, so nobody else is connected to
receive the events)."""

import argparse
import concurrent.futures
import http.client
import json
import os
import sys
import threading
import time

PASSWORD = "secret1"


class Http:
    """One keep-alive connection per thread to nginx."""

    def __init__(self, port):
        self.port = port
        self.local = threading.local()

    def call(self, method, path, token=None, body=None):
        conn = getattr(self.local, "conn", None)
        if conn is None:
            conn = self.local.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        headers = {}
        if token:
            headers["Cookie"] = "sessionid=" + token
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        for attempt in range(3):
            try:
                conn.request(method, "/api" + path, body=data, headers=headers)
                r = conn.getresponse()
                text = r.read()
                break
            except (http.client.HTTPException, OSError):
                conn.close()
                conn = self.local.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
                if attempt == 2:
                    raise
        env = json.loads(text)
        if r.status != 200 or not env.get("ok"):
            raise RuntimeError(f"{method} {path}: {r.status} {text[:300]!r}")
        cookie = None
        for k, v in r.getheaders():
            if k.lower() == "set-cookie" and v.startswith("sessionid="):
                cookie = v.split(";", 1)[0].split("=", 1)[1]
        return env["data"], cookie


def mark_read(port, out, chat_id):
    import websocket  # Debian: python3-websocket (the integration tests use it)

    t0 = time.time()
    with open(os.path.join(out, "users.txt")) as f:
        tokens = [line.split()[3] for line in f if line.strip()]
    for tok in tokens:
        ws = websocket.create_connection(f"ws://127.0.0.1:{port}/ws/", cookie="sessionid=" + tok,
                                         suppress_origin=True, timeout=30)
        ws.send(json.dumps({"action": "messages_read", "request_id": 1, "data": {"chat_id": chat_id}}))
        while True:
            m = json.loads(ws.recv())
            if m.get("request_id") == 1:
                if not m.get("ok"):
                    raise RuntimeError(f"messages_read: {m}")
                break
        ws.close()
    print(f"setup: {len(tokens)} users marked chat {chat_id} read in {time.time() - t0:.1f}s",
          file=sys.stderr)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--users", type=int, default=1000)
    ap.add_argument("--pairs", type=int, default=16)
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--out", required=True)
    ap.add_argument("--mark-read", type=int, default=0)
    a = ap.parse_args()
    if a.mark_read:
        mark_read(a.port, a.out, a.mark_read)
        return
    if a.users < 2 * a.pairs + 1:
        sys.exit("setup: --users must be at least 2 * --pairs + 1")
    h = Http(a.port)
    pool = concurrent.futures.ThreadPoolExecutor(a.threads)
    t0 = time.time()
    tag = "%x" % (int(t0) & 0xFFFFFF)

    names = [f"bo_{tag}"] + [f"bm{i}_{tag}" for i in range(1, a.users)]

    def register(name):
        data, token = h.call("POST", "/user/register", body={"user_name": name, "password": PASSWORD})
        return data["id"], token

    users = list(pool.map(register, names))
    t_reg = time.time()
    owner_id, owner_tok = users[0]

    # member -> owner, then owner -> member (accepts the crossing invitation)
    def invite_owner(i):
        h.call("POST", "/friend/invite", users[i][1],
               {"id": owner_id, "comment": "", "source": "search"})

    list(pool.map(invite_owner, range(1, a.users)))

    def owner_accepts(i):
        h.call("POST", "/friend/invite", owner_tok,
               {"id": users[i][0], "comment": "", "source": "search"})

    list(pool.map(owner_accepts, range(1, a.users)))
    t_friends = time.time()

    def make_pair(k):
        ia, ib = 1 + 2 * k, 2 + 2 * k
        (ida, toka), (idb, tokb) = users[ia], users[ib]
        h.call("POST", "/friend/invite", toka, {"id": idb, "comment": "", "source": "search"})
        h.call("POST", "/friend/invite", tokb, {"id": ida, "comment": "", "source": "search"})
        chats, _ = h.call("GET", "/chat", toka)
        for rel in chats:
            chat = rel["chat"]
            if chat["chat_name"] == "" and any(m["id"] == idb for m in chat["chat_members"]):
                return chat["chat_id"], ia, ib
        raise RuntimeError(f"no private chat between users {ida} and {idb}")

    pairs = list(pool.map(make_pair, range(a.pairs)))

    group, _ = h.call("POST", "/chat/new", owner_tok,
                      {"chat_name": "bench", "chat_members": [u[0] for u in users[1:]]})
    t_group = time.time()
    pool.shutdown()

    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "users.txt"), "w") as f:
        for i, ((uid, tok), name) in enumerate(zip(users, names)):
            f.write(f"{i} {uid} {name} {tok}\n")
    with open(os.path.join(a.out, "pairs.txt"), "w") as f:
        for chat_id, ia, ib in pairs:
            f.write(f"{chat_id} {ia} {ib}\n")
    with open(os.path.join(a.out, "group.txt"), "w") as f:
        f.write(f"{group['chat_id']}\n")
    print(f"setup: {a.users} users registered in {t_reg - t0:.1f}s, "
          f"{a.users - 1} friendships in {t_friends - t_reg:.1f}s, "
          f"{a.pairs} pairs and a {len(group['chat_members'])}-member group in "
          f"{t_group - t_friends:.1f}s", file=sys.stderr)


if __name__ == "__main__":
    main()
