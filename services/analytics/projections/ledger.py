"""The ledger of predictions in the analytics tables (`predictions`, a durable table of the
service's migrations): predictions recorded as they are made, settled when their
horizon passes or their outcome is known, each as an event in the outbox
(`analytics.prediction_made`, `analytics.prediction_settled`) written in the same
transaction. What each kind means and how it is settled is `domain.ledger`.

Who records what, always under the writers' lock:

- a fit (`scoring.score_all`): for each customer scored, the purchases expected in 30,
  90 and 365 days and the probability of buying within 90 days, each only when the
  customer has no unsettled prediction of that kind and window (so the windows of one
  customer never overlap: at most 21 such predictions a customer a year, however often
  the models are fitted); and the population's purchases in each of the next four
  weeks, when none of those is unsettled;
- the scoring of open deals (`deals.score_open_deals`): a deal's learned probability
  and its stage's default beside it, when it has none unsettled, when its stage
  changed, or when its probability moved by 5 points and the previous one is a day old;
- the background step (`step`, every `CRM_ANALYTICS_LEDGER_INTERVAL_SECONDS`): every
  churn warning raised, every activity whose owner predicted a result, and every
  settlement that came due.

Purchases are counted from the `purchases` detail rows (purchases and won contracts, as
the profile counts them) with the moment they happened, as known when a prediction is
settled: a purchase published after its window was settled is not counted again.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg

from contracts.analytics import NO_CUSTOMER, PredictionMade, PredictionSettled
from contracts.sales_values import DEFAULT_PROBABILITY, Stage
from services.analytics import metrics
from services.analytics.domain.bg_nbd import BG_NBD, BgNbdFit
from services.analytics.domain.ledger import (
    ACTIVE,
    ACTIVE_DAYS,
    ACTIVITY,
    CHURN,
    CHURN_DAYS,
    CHURN_RULES,
    PERSON,
    POPULATION_WEEK,
    POPULATION_WEEKS,
    PURCHASES,
    STAGE_DEFAULT,
    WEEK_DAYS,
    WIN,
    WIN_MODEL,
    OpenDealPrediction,
    Settlement,
    active_probability,
    count_settled,
    deal_due,
    population_weeks,
    probability_settled,
    said_settled,
)
from services.analytics.domain.predictions import PURCHASE_FIELDS, Population
from services.analytics.domain.profile import day_start
from services.analytics.projections.bulk import recordset, rows_json
from services.analytics.projections.conclusions import envelope
from services.analytics.projections.tables import OUTBOX_TABLE

_MADE_COLUMNS = (
    ("prediction_id", "uuid"),
    ("kind", "text"),
    ("model", "text"),
    ("model_version", "integer"),
    ("made_by", "text"),
    ("customer_id", "uuid"),
    ("opportunity_id", "uuid"),
    ("activity_id", "text"),
    ("made_at", "timestamptz"),
    ("horizon_at", "timestamptz"),
    ("window_days", "integer"),
    ("probability", "float8"),
    ("expected", "float8"),
    ("probability_active", "float8"),
    ("stage", "text"),
    ("reasons", "text[]"),
)
_MADE = ", ".join(n for n, _ in _MADE_COLUMNS)
_EMPTY: dict[str, Any] = {**dict.fromkeys(n for n, _ in _MADE_COLUMNS), "reasons": []}
_SETTLED_COLUMNS = (
    ("prediction_id", "uuid"),
    ("settled_by", "text"),
    ("held", "boolean"),
    ("happened", "boolean"),
    ("actual", "float8"),
)
_RETURNED = f"{_MADE}, settled_at, settled_by, held, happened, actual"

WINDOWED = (PURCHASES, ACTIVE, CHURN, POPULATION_WEEK)
"""The kinds settled by their window: when it ends, or (`ACTIVE`, `CHURN`) at the first
purchase in it."""


def prediction(
    kind: str,
    model: str,
    customer_id: UUID,
    made_at: datetime,
    *,
    horizon_at: datetime | None,
    **fields: Any,
) -> dict[str, Any]:
    """A new row of the ledger (the columns of `_MADE_COLUMNS` not given are empty)."""
    row: dict[str, Any] = {**_EMPTY, **fields}
    row.update(
        prediction_id=uuid.uuid4(),
        kind=kind,
        model=model,
        customer_id=customer_id,
        made_at=made_at,
        horizon_at=horizon_at,
    )
    return row


async def _publish(
    connection: asyncpg.Connection,
    event: type[PredictionMade | PredictionSettled],
    rows: Sequence[dict[str, Any]],
    now: datetime,
) -> None:
    """The rows as events of the contract `event` (its fields taken from each row), in
    the outbox."""
    if not rows:
        return
    names = tuple(event.model_fields)
    moment = now.isoformat()
    await connection.execute(
        f"""INSERT INTO {OUTBOX_TABLE} (envelope, recorded_at)
            SELECT e, $2 FROM unnest($1::bytea[]) WITH ORDINALITY AS u(e, n) ORDER BY n""",
        [
            envelope(event.event_type, r["customer_id"], {n: r[n] for n in names}, moment, moment)
            for r in rows
        ],
        now,
    )
    for row in rows:
        if event is PredictionMade:
            metrics.PREDICTIONS_MADE.labels(row["model"], row["kind"]).inc()
        else:
            held = "true" if row["held"] else "false"
            metrics.PREDICTIONS_SETTLED.labels(row["model"], row["kind"], held).inc()


async def record(
    connection: asyncpg.Connection, rows: Sequence[dict[str, Any]], now: datetime
) -> list[dict[str, Any]]:
    """Record `rows` (`prediction`) and publish them; a person's prediction on an activity
    already recorded is left out. Returns the rows recorded."""
    if not rows:
        return []
    recorded = await connection.fetch(
        f"""INSERT INTO predictions ({_MADE}) SELECT {_MADE} FROM {recordset(1, _MADE_COLUMNS)}
            ON CONFLICT DO NOTHING RETURNING prediction_id""",
        rows_json(rows),
    )
    ids = {r["prediction_id"] for r in recorded}
    made = [r for r in rows if r["prediction_id"] in ids]
    await _publish(connection, PredictionMade, made, now)
    return made


async def settle(
    connection: asyncpg.Connection, settled: Sequence[tuple[UUID, str, Settlement]], now: datetime
) -> list[dict[str, Any]]:
    """Settle the predictions (id, what settled it, how) and publish the settlements;
    one already settled is left as it is. Returns the rows settled."""
    if not settled:
        return []
    rows = [
        {"prediction_id": prediction_id, "settled_by": by, "held": s.held,
         "happened": s.happened, "actual": s.actual}
        for prediction_id, by, s in settled
    ]  # fmt: skip
    returned = await connection.fetch(
        f"""UPDATE predictions p SET settled_at = $2, settled_by = u.settled_by, held = u.held,
                   happened = u.happened, actual = u.actual
            FROM {recordset(1, _SETTLED_COLUMNS)}
            WHERE p.prediction_id = u.prediction_id AND p.settled_at IS NULL
            RETURNING {", ".join(f"p.{n}" for n in _RETURNED.split(", "))}""",
        rows_json(rows),
        now,
    )
    done = [dict(r) for r in returned]
    await _publish(connection, PredictionSettled, done, now)
    return done


# What the models predict -------------------------------------------------------------


@dataclass
class PopulationForecast:
    """The population's purchases per week ahead, summed over the chunks of a scoring."""

    weeks: list[float]
    customers: int = 0

    @classmethod
    def empty(cls) -> PopulationForecast:
        return cls([0.0] * POPULATION_WEEKS)

    def add(self, fit: BgNbdFit, people: Population) -> None:
        for k, expected in enumerate(population_weeks(fit, people.histories)):
            self.weeks[k] += expected
        self.customers += len(people.histories)


