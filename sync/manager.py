"""The room manager: loads rooms on demand, serves connections, unloads idle rooms.

A long-running service on an anyio task group, used either way::

    async with RoomManager(store) as manager:          # context manager
        await manager.serve(transport, doc_id, Permission.EDIT, conn_key)

    manager = RoomManager(store)                      # or explicit start/stop
    await task_group.start(manager.start)
    ...
    await manager.stop()

Rooms' writer tasks and idle timers run in the manager's task group; ``serve``
runs in the caller's task (the app's WebSocket endpoint) until the connection
ends.  The app keeps the access decision: it picks the permission at the
handshake and calls ``set_permission`` / ``revoke`` / ``close_document`` when
access changes -- they act at once on every open connection with that key.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self

import anyio
from anyio.abc import TaskGroup, TaskStatus
from pycrdt import merge_updates

from sync.awareness import Identity
from sync.commit import GroupCommitter
from sync.connection import Connection
from sync.errors import RoomUnavailable
from sync.limits import StorageGuard, SyncLimits
from sync.permission import Permission
from sync.room import Room, RoomState, load_state
from sync.store import DocumentStore, validate_document_id
from sync.transport import CloseCode, Transport

__all__ = ["RoomManager"]

log = logging.getLogger(__name__)


@dataclass(eq=False)
class _Slot:
    room: Room | None = None
    ready: anyio.Event = field(default_factory=anyio.Event)
    unloaded: anyio.Event = field(default_factory=anyio.Event)
    users: int = 0
    generation: int = 0


class RoomManager:
    def __init__(self, store: DocumentStore, limits: SyncLimits | None = None, *,
                 storage_guard: StorageGuard | None = None) -> None:
        self.store = store
        self.limits = limits if limits is not None else SyncLimits()
        self.storage_guard = storage_guard
        self._slots: dict[str, _Slot] = {}
        self._tg: TaskGroup | None = None
        self._stop_requested: anyio.Event | None = None
        self._stopped: anyio.Event | None = None
        self._exit_stack: AsyncExitStack | None = None
        #: One writer thread for every room's durable writes (``sync.commit``).
        self.committer: GroupCommitter | None = None

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return (
            self._tg is not None
            and self._stop_requested is not None
            and not (self._stop_requested.is_set())
        )

    async def start(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Run until ``stop()``; for ``task_group.start(manager.start)``."""
        if self._tg is not None:
            raise RuntimeError("RoomManager already started")
        self._stop_requested, self._stopped = anyio.Event(), anyio.Event()
        self.committer = GroupCommitter()
        self.committer.start()
        try:
            async with anyio.create_task_group() as tg:
                self._tg = tg
                task_status.started()
                try:
                    await self._stop_requested.wait()
                finally:
                    self._stop_requested.set()
                    with anyio.CancelScope(shield=True):
                        await self._unload_all()
                    tg.cancel_scope.cancel()  # idle timers
        finally:
            self._tg = None
            # Every room is closed: nothing more can be queued.
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(self.committer.stop)
            self._stopped.set()

    async def stop(self) -> None:
        """Close every connection (GOING_AWAY), drain and compact every room, stop."""
        if self._stop_requested is None or self._stopped is None:
            return
        self._stop_requested.set()
        await self._stopped.wait()

    async def __aenter__(self) -> Self:
        async with AsyncExitStack() as stack:
            tg = await stack.enter_async_context(anyio.create_task_group())
            await tg.start(self.start)
            self._exit_stack = stack.pop_all()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        await self.stop()
        stack, self._exit_stack = self._exit_stack, None
        if stack is None:
            return None
        return await stack.__aexit__(exc_type, exc, tb)

    # -- rooms -----------------------------------------------------------------------------

    def _require_running(self) -> TaskGroup:
        if self._tg is None or not self.running:
            raise RoomUnavailable("the room manager is not running")
        return self._tg

    async def _acquire(self, document_id: str) -> tuple[Room, _Slot]:
        validate_document_id(document_id)
        while True:
            tg = self._require_running()
            slot = self._slots.get(document_id)
            if slot is None:
                slot = self._slots[document_id] = _Slot()
                try:
                    room = await self._load(tg, document_id)
                except BaseException:
                    del self._slots[document_id]
                    slot.unloaded.set()
                    slot.ready.set()
                    raise
                slot.room = room
                slot.ready.set()
            else:
                await slot.ready.wait()
                if slot.room is None or slot.room.state is not RoomState.OPEN:
                    # Loading failed, or the room is being unloaded: wait, then retry.
                    await slot.unloaded.wait()
                    continue
                room = slot.room
            slot.users += 1
            slot.generation += 1
            return room, slot

    async def _load(self, tg: TaskGroup, document_id: str) -> Room:
        handle = await anyio.to_thread.run_sync(self.store.open, document_id)
        try:
            # Snapshot + log tail are applied in a worker thread: a note with a long log
            # must not stall every other room while it opens.
            loaded = await anyio.to_thread.run_sync(load_state, document_id, handle.load())
            room = Room(document_id, handle, self.limits, on_failed=self._room_failed,
                        storage_guard=self.storage_guard, committer=self.committer,
                        loaded=loaded)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(handle.close)
            raise
        await tg.start(room.run)
        return room

    def _release(self, document_id: str, slot: _Slot) -> None:
        slot.users -= 1
        if slot.users == 0 and self._tg is not None and self.running:
            self._tg.start_soon(self._unload_when_idle, document_id, slot, slot.generation)

    async def _unload_when_idle(self, document_id: str, slot: _Slot, generation: int) -> None:
        await anyio.sleep(self.limits.idle_timeout)
        if (
            slot.users == 0
            and slot.generation == generation
            and self._slots.get(document_id) is slot
        ):
            await self._unload(document_id, slot, CloseCode.GOING_AWAY, "idle")

    def _room_failed(self, room: Room) -> None:
        slot = self._slots.get(room.document_id)
        if slot is not None and slot.room is room and self._tg is not None:
            self._tg.start_soon(self._unload, room.document_id, slot, CloseCode.INTERNAL_ERROR, "")

    async def _unload(self, document_id: str, slot: _Slot, code: int, reason: str) -> None:
        room = slot.room
        try:
            if room is not None and room.state is not RoomState.CLOSED:
                with anyio.CancelScope(shield=True):
                    await room.close(code, reason)
        finally:
            if self._slots.get(document_id) is slot:
                del self._slots[document_id]
            slot.unloaded.set()

    async def _unload_all(self) -> None:
        async with anyio.create_task_group() as tg:
            for document_id, slot in list(self._slots.items()):
                if slot.room is not None:
                    tg.start_soon(self._unload, document_id, slot, CloseCode.GOING_AWAY, "shutdown")

    def loaded(self, document_id: str) -> bool:
        slot = self._slots.get(document_id)
        return slot is not None and slot.room is not None and slot.room.state is RoomState.OPEN

    def room(self, document_id: str) -> Room | None:
        """The loaded room of ``document_id``, if any (for diagnostics and tests)."""
        slot = self._slots.get(validate_document_id(document_id))
        return None if slot is None else slot.room

    # -- public API --------------------------------------------------------------------------

    async def serve(
        self, transport: Transport, document_id: str, permission: Permission, conn_key: str,
        identity: Identity | None = None,
    ) -> int:
        """Run one connection to its end; return the close code.

        ``conn_key`` is the app's handle for later access changes; several
        connections may share it (all tabs of one principal, say).  ``identity`` (the
        signed-in person's id and name) is stamped on the awareness states it sends and
        binds its awareness clientIDs to that person.
        """
        try:
            room, slot = await self._acquire(document_id)
        except BaseException:
            with anyio.move_on_after(self.limits.close_timeout, shield=True):
                try:
                    await transport.close(CloseCode.INTERNAL_ERROR, "document unavailable")
                except Exception:  # the original failure is what matters
                    log.debug("closing transport failed", exc_info=True)
            raise
        conn = Connection(transport, permission, conn_key, self.limits, identity)
        try:
            room.join(conn)
            await conn.run(room.handle_frame)
        finally:
            room.leave(conn)
            self._release(document_id, slot)
        return conn.close_code if conn.close_code is not None else CloseCode.NORMAL

    def set_permission(self, document_id: str, conn_key: str, permission: Permission) -> int:
        """Set the permission of every open connection with ``conn_key``; return how many
        had another one before (0: nothing changed)."""
        room = self.room(document_id)
        return 0 if room is None else room.set_permission(conn_key, permission)

    def revoke(self, document_id: str, conn_key: str, code: int = CloseCode.FORBIDDEN,
               reason: str = "access revoked") -> int:
        """Close every connection with ``conn_key`` at once (FORBIDDEN unless another
        ``code`` is given); return how many."""
        room = self.room(document_id)
        return 0 if room is None else room.revoke(conn_key, code, reason)

    async def close_document(self, document_id: str, reason: str = "document closed") -> bool:
        """Close every connection (DOCUMENT_CLOSED) and unload the room; False if not loaded."""
        slot = self._slots.get(validate_document_id(document_id))
        if slot is None:
            return False
        await slot.ready.wait()
        if slot.room is None:
            return False
        await self._unload(document_id, slot, CloseCode.DOCUMENT_CLOSED, reason)
        return True

    async def initialize(self, document_id: str, updates: Iterable[bytes]) -> bool:
        """Apply a new note's initial content once; False (nothing done) if it has state.

        SYNC.md: a document with CRDT state is never rebuilt from text -- clients
        holding the old state would see everything twice.
        """
        room, slot = await self._acquire(document_id)
        try:
            async with room.init_lock:
                if not room.is_blank():
                    return False
                parts = list(updates)
                if parts:
                    await room.apply(parts[0] if len(parts) == 1 else merge_updates(*parts))
                return True
        finally:
            self._release(document_id, slot)

    async def snapshot_state(self, document_id: str) -> bytes:
        """The full encoded state of everything durable (for renderers and versions)."""
        room, slot = await self._acquire(document_id)
        try:
            return room.doc.get_update()
        finally:
            self._release(document_id, slot)

    async def apply_update(self, document_id: str, update: bytes) -> None:
        """A server-side edit (e.g. restoring a version as new edits): returns once it is
        durable and broadcast.  ProtocolError if malformed, DocumentTooLarge if too big."""
        room, slot = await self._acquire(document_id)
        try:
            await room.apply(update)
        finally:
            self._release(document_id, slot)
