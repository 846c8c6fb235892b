"""[ext] Search: the index itself (schema 010, docs/API.md "[ext] Search",
"Storage and cost"). It follows every change of a message in the same
transaction, nova-admin check holds it to the messages that are not
recalled (and catches an index that drifted), and the migration indexes
the messages a database already had."""

import urllib.parse

import pytest

from support import befriend_all, edit_as, make_group, private_chat_id, recall, say, uid


def hits(client, q, **params):
    r = client.get("/search?" + urllib.parse.urlencode(dict(q=q, **params)))
    assert r.status_code == 200, (r.status_code, r.text)
    return [h["message"]["message_id"] for h in r.json()["data"]["hits"]]


def check(stack):
    r = stack.admin("check", check=False)
    return r.returncode, r.stdout + r.stderr


def fts_integrity(stack):
    """FTS5's own check of the index against the messages it covers."""
    w = stack.writer().begin()
    try:
        w.execute("INSERT INTO message_search (message_search, rank) VALUES ('integrity-check', 1)")
    finally:
        w.commit()
        w.close()


def lifecycle(stack, alice, bob, carol):
    """Sends, an edit, a recall, a delete-for-me and a chat that goes away;
    the ids that must (and must not) be found afterwards."""
    befriend_all(alice, bob, carol)
    group = make_group(alice, [bob, carol])["chat_id"]
    private = private_chat_id(stack, alice, bob)
    kept = say(alice, group, "quokka kept")["message_id"]
    edited = say(bob, group, "quokka before")["message_id"]
    edit_as(bob, edited, "wombat after")
    recalled = say(carol, group, "quokka recalled")["message_id"]
    recall(carol, recalled)
    hidden = say(carol, group, "quokka hidden")["message_id"]
    recall(alice, hidden, delete=True)
    gone = say(alice, private, "quokka private")["message_id"]
    r = alice.delete(f"/friend/{uid(bob)}")
    assert r.status_code == 200, r.text
    return dict(group=group, kept=kept, edited=edited, recalled=recalled, hidden=hidden, gone=gone)


def test_the_index_follows_every_change_and_check_holds(stack, alice, bob, carol):
    ids = lifecycle(stack, alice, bob, carol)
    assert hits(alice, "quokka", sort="newest") == [ids["kept"]]
    assert hits(bob, "quokka", sort="newest") == [ids["hidden"], ids["kept"]]
    assert hits(bob, "wombat") == [ids["edited"]] and hits(bob, "before") == []
    assert hits(carol, "recalled") == []
    # The private chat went with the friendship: its message is gone.
    assert stack.sql("SELECT count(*) FROM messages WHERE id = ?", ids["gone"]) == [(0,)]
    rc, out = check(stack)
    assert rc == 0, out
    assert "search index" in out, out
    if not stack.pg_name:
        fts_integrity(stack)
        indexed = {r[0] for r in stack.sql("SELECT id FROM message_search_docsize")}
        live = {r[0] for r in stack.sql("SELECT id FROM messages WHERE recalled = 0")}
        assert indexed == live and ids["recalled"] not in indexed and ids["gone"] not in indexed


@pytest.mark.sqlite_only
def test_check_catches_an_index_that_drifted(stack, alice, bob):
    befriend_all(alice, bob)
    group = make_group(alice, [bob])["chat_id"]
    mid = say(alice, group, "numbat here")["message_id"]
    assert check(stack)[0] == 0
    w = stack.writer().begin()
    # What a lost trigger would leave: the message is no longer indexed.
    w.execute("INSERT INTO message_search (message_search, rowid, body, chat) "
              "VALUES ('delete', ?, 'numbat here', 'c' || ?)", (mid, group))
    w.commit()
    w.close()
    assert hits(alice, "numbat") == []
    rc, out = check(stack)
    assert rc != 0 and "the search index holds exactly the messages not recalled" in out, out
    assert f"({mid}, not indexed)" in out, out


def test_the_migration_indexes_the_messages_already_there(stack, alice, bob, carol):
    befriend_all(alice, bob, carol)
    group = make_group(alice, [bob, carol])["chat_id"]
    old = say(alice, group, "platypus from before")["message_id"]
    recalled = say(bob, group, "platypus recalled before")["message_id"]
    recall(bob, recalled)
    assert hits(carol, "platypus") == [old]
    # Back to schema 9: no index at all.
    stack.stop()
    w = stack.writer().begin()
    if stack.pg_name:
        w.execute("ALTER TABLE messages DROP COLUMN search_words")  # and its index
        w.execute("DROP TEXT SEARCH CONFIGURATION nova_search")
        w.execute("UPDATE nova_schema SET version = 9")
    else:
        for t in ("insert", "edit", "recall", "unrecall", "delete"):
            w.execute(f"DROP TRIGGER message_search_{t}")
        w.execute("DROP TABLE message_search")
        w.execute("DROP VIEW message_search_source")
        w.execute("PRAGMA user_version = 9")
    w.commit()
    w.close()
    stack.start()  # nova-admin migrate, then every process
    assert hits(carol, "platypus") == [old]
    new = say(carol, group, "platypus after")["message_id"]
    assert hits(alice, "platypus", sort="newest") == [new, old]
    assert check(stack)[0] == 0
