"""Form plumbing shared by the page modules: validate a submitted form with the API's pydantic
schemas, turn validation and service errors into a message in the reader's language, and run a
service call so that a refused change leaves nothing half-done behind; signed notes that a
form carries from one step of a flow to the next."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from app.errors import HTTPError
from app.i18n import N_ as N_  # re-exported: the page modules import it from here
from app.i18n import error_msgid
from app.pages.framework import PageCtx
from app.pages.render import gettext

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")


# Labels of form fields, for validation messages ("Name: is too long").
FIELD_LABELS = {
    "name": N_("Name"),
    "description": N_("Description"),
    "access": N_("Access"),
    "email": N_("E-mail address"),
    "role": N_("Role"),
    "password": N_("Password"),
    "current_password": N_("Current password"),
    "new_password": N_("New password"),
    "bio": N_("About me"),
    "organisation": N_("Organisation"),
    "language": N_("Language"),
    "members": N_("People with access"),
    "title": N_("Title"),
    "label": N_("Label"),
    "file": N_("File"),
}

# What went wrong, by pydantic error type; anything else falls back to "is not valid".
PROBLEMS = {
    "missing": N_("is required"),
    "string_too_short": N_("is too short or empty"),
    "string_too_long": N_("is too long"),
    "literal_error": N_("choose one of the options"),
    "string_pattern_mismatch": N_("is not valid"),
}



@dataclass
class FormError:
    message: str
    field: str | None
    status: int


def invalid(language: str, exc: ValidationError) -> FormError:
    first = exc.errors()[0]
    loc = [str(part) for part in first.get("loc", ())]
    field = loc[0] if loc else None
    # Keys are looked up first and translated after: Babel only extracts literal arguments.
    label = FIELD_LABELS.get(field or "", N_("This field"))
    if field == "email" and first.get("type") == "value_error":
        problem = N_("is not a valid e-mail address")
    elif first.get("type") == "value_error" and "must not be empty" in first.get("msg", ""):
        problem = N_("is required")
    elif first.get("type") == "string_too_long":
        # The limit said in numbers: a name is refused whole, never cut to fit (issue 17).
        limit = (first.get("ctx") or {}).get("max_length")
        problem = gettext(language, N_("is too long: at most %(n)s characters")) % {"n": limit}
        return FormError(f"{gettext(language, label)}: {problem}", field, 400)
    else:
        problem = PROBLEMS.get(first.get("type", ""), N_("is not valid"))
    return FormError(f"{gettext(language, label)}: {gettext(language, problem)}", field, 400)


def refused(language: str, exc: HTTPError) -> FormError:
    return FormError(gettext(language, error_msgid(exc)), exc.field, exc.status)


def validate(model: type[M], values: Mapping[str, object]) -> M:
    return model.model_validate(dict(values))


def attempt(p: PageCtx, action: Callable[[], T],
            refuse: Callable[[HTTPError], FormError] | None = None) -> T | FormError:
    """Run a validation + service call in a savepoint: on a refusal the page re-renders with the
    message (so the request's transaction commits), and the savepoint guarantees that whatever
    the service had already changed before refusing is rolled back rather than committed.
    ``refuse`` words a service's refusal for the page (default: its message, translated)."""
    savepoint = p.db.begin_nested()
    try:
        result = action()
    except ValidationError as exc:
        savepoint.rollback()
        p.access.forget()
        return invalid(p.language, exc)
    except HTTPError as exc:
        savepoint.rollback()
        p.access.forget()
        return refuse(exc) if refuse is not None else refused(p.language, exc)
    savepoint.commit()
    return result


# -- signed notes ------------------------------------------------------------------------------
# What one step of a flow hands the next through a hidden field (who passed the password
# before the authenticator code is asked; which provider account is to be linked): signed with
# the site secret, bound to this browser (its CSRF basis) and to a purpose, and short-lived.
# Never a secret itself: the browser can read it.

OTP_PENDING = "otp-pending"
OTP_PENDING_SECONDS = 300  # from a right password to the authenticator code


def _note_mac(p: PageCtx, purpose: str, body: str) -> str:
    message = f"{purpose}|{body}|{p.ctx.csrf_token()}".encode()
    return hmac.new(p.runtime.secret, message, hashlib.sha256).hexdigest()


def signed_note(p: PageCtx, purpose: str, payload: dict[str, Any], seconds: int) -> str:
    data = {**payload, "exp": int(time.time()) + seconds}
    body = base64.urlsafe_b64encode(json.dumps(data).encode()).decode()
    return f"{body}.{_note_mac(p, purpose, body)}"


def open_note(p: PageCtx, purpose: str, note: str) -> dict[str, Any] | None:
    """The payload of a note this site signed for this browser and purpose, unless expired."""
    body, _, mac = note[:4000].partition(".")
    if not body or not hmac.compare_digest(mac.encode(), _note_mac(p, purpose, body).encode()):
        return None
    try:
        payload = json.loads(base64.urlsafe_b64decode(body.encode()))
    except (ValueError, json.JSONDecodeError):
        return None
    if not isinstance(payload, dict) or int(payload.get("exp", 0)) < time.time():
        return None
    return payload
