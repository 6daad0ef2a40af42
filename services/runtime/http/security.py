"""The gate every HTTP request passes (`SecurityMiddleware`): who is calling, how often,
and how much they send.

- **Authentication**: every request except the public paths (`PUBLIC_PATHS`: health,
  metrics, API documents) carries `Authorization: Bearer <JWT>`, verified by
  `authentication.TokenVerifier`; its `sub` becomes the actor of the commands.
- **Authorization** is on the routes: each declares the permission it needs
  (`authorization.requires`); the middleware only stores the verified `Principal`.
- **Limits**: request bodies larger than `max_body_bytes` answer 413 (uploads,
  `is_upload`, up to `max_upload_bytes`); each token subject (the verified `sub`, however
  its token is spelled) may send `rate_limit_burst` requests at once and
  `rate_limit_per_minute` on average, then 429 with `Retry-After` (`rate_limit`);
  requests without a valid token are limited per client address
  (`rate_limit_anonymous_per_minute`) the same way.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import replace
from typing import Any

from starlette.datastructures import Headers
from starlette.responses import JSONResponse

from services.runtime.http.authentication import TokenVerifier, Unauthenticated
from services.runtime.http.authorization import is_public
from services.runtime.http.rate_limit import RateLimiter
from services.runtime.storage.eventstore import command_context, current_context

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

UPLOAD_SUFFIX = "/upload"
"""Routes that take a large streamed body (a file to import) end in this: their body may
be up to `max_upload_bytes` rather than `max_body_bytes`, and it is neither kept for the
audit log nor read whole for an `Idempotency-Key` (the route streams it)."""


def is_upload(scope: Scope) -> bool:
    return scope.get("method") == "POST" and str(scope.get("path", "")).endswith(UPLOAD_SUFFIX)


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
