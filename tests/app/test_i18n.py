"""The UI speaks Dutch (the default) and English: every message in the templates and page code
has a Dutch translation, and the language cookie switches what a page shows.

Updating the catalogs after changing UI text (from the repository root):

    pybabel extract -F babel.cfg --no-location --sort-output -o /tmp/messages.pot .
    pybabel update -i /tmp/messages.pot -d app/locale --ignore-obsolete --no-fuzzy-matching \
        --width 100
    # then fill in the Dutch msgstr values in app/locale/nl/LC_MESSAGES/messages.po
"""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from app import errors
from app.i18n import BY_CODE, N_, VALUES_SHOWN_ELSEWHERE, error_msgid
from tests.live import Client

REPO = Path(__file__).resolve().parents[2]
LOCALE = REPO / "app" / "locale"


def _wanted_dir(path: str) -> bool:
    # Walk only what babel.cfg maps; node_modules or data directories would just cost time.
    rel = Path(os.path.relpath(path, REPO)).as_posix()
    return rel in (".", "web") or rel.startswith(("app", "web/templates"))


def extracted_msgids() -> set[str]:
    with (REPO / "babel.cfg").open() as handle:
        method_map, options_map = parse_mapping_cfg(handle)  # type: ignore[no-untyped-call]
    ids: set[str] = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
            REPO, method_map, options_map, directory_filter=_wanted_dir):
        ids.add(message if isinstance(message, str) else message[0])
    return ids


def catalog(language: str) -> Catalog:
    with (LOCALE / language / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        return read_po(handle, locale=language)


@pytest.fixture(scope="module")
def msgids() -> set[str]:
    found = extracted_msgids()
    assert "Sign in" in found and "Add them by uploading files or creating a note." in found
    return found


def test_every_message_has_a_dutch_translation(msgids: set[str]) -> None:
    dutch = catalog("nl")

    def translated(msgid: str) -> bool:
        message = dutch.get(msgid)
        return message is not None and bool(message.string) and not message.fuzzy

    untranslated = sorted(mid for mid in msgids if not translated(mid))
    assert not untranslated, f"add Dutch for: {untranslated}"


def test_the_english_catalog_knows_every_message(msgids: set[str]) -> None:
    english = catalog("en")
    missing = sorted(mid for mid in msgids if english.get(mid) is None)
    assert not missing, f"run pybabel update; missing in en: {missing}"


def raised_messages() -> dict[str, str]:
    """Literal messages given to an HTTPError anywhere in app/, marked or not: pages show them
    through the catalog, so each must be in it (the same text marked elsewhere counts)."""
    classes = {name for name, value in vars(errors).items()
               if isinstance(value, type) and issubclass(value, errors.HTTPError)}
    found: dict[str, str] = {}
    for path in sorted((REPO / "app").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not (isinstance(node, ast.Call) and node.args):
                continue
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
            if name not in classes:
                continue
            arg = node.args[0]
            if isinstance(arg, ast.Call) and getattr(arg.func, "id", None) == "N_" and arg.args:
                arg = arg.args[0]
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                found.setdefault(arg.value, f"{path.relative_to(REPO)}:{node.lineno}")
    return found


def test_error_messages_are_marked_where_raised(msgids: set[str]) -> None:
    # The defaults of app/errors.py and messages raised by services are extracted from where
    # they are written (no hand-kept copy in the page code).
    assert {"Not found.", "The request is not valid.", "No such group.",
            "Folders move within their group only."} <= msgids


def test_every_raised_message_has_a_dutch_translation() -> None:
    dutch = catalog("nl")
    raised = raised_messages()
    assert "No such group." in raised
    missing = sorted(f"{place}: {message!r}" for message, place in raised.items()
                     if not (entry := dutch.get(message)) or entry.fuzzy or not entry.string)
    assert not missing, "add Dutch for (and mark with N_ where raised):\n" + "\n".join(missing)


def _code_of(call: ast.Call, name: str) -> str:
    for keyword in call.keywords:
        if keyword.arg == "code" and isinstance(keyword.value, ast.Constant):
            return str(keyword.value.value)
    return str(getattr(errors, name).code)


def test_messages_built_with_values_have_a_page_text_by_code() -> None:
    # "The file is larger than the limit of 1048576 bytes." is in no catalogue: a page shows
    # the fixed text kept for the error's code instead of looking the English up.
    classes = {name for name, value in vars(errors).items()
               if isinstance(value, type) and issubclass(value, errors.HTTPError)}
    uncovered = []
    for path in sorted((REPO / "app").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not (isinstance(node, ast.Call) and node.args):
                continue
            name = node.func.id if isinstance(node.func, ast.Name) else getattr(
                node.func, "attr", None)
            if name not in classes or not isinstance(node.args[0],
                                                     ast.JoinedStr | ast.IfExp | ast.BinOp):
                continue
            code = _code_of(node, str(name))
            if code not in BY_CODE and code not in VALUES_SHOWN_ELSEWHERE:
                uncovered.append(f"{path.relative_to(REPO)}:{node.lineno}: {code}")
    assert not uncovered, "add the code to app.i18n.BY_CODE:\n" + "\n".join(uncovered)


def test_pages_translate_errors_by_marked_text_or_by_code() -> None:
    dutch = catalog("nl")

    def shown(error: errors.HTTPError) -> str:
        entry = dutch.get(error_msgid(error))
        return str(entry.string) if entry is not None and entry.string else error.message

    assert shown(errors.NotFound(N_("No such group."))) == "Deze groep bestaat niet."
    assert shown(errors.NotFound()) == "Niet gevonden."
    too_large = errors.PayloadTooLarge("The file is larger than the limit of 1048576 bytes.")
    assert shown(too_large) == "Het verzoek is te groot."
    quota = errors.PayloadTooLarge("The group's storage quota of 10 bytes would be exceeded.",
                                   code="quota_exceeded")
    assert "opslagruimte" in shown(quota)


def test_placeholders_survive_translation() -> None:
    for message in catalog("nl"):
        if message.id and message.string and "%(" in str(message.id):
            names = sorted(part.split(")")[0] for part in str(message.id).split("%(")[1:])
            got = sorted(part.split(")")[0] for part in str(message.string).split("%(")[1:])
            assert names == got, message.id


def test_dutch_by_default_english_with_the_cookie(anonymous: Client) -> None:
    dutch = anonymous.get("/login")
    assert dutch.status_code == 200
    assert '<html lang="nl">' in dutch.text
    assert "Aanmelden" in dutch.text and "Sign in" not in dutch.text

    anonymous.http.cookies.set("plein_lang", "en")
    english = anonymous.get("/login")
    assert '<html lang="en">' in english.text
    assert "Sign in" in english.text and "Aanmelden" not in english.text


def test_the_language_switch_sets_the_cookie(anonymous: Client) -> None:
    form = anonymous.get("/register")
    token = form.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    switched = anonymous.http.post("/language", data={"csrf_token": token, "language": "en",
                                                      "next": "/register"})
    assert switched.status_code == 303 and switched.headers["location"] == "/register"
    assert "Create account" in anonymous.get("/register").text
