"""Moving up (and back): nova-admin copy DEST copies a database into a new
one of either engine with every id kept, so that a stack started on the
copy answers exactly what the old one did, keeps its sessions, replays the
events a socket missed and carries on numbering after them; it refuses a
destination that holds anything; backup on PostgreSQL is the same copy
into a SQLite file (test_operations.py restores one)."""

import json
import os
import sqlite3
import subprocess

import pytest

from conftest import BUILD, PgCluster, Stack, barrier, outbox_max
from support import (add_group, befriend, invite, invite_to, leave, make_group, mark_read, recall,
                     register, say, second_client, set_admin, uid,
                     wait_for)

# Every copied table with its primary key: compared row by row.
TABLES = {
    "users": "id", "sessions": "id", "friend_groups": "id", "chats": "id",
    "friends": "user_id, friend_id", "friend_invitations": "id", "chat_members": "id",
    "chat_relations": "chat_id, user_id", "messages": "id",
    "message_deletions": "user_id, message_id", "chat_invitations": "id", "outbox": "id",
    "attachments": "id",  # [ext] attachments
}


@pytest.fixture
def later():
    """later(stack): stop and check the stack after the test, started or not."""
    stacks = []
    yield stacks.append
    for st in stacks:
        st.stop_and_check()


# Columns an engine derives itself, not copied: PostgreSQL's words of a
# message for search (schema 010).
DERIVED = {"messages": {"search_words"}}


def table_rows(st):
    out = {}
    for t, key in TABLES.items():
        cols = "*"
        if st.pg_name and t in DERIVED:
            names = [r[0] for r in st.sql(
                "SELECT column_name FROM information_schema.columns WHERE table_name = ? "
                "ORDER BY ordinal_position", t)]
            cols = ", ".join(n for n in names if n not in DERIVED[t])
        out[t] = st.sql(f"SELECT {cols} FROM {t} ORDER BY {key}")
    return out


def outbox_bounds(st):
    """(oldest retained id, newest id handed out), as each engine keeps them."""
    newest = ("SELECT max(id) FROM outbox" if st.pg_name
              else "SELECT seq FROM sqlite_sequence WHERE name = 'outbox'")
    return st.sql(f"SELECT (SELECT min(id) FROM outbox), ({newest})")[0]


def copy(source, dest, check=True):
    """nova-admin copy DEST, from the database of the stack source."""
    return source.admin("copy", dest, check=check)


def build_world(st):
    """Five users and everything they can make, through the API. Returns
    (the users' clients, a second session of each, facts)."""
    a, b, c, d, e = (register(st) for _ in range(5))
    befriend(a, b)
    befriend(a, c)
    befriend(b, c)
    befriend(d, e)
    befriend(a, d)
    a.ok("PATCH", "/user", {"old_password": a.password, "email": "a@example.com",
                            "phone": "13800000000"})
    work = add_group(a, "work")
    add_group(a, "unused")
    a.ok("PATCH", f"/friend/{uid(b)}", {"nickname": "bobby", "group_id": work["group_id"]})
    c.ok("PATCH", f"/friend/{uid(a)}", {"nickname": "the boss"})
    # Before this, a has seen every event: a socket of a resumes from here.
    mid = outbox_max(st)

    chat = make_group(a, [b, c, d])["chat_id"]
    set_admin(a, chat, b)
    first = say(a, chat, "hello all")
    say(b, chat, "hi back", reply_to=first["message_id"])
    recalled = say(c, chat, "to be recalled")
    recall(c, recalled["message_id"])
    hidden = say(d, chat, "hidden by a")
    recall(a, hidden["message_id"], delete=True)
    mark_read(b, chat)
    say(c, chat, "unread by some")
    # [ext] attachments: one sent, one not yet.
    sent = c.ok("POST", f"/chat/{chat}/attachment?name=sent.txt", raw=b"a file")
    sock = c.socket()
    rid = sock.request("send_message", {"chat_id": chat, "content": "", "attachment_id":
                                        sent["attachment_id"]})
    wait_for(sock, lambda m: m.get("action") == "new_message", rid)
    sock.close()
    c.ok("POST", f"/chat/{chat}/attachment?name=unsent.bin", raw=b"\x00\x01")
    # Pending invitations: to a friendship, and to the group (by a member).
    invite(e, a, comment="hi from e")
    invite(c, d, comment="c meets d", source=chat)
    invite_to(d, chat, e)
    # A deleted group at the top of the chats' ids: it is never handed out
    # again, on either engine.
    gone = make_group(a, [b], chat_name="short-lived")["chat_id"]
    leave(a, gone)
    seconds = [second_client(st, x) for x in (a, b, c, d, e)]
    return [a, b, c, d, e], seconds, {"chat": chat, "gone": gone, "mid": mid}


