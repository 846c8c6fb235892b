"""Metrics for Prometheus (issue 13, "Watch and keep"): nova-api's requests
by route and status with latency histograms, summed over its workers;
nova-realtime's sockets, deliveries, queue, closes by reason, resumes and
resyncs, actions and outbox lag; database errors. Served on the
operator's own nginx listener (loopback), never on the public one."""

import os
import signal
import subprocess

import requests

from conftest import Socket
from support import befriend, metric, scrape, until

REQ = "nova_api_requests_total"
DUR = "nova_api_request_duration_seconds"


def test_requests_are_counted_by_route_and_status_over_every_worker(make_stack):
    st = make_stack(workers=4, hash_workers=1)
    a = st.client()
    a.register()
    before = scrape(st)
    for _ in range(40):  # more than the workers: several of them answer
        assert a.get("/user").status_code == 200
    for _ in range(3):
        assert a.get("/no/such/route").status_code == 404
    assert a.request("DELETE", "/friend/group/list").status_code == 405
    assert a.request("POST", "/friend/group/add", {"group_name": 7}).status_code == 400
    wrong = {"user_name": a.user["user_name"], "password": "not the password"}
    for _ in range(2):
        assert st.client().request("POST", "/user/login", wrong).status_code == 400
    after = scrape(st)

    def delta(name, **labels):
        return metric(after, name, **labels) - metric(before, name, **labels)

    assert delta(REQ, method="GET", route="/user", status="200") == 40
    assert delta(REQ, method="", route="unmatched", status="404") == 3
    assert delta(REQ, method="", route="unmatched", status="405") == 1
    assert delta(REQ, method="POST", route="/friend/group/add", status="400") == 1
    assert delta(REQ, method="POST", route="/user/login", status="400") == 2
    # The histogram counts the same requests; the time is real and small.
    assert delta(DUR + "_count", method="GET", route="/user") == 40
    spent = delta(DUR + "_sum", method="GET", route="/user")
    assert 0 < spent < 40 * 5, spent
    # Each GET /user answer came from one of the pool's workers: the log
    # shows more than one of them answering, all summed in one table.
    pids = {line.split("[")[1].split("]")[0] for line in st.log_text("api").splitlines()
            if "GET /user 200" in line and "[" in line}
    assert len(pids) > 1, pids
    assert metric(after, "nova_api_workers", pool="api") == 3
    assert metric(after, "nova_api_workers", pool="hash") == 1


def test_metrics_are_only_on_the_operator_listener(stack):
    c = stack.client()
    c.register()
    # The public server: no metrics at any spelling, whatever a client sends.
    for path in ("/metrics", "/api/metrics", "/ws/metrics", "/metrics/realtime"):
        r = requests.get(stack.base + path, headers={"NOVA_METRICS": "1", "Nova-Metrics": "1"},
                         timeout=10)
        assert "nova_api_requests_total" not in r.text and "nova_realtime" not in r.text, path
    r = c.get("/metrics", headers={"NOVA_METRICS": "1"})
    assert r.status_code == 404 and r.json()["ok"] is False
    # The operator's listener binds loopback only, and serves nothing else.
    host = stack.metrics_base.split("//")[1].split(":")[0]
    assert host == "127.0.0.1"
    assert requests.get(stack.metrics_base + "/api/user", timeout=10).status_code == 404
    assert "nova_api_requests_total" in requests.get(stack.metrics_base + "/metrics",
                                                     timeout=10).text


