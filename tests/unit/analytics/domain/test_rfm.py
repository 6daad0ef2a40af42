"""RFM scoring (`services.analytics.domain.rfm`): quintiles and their tie rule, named
segments, value tiers."""

from __future__ import annotations

from services.analytics.domain import rfm


def test_quintile_boundaries_are_percentile_disc() -> None:
    assert rfm.boundaries(list(range(1, 11))) == [2, 4, 6, 8]
    assert rfm.boundaries([5]) == [5, 5, 5, 5]
    assert rfm.boundaries([]) is None


def test_scores_split_a_population_into_fifths() -> None:
    values = list(range(1, 101))
    bounds = rfm.boundaries(values)
    scores = [rfm.score(v, bounds) for v in values]
    assert [scores.count(s) for s in range(1, 6)] == [20, 20, 20, 20, 20]


def test_ties_get_the_same_and_lower_score() -> None:
    values = [1] * 70 + [2, 3, 4, 5, 6, 7, 8, 9, 10, 11] * 3
    bounds = rfm.boundaries(values)
    assert bounds is not None and bounds[:3] == [1, 1, 1]
    assert {rfm.score(v, bounds) for v in values if v == 1} == {1}
    assert rfm.score(bounds[3], bounds) == 4  # equal to a boundary: the lower score
    assert rfm.score(None, bounds) is None


def test_every_score_combination_has_exactly_one_named_segment() -> None:
    seen = {
        rfm.named_segment(r, f, m) for r in range(1, 6) for f in range(1, 6) for m in range(1, 6)
    }
    assert seen == set(rfm.NAMED_SEGMENTS)
    assert rfm.named_segment(5, 5, 5) == "champions"
    assert rfm.named_segment(5, 1, 1) == "new"
    assert rfm.named_segment(4, 1, 1) == "promising"
    assert rfm.named_segment(4, 2, 2) == "potential_loyalist"
    assert rfm.named_segment(3, 3, 3) == "loyal"
    assert rfm.named_segment(3, 2, 2) == "need_attention"
    assert rfm.named_segment(3, 1, 1) == "about_to_sleep"
    assert rfm.named_segment(1, 5, 5) == "cannot_lose"
    assert rfm.named_segment(2, 4, 3) == "at_risk"
    assert rfm.named_segment(2, 1, 2) == "hibernating"
    assert rfm.named_segment(1, 1, 1) == "lost"
    assert rfm.named_segment(None, 1, 1) is None


def test_value_tiers_follow_the_monetary_score() -> None:
    assert [rfm.value_tier(m) for m in (5, 4, 3, 2, 1, None)] == [
        "top", "high", "medium", "low", "low", "none"
    ]  # fmt: skip
