"""The response models of the sales views: aggregated rows, opportunities with their
activities, quotes and contracts, purchases with their totals."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any
from uuid import UUID

from pydantic import BaseModel, Field

from contracts.sales import ActivityKind, Stage


class PipelineRow(BaseModel):
    stage: Stage
    currency: str
    count: int
    amount: Decimal
    weighted_amount: Decimal = Field(description="Sum of amount times win probability.")


class AnalysisRow(BaseModel):
    key: str = Field(description="The month (YYYY-MM), quarter (YYYY-Qn), product, ...")
    currency: str
    count: int
    amount: Decimal
    weighted_amount: Decimal
    open_count: int
    won_count: int
    won_amount: Decimal
    lost_count: int
    win_rate: float | None = Field(description="won / (won + lost); null before any is decided")


class OwnerRow(BaseModel):
    owner: str
    currency: str
    count: int
    open_count: int
    open_amount: Decimal
    weighted_amount: Decimal
    won_count: int
    won_amount: Decimal
    lost_count: int
    win_rate: float | None
    overdue_count: int
    contracted_amount: Decimal
    collected_amount: Decimal


class PredictionRow(BaseModel):
    owner: str
    kind: ActivityKind
    predicted: int = Field(description="Activities that carried a predicted result.")
    resolved: int = Field(description="Of those, how many have their actual result.")
    held: int
    missed: int
    hit_rate: float | None = Field(description="held / resolved")


class OpportunityView(BaseModel):
    opportunity_id: UUID
    customer_id: UUID
    customer_name: str | None
    description: str
    products: list[dict[str, Any]]
    expected_amount: Decimal
    currency: str
    weighted_amount: Decimal
    expected_close_date: dt.date
    region: str | None
    owner: str
    stage: Stage
    probability: int
    probability_overridden: bool
    lost_reason: str | None
    backward_moves: int
    reopened: int
    opened_at: dt.datetime
    closed_at: dt.datetime | None
    version: int
    updated_at: dt.datetime
    days_overdue: int | None = None


class ActivityView(BaseModel):
    activity_id: str
    kind: ActivityKind
    owner: str
    scheduled_on: dt.date
    people: list[str]
    description: str
    predicted_result: str | None
    actual_result: str | None
    occurred_on: dt.date | None
    prediction_held: bool | None


class QuoteView(BaseModel):
    quote_id: str
    quote_version: int
    lines: list[dict[str, Any]]
    total_amount: Decimal
    currency: str
    valid_until: dt.date
    note: str | None
    issued_at: dt.datetime


class PaymentView(BaseModel):
    payment_id: str
    amount: Decimal
    currency: str
    received_on: dt.date
    reference: str | None


class ContractView(BaseModel):
    contract_id: str
    opportunity_id: UUID
    customer_id: UUID
    customer_name: str | None
    owner: str
    amount: Decimal
    currency: str
    signed_on: dt.date
    paid: Decimal
    outstanding: Decimal
    payment_count: int
    payments: list[PaymentView]


class OpportunityDetail(OpportunityView):
    activities: list[ActivityView]
    quotes: list[QuoteView]
    contract: ContractView | None


class OpportunityPage(BaseModel):
    items: list[OpportunityView]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page.")


class PurchaseView(BaseModel):
    purchase_id: UUID
    source: str
    order_id: str
    customer_id: UUID
    customer_name: str | None
    source_customer_id: str | None
    amount: Decimal
    currency: str
    items: list[dict[str, Any]]
    channel: str | None
    occurred_at: dt.datetime
    recorded_at: dt.datetime


class PurchaseTotal(BaseModel):
    currency: str
    count: int
    amount: Decimal
    first_at: dt.datetime
    last_at: dt.datetime


class PurchasePage(BaseModel):
    items: list[PurchaseView]
    totals: list[PurchaseTotal] = Field(description="Over everything that matches, by currency.")
    next_cursor: str | None
