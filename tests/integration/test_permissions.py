"""Permission matrix ("Hardening"): every REST route of API.md §4 and every
socket action of §5, called by every kind of actor, gets exactly the status
(REST) or error packet (socket) that API.md prescribes; denied calls change
nothing; and no answer or notification carries private data the caller is
not entitled to.

The world (built once per module, and once more per row whose permitted call
changes state):

    owner O   owns the group G (name and messages are secrets of G's members)
    admin A   admin of G               member M, member2 N   plain members of G
    friend F  friend of O, not in G; O and F share the private chat P
    invitee I friend of M and F, invited to G by M (pending)
    stranger S  no relation to any of the above; friend of Z, owner of group H
    receiver T  has a pending friend invitation from O (with a secret comment)
    requester Q sent O a friend invitation (with a secret comment)

Friendships: O-A, O-M, O-N, F-O (O accepted, so O owns P), M-I, F-I, S-Z.
O keeps F in the friend group Og under a secret nickname; S keeps Z in Sg.
Every user has a distinctive email and phone.

Everything here is written from API.md; the database is only read.
"""

import json
import re
import time
import uuid

import pytest

from conftest import PASSWORD, Socket, Stack, barrier, barrier_multi, fail, outbox_max

BASIC_KEYS = {"id", "user_name", "avatar_url"}
DETAILED_KEYS = BASIC_KEYS | {"email", "phone"}
UNKNOWN = 999999999
INVALID_SESSION = "Invalid Session"
ROLES = ("O", "A", "M", "N", "F", "I", "S", "Z", "T", "Q")
ROLE_NAMES = {
    "O": "owner", "A": "admin", "M": "member", "N": "member2", "F": "friend",
    "I": "invitee", "S": "stranger", "Z": "strangers-friend", "T": "receiver",
    "Q": "requester",
}
FRIENDSHIPS = (("O", "A"), ("O", "M"), ("O", "N"), ("F", "O"), ("M", "I"), ("F", "I"),
               ("S", "Z"))  # (inviter, accepter): the accepter owns the private chat
G_MEMBERS = ("O", "A", "M", "N")
# The world's messages: (sender, chat, its members).
MESSAGES = (("O", "G", G_MEMBERS), ("A", "G", G_MEMBERS), ("M", "G", G_MEMBERS),
            ("N", "G", G_MEMBERS), ("O", "P", ("O", "F")), ("F", "P", ("O", "F")),
            ("Z", "H", ("S", "Z")))


def friends_of(role):
    return {b if a == role else a for a, b in FRIENDSHIPS if role in (a, b)}


# =============================================================================
# The world
# =============================================================================


class World:
    """Users (clients by role), ids by placeholder, and the secrets with who
    may see each."""

    def __init__(self, stack):
        self.stack = stack
        self.tag = uuid.uuid4().hex[:8]
        self.c = {}          # role -> Client
        self.ids = {}        # placeholder -> id
        self.names = {}      # role -> user name
        self.secrets = []    # (key, text, owner role, roles that may see it)
        self.socks = {}      # role -> Socket (shared world, opened lazily)

    def secret(self, key, text, owner, visible):
        self.secrets.append((key, text, owner, frozenset(visible) | {owner}))
        return text

    def text(self, key):
        return next(t for k, t, _, _ in self.secrets if k == key)

    # -- building ------------------------------------------------------------

    def build(self):
        st, tag = self.stack, self.tag
        for i, role in enumerate(ROLES):
            c = st.client()
            name = f"pm{tag}{ROLE_NAMES[role]}"
            c.register(name)
            email = self.secret(f"email.{role}", f"sec{tag}{role.lower()}@mail{role.lower()}.example",
                                role, friends_of(role))
            phone = self.secret(f"phone.{role}", f"1{tag[:4].translate(DIGITS)}{i:02d}{i + 3:04d}",
                                role, friends_of(role))
            assert re.fullmatch(r"1\d{10}", phone), phone
            c.user = c.ok("PATCH", "/user", {"email": email, "phone": phone,
                                             "old_password": PASSWORD})
            self.c[role], self.ids[role], self.names[role] = c, c.user["id"], name
            self.ids[f"{role}d"] = self.stack.sql(
                "SELECT id FROM friend_groups WHERE user_id = ? AND name = ''", c.user["id"])[0][0]
        for inviter, accepter in FRIENDSHIPS:
            self.befriend(inviter, accepter)
        for a, b in FRIENDSHIPS:
            self.ids[f"P{a}{b}"] = self.private_chat(a, b)
        self.ids["P"] = self.ids["PFO"]  # the private chat of O and F (O owns it)
        self.ids["U"] = UNKNOWN
        O, S = self.c["O"], self.c["S"]

        # The group G: O owns it, A is admin, M and N plain members; M invited I.
        gname = self.secret("chat.G", f"sec{tag}gchat", "O", G_MEMBERS)
        g = O.ok("POST", "/chat/new", {"chat_name": gname,
                                       "chat_members": [self.ids[r] for r in ("A", "M", "N")]})
        self.ids["G"] = g["chat_id"]
        assert O.ok("POST", f"/chat/{self.ids['G']}/{self.ids['A']}/admin", True) is None
        assert self.c["M"].ok("POST", f"/chat/{self.ids['G']}/invite", {"user_id": self.ids["I"]}) is None
        # S's group H with Z.
        hname = self.secret("chat.H", f"sec{tag}hchat", "S", ("S", "Z"))
        self.ids["H"] = S.ok("POST", "/chat/new", {"chat_name": hname,
                                                   "chat_members": [self.ids["Z"]]})["chat_id"]

        # Friend invitations: O -> T and Q -> O, with secret comments.
        c_ot = self.secret("comment.OT", f"sec{tag}commentot", "O", ("T",))
        O.ok("POST", "/friend/invite", {"id": self.ids["T"], "comment": c_ot, "source": "search"})
        c_qo = self.secret("comment.QO", f"sec{tag}commentqo", "Q", ("O",))
        self.c["Q"].ok("POST", "/friend/invite", {"id": self.ids["O"], "comment": c_qo,
                                                  "source": "search"})
        self.ids["inv_OT"] = self.invitation_id("O", "T")
        self.ids["inv_QO"] = self.invitation_id("Q", "O")

        # Friend groups and nicknames: O keeps F in Og as a secret nickname; S keeps Z in Sg.
        for owner, friend, key in (("O", "F", "Og"), ("S", "Z", "Sg")):
            cl = self.c[owner]
            assert cl.ok("GET", "/friend/group/list")[0]["group_id"] == self.ids[f"{owner}d"]
            gn = self.secret(f"group.{key}", f"sec{tag}group{key.lower()}", owner, ())
            self.ids[key] = cl.ok("POST", "/friend/group/add", {"group_name": gn})["group_id"]
            nick = self.secret(f"nick.{owner}{friend}", f"sec{tag}nick{owner.lower()}{friend.lower()}",
                               owner, ())
            cl.ok("PATCH", f"/friend/{self.ids[friend]}", {"nickname": nick, "group_id": self.ids[key]})

        # One message per relevant sender.
        for sender, chat, members in MESSAGES:
            text = self.secret(f"msg.{chat}.{sender}", f"sec{tag}msg{chat.lower()}{sender.lower()}",
                               sender, members)
            self.ids[f"m{chat}_{sender}"] = self.say(sender, chat, text)
        return self

    def befriend(self, a, b):
        self.c[a].ok("POST", "/friend/invite", {"id": self.ids[b], "comment": "", "source": "search"})
        inv = self.invitation_id(a, b)
        self.c[b].ok("POST", f"/friend/invitation/{inv}")

    def invitation_id(self, sender, receiver):
        rows = self.stack.sql("SELECT id FROM friend_invitations WHERE sender_id = ? AND receiver_id = ?",
                              self.ids[sender], self.ids[receiver])
        assert len(rows) == 1, rows
        return rows[0][0]

    def private_chat(self, a, b):
        rows = self.stack.sql("SELECT chat_id FROM friends WHERE user_id = ? AND friend_id = ?",
                              self.ids[a], self.ids[b])
        assert len(rows) == 1, rows
        return rows[0][0]

    def say(self, role, chat, text):
        sock = self.c[role].socket()
        try:
            rid = sock.request("send_message", {"chat_id": self.ids[chat], "content": text})
            while True:
                msg = sock.recv()
                assert msg["action"] != "error", msg
                m = (msg.get("data") or {}).get("message") or {}
                if msg["action"] == "new_message" and m.get("message") == text:
                    assert msg["request_id"] == rid, msg
                    return m["message_id"]
        finally:
            sock.close()

    # -- use -----------------------------------------------------------------

    def fill(self, obj):
        """Placeholders: "$X" -> the id of X, "$X.name" -> the user name of X."""
        if isinstance(obj, str) and obj.startswith("$"):
            key = obj[1:]
            if key.endswith(".name"):
                return self.names[key[:-5]]
            return self.ids[key]
        if isinstance(obj, list):
            return [self.fill(x) for x in obj]
        if isinstance(obj, dict):
            return {k: self.fill(v) for k, v in obj.items()}
        return obj

    def path(self, template):
        return template.format(**{"U": UNKNOWN, "tag": self.tag, **self.ids})

    def sock(self, role):
        if role not in self.socks:
            self.socks[role] = self.c[role].socket()
            barrier(self.c[role], self.socks[role])
        return self.socks[role]

    def close(self):
        for s in self.socks.values():
            s.close()

    # -- leak checks ------------------------------------------------------------

    def leaks(self, raw, role, strict=False, allow=()):
        """The secrets in raw that role may not see. strict: only role's own
        secrets are allowed (the body of a denied call). allow: extra keys."""
        out = []
        for key, text, owner, visible in self.secrets:
            ok = owner == role if strict else role in visible
            if not ok and key not in allow and text in raw:
                out.append(key)
        return out


