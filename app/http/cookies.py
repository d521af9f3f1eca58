"""Cookie flags in one place: HttpOnly, SameSite=Lax, Secure when served over https."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.responses import Response

if TYPE_CHECKING:
    from app.http.context import Ctx


def apply_cookies(response: Response, ctx: Ctx) -> None:
    secure = ctx.settings.cookies_secure
    for change in ctx.cookies:
        if change.value is None:
            response.delete_cookie(change.name, path="/", secure=secure, httponly=change.http_only,
                                   samesite="lax")
        else:
            response.set_cookie(change.name, change.value, max_age=change.max_age, path="/",
                                secure=secure, httponly=change.http_only, samesite="lax")
