"""HTTP commands of the sales service: opportunities, stages, activities, quotes,
contracts and payments. Queries are in `views.py`."""

from __future__ import annotations

import asyncio
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Response
from pydantic import ConfigDict, Field
from pydantic_core import PydanticCustomError

from contracts.money import Money, NonNegativeMoney, PositiveMoney
from contracts.sales_values import (
    ActivityKind,
    Currency,
    LongText,
    Probability,
    ProductLine,
    ShortText,
    Stage,
)
from contracts.timestamps import PastDay, PlannedDay, day_not_in_future
from services.runtime.customer_aliases import current_customer
from services.runtime.errors import RuleViolation
from services.runtime.http import answers
from services.runtime.http.answers import etag
from services.runtime.http.authorization import requires
from services.runtime.http.commands import StrictBody
from services.sales.dependencies import App, Caller, OwnOpportunity, Pool, Version, check_owner
from services.sales.domain import Opportunity
from services.sales.projections import CUSTOMERS

router = APIRouter(tags=["opportunities"])


class OpenOpportunity(StrictBody):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "customer_id": "0b6c4a52-1f0e-4c55-9c1e-3f1f7c1d2a10",
                    "description": "华信贸易 ERP 升级, 企业版年度许可及实施服务",
                    "products": [
                        {"product": "企业版年度许可", "quantity": 50, "unit_price": "1200.00"},
                        {"product": "实施服务", "quantity": 20, "unit_price": "1500.00"},
                    ],
                    "currency": "CNY",
                    "expected_close_date": "2026-12-31",
                    "region": "华东",
                    "owner": "李娜",
                    "stage": "qualified",
                }
            ]
        },
    )

    customer_id: UUID
    description: LongText
    products: list[ProductLine] = Field(min_length=1, max_length=200)
    expected_amount: NonNegativeMoney | None = Field(
        default=None, description="Defaults to the sum of the product lines."
    )
    currency: Currency
    expected_close_date: PlannedDay
    region: ShortText | None = None
    owner: ShortText
    stage: Stage = Stage.LEAD
    probability: Probability | None = Field(
        default=None, description="Overrides the stage's default win probability."
    )


class MoveStage(StrictBody):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"stage": "negotiation"},
                {"stage": "lost", "lost_reason": "价格高于竞争对手 15%"},
                {"stage": "qualified", "reopen": True, "note": "客户重新启动采购"},
            ]
        },
    )

    stage: Stage
    probability: Probability | None = Field(
        default=None, description="Overrides the new stage's default win probability."
    )
    lost_reason: LongText | None = None
    reopen: bool = Field(default=False, description="Required to move a won or lost one back.")
    note: LongText | None = None


