"""Durability through the room: broadcast implies on disk; crashes lose nothing acknowledged."""

from __future__ import annotations

import errno
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio
import pytest
from pycrdt import Doc, Text

from storage import KeyRing
from sync import (
    CloseCode,
    FileDocumentStore,
    RoomManager,
    SyncLimits,
    text_to_update,
)
from sync.store import FileDocumentHandle
from tests.sync.yclient import YClient, room, server_text, wait_for

pytestmark = pytest.mark.anyio


def _files_containing(root: Path, needle: bytes) -> list[Path]:
    """grep -r, in effect."""
    return [p for p in root.rglob("*") if p.is_file() and needle in p.read_bytes()]


def reload_text(root: Path, ring: KeyRing, document_id: str = "doc") -> str:
    """What a restarted server would load: a fresh store over the same files."""
    handle = FileDocumentStore(root, ring).open(document_id)
    try:
        doc: Doc[Any] = Doc()
        for update in handle.load():
            doc.apply_update(update)
        return str(doc.get("t", type=Text))
    finally:
        handle.close()


async def test_broadcast_updates_survive_a_crash(
    manager: RoomManager, store: FileDocumentStore, ring: KeyRing
) -> None:
    alice, bob = YClient("alice"), YClient("bob")
    async with anyio.create_task_group() as tg:
        await alice.connect(tg, manager)
        await bob.connect(tg, manager)
        for i in range(30):
            await alice.type(f"<{i}>")
        # bob received everything: every one of those updates was acknowledged.
        await wait_for(lambda: str(bob.text) == str(alice.text) and "<29>" in str(bob.text))
        acknowledged = str(bob.text)
        # "Crash": no shutdown, no compaction -- just read what is on disk now.
        assert reload_text(store.root, ring) == acknowledged
        await alice.close()
        await bob.close()


async def test_restart_reconnect_no_duplicates(store: FileDocumentStore) -> None:
    alice = YClient("alice")
    async with RoomManager(store) as manager:
        async with anyio.create_task_group() as tg:
            await alice.connect(tg, manager)
            await alice.type("persisted once")
            await wait_for(lambda: server_text(manager) == "persisted once")
            await alice.close()
    # A new server; alice reconnects with her old state (as a browser tab would).
    async with RoomManager(store) as manager:
        async with anyio.create_task_group() as tg:
            await alice.connect(tg, manager)
            await alice.type("!")
            await wait_for(lambda: server_text(manager) == "persisted once!")
            bob = YClient("bob")
            await bob.connect(tg, manager)
            assert str(bob.text) == "persisted once!"
            await alice.close()
            await bob.close()


