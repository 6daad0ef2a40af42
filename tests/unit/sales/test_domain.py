"""The rules an opportunity obeys, and purchases recorded once per (source, order id)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest

from contracts import parse_event
from services.runtime.errors import Conflict, NotFound, RuleViolation
from services.sales.application import NewPurchase, SalesApplication
from services.sales.domain import Opportunity, purchase_id
from services.sales.publishing import to_contract

LICENCE = {"product": "企业版年度许可", "quantity": Decimal(50), "unit_price": Decimal("1200.00")}


def opened(app: SalesApplication, **overrides: Any) -> Opportunity:
    fields: dict[str, Any] = {
        "customer_id": uuid.uuid4(),
        "description": "ERP 升级",
        "products": [LICENCE],
        "expected_amount": None,
        "currency": "CNY",
        "expected_close_date": date(2026, 12, 31),
        "region": "华东",
        "owner": "李娜",
        **overrides,
    }
    return app.open_opportunity(**fields)


def published(app: SalesApplication, aggregate_id: uuid.UUID) -> list[Any]:
    """The aggregate's events as consumers see them: through the contract and back."""
    envelopes = [to_contract(e) for e in app.events.get(aggregate_id)]
    return [parse_event(e.model_dump_json().encode()) for e in envelopes if e is not None]


def test_an_opportunity_opens_with_the_stage_default_probability_and_line_total() -> None:
    app = SalesApplication()
    opportunity = opened(app)
    assert opportunity.expected_amount == Decimal("60000.00")
    assert (opportunity.stage, opportunity.probability) == ("lead", 10)
    with pytest.raises(RuleViolation, match="at least one product"):
        opened(app, products=[])
    with pytest.raises(RuleViolation, match="opens in one of"):
        opened(app, stage="won")
    assert opened(app, stage="proposal", probability=65).probability_overridden


def test_stages_move_forward_and_backward_and_closed_ones_need_reopening() -> None:
    app = SalesApplication()
    deal = opened(app)
    app.move_stage(deal.id, "proposal")
    app.move_stage(deal.id, "qualified")
    with pytest.raises(RuleViolation, match="lost_reason"):
        app.move_stage(deal.id, "lost")
    app.move_stage(deal.id, "lost", lost_reason="预算取消")
    with pytest.raises(RuleViolation, match="reopen"):
        app.move_stage(deal.id, "proposal")
    with pytest.raises(RuleViolation, match="open stage"):
        app.move_stage(deal.id, "won", reopen=True)
    with pytest.raises(RuleViolation, match="reopen it"):
        app.change_opportunity(deal.id, {"expected_amount": Decimal(1)})
    app.move_stage(deal.id, "negotiation", reopen=True)

    moves = [
        (e.payload.from_stage, e.payload.to_stage, e.payload.move, e.payload.probability)
        for e in published(app, deal.id)
        if e.event_type == "sales.opportunity_stage_changed"
    ]
    assert moves == [
        ("lead", "proposal", "forward", 50),
        ("proposal", "qualified", "backward", 25),
        ("qualified", "lost", "forward", 0),
        ("lost", "negotiation", "reopened", 75),
    ]


def test_changes_are_events_and_a_change_to_the_same_value_records_nothing() -> None:
    app = SalesApplication()
    deal = opened(app)
    app.change_opportunity(
        deal.id,
        {
            "expected_amount": Decimal("58000"),
            "expected_close_date": date(2027, 1, 15),
            "owner": "王磊",
            "probability": 30,
        },
    )
    version = app.opportunity(deal.id).version
    app.change_opportunity(deal.id, {"owner": "王磊", "expected_amount": Decimal("58000.00")})
    assert app.opportunity(deal.id).version == version
    app.change_opportunity(deal.id, {"probability": None})
    types = [e.event_type for e in published(app, deal.id)]
    assert types == [
        "sales.opportunity_opened",
        "sales.opportunity_amount_changed",
        "sales.opportunity_close_date_changed",
        "sales.opportunity_owner_changed",
        "sales.opportunity_probability_changed",
        "sales.opportunity_probability_changed",
    ]
    assert app.opportunity(deal.id).probability == 10
    with pytest.raises(Conflict, match="version"):
        app.change_opportunity(deal.id, {"owner": "李娜"}, expected_version=2)


