"""Predictions by list: customers by lifetime value (the lifetime value models' scores of
each customer with a purchase, highest value first), and open deals by the win
probability learned from the closed ones (beside their stage's default); filtered, JSON
or CSV, cursor paging."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, ClassVar
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from contracts.money import Money, Priced
from contracts.personal import Personal
from services.analytics.dependencies import Pool, ReportingCurrency, analytics_settings
from services.analytics.domain.profile import average_repeat_spend
from services.analytics.queries import predictions as queries
from services.analytics.queries.predictions import BY_VALUE, BY_WIN, VALUE_FILTERS, WIN_FILTERS
from services.analytics.settings import AnalyticsSettings
from services.analytics.views.answers import (
    Cursor,
    Format,
    Limit,
    Moment,
    csv_of,
    equality_filters,
)
from services.analytics.views.profiles import OpenOpportunity
from services.runtime.errors import RuleViolation
from services.runtime.http.authorization import requires

router = APIRouter(tags=["analytics"])


class LifetimeValue(Priced):
    """One customer's scores; amounts in the reporting currency."""

    other_currencies: ClassVar[dict[str, str]] = {
        name: "reporting_currency"
        for name in ("total_spend", "average_repeat_spend", "expected_spend", "lifetime_value")
    }

    customer_id: UUID
    name: Personal | None
    owner: str | None
    region: str | None
    value_tier: str
    lifecycle_stage: str
    purchase_count: int
    repeat_purchases: int
    total_spend: Money
    average_repeat_spend: Money | None
    last_purchase_at: Moment | None
    expected_purchases_30d: float | None
    expected_purchases_90d: float | None
    expected_purchases_365d: float | None
    probability_active: float | None
    expected_spend: Money | None
    lifetime_value: Money
    scored_at: Moment | None
    bg_nbd_version: int | None
    gamma_gamma_version: int | None
    reporting_currency: str


class LifetimeValuePage(BaseModel):
    items: list[LifetimeValue]
    next_cursor: str | None
    horizon_days: float = Field(description="The horizon lifetime value counts over.")
    annual_discount_rate: float = Field(description="The annual rate it discounts at.")


value_filters = equality_filters(VALUE_FILTERS, "customers")
"""The equality filters of the list."""

Probability = Annotated[float | None, Query(ge=0, le=1)]


def lifetime_value_item(row: dict[str, Any], currency: str) -> LifetimeValue:
    fields = dict(row)
    first_spend = fields.pop("first_spend")
    count = fields["purchase_count"]
    return LifetimeValue(
        **fields,
        repeat_purchases=count - 1,
        average_repeat_spend=average_repeat_spend(count, fields["total_spend"], first_spend),
        reporting_currency=currency,
    )


@router.get(
    "/predictions/lifetime-value",
    summary="Customers by lifetime value, with their probability of being active",
    dependencies=[requires("analytics:read")],
    response_model=LifetimeValuePage,
)
async def lifetime_values(
    request: Request,
    pool: Pool,
    currency: ReportingCurrency,
    settings: Annotated[AnalyticsSettings, Depends(analytics_settings)],
    filters: Annotated[dict[str, str], Depends(value_filters)],
    segment: Annotated[str | None, Query(max_length=64)] = None,
    min_probability_active: Probability = None,
    max_probability_active: Probability = None,
    min_lifetime_value: Annotated[Decimal | None, Query(ge=0, lt=10**17)] = None,
    limit: Limit = 100,
    cursor: Cursor = None,
    format: Format = "json",
) -> LifetimeValuePage | StreamingResponse:
    known = {
        *VALUE_FILTERS,
        "segment",
        "min_probability_active",
        "max_probability_active",
        "min_lifetime_value",
        "limit",
        "cursor",
        "format",
    }
    unknown = set(request.query_params) - known
    if unknown:
        raise RuleViolation(f"unknown parameter(s) {sorted(unknown)}; known: {sorted(known)}")
    rows = await queries.lifetime_values(
        pool,
        filters,
        segment=segment,
        min_probability_active=min_probability_active,
        max_probability_active=max_probability_active,
        min_lifetime_value=min_lifetime_value,
        after=BY_VALUE.after(cursor),
        limit=limit + 1,
    )
    items = [lifetime_value_item(r, currency) for r in rows[:limit]]
    if format == "csv":
        return csv_of(items, LifetimeValue, "lifetime-value.csv")
    return LifetimeValuePage(
        items=items,
        next_cursor=BY_VALUE.next_cursor(rows, limit),
        horizon_days=settings.analytics_value_horizon_days,
        annual_discount_rate=settings.analytics_annual_discount_rate,
    )


class WinProbabilityItem(OpenOpportunity):
    """An open deal with its stage's default and its learned win probability."""

    customer_id: UUID
    customer_name: Personal | None
    region: str | None
    product: str | None = Field(description="The first product of the deal.")
    opened_at: Moment | None
    win_scored_at: Moment | None


class WinProbabilityPage(BaseModel):
    items: list[WinProbabilityItem]
    next_cursor: str | None


win_filters = equality_filters(WIN_FILTERS, "open deals")
"""The equality filters of the list of open deals."""


@router.get(
    "/predictions/win-probability",
    summary="Open deals with the win probability learned from closed deals",
    dependencies=[requires("analytics:read")],
    response_model=WinProbabilityPage,
)
async def win_probabilities(
    request: Request,
    pool: Pool,
    filters: Annotated[dict[str, str], Depends(win_filters)],
    limit: Limit = 100,
    cursor: Cursor = None,
    format: Format = "json",
) -> WinProbabilityPage | StreamingResponse:
    unknown = set(request.query_params) - {*WIN_FILTERS, "limit", "cursor", "format"}
    if unknown:
        raise RuleViolation(
            f"unknown parameter(s) {sorted(unknown)}; filters: {', '.join(WIN_FILTERS)}"
        )
    rows = await queries.win_probabilities(
        pool, filters, after=BY_WIN.after(cursor), limit=limit + 1
    )
    items = [WinProbabilityItem.model_validate(r) for r in rows[:limit]]
    if format == "csv":
        return csv_of(items, WinProbabilityItem, "win-probability.csv")
    return WinProbabilityPage(items=items, next_cursor=BY_WIN.next_cursor(rows, limit))
