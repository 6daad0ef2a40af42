"""Sales commands and event-store queries: the service layer of the sales service.

Opportunity commands load the opportunity, check the caller's expected version
(optimistic concurrency), let the aggregate decide, and save. Purchases from other
systems are recorded in batches: many new aggregates in one `save()`, one transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import RecordConflictError

from services.runtime.errors import NotFound
from services.runtime.storage.eventstore import EventSourcedApplication
from services.sales.domain import Opportunity, Purchase, purchase_id
from services.sales.publishing import to_contract


@dataclass(frozen=True)
class NewPurchase:
    """A validated inbound purchase, its customer resolved."""

    source: str
    order_id: str
    customer_id: UUID
    amount: Decimal
    currency: str
    items: list[dict[str, Any]]
    channel: str | None
    occurred_at: datetime
    customer_reference: dict[str, str] | None
    customer_hint: dict[str, Any] | None

    def aggregate(self) -> Purchase:
        return Purchase(
            source=self.source,
            order_id=self.order_id,
            customer_id=self.customer_id,
            amount=self.amount,
            currency=self.currency,
            items=self.items,
            channel=self.channel,
            occurred_at=self.occurred_at,
            customer_reference=self.customer_reference,
            customer_hint=self.customer_hint,
        )


class SalesApplication(EventSourcedApplication):
    name = "Sales"

    # Opportunities -------------------------------------------------------------------

    def open_opportunity(self, **fields: Any) -> Opportunity:
        opportunity = Opportunity.open(**fields)
        self.save(opportunity)
        return opportunity

    def move_stage(
        self,
        opportunity_id: UUID,
        stage: str,
        *,
        probability: int | None = None,
        lost_reason: str | None = None,
        reopen: bool = False,
        note: str | None = None,
        expected_version: int | None = None,
    ) -> Opportunity:
        return self._change(
            opportunity_id,
            expected_version,
            lambda o: o.move_to(
                stage,
                probability=probability,
                lost_reason=lost_reason,
                reopen=reopen,
                note=note,
            ),
        )

    def change_opportunity(
        self,
        opportunity_id: UUID,
        changes: dict[str, Any],
        expected_version: int | None = None,
    ) -> Opportunity:
        """Apply the named changes; each one that changes something is its own event."""

        def command(opportunity: Opportunity) -> None:
            if "expected_amount" in changes or "currency" in changes:
                opportunity.change_amount(
                    changes.get("expected_amount", opportunity.expected_amount),
                    changes.get("currency"),
                )
            if "expected_close_date" in changes:
                opportunity.change_close_date(changes["expected_close_date"])
            if "owner" in changes:
                opportunity.change_owner(changes["owner"])
            if "probability" in changes:
                opportunity.set_probability(changes["probability"])

        return self._change(opportunity_id, expected_version, command)

    def plan_activity(
        self, opportunity_id: UUID, activity: dict[str, Any], expected_version: int | None = None
    ) -> tuple[Opportunity, str]:
        """Record a key activity; with `actual_result` it is recorded as done at once."""
        activity = dict(activity)
        activity_id = uuid.uuid4().hex[:12]
        actual_result = activity.pop("actual_result", None)
        prediction_held = activity.pop("prediction_held", None)

        def command(opportunity: Opportunity) -> None:
            opportunity.plan_activity(activity_id=activity_id, **activity)
            if actual_result is not None:
                opportunity.complete_activity(
                    activity_id,
                    occurred_on=activity["scheduled_on"],
                    actual_result=actual_result,
                    prediction_held=prediction_held,
                )

        return self._change(opportunity_id, expected_version, command), activity_id

    def complete_activity(
        self,
        opportunity_id: UUID,
        activity_id: str,
        *,
        occurred_on: date,
        actual_result: str,
        prediction_held: bool | None,
        expected_version: int | None = None,
    ) -> Opportunity:
        return self._change(
            opportunity_id,
            expected_version,
            lambda o: o.complete_activity(
                activity_id,
                occurred_on=occurred_on,
                actual_result=actual_result,
                prediction_held=prediction_held,
            ),
        )

    def issue_quote(
        self,
        opportunity_id: UUID,
        *,
        quote_id: str | None,
        lines: list[dict[str, Any]],
        currency: str,
        valid_until: date,
        note: str | None,
        expected_version: int | None = None,
    ) -> tuple[Opportunity, str, int]:
        quote = quote_id or uuid.uuid4().hex[:12]
        versions: list[int] = []
        opportunity = self._change(
            opportunity_id,
            expected_version,
            lambda o: versions.append(
                o.issue_quote(
                    quote_id=quote,
                    lines=lines,
                    currency=currency,
                    valid_until=valid_until,
                    issued_on=datetime.now(UTC).date(),
                    note=note,
                )
            ),
        )
        return opportunity, quote, versions[-1]

    def sign_contract(
        self,
        opportunity_id: UUID,
        *,
        amount: Decimal,
        currency: str,
        signed_on: date,
        expected_version: int | None = None,
    ) -> tuple[Opportunity, str]:
        contract_id = uuid.uuid4().hex[:12]
        opportunity = self._change(
            opportunity_id,
            expected_version,
            lambda o: o.sign_contract(
                contract_id=contract_id, amount=amount, currency=currency, signed_on=signed_on
            ),
        )
        return opportunity, contract_id

    def receive_payment(
        self,
        opportunity_id: UUID,
        *,
        amount: Decimal,
        currency: str,
        received_on: date,
        reference: str | None,
        expected_version: int | None = None,
    ) -> tuple[Opportunity, str]:
        payment_id = uuid.uuid4().hex[:12]
        opportunity = self._change(
            opportunity_id,
            expected_version,
            lambda o: o.receive_payment(
                payment_id=payment_id,
                amount=amount,
                currency=currency,
                received_on=received_on,
                reference=reference,
            ),
        )
        return opportunity, payment_id

    # Purchases -----------------------------------------------------------------------

    def record_purchases(self, purchases: Sequence[NewPurchase]) -> list[UUID]:
        """Record purchases not recorded before, all in one transaction.

        The caller has left out those whose ids exist already; should another replica
        have recorded some meanwhile, they are saved one by one and the repeats skipped.
        Returns the ids recorded now.

        The new purchases' events go to the event store in one `put`, which is what
        `save(*aggregates)` does after checking each object against eventsourcing's
        runtime-checkable protocols; on Python 3.11 those checks cost more than a fifth
        of the CPU time of recording a purchase, and the objects here are known.
        """
        unique: dict[UUID, NewPurchase] = {}
        for purchase in purchases:
            unique.setdefault(purchase_id(purchase.source, purchase.order_id), purchase)
        if not unique:
            return []
        try:
            self.events.put([e for p in unique.values() for e in p.aggregate().collect_events()])
        except RecordConflictError:
            # Another replica recorded some of them meanwhile: each alone, repeats skipped.
            for aggregate_id, purchase in list(unique.items()):
                try:
                    self.save(purchase.aggregate())
                except RecordConflictError:
                    del unique[aggregate_id]
        return list(unique)

    def purchase(self, aggregate_id: UUID) -> Purchase:
        try:
            purchase: Purchase = self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            raise NotFound(f"no purchase with id {aggregate_id}") from None
        return purchase

    # Queries on the event store ------------------------------------------------------

    def opportunity(self, opportunity_id: UUID) -> Opportunity:
        return self.load(opportunity_id, Opportunity, "opportunity")

    def opportunity_as_of(
        self, opportunity_id: UUID, moment: datetime
    ) -> tuple[Opportunity, list[Any]]:
        """The opportunity as it was at `moment`, and its events up to then."""
        return self.load_as_of(opportunity_id, Opportunity, moment, "opportunity", "opened")

    def history(self, opportunity_id: UUID) -> list[dict[str, Any]]:
        """Every change to the opportunity: what, when, by whom, in which request."""
        self.opportunity(opportunity_id)  # 404 for ids of other aggregates (purchases)
        return self.change_history(opportunity_id, to_contract, what="opportunity")

    def _change(
        self,
        opportunity_id: UUID,
        expected_version: int | None,
        command: Callable[[Opportunity], Any],
    ) -> Opportunity:
        return self.change(
            opportunity_id, expected_version, command, kind=Opportunity, what="opportunity"
        )
