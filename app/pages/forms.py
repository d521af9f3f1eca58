"""Form plumbing shared by the page modules: validate a submitted form with the API's pydantic
schemas, turn validation and service errors into a message in the reader's language, and run a
service call so that a refused change leaves nothing half-done behind."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

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
