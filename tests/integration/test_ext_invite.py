"""[ext] Group invitations with consent (group-invite-flow = consent).

Written from docs/API.md "Group invitations with consent": the invitee
lists, accepts and declines the invitations addressed to them; an
invitation by the owner or an admin needs only the invitee's consent, one
by a plain member needs an approval too, in either order; every step is
notified to exactly the users the page names. The default flow (API.md's
simplified one) is checked to be unchanged where this extension touches
it.
"""

import pytest

from conftest import Stack
from support import (
    SYSTEM_ID, basic, befriend, befriend_all, chat_member_rows, leave, make_group, messages,
    register, remove_member, set_admin, table_counts, uid, Watch,
)

CONSENT = {"NOVA_GROUP_INVITE_FLOW": "consent"}
RECEIVED_KEYS = {"chat_id", "chat_name", "created_at", "approved", "accepted", "invited_by"}
STAFF_KEYS = {"invitation_id", "chat_id", "user", "invited_by", "created_at", "accepted", "approved"}


@pytest.fixture(scope="module")
def cstack():
    s = Stack(env=CONSENT).start()
    yield s
    s.stop_and_check()


class World:
    """owner O (admin A) owns group G with member M; I is a friend of O, A
    and M, invited by nobody yet; X is a stranger to everyone."""

    def __init__(self, st):
        self.st = st
        self.O, self.A, self.M, self.I, self.X = (register(st) for _ in range(5))
        befriend_all(self.O, self.A, self.M, self.I)
        befriend(self.A, self.I)
        befriend(self.M, self.I)
        self.chat = make_group(self.O, [self.A, self.M])
        self.G = self.chat["chat_id"]
        set_admin(self.O, self.G, self.A)


@pytest.fixture
def w(cstack):
    return World(cstack)


def invite(inviter, chat_id, user):
    assert inviter.ok("POST", f"/chat/{chat_id}/invite", {"user_id": uid(user)}) is None


def received(client):
    invs = client.ok("GET", "/chat/invitation")
    assert isinstance(invs, list), invs
    for inv in invs:
        assert set(inv) == RECEIVED_KEYS, inv
        assert all(set(b) == {"id", "user_name", "avatar_url"} for b in inv["invited_by"]), inv
    return invs


def accept(client, chat_id):
    data = client.ok("POST", f"/chat/invitation/{chat_id}")
    assert set(data) == {"joined"}, data
    return data["joined"]


def refuse(client, chat_id):
    assert client.ok("DELETE", f"/chat/invitation/{chat_id}") is None


def staff_list(client, chat_id):
    invs = client.ok("GET", f"/chat/{chat_id}/invitation")
    for inv in invs:
        assert set(inv) == STAFF_KEYS, inv
    return invs


def members(st, chat_id):
    return {u for u, _ in chat_member_rows(st, chat_id)}


def actions_of(packets):
    return [p["action"] for p in packets]


def last_system_text(client, chat_id):
    ms = messages(client, chat_id, "?limit=1")
    assert ms[0]["sender"]["id"] == SYSTEM_ID, ms[0]
    return ms[0]["message"]


# -- the flows -----------------------------------------------------------------


