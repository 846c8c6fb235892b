"""Helpers shared by the integration tests: shapes and checks of every
structure (API.md §3), friends, groups and invitations (§4), chats and
messages, socket actions and notifications (§5), account deletion (§6).

Everything here is written from API.md; nothing is taken from the
implementation. The database is only read (stack.sql).
"""


import json
import time

from conftest import PASSWORD, barrier, barrier_multi, fail, outbox_max, unique_name

BASIC_KEYS = {"id", "user_name", "avatar_url"}
DETAILED_KEYS = BASIC_KEYS | {"email", "phone"}
GROUP_KEYS = {"group_id", "group_name"}
FRIEND_KEYS = {"friend", "nickname", "group"}
INVITATION_KEYS = {"id", "sender", "receiver", "comment", "source"}
MESSAGE_BASIC_KEYS = {
    "message_id", "chat_id", "message", "send_time", "sender", "reply_to_id", "deleted",
    "edited_at",  # [ext] edit and react
}
MESSAGE_DETAILED_KEYS = MESSAGE_BASIC_KEYS | {"read_users", "reply_to", "replied_by",
                                              "reactions"}  # [ext] edit and react
MESSAGE_DETAILED_KEYS = MESSAGE_DETAILED_KEYS | {"attachment"}  # [ext] attachments
ATTACHMENT_KEYS = {"attachment_id", "chat_id", "message_id", "name", "size", "mime", "url",
                   "upload_time"}
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


def until(fn, timeout=30, step=0.05):
    """Call fn until it returns something true; that value (fails after
    timeout seconds)."""
    deadline = time.time() + timeout
    while True:
        value = fn()
        if value:
            return value
        assert time.time() < deadline, "timed out"
        time.sleep(step)


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


def befriend_views(a, b):
    """a invites b, b accepts, both Friend views checked. Returns (a's
    Friend of b, b's Friend of a)."""
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


# -- chats and messages --------------------------------------------------------

CHAT_INVITATION_KEYS = {"invitation_id", "chat_id", "user", "invited_by", "created_at"}
UNKNOWN = 999999999  # an id that names nothing
RECALLED_TEXT = "Message recalled"


