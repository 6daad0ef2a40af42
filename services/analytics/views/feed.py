"""The live feed: segment changes and churn warnings as the fold draws them, as
server-sent events read from the outbox (the ledger's predictions and settlements, many
at each fit, only when `types` names them) (each event's id is its outbox position, so a
reconnecting client resumes with `Last-Event-ID`, a position of at most 18 digits).
Each caller may hold `stream_limit_per_subject` streams open, all callers together
`stream_limit_total` (`services/runtime/http/streams.py`)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated

import orjson
from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse

from services.analytics.dependencies import Pool
from services.analytics.queries import feed as queries
from services.runtime.errors import BadRequest
from services.runtime.http.authorization import Caller, requires
from services.runtime.http.streams import StreamSlots

MAX_POSITION = 10**18 - 1
LEDGER_EVENTS = ("analytics.prediction_made", "analytics.prediction_settled")


def ledger(event_type: str) -> bool:
    """An event of the ledger of predictions: in the feed only when asked for by type."""
    return event_type in LEDGER_EVENTS


router = APIRouter(tags=["analytics"])


@router.get(
    "/feed",
    summary="Server-sent events: segment changes and churn warnings as they are drawn",
    responses={200: {"content": {"text/event-stream": {}}}},
    dependencies=[requires("analytics:read")],
)
async def feed(
    request: Request,
    pool: Pool,
    caller: Caller,
    after: Annotated[
        int | None, Query(ge=0, le=MAX_POSITION, description="Position to start after")
    ] = None,
    types: Annotated[
        str | None,
        Query(
            max_length=1000,
            description="Comma-separated event types to keep, e.g. analytics.churn_risk_raised "
            "(without it, every conclusion but the ledger's analytics.prediction_made and "
            "analytics.prediction_settled)",
        ),
    ] = None,
    last_event_id: Annotated[
        str | None,
        Header(
            alias="Last-Event-ID",
            description="The id of the last event received: the stream resumes after it.",
        ),
    ] = None,
) -> StreamingResponse:
    wanted = {t.strip() for t in types.split(",")} if types else None
    if last_event_id is not None:
        if not (last_event_id.isascii() and last_event_id.isdigit() and len(last_event_id) <= 18):
            raise BadRequest(f"Last-Event-ID must be a position number, got {last_event_id[:40]!r}")
        after = int(last_event_id)
    if after is None:
        after = await queries.latest_position(pool)
    start = after

    async def events() -> AsyncIterator[bytes]:
        position = start
        yield b": analytics feed\n\n"
        idle = 0
        while not await request.is_disconnected():
            rows = await queries.conclusions_after(pool, position)
            for row in rows:
                position = row["position"]
                data = bytes(row["envelope"])
                event_type = orjson.loads(data)["event_type"]
                if event_type in wanted if wanted is not None else not ledger(event_type):
                    yield (f"id: {position}\nevent: {event_type}\n".encode() + b"data: " + data
                           + b"\n\n")  # fmt: skip
            if not rows:
                idle += 1
                if idle % 30 == 0:
                    yield b": keep-alive\n\n"
                await asyncio.sleep(0.5)
            else:
                idle = 0

    slots: StreamSlots = request.app.state.streams
    return slots.stream(caller.subject, events())
