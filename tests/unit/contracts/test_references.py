"""The customer id another system's reference gives (`contracts.references`)."""

from __future__ import annotations

from contracts.references import CustomerReference, customer_id_for_reference


def test_the_derived_id_depends_only_on_the_reference() -> None:
    a = CustomerReference(source="shop-cn", source_customer_id="U-1")
    b = CustomerReference(source="erp", source_customer_id="U-1")
    assert customer_id_for_reference(a) == customer_id_for_reference(a.model_copy())
    assert customer_id_for_reference(a) != customer_id_for_reference(b)
