"""Friend groups (API.md §2 group_name, §3 FriendGroup, §4 Friend groups)."""

import pytest

from conftest import fail, unique_name
from support import (
    MULTI_100, add_group, befriend, check_friend, check_group, default_group, groups,
    is_int, register, utf8_ok, utf8_request,
)


# -- the default group ---------------------------------------------------------


def test_new_user_has_exactly_the_default_group(alice):
    gs = groups(alice)
    assert len(gs) == 1, gs
    assert gs[0]["group_name"] == ""
    assert is_int(gs[0]["group_id"]) and gs[0]["group_id"] > 0


def test_default_groups_are_per_user(alice, bob):
    ga, gb = default_group(alice), default_group(bob)
    assert ga["group_id"] != gb["group_id"]


def test_get_default_group(alice):
    g = default_group(alice)
    assert alice.ok("GET", f"/friend/group/{g['group_id']}") == g


def test_group_routes_need_a_session(stack, alice):
    gid = default_group(alice)["group_id"]
    anon = stack.client()
    assert fail(anon.get("/friend/group/list"), 403) == "Invalid Session"
    assert fail(anon.post("/friend/group/add", {"group_name": "x"}), 403) == "Invalid Session"
    assert fail(anon.get(f"/friend/group/{gid}"), 403) == "Invalid Session"
    assert fail(anon.patch(f"/friend/group/{gid}", {"group_name": "x"}), 403) == "Invalid Session"
    assert fail(anon.delete(f"/friend/group/{gid}"), 403) == "Invalid Session"
    assert groups(alice) == [default_group(alice)]


# -- add and list ----------------------------------------------------------------


def test_add_group_returns_it_and_lists_it_after_the_default(alice):
    d = default_group(alice)
    g1 = add_group(alice, "Family")
    g2 = add_group(alice, "Work")
    assert len({d["group_id"], g1["group_id"], g2["group_id"]}) == 3
    gs = groups(alice)
    assert gs[0] == d
    assert len(gs) == 3
    assert sorted(gs[1:], key=lambda g: g["group_id"]) == sorted([g1, g2], key=lambda g: g["group_id"])
    assert alice.ok("GET", f"/friend/group/{g1['group_id']}") == g1
    assert alice.ok("GET", f"/friend/group/{g2['group_id']}") == {"group_id": g2["group_id"], "group_name": "Work"}


def test_group_names_need_not_be_unique(alice, bob):
    g1 = add_group(alice, "same")
    g2 = add_group(alice, "same")
    g3 = add_group(bob, "same")
    assert len({g1["group_id"], g2["group_id"], g3["group_id"]}) == 3
    assert [g["group_name"] for g in groups(alice)] == ["", "same", "same"]


def test_groups_list_only_own_groups(alice, bob):
    add_group(alice, "mine")
    gb = groups(bob)
    assert len(gb) == 1 and gb[0]["group_name"] == ""


def test_group_name_length_counts_code_points(alice):
    g = add_group(alice, MULTI_100)
    assert g["group_name"] == MULTI_100
    assert alice.ok("GET", f"/friend/group/{g['group_id']}")["group_name"] == MULTI_100
    g = add_group(alice, "x" * 100)
    assert g["group_name"] == "x" * 100
    g = add_group(alice, "a")
    assert g["group_name"] == "a"


@pytest.mark.parametrize(
    "body",
    [
        {"group_name": ""},
        {"group_name": "x" * 101},
        {"group_name": MULTI_100 + "é"},
        {},
        {"group_name": None},
        {"group_name": 5},
        {"group_name": True},
        {"group_name": ["a"]},
        ["group_name"],
        "group_name",
        None,
    ],
    ids=["empty", "101-ascii", "101-multibyte", "missing", "null", "int", "bool", "list",
         "array-body", "string-body", "no-body"],
)
def test_add_group_invalid(alice, body):
    if body is None:
        r = alice.post("/friend/group/add")
    else:
        r = utf8_request(alice, "POST", "/friend/group/add", body)
    fail(r, 400)
    assert len(groups(alice)) == 1  # nothing was created


# -- GET /friend/group/<id> ------------------------------------------------------


def test_get_group_unknown_is_404(alice):
    fail(alice.get("/friend/group/999999999"), 404)


def test_get_group_of_someone_else_is_403(alice, bob):
    g = add_group(bob, "bobs")
    fail(alice.get(f"/friend/group/{g['group_id']}"), 403)
    fail(alice.get(f"/friend/group/{default_group(bob)['group_id']}"), 403)


def test_get_group_bad_ids_are_unknown_paths(alice):
    for path in ("/friend/group/0", "/friend/group/-1", "/friend/group/abc",
                 "/friend/group/99999999999999999999", "/friend/group/list/"):
        fail(alice.get(path), 404)


# -- PATCH /friend/group/<id> ----------------------------------------------------


