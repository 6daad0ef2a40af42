"""Who may call the HTTP APIs: bearer tokens, roles, permissions and input limits.

- **Authentication** (`SecurityMiddleware`): every request except the public paths
  (`PUBLIC_PATHS`: health, metrics, API documents) carries `Authorization: Bearer <JWT>`,
  verified against the configured key (HS256 secret, RS256/ES256 public key or a JWKS
  file) with its expiry, issuer and audience. Its `sub` becomes the actor of the
  commands; its `roles` claim names roles of `ROLE_PERMISSIONS` (`roles.py`).
- **Authorization**: each route declares the one permission it needs, on the route:
  `@router.get(..., dependencies=[requires("customers:read")])`. A route that declares
  none is refused to everyone (`refuse_undeclared`), so a forgotten declaration fails
  closed, and the route-by-role test names it.
- **Tokens are checked before they are trusted**: a header that is not an object, an
  `alg` or `kid` that is not text, any `crit` member (no extension is understood), and
  `exp`, `nbf` or `iat` claims that are not finite numbers answer 401 saying which; no
  malformed token reaches a library that might fail on it with a server error.
- **Limits**: request bodies larger than `max_body_bytes` answer 413; each token subject
  (the verified `sub`, however its token is spelled) may send `rate_limit_burst` requests
  at once and `rate_limit_per_minute` on average, then 429 with `Retry-After`; requests
  without a valid token are limited per client address (`rate_limit_anonymous_per_minute`)
  the same way.
"""

from __future__ import annotations

import math
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, MutableMapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import fastapi.routing
import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from fastapi import Depends, Request
from fastapi.params import Depends as DependsParam
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.datastructures import Headers
from starlette.responses import JSONResponse

from services.runtime.errors import CommandRejected
from services.runtime.http.parameters import CONTROL_CHARACTERS
from services.runtime.http.roles import (
    PERMISSIONS,
    ROLE_PERMISSIONS,
    ROLES,
    Principal,
    permissions_of,
)
from services.runtime.settings import ServiceSettings
from services.runtime.storage.eventstore import command_context, current_context

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

PUBLIC_PATHS = frozenset(
    {
        "/health/live",
        "/health/ready",
        "/metrics",
        "/asyncapi.json",
        "/openapi.json",
        "/docs",
        "/docs/oauth2-redirect",
        "/redoc",
    }
)
"""Paths answered without a token: probes, metrics and the API documents."""


def is_public(path: str) -> bool:
    return path in PUBLIC_PATHS


UPLOAD_SUFFIX = "/upload"
"""Routes that take a large streamed body (a file to import) end in this: their body may
be up to `max_upload_bytes` rather than `max_body_bytes`, and it is neither kept for the
audit log nor read whole for an `Idempotency-Key` (the route streams it)."""


def is_upload(scope: Scope) -> bool:
    return scope.get("method") == "POST" and str(scope.get("path", "")).endswith(UPLOAD_SUFFIX)


# Errors ---------------------------------------------------------------------------------


class Forbidden(CommandRejected):
    status_code = 403


class Unauthenticated(Exception):
    """No token, or one that does not verify; `str(error)` says which."""

    def __init__(self, message: str, *, token_given: bool = True) -> None:
        super().__init__(message)
        self.token_given = token_given


class SecurityConfigError(Exception):
    """The settings name no usable key; the message says what to set."""


# Tokens ---------------------------------------------------------------------------------

MIN_SECRET_LENGTH = 32


