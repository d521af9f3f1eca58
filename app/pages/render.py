"""Server-rendered pages: one Jinja2 environment per language (gettext catalogs in Dutch and
English), the language choice, and the HTML error page."""

from __future__ import annotations

import io
from functools import cache
from pathlib import Path
from typing import Any

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy.exc import SQLAlchemyError
from starlette.requests import HTTPConnection
from starlette.responses import HTMLResponse, Response

from app.errors import HTTPError
from app.http.context import ANON_COOKIE, LANG_COOKIE, SESSION_COOKIE, csrf_for
from app.i18n import error_msgid
from app.models import User
from app.services import accounts
from app.web_assets import web_dir

LANGUAGES = ("nl", "en")
TEMPLATES_DIR = web_dir() / "templates"
LOCALE_DIR = Path(__file__).resolve().parents[1] / "locale"


def load_translations(language: str) -> Translations:
    """Compile the .po catalog in memory: no build step and no binary .mo in the repository."""
    po_path = LOCALE_DIR / language / "LC_MESSAGES" / "messages.po"
    with po_path.open("rb") as handle:
        catalog = read_po(handle, locale=language)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return Translations(buffer)


@cache
def translations(language: str) -> Translations:
    return load_translations(language)


@cache
def environment(language: str) -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=select_autoescape(default=True, default_for_string=True),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_translations(translations(language), newstyle=True)  # type: ignore[attr-defined]
    env.globals["languages"] = LANGUAGES
    env.filters["filesize"] = lambda size: format_size(language, size)
    return env


def format_size(language: str, size: int | None) -> str:
    """A byte count for people: "980 B", "1,4 MB" (Dutch decimal comma), powers of 1024."""
    value = float(size or 0)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            break
        value /= 1024
    if unit == "B":
        text = str(int(value))
    else:
        text = f"{value:.1f}" if value < 10 else f"{value:.0f}"
        if language == "nl":
            text = text.replace(".", ",")
    return f"{text}\N{NO-BREAK SPACE}{unit}"


def choose_language(conn: HTTPConnection, default: str, user_language: str | None = None) -> str:
    chosen = conn.cookies.get(LANG_COOKIE) or user_language or default
    return chosen if chosen in LANGUAGES else default


def gettext(language: str, message: str) -> str:
    """Translate text built in Python (the environment's own ``gettext`` needs a template
    context, so it cannot be called from here)."""
    return str(translations(language).gettext(message))


def render_html(language: str, template: str, context: dict[str, Any], status: int = 200,
                headers: dict[str, str] | None = None) -> HTMLResponse:
    html = environment(language).get_template(template).render(lang=language, **context)
    return HTMLResponse(html, status_code=status, headers=headers)


def _error_page_viewer(conn: HTTPConnection) -> tuple[User | None, str]:
    """Who sees the error page, and the CSRF token for the header's forms (sign out, language),
    so a 404 inside the app still looks like the app. Best effort: an error page must render
    even when the database is the thing that failed."""
    runtime = conn.app.state.runtime
    session_cookie = conn.cookies.get(SESSION_COOKIE)
    basis = session_cookie or conn.cookies.get(ANON_COOKIE) or ""
    user: User | None = None
    if session_cookie:
        try:
            with runtime.db.read() as db:
                found = accounts.session_user(db, session_cookie)
                if found is not None:
                    user = found[1]
                    db.expunge(user)
        except SQLAlchemyError:
            user = None
    if user is None:
        basis = conn.cookies.get(ANON_COOKIE) or ""
    return user, csrf_for(runtime.secret, basis)


def error_page(conn: HTTPConnection, exc: HTTPError, headers: dict[str, str]) -> Response:
    runtime = conn.app.state.runtime
    user, csrf_token = _error_page_viewer(conn) if exc.status < 500 else (None, "")
    language = choose_language(conn, runtime.settings.default_language,
                               user.language if user else None)
    return render_html(language, "error.html",
                       {"error": exc, "message": gettext(language, error_msgid(exc)), "user": user,
                        "csrf_token": csrf_token, "path": conn.url.path},
                       status=exc.status, headers=headers)
