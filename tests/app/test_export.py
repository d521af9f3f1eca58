"""Leaving with your data: a group exported whole (API and ``plein export``), imported into a
fresh installation (``plein import``) and found equal; a member's export holds only what the
member may read; the .odt opens in a real ODF reader.

The source is the real server of this module; the target is a second data directory, filled
by the command line and then served by a real server of its own.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docx
import pytest
from odf import teletype, text
from odf.opendocument import load

from tests.app.helpers import (
    API,
    add_member,
    email_of,
    expect,
    expect_error,
    make_folder,
    make_group,
    missing_id,
    new_version,
    uploaded,
)
from tests.js_client import JsClient, node_available, ws_base
from tests.live import REPO, Client, LiveServer, running_server, unique

PASSWORD = "correct horse battery staple"


def plein(*args: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PLEIN_")}
    return subprocess.run([sys.executable, "-m", "app.cli", *args], cwd=REPO, text=True,
                          capture_output=True, env=clean, timeout=120, check=False)


def export_of(client: Client, gid: str) -> bytes:
    response = client.get(f"{API}/groups/{gid}/export")
    assert response.status_code == 200, response.text[:300]
    assert response.headers["content-type"] == "application/zip"
    assert "attachment" in response.headers["content-disposition"]
    return response.content


def manifest_of(archive: bytes) -> dict[str, Any]:
    with zipfile.ZipFile(io.BytesIO(archive)) as zf:
        assert zf.testzip() is None
        data: dict[str, Any] = json.loads(zf.read("manifest.json"))
    return data


def unpacked(archive: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(archive)) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


class Team:
    """A group with every kind of content, built through the API by its people."""

    def __init__(self, alice: Client, bob: Client, carol: Client, erin: Client) -> None:
        self.people = {"alice": alice, "bob": bob, "carol": carol, "erin": erin}
        self.group = make_group(alice, unique("Export team"))
        gid, root = self.group["id"], self.group["root_folder_id"]
        self.gid = gid
        for person in (bob, carol, erin):
            add_member(alice, gid, person)
        self.report = uploaded(alice, root, "report.txt", b"first report\n" * 100)
        new_version(alice, self.report["id"], b"second report\n" * 100, "report.txt")
        expect(alice.patch(f"{API}/documents/{self.report['id']}/versions/1",
                           json={"label": "first draft"}), 200)
        expect(alice.post(f"{API}/documents/{self.report['id']}/versions/1/restore"), 201)
        self.note = expect(alice.post(f"{API}/folders/{root}/notes", json={
            "title": "Agenda", "format": "markdown",
            "text": "# Agenda\n\n- one item\n- two items\n\nSome **bold** and *soft* words.\n\n"
                    "```\ncode  line\n```\n"}), 201)
        expect(alice.post(f"{API}/documents/{self.note['id']}/versions",
                          json={"label": "named"}), 201)
        open_sub = make_folder(alice, root, "Open sub", "open")
        self.data = uploaded(bob, open_sub["id"], "data.bin", os.urandom(200_000))
        secret = make_folder(alice, root, "Secret", "closed", [(bob, "editor"),
                                                               (carol, "viewer")])
        self.secret_file = uploaded(alice, secret["id"], "secret.txt", b"secret-bytes-xyz")
        self.secret_note = expect(alice.post(f"{API}/folders/{secret['id']}/notes", json={
            "title": "Secret note", "text": "hidden words", "format": "text"}), 201)
        inner = make_folder(alice, secret["id"], "Inner", "closed", [(bob, "editor")])
        uploaded(bob, inner["id"], "inner.txt", b"inner-only-for-bob")
        root_comment = expect(alice.post(f"{API}/documents/{self.report['id']}/comments",
                                         json={"body": "Looks **good**"}), 201)
        expect(bob.post(f"{API}/documents/{self.report['id']}/comments",
                        json={"body": "Thanks", "parent_id": root_comment["id"]}), 201)
        expect(carol.post(f"{API}/documents/{self.note['id']}/comments", json={
            "body": "About this", "anchor": {"start": "AAEC", "end": "AAED",
                                             "quote": "one item"}}), 201)


@pytest.fixture(scope="module")
def team(server: LiveServer) -> Iterator[Team]:
    people = {}
    for name in ("Alice", "Bob", "Carol", "Erin", "Dave"):
        client = server.client()
        client.sign_up(name)
        people[name.lower()] = client
    try:
        made = Team(people["alice"], people["bob"], people["carol"], people["erin"])
        made.people["dave"] = people["dave"]
        yield made
    finally:
        for client in people.values():
            client.close()


def normal(manifest: dict[str, Any]) -> dict[str, Any]:
    """What must survive a round trip, without ids, times of export and the activity."""
    paths = {f["id"]: f["path"] for f in manifest["folders"]}
    folders = {f["path"]: {"name": f["name"], "access": f["access"],
                           "members": sorted((m["email"], m["role"])
                                             for m in f.get("members", []))}
               for f in manifest["folders"]}
    documents = {}
    for doc in manifest["documents"]:
        by_comment = {c["id"]: c for c in doc["comments"]}
        documents[doc["directory"]] = {
            "folder": paths[doc["folder_id"]], "kind": doc["kind"], "title": doc["title"],
            "current_version": doc["current_version"], "created_by": doc["created_by"],
            "created_at": doc["created_at"],
            "versions": [{k: v for k, v in version.items()} for version in doc["versions"]],
            "comments": [{**{k: v for k, v in c.items() if k not in ("id", "parent_id")},
                          "parent": by_comment[c["parent_id"]]["body"] if c["parent_id"]
                          else None} for c in doc["comments"]],
            "note": doc.get("note"),
        }
    return {"group": {k: v for k, v in manifest["group"].items()
                      if k not in ("id", "created_at")},
            "folders": folders, "documents": documents}


def test_round_trip_into_a_fresh_installation(team: Team, tmp_path: Path) -> None:
    alice, bob, carol = team.people["alice"], team.people["bob"], team.people["carol"]
    first = export_of(alice, team.gid)
    manifest = manifest_of(first)
    assert manifest["format"] == "plein-group-export" and manifest["format_version"] == 1
    assert manifest["scope"] == "group"
    files = unpacked(first)
    # Every version of every file, byte for byte, and the note in every format.
    report = next(d for d in manifest["documents"] if d["id"] == team.report["id"])
    assert [v["number"] for v in report["versions"]] == [1, 2, 3]
    assert report["versions"][2]["restored_from"] == 1
    assert report["versions"][0]["label"] == "first draft"
    assert files[report["versions"][0]["path"]] == b"first report\n" * 100
    assert files[report["versions"][1]["path"]] == b"second report\n" * 100
    note = next(d for d in manifest["documents"] if d["id"] == team.note["id"])
    assert "- one item" in files[note["note"]["markdown"]].decode()
    assert "<strong>bold</strong>" in files[note["note"]["html"]].decode()
    assert len(files[note["note"]["state"]["path"]]) == note["note"]["state"]["size"]
    threads = report["comments"]
    assert [(c["author"], c["body"], c["parent_id"] is not None) for c in threads] == [
        (email_of(alice), "Looks **good**", False), (email_of(bob), "Thanks", True)]
    secret = next(f for f in manifest["folders"] if f["path"] == "Secret")
    assert secret["access"] == "closed"
    assert sorted((m["email"], m["role"]) for m in secret["members"]) == sorted(
        [(email_of(bob), "editor"), (email_of(carol), "viewer")])
    assert {m["email"]: m["role"] for m in manifest["members"]}[email_of(alice)] == "owner"

    # A fresh installation where Alice and Bob have accounts; Carol and Erin do not.
    target = tmp_path / "target"
    for person in (alice, bob):
        made = plein("createuser", "--data-dir", str(target), "--email", email_of(person),
                     "--name", "x", "--password", PASSWORD)
        assert made.returncode == 0, made.stderr
    archive = tmp_path / "team.zip"
    archive.write_bytes(first)
    imported = plein("import", str(archive), "--data-dir", str(target))
    assert imported.returncode == 0, imported.stderr
    new_gid = imported.stdout.strip().splitlines()[-1]
    assert f"invited {email_of(carol)}" in imported.stdout

    with running_server(target) as server:
        again = server.client()
        try:
            assert again.sign_in(email_of(alice), PASSWORD).status_code == 200
            group = expect(again.get(f"{API}/groups/{new_gid}"), 200)
            assert group["name"] == team.group["name"] and group["my_role"] == "owner"
            members = expect(again.get(f"{API}/groups/{new_gid}/members"), 200)
            assert {i["email"] for i in members["invitations"]} == {email_of(carol),
                                                                    email_of(team.people["erin"])}
            second = export_of(again, new_gid)
            new_note = next(d for d in manifest_of(second)["documents"]
                            if d["title"] == "Agenda")
            # The note opens in the editor and keeps co-editing, from the imported state.
            if node_available() is None:
                token = expect(again.post(f"{API}/tokens", json={"name": "t"}), 201)["token"]
                client = JsClient(ws_base(server), new_note["id"], token, name="editor")
                try:
                    client.wait_synced()
                    assert "one item" in client.text()
                    client.insert("added after import")
                    client.wait_text(contains="added after import")
                finally:
                    client.close()
                content = again.get(f"{API}/documents/{new_note['id']}/content",
                                    params={"format": "markdown"}).text
                assert "added after import" in content and "- one item" in content
        finally:
            again.close()
    assert normal(manifest_of(second))["documents"].keys() == normal(manifest)["documents"].keys()

    # The command-line export of the imported group equals the first export.
    out = tmp_path / "again.zip"
    exported = plein("export", "--group", new_gid, "--out", str(out), "--data-dir", str(target))
    assert exported.returncode == 0, exported.stderr
    third = out.read_bytes()
    before, after = normal(manifest), normal(manifest_of(third))
    # Carol's grant on Secret could not be kept: she has no account there (reported).
    assert (email_of(carol), "viewer") in before["folders"]["Secret"]["members"]
    before["folders"]["Secret"]["members"].remove((email_of(carol), "viewer"))
    note_dir = next(k for k, d in after["documents"].items() if d["title"] == "Agenda")
    # The note was edited after the import: its live state differs, its versions do not.
    after["documents"][note_dir]["note"] = before["documents"][note_dir]["note"]
    for doc in (*before["documents"].values(), *after["documents"].values()):
        for comment in doc["comments"]:
            if comment["author"] == email_of(carol):
                comment["author"] = None  # no account there: the comment stays, unsigned
    assert after == before
    third_files = unpacked(third)
    for path, data in files.items():
        if path.startswith("content/") and "/versions/" not in path and path.endswith(
                (".txt", ".bin")):
            assert third_files[path] == data, path


def test_member_export_holds_only_what_they_may_read(team: Team) -> None:
    erin, carol, bob = team.people["erin"], team.people["carol"], team.people["bob"]
    for person, sees_secret, sees_inner in ((erin, False, False), (carol, True, False),
                                            (bob, True, True)):
        archive = export_of(person, team.gid)
        manifest = manifest_of(archive)
        assert manifest["scope"] == "member"
        everything = b"".join(name.encode() + data for name, data in unpacked(archive).items())
        for needle, visible in ((b"secret-bytes-xyz", sees_secret),
                                (b"hidden words", sees_secret), (b"Secret", sees_secret),
                                (b"inner-only-for-bob", sees_inner), (b"Inner", sees_inner)):
            assert (needle in everything) is visible, (email_of(person), needle)
        # Members do not get the access lists or the invitations.
        assert all("members" not in f for f in manifest["folders"])
        assert manifest["invitations"] == []
        titles = {d["title"] for d in manifest["documents"]}
        assert {"report.txt", "Agenda", "data.bin"} <= titles


def test_outsiders_and_strangers_get_404(team: Team, server: LiveServer) -> None:
    dave = team.people["dave"]
    missing = expect_error(dave.get(f"{API}/groups/{missing_id()}/export"), 404)
    hidden = expect_error(dave.get(f"{API}/groups/{team.gid}/export"), 404)
    assert hidden == missing
    anonymous = server.client()
    try:
        expect_error(anonymous.get(f"{API}/groups/{team.gid}/export"), 401)
    finally:
        anonymous.close()


def test_note_odt_opens_in_an_odf_reader(team: Team) -> None:
    archive = export_of(team.people["alice"], team.gid)
    manifest = manifest_of(archive)
    note = next(d for d in manifest["documents"] if d["id"] == team.note["id"])
    data = unpacked(archive)[note["note"]["odt"]]
    with zipfile.ZipFile(io.BytesIO(data)) as package:
        first = package.infolist()[0]
        assert first.filename == "mimetype" and first.compress_type == zipfile.ZIP_STORED
        assert package.read("mimetype") == b"application/vnd.oasis.opendocument.text"
    document = load(io.BytesIO(data))
    headings = [teletype.extractText(h) for h in document.getElementsByType(text.H)]
    paragraphs = [teletype.extractText(p) for p in document.getElementsByType(text.P)]
    assert headings == ["Agenda"]
    assert "one item" in paragraphs and "two items" in paragraphs
    assert "Some bold and soft words." in paragraphs
    assert "code  line" in paragraphs  # runs of spaces kept (text:s)
    assert len(document.getElementsByType(text.List)) == 1


def test_every_export_is_audited(team: Team, server: LiveServer) -> None:
    import sqlite3

    def count() -> int:
        with sqlite3.connect(server.data_dir / "plein.sqlite3") as db:
            row = db.execute("select count(*) from audit_events where action = 'group.exported'"
                             " and object_id = ?", (team.gid,)).fetchone()
        return int(row[0])

    before = count()
    export_of(team.people["erin"], team.gid)
    assert count() == before + 1
    expect_error(team.people["dave"].get(f"{API}/groups/{team.gid}/export"), 404)
    assert count() == before + 1  # a refused export is no export
    head = team.people["erin"].request("HEAD", f"{API}/groups/{team.gid}/export")
    assert head.status_code == 200 and head.content == b""
    assert count() == before + 1  # nor is asking whether one would work


def test_note_downloads_as_odt_docx_markdown_and_html(team: Team) -> None:
    alice, erin, dave = team.people["alice"], team.people["erin"], team.people["dave"]
    url = f"{API}/documents/{team.note['id']}/content"
    response = erin.get(url, params={"format": "odt"})
    assert response.status_code == 200, response.text[:200]
    assert response.headers["content-type"] == "application/vnd.oasis.opendocument.text"
    assert response.headers["content-disposition"].startswith("attachment;")
    document = load(io.BytesIO(response.content))
    assert [teletype.extractText(h) for h in document.getElementsByType(text.H)] == ["Agenda"]
    # The same version of the note renders the same way.
    version = alice.get(f"{API}/documents/{team.note['id']}/versions/1/content",
                        params={"format": "odt"})
    assert version.status_code == 200 and load(io.BytesIO(version.content)) is not None
    expect_error(dave.get(url, params={"format": "odt"}), 404)
    expect_error(erin.get(url, params={"format": "rtf"}), 400)
    # Word, read back by python-docx: headings, list items and code keep their styles.
    word = erin.get(url, params={"format": "docx"})
    assert word.status_code == 200 and word.headers["content-disposition"].startswith(
        "attachment;")
    paragraphs = [(p.style.name, p.text) for p in docx.Document(io.BytesIO(
        word.content)).paragraphs]
    assert ("Heading 1", "Agenda") in paragraphs
    assert ("List Bullet", "one item") in paragraphs and ("List Bullet", "two items") in \
        paragraphs
    assert ("macro", "code  line") in paragraphs
    assert ("Normal", "Some bold and soft words.") in paragraphs
    page = erin.get(f"/documents/{team.note['id']}").text
    for fmt in ("odt", "docx", "markdown", "html"):
        assert f'href="{url}?format={fmt}"' in page


def test_personal_data_export(team: Team, server: LiveServer) -> None:
    carol, alice = team.people["carol"], team.people["alice"]
    response = carol.get(f"{API}/users/me/export")
    assert response.status_code == 200 and response.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(response.content)) as zf:
        me = json.loads(zf.read("me.json"))
        comments_md = zf.read("comments.md").decode()
    assert me["profile"]["email"] == email_of(carol)
    assert [m["group_id"] for m in me["memberships"]] == [team.gid]
    assert [(c["body"], c["document"]) for c in me["comments"]] == [("About this", "Agenda")]
    assert "About this" in comments_md
    assert me["sessions"] and all("token" not in s for s in me["sessions"])
    assert me["documents_created"] == []
    export_of(alice, team.gid)
    mine = json.loads(zipfile.ZipFile(io.BytesIO(
        alice.get(f"{API}/users/me/export").content)).read("me.json"))
    assert {"report.txt", "Agenda", "secret.txt"} <= {d["title"] for d in
                                                      mine["documents_created"]}
    assert "group.exported" in {e["action"] for e in mine["audit"]}
    # Nobody else's comments, nothing of groups the person is not in.
    assert all(c["body"] != "Thanks" for c in me["comments"])
    assert 'href="/api/v1/users/me/export"' in carol.get("/profile").text
    anonymous = server.client()
    try:
        expect_error(anonymous.get(f"{API}/users/me/export"), 401)
    finally:
        anonymous.close()


def test_the_trash_is_not_exported(team: Team, server: LiveServer, tmp_path: Path) -> None:
    alice = team.people["alice"]
    group = make_group(alice, unique("Trash"))
    root = group["root_folder_id"]
    gone = make_folder(alice, root, "Gone", "open")
    make_folder(alice, gone["id"], "Below gone", "open")
    uploaded(alice, gone["id"], "gone.txt", b"gone")
    trashed = uploaded(alice, root, "trashed.txt", b"trashed")
    uploaded(alice, root, "kept.txt", b"kept")
    expect(alice.delete(f"{API}/folders/{gone['id']}"), 204)
    expect(alice.delete(f"{API}/documents/{trashed['id']}"), 204)
    out = tmp_path / "trash.zip"
    # No note in this group: the command line opens no live store the server owns.
    result = plein("export", "--group", group["id"], "--out", str(out), "--data-dir",
                   str(server.data_dir))
    assert result.returncode == 0, result.stderr
    for archive in (export_of(alice, group["id"]), out.read_bytes()):
        manifest = manifest_of(archive)
        assert [f["path"] for f in manifest["folders"]] == [""]
        assert [d["title"] for d in manifest["documents"]] == ["kept.txt"]
