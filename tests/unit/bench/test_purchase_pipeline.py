"""The purchases `crm bench purchase-ingestion` sends through the whole pipeline."""

from collections import Counter

from bench.purchase_pipeline import KNOWN_SOURCE, UNSEEN_SOURCE, mixed_purchases
from services.sales.ingestion import parse_purchase


def test_half_the_purchases_name_a_customer_no_purchase_named_before() -> None:
    messages, known, unseen = mixed_purchases(20_001)
    parsed = [parse_purchase(value) for _, value in messages]
    references = Counter(
        (p.customer_reference.source, p.customer_reference.source_customer_id)
        for p in parsed
        if p.customer_reference is not None
    )
    first_seen = [r for r in references if r[0] == UNSEEN_SOURCE]
    registered = [r for r in references if r[0] == KNOWN_SOURCE]
    assert len(parsed) == 20_001
    assert unseen == len(first_seen) == 10_000
    assert all(references[r] == 1 for r in first_seen)
    assert sorted(registered) == [(KNOWN_SOURCE, f"K-{n:06d}") for n in range(known)]
    assert sum(references[r] for r in registered) == 10_001
    assert len({p.order_id for p in parsed}) == 20_001
