"""Importing a group archive: the site administrators' upload (``POST /api/v1/groups/import``)
and ``plein import``; bad archives are refused with a clear error and leave nothing behind
(no group, no blob, no note store)."""

from __future__ import annotations

import io
import json
import re
import sqlite3
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.app.helpers import (
    API,
    add_member,
    email_of,
    expect,
    expect_error,
    make_folder,
    make_group,
    uploaded,
)
from tests.app.test_export import PASSWORD, manifest_of, plein
from tests.inprocess import InProcessServer, running_in_process
from tests.live import Client, unique


@dataclass
class World:
    server: InProcessServer
    admin: Client
    member: Client
    gid: str
    archive: bytes


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with running_in_process(tmp_path_factory.mktemp("import") / "data") as server:
        admin, member = server.client(), server.client()
        try:
            admin.sign_up("Admin")  # the first account: site administrator
            member.sign_up("Member")
            group = make_group(admin, unique("Source"))
            add_member(admin, group["id"], member)
            root = group["root_folder_id"]
            uploaded(admin, root, "a.txt", b"alpha " * 50)
            expect(admin.post(f"{API}/folders/{root}/notes", json={
                "title": "Minutes", "text": "# Minutes\n\nagreed", "format": "markdown"}), 201)
            sub = make_folder(admin, root, "Sub", "closed", [(member, "viewer")])
            uploaded(admin, sub["id"], "z.bin", bytes(range(256)) * 40)
            archive = admin.get(f"{API}/groups/{group['id']}/export").content
            yield World(server, admin, member, group["id"], archive)
        finally:
            admin.close()
            member.close()


def rewrite(archive: bytes, change: Callable[[dict[str, bytes], dict[str, Any]], None]
            ) -> bytes:
    """The archive with its entries (and manifest) changed by ``change``."""
    with zipfile.ZipFile(io.BytesIO(archive)) as zf:
        entries = {name: zf.read(name) for name in zf.namelist()}
    manifest = json.loads(entries.pop("manifest.json"))
    change(entries, manifest)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
        zf.writestr("manifest.json", json.dumps(manifest))
    return out.getvalue()


def last_file(manifest: dict[str, Any]) -> dict[str, Any]:
    """The last file version in import order (so blobs before it were already written)."""
    version: dict[str, Any] = [d for d in manifest["documents"]
                               if d["kind"] == "file"][-1]["versions"][-1]
    return version


def wrong_version(entries: dict[str, bytes], manifest: dict[str, Any]) -> None:
    manifest["format_version"] = 99


def traversal(entries: dict[str, bytes], manifest: dict[str, Any]) -> None:
    entries["../escape.txt"] = b"out"


def absolute(entries: dict[str, bytes], manifest: dict[str, Any]) -> None:
    entries["/tmp/escape.txt"] = b"out"


def missing_blob(entries: dict[str, bytes], manifest: dict[str, Any]) -> None:
    del entries[last_file(manifest)["path"]]


def hash_mismatch(entries: dict[str, bytes], manifest: dict[str, Any]) -> None:
    path = last_file(manifest)["path"]
    data = bytearray(entries[path])
    data[0] ^= 0xFF
    entries[path] = bytes(data)


def bad_note_state(entries: dict[str, bytes], manifest: dict[str, Any]) -> None:
    note = next(d for d in manifest["documents"] if d["kind"] == "note")["note"]["state"]
    entries[note["path"]] = b"x" * note["size"]


def no_manifest(entries: dict[str, bytes], manifest: dict[str, Any]) -> None:
    manifest.clear()
    manifest["format"] = "something else"


def zip_bomb(archive: bytes) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(archive)) as source, \
            zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name in source.namelist():
            zf.writestr(name, source.read(name))
        zf.writestr("content/zeros.bin", bytes(32 << 20))  # 32 MiB packing to ~32 KiB
    return out.getvalue()


BAD: dict[str, tuple[Callable[[bytes], bytes], str]] = {
    "not a zip": (lambda _: b"PK\x03\x04 but not really a zip", "not_a_zip"),
    "wrong format version": (lambda a: rewrite(a, wrong_version), "unsupported_version"),
    "path traversal": (lambda a: rewrite(a, traversal), "unsafe_path"),
    "absolute path": (lambda a: rewrite(a, absolute), "unsafe_path"),
    "zip bomb": (zip_bomb, "zip_bomb"),
    "missing blob": (lambda a: rewrite(a, missing_blob), "missing_file"),
    "hash mismatch": (lambda a: rewrite(a, hash_mismatch), "hash_mismatch"),
    "bad note state": (lambda a: rewrite(a, bad_note_state), "hash_mismatch"),
    "not an export": (lambda a: rewrite(a, no_manifest), "unsupported_format"),
}


