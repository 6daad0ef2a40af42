"""An opportunity as it was at a past moment, from the event store.

The read models keep only the present; `GET /opportunities/{id}?as_of=...` replays the
opportunity's events up to the moment (`SalesApplication.opportunity_as_of`) and answers
the same `OpportunityDetail` the present has: the aggregate's state, and from the events
what only they tell (quotes, stage moves, when it was opened, closed and last changed).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from services.sales.domain import Opportunity
from services.sales.publishing import to_contract
from services.sales.views.responses import (
    ActivityView,
    ContractView,
    OpportunityDetail,
    PaymentView,
    QuoteView,
)

CENT = Decimal("0.01")


def detail_as_of(
    opportunity: Opportunity, events: list[Any], customer_name: str | None, moment: dt.datetime
) -> OpportunityDetail:
    """`opportunity` at the version of the last of `events`, as the present is answered;
    overdue counts from the day of `moment`."""
    envelopes = [e for e in map(to_contract, events) if e is not None]
    moves = [e for e in envelopes if e.event_type == "sales.opportunity_stage_changed"]
    closed_at = None
    if opportunity.is_closed and moves:
        closed_at = moves[-1].occurred_at
    late = (moment.date() - opportunity.expected_close_date).days
    contract = opportunity.contract
    return OpportunityDetail(
        opportunity_id=opportunity.id,
        customer_id=opportunity.customer_id,
        customer_name=customer_name,
        description=opportunity.description,
        products=opportunity.products,
        expected_amount=opportunity.expected_amount,
        currency=opportunity.currency,
        weighted_amount=(opportunity.expected_amount * opportunity.probability / 100).quantize(
            CENT
        ),
        expected_close_date=opportunity.expected_close_date,
        region=opportunity.region,
        owner=opportunity.owner,
        stage=opportunity.stage,
        probability=opportunity.probability,
        probability_overridden=opportunity.probability_overridden,
        lost_reason=opportunity.lost_reason,
        backward_moves=sum(1 for e in moves if e.payload.move == "backward"),
        reopened=sum(1 for e in moves if e.payload.move == "reopened"),
        opened_at=envelopes[0].occurred_at,
        closed_at=closed_at,
        version=envelopes[-1].aggregate_version,
        updated_at=envelopes[-1].occurred_at,
        days_overdue=late if not opportunity.is_closed and late > 0 else None,
        activities=sorted(
            (
                ActivityView.model_validate({"occurred_on": None, **activity})
                for activity in opportunity.activities.values()
            ),
            key=lambda activity: activity.scheduled_on,
        ),
        quotes=[
            QuoteView.model_validate({**e.payload.model_dump(), "issued_at": e.occurred_at})
            for e in envelopes
            if e.event_type == "sales.quote_issued"
        ],
        contract=None
        if contract is None
        else ContractView(
            contract_id=contract["contract_id"],
            opportunity_id=opportunity.id,
            customer_id=opportunity.customer_id,
            customer_name=customer_name,
            owner=opportunity.owner,
            amount=contract["amount"],
            currency=contract["currency"],
            signed_on=contract["signed_on"],
            paid=sum((p["amount"] for p in opportunity.payments), Decimal(0)),
            outstanding=opportunity.outstanding,
            payment_count=len(opportunity.payments),
            payments=[PaymentView.model_validate(p) for p in opportunity.payments],
        ),
    )
