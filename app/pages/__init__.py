"""Server-rendered pages (Jinja2, Dutch and English). Each area has its own module."""

from __future__ import annotations

from starlette.routing import BaseRoute


def page_routes() -> list[BaseRoute]:
    from app.pages import account, folders, groups, home, profile

    return [*home.routes(), *account.routes(), *groups.routes(), *folders.routes(),
            *profile.routes()]
