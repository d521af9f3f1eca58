"""Search in the application: the indexing worker that drains the outbox into the index, and
the access-filtered query.

One worker writes (whoosh has one writer): in-process by default, or ``plein indexer`` as a
separate process (``PLEIN_INDEXER=external``). The worker reads each document's *current* state
when its task runs, so retries are idempotent and several changes collapse into one. Access is
never copied into the index: queries carry the folders the person may read right now.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from concurrent.futures import CancelledError, ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from app.access import Access
from app.db import Database
from app.models import Blob, Comment, Document, DocumentVersion, IndexTask, utcnow
from app.search_outbox import enqueue
from app.services.blobs import open_blob
from app.settings import Settings
from indexer import (
    ExtractionStatus,
    IndexDocument,
    SearchFilters,
    SearchIndex,
    SearchResults,
    extract_text,
)
from storage import LocalBlobStore
from sync import render_text

log = logging.getLogger("plein.search")
NoteState = Callable[[str], bytes | None]
MAX_ATTEMPTS_BACKOFF = timedelta(hours=1)
MAX_PAGE_SIZE = 100  # the index answers at most this many hits per query


@dataclass
class WorkerDeps:
    db: Database
    settings: Settings
    store: LocalBlobStore
    index: SearchIndex
    note_state: NoteState


def _file_pages(deps: WorkerDeps, session: Session, doc: Document) -> tuple[list[str], str]:
    version = session.scalar(select(DocumentVersion).where(
        DocumentVersion.document_id == doc.id, DocumentVersion.number == doc.current_version))
    if version is None:
        return [], ""
    if version.size > deps.settings.index_max_file_bytes:
        return [], version.filename  # too large to extract: findable by its metadata
    blob = session.get_one(Blob, version.blob_id)
    with open_blob(deps.store, blob) as reader:
        data = b"".join(reader.iter_chunks())
    result = extract_text(data, filename=version.filename)
    if result.status is not ExtractionStatus.OK:
        log.info("document %s indexed by metadata only: %s", doc.id, result.reason)
        return [], version.filename
    return list(result.pages), version.filename


def build_document(deps: WorkerDeps, session: Session, doc: Document) -> IndexDocument:
    comments = list(session.scalars(select(Comment.body).where(
        Comment.document_id == doc.id, Comment.deleted_at.is_(None))))
    filename = ""
    if doc.kind == "note":
        state = deps.note_state(doc.id)
        pages = [render_text(state, max_depth=deps.settings.note_max_depth)] if state else []
    else:
        pages, filename = _file_pages(deps, session, doc)
    return IndexDocument(document_id=doc.id, folder_id=doc.folder_id, group_id=doc.group_id,
                         title=doc.title, kind=doc.kind, modified=doc.updated_at,
                         created=doc.created_at, pages=pages, comments=comments,
                         filename=filename, author=doc.created_by or "", mime=doc.mime)


def latest_note_version(db: Database, store: LocalBlobStore, document_id: str) -> bytes | None:
    """A note's newest saved version (for an indexer that does not own the live rooms)."""
    with db.read() as session:
        version = session.scalar(select(DocumentVersion)
                                 .where(DocumentVersion.document_id == document_id)
                                 .order_by(DocumentVersion.number.desc()).limit(1))
        if version is None:
            return None
        blob = session.get_one(Blob, version.blob_id)
        with open_blob(store, blob) as reader:
            return b"".join(reader.iter_chunks())


@dataclass(frozen=True)
class _Task:
    document_id: str
    queued_at: datetime
    attempts: int


_DELETE = "delete"
_NOTE = "note"


def _prepare(deps: WorkerDeps, task: _Task) -> IndexDocument | str:
    """One task's index document (files: extracted here, on an extraction worker), or
    ``_DELETE``, or ``_NOTE`` for a note (its live state is read on the loop's own thread)."""
    with deps.db.read() as session:
        doc = session.get(Document, task.document_id)
        if doc is None or doc.trashed_at is not None:
            return _DELETE
        if doc.kind == "note":
            return _NOTE
        return build_document(deps, session, doc)


