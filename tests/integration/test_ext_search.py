"""[ext] Search (docs/API.md "[ext] Search"): GET /api/search over the
messages of the caller's chats.

Written from the page: what matches (every word, whole words, case and
accents folded, `word*` prefixes, phrases, punctuation-only words
ignored), what is never found (chats the caller is not in, left, removed
from, a deleted group, a private chat whose friendship ended; recalled
messages, messages deleted for oneself, an edit's old text), the answer
(ChatMessage.Basic equal to the history's, snippet segments), order and
paging (relevance and newest, opaque cursors), the chat_id filter, every
status of the table, the options, the SQLite index's integrity, and that a
search changes nothing and notifies nobody.

Every hit of every search is checked against the page's rules for the
snippet (check_hit), whatever the test is about.
"""

import random
import re
import string
import unicodedata
from urllib.parse import quote

import pytest

from conftest import Stack, fail
from support import (
    DELETED_ID, SYSTEM_ID, UNKNOWN, Watch, basic_of, befriend, befriend_all, check_message_basic,
    edit_as as edit, leave, make_group, messages, name, recall, remove_member, say, send_message,
    table_counts, uid,
)

ELLIPSIS = "\u2026"
SNIPPET_WORDS = 24  # NOVA_SEARCH_SNIPPET_WORDS' default


# -- helpers -------------------------------------------------------------------


def word(n=10):
    """A fresh lowercase word no other message of the run contains."""
    return "".join(random.choices(string.ascii_lowercase, k=n))


def fold(text):
    """Case and accents folded, as the page says matching does."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()


def path(q=None, **params):
    """The request path: q percent-encoded (safe="" so that +, &, #... are
    data), the other parameters too; None leaves a parameter out."""
    parts = []
    if q is not None:
        parts.append("q=" + quote(q, safe=""))
    for k, v in params.items():
        if v is not None:
            parts.append(f"{k}={quote(str(v), safe='')}")
    return "/search?" + "&".join(parts)


def check_hit(hit, snippet_words=None):
    """A hit is {message: ChatMessage.Basic, snippet: segments}; joined,
    the segments are a substring of the message's text with U+2026 added at
    the start exactly when the substring does not begin the text and at the
    end exactly when it does not end it; at least one segment is a match;
    plain text (no markup added)."""
    assert isinstance(hit, dict) and set(hit) == {"message", "snippet"}, hit
    m = check_message_basic(hit["message"])
    assert m["deleted"] is False, hit  # never found: deleted for the caller, recalled
    text = m["message"]
    segs = hit["snippet"]
    assert isinstance(segs, list) and segs, hit
    for s in segs:
        assert isinstance(s, dict) and set(s) == {"text", "match"}, hit
        assert isinstance(s["text"], str) and isinstance(s["match"], bool), hit
        if s["match"]:
            assert s["text"].strip() == s["text"] and s["text"], hit
    assert any(s["match"] for s in segs), hit
    joined = "".join(s["text"] for s in segs)
    inner = joined
    lead = inner.startswith(ELLIPSIS) and not text.startswith(ELLIPSIS)
    if lead:
        inner = inner[1:]
    trail = inner.endswith(ELLIPSIS) and not text.endswith(ELLIPSIS)
    if trail:
        inner = inner[:-1]
    assert inner and inner in text, (inner, text)
    starts = [i for i in range(len(text)) if text.startswith(inner, i)]
    assert any((i > 0) == lead and (i + len(inner) < len(text)) == trail for i in starts), \
        ("ellipsis where the substring does (not) begin or end the text", joined, text)
    assert "<b>" not in joined or "<b>" in text, hit  # plain text
    if snippet_words is not None:
        assert len(inner.split()) <= snippet_words, (len(inner.split()), joined)
    return hit


def check_data(data, snippet_words=None):
    assert isinstance(data, dict) and set(data) == {"hits", "next_cursor"}, data
    assert isinstance(data["hits"], list), data
    assert data["next_cursor"] is None or (isinstance(data["next_cursor"], str)
                                           and data["next_cursor"]), data
    for h in data["hits"]:
        check_hit(h, snippet_words)
    ids = hit_ids(data)
    assert len(set(ids)) == len(ids), ids  # no message twice on a page
    return data


def search(client, q, **params):
    """A successful search; its data, checked."""
    return check_data(client.ok("GET", path(q, **params)))


def hit_ids(data):
    return [h["message"]["message_id"] for h in data["hits"]]


def found(client, q, **params):
    """The ids a search finds (one page of at most 50), newest first."""
    params.setdefault("limit", 50)
    params.setdefault("sort", "newest")
    data = search(client, q, **params)
    assert data["next_cursor"] is None, data
    return hit_ids(data)


def ids_of(*msgs):
    """Message ids, newest first."""
    return sorted((m["message_id"] for m in msgs), reverse=True)


def all_pages(client, q, limit, max_pages=100, **params):
    """Follow next_cursor to the end; the list of pages' data."""
    out, cursor = [], None
    for _ in range(max_pages):
        data = search(client, q, limit=limit, cursor=cursor, **params)
        assert len(data["hits"]) <= limit, data
        out.append(data)
        cursor = data["next_cursor"]
        if cursor is None:
            return out
    raise AssertionError("paging does not end")


def bad(client, p, status=400):
    """A refused search: the status, a JSON error envelope (fail checks the
    Content-Type and the envelope)."""
    return fail(client.get(p), status)


def history(client, chat_id):
    return {m["message_id"]: m for m in messages(client, chat_id, "?limit=100")}


def trio(alice, bob, carol):
    """alice friends with bob and carol; their two private chats and a group
    of the three."""
    p_ab, p_ac = befriend_all(alice, bob, carol)
    g = make_group(alice, [bob, carol])["chat_id"]
    return p_ab, p_ac, g


# -- 1. what is found, and as what ---------------------------------------------


