"""The JSON API of API.md. Every module registers its routes on :data:`router`."""

from app.routes.api import (  # noqa: F401 - registers routes
    accounts,
    activity,
    audit,
    discussions,
    documents,
    exchange,
    folders,
    groups,
    live,
    notes,
    search,
)
from app.routes.api.registry import router

__all__ = ["router"]