@dataclass(frozen=True)
class TokenVerifier:
    keys: dict[str | None, Any]
    """Verification keys by `kid`; `None` for the one key used when a token names none."""
    algorithms: tuple[str, ...]
    issuer: str
    audience: str
    leeway: int = 30

    @classmethod
    def from_settings(cls, settings: ServiceSettings) -> TokenVerifier:
        sources = {
            "CRM_AUTH_SECRET": settings.auth_secret,
            "CRM_AUTH_SECRET_FILE": settings.auth_secret_file,
            "CRM_AUTH_PUBLIC_KEY": settings.auth_public_key,
            "CRM_AUTH_PUBLIC_KEY_FILE": settings.auth_public_key_file,
            "CRM_AUTH_JWKS_FILE": settings.auth_jwks_file,
        }
        given = [name for name, value in sources.items() if value is not None]
        if len(given) != 1:
            raise SecurityConfigError(
                "bearer tokens need exactly one verification key: set one of "
                + ", ".join(sources)
                + (f" (set: {', '.join(given)})" if given else " (none is set)")
            )
        issuer, audience = settings.auth_issuer, settings.auth_audience
        leeway = settings.auth_leeway_seconds
        if settings.auth_secret is not None or settings.auth_secret_file is not None:
            secret = (
                settings.auth_secret.get_secret_value()
                if settings.auth_secret is not None
                else _read(settings.auth_secret_file, "CRM_AUTH_SECRET_FILE").strip()
            )
            if len(secret) < MIN_SECRET_LENGTH:
                raise SecurityConfigError(
                    f"the HS256 secret must be at least {MIN_SECRET_LENGTH} characters long"
                )
            return cls(
                keys={None: secret.encode()},
                algorithms=("HS256",),
                issuer=issuer,
                audience=audience,
                leeway=leeway,
            )
        if settings.auth_jwks_file is not None:
            text = _read(settings.auth_jwks_file, "CRM_AUTH_JWKS_FILE")
            try:
                key_set = jwt.PyJWKSet.from_json(text)
            except (jwt.PyJWKError, ValueError) as exc:
                raise SecurityConfigError(
                    f"CRM_AUTH_JWKS_FILE is not a usable JWKS: {exc}"
                ) from None
            keys: dict[str | None, Any] = {k.key_id: k.key for k in key_set.keys}
            if len(key_set.keys) == 1:
                keys[None] = key_set.keys[0].key
            return cls(
                keys=keys,
                algorithms=("RS256", "ES256"),
                issuer=issuer,
                audience=audience,
                leeway=leeway,
            )
        pem = (
            settings.auth_public_key.get_secret_value()
            if settings.auth_public_key is not None
            else _read(settings.auth_public_key_file, "CRM_AUTH_PUBLIC_KEY_FILE")
        )
        try:
            public_key = load_pem_public_key(pem.encode())
        except ValueError:
            raise SecurityConfigError("the public key is not a PEM public key") from None
        if isinstance(public_key, rsa.RSAPublicKey):
            algorithms: tuple[str, ...] = ("RS256",)
        elif isinstance(public_key, ec.EllipticCurvePublicKey):
            algorithms = ("ES256",)
        else:
            raise SecurityConfigError("the public key must be an RSA or EC (P-256) key")
        return cls(
            keys={None: public_key},
            algorithms=algorithms,
            issuer=issuer,
            audience=audience,
            leeway=leeway,
        )

    def verify(self, token: str) -> Principal:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.DecodeError:
            raise Unauthenticated("the bearer token is not a JWT") from None
        except (jwt.InvalidTokenError, ValueError, TypeError) as exc:
            raise Unauthenticated(f"the bearer token's header is invalid: {exc}") from None
        kid = _checked_header(header)
        key = self.keys.get(kid) or self.keys.get(None)
        if key is None:
            raise Unauthenticated(f"the bearer token names an unknown key {kid!r:.60}")
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=list(self.algorithms),
                audience=self.audience,
                issuer=self.issuer,
                options={
                    "require": ["exp", "iss", "aud", "sub"],
                    # checked below, once they are known to be numbers
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                },
            )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("the bearer token has expired") from None
        except jwt.InvalidAudienceError:
            raise Unauthenticated(
                f"the bearer token is not for audience {self.audience!r}"
            ) from None
        except jwt.InvalidIssuerError:
            raise Unauthenticated(f"the bearer token was not issued by {self.issuer!r}") from None
        except jwt.MissingRequiredClaimError as exc:
            raise Unauthenticated(f"the bearer token lacks the {exc.claim!r} claim") from None
        except jwt.InvalidAlgorithmError:
            raise Unauthenticated(
                f"the bearer token must be signed with {' or '.join(self.algorithms)}"
            ) from None
        except jwt.InvalidSignatureError:
            raise Unauthenticated("the bearer token's signature does not verify") from None
        except jwt.InvalidTokenError as exc:
            raise Unauthenticated(f"the bearer token is invalid: {exc}") from None
        except (ValueError, TypeError, OverflowError):
            raise Unauthenticated("the bearer token's claims are malformed") from None
        self._check_times(claims)
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject.strip():
            raise Unauthenticated("the bearer token's subject is empty")
        if CONTROL_CHARACTERS.search(subject):
            raise Unauthenticated("the bearer token's subject holds a control character")
        raw_roles = claims.get("roles", claims.get("role", []))
        if isinstance(raw_roles, str):
            raw_roles = [raw_roles]
        if not isinstance(raw_roles, list):
            raise Unauthenticated("the bearer token's roles claim must be a list of names")
        if not all(isinstance(r, str) for r in raw_roles):
            raise Unauthenticated("the bearer token's roles claim must be a list of names")
        roles = tuple(raw_roles)
        return Principal(
            subject=subject.strip()[:200],
            roles=roles,
            permissions=permissions_of(roles),
        )

    def _check_times(self, claims: dict[str, Any]) -> None:
        """`exp` (required), `nbf` and `iat` are finite numbers; `exp` has not passed and
        `nbf` has come, give or take the leeway."""
        for name in ("exp", "nbf", "iat"):
            value = claims.get(name)
            if name not in claims:
                continue
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise Unauthenticated(f"the bearer token's {name!r} claim must be a number")
            if not math.isfinite(value) or abs(value) > MAX_TIME_CLAIM:
                raise Unauthenticated(f"the bearer token's {name!r} claim is out of range")
        now = time.time()
        if claims["exp"] + self.leeway <= now:
            raise Unauthenticated("the bearer token has expired")
        if "nbf" in claims and claims["nbf"] - self.leeway > now:
            raise Unauthenticated("the bearer token is not valid yet")