def test_finds_across_the_callers_chats_as_history_shows(stack, alice, bob, carol):
    tok = word()
    p_ab, p_ac, g = trio(alice, bob, carol)
    m1 = say(alice, p_ab, f"first {tok} in private")
    m2 = say(bob, g, f"the group says {tok}")
    m3 = say(carol, p_ac, f"{tok.upper()} shouted by carol")
    reply = say(bob, g, f"a reply about {tok}", reply_to=m2["message_id"])
    say(alice, p_ab, "nothing to see here")
    say(carol, g, "nor here")
    edit(alice, m1["message_id"], f"first {tok} in private, edited")
    want = ids_of(m1, m2, m3, reply)
    hist = {}
    for cid in (p_ab, p_ac, g):
        hist.update(history(alice, cid))
    for sort in (None, "relevance", "newest"):
        data = search(alice, tok, sort=sort)
        ids = hit_ids(data)
        assert sorted(ids, reverse=True) == want, (sort, ids, want)
        if sort == "newest":
            assert ids == want
        assert data["next_cursor"] is None, data
        for h in data["hits"]:
            m = h["message"]
            assert m == basic_of(hist[m["message_id"]]), (m, hist[m["message_id"]])
    # The fields themselves (the history could be wrong the same way).
    by = {h["message"]["message_id"]: h["message"] for h in search(alice, tok)["hits"]}
    assert by[reply["message_id"]]["reply_to_id"] == m2["message_id"]
    assert by[reply["message_id"]]["chat_id"] == g
    assert by[m3["message_id"]]["sender"]["id"] == uid(carol)
    assert by[m3["message_id"]]["chat_id"] == p_ac
    assert by[m1["message_id"]]["message"] == f"first {tok} in private, edited"
    assert by[m1["message_id"]]["edited_at"] is not None
    assert by[m2["message_id"]]["edited_at"] is None
    assert by[m2["message_id"]]["send_time"] == m2["send_time"]
    # bob is not in alice and carol's private chat.
    assert found(bob, tok) == ids_of(m1, m2, reply)


def test_system_messages_are_found(stack, alice, bob, carol):
    p_ab, p_ac, g = trio(alice, bob, carol)
    want = []
    for cid in (p_ab, p_ac, g):
        for m in history(alice, cid).values():
            if name(bob) in re.findall(r"\w+", m["message"]):
                assert m["sender"]["id"] == SYSTEM_ID, m
                want.append(m)
    # "bob added alice as a friend" and "Group ... created by alice with alice, bob, carol"
    assert len(want) == 2, want
    assert found(alice, name(bob)) == ids_of(*want)
    got = search(alice, name(bob), sort="newest")["hits"]
    assert [h["message"] for h in got] == [basic_of(m) for m in sorted(
        want, key=lambda m: -m["message_id"])]


def test_message_of_a_deleted_account_is_found_as_history_shows(stack, alice, bob, carol):
    tok = word()
    _, _, g = trio(alice, bob, carol)
    m = say(carol, g, f"last words {tok}")
    assert carol.ok("DELETE", "/user") is None
    got = search(alice, tok)["hits"]
    assert [h["message"]["message_id"] for h in got] == [m["message_id"]]
    assert got[0]["message"]["sender"]["id"] == DELETED_ID, got
    assert got[0]["message"] == basic_of(history(alice, g)[m["message_id"]])


# -- 2. never found ------------------------------------------------------------


def test_never_found(stack, alice, bob, carol, dave):
    tok = word()
    p_ab, p_ac, g = trio(alice, bob, carol)
    p_bc = befriend(bob, carol)
    # Another pair's private chat.
    pair = say(bob, p_bc, f"{tok} between bob and carol")
    # A group alice never joined.
    other = make_group(bob, [carol])["chat_id"]
    never = say(carol, other, f"{tok} in a group without alice")
    # A group alice left (bob's: an owner leaving may end the group).
    left_g = make_group(bob, [alice, carol])["chat_id"]
    before_leave = say(bob, left_g, f"{tok} before alice left")
    leave(alice, left_g)
    after_leave = say(bob, left_g, f"{tok} after alice left")
    # A group alice was removed from.
    rem_g = make_group(bob, [alice, carol])["chat_id"]
    before_rm = say(carol, rem_g, f"{tok} before alice was removed")
    remove_member(bob, rem_g, alice)
    # A recalled message.
    recalled = say(bob, p_ab, f"{tok} soon recalled")
    recall(bob, recalled["message_id"])
    # Deleted for alice only.
    hidden = say(bob, p_ab, f"{tok} hidden from alice")
    recall(alice, hidden["message_id"], delete=True)
    # Edited: the old text is gone.
    old, new = word(), word()
    edited = say(bob, g, f"{tok} then {old}")
    edit(bob, edited["message_id"], f"{tok} now {new}")
    # What alice does find.
    control = say(bob, p_ab, f"{tok} for alice")
    in_g = say(carol, g, f"{tok} in the group")

    assert found(alice, tok) == ids_of(control, in_g, edited)
    assert sorted(found(alice, tok, sort="relevance"), reverse=True) == \
        ids_of(control, in_g, edited)
    assert found(alice, old) == []
    assert found(bob, old) == []
    assert found(alice, new) == [edited["message_id"]]
    assert found(carol, new) == [edited["message_id"]]
    # bob is in every one of those chats: he finds all but the recalled one.
    assert found(bob, tok) == ids_of(pair, never, before_leave, after_leave, before_rm, hidden,
                                     edited, control, in_g)
    # carol: not in alice and bob's private chat; still in the groups.
    assert found(carol, tok) == ids_of(pair, never, before_leave, after_leave, before_rm,
                                       edited, in_g)
    # dave is in none of them.
    assert found(dave, tok) == []
    # The recalled message's text ("Message recalled") is not found either.
    assert recalled["message_id"] not in found(bob, "recalled")
    # chat_id does not reopen a chat one left or was removed from.
    bad(alice, path(tok, chat_id=left_g), 403)
    bad(alice, path(tok, chat_id=rem_g), 403)
    bad(alice, path(tok, chat_id=p_bc), 403)


# -- 3. how words match --------------------------------------------------------