def answer(c, method, path, body=None):
    r = c.request(method, path, body)
    return r.status_code, r.json()


def answers(users):
    """Everything each user can read, as the API answers it."""
    ids = [1, 2] + [uid(u) for u in users]
    out = {}
    for u in users:
        seen = {"user": answer(u, "GET", "/user"),
                "groups": answer(u, "GET", "/friend/group/list"),
                "friends": answer(u, "GET", "/friend"),
                "invitations": answer(u, "GET", "/friend/invitation"),
                "chats": answer(u, "GET", "/chat"),
                "find": answer(u, "POST", "/friend/find", {"name_contains": "u"})}
        for i in ids:
            seen[f"user {i}"] = answer(u, "GET", f"/user/{i}")
            seen[f"friend {i}"] = answer(u, "GET", f"/friend/{i}")
        for g in seen["groups"][1]["data"]:
            seen[f"group {g['group_id']}"] = answer(u, "GET", f"/friend/group/{g['group_id']}")
        for rel in seen["chats"][1]["data"]:
            cid = rel["chat"]["chat_id"]
            seen[f"chat {cid}"] = answer(u, "GET", f"/chat/{cid}")
            seen[f"messages {cid}"] = msgs = answer(u, "GET", f"/chat/{cid}/messages")
            seen[f"page {cid}"] = answer(u, "GET", f"/chat/{cid}/messages?limit=2")
            if len(msgs[1]["data"]) > 2:
                before = msgs[1]["data"][1]["message_id"]
                seen[f"older {cid}"] = answer(u, "GET", f"/chat/{cid}/messages?limit=2&before={before}")
            seen[f"invitations {cid}"] = answer(u, "GET", f"/chat/{cid}/invitation")
            seen[f"filter {cid}"] = answer(u, "POST", f"/chat/{cid}/filter", {"begin_time": 0})
        out[u.user["user_name"]] = seen
    return out


def on(st, clients):
    """The same browsers (cookies), talking to stack st."""
    out = []
    for c in clients:
        again = st.client().with_token(c.token)
        again.user, again.password = c.user, c.password
        out.append(again)
    return out


def events_for(rows, user_id, after):
    """The outbox rows a socket of user_id that saw `after` has missed."""
    return [r for r in rows if r[0] > after and r[5] is None and user_id in json.loads(r[4])]


