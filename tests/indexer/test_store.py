"""The writer (idempotent, single) and rebuild with an atomic switch."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from indexer import IndexUnavailable, SearchIndex, WriterBusy
from indexer.index import _store
from storage import KeyRing
from tests.indexer.conftest import doc

OPEN = {"open"}


def test_add_or_update_is_idempotent(index: SearchIndex) -> None:
    for _ in range(3):
        with index.writer() as w:
            w.add_or_update(doc("d1", "open", "Titel", "oude tekst dijk"))
    with index.writer() as w:
        w.add_or_update(doc("d1", "open", "Titel", "nieuwe tekst"))
    assert index.doc_count() == 1
    assert index.search("dijk", readable_folder_ids=OPEN).total == 0
    assert index.search("nieuwe", readable_folder_ids=OPEN).total == 1


def test_moving_a_document_changes_who_finds_it(index: SearchIndex) -> None:
    with index.writer() as w:
        w.add_or_update(doc("d1", "open", "Titel", "dijk"))
    with index.writer() as w:
        w.add_or_update(doc("d1", "closed", "Titel", "dijk"))
    assert index.search("dijk", readable_folder_ids=OPEN).total == 0


def test_delete_and_delete_folder(index: SearchIndex) -> None:
    with index.writer() as w:
        w.add_or_update(doc("d1", "open", "A", "dijk"))
        w.add_or_update(doc("d2", "open", "B", "dijk"))
        w.add_or_update(doc("d3", "other", "C", "dijk"))
    with index.writer() as w:
        w.delete("d1")
        w.delete("never-indexed")  # harmless
    assert index.search("dijk", readable_folder_ids=OPEN).total == 1
    with index.writer() as w:
        w.delete_folder("open")
    assert index.search("dijk", readable_folder_ids={"open", "other"}).total == 1


def test_uncommitted_changes_are_invisible_and_cancel_drops_them(index: SearchIndex) -> None:
    writer = index.writer()
    writer.add_or_update(doc("d1", "open", "A", "dijk"))
    assert index.search("dijk", readable_folder_ids=OPEN).total == 0
    writer.cancel()
    with pytest.raises(RuntimeError):
        with index.writer() as w:
            w.add_or_update(doc("d2", "open", "A", "dijk"))
            raise RuntimeError("worker failed mid-batch")
    assert index.search("dijk", readable_folder_ids=OPEN).total == 0


def test_one_writer_at_a_time(index: SearchIndex) -> None:
    first = index.writer()
    first.add_or_update(doc("d1", "open", "A", "dijk"))
    second = index.writer()
    with pytest.raises(WriterBusy):
        second.add_or_update(doc("d2", "open", "B", "dijk"))
    first.commit()
    with second:
        second.add_or_update(doc("d2", "open", "B", "dijk"))
    assert index.search("dijk", readable_folder_ids=OPEN).total == 2


def test_reopen_from_disk(tmp_path: Path, ring: KeyRing) -> None:
    ix = SearchIndex(tmp_path / "ix", ring)
    with ix.writer() as w:
        w.add_or_update(doc("d1", "open", "A", "dijk"))
    ix.close()
    again = SearchIndex(tmp_path / "ix", ring, create=False)
    assert again.search("dijk", readable_folder_ids=OPEN).total == 1
    again.close()
    with pytest.raises(IndexUnavailable):
        SearchIndex(tmp_path / "nothing", ring, create=False)


def test_garbled_pointer_is_refused(tmp_path: Path, ring: KeyRing) -> None:
    ix = SearchIndex(tmp_path / "ix", ring)
    (tmp_path / "ix" / "current").write_text(json.dumps({"dir": "../../etc", "schema": 1}))
    with pytest.raises(IndexUnavailable):
        ix.search("dijk", readable_folder_ids=OPEN)


def test_schema_version_change_asks_for_rebuild(
    index: SearchIndex, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert not index.needs_rebuild
    monkeypatch.setattr(_store, "SCHEMA_VERSION", _store.SCHEMA_VERSION + 1)
    assert index.needs_rebuild
    index.rebuild([doc("d1", "open", "A", "dijk")])
    assert not index.needs_rebuild


def test_rebuild_while_searching(index: SearchIndex, tmp_path: Path) -> None:
    with index.writer() as w:
        for i in range(30):
            w.add_or_update(doc(f"old{i}", "open", "Oud", "dijk oud"))
    old_gen = json.loads((index.root / "current").read_text())["dir"]
    seen: set[int] = set()
    errors: list[BaseException] = []
    stop = threading.Event()
    reader = index  # one handle: the rebuild and the searches share it, as in the app

    def search_loop() -> None:
        while not stop.is_set():
            try:
                seen.add(reader.search("dijk", readable_folder_ids=OPEN).total)
            except BaseException as exc:  # noqa: BLE001 - collected for the assertion
                errors.append(exc)
                return

    threads = [threading.Thread(target=search_loop) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        count = index.rebuild(
            doc(f"new{i}", "open", "Nieuw", "dijk nieuw") for i in range(45)
        )
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert count == 45 and errors == []
    # every answer was a complete index: the old one or the new one, nothing between
    assert seen <= {30, 45} and 30 in seen
    assert index.search("dijk", readable_folder_ids=OPEN).total == 45
    assert not (index.root / old_gen).exists()


def test_failed_rebuild_keeps_the_old_index(index: SearchIndex) -> None:
    with index.writer() as w:
        w.add_or_update(doc("d1", "open", "A", "dijk"))
    gens_before = sorted(p.name for p in index.root.iterdir())

    def broken():  # type: ignore[no-untyped-def]
        yield doc("n1", "open", "A", "dijk")
        raise RuntimeError("database went away")

    with pytest.raises(RuntimeError):
        index.rebuild(broken())
    assert sorted(p.name for p in index.root.iterdir()) == gens_before
    assert index.search("dijk", readable_folder_ids=OPEN).total == 1