CORPUS = [
    ("cafe", "Let's meet at the Café tomorrow"),
    ("pie", "I like apple pie"),
    ("meeting", "The MEETING is at noon"),
    ("email", "send me an e-mail please"),
    ("e_mail", "an e mail then"),
    ("emailword", "or an email"),
    ("hello", "hello there"),
    ("banana", "apple and banana"),
    ("cafeteria", "the cafeteria is closed"),
    ("naive", "Naïve résumé of Ångström"),
    ("pi", "pi is 3.14"),
    ("scores", "scores 3 14"),
    ("address", "write to bob@example.com now"),
    ("url", "see https://nova.example/path/page here"),
    ("answer", "the answer is 42"),
]


@pytest.fixture
def corpus(alice, bob):
    """CORPUS sent in alice and bob's private chat (by both, in turn);
    ids(*keys) gives the ids of those messages, newest first."""
    p = befriend(alice, bob)
    sent = {}
    for i, (key, text) in enumerate(CORPUS):
        sent[key] = say(bob if i % 2 else alice, p, text)

    def ids(*keys):
        return ids_of(*(sent[k] for k in keys))
    return ids


def test_case_and_accents_fold(alice, bob, corpus):
    ids = corpus
    assert found(alice, "cafe") == ids("cafe")  # a whole word: not "cafeteria"
    assert found(alice, "CAFÉ") == ids("cafe")
    assert found(alice, "café") == ids("cafe")
    assert found(bob, "Cafe") == ids("cafe")
    assert found(alice, "APPLE") == ids("pie", "banana")
    assert found(alice, "naive resume angstrom") == ids("naive")
    assert found(alice, "NAÏVE") == ids("naive")
    assert found(alice, "meeting") == ids("meeting")
    assert found(alice, "meet") == ids("cafe")  # not "meeting"
    assert found(alice, "tomorro") == []
    assert found(alice, "42") == ids("answer")
    assert found(alice, "4") == []


def test_every_word_must_be_present(alice, bob, corpus):
    ids = corpus
    assert found(alice, "apple pie") == ids("pie")
    assert found(alice, "pie apple") == ids("pie")
    assert found(alice, "PIE  like   I") == ids("pie")
    assert found(alice, "apple " + word()) == []
    assert found(alice, "apple banana pie") == []


def test_prefixes(alice, bob, corpus):
    ids = corpus
    assert found(alice, "mee*") == ids("cafe", "meeting")
    assert found(alice, "MEE*") == ids("cafe", "meeting")
    assert found(alice, "meeti*") == ids("meeting")
    assert found(alice, "meet*") == ids("cafe", "meeting")  # the word itself too
    assert found(alice, "caf*") == ids("cafe", "cafeteria")
    assert found(alice, "CAFÉ*") == ids("cafe", "cafeteria")
    assert found(alice, "appl* ban*") == ids("banana")
    assert found(alice, "zq*") == []


def test_punctuation_inside_a_word_makes_a_phrase(alice, bob, corpus):
    """The page's own example: e-mail finds e-mail and e mail (and not
    email)."""
    ids = corpus
    assert found(alice, "e-mail") == ids("email", "e_mail")
    assert found(alice, "e mail") == ids("email", "e_mail")
    assert found(alice, "email") == ids("emailword")
    assert found(bob, "Let's") == ids("cafe")
    assert found(bob, "let s") == ids("cafe")


def test_punctuation_inside_a_word_makes_a_phrase_for_numbers(alice, bob, corpus):
    ids = corpus
    assert found(alice, "3.14") == ids("pi", "scores")
    assert found(alice, "3 14") == ids("pi", "scores")


def test_words_inside_addresses_are_words(alice, bob, corpus):
    """An address is words and punctuation like any other text: each of its
    words is found, and the address itself as a phrase."""
    ids = corpus
    assert found(alice, "bob@example.com") == ids("address")
    assert found(alice, "example") == ids("address", "url")
    assert found(alice, "nova") == ids("url")
    assert found(alice, "page") == ids("url")
    assert found(alice, "nova.example/path") == ids("url")


def test_words_without_letters_or_digits_are_ignored(alice, bob, corpus):
    ids = corpus
    assert found(alice, "hello") == ids("hello")
    assert found(alice, "hello !!!") == ids("hello")
    assert found(alice, "!!! hello -- ...") == ids("hello")
    assert found(alice, "— hello «»") == ids("hello")
    # + is a space.
    data = alice.ok("GET", "/search?q=hello+there&sort=newest")
    assert hit_ids(check_data(data)) == ids("hello")
    data = alice.ok("GET", "/search?q=there+hello&sort=newest")
    assert hit_ids(check_data(data)) == ids("hello")


def test_accents_fold_in_words_with_digits(alice, bob):
    """Folding is per word whatever else the word holds: digits, a hyphen."""
    p = befriend(alice, bob)
    m1 = say(alice, p, "room Café2 booked")
    m2 = say(bob, p, "the Ärger-3 case")
    assert found(alice, "cafe2") == [m1["message_id"]]
    assert found(alice, "CAFÉ2") == [m1["message_id"]]
    assert found(alice, "arger-3") == [m2["message_id"]]
    assert found(alice, "ärger") == [m2["message_id"]]


def test_the_chat_token_is_not_a_word(alice, bob):
    """The index's token naming a chat (SQLite: 'c' || chat_id) is not part
    of any message's text."""
    p = befriend(alice, bob)
    say(alice, p, "nothing special")
    assert found(alice, f"c{p}") == []
    assert found(alice, f"chat:c{p}") == []
    m = say(bob, p, f"but c{p} here")
    assert found(alice, f"c{p}") == [m["message_id"]]