def test_member_invites_invitee_accepts_then_admin_approves(w):
    watch = Watch(w.O, w.A, w.M, w.I, w.X)
    invite(w.M, w.G, w.I)
    ev = watch.events()
    # The staff get API.md's chat_invitation; the invitee is asked.
    for u in (w.O, w.A):
        assert actions_of(ev[uid(u)]) == ["chat_invitation"], ev[uid(u)]
        inv = ev[uid(u)][0]["data"]["invitation"]
        assert inv["accepted"] is False and inv["approved"] is False, inv
    assert actions_of(ev[uid(w.I)]) == ["chat_invitation_received"], ev[uid(w.I)]
    got = ev[uid(w.I)][0]["data"]["invitation"]
    assert got["chat_id"] == w.G and got["chat_name"] == w.chat["chat_name"]
    assert got["invited_by"] == [basic(w.M.user)] and not got["approved"] and not got["accepted"]
    assert ev[uid(w.M)] == [] and ev[uid(w.X)] == []
    assert received(w.I) == [got]

    assert accept(w.I, w.G) is False  # an approval is still needed
    assert uid(w.I) not in members(w.st, w.G)
    ev = watch.events()
    for u in (w.O, w.A, w.M):  # the staff and the inviter
        assert actions_of(ev[uid(u)]) == ["chat_invitation_accepted"], ev[uid(u)]
        assert ev[uid(u)][0]["data"] == {"chat_id": w.G, "user": basic(w.I.user)}
    assert ev[uid(w.I)] == [] and ev[uid(w.X)] == []
    assert received(w.I)[0]["accepted"] is True
    assert staff_list(w.O, w.G)[0]["accepted"] is True
    assert accept(w.I, w.G) is False  # accepting again changes nothing
    assert watch.events()[uid(w.O)] == []

    assert w.A.ok("POST", f"/chat/{w.G}/invitation/{uid(w.I)}") is None
    assert uid(w.I) in members(w.st, w.G)
    ev = watch.events()
    assert "new_group_chat" in actions_of(ev[uid(w.I)])
    for u in (w.O, w.A, w.M, w.I):
        assert "member_added" in actions_of(ev[uid(u)]), ev[uid(u)]
    assert ev[uid(w.X)] == []
    assert last_system_text(w.O, w.G) == (
        f"{w.A.user['user_name']} approved {w.I.user['user_name']} to join the group, "
        f"invited by {w.M.user['user_name']}")
    assert received(w.I) == [] and staff_list(w.O, w.G) == []
    watch.close()


def test_approval_first_then_consent(w):
    invite(w.M, w.G, w.I)
    watch = Watch(w.O, w.I)
    assert w.O.ok("POST", f"/chat/{w.G}/invitation/{uid(w.I)}") is None
    assert uid(w.I) not in members(w.st, w.G)  # the invitee is still to be asked
    ev = watch.events()
    assert actions_of(ev[uid(w.I)]) == ["chat_invitation_received"]
    assert ev[uid(w.I)][0]["data"]["invitation"]["approved"] is True
    assert accept(w.I, w.G) is True
    assert uid(w.I) in members(w.st, w.G)
    assert last_system_text(w.I, w.G) == (
        f"{w.O.user['user_name']} approved {w.I.user['user_name']} to join the group, "
        f"invited by {w.M.user['user_name']}")
    watch.close()


@pytest.mark.parametrize("who", ["O", "A"])
def test_staff_invitation_needs_only_consent(w, who):
    inviter = getattr(w, who)
    invite(inviter, w.G, w.I)
    inv = received(w.I)
    assert inv[0]["approved"] is True and inv[0]["invited_by"] == [basic(inviter.user)]
    assert uid(w.I) not in members(w.st, w.G)
    assert accept(w.I, w.G) is True
    assert uid(w.I) in members(w.st, w.G)
    assert last_system_text(w.I, w.G) == (
        f"{w.I.user['user_name']} joined the group, invited by {inviter.user['user_name']}")


def test_staff_invitation_after_consent_admits_at_once(w):
    invite(w.M, w.G, w.I)
    assert accept(w.I, w.G) is False
    invite(w.A, w.G, w.I)  # the admin's invitation is an approval
    assert uid(w.I) in members(w.st, w.G)
    assert received(w.I) == []


def test_two_inviters_one_consent(w):
    invite(w.M, w.G, w.I)
    invite(w.A, w.G, w.I)
    inv = received(w.I)
    assert len(inv) == 1 and inv[0]["invited_by"] == [basic(w.M.user), basic(w.A.user)]
    assert inv[0]["approved"] is True
    assert len(staff_list(w.O, w.G)) == 2
    assert accept(w.I, w.G) is True
    assert w.st.sql("SELECT count(*) FROM chat_invitations WHERE chat_id = ?", w.G) == [(0,)]
    assert last_system_text(w.I, w.G) == (
        f"{w.I.user['user_name']} joined the group, invited by {w.A.user['user_name']}")


