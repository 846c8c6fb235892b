"""[ext] Attachments (docs/API.md): upload to a chat, send a message that
carries the upload, download through nginx (nova-api decides, nginx serves
from its internal location), access ending with recall, leaving, removal,
account deletion and chat deletion; 413, 503 on a full disk, dedup and
nova-admin attachments-gc. Runs on both engines."""
import hashlib
import os
import pathlib

import pytest
import requests

from conftest import Client, fail
from support import (ATTACHMENT_KEYS, add_member, befriend_all, check_error_packet,
                     check_message_detailed, is_new_message, leave, make_group, messages,
                     recall, register, remove_member, uid, wait_for)
from test_faults import fill, small_fs  # noqa: F401 (fixture)

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + os.urandom(40)
JPEG = b"\xff\xd8\xff\xe0" + os.urandom(40)
GIF = b"GIF89a" + os.urandom(40)
WEBP = b"RIFF\x10\x00\x00\x00WEBPVP8 " + os.urandom(40)
PDF = b"%PDF-1.4\n" + os.urandom(40)
TEXT = "hello, wörld\n".encode()
HTML = b"<html><script>alert(1)</script></html>"
SVG = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
BINARY = b"\x00\x01\x02\xfe\xff" + os.urandom(40)

# (bytes, sniffed type, Content-Type served, inline?)
KINDS = [
    (PNG, "image/png", "image/png", True),
    (JPEG, "image/jpeg", "image/jpeg", True),
    (GIF, "image/gif", "image/gif", True),
    (WEBP, "image/webp", "image/webp", True),
    (PDF, "application/pdf", "application/pdf", False),
    (TEXT, "text/plain", "text/plain; charset=utf-8", False),
    (HTML, "text/plain", "text/plain; charset=utf-8", False),
    (SVG, "text/plain", "text/plain; charset=utf-8", False),
    (BINARY, "application/octet-stream", "application/octet-stream", False),
]


def upload(client, chat_id, data, name="file.bin"):
    return client.request("POST", f"/chat/{chat_id}/attachment", raw=data,
                          params={"name": name},
                          headers={"Content-Type": "application/octet-stream"})


def upload_ok(client, chat_id, data, name="file.bin"):
    r = upload(client, chat_id, data, name)
    assert r.status_code == 200, r.text
    a = r.json()["data"]
    assert set(a) == ATTACHMENT_KEYS, a
    assert a["chat_id"] == chat_id and a["message_id"] is None and a["size"] == len(data), a
    assert a["name"] == name and a["url"] == f"/api/attachment/{a['attachment_id']}", a
    return a


def send(client, chat_id, attachment_id, content="with a file"):
    sock = client.socket()
    try:
        rid = sock.request("send_message", {"chat_id": chat_id, "content": content,
                                            "attachment_id": attachment_id})
        _, msg = wait_for(sock, is_new_message(chat_id, content, uid(client)), rid)
    finally:
        sock.close()
    return msg, rid


def send_ok(client, chat_id, attachment_id, content="with a file"):
    msg, _ = send(client, chat_id, attachment_id, content)
    assert msg["action"] == "new_message", msg
    m = check_message_detailed(msg["data"]["message"])
    assert m["attachment"]["attachment_id"] == attachment_id, m
    return m


def send_fails(client, chat_id, attachment_id, content="with a file"):
    msg, rid = send(client, chat_id, attachment_id, content)
    check_error_packet(msg, rid)
    return msg["error"]


def download(client, attachment_id):
    return client.request("GET", f"/attachment/{attachment_id}")


def downloadable(client, attachment_id, data):
    r = download(client, attachment_id)
    assert r.status_code == 200, r.text
    assert r.content == data
    assert r.headers["X-Content-Type-Options"] == "nosniff", r.headers
    assert r.headers["Content-Security-Policy"] == "sandbox", r.headers
    return r


def refused(client, attachment_id, status=404):
    r = download(client, attachment_id)
    fail(r, status)
    assert "X-Accel-Redirect" not in r.headers


