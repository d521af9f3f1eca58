"""After a commit that may have changed who can read what, tell the listeners which groups.

The live-sync server subscribes and re-checks its open sockets in those groups, so revoked or
narrowed access takes effect on open connections at once (not at the next reconnect). The
hook sits on the ORM session, so a service cannot forget to call it: any change to a group,
membership, folder, folder member or document marks its group.

This reaches listeners in this process; several app processes will relay it over Redis
(the scaling issue).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session, sessionmaker

from app.models import Document, Folder, FolderMember, Group, Membership

log = logging.getLogger("plein.access")
Listener = Callable[[set[str]], None]
_KEY = "plein_access_groups"


class AccessChanges:
    def __init__(self) -> None:
        self._listeners: list[Listener] = []

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def install(self, factory: sessionmaker[Session]) -> None:
        event.listen(factory, "before_flush", self._collect)
        event.listen(factory, "after_commit", self._publish)
        event.listen(factory, "after_rollback", self._forget)

    def _collect(self, session: Session, _context: Any, _instances: Any) -> None:
        groups: set[str] = session.info.setdefault(_KEY, set())
        for obj in (*session.new, *session.dirty, *session.deleted):
            if isinstance(obj, Group):
                groups.add(obj.id)
            elif isinstance(obj, Membership | Folder | Document):
                groups.add(obj.group_id)
            elif isinstance(obj, FolderMember):
                with session.no_autoflush:
                    folder = session.get(Folder, obj.folder_id)
                if folder is not None:
                    groups.add(folder.group_id)

    def _publish(self, session: Session) -> None:
        groups = session.info.pop(_KEY, set())
        groups.discard(None)
        if not groups:
            return
        for listener in list(self._listeners):
            try:
                listener(set(groups))
            except Exception:
                # A listener's failure must not turn a committed change into an error.
                log.exception("access change listener failed")

    def _forget(self, session: Session) -> None:
        session.info.pop(_KEY, None)
