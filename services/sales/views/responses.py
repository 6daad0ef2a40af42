"""The response models of the sales views: aggregated rows, opportunities with their
activities, quotes and contracts, purchases with their totals. Every amount is `Money`
(a decimal string with its currency's minor units); every model with a currency is
`Priced`."""

from __future__ import annotations

import datetime as dt
from uuid import UUID

from pydantic import BaseModel, Field

from contracts.inbound.purchases import PurchaseItem
from contracts.money import Money, Priced
from contracts.personal import Personal
from contracts.sales_values import ActivityKind, ProductLine, Stage


class PipelineRow(Priced):
    stage: Stage
    currency: str
    count: int
    amount: Money
    weighted_amount: Money = Field(description="Sum of amount times win probability.")


class AnalysisRow(Priced):
    key: str = Field(description="The month (YYYY-MM), quarter (YYYY-Qn), product, ...")
    currency: str
    count: int
    amount: Money
    weighted_amount: Money
    open_count: int
    won_count: int
    won_amount: Money
    lost_count: int
    win_rate: float | None = Field(description="won / (won + lost); null before any is decided")


class OwnerRow(Priced):
    owner: str
    currency: str
    count: int
    open_count: int
    open_amount: Money
    weighted_amount: Money
    won_count: int
    won_amount: Money
    lost_count: int
    win_rate: float | None
    overdue_count: int
    contracted_amount: Money
    collected_amount: Money


class PredictionRow(BaseModel):
    owner: str
    kind: ActivityKind
    predicted: int = Field(description="Activities that carried a predicted result.")
    resolved: int = Field(description="Of those, how many have their actual result.")
    held: int
    missed: int
    hit_rate: float | None = Field(description="held / resolved")


class OpportunityView(Priced):
    opportunity_id: UUID
    customer_id: UUID
    customer_name: Personal | None
    description: Personal
    products: list[ProductLine]
    expected_amount: Money
    currency: str
    weighted_amount: Money
    expected_close_date: dt.date
    region: str | None
    owner: str
    stage: Stage
    probability: int
    probability_overridden: bool
    lost_reason: Personal | None
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
    people: list[Personal]
    description: Personal
    predicted_result: Personal | None
    actual_result: Personal | None
    occurred_on: dt.date | None
    prediction_held: bool | None


class QuoteView(Priced):
    quote_id: str
    quote_version: int
    lines: list[ProductLine]
    total_amount: Money
    currency: str
    valid_until: dt.date
    note: Personal | None
    issued_at: dt.datetime


class PaymentView(Priced):
    payment_id: str
    amount: Money
    currency: str
    received_on: dt.date
    reference: str | None


class ContractView(Priced):
    contract_id: str
    opportunity_id: UUID
    customer_id: UUID
    customer_name: Personal | None
    owner: str
    amount: Money
    currency: str
    signed_on: dt.date
    paid: Money
    outstanding: Money
    payment_count: int
    payments: list[PaymentView]


class OpportunityDetail(OpportunityView):
    activities: list[ActivityView]
    quotes: list[QuoteView]
    contract: ContractView | None


class OpportunityPage(BaseModel):
    items: list[OpportunityView]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page.")


class PurchaseView(Priced):
    purchase_id: UUID
    source: str
    order_id: str
    customer_id: UUID
    customer_name: Personal | None
    source_customer_id: str | None
    amount: Money
    currency: str
    items: list[PurchaseItem]
    channel: str | None
    occurred_at: dt.datetime
    recorded_at: dt.datetime


class PurchaseTotal(Priced):
    currency: str
    count: int
    amount: Money
    first_at: dt.datetime
    last_at: dt.datetime


class PurchasePage(BaseModel):
    items: list[PurchaseView]
    totals: list[PurchaseTotal] = Field(description="Over everything that matches, by currency.")
    next_cursor: str | None