def test_query_syntax_is_not_interpreted(stack, alice, bob):
    """The words are words: FTS5 / tsquery operators in q match themselves
    (as words) or are punctuation; they never change the query."""
    p = befriend(alice, bob)
    pie = say(alice, p, "I like apple pie")
    banana = say(alice, p, "apple and banana")
    assert found(alice, "apple AND banana") == [banana["message_id"]]  # "and" is a word of it
    assert found(alice, "apple OR pie") == []
    assert found(alice, "apple NOT pie") == []
    assert found(alice, "NEAR(apple pie)") == []  # "near" is not in either
    assert found(alice, '"apple" "pie"') == [pie["message_id"]]
    assert found(alice, "apple & pie") == [pie["message_id"]]
    assert found(alice, "apple | banana") == [banana["message_id"]]
    assert found(alice, "(apple) !pie") == [pie["message_id"]]
    for q in ['"', "'", "apple:*", "pie:B", "^apple", "apple)", "((", "a'b", "col:apple",
              "-apple", "apple <-> pie", "\\", "%", "_", "apple;", "apple' OR '1'='1",
              "*apple", "ap*ple", "**", "apple**"]:
        r = alice.get(path(q))
        assert r.status_code in (200, 400), (q, r.status_code, r.text)
        assert r.headers["Content-Type"].startswith("application/json"), (q, r.headers)
        if r.status_code == 200:
            check_data(r.json()["data"])
        else:
            fail(r, 400)


# -- 4. snippets -----------------------------------------------------------------


def only_hit(client, q):
    data = search(client, q)
    assert len(data["hits"]) == 1, data
    return data["hits"][0]


def segments(hit):
    joined = "".join(s["text"] for s in hit["snippet"])
    matches = [s["text"] for s in hit["snippet"] if s["match"]]
    return joined, matches


def test_snippet_of_a_short_message_is_the_whole_text(stack, alice, bob):
    p = befriend(alice, bob)
    text = "we could meet at the café on Friday"
    m = say(alice, p, text)
    joined, matches = segments(only_hit(alice, "meet"))
    assert joined == text and matches == ["meet"], (joined, matches)
    joined, matches = segments(only_hit(alice, "CAFE"))
    assert joined == text and matches == ["café"], (joined, matches)
    joined, matches = segments(only_hit(bob, "friday we"))
    assert joined == text and sorted(matches) == ["Friday", "we"], (joined, matches)
    # Whitespace as it is.
    t3 = "tab\there\nnewline  two spaces end"
    say(bob, p, t3)
    joined, matches = segments(only_hit(alice, "newline"))
    assert joined == t3 and matches == ["newline"], (joined, matches)
    assert only_hit(bob, "meet")["message"]["message_id"] == m["message_id"]


def test_snippet_is_plain_text(stack, alice, bob):
    """Markup in a message is text: kept as it is, nothing escaped or
    stripped, no ellipsis around a whole message."""
    p = befriend(alice, bob)
    t2 = "a <b>bold</b> claim & more"
    say(bob, p, t2)
    joined, matches = segments(only_hit(alice, "claim"))
    assert joined == t2 and matches == ["claim"], (joined, matches)
    t4 = "x &amp; y <i>z</i> 1 < 2 > 0 quoted"
    say(alice, p, t4)
    joined, matches = segments(only_hit(bob, "quoted"))
    assert joined == t4 and matches == ["quoted"], (joined, matches)


def check_long_snippet(hit, text, needle, lead, trail):
    joined, matches = segments(hit)
    assert len(matches) >= 1 and all(fold(x) == fold(needle) for x in matches), matches
    assert joined.startswith(ELLIPSIS) is lead, joined
    assert joined.endswith(ELLIPSIS) is trail, joined
    inner = joined[1 if lead else 0: len(joined) - (1 if trail else 0)]
    assert inner in text and inner.strip(), (inner, text)
    assert len(inner.split()) <= SNIPPET_WORDS, (len(inner.split()), joined)
    assert needle in inner.split(), joined


@pytest.mark.parametrize("kind", ["ascii", "multibyte"])
def test_snippet_of_a_long_message(stack, alice, bob, kind):
    p = befriend(alice, bob)
    needle = word()
    if kind == "ascii":
        fill = [f"filler{i}" for i in range(200)]
    else:
        fill = [f"ça{i}é中" + ("😀" if i % 3 == 0 else "") for i in range(200)]
    middle = fill[:100] + [needle] + fill[100:]
    text = " ".join(middle)
    say(alice, p, text)
    check_long_snippet(only_hit(alice, needle), text, needle, lead=True, trail=True)
    check_long_snippet(only_hit(bob, needle.upper()), text, needle, lead=True, trail=True)
    # At the very start and the very end: the ellipsis only on the cut side.
    first, last = word(), word()
    t_start = " ".join([first] + fill)
    t_end = " ".join(fill + [last])
    say(bob, p, t_start)
    say(bob, p, t_end)
    hit = only_hit(alice, first)
    joined, _ = segments(hit)
    assert joined.endswith(ELLIPSIS), joined
    check_hit(hit, SNIPPET_WORDS)
    hit = only_hit(alice, last)
    joined, _ = segments(hit)
    assert joined.startswith(ELLIPSIS), joined
    check_hit(hit, SNIPPET_WORDS)


def test_a_message_of_exactly_the_word_budget_is_whole(stack, alice, bob):
    """A message of 24 words fits in a snippet of at most 24 words: the
    whole text, no ellipsis (as SQLite gives it)."""
    p = befriend(alice, bob)
    w24 = word()
    t24 = " ".join([w24] + [f"pad{i}" for i in range(23)])
    say(alice, p, t24)
    joined, matches = segments(only_hit(bob, w24))
    assert joined == t24 and matches == [w24], (len(joined.split()), joined)


def test_snippet_word_budget(stack, alice, bob):
    """25 words do not fit in 24; two matches far apart still give at most
    24 words."""
    p = befriend(alice, bob)
    w25, far_a, far_b = word(), word(), word()
    t25 = " ".join([w25] + [f"pad{i}" for i in range(24)])
    tfar = " ".join([far_a] + [f"gap{i}" for i in range(100)] + [far_b])
    for t in (t25, tfar):
        say(alice, p, t)
    hit = check_hit(only_hit(bob, w25), SNIPPET_WORDS)
    joined, matches = segments(hit)
    assert joined != t25 and joined.endswith(ELLIPSIS) and matches == [w25], joined
    hit = check_hit(only_hit(bob, f"{far_a} {far_b}"), SNIPPET_WORDS)
    joined, matches = segments(hit)
    assert set(matches) <= {far_a, far_b} and matches, joined
    assert joined.startswith(ELLIPSIS) or joined.endswith(ELLIPSIS), joined


