"""HTTP helpers shared by the interaction routes: dependencies, cursors, CSV, times."""

from __future__ import annotations

import base64
import csv
import io
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any
from uuid import UUID

import asyncpg
from fastapi import Depends, Header, Request
from fastapi.responses import StreamingResponse

from services.interaction.application import InteractionApplication
from services.interaction.settings import InteractionSettings
from services.interaction.sla import SlaPolicy, policy
from services.runtime.errors import RuleViolation
from services.runtime.service import ServiceRuntime

CLOCK_SKEW = timedelta(minutes=5)
"""How far in the future a reported time may lie (clocks of other machines differ)."""


def runtime(request: Request) -> ServiceRuntime:
    value: ServiceRuntime = request.app.state.runtime
    return value


def interaction_application(
    rt: Annotated[ServiceRuntime, Depends(runtime)],
) -> InteractionApplication:
    assert isinstance(rt.application, InteractionApplication)
    return rt.application


def database(rt: Annotated[ServiceRuntime, Depends(runtime)]) -> asyncpg.Pool:
    assert rt.pool is not None
    return rt.pool


def sla_policy(rt: Annotated[ServiceRuntime, Depends(runtime)]) -> SlaPolicy:
    settings = rt.settings
    if isinstance(settings, InteractionSettings):
        return settings.sla_policy()
    return policy({}, {})


def expected_version(
    if_match: Annotated[
        str | None,
        Header(
            description='The version you last saw, e.g. `"3"`; a different current version '
            "answers 409."
        ),
    ] = None,
) -> int | None:
    if if_match is None or if_match.strip() == "*":
        return None
    text = if_match.strip().removeprefix("W/").strip('"')
    if not text.isdigit():
        raise RuleViolation(f'If-Match must be a version number such as "3", got {if_match!r}')
    return int(text)


def idempotency_key(
    idempotency_key: Annotated[
        str | None,
        Header(
            max_length=200,
            description="Your id for this request: repeating it (e.g. after a timeout) "
            "returns what the first one recorded instead of recording it twice.",
        ),
    ] = None,
) -> str | None:
    return idempotency_key.strip() if idempotency_key and idempotency_key.strip() else None


App = Annotated[InteractionApplication, Depends(interaction_application)]
Pool = Annotated[asyncpg.Pool, Depends(database)]
Policy = Annotated[SlaPolicy, Depends(sla_policy)]
Version = Annotated[int | None, Depends(expected_version)]
IdempotencyKey = Annotated[str | None, Depends(idempotency_key)]


def now() -> datetime:
    return datetime.now(UTC)


def not_in_future(moment: datetime | None, name: str) -> datetime:
    """`moment`, or now when absent; a moment in the future is refused."""
    current = now()
    if moment is None:
        return current
    if moment > current + CLOCK_SKEW:
        raise RuleViolation(f"{name} lies in the future ({moment.isoformat()}); give a past time")
    return moment


def encode_cursor(moment: datetime, item_id: UUID) -> str:
    raw = json.dumps([moment.isoformat(), str(item_id)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> tuple[datetime, UUID] | None:
    if cursor is None:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        moment, item_id = json.loads(base64.urlsafe_b64decode(padded))
        parsed = datetime.fromisoformat(moment)
        if parsed.tzinfo is None:
            raise ValueError("naive time")
        return parsed, UUID(item_id)
    except (ValueError, TypeError) as exc:
        raise RuleViolation("cursor is not one this service issued; start without it") from exc


def next_cursor(rows: Sequence[dict[str, Any]], limit: int, key: tuple[str, str]) -> str | None:
    if len(rows) <= limit:
        return None
    last = rows[limit - 1]
    return encode_cursor(last[key[0]], last[key[1]])


def csv_cell(value: Any) -> Any:
    if isinstance(value, list):
        return "|".join(
            v if isinstance(v, str) else json.dumps(v, ensure_ascii=False) for v in value
        )
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False, default=str)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def csv_text(rows: Sequence[dict[str, Any]], columns: Sequence[str], header: bool) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    if header:
        writer.writerow(columns)
    for row in rows:
        writer.writerow([csv_cell(row.get(c)) for c in columns])
    return buffer.getvalue()


def csv_response(lines: AsyncIterator[str], filename: str) -> StreamingResponse:
    return StreamingResponse(
        lines,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


async def paged_csv(
    fetch: Callable[[tuple[datetime, UUID] | None], Awaitable[list[dict[str, Any]]]],
    columns: Sequence[str],
    key: tuple[str, str],
    page_size: int = 1000,
) -> AsyncIterator[str]:
    """Every row `fetch` pages through, as CSV, one page at a time."""
    after: tuple[datetime, UUID] | None = None
    header = True
    while True:
        rows = await fetch(after)
        yield csv_text(rows, columns, header)
        header = False
        if len(rows) < page_size:
            return
        after = (rows[-1][key[0]], rows[-1][key[1]])


def rows_csv(
    rows: Sequence[dict[str, Any]], columns: Sequence[str], filename: str
) -> StreamingResponse:
    async def body() -> AsyncIterator[str]:
        yield csv_text(rows, columns, True)

    return csv_response(body(), filename)