MAX_TIME_CLAIM = 253_402_300_799
"""The last second of year 9999: a time claim beyond it is no time at all."""


def _checked_header(header: Any) -> str | None:
    """The `kid` of a token header fit to be read; 401 for one that is not."""
    if not isinstance(header, dict):
        raise Unauthenticated("the bearer token's header is not a JSON object")
    if not isinstance(header.get("alg"), str):
        raise Unauthenticated("the bearer token's header names no algorithm")
    if "crit" in header:
        raise Unauthenticated("the bearer token's header has a `crit` member; none is understood")
    kid = header.get("kid")
    if kid is not None and not isinstance(kid, str):
        raise Unauthenticated("the bearer token's `kid` must be text")
    for name in ("typ", "cty"):
        if name in header and not isinstance(header[name], str):
            raise Unauthenticated(f"the bearer token's `{name}` must be text")
    return kid


def _read(path: Path | None, variable: str) -> str:
    assert path is not None
    try:
        return path.read_text()
    except OSError as exc:
        raise SecurityConfigError(f"{variable}: cannot read {path}: {exc.strerror}") from None


def mint_token(
    key: Any,
    subject: str,
    roles: Iterable[str],
    *,
    lifetime: timedelta = timedelta(hours=1),
    issuer: str = "crm",
    audience: str = "crm",
    algorithm: str = "HS256",
    key_id: str | None = None,
    now: datetime | None = None,
) -> str:
    """A signed token for `subject` with `roles` (for `crm up`, tests and tools)."""
    issued = now or datetime.now(UTC)
    claims = {
        "sub": subject,
        "roles": list(roles),
        "iss": issuer,
        "aud": audience,
        "iat": issued,
        "exp": issued + lifetime,
        "jti": secrets.token_hex(8),
    }
    headers = {"kid": key_id} if key_id else None
    return jwt.encode(claims, key, algorithm=algorithm, headers=headers)


