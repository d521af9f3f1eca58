"""Queue search-index refreshes in the same transaction as the change that needs them.

A session hook (:mod:`app.db_hooks`), so no service can forget it: any new, changed or
deleted document (including its own trash, restore and move), new version or changed comment
upserts an :class:`IndexTask` for its document inside the same flush. Access is *not* indexed
(search filters by the folders a person may read at query time), so folder moves, folder
trash and access changes need no task.
Live note edits change no row: the live-sync glue queues a task when an editor's socket closes.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.models import Comment, Document, DocumentVersion, IndexTask, new_id, utcnow


def queue_changed(session: Session) -> None:
    """In the flush (the outbox hook of :class:`app.db_hooks.SessionHooks`): a task for every
    document this flush creates, changes or deletes, or whose versions or comments it does."""
    ids: set[str] = set()
    for obj in (*session.new, *session.dirty, *session.deleted):
        if isinstance(obj, Document):
            if obj.id is None:
                obj.id = new_id()  # the column default would run only at INSERT, too late
            ids.add(obj.id)
        elif isinstance(obj, DocumentVersion | Comment):
            ids.add(obj.document_id)
    if ids:
        enqueue(session, ids)


def enqueue(session: Session, document_ids: set[str]) -> None:
    now = utcnow()
    with session.no_autoflush:
        for document_id in document_ids:
            task = session.get(IndexTask, document_id)
            if task is None:
                session.add(IndexTask(document_id=document_id, queued_at=now, not_before=now,
                                      attempts=0))
            elif task not in session.deleted:
                task.queued_at, task.not_before, task.attempts = now, now, 0
