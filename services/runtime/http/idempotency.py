"""Idempotent commands: a command sent again with the same `Idempotency-Key` is answered
with what the first one answered, and nothing is done twice.

Every command (POST, PUT, PATCH, DELETE) accepts the header. The first request with a key
claims it for its caller (the token's subject) in the service's `idempotent_requests`
table, then runs; its answer is stored unless it was a server error or a 503, which
frees the key for the retry. A repeat within `CRM_IDEMPOTENCY_WINDOW_HOURS`:
- after the first answered: that answer again, with `Idempotent-Replayed: true`;
- while the first is still running (a client that gave up and retried): 409 with
  `Retry-After`, so the retry comes back for the first one's answer;
- with another method, path, query or body: 422, the key names another request.

The key is claimed before the command runs and answered after it committed, so a process
that dies in between leaves the key claimed without an answer: its repeats are answered
409 until the window ends rather than risking the command twice. (Creation commands that
derive the new aggregate's id from the key, as logging an interaction does, need no
answer to be recognised.)
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Match

from services.runtime.http.security import is_upload
from services.runtime.transient import TRANSIENT_ERRORS

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

HEADER = "idempotency-key"
MAX_KEY_LENGTH = 200
COMMAND_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
REPLAYED = "Idempotent-Replayed"
KEPT_HEADERS = frozenset({"content-type", "location", "etag"})
"""The answer's headers a replay repeats."""


@dataclass(frozen=True)
class Claim:
    """One caller's key in the service's `idempotent_requests` table."""

    pool: asyncpg.Pool
    actor: str
    key: str


def fingerprint(scope: Scope, body: bytes) -> bytes:
    request = b"\0".join(
        (scope["method"].encode(), scope["path"].encode(), scope.get("query_string", b""), body)
    )
    return hashlib.sha256(request).digest()


def _error(status: int, message: str, **headers: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


class IdempotencyMiddleware:
    """Answers repeated commands from the stored first answer (after authentication:
    the key is the caller's)."""

    def __init__(
        self,
        app: ASGIApp,
        pool: Callable[[], asyncpg.Pool | None],
        routes: Callable[[], Sequence[BaseRoute]],
    ) -> None:
        self.app = app
        self._pool = pool
        self._routes = routes

    def _is_command(self, scope: Scope) -> bool:
        """A command method on a route that takes it: anything else is the router's to
        refuse (404, 405), whatever key it carries."""
        return (
            scope["type"] == "http"
            and scope["method"] in COMMAND_METHODS
            and any(route.matches(scope)[0] is Match.FULL for route in self._routes())
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self._is_command(scope) or is_upload(scope):
            # an upload streams its body; the routes that take one are idempotent themselves
            await self.app(scope, receive, send)
            return
        key = next(
            (v.decode("latin-1") for k, v in scope["headers"] if k == b"idempotency-key"), ""
        )
        key = key.strip()
        pool = self._pool()
        principal = scope.get("state", {}).get("principal")
        if not key or pool is None or principal is None:
            await self.app(scope, receive, send)
            return
        if len(key) > MAX_KEY_LENGTH or not key.isprintable():
            await _error(
                422, f"Idempotency-Key must be at most {MAX_KEY_LENGTH} printable characters"
            )(scope, receive, send)
            return
        body, replay_receive = await _read_body(receive)
        try:
            claim = Claim(pool, principal.subject, key)
            await self._handle(scope, replay_receive, send, claim, body)
        except TRANSIENT_ERRORS as exc:
            log.warning("idempotency record unavailable: %r", exc)
            await _error(
                503, "the database is briefly unavailable: retry shortly", **{"Retry-After": "1"}
            )(scope, replay_receive, send)

    async def _handle(
        self, scope: Scope, receive: Receive, send: Send, claim: Claim, body: bytes
    ) -> None:
        pool, actor, key = claim.pool, claim.actor, claim.key
        mark = fingerprint(scope, body)
        claimed = await pool.fetchval(
            """INSERT INTO idempotent_requests (actor, key, fingerprint) VALUES ($1, $2, $3)
               ON CONFLICT (actor, key) DO NOTHING RETURNING true""",
            actor,
            key,
            mark,
        )
        if not claimed:
            await self._repeat(scope, receive, send, claim, body)
            return
        # the answer is kept before the client sees it: a repeat sent the moment the
        # first answer arrives finds it stored
        messages: list[Message] = []

        async def hold(message: Message) -> None:
            messages.append(message)

        try:
            await self.app(scope, receive, hold)
        finally:
            started = next((m for m in messages if m["type"] == "http.response.start"), {})
            status = int(started.get("status", 500))
            if status >= 500:
                await pool.execute(
                    "DELETE FROM idempotent_requests WHERE actor = $1 AND key = $2", actor, key
                )
            else:
                headers = {
                    k.decode("latin-1"): v.decode("latin-1")
                    for k, v in started.get("headers", [])
                    if k.decode("latin-1").lower() in KEPT_HEADERS
                }
                answer = b"".join(
                    m.get("body", b"") for m in messages if m["type"] == "http.response.body"
                )
                await pool.execute(
                    """UPDATE idempotent_requests
                       SET status = $3, headers = $4::jsonb, body = $5, answered_at = now()
                       WHERE actor = $1 AND key = $2""",
                    actor,
                    key,
                    status,
                    json.dumps(headers),
                    answer,
                )
        for message in messages:
            await send(message)

    async def _repeat(
        self, scope: Scope, receive: Receive, send: Send, claim: Claim, body: bytes
    ) -> None:
        pool, actor, key = claim.pool, claim.actor, claim.key
        mark = fingerprint(scope, body)
        first = await pool.fetchrow(
            """SELECT fingerprint, status, headers, body FROM idempotent_requests
               WHERE actor = $1 AND key = $2""",
            actor,
            key,
        )
        if first is None:  # freed meanwhile (the first failed): this one may go
            await self._handle(scope, receive, send, claim, body)
            return
        if bytes(first["fingerprint"]) != mark:
            await _error(
                422,
                "this Idempotency-Key was used for another request (method, path, query or "
                "body differ): use a new key for a new request",
            )(scope, receive, send)
            return
        if first["status"] is None:
            await _error(
                409,
                "the first request with this Idempotency-Key is still being handled: "
                "retry to get its answer",
                **{"Retry-After": "1"},
            )(scope, receive, send)
            return
        headers = [
            (k.encode("latin-1"), v.encode("latin-1"))
            for k, v in json.loads(first["headers"] or "{}").items()
        ]
        await send(
            {
                "type": "http.response.start",
                "status": first["status"],
                "headers": [*headers, (REPLAYED.lower().encode(), b"true")],
            }
        )
        await send({"type": "http.response.body", "body": bytes(first["body"] or b"")})


async def _read_body(receive: Receive) -> tuple[bytes, Receive]:
    """The whole request body, and a `receive` that hands it to the app again."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    body = b"".join(chunks)
    delivered = False

    async def replay() -> Message:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return body, replay


async def forget_old(pool: asyncpg.Pool | None, window_hours: int) -> None:
    """Forget the requests older than the window: their keys may be used again."""
    if pool is None:
        return
    await pool.execute(
        "DELETE FROM idempotent_requests WHERE started_at < now() - make_interval(hours => $1)",
        window_hours,
    )
