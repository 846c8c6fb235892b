"""Helpers for the friend, friend-group and invitation integration tests.

Everything here is written from API.md (§3 structures, §4 friends, §5
notifications); nothing is taken from the implementation.
"""

import json
import time

from conftest import PASSWORD, unique_name

BASIC_KEYS = {"id", "user_name", "avatar_url"}
DETAILED_KEYS = BASIC_KEYS | {"email", "phone"}
GROUP_KEYS = {"group_id", "group_name"}
FRIEND_KEYS = {"friend", "nickname", "group"}
INVITATION_KEYS = {"id", "sender", "receiver", "comment", "source"}
MESSAGE_BASIC_KEYS = {
    "message_id", "chat_id", "message", "send_time", "sender", "reply_to_id", "deleted",
}
MESSAGE_DETAILED_KEYS = MESSAGE_BASIC_KEYS | {"read_users", "reply_to", "replied_by"}
CHAT_KEYS = {
    "chat_id", "chat_name", "chat_owner", "chat_admins", "chat_members", "last_message",
}
RELATION_KEYS = {"chat", "nickname", "unread_count"}

SYSTEM_ID = 1
DELETED_ID = 2

# 100 code points made of 2-, 3- and 4-byte UTF-8 characters (API.md §2:
# lengths count code points, not bytes).
MULTI_100 = "é中😀" * 33 + "é"
assert len(MULTI_100) == 100


def is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def basic(user):
    """User.Basic of a User.Detailed (as returned by register)."""
    return {k: user[k] for k in ("id", "user_name", "avatar_url")}


def register(stack, name=None):
    """A registered Client. nginx rate-limits register per address (burst
    100, then 20/s); a 429 is retried, since many tests share one stack."""
    c = stack.client()
    name = name or unique_name()
    for _ in range(600):
        r = c.post("/user/register", {"user_name": name, "password": PASSWORD})
        if r.status_code != 429:
            break
        time.sleep(0.1)
    assert r.status_code == 200, (r.status_code, r.text)
    c.user = r.json()["data"]
    c.password = PASSWORD
    assert set(c.user) == DETAILED_KEYS, c.user
    return c


def second_client(stack, c):
    """Another browser logged in as the same user as c."""
    c2 = stack.client()
    for _ in range(600):
        r = c2.post("/user/login", {"user_name": c.user["user_name"], "password": c.password})
        if r.status_code != 429:
            break
        time.sleep(0.1)
    assert r.status_code == 200, (r.status_code, r.text)
    c2.user = r.json()["data"]
    c2.password = c.password
    return c2


def utf8_request(client, method, path, body):
    """Send body as raw UTF-8 JSON (not \\u escapes)."""
    return client.request(
        method, path, raw=json.dumps(body, ensure_ascii=False).encode("utf-8"),
        headers={"Content-Type": "application/json"},
    )


def utf8_ok(client, method, path, body):
    r = utf8_request(client, method, path, body)
    assert r.status_code == 200, (method, path, r.status_code, r.text)
    env = r.json()
    assert env["ok"] is True and "data" in env, env
    return env["data"]


# -- structure checks (API.md §3) ---------------------------------------------


def check_group(g, group_id=None, name=None):
    assert isinstance(g, dict) and set(g) == GROUP_KEYS, g
    assert is_int(g["group_id"]) and g["group_id"] > 0, g
    assert isinstance(g["group_name"], str), g
    if group_id is not None:
        assert g["group_id"] == group_id, g
    if name is not None:
        assert g["group_name"] == name, g
    return g


def check_friend(f, other, group, nickname=""):
    """f is a Friend whose friend is `other` (a User.Detailed), in `group`."""
    assert isinstance(f, dict) and set(f) == FRIEND_KEYS, f
    assert set(f["friend"]) == DETAILED_KEYS, f
    assert f["friend"] == other, (f["friend"], other)
    assert f["nickname"] == nickname, f
    check_group(f["group"])
    assert f["group"] == group, (f["group"], group)
    return f


def check_basic(u, user=None):
    assert isinstance(u, dict) and set(u) == BASIC_KEYS, u
    assert is_int(u["id"]) and isinstance(u["user_name"], str), u
    assert isinstance(u["avatar_url"], str), u
    if user is not None:
        assert u == basic(user), (u, user)
    return u


def check_system_message(m, chat_id, text):
    """A ChatMessage.Detailed written by #SYSTEM in chat_id."""
    assert isinstance(m, dict) and set(m) == MESSAGE_DETAILED_KEYS, m
    assert is_int(m["message_id"]) and m["message_id"] > 0, m
    assert m["chat_id"] == chat_id, m
    assert m["message"] == text, m
    assert isinstance(m["send_time"], (int, float)) and not isinstance(m["send_time"], bool), m
    check_basic(m["sender"])
    assert m["sender"]["id"] == SYSTEM_ID and m["sender"]["user_name"] == "#SYSTEM", m
    assert m["reply_to_id"] is None, m
    assert m["deleted"] is False, m
    assert isinstance(m["read_users"], list), m
    for u in m["read_users"]:
        check_basic(u)
    assert m["reply_to"] is None, m
    assert m["replied_by"] == [], m
    return m


def check_notification(msg, action):
    assert msg["action"] == action, msg
    assert msg["ok"] is True, msg
    assert msg["request_id"] == 0, msg
    assert is_int(msg.get("event_id")), msg
    return msg


# -- friend groups ------------------------------------------------------------


def groups(client):
    gs = client.ok("GET", "/friend/group/list")
    assert isinstance(gs, list), gs
    for g in gs:
        check_group(g)
    return gs


