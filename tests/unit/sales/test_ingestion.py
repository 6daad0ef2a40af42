"""The inbound purchase contract: its example is valid, bad messages get a clear reason,
and a purchase lands on the customer its reference names."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal
from typing import Any

import pytest

from contracts.inbound.purchases import PurchaseCompleted
from contracts.references import CustomerReference, customer_id_for_reference
from contracts.registry import ContractViolation
from services.runtime.messaging.reported_facts import customer_of
from services.sales.ingestion import new_purchase, parse_purchase

EXAMPLE: dict[str, Any] = PurchaseCompleted.model_json_schema()["examples"][0]


def raw(document: Any) -> bytes:
    return json.dumps(document, ensure_ascii=False).encode()


def without(field: str) -> dict[str, Any]:
    return {k: v for k, v in EXAMPLE.items() if k != field}


def test_the_documented_example_is_a_valid_purchase() -> None:
    message = parse_purchase(raw(EXAMPLE))
    assert message.amount == Decimal("1299.00")
    assert message.customer_reference == CustomerReference(
        source="shop-cn", source_customer_id="U-1029"
    )


@pytest.mark.parametrize(
    ("message", "reason", "detail"),
    [
        (None, "empty message", ""),
        (b'{"source": "shop-cn", "order_id": ', "malformed JSON", "Invalid JSON"),
        (raw([EXAMPLE]), "not a JSON object", ""),
        (raw(without("amount")), "missing field", "amount"),
        (raw(without("occurred_at")), "missing field", "occurred_at"),
        (raw({**EXAMPLE, "amount": "-1.00"}), "negative amount", "amount"),
        (raw({**EXAMPLE, "currency": "RMB"}), "unknown currency", "'RMB' is not a supported"),
        (raw({**EXAMPLE, "amount": "lots"}), "wrong type", "amount"),
        (raw({**EXAMPLE, "amount": True}), "wrong type", "amount"),
        (raw({**EXAMPLE, "items": {"sku": "x"}}), "wrong type", "items"),
        (raw({**EXAMPLE, "occurred_at": 1763890000}), "wrong type", "occurred_at"),
        (raw({**EXAMPLE, "customer_id": "C-1"}), "wrong type", "customer_id"),
        (raw(without("customer_reference")), "no customer named", "customer_id"),
        (raw({**EXAMPLE, "occurred_at": "2026-11-23T09:30:00"}), "invalid purchase", "timezone"),
    ],
)
def test_what_does_not_fit_is_rejected_with_a_reason(
    message: bytes | None, reason: str, detail: str
) -> None:
    with pytest.raises(ContractViolation) as rejected:
        parse_purchase(message)
    assert rejected.value.reason == reason
    assert detail in rejected.value.detail


def test_a_free_or_fully_discounted_order_is_a_purchase_of_no_value() -> None:
    for amount in (0, "0", "0.00"):
        purchase = parse_purchase(raw({**EXAMPLE, "amount": amount}))
        assert purchase.amount == 0
        assert purchase.model_dump(mode="json")["amount"] == "0.00"


def test_a_purchase_lands_on_the_known_customer_or_the_one_derived_from_its_reference() -> None:
    message = parse_purchase(raw(EXAMPLE))
    reference = CustomerReference(source="shop-cn", source_customer_id="U-1029")
    assert customer_of(message, {}) == customer_id_for_reference(reference)
    known = uuid.uuid4()
    assert customer_of(message, {("shop-cn", "U-1029"): known}) == known
    direct = uuid.uuid4()
    by_id = parse_purchase(raw({**EXAMPLE, "customer_id": str(direct)}))
    assert customer_of(by_id, {("shop-cn", "U-1029"): known}) == direct
    assert new_purchase(message, known).customer_id == known