async def record_customers(
    connection: asyncpg.Connection,
    people: Population,
    fit: BgNbdFit,
    version: int,
    now: datetime,
) -> int:
    """The BG/NBD predictions of the customers of `people` just scored as of `now` (their
    expected purchases are read back from the profiles), for those without an unsettled
    one of the kind and window. Returns how many were recorded."""
    if not people.customers:
        return 0
    stored = {
        r["customer_id"]: r
        for r in await connection.fetch(
            f"""SELECT customer_id, probability_active, {", ".join(PURCHASE_FIELDS.values())}
                FROM profiles WHERE customer_id = ANY($1::uuid[])""",
            people.customers,
        )
    }
    pending = {
        (r["customer_id"], r["kind"], r["window_days"])
        for r in await connection.fetch(
            """SELECT customer_id, kind, window_days FROM predictions
               WHERE settled_at IS NULL AND customer_id = ANY($1::uuid[])
                 AND kind = ANY($2::text[]) AND model = $3""",
            people.customers,
            [PURCHASES, ACTIVE],
            BG_NBD,
        )
    }
    rows = []
    for customer, buys in zip(
        people.customers, active_probability(fit, people.histories), strict=True
    ):
        scores = stored.get(customer)
        if scores is None:
            continue
        for days, field in PURCHASE_FIELDS.items():
            if scores[field] is not None and (customer, PURCHASES, days) not in pending:
                rows.append(
                    prediction(PURCHASES, BG_NBD, customer, now, model_version=version,
                               horizon_at=now + timedelta(days=days), window_days=days,
                               expected=scores[field])
                )  # fmt: skip
        if (customer, ACTIVE, ACTIVE_DAYS) in pending:
            continue
        rows.append(
            prediction(ACTIVE, BG_NBD, customer, now, model_version=version,
                       horizon_at=now + timedelta(days=ACTIVE_DAYS), window_days=ACTIVE_DAYS,
                       probability=min(max(buys, 0.0), 1.0),
                       probability_active=scores["probability_active"])
        )  # fmt: skip
    return len(await record(connection, rows, now))


