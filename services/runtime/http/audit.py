"""The audit log: who did what, to which customer, when and from where.

Every command (any method but GET and HEAD) and every read of a customer's personal data
(`reads_personal_data`: every route whose answer can carry a field the contracts mark
personal, and every route about one customer, `/customers/{customer_id}/...`) by an
authenticated caller is recorded in the service's
`audit_log` table: subject and roles, method, route template, path parameters that are
ids (any other value may name a person and is withheld, `recordable_path_params`),
customer id (from the path, the query, the command's body, or the customer the route
found), status, client address, user agent and correlation id.

The table is append-only: a trigger refuses UPDATE, DELETE and TRUNCATE (even for its
owner), and those privileges are revoked from everyone else. The middleware only
appends an entry to an in-memory queue; a background task writes the queue in batches
with COPY, so a request never waits for the audit insert. `GET /audit` (permission
`audit:read`) pages through it, and `GET /audit/export.csv` exports it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import uuid
from collections import deque
from collections.abc import Mapping, MutableMapping
from datetime import UTC, datetime
from functools import cache
from typing import Annotated, Any

import asyncpg
from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field

from contracts.personal import carries_personal
from services.runtime.http.authorization import requires
from services.runtime.http.csvexport import csv_response, paged_csv
from services.runtime.http.paging import BY_MOMENT, Position, SortKey
from services.runtime.http.parameters import Moment
from services.runtime.http.roles import Principal
from services.runtime.metrics import AUDIT_ENTRIES
from services.runtime.storage.filters import Where

log = logging.getLogger(__name__)

COLUMNS = (
    "entry_id",
    "at",
    "actor",
    "roles",
    "method",
    "route",
    "path_params",
    "customer_id",
    "status",
    "client",
    "user_agent",
    "correlation_id",
)

AUDITED_CUSTOMER = "audited_customer_id"
"""`request.state` attribute by which a route that finds a customer by something other
than their id (another system's reference) tells the audit log whom the request was
about."""

MAX_QUEUED = 100_000
"""Entries kept while the database is unreachable; beyond that they are dropped (and
counted in `crm_audit_entries_total{outcome="dropped"}`)."""

BATCH = 1000


def _uuid_or_none(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value)) if value is not None else None
    except ValueError:
        return None


def _customer_of(scope: MutableMapping[str, Any], path_params: dict[str, Any]) -> uuid.UUID | None:
    found = _uuid_or_none(path_params.get("customer_id"))
    if found is not None:
        return found
    found = _uuid_or_none(scope.get("state", {}).get(AUDITED_CUSTOMER))
    if found is not None:  # a route that found the customer by something else
        return found
    for part in scope.get("query_string", b"").decode(errors="replace").split("&"):
        name, _, value = part.partition("=")
        if name == "customer_id":
            return _uuid_or_none(value)
    body = scope.get("state", {}).get("body")
    if body and b"customer_id" in body:
        with contextlib.suppress(ValueError):
            document = json.loads(body)
            if isinstance(document, dict):
                return _uuid_or_none(document.get("customer_id"))
    return None


WITHHELD = "[withheld]"


def _is_id(value: str) -> bool:
    return _uuid_or_none(value) is not None or (value.isascii() and value.isdigit())


def recordable_path_params(path_params: Mapping[str, Any]) -> dict[str, str]:
    """Path parameters as the audit log and the access log keep them: ids (UUIDs, whole
    numbers) as they are; any other value (another system's id for a customer, a tag, an
    address label) may name a person and is withheld; the customer concerned is recorded
    by id."""
    return {name: value if _is_id(value := str(v)) else WITHHELD for name, v in path_params.items()}


def recordable_path(template: str, path_params: Mapping[str, Any]) -> str:
    """The route template with the path parameters that are ids filled in:
    `/customers/by-reference/{source}/{source_customer_id}` stays as it is,
    `/customers/{customer_id}` becomes `/customers/9f0c…`."""
    recordable = recordable_path_params(path_params)

    def filled(match: re.Match[str]) -> str:
        value = recordable.get(match[1], WITHHELD)
        return match[0] if value == WITHHELD else value

    return _PARAMETER.sub(filled, template)


_PARAMETER = re.compile(r"\{(\w+)(?::[^}]*)?\}")


def _storable(text: str) -> str:
    """`text` without what PostgreSQL refuses in text and JSON (NUL): one such entry would
    fail its whole batch, again and again."""
    return text.replace("\x00", "\ufffd")


def _customer_at(location: str | None) -> uuid.UUID | None:
    """The customer a command created, from its answer's `Location: /customers/<id>`."""
    if location and location.startswith("/customers/"):
        return _uuid_or_none(location.removeprefix("/customers/").split("/")[0])
    return None


_carries_personal = cache(carries_personal)
"""Per response model, computed once."""


def reads_personal_data(route: APIRoute) -> bool:
    """Whether a read of `route` is a read of a customer's personal data, and so audited.

    It is when the route is about one customer (`{customer_id}` in its path), when its
    answer's model can carry a field the contracts mark personal (`contracts.personal`),
    and when its answer has no model to tell (a download or a stream, whose rows are not
    declared): that fails closed, so a new export is audited until it says otherwise.
    """
    if "{customer_id}" in route.path:
        return True
    model = route.response_model
    if model is None or model is Any:
        return True
    return _carries_personal(model)


class AuditLog:
    """Queues entries from requests and writes them in batches."""

    def __init__(self, service: str) -> None:
        self.service = service
        self._queue: deque[tuple[Any, ...]] = deque()
        self._wake = asyncio.Event()
        self._pool: asyncpg.Pool | None = None
        self._task: asyncio.Task[None] | None = None
        self.accepting = False
        """Whether entries are queued (once started; an app built without its runtime,
        as in unit tests, records nothing)."""

    async def start(self, pool: asyncpg.Pool) -> None:
        """Write entries to `audit_log` (a durable table, see `storage/migrator.py`)."""
        self._pool = pool
        self._task = asyncio.create_task(self._run(), name=f"{self.service}-audit")
        self.accepting = True

    async def stop(self) -> None:
        self.accepting = False
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        with contextlib.suppress(Exception):
            await self.flush()

    def observe(
        self,
        scope: MutableMapping[str, Any],
        status: int,
        correlation_id: str,
        user_agent: str | None,
        location: str | None = None,
    ) -> None:
        """Record the request in `scope` if it is a command or a personal-data read."""
        principal = scope.get("state", {}).get("principal")
        route = scope.get("route")
        if not isinstance(principal, Principal) or route is None:
            return
        method = scope["method"]
        template = getattr(route, "path", "")
        if method in ("GET", "HEAD") and not (
            isinstance(route, APIRoute) and reads_personal_data(route)
        ):
            return
        path_params = recordable_path_params(scope.get("path_params", {}))
        client = scope.get("client")
        self.record(
            (
                uuid.uuid4(),
                datetime.now(UTC),
                principal.subject,
                list(principal.roles),
                method,
                template,
                json.dumps(path_params, ensure_ascii=False),
                _customer_of(scope, path_params) or _customer_at(location),
                status,
                client[0] if client else None,
                _storable(user_agent or "")[:500] or None,
                _storable(correlation_id),
            )
        )

    def record(self, entry: tuple[Any, ...]) -> None:
        if not self.accepting:
            return
        if len(self._queue) >= MAX_QUEUED:
            AUDIT_ENTRIES.labels(self.service, "dropped").inc()
            return
        self._queue.append(entry)
        self._wake.set()

    def queued(self) -> list[tuple[Any, ...]]:
        return list(self._queue)

    async def flush(self) -> None:
        while self._queue and self._pool is not None:
            batch = [self._queue[i] for i in range(min(BATCH, len(self._queue)))]
            await self._pool.copy_records_to_table("audit_log", records=batch, columns=COLUMNS)
            for _ in batch:
                self._queue.popleft()
            AUDIT_ENTRIES.labels(self.service, "written").inc(len(batch))

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self.flush()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("audit log write failed, retrying: %r", exc)
                await asyncio.sleep(1)
                self._wake.set()


# GET /audit -----------------------------------------------------------------------------

router = APIRouter(tags=["audit"])


class AuditEntry(BaseModel):
    entry_id: uuid.UUID
    at: datetime
    actor: str
    roles: list[str]
    method: str
    route: str
    path_params: dict[str, str]
    customer_id: uuid.UUID | None
    status: int
    client: str | None
    user_agent: str | None
    correlation_id: str | None


class AuditPage(BaseModel):
    items: list[AuditEntry]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page.")


class AuditFilter(BaseModel):
    actor: str | None = None
    customer_id: uuid.UUID | None = None
    since: datetime | None = None
    until: datetime | None = None


def audit_filter(
    actor: Annotated[str | None, Query(max_length=200, description="The token subject.")] = None,
    customer_id: uuid.UUID | None = None,
    since: Annotated[Moment | None, Query(description="At or after.")] = None,
    until: Annotated[Moment | None, Query(description="Before.")] = None,
) -> AuditFilter:
    return AuditFilter(actor=actor, customer_id=customer_id, since=since, until=until)


Filters = Annotated[AuditFilter, Depends(audit_filter)]


def audit_pool(request: Request) -> asyncpg.Pool:
    pool = request.app.state.runtime.pool
    assert pool is not None, "the pool opens before the service answers"
    return pool


Pool = Annotated[asyncpg.Pool, Depends(audit_pool)]


SORT = SortKey(("at", "entry_id"), BY_MOMENT)
"""Newest first."""


async def find_entries(
    pool: asyncpg.Pool, filters: AuditFilter, *, limit: int, after: Position | None
) -> list[dict[str, Any]]:
    where = (
        Where()
        .equal("actor", filters.actor)
        .equal("customer_id", filters.customer_id)
        .compare("at", ">=", filters.since)
        .compare("at", "<", filters.until)
        .after(SORT.columns, after, descending=True)
    )
    rows = await pool.fetch(
        f"SELECT {', '.join(COLUMNS)} FROM audit_log WHERE {where.sql} "
        f"ORDER BY at DESC, entry_id DESC LIMIT {where.parameter(limit)}",
        *where.values,
    )
    return [{**dict(r), "path_params": json.loads(r["path_params"])} for r in rows]


@router.get(
    "/audit",
    summary="The audit log, newest first: commands and reads of personal data",
    dependencies=[requires("audit:read")],
)
async def read_audit(
    pool: Pool,
    filters: Filters,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=1000)] = None,
) -> AuditPage:
    rows = await find_entries(pool, filters, limit=limit + 1, after=SORT.after(cursor))
    return AuditPage(
        items=[AuditEntry.model_validate(r) for r in rows[:limit]],
        next_cursor=SORT.next_cursor(rows, limit),
    )


@router.get(
    "/audit/export.csv",
    summary="Export the audit entries matching the filters as CSV",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}}},
    dependencies=[requires("audit:read")],
)
async def export_audit(pool: Pool, filters: Filters) -> Response:
    async def fetch(after: Position | None) -> list[dict[str, Any]]:
        return await find_entries(pool, filters, limit=1000, after=after)

    return csv_response(paged_csv(fetch, COLUMNS, SORT, 1000), "audit.csv")