def test_realtime_counts_sockets_deliveries_actions_closes_and_resumes(make_stack):
    st = make_stack()
    a, b = st.client(), st.client()
    a.register()
    b.register()
    chat = befriend(a, b)
    zero = scrape(st, "/metrics/realtime")
    assert metric(zero, "nova_realtime_sockets_open") == 0
    sa, sb = a.socket(), b.socket()
    sa.ping_barrier()
    sb.ping_barrier()
    m = scrape(st, "/metrics/realtime")
    assert metric(m, "nova_realtime_sockets_open") == 2
    assert metric(m, "nova_realtime_sockets_opened_total") == 2
    assert metric(m, "nova_realtime_actions_total", action="ping", outcome="ok") == 2

    sa.request("send_message", {"chat_id": chat, "content": "one"})
    sa.request("send_message", {"chat_id": chat, "content": "two"})
    sa.send({"action": "no_such_action", "request_id": 5})
    sa.send({"action": "send_message", "request_id": 6, "data": {"chat_id": chat}})
    # Actions run in order and deliver as they commit: what both sockets
    # got before their pongs is everything.
    got = sa.ping_barrier() + sb.ping_barrier()
    assert sorted(p["request_id"] for p in got if p["action"] == "error") == [5, 6], got
    m = scrape(st, "/metrics/realtime")
    assert metric(m, "nova_realtime_actions_total", action="send_message", outcome="ok") == 2
    assert metric(m, "nova_realtime_actions_total", action="send_message", outcome="error") == 1
    assert metric(m, "nova_realtime_actions_total", action="invalid", outcome="error") == 1
    assert metric(m, "nova_realtime_action_duration_seconds_count", action="send_message") == 3
    # Every event packet the sockets got is one delivery.
    events = [p for p in got if p.get("event_id")]
    assert sum(1 for p in events if p["action"] == "new_message") == 4, events
    assert metric(m, "nova_realtime_deliveries_total", mode="live") == len(events)
    # Every event the tail read (befriending's too) has its delay observed.
    assert metric(m, "nova_realtime_delivery_delay_seconds_count") == \
        st.sql("SELECT count(*) FROM outbox")[0][0]
    assert metric(m, "nova_db_errors_total", kind="internal") == 0
    newest = st.sql("SELECT max(id) FROM outbox")[0][0]
    assert metric(m, "nova_realtime_outbox_position") == newest
    assert metric(m, "nova_realtime_outbox_lag_events") == 0
    assert metric(m, "nova_realtime_outbox_lag_seconds") == 0
    assert metric(m, "nova_realtime_queued_bytes") == 0

    # Closes by reason: the client's own close, and a logout ending two.
    sb.close()
    a_extra = a.socket()
    a_extra.ping_barrier()
    assert a.ok("POST", "/user/logout") is None
    for s in (sa, a_extra):
        msgs, _ = s.read_to_close()
        assert msgs[-1]["action"] == "logout", msgs
    m = until(lambda: (lambda s: s if metric(s, "nova_realtime_sockets_open") == 0 else None)(
        scrape(st, "/metrics/realtime")))
    assert metric(m, "nova_realtime_closes_total", reason="logged_out") == 2
    assert metric(m, "nova_realtime_closes_total", reason="client_or_network") == 1
    # A socket without a live session is refused, and counted so.
    msgs, _ = Socket(st, a.token).read_to_close()
    assert msgs[-1]["code"] == 403, msgs
    until(lambda: metric(scrape(st, "/metrics/realtime"), "nova_realtime_closes_total",
                         reason="invalid_session") == 1)


def test_resumes_and_resyncs_are_counted(make_stack):
    st = make_stack()
    a, b = st.client(), st.client()
    a.register()
    b.register()
    befriend(a, b)
    first = st.sql("SELECT min(id) FROM outbox")[0][0]
    s = a.socket(query=f"?last_event_id={first}")
    s.ping_barrier()
    far = a.socket(query="?last_event_id=999999999")
    assert far.expect("resync_required")["data"]["oldest_event_id"] >= 1
    m = scrape(st, "/metrics/realtime")
    assert metric(m, "nova_realtime_resumes_total") == 2
    assert metric(m, "nova_realtime_resyncs_total") == 1
    assert metric(m, "nova_realtime_deliveries_total", mode="replay") >= 1
    s.close()
    far.close()


def test_a_killed_worker_is_counted_and_its_requests_stay_counted(make_stack):
    st = make_stack(workers=3, hash_workers=1)
    a = st.client()
    a.register()
    for _ in range(10):
        a.get("/user")
    before = scrape(st)
    supervisor = st.procs["api"].pid
    workers = [int(p) for p in subprocess.run(["pgrep", "-P", str(supervisor)],
                                              capture_output=True, text=True).stdout.split()]
    assert len(workers) == 3, workers
    for pid in workers[:2]:
        os.kill(pid, signal.SIGKILL)
    # A connection a dying worker had taken is nginx's 502 (the public
    # server answers 503 JSON for it, test_faults.py): scrape until served.
    def restarts():
        r = requests.get(st.metrics_base + "/metrics", timeout=10)
        return r.status_code == 200 and \
            "nova_api_worker_restarts_total 2\n" in r.text
    until(restarts)
    until(lambda: a.get("/user").status_code == 200)
    after = scrape(st)
    assert metric(after, REQ, method="GET", route="/user", status="200") >= \
        metric(before, REQ, method="GET", route="/user", status="200") + 1
    assert metric(after, DUR + "_count", method="GET", route="/user") >= 11
