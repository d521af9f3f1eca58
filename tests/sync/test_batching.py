"""Fan-out per round: one frame per batch, the same bytes for every connection; group commit
across rooms in one writer thread (issue 11)."""

from __future__ import annotations

import errno
import os
import threading
from collections.abc import Sequence

import anyio
import anyio.abc
import pytest

from storage import KeyRing
from sync import CloseCode, FileDocumentStore, RoomManager, SyncLimits, commit
from sync.protocol import SyncUpdate, decode_frame
from sync.store import FileDocumentHandle
from tests.sync.test_persistence import reload_text
from tests.sync.yclient import YClient, room, server_text, wait_for

pytestmark = pytest.mark.anyio


def update_frames(client: YClient) -> list[bytes]:
    """The frames that carried a document update to ``client`` (after its initial sync)."""
    return [f for f in client.frames if isinstance(decode_frame(f)[0], SyncUpdate)]


@pytest.fixture
def held_round(monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    """The first fsync of the writer thread waits until the test sets the event returned."""
    gate = threading.Event()
    calls: list[None] = []
    sync = FileDocumentHandle.sync

    def held_sync(self: FileDocumentHandle, *, flushed: bool = False) -> None:
        calls.append(None)
        if len(calls) == 1:
            gate.wait(5)
        sync(self, flushed=flushed)

    monkeypatch.setattr(FileDocumentHandle, "sync", held_sync)
    return gate


async def test_a_batch_frame_reaches_every_connection_once(
    manager: RoomManager, held_round: threading.Event
) -> None:
    alice, bob, carol, dave = (YClient(n) for n in ("alice", "bob", "carol", "dave"))
    async with anyio.create_task_group() as tg:
        for c in (alice, bob, carol, dave):
            await c.connect(tg, manager)
        await alice.type("first ")  # its round is held at the fsync
        await wait_for(lambda: manager.committer is not None and room(manager).pending == 0)
        await alice.type("a")
        await bob.type("b")
        await carol.type("c")
        await wait_for(lambda: room(manager).pending == 3)  # one batch, three origins
        held_round.set()
        await wait_for(lambda: all(len(str(c.text)) == 9 for c in (alice, bob, carol, dave)))
        assert len({str(c.text) for c in (alice, bob, carol, dave)}) == 1
        # dave edited nothing: one frame per round, not one per update.
        assert len(update_frames(dave)) == 2
        # The first round was alice's alone: not echoed to her.  The second had three
        # origins: everyone gets the one frame, their own edits included.
        assert [len(update_frames(c)) for c in (alice, bob, carol)] == [1, 2, 2]
        shared = update_frames(dave)[1]
        # Encoded once: the very same bytes object was queued on every connection.
        assert all(update_frames(c)[-1] is shared for c in (alice, bob, carol))
        for c in (alice, bob, carol, dave):
            await c.close()


@pytest.mark.parametrize("limits", [SyncLimits(max_queued_messages=8)])
async def test_slow_reader_is_disconnected_while_the_others_get_every_round(
    manager: RoomManager,
) -> None:
    alice, bob, slow = YClient("alice"), YClient("bob"), YClient("slow")
    async with anyio.create_task_group() as tg:
        await alice.connect(tg, manager)
        await bob.connect(tg, manager)
        # max_buffer=0 and nobody reading: the server's send blocks, its queue fills.
        await slow.connect(tg, manager, max_buffer=0, read=False)
        assert manager.committer is not None
        rounds_before = manager.committer.requests
        for i in range(40):
            await alice.type(f"{i:02} " + "x" * 600)
            # One round each: the queue fills by frames, not by one merged giant.
            await wait_for(lambda: str(bob.text) == str(alice.text))
        await wait_for(lambda: slow.server_result == CloseCode.SLOW_CONSUMER)
        await slow.close()
        await alice.type("end")
        await wait_for(lambda: str(bob.text).endswith("end"))
        assert alice.closed is None and bob.closed is None
        assert str(bob.text) == str(alice.text) == server_text(manager)
        # bob got each of alice's rounds exactly once, as one frame (only this room commits).
        assert len(update_frames(bob)) == manager.committer.requests - rounds_before
        await alice.close()
        await bob.close()


async def _two_rooms_in_one_round(
    manager: RoomManager, monkeypatch: pytest.MonkeyPatch,
    a: tuple[YClient, YClient], b: tuple[YClient, YClient], tg: anyio.abc.TaskGroup,
) -> tuple[threading.Event, list[int], YClient]:
    """Connect a and b to room-a and room-b, and hold the writer thread with a third room's
    round; returns the gate that releases it, the sizes of the batches written, and the
    third room's client."""
    gate = threading.Event()
    writes: list[int] = []
    write_many = FileDocumentHandle.write_many

    def held_write(self: FileDocumentHandle, updates: Sequence[bytes]) -> None:
        writes.append(len(updates))
        if len(writes) == 1:
            gate.wait(5)  # the thread is busy: both rooms' next batches queue for one round
        write_many(self, updates)

    monkeypatch.setattr(FileDocumentHandle, "write_many", held_write)
    for client in a:
        await client.connect(tg, manager, "room-a")
    for client in b:
        await client.connect(tg, manager, "room-b")
    c = YClient("c")
    await c.connect(tg, manager, "room-c")
    await c.type("held")
    await wait_for(lambda: writes == [1])
    return gate, writes, c


@pytest.mark.skipif(commit.syncfs is None, reason="syncfs with error reporting: Linux >= 5.8")
async def test_one_flush_per_round_across_rooms(
    manager: RoomManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    a1, a2, b1, b2 = (YClient(n) for n in ("a1", "a2", "b1", "b2"))
    async with anyio.create_task_group() as tg:
        gate, writes, c = await _two_rooms_in_one_round(
            manager, monkeypatch, (a1, a2), (b1, b2), tg)
        fsyncs: list[int] = []
        fsync = os.fsync

        def counting_fsync(fd: int) -> None:
            fsyncs.append(fd)
            fsync(fd)

        monkeypatch.setattr(os, "fsync", counting_fsync)
        assert manager.committer is not None
        flushes = manager.committer.syncfs_calls
        await a1.type("one")
        await b1.type("two")
        queued = manager.committer._queue
        await wait_for(lambda: len(queued) == 2)
        gate.set()
        await wait_for(lambda: str(a2.text) == "one" and str(b2.text) == "two")
        assert writes[1:] == [1, 1]
        # The held round (one log) was fsynced; the round of two rooms, one syncfs.
        assert manager.committer.syncfs_calls == flushes + 1
        assert len(fsyncs) == 1
        for client in (a1, a2, b1, b2, c):
            await client.close()


async def test_failed_fsync_in_a_shared_round_sends_nothing_for_that_room(
    manager: RoomManager, store: FileDocumentStore, ring: KeyRing,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    a1, a2, b1, b2 = (YClient(n) for n in ("a1", "a2", "b1", "b2"))
    async with anyio.create_task_group() as tg:
        gate, writes, c = await _two_rooms_in_one_round(
            manager, monkeypatch, (a1, a2), (b1, b2), tg)
        failing = room(manager, "room-a")._handle._log._fd  # type: ignore[attr-defined]
        fsync = os.fsync
        flushes: list[int] = []

        def failing_syncfs(fd: int) -> None:
            flushes.append(fd)
            raise OSError(errno.EIO, "simulated EIO")  # the filesystem reports an error ...

        def fsync_failing_for_room_a(fd: int) -> None:
            if fd == failing:  # ... and room A's log is the file it concerns
                raise OSError(errno.EIO, "simulated EIO")
            fsync(fd)

        monkeypatch.setattr(commit, "syncfs", failing_syncfs)
        monkeypatch.setattr(os, "fsync", fsync_failing_for_room_a)
        assert manager.committer is not None
        rounds = manager.committer.rounds
        await a1.type("lost")
        await b1.type("kept")
        queued = manager.committer._queue
        await wait_for(lambda: len(queued) == 2)  # both rooms' batches wait for the thread
        gate.set()
        await wait_for(lambda: a1.closed is not None and a2.closed is not None)
        await wait_for(lambda: str(b2.text) == "kept")
        # Both rooms' batches were in the one round after the held one.
        assert manager.committer.rounds == rounds + 2
        assert writes[1:] == [1, 1]
        assert len(flushes) == 1
        assert a1.closed is not None and a1.closed.code == CloseCode.INTERNAL_ERROR
        assert update_frames(a2) == []  # nothing of the failed round reached room A
        assert str(a2.text) == ""
        assert b1.closed is None and b2.closed is None
        monkeypatch.setattr(os, "fsync", fsync)
        await wait_for(lambda: manager.room("room-a") is None)
        assert reload_text(store.root, ring, "room-a") == ""
        for client in (b1, b2, c):
            await client.close()
