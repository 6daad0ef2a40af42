"""The value x satisfaction matrix (`services.analytics.domain.matrix`)."""

from __future__ import annotations

from services.analytics.domain import matrix


def test_value_satisfaction_quadrants() -> None:
    assert matrix.nps_category(9) == "promoter"
    assert matrix.nps_category(7) == "passive"
    assert matrix.nps_category(6) == "detractor"
    assert matrix.satisfaction(4.0, 0) == "high"  # CSAT decides when present
    assert matrix.satisfaction(None, 6) == "low"
    assert matrix.satisfaction(None, None) == "unknown"
    assert matrix.quadrant("top", "high") == "focus_and_consolidate"
    assert matrix.quadrant("high", "low") == "win_back"
    assert matrix.quadrant("medium", "high") == "maintain"
    assert matrix.quadrant("low", "low") == "let_go"
    assert matrix.quadrant("none", "high") is None
    assert matrix.quadrant("top", "unknown") is None
