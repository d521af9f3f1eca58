"""Uploads have one orchestrator (app.http.upload_flow) with explicit result types: the API
router carries no upload-only fields, and the services never reach up into app.http."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

from app.http.api import ApiRoute, UploadRoute
from app.http.upload_flow import Stored

APP = Path(__file__).resolve().parents[2] / "app"


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def test_services_never_import_http_or_pages() -> None:
    for path in sorted((APP / "services").glob("*.py")):
        upward = {m for m in _imports(path) if m.split(".")[:2] in (["app", "http"],
                                                                     ["app", "pages"])}
        assert not upward, f"{path.name} imports {sorted(upward)}"


def test_json_routes_carry_no_upload_fields() -> None:
    fields = {f.name for f in dataclasses.fields(ApiRoute)}
    assert not fields & {"precheck", "json_body", "json_handler"}
    assert {"precheck", "handler"} <= {f.name for f in dataclasses.fields(UploadRoute)}


def test_an_unchanged_upload_says_so_explicitly() -> None:
    stored = Stored("answer")
    assert stored.created and stored.unused == ()
    assert {f.name for f in dataclasses.fields(Stored)} == {"answer", "created", "unused"}