def stored(stack):
    d = pathlib.Path(stack.env["NOVA_ATTACHMENT_DIR"])
    return sorted(p.name for p in d.iterdir()) if d.exists() else []


def count(stack):
    return stack.sql("SELECT count(*) FROM attachments")[0][0]


@pytest.fixture
def trio(stack):
    a, b, c = register(stack), register(stack), register(stack)
    befriend_all(a, b, c)
    chat = make_group(a, [b, c])["chat_id"]
    return a, b, c, chat


def test_upload_send_download_per_sniffed_type(stack, trio):
    a, b, c, chat = trio
    for data, mime, served, inline in KINDS:
        att = upload_ok(a, chat, data, name="päper \"x\".dat")
        assert att["mime"] == mime, (att, data[:8])
        digest = hashlib.sha256(data).hexdigest()
        assert digest in stored(stack)
        m = send_ok(a, chat, att["attachment_id"])
        assert m["attachment"]["message_id"] == m["message_id"]
        r = downloadable(b, att["attachment_id"], data)
        assert r.headers["Content-Type"] == served, r.headers
        disp = r.headers["Content-Disposition"]
        assert disp.startswith("inline;" if inline else "attachment;"), disp
        assert "filename*=UTF-8''p%C3%A4per%20%22x%22.dat" in disp, disp
        assert "text/html" not in r.headers["Content-Type"] and "svg" not in r.headers["Content-Type"]
    # The history page carries the attachments (and the plain ones null).
    page = messages(b, chat)
    files = [m["attachment"] for m in page if m["attachment"]]
    assert len(files) == len(KINDS), page
    assert all(check_message_detailed(m) for m in page)


def test_content_may_be_empty_with_a_file_only(stack, trio):
    a, b, c, chat = trio
    att = upload_ok(a, chat, TEXT, "t.txt")
    sock = a.socket()
    try:
        rid = sock.request("send_message", {"chat_id": chat, "content": ""})
        _, msg = wait_for(sock, lambda m: False, rid)
        check_error_packet(msg, rid)
    finally:
        sock.close()
    m = send_ok(a, chat, att["attachment_id"], content="")
    assert m["message"] == "" and m["attachment"]["name"] == "t.txt"


def test_send_refuses_other_peoples_chats_and_sent_uploads(stack, trio):
    a, b, c, chat = trio
    other = make_group(a, [b])["chat_id"]
    mine = upload_ok(a, chat, PDF)
    elsewhere = upload_ok(a, other, PDF)
    before = stack.sql("SELECT count(*) FROM messages")[0][0]
    send_fails(b, chat, mine["attachment_id"])            # not b's upload
    send_fails(a, chat, elsewhere["attachment_id"])       # another chat's
    send_fails(a, chat, 999999)                           # unknown
    for bad in ("1", -1, 0, 1.5, [1], {"a": 1}, True):
        send_fails(a, chat, bad)
    assert stack.sql("SELECT count(*) FROM messages")[0][0] == before
    send_ok(a, chat, mine["attachment_id"])
    send_fails(a, chat, mine["attachment_id"])            # already sent
    # null is no attachment
    msg, _ = send(a, chat, None, content="plain")
    assert msg["data"]["message"]["attachment"] is None


@pytest.mark.parametrize("name", ["", "a/b", "a\\b", ".", "..", "x\x01y", "x" * 256, "\x7f"])
def test_bad_names_are_400_and_store_nothing(stack, trio, name):
    a, b, c, chat = trio
    before, files = count(stack), stored(stack)
    fail(upload(a, chat, os.urandom(64), name), 400)
    assert count(stack) == before and stored(stack) == files


def test_missing_or_badly_encoded_name_and_empty_file(stack, trio):
    a, b, c, chat = trio
    before = count(stack)
    r = a.request("POST", f"/chat/{chat}/attachment", raw=TEXT)
    fail(r, 400)
    r = a.request("POST", f"/chat/{chat}/attachment?name=%FF%FE", raw=TEXT)
    fail(r, 400)
    fail(upload(a, chat, b"", "empty"), 400)
    assert count(stack) == before