def test_snippet_marks_prefix_and_accented_matches(stack, alice, bob):
    p = befriend(alice, bob)
    text = "The Meeting about the RÉSUMÉ moved to the meetup room"
    say(alice, p, text)
    joined, matches = segments(only_hit(alice, "mee* resume"))
    assert joined == text, joined
    assert sorted(fold(x) for x in matches) == ["meeting", "meetup", "resume"], matches
    assert set(matches) == {"Meeting", "meetup", "RÉSUMÉ"}, matches


# -- 5. order ------------------------------------------------------------------


def test_order(stack, alice, bob, carol):
    p_ab, p_ac, g = trio(alice, bob, carol)
    z = word()
    strong = say(alice, p_ab, f"{z} {z} {z}")
    weak = say(bob, g, f"{z} plus many other words in a long sentence about nothing at all, "
                       "really nothing, just words and words to make it long")
    mid = say(carol, p_ac, f"{z} and {z} twice here")
    for sort in (None, "relevance"):
        ids = hit_ids(search(alice, z, sort=sort))
        assert ids.index(strong["message_id"]) < ids.index(weak["message_id"]), ids
        assert ids.index(mid["message_id"]) < ids.index(weak["message_id"]), ids
        assert sorted(ids, reverse=True) == ids_of(strong, weak, mid), ids
    assert hit_ids(search(alice, z, sort="newest")) == ids_of(strong, weak, mid)
    # Newest: strictly decreasing message_id over a bigger mix of chats.
    t = word()
    sent = []
    for i in range(9):
        c, cid = [(alice, p_ab), (bob, g), (carol, p_ac)][i % 3]
        sent.append(say(c, cid, f"{t} " + "x " * (i % 4) + f"number {i}"))
    ids = hit_ids(search(alice, t, sort="newest"))
    assert ids == ids_of(*sent)
    assert all(a > b for a, b in zip(ids, ids[1:])), ids


# -- 6. paging -----------------------------------------------------------------


def send_many(client, chat_id, texts):
    s = client.socket()
    try:
        return [send_message(s, client, chat_id, t)[2]["data"]["message"] for t in texts]
    finally:
        s.close()


def test_paging(stack, alice, bob):
    p = befriend(alice, bob)
    tok = word()
    sent = send_many(alice, p, [f"{tok} number {i}" for i in range(25)])
    want = ids_of(*sent)
    # Default limit: 20.
    data = search(alice, tok, sort="newest")
    assert hit_ids(data) == want[:20] and data["next_cursor"] is not None, data
    assert len(search(alice, tok)["hits"]) == 20
    # newest: 10, 10, 5; decreasing, nothing repeated or skipped.
    pages = all_pages(alice, tok, 10, sort="newest")
    assert [len(pg["hits"]) for pg in pages] == [10, 10, 5], [hit_ids(pg) for pg in pages]
    assert [i for pg in pages for i in hit_ids(pg)] == want
    assert all(pg["next_cursor"] is not None for pg in pages[:-1])
    # The last page ends exactly: null when nothing is left.
    pages = all_pages(alice, tok, 5, sort="newest")
    assert [len(pg["hits"]) for pg in pages] == [5] * 5, [hit_ids(pg) for pg in pages]
    assert [i for pg in pages for i in hit_ids(pg)] == want
    # relevance (explicit and default): every one once.
    for sort in ("relevance", None):
        pages = all_pages(alice, tok, 10, sort=sort)
        got = [i for pg in pages for i in hit_ids(pg)]
        assert [len(pg["hits"]) for pg in pages] == [10, 10, 5], (sort, got)
        assert len(got) == len(set(got)) == 25 and set(got) == set(want), (sort, got)
    # limit 50 takes them all at once.
    data = search(alice, tok, sort="newest", limit=50)
    assert hit_ids(data) == want and data["next_cursor"] is None


def test_newest_cursor_continues_below_the_last_shown(stack, alice, bob):
    p = befriend(alice, bob)
    tok = word()
    sent = send_many(bob, p, [f"{tok} early {i}" for i in range(12)])
    first = search(alice, tok, sort="newest", limit=5)
    assert hit_ids(first) == ids_of(*sent)[:5]
    late = say(alice, p, f"{tok} late")  # newer than everything: never on a later page
    second = search(alice, tok, sort="newest", limit=5, cursor=first["next_cursor"])
    assert hit_ids(second) == ids_of(*sent)[5:10]
    third = search(alice, tok, sort="newest", limit=5, cursor=second["next_cursor"])
    assert hit_ids(third) == ids_of(*sent)[10:] and third["next_cursor"] is None
    assert late["message_id"] not in hit_ids(second) + hit_ids(third)
    # The same first page again now starts with the new message.
    assert hit_ids(search(alice, tok, sort="newest", limit=5))[0] == late["message_id"]


def test_cursors_are_checked(stack, alice, bob):
    p = befriend(alice, bob)
    tok = word()
    send_many(alice, p, [f"{tok} {i}" for i in range(6)])
    newest = search(alice, tok, sort="newest", limit=2)["next_cursor"]
    relevance = search(alice, tok, sort="relevance", limit=2)["next_cursor"]
    assert newest and relevance
    # Each is good for its own sort (relevance is the default) ...
    assert len(search(alice, tok, sort="newest", limit=2, cursor=newest)["hits"]) == 2
    assert len(search(alice, tok, sort="relevance", limit=2, cursor=relevance)["hits"]) == 2
    assert len(search(alice, tok, limit=2, cursor=relevance)["hits"]) == 2
    # ... and refused for the other.
    bad(alice, path(tok, sort="relevance", limit=2, cursor=newest))
    bad(alice, path(tok, limit=2, cursor=newest))
    bad(alice, path(tok, sort="newest", limit=2, cursor=relevance))
    # Cursors the endpoint can never have given.
    for c in ["", "x", "zz", "r-1", "-1", "r", "r 1", "r1x", "\u00e9", "r\x01", "%", "null"]:
        for sort in ("newest", "relevance"):
            bad(alice, path(tok, sort=sort, cursor=c))
    # Cursors of a plausible shape: an answer, JSON, never a 500.
    for c in ["b0", "n5", "r0", "r1", "n0", "r99999999999999999999", "n99999999999999999999",
              "r1000000", "9" * 300, "r" + "1" * 1000]:
        for sort in ("newest", "relevance"):
            r = alice.get(path(tok, sort=sort, cursor=c))
            assert r.status_code in (200, 400), (c, sort, r.status_code, r.text)
            if r.status_code == 200:
                check_data(r.json()["data"])
            else:
                fail(r, 400)