def test_predictions_are_marked_held_or_missed_when_the_actual_result_arrives() -> None:
    app = SalesApplication()
    deal = opened(app)
    _, demo = app.plan_activity(
        deal.id,
        {
            "kind": "demo",
            "scheduled_on": date(2026, 12, 1),
            "owner": None,
            "people": ["张伟"],
            "description": "演示",
            "predicted_result": "进入报价",
        },
    )
    with pytest.raises(RuleViolation, match="prediction_held"):
        app.complete_activity(
            deal.id, demo, occurred_on=date(2026, 12, 1), actual_result="好", prediction_held=None
        )
    app.complete_activity(
        deal.id, demo, occurred_on=date(2026, 12, 2), actual_result="要试点", prediction_held=False
    )
    with pytest.raises(Conflict, match="already"):
        app.complete_activity(
            deal.id, demo, occurred_on=date(2026, 12, 2), actual_result="x", prediction_held=True
        )
    with pytest.raises(NotFound):
        app.complete_activity(
            deal.id, "nope", occurred_on=date(2026, 12, 2), actual_result="x", prediction_held=None
        )
    completed = published(app, deal.id)[-1].payload
    assert (completed.owner, completed.predicted_result, completed.prediction_held) == (
        "李娜",
        "进入报价",
        False,
    )


def test_quotes_are_versioned_and_a_contract_is_paid_down_to_zero() -> None:
    app = SalesApplication()
    deal = opened(app)
    quote: dict[str, Any] = {
        "quote_id": None,
        "lines": [LICENCE],
        "currency": "CNY",
        "valid_until": date(2099, 1, 1),
        "note": None,
    }
    _, quote_id, first = app.issue_quote(deal.id, **quote)
    _, _, second = app.issue_quote(deal.id, **{**quote, "quote_id": quote_id})
    assert (first, second) == (1, 2)

    contract: dict[str, Any] = {
        "amount": Decimal("59000"),
        "currency": "CNY",
        "signed_on": date(2026, 12, 20),
    }
    with pytest.raises(RuleViolation, match="won"):
        app.sign_contract(deal.id, **contract)
    app.move_stage(deal.id, "won")
    app.sign_contract(deal.id, **contract)
    with pytest.raises(Conflict, match="already has contract"):
        app.sign_contract(deal.id, **contract)

    def pay(amount: str, currency: str = "CNY") -> Opportunity:
        opportunity, _ = app.receive_payment(
            deal.id,
            amount=Decimal(amount),
            currency=currency,
            received_on=date(2027, 1, 5),
            reference=None,
        )
        return opportunity

    with pytest.raises(RuleViolation, match="in CNY"):
        pay("100", "USD")
    assert pay("30000").outstanding == Decimal("29000")
    with pytest.raises(RuleViolation, match="exceeds the outstanding balance of 29000"):
        pay("29000.01")
    assert pay("29000").outstanding == Decimal(0)
    with pytest.raises(RuleViolation, match="signed contract and cannot be reopened"):
        app.move_stage(deal.id, "negotiation", reopen=True)
    payment = published(app, deal.id)[-1]
    assert payment.payload.outstanding_after == Decimal(0)
    assert payment.customer_id == deal.customer_id


def test_a_purchase_is_recorded_once_per_source_and_order() -> None:
    app = SalesApplication()
    customer_id = uuid.uuid4()

    def purchase(source: str, order_id: str) -> NewPurchase:
        return NewPurchase(
            source=source,
            order_id=order_id,
            customer_id=customer_id,
            amount=Decimal("99.90"),
            currency="CNY",
            items=[{"name": "标准版月度订阅", "quantity": "1"}],
            channel="online",
            occurred_at=datetime(2026, 11, 20, 2, tzinfo=UTC),
            customer_reference=None,
            customer_hint=None,
        )

    recorded = app.record_purchases([purchase("shop-cn", "SO-1"), purchase("shop-cn", "SO-1")])
    assert recorded == [purchase_id("shop-cn", "SO-1")]
    assert app.record_purchases([purchase("shop-cn", "SO-1"), purchase("erp", "SO-1")]) == [
        purchase_id("erp", "SO-1")
    ]
    event = published(app, purchase_id("shop-cn", "SO-1"))[0]
    assert event.event_type == "sales.purchase_recorded"
    assert event.customer_id == customer_id
    assert event.occurred_at == datetime(2026, 11, 20, 2, tzinfo=UTC)
    assert event.payload.amount == Decimal("99.90")
