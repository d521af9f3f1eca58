"""Server-rendered pages (Jinja2, Dutch and English). Each area has its own module.

The areas are imported inside the functions below, not at the top: importing any page module
(say ``app.pages.render`` for an error page) runs this file first, and should not load every
page."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.routing import BaseRoute

if TYPE_CHECKING:
    from app.pages.framework import ContextProcessor


def page_routes() -> list[BaseRoute]:
    from app.pages import (
        account,
        activity,
        audit,
        discussions,
        documents,
        folders,
        groups,
        home,
        notes,
        notifications,
        oidc,
        profile,
        search,
        trash,
        uploads,
    )

    # Uploads and notes first: their paths would otherwise match broader document routes.
    return [*home.routes(), *account.routes(), *groups.routes(), *folders.routes(),
            *trash.routes(), *uploads.routes(), *notes.routes(), *documents.routes(),
            *profile.routes(), *search.routes(), *discussions.routes(),
            *notifications.routes(), *activity.routes(), *oidc.routes(),
            *audit.routes()]


def page_context() -> tuple[ContextProcessor, ...]:
    """What every full page shows besides its own content, by area (the application keeps
    this in ``app.state.page_context``)."""
    from app.pages import notifications

    return (notifications.header_context,)