def _build_note(deps: WorkerDeps, task: _Task) -> IndexDocument | str:
    with deps.db.read() as session:
        doc = session.get(Document, task.document_id)
        if doc is None or doc.trashed_at is not None:
            return _DELETE
        return build_document(deps, session, doc)


def run_once(deps: WorkerDeps, batch: int | None = None) -> int:
    """Index one batch of due tasks: up to ``batch`` (``index_batch_size``) of them, or as
    many as are ready after ``index_batch_ms``; one index commit for the batch. Returns how
    many tasks were handled (done, failed, or left for the next round).

    Files are extracted ``extract_workers`` at a time. A task is marked done only after the
    commit that holds it (a kill -9 before that leaves it queued: redone, and the index
    update is idempotent); one that fails gets a backoff and never holds up the others; one
    not reached within the time budget simply stays queued."""
    settings = deps.settings
    now = utcnow()
    with deps.db.read() as session:
        tasks = [_Task(t.document_id, t.queued_at, t.attempts) for t in session.scalars(
            select(IndexTask).where(IndexTask.not_before <= now)
            .order_by(IndexTask.queued_at).limit(batch or settings.index_batch_size))]
    if not tasks:
        return 0
    deadline = time.monotonic() + settings.index_batch_ms / 1000
    done: list[_Task] = []
    failed: list[tuple[_Task, str]] = []
    writer = deps.index.writer()
    try:
        with ThreadPoolExecutor(max_workers=settings.extract_workers,
                                thread_name_prefix="plein-extract") as pool:
            futures = [(task, pool.submit(_prepare, deps, task)) for task in tasks]
            # In task order, each as soon as it is ready: the extraction of the next files
            # (in the workers) overlaps the analysis of this one (here).
            for task, future in futures:
                if time.monotonic() > deadline:
                    future.cancel()  # not started: it stays queued for the next round
                try:
                    outcome = future.result()
                    if outcome == _NOTE:
                        outcome = _build_note(deps, task)
                    if isinstance(outcome, IndexDocument):
                        writer.add_or_update(outcome)
                    else:
                        writer.delete(task.document_id)
                except CancelledError:
                    continue
                except Exception as exc:  # one bad document must not stop the others
                    log.exception("indexing %s failed", task.document_id)
                    failed.append((task, type(exc).__name__))
                    continue
                done.append(task)
        writer.commit()
    except BaseException:
        writer.cancel()
        raise
    _settle(deps, done, failed)
    return len(tasks)


def _settle(deps: WorkerDeps, done: list[_Task], failed: list[tuple[_Task, str]]) -> None:
    """After the commit: done tasks leave the outbox, failed ones wait with a backoff."""
    with deps.db.write() as session:
        for task in done:
            row = session.get(IndexTask, task.document_id)
            # Re-queued while we worked (a newer change): keep it for the next round.
            if row is not None and row.queued_at <= task.queued_at:
                session.delete(row)
        for task, error in failed:
            row = session.get(IndexTask, task.document_id)
            if row is not None:
                row.attempts = task.attempts + 1
                row.not_before = utcnow() + min(timedelta(seconds=2 ** min(task.attempts, 12)),
                                                MAX_ATTEMPTS_BACKOFF)
                row.last_error = error


def pending(db: Database) -> int:
    with db.read() as session:
        return len(session.scalars(select(IndexTask.document_id)).all())


def all_documents(deps: WorkerDeps, yielded: set[str] | None = None
                  ) -> Iterator[IndexDocument]:
    """Every live document, each read when its turn comes; ``yielded`` collects their ids."""
    with deps.db.read() as session:
        ids = list(session.scalars(select(Document.id).where(Document.trashed_at.is_(None))))
    for document_id in ids:
        with deps.db.read() as session:
            doc = session.get(Document, document_id)
            if doc is not None and doc.trashed_at is None:
                if yielded is not None:
                    yielded.add(document_id)
                yield build_document(deps, session, doc)


