"""Sign up, sign in, sign out."""

from __future__ import annotations

from pydantic import ValidationError
from starlette.routing import BaseRoute

from app.errors import HTTPError, RateLimited
from app.pages.forms import invalid, refused
from app.pages.framework import Page, PageCtx, PageResult, Redirect, page
from app.pages.home import safe_next
from app.schemas.accounts import UserCreate
from app.services import accounts


def login(p: PageCtx) -> PageResult:
    next_url = safe_next(p.form.get("next") or p.ctx.conn.query_params.get("next"))
    if p.method == "GET":
        if p.user is not None:
            return Redirect(next_url)
        return Page("login.html", {"next": next_url, "email": ""})
    email = p.form.get("email", "")
    try:
        user = accounts.authenticate(p.db, p.settings, p.services.passwords, email=email,
                                     password=p.form.get("password", ""), ip=p.client_ip)
    except RateLimited as exc:
        return Page("login.html", {"next": next_url, "email": email,
                                   "error": refused(p.language, exc).message},
                    status=429)
    if user is None:
        return Page("login.html", {"next": next_url, "email": email, "error_key": "invalid"},
                    status=401)
    p.ctx.sign_in(user)
    return Redirect(next_url)


def register(p: PageCtx) -> PageResult:
    if p.method == "GET":
        return Page("register.html", {"values": {}})
    values = {k: p.form.get(k, "") for k in ("email", "name", "password")}
    try:
        body = UserCreate.model_validate(values)
        user = accounts.register(p.db, p.settings, p.services.passwords, email=body.email,
                                 name=body.name, password=body.password)
    except ValidationError as exc:
        err = invalid(p.language, exc)
        return Page("register.html", {"values": values, "error": err.message,
                                      "field": err.field}, status=400)
    except HTTPError as exc:
        err = refused(p.language, exc)
        return Page("register.html", {"values": values, "error": err.message,
                                      "field": err.field}, status=err.status)
    p.ctx.sign_in(user)
    return Redirect("/")


def logout(p: PageCtx) -> PageResult:
    p.ctx.sign_out()
    return Redirect("/login")


def routes() -> list[BaseRoute]:
    return [
        page("/login", login, methods=("GET", "POST"), auth=False),
        page("/register", register, methods=("GET", "POST"), auth=False),
        page("/logout", logout, methods=("POST",), auth=False),
    ]
