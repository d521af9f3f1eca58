"""Errors of the application layer.

Business code only *raises* these; one handler table (``app.http.errors``) renders them as the
JSON error shape of API.md under ``/api/`` and as an HTML error page elsewhere.

    PleinError                       500 internal_error
    ├── ConfigurationError           (start-up: bad settings, unreadable key file)
    └── HTTPError                    carries ``status`` and a stable ``code``
        ├── BadRequest               400 bad_request (names the ``field``)
        ├── NotSignedIn              401 not_signed_in
        ├── Forbidden                403 forbidden
        │   └── CSRFFailed           403 csrf_failed
        ├── NotFound                 404 not_found (also: exists but not readable by you)
        ├── MethodNotAllowed         405 method_not_allowed
        ├── RequestTimeout           408 request_timeout (the body stopped arriving)
        ├── Conflict                 409 conflict
        ├── PayloadTooLarge          413 payload_too_large
        ├── UnsupportedMediaType     415 unsupported_media_type
        ├── Unprocessable            422 unprocessable
        └── RateLimited              429 rate_limited (with ``retry_after`` seconds)
"""

from __future__ import annotations

from typing import Any

from app.i18n import N_


class PleinError(Exception):
    status = 500
    code = "internal_error"


class ConfigurationError(PleinError):
    code = "configuration_error"


class HTTPError(PleinError):
    default_message = N_("Something went wrong.")

    def __init__(
        self, message: str | None = None, *, code: str | None = None, field: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        self.message = message or self.default_message
        if code:
            self.code = code
        self.field = field
        # Facts a client acts on, added to the error body beside code and message
        # (e.g. ``limit`` of a name that is too long).
        self.extra = dict(extra or {})
        super().__init__(self.message)


class BadRequest(HTTPError):
    status = 400
    code = "bad_request"
    default_message = N_("The request is not valid.")


class NotSignedIn(HTTPError):
    status = 401
    code = "not_signed_in"
    default_message = N_("Sign in first.")


class Forbidden(HTTPError):
    status = 403
    code = "forbidden"
    default_message = N_("You are not allowed to do this.")


class CSRFFailed(Forbidden):
    code = "csrf_failed"
    default_message = N_("The CSRF token is missing or wrong; reload the page and try again.")


class NotFound(HTTPError):
    status = 404
    code = "not_found"
    default_message = N_("Not found.")


class MethodNotAllowed(HTTPError):
    status = 405
    code = "method_not_allowed"
    default_message = N_("This method is not allowed here.")


class RequestTimeout(HTTPError):
    status = 408
    code = "request_timeout"
    default_message = N_("The upload stopped arriving; try again.")


class Conflict(HTTPError):
    status = 409
    code = "conflict"
    default_message = N_("This conflicts with the current state.")


class PayloadTooLarge(HTTPError):
    status = 413
    code = "payload_too_large"
    default_message = N_("The request is too large.")


class UnsupportedMediaType(HTTPError):
    status = 415
    code = "unsupported_media_type"
    default_message = N_("Unsupported content type.")


class Unprocessable(HTTPError):
    status = 422
    code = "unprocessable"
    default_message = N_("The request cannot be carried out.")


class RateLimited(HTTPError):
    status = 429
    code = "rate_limited"
    default_message = N_("Too many attempts; slow down.")

    def __init__(self, message: str | None = None, *, retry_after: int = 1) -> None:
        self.retry_after = max(1, retry_after)
        super().__init__(message, extra={"retry_after": self.retry_after})