DIGITS = str.maketrans("abcdef", "123456")


def snapshot(stack):
    """The whole state (not the outbox, not the sessions' last_seen)."""
    tables = ("users", "friend_groups", "friends", "friend_invitations", "chats",
              "chat_members", "chat_relations", "messages", "message_deletions",
              "chat_invitations")
    queries = [f"SELECT * FROM {t} ORDER BY 1, 2" for t in tables]
    queries += ["SELECT id, token_hash, user_id, created_at, expires_at FROM sessions ORDER BY id",
                "SELECT coalesce(max(id), 0) FROM outbox"]
    results = stack.sql_snapshot(queries)  # one consistent read
    out = dict(zip(tables, results))
    out["sessions"] = results[-2]
    out["outbox"] = results[-1][0][0]
    return out


def assert_unchanged(before, after):
    for t in before:
        assert before[t] == after[t], f"a denied call changed {t}: {before[t]!r} -> {after[t]!r}"


def check_error_packet(msg, request_id, code=400):
    assert msg == {"action": "error", "request_id": request_id, "ok": False, "code": code,
                   "error": msg.get("error")}, msg
    assert isinstance(msg["error"], str) and msg["error"], msg


@pytest.fixture(scope="module")
def pm_stack():
    s = Stack().start()
    yield s
    s.stop_and_check()


@pytest.fixture(scope="module")
def world(pm_stack):
    w = World(pm_stack).build()
    # The leak check must be able to see what it looks for: O's view of G
    # holds G's name and texts, F's view of P holds P's texts.
    raw = pm_stack.client().with_token(w.c["O"].token).get(f"/chat/{w.ids['G']}/messages").text
    for key in ("msg.G.O", "msg.G.A", "msg.G.M", "msg.G.N"):
        assert w.text(key) in raw, key
    assert w.text("chat.G") in w.c["O"].get(f"/chat/{w.ids['G']}").text
    yield w
    w.close()


@pytest.fixture(scope="module")
def revoked(pm_stack, world):
    """A logged-out session of the owner (a second browser)."""
    c = pm_stack.client()
    c.login(world.names["O"])
    token = c.token
    c.ok("POST", "/user/logout")
    assert world.c["O"].get("/user").status_code == 200  # only that session ended
    return token


# =============================================================================
# Every route, as the owner would call it (for the actors without a session)
# =============================================================================

# (method, path, body). The body is the owner's valid body, so that a server
# that forgot the session check would answer 200 and be caught.
NOBODY = object()
ROUTES = [
    ("POST", "/user/logout", NOBODY),
    ("GET", "/user", NOBODY),
    ("PATCH", "/user", {"user_name": "$O.name"}),
    ("DELETE", "/user", NOBODY),
    ("GET", "/user/{F}", NOBODY),
    ("POST", "/friend/group/add", {"group_name": "nosession"}),
    ("GET", "/friend/group/list", NOBODY),
    ("GET", "/friend/group/{Og}", NOBODY),
    ("PATCH", "/friend/group/{Og}", {"group_name": "nosession"}),
    ("DELETE", "/friend/group/{Og}", NOBODY),
    ("POST", "/friend/find", {"id": "$F"}),
    ("POST", "/friend/invite", {"id": "$Q", "comment": "", "source": "search"}),
    ("GET", "/friend/invitation", NOBODY),
    ("POST", "/friend/invitation/{inv_QO}", NOBODY),
    ("DELETE", "/friend/invitation/{inv_QO}", NOBODY),
    ("GET", "/friend", NOBODY),
    ("GET", "/friend/{F}", NOBODY),
    ("PATCH", "/friend/{F}", {"nickname": "nosession"}),
    ("DELETE", "/friend/{F}", NOBODY),
    ("POST", "/chat/new", {"chat_name": "nosession", "chat_members": ["$F"]}),
    ("POST", "/chat/{G}/invite", {"user_id": "$F"}),
    ("GET", "/chat/{G}/invitation", NOBODY),
    ("POST", "/chat/{G}/invitation/{I}", NOBODY),
    ("DELETE", "/chat/{G}/invitation/{I}", NOBODY),
    ("GET", "/chat", NOBODY),
    ("GET", "/chat/{G}", NOBODY),
    ("DELETE", "/chat/{G}", NOBODY),
    ("GET", "/chat/{G}/messages", NOBODY),
    ("POST", "/chat/{G}/filter", {"sender": ["$O"]}),
    ("POST", "/chat/{G}/{N}/admin", True),
    ("POST", "/chat/{G}/set_owner", {"chat_owner": "$N"}),
    ("DELETE", "/chat/{G}/{N}", NOBODY),
    # the extensions (docs/API.md): search, attachments, the invitee's side
    # of the consent flow (404 with a session in the default flow; 403
    # without one, as everywhere)
    ("GET", "/search?q=sec{tag}msg*", NOBODY),
    ("POST", "/chat/{G}/attachment?name=x.txt", NOBODY),
    ("GET", "/attachment/1", NOBODY),
    ("GET", "/chat/invitation", NOBODY),
    ("POST", "/chat/invitation/{G}", NOBODY),
    ("DELETE", "/chat/invitation/{G}", NOBODY),
]
# register and login need no session (§4): a taken name is 409, a wrong password 403.
OPEN_ROUTES = [
    ("POST", "/user/register", {"user_name": "$O.name", "password": PASSWORD}, 409),
    ("POST", "/user/login", {"user_name": "$O.name", "password": "wrong-password"}, 403),
    ("POST", "/user/login", {"user_name": "pmnosuchuser", "password": PASSWORD}, 403),
]