def new_secret() -> str:
    """A fresh HS256 secret."""
    return secrets.token_urlsafe(48)


# Authorization --------------------------------------------------------------------------

bearer_scheme = HTTPBearer(
    auto_error=False,
    description="A JWT whose `sub` is the caller and whose `roles` name CRM roles.",
)


def principal_of(request: Request) -> Principal:
    principal = request.scope.get("state", {}).get("principal")
    if not isinstance(principal, Principal):
        raise Unauthenticated("no verified bearer token", token_given=False)
    return principal


class Requirement:
    """The permission a route needs (a dependency; its presence declares it)."""

    def __init__(self, permission: str) -> None:
        if permission not in PERMISSIONS:
            raise ValueError(f"unknown permission {permission!r}; add it to PERMISSIONS")
        self.permission = permission

    async def __call__(
        self,
        request: Request,
        _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
    ) -> Principal:
        principal = principal_of(request)
        if not principal.may(self.permission):
            roles = ", ".join(principal.roles) or "none"
            raise Forbidden(
                f"this needs the permission {self.permission!r}; your roles ({roles}) lack it"
            )
        return principal

    def __repr__(self) -> str:
        return f"requires({self.permission!r})"


def requires(permission: str) -> DependsParam:
    """Declare the permission a route needs: `dependencies=[requires("tickets:write")]`.
    (Which reads are audited follows from what the route answers: `audit.py`.)"""
    return Depends(Requirement(permission))


def route_requirement(route: Any) -> Requirement | None:
    """The permission a route declared, if any."""
    for dependency in getattr(route, "dependencies", ()):
        if isinstance(dependency.dependency, Requirement):
            return dependency.dependency
    return None


@dataclass(frozen=True)
class RouteInfo:
    method: str
    path: str
    requirement: Requirement | None
    route: APIRoute


def api_routes(app: Any) -> Iterator[RouteInfo]:
    """Every API route of `app` (routers included) with the permission it declares."""
    iterate = getattr(fastapi.routing, "iter_route_contexts", None)  # FastAPI >= 0.160
    for route in iterate(app.routes) if iterate is not None else app.routes:
        api_route = getattr(route, "route", route)
        if isinstance(api_route, APIRoute):
            for method in sorted(route.methods or ()):
                yield RouteInfo(method, route.path, route_requirement(route), api_route)