def is_num(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def by_id(users):
    return sorted(users, key=lambda u: u["id"])


def basics(*clients):
    """The User.Basic of each client, sorted by id."""
    return by_id([basic(c.user) for c in clients])


def uid(client):
    return client.user["id"]


def name(client):
    return client.user["user_name"]


# -- friends ------------------------------------------------------------------


def private_chat_id(stack, a, b):
    rows = stack.sql("SELECT chat_id FROM friends WHERE user_id = ? AND friend_id = ?", uid(a), uid(b))
    assert len(rows) == 1, rows
    return rows[0][0]


def befriend(a, b):
    """Make a and b friends (a invites, b accepts; the Friend views are
    checked); return their private chat id."""
    befriend_views(a, b)
    return private_chat_id(a.stack, a, b)


def befriend_all(a, *others):
    return [befriend(a, o) for o in others]


# -- structure checks (API.md §3) ---------------------------------------------


def check_message_basic(m):
    assert isinstance(m, dict) and set(m) == MESSAGE_BASIC_KEYS, m
    assert is_int(m["message_id"]) and m["message_id"] > 0, m
    assert is_int(m["chat_id"]) and m["chat_id"] > 0, m
    assert isinstance(m["message"], str), m
    assert is_num(m["send_time"]), m
    check_basic(m["sender"])
    assert m["reply_to_id"] is None or is_int(m["reply_to_id"]), m
    assert isinstance(m["deleted"], bool), m
    return m


def check_message_detailed(m):
    assert isinstance(m, dict) and set(m) == MESSAGE_DETAILED_KEYS, m
    check_message_basic({k: m[k] for k in MESSAGE_BASIC_KEYS})
    assert isinstance(m["read_users"], list), m
    for u in m["read_users"]:
        check_basic(u)
    assert len({u["id"] for u in m["read_users"]}) == len(m["read_users"]), m
    if m["reply_to"] is None:
        assert m["reply_to_id"] is None, m
    else:
        check_message_basic(m["reply_to"])
        assert m["reply_to"]["message_id"] == m["reply_to_id"], m
        assert m["reply_to"]["chat_id"] == m["chat_id"], m
    assert isinstance(m["replied_by"], list), m
    for r in m["replied_by"]:
        check_message_basic(r)
        assert r["reply_to_id"] == m["message_id"], (m, r)
    a = m["attachment"]  # [ext] attachments
    assert a is None or (set(a) == ATTACHMENT_KEYS and a["message_id"] == m["message_id"]
                         and a["chat_id"] == m["chat_id"] and not m["deleted"]), m
    return m


def basic_of(m):
    """The ChatMessage.Basic part of a ChatMessage.Detailed."""
    return {k: m[k] for k in MESSAGE_BASIC_KEYS}


def check_chat(c):
    assert isinstance(c, dict) and set(c) == CHAT_KEYS, c
    assert is_int(c["chat_id"]) and c["chat_id"] > 0, c
    assert isinstance(c["chat_name"], str), c
    check_basic(c["chat_owner"])
    assert isinstance(c["chat_admins"], list) and isinstance(c["chat_members"], list), c
    for u in c["chat_admins"] + c["chat_members"]:
        check_basic(u)
    member_ids = [u["id"] for u in c["chat_members"]]
    assert len(set(member_ids)) == len(member_ids), c
    assert c["chat_owner"]["id"] in member_ids, c
    admin_ids = [u["id"] for u in c["chat_admins"]]
    assert len(set(admin_ids)) == len(admin_ids), c
    assert set(admin_ids) <= set(member_ids), c
    assert c["chat_owner"]["id"] not in admin_ids, c
    lm = c["last_message"]
    if lm != "":
        check_message_basic(lm)
        assert lm["chat_id"] == c["chat_id"], c
        assert lm["deleted"] is False, c
    return c


def expect_chat(c, chat_id, chat_name, owner, members, admins=(), last_message=None):
    """c is exactly this chat. members: clients (the owner must be among
    them); admins: clients; last_message: a ChatMessage.Basic, "" or None
    (= do not compare)."""
    check_chat(c)
    assert c["chat_id"] == chat_id, c
    assert c["chat_name"] == chat_name, c
    assert c["chat_owner"] == basic(owner.user), c
    assert by_id(c["chat_members"]) == basics(*members), c
    assert by_id(c["chat_admins"]) == basics(*admins), c
    if last_message is not None:
        assert c["last_message"] == last_message, (c["last_message"], last_message)
    return c


def check_relation(r):
    assert isinstance(r, dict) and set(r) == RELATION_KEYS, r
    check_chat(r["chat"])
    assert r["nickname"] == "", r
    assert is_int(r["unread_count"]) and r["unread_count"] >= 0, r
    return r


def check_chat_invitation(inv):
    assert isinstance(inv, dict) and set(inv) == CHAT_INVITATION_KEYS, inv
    assert is_int(inv["invitation_id"]) and inv["invitation_id"] > 0, inv
    assert is_int(inv["chat_id"]), inv
    check_basic(inv["user"])
    check_basic(inv["invited_by"])
    assert is_num(inv["created_at"]), inv
    return inv


def check_system_detailed(m, chat_id, text):
    check_message_detailed(m)
    assert m["chat_id"] == chat_id, m
    assert m["message"] == text, m
    assert m["sender"]["id"] == SYSTEM_ID and m["sender"]["user_name"] == "#SYSTEM", m
    assert m["reply_to_id"] is None and m["reply_to"] is None, m
    assert m["deleted"] is False, m
    assert m["replied_by"] == [], m
    return m


def check_note(msg, action, request_id=0):
    """A notification (API.md §5) from the outbox."""
    assert msg.get("action") == action, msg
    assert msg["ok"] is True, msg
    assert msg["request_id"] == request_id, msg
    assert is_int(msg.get("event_id")), msg
    assert set(msg) == {"action", "request_id", "ok", "data", "event_id"}, msg
    return msg


def check_error_packet(msg, request_id):
    assert msg == {
        "action": "error", "request_id": request_id, "ok": False, "code": 400,
        "error": msg.get("error"),
    }, msg
    assert isinstance(msg["error"], str) and msg["error"], msg
    return msg


def actions(events):
    return [e["action"] for e in events]


# -- system message texts (API.md §3) -----------------------------------------


def created_text(chat_name, owner, members):
    """members: every member in order, owner first."""
    return f"Group {chat_name} created by {name(owner)} with " + ", ".join(name(m) for m in members)


def approved_text(approver, member, inviter):
    return f"{name(approver)} approved {name(member)} to join the group, invited by {name(inviter)}"


def removed_text(remover, member):
    return f"{name(remover)} removed {name(member)} from the group"


def left_text(member):
    return f"{name(member)} left the chat"


# -- REST helpers --------------------------------------------------------------


def make_group(owner, members=(), chat_name=None):
    """owner creates a group with members (clients, friends of the owner).
    Checks the answer (API.md §4 POST /chat/new) and returns the Chat."""
    chat_name = chat_name or unique_name("grp")
    chat = utf8_ok(owner, "POST", "/chat/new",
                   {"chat_name": chat_name, "chat_members": [uid(m) for m in members]})
    everyone = [owner] + [m for m in members if m is not owner]
    expect_chat(chat, chat["chat_id"], chat_name, owner, everyone)
    lm = chat["last_message"]
    assert isinstance(lm, dict), chat
    assert lm["message"] == created_text(chat_name, owner, everyone), lm
    assert lm["sender"]["id"] == SYSTEM_ID, lm
    return chat


def relation(client, chat_id):
    r = client.ok("GET", f"/chat/{chat_id}")
    check_relation(r)
    assert r["chat"]["chat_id"] == chat_id, r
    return r


def relations(client):
    rs = client.ok("GET", "/chat")
    assert isinstance(rs, list), rs
    for r in rs:
        check_relation(r)
    ids = [r["chat"]["chat_id"] for r in rs]
    assert len(set(ids)) == len(ids), rs
    return rs


def chat_of(client, chat_id):
    return relation(client, chat_id)["chat"]


def unread(client, chat_id):
    return relation(client, chat_id)["unread_count"]


def messages(client, chat_id, query=""):
    ms = client.ok("GET", f"/chat/{chat_id}/messages{query}")
    assert isinstance(ms, list), ms
    for m in ms:
        check_message_detailed(m)
        assert m["chat_id"] == chat_id, m
    ids = [m["message_id"] for m in ms]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == len(ids), ids  # newest first
    return ms


def message_in(client, chat_id, message_id):
    found = [m for m in messages(client, chat_id) if m["message_id"] == message_id]
    assert len(found) == 1, (message_id, found)
    return found[0]


def filter_messages(client, chat_id, body):
    ms = utf8_ok(client, "POST", f"/chat/{chat_id}/filter", body)
    assert isinstance(ms, list), ms
    for m in ms:
        check_message_detailed(m)
        assert m["chat_id"] == chat_id, m
    ids = [m["message_id"] for m in ms]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == len(ids), ids
    return ms


def chat_invitations(client, chat_id):
    invs = client.ok("GET", f"/chat/{chat_id}/invitation")
    assert isinstance(invs, list), invs
    for inv in invs:
        check_chat_invitation(inv)
        assert inv["chat_id"] == chat_id, inv
    return invs


def invite_to(inviter, chat_id, user):
    assert inviter.ok("POST", f"/chat/{chat_id}/invite", {"user_id": uid(user)}) is None


def approve(approver, chat_id, user):
    assert approver.ok("POST", f"/chat/{chat_id}/invitation/{uid(user)}") is None


def decline(approver, chat_id, user):
    assert approver.ok("DELETE", f"/chat/{chat_id}/invitation/{uid(user)}") is None


def add_member(owner, chat_id, user, inviter=None):
    """inviter (default owner) invites user, owner approves."""
    invite_to(inviter or owner, chat_id, user)
    approve(owner, chat_id, user)


def set_admin(owner, chat_id, member, state=True):
    assert owner.ok("POST", f"/chat/{chat_id}/{uid(member)}/admin", state) is None


def set_owner(owner, chat_id, new_owner):
    assert owner.ok("POST", f"/chat/{chat_id}/set_owner", {"chat_owner": uid(new_owner)}) is None


def remove_member(remover, chat_id, member):
    assert remover.ok("DELETE", f"/chat/{chat_id}/{uid(member)}") is None


def leave(client, chat_id):
    assert client.ok("DELETE", f"/chat/{chat_id}") is None


def chat_member_rows(stack, chat_id):
    """[(user_id, is_admin)] of the chat, by user id."""
    return stack.sql(
        "SELECT user_id, is_admin FROM chat_members WHERE chat_id = ? ORDER BY user_id", chat_id)


def table_counts(stack):
    """Row counts of the state tables (not the outbox, the daemons, nor the
    sessions, which a background expiry job may touch)."""
    out = {}
    for t in ("users", "friend_groups", "friends", "friend_invitations", "chats",
              "chat_members", "chat_relations", "messages", "message_deletions",
              "chat_invitations"):
        out[t] = stack.sql(f"SELECT count(*) FROM {t}")[0][0]
    return out


# -- sockets -------------------------------------------------------------------


def wait_for(sock, pred, rid=None, timeout=10):
    """Read sock until pred(msg) holds, or an error packet for request rid
    arrives. Returns (what came before, that packet)."""
    seen = []
    while True:
        msg = sock.recv(timeout)
        if rid is not None and msg.get("action") == "error" and msg.get("request_id") == rid:
            return seen, msg
        if pred(msg):
            return seen, msg
        seen.append(msg)


def is_new_message(chat_id, content, sender_id):
    def pred(msg):
        if msg.get("action") != "new_message":
            return False
        m = (msg.get("data") or {}).get("message") or {}
        return (m.get("chat_id") == chat_id and m.get("message") == content
                and (m.get("sender") or {}).get("id") == sender_id)
    return pred


def is_note(action, **data):
    def pred(msg):
        if msg.get("action") != action:
            return False
        d = msg.get("data") or {}
        return all(d.get(k) == v for k, v in data.items())
    return pred


def send_message(sock, client, chat_id, content, reply_to=None):
    """send_message on sock; wait for its own new_message (which proves the
    message is committed). Returns (request_id, packets before it, the
    new_message packet)."""
    data = {"chat_id": chat_id, "content": content}
    if reply_to is not None:
        data["reply_to"] = reply_to
    rid = sock.request("send_message", data)
    seen, msg = wait_for(sock, is_new_message(chat_id, content, uid(client)), rid)
    assert msg["action"] == "new_message", msg
    check_message_detailed(msg["data"]["message"])
    return rid, seen, msg


def say(client, chat_id, content=None, reply_to=None):
    """Send a message through a short-lived socket of client; return the
    ChatMessage.Detailed of its new_message."""
    content = content or unique_name("msg ")
    sock = client.socket()
    try:
        _, _, msg = send_message(sock, client, chat_id, content, reply_to)
    finally:
        sock.close()
    return msg["data"]["message"]


def say_many(client, chat_id, n, prefix="m"):
    sock = client.socket()
    out = []
    try:
        for i in range(n):
            _, _, msg = send_message(sock, client, chat_id, f"{prefix}{i} {unique_name()}")
            out.append(msg["data"]["message"])
    finally:
        sock.close()
    return out


def mark_read(client, chat_id, sock=None):
    """messages_read on a socket of client; wait for its own messages_read."""
    own = sock is None
    sock = sock or client.socket()
    try:
        rid = sock.request("messages_read", {"chat_id": chat_id})
        seen, msg = wait_for(sock, is_note("messages_read", chat_id=chat_id, user_id=uid(client)), rid)
        assert msg["action"] == "messages_read", msg
    finally:
        if own:
            sock.close()
    return rid, seen, msg


def recall(client, message_id, delete=None, sock=None):
    """recall_message (delete for me when delete is True); waits for the
    caller's own message_recalled / message_deleted."""
    own = sock is None
    sock = sock or client.socket()
    data = {"message_id": message_id}
    if delete is not None:
        data["delete"] = delete
    action = "message_deleted" if delete is True else "message_recalled"
    try:
        rid = sock.request("recall_message", data)
        seen, msg = wait_for(sock, is_note(action, message_id=message_id), rid)
        assert msg["action"] == action, msg
    finally:
        if own:
            sock.close()
    return rid, seen, msg


def act(sock, action, data, expect):
    """Run a successful socket action whose answer on this socket is
    `expect` (with its request_id); return that answer."""
    rid = sock.request(action, data)
    seen, msg = wait_for(sock, lambda m: m.get("action") == expect and m.get("request_id") == rid,
                         rid)
    assert msg["action"] == expect, msg
    check_note(msg, expect, request_id=rid)
    return msg


def edit_message(sock, message_id, content):
    """[ext] edit_message on sock; its message_edited answer."""
    return act(sock, "edit_message", {"message_id": message_id, "content": content},
               "message_edited")


def edit_as(client, message_id, content):
    """The same through a short-lived socket of client."""
    sock = client.socket()
    try:
        return edit_message(sock, message_id, content)
    finally:
        sock.close()


def action_error(sock, action, data):
    """Send an action that must fail; return the error packet (code 400,
    the request's request_id). Anything else that arrives first is
    returned too: (before, error)."""
    rid = sock.request(action, data)
    seen, msg = wait_for(sock, lambda m: False, rid)
    check_error_packet(msg, rid)
    assert "event_id" not in msg, msg
    return seen, msg


class Watch:
    """Sockets of several users, opened and drained (so that only what
    happens afterwards is seen). collect() reads every socket up to a
    barrier (one per user, covering all of that user's sockets) and returns
    {socket: [packets]}; events() gives {user id: packets of the user's
    first socket}."""

    def __init__(self, *clients):
        self.entries = []
        for c in clients:
            self.entries.append((c, c.socket()))
        self.collect()

    def add(self, client):
        """Another socket (e.g. of a second browser of a watched user)."""
        s = client.socket()
        self.entries.append((client, s))
        socks = self.socks_of(client)
        barrier_multi(client, socks)  # drain them all
        return s

    def sock(self, client):
        return self.socks_of(client)[0]

    def socks_of(self, client):
        return [s for c, s in self.entries if uid(c) == uid(client)]

    def collect(self):
        out, done = {}, set()
        for c, _ in self.entries:
            if uid(c) in done:
                continue
            done.add(uid(c))
            socks = self.socks_of(c)
            for s, evs in zip(socks, barrier_multi(c, socks)):
                out[s] = evs
        self.last = out
        return out

    def events(self):
        """collect(), keyed by user id (first socket of each user)."""
        out = self.collect()
        res = {}
        for c, s in self.entries:
            res.setdefault(uid(c), out[s])
        return res

    def close(self):
        for _, s in self.entries:
            s.close()


# -- metrics (the operator's listener, Prometheus text) -----------------------

_METRIC_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_LABEL = r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"'


def parse_metrics(text):
    """Parse the Prometheus text exposition format strictly: every sample's
    family has one HELP and one TYPE line before its samples, samples of a
    family are together, names and labels are well formed, and histograms
    have cumulative buckets ending in +Inf equal to _count. Returns
    {(name, frozenset(labels.items())): value} and {family: type}."""
    import re

    samples, types, seen_done, current = {}, {}, set(), None
    sample_re = re.compile(rf"^({_METRIC_NAME})(?:\{{(.*)\}})? (\S+)$")
    assert text.endswith("\n"), text[-200:]
    for line in text.splitlines():
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            parts = line.split(" ", 3)
            assert len(parts) == 4 and re.fullmatch(_METRIC_NAME, parts[2]), line
            family = parts[2]
            if parts[1] == "TYPE":
                assert family not in types, f"second TYPE for {family}"
                assert parts[3] in ("counter", "gauge", "histogram"), line
                types[family] = parts[3]
            if current and current != family:
                seen_done.add(current)
            assert family not in seen_done, f"{family} comes back after another family"
            current = family
            continue
        m = sample_re.match(line)
        assert m, f"not a sample line: {line!r}"
        name, label_text, value = m.group(1), m.group(2) or "", m.group(3)
        family = next((f for f in (name, re.sub(r"_(bucket|sum|count)$", "", name))
                       if f in types), None)
        assert family == current, f"{name} outside its family ({current})"
        labels = {}
        rest = label_text
        while rest:
            lm = re.match(_LABEL + r"(,|$)", rest)
            assert lm, f"bad labels in {line!r}"
            assert lm.group(1) not in labels, line
            labels[lm.group(1)] = lm.group(2)
            rest = rest[lm.end():]
        key = (name, frozenset(labels.items()))
        assert key not in samples, f"duplicate sample {line!r}"
        samples[key] = float(value)
    for family, kind in types.items():
        if kind == "counter":
            assert family.endswith("_total"), family
        if kind != "histogram":
            continue
        series = {}
        for (name, labels), value in samples.items():
            if name == family + "_bucket":
                rest = frozenset(kv for kv in labels if kv[0] != "le")
                le = dict(labels)["le"]
                series.setdefault(rest, []).append((float(le), value))
        for rest, buckets in series.items():
            buckets.sort()
            counts = [v for _, v in buckets]
            assert counts == sorted(counts), (family, buckets)
            assert buckets[-1][0] == float("inf"), (family, buckets)
            assert samples[(family + "_count", rest)] == counts[-1], family
            assert (family + "_sum", rest) in samples, family
    return samples, types


def scrape(stack, path="/metrics"):
    """One scrape of the stack's operator listener, parsed."""
    import requests

    r = requests.get(stack.metrics_base + path, timeout=10)
    assert r.status_code == 200, (path, r.status_code, r.text[:500])
    assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4"), r.headers
    return parse_metrics(r.text)[0]


def metric(samples, name, **labels):
    """The value of one sample (0 when it has not appeared yet)."""
    return samples.get((name, frozenset(labels.items())), 0.0)
