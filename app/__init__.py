"""Plein's application: settings, models, access control, services, HTTP routes and the CLI.

Public face: :func:`create_app` builds the Starlette application from :class:`Settings`.
Both are imported lazily so that ``app.models`` (alembic, the CLI) does not pull in the web stack.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from app.main import create_app
    from app.settings import Settings

__all__ = ["Settings", "create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from app.main import create_app

        return create_app
    if name == "Settings":
        from app.settings import Settings

        return Settings
    raise AttributeError(name)