def call(w, client, method, path, body):
    b = None if body is NOBODY else w.fill(body)
    if b is None and body is not NOBODY:
        return client.request(method, w.path(path), raw="null",
                              headers={"Content-Type": "application/json"})
    return client.request(method, w.path(path), b)


def nosession_client(stack, kind, token=None):
    c = stack.client()
    if kind != "anon":
        c.with_token(token)
    return c


def denied(w, client, role, method, path, body, status, error=None):
    """A call that must fail with status and change nothing; its body leaks nothing."""
    before = snapshot(w.stack)
    r = call(w, client, method, path, body)
    msg = fail(r, status)
    if error is not None:
        assert msg == error, msg
    assert_unchanged(before, snapshot(w.stack))
    leaked = w.leaks(r.text, role, strict=True)
    assert not leaked, (leaked, r.text)
    return msg


@pytest.mark.parametrize("kind", ["anon", "revoked"])
@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{r[0]} {r[1]}")
def test_routes_without_a_valid_session_are_403(world, revoked, kind, route):
    """§1 pipeline step 4: no session, or a logged-out one -> 403 "Invalid Session"."""
    method, path, body = route
    c = nosession_client(world.stack, kind, revoked)
    denied(world, c, None, method, path, body, 403, INVALID_SESSION)


@pytest.mark.parametrize("kind", ["anon", "revoked"])
@pytest.mark.parametrize("route", OPEN_ROUTES, ids=lambda r: f"{r[0]} {r[1]} {r[3]}")
def test_open_routes_without_a_valid_session(world, revoked, kind, route):
    """§4 User: register and login need no session; their own checks apply."""
    method, path, body, status = route
    c = nosession_client(world.stack, kind, revoked)
    denied(world, c, None, method, path, body, status)


def test_login_errors_are_the_same_for_unknown_user_and_wrong_password(world):
    c = world.stack.client()
    a = fail(c.post("/user/login", {"user_name": world.names["O"], "password": "wrong-password"}), 403)
    b = fail(c.post("/user/login", {"user_name": "pmnosuchuser", "password": PASSWORD}), 403)
    assert a == b


def test_no_session_may_still_register_and_login(world, revoked):
    for kind in ("anon", "revoked"):
        c = nosession_client(world.stack, kind, revoked)
        u = c.register(f"pmfresh{uuid.uuid4().hex[:10]}")
        assert set(u) == DETAILED_KEYS
        c2 = nosession_client(world.stack, kind, revoked)
        me = c2.login(world.names["T"])
        assert me["id"] == world.ids["T"] and me["email"] == world.text("email.T")


# =============================================================================
# The matrix: REST calls by users of the world (read-only or denied)
# =============================================================================

ANY_USER = ROLES


def R(method, path, actor, status, body=NOBODY, check=None):
    return (method, path, actor, status, body, check)


def rows_for(method, path, actors, status, body=NOBODY, check=None):
    return [R(method, path, a, status, body, check) for a in actors]


# -- checks of entitled-but-limited views ------------------------------------


def own_detailed(w, role, data):
    assert set(data) == DETAILED_KEYS and data["id"] == w.ids[role], data
    assert data["email"] == w.text(f"email.{role}") and data["phone"] == w.text(f"phone.{role}"), data


def basic_of(target):
    def check(w, role, data):
        assert set(data) == BASIC_KEYS, data  # User.Basic: no email, no phone
        assert data["id"] == w.ids[target] and data["user_name"] == w.names[target], data
    return check


def found_exactly(*targets):
    def check(w, role, data):
        assert isinstance(data, list), data
        for u in data:
            assert set(u) == BASIC_KEYS, u
        assert sorted(u["id"] for u in data) == sorted(w.ids[t] for t in targets), data
    return check


def found_everyone_but_caller(w, role, data):
    found_exactly(*[r for r in ROLES if r != role])(w, role, data)


def friend_invitations_exactly(*pairs):
    """GET /friend/invitation lists only invitations received by the caller."""
    def check(w, role, data):
        got = sorted((i["id"], i["sender"]["id"], i["receiver"]["id"]) for i in data)
        want = sorted((w.ids[f"inv_{s}{r}"], w.ids[s], w.ids[r]) for s, r in pairs)
        assert got == want, data
        for i in data:
            assert set(i["sender"]) == BASIC_KEYS and set(i["receiver"]) == BASIC_KEYS, i
    return check


def chat_invitations_of_g(w, role, data):
    assert [(i["chat_id"], i["user"]["id"], i["invited_by"]["id"]) for i in data] == [
        (w.ids["G"], w.ids["I"], w.ids["M"])], data
    for i in data:
        assert set(i["user"]) == BASIC_KEYS and set(i["invited_by"]) == BASIC_KEYS, i


def chats_exactly(*chats):
    """The caller's group chats, and the private chat of each of its friendships."""
    def check(w, role, data):
        private = [f"P{a}{b}" for a, b in FRIENDSHIPS if role in (a, b)]
        want = sorted(w.ids[c] for c in chats + tuple(private))
        assert sorted(r["chat"]["chat_id"] for r in data) == want, data
    return check


def friends_exactly(*roles):
    def check(w, role, data):
        assert sorted(f["friend"]["id"] for f in data) == sorted(w.ids[r] for r in roles), data
    return check


def groups_of(owner):
    def check(w, role, data):
        ids = [g["group_id"] for g in data]
        assert ids[0] == w.ids[f"{owner}d"], data
        assert w.ids["Og"] not in ids or owner == "O", data
        assert w.ids["Sg"] not in ids or owner == "S", data
    return check


def friend_of(target, nickname_key=None):
    def check(w, role, data):
        assert data["friend"]["id"] == w.ids[target] and set(data["friend"]) == DETAILED_KEYS, data
        assert data["nickname"] == (w.text(nickname_key) if nickname_key else ""), data
    return check


def relation_of(chat):
    def check(w, role, data):
        assert data["chat"]["chat_id"] == w.ids[chat], data
    return check


def search_finds(*chats):
    """[ext] search: the hits are exactly the world's messages of the
    caller's chats (of `chats` only, when given), each a Basic view."""
    def check(w, role, data):
        want = sorted(w.ids[f"m{chat}_{sender}"] for sender, chat, members in MESSAGES
                      if role in members and (not chats or chat in chats))
        got = sorted(h["message"]["message_id"] for h in data["hits"])
        assert got == want, data
        assert data["next_cursor"] is None, data
    return check


def messages_of(chat):
    def check(w, role, data):
        assert data and all(m["chat_id"] == w.ids[chat] for m in data), data
    return check


# Actor groups for the chat G.
G_OUTSIDERS = ("S", "F", "I", "Z", "T")   # no member: stranger, friend of O, invitee, ...
NOT_OWNER_OR_ADMIN = ("M", "N")

