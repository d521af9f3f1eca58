"""After a commit that ends credentials, tell the listeners which ones.

Live channels (sync sockets, discussion streams) remember the credential that opened them: a
browser session (``session:<sha256 of the cookie>``) or a personal access token
(``token:<id>``). Whatever ends a credential -- signing out, a password change (which revokes
every session), revoking a token, deleting or deactivating an account (``user:<id>``: every
credential of that person) -- is seen here, on the ORM session, so no code path can forget
to say so: ORM deletes and changes in the flush (:func:`ended_in_flush`), bulk
``delete(...)``/``update(...)`` statements as they execute (:func:`ended_by_statement`).
The ``credentials`` topic of :class:`app.db_hooks.SessionHooks` publishes the keys after
the commit, from the committing thread; a rollback forgets them. Listeners must not block
for long: the live-sync server closes the affected sockets before the request that ended
the credential answers.

Anything that slips past (raw SQL, an expired session, another process) is caught by the
live-sync server's periodic re-check (``PLEIN_LIVE_CHECK_SECONDS``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from sqlalchemy import inspect, select
from sqlalchemy.orm import ORMExecuteState, Session

from app.models import ApiToken, User, WebSession


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


def ended_in_flush(session: Session) -> Iterator[str]:
    """Credentials that the ORM changes of this flush end."""
    for obj in session.deleted:
        if isinstance(obj, WebSession):
            yield session_key(obj.token_hash)
        elif isinstance(obj, ApiToken):
            yield token_key(obj.id)
        elif isinstance(obj, User):
            yield user_key(obj.id)
    for obj in session.dirty:
        if isinstance(obj, User) and not obj.is_active \
                and inspect(obj).attrs.is_active.history.has_changes():
            yield user_key(obj.id)


def ended_by_statement(state: ORMExecuteState) -> list[str]:
    """Credentials a bulk ``delete(...)``/``update(...)`` is about to end: its rows are read
    first, in the same transaction."""
    if not (state.is_delete or state.is_update):
        return []
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
        return []
    query = select(column) if where is None else select(column).where(where)
    rows = state.session.execute(query, execution_options={"plein_credential_probe": True})
    return [key(value) for value in rows.scalars()]


def _updated(statement: Any) -> set[str]:
    values = getattr(statement, "_values", None) or {}
    return {getattr(k, "key", str(k)) for k in values}