class ChangeOpportunity(StrictBody):
    """Only the fields present change; `probability: null` goes back to the stage default."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"expected_amount": "98000.00", "expected_close_date": "2027-01-15"}]
        },
    )

    expected_amount: NonNegativeMoney | None = None
    currency: Currency | None = None
    expected_close_date: PlannedDay | None = None
    owner: ShortText | None = None
    probability: Probability | None = None


class NewActivity(StrictBody):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "kind": "demo",
                    "date": "2026-12-03",
                    "people": ["张伟", "李娜"],
                    "description": "现场演示企业版报表模块",
                    "predicted_result": "客户同意进入报价阶段",
                }
            ]
        },
    )

    kind: ActivityKind
    date: PlannedDay = Field(
        description="When it is planned, or took place (not in the future then)."
    )
    owner: ShortText | None = Field(default=None, description="Defaults to the opportunity's.")
    people: list[ShortText] = Field(default_factory=list, max_length=50)
    description: LongText
    predicted_result: LongText | None = Field(
        default=None, description="What the owner expects to come of it."
    )
    actual_result: LongText | None = Field(
        default=None, description="For an activity that already took place."
    )
    prediction_held: bool | None = None


class ActivityResult(StrictBody):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "date": "2026-11-27",
                    "actual_result": "客户要求先做试点",
                    "prediction_held": False,
                }
            ]
        },
    )

    date: PastDay
    actual_result: LongText
    prediction_held: bool | None = Field(
        default=None, description="Required when the activity carried a predicted result."
    )


class NewQuote(StrictBody):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "lines": [
                        {"product": "企业版年度许可", "quantity": 50, "unit_price": "1100.00"}
                    ],
                    "currency": "CNY",
                    "valid_until": "2026-12-31",
                }
            ]
        },
    )

    quote_id: ShortText | None = Field(
        default=None, description="Give an existing quote's id to issue its next version."
    )
    lines: list[ProductLine] = Field(min_length=1, max_length=200)
    currency: Currency
    valid_until: PlannedDay
    note: LongText | None = None


class SignContract(StrictBody):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"amount": "90000.00", "currency": "CNY", "signed_on": "2026-11-20"}]
        },
    )

    amount: PositiveMoney
    currency: Currency
    signed_on: PastDay


class NewPayment(StrictBody):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "amount": "45000.00",
                    "currency": "CNY",
                    "received_on": "2026-11-25",
                    "reference": "银行回单 20261125-001",
                }
            ]
        },
    )

    amount: PositiveMoney
    currency: Currency
    received_on: PastDay
    reference: ShortText | None = None


class Accepted(answers.Accepted):
    opportunity_id: UUID
    version: int = Field(description="The opportunity's version after the command.")
    activity_id: str | None = None
    quote_id: str | None = None
    quote_version: int | None = None
    contract_id: str | None = None
    payment_id: str | None = None
    outstanding: Money | None = Field(
        default=None, description="What remains to be paid on the contract."
    )


def accepted(response: Response, opportunity: Opportunity, **extra: Any) -> Accepted:
    """The answer naming the changed opportunity and its new version (also the `ETag`)."""
    etag(response, opportunity.version)
    return Accepted(opportunity_id=opportunity.id, version=opportunity.version, **extra)


@router.post(
    "/opportunities",
    dependencies=[requires("opportunities:write")],
    status_code=201,
    summary="Open an opportunity",
    responses={422: {"description": "Invalid, or the customer is not known."}},
)
async def open_opportunity(
    body: OpenOpportunity, app: App, db: Pool, caller: Caller, response: Response
) -> Accepted:
    check_owner(caller, body.owner, "an opportunity opened for another owner")
    if not await CUSTOMERS.known(db, body.customer_id):
        raise RuleViolation(
            f"customer {body.customer_id} is not known to the sales service; register the "
            "customer first (a customer registered a moment ago may need a second to arrive)"
        )
    fields = body.model_dump()
    fields["customer_id"] = await current_customer(db, body.customer_id)  # a survivor's
    fields["currency"] = body.currency.value
    fields["stage"] = body.stage.value
    fields["products"] = [line.model_dump() for line in body.products]
    opportunity = await asyncio.to_thread(app.open_opportunity, **fields)
    response.headers["Location"] = f"/opportunities/{opportunity.id}"
    return accepted(response, opportunity)


@router.post(
    "/opportunities/{opportunity_id}/stage",
    dependencies=[requires("opportunities:write"), OwnOpportunity],
    summary="Move to another stage",
)
def move_stage(
    opportunity_id: UUID, body: MoveStage, app: App, version: Version, response: Response
) -> Accepted:
    opportunity = app.move_stage(
        opportunity_id,
        body.stage.value,
        probability=body.probability,
        lost_reason=body.lost_reason,
        reopen=body.reopen,
        note=body.note,
        expected_version=version,
    )
    return accepted(response, opportunity)


@router.patch(
    "/opportunities/{opportunity_id}",
    dependencies=[requires("opportunities:write"), OwnOpportunity],
    summary="Change expected amount, currency, close date, owner or win probability",
)
def change_opportunity(
    opportunity_id: UUID, body: ChangeOpportunity, app: App, version: Version, response: Response
) -> Accepted:
    changes = {name: getattr(body, name) for name in body.model_fields_set}
    if not changes:
        raise RuleViolation("name at least one field to change")
    for required in ("expected_amount", "currency", "expected_close_date", "owner"):
        if required in changes and changes[required] is None:
            raise RuleViolation(f"{required} cannot be cleared, only changed")
    if changes.get("currency") is not None:
        changes["currency"] = changes["currency"].value
    opportunity = app.change_opportunity(opportunity_id, changes, version)
    return accepted(response, opportunity)


@router.post(
    "/opportunities/{opportunity_id}/activities",
    dependencies=[requires("opportunities:write"), OwnOpportunity],
    status_code=201,
    summary="Record a key activity: planned (with a predicted result) or already done",
)
def add_activity(
    opportunity_id: UUID, body: NewActivity, app: App, version: Version, response: Response
) -> Accepted:
    if body.actual_result is None and body.prediction_held is not None:
        raise RuleViolation("prediction_held goes with actual_result")
    if body.actual_result is not None:
        try:  # an activity with its actual result took place: not in the future
            day_not_in_future(body.date)
        except PydanticCustomError as exc:
            raise RuleViolation(
                f"date: {exc.message()} (an activity with an actual result took place)"
            ) from None
    opportunity, activity_id = app.plan_activity(
        opportunity_id,
        {
            "kind": body.kind.value,
            "scheduled_on": body.date,
            "owner": body.owner,
            "people": list(body.people),
            "description": body.description,
            "predicted_result": body.predicted_result,
            "actual_result": body.actual_result,
            "prediction_held": body.prediction_held,
        },
        version,
    )
    return accepted(response, opportunity, activity_id=activity_id)


@router.post(
    "/opportunities/{opportunity_id}/activities/{activity_id}/result",
    dependencies=[requires("opportunities:write"), OwnOpportunity],
    summary="Record what actually came of an activity; mark its prediction held or missed",
)
def record_result(
    opportunity_id: UUID,
    activity_id: str,
    body: ActivityResult,
    app: App,
    version: Version,
    response: Response,
) -> Accepted:
    opportunity = app.complete_activity(
        opportunity_id,
        activity_id,
        occurred_on=body.date,
        actual_result=body.actual_result,
        prediction_held=body.prediction_held,
        expected_version=version,
    )
    return accepted(response, opportunity, activity_id=activity_id)


@router.post(
    "/opportunities/{opportunity_id}/quotes",
    dependencies=[requires("opportunities:write"), OwnOpportunity],
    status_code=201,
    summary="Issue a quote, or the next version of one",
)
def issue_quote(
    opportunity_id: UUID, body: NewQuote, app: App, version: Version, response: Response
) -> Accepted:
    opportunity, quote_id, quote_version = app.issue_quote(
        opportunity_id,
        quote_id=body.quote_id,
        lines=[line.model_dump() for line in body.lines],
        currency=body.currency.value,
        valid_until=body.valid_until,
        note=body.note,
        expected_version=version,
    )
    return accepted(
        response,
        opportunity,
        quote_id=quote_id,
        quote_version=quote_version,
    )


@router.post(
    "/opportunities/{opportunity_id}/contract",
    dependencies=[requires("opportunities:write"), OwnOpportunity],
    status_code=201,
    summary="Record the signed contract of a won opportunity",
)
def sign_contract(
    opportunity_id: UUID, body: SignContract, app: App, version: Version, response: Response
) -> Accepted:
    opportunity, contract_id = app.sign_contract(
        opportunity_id,
        amount=body.amount,
        currency=body.currency.value,
        signed_on=body.signed_on,
        expected_version=version,
    )
    return accepted(
        response,
        opportunity,
        contract_id=contract_id,
        outstanding=opportunity.outstanding,
    )


@router.post(
    "/opportunities/{opportunity_id}/contract/payments",
    dependencies=[requires("opportunities:write"), OwnOpportunity],
    status_code=201,
    summary="Record a payment received against the contract",
)
def receive_payment(
    opportunity_id: UUID, body: NewPayment, app: App, version: Version, response: Response
) -> Accepted:
    opportunity, payment_id = app.receive_payment(
        opportunity_id,
        amount=body.amount,
        currency=body.currency.value,
        received_on=body.received_on,
        reference=body.reference,
        expected_version=version,
    )
    contract = opportunity.contract or {}
    return accepted(
        response,
        opportunity,
        contract_id=contract.get("contract_id"),
        payment_id=payment_id,
        outstanding=opportunity.outstanding,
    )
