"""Overviews: the 80/20 view, customers per lifecycle stage, customers and value by a
dimension, the current RFM quintile boundaries, and purchases and revenue by period."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Annotated, ClassVar, get_args

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from contracts.money import Money, Priced
from contracts.sales_values import Currency
from services.analytics.dependencies import Pool, ReportingCurrency
from services.analytics.domain import lifecycle, rfm
from services.analytics.queries import overview as queries
from services.analytics.queries.overview import DistributionDimension, Period
from services.analytics.views.answers import Format, Moment, checked_moment, csv_of
from services.runtime.errors import RuleViolation
from services.runtime.http.authorization import requires
from services.runtime.http.parameters import Moment as MomentParameter

router = APIRouter(tags=["analytics"])


class Pareto(BaseModel):
    buyers: int
    total_value: Money
    reporting_currency: str
    top_fifth_customers: int
    top_fifth_value_share: float
    customers_for_80_percent_of_value: int
    share_of_customers_for_80_percent: float


class LifecycleRow(BaseModel):
    lifecycle_stage: str
    customers: int
    value: Money


class LifecycleList(BaseModel):
    items: list[LifecycleRow]


class DistributionRow(BaseModel):
    """One value of the dimension named by `by`, in the field of that name."""

    region: str | None = None
    industry: str | None = None
    kind: str | None = None
    owner: str | None = None
    value_tier: str | None = None
    customers: int
    buyers: int
    interested_prospects: int = Field(description="Contacted, never bought.")
    value: Money
    average_spend_per_buyer: Money | None


_MEASURES = tuple(
    n for n in DistributionRow.model_fields if n not in get_args(DistributionDimension)
)
"""The columns of a CSV after the dimension's."""


class DistributionList(BaseModel):
    items: list[DistributionRow]


class RfmBoundaries(BaseModel):
    recency_last_purchase_date: list[date]
    frequency_purchases: list[int] | None
    monetary_total_spend: list[Money]


class TrendRow(Priced):
    """One period's purchases in one currency; the revenue in that currency and in the
    reporting currency."""

    other_currencies: ClassVar[dict[str, str]] = {"reporting_revenue": "reporting_currency"}

    period: str = Field(description="YYYY-MM-DD (day), YYYY-Www (ISO week), YYYY-MM (month).")
    starts_on: date = Field(description="The period's first day (UTC; weeks start on Monday).")
    currency: str
    purchases: int = Field(description="Purchases and won contracts.")
    revenue: Money = Field(description="In `currency`.")
    reporting_revenue: Money = Field(description="Converted to the reporting currency.")
    reporting_currency: str


class TrendList(BaseModel):
    items: list[TrendRow]


MAX_PERIODS = 3700
"""The most periods a trend answers (ten years of days)."""


def period_label(starts_on: date, period: Period) -> str:
    if period == "day":
        return starts_on.isoformat()
    if period == "week":
        year, week, _ = starts_on.isocalendar()
        return f"{year}-W{week:02d}"
    return f"{starts_on:%Y-%m}"


def next_period(starts_on: date, period: Period) -> date:
    if period == "day":
        return starts_on + timedelta(days=1)
    if period == "week":
        return starts_on + timedelta(days=7)
    return (starts_on.replace(day=28) + timedelta(days=4)).replace(day=1)


def period_start(moment: datetime, period: Period) -> date:
    day = moment.astimezone(UTC).date()
    if period == "week":
        return day - timedelta(days=day.weekday())
    return day.replace(day=1) if period == "month" else day


class RfmView(BaseModel):
    buyers: int
    scored_at: Moment | None
    boundaries: RfmBoundaries
    rule: str
    named_segments: list[str]


@router.get(
    "/overview/pareto",
    summary="The 80/20 view: the top fifth and their value",
    dependencies=[requires("analytics:read")],
)
async def pareto(pool: Pool, currency: ReportingCurrency) -> Pareto:
    row = await queries.pareto(pool)
    buyers = row["buyers"] or 0
    total = row["total"] or Decimal(0)
    return Pareto(
        buyers=buyers,
        total_value=total,
        reporting_currency=currency,
        top_fifth_customers=row["top_customers"] or 0,
        top_fifth_value_share=round(float(row["top_value"] / total), 4) if total else 0.0,
        customers_for_80_percent_of_value=row["customers_for_80_percent"] or 0,
        share_of_customers_for_80_percent=(
            round(row["customers_for_80_percent"] / buyers, 4) if buyers else 0.0
        ),
    )


