"""One client connection in a room: bounded outbound queue, rate-limited reader.

* Outbound: the room never awaits a socket.  It enqueues frames; one sender task
  per connection drains them.  A reader that lets the queue reach its bound
  (messages, or bytes -- a single frame larger than the byte bound, such as the
  step 2 of a big document, is admitted into an otherwise empty queue) is closed
  with SLOW_CONSUMER: memory per connection is bounded, and one slow reader never
  delays the others.
* Coalescing: when the socket is slower than the room, consecutive queued document
  updates are merged into one update message, and consecutive awareness messages into
  one (the newest entry per client).  The stock client reads one message per frame, so
  messages are merged, never concatenated.  Under light load nothing waits to be merged
  (the first frame goes out at once); under heavy load a connection sends one frame per
  turn of its sender instead of one per update -- fewer syscalls and less per-frame
  work, and a reader that keeps up is not mistaken for a slow one.
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

from sync.errors import ConnectionClosed
from sync.limits import SyncLimits, TokenBucket
from sync.permission import Permission
from sync.protocol import AwarenessEntry, AwarenessUpdate, SyncUpdate, encode
from sync.transport import CloseCode, Transport

__all__ = ["Connection"]

log = logging.getLogger(__name__)

FrameHandler = Callable[["Connection", bytes], Awaitable[int]]


@dataclass(frozen=True, slots=True)
class _Out:
    """A queued frame; for a document update or awareness message also its payload, so
    that consecutive ones can be merged."""

    frame: bytes
    update: bytes | None = None
    awareness: tuple[AwarenessEntry, ...] | None = None


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
        self, transport: Transport, permission: Permission, key: str, limits: SyncLimits
    ) -> None:
        self.transport = transport
        self.permission = permission
        #: App-chosen key; several connections may share one (e.g. a principal's tabs).
        self.key = key
        self._limits = limits
        self._queue: deque[_Out] = deque()
        self._queued_bytes = 0
        self._wakeup = anyio.Event()
        self._scope: anyio.CancelScope | None = None
        self._messages = TokenBucket(
            limits.max_messages_per_second, limits.max_messages_per_second * limits.burst_seconds
        )
        self._bytes = TokenBucket(
            limits.max_bytes_per_second, limits.max_bytes_per_second * limits.burst_seconds
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
        self._queue.append(_Out(frame, update, awareness))
        self._queued_bytes += len(frame)
        self._wakeup.set()

    def abort(self, code: int, reason: str) -> None:
        """Close this connection as soon as possible (idempotent: the first reason wins)."""
        if self.close_code is None:
            self.close_code, self.close_reason = int(code), reason
            self._queue.clear()
            self._queued_bytes = 0
        if self._scope is not None:
            self._scope.cancel()

    # -- the connection's life ------------------------------------------------------

    async def _send_loop(self) -> None:
        while True:
            while not self._queue:
                self._wakeup = anyio.Event()
                await self._wakeup.wait()
            frame = self._next_frame()
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

    def _pop(self) -> _Out:
        out = self._queue.popleft()
        self._queued_bytes -= len(out.frame)
        return out

    def _next_frame(self) -> bytes:
        """The next frame to send: the queue's head, merged with the queued messages of
        the same kind right behind it (bounded by the message size cap)."""
        head = self._pop()
        limit = self._limits.max_message_bytes
        if head.update is not None:
            parts, size = [head.update], len(head.frame)
            while self._queue and (update := self._queue[0].update) is not None and size < limit:
                size += len(self._pop().frame)
                parts.append(update)
            if len(parts) == 1:
                return head.frame
            merged = _merged_update(parts)
            if merged is not None:
                return encode(SyncUpdate(merged))
            # Could not merge (should not happen with our own encoder's updates): put the
            # rest back, send the head as it is.
            for part in reversed(parts[1:]):
                frame = encode(SyncUpdate(part))
                self._queue.appendleft(_Out(frame, part))
                self._queued_bytes += len(frame)
            return head.frame
        if head.awareness is not None and self._queue and self._queue[0].awareness is not None:
            latest = {e.client_id: e for e in head.awareness}
            size = len(head.frame)
            while self._queue and self._queue[0].awareness is not None and size < limit:
                nxt = self._pop()
                size += len(nxt.frame)
                for e in nxt.awareness or ():
                    latest.pop(e.client_id, None)
                    latest[e.client_id] = e  # the newest entry per client, in order
            return encode(AwarenessUpdate(tuple(latest.values())))
        return head.frame

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
