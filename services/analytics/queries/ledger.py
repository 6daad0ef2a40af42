"""The ledger of predictions (`predictions`): the predictions themselves, newest first,
with how many of those filtered held; their accuracy per model, version, kind and
period; calibration tables; and the population's expected against actual purchases per
week."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from services.analytics.domain.accuracy import CALIBRATION_BUCKETS
from services.analytics.domain.ledger import POPULATION_WEEK
from services.analytics.queries.records import as_dicts
from services.runtime.http.paging import BY_MOMENT, Position, SortKey
from services.runtime.storage.filters import Where

BY_MADE = SortKey(("made_at", "prediction_id"), BY_MOMENT)
"""The ledger pages by the moment a prediction was made, newest first."""

STATUS = {
    "open": "p.settled_at IS NULL",
    "settled": "p.settled_at IS NOT NULL",
    "held": "p.held",
    "missed": "NOT p.held",
}
"""The statuses a list filters on."""

_COLUMNS = """p.prediction_id, p.kind, p.model, p.model_version, p.made_by, p.customer_id,
    p.opportunity_id, p.activity_id, p.made_at, p.horizon_at, p.window_days, p.probability,
    p.expected, p.probability_active, p.stage, p.reasons, p.settled_at, p.settled_by,
    p.held, p.happened, p.actual"""


@dataclass(frozen=True)
class Filters:
    """What the lists filter on (None: not filtered)."""

    customer_id: UUID | None = None
    opportunity_id: UUID | None = None
    model: str | None = None
    model_version: int | None = None
    kind: str | None = None
    made_by: str | None = None
    status: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def where(self) -> Where:
        where = Where()
        where.equal("p.customer_id", self.customer_id)
        where.equal("p.opportunity_id", self.opportunity_id)
        where.equal("p.model", self.model)
        where.equal("p.model_version", self.model_version)
        where.equal("p.kind", self.kind)
        where.equal("p.made_by", self.made_by)
        where.compare("p.made_at", ">=", self.since)
        where.compare("p.made_at", "<", self.until)
        if self.status is not None:
            where.condition(STATUS[self.status])
        return where


async def predictions(
    pool: asyncpg.Pool, filters: Filters, after: Position | None, limit: int
) -> list[dict[str, Any]]:
    where = filters.where()
    where.after(("p.made_at", "p.prediction_id"), after, descending=True)
    rows = await pool.fetch(
        f"""SELECT {_COLUMNS} FROM predictions p WHERE {where.sql}
            ORDER BY p.made_at DESC, p.prediction_id DESC LIMIT {where.parameter(limit)}""",
        *where.values,
    )
    return as_dicts(rows)


async def summary(pool: asyncpg.Pool, filters: Filters) -> dict[str, Any]:
    """How many predictions the filters select, and of them how many are open, held and
    missed."""
    where = filters.where()
    row = await pool.fetchrow(
        f"""SELECT count(*) AS predictions,
                   count(*) FILTER (WHERE p.settled_at IS NULL) AS open,
                   count(*) FILTER (WHERE p.held) AS held,
                   count(*) FILTER (WHERE NOT p.held) AS missed
            FROM predictions p WHERE {where.sql}""",
        *where.values,
    )
    return dict(row)


BY_PERIOD = SortKey(("period", "model", "kind", "version"), (datetime, str, str, int))
"""Accuracy rows page by period, newest first, then model, kind and version."""

_BUCKET = f"least(floor(p.probability * {CALIBRATION_BUCKETS}), {CALIBRATION_BUCKETS - 1})::int"


async def accuracy(
    pool: asyncpg.Pool, filters: Filters, period: str, after: Position | None, limit: int
) -> list[dict[str, Any]]:
    """Per period in which predictions were made (`week` or `month`, UTC), model, version
    (0 without one) and kind: how many were made, settled, held; the sums of the squared
    errors and of the counts; and the calibration buckets of the settled probabilities
    (bucket, count, mean probability, share that happened)."""
    where = filters.where()
    truncated = f"date_trunc({where.parameter(period)}, p.made_at, 'UTC')"
    outer = Where(where.values)
    outer.after(("period", "model", "kind", "version"), after, descending=True)
    rows = await pool.fetch(
        f"""WITH grouped AS (
                SELECT {truncated} AS period, p.model, p.kind,
                       coalesce(p.model_version, 0) AS version,
                       CASE WHEN p.probability IS NOT NULL AND p.happened IS NOT NULL
                            THEN {_BUCKET} END AS bucket,
                       count(*) AS made,
                       count(p.settled_at) AS settled,
                       count(*) FILTER (WHERE p.held) AS held,
                       sum((p.probability - p.happened::int) ^ 2) AS squares,
                       avg(p.probability) FILTER (WHERE p.happened IS NOT NULL) AS said,
                       avg(p.happened::int)::float8 AS happened,
                       sum(p.expected) FILTER (WHERE p.actual IS NOT NULL) AS expected,
                       sum(p.actual) AS actual,
                       sum(abs(p.actual - p.expected)) AS absolute_error
                FROM predictions p WHERE {where.sql}
                GROUP BY 1, 2, 3, 4, 5)
            SELECT period, model, kind, version, sum(made) AS made,
                   sum(settled) AS settled, sum(held) AS held, sum(squares) AS squares,
                   sum(expected) AS expected, sum(actual) AS actual,
                   sum(absolute_error) AS absolute_error,
                   array_agg(bucket ORDER BY bucket) FILTER (WHERE bucket IS NOT NULL)
                       AS buckets,
                   array_agg(settled ORDER BY bucket) FILTER (WHERE bucket IS NOT NULL)
                       AS bucket_counts,
                   array_agg(said ORDER BY bucket) FILTER (WHERE bucket IS NOT NULL)
                       AS bucket_said,
                   array_agg(happened ORDER BY bucket) FILTER (WHERE bucket IS NOT NULL)
                       AS bucket_happened
            FROM grouped WHERE {outer.sql}
            GROUP BY period, model, kind, version
            ORDER BY period DESC, model DESC, kind DESC, version DESC
            LIMIT {outer.parameter(limit)}""",
        *outer.values,
    )
    return as_dicts(rows)


async def calibration(pool: asyncpg.Pool, filters: Filters) -> list[dict[str, Any]]:
    """Per model and kind, the settled probabilities by bucket: count, mean probability,
    share that happened, sum of squared errors, how many held."""
    where = filters.where()
    where.condition("p.probability IS NOT NULL AND p.happened IS NOT NULL")
    rows = await pool.fetch(
        f"""SELECT p.model, p.kind, {_BUCKET} AS bucket, count(*) AS count,
                   avg(p.probability) AS said, avg(p.happened::int)::float8 AS happened,
                   sum((p.probability - p.happened::int) ^ 2) AS squares,
                   count(*) FILTER (WHERE p.held) AS held
            FROM predictions p WHERE {where.sql}
            GROUP BY 1, 2, 3 ORDER BY 1, 2, 3""",
        *where.values,
    )
    return as_dicts(rows)


BY_WEEK = SortKey(("horizon_at", "prediction_id"), BY_MOMENT)
"""The population's weeks page by their end, newest first."""


async def weeks(
    pool: asyncpg.Pool, filters: Filters, after: Position | None, limit: int
) -> list[dict[str, Any]]:
    """The population's expected purchases per week (`population_week` predictions) and,
    once each week ended, the purchases counted in it."""
    where = filters.where()
    where.equal("p.kind", POPULATION_WEEK)
    where.after(("p.horizon_at", "p.prediction_id"), after, descending=True)
    rows = await pool.fetch(
        f"""SELECT p.prediction_id, p.model, p.model_version, p.made_at,
                   p.horizon_at - p.window_days * interval '1 day' AS week_start,
                   p.horizon_at, p.expected, p.actual, p.settled_at, p.held
            FROM predictions p WHERE {where.sql}
            ORDER BY p.horizon_at DESC, p.prediction_id DESC LIMIT {where.parameter(limit)}""",
        *where.values,
    )
    return as_dicts(rows)