# -- 7. chat_id ----------------------------------------------------------------


def test_chat_id(stack, alice, bob, carol):
    tok = word()
    p_ab, p_ac, g = trio(alice, bob, carol)
    p_bc = befriend(bob, carol)
    a = say(alice, p_ab, f"{tok} private")
    b = say(bob, g, f"{tok} group one")
    c = say(carol, g, f"{tok} group two")
    d = say(carol, p_ac, f"{tok} other private")
    say(bob, p_bc, f"{tok} not alice's")
    assert found(alice, tok) == ids_of(a, b, c, d)
    assert found(alice, tok, chat_id=p_ab) == ids_of(a)
    assert found(alice, tok, chat_id=g) == ids_of(b, c)
    assert found(alice, tok, chat_id=p_ac) == ids_of(d)
    assert sorted(hit_ids(search(alice, tok, chat_id=g, sort="relevance")),
                  reverse=True) == ids_of(b, c)
    # Paging inside one chat.
    pages = all_pages(alice, tok, 1, chat_id=g, sort="newest")
    assert [i for pg in pages for i in hit_ids(pg)] == ids_of(b, c)
    # No hit in the chat: an empty list.
    assert search(alice, word(), chat_id=g) == {"hits": [], "next_cursor": None}
    bad(alice, path(tok, chat_id=UNKNOWN), 404)
    bad(alice, path(tok, chat_id=p_bc), 403)
    for v in ["abc", "0", "-1", "", "1.5", "1e3", "0x10", str(g) + "x"]:
        bad(alice, path(tok, chat_id=v), 400)
    # Far beyond any id: refused either way, never a 500.
    r = alice.get(path(tok, chat_id="99999999999999999999999"))
    assert r.status_code in (400, 404), (r.status_code, r.text)
    fail(r, r.status_code)


def test_a_caller_in_many_chats(stack, alice, bob, carol):
    """A caller in 72 chats: exactly theirs, in each of them. (The row-by-row
    path past NOVA_SEARCH_CHAT_TOKENS: test_option_chat_tokens.)"""
    tok = word()
    p_ab = befriend(alice, bob)
    p_bc = befriend(bob, carol)
    groups = [make_group(alice, [bob])["chat_id"] for _ in range(70)]
    want = [say(bob, p_ab, f"{tok} private")]
    for i in (0, 33, 64, 69):
        want.append(say(alice if i % 2 else bob, groups[i], f"{tok} group {i}"))
    say(carol, p_bc, f"{tok} not alice's")
    other = make_group(bob, [carol])["chat_id"]
    say(carol, other, f"{tok} nor this")
    want_alice = ids_of(*want)
    assert found(alice, tok) == want_alice
    assert sorted(hit_ids(search(alice, tok, limit=50)), reverse=True) == want_alice
    assert found(alice, tok, chat_id=groups[64]) == ids_of(want[3])
    pages = all_pages(alice, tok, 2, sort="newest")
    assert [i for pg in pages for i in hit_ids(pg)] == want_alice
    # bob: the same chats plus two of carol's.
    assert len(found(bob, tok)) == len(want) + 2


# -- 8. statuses ---------------------------------------------------------------


def test_no_session(stack, alice):
    anon = stack.client()
    assert fail(anon.get(path("hello")), 403) == "Invalid Session"
    assert fail(anon.get(path("hello", sort="newest", limit=5)), 403) == "Invalid Session"
    anon.with_token("0" * 64)
    assert fail(anon.get(path("hello")), 403) == "Invalid Session"
    # A session that ended.
    other = stack.client()
    other.login(name(alice), alice.password)
    search(other, "hello")
    token = other.token
    other.ok("POST", "/user/logout")
    other.with_token(token)
    assert fail(other.get(path("hello")), 403) == "Invalid Session"


def test_q_statuses(stack, alice):
    ok = lambda q, **kw: search(alice, q, **kw)  # noqa: E731
    for raw in ["", "q=", "q=%20%20%20", "q=+", "q=%09", "q=!!!", "q=...%20---",
                "q=%01", "q=hello%01", "q=hello%00", "q=hel%7Flo", "q=%1B", "q=%FF",
                "q=hello%FF", "q=%C0%AF", "q=%ED%A0%80", "q=%E2%82", "q=%F8%88%80%80%80",
                "q=a*", "q=%C3%A9*", "q=%E4%B8%AD*", "q=hello+a*", "q=*", "q=**",
                "sort=newest", "limit=5"]:
        bad(alice, "/search?" + raw)
    # Lengths in bytes: 256 is the most.
    ok("a" * 256)
    bad(alice, path("a" * 257))
    ok("é" * 128)  # 256 bytes
    bad(alice, path("é" * 129))  # 129 characters, 258 bytes
    # Words: 8 at most.
    ok(" ".join(f"w{i}" for i in range(8)))
    bad(alice, path(" ".join(f"w{i}" for i in range(9))))
    # Prefixes: 2 characters (not bytes) before the *.
    ok("ab*")
    ok("éa*")
    ok("中文*")
    bad(alice, path("a*"))
    bad(alice, path("é*"))
    # ... letters or digits, right before it: "a-*" would be the prefix "a".
    for q in ["a-*", "'a*", "x.a*", "ab-*", "中-*"]:
        bad(alice, path(q))
    ok("x-ab*")
    # A valid q with nothing found.
    assert ok(word()) == {"hits": [], "next_cursor": None}


