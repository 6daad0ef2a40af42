"""Churn view: the open churn warnings of top-tier customers, with their reasons and the
values that raised them."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from contracts.money import Money
from contracts.personal import Personal
from services.analytics.dependencies import Pool
from services.analytics.queries import churn as queries
from services.analytics.queries.records import BY_CUSTOMER
from services.analytics.views.answers import (
    Cursor,
    Format,
    Limit,
    Moment,
    amounts_as_text,
    csv_of,
)
from services.runtime.http.authorization import requires

router = APIRouter(tags=["analytics"])

Reason = Literal["overdue_purchase", "detractor", "complaint_past_target", "probably_inactive"]


class ChurnWarning(BaseModel):
    customer_id: UUID
    name: Personal | None
    owner: str | None
    value_tier: str
    reasons: list[str]
    raised_at: Moment
    values: dict[str, Any] = Field(description="The values that raised the warning.")
    total_spend: Money | None


class ChurnWarningPage(BaseModel):
    items: list[ChurnWarning]
    next_cursor: str | None


@router.get(
    "/churn-warnings",
    summary="Open churn warnings of top-tier customers",
    dependencies=[requires("analytics:read")],
    response_model=ChurnWarningPage,
)
async def churn_warnings(
    pool: Pool,
    reason: Annotated[Reason | None, Query()] = None,
    limit: Limit = 100,
    cursor: Cursor = None,
    format: Format = "json",
) -> ChurnWarningPage | StreamingResponse:
    rows = await queries.churn_warnings(pool, reason, BY_CUSTOMER.after(cursor), limit + 1)
    items = [ChurnWarning.model_validate(amounts_as_text(row, "values")) for row in rows[:limit]]
    if format == "csv":
        return csv_of(items, ChurnWarning, "churn-warnings.csv")
    return ChurnWarningPage(items=items, next_cursor=BY_CUSTOMER.next_cursor(rows, limit))
