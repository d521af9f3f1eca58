"""Server-rendered pages (Jinja2, Dutch and English). Each area has its own module."""

from __future__ import annotations

from starlette.routing import BaseRoute


def page_routes() -> list[BaseRoute]:
    from app.pages import (
        account,
        discussions,
        documents,
        folders,
        groups,
        home,
        notes,
        notifications,
        profile,
        search,
        uploads,
    )

    # Uploads and notes first: their paths would otherwise match broader document routes.
    return [*home.routes(), *account.routes(), *groups.routes(), *folders.routes(),
            *uploads.routes(), *notes.routes(), *documents.routes(), *profile.routes(),
            *search.routes(), *discussions.routes(), *notifications.routes()]
