"""HTTP scaffolding every service shares: health, metrics, correlation ids, errors.

- `GET /health/live`: the process answers.
- `GET /health/ready`: 200 when the database and broker are reachable and the
  projections are caught up within the lag readiness allows; 503 with the failing checks
  otherwise.
- `GET /metrics`: Prometheus text format.
- `GET /asyncapi.json`: the AsyncAPI document of every topic (`contracts/asyncapi.json`).
Every response carries `X-Correlation-ID` (the caller's, or a new one); commands record
it, with the actor (the bearer token's subject, see `security.py`), on the events they
cause. Every other route needs a bearer token and declares its permission; commands and
reads of personal data are written to the audit log (`audit.py`).

Every refusal is a JSON object whose `error` says what is wrong (`ErrorAnswer`): also an
unknown path (404) and a method the path does not take (405, with an `Allow` header
naming every method it does take). The OpenAPI document names, on every operation, the
refusals it can answer (`document_responses`): 400, 401, 403, 422, 429 and 503
everywhere a token is needed, 404 where the path names something, 409 and 413 on
commands, and the CSV form of every list that has one. A transient database or broker
error (`services/runtime/transient.py`) answers 503 with `Retry-After`, never 500.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any

import asyncpg
from fastapi import Depends, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.routing import compile_path

from contracts.asyncapi import ASYNCAPI_FILE
from services.runtime.customer_aliases import NOT_REDIRECTED
from services.runtime.errors import CommandRejected
from services.runtime.http.audit import AuditLog, recordable_path
from services.runtime.http.authentication import TokenVerifier
from services.runtime.http.authorization import api_routes, is_public, refuse_undeclared
from services.runtime.http.idempotency import IdempotencyMiddleware
from services.runtime.http.parameters import ControlCharacterGuard, document_text_parameters
from services.runtime.http.rate_limit import RateLimiter
from services.runtime.http.roles import Principal
from services.runtime.http.security import SecurityMiddleware
from services.runtime.metrics import HTTP_REQUESTS, HTTP_SECONDS
from services.runtime.storage.eventstore import CommandContext, command_context
from services.runtime.transient import TRANSIENT_ERRORS

log = logging.getLogger(__name__)
access_log = logging.getLogger("crm.access")


@dataclass(frozen=True)
class Readiness:
    """Each check and whether it passes; `problems` says what an operator must do."""

    checks: dict[str, bool]
    problems: list[str] = field(default_factory=list)
    informational: frozenset[str] = frozenset()
    """Checks reported without deciding readiness (e.g. lag exactly zero)."""
    lag: dict[str, int] = field(default_factory=dict)
    """Messages each consumer is behind, as last measured."""

    @property
    def ready(self) -> bool:
        return all(ok for name, ok in self.checks.items() if name not in self.informational)


ReadinessCheck = Callable[[], Awaitable[Readiness]]

CORRELATION_HEADER = "X-Correlation-ID"
RETRY_AFTER_SECONDS = 1
"""What a 503 after a transient database or broker error asks the client to wait."""


def error_body(message: str, **extra: Any) -> dict[str, Any]:
    return {"error": message, **extra}


class ErrorDetail(BaseModel):
    location: list[str] = Field(
        description="Where: `query`, `path`, `header` or `body`, then names."
    )
    message: str


class ErrorAnswer(BaseModel):
    """Every refusal: `error` says what is wrong and what to do."""

    error: str
    details: list[ErrorDetail] | None = Field(
        default=None, description="With 422: each invalid value, where it is."
    )


COMMON_REFUSALS: dict[int, str] = {
    400: "A parameter holds what no route can use (a control character, a cursor this "
    "service did not issue, a malformed header); `error` says which.",
    401: "No bearer token, or one that does not verify.",
    403: "The token's roles lack the permission this needs.",
    422: "The request is invalid; `error` says what to fix.",
    429: "Too many requests (per token subject, or per client address without a valid "
    "token), or too many open streams; see `Retry-After`.",
    503: "The database or the broker is briefly unavailable; retry after `Retry-After` "
    "(a command with the same `Idempotency-Key`).",
}
NOT_FOUND = "Nothing of that id (or not yet: the read model may not have caught up)."
CONFLICT = "The version in `If-Match` is not the current one, or the command contradicts "
CONFLICT += "the current state."
TOO_LARGE = "The request body is larger than the limit."
ERASED = "The customer was erased: nothing personal about them can be read or recorded."
CSV_CONTENT = {"text/csv": {"schema": {"type": "string"}}}


MERGED_AWAY = (
    "The customer was merged into another one: `Location` names the same read of the "
    "survivor, the body `merged_into` and `merge_id` (`services.runtime.customer_aliases`)."
)


def names_a_customer(path: str, operation: dict[str, Any]) -> bool:
    """Whether a read names one customer (`customer_id` in its path or query) that a
    merge redirects."""
    if path.endswith(NOT_REDIRECTED):
        return False
    return "{customer_id}" in path or any(
        p.get("name") == "customer_id" for p in operation.get("parameters", [])
    )


def names_ids_in_body(schema: dict[str, Any], operation: dict[str, Any]) -> bool:
    """Whether an operation's body names something by id (a `uuid` value anywhere in it,
    `$ref`s followed): a command answers 404 when nothing has that id."""
    definitions = schema.get("components", {}).get("schemas", {})
    followed: set[str] = set()

    def holds_an_id(node: Any) -> bool:
        if isinstance(node, list):
            return any(holds_an_id(item) for item in node)
        if not isinstance(node, dict):
            return False
        reference = node.get("$ref")
        if isinstance(reference, str):
            name = reference.rsplit("/", 1)[-1]
            if name in followed:
                return False
            followed.add(name)
            return holds_an_id(definitions.get(name))
        return node.get("format") == "uuid" or any(holds_an_id(v) for v in node.values())

    return holds_an_id(operation.get("requestBody", {}).get("content", {}))


def document_responses(app: FastAPI) -> None:
    """Name on every operation the refusals it can answer, and the CSV form of every list
    that has one (`format=csv` or a path ending in `.csv`), in the OpenAPI document."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        schema: dict[str, Any] = build()
        if "ErrorAnswer" in schema.get("components", {}).get("schemas", {}):
            return schema  # the cached document is documented already
        schemas = schema.setdefault("components", {}).setdefault("schemas", {})
        definition = ErrorAnswer.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(definition.pop("$defs", {}))
        schemas["ErrorAnswer"] = definition
        error = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorAnswer"}}}
        for path, item in schema.get("paths", {}).items():
            for method, operation in item.items():
                refusals = {400: COMMON_REFUSALS[400]}
                if not is_public(path):
                    refusals.update(COMMON_REFUSALS)
                    if "{" in path or names_ids_in_body(schema, operation):
                        refusals[404] = NOT_FOUND
                    if method not in ("get", "head"):
                        refusals[409] = CONFLICT
                        refusals[413] = TOO_LARGE
                    if method not in ("get", "head") or "{customer_id}" in path:
                        refusals[410] = ERASED
                responses = operation.setdefault("responses", {})
                if method in ("get", "head") and names_a_customer(path, operation):
                    responses.setdefault("307", {"description": MERGED_AWAY})
                for status, description in refusals.items():
                    responses.setdefault(str(status), {"description": description})
                for status, answer in responses.items():
                    if status.startswith(("4", "503")):  # also those a route declares itself
                        answer["content"] = error
                params = operation.get("parameters", [])
                csv_form = path.endswith(".csv") or any(
                    p.get("name") == "format" and "csv" in p.get("schema", {}).get("enum", [])
                    for p in params
                )
                if csv_form:
                    ok = responses.setdefault("200", {"description": "Successful Response"})
                    content = ok.setdefault("content", {})
                    if path.endswith(".csv"):
                        content.pop("application/json", None)
                    content.update(CSV_CONTENT)
        document_text_parameters(schema)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def allowed_methods(app: FastAPI, path: str) -> list[str]:
    """Every method some route takes at `path`."""
    return sorted(
        {route.method for route in api_routes(app) if compile_path(route.path)[0].match(path)}
    )


