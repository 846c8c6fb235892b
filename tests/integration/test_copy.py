"""Moving up (issue 11): nova-admin copy moves a database between engines
with every row, id, session and the outbox position, so that the API
answers exactly as before; nova-admin backup on PostgreSQL writes a SQLite
copy the same way."""

import json
import shutil

import pytest

from conftest import PgCluster, Stack
from support import befriend, make_group, recall, say, unique_name


def build_world(st):
    """Users, friendships, a group, messages with a reply, a recall, a
    delete-for-me, read marks, pending invitations, two sessions."""
    a, b, c, d = (st.client() for _ in range(4))
    for x in (a, b, c, d):
        x.register()
    private = befriend(a, b)
    befriend(a, c)
    group = make_group(a, [b, c])["chat_id"]
    m1 = say(a, private, "hello")
    say(b, private, "reply", reply_to=m1["message_id"])
    gone = say(c, group, "oops")
    recall(c, gone["message_id"])
    say(b, group, "to the group")
    d.ok("POST", "/friend/invite", {"id": a.user["id"], "comment": "hi", "source": "search"})
    second = st.client()
    second.user, second.password = b.user, b.password
    second.login()
    return [a, b, c, d, second], [private, group]


def answers(clients, chats):
    """Everything the API says to each client (by route)."""
    out = []
    for x in clients:
        seen = {}
        for path in ("/user", "/friend", "/friend/group/list", "/friend/invitation", "/chat"):
            seen[path] = x.ok("GET", path)
        for chat in chats:
            for path in (f"/chat/{chat}", f"/chat/{chat}/messages"):
                r = x.request("GET", path)
                seen[path] = (r.status_code, r.text)
        out.append(seen)
    return out


def outbox(st):
    return st.sql("SELECT id, action, data, recipients FROM outbox ORDER BY id")


def test_sqlite_to_postgres_keeps_every_answer_session_and_event(make_stack):
    old = make_stack(engine="sqlite")
    clients, chats = build_world(old)
    before = answers(clients, chats)
    events = outbox(old)
    newest = events[-1][0]
    old.stop()

    cluster = PgCluster.get()
    name = cluster.create_database()
    copy = old.admin("copy", cluster.uri(name))
    assert copy.returncode == 0, copy.stderr
    assert "messages" in copy.stdout and "copied" in copy.stdout
    assert name not in copy.stdout + copy.stderr  # nothing of the URI is printed
    new = Stack(pg_name=name, cluster=cluster).start()
    try:
        moved = [x.on(new) for x in clients]
        assert answers(moved, chats) == before  # old cookies still logged in
        assert outbox(new) == events
        assert new.admin("check").returncode == 0
        # A socket resuming from before the move gets exactly what it missed.
        a = moved[0]
        since = [e for e in events if a.user["id"] in json.loads(e[3])][0][0]
        want = [e[0] for e in events if e[0] > since and a.user["id"] in json.loads(e[3])]
        s = a.socket(query=f"?last_event_id={since}")
        got = []
        while len(got) < len(want):
            got.append(s.recv()["event_id"])
        assert got == want
        # New events continue after the old newest id.
        a.ok("PATCH", "/user", {"avatar_url": "https://example.com/after.png"})
        live = s.recv()
        assert live["action"] == "profile_change" and live["event_id"] == newest + 1
        s.close()
        # Copying into a database that holds data is refused, changing nothing.
        again = old.admin("copy", cluster.uri(name), check=False)
        assert again.returncode != 0 and "holds data" in again.stderr
        assert outbox(new)[-1][0] == newest + 1
    finally:
        new.stop_and_check()
    old.cleanup()


@pytest.mark.postgres_only
def test_postgres_backup_is_a_sqlite_copy_with_the_same_answers(stack, tmp_path):
    clients, chats = build_world(stack)
    before = answers(clients, chats)
    events = outbox(stack)
    path = tmp_path / "backup.db"
    r = stack.admin("backup", str(path))
    assert r.returncode == 0, r.stderr
    assert stack.admin("backup", str(path), check=False).returncode == 1  # never overwrites
    restored = Stack(engine="sqlite")
    shutil.copy(path, restored.db_path)
    restored.start()
    try:
        assert answers([x.on(restored) for x in clients], chats) == before
        assert outbox(restored) == events
    finally:
        restored.stop_and_check()


def test_a_fully_pruned_outbox_keeps_its_position(make_stack):
    old = make_stack(engine="sqlite")
    a = old.client()
    a.register()
    for i in range(3):
        a.ok("PATCH", "/user", {"avatar_url": f"https://example.com/{i}.png"})
    newest = outbox(old)[-1][0]
    # An old database whose outbox was pruned to nothing.
    w = old.writer()
    w.execute("DELETE FROM outbox")
    w.commit()
    w.close()
    cluster = PgCluster.get()
    name = cluster.create_database()
    assert old.admin("copy", cluster.uri(name)).returncode == 0
    new = Stack(pg_name=name, cluster=cluster).start()
    try:
        moved = a.on(new)
        s = moved.socket()
        moved.ok("PATCH", "/user", {"avatar_url": "https://example.com/new.png"})
        assert s.recv()["event_id"] == newest + 1
        s.close()
    finally:
        new.stop_and_check()
