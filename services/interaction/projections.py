"""Read models of the interaction service, folded from the interaction topic.

One projection, `interaction_views`, keeps five tables current in one transaction per
batch: `interactions` (timeline and keyword search), `tickets` (with the due and warning
times of their service-level clocks), `survey_answers`, `feedback`, `contact_plans`, and
`last_contacts` (when each customer was last in contact, which makes a plan's next contact
due). The folds are pure: a row as it was (or None) and one event give the row after.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from contracts.envelope import EventEnvelope
from contracts.topics import Topic
from services.interaction.domain import AT_RISK_SHARE
from services.interaction.textsearch import normalise, search_grams, search_text
from services.runtime.customer_replica import CustomerReplica
from services.runtime.privacy.erasure import (
    EMPTY_JSON_LIST,
    EMPTY_TEXT,
    EMPTY_TEXT_ARRAY,
    ERASED_TEXT,
    PersonalColumns,
)

Row = dict[str, Any]

DDL = """
CREATE TABLE IF NOT EXISTS interactions (
    interaction_id uuid PRIMARY KEY,
    customer_id uuid NOT NULL,
    channel text NOT NULL,
    direction text NOT NULL,
    started_at timestamptz NOT NULL,
    duration_seconds integer,
    participants jsonb NOT NULL DEFAULT '[]',
    participant_names text[] NOT NULL DEFAULT '{}',
    subject text NOT NULL,
    notes text NOT NULL DEFAULT '',
    opportunity_id uuid,
    ticket_id uuid,
    source text,
    source_id text,
    version integer NOT NULL,
    correction_count integer NOT NULL DEFAULT 0,
    recorded_at timestamptz NOT NULL,
    search_text text NOT NULL,
    search_grams text[] NOT NULL DEFAULT '{}',
    consent_override jsonb,
    consent_breach boolean NOT NULL DEFAULT false
);
CREATE INDEX IF NOT EXISTS interactions_customer_time
    ON interactions (customer_id, started_at DESC, interaction_id DESC);
CREATE INDEX IF NOT EXISTS interactions_time ON interactions (started_at DESC, interaction_id DESC);
CREATE INDEX IF NOT EXISTS interactions_channel_time
    ON interactions (channel, started_at DESC, interaction_id DESC);
CREATE INDEX IF NOT EXISTS interactions_participants ON interactions USING gin (participant_names);
CREATE INDEX IF NOT EXISTS interactions_grams ON interactions USING gin (search_grams);
CREATE INDEX IF NOT EXISTS interactions_ticket ON interactions (ticket_id)
    WHERE ticket_id IS NOT NULL;

