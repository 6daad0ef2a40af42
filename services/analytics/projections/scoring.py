"""The lifetime value models' scores written into the profiles, set-based.

Scores are columns of `profiles` (`predictions.SCORE_FIELDS`), written here and never by
the fold: the fold only marks a customer whose purchases changed (`scores_stale`, in its
upsert, and a survivor whose merge group's purchases changed, `groups`). A survivor of
merges is scored on its group's purchases (`SCORED`). Two writers score:

- after every fit, everyone with a purchase, with the models in use (`score_all`);
- in the background (`score_stale`, every `CRM_ANALYTICS_RESCORE_INTERVAL_SECONDS`), the
  customers marked stale since, in chunks.

Each reads the customers' summaries, computes every score of a chunk with one array
operation per formula (`lifetime_value.score`, in a worker thread), writes them with one
UPDATE from arrays, and concludes those customers again (segments and churn warnings may
read the scores). Both hold the writers' lock (`writers.lock`) for their transaction, so
the fold's memory of the profiles is renewed afterwards.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import asyncpg
import orjson

from services.analytics.domain.bg_nbd import BG_NBD, BgNbdFit
from services.analytics.domain.gamma_gamma import GAMMA_GAMMA, GammaGammaFit
from services.analytics.domain.lifetime_value import score
from services.analytics.domain.predictions import (
    PURCHASE_FIELDS,
    SCORE_FIELDS,
    Summary,
    Valuation,
    bg_nbd_of,
    gamma_gamma_of,
    population,
    score_fields,
)
from services.analytics.projections.groups import conclude_and_write
from services.analytics.projections.ledger import (
    PopulationForecast,
    record_customers,
    record_population,
)
from services.analytics.projections.store import load_profiles, load_rules

CHUNK = 5000
"""Customers scored per step."""

SUMMARY_COLUMNS = (
    "customer_id, purchase_count, total_spend, first_spend, first_purchase_at, last_purchase_at"
)
SCORED = (
    "SELECT p.customer_id, "
    + ", ".join(
        f"coalesce(m.{name}, p.{name}) AS {name}" for name in SUMMARY_COLUMNS.split(", ")[1:]
    )
    + " FROM profiles p LEFT JOIN merged_profiles m USING (customer_id)"
)
"""Each customer's purchases as the models score them: a survivor of merges by its group's
purchases combined (`merged_profiles`, `projections.groups`), so that its lifetime value
and probability of being active count what the customers merged into it bought;
everyone else (those merged into another too) by their own."""

POPULATION = f"""SELECT * FROM ({SCORED}) s WHERE purchase_count > 0
    AND NOT EXISTS (SELECT 1 FROM customer_aliases a WHERE a.customer_id = s.customer_id)"""
"""Whom the models are fitted on: every customer with a purchase, as scored (a survivor of
merges by its group's purchases), each merge group once (a customer merged into another
is counted in its survivor, not beside it)."""


@dataclass(frozen=True)
class InUse:
    """The models in use (each model's latest converged fit) and their versions."""

    bg_nbd: BgNbdFit | None = None
    bg_nbd_version: int | None = None
    gamma_gamma: GammaGammaFit | None = None
    gamma_gamma_version: int | None = None


async def models_in_use(connection: asyncpg.Connection) -> InUse:
    rows = await connection.fetch(
        """SELECT DISTINCT ON (model) model, version, parameters::text AS parameters,
                  fitted_at, population
           FROM model_fits WHERE converged AND model = ANY($1::text[])
           ORDER BY model, version DESC""",
        [BG_NBD, GAMMA_GAMMA],
    )
    found: dict[str, asyncpg.Record] = {r["model"]: r for r in rows}
    bg = gg = None
    if (row := found.get(BG_NBD)) is not None:
        bg = bg_nbd_of(
            orjson.loads(row["parameters"]),
            customers=row["population"],
            fitted_at=row["fitted_at"],
        )
    if (row := found.get(GAMMA_GAMMA)) is not None:
        parameters = orjson.loads(row["parameters"])
        gg = gamma_gamma_of(
            parameters,
            customers=int(parameters.get("customers", row["population"])),
            fitted_at=row["fitted_at"],
        )
    return InUse(
        bg_nbd=bg,
        bg_nbd_version=found[BG_NBD]["version"] if bg else None,
        gamma_gamma=gg,
        gamma_gamma_version=found[GAMMA_GAMMA]["version"] if gg else None,
    )


def summaries(rows: Sequence[asyncpg.Record]) -> list[Summary]:
    """Rows of `SUMMARY_COLUMNS` (the fields of `Summary`)."""
    return [Summary(**dict(r)) for r in rows]


_WRITE = f"""
UPDATE profiles p SET {", ".join(f"{name} = u.{name}" for name in SCORE_FIELDS)},
       scored_at = $8, bg_nbd_version = $9, gamma_gamma_version = $10, scores_stale = false
FROM unnest($1::uuid[], $2::float8[], $3::float8[], $4::float8[], $5::float8[],
            $6::numeric[], $7::numeric[])
     AS u(customer_id, {", ".join(SCORE_FIELDS)})
WHERE p.customer_id = u.customer_id
"""


async def score_rows(
    connection: asyncpg.Connection,
    rows: Sequence[asyncpg.Record],
    models: InUse,
    valuation: Valuation,
    now: datetime,
) -> list[UUID]:
    """Score the customers of `rows` (`SUMMARY_COLUMNS`) as of `now` and write their
    scores; a customer whose summary cannot be a history (a purchase after `now`) is
    written without scores. Returns the customers written."""
    bg = models.bg_nbd
    assert bg is not None
    people = population(summaries(rows), now, bg.period_days)
    scores = await asyncio.to_thread(
        score,
        bg,
        models.gamma_gamma,
        people.histories,
        purchase_horizons_days=tuple(PURCHASE_FIELDS),
        value_horizon_days=valuation.horizon_days,
        annual_discount_rate=valuation.annual_discount_rate,
    )
    fields = [score_fields(s) for s in scores]
    customers = [*people.customers, *people.excluded]
    unscored = [None] * len(people.excluded)
    columns = [[f[name] for f in fields] + unscored for name in SCORE_FIELDS]
    await connection.execute(
        _WRITE,
        customers,
        *columns,
        now,
        models.bg_nbd_version,
        models.gamma_gamma_version if models.gamma_gamma else None,
    )
    return customers


async def _reconclude(
    connection: asyncpg.Connection, customers: Sequence[UUID], at: datetime | None, now: datetime
) -> int:
    """Conclude the scored customers again, at event time `at` (the watermark), or with
    None at each one's own clock: a score is no fact of the customer's."""
    if not customers:
        return 0
    loaded = await load_profiles(connection, customers)
    rules = await load_rules(connection)
    return await conclude_and_write(connection, loaded, rules, at, now)


async def score_all(
    connection: asyncpg.Connection,
    models: InUse,
    valuation: Valuation,
    now: datetime,
    *,
    at: datetime | None = None,
) -> int:
    """Score everyone with a purchase (after a fit), in chunks, conclude them again, and
    record the predictions that are due in the ledger (`ledger.record_customers`,
    `ledger.record_population`), under the writers' lock, which the caller holds.
    Returns how many were scored."""
    bg, version = models.bg_nbd, models.bg_nbd_version
    if bg is None or version is None:
        return 0
    after = UUID(int=0)
    total = 0
    forecast = PopulationForecast.empty()
    while True:
        rows = await connection.fetch(
            SCORED + " WHERE coalesce(m.purchase_count, p.purchase_count) > 0"
            " AND p.customer_id > $1 ORDER BY p.customer_id LIMIT $2",
            after,
            CHUNK,
        )
        if not rows:
            await record_population(connection, forecast, version, now)
            return total
        customers = await score_rows(connection, rows, models, valuation, now)
        people = population(summaries(rows), now, bg.period_days)
        await record_customers(connection, people, bg, version, now)
        forecast.add(bg, people)
        await _reconclude(connection, customers, at, now)
        total += len(customers)
        after = rows[-1]["customer_id"]


async def score_stale(
    connection: asyncpg.Connection,
    valuation: Valuation,
    now: datetime,
    *,
    at: datetime | None = None,
) -> int:
    """Score the customers whose purchases changed since they were scored, and conclude
    them again (under the writers' lock, which the caller holds). Nothing without a
    BG/NBD model in use: they are scored by the first fit. Returns how many were scored."""
    stale = await connection.fetchval("SELECT EXISTS (SELECT FROM profiles WHERE scores_stale)")
    if not stale:
        return 0
    models = await models_in_use(connection)
    if models.bg_nbd is None:
        return 0
    total = 0
    while True:
        rows = await connection.fetch(
            SCORED + " WHERE p.scores_stale ORDER BY p.customer_id LIMIT $1", CHUNK
        )
        if not rows:
            return total
        customers = await score_rows(connection, rows, models, valuation, now)
        await _reconclude(connection, customers, at, now)
        total += len(customers)
