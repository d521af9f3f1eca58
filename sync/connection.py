"""One client connection in a room: bounded outbound queue, rate-limited reader.

* Outbound: the room never awaits a socket.  It enqueues frames; one sender task
  per connection drains them.  A reader that lets the queue reach its bound
  (messages, or bytes -- a single frame larger than the byte bound, such as the
  step 2 of a big document, is admitted into an otherwise empty queue) is closed
  with SLOW_CONSUMER: memory per connection is bounded, and one slow reader never
  delays the others.
* Coalescing: when the socket is slower than the room, consecutive queued document
  updates are merged into one update message, and consecutive awareness messages into
  one (the newest entry per client); such a run counts as one queued message.  An
  update may pass one queued awareness run to join the updates just before it, so a
  typist's alternating edits and caret moves merge too.  The
  stock client reads one message per frame, so messages are merged, never
  concatenated.  Under light load nothing waits (the first frame goes out at once);
  under heavy load a connection sends one frame per turn of its sender instead of one
  per update -- fewer syscalls and less per-frame work, and a reader that keeps up
  with the content is not mistaken for a slow one.
* Inbound: frames over the size cap close the connection (TOO_BIG).  Message and
  byte rates go through token buckets; above them the reader *waits* before its
  next ``recv``, so the client's own TCP window pushes back -- nothing is queued.
* ``abort(code, reason)`` may be called from anywhere (revocation, hostile input,
  slow reader): it cancels both tasks at once and ``run`` closes the transport
  with that code, waiting at most ``close_timeout``.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import anyio
from pycrdt import merge_updates

from sync.awareness import Identity
from sync.errors import ConnectionClosed
from sync.limits import SyncLimits, TokenBucket
from sync.permission import Permission
from sync.protocol import AwarenessEntry, AwarenessUpdate, SyncUpdate, encode
from sync.transport import CloseCode, Transport

__all__ = ["Connection"]

log = logging.getLogger(__name__)

FrameHandler = Callable[["Connection", bytes], Awaitable[int]]


@dataclass(slots=True)
class _Group:
    """What the sender will send as one frame: a plain frame, or a run of queued document
    updates (or of awareness messages) to be merged into one message."""

    frames: list[bytes]
    size: int
    updates: list[bytes] | None = None
    awareness: list[AwarenessEntry] | None = None

    def merged(self) -> list[bytes]:
        """The frames to send: one, unless merging failed (then the originals)."""
        if len(self.frames) == 1:
            return self.frames
        if self.updates is not None:
            merged = _merged_update(self.updates)
            # Not mergeable (cannot happen with our own encoder's updates): send as queued.
            return self.frames if merged is None else [encode(SyncUpdate(merged))]
        latest: dict[int, AwarenessEntry] = {}
        for e in self.awareness or ():
            latest.pop(e.client_id, None)
            latest[e.client_id] = e  # the newest entry per client, in order
        return [encode(AwarenessUpdate(tuple(latest.values())))]


def _merged_update(parts: list[bytes]) -> bytes | None:
    try:
        return bytes(merge_updates(*parts))
    except BaseException as exc:  # pycrdt/yrs: Rust panics derive from BaseException
        if isinstance(exc, KeyboardInterrupt | SystemExit | GeneratorExit):
            raise
        log.warning("merging queued updates failed; sending them one by one", exc_info=True)
        return None


class Connection:
    def __init__(
        self, transport: Transport, permission: Permission, key: str, limits: SyncLimits,
        identity: Identity | None = None,
    ) -> None:
        self.transport = transport
        self.permission = permission
        #: App-chosen key; several connections may share one (e.g. a principal's tabs).
        self.key = key
        #: Who this connection speaks for (stamped on its awareness states), if the app says.
        self.identity = identity
        self._limits = limits
        self._queue: deque[_Group] = deque()
        self._queued_bytes = 0
        self._wakeup = anyio.Event()
        self._scope: anyio.CancelScope | None = None
        self._messages = TokenBucket(
            limits.max_messages_per_second, limits.max_messages_per_second * limits.burst_seconds
        )
        self._bytes = TokenBucket(
            limits.max_bytes_per_second, limits.max_bytes_per_second * limits.burst_seconds
        )
        self._awareness = TokenBucket(
            limits.max_awareness_per_second,
            limits.max_awareness_per_second * limits.burst_seconds,
        )
        self.close_code: int | None = None
        self.close_reason = ""
        self._send_closed = False

    def __repr__(self) -> str:
        return f"Connection(key={self.key!r}, permission={self.permission.name})"

    @property
    def closed(self) -> bool:
        return self.close_code is not None

    @property
    def queued(self) -> tuple[int, int]:
        """(frames, bytes) waiting to be sent (a run of mergeable messages is one frame)."""
        return len(self._queue), self._queued_bytes

    # -- called by the room ---------------------------------------------------------

    def send(
        self,
        frame: bytes,
        *,
        update: bytes | None = None,
        awareness: tuple[AwarenessEntry, ...] | None = None,
    ) -> None:
        """Queue ``frame`` without waiting; close the connection if its queue is full.

        Pass the payload of a sync update (``update``) or of an awareness message
        (``awareness``) with its encoded ``frame`` to let the sender merge it with its
        queued neighbours."""
        if self.closed or self._send_closed:
            return
        if (
            len(self._queue) >= self._limits.max_queued_messages
            or self._queued_bytes >= self._limits.max_queued_bytes
        ):
            self.abort(CloseCode.SLOW_CONSUMER, "outbound queue full")
            return
        self._enqueue(frame, update, awareness)
        self._queued_bytes += len(frame)
        self._wakeup.set()

    def _enqueue(
        self, frame: bytes, update: bytes | None, awareness: tuple[AwarenessEntry, ...] | None
    ) -> None:
        # The head group may be merged already while the sender awaits the socket; groups
        # behind it only ever grow here, up to the message size cap.
        behind_head = len(self._queue) - 1
        tail = self._queue[-1] if behind_head > 0 else None
        if update is not None and tail is not None and tail.awareness is not None \
                and behind_head > 1 and self._queue[-2].updates is not None:
            # A typist moves the caret with every key: updates and awareness messages
            # alternate, so no two neighbours merge.  An update may pass the queued
            # presence to join the updates before it (content earlier, never presence
            # earlier than the content it may point into): the queue stays two groups.
            tail = self._queue[-2]
        if tail is not None and tail.size + len(frame) <= self._limits.max_message_bytes:
            if update is not None and tail.updates is not None:
                tail.frames.append(frame)
                tail.updates.append(update)
                tail.size += len(frame)
                return
            if awareness is not None and tail.awareness is not None:
                tail.frames.append(frame)
                tail.awareness.extend(awareness)
                tail.size += len(frame)
                return
        self._queue.append(_Group(
            [frame], len(frame),
            None if update is None else [update],
            None if awareness is None else list(awareness),
        ))

    def abort(self, code: int, reason: str) -> None:
        """Close this connection as soon as possible (idempotent: the first reason wins)."""
        if self.close_code is None:
            self.close_code, self.close_reason = int(code), reason
            self._queue.clear()
            self._queued_bytes = 0
        if self._scope is not None:
            self._scope.cancel()

    def awareness_wait(self) -> float:
        """Spend one awareness message; how long the reader must wait first (0.0: none)."""
        return self._awareness.take(1)

    # -- the connection's life ------------------------------------------------------

    async def _send_loop(self) -> None:
        while True:
            while not self._queue:
                self._wakeup = anyio.Event()
                await self._wakeup.wait()
            group = self._queue[0]
            frames = group.merged()
            try:
                for frame in frames:
                    await self.transport.send(frame)
            except ConnectionClosed:
                # The peer is gone, but frames it sent before closing may still be
                # buffered: let the reader drain them (its recv then ends the
                # connection) instead of cancelling it here.
                self._send_closed = True
                self._queue.clear()
                self._queued_bytes = 0
                return
            self._queue.popleft()
            self._queued_bytes -= group.size

    async def _recv_loop(self, on_frame: FrameHandler) -> None:
        limit = self._limits.max_message_bytes
        while True:
            try:
                frame = await self.transport.recv()
            except ConnectionClosed as exc:
                self.abort(exc.code, exc.reason)
                return
            if len(frame) > limit:
                self.abort(CloseCode.TOO_BIG, f"message over {limit} bytes")
                return
            handled = await on_frame(self, frame)
            if self.closed:
                return
            wait = max(self._messages.take(handled), self._bytes.take(len(frame)))
            if wait > 0:
                await anyio.sleep(wait)

    async def run(self, on_frame: FrameHandler) -> None:
        """Serve until either side closes; always leaves the transport closed."""
        try:
            async with anyio.create_task_group() as tg:
                self._scope = tg.cancel_scope
                if self.closed:  # aborted before it started (e.g. revoked while joining)
                    tg.cancel_scope.cancel()
                tg.start_soon(self._send_loop)
                await self._recv_loop(on_frame)
                tg.cancel_scope.cancel()
        finally:
            self._scope = None
            if self.close_code is None:
                self.close_code = CloseCode.GOING_AWAY
            # Closed by the peer or not, release our end (the transport's close is
            # idempotent); the code only matters when we are the one closing.
            with anyio.move_on_after(self._limits.close_timeout, shield=True):
                try:
                    await self.transport.close(self.close_code, self.close_reason)
                except Exception:  # a failing close must not mask why we closed
                    log.debug("closing transport failed", exc_info=True)