def default_group(client):
    gs = groups(client)
    assert gs and gs[0]["group_name"] == "", gs
    return gs[0]


def add_group(client, name=None):
    name = name or unique_name("g")
    g = utf8_ok(client, "POST", "/friend/group/add", {"group_name": name})
    return check_group(g, name=name)


# -- invitations and friendships ----------------------------------------------


def invite(a, b, comment="", source="search"):
    """a invites b; the answer must be null (a plain new invitation)."""
    data = utf8_ok(a, "POST", "/friend/invite", {"id": b.user["id"], "comment": comment, "source": source})
    assert data is None, data


def invitations(client):
    invs = client.ok("GET", "/friend/invitation")
    assert isinstance(invs, list), invs
    for inv in invs:
        assert set(inv) == INVITATION_KEYS, inv
        assert is_int(inv["id"]), inv
        check_basic(inv["sender"])
        check_basic(inv["receiver"])
        assert isinstance(inv["comment"], str), inv
        assert inv["source"] == "search" or is_int(inv["source"]), inv
        assert inv["receiver"] == basic(client.user), (inv, client.user)
    return invs


def invitation_from(receiver, sender):
    """The single pending invitation from sender in receiver's list."""
    mine = [i for i in invitations(receiver) if i["sender"]["id"] == sender.user["id"]]
    assert len(mine) == 1, mine
    return mine[0]


def befriend(a, b):
    """a invites b, b accepts. Returns (a's Friend of b, b's Friend of a)."""
    invite(a, b)
    inv = invitation_from(b, a)
    fb = b.ok("POST", f"/friend/invitation/{inv['id']}")
    check_friend(fb, a.user, default_group(b))
    fa = a.ok("GET", f"/friend/{b.user['id']}")
    check_friend(fa, b.user, default_group(a))
    return fa, fb


def friend_rows(stack, a_id, b_id):
    return stack.sql(
        "SELECT user_id, friend_id, nickname, group_id, chat_id FROM friends "
        "WHERE (user_id = ? AND friend_id = ?) OR (user_id = ? AND friend_id = ?) "
        "ORDER BY user_id",
        a_id, b_id, b_id, a_id,
    )


def private_chats_of_pair(stack, a_id, b_id):
    """Ids of the chats named '' whose members include both users."""
    rows = stack.sql(
        "SELECT c.id FROM chats c WHERE c.name = '' "
        "AND EXISTS (SELECT 1 FROM chat_members m WHERE m.chat_id = c.id AND m.user_id = ?) "
        "AND EXISTS (SELECT 1 FROM chat_members m WHERE m.chat_id = c.id AND m.user_id = ?) "
        "ORDER BY c.id",
        a_id, b_id,
    )
    return [r[0] for r in rows]


def check_friendship_db(stack, accepter, inviter):
    """The database state API.md §4 "Making a friendship" describes.
    Returns (chat_id, system message id)."""
    a, i = accepter.user["id"], inviter.user["id"]
    rows = friend_rows(stack, a, i)
    assert len(rows) == 2, rows
    chat_ids = {r[4] for r in rows}
    assert len(chat_ids) == 1, rows
    chat_id = chat_ids.pop()
    assert private_chats_of_pair(stack, a, i) == [chat_id]
    assert stack.sql("SELECT name, owner_id FROM chats WHERE id = ?", chat_id) == [("", a)]
    members = stack.sql("SELECT user_id FROM chat_members WHERE chat_id = ? ORDER BY user_id", chat_id)
    assert members == sorted([(a,), (i,)])
    rels = stack.sql("SELECT user_id FROM chat_relations WHERE chat_id = ? ORDER BY user_id", chat_id)
    assert rels == sorted([(a,), (i,)])
    msgs = stack.sql("SELECT id, sender_id, content FROM messages WHERE chat_id = ?", chat_id)
    text = f"{accepter.user['user_name']} added {inviter.user['user_name']} as a friend"
    assert len(msgs) == 1 and msgs[0][1:] == (SYSTEM_ID, text), msgs
    pending = stack.sql(
        "SELECT id FROM friend_invitations WHERE (sender_id = ? AND receiver_id = ?) "
        "OR (sender_id = ? AND receiver_id = ?)", a, i, i, a,
    )
    assert pending == [], pending
    return chat_id, msgs[0][0]


def chats_implemented(client):
    return client.get("/chat").status_code != 501


def check_private_chat_rest(client, chat_id, owner, other, text):
    """When GET /chat is implemented: the caller's UserChatRelation for the
    private chat matches API.md §3."""
    if not chats_implemented(client):
        return
    rels = client.ok("GET", "/chat")
    mine = [r for r in rels if r["chat"]["chat_id"] == chat_id]
    assert len(mine) == 1, rels
    rel = mine[0]
    assert set(rel) == RELATION_KEYS, rel
    assert rel["nickname"] == "" and is_int(rel["unread_count"]), rel
    chat = rel["chat"]
    assert set(chat) == CHAT_KEYS, chat
    assert chat["chat_name"] == "", chat
    assert chat["chat_owner"] == basic(owner.user), chat
    assert chat["chat_admins"] == [], chat
    assert sorted(chat["chat_members"], key=lambda u: u["id"]) == sorted(
        [basic(owner.user), basic(other.user)], key=lambda u: u["id"]
    ), chat
    lm = chat["last_message"]
    assert isinstance(lm, dict) and set(lm) == MESSAGE_BASIC_KEYS, lm
    assert lm["message"] == text and lm["sender"]["id"] == SYSTEM_ID, lm
    assert client.ok("GET", f"/chat/{chat_id}") == rel

