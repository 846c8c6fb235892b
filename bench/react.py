#!/usr/bin/python3
"""react.py - [ext] edit and react: put reactions on every message of a page.

    react.py --port PORT --out DIR --chat CHAT_ID [--users 5] [--emojis 3] [--limit 50]

The first --users users of DIR/users.txt (members of the chat) each react
with --emojis different emojis to each of the chat's newest --limit messages,
over the socket, so that scripts/bench can time the history page with
reactions on every message (group_page_reacted.ms)."""

import argparse
import json
import os
import sys
import time
import urllib.request

EMOJIS = ["\U0001F44D", "\u2764\ufe0f", "\U0001F602", "\U0001F389", "\U0001F44B\U0001F3FD"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--chat", type=int, required=True)
    ap.add_argument("--users", type=int, default=5)
    ap.add_argument("--emojis", type=int, default=3)
    ap.add_argument("--limit", type=int, default=50)
    a = ap.parse_args()
    import websocket  # Debian: python3-websocket

    t0 = time.time()
    with open(os.path.join(a.out, "users.txt")) as f:
        tokens = [line.split()[3] for line in f if line.strip()][:a.users]
    req = urllib.request.Request(
        f"http://127.0.0.1:{a.port}/api/chat/{a.chat}/messages?limit={a.limit}",
        headers={"Cookie": "sessionid=" + tokens[0]})
    with urllib.request.urlopen(req, timeout=60) as r:
        ids = [m["message_id"] for m in json.load(r)["data"]]
    n = 0
    for tok in tokens:
        ws = websocket.create_connection(f"ws://127.0.0.1:{a.port}/ws/", cookie="sessionid=" + tok,
                                         suppress_origin=True, timeout=60)
        want = set()
        for mid in ids:
            for e in EMOJIS[:a.emojis]:
                n += 1
                want.add(n)
                ws.send(json.dumps({"action": "react", "request_id": n,
                                    "data": {"message_id": mid, "emoji": e}}))
        while want:
            m = json.loads(ws.recv())
            if m.get("request_id") in want:
                if not m.get("ok"):
                    raise RuntimeError(f"react: {m}")
                want.discard(m["request_id"])
        ws.close()
    print(f"react: {n} reactions on {len(ids)} messages in {time.time() - t0:.1f}s", file=sys.stderr)


if __name__ == "__main__":
    main()