def test_q_of_symbols_only_or_with_c1_controls(stack, alice):
    """Symbols hold no letter or digit (ignored: no word at all); U+0080 to
    U+009F are control characters. Each such q is a 400."""
    wrong = []
    for raw in [
        "q=%F0%9F%98%80", "q=%E2%86%92", "q=%E2%82%AC", "q=%E2%84%A2", "q=%C2%A9",
        "q=%E2%80%94", "q=%F0%9F%98%80+%E2%82%AC",  # 😀 → € ™ © — and 😀 €
        "q=%C2%85", "q=hello%C2%85", "q=hello+%C2%9F",  # NEL, APC
    ]:
        r = alice.get("/search?" + raw)
        if r.status_code != 400:
            wrong.append((raw, r.status_code, r.text))
        else:
            fail(r, 400)
    assert wrong == [], wrong


def test_limit_and_sort_statuses(stack, alice):
    q = word()
    for v in ["0", "51", "-1", "x", "", "1.5", "1e1", "5x", "99999999999999999999", "0x5"]:
        bad(alice, path(q, limit=v))
    for v in ["1", "20", "50"]:
        search(alice, q, limit=v)
    for v in ["foo", "", "NEWEST", "Relevance", "newest ", "oldest", "rank"]:
        bad(alice, path(q, sort=v))
    search(alice, q, sort="relevance")
    search(alice, q, sort="newest")


# -- 9. options ----------------------------------------------------------------


OPTIONS = {
    "NOVA_SEARCH_MAX_LIMIT": "5",
    "NOVA_SEARCH_MAX_QUERY": "16",
    "NOVA_SEARCH_MAX_TERMS": "2",
    "NOVA_SEARCH_MAX_OFFSET": "6",
    "NOVA_SEARCH_SNIPPET_WORDS": "5",
    "NOVA_SEARCH_CHAT_TOKENS": "1",
}


class Small:
    """A stack with OPTIONS: a in a private chat with b and with c and in a
    group with both (more chats than NOVA_SEARCH_CHAT_TOKENS); d is b's
    friend only. Ten messages with tok in a's chats, one more in b and d's
    chat."""

    def __init__(self, s):
        self.s = s
        self.a, self.b, self.c, self.d = (self.user() for _ in range(4))
        self.p_ab, self.p_ac = befriend_all(self.a, self.b, self.c)
        self.g = make_group(self.a, [self.b, self.c])["chat_id"]
        self.p_bd = befriend(self.b, self.d)
        self.tok = word()
        sent = send_many(self.a, self.p_ab, [f"{self.tok} {i}" for i in range(4)])
        sent += send_many(self.c, self.p_ac, [f"{self.tok} {i}" for i in range(3)])
        self.in_g = send_many(self.b, self.g, [f"{self.tok} {i}" for i in range(3)])
        self.sent = sent + self.in_g
        say(self.d, self.p_bd, f"{self.tok} not for a")

    def user(self):
        c = self.s.client()
        c.register()
        return c


@pytest.fixture(scope="module")
def small():
    s = Stack(env=OPTIONS).start()
    try:
        yield Small(s)
    finally:
        s.stop_and_check()


def test_option_limits(small):
    a, tok = small.a, small.tok
    # NOVA_SEARCH_MAX_LIMIT
    search(a, tok, limit=5)
    bad(a, path(tok, limit=6))
    # NOVA_SEARCH_MAX_QUERY
    search(a, "abcdefghijklmnop", limit=5)
    bad(a, path("abcdefghijklmnopq", limit=5))
    # NOVA_SEARCH_MAX_TERMS
    search(a, "ab cd", limit=5)
    bad(a, path("ab cd ef", limit=5))


def test_option_chat_tokens(small):
    """NOVA_SEARCH_CHAT_TOKENS=1: a caller in more chats is still searched
    exactly (row by row), in every chat of theirs and no other."""
    a, tok = small.a, small.tok
    want = ids_of(*small.sent)
    pages = all_pages(a, tok, 3, sort="newest")  # newest paging is not capped
    assert [i for pg in pages for i in hit_ids(pg)] == want
    assert hit_ids(search(a, tok, chat_id=small.g, sort="newest", limit=5)) == \
        ids_of(*small.in_g)
    # b: the private chat with a, the group, the one with d (not a and c's).
    got = [i for pg in all_pages(small.b, tok, 5, sort="newest") for i in hit_ids(pg)]
    assert len(got) == 8 and set(got) > set(ids_of(*small.sent[:4], *small.in_g)), got
    assert not set(got) & set(ids_of(*small.sent[4:7])), got


def test_option_max_offset(small):
    """NOVA_SEARCH_MAX_OFFSET=6: relevance pages reach 6 results, then
    next_cursor is null."""
    a, tok = small.a, small.tok
    pages = all_pages(a, tok, 3, sort="relevance")
    got = [i for pg in pages for i in hit_ids(pg)]
    assert len(got) == len(set(got)) == 6 and set(got) <= set(ids_of(*small.sent)), got
    assert [len(pg["hits"]) for pg in pages] == [3, 3], got
    bad(a, path(tok, sort="relevance", limit=3, cursor="r7"))


def test_option_max_offset_with_a_page_across_it(small):
    """A page that would run past NOVA_SEARCH_MAX_OFFSET stops at it: no
    more than 6 results are reachable, whatever the limit."""
    a, tok = small.a, small.tok
    pages = all_pages(a, tok, 4, sort="relevance")
    got = [i for pg in pages for i in hit_ids(pg)]
    assert len(got) == len(set(got)), got
    assert len(got) == 6, ([len(pg["hits"]) for pg in pages], "results reached", len(got))


