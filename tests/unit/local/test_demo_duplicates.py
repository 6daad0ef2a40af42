"""The demo data's deliberate duplicates are what duplicate detection finds among the
demo customers (the queue over HTTP: `tests/e2e/test_customer_duplicates.py`)."""

from __future__ import annotations

from local.demo.customer_generator import demo_customers
from local.demo.customers import DEFAULT_COUNT
from local.demo.duplicates import demo_duplicates
from services.customer.duplicates import find_duplicates, profile_of


def test_every_deliberate_duplicate_is_found_with_its_kind_of_evidence() -> None:
    customers = demo_customers(DEFAULT_COUNT)
    planted = demo_duplicates(customers)
    bodies = customers + [body for _, body in planted]
    profiles = [
        profile_of(
            str(i), b["name"], contacts=b.get("contacts", []), addresses=b.get("addresses", [])
        )
        for i, b in enumerate(bodies)
    ]
    found = {(m.a, m.b): {e.kind for e in m.evidence} for m in find_duplicates(profiles)}
    expected = [str(len(customers) + n) for n in range(len(planted))]
    pairs = {
        (str(index), duplicate) for (index, _), duplicate in zip(planted, expected, strict=True)
    }
    assert pairs <= set(found)
    kinds = [found[pair] for pair in sorted(pairs, key=lambda p: p[1])]
    assert "phone" in kinds[0]  # the consumer's mobile typed another way
    assert {"name", "city", "contact"} <= kinds[1]  # the company without 有限公司
    assert "email" in kinds[2]  # the e-mail in capitals
