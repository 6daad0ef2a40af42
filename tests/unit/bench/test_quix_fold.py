"""The per-customer fold Quix Streams runs in `crm bench analytics-fold`."""

from typing import Any

from bench.quix_fold import fold_event


def envelope(event_type: str, occurred_at: str, **payload: Any) -> dict[str, Any]:
    return {"event_type": event_type, "occurred_at": occurred_at, "payload": payload}


def test_a_customers_events_fold_into_counts_amounts_and_the_last_purchase() -> None:
    events = [
        envelope("customer.registered", "2025-01-06T04:43:54+00:00", name="A"),
        envelope(
            "sales.purchase_recorded", "2025-10-01T02:20:54+00:00", amount="99.00", currency="EUR"
        ),
        envelope(
            "sales.purchase_recorded", "2025-04-12T15:11:54+00:00", amount="0.10", currency="EUR"
        ),
        envelope(
            "sales.purchase_recorded", "2025-05-19T19:14:54+00:00", amount="5", currency="CNY"
        ),
        envelope("sales.contract_signed", "2026-07-29T21:06:54+00:00", amount="36000.00"),
        envelope("interaction.logged", "2026-10-27T10:16:54+00:00", channel="phone"),
        envelope("interaction.ticket_opened", "2026-10-19T02:43:54+00:00", kind="complaint"),
    ]
    profile = None
    for event in events:
        profile = fold_event(profile, event)

    assert profile == {
        "events": 7,
        "purchases": 3,
        "cents": {"EUR": 9910, "CNY": 500},
        "last_purchase_on": "2025-10-01",
        "interactions": 1,
    }
