"""One upload, from the first byte to the answer: the JSON API (``app.http.api``) and the
pages' form posts (``app.pages.uploads``) run the same steps, in the same order.

1. ``precheck`` in a read transaction, before a byte is read: who (signed in), CSRF, the
   endpoint's own refusals (no such folder, no right, quota already full);
2. each file part streams into an encrypted blob (never plaintext on disk,
   :mod:`app.http.uploads`);
3. ``accept`` may refuse the files as received (a page wants one file, got several);
4. ``store`` makes the blobs visible in one write transaction;
5. if anything after step 2 fails, every received blob is deleted at once (no row refers to
   it; the orphan collector would get it later anyway); after the commit, the blobs ``store``
   did not use (the same bytes as the current version) are deleted too.

Refusals are answers, not exceptions: :func:`run_upload` returns :class:`Refused` (with the
step that refused) for an :class:`~app.errors.HTTPError`, and each caller renders it its own
way (a JSON error, the sign-in page, the form again with a message). Any other exception
propagates, after the clean-up.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from starlette.requests import Request

from app.errors import HTTPError, NotSignedIn
from app.http.context import Ctx, authenticate, check_csrf, in_transaction
from app.http.uploads import delete_blobs, receive_files
from app.runtime import Runtime
from app.services.documents import ReceivedFile

T = TypeVar("T")


class Step(enum.Enum):
    PRECHECK = "precheck"  # nothing was read or stored
    RECEIVE = "receive"  # while the body streamed in (what it stored is removed)
    ACCEPT = "accept"  # the files as received were refused (removed)
    STORE = "store"  # the write transaction failed (the received blobs are removed)


@dataclass(frozen=True)
class Stored(Generic[T]):
    """What the write step made of the received files."""

    answer: T  # what the caller shows: an API body, a page's redirect target
    # False: the upload changed nothing (the same bytes as the current version).
    created: bool = True
    # Blobs no row refers to: deleted after the commit.
    unused: tuple[ReceivedFile, ...] = ()


@dataclass(frozen=True)
class Uploaded(Generic[T]):
    stored: Stored[T]
    ctx: Ctx  # the write transaction's context (its cookies go on the response)


@dataclass(frozen=True)
class Refused:
    error: HTTPError
    step: Step


@dataclass(frozen=True)
class UploadSteps(Generic[T]):
    """One upload endpoint's own parts; :func:`run_upload` does the rest."""

    precheck: Callable[[Ctx], None]
    store: Callable[[Ctx, list[ReceivedFile]], Stored[T]]
    csrf_token: str | None  # as submitted: a header (API) or the form action's query (pages)
    csrf_always: bool = False  # also without a session cookie (forms)
    max_files: int = 1
    accept: Callable[[list[ReceivedFile]], None] | None = None


def _signed_in(ctx: Ctx) -> None:
    authenticate(ctx)
    if ctx.user is None:
        raise NotSignedIn()


async def run_upload(request: Request, steps: UploadSteps[T]) -> Uploaded[T] | Refused:
    runtime: Runtime = request.app.state.runtime
    store = runtime.blob_store

    def check(ctx: Ctx) -> None:
        _signed_in(ctx)
        check_csrf(ctx, steps.csrf_token, always=steps.csrf_always)
        steps.precheck(ctx)

    try:
        await in_transaction(request, write=False, fn=check)
    except HTTPError as exc:
        return Refused(exc, Step.PRECHECK)
    try:
        received = await receive_files(request, store, runtime.settings.max_upload_bytes,
                                       max_files=steps.max_files)
    except HTTPError as exc:
        return Refused(exc, Step.RECEIVE)
    if steps.accept is not None:
        try:
            steps.accept(received)
        except HTTPError as exc:
            await delete_blobs(store, received)
            return Refused(exc, Step.ACCEPT)

    def write(ctx: Ctx) -> Stored[T]:
        _signed_in(ctx)
        return steps.store(ctx, received)

    try:
        stored, ctx = await in_transaction(request, write=True, fn=write)
    except BaseException as exc:
        await delete_blobs(store, received)
        if isinstance(exc, HTTPError):
            return Refused(exc, Step.STORE)
        raise
    await delete_blobs(store, list(stored.unused))
    return Uploaded(stored, ctx)
