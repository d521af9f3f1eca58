"""The JSON API's one router: every module of :mod:`app.routes.api` registers its routes on
:data:`router` (kept apart from the package so the modules need not import the package that
imports them)."""

from app.http.api import ApiRouter

router = ApiRouter()
