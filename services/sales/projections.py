"""The sales read models, folded from the sales topic.

One row per opportunity, activity, quote version, contract, payment and purchase.
Amounts are NUMERIC, never float. Opportunity events are applied in order, one statement
each (people type them); purchases, which arrive in bursts from other systems, are
inserted with one statement per batch.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import asyncpg

from contracts.envelope import EventEnvelope
from contracts.topics import Topic
from services.runtime.customer_replica import CustomerReplica
from services.runtime.privacy.erasure import (
    EMPTY_TEXT_ARRAY,
    ERASED_TEXT,
    PersonalColumns,
)

DDL = """
CREATE TABLE IF NOT EXISTS opportunities (
    opportunity_id uuid PRIMARY KEY,
    customer_id uuid NOT NULL,
    description text NOT NULL,
    products jsonb NOT NULL,
    product_names text[] NOT NULL,
    expected_amount numeric NOT NULL,
    currency text NOT NULL,
    expected_close_date date NOT NULL,
    region text,
    owner text NOT NULL,
    stage text NOT NULL,
    probability integer NOT NULL,
    probability_overridden boolean NOT NULL,
    lost_reason text,
    backward_moves integer NOT NULL DEFAULT 0,
    reopened integer NOT NULL DEFAULT 0,
    opened_at timestamptz NOT NULL,
    closed_at timestamptz,
    version integer NOT NULL,
    updated_at timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS opportunities_customer ON opportunities (customer_id, opened_at);
CREATE INDEX IF NOT EXISTS opportunities_stage ON opportunities (stage);
CREATE INDEX IF NOT EXISTS opportunities_owner ON opportunities (owner);
CREATE INDEX IF NOT EXISTS opportunities_close ON opportunities (expected_close_date);
CREATE INDEX IF NOT EXISTS opportunities_page ON opportunities (opened_at, opportunity_id);

CREATE TABLE IF NOT EXISTS activities (
    activity_id text PRIMARY KEY,
    opportunity_id uuid NOT NULL,
    customer_id uuid NOT NULL,
    kind text NOT NULL,
    owner text NOT NULL,
    scheduled_on date NOT NULL,
    people text[] NOT NULL,
    description text NOT NULL,
    predicted_result text,
    actual_result text,
    occurred_on date,
    prediction_held boolean,
    planned_at timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS activities_opportunity ON activities (opportunity_id, scheduled_on);

CREATE TABLE IF NOT EXISTS quotes (
    quote_id text NOT NULL,
    quote_version integer NOT NULL,
    opportunity_id uuid NOT NULL,
    customer_id uuid NOT NULL,
    lines jsonb NOT NULL,
    total_amount numeric NOT NULL,
    currency text NOT NULL,
    valid_until date NOT NULL,
    note text,
    issued_at timestamptz NOT NULL,
    PRIMARY KEY (quote_id, quote_version)
);
CREATE INDEX IF NOT EXISTS quotes_opportunity ON quotes (opportunity_id);

CREATE TABLE IF NOT EXISTS sales_contracts (
    contract_id text PRIMARY KEY,
    opportunity_id uuid NOT NULL,
    customer_id uuid NOT NULL,
    amount numeric NOT NULL,
    currency text NOT NULL,
    signed_on date NOT NULL,
    paid numeric NOT NULL DEFAULT 0,
    payment_count integer NOT NULL DEFAULT 0,
    owner text NOT NULL,
    region text
);
CREATE INDEX IF NOT EXISTS sales_contracts_customer ON sales_contracts (customer_id);

CREATE TABLE IF NOT EXISTS payments (
    payment_id text PRIMARY KEY,
    contract_id text NOT NULL,
    opportunity_id uuid NOT NULL,
    customer_id uuid NOT NULL,
    amount numeric NOT NULL,
    currency text NOT NULL,
    received_on date NOT NULL,
    reference text,
    recorded_at timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS payments_contract ON payments (contract_id, received_on);

CREATE TABLE IF NOT EXISTS purchases (
    purchase_id uuid PRIMARY KEY,
    source text NOT NULL,
    order_id text NOT NULL,
    customer_id uuid NOT NULL,
    source_customer_id text,
    amount numeric NOT NULL,
    currency text NOT NULL,
    items jsonb NOT NULL,
    channel text,
    occurred_at timestamptz NOT NULL,
    recorded_at timestamptz NOT NULL,
    UNIQUE (source, order_id)
);
CREATE INDEX IF NOT EXISTS purchases_customer ON purchases (customer_id, occurred_at);
"""

Statement = Callable[[asyncpg.Connection, EventEnvelope[Any]], Awaitable[None]]


def _dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


async def _opened(c: asyncpg.Connection, e: EventEnvelope[Any]) -> None:
    p = e.payload
    products = [line.model_dump(mode="json") for line in p.products]
    await c.execute(
        """INSERT INTO opportunities (opportunity_id, customer_id, description, products,
               product_names, expected_amount, currency, expected_close_date, region, owner,
               stage, probability, probability_overridden, opened_at, version, updated_at)
           VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $14)
           ON CONFLICT (opportunity_id) DO NOTHING""",
        p.opportunity_id,
        e.customer_id,
        p.description,
        _dump(products),
        sorted({line.product for line in p.products}),
        p.expected_amount,
        p.currency.value,
        p.expected_close_date,
        p.region,
        p.owner,
        p.stage.value,
        p.probability,
        p.probability_overridden,
        e.occurred_at,
        e.aggregate_version,
    )


async def _update(c: asyncpg.Connection, e: EventEnvelope[Any], **columns: Any) -> None:
    assignments = ", ".join(
        ["version = $2", "updated_at = $3"]
        + [f"{name} = {_value(name, i)}" for i, name in enumerate(columns, 4)]
    )
    await c.execute(
        f"UPDATE opportunities SET {assignments} WHERE opportunity_id = $1",
        e.payload.opportunity_id,
        e.aggregate_version,
        e.occurred_at,
        *columns.values(),
    )


def _value(name: str, index: int) -> str:
    expressions = {
        "backward_moves": f"backward_moves + ${index}",
        "reopened": f"reopened + ${index}",
    }
    return expressions.get(name, f"${index}")


async def _stage_changed(c: asyncpg.Connection, e: EventEnvelope[Any]) -> None:
    p = e.payload
    closed = p.to_stage.value in ("won", "lost")
    await _update(
        c,
        e,
        stage=p.to_stage.value,
        probability=p.probability,
        probability_overridden=p.probability_overridden,
        lost_reason=p.lost_reason,
        closed_at=e.occurred_at if closed else None,
        backward_moves=1 if p.move.value == "backward" else 0,
        reopened=1 if p.move.value == "reopened" else 0,
    )


async def _amount_changed(c: asyncpg.Connection, e: EventEnvelope[Any]) -> None:
    await _update(
        c, e, expected_amount=e.payload.expected_amount, currency=e.payload.currency.value
    )


async def _close_date_changed(c: asyncpg.Connection, e: EventEnvelope[Any]) -> None:
    await _update(c, e, expected_close_date=e.payload.expected_close_date)


async def _owner_changed(c: asyncpg.Connection, e: EventEnvelope[Any]) -> None:
    await _update(c, e, owner=e.payload.owner)
    await c.execute(
        "UPDATE sales_contracts SET owner = $2 WHERE opportunity_id = $1",
        e.payload.opportunity_id,
        e.payload.owner,
    )


async def _probability_changed(c: asyncpg.Connection, e: EventEnvelope[Any]) -> None:
    p = e.payload
    await _update(c, e, probability=p.probability, probability_overridden=p.overridden)


async def _activity_planned(c: asyncpg.Connection, e: EventEnvelope[Any]) -> None:
    p = e.payload
    await c.execute(
        """INSERT INTO activities (activity_id, opportunity_id, customer_id, kind, owner,
               scheduled_on, people, description, predicted_result, planned_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
           ON CONFLICT (activity_id) DO NOTHING""",
        p.activity_id,
        p.opportunity_id,
        e.customer_id,
        p.kind.value,
        p.owner,
        p.scheduled_on,
        list(p.people),
        p.description,
        p.predicted_result,
        e.occurred_at,
    )
    await _update(c, e)


async def _activity_completed(c: asyncpg.Connection, e: EventEnvelope[Any]) -> None:
    p = e.payload
    await c.execute(
        """UPDATE activities SET actual_result = $2, occurred_on = $3, prediction_held = $4
           WHERE activity_id = $1""",
        p.activity_id,
        p.actual_result,
        p.occurred_on,
        p.prediction_held,
    )
    await _update(c, e)


async def _quote_issued(c: asyncpg.Connection, e: EventEnvelope[Any]) -> None:
    p = e.payload
    await c.execute(
        """INSERT INTO quotes (quote_id, quote_version, opportunity_id, customer_id, lines,
               total_amount, currency, valid_until, note, issued_at)
           VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7, $8, $9, $10)
           ON CONFLICT DO NOTHING""",
        p.quote_id,
        p.quote_version,
        p.opportunity_id,
        e.customer_id,
        _dump([line.model_dump(mode="json") for line in p.lines]),
        p.total_amount,
        p.currency.value,
        p.valid_until,
        p.note,
        e.occurred_at,
    )
    await _update(c, e)


async def _contract_signed(c: asyncpg.Connection, e: EventEnvelope[Any]) -> None:
    p = e.payload
    await c.execute(
        """INSERT INTO sales_contracts (contract_id, opportunity_id, customer_id, amount,
               currency, signed_on, owner, region)
           SELECT $1, $2, $3, $4, $5, $6, owner, region FROM opportunities
           WHERE opportunity_id = $2
           ON CONFLICT DO NOTHING""",
        p.contract_id,
        p.opportunity_id,
        e.customer_id,
        p.amount,
        p.currency.value,
        p.signed_on,
    )
    await _update(c, e)


async def _payment_received(c: asyncpg.Connection, e: EventEnvelope[Any]) -> None:
    p = e.payload
    inserted = await c.fetchval(
        """INSERT INTO payments (payment_id, contract_id, opportunity_id, customer_id, amount,
               currency, received_on, reference, recorded_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
           ON CONFLICT DO NOTHING RETURNING 1""",
        p.payment_id,
        p.contract_id,
        p.opportunity_id,
        e.customer_id,
        p.amount,
        p.currency.value,
        p.received_on,
        p.reference,
        e.occurred_at,
    )
    if inserted:
        await c.execute(
            """UPDATE sales_contracts SET paid = paid + $2, payment_count = payment_count + 1
               WHERE contract_id = $1""",
            p.contract_id,
            p.amount,
        )
    await _update(c, e)


OPPORTUNITY_STATEMENTS: dict[str, Statement] = {
    "sales.opportunity_opened": _opened,
    "sales.opportunity_stage_changed": _stage_changed,
    "sales.opportunity_amount_changed": _amount_changed,
    "sales.opportunity_close_date_changed": _close_date_changed,
    "sales.opportunity_owner_changed": _owner_changed,
    "sales.opportunity_probability_changed": _probability_changed,
    "sales.activity_planned": _activity_planned,
    "sales.activity_completed": _activity_completed,
    "sales.quote_issued": _quote_issued,
    "sales.contract_signed": _contract_signed,
    "sales.payment_received": _payment_received,
}


async def insert_purchases(c: asyncpg.Connection, events: Sequence[EventEnvelope[Any]]) -> None:
    rows = []
    for e in events:
        p = e.payload
        reference = p.customer_reference
        rows.append(
            (
                p.purchase_id,
                p.source,
                p.order_id,
                e.customer_id,
                reference.source_customer_id if reference else None,
                p.amount,
                p.currency.value,
                _dump([i.model_dump(mode="json") for i in p.items]),
                p.channel,
                e.occurred_at,
                e.recorded_at,
            )
        )
    columns = list(zip(*rows, strict=True))
    await c.execute(
        """INSERT INTO purchases (purchase_id, source, order_id, customer_id,
               source_customer_id, amount, currency, items, channel, occurred_at, recorded_at)
           SELECT u.purchase_id, u.source, u.order_id, u.customer_id, u.source_customer_id,
               u.amount, u.currency, u.items::jsonb, u.channel, u.occurred_at, u.recorded_at
           FROM unnest($1::uuid[], $2::text[], $3::text[], $4::uuid[], $5::text[],
               $6::numeric[], $7::text[], $8::text[], $9::text[], $10::timestamptz[],
               $11::timestamptz[])
             AS u(purchase_id, source, order_id, customer_id, source_customer_id, amount,
                  currency, items, channel, occurred_at, recorded_at)
           ON CONFLICT DO NOTHING""",
        *[list(column) for column in columns],
    )


PERSONAL_COLUMNS = (
    PersonalColumns("opportunities", {"description": ERASED_TEXT, "lost_reason": ERASED_TEXT}),
    PersonalColumns(
        "activities",
        {
            "people": EMPTY_TEXT_ARRAY,
            "description": ERASED_TEXT,
            "predicted_result": ERASED_TEXT,
            "actual_result": ERASED_TEXT,
        },
    ),
    PersonalColumns("quotes", {"note": ERASED_TEXT}),
    PersonalColumns("purchases", {"source_customer_id": ERASED_TEXT}),
)
"""The sales views' personal columns; a customer's erasure overwrites them (amounts,
stages, dates and products stay)."""

CUSTOMERS = CustomerReplica("sales_customers", PERSONAL_COLUMNS)
"""The sales service's replica of the customer topic (names, channels, references)."""


class SalesProjection:
    """The sales read models; `name` keys their consumer group and `consumed_events`."""

    name = "sales_views"
    version = 1
    """The shape of the tables (`create_tables`); raised with every change to it."""
    topics: Sequence[str] = (Topic.SALES,)

    async def create_tables(self, connection: asyncpg.Connection) -> None:
        await connection.execute(DDL)

    async def apply(
        self, connection: asyncpg.Connection, events: Sequence[EventEnvelope[Any]]
    ) -> None:
        purchases = [e for e in events if e.event_type == "sales.purchase_recorded"]
        if purchases:
            await insert_purchases(connection, purchases)
        for event in events:
            statement = OPPORTUNITY_STATEMENTS.get(event.event_type)
            if statement is not None:
                await statement(connection, event)
