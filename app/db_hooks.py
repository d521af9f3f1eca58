"""What one application instance watches on its database sessions, in one pattern.

A :class:`Topic` gathers keys while a transaction flushes (and, for bulk ``delete(...)`` /
``update(...)`` statements that never reach the flush, while they execute), announces them
once to its listeners after the commit, from the committing thread, and forgets them on a
rollback. So a notice goes out only for changes that are really stored, whichever code path
made them, and never before the commit that a listener's follow-up read needs to see. A
:class:`FlushHook` acts inside the flush instead (the search outbox writes its rows in the
same transaction).

The concerns are small functions in their own modules; :class:`SessionHooks` puts them
together for one application instance and installs them on that instance's session
factories (:meth:`app.db.Database.session_factories`). Nothing is installed at import time,
so two apps in one process (tests) never hear each other.

Listeners must not block for long and must not raise (a failure is logged: a listener's bug
never turns a committed change into an error). They reach this process only; several app
processes would relay the notices over Redis (the scaling issue).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Hashable, Iterable
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, Session, sessionmaker

from app import access_events, credential_events, discussion_events, search_outbox

if TYPE_CHECKING:
    from app.db import Database

log = logging.getLogger("plein.db_hooks")

K = TypeVar("K", bound=Hashable)
Factory = sessionmaker[Session]


class Topic(Generic[K]):
    """Keys of one concern, announced after each commit that produced any."""

    def __init__(self, name: str, collect: Callable[[Session], Iterable[K]], *,
                 probe: Callable[[ORMExecuteState], Iterable[K]] | None = None) -> None:
        self.name = name
        self._collect = collect
        self._probe = probe
        self._key = f"plein_topic_{name}"
        self._lock = threading.Lock()
        self._listeners: list[Callable[[frozenset[K]], None]] = []
        self._by_key: dict[K, list[Callable[[K], None]]] = {}

    # -- listeners --------------------------------------------------------------------------

    def subscribe(self, listener: Callable[[frozenset[K]], None]) -> Callable[[], None]:
        """``listener(keys)`` after every commit with keys; returns the unsubscribe."""
        with self._lock:
            self._listeners.append(listener)

        def unsubscribe() -> None:
            with self._lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return unsubscribe

    def subscribe_key(self, key: K, listener: Callable[[K], None]) -> Callable[[], None]:
        """``listener(key)`` after every commit that produced this one key."""
        with self._lock:
            self._by_key.setdefault(key, []).append(listener)

        def unsubscribe() -> None:
            with self._lock:
                found = self._by_key.get(key, [])
                if listener in found:
                    found.remove(listener)
                if not found:
                    self._by_key.pop(key, None)

        return unsubscribe

    def listeners(self, key: K) -> int:
        """How many listeners wait for ``key`` (for tests: none may leak)."""
        with self._lock:
            return len(self._by_key.get(key, []))

    def publish(self, keys: frozenset[K]) -> None:
        with self._lock:
            everything = list(self._listeners)
            by_key = [(key, list(self._by_key.get(key, ()))) for key in sorted(keys, key=str)]
        for listener in everything:
            self._call(listener, keys)
        for key, found in by_key:
            for each in found:
                self._call(each, key)

    def _call(self, listener: Callable[[Any], None], value: Any) -> None:
        try:
            listener(value)
        except Exception:
            # A listener's failure must not turn a committed change into an error.
            log.exception("%s listener failed", self.name)

    # -- session events -----------------------------------------------------------------------

    def install(self, factory: Factory) -> None:
        event.listen(factory, "before_flush", self._before_flush)
        if self._probe is not None:
            event.listen(factory, "do_orm_execute", self._on_execute)
        event.listen(factory, "after_commit", self._after_commit)
        event.listen(factory, "after_rollback", self._after_rollback)

    def _found(self, session: Session) -> set[K]:
        found: set[K] = session.info.setdefault(self._key, set())
        return found

    def _before_flush(self, session: Session, _context: Any, _instances: Any) -> None:
        self._found(session).update(self._collect(session))

    def _on_execute(self, state: ORMExecuteState) -> None:
        assert self._probe is not None  # noqa: S101 - listened to only with a probe
        keys = set(self._probe(state))
        if keys:
            self._found(state.session).update(keys)

    def _after_commit(self, session: Session) -> None:
        found = session.info.pop(self._key, None)
        if found:
            self.publish(frozenset(found))

    def _after_rollback(self, session: Session) -> None:
        session.info.pop(self._key, None)


class FlushHook:
    """``act(session)`` inside every flush: for work that belongs to the same transaction."""

    def __init__(self, act: Callable[[Session], None]) -> None:
        self._act = act

    def install(self, factory: Factory) -> None:
        event.listen(factory, "before_flush", self._before_flush)

    def _before_flush(self, session: Session, _context: Any, _instances: Any) -> None:
        self._act(session)


class SessionHooks:
    """The session hooks of one application instance (or one CLI command)."""

    def __init__(self) -> None:
        #: Document ids whose discussion changed (the live discussion stream).
        self.discussions: Topic[str] = Topic("discussions", discussion_events.changed_documents)
        #: Groups whose access may have changed (live sync re-checks its sockets).
        self.access: Topic[str] = Topic("access", access_events.changed_groups)
        #: Credentials that ended (live sync and discussion streams close what they opened).
        self.credentials: Topic[str] = Topic("credentials", credential_events.ended_in_flush,
                                             probe=credential_events.ended_by_statement)
        #: Index tasks queued in the transaction that changes a document.
        self.search_outbox = FlushHook(search_outbox.queue_changed)

    def install(self, db: Database) -> None:
        """On the sessions ``db`` hands out: the topics on every session (whatever
        transaction commits a change, it is announced); the outbox on write sessions only,
        so it can never turn a read transaction into a write."""
        readers, writers = db.session_factories
        self.install_on(readers, outbox=False)
        self.install_on(writers)

    def install_on(self, factory: Factory, *, outbox: bool = True) -> None:
        for topic in (self.discussions, self.access, self.credentials):
            topic.install(factory)
        if outbox:
            self.search_outbox.install(factory)