def test_invitee_declines(w):
    invite(w.M, w.G, w.I)
    invite(w.A, w.G, w.I)
    watch = Watch(w.O, w.A, w.M, w.I, w.X)
    refuse(w.I, w.G)
    ev = watch.events()
    for u in (w.O, w.A, w.M):
        assert actions_of(ev[uid(u)]) == ["chat_invitation_declined"], ev[uid(u)]
        assert ev[uid(u)][0]["data"] == {"chat_id": w.G, "user": basic(w.I.user)}
    assert ev[uid(w.I)] == [] and ev[uid(w.X)] == []
    assert received(w.I) == [] and staff_list(w.O, w.G) == []
    assert uid(w.I) not in members(w.st, w.G)
    # Declined is gone: nothing left to accept or decline.
    for method in ("POST", "DELETE"):
        r = w.I.request(method, f"/chat/invitation/{w.G}")
        assert r.status_code == 400, r.text
    watch.close()


def test_staff_decline_withdraws(w):
    invite(w.M, w.G, w.I)
    watch = Watch(w.I, w.X)
    assert w.O.ok("DELETE", f"/chat/{w.G}/invitation/{uid(w.I)}") is None
    ev = watch.events()
    assert actions_of(ev[uid(w.I)]) == ["chat_invitation_withdrawn"]
    assert ev[uid(w.I)][0]["data"] == {"chat_id": w.G}
    assert ev[uid(w.X)] == []
    assert received(w.I) == []
    watch.close()


def test_repeated_invitation_keeps_the_consent(w):
    invite(w.M, w.G, w.I)
    assert accept(w.I, w.G) is False
    invite(w.M, w.G, w.I)  # replaces M's invitation
    inv = received(w.I)
    assert len(inv) == 1 and inv[0]["accepted"] is True
    assert w.O.ok("POST", f"/chat/{w.G}/invitation/{uid(w.I)}") is None
    assert uid(w.I) in members(w.st, w.G)


def test_inviter_leaves_or_group_deleted(w):
    invite(w.M, w.G, w.I)
    leave(w.M, w.G)
    # The invitation stays (as in the default flow) and can still be taken up.
    assert [i["chat_id"] for i in received(w.I)] == [w.G]
    assert w.O.ok("DELETE", f"/chat/{w.G}") is None  # the owner deletes the group
    assert received(w.I) == []
    r = w.I.request("POST", f"/chat/invitation/{w.G}")
    assert r.status_code == 400, r.text


def test_invitee_deletes_account(w):
    invite(w.M, w.G, w.I)
    assert w.I.request("DELETE", "/user", {"password": w.I.password}).status_code == 200
    assert staff_list(w.O, w.G) == []


def test_approver_deletes_account(w):
    invite(w.M, w.G, w.I)
    assert w.A.ok("POST", f"/chat/{w.G}/invitation/{uid(w.I)}") is None
    assert received(w.I)[0]["approved"] is True
    assert w.A.request("DELETE", "/user", {"password": w.A.password}).status_code == 200
    # An approval by a deleted account no longer counts.
    assert received(w.I)[0]["approved"] is False
    assert accept(w.I, w.G) is False


# -- permissions and bad input ---------------------------------------------------


def test_permission_matrix(w):
    invite(w.M, w.G, w.I)
    before = table_counts(w.st)
    # Nobody but the invitee can accept or decline (they have no invitation:
    # 400), whatever their role; the invitee's list shows only their own.
    for u in (w.O, w.A, w.M, w.X):
        assert received(u) == []
        for method in ("POST", "DELETE"):
            r = u.request(method, f"/chat/invitation/{w.G}")
            assert r.status_code == 400, (u.user["user_name"], method, r.text)
            assert r.json()["ok"] is False
    # Unknown chats and ids that are not ids.
    for path, code in ((f"/chat/invitation/999999999", 400), ("/chat/invitation/abc", 404),
                       ("/chat/invitation/0", 404), ("/chat/invitation/-1", 404)):
        r = w.I.request("POST", path)
        assert r.status_code == code, (path, r.status_code, r.text)
    # No session.
    anon = w.st.client()
    for method, path in (("GET", "/chat/invitation"), ("POST", f"/chat/invitation/{w.G}"),
                         ("DELETE", f"/chat/invitation/{w.G}")):
        r = anon.request(method, path)
        assert r.status_code == 403 and r.json()["error"] == "Invalid Session", r.text
    # The staff routes keep API.md's rules: a plain member may not approve.
    r = w.M.request("POST", f"/chat/{w.G}/invitation/{uid(w.I)}")
    assert r.status_code == 403, r.text
    r = w.X.request("POST", f"/chat/{w.G}/invitation/{uid(w.I)}")
    assert r.status_code == 403, r.text
    assert table_counts(w.st) == before
    # What an invitee sees of the group: its name and the inviters, nothing
    # of its members or messages.
    inv = received(w.I)[0]
    assert set(inv) == RECEIVED_KEYS
    r = w.I.request("GET", f"/chat/{w.G}/messages")
    assert r.status_code == 403, r.text


