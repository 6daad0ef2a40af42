"""HTTP scaffolding every service shares: health, metrics, correlation ids, errors.

- `GET /health/live`: the process answers.
- `GET /health/ready`: 200 when the database and broker are reachable and the
  projections have caught up; 503 with the failing checks otherwise.
- `GET /metrics`: Prometheus text format.
- `GET /asyncapi.json`: the AsyncAPI document of every topic (`contracts/asyncapi.json`).
Every response carries `X-Correlation-ID` (the caller's, or a new one); commands record
it, with the actor (the bearer token's subject, see `security.py`), on the events they
cause. Every other route needs a bearer token and declares its permission; commands and
reads of personal data are written to the audit log (`audit.py`).
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
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint

from contracts.asyncapi import ASYNCAPI_FILE
from services.runtime.errors import CommandRejected
from services.runtime.http.audit import AuditLog
from services.runtime.http.idempotency import IdempotencyMiddleware
from services.runtime.http.security import (
    Principal,
    RateLimiter,
    SecurityMiddleware,
    TokenVerifier,
    refuse_undeclared,
)
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

    @property
    def ready(self) -> bool:
        return all(self.checks.values())


ReadinessCheck = Callable[[], Awaitable[Readiness]]

CORRELATION_HEADER = "X-Correlation-ID"
RETRY_AFTER_SECONDS = 1
"""What a 503 after a transient database or broker error asks the client to wait."""


def error_body(message: str, **extra: Any) -> dict[str, Any]:
    return {"error": message, **extra}


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
                        request.url.path,
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
    audit: AuditLog | None = None,
    pool: Callable[[], asyncpg.Pool | None] | None = None,
) -> FastAPI:
    app = FastAPI(
        title=title,
        description=description,
        version="1.0.0",
        lifespan=lifespan,
        dependencies=[Depends(refuse_undeclared)],
        responses={
            401: {"description": "No bearer token, or one that does not verify."},
            403: {"description": "The token's roles lack the permission this needs."},
            413: {"description": "The request body is too large."},
            422: {"description": "The request is invalid; `error` says what to fix."},
            429: {"description": "Too many requests with this token; see `Retry-After`."},
            503: {
                "description": "The database or the broker is briefly unavailable; nothing "
                "was changed unless the same request is found done when retried after "
                "`Retry-After`."
            },
        },
    )
    # the last added runs first: correlation id and metrics, then authentication, then
    # the answers to repeated commands (the caller's keys)
    if pool is not None:
        app.add_middleware(IdempotencyMiddleware, pool=pool)
    app.add_middleware(SecurityMiddleware, verifier=verifier, limiter=limiter, max_body=max_body)
    app.add_middleware(RequestContextMiddleware, service=service, audit=audit)

    @app.exception_handler(CommandRejected)
    async def _rejected(_: Request, exc: CommandRejected) -> JSONResponse:
        return JSONResponse(error_body(str(exc)), status_code=exc.status_code)

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
        summary="Database and broker reachable, projections caught up",
        responses={503: {"description": "Not ready; `checks` shows what fails."}},
    )
    async def ready() -> JSONResponse:
        state = await readiness()
        return JSONResponse(
            {
                "status": "ready" if state.ready else "not ready",
                "checks": state.checks,
                "problems": state.problems,
            },
            status_code=200 if state.ready else 503,
        )

    @app.get("/metrics", tags=["operations"], summary="Prometheus metrics")
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    asyncapi_document = ASYNCAPI_FILE.read_bytes()

    @app.get(
        "/asyncapi.json",
        tags=["operations"],
        summary="AsyncAPI document of every Kafka topic, inbound and outbound",
        response_class=Response,
        responses={200: {"content": {"application/json": {}}}},
    )
    async def asyncapi() -> Response:
        return Response(asyncapi_document, media_type="application/json")

    return app
