"""GET /api/v1/openapi.json is a valid OpenAPI 3.1 document and describes every API route
(CONVENTIONS.md: "a test that the OpenAPI document covers every route")."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from openapi_spec_validator import validate
from openapi_spec_validator.validation.exceptions import OpenAPIValidationError
from starlette.applications import Starlette
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute

from tests.live import LiveServer

HTTP_METHODS = {"get", "put", "post", "delete", "patch", "options", "head", "trace"}


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Starlette]:
    from app.main import create_app
    from app.settings import Settings

    built = create_app(Settings(data_dir=Path(tmp_path_factory.mktemp("openapi")) / "data"))
    yield built
    built.state.runtime.db.dispose()


@pytest.fixture(scope="module")
def document(server: LiveServer) -> dict[str, Any]:
    response = httpx.get(f"{server.url}/api/v1/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    return body


def _normalize(path: str) -> str:
    """``/folders/{fid:path}`` and ``/folders/{id}`` both become ``/folders/{}``."""
    return re.sub(r"{[^}]*}", "{}", path)


def _api_routes(routes: list[BaseRoute], prefix: str = "") -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    for route in routes:
        if isinstance(route, Mount):
            found |= _api_routes(list(route.routes), prefix + route.path)
        elif isinstance(route, Route):
            path = prefix + route.path
            if path.startswith("/api/"):
                # Starlette adds HEAD to every GET route by itself; it is not an API operation.
                found |= {(m.lower(), _normalize(path)) for m in route.methods or ()
                          if m != "HEAD"}
        elif isinstance(route, WebSocketRoute):
            assert not (prefix + route.path).startswith("/api/"), route.path
    return found


def _documented(document: dict[str, Any], *, under_api: bool = True) -> set[tuple[str, str]]:
    return {(method, _normalize(path))
            for path, item in document["paths"].items()
            for method in item if method in HTTP_METHODS
            if path.startswith("/api/") or not under_api}


def test_document_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    assert document["openapi"].startswith("3.1.")
    validate(document)


def test_validator_would_catch_a_broken_document(document: dict[str, Any]) -> None:
    broken = {**document, "paths": {"/x": {"get": {"responses": {"200": {}}}}}}
    with pytest.raises(OpenAPIValidationError):
        validate(broken)


def test_served_document_is_the_apps(app: Starlette, document: dict[str, Any]) -> None:
    assert app.state.openapi["paths"].keys() == document["paths"].keys()


def test_every_api_route_is_documented_and_nothing_else(app: Starlette,
                                                        document: dict[str, Any]) -> None:
    routes = _api_routes(list(app.routes))
    documented = _documented(document)
    assert routes, "no API routes found"
    assert routes - documented == set(), "routes missing from the OpenAPI document"
    assert documented - routes == set(), "documented operations without a route"


def test_operations_are_complete(document: dict[str, Any]) -> None:
    operation_ids: list[str] = []
    for path, item in document["paths"].items():
        params = set(re.findall(r"{([^}]+)}", path))
        for method, operation in item.items():
            if method not in HTTP_METHODS:
                continue
            where = f"{method.upper()} {path}"
            assert operation.get("summary"), where
            operation_ids.append(operation["operationId"])
            declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            assert declared == params, where
            if path.startswith("/api/v1/") and path != "/api/v1/openapi.json":
                assert "default" in operation["responses"], where  # the error shape
            if method in ("post", "put", "patch") and "requestBody" in operation:
                content = operation["requestBody"]["content"]
                assert content, where
    assert len(operation_ids) == len(set(operation_ids)), "operationIds must be unique"


def test_error_schema_is_the_api_md_shape(document: dict[str, Any]) -> None:
    error = document["components"]["schemas"]["Error"]
    assert error["required"] == ["error"]
    assert set(error["properties"]["error"]["required"]) == {"code", "message"}
