"""Key rotation and the storage check through the ``plein`` command (SECURITY.md, "Encryption
at rest"): rotate → every data key rewrapped under the new KEK, the old one retired, blob files
byte-identical, every file still readable; ``plein fsck`` finds a flipped byte and an unknown
blob file; rotation beside a running server is picked up without a restart."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import sqlite3
from pathlib import Path
from typing import Any

from storage import WrappedKey
from tests.app.helpers import API, expect, make_group, upload_id
from tests.app.test_cli import plein
from tests.live import Client, LiveServer, running_server

PASSWORD = "correct horse battery staple"


def blob_snapshot(data_dir: Path) -> dict[str, str]:
    return {str(p.relative_to(data_dir)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted((data_dir / "blobs").rglob("*")) if p.is_file()}


def key_file(data_dir: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((data_dir / "keys.json").read_text())
    return doc


def blob_rows(data_dir: Path) -> list[tuple[str, str, bytes]]:
    with sqlite3.connect(data_dir / "plein.sqlite3") as db:
        return [(str(r[0]), str(r[1]), bytes(r[2]))
                for r in db.execute("SELECT id, kek_id, wrapped_key FROM blobs ORDER BY id")]


def sign_in(server: LiveServer, email: str) -> Client:
    client = server.client()
    assert client.sign_in(email, PASSWORD).status_code == 200
    return client


def test_rotate_then_fsck(tmp_path: Path) -> None:
    data = tmp_path / "data"
    # Uploads refuse empty files (issue 17); a 0-byte blob's rotation is covered in storage's
    # test_rotation, which older installations' empty blobs rely on.
    files = {"een.bin": b"x", "klein.txt": b"hallo\n", "groot.bin": os.urandom(300_000)}
    docs: dict[str, bytes] = {}
    with running_server(data) as server:
        alice = server.client()
        alice.sign_up("Alice", email="alice@example.nl", password=PASSWORD)
        folder = make_group(alice, "Sleutels")["root_folder_id"]
        for name, content in files.items():
            docs[upload_id(alice, folder, name, content)] = content
        alice.close()

    old_key = key_file(data)["active"]
    assert {kek for _, kek, _ in blob_rows(data)} == {old_key}
    before = blob_snapshot(data)
    assert len(before) == len(files)

    result = plein("keys", "rotate", "--data-dir", str(data))
    assert result.returncode == 0, result.stderr
    keys = key_file(data)
    new_key = keys["active"]
    assert new_key != old_key
    assert {k["id"]: k["retired"] for k in keys["keys"]} == {old_key: True, new_key: False}
    rows = blob_rows(data)
    assert len(rows) == len(files)
    for _, kek, wrapped in rows:
        assert kek == new_key and WrappedKey.from_bytes(wrapped).kek_id == new_key
    assert f"rewrapped {len(files)}" in result.stdout
    assert blob_snapshot(data) == before  # data bytes are never rewritten by a rotation
    # The rotation is in the audit log (issue 15).
    with sqlite3.connect(data / "plein.sqlite3") as db:
        assert db.execute("select object_id from audit_events where action = 'keys.rotated'"
                          ).fetchall() == [(new_key,)]

    with running_server(data) as server:
        alice = sign_in(server, "alice@example.nl")
        for doc_id, content in docs.items():
            assert alice.get(f"{API}/documents/{doc_id}/content").content == content
        alice.close()

    checked = plein("fsck", "--data-dir", str(data))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"checked {len(files)} blobs: 0 damaged, 0 orphans" in checked.stdout

    # One flipped byte in the ciphertext of the big blob: fsck names it and fails.
    big_id = next(b for b, _, _ in rows if b in _blob_ids_of_size(data, 300_000))
    path = next((data / "blobs").rglob(big_id))
    raw = bytearray(path.read_bytes())
    raw[100_000] ^= 0x01
    os.chmod(path, 0o600)
    path.write_bytes(bytes(raw))
    # And a blob-shaped file no row knows about: an orphan, not damage.
    stray_id = path.name[:4] + secrets.token_urlsafe(15)
    (path.parent / stray_id).write_bytes(b"not ours")

    damaged = plein("fsck", "--data-dir", str(data))
    assert damaged.returncode == 1, damaged.stdout + damaged.stderr
    assert f"DAMAGED {big_id}" in damaged.stdout
    damaged_lines = [line for line in damaged.stdout.splitlines() if line.startswith("DAMAGED")]
    assert len(damaged_lines) == 1, damaged.stdout
    assert f"orphan  {stray_id}" in damaged.stdout
    assert f"checked {len(files)} blobs: 1 damaged, 1 orphans" in damaged.stdout


def _blob_ids_of_size(data_dir: Path, size: int) -> set[str]:
    with sqlite3.connect(data_dir / "plein.sqlite3") as db:
        return {str(r[0]) for r in db.execute("SELECT id FROM blobs WHERE size = ?", (size,))}


def test_rotation_beside_a_running_server(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first, second = os.urandom(100_000), os.urandom(70_000)
    with running_server(data) as server:
        alice = server.client()
        alice.sign_up("Alice", email="alice@example.nl", password=PASSWORD)
        folder = make_group(alice, "Sleutels")["root_folder_id"]
        doc_id = upload_id(alice, folder, "eerst.bin", first)
        alice.close()
    # A fresh server whose first blob access comes only after the rotation: it must notice
    # the key file changed since it loaded it at start-up.
    with running_server(data) as server:
        alice = sign_in(server, "alice@example.nl")
        old_key = key_file(data)["active"]
        result = plein("keys", "rotate", "--data-dir", str(data))
        assert result.returncode == 0, result.stderr
        new_key = key_file(data)["active"]
        assert new_key != old_key

        assert alice.get(f"{API}/documents/{doc_id}/content").content == first
        second_id = upload_id(alice, folder, "daarna.bin", second)
        assert alice.get(f"{API}/documents/{second_id}/content").content == second
        assert {kek for _, kek, _ in blob_rows(data)} == {new_key}

        # Rotating again with the server up: the file read after this rotation works too.
        assert plein("keys", "rotate", "--data-dir", str(data)).returncode == 0
        assert alice.get(f"{API}/documents/{second_id}/content").content == second
        third_id = upload_id(alice, folder, "derde.bin", b"drie")
        assert alice.get(f"{API}/documents/{third_id}/content").content == b"drie"
        assert {kek for _, kek, _ in blob_rows(data)} == {key_file(data)["active"]}
        alice.close()
    assert plein("fsck", "--data-dir", str(data)).returncode == 0


def sealed_values(data_dir: Path) -> list[str]:
    """Every sealed database value as stored (titles, names, comment bodies, ...)."""
    found: list[str] = []
    with sqlite3.connect(data_dir / "plein.sqlite3") as db:
        for table, column in (("documents", "title"), ("folders", "name"),
                              ("groups", "name"), ("comments", "body"),
                              ("document_versions", "filename"), ("activities", "data")):
            found += [str(r[0]) for r in db.execute(
                f"SELECT {column} FROM {table} WHERE {column} IS NOT NULL")]  # noqa: S608
    return found


def test_rotation_beside_a_running_server_reaches_notes_index_and_names(tmp_path: Path) -> None:
    """Issue 10: every store of a running server follows ``plein keys rotate``: the note store
    (its manifests are rewrapped), the search index (a rebuild run beside the server writes
    under the new key) and the sealed database columns (resealed), not only the file store."""
    from tests.app.test_search_api import search, wait_search, word

    data = tmp_path / "data"
    title_word, comment_word = word("titel"), word("reactie")
    external = {"PLEIN_INDEXER": "external"}  # the index is written by `plein reindex` below
    with running_server(data, external) as server:
        alice = server.client()
        alice.sign_up("Alice", email="alice@example.nl", password=PASSWORD)
        folder = make_group(alice, "Sleutels")["root_folder_id"]
        note = expect(alice.post(f"{API}/folders/{folder}/notes",
                                 json={"title": title_word, "text": "eerste tekst",
                                       "format": "text"}), 201)["id"]
        expect(alice.post(f"{API}/documents/{note}/comments",
                          json={"body": f"{comment_word} bij de notitie"}), 201)
        file_id = upload_id(alice, folder, "eerst.bin", b"inhoud")
        alice.close()
    assert plein("reindex", "--data-dir", str(data)).returncode == 0
    # A fresh server: the note is not open in memory, so reading it goes to the note store.
    with running_server(data, external) as server:
        alice = sign_in(server, "alice@example.nl")
        assert title_word in str(search(alice, title_word)["results"])
        old_key = key_file(data)["active"]
        result = plein("keys", "rotate", "--data-dir", str(data))
        assert result.returncode == 0, result.stderr
        new_key = key_file(data)["active"]
        assert new_key != old_key
        assert {k["id"]: k["retired"] for k in key_file(data)["keys"]}[old_key] is True
        values = sealed_values(data)
        assert values and all(v.startswith(f"v1:{new_key}:") for v in values), values

        # Notes: the manifest now names the new key.
        content = alice.get(f"{API}/documents/{note}/content", params={"format": "text"})
        assert content.status_code == 200, content.text
        assert "eerste tekst" in content.text
        # Titles, comments and files.
        assert expect(alice.get(f"{API}/documents/{note}"), 200)["title"] == title_word
        comments = expect(alice.get(f"{API}/documents/{note}/comments"), 200)
        assert comment_word in str(comments)
        assert alice.get(f"{API}/documents/{file_id}/content").content == b"inhoud"
        # The index: a rebuild beside the server writes a generation under the new key.
        assert plein("reindex", "--data-dir", str(data)).returncode == 0
        found = wait_search(alice, title_word, lambda r: bool(r["results"]))
        assert found["results"][0]["document_id"] == note
        # New content after the rotation is sealed and wrapped under the new key.
        later = expect(alice.post(f"{API}/folders/{folder}/notes",
                                  json={"title": "daarna", "text": "tweede", "format": "text"}),
                       201)["id"]
        assert "tweede" in alice.get(f"{API}/documents/{later}/content",
                                     params={"format": "text"}).text
        assert all(v.startswith(f"v1:{new_key}:") for v in sealed_values(data))
        alice.close()
    checked = plein("fsck", "--data-dir", str(data))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "sealed database values: 0 damaged" in checked.stdout