def test_wrong_methods(w):
    r = w.I.request("PATCH", "/chat/invitation")
    assert r.status_code == 405, r.text


# -- the default flow is unchanged -------------------------------------------------


def test_default_flow_unchanged(stack):
    O, M, I, J = (register(stack) for _ in range(4))
    befriend_all(O, M, I, J)
    befriend(M, I)
    G = make_group(O, [M])["chat_id"]
    watch = Watch(O, I)
    invite(M, G, I)
    ev = watch.events()
    assert ev[uid(I)] == []  # never asked
    inv = ev[uid(O)][0]["data"]["invitation"]
    assert set(inv) == {"invitation_id", "chat_id", "user", "invited_by", "created_at"}, inv
    for method in ("GET", "POST", "DELETE"):
        path = "/chat/invitation" if method == "GET" else f"/chat/invitation/{G}"
        r = I.request(method, path)
        assert r.status_code == 404, r.text
        assert r.json()["ok"] is False and "approval" in r.json()["error"], r.text
    assert O.ok("POST", f"/chat/{G}/invitation/{uid(I)}") is None
    assert uid(I) in members(stack, G)
    # The owner approving its own invitation: API.md's text, as always.
    invite(O, G, J)
    assert uid(J) not in members(stack, G)
    assert O.ok("POST", f"/chat/{G}/invitation/{uid(J)}") is None
    assert last_system_text(O, G) == (
        f"{O.user['user_name']} approved {J.user['user_name']} to join the group, "
        f"invited by {O.user['user_name']}")
    watch.close()


def restart_with(st, flow):
    st.stop()
    st.env["NOVA_GROUP_INVITE_FLOW"] = flow
    st.start()


def test_switching_flows_strands_no_one(make_stack):
    """Invitations made under one flow are honoured by the other, and
    nobody is admitted without what the flow in force asks for."""
    st = make_stack(env=CONSENT)
    w = World(st)
    J, K = register(st), register(st)
    befriend_all(w.O, J, K)
    befriend_all(w.M, J, K)
    invite(w.M, w.G, w.I)
    assert accept(w.I, w.G) is False  # consented, not approved
    invite(w.M, w.G, J)  # not asked yet

    restart_with(st, "approval")
    invs = w.O.ok("GET", f"/chat/{w.G}/invitation")
    assert all(set(i) == {"invitation_id", "chat_id", "user", "invited_by", "created_at"}
               for i in invs) and len(invs) == 2, invs
    assert w.I.request("GET", "/chat/invitation").status_code == 404
    assert uid(w.I) not in members(st, w.G) and uid(J) not in members(st, w.G)
    assert w.O.ok("POST", f"/chat/{w.G}/invitation/{uid(J)}") is None  # approval suffices here
    assert uid(J) in members(st, w.G)
    invite(w.M, w.G, K)  # made without the invitee's consent
    L = register(st)
    befriend(w.O, L)
    invite(w.O, w.G, L)  # the owner's: approved from the start, in either flow
    assert uid(L) not in members(st, w.G)

    restart_with(st, "consent")
    assert received(L)[0]["approved"] is True
    assert accept(L, w.G) is True
    assert [i["chat_id"] for i in received(K)] == [w.G]
    assert received(K)[0]["approved"] is False
    assert accept(K, w.G) is False  # still needs an approval
    assert accept(w.I, w.G) is False
    assert w.A.ok("POST", f"/chat/{w.G}/invitation/{uid(w.I)}") is None
    assert uid(w.I) in members(st, w.G)
    r = st.admin("check", check=False)
    assert r.returncode == 0, r.stdout + r.stderr
