"""What one connection may do in a room (decided by the app, per connection)."""

from __future__ import annotations

from enum import Enum

__all__ = ["Permission"]


class Permission(Enum):
    #: Receives the document and awareness, may send updates and awareness.
    EDIT = "edit"
    #: Receives everything, may send awareness only; its updates are dropped and
    #: answered with an auth "permission denied" message.
    READ = "read"
