"""Value types and enumerations of the sales contracts: currencies, stages, activity
kinds, text fields, quantities and probabilities.

Shared by the sales events (`contracts.sales`) and the purchases other systems publish
(`contracts.inbound.purchases`).
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, StringConstraints

from contracts.money import NonNegativeMoney
from contracts.personal import PERSONAL
from contracts.values import LINE, TEXT

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
