"""Fixtures for the sync tests: a key ring, a file store, a running manager."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from storage import KeyRing
from sync import FileDocumentStore, RoomManager, SyncLimits


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def ring(tmp_path: Path) -> KeyRing:
    return KeyRing.create(tmp_path / "keys" / "keyring.json")


@pytest.fixture
def store(tmp_path: Path, ring: KeyRing) -> FileDocumentStore:
    return FileDocumentStore(tmp_path / "sync", ring)


@pytest.fixture
def limits() -> SyncLimits:
    return SyncLimits()


@pytest.fixture
async def manager(store: FileDocumentStore, limits: SyncLimits) -> AsyncIterator[RoomManager]:
    async with RoomManager(store, limits) as m:
        yield m