def reindex(deps: WorkerDeps) -> int:
    """Rebuild into a new generation while searches keep answering from the old one; then
    re-queue what changed meanwhile (the worker wrote those to the old generation).

    "Changed" is decided by comparing, not only by timestamps: trash, restore and purge touch
    no ``updated_at``, so a document trashed during the rebuild would otherwise live on in the
    new generation after its task was done (found again by everyone who reads its folder)."""
    started = utcnow()
    indexed: set[str] = set()
    count = deps.index.rebuild(all_documents(deps, indexed))
    with deps.db.write() as session:
        live = set(session.scalars(select(Document.id).where(Document.trashed_at.is_(None))))
        changed = live ^ indexed  # created, trashed, restored or purged meanwhile
        changed |= set(session.scalars(select(Document.id).where(Document.updated_at >= started)))
        changed |= set(session.scalars(select(Comment.document_id).where(or_(
            Comment.created_at >= started, Comment.edited_at >= started,
            Comment.deleted_at >= started))))
        if changed:
            enqueue(session, changed)
    return count


# -- querying -------------------------------------------------------------------------------

@dataclass(frozen=True)
class SearchRequest:
    q: str
    group: str | None = None
    folder: str | None = None
    kind: str | None = None
    author: str | None = None
    sort: str = "relevance"
    limit: int = 20
    offset: int = 0


def search(index: SearchIndex, access: Access, request: SearchRequest) -> SearchResults:
    """Only what the caller may read now: the folder set is computed here, at query time, and
    applied by the index inside the query (before counts, snippets and suggestions)."""
    access.require_user()
    readable = access.readable_folder_ids_all()
    filters = SearchFilters(
        group_ids={request.group} if request.group else None,
        folder_ids={request.folder} if request.folder else None,
        kinds={request.kind} if request.kind else None,
        authors={request.author} if request.author else None,
    )
    sort: Sort = "newest" if request.sort in ("date", "newest") else (
        "oldest" if request.sort == "oldest" else "relevance")
    my_groups = [gid for gid in access.memberships() if access.group_role(gid)]
    hidden = stale_in_index(access.db, readable, my_groups)
    if not hidden:
        return index.search(request.q, readable_folder_ids=readable, filters=filters, sort=sort,
                            page=request.offset // request.limit + 1, page_size=request.limit)
    # Rare and brief (until the worker catches up): fetch the page plus room for the hidden
    # documents from the top, and leave those out of the hits and the total.
    window = request.offset + request.limit + len(hidden)
    if window > MAX_PAGE_SIZE:  # deep pages: leave them out of this page only
        found = index.search(request.q, readable_folder_ids=readable, filters=filters,
                             sort=sort, page=request.offset // request.limit + 1,
                             page_size=request.limit)
        hits = [h for h in found.hits if h.document_id not in hidden]
        return replace(found, hits=tuple(hits),
                       total=max(0, found.total - (len(found.hits) - len(hits))))
    found = index.search(request.q, readable_folder_ids=readable, filters=filters, sort=sort,
                         page=1, page_size=window)
    hits = [h for h in found.hits if h.document_id not in hidden]
    return replace(found, hits=tuple(hits[request.offset:request.offset + request.limit]),
                   total=max(0, found.total - (len(found.hits) - len(hits))),
                   page=request.offset // request.limit + 1, page_size=request.limit)


def stale_in_index(db: Session, readable: set[str], group_ids: list[str]) -> set[str]:
    """Documents the index may still show in a readable folder although they are gone from it:
    trashed, purged or moved out, with their index task still pending. Access checks are live
    but the index learns of a document's own trash or move only when the worker runs, and
    "in the trash" must mean "not found" at once."""
    # Documents never change groups, so only the caller's groups matter (and purged ones,
    # whose group is gone with their row).
    rows = db.execute(select(IndexTask.document_id, Document.folder_id, Document.trashed_at)
                      .outerjoin(Document, Document.id == IndexTask.document_id)
                      .where(or_(Document.id.is_(None), Document.group_id.in_(group_ids))))
    return {document_id for document_id, folder_id, trashed_at in rows
            if folder_id is None or trashed_at is not None or folder_id not in readable}


Sort = Literal["relevance", "newest", "oldest"]
