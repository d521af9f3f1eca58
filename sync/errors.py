"""Exceptions raised by the sync package.

Everything raised on purpose derives from one base::

    SyncError
    ├── ProtocolError        a frame that is not a well-formed y-websocket message
    │                        (truncated, overflowing varUint, oversized length claim,
    │                        unknown type, invalid UTF-8/JSON); also a ValueError
    ├── ConnectionClosed     the transport ended (carries the close code and reason)
    ├── InvalidDocumentId    a document id outside [A-Za-z0-9_-]{1,128}; also a ValueError
    ├── DocumentTooLarge     an update would grow the document past SyncLimits.max_document_bytes
    ├── StorageFull          the app's storage guard refused an update (group quota used up)
    ├── DocumentCorrupt      stored state that cannot be loaded (manifest, snapshot or log)
    └── RoomUnavailable      the room failed (e.g. a durable write failed) or the manager
                             is not running; the caller may retry later

Storage failures underneath (``storage.StorageError``) are wrapped or re-raised as
they are; none of the messages contain document content.
"""

from __future__ import annotations

__all__ = [
    "ConnectionClosed",
    "DocumentCorrupt",
    "DocumentTooLarge",
    "InvalidDocumentId",
    "ProtocolError",
    "RoomUnavailable",
    "StorageFull",
    "SyncError",
]


class SyncError(Exception):
    """Base class of every error the sync package raises deliberately."""


class ProtocolError(SyncError, ValueError):
    """Malformed or refused y-websocket input."""


class ConnectionClosed(SyncError):
    """The other end closed the connection (or it broke)."""

    def __init__(self, code: int = 1000, reason: str = "") -> None:
        super().__init__(f"connection closed ({code}{': ' + reason if reason else ''})")
        self.code = code
        self.reason = reason


class InvalidDocumentId(SyncError, ValueError):
    """A document id that could not be a directory name we generated."""


class DocumentTooLarge(SyncError):
    """Applying the update would exceed the document size cap."""


class StorageFull(SyncError):
    """The app's storage guard refused an update (the group's quota is used up)."""


class DocumentCorrupt(SyncError):
    """The stored document cannot be loaded."""


class RoomUnavailable(SyncError):
    """The room cannot take work now (failed durable write, shutting down)."""
