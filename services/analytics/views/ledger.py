"""The ledger of predictions over HTTP: every prediction with its horizon and how it was
settled (for one customer or deal: which held and which did not), accuracy per model,
version, kind and period, calibration tables, and the population's expected against
actual purchases per week. JSON, or CSV with `format=csv`; cursor paging."""

from __future__ import annotations

from datetime import UTC
from typing import Annotated, Any, Literal, get_args
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from contracts.analytics import PredictionKind
from services.analytics.dependencies import Pool
from services.analytics.domain.accuracy import CALIBRATION_BUCKETS, CalibrationBucket, table_error
from services.analytics.queries import ledger as queries
from services.analytics.queries.ledger import BY_MADE, BY_PERIOD, BY_WEEK, STATUS, Filters
from services.analytics.views.answers import Cursor, Format, Limit, Moment, checked_moment, csv_of
from services.runtime.errors import RuleViolation
from services.runtime.http.authorization import requires
from services.runtime.http.parameters import Moment as MomentParameter

router = APIRouter(tags=["analytics"])

Status = Literal["open", "settled", "held", "missed"]
Period = Literal["week", "month"]
assert set(STATUS) == set(get_args(Status))

ModelFilter = Annotated[
    str | None,
    Query(
        max_length=64,
        description="bg_nbd, win_probability, stage_default, churn_rules or person.",
    ),
]
Version = Annotated[int | None, Query(ge=1, le=2**31 - 1, description="The model's version.")]


def ledger_filters(
    customer_id: Annotated[UUID | None, Query(description="One customer's predictions.")] = None,
    opportunity_id: Annotated[UUID | None, Query(description="One deal's predictions.")] = None,
    model: ModelFilter = None,
    model_version: Version = None,
    kind: Annotated[PredictionKind | None, Query(description="What is predicted.")] = None,
    made_by: Annotated[
        str | None, Query(max_length=200, description="The person who predicted (activities).")
    ] = None,
    status: Annotated[
        Status | None, Query(description="open, settled, held or missed (settled, not held).")
    ] = None,
    since: Annotated[
        MomentParameter | None, Query(description="Made at or after (ISO 8601 with offset).")
    ] = None,
    until: Annotated[
        MomentParameter | None, Query(description="Made before (ISO 8601 with offset).")
    ] = None,
) -> Filters:
    start, end = checked_moment(since, "since"), checked_moment(until, "until")
    if start is not None and end is not None and start >= end:
        raise RuleViolation("since must be before until")
    return Filters(
        customer_id,
        opportunity_id,
        model,
        model_version,
        kind.value if kind else None,
        made_by,
        status,
        start,
        end,
    )


LedgerFilters = Annotated[Filters, Depends(ledger_filters)]
_FILTERS = {
    "customer_id", "opportunity_id", "model", "model_version", "kind", "made_by", "status",
    "since", "until",
}  # fmt: skip


def only_known(request: Request, *names: str) -> None:
    """Refuse a query parameter the route does not take: a misspelt filter would
    otherwise answer everything, unfiltered."""
    unknown = set(request.query_params) - set(names)
    if unknown:
        raise RuleViolation(
            f"unknown parameter(s) {sorted(unknown)}; known: {', '.join(sorted(names))}"
        )


class Prediction(BaseModel):
    """One prediction of the ledger."""

    prediction_id: UUID
    kind: str = Field(description="purchases, active, population_week, win, churn, activity.")
    model: str = Field(description="What made it: bg_nbd, win_probability, stage_default, "
                       "churn_rules, or person (made_by).")  # fmt: skip
    model_version: int | None
    made_by: str | None = Field(description="The person, for a prediction on an activity.")
    customer_id: UUID = Field(description="The customer (the nil UUID for the whole population).")
    opportunity_id: UUID | None
    activity_id: str | None
    made_at: Moment
    horizon_at: Moment | None = Field(
        description="The end of its window (a deal: its expected close date; an activity: "
        "its scheduled day)."
    )
    window_days: int | None
    probability: float | None = Field(description="The probability said (yes/no kinds).")
    expected: float | None = Field(description="The count expected (purchases).")
    probability_active: float | None = Field(
        description="The probability of being active, beside `active` predictions."
    )
    stage: str | None = Field(description="The deal's stage when predicted.")
    reasons: list[str] = Field(description="A churn warning's reasons.")
    status: Status = Field(description="open, held or missed.")
    settled_at: Moment | None
    settled_by: str | None = Field(description="window_ended, bought, won, lost or owner_said.")
    happened: bool | None = Field(description="Whether the predicted thing happened.")
    actual: float | None = Field(description="The count that happened (purchases).")


