"""Who is in a merge group, and how the fold cuts a batch at merges
(`services.analytics.projections.groups`, `fold.runs`)."""

from __future__ import annotations

import uuid
from typing import Any

from contracts import customer, customer_merges
from services.analytics.projections.fold import runs
from services.analytics.projections.groups import Groups
from tests.support.events import envelope


def test_a_group_is_its_survivor_and_the_customers_merged_into_it() -> None:
    survivor, first, second, alone = (uuid.UUID(int=n) for n in (1, 3, 2, 4))
    groups = Groups([(first, survivor), (second, survivor)])
    assert groups.members == {survivor: [survivor, second, first]}
    assert groups.touched([first, alone]) == [survivor]
    assert groups.touched([alone]) == []
    assert not Groups()


def test_a_batch_is_cut_after_each_merge_and_undone_merge() -> None:
    someone = uuid.uuid4()

    def tagged(n: int) -> Any:
        return envelope(someone, n, customer.CustomerTagged(tags=[f"t{n}"]))

    def merged(kind: Any) -> Any:
        return envelope(someone, 9, kind(merge_id=uuid.uuid4(), survivor_id=uuid.uuid4()))

    a, b, c = tagged(1), tagged(2), tagged(3)
    m, u = merged(customer_merges.CustomerMerged), merged(customer_merges.CustomerUnmerged)
    assert runs([a, m, b, u, c]) == [[a, m], [b, u], [c]]
    assert runs([a, b]) == [[a, b]]
    assert runs([m]) == [[m]]
    assert runs([]) == [[]]
