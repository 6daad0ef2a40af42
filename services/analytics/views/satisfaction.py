"""Satisfaction views: CSAT, NPS, complaints and resolution times by segment, channel,
owner or month; the value x satisfaction matrix and the customers of each quadrant."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, get_args
from uuid import UUID

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from contracts.money import Money
from contracts.personal import Personal
from services.analytics.dependencies import Pool, ReportingCurrency
from services.analytics.domain import matrix
from services.analytics.queries import satisfaction as queries
from services.analytics.queries.profiles import quadrant_profiles
from services.analytics.queries.records import BY_CUSTOMER
from services.analytics.queries.satisfaction import SatisfactionGroup
from services.analytics.views.answers import Cursor, Format, Limit, checked_moment, csv_of
from services.analytics.views.profiles import ProfilePage, ProfileView, profile_view
from services.runtime.errors import NotFound
from services.runtime.http.authorization import requires
from services.runtime.http.parameters import Moment

router = APIRouter(tags=["analytics"])


class SatisfactionRow(BaseModel):
    """One group: the field named by `by` holds the group; the figures of surveys appear
    when the group has answers, those of tickets when it has tickets, `customers` and
    `complaint_rate` when the group is a segment or an owner with customers."""

    segment: str | None = None
    channel: str | None = None
    owner: str | None = None
    period: str | None = Field(default=None, description="The month, YYYY-MM.")
    csat_average: float | None = None
    csat_answers: int | None = None
    nps_answers: int | None = None
    nps: float | None = Field(default=None, description="Percent promoters minus detractors.")
    complaints: int | None = None
    customers_with_tickets: int | None = None
    resolution_hours_avg: float | None = None
    resolution_hours_p90: float | None = None
    resolved_late: int | None = None
    customers: int | None = None
    complaint_rate: float | None = Field(default=None, description="Complaints per customer.")


class SatisfactionList(BaseModel):
    items: list[SatisfactionRow]


_ROUNDED = ("csat_average", "nps", "resolution_hours_avg", "resolution_hours_p90")
_FIGURES = tuple(n for n in SatisfactionRow.model_fields if n not in get_args(SatisfactionGroup))
"""The columns of a CSV after the group's."""


class QuadrantCustomer(BaseModel):
    customer_id: UUID
    name: Personal | None
    total_spend: Money
    csat_average: float | None
    nps_latest: int | None


class Quadrant(BaseModel):
    quadrant: str
    value: str = Field(description="The value level: high (top or high tier) or low.")
    satisfaction: str = Field(description="The satisfaction level: high or low.")
    strategy: str
    customers: int
    value_share: float
    top_customers: list[QuadrantCustomer] = Field(description="By total spend, `sample` of them.")
    customers_url: str


class ValueSatisfaction(BaseModel):
    quadrants: list[Quadrant]
    buyers_without_satisfaction_data: int


@router.get(
    "/satisfaction",
    summary="CSAT, NPS, complaint rate and resolution times",
    dependencies=[requires("analytics:read")],
    response_model=SatisfactionList,
    response_model_exclude_unset=True,
)
async def satisfaction(
    pool: Pool,
    by: Annotated[SatisfactionGroup, Query()] = "segment",
    family: Annotated[str | None, Query(description="with by=segment: rfm, lifecycle...")] = None,
    since: Moment | None = None,
    until: Moment | None = None,
    format: Format = "json",
) -> SatisfactionList | StreamingResponse:
    start = checked_moment(since, "since") or datetime(1970, 1, 1, tzinfo=UTC)
    end = checked_moment(until, "until") or datetime(9999, 1, 1, tzinfo=UTC)
    figures = await queries.satisfaction(pool, by, family, start, end)
    groups: dict[Any, dict[str, Any]] = {}
    for row in [*figures.answers, *figures.tickets]:
        groups.setdefault(row["grp"], {}).update(row)
    items = []
    for key in sorted(groups, key=lambda k: (k is None, str(k))):
        item = {by: key, **{k: v for k, v in groups[key].items() if k != "grp"}}
        for name in _ROUNDED:
            if item.get(name) is not None:
                item[name] = round(float(item[name]), 2)
        if size := figures.customers.get(key):
            item["customers"] = size
            item["complaint_rate"] = round((item.get("complaints") or 0) / size, 4)
        items.append(SatisfactionRow.model_validate(item))
    if format == "csv":
        return csv_of(items, SatisfactionRow, f"satisfaction-by-{by}.csv", (by, *_FIGURES))
    return SatisfactionList(items=items)


@router.get(
    "/value-satisfaction",
    summary="The value x satisfaction matrix",
    dependencies=[requires("analytics:read")],
)
async def value_satisfaction(
    pool: Pool, sample: Annotated[int, Query(ge=0, le=100)] = 10
) -> ValueSatisfaction:
    figures = await queries.value_satisfaction(pool, sample)
    total = figures.total_value
    quadrants = []
    for name, (value, level, strategy) in matrix.QUADRANTS.items():
        row = figures.quadrants.get(name)
        quadrants.append(
            Quadrant(
                quadrant=name,
                value=value,
                satisfaction=level,
                strategy=strategy,
                customers=row["customers"] if row else 0,
                value_share=round(float(row["value"] / total), 4) if row and total else 0.0,
                top_customers=[
                    QuadrantCustomer.model_validate(m)
                    for m in figures.top_customers
                    if m["quadrant"] == name
                ],
                customers_url=f"/value-satisfaction/{name}/customers",
            )
        )
    return ValueSatisfaction(
        quadrants=quadrants,
        buyers_without_satisfaction_data=figures.buyers_without_satisfaction_data,
    )


@router.get(
    "/value-satisfaction/{quadrant}/customers",
    summary="Customers of a quadrant",
    dependencies=[requires("analytics:read")],
    response_model=ProfilePage,
)
async def quadrant_customers(
    quadrant: str, pool: Pool, currency: ReportingCurrency, limit: Limit = 100,
    cursor: Cursor = None, format: Format = "json",
) -> ProfilePage | StreamingResponse:  # fmt: skip
    if quadrant not in matrix.QUADRANTS:
        raise NotFound(f"no quadrant {quadrant!r}; one of {', '.join(matrix.QUADRANTS)}")
    rows = await quadrant_profiles(pool, quadrant, BY_CUSTOMER.after(cursor), limit + 1)
    items = [profile_view(r, currency) for r in rows[:limit]]
    if format == "csv":
        return csv_of(items, ProfileView, f"{quadrant}.csv")
    return ProfilePage(items=items, next_cursor=BY_CUSTOMER.next_cursor(rows, limit))
