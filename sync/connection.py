"""One client connection in a room: bounded outbound queue, rate-limited reader.

* Outbound: the room never awaits a socket.  It enqueues frames; one sender task
  per connection drains them.  A reader that lets the queue reach its bound
  (messages, or bytes -- a single frame larger than the byte bound, such as the
  step 2 of a big document, is admitted into an otherwise empty queue) is closed
  with SLOW_CONSUMER: memory per connection is bounded, and one slow reader never
  delays the others.
* Nothing is merged or re-encoded here: the room coalesces per round (one update
  frame and one presence frame per batch, see ``sync.room``) and queues the *same*
  bytes on every connection.  Merging per connection cost a fifth of the server's
  CPU with 200 editors in a note; per round it is done once.  The stock client reads
  one message per frame, so frames are never concatenated either.
* The sender drains everything queued in one turn: a send that does not block (the
  socket's buffer has room) completes without a task switch per frame.
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

import anyio

from sync.awareness import Identity
from sync.errors import ConnectionClosed
from sync.limits import SyncLimits, TokenBucket
from sync.permission import Permission
from sync.transport import CloseCode, Transport

__all__ = ["Connection"]

log = logging.getLogger(__name__)

FrameHandler = Callable[["Connection", bytes], Awaitable[int]]


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
        self._queue: deque[bytes] = deque()
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
        """(frames, bytes) waiting to be sent."""
        return len(self._queue), self._queued_bytes

    # -- called by the room ---------------------------------------------------------

    def send(self, frame: bytes) -> None:
        """Queue ``frame`` without waiting; close the connection if its queue is full."""
        if self.closed or self._send_closed:
            return
        if (
            len(self._queue) >= self._limits.max_queued_messages
            or self._queued_bytes >= self._limits.max_queued_bytes
        ):
            self.abort(CloseCode.SLOW_CONSUMER, "outbound queue full")
            return
        self._queue.append(frame)
        self._queued_bytes += len(frame)
        if len(self._queue) == 1:
            self._wakeup.set()

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
            frame = self._queue[0]
            try:
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
            self._queued_bytes -= len(frame)

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