def footprint(data_dir: Path) -> tuple[int, int, int, int]:
    """Groups and blob rows in the database, blob files and note stores on disk."""
    with sqlite3.connect(data_dir / "plein.sqlite3") as db:
        groups = db.execute("select count(*) from groups").fetchone()[0]
        blobs = db.execute("select count(*) from blobs").fetchone()[0]
    files = sum(1 for p in (data_dir / "blobs").rglob("*") if p.is_file())
    notes_dir = data_dir / "notes" / "docs"
    notes = sum(1 for p in notes_dir.iterdir()) if notes_dir.exists() else 0
    return int(groups), int(blobs), files, notes


def upload_archive(client: Client, data: bytes, **fields: str) -> Any:
    return client.post(f"{API}/groups/import", files={"file": ("g.zip", data, "application/zip")},
                       data=fields)


def test_site_admin_imports_through_the_api(world: World) -> None:
    created = expect(upload_archive(world.admin, world.archive), 201)
    assert created["documents"] == 3 and created["folders"] == 2
    gid = created["group_id"]
    assert gid != world.gid
    source, copy = manifest_of(world.archive), manifest_of(
        world.admin.get(f"{API}/groups/{gid}/export").content)
    assert [(d["directory"], [v["sha256"] for v in d["versions"]]) for d in copy["documents"]] \
        == [(d["directory"], [v["sha256"] for v in d["versions"]]) for d in source["documents"]]
    # The member was matched by e-mail and keeps the grant on the closed folder.
    sub = next(f for f in copy["folders"] if f["path"] == "Sub")
    assert sub["members"] == [{"email": email_of(world.member), "role": "viewer"}]
    minutes = next(d for d in copy["documents"] if d["title"] == "Minutes")
    text = world.member.get(f"{API}/documents/{minutes['id']}/content",
                            params={"format": "markdown"}).text
    assert "agreed" in text


def test_import_names_the_owner(world: World) -> None:
    created = expect(upload_archive(world.admin, world.archive, owner=email_of(world.member)),
                     201)
    group = expect(world.member.get(f"{API}/groups/{created['group_id']}"), 200)
    assert group["my_role"] == "owner"
    expect_error(upload_archive(world.admin, world.archive, owner="nobody@example.nl"), 422,
                 "unknown_owner")


def test_only_site_admins_import(world: World) -> None:
    before = footprint(world.server.data_dir)
    expect_error(upload_archive(world.member, world.archive), 403)
    anonymous = world.server.client()
    try:
        expect_error(upload_archive(anonymous, world.archive), 401)
    finally:
        anonymous.close()
    assert footprint(world.server.data_dir) == before


@pytest.mark.parametrize("case", list(BAD))
def test_bad_archives_are_refused_and_leave_nothing(world: World, case: str) -> None:
    make, code = BAD[case]
    data_dir = world.server.data_dir
    before = footprint(data_dir)
    error = expect_error(upload_archive(world.admin, make(world.archive)), 422, code)
    assert error["message"]
    assert footprint(data_dir) == before, case


def test_command_line_import_refuses_clearly(tmp_path: Path, world: World) -> None:
    target = tmp_path / "target"
    made = plein("createuser", "--data-dir", str(target), "--email", "op@example.nl",
                 "--name", "Op", "--password", PASSWORD, "--admin")
    assert made.returncode == 0, made.stderr
    before = footprint(target)
    for name, data in (("bad.zip", BAD["hash mismatch"][0](world.archive)),
                       ("notzip.zip", b"nothing"),
                       ("orphan.zip", world.archive)):
        path = tmp_path / name
        path.write_bytes(data)
        result = plein("import", str(path), "--data-dir", str(target))
        assert result.returncode != 0, name
        assert "Traceback" not in result.stderr and result.stderr.startswith("plein: "), \
            result.stderr
        assert footprint(target) == before, name
    # The last one was refused only for want of an owner here.
    assert "--owner" in result.stderr
    result = plein("import", str(tmp_path / "orphan.zip"), "--owner", "op@example.nl",
                   "--data-dir", str(target))
    assert result.returncode == 0, result.stderr
    assert footprint(target)[0] == before[0] + 1


IMPORT_ACTION = re.compile(r'action="(/admin/import\?csrf_token=[0-9a-f]+)"')


