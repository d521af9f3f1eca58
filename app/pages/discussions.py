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

The stream is fed by :mod:`app.db_hooks` (published after the commit of any comment change) and
carries no comment content: it says "the discussion changed" and the page fetches the
fragment, rendered and access-checked like the page itself. Access is checked when the
stream opens and again before every message it sends (a notice or the keep-alive), so
someone who loses access stops receiving within one message.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from app import credential_events
from app.db_hooks import SessionHooks
from app.errors import HTTPError, NotSignedIn
from app.http.context import Ctx, authenticate, credential_of, in_transaction
from app.i18n import error_msgid
from app.pages.context import discussion_context, document_page_result
from app.pages.forms import N_, FormError, attempt
from app.pages.framework import Page, PageCtx, PageResult, Redirect, page
from app.pages.render import gettext
from app.services import discussions, documents

KEEPALIVE_SECONDS = 20.0
T = TypeVar("T")



# -- forms ----------------------------------------------------------------------------------

def _refused(p: PageCtx, exc: HTTPError) -> FormError:
    """A refusal of the discussion service in the words of the panel."""
    if exc.status == 429:
        message = gettext(p.language, N_("You are posting quickly; wait a moment and try again."))
    elif exc.code == "comment_too_long":
        message = gettext(p.language, N_("The comment is too long: at most %(n)s characters.")) \
            % {"n": p.settings.comment_max_chars}
    elif exc.field == "body":
        message = gettext(p.language, N_("Write something first."))
    else:
        message = gettext(p.language, error_msgid(exc))
    return FormError(message, exc.field, exc.status)


def _attempt(p: PageCtx, action: Callable[[], T]) -> T | FormError:
    return attempt(p, action, refuse=lambda exc: _refused(p, exc))


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
        return document_page_result(p, doc, error=result, form=form, values={"body": body})
    query = urlencode([("unnotified", m) for m in result.unnotified_mentions])
    return Redirect(f"/documents/{doc.id}{'?' + query if query else ''}"
                    f"#comment-{result.comment.id}")


def edit_comment(p: PageCtx, cid: str) -> PageResult:
    comment, doc = discussions.get_comment(p.db, p.access, cid)
    body = _body(p)
    result = _attempt(p, lambda: discussions.edit_comment(p.db, p.access, p.settings, comment,
                                                          doc, body))
    if isinstance(result, FormError):
        return document_page_result(p, doc, error=result, form=f"edit-{comment.id}",
                                    values={"body": body})
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
        return document_page_result(p, doc, error=result, form="discussion")
    return Redirect(f"/documents/{doc.id}#comment-{comment.id}")


def delete_comment(p: PageCtx, cid: str) -> PageResult:
    comment, doc = discussions.get_comment(p.db, p.access, cid)
    thread = comment.parent_id or comment.id
    result = _attempt(p, lambda: discussions.delete_comment(p.db, p.access, comment, doc))
    if isinstance(result, FormError):
        return document_page_result(p, doc, error=result, form="discussion")
    return Redirect(f"/documents/{doc.id}#discussion" if thread == comment.id
                    else f"/documents/{doc.id}#comment-{thread}")


def fragment(p: PageCtx, doc_id: str) -> PageResult:
    """The threads alone, for the live refresh (same rendering and checks as the page)."""
    doc = documents.get_document(p.db, p.access, doc_id)
    context: dict[str, Any] = {"doc": doc, **discussion_context(p, doc)}
    return Page("_discussion_threads.html", context)


# -- live stream ----------------------------------------------------------------------------

def _reader(ctx: Ctx, doc_id: str) -> tuple[str, str, str]:
    """(document, person, credential) of a signed-in reader of the document; else the refusal
    the page itself would give."""
    authenticate(ctx)
    if ctx.user is None:
        raise NotSignedIn()
    return (documents.get_document(ctx.db, ctx.access, doc_id).id, ctx.user.id,
            credential_of(ctx))


def _sse(event: str, data: dict[str, Any]) -> str:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n"


class _Wakeups:
    """What wakes a stream before its keep-alive: a change of the document's discussion, or the
    end of the credential that opened the stream (so its access check ends it now). Wake-ups
    coalesce: one pending is enough for any number of changes. The listeners are called from
    the committing threads; the stream waits on the event loop."""

    def __init__(self, hooks: SessionHooks, doc_id: str, user_id: str, credential: str
                 ) -> None:
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[None] = asyncio.Queue(maxsize=1)
        self._user_id = user_id
        self._credential = credential
        self._unsubscribe = (hooks.discussions.subscribe_key(doc_id, self._changed),
                             hooks.credentials.subscribe(self._ended))

    def _wake(self) -> None:
        if self._queue.empty():
            self._queue.put_nowait(None)

    def _changed(self, _document_id: str) -> None:
        self._loop.call_soon_threadsafe(self._wake)

    def _ended(self, keys: frozenset[str]) -> None:
        if credential_events.ends(self._credential, self._user_id, keys):
            self._loop.call_soon_threadsafe(self._wake)

    async def wait(self) -> bool:
        """True when woken, False when the keep-alive is due first."""
        try:
            await asyncio.wait_for(self._queue.get(), timeout=KEEPALIVE_SECONDS)
        except TimeoutError:
            return False
        return True

    def close(self) -> None:
        for unsubscribe in self._unsubscribe:
            unsubscribe()


async def events(request: Request) -> Response:
    (doc_id, user_id, credential), _ctx = await in_transaction(
        request, write=False, fn=lambda ctx: _reader(ctx, request.path_params["doc_id"]))
    wakeups = _Wakeups(request.app.state.runtime.hooks, doc_id, user_id, credential)

    async def allowed() -> bool:
        try:
            await in_transaction(request, write=False, fn=lambda ctx: _reader(ctx, doc_id))
        except HTTPError:
            return False
        return True

    async def stream() -> AsyncIterator[str]:
        try:
            yield "retry: 3000\n" + _sse("ready", {"document_id": doc_id})
            while True:
                woken = await wakeups.wait()
                message = _sse("comments", {"document_id": doc_id}) if woken \
                    else ": keep-alive\n\n"
                if not await allowed():
                    yield _sse("gone", {"document_id": doc_id})
                    return
                yield message
        finally:
            wakeups.close()

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
