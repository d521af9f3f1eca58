"""Files through the real server (API.md "Documents", SECURITY.md "Content" and "Encryption at
rest"): upload with the type taken from the bytes, download with Range/ETag and a safe
Content-Disposition, hostile file names, versions (label, restore, delete), limits and quota,
trash, and the canary that must never be findable in the data directory.

People: ``alice`` owns the groups, ``bob`` is a plain member (he edits open folders)."""

from __future__ import annotations

import hashlib
import os
import secrets
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

from tests.app.helpers import (
    API,
    add_member,
    expect,
    expect_error,
    make_folder,
    make_group,
    new_version,
    upload,
)
from tests.live import Client, LiveServer, running_server, unique

# A complete 1×1 PNG: libmagic needs the real signature, not just a prefix.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
    "0000000d4944415478da63f8ffff3f0005fe02fea7d6a4f60000000049454e44ae426082"
)
HTML = b"<!DOCTYPE html><html><body><script>alert(document.cookie)</script></body></html>\n"
PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF\n"


# -- helpers -------------------------------------------------------------------------------

def raw_multipart(filename: bytes, data: bytes) -> tuple[bytes, str]:
    """A multipart body written by hand, so a file name reaches the server byte for byte
    (httpx percent-escapes control characters and quotes in the names it sends)."""
    boundary = "plein" + uuid.uuid4().hex
    body = (f"--{boundary}\r\n".encode()
            + b'Content-Disposition: form-data; name="file"; filename="' + filename + b'"\r\n'
            + b"Content-Type: application/octet-stream\r\n\r\n"
            + data + f"\r\n--{boundary}--\r\n".encode())
    return body, f"multipart/form-data; boundary={boundary}"


def blob_files(data_dir: Path) -> set[Path]:
    """Committed blob files (temp files excluded) under the store's fan-out directories."""
    return {p for p in (data_dir / "blobs").rglob("*") if p.is_file()
            and not p.name.startswith(".tmp-")}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def team(cast: Callable[[str], Client]) -> dict[str, Any]:
    """A closed group owned by Alice with Bob as a member; files go in an open sub-folder."""
    alice, bob = cast("Alice"), cast("Bob")
    group = make_group(alice, unique("Files"))
    add_member(alice, group["id"], bob)
    folder = make_folder(alice, group["root_folder_id"], unique("Stukken"))
    return {"alice": alice, "bob": bob, "group": group, "folder": folder["id"]}


# -- upload and type sniffing --------------------------------------------------------------

def test_upload_takes_the_type_from_the_bytes(team: dict[str, Any]) -> None:
    alice = team["alice"]
    doc = expect(upload(alice, team["folder"], "plaatje.html", PNG, "text/html"), 201)
    assert doc["kind"] == "file" and doc["version"] == 1
    assert doc["mime"] == "image/png"
    assert doc["size"] == len(PNG) and doc["sha256"] == sha(PNG)
    assert doc["title"] == "plaatje.html"
    assert expect(alice.get(f"{API}/documents/{doc['id']}"), 200)["sha256"] == sha(PNG)
    response = alice.get(f"{API}/documents/{doc['id']}/content")
    assert response.status_code == 200 and response.content == PNG
    assert response.headers["content-type"] == "image/png"
    assert response.headers["content-disposition"].startswith("inline;")
    assert response.headers["x-content-type-options"] == "nosniff"


def test_html_claiming_to_be_png_is_served_as_an_attachment(team: dict[str, Any]) -> None:
    alice = team["alice"]
    doc = expect(upload(alice, team["folder"], "kat.png", HTML, "image/png"), 201)
    assert doc["mime"] == "text/html"
    response = alice.get(f"{API}/documents/{doc['id']}/content")
    assert response.content == HTML
    assert response.headers["content-disposition"].startswith("attachment;")
    # Never text/html from our origin, whatever the file says it is.
    assert "html" not in response.headers["content-type"]
    assert response.headers["x-content-type-options"] == "nosniff"


def test_libmagic_never_runs_in_the_server(team: dict[str, Any], server: LiveServer) -> None:
    """Issue 9, item 10: libmagic parsed untrusted bytes inside the server process; the
    type is now sniffed in the extractor's limited worker, so the server never maps it."""
    alice = team["alice"]
    for name, data in (("a.png", PNG), ("a.pdf", PDF), ("a.html", HTML)):
        expect(upload(alice, team["folder"], name, data), 201)
    assert server.proc is not None
    maps = Path(f"/proc/{server.proc.pid}/maps").read_text()
    assert "libmagic" not in maps