@router.get(
    "/overview/lifecycle",
    summary="Customers per lifecycle stage",
    dependencies=[requires("analytics:read")],
    response_model=LifecycleList,
)
async def lifecycle_overview(
    pool: Pool, format: Format = "json"
) -> LifecycleList | StreamingResponse:
    found = await queries.lifecycle_stages(pool)
    items = [
        LifecycleRow(
            lifecycle_stage=stage,
            customers=found[stage]["customers"] if stage in found else 0,
            value=found[stage]["value"] if stage in found else Decimal(0),
        )
        for stage in lifecycle.STAGES
    ]
    if format == "csv":
        return csv_of(items, LifecycleRow, "lifecycle.csv")
    return LifecycleList(items=items)


@router.get(
    "/overview/distribution",
    summary="Customers, buyers and value by a dimension",
    dependencies=[requires("analytics:read")],
    response_model=DistributionList,
    response_model_exclude_unset=True,
)
async def distribution(
    pool: Pool,
    by: Annotated[DistributionDimension, Query()] = "region",
    format: Format = "json",
) -> DistributionList | StreamingResponse:
    rows = await queries.distribution(pool, by)
    items = [DistributionRow.model_validate(r) for r in rows]
    if format == "csv":
        columns = (by, *_MEASURES)
        return csv_of(items, DistributionRow, f"distribution-by-{by}.csv", columns)
    return DistributionList(items=items)


@router.get(
    "/overview/trend",
    summary="Purchases and revenue per day, week or month, per currency",
    dependencies=[requires("analytics:read")],
    response_model=TrendList,
)
async def trend(
    pool: Pool,
    reporting: ReportingCurrency,
    period: Annotated[Period, Query()] = "month",
    since: Annotated[MomentParameter | None, Query(description="ISO 8601 with offset")] = None,
    until: Annotated[
        MomentParameter | None, Query(description="ISO 8601 with offset; before")
    ] = None,
    currency: Annotated[Currency | None, Query(description="Only this currency")] = None,
    format: Format = "json",
) -> TrendList | StreamingResponse:
    start = checked_moment(since, "since") or datetime(1970, 1, 1, tzinfo=UTC)
    end = checked_moment(until, "until") or datetime(9999, 1, 1, tzinfo=UTC)
    if start >= end:
        raise RuleViolation("since must be before until")
    rows = await queries.trend(pool, period, start, end, currency.value if currency else None)
    found = {(r["starts_on"], r["currency"]): r for r in rows}
    currencies = sorted({r["currency"] for r in rows})
    items: list[TrendRow] = []
    if rows:
        first = period_start(since, period) if since else rows[0]["starts_on"]
        last = period_start(until, period) if until else rows[-1]["starts_on"]
        day, periods = first, []
        while day <= last:
            periods.append(day)
            if len(periods) > MAX_PERIODS:
                raise RuleViolation(
                    f"more than {MAX_PERIODS} periods; choose a longer period or a shorter "
                    "range (since, until)"
                )
            day = next_period(day, period)
        for day in periods:
            for code in currencies:
                row = found.get((day, code), {})
                items.append(
                    TrendRow(
                        period=period_label(day, period),
                        starts_on=day,
                        currency=code,
                        purchases=row.get("purchases", 0),
                        revenue=row.get("revenue", Decimal(0)),
                        reporting_revenue=row.get("reporting_revenue", Decimal(0)),
                        reporting_currency=reporting,
                    )
                )
    if format == "csv":
        return csv_of(items, TrendRow, f"trend-by-{period}.csv")
    return TrendList(items=items)


@router.get(
    "/rfm",
    summary="The current RFM quintile boundaries and scoring rules",
    dependencies=[requires("analytics:read")],
)
async def rfm_view(pool: Pool) -> RfmView:
    row = await queries.rfm_state(pool)
    return RfmView(
        buyers=row["buyers"],
        scored_at=row["scored_at"],
        boundaries=RfmBoundaries(
            recency_last_purchase_date=row["recency"] or [],
            frequency_purchases=row["frequency"],
            monetary_total_spend=row["monetary"] or [],
        ),
        rule="score = 1 + number of boundaries strictly below the value; ties take the "
        "lower score; boundaries are percentile_disc(0.2, 0.4, 0.6, 0.8) over all buyers",
        named_segments=list(rfm.NAMED_SEGMENTS),
    )