def document_permissions(app: Any) -> None:
    """Name each operation's permission in the OpenAPI document (`x-required-permission`
    and a sentence in its description), so API users know which role to ask for."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        schema: dict[str, Any] = build()
        for route in api_routes(app):
            operation = schema["paths"].get(route.path, {}).get(route.method.lower())
            if operation is None or route.requirement is None:
                continue
            if "x-required-permission" in operation:
                continue  # the cached document is documented already
            permission = route.requirement.permission
            roles = ", ".join(r for r in ROLES if permission in ROLE_PERMISSIONS[r])
            operation["x-required-permission"] = permission
            sentence = f"Needs the permission `{permission}` (roles: {roles})."
            operation["description"] = f"{operation.get('description', '')}\n\n{sentence}".strip()
        return schema

    app.openapi = openapi


async def refuse_undeclared(request: Request) -> None:
    """App-wide dependency: a route that declares no permission is refused to everyone
    (and so is a request whose route cannot be told: this fails closed)."""
    route = request.scope.get("route")
    path = getattr(route, "path", None)
    if path is not None and is_public(path):
        return
    if route is None or route_requirement(route) is None:
        raise Forbidden(
            f"{request.method} {path or request.url.path} declares no permission, so it is "
            "refused to everyone; declare one with requires(...)"
        )


Caller = Annotated[Principal, Depends(principal_of)]
"""A route parameter carrying the verified caller."""


# Rate limiting --------------------------------------------------------------------------


class RateLimiter:
    """A token bucket per key (a token's subject, a client's address): `burst` at once,
    refilled at `per_minute`."""

    def __init__(self, per_minute: int, burst: int, clock: Callable[[], float] = time.monotonic):
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}

    def take(self, key: str) -> float:
        """0 when the request may go ahead; otherwise seconds until it may."""
        if self.rate <= 0:
            return 0.0
        now = self.clock()
        tokens, last = self._buckets.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if tokens < 1:
            self._buckets[key] = (tokens, now)
            return (1 - tokens) / self.rate
        self._buckets[key] = (tokens - 1, now)
        if len(self._buckets) > 10_000:
            self._forget_full(now)
        return 0.0

    def _forget_full(self, now: float) -> None:
        full_after = self.burst / self.rate
        self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < full_after}


# Middleware -----------------------------------------------------------------------------


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def _too_many(message: str, wait: float) -> JSONResponse:
    retry = str(max(1, math.ceil(wait)))
    return _error(429, f"{message}; retry in {retry} s", {"Retry-After": retry})


def _quoted(text: str) -> str:
    return text.replace("\\", "").replace('"', "'")


class SecurityMiddleware:
    """Authenticates every non-public request, limits its rate and body size, and runs it
    as its token's subject. Stores the `Principal` in `scope["state"]["principal"]`, and a
    command's body (already bounded) in `scope["state"]["body"]` for the audit log."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        verifier: TokenVerifier,
        limiter: RateLimiter,
        max_body: int,
        anonymous_limiter: RateLimiter | None = None,
        max_upload: int | None = None,
    ) -> None:
        self.app = app
        self.verifier = verifier
        self.limiter = limiter
        self.anonymous_limiter = anonymous_limiter or RateLimiter(0, 1)
        self.max_body = max_body
        self.max_upload = max_upload or max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or is_public(scope["path"]):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        try:
            principal = self.verifier.verify(self._token(headers.get("authorization")))
        except Unauthenticated as exc:
            client = scope.get("client")
            wait = self.anonymous_limiter.take(f"address {client[0] if client else '?'}")
            if wait > 0:
                message = "too many requests without a valid token from this address"
                await _too_many(message, wait)(scope, receive, send)
                return
            challenge = 'Bearer realm="crm"'
            if exc.token_given:
                challenge += f', error="invalid_token", error_description="{_quoted(str(exc))}"'
            await _error(401, str(exc), {"WWW-Authenticate": challenge})(scope, receive, send)
            return
        wait = self.limiter.take(principal.subject)
        if wait > 0:
            message = f"too many requests as {principal.subject!r}"
            await _too_many(message, wait)(scope, receive, send)
            return
        upload = is_upload(scope)
        limit = self.max_upload if upload else self.max_body
        declared = headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._too_large(scope, receive, send, limit)
            return
        state = scope.setdefault("state", {})
        state["principal"] = principal
        keep_body = scope["method"] not in ("GET", "HEAD") and not upload
        received = 0
        chunks: list[bytes] = []
        refused = False

        async def limited_receive() -> Message:
            nonlocal received, refused
            message = await receive()
            if message["type"] == "http.request":
                body = message.get("body", b"")
                received += len(body)
                if received > limit:
                    if not refused:
                        refused = True
                        await self._too_large(scope, receive, send, limit)
                    return {"type": "http.disconnect"}
                if keep_body:
                    chunks.append(body)
                    if not message.get("more_body", False):
                        state["body"] = b"".join(chunks)
            return message

        async def guarded_send(message: Message) -> None:
            if not refused:
                await send(message)

        context = replace(current_context(), actor=principal.subject)
        with command_context(context):
            try:
                await self.app(scope, limited_receive, guarded_send)
            except Exception:
                if not refused:
                    raise
                # the route saw the body end early (ClientDisconnect); 413 is sent already

    def _token(self, authorization: str | None) -> str:
        if not authorization:
            raise Unauthenticated(
                "this needs a bearer token: send `Authorization: Bearer <token>`",
                token_given=False,
            )
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated("the Authorization header must be `Bearer <token>`")
        return token.strip()

    async def _too_large(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        message = f"the request body is larger than the limit of {limit} bytes"
        await _error(413, message)(scope, receive, send)