class FixedPathMethods:
    """A path some route names literally (`/opportunities/export.csv`) takes that route's
    methods only: `PATCH /opportunities/export.csv` answers 405 with `Allow: GET`, as the
    OpenAPI document says, rather than reaching `PATCH /opportunities/{opportunity_id}`
    with `export.csv` for an id."""

    def __init__(self, app: Any, api: FastAPI) -> None:
        self.app = app
        self.api = api
        self._fixed: dict[str, set[str]] | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            if self._fixed is None:
                self._fixed = {}
                for route in api_routes(self.api):
                    if "{" not in route.path:
                        self._fixed.setdefault(route.path, set()).add(route.method)
            methods = self._fixed.get(scope["path"])
            if methods is not None and scope["method"] not in methods:
                allow = ", ".join(sorted(methods))
                message = f"{scope['path']} takes {allow}, not {scope['method']}"
                answer = JSONResponse(error_body(message), 405, headers={"Allow": allow})
                await answer(scope, receive, send)
                return
        await self.app(scope, receive, send)


class RequestContextMiddleware(BaseHTTPMiddleware):
    """Sets the command context, records request metrics by route template and hands
    each request to the audit log."""

    def __init__(self, app: Any, service: str, audit: AuditLog | None = None) -> None:
        super().__init__(app)
        self._service = service
        self._audit = audit

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        correlation_id = (request.headers.get(CORRELATION_HEADER) or str(uuid.uuid4()))[:200]
        context = CommandContext(
            actor="anonymous", correlation_id=correlation_id, causation_id=correlation_id
        )
        started = time.perf_counter()
        with command_context(context):
            try:
                response = await call_next(request)
            except Exception:
                if self._audit is not None:  # an unhandled error: still who tried what
                    user_agent = request.headers.get("user-agent")
                    self._audit.observe(request.scope, 500, correlation_id, user_agent)
                raise
            elapsed = time.perf_counter() - started
            template = getattr(request.scope.get("route"), "path", "unmatched")
            principal = request.scope.get("state", {}).get("principal")
            caller = principal.subject if isinstance(principal, Principal) else context.actor
            if not template.startswith(("/health", "/metrics")):
                with command_context(replace(context, actor=caller)):
                    access_log.info(
                        "%s %s %d %.1fms",
                        request.method,
                        recordable_path(template, request.path_params),
                        response.status_code,
                        elapsed * 1000,
                        extra={"status": response.status_code, "route": template},
                    )
            if self._audit is not None:
                self._audit.observe(
                    request.scope,
                    response.status_code,
                    correlation_id,
                    request.headers.get("user-agent"),
                    response.headers.get("location"),
                )
        HTTP_REQUESTS.labels(
            self._service, template, request.method, str(response.status_code)
        ).inc()
        HTTP_SECONDS.labels(self._service, template, request.method).observe(elapsed)
        response.headers[CORRELATION_HEADER] = correlation_id
        return response


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for item in exc.errors():
        if item.get("type") == "json_invalid":
            reason = item.get("ctx", {}).get("error", "")
            parts.append(f"the request body is not valid JSON ({reason})")
            continue
        location = ".".join(str(p) for p in item.get("loc", ()) if p != "body")
        parts.append(f"{location or 'body'}: {item.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


def create_app(
    *,
    service: str,
    title: str,
    description: str,
    readiness: ReadinessCheck,
    liveness: Callable[[], list[str]] = list,
    lifespan: Any,
    verifier: TokenVerifier,
    limiter: RateLimiter,
    max_body: int,
    max_upload: int | None = None,
    audit: AuditLog | None = None,
    pool: Callable[[], asyncpg.Pool | None] | None = None,
    anonymous_limiter: RateLimiter | None = None,
    idempotency_takeover_seconds: float = 10,
) -> FastAPI:
    app = FastAPI(
        title=title,
        description=description,
        version="1.0.0",
        lifespan=lifespan,
        dependencies=[Depends(refuse_undeclared)],
    )
    # the last added runs first: correlation id and metrics, then authentication, then
    # the answers to repeated commands (the caller's keys), then the methods of fixed
    # paths, then the refusal of control characters
    app.add_middleware(ControlCharacterGuard)
    app.add_middleware(FixedPathMethods, api=app)
    if pool is not None:
        app.add_middleware(
            IdempotencyMiddleware,
            pool=pool,
            routes=lambda: app.router.routes,
            takeover_seconds=idempotency_takeover_seconds,
        )
    app.add_middleware(
        SecurityMiddleware,
        verifier=verifier,
        limiter=limiter,
        max_body=max_body,
        anonymous_limiter=anonymous_limiter,
        max_upload=max_upload,
    )
    app.add_middleware(RequestContextMiddleware, service=service, audit=audit)
    document_responses(app)

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> JSONResponse:
        headers = dict(exc.headers or {})
        message = str(exc.detail)
        if exc.status_code == 404:
            message = f"no route {request.url.path}; see /openapi.json for the routes"
        if exc.status_code == 405:
            methods = allowed_methods(app, request.url.path)
            headers["Allow"] = ", ".join(methods)
            message = f"{request.url.path} takes {', '.join(methods)}, not {request.method}"
        return JSONResponse(error_body(message), exc.status_code, headers=headers)

    @app.exception_handler(CommandRejected)
    async def _rejected(_: Request, exc: CommandRejected) -> JSONResponse:
        headers = getattr(exc, "headers", None)
        return JSONResponse(error_body(str(exc)), status_code=exc.status_code, headers=headers)

    async def _unavailable(_: Request, exc: Exception) -> JSONResponse:
        log.warning("answered 503 after a transient error: %r", exc)
        return JSONResponse(
            error_body("the database or the broker is briefly unavailable: retry shortly"),
            status_code=503,
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )

    for transient in TRANSIENT_ERRORS:
        if issubclass(transient, Exception):  # all of them; the check is for the types
            app.add_exception_handler(transient, _unavailable)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        details = [
            {"location": [str(p) for p in e.get("loc", ())], "message": e.get("msg")}
            for e in exc.errors()
        ]
        return JSONResponse(error_body(_validation_message(exc), details=details), 422)

    @app.get(
        "/health/live",
        tags=["operations"],
        summary="The process is alive: no background task ended, no consumer stalled",
        responses={503: {"description": "Restart it; `problems` says why."}},
    )
    async def live() -> JSONResponse:
        problems = liveness()
        if problems:
            return JSONResponse({"status": "failing", "problems": problems}, status_code=503)
        return JSONResponse({"status": "alive"})

    @app.get(
        "/health/ready",
        tags=["operations"],
        summary="Database and broker reachable, projections caught up within a bounded lag",
        responses={503: {"description": "Not ready; `checks` shows what fails."}},
    )
    async def ready() -> JSONResponse:
        state = await readiness()
        return JSONResponse(
            {
                "status": "ready" if state.ready else "not ready",
                "checks": state.checks,
                "problems": state.problems,
                "lag": state.lag,
            },
            status_code=200 if state.ready else 503,
        )

    @app.get(
        "/metrics",
        tags=["operations"],
        summary="Prometheus metrics (text exposition format)",
        response_class=Response,
        responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
    )
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    asyncapi_document = ASYNCAPI_FILE.read_bytes()

    @app.get(
        "/asyncapi.json",
        tags=["operations"],
        summary="AsyncAPI document of every Kafka topic, inbound and outbound",
        response_class=Response,
        responses={200: {"content": {"application/json": {"schema": {"type": "object"}}}}},
    )
    async def asyncapi() -> Response:
        return Response(asyncapi_document, media_type="application/json")

    return app
