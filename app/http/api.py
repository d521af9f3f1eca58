"""A small router for the JSON API: each route declares its method, path, body model, response
model and summary once; from that we build the Starlette route (parse → validate → run in a
transaction → render) and the OpenAPI document, so the two cannot drift apart."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from app.errors import BadRequest, NotSignedIn, PayloadTooLarge, UnsupportedMediaType
from app.http.context import CSRF_HEADER, UNSAFE_METHODS, Ctx, authenticate, check_csrf
from app.http.context import in_transaction as run_in_transaction
from app.http.cookies import apply_cookies
from app.http.search_gate import in_search_transaction
from app.http.upload_flow import Refused, Stored, UploadSteps, run_upload
from app.i18n import N_
from app.services.documents import ReceivedFile

Handler = Callable[..., Any]
UploadHandler = Callable[..., Stored[Any]]


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
    # Searches run on their own thread pool with a per-person limit (app.http.search_gate).
    search_pool: bool = False


@dataclass(frozen=True)
class UploadRoute:
    """A multipart upload (one part ``file``), run by :mod:`app.http.upload_flow`:
    ``precheck(ctx, **path_params)`` refuses before any byte is stored, then the file streams
    into a blob and ``handler(ctx, received, **path_params)`` makes it visible, answering
    :class:`~app.http.upload_flow.Stored` with the response model (201, or 200 when it
    created nothing). A JSON route on the same method and path serves JSON bodies
    (``POST .../versions`` snapshots a note)."""

    method: str
    path: str
    handler: UploadHandler
    precheck: Handler
    summary: str
    response: Any
    status: int
    tag: str


@dataclass(frozen=True)
class Endpoints:
    """What one method of one path runs: a JSON route, an upload, or both."""

    json: ApiRoute | None = None
    upload: UploadRoute | None = None

    @property
    def name(self) -> str:
        return "_".join(r.handler.__name__ for r in (self.json, self.upload) if r is not None)


class ApiRouter:
    def __init__(self, prefix: str = "/api/v1") -> None:
        self.prefix = prefix
        self.api_routes: list[ApiRoute] = []
        self.upload_routes: list[UploadRoute] = []

    def route(self, method: str, path: str, *, summary: str, tag: str,
              body: type[BaseModel] | None = None, response: Any = None, status: int = 200,
              auth: bool = True, query: type[BaseModel] | None = None,
              search_pool: bool = False) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.api_routes.append(ApiRoute(method.upper(), self.prefix + path, handler, summary,
                                            body, response, status, auth, query, tag,
                                            search_pool))
            return handler
        return register

    def upload(self, method: str, path: str, *, summary: str, tag: str, response: Any,
               precheck: Handler, status: int = 201) -> Callable[[UploadHandler],
                                                                 UploadHandler]:
        def register(handler: UploadHandler) -> UploadHandler:
            self.upload_routes.append(UploadRoute(method.upper(), self.prefix + path, handler,
                                                  precheck, summary, response, status, tag))
            return handler
        return register

    def endpoints(self) -> dict[str, dict[str, Endpoints]]:
        """Path → method → what runs there (for Starlette and the OpenAPI document)."""
        by_path: dict[str, dict[str, Endpoints]] = {}
        for api_route in self.api_routes:
            methods = by_path.setdefault(api_route.path, {})
            methods[api_route.method] = replace(methods.get(api_route.method, Endpoints()),
                                                json=api_route)
        for upload in self.upload_routes:
            methods = by_path.setdefault(upload.path, {})
            methods[upload.method] = replace(methods.get(upload.method, Endpoints()),
                                             upload=upload)
        return by_path

    def starlette_routes(self) -> list[Route]:
        return [Route(path, _dispatcher(methods), methods=list(methods))
                for path, methods in self.endpoints().items()]


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


# Fields that name a thing (a group, folder, document or token): too long is ``name_too_long``.
NAME_FIELDS = frozenset({"name", "title", "plain_name"})


def validation_error(exc: ValidationError) -> BadRequest:
    first = exc.errors()[0]
    field = ".".join(str(part) for part in first.get("loc", ()) if part != "__root__") or None
    message = first.get("msg", "invalid value")
    if first.get("type") == "string_too_long":
        # Said plainly, with the limit, rather than as a generic invalid field: a name is
        # refused whole, never cut to fit (issue 17).
        limit = (first.get("ctx") or {}).get("max_length")
        message = f"{field}: too long, at most {limit} characters"
        if field in NAME_FIELDS:
            return BadRequest(message, code="name_too_long", field=field, extra={"limit": limit})
        return BadRequest(message, code="too_long", field=field, extra={"limit": limit})
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


async def _upload(request: Request, upload: UploadRoute, kwargs: dict[str, Any]) -> Response:
    def precheck(ctx: Ctx) -> None:
        upload.precheck(ctx, **kwargs)

    def store(ctx: Ctx, received: list[ReceivedFile]) -> Stored[Any]:
        stored = upload.handler(ctx, received=received[0], **kwargs)
        return replace(stored, answer=to_jsonable(stored.answer))

    outcome = await run_upload(request, UploadSteps(
        precheck=precheck, store=store, csrf_token=request.headers.get(CSRF_HEADER)))
    if isinstance(outcome, Refused):
        raise outcome.error
    stored = outcome.stored
    response = JSONResponse(stored.answer, status_code=upload.status if stored.created else 200)
    apply_cookies(response, outcome.ctx)
    return response


def _dispatcher(methods: dict[str, Endpoints]) -> Callable[[Request], Any]:
    async def endpoint(request: Request) -> Response:
        # Starlette answers HEAD on GET routes; it is a GET without the body.
        endpoints = methods["GET" if request.method == "HEAD" else request.method]
        runtime = request.app.state.runtime
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        kwargs: dict[str, Any] = dict(request.path_params)
        if endpoints.upload is not None and (endpoints.json is None
                                             or content_type != "application/json"):
            return await _upload(request, endpoints.upload, kwargs)
        api_route = endpoints.json
        assert api_route is not None  # noqa: S101 - every method has a JSON route or an upload
        write = request.method in UNSAFE_METHODS
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

    endpoint.__name__ = "api_" + "_".join(e.name for e in methods.values())
    return endpoint


