"""The purchase a shop, ERP or billing system publishes on `Topic.PURCHASES_INBOUND`
(`crm.inbound.purchases.v1`): a plain JSON document, not an event envelope.

The sales service records each one as `contracts.sales.PurchaseRecorded`, with the same
items. `PurchaseCompleted` and `PurchaseItem` stay importable from `contracts.sales`.
"""

from __future__ import annotations

from decimal import Decimal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from contracts.money import NonNegativeMoney, Priced
from contracts.references import CustomerHint, CustomerReference, SourceName
from contracts.sales_values import Currency, Identifier, Quantity, ShortText
from contracts.timestamps import PastDatetime


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