REST_ROWS = (
    # -- User (§4) ---------------------------------------------------------------
    [R("GET", "/user", a, 200, check=own_detailed) for a in ANY_USER]
    + [
        R("PATCH", "/user", "M", 200, {"user_name": "$M.name"}, check=own_detailed),
        R("PATCH", "/user", "M", 403, {"email": "x@y.example", "old_password": "wrong-password"}),
        R("PATCH", "/user", "M", 403, {"new_password": "another1", "old_password": "wrong-password"}),
        R("PATCH", "/user", "M", 400, {"phone": "13800000000"}),  # old_password missing
        R("PATCH", "/user", "M", 409, {"user_name": "$O.name"}),
        R("POST", "/user/login", "S", 403, {"user_name": "$O.name", "password": "wrong-password"}),
        R("POST", "/user/register", "S", 409, {"user_name": "$O.name", "password": PASSWORD}),
    ]
    + [R("GET", "/user/{O}", a, 200, check=basic_of("O")) for a in ("S", "F", "A", "T", "Q", "O")]
    + [R("GET", "/user/{S}", "O", 200, check=basic_of("S")),
       R("GET", "/user/{U}", "S", 404)]
    # -- Friend groups -----------------------------------------------------------
    + [R("POST", "/friend/group/add", "S", 200, {"group_name": "pmplain"})]
    + [R("GET", "/friend/group/list", a, 200, check=groups_of(a)) for a in ANY_USER]
    + [R("GET", "/friend/group/{Og}", "O", 200)]
    + rows_for("GET", "/friend/group/{Og}", ("S", "F", "A", "T", "Q"), 403)
    + rows_for("GET", "/friend/group/{Od}", ("S", "F"), 403)
    + [R("GET", "/friend/group/{U}", "O", 404)]
    + rows_for("PATCH", "/friend/group/{Og}", ("S", "F", "A"), 403, {"group_name": "pmhijack"})
    + [R("PATCH", "/friend/group/{Og}", "O", 200, {"group_name": "$Og.text"}),
       R("PATCH", "/friend/group/{U}", "O", 400, {"group_name": "pmx"}),
       R("PATCH", "/friend/group/{Od}", "O", 400, {"group_name": "pmx"})]
    + rows_for("DELETE", "/friend/group/{Og}", ("S", "F", "A"), 403)
    + [R("DELETE", "/friend/group/{U}", "O", 400),
       R("DELETE", "/friend/group/{Od}", "O", 400)]
    # -- Friends -----------------------------------------------------------------
    + [R("POST", "/friend/find", a, 200, {"id": "$O"}, check=found_exactly("O"))
       for a in ("S", "F", "T", "Q")]
    + [R("POST", "/friend/find", "O", 200, {"id": "$O"}, check=found_exactly()),
       R("POST", "/friend/find", "S", 200, {"id": 1}, check=found_exactly()),
       R("POST", "/friend/find", "S", 200, {"name_contains": "#SYS"}, check=found_exactly())]
    + [R("POST", "/friend/find", a, 200, {"name_contains": "$tag"}, check=found_everyone_but_caller)
       for a in ("S", "O", "T")]
    + [
        R("POST", "/friend/invite", "S", 400, {"id": "$O", "comment": "pmx", "source": "$G"}),
        R("POST", "/friend/invite", "F", 400, {"id": "$M", "comment": "pmx", "source": "$G"}),
        R("POST", "/friend/invite", "M", 400, {"id": "$T", "comment": "pmx", "source": "$P"}),
        R("POST", "/friend/invite", "S", 400, {"id": "$S", "comment": "pmx", "source": "search"}),
        R("POST", "/friend/invite", "S", 400, {"id": "$U", "comment": "pmx", "source": "search"}),
        R("POST", "/friend/invite", "O", 400, {"id": "$S", "comment": "pmx", "source": "$H"}),
        R("POST", "/friend/invite", "A", 409, {"id": "$O", "comment": "pmx", "source": "search"}),
        R("GET", "/friend/invitation", "O", 200, check=friend_invitations_exactly(("Q", "O"))),
        R("GET", "/friend/invitation", "T", 200, check=friend_invitations_exactly(("O", "T"))),
    ]
    + [R("GET", "/friend/invitation", a, 200, check=friend_invitations_exactly())
       for a in ("S", "F", "Q", "A")]
    + rows_for("POST", "/friend/invitation/{inv_OT}", ("S", "O", "F", "Q"), 403)
    + rows_for("POST", "/friend/invitation/{inv_QO}", ("T", "Q", "S"), 403)
    + rows_for("DELETE", "/friend/invitation/{inv_OT}", ("S", "O", "F", "Q"), 403)
    + rows_for("DELETE", "/friend/invitation/{inv_QO}", ("T", "Q"), 403)
    + [R("POST", "/friend/invitation/{U}", "T", 400), R("DELETE", "/friend/invitation/{U}", "T", 400)]
    + [R("GET", "/friend", "O", 200, check=friends_exactly("A", "M", "N", "F")),
       R("GET", "/friend", "A", 200, check=friends_exactly("O")),
       R("GET", "/friend", "F", 200, check=friends_exactly("O", "I")),
       R("GET", "/friend", "S", 200, check=friends_exactly("Z")),
       R("GET", "/friend", "T", 200, check=friends_exactly()),
       R("GET", "/friend", "Q", 200, check=friends_exactly())]
    + [R("GET", "/friend/{O}", a, 200, check=friend_of("O")) for a in ("F", "A", "M", "N")]
    + [R("GET", "/friend/{F}", "O", 200, check=friend_of("F", "nick.OF"))]
    + rows_for("GET", "/friend/{O}", ("S", "T", "Q", "I", "Z"), 404)
    + rows_for("GET", "/friend/{F}", ("A", "S", "M"), 404)
    + [R("GET", "/friend/{U}", "O", 404)]
    + rows_for("PATCH", "/friend/{O}", ("S", "T", "Q", "I"), 400, {"nickname": "pmx"})
    + rows_for("PATCH", "/friend/{F}", ("A", "S"), 400, {"nickname": "pmx"})
    + [R("PATCH", "/friend/{S}", "O", 400, {"nickname": "pmx"}),
       R("PATCH", "/friend/{F}", "O", 403, {"group_id": "$Sg"}),     # someone else's group
       R("PATCH", "/friend/{F}", "O", 400, {"group_id": "$U"}),
       R("PATCH", "/friend/{O}", "F", 403, {"group_id": "$Og"}),     # the friend uses O's group
       R("PATCH", "/friend/{Z}", "S", 403, {"group_id": "$Od"}),
       R("PATCH", "/friend/{F}", "O", 200, {"nickname": "$nick.OF"}, friend_of("F", "nick.OF"))]
    + rows_for("DELETE", "/friend/{O}", ("S", "T", "Q", "I"), 400)
    + rows_for("DELETE", "/friend/{F}", ("A", "S"), 400)
    # -- Chats -------------------------------------------------------------------
    + [R("POST", "/chat/new", "S", 400, {"chat_name": "pmx", "chat_members": ["$O"]}),
       R("POST", "/chat/new", "F", 400, {"chat_name": "pmx", "chat_members": ["$M"]}),
       R("POST", "/chat/new", "M", 400, {"chat_name": "pmx", "chat_members": ["$N"]}),
       R("POST", "/chat/new", "T", 400, {"chat_name": "pmx", "chat_members": ["$O"]}),
       R("POST", "/chat/new", "O", 400, {"chat_name": "pmx", "chat_members": ["$A", "$S"]})]
    # invite: the invited user is always a friend of the caller and not yet a
    # member, so only the membership of the caller decides.
    + [R("POST", "/chat/{G}/invite", "S", 403, {"user_id": "$Z"}),
       R("POST", "/chat/{G}/invite", "F", 403, {"user_id": "$I"}),
       R("POST", "/chat/{G}/invite", "I", 403, {"user_id": "$F"}),
       R("POST", "/chat/{G}/invite", "M", 400, {"user_id": "$O"}),   # already a member
       R("POST", "/chat/{G}/invite", "A", 400, {"user_id": "$O"}),
       R("POST", "/chat/{G}/invite", "M", 400, {"user_id": "$S"}),   # not the caller's friend
       R("POST", "/chat/{G}/invite", "O", 400, {"user_id": "$S"}),
       R("POST", "/chat/{G}/invite", "M", 400, {"user_id": "$M"}),   # yourself
       R("POST", "/chat/{U}/invite", "O", 400, {"user_id": "$F"}),
       R("POST", "/chat/{P}/invite", "O", 400, {"user_id": "$A"}),   # private
       R("POST", "/chat/{P}/invite", "F", 400, {"user_id": "$I"})]
    + [R("GET", "/chat/{G}/invitation", a, 200, check=chat_invitations_of_g) for a in ("O", "A")]
    + rows_for("GET", "/chat/{G}/invitation", G_OUTSIDERS + NOT_OWNER_OR_ADMIN, 403)
    + [R("GET", "/chat/{P}/invitation", "F", 403),  # a member of P, neither owner nor admin
       R("GET", "/chat/{U}/invitation", "O", 400)]
    + rows_for("POST", "/chat/{G}/invitation/{I}", G_OUTSIDERS + NOT_OWNER_OR_ADMIN, 403)
    + [R("POST", "/chat/{G}/invitation/{F}", "O", 400),   # no such invitation
       R("POST", "/chat/{G}/invitation/{S}", "A", 400),
       R("POST", "/chat/{U}/invitation/{I}", "O", 400),
       R("POST", "/chat/{P}/invitation/{A}", "O", 400)]
    + rows_for("DELETE", "/chat/{G}/invitation/{I}", G_OUTSIDERS + NOT_OWNER_OR_ADMIN, 403)
    + [R("DELETE", "/chat/{G}/invitation/{F}", "O", 400),
       R("DELETE", "/chat/{U}/invitation/{I}", "O", 400),
       R("DELETE", "/chat/{P}/invitation/{A}", "O", 400)]
    + [R("GET", "/chat", "O", 200, check=chats_exactly("G")),
       R("GET", "/chat", "A", 200, check=chats_exactly("G")),
       R("GET", "/chat", "F", 200, check=chats_exactly()),
       R("GET", "/chat", "S", 200, check=chats_exactly("H")),
       R("GET", "/chat", "I", 200, check=chats_exactly()),
       R("GET", "/chat", "T", 200, check=chats_exactly())]
    + [R("GET", "/chat/{G}", a, 200, check=relation_of("G")) for a in G_MEMBERS]
    + rows_for("GET", "/chat/{G}", G_OUTSIDERS, 400)
    + [R("GET", "/chat/{P}", a, 200, check=relation_of("P")) for a in ("O", "F")]
    + rows_for("GET", "/chat/{P}", ("A", "M", "S"), 400)
    + rows_for("GET", "/chat/{H}", ("O", "A"), 400)
    + [R("GET", "/chat/{U}", "O", 400)]
    + rows_for("DELETE", "/chat/{G}", G_OUTSIDERS, 400)
    + rows_for("DELETE", "/chat/{P}", ("O", "F", "A"), 400)
    + rows_for("DELETE", "/chat/{H}", ("O",), 400)
    + [R("DELETE", "/chat/{U}", "O", 400)]
    + [R("GET", "/chat/{G}/messages", a, 200, check=messages_of("G")) for a in G_MEMBERS]
    + rows_for("GET", "/chat/{G}/messages", G_OUTSIDERS, 403)
    + [R("GET", "/chat/{P}/messages", a, 200, check=messages_of("P")) for a in ("O", "F")]
    + rows_for("GET", "/chat/{P}/messages", ("A", "S"), 403)
    + rows_for("GET", "/chat/{H}/messages", ("O", "F"), 403)
    + [R("GET", "/chat/{U}/messages", "O", 404)]
    + [R("POST", "/chat/{G}/filter", a, 200, {"sender": ["$O"]}, check=messages_of("G"))
       for a in G_MEMBERS]
    + rows_for("POST", "/chat/{G}/filter", G_OUTSIDERS, 403, {"sender": ["$O"]})
    + rows_for("POST", "/chat/{P}/filter", ("A", "S"), 403, {"begin_time": 0})
    + [R("POST", "/chat/{G}/filter", "M", 400, {"sender": ["$F"]}),   # F is no member
       R("POST", "/chat/{U}/filter", "O", 400, {"begin_time": 0})]
    # admin: N is a plain member, A an admin; only the owner may change them.
    + rows_for("POST", "/chat/{G}/{N}/admin", G_OUTSIDERS + ("M", "N", "A"), 403, True)
    + rows_for("POST", "/chat/{G}/{A}/admin", G_OUTSIDERS + ("M", "N", "A"), 403, False)
    + [R("POST", "/chat/{G}/{A}/admin", "O", 400, True),      # already admin
       R("POST", "/chat/{G}/{N}/admin", "O", 400, False),     # already not admin
       R("POST", "/chat/{G}/{O}/admin", "O", 400, True),      # the owner
       R("POST", "/chat/{G}/{F}/admin", "O", 400, True),      # not a member
       R("POST", "/chat/{G}/{N}/admin", "O", 400, "yes"),     # not a boolean
       R("POST", "/chat/{U}/{N}/admin", "O", 400, True),
       R("POST", "/chat/{P}/{F}/admin", "O", 400, True)]      # private (O owns P)
    # set_owner
    + rows_for("POST", "/chat/{G}/set_owner", G_OUTSIDERS + ("M", "N", "A"), 403, {"chat_owner": "$M"})
    + [R("POST", "/chat/{G}/set_owner", "O", 400, {"chat_owner": "$O"}),
       R("POST", "/chat/{G}/set_owner", "O", 400, {"chat_owner": "$F"}),
       R("POST", "/chat/{U}/set_owner", "O", 400, {"chat_owner": "$M"}),
       R("POST", "/chat/{P}/set_owner", "O", 400, {"chat_owner": "$F"})]
    # remove a member
    + rows_for("DELETE", "/chat/{G}/{N}", G_OUTSIDERS + ("M", "N"), 403)
    + [R("DELETE", "/chat/{G}/{A}", "M", 403),
       R("DELETE", "/chat/{G}/{O}", "A", 403),    # the owner
       R("DELETE", "/chat/{G}/{O}", "O", 403),
       R("DELETE", "/chat/{G}/{A}", "A", 403),    # an admin, by a non-owner
       R("DELETE", "/chat/{G}/{F}", "O", 400),    # not a member
       R("DELETE", "/chat/{U}/{N}", "O", 400),
       R("DELETE", "/chat/{P}/{F}", "O", 400)]    # private
    # [ext] search: every message a caller may read, no other (the words
    # are the secrets' common prefix)
    + [R("GET", "/search?q=sec{tag}msg*&limit=50", a, 200, check=search_finds()) for a in ROLES]
    + [R("GET", "/search?q=sec{tag}msg*&chat_id={G}", a, 200, check=search_finds("G"))
       for a in G_MEMBERS]
    + rows_for("GET", "/search?q=sec{tag}msg*&chat_id={G}", G_OUTSIDERS, 403)
    + [R("GET", "/search?q=sec{tag}msg*&chat_id={P}", a, 200, check=search_finds("P"))
       for a in ("O", "F")]
    + rows_for("GET", "/search?q=sec{tag}msg*&chat_id={P}", ("A", "S"), 403)
    + rows_for("GET", "/search?q=sec{tag}msg*&chat_id={H}", ("O", "F"), 403)
    + [R("GET", "/search?q=sec{tag}msg*&chat_id={U}", "O", 404),
       R("GET", "/search?q=a*", "O", 400)]
)


