"""Events of the sales service, published on `Topic.SALES`, and the inbound purchase message.

Money is `Decimal`, serialised as a plain decimal string with at least its currency's minor
units (`"1999.00"`, `"5000"` for yen; `contracts.money`) so that no consumer meets a binary
float or an exponent; every amount travels with its ISO 4217 currency code, and nothing
adds amounts of different currencies.

`PurchaseCompleted` is not an envelope: it is the plain JSON document that a shop, ERP
or billing system publishes on `Topic.PURCHASES_INBOUND` (see its docstring).
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import Annotated
from uuid import UUID

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    StringConstraints,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from contracts.envelope import EventPayload
from contracts.money import NonNegativeMoney, PositiveMoney, Priced
from contracts.personal import PERSONAL
from contracts.references import CustomerHint, CustomerReference, SourceName
from contracts.timestamps import PastDatetime
from contracts.topics import Topic
from contracts.values import LINE, TEXT, Day, Line

ShortText = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), LINE
]
LongText = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4000), TEXT
]
PersonalShort = Annotated[ShortText, PERSONAL]
PersonalLong = Annotated[LongText, PERSONAL]
Identifier = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128), LINE
]
Quantity = Annotated[
    Decimal,
    Field(gt=0, max_digits=14, decimal_places=4, allow_inf_nan=False),
    PlainSerializer(lambda quantity: format(quantity, "f"), return_type=str, when_used="json"),
]
"""A count of a product, whole or not; written without exponent."""
Probability = Annotated[int, Field(ge=0, le=100, description="Win probability in percent.")]


class Currency(StrEnum):
    """The ISO 4217 currencies the CRM accepts. A code outside this list is rejected."""

    CNY = "CNY"
    HKD = "HKD"
    TWD = "TWD"
    MOP = "MOP"
    USD = "USD"
    EUR = "EUR"
    GBP = "GBP"
    JPY = "JPY"
    KRW = "KRW"
    SGD = "SGD"
    AUD = "AUD"
    CAD = "CAD"
    CHF = "CHF"
    NZD = "NZD"
    THB = "THB"
    MYR = "MYR"
    INR = "INR"
    AED = "AED"
    RUB = "RUB"
    BRL = "BRL"


SUPPORTED_CURRENCIES = tuple(c.value for c in Currency)


class Stage(StrEnum):
    LEAD = "lead"
    QUALIFIED = "qualified"
    PROPOSAL = "proposal"
    NEGOTIATION = "negotiation"
    WON = "won"
    LOST = "lost"


OPEN_STAGES = (Stage.LEAD, Stage.QUALIFIED, Stage.PROPOSAL, Stage.NEGOTIATION)
CLOSED_STAGES = (Stage.WON, Stage.LOST)
STAGE_ORDER = {stage: rank for rank, stage in enumerate(Stage)}
DEFAULT_PROBABILITY: dict[Stage, int] = {
    Stage.LEAD: 10,
    Stage.QUALIFIED: 25,
    Stage.PROPOSAL: 50,
    Stage.NEGOTIATION: 75,
    Stage.WON: 100,
    Stage.LOST: 0,
}
"""Win probability of a stage unless the owner overrides it."""


class StageMove(StrEnum):
    FORWARD = "forward"
    BACKWARD = "backward"
    REOPENED = "reopened"


class ActivityKind(StrEnum):
    VISIT = "visit"
    CALL = "call"
    DEMO = "demo"
    NEGOTIATION = "negotiation"
    SIGNING = "signing"
    DELIVERY = "delivery"
    OTHER = "other"


class ProductLine(BaseModel):
    """One product of an opportunity or quote: quantity times unit price."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    product: ShortText = Field(description="Product or service name, e.g. 企业版年度许可.")
    quantity: Quantity
    unit_price: NonNegativeMoney


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


# Purchases from other systems ---------------------------------------------------------


class PurchaseItem(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    sku: Identifier | None = Field(default=None, description="The seller's article number.")
    name: ShortText = Field(description="What was bought.")
    quantity: Quantity = Decimal(1)
    unit_price: NonNegativeMoney | None = None


class PurchaseCompleted(Priced):
    """A completed purchase, published by a shop, ERP or billing system on
    `crm.inbound.purchases.v1`. A plain JSON object, not an event envelope.

    - `source` (required): the publishing system, lower case, e.g. `shop-cn`, `erp`.
    - `order_id` (required): the order's id in that system. Together with `source` it is
      the idempotency key: sending the same order again records nothing new.
    - the customer, one of: `customer_id` (the CRM's customer id, a UUID) or
      `customer_reference` (`source` and `source_customer_id`: how the publishing system
      names the customer). A customer the CRM has never seen is created from the
      reference, with `customer_hint` (name, phone, email) when given.
    - `amount` (required, > 0): the total, as a JSON string or number, e.g. `"1299.00"`;
      strings are preferred, they keep every digit.
    - `currency` (required): ISO 4217 code from the supported list (CNY, HKD, USD, EUR...).
    - `items`: what was bought (`name`, optional `sku`, `quantity`, `unit_price`).
    - `channel`: where it was bought, e.g. `online`, `store`, `wechat-mini-program`.
    - `occurred_at` (required): when the purchase completed, ISO 8601 with UTC offset.

    Kafka message key: the CRM customer id if known, otherwise the publishing system's
    customer id, so one customer's purchases stay in order. Unknown fields are ignored.
    """

    model_config = ConfigDict(
        extra="ignore",
        frozen=True,
        json_schema_extra={
            "examples": [
                {
                    "source": "shop-cn",
                    "order_id": "SO-20261123-0042",
                    "customer_reference": {"source": "shop-cn", "source_customer_id": "U-1029"},
                    "customer_hint": {"name": "王小明", "phone": "+86 139 1234 5678"},
                    "amount": "1299.00",
                    "currency": "CNY",
                    "items": [
                        {"sku": "LIC-ENT-1Y", "name": "企业版年度许可", "quantity": 1,
                         "unit_price": "1299.00"}
                    ],
                    "channel": "online",
                    "occurred_at": "2026-11-23T09:30:00+08:00",
                }
            ]
        },
    )  # fmt: skip

    source: SourceName = Field(description="The publishing system, e.g. shop-cn, erp, billing.")
    order_id: Identifier = Field(description="The order's id in the publishing system.")
    customer_id: UUID | None = Field(default=None, description="The CRM's customer id.")
    customer_reference: CustomerReference | None = None
    customer_hint: CustomerHint | None = None
    amount: NonNegativeMoney = Field(
        description="What the customer paid; 0 for a free or fully discounted order, "
        "which still counts as a purchase."
    )
    currency: Currency
    items: list[PurchaseItem] = Field(default_factory=list, max_length=1000)
    channel: ShortText | None = None
    occurred_at: PastDatetime

    @field_validator("occurred_at", mode="before")
    @classmethod
    def _timestamp_is_text(cls, value: object) -> object:
        if isinstance(value, int | float):
            raise PydanticCustomError(
                "datetime_type", "expected an ISO 8601 date-time string with UTC offset"
            )
        return value

    @model_validator(mode="after")
    def _names_a_customer(self) -> PurchaseCompleted:
        if self.customer_id is None and self.customer_reference is None:
            raise ValueError("name the customer by customer_id or by customer_reference")
        return self


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
