"""Encryption at rest of the index: no word readable on disk, tampering detected."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from indexer import IndexUnavailable, SearchIndex
from indexer.index import encrypted
from indexer.index._schema import make_schema
from indexer.index.encrypted import EncryptedFileStorage, RingKeys
from storage import KeyRing
from tests.indexer.conftest import doc

CANARY = "kanariepietje"


def grep(path: Path, word: str) -> list[str]:
    out = subprocess.run(["grep", "-rli", word, str(path)], capture_output=True, text=True)
    return out.stdout.split()


def test_canary_not_on_disk(tmp_path: Path, index: SearchIndex) -> None:
    with index.writer() as w:
        w.add_or_update(doc("d1", "open", f"Titel {CANARY}", f"tekst {CANARY} tekst",
                            comments=[f"opmerking {CANARY}"], filename=f"{CANARY}.pdf"))
    assert index.search(CANARY, readable_folder_ids={"open"}).total == 1
    assert grep(index.root, CANARY) == []
    assert grep(index.root, CANARY[:6]) == []


def test_control_plaintext_index_does_show_the_canary(tmp_path: Path) -> None:
    # Proves the grep above would have found the word in an unencrypted index.
    plain = SearchIndex(tmp_path / "plain", None)
    with plain.writer() as w:
        w.add_or_update(doc("d1", "open", f"Titel {CANARY}", "tekst"))
    assert grep(plain.root, CANARY) != []
    plain.close()


def test_scratch_files_are_sealed_too(tmp_path: Path, ring: KeyRing) -> None:
    st = EncryptedFileStorage(tmp_path / "ix", RingKeys(ring)).create()
    ix = st.create_index(make_schema())
    writer = ix.writer(limitmb=1)  # force whoosh to spill posting runs to temp storage
    for i in range(60):
        writer.add_document(document_id=f"d{i}", folder_id="f", title="t",
                            body=f"{CANARY}{i} " + " ".join(f"w{i}x{j}" for j in range(300)))
    spilled = [p for p in (tmp_path / "ix").rglob("*") if p.is_file()]
    assert any(".tmp" in str(p.parent.name) for p in spilled), "expected spilled runs"
    assert grep(tmp_path / "ix", CANARY) == []
    writer.commit()
    assert grep(tmp_path / "ix", CANARY) == []
    with ix.searcher() as searcher:  # the sealed runs were read back correctly
        assert searcher.doc_count() == 60
    assert not [p for p in (tmp_path / "ix").iterdir() if p.is_dir()], "scratch left behind"
    ix.close()


def test_large_files_read_chunk_by_chunk(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, ring: KeyRing
) -> None:
    monkeypatch.setattr(encrypted, "_SMALL", 0)  # every file through the lazy reader
    ix = SearchIndex(tmp_path / "ix", ring)
    with ix.writer() as w:
        for i in range(50):
            w.add_or_update(doc(f"d{i}", "open", f"Stuk {i}", f"dijk nummer{i} " * 200))
    result = ix.search("nummer7", readable_folder_ids={"open"})
    assert [h.document_id for h in result.hits] == ["d7"]
    ix.close()


def _segment(root: Path) -> Path:
    gen = json.loads((root / "current").read_text())["dir"]
    return max((root / gen).glob("*.seg"), key=lambda p: p.stat().st_size)


def test_flipped_byte_is_refused(tmp_path: Path, ring: KeyRing) -> None:
    ix = SearchIndex(tmp_path / "ix", ring)
    with ix.writer() as w:
        w.add_or_update(doc("d1", "open", "Titel", "dijk " * 100))
    ix.close()
    seg = _segment(tmp_path / "ix")
    data = bytearray(seg.read_bytes())
    data[len(data) // 2] ^= 1
    seg.write_bytes(bytes(data))
    reopened = SearchIndex(tmp_path / "ix", ring)
    with pytest.raises(IndexUnavailable):
        reopened.search("dijk", readable_folder_ids={"open"})


def test_wrong_key_ring_is_refused(tmp_path: Path, ring: KeyRing) -> None:
    ix = SearchIndex(tmp_path / "ix", ring)
    with ix.writer() as w:
        w.add_or_update(doc("d1", "open", "Titel", "dijk"))
    ix.close()
    other = KeyRing.create(tmp_path / "other.json")
    with pytest.raises(IndexUnavailable):
        SearchIndex(tmp_path / "ix", other).search("dijk", readable_folder_ids={"open"})


def test_rotated_key_ring_still_reads(tmp_path: Path, ring: KeyRing) -> None:
    ix = SearchIndex(tmp_path / "ix", ring)
    with ix.writer() as w:
        w.add_or_update(doc("d1", "open", "Titel", "dijk"))
    ring.add_key()  # new active KEK; old files stay wrapped under the old one
    with ix.writer() as w:
        w.add_or_update(doc("d2", "open", "Titel", "dijk"))
    ix.close()
    again = SearchIndex(tmp_path / "ix", KeyRing.load(ring.path))
    assert again.search("dijk", readable_folder_ids={"open"}).total == 2
    again.close()
