"""Fixtures for the storage tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from storage import KeyRing, LocalBlobStore


@pytest.fixture
def ring(tmp_path: Path) -> KeyRing:
    return KeyRing.create(tmp_path / "keys" / "keyring.json")


@pytest.fixture
def store(tmp_path: Path, ring: KeyRing) -> LocalBlobStore:
    return LocalBlobStore(tmp_path / "blobs", ring)
