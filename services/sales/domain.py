"""The sales aggregates: opportunities (with activities, quotes, contract, payments) and
purchases reported by other systems. Pure; no I/O.

Values arrive validated against the contract vocabularies; the aggregates guard what
depends on their own state: stage rules, activities that exist, one contract per won
opportunity, payments that do not exceed what is owed. A command that changes nothing
records no event.
"""

from __future__ import annotations

import functools
import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from contracts.sales_values import (
    CLOSED_STAGES,
    DEFAULT_PROBABILITY,
    OPEN_STAGES,
    STAGE_ORDER,
    Stage,
    StageMove,
)
from services.runtime.errors import Conflict, NotFound, RuleViolation

PURCHASE_NAMESPACE = UUID("3b0f7f0e-8f43-4a55-b7b4-6f6a0c2d5e91")


@functools.lru_cache(maxsize=8192)
def purchase_id(source: str, order_id: str) -> UUID:
    """The purchase's aggregate id: the same (source, order id) always gives the same id.

    Cached: ingestion derives it once to find repeats and again when creating the purchase.
    """
    return uuid.uuid5(PURCHASE_NAMESPACE, f"{source}\x1f{order_id}")


def line_total(lines: list[dict[str, Any]]) -> Decimal:
    return sum(
        (Decimal(line["quantity"]) * Decimal(line["unit_price"]) for line in lines), Decimal(0)
    )


