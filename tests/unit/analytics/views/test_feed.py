"""The live feed (`services.analytics.views.feed`) leaves out the ledger's events unless
they are asked for by type: a fit records a few predictions for every customer, which
would drown the segment changes and churn warnings a screen follows."""

from __future__ import annotations

from contracts.analytics import EVENTS
from services.analytics.views.feed import ledger


def test_only_the_ledgers_events_are_left_out_by_default() -> None:
    left_out = {e.event_type for e in EVENTS if ledger(e.event_type)}
    assert left_out == {"analytics.prediction_made", "analytics.prediction_settled"}
