"""Events of the sales service, published on `Topic.SALES`.

Money is `Decimal`, serialised as a plain decimal string with at least its currency's minor
units (`"1999.00"`, `"5000"` for yen; `contracts.money`) so that no consumer meets a binary
float or an exponent; every amount travels with its ISO 4217 currency code, and nothing
adds amounts of different currencies.

The value types and enumerations (`Currency`, `Stage`...) are in `contracts.sales_values`;
the purchase other systems publish on `Topic.PURCHASES_INBOUND` (`PurchaseCompleted`, a
plain JSON document, not an envelope) is in `contracts.inbound.purchases`, and stays
importable from here.
"""

from __future__ import annotations

from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from contracts.envelope import EventPayload
from contracts.inbound.purchases import PurchaseCompleted, PurchaseItem
from contracts.money import NonNegativeMoney, PositiveMoney, Priced
from contracts.references import CustomerHint, CustomerReference, SourceName
from contracts.sales_values import (
    ActivityKind,
    Currency,
    Identifier,
    PersonalLong,
    PersonalShort,
    Probability,
    ProductLine,
    ShortText,
    Stage,
    StageMove,
)
from contracts.topics import Topic
from contracts.values import Day, Line

# Opportunity events -------------------------------------------------------------------


class OpportunityOpened(EventPayload, Priced):
    """A sales opportunity was opened for the customer in the envelope."""

    event_type = "sales.opportunity_opened"
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "opportunity_id": "5a1f0c2e-8b7d-4e6a-9c3b-2d1e0f9a8b7c",
                    "description": "华信 2027 年度企业版许可",
                    "products": [
                        {"product": "企业版年度许可", "quantity": "20", "unit_price": "1299.00"}
                    ],
                    "expected_amount": "25980.00",
                    "currency": "CNY",
                    "expected_close_date": "2026-12-31",
                    "region": "华东",
                    "owner": "李娜",
                    "stage": "lead",
                    "probability": 10,
                    "probability_overridden": False,
                }
            ]
        }
    )

    opportunity_id: UUID
    description: PersonalLong
    products: list[ProductLine] = Field(min_length=1)
    expected_amount: NonNegativeMoney
    currency: Currency
    expected_close_date: Day
    region: ShortText | None = None
    owner: ShortText
    stage: Stage
    probability: Probability
    probability_overridden: bool = False


class OpportunityStageChanged(EventPayload):
    """The opportunity moved to another stage: forward, backward, or reopened from won/lost.

    `probability` is the win probability after the move (the stage's default unless the
    owner gave one). `lost_reason` is set when `to_stage` is `lost`.
    """

    event_type = "sales.opportunity_stage_changed"
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "opportunity_id": "5a1f0c2e-8b7d-4e6a-9c3b-2d1e0f9a8b7c",
                    "from_stage": "qualified",
                    "to_stage": "proposal",
                    "move": "forward",
                    "probability": 50,
                    "probability_overridden": False,
                    "lost_reason": None,
                    "note": "已发送方案",
                }
            ]
        }
    )

    opportunity_id: UUID
    from_stage: Stage
    to_stage: Stage
    move: StageMove
    probability: Probability
    probability_overridden: bool = Field(
        default=False, description="True when the owner gave the probability for this move."
    )
    lost_reason: PersonalLong | None = None
    note: PersonalLong | None = None


class OpportunityAmountChanged(EventPayload, Priced):
    event_type = "sales.opportunity_amount_changed"
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "opportunity_id": "5a1f0c2e-8b7d-4e6a-9c3b-2d1e0f9a8b7c",
                    "expected_amount": "31176.00",
                    "currency": "CNY",
                    "previous_amount": "25980.00",
                    "previous_currency": "CNY",
                }
            ]
        }
    )

    other_currencies = {"previous_amount": "previous_currency"}

    opportunity_id: UUID
    expected_amount: NonNegativeMoney
    currency: Currency
    previous_amount: NonNegativeMoney
    previous_currency: Currency


class OpportunityCloseDateChanged(EventPayload):
    event_type = "sales.opportunity_close_date_changed"
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "opportunity_id": "5a1f0c2e-8b7d-4e6a-9c3b-2d1e0f9a8b7c",
                    "expected_close_date": "2027-01-15",
                    "previous_close_date": "2026-12-31",
                }
            ]
        }
    )

    opportunity_id: UUID
    expected_close_date: Day
    previous_close_date: Day


class OpportunityOwnerChanged(EventPayload):
    event_type = "sales.opportunity_owner_changed"
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "opportunity_id": "5a1f0c2e-8b7d-4e6a-9c3b-2d1e0f9a8b7c",
                    "owner": "王芳",
                    "previous_owner": "李娜",
                }
            ]
        }
    )

    opportunity_id: UUID
    owner: ShortText
    previous_owner: ShortText


class OpportunityProbabilityChanged(EventPayload):
    """The owner set the win probability (`overridden`), or went back to the stage default."""

    event_type = "sales.opportunity_probability_changed"
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "opportunity_id": "5a1f0c2e-8b7d-4e6a-9c3b-2d1e0f9a8b7c",
                    "probability": 60,
                    "previous_probability": 50,
                    "overridden": True,
                }
            ]
        }
    )

    opportunity_id: UUID
    probability: Probability
    previous_probability: Probability
    overridden: bool