def row_id(row):
    method, path, actor, status, body, _ = row
    b = "" if body is NOBODY else " " + json.dumps(body, separators=(",", ":"))
    return f"{method} {path}{b} as {ROLE_NAMES[actor]} -> {status}"


def fill_extra(w, body):
    """$tag, $Og.text, $nick.OF: the world's tag and secrets as values."""
    if body == "$tag":
        return w.tag
    if body == "$Og.text":
        return w.text("group.Og")
    if body == "$nick.OF":
        return w.text("nick.OF")
    if isinstance(body, dict):
        return {k: fill_extra(w, v) for k, v in body.items()}
    return body


@pytest.mark.parametrize("row", REST_ROWS, ids=row_id)
def test_rest_matrix(world, row):
    method, path, actor, status, body, check = row
    w = world
    client = w.c[actor]
    if body is not NOBODY:
        body = fill_extra(w, body)
    if status == 200:
        r = call(w, client, method, path, body)
        assert r.status_code == 200, (r.status_code, r.text)
        env = r.json()
        assert env["ok"] is True, env
        leaked = w.leaks(r.text, actor)
        assert not leaked, (leaked, r.text)
        if check:
            check(w, actor, env["data"])
    else:
        denied(w, client, actor, method, path, body, status)
    # The caller's own session is untouched by anything above.
    assert client.get("/user").status_code == 200