class Opportunity(Aggregate):
    @event("Opened")
    def __init__(
        self,
        *,
        customer_id: UUID,
        description: str,
        products: list[dict[str, Any]],
        expected_amount: Decimal,
        currency: str,
        expected_close_date: date,
        region: str | None,
        owner: str,
        stage: str,
        probability: int,
        probability_overridden: bool,
    ) -> None:
        self.customer_id = customer_id
        self.description = description
        self.products = [dict(p) for p in products]
        self.expected_amount = expected_amount
        self.currency = currency
        self.expected_close_date = expected_close_date
        self.region = region
        self.owner = owner
        self.stage = stage
        self.probability = probability
        self.probability_overridden = probability_overridden
        self.lost_reason: str | None = None
        self.activities: dict[str, dict[str, Any]] = {}
        self.quote_versions: dict[str, int] = {}
        self.contract: dict[str, Any] | None = None
        self.payments: list[dict[str, Any]] = []

    @classmethod
    def open(
        cls,
        *,
        customer_id: UUID,
        description: str,
        products: list[dict[str, Any]],
        expected_amount: Decimal | None,
        currency: str,
        expected_close_date: date,
        region: str | None,
        owner: str,
        stage: str = "lead",
        probability: int | None = None,
    ) -> Opportunity:
        if not products:
            raise RuleViolation("an opportunity needs at least one product")
        if Stage(stage) not in OPEN_STAGES:
            raise RuleViolation(
                f"an opportunity opens in one of {', '.join(OPEN_STAGES)}, not {stage!r}"
            )
        amount = line_total(products) if expected_amount is None else expected_amount
        return cls(
            customer_id=customer_id,
            description=description,
            products=products,
            expected_amount=amount,
            currency=currency,
            expected_close_date=expected_close_date,
            region=region,
            owner=owner,
            stage=Stage(stage).value,
            probability=DEFAULT_PROBABILITY[Stage(stage)] if probability is None else probability,
            probability_overridden=probability is not None,
        )

    @property
    def is_closed(self) -> bool:
        return Stage(self.stage) in CLOSED_STAGES

    def _require_open(self, action: str) -> None:
        if self.is_closed:
            raise RuleViolation(
                f"opportunity {self.id} is {self.stage}; reopen it before you {action}"
            )

    # Stages --------------------------------------------------------------------------

    def move_to(
        self,
        stage: str,
        *,
        probability: int | None = None,
        lost_reason: str | None = None,
        reopen: bool = False,
        note: str | None = None,
    ) -> None:
        target = Stage(stage)
        current = Stage(self.stage)
        if target == current:
            if probability is not None:
                self.set_probability(probability)
            return
        if target == Stage.LOST and not lost_reason:
            raise RuleViolation("say why the opportunity was lost (lost_reason)")
        if target != Stage.LOST and lost_reason:
            raise RuleViolation("lost_reason belongs only to a move to lost")
        if current in CLOSED_STAGES:
            if not reopen:
                raise RuleViolation(
                    f"opportunity {self.id} is {current}, which is final; "
                    "send reopen: true to move it back into the pipeline"
                )
            if target in CLOSED_STAGES:
                raise RuleViolation("a reopened opportunity goes back to an open stage")
            if self.contract is not None:
                raise RuleViolation(
                    f"opportunity {self.id} has a signed contract and cannot be reopened"
                )
            move = StageMove.REOPENED
        elif reopen:
            raise RuleViolation(f"opportunity {self.id} is {current}, not won or lost")
        elif STAGE_ORDER[target] < STAGE_ORDER[current]:
            move = StageMove.BACKWARD
        else:
            move = StageMove.FORWARD
        self._stage_changed(
            customer_id=self.customer_id,
            from_stage=current.value,
            to_stage=target.value,
            move=move.value,
            probability=DEFAULT_PROBABILITY[target] if probability is None else probability,
            probability_overridden=probability is not None,
            lost_reason=lost_reason,
            note=note,
        )

    @event("StageChanged")
    def _stage_changed(
        self,
        customer_id: UUID,
        from_stage: str,
        to_stage: str,
        move: str,
        probability: int,
        probability_overridden: bool,
        lost_reason: str | None,
        note: str | None,
    ) -> None:
        self.stage = to_stage
        self.probability = probability
        self.probability_overridden = probability_overridden
        self.lost_reason = lost_reason

    # Changes of amount, close date, owner, probability -------------------------------

    def change_amount(self, amount: Decimal, currency: str | None = None) -> None:
        self._require_open("change its amount")
        currency = currency or self.currency
        if amount != self.expected_amount or currency != self.currency:
            self._amount_changed(
                customer_id=self.customer_id,
                expected_amount=amount,
                currency=currency,
                previous_amount=self.expected_amount,
                previous_currency=self.currency,
            )

    @event("AmountChanged")
    def _amount_changed(
        self,
        customer_id: UUID,
        expected_amount: Decimal,
        currency: str,
        previous_amount: Decimal,
        previous_currency: str,
    ) -> None:
        self.expected_amount = expected_amount
        self.currency = currency

    def change_close_date(self, close_date: date) -> None:
        self._require_open("change its expected close date")
        if close_date != self.expected_close_date:
            self._close_date_changed(
                customer_id=self.customer_id,
                expected_close_date=close_date,
                previous_close_date=self.expected_close_date,
            )

    @event("CloseDateChanged")
    def _close_date_changed(
        self, customer_id: UUID, expected_close_date: date, previous_close_date: date
    ) -> None:
        self.expected_close_date = expected_close_date

    def change_owner(self, owner: str) -> None:
        if owner != self.owner:
            self._owner_changed(
                customer_id=self.customer_id, owner=owner, previous_owner=self.owner
            )

    @event("OwnerChanged")
    def _owner_changed(self, customer_id: UUID, owner: str, previous_owner: str) -> None:
        self.owner = owner

    def set_probability(self, probability: int | None) -> None:
        """A number overrides the stage's default; None goes back to the default."""
        self._require_open("change its win probability")
        overridden = probability is not None
        value = DEFAULT_PROBABILITY[Stage(self.stage)] if probability is None else probability
        if value != self.probability or overridden != self.probability_overridden:
            self._probability_changed(
                customer_id=self.customer_id,
                probability=value,
                previous_probability=self.probability,
                overridden=overridden,
            )

    @event("ProbabilityChanged")
    def _probability_changed(
        self, customer_id: UUID, probability: int, previous_probability: int, overridden: bool
    ) -> None:
        self.probability = probability
        self.probability_overridden = overridden

    # Activities ----------------------------------------------------------------------

    def plan_activity(
        self,
        *,
        activity_id: str,
        kind: str,
        scheduled_on: date,
        owner: str | None,
        people: list[str],
        description: str,
        predicted_result: str | None,
    ) -> None:
        if activity_id in self.activities:
            raise Conflict(f"activity {activity_id} already exists")
        self._activity_planned(
            customer_id=self.customer_id,
            activity_id=activity_id,
            kind=kind,
            scheduled_on=scheduled_on,
            owner=owner or self.owner,
            people=list(people),
            description=description,
            predicted_result=predicted_result,
        )

    @event("ActivityPlanned")
    def _activity_planned(
        self,
        customer_id: UUID,
        activity_id: str,
        kind: str,
        scheduled_on: date,
        owner: str,
        people: list[str],
        description: str,
        predicted_result: str | None,
    ) -> None:
        self.activities[activity_id] = {
            "activity_id": activity_id,
            "kind": kind,
            "scheduled_on": scheduled_on,
            "owner": owner,
            "people": list(people),
            "description": description,
            "predicted_result": predicted_result,
            "actual_result": None,
            "prediction_held": None,
        }

    def complete_activity(
        self,
        activity_id: str,
        *,
        occurred_on: date,
        actual_result: str,
        prediction_held: bool | None,
    ) -> None:
        activity = self.activities.get(activity_id)
        if activity is None:
            raise NotFound(f"opportunity {self.id} has no activity {activity_id}")
        if activity["actual_result"] is not None:
            raise Conflict(f"activity {activity_id} already has its actual result")
        if activity["predicted_result"] is not None and prediction_held is None:
            raise RuleViolation(
                "the activity carried a predicted result: say whether it held "
                "(prediction_held: true or false)"
            )
        if activity["predicted_result"] is None and prediction_held is not None:
            raise RuleViolation("the activity predicted nothing, so nothing can hold or miss")
        self._activity_completed(
            customer_id=self.customer_id,
            activity_id=activity_id,
            kind=activity["kind"],
            owner=activity["owner"],
            occurred_on=occurred_on,
            actual_result=actual_result,
            predicted_result=activity["predicted_result"],
            prediction_held=prediction_held,
        )

    @event("ActivityCompleted")
    def _activity_completed(
        self,
        customer_id: UUID,
        activity_id: str,
        kind: str,
        owner: str,
        occurred_on: date,
        actual_result: str,
        predicted_result: str | None,
        prediction_held: bool | None,
    ) -> None:
        activity = self.activities[activity_id]
        activity["actual_result"] = actual_result
        activity["prediction_held"] = prediction_held
        activity["occurred_on"] = occurred_on

    # Quotes, contract, payments ------------------------------------------------------

    def issue_quote(
        self,
        *,
        quote_id: str,
        lines: list[dict[str, Any]],
        currency: str,
        valid_until: date,
        issued_on: date,
        note: str | None,
    ) -> int:
        """Issue a quote, or a new version of `quote_id`; returns the version."""
        self._require_open("quote")
        if not lines:
            raise RuleViolation("a quote needs at least one line")
        if valid_until < issued_on:
            raise RuleViolation(
                f"valid_until {valid_until} is before today ({issued_on}); "
                "a quote must be valid at least on the day it is issued"
            )
        version = self.quote_versions.get(quote_id, 0) + 1
        self._quote_issued(
            customer_id=self.customer_id,
            quote_id=quote_id,
            quote_version=version,
            lines=[dict(line) for line in lines],
            total_amount=line_total(lines),
            currency=currency,
            valid_until=valid_until,
            note=note,
        )
        return version

    @event("QuoteIssued")
    def _quote_issued(
        self,
        customer_id: UUID,
        quote_id: str,
        quote_version: int,
        lines: list[dict[str, Any]],
        total_amount: Decimal,
        currency: str,
        valid_until: date,
        note: str | None,
    ) -> None:
        self.quote_versions[quote_id] = quote_version

    def sign_contract(
        self, *, contract_id: str, amount: Decimal, currency: str, signed_on: date
    ) -> None:
        if self.stage != Stage.WON:
            raise RuleViolation(
                f"opportunity {self.id} is {self.stage}; move it to won before recording "
                "its signed contract"
            )
        if self.contract is not None:
            raise Conflict(
                f"opportunity {self.id} already has contract {self.contract['contract_id']}"
            )
        self._contract_signed(
            customer_id=self.customer_id,
            contract_id=contract_id,
            amount=amount,
            currency=currency,
            signed_on=signed_on,
        )

    @event("ContractSigned")
    def _contract_signed(
        self, customer_id: UUID, contract_id: str, amount: Decimal, currency: str, signed_on: date
    ) -> None:
        self.contract = {
            "contract_id": contract_id,
            "amount": amount,
            "currency": currency,
            "signed_on": signed_on,
        }

    @property
    def outstanding(self) -> Decimal:
        if self.contract is None:
            return Decimal(0)
        paid = sum((p["amount"] for p in self.payments), Decimal(0))
        return Decimal(self.contract["amount"]) - paid

    def receive_payment(
        self,
        *,
        payment_id: str,
        amount: Decimal,
        currency: str,
        received_on: date,
        reference: str | None,
    ) -> None:
        if self.contract is None:
            raise RuleViolation(f"opportunity {self.id} has no signed contract to pay against")
        if currency != self.contract["currency"]:
            raise RuleViolation(
                f"the contract is in {self.contract['currency']}; "
                f"a payment in {currency} cannot be set against it"
            )
        if any(p["payment_id"] == payment_id for p in self.payments):
            raise Conflict(f"payment {payment_id} is already recorded")
        if amount > self.outstanding:
            raise RuleViolation(
                f"the payment of {amount} {currency} exceeds the outstanding balance of "
                f"{self.outstanding} {currency}"
            )
        self._payment_received(
            customer_id=self.customer_id,
            contract_id=self.contract["contract_id"],
            payment_id=payment_id,
            amount=amount,
            currency=currency,
            received_on=received_on,
            reference=reference,
            outstanding_after=self.outstanding - amount,
        )

    @event("PaymentReceived")
    def _payment_received(
        self,
        customer_id: UUID,
        contract_id: str,
        payment_id: str,
        amount: Decimal,
        currency: str,
        received_on: date,
        reference: str | None,
        outstanding_after: Decimal,
    ) -> None:
        self.payments.append(
            {
                "payment_id": payment_id,
                "amount": amount,
                "currency": currency,
                "received_on": received_on,
                "reference": reference,
            }
        )


class Purchase(Aggregate):
    """A purchase another system reported; its id is derived from (source, order id)."""

    @staticmethod
    def create_id(source: str, order_id: str, **_: Any) -> UUID:
        return purchase_id(source, order_id)

    @event("Recorded")
    def __init__(
        self,
        *,
        source: str,
        order_id: str,
        customer_id: UUID,
        amount: Decimal,
        currency: str,
        items: list[dict[str, Any]],
        channel: str | None,
        occurred_at: datetime,
        customer_reference: dict[str, str] | None,
        customer_hint: dict[str, Any] | None,
    ) -> None:
        self.source = source
        self.order_id = order_id
        self.customer_id = customer_id
        self.amount = amount
        self.currency = currency
        self.items = [dict(i) for i in items]
        self.channel = channel
        self.occurred_at = occurred_at
        self.customer_reference = customer_reference
        self.customer_hint = customer_hint
