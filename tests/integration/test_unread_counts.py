"""Unread counts kept with the read watermark (schema 004).

unread_count (API.md §3 UserChatRelation) is the number of the chat's
messages sent after the viewer's last read. Nova keeps it as the chat's
message count less the viewer's read count instead of counting messages;
these tests hold every answer to the definition, counted from the
messages table itself, through sends, reads, joins, leaving and coming
back, and check that the migration counts an existing database's rows.
"""

import pytest

from support import (
    add_member, befriend, befriend_all, leave, make_group, mark_read, relations, remove_member,
    say, say_many, unread,
)


def counted(stack, client, chat_id):
    """The definition, from the tables: messages after the watermark."""
    ((n,),) = stack.sql(
        "SELECT count(*) FROM messages m JOIN chat_relations r ON r.chat_id = m.chat_id "
        "WHERE r.chat_id = ? AND r.user_id = ? AND m.id > r.last_read_id",
        chat_id, client.user["id"])
    return n


def expect(stack, client, chat_id, n):
    assert unread(client, chat_id) == n == counted(stack, client, chat_id)
    listed = {r["chat"]["chat_id"]: r["unread_count"] for r in relations(client)}
    assert listed.get(chat_id) == n, listed


def check_holds(stack):
    r = stack.admin("check", check=False)
    assert r.returncode == 0, r.stdout + r.stderr


def test_counts_follow_sends_reads_and_members(stack, alice, bob, carol, dave):
    befriend_all(alice, bob, carol, dave)
    cid = make_group(alice, [bob, carol])["chat_id"]
    # The creation's system message comes after the members' watermarks.
    expect(stack, bob, cid, 1)
    say_many(alice, cid, 12)
    expect(stack, bob, cid, 13)
    expect(stack, alice, cid, 0)  # sending reads the chat
    mark_read(bob, cid)
    expect(stack, bob, cid, 0)
    expect(stack, carol, cid, 13)
    say(carol, cid)
    expect(stack, bob, cid, 1)
    expect(stack, carol, cid, 0)
    expect(stack, alice, cid, 1)

    # A member who joins has read everything before their joining; the
    # approval's own system message comes after.
    add_member(alice, cid, dave)
    expect(stack, dave, cid, 1)
    say_many(bob, cid, 3)
    expect(stack, dave, cid, 4)

    # Leaving keeps the relation; the count goes on growing, and coming
    # back moves the watermark (and its count) to the newest message.
    leave(carol, cid)
    say_many(alice, cid, 2)
    ((carol_count,),) = stack.sql(
        "SELECT c.message_count - r.read_count FROM chats c JOIN chat_relations r "
        "ON r.chat_id = c.id WHERE c.id = ? AND r.user_id = ?", cid, carol.user["id"])
    assert carol_count == counted(stack, carol, cid) > 0
    add_member(alice, cid, carol)
    expect(stack, carol, cid, 1)
    remove_member(alice, cid, dave)
    say(alice, cid)
    expect(stack, bob, cid, counted(stack, bob, cid))
    check_holds(stack)


def test_private_chat_counts(stack, alice, bob):
    befriend(alice, bob)
    pid = next(r["chat"]["chat_id"] for r in relations(alice) if r["chat"]["chat_name"] == "")
    before = counted(stack, bob, pid)
    say_many(alice, pid, 5)
    expect(stack, bob, pid, before + 5)
    mark_read(bob, pid)
    expect(stack, bob, pid, 0)
    check_holds(stack)


def test_migration_counts_an_existing_database(make_stack):
    """A database without counts with chats read in part: the migration's
    counting statements count every chat's messages and every reader's, and
    the answers are the same as before."""
    from support import register

    st = make_stack()
    a, b, c = register(st), register(st), register(st)
    befriend_all(a, b, c)
    g1 = make_group(a, [b, c])["chat_id"]
    g2 = make_group(b, [a])["chat_id"]
    say_many(a, g1, 7)
    mark_read(c, g1)
    say_many(b, g1, 4)
    say_many(a, g2, 3)
    users = (a, b, c)
    before = {(u.user["id"], r["chat"]["chat_id"]): r["unread_count"]
              for u in users for r in relations(u)}
    assert before[(c.user["id"], g1)] == 4 == before[(a.user["id"], g1)], before
    assert before[(b.user["id"], g1)] == 0 and before[(a.user["id"], g2)] == 0, before

    # The state before the migration (no counts), then the migration's
    # own counting statements (its ALTERs are applied already).
    from conftest import ROOT

    sql = (ROOT / "sql" / ("postgres" if st.pg_name else "") / "004_unread_counts.sql").read_text()
    counting = [q[q.index("UPDATE"):] for q in sql.split(";") if "UPDATE" in q]
    assert len(counting) == 2, counting
    w = st.writer().begin()
    w.execute("UPDATE chats SET message_count = 0")
    w.execute("UPDATE chat_relations SET read_count = 0")
    for q in counting:
        w.execute(q)
    w.commit()
    w.close()
    after = {(u.user["id"], r["chat"]["chat_id"]): r["unread_count"]
             for u in users for r in relations(u)}
    assert after == before
    check_holds(st)
    say(a, g1)
    assert unread(c, g1) == 5