# =============================================================================
# The matrix: socket actions by users of the world (denied ones)
# =============================================================================


def W(action, data, actor):
    return (action, data, actor)


SOCKET_ROWS = (
    [W("send_message", {"chat_id": "$G", "content": "pmdenied"}, a) for a in G_OUTSIDERS]
    + [W("send_message", {"chat_id": "$P", "content": "pmdenied"}, a) for a in ("A", "S")]
    + [W("send_message", {"chat_id": "$H", "content": "pmdenied"}, a) for a in ("O", "F")]
    + [W("send_message", {"chat_id": "$U", "content": "pmdenied"}, "O"),
       # reply_to a message of another chat (one the caller cannot see)
       W("send_message", {"chat_id": "$G", "content": "pmdenied", "reply_to": "$mH_Z"}, "M"),
       W("send_message", {"chat_id": "$G", "content": "pmdenied", "reply_to": "$mP_F"}, "O"),
       W("send_message", {"chat_id": "$H", "content": "pmdenied", "reply_to": "$mG_O"}, "S")]
    # recall for everyone: only the sender
    + [W("recall_message", {"message_id": "$mG_O"}, a) for a in G_OUTSIDERS + ("A", "M", "N")]
    + [W("recall_message", {"message_id": "$mG_O", "delete": False}, a) for a in ("A", "S")]
    + [W("recall_message", {"message_id": "$mP_F"}, a) for a in ("O", "A")]
    + [W("recall_message", {"message_id": "$U"}, "O")]
    # delete for me: members of the message's chat only
    + [W("recall_message", {"message_id": "$mG_O", "delete": True}, a) for a in G_OUTSIDERS]
    + [W("recall_message", {"message_id": "$mP_F", "delete": True}, a) for a in ("A", "S")]
    + [W("messages_read", {"chat_id": "$G"}, a) for a in G_OUTSIDERS]
    + [W("messages_read", {"chat_id": "$P"}, a) for a in ("A", "S")]
    + [W("messages_read", {"chat_id": "$U"}, "O")]
)


def socket_row_id(row):
    action, data, actor = row
    return f"{action} {json.dumps(data, separators=(',', ':'))} as {ROLE_NAMES[actor]} -> error"


@pytest.mark.parametrize("row", SOCKET_ROWS, ids=socket_row_id)
def test_socket_matrix(world, row):
    """§5: a failing action -> {"action":"error","code":400,"request_id":<its id>};
    nothing changes and nobody is notified (the outbox stays as it was)."""
    action, data, actor = row
    w = world
    sock = w.sock(actor)
    sock.ping_barrier()
    before = snapshot(w.stack)
    rid = sock.request(action, w.fill(data))
    msg = sock.recv()
    check_error_packet(msg, rid)
    assert "event_id" not in msg, msg
    leaked = w.leaks(json.dumps(msg), actor, strict=True)
    assert not leaked, (leaked, msg)
    assert sock.ping_barrier() == []  # nothing else for the caller either
    assert_unchanged(before, snapshot(w.stack))


@pytest.mark.parametrize("actor", ROLES, ids=lambda a: ROLE_NAMES[a])
def test_every_user_may_ping(world, actor):
    sock = world.sock(actor)
    sock.ping_barrier()
    sock.request("ping", None, request_id=4242)
    msg = sock.recv()
    assert msg["action"] == "pong" and msg["request_id"] == 4242 and msg["ok"] is True, msg


@pytest.mark.parametrize("kind", ["anon", "revoked"])
def test_socket_without_a_valid_session(world, revoked, kind):
    """§5 Connect: no valid session -> one error packet with code 403, then close."""
    before = snapshot(world.stack)
    sock = Socket(world.stack, None if kind == "anon" else revoked)
    msgs, code = sock.read_to_close()
    assert len(msgs) == 1, msgs
    check_error_packet(msgs[0], 0, code=403)
    assert code == 1008
    assert_unchanged(before, snapshot(world.stack))


def test_socket_of_a_member_from_a_foreign_origin_is_refused(world):
    """§5 Connect: a cross-site page carrying the owner's cookie gets no socket."""
    import websocket
    with pytest.raises(websocket.WebSocketBadStatusException) as e:
        Socket(world.stack, world.c["O"].token, origin="http://evil.example")
    assert e.value.status_code == 403


# =============================================================================
# Expired sessions: a stack whose sessions end after 1 s of idleness
# =============================================================================


def relogin_on_expiry(client, method, path, body=None):
    """While building the small world of the expiry stack, a slow machine may
    let a session idle out: log in again and retry."""
    r = client.request(method, path, body)
    if r.status_code == 403 and r.json().get("error") == INVALID_SESSION:
        client.login()
        r = client.request(method, path, body)
    assert r.status_code == 200, (method, path, r.status_code, r.text)
    return r.json()["data"]


def test_expired_session_is_refused_everywhere(make_stack):
    st = make_stack(env={"NOVA_SESSION_IDLE": "1", "NOVA_SESSION_TOUCH": "0"})
    w = World(st)
    for role in ("O", "F", "N", "Q"):
        c = st.client()
        c.register(f"pm{w.tag}{ROLE_NAMES[role]}")
        w.c[role], w.ids[role], w.names[role] = c, c.user["id"], c.user["user_name"]
    O = w.c["O"]
    for a in ("F", "N"):  # they invite, O accepts: O owns the private chats
        relogin_on_expiry(w.c[a], "POST", "/friend/invite",
                          {"id": w.ids["O"], "comment": "", "source": "search"})
        relogin_on_expiry(O, "POST", f"/friend/invitation/{w.invitation_id(a, 'O')}")
    w.ids["P"] = w.private_chat("O", "F")
    relogin_on_expiry(w.c["Q"], "POST", "/friend/invite",
                      {"id": w.ids["O"], "comment": "", "source": "search"})
    w.ids["inv_QO"] = w.invitation_id("Q", "O")
    w.ids["G"] = relogin_on_expiry(O, "POST", "/chat/new",
                                   {"chat_name": "pmg", "chat_members": [w.ids["N"]]})["chat_id"]
    w.ids["Og"] = relogin_on_expiry(O, "POST", "/friend/group/add", {"group_name": "pmog"})["group_id"]
    relogin_on_expiry(O, "POST", f"/chat/{w.ids['G']}/invite", {"user_id": w.ids["F"]})
    w.ids["I"] = w.ids["F"]  # the user with a pending invitation to G
    relogin_on_expiry(O, "GET", "/user")
    token = O.token

    # Let the sessions idle out (the only sleep of this file): the expiry
    # job ends them; no request is made meanwhile (it would keep one alive).
    deadline = time.time() + 20
    while st.sql("SELECT count(*) FROM sessions")[0][0]:
        assert time.time() < deadline, "the idle session did not expire"
        time.sleep(0.2)

    wrong = []
    for method, path, body in ROUTES:
        c = st.client().with_token(token)
        before = snapshot(st)
        r = call(w, c, method, path, body)
        got = (r.status_code, r.json().get("error") if r.status_code != 200 else r.json())
        if got != (403, INVALID_SESSION):
            wrong.append((method, path, got))
        if snapshot(st) != before:
            wrong.append((method, path, "changed the state"))
    for method, path, body, status in OPEN_ROUTES:
        c = st.client().with_token(token)
        before = snapshot(st)
        r = call(w, c, method, path, body)
        if r.status_code != status:
            wrong.append((method, path, r.status_code, r.text))
        if snapshot(st) != before:
            wrong.append((method, path, "changed the state"))
    assert wrong == [], wrong

    sock = Socket(st, token)
    msgs, code = sock.read_to_close()
    assert len(msgs) == 1, msgs
    check_error_packet(msgs[0], 0, code=403)
    assert code == 1008


