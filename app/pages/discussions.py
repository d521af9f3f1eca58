"""The discussion beside every document (file and note pages): threads with replies, posting,
replying, editing, resolving and deleting with plain forms (no JavaScript needed), the panel as
a fragment for live refreshes, and the live stream itself.

Live updates use Server-Sent Events (``GET /documents/{id}/events``, ``text/event-stream``)
rather than the note's WebSocket room:

- comment notices are one-way, server → browser; SSE is exactly that, over plain HTTP, and
  the browser's ``EventSource`` reconnects by itself (also through proxies that cut idle
  connections), with no protocol of our own to maintain;
- the y-websocket room stays strictly the CRDT protocol (sync, update, awareness): stock Yjs
  clients connect to it, and file pages, which have no room at all, get live comments too.

The stream is fed by :mod:`app.events` (published after the commit of any comment change) and
carries no comment content: it says "the discussion changed" and the page fetches the
fragment, rendered and access-checked like the page itself. Access is checked when the
stream opens and again before every message it sends (a notice or the keep-alive), so
someone who loses access stops receiving within one message.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from app import credential_events
from app.access import Action
from app.errors import HTTPError, NotSignedIn
from app.events import hub
from app.http.context import Ctx, authenticate, credential_of, in_transaction
from app.models import Comment, Document, User
from app.pages.forms import N_, FormError
from app.pages.framework import Page, PageCtx, PageResult, Redirect, page
from app.pages.render import gettext
from app.services import discussions, documents, markdown

THREADS_SHOWN = 200
KEEPALIVE_SECONDS = 20.0
MAX_UNNOTIFIED_SHOWN = 10



@dataclass
class CommentView:
    """One comment as the panel shows it."""

    comment: Comment
    author: str | None
    html: Markup
    can_edit: bool
    can_delete: bool
    can_resolve: bool = False
    replies: list[CommentView] = field(default_factory=list)

    @property
    def id(self) -> str:
        return self.comment.id

    @property
    def deleted(self) -> bool:
        return self.comment.deleted_at is not None

    @property
    def resolved(self) -> bool:
        return self.comment.resolved_at is not None


def thread_views(p: PageCtx, doc: Document) -> tuple[int, list[CommentView]]:
    """The document's threads (oldest first) with the reader's rights, in a fixed number of
    queries: threads, replies, people, mentioned members."""
    total, items = discussions.threads(p.db, p.access, doc, limit=THREADS_SHOWN, offset=0)
    everything = [c for t in items for c in (t.root, *t.replies)]
    users: dict[str, User] = discussions.people(p.db, [c.author_id for c in everything])
    named = discussions.mention_people(p.db, doc.group_id,
                                       [c.body for c in everything if c.deleted_at is None])
    me = p.access.require_user().id
    may_write = p.access.can_document(Action.DOCUMENT_WRITE, doc)

    def one(comment: Comment) -> CommentView:
        deleted = comment.deleted_at is not None
        author = users.get(comment.author_id or "")
        # markdown.render sanitizes with nh3 (no raw HTML, safe URL schemes only): the result
        # is safe to insert as HTML, which is what Markup says.
        html = Markup("") if deleted else Markup(markdown.render(comment.body, named))  # noqa: S704
        return CommentView(
            comment=comment, author=author.name if author is not None else None, html=html,
            can_edit=not deleted and comment.author_id == me,
            can_delete=not deleted and discussions.may_delete(p.access, comment, doc),
            can_resolve=not deleted and (comment.author_id == me or may_write))

    views = []
    for thread in items:
        root = one(thread.root)
        root.replies = [one(r) for r in thread.replies]
        views.append(root)
    return total, views


def discussion_context(p: PageCtx, doc: Document) -> dict[str, Any]:
    """What the discussion panel needs on a document page (error state comes from the page's
    own ``error``/``error_form``/``values``)."""
    total, threads = thread_views(p, doc)
    query = p.ctx.conn.query_params
    unnotified = [m[:200] for m in query.getlist("unnotified")][:MAX_UNNOTIFIED_SHOWN]
    return {"threads": threads, "threads_total": total, "unnotified": unnotified,
            "comment_max": p.settings.comment_max_chars}


# -- forms ----------------------------------------------------------------------------------

def _message(p: PageCtx, exc: HTTPError) -> str:
    if exc.status == 429:
        return gettext(p.language, N_("You are posting quickly; wait a moment and try again."))
    if exc.code == "comment_too_long":
        return gettext(p.language, N_("The comment is too long: at most %(n)s characters.")) \
            % {"n": p.settings.comment_max_chars}
    if exc.field == "body":
        return gettext(p.language, N_("Write something first."))
    return gettext(p.language, exc.message)


def _attempt(p: PageCtx, action: Any) -> Any:
    """Run a service call in a savepoint; a refusal becomes a message for the page (and the
    savepoint makes sure nothing half-done is committed)."""
    savepoint = p.db.begin_nested()
    try:
        result = action()
    except HTTPError as exc:
        savepoint.rollback()
        p.access.forget()
        return FormError(_message(p, exc), exc.field, exc.status)
    savepoint.commit()
    return result


def _back(p: PageCtx, doc: Document, error: FormError, form: str,
          values: dict[str, str]) -> Page:
    from app.pages.documents import result_for

    return result_for(p, doc, error=error, form=form, values=values)


def _body(p: PageCtx) -> str:
    return p.form.get("body", "").replace("\r\n", "\n")


def post_comment(p: PageCtx, doc_id: str) -> PageResult:
    doc = documents.get_document(p.db, p.access, doc_id)
    body = _body(p)
    parent_id = p.form.get("parent_id") or None
    form = f"reply-{parent_id}" if parent_id else "comment"
    result = _attempt(p, lambda: discussions.create_comment(
        p.db, p.access, p.settings, doc, body=body, parent_id=parent_id))
    if isinstance(result, FormError):
        return _back(p, doc, result, form, {"body": body})
    query = urlencode([("unnotified", m) for m in result.unnotified_mentions])
    return Redirect(f"/documents/{doc.id}{'?' + query if query else ''}"
                    f"#comment-{result.comment.id}")


def edit_comment(p: PageCtx, cid: str) -> PageResult:
    comment, doc = discussions.get_comment(p.db, p.access, cid)
    body = _body(p)
    result = _attempt(p, lambda: discussions.edit_comment(p.db, p.access, p.settings, comment,
                                                          doc, body))
    if isinstance(result, FormError):
        return _back(p, doc, result, f"edit-{comment.id}", {"body": body})
    query = urlencode([("unnotified", m) for m in result])
    return Redirect(f"/documents/{doc.id}{'?' + query if query else ''}#comment-{comment.id}")


def resolve_comment(p: PageCtx, cid: str) -> PageResult:
    comment, doc = discussions.get_comment(p.db, p.access, cid)
    resolved = p.form.get("resolved") != "0"

    def apply() -> None:
        discussions.set_resolved(p.access, comment, doc, resolved)
        p.db.flush()

    result = _attempt(p, apply)
    if isinstance(result, FormError):
        return _back(p, doc, result, "discussion", {})
    return Redirect(f"/documents/{doc.id}#comment-{comment.id}")


def delete_comment(p: PageCtx, cid: str) -> PageResult:
    comment, doc = discussions.get_comment(p.db, p.access, cid)
    thread = comment.parent_id or comment.id
    result = _attempt(p, lambda: discussions.delete_comment(p.db, p.access, comment, doc))
    if isinstance(result, FormError):
        return _back(p, doc, result, "discussion", {})
    return Redirect(f"/documents/{doc.id}#discussion" if thread == comment.id
                    else f"/documents/{doc.id}#comment-{thread}")


def fragment(p: PageCtx, doc_id: str) -> PageResult:
    """The threads alone, for the live refresh (same rendering and checks as the page)."""
    doc = documents.get_document(p.db, p.access, doc_id)
    context: dict[str, Any] = {"doc": doc, **discussion_context(p, doc)}
    return Page("_discussion_threads.html", context)


# -- live stream ----------------------------------------------------------------------------

def _may_read(ctx: Ctx, doc_id: str) -> bool:
    authenticate(ctx)
    if ctx.user is None:
        return False
    try:
        documents.get_document(ctx.db, ctx.access, doc_id)
    except HTTPError:
        return False
    return True


def _sse(event: str, data: dict[str, Any]) -> str:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n"


async def events(request: Request) -> Response:
    doc_id = request.path_params["doc_id"]

    async def allowed() -> bool:
        result, _ctx = await in_transaction(request, write=False,
                                            fn=lambda ctx: _may_read(ctx, doc_id))
        return result

    def require(ctx: Ctx) -> tuple[str, str, str]:
        authenticate(ctx)
        if ctx.user is None:
            raise NotSignedIn()
        return (documents.get_document(ctx.db, ctx.access, doc_id).id, ctx.user.id,
                credential_of(ctx))

    (doc_id, user_id, credential), _ctx = await in_transaction(request, write=False,
                                                               fn=require)
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[str] = asyncio.Queue(maxsize=1)

    def offer(document_id: str) -> None:
        # Notices coalesce: one pending "changed" is enough for any number of changes.
        if queue.empty():
            queue.put_nowait(document_id)

    def listener(document_id: str) -> None:  # called from the committing thread
        loop.call_soon_threadsafe(offer, document_id)

    def ended(keys: frozenset[str]) -> None:  # called from the committing thread
        # The credential that opened the stream ended: wake it, so its access check
        # (before every message) ends it now rather than at the next keep-alive.
        if credential_events.ends(credential, user_id, keys):
            loop.call_soon_threadsafe(offer, doc_id)

    unsubscribe_comments = hub.subscribe(doc_id, listener)
    unsubscribe_credentials = credential_events.hub.subscribe(ended)

    def unsubscribe() -> None:
        unsubscribe_comments()
        unsubscribe_credentials()

    async def stream() -> AsyncIterator[str]:
        try:
            yield "retry: 3000\n" + _sse("ready", {"document_id": doc_id})
            while True:
                try:
                    await asyncio.wait_for(queue.get(), timeout=KEEPALIVE_SECONDS)
                    message = _sse("comments", {"document_id": doc_id})
                except TimeoutError:
                    message = ": keep-alive\n\n"
                if not await allowed():
                    yield _sse("gone", {"document_id": doc_id})
                    return
                yield message
        finally:
            unsubscribe()

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


def routes() -> list[BaseRoute]:
    post = ("POST",)
    return [
        page("/documents/{doc_id}/comments", post_comment, methods=post),
        page("/documents/{doc_id}/discussion", fragment),
        page("/comments/{cid}/edit", edit_comment, methods=post),
        page("/comments/{cid}/resolve", resolve_comment, methods=post),
        page("/comments/{cid}/delete", delete_comment, methods=post),
        Route("/documents/{doc_id}/events", events, methods=["GET"]),
    ]
