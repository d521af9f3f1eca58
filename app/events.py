"""A tiny in-process publish/subscribe for "a document's discussion changed".

The hook sits on the ORM session (like :mod:`app.access_events`): ``before_flush`` notes the
document of every comment that is added, changed or deleted, and ``after_commit`` publishes
those document ids; a rollback forgets them. So a notice goes out only for changes that are
really stored, whichever code path made them (page form, JSON API, a future service), and
never before the commit that a listener's follow-up read would need to see.

Listeners are called from the committing (worker) thread and must not block: the live
discussion stream (:mod:`app.pages.discussions`) hands the id to its event loop with
``call_soon_threadsafe``. This reaches listeners in this process only; several app processes
would relay it over Redis (the scaling issue), as for access changes.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session

from app.models import Comment

log = logging.getLogger("plein.events")
Listener = Callable[[str], None]
_KEY = "plein_comment_documents"


class Hub:
    """Listeners per document id."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._listeners: dict[str, list[Listener]] = {}

    def subscribe(self, document_id: str, listener: Listener) -> Callable[[], None]:
        with self._lock:
            self._listeners.setdefault(document_id, []).append(listener)

        def unsubscribe() -> None:
            with self._lock:
                found = self._listeners.get(document_id, [])
                if listener in found:
                    found.remove(listener)
                if not found:
                    self._listeners.pop(document_id, None)

        return unsubscribe

    def listeners(self, document_id: str) -> int:
        with self._lock:
            return len(self._listeners.get(document_id, []))

    def publish(self, document_id: str) -> None:
        with self._lock:
            found = list(self._listeners.get(document_id, []))
        for listener in found:
            try:
                listener(document_id)
            except Exception:
                # A listener's failure must not turn a committed change into an error.
                log.exception("discussion listener failed")


hub = Hub()


def _collect(session: Session, _context: Any, _instances: Any) -> None:
    found: set[str] = session.info.setdefault(_KEY, set())
    for obj in (*session.new, *session.dirty, *session.deleted):
        if isinstance(obj, Comment) and obj.document_id:
            found.add(obj.document_id)


def _publish(session: Session) -> None:
    for document_id in sorted(session.info.pop(_KEY, set())):
        hub.publish(document_id)


def _forget(session: Session) -> None:
    session.info.pop(_KEY, None)


# On the Session class: every session of the app (page, API, CLI) carries the hook.
if not event.contains(Session, "before_flush", _collect):
    event.listen(Session, "before_flush", _collect)
    event.listen(Session, "after_commit", _publish)
    event.listen(Session, "after_rollback", _forget)
