"""Every filter `/profiles` applies is in its OpenAPI document, and nothing else is
taken: an unknown filter is refused, never ignored."""

from __future__ import annotations

from services.analytics.queries.profiles import PROFILE_FILTERS
from tests.support.routes import DEFINITIONS, app_of, operations


def test_every_profile_filter_is_documented() -> None:
    (operation,) = [
        op
        for method, path, op in operations(app_of(DEFINITIONS["analytics"]))
        if (method, path) == ("GET", "/profiles")
    ]
    documented = {p["name"] for p in operation["parameters"] if p["in"] == "query"}
    assert set(PROFILE_FILTERS) <= documented
    assert documented - set(PROFILE_FILTERS) == {
        "segment",
        "churn_risk",
        "limit",
        "cursor",
        "format",
    }
