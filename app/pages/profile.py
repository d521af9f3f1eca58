"""My profile: name, bio, organisation, language; password change; personal access tokens;
notification settings."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from markupsafe import Markup
from pydantic import ValidationError
from starlette.routing import BaseRoute

from app.errors import HTTPError
from app.http.context import LANG_COOKIE, CookieChange
from app.models import ApiToken, User
from app.pages.forms import FormError, attempt, invalid, refused, validate
from app.pages.framework import Page, PageCtx, PageResult, Redirect, page
from app.schemas.accounts import PasswordChange, ProfileUpdate, SessionInfo, TokenCreate
from app.schemas.activity import NotificationSettingsIn
from app.services import accounts, documents, mail, notifications, twostep

NOTICES = ("profile", "password", "token_revoked", "notifications", "totp_off")


def profile_result(p: PageCtx, *, error: FormError | None = None, form: str | None = None,
                   values: dict[str, str] | None = None,
                   created: tuple[ApiToken, str] | None = None, totp_setup: bool = False,
                   recovery_codes: list[str] | None = None
                   ) -> Page:
    user = p.access.require_user()
    notice = p.query.get("done")
    context: dict[str, Any] = {
        "profile": values or {"name": user.name, "bio": user.bio,
                              "organisation": user.organisation,
                              "language": user.language or p.language},
        "tokens": [(t, _bound_title(p, t)) for t in accounts.list_tokens(p.db, user)],
        "notification_settings": notifications.get_settings(p.db, user.id),
        "email_available": mail.enabled(p.settings),
        "notice": notice if notice in NOTICES else None,
        "created": created,
        "totp": _totp_state(p, user, totp_setup),
        "recovery_codes": recovery_codes,
        "error": error.message if error else None,
        "error_form": form if error else None,
    }
    return Page("profile.html", context, status=error.status if error else 200)


def _totp_state(p: PageCtx, user: User, setup: bool) -> dict[str, Any]:
    row = twostep.credential(p.db, user.id)
    enabled = row is not None and row.confirmed_at is not None
    state: dict[str, Any] = {"enabled": enabled,
                             "codes_left": twostep.recovery_codes_left(p.db, user.id)
                             if enabled else 0}
    if setup and row is not None and not enabled:
        uri = twostep.otpauth_uri(row.secret, user)
        state.update(secret=row.secret, qr_svg=Markup(twostep.qr_svg(uri)))  # noqa: S704 - segno's SVG of our own URI
    return state


def _bound_title(p: PageCtx, token: ApiToken) -> str | None:
    """The title of the document a token is bound to ("" if the person can no longer read it;
    None for a token of the whole account)."""
    if token.document_id is None:
        return None
    try:
        return documents.get_document(p.db, p.access, token.document_id).title
    except HTTPError:
        return ""


def document_id_from(value: str) -> str | None:
    """A document id from what a person pastes: the id, or a link to the document's page."""
    value = value.strip()
    if not value:
        return None
    path = urlsplit(value).path if "://" in value or value.startswith("/") else value
    parts = [part for part in path.split("/") if part]
    if "documents" in parts[:-1]:
        found = parts[parts.index("documents") + 1]
    elif parts:
        found = parts[-1]
    else:
        return None
    return found[:64]  # longer is no id of ours: "not found" rather than a form error


def profile(p: PageCtx) -> PageResult:
    return profile_result(p)


def update_profile(p: PageCtx) -> PageResult:
    user = p.access.require_user()
    values = {k: p.form.get(k, "") for k in ("name", "bio", "organisation", "language")}

    def update() -> None:
        # An emptied organisation field means "none": the API's schema has no way to say that
        # (its Name type needs one character), so the page clears it explicitly.
        body = validate(ProfileUpdate, {**values, "organisation": values["organisation"] or None})
        accounts.update_profile(user, name=body.name, bio=body.bio,
                                organisation=body.organisation or "", language=body.language)

    result = attempt(p, update)
    if isinstance(result, FormError):
        return profile_result(p, error=result, form="profile", values=values)
    if user.language:
        # The language cookie wins over the stored preference, so keep the two in step.
        p.ctx.cookies.append(CookieChange(LANG_COOKIE, user.language, max_age=365 * 86400))
    return Redirect("/profile?done=profile")


def change_password(p: PageCtx) -> PageResult:
    user = p.access.require_user()
    values = {"current_password": p.form.get("current_password", ""),
              "new_password": p.form.get("new_password", "")}

    def change() -> None:
        body = validate(PasswordChange, values)
        accounts.change_password(p.db, p.runtime.passwords, user,
                                 current=body.current_password, new=body.new_password)

    result = attempt(p, change)
    if isinstance(result, FormError):
        return profile_result(p, error=result, form="password")
    # Every session is gone now, this one too; give this browser a fresh one.
    p.ctx.session_token = None
    p.ctx.sign_in(user)
    return Redirect("/profile?done=password")


