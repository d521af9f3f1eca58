"""A small router for the JSON API: each route declares its method, path, body model, response
model and summary once; from that we build the Starlette route (parse → validate → run in a
transaction → render) and the OpenAPI document, so the two cannot drift apart."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from app.errors import BadRequest, NotSignedIn, PayloadTooLarge, UnsupportedMediaType
from app.http.context import CSRF_HEADER, UNSAFE_METHODS, Ctx, authenticate, check_csrf
from app.http.context import in_transaction as run_in_transaction
from app.http.cookies import apply_cookies
from app.http.search_gate import in_search_transaction
from app.i18n import N_

Handler = Callable[..., Any]


@dataclass(frozen=True)
class ApiRoute:
    method: str
    path: str
    handler: Handler
    summary: str
    body: type[BaseModel] | None
    response: Any  # a BaseModel subclass, list[Model], or None for an empty answer
    status: int
    auth: bool
    query: type[BaseModel] | None
    tag: str
    # Multipart uploads: ``precheck(ctx, **path_params)`` refuses early (before any byte is
    # stored); the file then streams into a blob and the handler gets it as ``received``.
    precheck: Handler | None = None
    # An upload route may also take JSON (``POST .../versions`` snapshots a note): then this
    # body model and handler serve the request like any JSON route.
    json_body: type[BaseModel] | None = None
    json_handler: Handler | None = None
    # Searches run on their own thread pool with a per-person limit (app.http.search_gate).
    search_pool: bool = False


class ApiRouter:
    def __init__(self, prefix: str = "/api/v1") -> None:
        self.prefix = prefix
        self.api_routes: list[ApiRoute] = []

    def route(self, method: str, path: str, *, summary: str, tag: str,
              body: type[BaseModel] | None = None, response: Any = None, status: int = 200,
              auth: bool = True, query: type[BaseModel] | None = None,
              precheck: Handler | None = None, json_body: type[BaseModel] | None = None,
              json_handler: Handler | None = None,
              search_pool: bool = False) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.api_routes.append(ApiRoute(method.upper(), self.prefix + path, handler, summary,
                                            body, response, status, auth, query, tag, precheck,
                                            json_body, json_handler, search_pool))
            return handler
        return register

    def starlette_routes(self) -> list[Route]:
        by_path: dict[str, dict[str, ApiRoute]] = {}
        for api_route in self.api_routes:
            by_path.setdefault(api_route.path, {})[api_route.method] = api_route
        return [Route(path, _dispatcher(methods), methods=list(methods))
                for path, methods in by_path.items()]


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"The request body is larger than {limit} bytes.")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"The request body is larger than {limit} bytes.")
        chunks.append(chunk)
    return b"".join(chunks)


def validation_error(exc: ValidationError) -> BadRequest:
    first = exc.errors()[0]
    field = ".".join(str(part) for part in first.get("loc", ()) if part != "__root__") or None
    message = first.get("msg", "invalid value")
    return BadRequest(f"{field}: {message}" if field else message, code="invalid_field",
                      field=field)


def parse_json_body(request: Request, raw: bytes, model: type[BaseModel]) -> BaseModel:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if not raw and content_type == "":
        raw, content_type = b"{}", "application/json"
    if content_type != "application/json":
        raise UnsupportedMediaType(N_("Send JSON with Content-Type: application/json."))
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadRequest(f"The body is not valid JSON: {exc}", code="malformed_json") from exc
    if not isinstance(data, dict):
        raise BadRequest(N_("The body must be a JSON object."), code="malformed_json")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation_error(exc) from exc


def parse_query(request: Request, model: type[BaseModel]) -> BaseModel:
    try:
        # The running settings give list endpoints their page sizes (app.schemas.common.Page).
        return model.model_validate(dict(request.query_params),
                                    context={"settings": request.app.state.runtime.settings})
    except ValidationError as exc:
        raise validation_error(exc) from exc


def to_jsonable(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, list | tuple):
        return [to_jsonable(item) for item in value]
    if isinstance(value, dict):
        return {key: to_jsonable(item) for key, item in value.items()}
    return value


async def _upload(request: Request, api_route: ApiRoute, kwargs: dict[str, Any]) -> Response:
    from app.http.uploads import receive_file

    runtime = request.app.state.runtime
    precheck = api_route.precheck
    assert precheck is not None  # noqa: S101 - only upload routes come here

    def check(ctx: Ctx) -> None:
        authenticate(ctx)
        if ctx.user is None:
            raise NotSignedIn()
        check_csrf(ctx, request.headers.get(CSRF_HEADER))
        precheck(ctx, **kwargs)

    await run_in_transaction(request, write=False, fn=check)
    received = await receive_file(request, runtime.blob_store,
                                  runtime.settings.max_upload_bytes)

    def run(ctx: Ctx) -> Any:
        authenticate(ctx)
        if ctx.user is None:
            raise NotSignedIn()
        return to_jsonable(api_route.handler(ctx, received=received, **kwargs))

    try:
        result, ctx = await run_in_transaction(request, write=True, fn=run)
    except BaseException:
        # Not made visible: the blob is not referenced by any row, so remove it now (the
        # orphan collector would get it later anyway).
        await run_in_threadpool(runtime.blob_store.delete, received.blob.blob_id)
        raise
    status = api_route.status
    if isinstance(result, dict) and result.pop("_unchanged", False):
        await run_in_threadpool(runtime.blob_store.delete, received.blob.blob_id)
        status = 200
    response = JSONResponse(result, status_code=status)
    apply_cookies(response, ctx)
    return response


def _dispatcher(methods: dict[str, ApiRoute]) -> Callable[[Request], Any]:
    async def endpoint(request: Request) -> Response:
        # Starlette answers HEAD on GET routes; it is a GET without the body.
        api_route = methods["GET" if request.method == "HEAD" else request.method]
        runtime = request.app.state.runtime
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if api_route.json_handler is not None and content_type == "application/json":
            api_route = dataclasses.replace(api_route, precheck=None, body=api_route.json_body,
                                            handler=api_route.json_handler)
        kwargs: dict[str, Any] = dict(request.path_params)
        write = request.method in UNSAFE_METHODS
        if api_route.precheck is not None:
            if api_route.query is not None:
                kwargs["query"] = parse_query(request, api_route.query)
            return await _upload(request, api_route, kwargs)
        raw = b""
        if api_route.body is not None:
            raw = await read_body(request, runtime.settings.max_json_bytes)

        def run(ctx: Ctx) -> Any:
            # Who, then CSRF, then the input: a signed-out caller gets 401 whatever it sent,
            # and a cross-site form post is refused as such (403) before its body is looked at.
            authenticate(ctx)
            if api_route.auth and ctx.user is None:
                raise NotSignedIn()
            if write:
                check_csrf(ctx, request.headers.get(CSRF_HEADER))
            if api_route.query is not None:
                kwargs["query"] = parse_query(request, api_route.query)
            if api_route.body is not None:
                kwargs["body"] = parse_json_body(request, raw, api_route.body)
            result = api_route.handler(ctx, **kwargs)
            return result if isinstance(result, Response) else to_jsonable(result)

        if api_route.search_pool:
            result, ctx = await in_search_transaction(request, write=write, fn=run)
        else:
            result, ctx = await run_in_transaction(request, write=write, fn=run)
        if isinstance(result, Response):
            response = result
        elif result is None and api_route.response is None:
            response = Response(status_code=204 if api_route.status == 200 else api_route.status)
        else:
            response = JSONResponse(result, status_code=api_route.status)
        apply_cookies(response, ctx)
        return response

    endpoint.__name__ = "api_" + "_".join(r.handler.__name__ for r in methods.values())
    return endpoint


