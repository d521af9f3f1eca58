"""The OpenAPI 3.1 document, generated from the API router's declarations."""

from __future__ import annotations

import re
import types
import typing
from typing import Any

from pydantic import BaseModel, TypeAdapter

from app.http.api import ApiRoute, ApiRouter, Endpoints, UploadRoute

_PARAM = re.compile(r"{([^}:]+)(:[^}]+)?}")
_ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {"type": "object", "required": ["code", "message"], "properties": {
        "code": {"type": "string"}, "message": {"type": "string"},
        "field": {"type": "string"}}}},
}


def _schema(annotation: Any, defs: dict[str, Any]) -> dict[str, Any]:
    schema = TypeAdapter(annotation).json_schema(ref_template="#/components/schemas/{model}")
    defs.update(schema.pop("$defs", {}))
    return schema


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type[BaseModel]] = []
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is not None:
        for arg in typing.get_args(annotation):
            found.extend(_models_in(arg))
    return found


def _operation(endpoints: Endpoints, defs: dict[str, Any]) -> dict[str, Any]:
    """One operation; an upload that also takes JSON is described as the upload, with both
    request bodies."""
    route: ApiRoute | UploadRoute
    if endpoints.upload is not None:
        route = endpoints.upload
        query, auth = None, True
    else:
        assert endpoints.json is not None  # noqa: S101 - one of the two is always there
        route = endpoints.json
        query, auth = route.query, route.auth
    params: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name, _ in _PARAM.findall(route.path)
    ]
    if query is not None:
        for name, field in query.model_fields.items():
            params.append({"name": name, "in": "query", "required": field.is_required(),
                           "schema": _schema(field.annotation, defs)})
    operation: dict[str, Any] = {
        "operationId": route.handler.__name__,
        "summary": route.summary,
        "tags": [route.tag],
        "parameters": params,
        "responses": {},
    }
    json_body = endpoints.json.body if endpoints.json is not None else None
    content: dict[str, Any] = {}
    if endpoints.upload is not None:
        content["multipart/form-data"] = {"schema": {
            "type": "object", "required": ["file"],
            "properties": {"file": {"type": "string", "format": "binary"}}}}
    if json_body is not None:
        content["application/json"] = {"schema": _schema(json_body, defs)}
    if content:
        operation["requestBody"] = {"required": True, "content": content}
    if route.response is None:
        operation["responses"][str(204 if route.status == 200 else route.status)] = {
            "description": "Done; no content."}
    else:
        for model in _models_in(route.response):
            _schema(model, defs)
        operation["responses"][str(route.status)] = {"description": "Success", "content": {
            "application/json": {"schema": _schema(route.response, defs)}}}
    operation["responses"]["default"] = {"description": "Error (API.md error shape)", "content": {
        "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    if auth:
        operation["security"] = [{"session": []}, {"bearer": []}]
    return operation


def openapi_document(router: ApiRouter, *, extra_paths: dict[str, Any] | None = None,
                     version: str = "0.1.0") -> dict[str, Any]:
    defs: dict[str, Any] = {"Error": _ERROR_SCHEMA}
    paths: dict[str, Any] = {}
    for path, methods in router.endpoints().items():
        for method, endpoints in methods.items():
            paths.setdefault(_PARAM.sub(r"{\1}", path), {})[method.lower()] = _operation(
                endpoints, defs)
    paths.update(extra_paths or {})
    return {
        "openapi": "3.1.0",
        "info": {"title": "Plein API", "version": version,
                 "description": "Groups, folders, documents, discussions and search of Plein."},
        "paths": paths,
        "components": {
            "schemas": defs,
            "securitySchemes": {
                "session": {"type": "apiKey", "in": "cookie", "name": "plein_session",
                            "description": "State-changing requests also need X-CSRF-Token."},
                "bearer": {"type": "http", "scheme": "bearer",
                           "description": "A personal access token (POST /api/v1/tokens)."},
            },
        },
    }
