"""Which documents' discussions a transaction changed: every comment added, changed or
deleted marks its document. Announced after the commit by the ``discussions`` topic of
:class:`app.db_hooks.SessionHooks`; the live discussion stream (:mod:`app.pages.discussions`)
listens per document and hands the id to its event loop with ``call_soon_threadsafe``."""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy.orm import Session

from app.models import Comment


def changed_documents(session: Session) -> Iterator[str]:
    for obj in (*session.new, *session.dirty, *session.deleted):
        if isinstance(obj, Comment) and obj.document_id:
            yield obj.document_id
