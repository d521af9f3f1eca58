"""A y-websocket client for tests: a pycrdt Doc speaking our codec over a memory transport.

It behaves like the JS provider: sends its step 1 on open, answers the server's
step 1 with a step 2, applies step 2/updates, tracks awareness and auth messages,
and sends its own local edits as updates (``flush``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import anyio
from anyio.abc import TaskGroup
from pycrdt import Doc, Text, TransactionEvent

from sync import (
    ConnectionClosed,
    Identity,
    MemoryTransport,
    Permission,
    RoomManager,
    memory_transport_pair,
)
from sync.protocol import (
    AwarenessEntry,
    AwarenessUpdate,
    PermissionDenied,
    QueryAwareness,
    SyncStep1,
    SyncStep2,
    SyncUpdate,
    decode_frame,
    encode,
)
from sync.room import Room


def room(manager: RoomManager, document_id: str = "doc") -> Room:
    """The loaded room (the test fails if there is none)."""
    r = manager.room(document_id)
    assert r is not None, f"room {document_id} is not loaded"
    return r


def server_text(manager: RoomManager, document_id: str = "doc") -> str:
    """The text the room holds durably (what step 2 and snapshots are made from)."""
    r = manager.room(document_id)
    return "" if r is None else str(r.doc.get("t", type=Text))


async def wait_for(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    """Poll ``condition`` until true (fails the test after ``seconds``).

    Polling, not an Event: the conditions span the server, worker threads (fsync)
    and several clients, and a test must not need hooks in the code under test."""
    with anyio.fail_after(seconds):
        while not condition():  # noqa: ASYNC110
            await anyio.sleep(0.002)


class YClient:
    def __init__(self, name: str) -> None:
        self.name = name
        self.doc: Doc[Any] = Doc()
        self.text = self.doc.get("t", type=Text)
        self.outbox: list[bytes] = []
        self._applying_remote = False
        self.doc.observe(self._on_change)
        self.awareness: dict[int, tuple[int, Any]] = {}
        self.awareness_messages: list[AwarenessUpdate] = []
        self.denied: list[str] = []
        self.frames: list[bytes] = []
        self.synced = anyio.Event()
        self.closed: ConnectionClosed | None = None
        self.server_result: int | BaseException | None = None
        self.transport: MemoryTransport | None = None
        self.clock = 0
        self.read = True

    @property
    def client_id(self) -> int:
        return self.doc.client_id

    def _on_change(self, event: TransactionEvent) -> None:
        if not self._applying_remote:
            self.outbox.append(event.update)

    # -- connection -------------------------------------------------------------------------

    async def connect(
        self,
        tg: TaskGroup,
        manager: RoomManager,
        document_id: str = "doc",
        permission: Permission = Permission.EDIT,
        key: str | None = None,
        *,
        max_buffer: float = math.inf,
        read: bool = True,
        identity: Identity | None = None,
    ) -> None:
        server_end, client_end = memory_transport_pair(max_buffer)
        self.transport = client_end
        self.closed = None
        self.synced = anyio.Event()
        self.read = read
        tg.start_soon(self._serve, manager, server_end, document_id, permission, key or self.name,
                      identity)
        if read:
            tg.start_soon(self._recv_loop)
        await client_end.send(encode(SyncStep1(self.doc.get_state())))
        if read:
            # Like a provider's "synced": the room is loaded and we hold its state.
            with anyio.fail_after(5):
                await self.synced.wait()

    async def _serve(
        self,
        manager: RoomManager,
        end: MemoryTransport,
        document_id: str,
        permission: Permission,
        key: str,
        identity: Identity | None = None,
    ) -> None:
        try:
            self.server_result = await manager.serve(end, document_id, permission, key, identity)
        except Exception as exc:  # recorded for the test to inspect
            self.server_result = exc

    async def _recv_loop(self) -> None:
        assert self.transport is not None
        transport = self.transport
        while True:
            try:
                frame = await transport.recv()
            except ConnectionClosed as exc:
                self.closed = exc
                await transport.close()
                return
            self.frames.append(frame)
            for message in decode_frame(frame):
                await self._handle(transport, message)

    async def _handle(self, transport: MemoryTransport, message: object) -> None:
        match message:
            case SyncStep1(state_vector=sv):
                await self._send(transport, encode(SyncStep2(self.doc.get_update(sv))))
            case SyncStep2(update=u):
                self.apply_remote(u)
                self.synced.set()
            case SyncUpdate(update=u):
                self.apply_remote(u)
            case AwarenessUpdate(entries=entries):
                self.awareness_messages.append(message)
                for e in entries:
                    current = self.awareness.get(e.client_id)
                    if current is None or current[0] <= e.clock:
                        self.awareness[e.client_id] = (e.clock, json.loads(e.state))
            case PermissionDenied(reason=reason):
                self.denied.append(reason)

    async def _send(self, transport: MemoryTransport, frame: bytes) -> None:
        try:
            await transport.send(frame)
        except ConnectionClosed as exc:
            self.closed = exc

    def apply_remote(self, update: bytes) -> None:
        self._applying_remote = True
        try:
            self.doc.apply_update(update)
        finally:
            self._applying_remote = False

    # -- actions ----------------------------------------------------------------------------

    async def send_raw(self, frame: bytes) -> None:
        assert self.transport is not None
        await self._send(self.transport, frame)

    async def flush(self) -> None:
        """Send local edits made since the last flush."""
        pending, self.outbox = self.outbox, []
        for update in pending:
            await self.send_raw(encode(SyncUpdate(update)))

    async def type(self, text: str, at: int | None = None) -> None:
        self.text.insert(len(self.text) if at is None else at, text)
        await self.flush()

    async def set_awareness(self, state: dict[str, Any] | None, client_id: int | None = None,
                            clock: int | None = None) -> None:
        """Send an awareness entry: our own, or (``client_id``/``clock``) a forged one."""
        if clock is None:
            self.clock += 1
            clock = self.clock
        cid = self.client_id if client_id is None else client_id
        entry = AwarenessEntry(cid, clock, json.dumps(state))
        await self.send_raw(encode(AwarenessUpdate((entry,))))

    async def query_awareness(self) -> None:
        await self.send_raw(encode(QueryAwareness()))

    async def close(self) -> None:
        if self.transport is not None:
            await self.transport.close(1000, "bye")

    def present(self) -> dict[int, Any]:
        """Awareness states this client currently sees (removals dropped)."""
        return {cid: s for cid, (_, s) in self.awareness.items() if s is not None}
