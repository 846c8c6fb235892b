"""Helpers for the group chat, message, socket-action and account-deletion
integration tests (test_chats.py, test_messages.py, test_account_delete.py).

Everything here is written from API.md (§2 validation, §3 structures, §4
chats, §5 socket actions and notifications, §6 deleting a user); nothing is
taken from the implementation. The database is only read (stack.sql).
"""

from conftest import barrier, fail, outbox_max, unique_name
from friend_support import (
    BASIC_KEYS, CHAT_KEYS, DELETED_ID, DETAILED_KEYS, MESSAGE_BASIC_KEYS,
    MESSAGE_DETAILED_KEYS, RELATION_KEYS, SYSTEM_ID, basic, befriend as _befriend,
    check_basic, is_int, register, second_client, utf8_ok, utf8_request,
)

__all__ = [
    "BASIC_KEYS", "CHAT_KEYS", "DELETED_ID", "DETAILED_KEYS", "MESSAGE_BASIC_KEYS",
    "MESSAGE_DETAILED_KEYS", "RELATION_KEYS", "SYSTEM_ID", "CHAT_INVITATION_KEYS", "UNKNOWN",
    "barrier", "fail", "unique_name", "basic", "check_basic", "is_int", "is_num", "register",
    "second_client", "utf8_ok", "utf8_request",
]

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
    """Make a and b friends (a invites, b accepts); return their private chat id."""
    _befriend(a, b)
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


def action_error(sock, action, data):
    """Send an action that must fail; return the error packet (code 400,
    the request's request_id). Anything else that arrives first is
    returned too: (before, error)."""
    rid = sock.request(action, data)
    seen, msg = wait_for(sock, lambda m: False, rid)
    check_error_packet(msg, rid)
    assert "event_id" not in msg, msg
    return seen, msg


def barrier_multi(client, socks):
    """barrier() for several sockets of one user with a single
    profile_change: read each socket up to it. Returns a list of lists."""
    before = outbox_max(client.stack)
    client.ok("PATCH", "/user", {"user_name": client.user["user_name"]})
    out = []
    for s in socks:
        seen = []
        while True:
            msg = s.recv()
            if msg["action"] == "profile_change" and msg.get("event_id", before + 1) > before:
                break
            seen.append(msg)
        out.append(seen)
    return out


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
