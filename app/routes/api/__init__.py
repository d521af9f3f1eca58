"""The JSON API of API.md. Every module registers its routes on :data:`router`."""

from app.http.api import ApiRouter

router = ApiRouter()

from app.routes.api import (  # noqa: E402,F401 - registers routes
    accounts,
    activity,
    discussions,
    documents,
    folders,
    groups,
    live,
    notes,
    search,
)
