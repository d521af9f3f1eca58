"""Resource limits of live sync, and the token bucket that enforces rates.

Every number here bounds memory or CPU an untrusted client can make the server
spend (SECURITY.md, "Live sync").  The app builds one ``SyncLimits`` from its
settings and hands it to the ``RoomManager``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["StorageGuard", "SyncLimits", "TokenBucket"]

MiB = 1 << 20

#: The app's say on storage (sync knows nothing of groups or quotas): called on the event
#: loop, cheaply, with the document id and the size of each update an editor sends; a
#: returned reason refuses the update and closes that connection (STORAGE_FULL).
StorageGuard = Callable[[str, int], str | None]


@dataclass(frozen=True, slots=True)
class SyncLimits:
    #: Largest incoming frame; bigger ones close the connection (1009).
    max_message_bytes: int = 1 * MiB
    #: Sustained incoming rate per connection; a client above it is read more slowly
    #: (its TCP window fills), never buffered.  Bursts up to ``burst_seconds`` worth.
    max_messages_per_second: float = 200.0
    max_bytes_per_second: float = 4 * MiB
    burst_seconds: float = 2.0
    #: Awareness (presence) messages per second per connection, bursts up to
    #: ``burst_seconds`` worth; above it the reader waits like above the message rate.
    #: A caret moving with every key press stays well below it; a flood does not.
    max_awareness_per_second: float = 20.0
    #: Encoded size of a document's full state; an update that would exceed it is refused.
    max_document_bytes: int = 16 * MiB
    #: Outbound queue per connection: a reader that lets it fill is disconnected
    #: (SLOW_CONSUMER).  Queued updates (and awareness messages) in a row are merged into
    #: one frame up to ``max_message_bytes`` and count as one message; bytes count as queued.
    max_queued_messages: int = 256
    max_queued_bytes: int = 8 * MiB
    #: Updates accepted but not yet on disk, per room: readers wait above this.
    max_pending_bytes: int = 8 * MiB
    #: Compact the log into a snapshot past either bound (and whenever the room empties).
    compact_after_records: int = 2_000
    compact_after_bytes: int = 4 * MiB
    #: Unload a room this long after its last connection left.
    idle_timeout: float = 30.0
    #: How long closing a socket may take before we stop waiting for it.
    close_timeout: float = 1.0

    def __post_init__(self) -> None:
        positive = {
            "max_message_bytes": self.max_message_bytes,
            "max_messages_per_second": self.max_messages_per_second,
            "max_bytes_per_second": self.max_bytes_per_second,
            "burst_seconds": self.burst_seconds,
            "max_awareness_per_second": self.max_awareness_per_second,
            "max_document_bytes": self.max_document_bytes,
            "max_queued_messages": self.max_queued_messages,
            "max_queued_bytes": self.max_queued_bytes,
            "max_pending_bytes": self.max_pending_bytes,
            "compact_after_records": self.compact_after_records,
            "compact_after_bytes": self.compact_after_bytes,
            "close_timeout": self.close_timeout,
        }
        for name, value in positive.items():
            if value <= 0:
                raise ValueError(f"SyncLimits.{name} must be positive")
        if self.idle_timeout < 0:
            raise ValueError("SyncLimits.idle_timeout must not be negative")
        # A frame the size cap allows must fit in the byte bucket, or the reader
        # would wait forever for tokens it can never have.
        if self.max_bytes_per_second * self.burst_seconds < self.max_message_bytes:
            raise ValueError("max_bytes_per_second * burst_seconds must be >= max_message_bytes")


class TokenBucket:
    """Classic token bucket: ``rate`` tokens/s, holding at most ``capacity``."""

    def __init__(
        self, rate: float, capacity: float, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.capacity = capacity
        self._clock = clock
        self._tokens = capacity
        self._last = clock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.rate)
        self._last = now

    def take(self, amount: float) -> float:
        """Spend ``amount`` tokens; return how long to wait (0.0 if none) before the
        caller may proceed.  The debt is recorded, so the wait is owed exactly once."""
        self._refill()
        self._tokens -= amount
        if self._tokens >= 0:
            return 0.0
        return -self._tokens / self.rate
