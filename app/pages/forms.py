"""Form plumbing shared by the page modules: validate a submitted form with the API's pydantic
schemas, turn validation and service errors into a message in the reader's language, and run a
service call so that a refused change leaves nothing half-done behind."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from app.errors import HTTPError
from app.pages.framework import PageCtx
from app.pages.render import gettext

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")


def N_(message: str) -> str:
    """Mark a string for extraction (Babel knows ``N_``); it is translated when shown."""
    return message


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

# Messages the services raise that people meet in pages; marked here so they are extracted and
# translated (services stay language-neutral and speak English in the JSON API).
SERVICE_MESSAGES = (
    N_("No such group."),
    N_("No such folder."),
    N_("No such member."),
    N_("No such token."),
    N_("No such invitation."),
    N_("Not found."),
    N_("You are not allowed to do this."),
    N_("The CSRF token is missing or wrong; reload the page and try again."),
    N_("Sign in first."),
    N_("Something went wrong."),
    N_("Something went wrong on our side; it has been logged."),
    N_("The request is too large."),
    N_("This method is not allowed here."),
    N_("This conflicts with a change made at the same time; try again."),
    N_("The database is busy; try again in a moment."),
    N_("Send the form as application/x-www-form-urlencoded."),
    N_("An account with this e-mail address exists."),
    N_("Registration is closed; ask an administrator for an account."),
    N_("Too many failed sign-ins; wait a moment before trying again."),
    N_("Too many searches at once; wait for the ones running to finish."),
    N_("The current password is wrong."),
    N_("Only an owner can make someone an owner."),
    N_("This address is already invited."),
    N_("This person is already a member."),
    N_("Approve the request first."),
    N_("A group always keeps at least one owner; make someone else owner first."),
    N_("There is no pending request from this person."),
    N_("The root folder cannot be moved."),
    N_("The root folder cannot be deleted."),
    N_("This folder is not in the trash."),
    N_("Restore the folder it was in first."),
    N_("Only items in the trash can be removed for good."),
    N_("The root folder follows the group; close a sub-folder instead."),
    N_("A person is listed twice."),
    N_("Only members of the group can be given access."),
    N_("A folder cannot be wider than the folder it is in."),
    N_("No such document."),
    N_("No such version."),
    N_("This is already the current version."),
    N_("The current version cannot be deleted; restore another one first."),
    N_("This document is not in the trash."),
    N_("Pick two different versions."),
    N_("Only files take uploaded versions."),
    N_("Documents move within their group only."),
    N_("The upload has no part named 'file'."),
    N_("The upload was interrupted."),
    N_("Too many parts in the upload."),
    N_("A form field is too large."),
    N_("Upload the file as multipart/form-data with a part 'file'."),
    N_("The multipart body has no boundary."),
    N_("This link is not valid (any more). Ask for a new one."),
    N_("Only notes can be compared version by version."),
    N_("This folder holds folders you may not change; ask an owner or admin to delete it."),
    N_("The upload stopped arriving; try again."),
)


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
    else:
        problem = PROBLEMS.get(first.get("type", ""), N_("is not valid"))
    return FormError(f"{gettext(language, label)}: {gettext(language, problem)}", field, 400)


def refused(language: str, exc: HTTPError) -> FormError:
    return FormError(gettext(language, exc.message), exc.field, exc.status)


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