class LedgerSummary(BaseModel):
    """Of every prediction the filters select (not only this page)."""

    predictions: int
    open: int
    held: int
    missed: int


class LedgerPage(BaseModel):
    items: list[Prediction]
    next_cursor: str | None
    summary: LedgerSummary


def prediction_of(row: dict[str, Any]) -> Prediction:
    held = row.pop("held")
    status = "open" if row["settled_at"] is None else "held" if held else "missed"
    return Prediction(**row, status=status)


@router.get(
    "/predictions/ledger",
    summary="Every prediction with its horizon, and whether it held",
    dependencies=[requires("analytics:read")],
    response_model=LedgerPage,
)
async def ledger(
    request: Request,
    pool: Pool,
    filters: LedgerFilters,
    limit: Limit = 100,
    cursor: Cursor = None,
    format: Format = "json",
) -> LedgerPage | StreamingResponse:
    """Newest first. For one customer (`customer_id`) or deal (`opportunity_id`): which
    predictions held and which did not (`status`, and the counts in `summary`)."""
    only_known(request, *_FILTERS, "limit", "cursor", "format")
    rows = await queries.predictions(pool, filters, BY_MADE.after(cursor), limit + 1)
    items = [prediction_of(r) for r in rows[:limit]]
    if format == "csv":
        return csv_of(items, Prediction, "predictions.csv")
    return LedgerPage(
        items=items,
        next_cursor=BY_MADE.next_cursor(rows, limit),
        summary=LedgerSummary(**await queries.summary(pool, filters)),
    )


class Accuracy(BaseModel):
    """How one model's predictions of one kind, made in one period, held."""

    period: Moment = Field(description="The start of the week (Monday) or month, UTC.")
    model: str
    model_version: int | None
    kind: str
    made: int
    settled: int
    held: int
    hit_rate: float | None = Field(description="Share of the settled ones that held.")
    brier_score: float | None = Field(
        description="Mean squared gap between the probability and what happened (0 is "
        "perfect; 0.25 is saying 50 % every time)."
    )
    calibration_error: float | None = Field(
        description="Gap between the probability said and the share that happened, by "
        "bucket of 10 points, weighted by the bucket's size."
    )
    expected_purchases: float | None = Field(
        description="Counts: the purchases expected by the settled predictions..."
    )
    actual_purchases: float | None = Field(description="...and those that happened.")
    mean_absolute_error: float | None = Field(
        description="Counts: the mean gap between expected and actual purchases."
    )


class AccuracyPage(BaseModel):
    items: list[Accuracy]
    next_cursor: str | None


def _table(
    buckets: list[int], counts: list[int], said: list[float], happened: list[float]
) -> list[CalibrationBucket]:
    return [
        CalibrationBucket(b / CALIBRATION_BUCKETS, (b + 1) / CALIBRATION_BUCKETS, n, s, h)
        for b, n, s, h in zip(buckets, counts, said, happened, strict=True)
    ]


def accuracy_of(row: dict[str, Any]) -> Accuracy:
    settled = int(row["settled"])
    table = _table(
        row["buckets"] or [],
        row["bucket_counts"] or [],
        row["bucket_said"] or [],
        row["bucket_happened"] or [],
    )
    judged = sum(b.count for b in table)
    return Accuracy(
        period=row["period"],
        model=row["model"],
        model_version=row["version"] or None,
        kind=row["kind"],
        made=row["made"],
        settled=settled,
        held=row["held"],
        hit_rate=row["held"] / settled if settled else None,
        brier_score=float(row["squares"]) / judged if judged else None,
        calibration_error=table_error(table),
        expected_purchases=row["expected"],
        actual_purchases=row["actual"],
        mean_absolute_error=(
            float(row["absolute_error"]) / settled
            if row["absolute_error"] is not None and settled
            else None
        ),
    )


@router.get(
    "/predictions/accuracy",
    summary="How the predictions held, per model, version, kind and period",
    dependencies=[requires("analytics:read")],
    response_model=AccuracyPage,
)
async def accuracy(
    request: Request,
    pool: Pool,
    filters: LedgerFilters,
    period: Annotated[Period, Query(description="week (from Monday) or month, UTC")] = "month",
    limit: Limit = 100,
    cursor: Cursor = None,
    format: Format = "json",
) -> AccuracyPage | StreamingResponse:
    """By the period the predictions were made in, newest first."""
    only_known(request, *_FILTERS, "period", "limit", "cursor", "format")
    rows = await queries.accuracy(pool, filters, period, BY_PERIOD.after(cursor), limit + 1)
    items = [accuracy_of(r) for r in rows[:limit]]
    if format == "csv":
        return csv_of(items, Accuracy, "prediction-accuracy.csv")
    return AccuracyPage(items=items, next_cursor=BY_PERIOD.next_cursor(rows, limit))


