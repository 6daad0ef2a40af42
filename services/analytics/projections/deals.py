"""The win model in the analytics tables: closed deals read for a fit, the model in use,
and the learned win probability of each open deal written beside its stage's default.

A deal as the model reads it (`win_probability.Deal`) comes from the `opportunities`
detail rows: for a closed deal the last open stage before it closed, its amount in the
reporting currency, its first product, region and owner, its age from opening to
closing (to now for an open one) and its number of activities. Open deals are scored
after every fit, and in the background when they changed since they were scored
(`score_open_deals`), under the writers' lock like every writer of these tables; each
scoring enters the ledger of predictions when due (`ledger.record_deals`).
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from decimal import Decimal
from typing import Any

import asyncpg
import orjson

from services.analytics.domain.money import Converter
from services.analytics.domain.predictions import win_model_of
from services.analytics.domain.win_probability import (
    WIN_PROBABILITY,
    ClosedDeal,
    Deal,
    InvalidDeal,
    WinModel,
    win_probability,
)
from services.analytics.projections.bulk import json_default
from services.analytics.projections.ledger import record_deals

_DEAL_COLUMNS = """o.opportunity_id, o.expected_amount, o.currency, o.opened_at, o.closed_at,
    o.product, o.region, o.owner,
    (SELECT count(*) FROM opportunity_activities a
     WHERE a.opportunity_id = o.opportunity_id) AS activities"""

CLOSED_DEALS = f"""SELECT {_DEAL_COLUMNS}, o.closing_stage AS stage, o.stage = 'won' AS won
    FROM opportunities o
    WHERE o.stage IN ('won', 'lost') AND o.closing_stage IS NOT NULL
      AND o.opened_at IS NOT NULL AND o.closed_at IS NOT NULL"""
"""Closed deals the model can learn from (closed by a move from an open stage)."""

_OPEN_DEALS = f"""SELECT {_DEAL_COLUMNS}, o.stage, o.customer_id, o.expected_close_date
    FROM opportunities o WHERE o.stage NOT IN ('won', 'lost') AND o.opened_at IS NOT NULL"""


def deal_of(row: asyncpg.Record, until: datetime, converter: Converter) -> Deal:
    """The deal of an `opportunities` row, aged until `until` (its closing, or now)."""
    amount = row["expected_amount"] or Decimal(0)
    converted = converter.convert(amount, row["currency"]) if row["currency"] else amount
    return Deal(
        stage=row["stage"],
        amount=float(converted),
        age_days=max((until - row["opened_at"]).total_seconds() / 86_400, 0.0),
        activities=int(row["activities"]),
        product=row["product"],
        region=row["region"],
        owner=row["owner"],
    )


async def closed_deals(
    connection: asyncpg.Connection, converter: Converter
) -> tuple[list[ClosedDeal], int]:
    """Every closed deal as the model reads it, and how many could not be read (an
    amount in a currency without a rate)."""
    found = []
    unreadable = 0
    for row in await connection.fetch(CLOSED_DEALS):
        try:
            found.append(ClosedDeal(deal_of(row, row["closed_at"], converter), row["won"]))
        except (InvalidDeal, ValueError):
            unreadable += 1
    return found, unreadable


async def win_model_in_use(connection: asyncpg.Connection) -> tuple[WinModel, int] | None:
    row = await connection.fetchrow(
        """SELECT version, parameters::text AS parameters, fitted_at FROM model_fits
           WHERE model = $1 AND converged ORDER BY version DESC LIMIT 1""",
        WIN_PROBABILITY,
    )
    if row is None:
        return None
    model = win_model_of(orjson.loads(row["parameters"]), fitted_at=row["fitted_at"])
    return model, row["version"]


def _scored(
    rows: list[asyncpg.Record], model: WinModel, now: datetime, converter: Converter
) -> list[dict[str, Any]]:
    scored = []
    for row in rows:
        try:
            deal = deal_of(row, now, converter)
        except (InvalidDeal, ValueError):
            continue
        learned = win_probability(model, deal)
        scored.append(
            {
                "opportunity_id": str(row["opportunity_id"]),
                "customer_id": row["customer_id"],
                "stage": row["stage"],
                "expected_close_date": row["expected_close_date"],
                "probability": learned.probability,
                "baseline": learned.baseline,
                "factors": orjson.dumps(
                    [
                        {"feature": f.feature, "level": f.value, "contribution": f.contribution}
                        for f in learned.factors
                    ]
                ).decode(),
            }
        )
    return scored


async def score_open_deals(
    connection: asyncpg.Connection, converter: Converter, now: datetime, *, every: bool
) -> int:
    """Score the open deals with the win model in use: all of them (`every`, after a
    fit) or those changed since they were scored. Nothing without a model in use: the
    stage's default stands. Returns how many were scored (the caller holds the lock)."""
    in_use = await win_model_in_use(connection)
    if in_use is None:
        return 0
    model, version = in_use
    changed = "" if every else (
        " AND (o.win_scored_at IS NULL OR o.updated_at > o.win_scored_at"
        " OR o.win_model_version IS DISTINCT FROM $1)"
    )  # fmt: skip
    rows = await connection.fetch(_OPEN_DEALS + changed, *([] if every else [version]))
    if not rows:
        return 0
    scored = await asyncio.to_thread(_scored, rows, model, now, converter)
    await connection.execute(
        """UPDATE opportunities o SET win_probability = u.probability,
               win_baseline = u.baseline, win_factors = u.factors::jsonb,
               win_model_version = $2, win_scored_at = $3
           FROM json_to_recordset($1::json) AS u(opportunity_id uuid,
               probability float8, baseline float8, factors text)
           WHERE o.opportunity_id = u.opportunity_id""",
        orjson.dumps(scored, default=json_default).decode(),
        version,
        now,
    )
    await record_deals(connection, scored, version, now)
    return len(scored)
