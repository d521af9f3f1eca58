"""In-memory transports: two connected ends, for tests and in-process clients.

Semantics follow a WebSocket: frames sent before ``close`` are still delivered,
then the peer's ``recv`` raises ConnectionClosed with the closer's code and
reason; sending on a closed connection raises ConnectionClosed.  ``max_buffer``
bounds each direction (0 = every send waits for the peer's recv), which is how
tests make a slow reader.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from sync.errors import ConnectionClosed

__all__ = ["MemoryTransport", "memory_transport_pair"]

_ABNORMAL = 1006


@dataclass(slots=True)
class _State:
    close: tuple[int, str] | None = None


class MemoryTransport:
    def __init__(
        self,
        tx: MemoryObjectSendStream[bytes],
        rx: MemoryObjectReceiveStream[bytes],
        state: _State,
    ) -> None:
        self._tx = tx
        self._rx = rx
        self._state = state

    def _closed_error(self) -> ConnectionClosed:
        code, reason = self._state.close or (_ABNORMAL, "")
        return ConnectionClosed(code, reason)

    @property
    def close_info(self) -> tuple[int, str] | None:
        """(code, reason) of the close, from whichever end closed first."""
        return self._state.close

    async def send(self, message: bytes) -> None:
        if self._state.close is not None:
            raise self._closed_error()
        try:
            await self._tx.send(bytes(message))
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            raise self._closed_error() from None

    async def recv(self) -> bytes:
        try:
            return await self._rx.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError):
            raise self._closed_error() from None

    async def close(self, code: int = 1000, reason: str = "") -> None:
        if self._state.close is None:
            self._state.close = (code, reason)
        # Our sending side ends (the peer drains what is buffered, then sees the
        # close); our receiving side ends (a peer blocked sending to us is released).
        self._tx.close()
        self._rx.close()


def memory_transport_pair(max_buffer: float = math.inf) -> tuple[MemoryTransport, MemoryTransport]:
    """Two connected transports (server end, client end)."""
    a_tx, b_rx = anyio.create_memory_object_stream[bytes](max_buffer)
    b_tx, a_rx = anyio.create_memory_object_stream[bytes](max_buffer)
    state = _State()
    return MemoryTransport(a_tx, a_rx, state), MemoryTransport(b_tx, b_rx, state)