class Bucket(BaseModel):
    """Settled predictions whose probability was in [lower, upper) (the last includes 1)."""

    model: str
    kind: str
    lower: float
    upper: float
    count: int
    mean_probability: float | None
    observed_rate: float | None = Field(description="The share that happened.")


class Calibration(BaseModel):
    model: str
    kind: str
    settled: int
    brier_score: float
    calibration_error: float
    hit_rate: float
    buckets: list[Bucket] = Field(description="Every bucket, empty ones included.")


class CalibrationList(BaseModel):
    items: list[Calibration] = Field(description="One table per model and kind.")


def calibrations(rows: list[dict[str, Any]]) -> list[Calibration]:
    grouped: dict[tuple[str, str], dict[int, dict[str, Any]]] = {}
    for row in rows:
        grouped.setdefault((row["model"], row["kind"]), {})[row["bucket"]] = row
    found = []
    for (model, kind), by_bucket in grouped.items():
        buckets = [
            Bucket(
                model=model,
                kind=kind,
                lower=k / CALIBRATION_BUCKETS,
                upper=(k + 1) / CALIBRATION_BUCKETS,
                count=by_bucket[k]["count"] if k in by_bucket else 0,
                mean_probability=by_bucket[k]["said"] if k in by_bucket else None,
                observed_rate=by_bucket[k]["happened"] if k in by_bucket else None,
            )
            for k in range(CALIBRATION_BUCKETS)
        ]
        table = [
            CalibrationBucket(b.lower, b.upper, b.count, b.mean_probability, b.observed_rate)
            for b in buckets
        ]
        settled = sum(r["count"] for r in by_bucket.values())
        error = table_error(table)
        assert error is not None  # a table of settled predictions
        found.append(
            Calibration(
                model=model,
                kind=kind,
                settled=settled,
                brier_score=float(sum(r["squares"] for r in by_bucket.values())) / settled,
                calibration_error=error,
                hit_rate=sum(r["held"] for r in by_bucket.values()) / settled,
                buckets=buckets,
            )
        )
    return found


@router.get(
    "/predictions/calibration",
    summary="Calibration by probability bucket, Brier score and hit rate of each model",
    dependencies=[requires("analytics:read")],
    response_model=CalibrationList,
)
async def calibration(
    request: Request, pool: Pool, filters: LedgerFilters, format: Format = "json"
) -> CalibrationList | StreamingResponse:
    """Over the settled predictions with a probability the filters select (`since` and
    `until` by when they were made); CSV: the buckets, one line each."""
    only_known(request, *_FILTERS, "format")
    items = calibrations(await queries.calibration(pool, filters))
    if format == "csv":
        return csv_of([b for c in items for b in c.buckets], Bucket, "calibration.csv")
    return CalibrationList(items=items)


class Week(BaseModel):
    """The purchases the customers of a fit were expected to make in one week, and those
    they made (once the week ended)."""

    prediction_id: UUID
    model: str
    model_version: int | None
    made_at: Moment
    week_start: Moment
    week_end: Moment
    expected_purchases: float
    actual_purchases: float | None
    settled_at: Moment | None
    held: bool | None = Field(description="Within one purchase of the expectation.")


class WeekPage(BaseModel):
    items: list[Week]
    next_cursor: str | None


@router.get(
    "/predictions/purchases-by-week",
    summary="The population's expected against actual purchases, week by week",
    dependencies=[requires("analytics:read")],
    response_model=WeekPage,
)
async def purchases_by_week(
    request: Request,
    pool: Pool,
    filters: LedgerFilters,
    limit: Limit = 100,
    cursor: Cursor = None,
    format: Format = "json",
) -> WeekPage | StreamingResponse:
    """The latest weeks first."""
    only_known(request, *_FILTERS, "limit", "cursor", "format")
    rows = await queries.weeks(pool, filters, BY_WEEK.after(cursor), limit + 1)
    items = [
        Week(
            prediction_id=r["prediction_id"],
            model=r["model"],
            model_version=r["model_version"],
            made_at=r["made_at"],
            week_start=r["week_start"].astimezone(UTC),
            week_end=r["horizon_at"],
            expected_purchases=r["expected"],
            actual_purchases=r["actual"],
            settled_at=r["settled_at"],
            held=r["held"],
        )
        for r in rows[:limit]
    ]
    if format == "csv":
        return csv_of(items, Week, "purchases-by-week.csv")
    return WeekPage(items=items, next_cursor=BY_WEEK.next_cursor(rows, limit))