def check_the_move(old_rows, new, users, seconds, facts, before):
    """The stack new runs on a copy of the database whose rows were
    old_rows and whose users answered `before`."""
    assert outbox_bounds(new) == facts["bounds"]
    moved, moved_seconds = on(new, users), on(new, seconds)
    assert answers(moved) == before
    for c in moved_seconds:  # every old cookie is still logged in
        assert c.ok("GET", "/user")["id"] == c.user["id"]
    a = moved[0]

    # A socket of a that last saw `mid` gets exactly what it missed, as it
    # was then, and then new events numbered after the old newest.
    outbox = old_rows["outbox"]
    missed = events_for(outbox, uid(a), facts["mid"])
    assert len(missed) > 5
    s = a.socket(query=f"?last_event_id={facts['mid']}")
    got = barrier(a, s)
    assert [(m["event_id"], m["action"], m["data"]) for m in got] == \
        [(r[0], r[2], json.loads(r[3])) for r in missed]
    assert all(m["request_id"] == 0 for m in got)
    a.user = a.ok("PATCH", "/user", {"avatar_url": "https://example.com/new.png"})
    live = s.recv()
    assert live["action"] == "profile_change" and live["event_id"] > outbox[-1][0] + 1, live
    s.close()

    # New rows get new ids: after every id copied, and after the deleted
    # chat (its id is never handed out again).
    b = moved[1]
    chat = make_group(a, [b], chat_name="after-the-move")["chat_id"]
    assert chat > facts["gone"] > max(r[0] for r in old_rows["chats"])
    message = say(b, chat, "on the new engine")
    assert message["message_id"] > max(r[0] for r in old_rows["messages"])
    newcomer = register(new)
    assert uid(newcomer) > max(r[0] for r in old_rows["users"])
    g = add_group(newcomer, "fresh")
    assert g["group_id"] > max(r[0] for r in old_rows["friend_groups"])
    assert second_client(new, newcomer).ok("GET", "/user")["id"] == uid(newcomer)
    check = new.admin("check")
    assert check.returncode == 0 and "BROKEN" not in check.stdout, check.stdout


def record(old):
    """Build a world on the serving stack old, record what it answers, stop
    it. Returns (users, seconds, facts, answers, rows)."""
    users, seconds, facts = build_world(old)
    before = answers(users)
    old.stop()
    facts["bounds"] = outbox_bounds(old)
    return users, seconds, facts, before, table_rows(old)


def on_file(path):
    """A (not yet started) SQLite stack on the database file at path."""
    st = Stack(engine="sqlite", env={"NOVA_DB": str(path)})
    st.db_path = path
    return st


def test_sqlite_to_postgres_answers_the_same_and_resumes_sockets(make_stack, later):
    old = make_stack(engine="sqlite")
    users, seconds, facts, before, rows = record(old)
    new = Stack(pg_name=PgCluster.get().create_database())
    later(new)
    out = copy(old, new.db_uri()).stdout
    lines = out.splitlines()
    assert lines[0] == "applied 001_init", out
    for t in TABLES:
        copied = len(rows[t]) - (2 if t == "users" else 0)  # not the system users
        assert [t, str(copied), "rows"] in [line.split() for line in lines], (t, out)
    assert lines[-1].startswith("copied ") and lines[-1].endswith(" s"), out
    assert "position" not in out  # the newest event was there to copy
    assert table_rows(new) == rows
    new.start()
    check_the_move(rows, new, users, seconds, facts, before)


def test_postgres_to_sqlite_answers_the_same_and_resumes_sockets(tmp_path, make_stack, later):
    old = make_stack(engine="postgres")
    users, seconds, facts, before, rows = record(old)
    copy(old, str(tmp_path / "moved.db"))
    new = on_file(tmp_path / "moved.db")
    later(new)
    assert table_rows(new) == rows
    # AUTOINCREMENT's record is where PostgreSQL's sequences were.
    seq = dict(new.sql("SELECT name, seq FROM sqlite_sequence"))
    assert seq["outbox"] == rows["outbox"][-1][0]
    assert seq["chats"] == facts["gone"]
    new.start()
    check_the_move(rows, new, users, seconds, facts, before)