def test_upload_permissions(stack, trio):
    a, b, c, chat = trio
    stranger = register(stack)
    before, files = count(stack), stored(stack)
    fail(upload(stranger, chat, os.urandom(32)), 403)
    fail(upload(a, 999999, os.urandom(32)), 404)
    anon = Client(stack)
    fail(upload(anon, chat, os.urandom(32)), 403)
    assert count(stack) == before and stored(stack) == files
    # GET on the upload route, POST on the download route: 405
    fail(a.request("GET", f"/chat/{chat}/attachment"), 405)
    fail(a.request("POST", "/attachment/1"), 405)


def test_too_large_is_413_in_the_envelope(make_stack):
    st = make_stack(env={"NOVA_ATTACHMENT_LIMIT": "4096"})
    a, b = register(st), register(st)
    befriend_all(a, b)
    chat = make_group(a, [b])["chat_id"]
    err = fail(upload(a, chat, b"x" * 4097), 413)
    assert "large" in err
    assert count(st) == 0 and stored(st) == []
    upload_ok(a, chat, b"y" * 4096)
    # The JSON routes keep their own limit.
    fail(a.request("POST", "/friend/group/add", raw=b'{"group_name": "' + b"g" * 3000000 + b'"}',
                   headers={"Content-Type": "application/json"}), 413)


def test_download_matrix(stack):
    owner, member, leaver, removed, gone, stranger = (register(stack) for _ in range(6))
    befriend_all(owner, member, leaver, removed, gone, stranger)
    chat = make_group(owner, [member, leaver, removed, gone])["chat_id"]
    att = upload_ok(owner, chat, PNG, "p.png")
    # Unsent: the uploader alone.
    downloadable(owner, att["attachment_id"], PNG)
    for x in (member, stranger):
        refused(x, att["attachment_id"])
    send_ok(owner, chat, att["attachment_id"])
    for x in (owner, member, leaver, removed, gone):
        downloadable(x, att["attachment_id"], PNG)
    refused(stranger, att["attachment_id"])
    refused(Client(stack), att["attachment_id"], 403)
    leave(leaver, chat)
    remove_member(owner, chat, removed)
    gone_token = gone.token
    assert gone.ok("DELETE", "/user") is None
    refused(leaver, att["attachment_id"])
    refused(removed, att["attachment_id"])
    refused(Client(stack).with_token(gone_token), att["attachment_id"], 403)
    downloadable(member, att["attachment_id"], PNG)
    # Back in the chat: access again (the message is still there).
    add_member(owner, chat, leaver)
    downloadable(leaver, att["attachment_id"], PNG)
    refused(member, 999999)


def test_deleted_for_me_and_recalled(stack, trio):
    a, b, c, chat = trio
    att = upload_ok(a, chat, JPEG)
    m = send_ok(a, chat, att["attachment_id"])
    recall(b, m["message_id"], delete=True)
    refused(b, att["attachment_id"])
    downloadable(c, att["attachment_id"], JPEG)
    assert [x["attachment"] for x in messages(b, chat) if x["message_id"] == m["message_id"]] == [None]
    recall(a, m["message_id"])
    for x in (a, b, c):
        refused(x, att["attachment_id"])
    for x in (a, c):
        got = [y for y in messages(x, chat) if y["message_id"] == m["message_id"]]
        assert got and got[0]["attachment"] is None, got
    assert count(stack) == 0 or not stack.sql(
        "SELECT 1 FROM attachments WHERE id = ?", att["attachment_id"])


def test_chat_deleted_ends_access(stack, trio):
    a, b, c, chat = trio
    att = upload_ok(a, chat, GIF)
    send_ok(a, chat, att["attachment_id"])
    downloadable(b, att["attachment_id"], GIF)
    for x in (b, c):
        leave(x, chat)
    leave(a, chat)  # the last member: the chat goes
    for x in (a, b, c):
        refused(x, att["attachment_id"])
    assert not stack.sql("SELECT 1 FROM attachments WHERE id = ?", att["attachment_id"])