# =============================================================================
# Permitted calls that change state: each on a fresh world, every user of it
# watching with a socket. Exactly the recipients API.md §5 names hear of it;
# everyone else hears nothing (a non-member hears nothing of a chat).
# =============================================================================


class Mut:
    def __init__(self, name, actor, call, recipients=None, closed=(), allow=(), status=200,
                 post=None, extra_socket=False):
        self.name = name
        self.actor = actor
        self.call = call            # ("rest", method, path, body) or ("ws", action, data)
        self.recipients = recipients or {}  # role -> [exact actions] or {required actions}
        self.closed = closed        # roles whose sockets get logout and are closed
        self.allow = allow          # (role, secret key) newly visible through this call
        self.status = status
        self.post = post            # post(world): state checks afterwards
        self.extra_socket = extra_socket


def rest(method, path, body=NOBODY):
    return ("rest", method, path, body)


def ws(action, data):
    return ("ws", action, data)


def members(actions, roles=G_MEMBERS):
    return {r: actions for r in roles}


def g_member_ids(w):
    return [r[0] for r in w.stack.sql(
        "SELECT user_id FROM chat_members WHERE chat_id = ? ORDER BY user_id", w.ids["G"])]


def is_member_of_g(role, expected):
    def post(w):
        assert (w.ids[role] in g_member_ids(w)) == expected
    return post


def admins_of_g(*roles):
    def post(w):
        rows = w.stack.sql("SELECT user_id FROM chat_members WHERE chat_id = ? AND is_admin = 1",
                           w.ids["G"])
        assert sorted(r[0] for r in rows) == sorted(w.ids[r] for r in roles)
    return post


def all_of(*posts):
    def post(w):
        for p in posts:
            p(w)
    return post


def g_gone(w):
    assert w.stack.sql("SELECT count(*) FROM chats WHERE id = ?", w.ids["G"])[0][0] == 0
    assert w.stack.sql("SELECT count(*) FROM chat_invitations WHERE chat_id = ?", w.ids["G"])[0][0] == 0


def friends_now(a, b, expected):
    def post(w):
        n = w.stack.sql("SELECT count(*) FROM friends WHERE user_id = ? AND friend_id = ?",
                        w.ids[a], w.ids[b])[0][0]
        assert n == (1 if expected else 0)
    return post


def user_gone(role):
    def post(w):
        assert w.stack.sql("SELECT count(*) FROM users WHERE id = ?", w.ids[role])[0][0] == 0
    return post


FRIENDSHIP_T_O = {"T": {"friend_created"}, "O": {"friend_created"}}
ALLOW_T_O = (("O", "email.T"), ("O", "phone.T"), ("T", "email.O"), ("T", "phone.O"))
ALLOW_I_G = tuple(("I", k) for k in ("chat.G", "msg.G.O", "msg.G.A", "msg.G.M", "msg.G.N"))

MUT_ROWS = [
    # -- members and roles of G ---------------------------------------------------
    Mut("owner removes member2", "O", rest("DELETE", "/chat/{G}/{N}"),
        {**members(["member_deleted", "new_message"], ("O", "A", "M")), "N": ["member_deleted"]},
        post=is_member_of_g("N", False)),
    Mut("admin removes member2", "A", rest("DELETE", "/chat/{G}/{N}"),
        {**members(["member_deleted", "new_message"], ("O", "A", "M")), "N": ["member_deleted"]},
        post=is_member_of_g("N", False)),
    Mut("owner removes the admin", "O", rest("DELETE", "/chat/{G}/{A}"),
        {**members({"member_deleted", "new_message"}, ("O", "M", "N")), "A": {"member_deleted"}},
        post=is_member_of_g("A", False)),
    Mut("owner makes member2 admin", "O", rest("POST", "/chat/{G}/{N}/admin", True),
        members(["admin_state_change"]), post=admins_of_g("A", "N")),
    Mut("owner unmakes the admin", "O", rest("POST", "/chat/{G}/{A}/admin", False),
        members(["admin_state_change"]), post=admins_of_g()),
    Mut("owner hands G to the member", "O", rest("POST", "/chat/{G}/set_owner", {"chat_owner": "$M"}),
        members({"owner_state_change"}), post=admins_of_g("A", "O")),
    Mut("owner deletes G", "O", rest("DELETE", "/chat/{G}"), members(["chat_deleted"]), post=g_gone),
    Mut("member leaves G", "M", rest("DELETE", "/chat/{G}"),
        {**members({"member_deleted", "new_message"}, ("O", "A", "N")), "M": {"member_deleted"}},
        post=is_member_of_g("M", False)),
    Mut("admin leaves G", "A", rest("DELETE", "/chat/{G}"),
        {**members({"member_deleted", "new_message"}, ("O", "M", "N")), "A": {"member_deleted"}},
        post=is_member_of_g("A", False)),
    # -- chat invitations: notifications to owner and admins only -------------------
    Mut("member re-invites the invitee", "M", rest("POST", "/chat/{G}/invite", {"user_id": "$I"}),
        members(["chat_invitation"], ("O", "A"))),
    Mut("owner invites the friend", "O", rest("POST", "/chat/{G}/invite", {"user_id": "$F"}),
        members(["chat_invitation"], ("O", "A"))),
    Mut("admin approves the invitee", "A", rest("POST", "/chat/{G}/invitation/{I}"),
        {**members(["member_added", "new_message"]),
         "I": {"member_added", "new_group_chat"}},
        allow=ALLOW_I_G, post=is_member_of_g("I", True)),
    Mut("owner approves the invitee", "O", rest("POST", "/chat/{G}/invitation/{I}"),
        {**members(["member_added", "new_message"]),
         "I": {"member_added", "new_group_chat"}},
        allow=ALLOW_I_G, post=is_member_of_g("I", True)),
    Mut("admin declines the invitee", "A", rest("DELETE", "/chat/{G}/invitation/{I}"), {},
        post=is_member_of_g("I", False)),
    Mut("owner creates a group with the admin", "O",
        rest("POST", "/chat/new", {"chat_name": "pmnewgroup", "chat_members": ["$A"]}),
        members(["new_group_chat", "new_message"], ("O", "A"))),
    # -- friends ------------------------------------------------------------------------
    Mut("owner unfriends the friend", "O", rest("DELETE", "/friend/{F}"),
        members(["friend_deleted"], ("O", "F")), post=friends_now("O", "F", False)),
    Mut("friend unfriends the owner", "F", rest("DELETE", "/friend/{O}"),
        members(["friend_deleted"], ("O", "F")), post=friends_now("F", "O", False)),
    Mut("receiver accepts", "T", rest("POST", "/friend/invitation/{inv_OT}"), FRIENDSHIP_T_O,
        allow=ALLOW_T_O, post=friends_now("O", "T", True)),
    Mut("receiver declines", "T", rest("DELETE", "/friend/invitation/{inv_OT}"), {},
        post=friends_now("O", "T", False)),
    Mut("receiver invites back (accepts)", "T",
        rest("POST", "/friend/invite", {"id": "$O", "comment": "", "source": "search"}),
        FRIENDSHIP_T_O, allow=ALLOW_T_O, post=friends_now("O", "T", True)),
    Mut("member invites member2 met in G", "M",
        rest("POST", "/friend/invite", {"id": "$N", "comment": "pmhello", "source": "$G"}), {},
        post=friends_now("M", "N", False)),
    Mut("owner deletes friend group Og", "O", rest("DELETE", "/friend/group/{Og}"), {}),
    Mut("owner renames the friend", "O", rest("PATCH", "/friend/{F}", {"nickname": "pmrenamed"}), {}),
    # -- accounts and sessions -------------------------------------------------------------
    Mut("member deletes the account", "M", rest("DELETE", "/user"),
        {"O": {"friend_deleted", "member_deleted"}, "I": {"friend_deleted"},
         "A": {"member_deleted"}, "N": {"member_deleted"}},
        closed=("M",), post=all_of(user_gone("M"), is_member_of_g("M", False))),
    Mut("owner deletes the account", "O", rest("DELETE", "/user"),
        {"A": {"friend_deleted", "chat_deleted"}, "M": {"friend_deleted", "chat_deleted"},
         "N": {"friend_deleted", "chat_deleted"}, "F": {"friend_deleted"}},
        closed=("O",), post=all_of(user_gone("O"), g_gone)),
    Mut("member logs out a second session", "M", rest("POST", "/user/logout"), {},
        extra_socket=True),
    # -- socket actions ------------------------------------------------------------------
    Mut("member sends to G", "M", ws("send_message", {"chat_id": "$G", "content": "pmhello"}),
        members(["new_message", "messages_read"])),
    Mut("admin sends to G", "A", ws("send_message", {"chat_id": "$G", "content": "pmhello"}),
        members(["new_message", "messages_read"])),
    Mut("friend sends to P", "F", ws("send_message", {"chat_id": "$P", "content": "pmhello"}),
        members(["new_message", "messages_read"], ("O", "F"))),
    Mut("stranger sends to H", "S", ws("send_message", {"chat_id": "$H", "content": "pmhello"}),
        members(["new_message", "messages_read"], ("S", "Z"))),
    Mut("owner recalls own message", "O", ws("recall_message", {"message_id": "$mG_O"}),
        members(["message_recalled"])),
    Mut("member deletes a message for self", "M",
        ws("recall_message", {"message_id": "$mG_O", "delete": True}),
        {"M": ["message_deleted"]}),
    Mut("member reads G", "M", ws("messages_read", {"chat_id": "$G"}), members(["messages_read"])),
]