def test_option_snippet_words(small):
    needle = word()
    text = " ".join([f"filler{i}" for i in range(30)] + [needle] +
                    [f"more{i}" for i in range(30)])
    say(small.b, small.g, text)
    data = check_data(small.a.ok("GET", path(needle, limit=5)), snippet_words=5)
    assert len(data["hits"]) == 1, data
    joined, matches = segments(data["hits"][0])
    assert joined.startswith(ELLIPSIS) and joined.endswith(ELLIPSIS), joined
    assert matches == [needle] and len(joined.strip(ELLIPSIS).split()) <= 5, joined


def test_option_no_limit_under_a_small_maximum(small):
    """No limit at all is none of the statuses table's 400 cases ("limit
    not an integer in 1..NOVA_SEARCH_MAX_LIMIT"), whatever the maximum."""
    r = small.a.get(path(small.tok))
    assert r.status_code == 200, ("no limit, NOVA_SEARCH_MAX_LIMIT=5", r.status_code, r.text)
    assert 1 <= len(check_data(r.json()["data"])["hits"]) <= 5


# -- 10. the index follows the chats -------------------------------------------


def test_unfriend_takes_the_private_chat_out(stack, alice, bob, carol):
    tok = word()
    p_ab, p_ac, g = trio(alice, bob, carol)
    priv = [say(alice, p_ab, f"{tok} one"), say(bob, p_ab, f"{tok} two")]
    grp = say(bob, g, f"{tok} in the group")
    assert found(alice, tok) == ids_of(*priv, grp)
    assert found(bob, tok) == ids_of(*priv, grp)
    assert alice.ok("DELETE", f"/friend/{uid(bob)}") is None
    assert found(alice, tok) == ids_of(grp)
    assert found(bob, tok) == ids_of(grp)
    bad(alice, path(tok, chat_id=p_ab), 404)
    bad(bob, path(tok, chat_id=p_ab), 404)
    # Friends again: a new private chat, the old messages stay gone.
    p2 = befriend(bob, alice)
    assert p2 != p_ab
    again = say(bob, p2, f"{tok} again")
    assert found(alice, tok) == ids_of(again, grp)


def test_a_deleted_group_is_not_searched(stack, alice, bob, carol):
    """The owner leaving deletes a group: its messages are found by nobody."""
    tok = word()
    p_ab, p_ac, g = trio(alice, bob, carol)
    gone = make_group(alice, [bob, carol])["chat_id"]
    say(bob, gone, f"{tok} in a group soon gone")
    say(carol, gone, f"{tok} again")
    kept = say(carol, g, f"{tok} in a group that stays")
    assert len(found(bob, tok)) == 3
    leave(alice, gone)  # the owner: the group is deleted
    for c in (alice, bob, carol):
        assert found(c, tok) == [kept["message_id"]], c.user
        bad(c, path(tok, chat_id=gone), 404)


@pytest.mark.sqlite_only
def test_sqlite_index_integrity(stack, alice, bob, carol):
    """FTS5's own check of message_search against its content, after every
    kind of change the triggers follow (on the shared stack's whole file)."""
    tok = word()
    p_ab, p_ac, g = trio(alice, bob, carol)
    ms = send_many(alice, g, [f"{tok} é {i} café" for i in range(5)])
    edit(alice, ms[0]["message_id"], f"{tok} edited once")
    edit(alice, ms[0]["message_id"], f"{tok} edited twice 😀")
    recall(alice, ms[1]["message_id"])
    edit(alice, ms[2]["message_id"], f"{tok} edited then recalled")
    recall(alice, ms[2]["message_id"])
    recall(bob, ms[3]["message_id"], delete=True)
    say(alice, p_ab, f"{tok} private, soon gone")
    assert alice.ok("DELETE", f"/friend/{uid(bob)}") is None
    say(carol, g, f"{tok} carol leaves")
    assert carol.ok("DELETE", "/user") is None
    w = stack.writer()  # stack.sql is read-only: FTS5's commands are INSERTs
    try:
        w.execute("INSERT INTO message_search(message_search) VALUES('integrity-check')")
    finally:
        w.close()
    want = sorted([ms[0]["message_id"], ms[3]["message_id"], ms[4]["message_id"]]
                  + [m["message_id"] for m in history(alice, g).values()
                     if m["message"] == f"{tok} carol leaves"], reverse=True)
    assert found(alice, tok) == want
    assert found(bob, tok) == sorted(set(want) - {ms[3]["message_id"]}, reverse=True)


# -- 11. read-only ---------------------------------------------------------------


def test_search_changes_nothing_and_notifies_nobody(stack, alice, bob, carol):
    tok = word()
    p_ab, p_ac, g = trio(alice, bob, carol)
    mine = say(bob, p_ab, f"{tok} unread by alice")
    say(carol, g, f"{tok} in the group")
    w = Watch(alice, bob, carol)
    counts = table_counts(stack)
    rows = stack.sql("SELECT id, content, recalled FROM messages WHERE chat_id IN (?, ?, ?) "
                     "ORDER BY id", p_ab, p_ac, g)
    reads = stack.sql("SELECT count(*) FROM message_deletions")
    unread_before = [r["unread_count"] for r in alice.ok("GET", "/chat")
                     if r["chat"]["chat_id"] == p_ab]
    search(alice, tok)
    search(alice, tok, sort="newest", limit=1)
    cur = search(alice, tok, sort="newest", limit=1)["next_cursor"]
    search(alice, tok, sort="newest", limit=1, cursor=cur)
    search(alice, tok, chat_id=p_ab)
    search(bob, tok, sort="relevance")
    bad(alice, path(""))
    bad(alice, path(tok, chat_id=UNKNOWN), 404)
    assert table_counts(stack) == counts
    assert stack.sql("SELECT id, content, recalled FROM messages WHERE chat_id IN (?, ?, ?) "
                     "ORDER BY id", p_ab, p_ac, g) == rows
    assert stack.sql("SELECT count(*) FROM message_deletions") == reads
    # Finding a message does not read it.
    assert [r["unread_count"] for r in alice.ok("GET", "/chat")
            if r["chat"]["chat_id"] == p_ab] == unread_before
    assert unread_before[0] >= 1 and mine["sender"]["id"] == uid(bob)
    assert w.events() == {uid(alice): [], uid(bob): [], uid(carol): []}
    w.close()