class ActivityPlanned(EventPayload):
    """A key activity on the opportunity (visit, call, demo, negotiation, signing, delivery).

    `predicted_result` is what the owner expects to come of it; when the actual result is
    recorded (`sales.activity_completed`), the prediction is marked held or missed.
    """

    event_type = "sales.activity_planned"
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "opportunity_id": "5a1f0c2e-8b7d-4e6a-9c3b-2d1e0f9a8b7c",
                    "activity_id": "A-1",
                    "kind": "demo",
                    "scheduled_on": "2026-12-02",
                    "owner": "李娜",
                    "people": ["张伟"],
                    "description": "产品演示",
                    "predicted_result": "客户同意进入报价",
                }
            ]
        }
    )

    opportunity_id: UUID
    activity_id: Line
    kind: ActivityKind
    scheduled_on: Day
    owner: ShortText
    people: list[PersonalShort] = Field(default_factory=list)
    description: PersonalLong
    predicted_result: PersonalLong | None = None


class ActivityCompleted(EventPayload):
    """The activity took place. `prediction_held` is null when nothing was predicted."""

    event_type = "sales.activity_completed"
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "opportunity_id": "5a1f0c2e-8b7d-4e6a-9c3b-2d1e0f9a8b7c",
                    "activity_id": "A-1",
                    "kind": "demo",
                    "owner": "李娜",
                    "occurred_on": "2026-12-02",
                    "actual_result": "客户要求报价",
                    "predicted_result": "客户同意进入报价",
                    "prediction_held": True,
                }
            ]
        }
    )

    opportunity_id: UUID
    activity_id: Line
    kind: ActivityKind
    owner: ShortText
    occurred_on: Day
    actual_result: PersonalLong
    predicted_result: PersonalLong | None = None
    prediction_held: bool | None = None


class QuoteIssued(EventPayload, Priced):
    """A quote, or a new version of one: its lines, total and validity."""

    event_type = "sales.quote_issued"
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "opportunity_id": "5a1f0c2e-8b7d-4e6a-9c3b-2d1e0f9a8b7c",
                    "quote_id": "Q-2026-118",
                    "quote_version": 1,
                    "lines": [
                        {"product": "企业版年度许可", "quantity": "20", "unit_price": "1299.00"}
                    ],
                    "total_amount": "25980.00",
                    "currency": "CNY",
                    "valid_until": "2026-12-31",
                    "note": "含一年技术支持",
                }
            ]
        }
    )

    opportunity_id: UUID
    quote_id: Line
    quote_version: int = Field(ge=1)
    lines: list[ProductLine] = Field(min_length=1)
    total_amount: NonNegativeMoney
    currency: Currency
    valid_until: Day
    note: PersonalLong | None = None


class ContractSigned(EventPayload, Priced):
    """The contract of a won opportunity."""

    event_type = "sales.contract_signed"
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "opportunity_id": "5a1f0c2e-8b7d-4e6a-9c3b-2d1e0f9a8b7c",
                    "contract_id": "HT-2026-0042",
                    "amount": "25980.00",
                    "currency": "CNY",
                    "signed_on": "2026-12-20",
                }
            ]
        }
    )

    opportunity_id: UUID
    contract_id: Line
    amount: PositiveMoney
    currency: Currency
    signed_on: Day


class PaymentReceived(EventPayload, Priced):
    """A payment against a contract; `outstanding_after` is what remains to be paid."""

    event_type = "sales.payment_received"
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "opportunity_id": "5a1f0c2e-8b7d-4e6a-9c3b-2d1e0f9a8b7c",
                    "contract_id": "HT-2026-0042",
                    "payment_id": "P-1",
                    "amount": "12990.00",
                    "currency": "CNY",
                    "received_on": "2026-12-28",
                    "outstanding_after": "12990.00",
                    "reference": "银行转账 20261228-001",
                }
            ]
        }
    )

    opportunity_id: UUID
    contract_id: Line
    payment_id: Line
    amount: PositiveMoney
    currency: Currency
    received_on: Day
    outstanding_after: NonNegativeMoney
    reference: ShortText | None = None


class PurchaseRecorded(EventPayload, Priced):
    """A purchase another system reported, recorded once per (source, order id).

    `customer_reference` and `customer_hint` are as the publisher sent them; the
    envelope's `customer_id` is the customer they resolved to (for a reference the CRM
    did not know, the id derived from it).
    """

    event_type = "sales.purchase_recorded"
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "purchase_id": "9c3e7a10-4b2d-5f68-8e1a-0d7c6b5a4f3e",
                    "source": "shop-cn",
                    "order_id": "SO-20261123-0042",
                    "amount": "1299.00",
                    "currency": "CNY",
                    "items": [
                        {
                            "sku": "LIC-ENT-1Y",
                            "name": "企业版年度许可",
                            "quantity": "1",
                            "unit_price": "1299.00",
                        }
                    ],
                    "channel": "online",
                    "customer_reference": {"source": "shop-cn", "source_customer_id": "U-1029"},
                    "customer_hint": {
                        "name": "王小明",
                        "phone": "+86 139 1234 5678",
                        "email": None,
                    },
                }
            ]
        }
    )

    purchase_id: UUID
    source: SourceName
    order_id: Identifier
    amount: NonNegativeMoney = Field(description="0 for a free or fully discounted order.")
    currency: Currency
    items: list[PurchaseItem] = Field(default_factory=list)
    channel: ShortText | None = None
    customer_reference: CustomerReference | None = None
    customer_hint: CustomerHint | None = None


EVENTS: tuple[type[EventPayload], ...] = (
    OpportunityOpened,
    OpportunityStageChanged,
    OpportunityAmountChanged,
    OpportunityCloseDateChanged,
    OpportunityOwnerChanged,
    OpportunityProbabilityChanged,
    ActivityPlanned,
    ActivityCompleted,
    QuoteIssued,
    ContractSigned,
    PaymentReceived,
    PurchaseRecorded,
)


INBOUND: dict[str, type[BaseModel]] = {Topic.PURCHASES_INBOUND: PurchaseCompleted}
"""Messages other systems publish to the CRM, by topic."""
