"""Sign up, sign in, sign out; the pages behind the links sent by e-mail (verify an address,
reset a password, accept an invitation).

A link's page shows a form and only the form's POST uses the token: mail scanners and link
previews fetch links (GET), and must not use up a single-use link or act for the person."""

from __future__ import annotations

from urllib.parse import quote

from pydantic import ValidationError
from starlette.routing import BaseRoute

from app.errors import Forbidden, HTTPError, RateLimited
from app.models import User
from app.pages.forms import (
    OTP_PENDING,
    OTP_PENDING_SECONDS,
    invalid,
    open_note,
    refused,
    signed_note,
)
from app.pages.framework import Page, PageCtx, PageResult, Redirect, page, safe_next
from app.pages.render import translations
from app.schemas.accounts import PasswordResetConfirm, UserCreate
from app.services import account_links, accounts, twostep
from app.services.account_links import TokenInvalid


def wait_message(language: str, seconds: int) -> str:
    """How long the sign-in throttle asks to wait, in whole minutes (seconds under one)."""
    catalog = translations(language)
    if seconds < 60:
        return catalog.ngettext("Too many failed sign-ins; try again in %(num)d second.",
                                "Too many failed sign-ins; try again in %(num)d seconds.",
                                seconds) % {"num": seconds}
    minutes = -(-seconds // 60)
    return catalog.ngettext("Too many failed sign-ins; try again in %(num)d minute.",
                            "Too many failed sign-ins; try again in %(num)d minutes.",
                            minutes) % {"num": minutes}


def login(p: PageCtx) -> PageResult:
    next_url = safe_next(p.form.get("next") or p.query.get("next"))
    if p.method == "GET":
        if p.user is not None:
            return Redirect(next_url)
        return Page("login.html", {"next": next_url, "email": ""})
    email = p.form.get("email", "")
    try:
        user = accounts.authenticate(p.db, p.settings, p.runtime.passwords, email=email,
                                     password=p.form.get("password", ""), ip=p.client_ip)
    except RateLimited as exc:
        return Page("login.html", {"next": next_url, "email": email,
                                   "error": wait_message(p.language, exc.retry_after)},
                    status=429)
    if user is None:
        return Page("login.html", {"next": next_url, "email": email, "error_key": "invalid"},
                    status=401)
    try:
        accounts.require_verified(p.settings, user)
    except Forbidden:
        return Page("login.html", {"next": next_url, "email": email,
                                   "error_key": "unverified"}, status=403)
    if twostep.enabled(p.db, user.id):
        # The password was right; the code is asked on a page of its own, which carries a
        # signed, short-lived note of who passed step one (never the password itself).
        return Page("login_otp.html", {"next": next_url,
                                       "pending": pending_sign_in(p, user.id)})
    p.ctx.sign_in(user)
    accounts.logged_in(p.db, user, ip=p.client_ip, method="password")
    return Redirect(next_url)


def pending_sign_in(p: PageCtx, user_id: str) -> str:
    return signed_note(p, OTP_PENDING, {"uid": user_id}, OTP_PENDING_SECONDS)


def _pending_user(p: PageCtx, note: str) -> User | None:
    payload = open_note(p, OTP_PENDING, note)
    user = p.db.get(User, str(payload["uid"])) if payload else None
    return user if user is not None and user.is_active else None


def login_otp(p: PageCtx) -> PageResult:
    """Step two of signing in: the authenticator code (or a recovery code)."""
    next_url = safe_next(p.form.get("next"))
    note = p.form.get("pending", "")[:200]
    user = _pending_user(p, note)
    if user is None:
        return Page("login.html", {"next": next_url, "email": "", "error_key": "otp_expired"},
                    status=401)
    context = {"next": next_url, "pending": note}
    try:
        ok = twostep.verify(p.db, p.settings, user, p.form.get("otp", "")[:40], p.client_ip)
    except RateLimited as exc:
        return Page("login_otp.html", {**context, "error": refused(p.language, exc).message},
                    status=429)
    if not ok:
        # The failure is committed with this answer (it counts towards the delay).
        accounts.login_failed(p.db, email=user.email, user=user, ip=p.client_ip, reason="otp")
        return Page("login_otp.html", {**context, "error_key": "invalid"}, status=401)
    p.ctx.sign_in(user)
    accounts.logged_in(p.db, user, ip=p.client_ip, method="totp")
    return Redirect(next_url)


def register(p: PageCtx) -> PageResult:
    next_url = safe_next(p.form.get("next") or p.query.get("next"))
    if p.method == "GET":
        return Page("register.html", {"values": {}, "next": next_url})
    values = {k: p.form.get(k, "") for k in ("email", "name", "password")}
    try:
        body = UserCreate.model_validate(values)
        done = accounts.register(p.db, p.settings, p.runtime.passwords, email=body.email,
                                 name=body.name, password=body.password)
    except ValidationError as exc:
        err = invalid(p.language, exc)
        return Page("register.html", {"values": values, "error": err.message,
                                      "field": err.field, "next": next_url}, status=400)
    except HTTPError as exc:
        err = refused(p.language, exc)
        return Page("register.html", {"values": values, "error": err.message,
                                      "field": err.field, "next": next_url}, status=err.status)
    p.ctx.outbox.extend(done.mails)
    if done.user is None or done.user.email_verified_at is None \
            and p.settings.email_verification_required:
        # The same page for a new and a taken address (see accounts.register).
        return Page("check_email.html", {"kind": "verify", "email": body.email})
    p.ctx.sign_in(done.user)
    return Redirect(next_url)


def logout(p: PageCtx) -> PageResult:
    p.ctx.sign_out()
    return Redirect("/login")


def _token(p: PageCtx) -> str:
    return (p.form.get("token") or p.query.get("token") or "")[:200]


def verify_email(p: PageCtx) -> PageResult:
    token = _token(p)
    if p.method == "GET":
        return Page("verify_email.html", {"token": token, "state": "form"})
    try:
        account_links.verify_email(p.db, token)
    except TokenInvalid:
        return Page("verify_email.html", {"token": "", "state": "invalid"}, status=400)
    return Page("verify_email.html", {"token": "", "state": "done"})


def resend_verification(p: PageCtx) -> PageResult:
    email = accounts.normalize_email(p.form.get("email", ""))[:254]
    p.ctx.outbox.extend(account_links.resend_verification(p.db, p.settings, email))
    return Page("check_email.html", {"kind": "verify", "email": email})


def forgot_password(p: PageCtx) -> PageResult:
    if p.method == "GET":
        return Page("forgot_password.html", {"email": ""})
    email = accounts.normalize_email(p.form.get("email", ""))[:254]
    p.ctx.outbox.extend(account_links.request_password_reset(p.db, p.settings, email))
    # The same answer whether or not the address has an account.
    return Page("check_email.html", {"kind": "reset", "email": email})


def reset_password(p: PageCtx) -> PageResult:
    token = _token(p)
    if p.method == "GET":
        return Page("reset_password.html", {"token": token})
    try:
        body = PasswordResetConfirm.model_validate({"token": token,
                                                    "password": p.form.get("password", "")})
        user = accounts.reset_password(p.db, p.runtime.passwords, body.token, body.password)
    except ValidationError as exc:
        err = invalid(p.language, exc)
        return Page("reset_password.html", {"token": token, "error": err.message}, status=400)
    except TokenInvalid as exc:
        return Page("reset_password.html", {"token": "", "invalid": True,
                                            "error": refused(p.language, exc).message},
                    status=400)
    if p.user is not None and p.user.id == user.id:
        p.ctx.sign_out()
    return Page("login.html", {"next": "/", "email": user.email, "notice_key": "password_set"})


def invite(p: PageCtx) -> PageResult:
    token = _token(p)
    here = f"/invite?token={quote(token)}"
    if p.method == "GET" or p.user is None:
        try:
            _invitation, group = account_links.find_invitation(p.db, token)
        except TokenInvalid:
            return Page("invite.html", {"invalid": True}, status=400)
        return Page("invite.html", {"token": token, "group": group, "here": quote(here)})
    try:
        membership = account_links.accept_invitation(p.db, p.user, token)
    except TokenInvalid:
        return Page("invite.html", {"invalid": True}, status=400)
    p.access.forget()
    return Redirect(f"/groups/{membership.group_id}")


def routes() -> list[BaseRoute]:
    both = ("GET", "POST")
    return [
        page("/login", login, methods=both, auth=False),
        page("/login/otp", login_otp, methods=("POST",), auth=False),
        page("/register", register, methods=both, auth=False),
        page("/logout", logout, methods=("POST",), auth=False),
        page("/verify-email", verify_email, methods=both, auth=False),
        page("/verify-email/resend", resend_verification, methods=("POST",), auth=False),
        page("/forgot-password", forgot_password, methods=both, auth=False),
        page("/reset-password", reset_password, methods=both, auth=False),
        page("/invite", invite, methods=both, auth=False),
    ]
