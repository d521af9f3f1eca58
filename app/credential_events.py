"""After a commit that ends credentials, tell the listeners which ones.

Live channels (sync sockets, discussion streams) remember the credential that opened them: a
browser session (``session:<sha256 of the cookie>``) or a personal access token
(``token:<id>``). Whatever ends a credential -- signing out, a password change (which revokes
every session), revoking a token, deleting or deactivating an account (``user:<id>``: every
credential of that person) -- is seen here, on the ORM session, so no code path can forget
to say so: ORM deletes and changes in ``before_flush``, bulk ``delete(...)``/``update(...)``
statements in ``do_orm_execute`` (the rows they will touch are read first, in the same
transaction). The keys are published after the commit, from the committing thread; a
rollback forgets them. Listeners must not block for long: the live-sync server closes the
affected sockets before the request that ended the credential answers.

Anything that slips past (raw SQL, an expired session, another process) is caught by the
live-sync server's periodic re-check (``PLEIN_LIVE_CHECK_SECONDS``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import event, inspect, select
from sqlalchemy.orm import ORMExecuteState, Session

from app.models import ApiToken, User, WebSession

log = logging.getLogger("plein.credentials")
Listener = Callable[[frozenset[str]], None]
_KEY = "plein_ended_credentials"


def session_key(token_hash: str) -> str:
    return f"session:{token_hash}"


def token_key(token_id: str) -> str:
    return f"token:{token_id}"


def user_key(user_id: str) -> str:
    return f"user:{user_id}"


def ends(credential: str, user_id: str, ended: Iterable[str]) -> bool:
    """Whether ``ended`` ends ``credential`` (of ``user_id``)."""
    found = set(ended)
    return credential in found or user_key(user_id) in found


class CredentialHub:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._listeners: list[Listener] = []

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        with self._lock:
            self._listeners.append(listener)

        def unsubscribe() -> None:
            with self._lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return unsubscribe

    def publish(self, keys: frozenset[str]) -> None:
        with self._lock:
            found = list(self._listeners)
        for listener in found:
            try:
                listener(keys)
            except Exception:
                # A listener's failure must not turn a committed change into an error.
                log.exception("credential listener failed")


hub = CredentialHub()


def _found(session: Session) -> set[str]:
    found: set[str] = session.info.setdefault(_KEY, set())
    return found


def _collect(session: Session, _context: Any, _instances: Any) -> None:
    for obj in session.deleted:
        if isinstance(obj, WebSession):
            _found(session).add(session_key(obj.token_hash))
        elif isinstance(obj, ApiToken):
            _found(session).add(token_key(obj.id))
        elif isinstance(obj, User):
            _found(session).add(user_key(obj.id))
    for obj in session.dirty:
        if isinstance(obj, User) and not obj.is_active \
                and inspect(obj).attrs.is_active.history.has_changes():
            _found(session).add(user_key(obj.id))


def _on_execute(state: ORMExecuteState) -> None:
    if not (state.is_delete or state.is_update):
        return
    statement: Any = state.statement
    # By name: an ORM statement's table is an annotated copy of the mapped one.
    table = getattr(getattr(statement, "table", None), "name", None)
    key: Callable[[str], str]
    where = getattr(statement, "whereclause", None)
    if table == WebSession.__tablename__ and state.is_delete:
        column, key = WebSession.token_hash, session_key
    elif table == ApiToken.__tablename__ and state.is_delete:
        column, key = ApiToken.id, token_key
    elif table == User.__tablename__ and (state.is_delete
                                          or "is_active" in _updated(statement)):
        column, key = User.id, user_key
    else:
        return
    query = select(column) if where is None else select(column).where(where)
    rows = state.session.execute(query, execution_options={"plein_credential_probe": True})
    _found(state.session).update(key(value) for value in rows.scalars())


def _updated(statement: Any) -> set[str]:
    values = getattr(statement, "_values", None) or {}
    return {getattr(k, "key", str(k)) for k in values}


def _publish(session: Session) -> None:
    found = session.info.pop(_KEY, None)
    if found:
        hub.publish(frozenset(found))


def _forget(session: Session) -> None:
    session.info.pop(_KEY, None)


# On the Session class: every session of the app (page, API, CLI) carries the hook.
if not event.contains(Session, "before_flush", _collect):
    event.listen(Session, "before_flush", _collect)
    event.listen(Session, "do_orm_execute", _on_execute)
    event.listen(Session, "after_commit", _publish)
    event.listen(Session, "after_rollback", _forget)