@pytest.mark.parametrize("row", MUT_ROWS, ids=lambda m: f"{m.name} ({ROLE_NAMES[m.actor]})")
def test_permitted_change_reaches_exactly_its_recipients(pm_stack, row):
    w = World(pm_stack).build()
    socks = {}
    try:
        for role in ROLES:
            socks[role] = w.c[role].socket()
        actor = w.c[row.actor]
        extra = None
        if row.extra_socket:  # a second browser of the actor, with its own socket
            second = pm_stack.client()
            second.login(w.names[row.actor])
            extra = second.socket()
            actor = second
        for role in ROLES:  # drain: only what follows counts
            more = [extra] if extra is not None and role == row.actor else []
            barrier_multi(w.c[role], [socks[role]] + more)

        kind = row.call[0]
        if kind == "rest":
            _, method, path, body = row.call
            r = call(w, actor, method, path, body)
            assert r.status_code == row.status, (r.status_code, r.text)
            leaked = w.leaks(r.text, row.actor, allow=[k for a, k in row.allow if a == row.actor])
            assert not leaked, (leaked, r.text)
            rid = 0
        else:
            _, action, data = row.call
            rid = socks[row.actor].request(action, w.fill(data))
        # A socket action runs asynchronously: wait until it has committed
        # (its first packet back on the acting socket) before a barrier
        # orders anyone's REST change after it.
        early = []
        if kind == "ws" and row.actor not in row.closed:
            while not early or early[-1].get("request_id") != rid:
                early.append(socks[row.actor].recv())

        if extra is not None:
            msgs, code = extra.read_to_close()
            assert [m["action"] for m in msgs] == ["logout"] and code == 1000, (msgs, code)
            assert fail(actor.get("/user"), 403) == INVALID_SESSION
        for role in row.closed:
            msgs, code = socks[role].read_to_close()
            assert [m["action"] for m in msgs][-1:] == ["logout"] and code == 1000, (msgs, code)
            for m in msgs:
                leaked = w.leaks(json.dumps(m), role)
                assert not leaked, (ROLE_NAMES[role], leaked, m)
        for role in ROLES:
            if role in row.closed:
                continue
            got = (early if role == row.actor else []) + barrier(w.c[role], socks[role])
            acts = [m["action"] for m in got]
            want = row.recipients.get(role, [])
            if isinstance(want, set):
                assert want <= set(acts), (ROLE_NAMES[role], got)
            else:
                assert acts == want, (ROLE_NAMES[role], got)
            for m in got:
                assert m["action"] != "error", m
                # On the acting socket, events of its action carry its request_id.
                if role == row.actor and kind == "ws":
                    assert m["request_id"] == rid, m
                allowed = [k for a, k in row.allow if a == role]
                leaked = w.leaks(json.dumps(m), role, allow=allowed)
                assert not leaked, (ROLE_NAMES[role], leaked, m)
        if row.post:
            row.post(w)
    finally:
        for s in socks.values():
            s.close()


# =============================================================================
# Entitled but limited views, spelled out
# =============================================================================


def test_user_basic_views_carry_no_email_or_phone(world):
    w = world
    s = w.c["S"]
    for target in ROLES:
        raw = s.get(f"/user/{w.ids[target]}").text
        data = json.loads(raw)["data"]
        assert set(data) == BASIC_KEYS, data
        if target != "S":
            assert w.text(f"email.{target}") not in raw and w.text(f"phone.{target}") not in raw
    raw = s.post("/friend/find", {"name_contains": w.tag}).text
    for target in ROLES:
        if target != "S":
            assert w.text(f"email.{target}") not in raw and w.text(f"phone.{target}") not in raw
    for u in json.loads(raw)["data"]:
        assert set(u) == BASIC_KEYS, u


def test_friends_see_details_strangers_do_not(world):
    """A Friend carries User.Detailed (§3), so the friend sees O's email, the
    admin (a friend of O) too, but nobody who is not a friend."""
    w = world
    assert w.c["F"].ok("GET", f"/friend/{w.ids['O']}")["friend"]["email"] == w.text("email.O")
    for role in ROLES:
        raw = w.c[role].get("/friend").text
        leaked = w.leaks(raw, role)
        assert not leaked, (role, leaked)


def test_nothing_in_any_listing_leaks(world):
    """Every listing, by every user: only what that user may see."""
    w = world
    for role in ROLES:
        c = w.c[role]
        for path in ("/user", "/friend", "/friend/group/list", "/friend/invitation", "/chat"):
            raw = c.get(path).text
            leaked = w.leaks(raw, role)
            assert not leaked, (role, path, leaked)
