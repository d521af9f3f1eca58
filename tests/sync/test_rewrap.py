"""Key rotation for notes: manifests' data keys move to the new KEK; log and snapshot bytes
stay as they were, and the document still loads after the old key is retired."""

from __future__ import annotations

import hashlib
from pathlib import Path

from pycrdt import Doc, Text

from storage import KeyRing
from sync import FileDocumentStore, rewrap_manifests


def _update(text: str) -> bytes:
    doc: Doc = Doc()
    doc["t"] = Text(text)
    return doc.get_update()


def _data_files(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in root.rglob("*") if p.is_file() and p.name != "manifest.json"}


def test_rotation_rewraps_manifests_and_leaves_data_alone(tmp_path: Path) -> None:
    ring = KeyRing.create(tmp_path / "keys.json")
    store = FileDocumentStore(tmp_path / "notes", ring)
    first = store.open("docA")
    first.append_many([_update("hallo")])
    first.compact(_update("hallo"))  # now a snapshot, then a fresh log
    first.append_many([_update("wereld")])
    first.close()
    second = store.open("docB")
    second.append_many([_update("tweede")])
    second.close()
    before = _data_files(tmp_path / "notes")
    old = ring.active_id

    new = ring.add_key()
    changed, in_use = rewrap_manifests(tmp_path / "notes", ring)
    assert changed == 2
    assert in_use == {new}
    assert _data_files(tmp_path / "notes") == before  # only manifests were rewritten
    assert rewrap_manifests(tmp_path / "notes", ring)[0] == 0  # idempotent

    ring.retire(old)
    reloaded = FileDocumentStore(tmp_path / "notes", KeyRing.load(tmp_path / "keys.json"))
    handle = reloaded.open("docA")
    assert len(handle.load()) >= 2
    handle.close()
