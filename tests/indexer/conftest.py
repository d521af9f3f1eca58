"""Fixtures: a key ring, an encrypted index, and documents in readable/unreadable folders.

Folders: ``open`` (carol may read) and ``closed`` (she may not).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from indexer import IndexDocument, SearchIndex
from storage import KeyRing


@pytest.fixture
def ring(tmp_path: Path) -> KeyRing:
    return KeyRing.create(tmp_path / "keys" / "keyring.json")


@pytest.fixture
def index(tmp_path: Path, ring: KeyRing) -> Iterator[SearchIndex]:
    ix = SearchIndex(tmp_path / "index", ring)
    yield ix
    ix.close()


def doc(
    document_id: str,
    folder_id: str,
    title: str,
    *pages: str,
    group_id: str = "g1",
    kind: str = "note",
    modified: datetime = datetime(2026, 3, 1, 12, 0),
    **extra: object,
) -> IndexDocument:
    return IndexDocument(
        document_id=document_id,
        folder_id=folder_id,
        group_id=group_id,
        title=title,
        kind=kind,
        modified=modified,
        pages=pages,
        **extra,  # type: ignore[arg-type]
    )