CREATE TABLE IF NOT EXISTS tickets (
    ticket_id uuid PRIMARY KEY,
    customer_id uuid NOT NULL,
    kind text NOT NULL,
    channel text NOT NULL,
    category text NOT NULL,
    severity text NOT NULL,
    status text NOT NULL,
    assignee text,
    level integer NOT NULL DEFAULT 0,
    subject text NOT NULL,
    description text NOT NULL DEFAULT '',
    opened_at timestamptz NOT NULL,
    response_due_at timestamptz NOT NULL,
    response_warn_at timestamptz NOT NULL,
    resolution_clock_started_at timestamptz NOT NULL,
    resolution_due_at timestamptz NOT NULL,
    resolution_warn_at timestamptz NOT NULL,
    first_responded_at timestamptz,
    resolved_at timestamptz,
    closed_at timestamptz,
    resolution text,
    reopen_count integer NOT NULL DEFAULT 0,
    response_breached boolean NOT NULL DEFAULT false,
    resolution_breached boolean NOT NULL DEFAULT false,
    version integer NOT NULL,
    updated_at timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS tickets_open ON tickets (severity, opened_at) WHERE status = 'open';
CREATE INDEX IF NOT EXISTS tickets_assignee ON tickets (assignee, opened_at);
CREATE INDEX IF NOT EXISTS tickets_customer ON tickets (customer_id, opened_at DESC);
CREATE INDEX IF NOT EXISTS tickets_opened ON tickets (opened_at);

CREATE TABLE IF NOT EXISTS survey_answers (
    answer_id uuid PRIMARY KEY,
    customer_id uuid NOT NULL,
    survey text NOT NULL,
    csat smallint,
    nps smallint,
    comment text NOT NULL DEFAULT '',
    channel text,
    interaction_id uuid,
    ticket_id uuid,
    answered_at timestamptz NOT NULL,
    source text,
    source_id text
);
CREATE INDEX IF NOT EXISTS survey_answers_time ON survey_answers (answered_at);
CREATE INDEX IF NOT EXISTS survey_answers_customer
    ON survey_answers (customer_id, answered_at DESC);

CREATE TABLE IF NOT EXISTS feedback (
    feedback_id uuid PRIMARY KEY,
    customer_id uuid NOT NULL,
    kind text NOT NULL,
    text text NOT NULL,
    channel text,
    interaction_id uuid,
    given_at timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS feedback_customer ON feedback (customer_id, given_at DESC);
CREATE INDEX IF NOT EXISTS feedback_time ON feedback (given_at);

CREATE TABLE IF NOT EXISTS contact_plans (
    customer_id uuid PRIMARY KEY,
    channel text NOT NULL,
    every_days integer NOT NULL,
    owner text,
    note text NOT NULL DEFAULT '',
    starts_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);
CREATE TABLE IF NOT EXISTS last_contacts (
    customer_id uuid PRIMARY KEY,
    last_contacted_at timestamptz NOT NULL,
    channel text NOT NULL
);
"""

TRIGRAM_DDL = """
CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public;
CREATE INDEX IF NOT EXISTS interactions_text_trgm
    ON interactions USING gin (search_text public.gin_trgm_ops);
"""

INTERACTION_COLUMNS = (
    "interaction_id",
    "customer_id",
    "channel",
    "direction",
    "started_at",
    "duration_seconds",
    "participants",
    "participant_names",
    "subject",
    "notes",
    "opportunity_id",
    "ticket_id",
    "source",
    "source_id",
    "version",
    "correction_count",
    "recorded_at",
    "search_text",
    "search_grams",
    "consent_override",
    "consent_breach",
)

TICKET_COLUMNS = (
    "ticket_id",
    "customer_id",
    "kind",
    "channel",
    "category",
    "severity",
    "status",
    "assignee",
    "level",
    "subject",
    "description",
    "opened_at",
    "response_due_at",
    "response_warn_at",
    "resolution_clock_started_at",
    "resolution_due_at",
    "resolution_warn_at",
    "first_responded_at",
    "resolved_at",
    "closed_at",
    "resolution",
    "reopen_count",
    "response_breached",
    "resolution_breached",
    "version",
    "updated_at",
)


# Folds -------------------------------------------------------------------------------


def interaction_row(interaction_id: UUID, customer_id: UUID, fields: Row) -> Row:
    """A complete `interactions` row from the interaction's current fields."""
    participants = fields.get("participants") or []
    return {
        **fields,
        "interaction_id": interaction_id,
        "customer_id": customer_id,
        "participants": participants,
        "participant_names": sorted({normalise(p["name"]) for p in participants}),
        "search_text": (text := search_text(fields["subject"], fields.get("notes") or "")),
        "search_grams": search_grams(text),
    }


def fold_interaction(row: Row | None, event: EventEnvelope[Any]) -> Row | None:
    payload = event.payload
    if event.event_type == "interaction.logged":
        assert event.aggregate_id is not None
        return interaction_row(
            event.aggregate_id,
            event.customer_id,
            {
                **payload.model_dump(
                    mode="json",
                    include={"channel", "direction", "participants", "subject", "notes"},
                ),
                "started_at": payload.started_at,
                "duration_seconds": payload.duration_seconds,
                "opportunity_id": payload.opportunity_id,
                "ticket_id": payload.ticket_id,
                "source": payload.source,
                "source_id": payload.source_id,
                "consent_override": (
                    payload.consent_override.model_dump(mode="json")
                    if payload.consent_override
                    else None
                ),
                "consent_breach": payload.consent_breach,
                "version": event.aggregate_version or 1,
                "correction_count": 0,
                "recorded_at": event.recorded_at,
            },
        )
    if row is None or event.event_type != "interaction.corrected":
        return row
    values = payload.model_dump(mode="json")
    changed = {name: values[name] for name in payload.changed}
    for name in ("started_at", "opportunity_id", "ticket_id"):
        if name in changed:
            changed[name] = getattr(payload, name)
    fields = {k: v for k, v in row.items() if k not in ("search_text", "search_grams")}
    fields.update(changed)
    fields["version"] = event.aggregate_version or row["version"] + 1
    fields["correction_count"] = row["correction_count"] + 1
    return interaction_row(row["interaction_id"], row["customer_id"], fields)


def _warn_at(start: datetime, due: datetime) -> datetime:
    return due - (due - start) * AT_RISK_SHARE


def fold_ticket(row: Row | None, event: EventEnvelope[Any]) -> Row | None:
    payload = event.payload
    kind = event.event_type
    if kind == "interaction.ticket_opened":
        row = {
            "ticket_id": event.aggregate_id,
            "customer_id": event.customer_id,
            "kind": payload.kind.value,
            "channel": payload.channel.value,
            "category": payload.category,
            "severity": payload.severity.value,
            "status": "open",
            "assignee": None,
            "level": 0,
            "subject": payload.subject,
            "description": payload.description,
            "opened_at": payload.opened_at,
            "response_due_at": payload.response_due_at,
            "response_warn_at": _warn_at(payload.opened_at, payload.response_due_at),
            "resolution_clock_started_at": payload.opened_at,
            "resolution_due_at": payload.resolution_due_at,
            "resolution_warn_at": _warn_at(payload.opened_at, payload.resolution_due_at),
            "first_responded_at": None,
            "resolved_at": None,
            "closed_at": None,
            "resolution": None,
            "reopen_count": 0,
            "response_breached": False,
            "resolution_breached": False,
        }
    elif row is None or not kind.startswith("interaction.ticket_"):
        return row
    else:
        row = dict(row)
        if kind == "interaction.ticket_assigned":
            row["assignee"] = payload.assignee
        elif kind == "interaction.ticket_escalated":
            row["severity"] = payload.severity.value
            row["level"] = payload.level
            row["response_due_at"] = payload.response_due_at
            row["response_warn_at"] = _warn_at(row["opened_at"], payload.response_due_at)
            row["resolution_due_at"] = payload.resolution_due_at
            row["resolution_warn_at"] = _warn_at(
                row["resolution_clock_started_at"], payload.resolution_due_at
            )
        elif kind == "interaction.ticket_responded":
            if row["first_responded_at"] is None:
                row["first_responded_at"] = payload.responded_at
        elif kind == "interaction.ticket_resolved":
            row["status"] = "resolved"
            row["resolved_at"] = payload.resolved_at
            row["resolution"] = payload.resolution
            if row["first_responded_at"] is None:
                row["first_responded_at"] = payload.resolved_at
        elif kind == "interaction.ticket_reopened":
            row["status"] = "open"
            row["resolved_at"] = None
            row["closed_at"] = None
            row["reopen_count"] += 1
            row["resolution_clock_started_at"] = payload.reopened_at
            row["resolution_due_at"] = payload.resolution_due_at
            row["resolution_warn_at"] = _warn_at(payload.reopened_at, payload.resolution_due_at)
        elif kind == "interaction.ticket_closed":
            row["status"] = "closed"
            row["closed_at"] = payload.closed_at
    responded = row["first_responded_at"]
    resolved = row["resolved_at"]
    row["response_breached"] = bool(responded and responded > row["response_due_at"])
    row["resolution_breached"] = row["resolution_breached"] or bool(
        resolved and resolved > row["resolution_due_at"]
    )
    row["version"] = event.aggregate_version or row.get("version", 0) + 1
    row["updated_at"] = event.recorded_at
    return row


def survey_row(event: EventEnvelope[Any]) -> tuple[Any, ...]:
    p = event.payload
    return (
        event.aggregate_id,
        event.customer_id,
        p.survey,
        p.csat,
        p.nps,
        p.comment,
        p.channel.value if p.channel else None,
        p.interaction_id,
        p.ticket_id,
        p.answered_at,
        p.source,
        p.source_id,
    )


def feedback_row(event: EventEnvelope[Any]) -> tuple[Any, ...]:
    p = event.payload
    return (
        event.aggregate_id,
        event.customer_id,
        p.kind.value,
        p.text,
        p.channel.value if p.channel else None,
        p.interaction_id,
        p.given_at,
    )


# The projection ----------------------------------------------------------------------


ERASED_NOTE = (
    "CASE WHEN jsonb_typeof({column}) = 'object' "
    "THEN {column} || jsonb_build_object('note', '') ELSE {column} END"
)
"""A consent override keeps its reason; its note (who asked, when) is emptied."""

PERSONAL_COLUMNS = (
    PersonalColumns(
        "interactions",
        {
            "participants": EMPTY_JSON_LIST,
            "participant_names": EMPTY_TEXT_ARRAY,
            "subject": ERASED_TEXT,
            "notes": EMPTY_TEXT,
            "search_text": EMPTY_TEXT,
            "search_grams": EMPTY_TEXT_ARRAY,
            "consent_override": ERASED_NOTE,
        },
    ),
    PersonalColumns(
        "tickets",
        {"subject": ERASED_TEXT, "description": EMPTY_TEXT, "resolution": ERASED_TEXT},
    ),
    PersonalColumns("survey_answers", {"comment": EMPTY_TEXT}),
    PersonalColumns("feedback", {"text": ERASED_TEXT}),
    PersonalColumns("contact_plans", {"note": EMPTY_TEXT}),
)
"""The interaction views' personal columns; a customer's erasure overwrites them
(channels, times, scores, SLA states stay)."""

CUSTOMERS = CustomerReplica("interaction_customers", PERSONAL_COLUMNS)
"""The interaction service's replica of the customer topic (names, channels, references)."""


class InteractionProjection:
    """The interaction read models; `name` keys their consumer group and
    `consumed_events`."""

    name = "interaction_views"
    version = 2
    """The shape of the tables (`create_tables`); raised with every change to it."""
    topics: Sequence[str] = (Topic.INTERACTION,)

    async def create_tables(self, connection: asyncpg.Connection) -> None:
        await connection.execute(DDL)
        async with connection.transaction():
            await connection.execute(TRIGRAM_DDL)

    async def apply(
        self, connection: asyncpg.Connection, events: Sequence[EventEnvelope[Any]]
    ) -> None:
        await self._interactions(connection, events)
        await self._tickets(connection, events)
        surveys = [survey_row(e) for e in events if e.event_type == "interaction.survey_answered"]
        if surveys:
            await connection.executemany(
                """INSERT INTO survey_answers (answer_id, customer_id, survey, csat, nps,
                       comment, channel, interaction_id, ticket_id, answered_at, source,
                       source_id)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
                   ON CONFLICT (answer_id) DO NOTHING""",
                surveys,
            )
        feedback = [feedback_row(e) for e in events if e.event_type == "interaction.feedback_given"]
        if feedback:
            await connection.executemany(
                """INSERT INTO feedback (feedback_id, customer_id, kind, text, channel,
                       interaction_id, given_at)
                   VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (feedback_id) DO NOTHING""",
                feedback,
            )
        await self._contact_plans(connection, events)

    async def _interactions(
        self, connection: asyncpg.Connection, events: Sequence[EventEnvelope[Any]]
    ) -> None:
        relevant = [e for e in events if e.event_type.startswith("interaction.")]
        corrected = list(
            {e.aggregate_id for e in relevant if e.event_type == "interaction.corrected"}
        )
        rows: dict[UUID, Row | None] = {}
        if corrected:
            for record in await connection.fetch(
                "SELECT * FROM interactions WHERE interaction_id = ANY($1::uuid[]) FOR UPDATE",
                corrected,
            ):
                row = dict(record)
                row["participants"] = json.loads(row["participants"])
                row["consent_override"] = json.loads(row["consent_override"] or "null")
                rows[row["interaction_id"]] = row
        touched: set[UUID] = set()
        for event in relevant:
            if event.event_type not in ("interaction.logged", "interaction.corrected"):
                continue
            assert event.aggregate_id is not None
            folded = fold_interaction(rows.get(event.aggregate_id), event)
            if folded is not None:
                rows[event.aggregate_id] = folded
                touched.add(event.aggregate_id)
        written = [r for i in touched if (r := rows[i]) is not None]
        if not written:
            return
        await upsert(
            connection,
            "interactions",
            INTERACTION_COLUMNS,
            written,
            ("participants", "consent_override"),
        )
        latest: dict[UUID, Row] = {}
        for row in written:
            best = latest.get(row["customer_id"])
            if best is None or row["started_at"] > best["started_at"]:
                latest[row["customer_id"]] = row
        await connection.executemany(
            """INSERT INTO last_contacts (customer_id, last_contacted_at, channel)
               VALUES ($1, $2, $3)
               ON CONFLICT (customer_id) DO UPDATE SET
                   last_contacted_at = excluded.last_contacted_at, channel = excluded.channel
               WHERE last_contacts.last_contacted_at < excluded.last_contacted_at""",
            [(c, r["started_at"], r["channel"]) for c, r in latest.items()],
        )

    async def _tickets(
        self, connection: asyncpg.Connection, events: Sequence[EventEnvelope[Any]]
    ) -> None:
        relevant = [e for e in events if e.event_type.startswith("interaction.ticket_")]
        if not relevant:
            return
        ids = list({e.aggregate_id for e in relevant})
        rows: dict[UUID, Row | None] = {
            r["ticket_id"]: dict(r)
            for r in await connection.fetch(
                "SELECT * FROM tickets WHERE ticket_id = ANY($1::uuid[]) FOR UPDATE", ids
            )
        }
        touched: set[UUID] = set()
        for event in relevant:
            assert event.aggregate_id is not None
            folded = fold_ticket(rows.get(event.aggregate_id), event)
            if folded is not None:
                rows[event.aggregate_id] = folded
                touched.add(event.aggregate_id)
        written = [r for i in touched if (r := rows[i]) is not None]
        if written:
            await upsert(connection, "tickets", TICKET_COLUMNS, written, ())

    async def _contact_plans(
        self, connection: asyncpg.Connection, events: Sequence[EventEnvelope[Any]]
    ) -> None:
        for event in events:
            if event.event_type == "interaction.contact_plan_set":
                p = event.payload
                await connection.execute(
                    """INSERT INTO contact_plans (customer_id, channel, every_days, owner, note,
                           starts_at, updated_at)
                       VALUES ($1, $2, $3, $4, $5, $6, $7)
                       ON CONFLICT (customer_id) DO UPDATE SET channel = excluded.channel,
                           every_days = excluded.every_days, owner = excluded.owner,
                           note = excluded.note, starts_at = excluded.starts_at,
                           updated_at = excluded.updated_at""",
                    event.customer_id,
                    p.channel.value,
                    p.every_days,
                    p.owner,
                    p.note,
                    p.starts_at,
                    event.recorded_at,
                )
            elif event.event_type == "interaction.contact_plan_ended":
                await connection.execute(
                    "DELETE FROM contact_plans WHERE customer_id = $1", event.customer_id
                )


async def upsert(
    connection: asyncpg.Connection,
    table: str,
    columns: Sequence[str],
    rows: Sequence[Row],
    json_columns: Sequence[str],
) -> None:
    placeholders = ", ".join(
        f"${i}::jsonb" if c in json_columns else f"${i}" for i, c in enumerate(columns, 1)
    )
    updates = ", ".join(f"{c} = excluded.{c}" for c in columns[1:])
    await connection.executemany(
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders}) "
        f"ON CONFLICT ({columns[0]}) DO UPDATE SET {updates}",
        [
            tuple(
                json.dumps(r[c], ensure_ascii=False) if c in json_columns else r[c] for c in columns
            )
            for r in rows
        ],
    )