@pytest.mark.parametrize(("name", "data", "mime", "inline"), [
    ("a.png", PNG, "image/png", True),
    ("a.jpg", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00" + bytes(64), "image/jpeg", True),
    ("a.gif", b"GIF89a\x01\x00\x01\x00\x00\x00\x00;", "image/gif", True),
    ("a.webp", b"RIFF\x1a\x00\x00\x00WEBPVP8 " + bytes(32), "image/webp", True),
    ("a.pdf", PDF, "application/pdf", True),
    ("a.txt", b"Gewoon een tekst.\n", "text/plain", True),
    ("a.html", HTML, "text/html", False),
    ("a.svg", b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
     "image/svg+xml", False),
    ("a.xml", b'<?xml version="1.0"?><a><b>c</b></a>\n', "text/xml", False),
    # libmagic calls JavaScript text/plain: the name still makes it a download.
    ("a.js", b"function f() { return document.cookie; }\nf();\n", "text/plain", False),
    ("a.bin", b"\x00\x01\x02\x03\xfe\xff" * 10, "application/octet-stream", False),
], ids=lambda v: v if isinstance(v, str) and len(v) < 12 else "")
def test_only_harmless_types_are_shown_inline(team: dict[str, Any], name: str, data: bytes,
                                               mime: str, inline: bool) -> None:
    alice = team["alice"]
    doc = expect(upload(alice, team["folder"], name, data), 201)
    assert doc["mime"] == mime
    response = alice.get(f"{API}/documents/{doc['id']}/content")
    assert response.status_code == 200 and response.content == data
    disposition = response.headers["content-disposition"]
    assert disposition.startswith("inline;" if inline else "attachment;"), disposition
    assert response.headers["x-content-type-options"] == "nosniff"
    # Inline or not (PDFs too: issue 9, item 9), the bytes run in a sandbox, never our origin.
    assert "; sandbox allow-downloads" in response.headers["content-security-policy"]
    if not inline:
        assert not any(kind in response.headers["content-type"]
                       for kind in ("html", "svg", "xml", "javascript"))


# -- download: ranges and caching ----------------------------------------------------------

def test_ranges(team: dict[str, Any]) -> None:
    alice = team["alice"]
    data = os.urandom(200_000)
    size = len(data)
    doc = expect(upload(alice, team["folder"], "groot.bin", data), 201)
    url = f"{API}/documents/{doc['id']}/content"
    cases = {
        "bytes=0-9": (0, 9),  # the first bytes
        "bytes=65530-65545": (65530, 65545),  # across the first 64 KiB chunk boundary
        "bytes=131000-131100": (131000, 131100),  # across the second one
        "bytes=-10": (size - 10, size - 1),  # suffix
        "bytes=150000-": (150000, size - 1),  # open-ended
        "bytes=199990-300000": (199990, size - 1),  # past the end is cut to the end
    }
    for header, (first, last) in cases.items():
        response = alice.get(url, headers={"Range": header})
        assert response.status_code == 206, (header, response.text[:200])
        assert response.headers["content-range"] == f"bytes {first}-{last}/{size}", header
        assert int(response.headers["content-length"]) == last - first + 1
        assert response.content == data[first:last + 1], header
    for header in ("bytes=200000-", "bytes=300000-300010", "bytes=-0"):
        response = alice.get(url, headers={"Range": header})
        assert response.status_code == 416, header
        assert response.headers["content-range"] == f"bytes */{size}"
    whole = alice.get(url)
    assert whole.status_code == 200 and whole.headers["accept-ranges"] == "bytes"
    assert whole.content == data


def test_an_empty_file_is_refused_in_words(team: dict[str, Any]) -> None:
    """0 bytes is almost always a failed export: refused with a code, nothing kept (issue 17;
    this replaced the range test on an empty upload, which can no longer be made)."""
    alice = team["alice"]
    before = expect(alice.get(f"{API}/folders/{team['folder']}"), 200)["documents"]
    error = expect_error(upload(alice, team["folder"], "leeg.txt", b""), 400, "empty_file")
    assert error["field"] == "file"
    after = expect(alice.get(f"{API}/folders/{team['folder']}"), 200)["documents"]
    assert len(after) == len(before)
    doc = expect(upload(alice, team["folder"], "vol.txt", b"x"), 201)
    expect_error(new_version(alice, doc["id"], b""), 400, "empty_file")


def test_etag_and_if_none_match(team: dict[str, Any]) -> None:
    alice = team["alice"]
    data = os.urandom(5000)
    doc = expect(upload(alice, team["folder"], "e.bin", data), 201)
    url = f"{API}/documents/{doc['id']}/content"
    etag = alice.get(url).headers["etag"]
    assert etag == f'"{sha(data)}"'
    cached = alice.get(url, headers={"If-None-Match": etag})
    assert cached.status_code == 304 and cached.content == b""
    assert alice.get(url, headers={"If-None-Match": f'"x", W/{etag}'}).status_code == 304
    assert alice.get(url, headers={"If-None-Match": '"other"'}).status_code == 200


# -- file names ----------------------------------------------------------------------------

def test_rfc6266_file_name(team: dict[str, Any]) -> None:
    alice = team["alice"]
    name = "Beleidsnotitie ë €.pdf"
    doc = expect(upload(alice, team["folder"], name, PDF), 201)
    assert doc["title"] == name
    header = alice.get(f"{API}/documents/{doc['id']}/content").headers["content-disposition"]
    assert "filename*=UTF-8''Beleidsnotitie%20%C3%AB%20%E2%82%AC.pdf" in header
    encoded = header.split("filename*=UTF-8''", 1)[1].split(";")[0]
    assert unquote(encoded) == name
    fallback = header.split('filename="', 1)[1].split('"', 1)[0]
    assert fallback.isascii() and fallback.endswith(".pdf")


HOSTILE = {
    "traversal": b"../../etc/passwd",
    "nul": b"rapport\x00.exe.txt",
    "crlf": b"notulen\r\nX-Injected: yes.txt",
    "long": ("a" * 300 + ".txt").encode(),
    "rtl_override": "factuur\u202etxt.exe".encode(),
    "backslashes": b"C:\\Users\\jan\\..\\geheim.txt",
    "only_dots": b"..",
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_file_names_become_harmless(team: dict[str, Any], case: str) -> None:
    alice = team["alice"]
    data = b"inhoud " + case.encode()
    body, content_type = raw_multipart(HOSTILE[case], data)
    response = alice.post(f"{API}/folders/{team['folder']}/files", content=body,
                          headers={"Content-Type": content_type})
    if response.status_code == 400:  # refusing a malformed part is harmless too
        expect_error(response, 400)
        return
    doc = expect(response, 201)
    versions = expect(alice.get(f"{API}/documents/{doc['id']}/versions"), 200)
    for stored in (doc["title"], versions[0]["filename"]):
        assert stored and len(stored) <= 255, stored
        assert "/" not in stored and "\\" not in stored and stored not in (".", ".."), stored
        assert not any(ord(ch) < 32 or ch in "\u202e\u202d\u2066\u2067\u2068\x7f"
                       for ch in stored), repr(stored)
    if case == "long":
        assert versions[0]["filename"].endswith(".txt")
    download = alice.get(f"{API}/documents/{doc['id']}/content")
    assert download.content == data
    raw_headers = download.headers.raw
    assert not any(name.lower() == b"x-injected" for name, _ in raw_headers)
    disposition = download.headers["content-disposition"]
    assert "\r" not in disposition and "\n" not in disposition and "\x00" not in disposition


# -- versions ------------------------------------------------------------------------------

def test_versions_label_restore_delete(team: dict[str, Any], server: LiveServer) -> None:
    alice, bob = team["alice"], team["bob"]
    one, two = os.urandom(70_000), os.urandom(90_000)
    doc = expect(upload(alice, team["folder"], "plan.bin", one), 201)
    doc_id = doc["id"]
    v2 = expect(new_version(bob, doc_id, two), 201)
    assert v2["number"] == 2 and v2["current"] and v2["sha256"] == sha(two)
    assert v2["unchanged"] is False

    # The same bytes again: no new version and no blob file left behind.
    before = blob_files(server.data_dir)
    same = expect(new_version(alice, doc_id, two), 200)
    assert same["unchanged"] is True and same["number"] == 2
    assert blob_files(server.data_dir) == before

    listed = expect(alice.get(f"{API}/documents/{doc_id}/versions"), 200)
    assert [(v["number"], v["sha256"], v["current"]) for v in listed] == [
        (2, sha(two), True), (1, sha(one), False)]
    assert alice.get(f"{API}/documents/{doc_id}/versions/1/content").content == one
    assert alice.get(f"{API}/documents/{doc_id}/content").content == two
    ranged = alice.get(f"{API}/documents/{doc_id}/versions/1/content",
                       headers={"Range": "bytes=65536-65545"})
    assert ranged.status_code == 206 and ranged.content == one[65536:65546]
    expect_error(alice.get(f"{API}/documents/{doc_id}/versions/9/content"), 404)

    labelled = expect(bob.patch(f"{API}/documents/{doc_id}/versions/1",
                                json={"label": "Vastgesteld"}), 200)
    assert labelled["label"] == "Vastgesteld"

    restored = expect(bob.post(f"{API}/documents/{doc_id}/versions/1/restore"), 201)
    assert restored["number"] == 3 and restored["restored_from"] == 1 and restored["current"]
    assert alice.get(f"{API}/documents/{doc_id}/content").content == one
    assert expect(alice.get(f"{API}/documents/{doc_id}"), 200)["version"] == 3
    numbers = [v["number"] for v in expect(alice.get(f"{API}/documents/{doc_id}/versions"), 200)]
    assert numbers == [3, 2, 1]  # history is kept
    expect_error(alice.post(f"{API}/documents/{doc_id}/versions/3/restore"), 409)

    # Deleting versions: owners and admins only, never the current one.
    expect_error(bob.delete(f"{API}/documents/{doc_id}/versions/2"), 403)
    expect_error(alice.delete(f"{API}/documents/{doc_id}/versions/3"), 409, "current_version")
    expect(alice.delete(f"{API}/documents/{doc_id}/versions/1"), 204)
    numbers = [v["number"] for v in expect(alice.get(f"{API}/documents/{doc_id}/versions"), 200)]
    assert numbers == [3, 2]
    expect_error(alice.get(f"{API}/documents/{doc_id}/versions/1/content"), 404)
    # Version 3 shares version 1's immutable blob: it must survive the delete.
    assert alice.get(f"{API}/documents/{doc_id}/content").content == one


def test_a_file_has_no_version_diff(team: dict[str, Any]) -> None:
    """Issue 9, item 17: the diff endpoint answered 500 on a file (it parsed the bytes as a
    note); now a clear 400, on the API and on the page."""
    alice = team["alice"]
    doc = expect(upload(alice, team["folder"], "tekst.txt", b"een\n"), 201)
    expect(new_version(alice, doc["id"], b"twee\n", "tekst.txt"), 201)
    expect_error(alice.get(f"{API}/documents/{doc['id']}/versions/1/diff", params={"to": 2}),
                 400, "not_a_note")
    assert alice.http.get(f"/documents/{doc['id']}/diff?from=1&to=2").status_code == 400


def test_api_answers_and_downloads_are_not_cached(team: dict[str, Any]) -> None:
    """Issue 9, item 17: API JSON had no Cache-Control, so a browser or proxy could keep
    private titles and comments on disk; downloads said "no-cache", which still stores."""
    alice = team["alice"]
    doc = expect(upload(alice, team["folder"], "c.txt", b"privaat\n"), 201)
    for response in (alice.get(f"{API}/documents/{doc['id']}"), alice.get(f"{API}/session"),
                     alice.get(f"{API}/folders/{team['folder']}"),
                     alice.get(f"{API}/documents/nothing-here"),  # errors too
                     alice.post(f"{API}/notifications/read", json={})):
        assert response.headers["content-type"].startswith("application/json")
        assert response.headers["cache-control"] == "no-store", response.request.url
    for url in (f"{API}/documents/{doc['id']}/content",
                f"{API}/documents/{doc['id']}/versions/1/content"):
        assert alice.get(url).headers["cache-control"] == "private, no-store"


def test_folder_lists_its_documents(team: dict[str, Any]) -> None:
    alice = team["alice"]
    folder = make_folder(alice, team["group"]["root_folder_id"], unique("Lijst"))
    doc = expect(upload(alice, folder["id"], "lijst.txt", b"een twee drie\n"), 201)
    listing = expect(alice.get(f"{API}/folders/{folder['id']}"), 200)
    assert [(d["id"], d["title"], d["kind"], d["size"], d["mime"], d["version"])
            for d in listing["documents"]] == [
        (doc["id"], "lijst.txt", "file", 14, "text/plain", 1)]


# -- refusals ------------------------------------------------------------------------------

def test_json_instead_of_multipart_is_415(team: dict[str, Any]) -> None:
    response = team["alice"].post(f"{API}/folders/{team['folder']}/files", json={"file": "x"})
    expect_error(response, 415)


def test_multipart_without_a_file_part_is_400(team: dict[str, Any]) -> None:
    response = team["alice"].post(f"{API}/folders/{team['folder']}/files",
                                  files={"other": ("a.txt", b"abc", "text/plain")})
    expect_error(response, 400, field="file")
    response = team["alice"].post(f"{API}/folders/{team['folder']}/files",
                                  data={"title": "no file"}, files={"x": (None, b"y")})
    expect_error(response, 400, field="file")


def test_size_limit_and_group_quota(tmp_path: Path) -> None:
    env = {"PLEIN_MAX_UPLOAD_BYTES": "1000", "PLEIN_GROUP_QUOTA_BYTES": "1500"}
    with running_server(tmp_path / "data", env=env) as live:
        alice = live.client()
        try:
            alice.sign_up("Alice")
            group = make_group(alice, "Quota")
            root = group["root_folder_id"]
            expect_error(upload(alice, root, "groot.bin", os.urandom(1001)), 413)
            # Declared far over the limit: refused before the body is read.
            expect_error(upload(alice, root, "heel-groot.bin", os.urandom(200_000)), 413)
            doc = expect(upload(alice, root, "past.bin", os.urandom(1000)), 201)
            error = expect_error(upload(alice, root, "teveel.bin", os.urandom(600)), 413,
                                 "quota_exceeded")
            assert "quota" in error["message"]
            expect_error(new_version(alice, doc["id"], os.urandom(600)), 413, "quota_exceeded")
            # Refused uploads leave no blob behind (only the one stored file is on disk).
            assert len(blob_files(live.data_dir)) == 1
            assert not list((live.data_dir / "blobs").rglob(".tmp-*"))
            assert expect(alice.get(f"{API}/documents/{doc['id']}"), 200)["version"] == 1
        finally:
            alice.close()


# -- trash ---------------------------------------------------------------------------------

def test_trash_restore_purge(team: dict[str, Any]) -> None:
    alice, bob = team["alice"], team["bob"]
    folder = make_folder(alice, team["group"]["root_folder_id"], unique("Prullenbak"))
    old, new = os.urandom(1000), os.urandom(2000)
    doc = expect(upload(alice, folder["id"], "weg.bin", old), 201)
    doc_id = doc["id"]
    expect(new_version(alice, doc_id, new), 201)
    missing = "x" + secrets.token_urlsafe(11)
    paths = ("", "/content", "/versions", "/versions/1/content", "/versions/2/content")

    expect(bob.delete(f"{API}/documents/{doc_id}"), 204)
    for person in (alice, bob):
        for suffix in paths:
            gone = person.get(f"{API}/documents/{doc_id}{suffix}")
            absent = person.get(f"{API}/documents/{missing}{suffix}")
            expect_error(gone, 404)
            assert gone.content == absent.content, suffix  # no existence oracle
        listing = expect(person.get(f"{API}/folders/{folder['id']}"), 200)
        assert doc_id not in [d["id"] for d in listing["documents"]]
    expect_error(new_version(alice, doc_id, os.urandom(10)), 404)

    restored = expect(bob.post(f"{API}/documents/{doc_id}/restore"), 200)
    assert restored["trashed_at"] is None and restored["version"] == 2
    assert bob.get(f"{API}/documents/{doc_id}/versions/1/content").content == old
    listing = expect(bob.get(f"{API}/folders/{folder['id']}"), 200)
    assert doc_id in [d["id"] for d in listing["documents"]]
    expect_error(bob.post(f"{API}/documents/{doc_id}/restore"), 409, "not_in_trash")
    expect_error(alice.delete(f"{API}/documents/{doc_id}/purge"), 409, "not_in_trash")

    expect(alice.delete(f"{API}/documents/{doc_id}"), 204)
    expect_error(bob.delete(f"{API}/documents/{doc_id}/purge"), 403)  # owners/admins purge
    expect(alice.delete(f"{API}/documents/{doc_id}/purge"), 204)
    expect_error(alice.post(f"{API}/documents/{doc_id}/restore"), 404)
    expect_error(alice.get(f"{API}/documents/{doc_id}/versions/1/content"), 404)


# -- encryption at rest --------------------------------------------------------------------

def _files_containing(root: Path, needle: bytes) -> Iterator[Path]:
    for path in root.rglob("*"):
        if path.is_file() and needle in path.read_bytes():
            yield path


def test_canary_is_not_findable_in_the_data_dir(team: dict[str, Any],
                                                 server: LiveServer) -> None:
    alice = team["alice"]
    canary = f"kanarie{secrets.token_hex(8)}".encode()
    text = b"Vertrouwelijk: " + canary + b"\n"
    # A small text file, and a large one with the canary on both sides of a chunk boundary.
    payloads = [text, os.urandom(65530) + canary * 3 + os.urandom(100_000) + canary]
    for payload in payloads:
        doc = expect(upload(alice, team["folder"], "verslag.txt", payload, "text/plain"), 201)
        assert alice.get(f"{API}/documents/{doc['id']}/content").content == payload
    # The whole data directory: database, its WAL and shm, key file, blobs, temp files.
    assert (server.data_dir / "plein.sqlite3").exists()
    hits = list(_files_containing(server.data_dir, canary))
    assert hits == [], f"plaintext canary found in {hits}"