def test_copy_refuses_a_destination_that_holds_anything(tmp_path, make_stack, later):
    source = make_stack(engine="sqlite")
    register(source)
    busy = make_stack(engine="postgres")  # a database in use, with a user
    register(busy)
    busy.stop()
    theirs = PgCluster.get().create_database()  # somebody else's database
    con = PgCluster.get().connect(theirs)
    con.cursor().execute("CREATE TABLE notes (id integer PRIMARY KEY, body text)")
    con.cursor().execute("INSERT INTO notes VALUES (1, 'mine')")
    con.close()
    file_of_theirs = tmp_path / "theirs.db"
    con = sqlite3.connect(str(file_of_theirs))
    con.executescript("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
    con.close()
    try:
        before = table_rows(busy)
        r = copy(source, busy.db_uri(), check=False)
        assert r.returncode == 1 and "holds data already (table users)" in r.stderr, r.stderr
        assert table_rows(busy) == before

        # The source itself (a SQLite file), and a second copy into a first.
        r = copy(source, str(source.db_path), check=False)
        assert r.returncode == 1 and "holds data already" in r.stderr, r.stderr
        copy(source, str(tmp_path / "once.db"))
        once = on_file(tmp_path / "once.db")
        later(once)
        before = table_rows(once)
        r = copy(source, str(once.db_path), check=False)
        assert r.returncode == 1 and "holds data already" in r.stderr, r.stderr
        assert table_rows(once) == before

        # Databases that are not Nova's are not migrated, nor written.
        r = copy(source, PgCluster.get().uri(theirs), check=False)
        assert r.returncode == 1 and "not a Nova database but has tables (notes)" in r.stderr
        con = PgCluster.get().connect(theirs)
        cur = con.cursor()
        cur.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        assert cur.fetchall() == [("notes",)]
        con.close()
        r = copy(source, str(file_of_theirs), check=False)
        assert r.returncode == 1 and "not a Nova database" in r.stderr
        con = sqlite3.connect(str(file_of_theirs))
        assert con.execute("SELECT name FROM sqlite_master").fetchall() == [("t",)]
        con.close()

        # Bad arguments.
        r = source.admin("copy", check=False)
        assert r.returncode == 2 and "give the destination" in r.stderr
    finally:
        PgCluster.get().drop_database(theirs)


def test_a_fully_pruned_outbox_keeps_its_position(tmp_path, make_stack, later):
    """An old SQLite database whose outbox was pruned to nothing still knows
    its position (sqlite_sequence); the copy carries it in an event
    addressed to nobody, on PostgreSQL (where the position is max(id)) as on
    SQLite, so that sockets resume without a resync and ids go on."""
    old = make_stack(engine="sqlite")
    a, b = register(old), register(old)
    befriend(a, b)
    newest = outbox_max(old)
    assert old.admin("outbox", "prune", "--older-than", "0").stdout.startswith("pruned ")
    old.stop()
    w = old.writer()
    w.execute("DELETE FROM outbox")
    w.close()
    assert old.sql("SELECT seq FROM sqlite_sequence WHERE name = 'outbox'") == [(newest,)]
    position = [(newest, "position", "{}", "[]", None, None, 0)]

    pg = Stack(pg_name=PgCluster.get().create_database())
    later(pg)
    out = copy(old, pg.db_uri()).stdout
    assert f"outbox position #{newest} kept" in out, out
    copy(old, str(tmp_path / "copy.db"))
    lite = on_file(tmp_path / "copy.db")
    later(lite)
    assert lite.sql("SELECT seq FROM sqlite_sequence WHERE name = 'outbox'") == [(newest,)]
    for st in (pg, lite):
        assert st.sql("SELECT id, action, data, recipients, session_id, origin, request_id "
                      "FROM outbox") == position
        st.start()
        moved = on(st, [a])[0]
        # Seen everything: nothing to replay, no resync.
        s = moved.socket(query=f"?last_event_id={newest}")
        assert barrier(moved, s) == []
        s.close()
        assert outbox_max(st) == newest + 1
        # Missed what was pruned: resync, as before the move.
        s = moved.socket(query=f"?last_event_id={newest - 2}")
        assert s.recv()["action"] == "resync_required"
        s.close()
        assert st.admin("check").returncode == 0
        st.stop()


def test_copy_and_backup_print_their_usage():
    r = subprocess.run([str(BUILD / "nova-admin"), "--help"], capture_output=True, text=True,
                       env=dict(os.environ, NOVA_CONFIG=""))
    assert r.returncode == 0
    assert "  copy DEST " in r.stdout and "  backup FILE " in r.stdout
