"""sync.store: manifest + snapshot + log; compaction that survives a crash at any step."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from pycrdt import Doc, Text

import sync.store
from storage import KeyRing
from sync import DocumentCorrupt, FileDocumentStore, InvalidDocumentId

STEPS = ["start", "snapshot-written", "log-created", "manifest-switched", "old-log-removed"]


class Crash(BaseException):
    """Like kill -9: not an Exception, so no cleanup handler in the store runs."""


class Editor:
    def __init__(self) -> None:
        self.doc: Doc[Any] = Doc()
        self.text = self.doc.get("t", type=Text)
        self.updates: list[bytes] = []
        self.doc.observe(lambda e: self.updates.append(e.update))

    def type(self, s: str) -> bytes:
        self.text += s
        return self.updates[-1]


def load_text(store: FileDocumentStore, document_id: str = "doc") -> str:
    handle = store.open(document_id)
    try:
        doc: Doc[Any] = Doc()
        for u in handle.load():
            doc.apply_update(u)
        return str(doc.get("t", type=Text))
    finally:
        handle.close()


def files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


@pytest.fixture
def store(tmp_path: Path, ring: KeyRing) -> FileDocumentStore:
    return FileDocumentStore(tmp_path / "sync", ring)


def test_round_trip_and_compaction(store: FileDocumentStore) -> None:
    ed = Editor()
    h = store.open("doc")
    assert h.load() == []
    h.append_many([ed.type("one "), ed.type("two ")])
    h.compact(ed.doc.get_update())
    assert h.log_records == 0
    h.append_many([ed.type("three")])
    h.close()
    assert load_text(store) == "one two three"
    assert store.exists("doc")
    # Exactly one log, one manifest, one snapshot blob.
    names = files(store.root / "docs" / "doc")
    assert len([n for n in names if n.endswith(".plog")]) == 1
    assert len([n for n in names if n.startswith("blobs/")]) == 1


@pytest.mark.parametrize("step", STEPS)
@pytest.mark.parametrize("kind", ["crash", "error"])
def test_compaction_interrupted_at_every_step(
    store: FileDocumentStore, ring: KeyRing, monkeypatch: pytest.MonkeyPatch, step: str, kind: str
) -> None:
    ed = Editor()
    h = store.open("doc")
    h.append_many([ed.type("snap ")])
    h.compact(ed.doc.get_update())  # an old snapshot exists, so its removal is covered too
    h.append_many([ed.type("log1 "), ed.type("log2")])

    def inject(name: str) -> None:
        if name == step:
            raise Crash(name) if kind == "crash" else OSError(f"injected at {name}")

    monkeypatch.setattr(sync.store, "_checkpoint", inject)
    with pytest.raises((Crash, OSError)):
        h.compact(ed.doc.get_update())
    monkeypatch.undo()

    if kind == "error":
        # The live handle is still usable and consistent.
        h.append_many([ed.type(" more")])
        expected = "snap log1 log2 more"
    else:
        expected = "snap log1 log2"  # the process "died": abandon the handle
    h.close()
    # Restart: a fresh store over the same files loads everything, once.
    fresh = FileDocumentStore(store.root, ring)
    assert load_text(fresh) == expected
    # ...and the sweep left exactly one log and at most one snapshot.
    names = files(store.root / "docs" / "doc")
    assert len([n for n in names if n.endswith(".plog")]) == 1
    assert len([n for n in names if n.startswith("blobs/")]) == 1
    assert not [n for n in names if ".tmp-" in n]
    # And it compacts fine afterwards.
    h2 = fresh.open("doc")
    doc: Doc[Any] = Doc()
    for u in h2.load():
        doc.apply_update(u)
    h2.compact(doc.get_update())
    h2.close()
    assert load_text(fresh) == expected


def test_crash_during_creation_leaves_new_empty_document(
    store: FileDocumentStore, ring: KeyRing, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = sync.store.durable_write_bytes

    def crash(*args: object, **kwargs: object) -> None:
        raise Crash("before the manifest")

    monkeypatch.setattr(sync.store, "durable_write_bytes", crash)
    with pytest.raises(Crash):
        store.open("doc")
    monkeypatch.setattr(sync.store, "durable_write_bytes", real)
    assert not store.exists("doc")
    h = store.open("doc")  # sweeps the orphan log
    assert h.load() == []
    h.close()
    assert len([n for n in files(store.root) if n.endswith(".plog")]) == 1


@pytest.mark.parametrize("bad", ["", "../x", "a/b", "a.b", "x" * 129, "é", "doc\n"])
def test_document_ids_validated(store: FileDocumentStore, bad: str) -> None:
    with pytest.raises(InvalidDocumentId):
        store.open(bad)


def test_corrupt_manifest_and_missing_log(store: FileDocumentStore) -> None:
    h = store.open("doc")
    h.close()
    manifest = store.root / "docs" / "doc" / "manifest.json"
    original = manifest.read_bytes()
    manifest.write_bytes(b"{not json")
    with pytest.raises(DocumentCorrupt):
        store.open("doc")
    manifest.write_bytes(original.replace(b'"doc"', b'"other"'))
    with pytest.raises(DocumentCorrupt):
        store.open("doc")
    manifest.write_bytes(original)
    for p in (store.root / "docs" / "doc").glob("*.plog"):
        os.unlink(p)
    with pytest.raises(DocumentCorrupt):
        store.open("doc")


def test_delete(store: FileDocumentStore) -> None:
    ed = Editor()
    h = store.open("doc")
    h.append_many([ed.type("x")])
    h.close()
    assert store.delete("doc") is True
    assert store.delete("doc") is False
    assert not store.exists("doc")
