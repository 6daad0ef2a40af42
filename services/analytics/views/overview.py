"""Overviews: the 80/20 view, customers per lifecycle stage, customers and value by a
dimension, and the current RFM quintile boundaries."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated, get_args

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from contracts.money import Money
from services.analytics.dependencies import Pool, ReportingCurrency
from services.analytics.domain import lifecycle, rfm
from services.analytics.queries import overview as queries
from services.analytics.queries.overview import DistributionDimension
from services.analytics.views.answers import Format, Moment, csv_of
from services.runtime.http.security import requires

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
