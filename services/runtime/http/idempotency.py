"""Idempotent commands: a command sent again with the same `Idempotency-Key` is answered
with what the first one answered, and nothing is done twice.

Every command (POST, PUT, PATCH, DELETE) accepts the header. The first request with a key
claims it for its caller (the token's subject) in the service's `idempotent_requests`
table, then runs; its answer is stored unless it was a server error or a 503 with nothing
recorded, which frees the key for the retry. A repeat within `CRM_IDEMPOTENCY_WINDOW_HOURS`:
- after the first answered: that answer again, with `Idempotent-Replayed: true`;
- while the first is still running (a client that gave up and retried): 409 with
  `Retry-After`, so the retry comes back for the first one's answer;
- with another method, path, query or body: 422, the key names another request.

A server that stops between claiming a key and storing the answer leaves the key claimed
without an answer. Whether the command's events were recorded is known exactly: its first
save writes the key into `idempotent_commits` in the same transaction
(`storage/idempotent_commits.py`). A repeat that finds the key unanswered for longer than
`CRM_IDEMPOTENCY_TAKEOVER_SECONDS` therefore either answers 200 with `outcome:
carried_out` and the records changed (recorded: the answer itself was lost), or takes the
key over and runs the request (not recorded). Should the first run still be alive and
record later, the commit mark lets only one of the two record; the other answers with its
answer. A command that records no events (fitting a model, say) may run twice this way;
such commands are idempotent by nature.
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
from services.runtime.storage.idempotent_commits import IdempotentCommand, idempotent_command
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
        takeover_seconds: float = 10,
    ) -> None:
        self.app = app
        self._pool = pool
        self._routes = routes
        self._takeover_seconds = takeover_seconds

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
        claimed = await claim.pool.fetchval(
            """INSERT INTO idempotent_requests (actor, key, fingerprint) VALUES ($1, $2, $3)
               ON CONFLICT (actor, key) DO NOTHING RETURNING true""",
            claim.actor,
            claim.key,
            fingerprint(scope, body),
        )
        if claimed:
            await self._run(scope, receive, send, claim)
        else:
            await self._repeat(scope, receive, send, claim, body)

    async def _run(self, scope: Scope, receive: Receive, send: Send, claim: Claim) -> None:
        """Run the command for the claimed key and keep its answer before the client sees
        it (a repeat sent the moment the answer arrives finds it stored)."""
        messages: list[Message] = []

        async def hold(message: Message) -> None:
            messages.append(message)

        with idempotent_command(claim.actor, claim.key) as command:
            try:
                await self.app(scope, receive, hold)
            finally:
                stored = await self._keep_answer(claim, command, messages)
        if not stored:  # another run of the request answers for it
            await self._replay(scope, receive, send, claim)
            return
        for message in messages:
            await send(message)

    async def _keep_answer(
        self, claim: Claim, command: IdempotentCommand, messages: list[Message]
    ) -> bool:
        """Store this run's answer as the key's answer; False when another run's answer
        stands instead (it recorded the events, or answered first)."""
        pool, actor, key = claim.pool, claim.actor, claim.key
        if command.superseded:
            return False
        started = next((m for m in messages if m["type"] == "http.response.start"), {})
        status = int(started.get("status", 500))
        if status >= 500 and command.recorded:
            # the events were recorded and something after failed: the command is done
            await _keep_carried_out(claim, command.changed)
            return False
        if status >= 500:  # nothing recorded: the key is free for the retry
            await pool.execute(
                """DELETE FROM idempotent_requests
                   WHERE actor = $1 AND key = $2 AND status IS NULL""",
                actor,
                key,
            )
            return True
        headers = {
            k.decode("latin-1"): v.decode("latin-1")
            for k, v in started.get("headers", [])
            if k.decode("latin-1").lower() in KEPT_HEADERS
        }
        answer = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
        # the run that recorded the events has the last word; otherwise the first answer
        kept = await pool.fetchval(
            """UPDATE idempotent_requests
               SET status = $3, headers = $4::jsonb, body = $5, answered_at = now()
               WHERE actor = $1 AND key = $2 AND (status IS NULL OR $6)
               RETURNING true""",
            actor,
            key,
            status,
            json.dumps(headers),
            answer,
            command.recorded,
        )
        return bool(kept)

    async def _repeat(
        self, scope: Scope, receive: Receive, send: Send, claim: Claim, body: bytes
    ) -> None:
        first = await claim.pool.fetchrow(
            """SELECT fingerprint, status, claimed_at,
                      now() - claimed_at >= make_interval(secs => $3) AS expired
               FROM idempotent_requests WHERE actor = $1 AND key = $2""",
            claim.actor,
            claim.key,
            self._takeover_seconds,
        )
        if first is None:  # freed meanwhile (the first failed): this one may go
            await self._handle(scope, receive, send, claim, body)
            return
        if bytes(first["fingerprint"]) != fingerprint(scope, body):
            await _error(
                422,
                "this Idempotency-Key was used for another request (method, path, query or "
                "body differ): use a new key for a new request",
            )(scope, receive, send)
            return
        if first["status"] is None and first["expired"]:
            # the first run has not answered for longer than any command takes: its server
            # probably stopped. Recorded: the command is done, its answer was lost.
            # Not recorded: this request runs it (if the first still records later, one
            # of the two records and the other answers with its answer).
            changed = await claim.pool.fetchval(
                "SELECT changed FROM idempotent_commits WHERE actor = $1 AND key = $2",
                claim.actor,
                claim.key,
            )
            if changed is not None:
                await _keep_carried_out(claim, json.loads(changed))
            elif await claim.pool.fetchval(
                """UPDATE idempotent_requests SET claimed_at = now()
                   WHERE actor = $1 AND key = $2 AND status IS NULL AND claimed_at = $3
                   RETURNING true""",
                claim.actor,
                claim.key,
                first["claimed_at"],
            ):
                log.info("Idempotency-Key of %s unanswered: running the request again", claim.actor)
                await self._run(scope, receive, send, claim)
                return
        await self._replay(scope, receive, send, claim)

    async def _replay(self, scope: Scope, receive: Receive, send: Send, claim: Claim) -> None:
        """The key's stored answer, or 409 while none is stored yet."""
        first = await claim.pool.fetchrow(
            """SELECT status, headers, body FROM idempotent_requests
               WHERE actor = $1 AND key = $2""",
            claim.actor,
            claim.key,
        )
        if first is None or first["status"] is None:
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


async def _keep_carried_out(claim: Claim, changed: list[dict[str, Any]]) -> None:
    """Store, as the key's answer, that the command was carried out though its own answer
    was lost: which aggregates it changed, at which versions."""
    body = json.dumps(
        {
            "outcome": "carried_out",
            "message": "the request with this Idempotency-Key was carried out, but its "
            "answer was lost when its server stopped; read the changed records",
            "changed": changed,
        }
    ).encode()
    await claim.pool.execute(
        """UPDATE idempotent_requests
           SET status = 200, headers = $3::jsonb, body = $4, answered_at = now()
           WHERE actor = $1 AND key = $2""",
        claim.actor,
        claim.key,
        json.dumps({"content-type": "application/json"}),
        body,
    )


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
    for table, column in (
        ("idempotent_requests", "started_at"),
        ("idempotent_commits", "committed_at"),
    ):
        await pool.execute(
            f"DELETE FROM {table} WHERE {column} < now() - make_interval(hours => $1)",
            window_hours,
        )