async def test_group_commit_batches_updates_during_fsync(
    manager: RoomManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = threading.Event()
    batches: list[int] = []
    write_many, sync = FileDocumentHandle.write_many, FileDocumentHandle.sync

    def counting_write(self: FileDocumentHandle, updates: Sequence[bytes]) -> None:
        batches.append(len(updates))
        write_many(self, updates)

    def slow_sync(self: FileDocumentHandle, *, flushed: bool = False) -> None:
        if len(batches) == 1:
            gate.wait(5)  # the first fsync is "in flight" until the test releases it
        sync(self, flushed=flushed)

    monkeypatch.setattr(FileDocumentHandle, "write_many", counting_write)
    monkeypatch.setattr(FileDocumentHandle, "sync", slow_sync)
    alice, bob = YClient("alice"), YClient("bob")
    async with anyio.create_task_group() as tg:
        await alice.connect(tg, manager)
        await bob.connect(tg, manager)
        await alice.type("a")
        await wait_for(lambda: batches == [1])
        for _ in range(20):
            await alice.type("b")
        await wait_for(lambda: room(manager).pending == 20)
        assert str(bob.text) == ""  # nothing broadcast before it is durable
        gate.set()
        await wait_for(lambda: str(bob.text) == "a" + "b" * 20)
        assert batches == [1, 20]
        await alice.close()
        await bob.close()


async def test_fsync_failure_is_never_broadcast(
    manager: RoomManager, store: FileDocumentStore, ring: KeyRing, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice, bob = YClient("alice"), YClient("bob")
    async with anyio.create_task_group() as tg:
        await alice.connect(tg, manager)
        await bob.connect(tg, manager)
        await alice.type("safe")
        await wait_for(lambda: str(bob.text) == "safe")

        def failing_fsync(fd: int) -> None:
            raise OSError(errno.EIO, "simulated EIO")

        with monkeypatch.context() as m:
            m.setattr(os, "fsync", failing_fsync)
            await alice.type(" lost")
            await wait_for(lambda: alice.closed is not None and bob.closed is not None)
        assert alice.closed is not None and alice.closed.code == CloseCode.INTERNAL_ERROR
        assert str(bob.text) == "safe"
        await wait_for(lambda: manager.room("doc") is None)
        assert reload_text(store.root, ring) == "safe"
        # The next connection recovers from disk; alice's client resends on reconnect.
        await alice.connect(tg, manager)
        await wait_for(lambda: server_text(manager) == "safe lost")
        await alice.close()


@pytest.mark.parametrize("limits", [SyncLimits(compact_after_records=5, idle_timeout=0)])
async def test_compaction_by_size_and_when_idle(
    manager: RoomManager, store: FileDocumentStore, ring: KeyRing
) -> None:
    alice = YClient("alice")
    async with anyio.create_task_group() as tg:
        await alice.connect(tg, manager)
        for i in range(12):
            await alice.type(str(i % 10))
        await wait_for(lambda: server_text(manager) == "012345678901")
        await wait_for(lambda: room(manager)._handle.log_records < 5)
        assert reload_text(store.root, ring) == "012345678901"
        await alice.close()
    # idle_timeout=0: unloaded (and compacted) as soon as the last one left.
    await wait_for(lambda: manager.room("doc") is None)
    handle = store.open("doc")
    assert handle.log_records == 0
    assert len(handle.load()) == 1  # just the snapshot
    handle.close()
    assert reload_text(store.root, ring) == "012345678901"


async def test_initialize_once_then_server_edits(manager: RoomManager) -> None:
    first = text_to_update("Hello")
    assert await manager.initialize("note", [first]) is True
    # A second creation attempt (a retried request, say) must not duplicate it.
    assert await manager.initialize("note", [text_to_update("Hello")]) is False
    alice = YClient("alice")
    async with anyio.create_task_group() as tg:
        await alice.connect(tg, manager, document_id="note")
        from sync import render_text

        assert render_text(alice.doc) == "Hello"
        # A server-side edit (e.g. a restore) reaches connected clients.
        edit: Doc[Any] = Doc()
        edit.apply_update(await manager.snapshot_state("note"))
        before = edit.get_state()
        edit.get("t", type=Text).insert(0, "server")
        await manager.apply_update("note", edit.get_update(before))
        await wait_for(lambda: str(alice.text) == "server")
        await alice.close()


async def test_canary_not_on_disk(manager: RoomManager, tmp_path: Path) -> None:
    canary = "CANARYsyncPlein9q"
    alice = YClient("alice")
    async with anyio.create_task_group() as tg:
        await alice.connect(tg, manager)
        await alice.type(canary)
        await alice.set_awareness({"name": canary})
        await wait_for(lambda: server_text(manager) == canary)
        await alice.close()
    await manager.close_document("doc")  # compaction: the snapshot blob too
    assert _files_containing(tmp_path, canary.encode()) == []


async def test_manager_explicit_start_stop(store: FileDocumentStore) -> None:
    manager = RoomManager(store)
    async with anyio.create_task_group() as tg:
        await tg.start(manager.start)
        assert manager.running
        alice = YClient("alice")
        await alice.connect(tg, manager)
        await alice.type("x")
        await wait_for(lambda: server_text(manager) == "x")
        await manager.stop()
        assert not manager.running
        await wait_for(lambda: alice.closed is not None)
        assert alice.closed is not None and alice.closed.code == CloseCode.GOING_AWAY
    with pytest.raises(Exception, match="not running"):
        await manager.snapshot_state("doc")
