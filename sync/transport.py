"""The transport seam: what a room needs from a socket, and nothing more.

The app adapts Starlette's WebSocket to this (binary frames in and out, its
disconnect exception turned into ``ConnectionClosed``); tests use
``sync.memory.memory_transport_pair``.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Protocol

from sync.errors import ConnectionClosed

__all__ = ["CloseCode", "ConnectionClosed", "Transport"]


class Transport(Protocol):
    async def send(self, message: bytes) -> None:
        """Send one binary frame; raise ConnectionClosed if the peer is gone."""

    async def recv(self) -> bytes:
        """Next binary frame; raise ConnectionClosed at the end of the connection."""

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close (idempotent).  Must not raise on an already closed connection."""


class CloseCode(IntEnum):
    """Close codes the server uses.  The y-websocket client (3.x) reconnects after any of
    them except 4400-4499, which it takes as final: FORBIDDEN and DOCUMENT_CLOSED are
    meant to be, a slow reader is not (4500-4599 = "try again later").  The app also refuses
    a reconnect at the handshake when access is gone."""

    NORMAL = 1000
    GOING_AWAY = 1001  # server shutting down / room unloaded
    INVALID_DATA = 1007  # malformed frame or update
    TOO_BIG = 1009  # frame over SyncLimits.max_message_bytes or document over its cap
    INTERNAL_ERROR = 1011  # durable write failed: nothing from this socket was acknowledged
    FORBIDDEN = 4403  # access revoked
    SLOW_CONSUMER = 4508  # outbound queue full: the client may reconnect and resync
    DOCUMENT_CLOSED = 4410  # the app closed the document (deleted, moved, access changed)
    STORAGE_FULL = 4413  # the group's storage quota is used up: final until space is freed