async def record_population(
    connection: asyncpg.Connection, forecast: PopulationForecast, version: int, now: datetime
) -> int:
    """The population's purchases in each of the next weeks, unless some are unsettled."""
    if not forecast.customers:
        return 0
    pending = await connection.fetchval(
        "SELECT EXISTS (SELECT FROM predictions WHERE settled_at IS NULL AND kind = $1)",
        POPULATION_WEEK,
    )
    if pending:
        return 0
    rows = [
        prediction(POPULATION_WEEK, BG_NBD, NO_CUSTOMER, now, model_version=version,
                   horizon_at=now + timedelta(days=WEEK_DAYS * (k + 1)), window_days=WEEK_DAYS,
                   expected=expected)
        for k, expected in enumerate(forecast.weeks)
    ]  # fmt: skip
    return len(await record(connection, rows, now))


def _horizon(day: Any) -> datetime | None:
    """The end of a day (its next midnight, UTC)."""
    return day_start(day) + timedelta(days=1) if day is not None else None


async def record_deals(
    connection: asyncpg.Connection, scored: Sequence[dict[str, Any]], version: int, now: datetime
) -> int:
    """The learned probability of each deal just scored (`deals._scored`) and its stage's
    default beside it, when due (`domain.ledger.deal_due`). Returns how many were
    recorded."""
    if not scored:
        return 0
    open_rows = await connection.fetch(
        """SELECT DISTINCT ON (opportunity_id, model) opportunity_id, model, probability,
                  stage, made_at
           FROM predictions
           WHERE settled_at IS NULL AND kind = 'win' AND opportunity_id = ANY($1::uuid[])
           ORDER BY opportunity_id, model, made_at DESC""",
        [d["opportunity_id"] for d in scored],
    )
    previous = {
        (str(r["opportunity_id"]), r["model"]): OpenDealPrediction(
            r["probability"], r["stage"], r["made_at"]
        )
        for r in open_rows
    }
    rows = []
    for deal in scored:
        deal_id, stage = deal["opportunity_id"], deal["stage"]
        common = {
            "opportunity_id": deal_id,
            "stage": stage,
            "horizon_at": _horizon(deal["expected_close_date"]),
        }
        learned = previous.get((deal_id, WIN_MODEL))
        if deal_due(learned, deal["probability"], stage, now):
            rows.append(
                prediction(WIN, WIN_MODEL, deal["customer_id"], now, model_version=version,
                           probability=deal["probability"], **common)
            )  # fmt: skip
        default = previous.get((deal_id, STAGE_DEFAULT))
        if stage in set(Stage) and (default is None or default.stage != stage):
            rows.append(
                prediction(WIN, STAGE_DEFAULT, deal["customer_id"], now,
                           probability=DEFAULT_PROBABILITY[Stage(stage)] / 100, **common)
            )  # fmt: skip
    return len(await record(connection, rows, now))


# The background step: what people predicted, churn warnings, settlements ------------


@dataclass(frozen=True)
class StepReport:
    recorded: int
    settled: int


async def step(connection: asyncpg.Connection, now: datetime) -> StepReport:
    """Record the churn warnings raised and the activities' predictions not yet in the
    ledger, and settle every prediction that came due (the caller holds the writers'
    lock)."""
    recorded = await record_churn_warnings(connection, now)
    recorded += await record_activities(connection, now)
    settled = await settle_deals(connection, now)
    settled += await settle_activities(connection, now)
    settled += await settle_windows(connection, now)
    return StepReport(recorded, settled)


async def record_churn_warnings(connection: asyncpg.Connection, now: datetime) -> int:
    """Each churn warning raised, as a prediction made when it was raised."""
    raised = await connection.fetch(
        """SELECT w.customer_id, w.raised_at, w.reasons FROM churn_warnings w
           WHERE NOT EXISTS (SELECT FROM predictions p WHERE p.customer_id = w.customer_id
                             AND p.kind = 'churn' AND p.made_at = w.raised_at)"""
    )
    rows = [
        prediction(CHURN, CHURN_RULES, r["customer_id"], r["raised_at"],
                   horizon_at=r["raised_at"] + timedelta(days=CHURN_DAYS),
                   window_days=CHURN_DAYS, reasons=list(r["reasons"]))
        for r in raised
    ]  # fmt: skip
    return len(await record(connection, rows, now))


