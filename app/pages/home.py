"""Dashboard and the language switch."""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.routing import BaseRoute

from app.http.context import LANG_COOKIE, CookieChange
from app.pages.framework import Page, PageCtx, PageResult, Redirect, page
from app.pages.render import LANGUAGES
from app.services import groups


def safe_next(target: str | None, default: str = "/") -> str:
    """Only same-site paths: ``next`` must never send people to another site."""
    if not target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//") \
            or "\\" in target:
        return default
    return target


def dashboard(p: PageCtx) -> PageResult:
    all_groups = groups.list_groups(p.db, p.access)
    mine = [g for g in all_groups if p.access.group_role(g.id)]
    others = [g for g in all_groups if not p.access.group_role(g.id)]
    from app.pages.notifications import dashboard_activity

    return Page("dashboard.html", {"mine": mine, "others": others, "access": p.access,
                                   **dashboard_activity(p)})


def set_language(p: PageCtx) -> PageResult:
    language = p.form.get("language", "")
    if language in LANGUAGES:
        p.ctx.cookies.append(CookieChange(LANG_COOKIE, language, max_age=365 * 86400))
        if p.user is not None:
            p.user.language = language
    return Redirect(safe_next(p.form.get("next")))


def routes() -> list[BaseRoute]:
    return [
        page("/", dashboard, name="dashboard"),
        page("/language", set_language, methods=("POST",), auth=False),
    ]
