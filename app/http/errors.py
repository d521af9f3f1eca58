"""One table that turns exceptions into responses: the JSON error shape of API.md under
``/api/`` (and for WebSocket-less API clients), an HTML error page everywhere else."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy.exc import IntegrityError, OperationalError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from app.errors import (
    BadRequest,
    Conflict,
    HTTPError,
    MethodNotAllowed,
    NotFound,
    NotSignedIn,
    PleinError,
    RateLimited,
)
from app.i18n import N_
from storage import StorageError

log = logging.getLogger("plein.http")

ErrorPage = Callable[[Request, HTTPError, dict[str, str]], Response]

_STARLETTE = {400: BadRequest, 401: NotSignedIn, 404: NotFound, 405: MethodNotAllowed,
              409: Conflict}


def is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/") or request.url.path == "/healthz"


def error_body(exc: HTTPError) -> dict[str, Any]:
    error: dict[str, Any] = {"code": exc.code, "message": exc.message}
    if exc.field:
        error["field"] = exc.field
    error.update(exc.extra)
    return {"error": error}


def render(request: Request, exc: HTTPError) -> Response:
    headers = {}
    if isinstance(exc, RateLimited):
        headers["Retry-After"] = str(exc.retry_after)
    if is_api(request):
        return JSONResponse(error_body(exc), status_code=exc.status, headers=headers)
    # The pages' error page is handed in by create_app (app.state.error_page): the HTTP layer
    # sits below the pages and never imports them.
    html_page: ErrorPage | None = getattr(request.app.state, "error_page", None)
    if html_page is None:
        return PlainTextResponse(exc.message, status_code=exc.status, headers=headers)
    return html_page(request, exc, headers)


async def on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPError)  # noqa: S101 - registered for HTTPError only
    return render(request, exc)


async def on_starlette_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)  # noqa: S101 - registered for HTTPException only
    cls = _STARLETTE.get(exc.status_code)
    err = cls() if cls else HTTPError(str(exc.detail))
    if cls is None:
        err.status = exc.status_code
        err.code = "http_error"
    return render(request, err)


async def on_integrity_error(request: Request, exc: Exception) -> Response:
    # Two requests raced for the same unique row: the loser gets a clear 409, not a 500.
    log.info("integrity error turned into 409: %s", exc)
    return render(request, Conflict(N_("This conflicts with a change made at the same time; "
                                    "try again."), code="concurrent_change"))


async def on_operational_error(request: Request, exc: Exception) -> Response:
    log.exception("database error")
    err = HTTPError(N_("The database is busy; try again in a moment."), code="database_busy")
    err.status = 503
    return render(request, err)


async def on_storage_error(request: Request, exc: Exception) -> Response:
    # A blob write that could not be made durable (EIO/ENOSPC from write or fsync), an
    # unreadable blob file or key: the server side failed, not the request. 503 tells clients
    # the upload was *not* stored and may be retried later; the previous version is untouched
    # because nothing was made visible. The message never carries paths, keys or plaintext.
    log.error("storage error: %s", exc, exc_info=exc)
    err = HTTPError(N_("The file store could not complete this request; nothing was changed. "
                    "Try again later."), code="storage_unavailable")
    err.status = 503
    return render(request, err)


async def on_unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unexpected error", exc_info=exc)
    err = PleinError()
    http = HTTPError(N_("Something went wrong on our side; it has been logged."),
                     code=err.code)
    http.status = 500
    return render(request, http)


EXCEPTION_HANDLERS = {
    HTTPError: on_http_error,
    HTTPException: on_starlette_error,
    IntegrityError: on_integrity_error,
    OperationalError: on_operational_error,
    StorageError: on_storage_error,
    Exception: on_unexpected,
}