async def record_activities(connection: asyncpg.Connection, now: datetime) -> int:
    """Each activity whose owner predicted a result, as the owner's prediction."""
    planned = await connection.fetch(
        """SELECT a.opportunity_id, a.activity_id, a.customer_id, a.owner, a.scheduled_on,
                  coalesce(a.planned_at, a.completed_at) AS made_at
           FROM opportunity_activities a
           WHERE a.predicted AND coalesce(a.planned_at, a.completed_at) IS NOT NULL
             AND NOT EXISTS (SELECT FROM predictions p WHERE p.activity_id = a.activity_id
                             AND p.opportunity_id = a.opportunity_id)"""
    )
    rows = [
        prediction(ACTIVITY, PERSON, r["customer_id"], r["made_at"], made_by=r["owner"],
                   opportunity_id=r["opportunity_id"], activity_id=r["activity_id"],
                   horizon_at=_horizon(r["scheduled_on"]))
        for r in planned
    ]  # fmt: skip
    return len(await record(connection, rows, now))


async def settle_deals(connection: asyncpg.Connection, now: datetime) -> int:
    """Every unsettled win probability of a deal now won or lost."""
    due = await connection.fetch(
        """SELECT p.prediction_id, p.probability, o.stage
           FROM predictions p JOIN opportunities o USING (opportunity_id)
           WHERE p.settled_at IS NULL AND p.kind = 'win' AND o.stage IN ('won', 'lost')"""
    )
    settled = [
        (r["prediction_id"], r["stage"], probability_settled(r["probability"], r["stage"] == "won"))
        for r in due
    ]
    return len(await settle(connection, settled, now))


async def settle_activities(connection: asyncpg.Connection, now: datetime) -> int:
    """Every unsettled prediction of an activity whose owner said whether it held."""
    due = await connection.fetch(
        """SELECT p.prediction_id, a.prediction_held
           FROM predictions p JOIN opportunity_activities a USING (opportunity_id, activity_id)
           WHERE p.settled_at IS NULL AND p.kind = 'activity'
             AND a.prediction_held IS NOT NULL"""
    )
    settled = [(r["prediction_id"], "owner_said", said_settled(r["prediction_held"])) for r in due]
    return len(await settle(connection, settled, now))


_WINDOW_START = "p.horizon_at - p.window_days * interval '1 day'"
_COUNTED = f"""(SELECT count(*) FROM purchases pu WHERE pu.customer_id = p.customer_id
    AND pu.occurred_at > {_WINDOW_START} AND pu.occurred_at <= least(p.horizon_at, $1))"""
_POPULATION_COUNTED = f"""(SELECT count(*) FROM purchases pu JOIN profiles pr USING (customer_id)
    WHERE pr.first_purchase_at <= p.made_at
    AND pu.occurred_at > {_WINDOW_START} AND pu.occurred_at <= p.horizon_at)"""


def settlement_of(row: asyncpg.Record | dict[str, Any], ended: bool) -> tuple[str, Settlement]:
    """How a windowed prediction is settled, given the purchases counted in its window
    (`counted`), once its window `ended` or a purchase came in it."""
    kind, counted = row["kind"], int(row["counted"])
    if kind in (PURCHASES, POPULATION_WEEK):
        return "window_ended", count_settled(row["expected"], counted)
    by = "window_ended" if ended else "bought"
    if kind == ACTIVE:
        return by, probability_settled(row["probability"], counted > 0)
    return by, said_settled(counted == 0)  # a churn warning: they did not buy


async def settle_windows(connection: asyncpg.Connection, now: datetime) -> int:
    """Predictions whose window ended, with the purchases counted in it; and those that
    a purchase settles before (`ACTIVE`: yes, `CHURN`: missed)."""
    ended = await connection.fetch(
        f"""SELECT p.prediction_id, p.kind, p.probability, p.expected,
                   CASE WHEN p.kind = 'population_week' THEN {_POPULATION_COUNTED}
                        ELSE {_COUNTED} END AS counted
            FROM predictions p
            WHERE p.settled_at IS NULL AND p.kind = ANY($2::text[]) AND p.horizon_at <= $1""",
        now,
        list(WINDOWED),
    )
    bought = await connection.fetch(
        f"""SELECT p.prediction_id, p.kind, p.probability, p.expected, {_COUNTED} AS counted
            FROM predictions p JOIN profiles pr USING (customer_id)
            WHERE p.settled_at IS NULL AND p.kind IN ('active', 'churn') AND p.horizon_at > $1
              AND pr.last_purchase_at > {_WINDOW_START}""",
        now,
    )
    settled = [(r["prediction_id"], *settlement_of(r, True)) for r in ended]
    settled += [(r["prediction_id"], *settlement_of(r, False)) for r in bought if r["counted"] > 0]
    return len(await settle(connection, settled, now))
