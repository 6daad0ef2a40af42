"""The analytics fold reads of each event only what its tolerant reader validates
(`services.analytics.projections.reads`): every example of every contract on the fold's
topics is folded with a payload that notes each field the fold touches."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

import asyncpg

from contracts.envelope import EventEnvelope, EventPayload, build_envelope
from contracts.registry import events_by_topic, parse_event, read_models, serialize_event
from contracts.tolerant import ENVELOPE_ALWAYS
from services.analytics.domain.money import Converter
from services.analytics.projections.fold import AnalyticsFold
from services.analytics.projections.reads import ENVELOPE_READS, PAYLOAD_READS, READER

CUSTOMER = uuid.UUID("5d1c7e4a-0b9f-4a53-8f3e-2c1d0e9b8a71")


class Noting:
    """A payload that notes the names of the fields read of it."""

    def __init__(self, payload: EventPayload, read: set[str]) -> None:
        self._payload = payload
        self._read = read

    def __getattr__(self, name: str) -> Any:
        self._read.add(name)
        return getattr(self._payload, name)


class NotingEnvelope:
    """An envelope that notes the names of its fields read, and hands a noting payload."""

    def __init__(self, envelope: EventEnvelope[Any], read: set[str], payload: Noting) -> None:
        self._envelope = envelope
        self._read = read
        self.payload = payload

    def __getattr__(self, name: str) -> Any:
        self._read.add(name)
        return getattr(self._envelope, name)


def examples(model: type[EventPayload]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = model.model_json_schema().get("examples") or []
    return found


def events() -> list[tuple[str, EventEnvelope[Any]]]:
    """Every example of every contract the fold reads, the registration first."""
    topics = set(AnalyticsFold.topics)
    models = [
        m
        for topic, listed in events_by_topic().items()
        if topic in topics
        for m in listed
        if m in read_models()
    ]
    models.sort(key=lambda m: m.event_type != "customer.registered")
    found = []
    for version, (model, example) in enumerate(
        ((m, e) for m in models for e in examples(m)), start=1
    ):
        envelope = build_envelope(
            model.model_validate(example),
            customer_id=CUSTOMER,
            producer="tests",
            aggregate_id=uuid.uuid4(),
            aggregate_version=version,
            occurred_at=datetime(2026, 11, 1, tzinfo=UTC),
        )
        found.append((model.event_type, envelope))
    return found


async def test_the_fold_reads_only_what_its_reader_validates(
    analytics_pool: asyncpg.Pool,
) -> None:
    fold = AnalyticsFold(Converter("CNY"), lambda: datetime(2026, 11, 2, tzinfo=UTC))
    payload_read: dict[str, set[str]] = defaultdict(set)
    envelope_read: set[str] = set()
    folded = events()
    assert {t for t, _ in folded} >= PAYLOAD_READS.keys()
    for event_type, envelope in folded:
        noting = NotingEnvelope(
            envelope, envelope_read, Noting(envelope.payload, payload_read[event_type])
        )
        async with analytics_pool.acquire() as connection, connection.transaction():
            await fold.apply(connection, [noting])  # type: ignore[list-item]
    unlisted = {
        event_type: sorted(read - set(PAYLOAD_READS.get(event_type, ())))
        for event_type, read in payload_read.items()
        if read - set(PAYLOAD_READS.get(event_type, ()))
    }
    assert unlisted == {}
    assert envelope_read - {"payload"} <= set(ENVELOPE_READS) | ENVELOPE_ALWAYS
    # and the fold read what is listed, but for what only other values than the
    # examples' reach
    unread = {
        event_type: set(listed) - payload_read[event_type]
        for event_type, listed in PAYLOAD_READS.items()
        if set(listed) - payload_read[event_type]
    }
    assert unread == NOT_IN_EXAMPLES


NOT_IN_EXAMPLES = {
    # a change reads the fields it names in `changed`; the example names two
    "customer.profile_changed": {"industry", "kind", "name", "source_channel"},
    # read when a stage change closes the opportunity; the example's does not
    "sales.opportunity_stage_changed": {"from_stage"},
}


async def test_the_fold_of_what_its_reader_read_is_the_fold_of_whole_contracts(
    analytics_pool: asyncpg.Pool, other_analytics_pool: asyncpg.Pool
) -> None:
    messages = [serialize_event(envelope) for _, envelope in events()]
    for pool, parse in ((analytics_pool, READER.parse), (other_analytics_pool, parse_event)):
        fold = AnalyticsFold(Converter("CNY"), lambda: datetime(2026, 11, 2, tzinfo=UTC))
        async with pool.acquire() as connection, connection.transaction():
            await fold.apply(connection, [parse(m) for m in messages])
    assert await state(analytics_pool) == await state(other_analytics_pool)
    assert (await state(analytics_pool))["profiles"]


async def state(pool: asyncpg.Pool) -> dict[str, list[str]]:
    """Every row of the fold's tables, but the moments they were written and the ids of
    the conclusions (new for each)."""
    tables = await pool.fetch(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
    )
    found = {}
    for (table,) in tables:
        if table == "writer_token":  # who wrote last, new for each fold
            continue
        row = "to_jsonb(t) - 'updated_at' - 'created_at' - 'built_at' - 'applied_at' - 'noted_at'"
        if table == "outbox":
            row = "convert_from(envelope, 'UTF8')::jsonb - 'event_id'"
        rows = await pool.fetch(f"SELECT ({row})::text FROM {table} t")
        found[table] = sorted(r[0] for r in rows)
    return found
