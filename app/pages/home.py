"""Dashboard and the language switch."""

from __future__ import annotations

from starlette.routing import BaseRoute

from app.http.context import LANG_COOKIE, CookieChange
from app.pages.context import dashboard_activity
from app.pages.framework import Page, PageCtx, PageResult, Redirect, page, safe_next
from app.pages.render import LANGUAGES
from app.services import groups


def dashboard(p: PageCtx) -> PageResult:
    all_groups = groups.list_groups(p.db, p.access)
    mine = [g for g in all_groups if p.access.group_role(g.id)]
    others = [g for g in all_groups if not p.access.group_role(g.id)]
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