def create_token(p: PageCtx) -> PageResult:
    user = p.access.require_user()
    values = {"name": p.form.get("name", ""),
              "document_id": document_id_from(p.form.get("document", ""))}

    def create() -> tuple[ApiToken, str]:
        body = validate(TokenCreate, values)
        document_id = None
        if body.document_id is not None:
            # Only a document the person may read (else the same "not found" as missing).
            document_id = documents.get_document(p.db, p.access, body.document_id).id
        return accounts.create_token(p.db, user, body.name, document_id)

    result = attempt(p, create)
    if isinstance(result, FormError):
        return profile_result(p, error=result, form="token", values=None)
    # The secret is shown in this answer only (no-store, and only its hash is kept).
    return profile_result(p, created=result)


def revoke_token(p: PageCtx, tid: str) -> PageResult:
    accounts.delete_token(p.db, p.access.require_user(), tid)
    if p.form.get("back") == "sessions":
        return Redirect("/profile/sessions?done=token_revoked")
    return Redirect("/profile?done=token_revoked#tokens")


SESSION_NOTICES = ("session_ended", "token_revoked")


def sessions_page(p: PageCtx) -> PageResult:
    """Where I am signed in, and my tokens: end any of them."""
    user = p.access.require_user()
    current = accounts.sha256_hex(p.ctx.session_token) if p.ctx.session_token else None
    notice = p.query.get("done")
    return Page("sessions.html", {
        "sessions": [SessionInfo.of(row, current=row.token_hash == current)
                     for row in accounts.list_sessions(p.db, user)],
        "tokens": accounts.list_tokens(p.db, user),
        "notice": notice if notice in SESSION_NOTICES else None,
    })


def end_session(p: PageCtx, sid: str) -> PageResult:
    user = p.access.require_user()
    ended = accounts.end_session(p.db, user, sid)
    if p.ctx.session_token and ended.token_hash == accounts.sha256_hex(p.ctx.session_token):
        p.ctx.sign_out()
        return Redirect("/login")
    return Redirect("/profile/sessions?done=session_ended")


def enrol_totp(p: PageCtx) -> PageResult:
    user = p.access.require_user()
    result = attempt(p, lambda: twostep.enrol(p.db, user))
    if isinstance(result, FormError):
        return profile_result(p, error=result, form="totp")
    return profile_result(p, totp_setup=True)


def _code(p: PageCtx) -> str:
    return p.form.get("code", "")[:40]


def confirm_totp(p: PageCtx) -> PageResult:
    user = p.access.require_user()

    def confirm() -> list[str] | None:
        twostep.require_pending(p.db, user)
        if not twostep.verify(p.db, p.settings, user, _code(p), p.client_ip, recovery=False):
            return None
        return twostep.confirm(p.db, user, keep_session=p.ctx.session_token)

    result = attempt(p, confirm)
    if isinstance(result, FormError):
        return profile_result(p, error=result, form="totp", totp_setup=True)
    if result is None:
        # Rendered (not raised), so the counted failure is committed with the answer.
        return profile_result(p, error=refused(p.language, twostep.wrong_code()), form="totp",
                              totp_setup=True)
    return profile_result(p, recovery_codes=result)


def disable_totp(p: PageCtx) -> PageResult:
    user = p.access.require_user()

    def disable() -> bool:
        twostep.require_enabled(p.db, user)
        if not twostep.verify(p.db, p.settings, user, _code(p), p.client_ip):
            return False
        twostep.disable(p.db, user)
        return True

    result = attempt(p, disable)
    if isinstance(result, FormError):
        return profile_result(p, error=result, form="totp")
    if not result:
        return profile_result(p, error=refused(p.language, twostep.wrong_code()), form="totp")
    return Redirect("/profile?done=totp_off#two-step")


def save_settings(p: PageCtx) -> PageResult:
    user = p.access.require_user()
    values: dict[str, Any] = {key: p.form.get(key) == "1"
                              for key in ("mentions", "replies", "followed")}
    values["email"] = p.form.get("email", "")
    try:
        body = validate(NotificationSettingsIn, values)
    except ValidationError as exc:
        error: FormError = invalid(p.language, exc)
        return profile_result(p, error=error, form="notifications")
    notifications.update_settings(p.db, user.id, body.model_dump(exclude_none=True))
    return Redirect("/profile?done=notifications#notification-settings")


def routes() -> list[BaseRoute]:
    return [
        page("/profile", profile),
        page("/profile", update_profile, methods=("POST",)),
        page("/profile/password", change_password, methods=("POST",)),
        page("/profile/tokens", create_token, methods=("POST",)),
        page("/profile/tokens/{tid}/revoke", revoke_token, methods=("POST",)),
        page("/profile/notifications", save_settings, methods=("POST",)),
        page("/profile/sessions", sessions_page),
        page("/profile/sessions/{sid}/end", end_session, methods=("POST",)),
        page("/profile/totp", enrol_totp, methods=("POST",)),
        page("/profile/totp/confirm", confirm_totp, methods=("POST",)),
        page("/profile/totp/disable", disable_totp, methods=("POST",)),
    ]