def test_rename_group(alice):
    g = add_group(alice, "old")
    r = utf8_ok(alice, "PATCH", f"/friend/group/{g['group_id']}", {"group_name": "new"})
    assert r == {"group_id": g["group_id"], "group_name": "new"}
    assert alice.ok("GET", f"/friend/group/{g['group_id']}") == r
    assert groups(alice)[1] == r


def test_rename_group_multibyte_100(alice):
    g = add_group(alice, "old")
    r = utf8_ok(alice, "PATCH", f"/friend/group/{g['group_id']}", {"group_name": MULTI_100})
    check_group(r, g["group_id"], MULTI_100)


def test_rename_group_to_an_existing_name(alice):
    g1 = add_group(alice, "one")
    g2 = add_group(alice, "two")
    r = alice.ok("PATCH", f"/friend/group/{g2['group_id']}", {"group_name": "one"})
    assert r == {"group_id": g2["group_id"], "group_name": "one"}
    assert alice.ok("GET", f"/friend/group/{g1['group_id']}") == g1


def test_rename_unknown_group_is_400(alice):
    fail(alice.patch("/friend/group/999999999", {"group_name": "x"}), 400)


def test_rename_someone_elses_group_is_403(alice, bob):
    g = add_group(bob, "bobs")
    fail(alice.patch(f"/friend/group/{g['group_id']}", {"group_name": "mine"}), 403)
    assert bob.ok("GET", f"/friend/group/{g['group_id']}") == g


def test_rename_default_group_is_400(alice):
    d = default_group(alice)
    fail(alice.patch(f"/friend/group/{d['group_id']}", {"group_name": "named"}), 400)
    assert default_group(alice) == d


@pytest.mark.parametrize(
    "body",
    [{"group_name": ""}, {"group_name": "y" * 101}, {"group_name": MULTI_100 + "x"}, {},
     {"group_name": 7}, {"group_name": None}, ["x"], None],
    ids=["empty", "101-ascii", "101-multibyte", "missing", "int", "null", "array-body", "no-body"],
)
def test_rename_group_invalid(alice, body):
    g = add_group(alice, "keep")
    path = f"/friend/group/{g['group_id']}"
    r = alice.patch(path) if body is None else utf8_request(alice, "PATCH", path, body)
    fail(r, 400)
    assert alice.ok("GET", path) == g


# -- DELETE /friend/group/<id> ---------------------------------------------------


def test_delete_group(alice):
    g = add_group(alice, "doomed")
    keep = add_group(alice, "keep")
    assert alice.ok("DELETE", f"/friend/group/{g['group_id']}") is None
    fail(alice.get(f"/friend/group/{g['group_id']}"), 404)
    assert groups(alice)[1:] == [keep]
    # A deleted group is unknown from then on.
    fail(alice.delete(f"/friend/group/{g['group_id']}"), 400)
    fail(alice.patch(f"/friend/group/{g['group_id']}", {"group_name": "x"}), 400)


def test_delete_unknown_group_is_400(alice):
    fail(alice.delete("/friend/group/999999999"), 400)


def test_delete_someone_elses_group_is_403(alice, bob):
    g = add_group(bob, "bobs")
    fail(alice.delete(f"/friend/group/{g['group_id']}"), 403)
    assert bob.ok("GET", f"/friend/group/{g['group_id']}") == g


def test_delete_default_group_is_400(alice, bob):
    d = default_group(alice)
    fail(alice.delete(f"/friend/group/{d['group_id']}"), 400)
    assert groups(alice) == [d]
    # someone else's default group: 403 (not theirs) or 400 (default) are
    # both refusals; it must survive either way.
    r = bob.delete(f"/friend/group/{d['group_id']}")
    assert r.status_code in (400, 403), r.text
    assert groups(alice) == [d]


def test_delete_group_moves_its_friends_to_the_default_group(stack, alice):
    b, c, d = register(stack), register(stack), register(stack)
    for other in (b, c, d):
        befriend(alice, other)
    g = add_group(alice, "moving")
    other_g = add_group(alice, "staying")
    default = default_group(alice)
    for other, grp in ((b, g), (c, g), (d, other_g)):
        f = alice.ok("PATCH", f"/friend/{other.user['id']}", {"group_id": grp["group_id"], "nickname": "n" + other.user["user_name"][:5]})
        check_friend(f, other.user, grp, "n" + other.user["user_name"][:5])
    assert alice.ok("DELETE", f"/friend/group/{g['group_id']}") is None
    for other, grp in ((b, default), (c, default), (d, other_g)):
        f = alice.ok("GET", f"/friend/{other.user['id']}")
        check_friend(f, other.user, grp, "n" + other.user["user_name"][:5])
    # The other side never saw a change.
    check_friend(b.ok("GET", f"/friend/{alice.user['id']}"), alice.user, default_group(b))


def test_group_ids_of_others_do_not_leak_into_lists(alice, bob):
    add_group(bob, unique_name("g"))
    ids_a = {g["group_id"] for g in groups(alice)}
    ids_b = {g["group_id"] for g in groups(bob)}
    assert not ids_a & ids_b