def test_group_page_offers_the_export_to_members(world: World) -> None:
    button = f'href="/api/v1/groups/{world.gid}/export"'
    assert button in world.member.get(f"/groups/{world.gid}").text
    outsider = world.server.client()
    try:
        outsider.sign_up("Outsider")
        page = outsider.get(f"/groups/{world.gid}")
        assert page.status_code == 200 and button not in page.text
    finally:
        outsider.close()


def test_site_admins_import_through_the_page(world: World) -> None:
    assert world.member.get("/admin/import").status_code == 403
    assert 'href="/admin/import"' not in world.member.get("/").text
    assert 'href="/admin/import"' in world.admin.get("/").text
    form = world.admin.get("/admin/import")
    assert form.status_code == 200
    match = IMPORT_ACTION.search(form.text)
    assert match, form.text
    before = footprint(world.server.data_dir)
    refused = world.admin.http.post(match.group(1), files={
        "file": ("g.zip", BAD["hash mismatch"][0](world.archive), "application/zip")})
    assert refused.status_code == 422
    assert "controlegetal" in refused.text  # the refusal, in Dutch, on the form's page
    assert footprint(world.server.data_dir) == before
    done = world.admin.http.post(match.group(1), files={
        "file": ("g.zip", world.archive, "application/zip")}, data={"owner": ""})
    assert done.status_code == 303
    assert done.headers["location"].startswith("/groups/")
    group_page = world.admin.get(done.headers["location"])
    assert group_page.status_code == 200
    # A forged post (no token) is refused before the archive is read.
    forged = world.admin.http.post("/admin/import", files={
        "file": ("g.zip", world.archive, "application/zip")})
    assert forged.status_code == 403


def share_drive() -> bytes:
    """What a team has on a share drive today, zipped by Windows or macOS."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("Beleid/", b"")
        zf.writestr("Beleid/nota.txt", b"beleidsnota " * 30)
        zf.writestr("Beleid/2025/verslag.txt", b"verslag")
        zf.writestr("Beleid/.DS_Store", b"junk")
        zf.writestr("__MACOSX/Beleid/._nota.txt", b"junk")
        zf.writestr("lijst.csv", b"a,b\n1,2\n")
    return out.getvalue()


def test_a_plain_folder_tree_becomes_a_group(world: World) -> None:
    created = expect(upload_archive(world.admin, share_drive(), plain_name="Afdeling"), 201)
    assert created["documents"] == 3 and created["folders"] == 3  # root, Beleid, 2025
    group = expect(world.admin.get(f"{API}/groups/{created['group_id']}"), 200)
    assert group["name"] == "Afdeling" and group["my_role"] == "owner"
    manifest = manifest_of(world.admin.get(f"{API}/groups/{group['id']}/export").content)
    assert sorted(f["path"] for f in manifest["folders"]) == ["", "Beleid", "Beleid/2025"]
    files = {d["directory"]: d for d in manifest["documents"]}
    assert set(files) == {"content/lijst.csv", "content/Beleid/nota.txt",
                          "content/Beleid/2025/verslag.txt"}
    nota = files["content/Beleid/nota.txt"]["versions"][0]
    assert nota["filename"] == "nota.txt" and nota["size"] == len(b"beleidsnota " * 30)
    # The same safety checks as for an export: a traversal name is refused.
    before = footprint(world.server.data_dir)
    bad = io.BytesIO()
    with zipfile.ZipFile(bad, "w") as zf:
        zf.writestr("ok.txt", b"ok")
        zf.writestr("../../etc/passwd", b"x")
    expect_error(upload_archive(world.admin, bad.getvalue(), plain_name="X"), 422, "unsafe_path")
    assert footprint(world.server.data_dir) == before


def test_command_line_imports_a_plain_folder_tree(tmp_path: Path) -> None:
    target = tmp_path / "target"
    made = plein("createuser", "--data-dir", str(target), "--email", "op@example.nl",
                 "--name", "Op", "--password", PASSWORD)
    assert made.returncode == 0, made.stderr
    path = tmp_path / "Schijf H.zip"
    path.write_bytes(share_drive())
    result = plein("import", str(path), "--plain", "--owner", "op@example.nl",
                   "--data-dir", str(target))
    assert result.returncode == 0, result.stderr
    assert "3 folders, 3 documents" in result.stdout
    out = tmp_path / "out.zip"
    gid = result.stdout.strip().splitlines()[-1]
    assert plein("export", "--group", gid, "--out", str(out), "--data-dir",
                 str(target)).returncode == 0
    manifest = manifest_of(out.read_bytes())
    assert manifest["group"]["name"] == "Schijf H"
    with zipfile.ZipFile(out) as zf:
        assert zf.read("content/Beleid/2025/verslag.txt/v1-verslag.txt") == b"verslag"
