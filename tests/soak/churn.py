#!/usr/bin/python3
"""churn.py CONFIG.json - the socket churn of scripts/soak.

CONFIG: {"host", "port", "duration", "hold": [min, max], "send_prob",
"seed", "ramp", "slots": [{"token", "chat_id"}, ...]}. Each slot keeps one
WebSocket going for `duration` seconds: connect (sometimes resuming with
?last_event_id), ping, sometimes send a message to its chat, read for a
random hold time, then close (cleanly or by dropping the TCP connection)
and connect again. The first connections of all slots stay open until
every slot is connected, so that all the sockets are up at once before the
churn starts. A socket is closed only once its ping was answered (up to
30 s: slowness is measured, a missing answer is an error). Prints one JSON
line of counters at the end."""

import asyncio
import collections
import json
import random
import re
import sys
import time

from wsmini import WS, HandshakeError

EVENT_ID = re.compile(rb'"event_id":(\d+)')
PONG_WAIT = 30.0


class Conn:
    """One open socket and what was read from it."""

    def __init__(self, ws, stats, state):
        self.ws, self.stats, self.state = ws, stats, state
        self.pinged = None
        self.pong = False
        self.last = None

    def ping(self):
        self.pinged = time.time()
        self.ws.send_text(json.dumps({"action": "ping", "request_id": 1}))

    async def read_until(self, done, limit):
        """Read until done() or time limit; False when the server closed."""
        while not done():
            left = limit - time.time()
            if left <= 0:
                return True
            try:
                msg = await asyncio.wait_for(self.ws.recv(), min(left, 0.5))
            except asyncio.TimeoutError:
                continue
            if msg is None:
                self.stats["closed_by_server"] += 1
                self.state["samples"].append(f"closed by server: {self.ws.close_code}")
                return False
            self.stats["received"] += 1
            if b'"action":"pong"' in msg:
                self.pong = True
                self.state["pong_ms"].append((time.time() - self.pinged) * 1000)
            elif b'"action":"error"' in msg:
                self.stats["error_packets"] += 1
                self.state["samples"].append(msg[:200].decode(errors="replace"))
            elif b'"action":"resync_required"' in msg:
                self.stats["resync_required"] += 1
            m = EVENT_ID.search(msg)
            if m:
                self.last = int(m.group(1))
        return True


async def slot(i, cfg, spec, stats, state, deadline, all_open):
    rng = random.Random(cfg["seed"] * 100003 + i)
    n = len(cfg["slots"])
    await asyncio.sleep(i * cfg["ramp"] / n)
    ramp_end = time.time() + cfg["ramp"]
    last, first = None, True
    while time.time() < deadline:
        query = f"?last_event_id={last}" if last and rng.random() < 0.3 else ""
        try:
            ws = await WS.connect(cfg["host"], cfg["port"], "/ws/" + query, spec["token"], timeout=30)
        except HandshakeError as e:
            stats["handshake_refused"] += 1
            state["samples"].append(str(e))
            await asyncio.sleep(1)
            continue
        except (OSError, asyncio.TimeoutError) as e:
            stats["connect_failed"] += 1
            state["samples"].append(repr(e))
            await asyncio.sleep(1)
            continue
        stats["connects"] += 1
        stats["resumes"] += bool(query)
        state["open"] += 1
        state["peak"] = max(state["peak"], state["open"])
        c = Conn(ws, stats, state)
        try:
            c.ping()
            if rng.random() < cfg["send_prob"]:
                ws.send_text(json.dumps({"action": "send_message", "request_id": 2,
                                         "data": {"chat_id": spec["chat_id"],
                                                  "content": f"churn {i} {stats['connects']}"}}))
                stats["sent"] += 1
            alive = True
            if first:
                first = False
                state["first_open"] += 1
                if state["first_open"] == n:
                    state["all_open_at"] = time.time()
                    all_open.set()
                alive = await c.read_until(all_open.is_set, min(deadline, ramp_end + 60))
            if alive:
                alive = await c.read_until(lambda: False,
                                           min(deadline, time.time() + rng.uniform(*cfg["hold"])))
            if alive and not c.pong:
                alive = await c.read_until(lambda: c.pong, time.time() + PONG_WAIT)
                if alive and not c.pong:
                    stats["no_pong"] += 1
            last = c.last or last
            clean = rng.random() < 0.7
            stats["closes_clean" if clean else "closes_abrupt"] += 1
            await ws.close(clean=clean)
        finally:
            state["open"] -= 1
        await asyncio.sleep(rng.uniform(0, 0.3))


async def lag_monitor(state, deadline):
    """How late this process's own event loop runs (so that slow answers
    can be told apart from a starved client)."""
    while time.time() < deadline:
        t = time.perf_counter()
        await asyncio.sleep(0.1)
        state["lag_ms"].append((time.perf_counter() - t - 0.1) * 1000)


def percentiles(values):
    v = sorted(values)
    if not v:
        return None
    return {"p50": round(v[len(v) // 2], 1), "p99": round(v[len(v) * 99 // 100], 1),
            "max": round(v[-1], 1)}


async def main(cfg):
    stats = collections.Counter()
    state = {"open": 0, "peak": 0, "first_open": 0, "all_open_at": None,
             "samples": collections.deque(maxlen=5), "pong_ms": [], "lag_ms": []}
    t0 = time.time()
    deadline = t0 + cfg["duration"]
    all_open = asyncio.Event()
    await asyncio.gather(lag_monitor(state, deadline),
                         *(slot(i, cfg, s, stats, state, deadline, all_open)
                           for i, s in enumerate(cfg["slots"])))
    out = dict(stats)
    out["peak_open"] = state["peak"]
    out["all_open_after_s"] = round(state["all_open_at"] - t0, 1) if state["all_open_at"] else None
    out["samples"] = list(state["samples"])
    out["pong_ms"] = percentiles(state["pong_ms"])
    out["loop_lag_ms"] = percentiles(state["lag_ms"])
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    with open(sys.argv[1]) as f:
        asyncio.run(main(json.load(f)))