def test_internal_location_is_not_reachable(stack, trio):
    a, b, c, chat = trio
    att = upload_ok(a, chat, PDF)
    send_ok(a, chat, att["attachment_id"])
    digest = hashlib.sha256(PDF).hexdigest()
    for path in (f"/.nova-attachment/{digest}", f"/.nova-attachment/../{digest}",
                 "/.nova-attachment/", f"/%2Enova-attachment/{digest}"):
        r = a.http.get(stack.base + path, timeout=10)
        # "/.nova-attachment/../x" is nginx's "/x": the static site's page
        assert r.status_code == (200 if "/../" in path else 404), (path, r.status_code)
        assert r.content != PDF
    # A client's own X-Accel-Redirect means nothing.
    r = a.http.get(stack.base + "/api/user", headers={"X-Accel-Redirect": f"/.nova-attachment/{digest}"})
    assert r.status_code == 200 and r.content != PDF


def test_dedup_one_file_for_equal_content(stack, trio):
    a, b, c, chat = trio
    data = os.urandom(1000)
    x = upload_ok(a, chat, data, "one")
    y = upload_ok(b, chat, data, "two")
    assert x["attachment_id"] != y["attachment_id"]
    digest = hashlib.sha256(data).hexdigest()
    assert stored(stack).count(digest) == 1
    assert stack.sql("SELECT count(*) FROM attachments WHERE hash = ?", digest)[0][0] == 2
    assert not [n for n in stored(stack) if n.startswith(".tmp")]


def test_gc_removes_expired_uploads_and_unreferenced_files_only(make_stack):
    st = make_stack(env={"NOVA_ATTACHMENT_EXPIRY": "0"})
    a, b = register(st), register(st)
    befriend_all(a, b)
    chat = make_group(a, [b])["chat_id"]
    shared, lone, recalled_data = os.urandom(100), os.urandom(100), os.urandom(100)
    sent = upload_ok(a, chat, shared)
    send_ok(a, chat, sent["attachment_id"])
    unsent_dup = upload_ok(b, chat, shared)
    unsent = upload_ok(b, chat, lone)
    gone = upload_ok(a, chat, recalled_data)
    m = send_ok(a, chat, gone["attachment_id"])
    recall(a, m["message_id"])
    h = {k: hashlib.sha256(v).hexdigest() for k, v in
         {"shared": shared, "lone": lone, "recalled": recalled_data}.items()}
    assert set(h.values()) <= set(stored(st))
    # Within the grace period nothing is deleted.
    r = st.admin("attachments-gc")
    assert "removed 2 unsent attachments, 0 files" in r.stdout, r.stdout
    r = st.admin("attachments-gc", "--grace", "0")
    assert "removed 0 unsent attachments, 2 files" in r.stdout, r.stdout
    assert stored(st) == [h["shared"]]
    downloadable(b, sent["attachment_id"], shared)
    for x in (unsent_dup, unsent):
        refused(b, x["attachment_id"])
    assert st.admin("attachments-gc", "--grace", "x", check=False).returncode == 2


def test_full_disk_is_a_clean_503(small_fs, make_stack):  # noqa: F811
    st = make_stack(env={"NOVA_ATTACHMENT_DIR": str(small_fs / "att")})
    a, b = register(st), register(st)
    befriend_all(a, b)
    chat = make_group(a, [b])["chat_id"]
    ok = upload_ok(a, chat, os.urandom(1000))
    fill(small_fs / "filler")
    files = stored(st)
    r = upload(a, chat, os.urandom(200000))
    assert r.status_code == 503, r.text
    assert r.json() == {"ok": False, "error": "storage temporarily unavailable, try again"}
    assert count(st) == 1 and stored(st) == files  # no row, no temp file
    # Reads and a deduplicated upload still work.
    downloadable(a, ok["attachment_id"], b"" + open(small_fs / "att" / files[0], "rb").read())
    (small_fs / "filler").unlink()
    upload_ok(a, chat, os.urandom(200000))
