"""The steps `crm bench purchase-ingestion` times for a purchase in the sales service."""

from bench.recording_costs import STEPS, recording_costs


def test_every_step_of_a_purchase_is_timed() -> None:
    costs = recording_costs(count=40, rounds=1)
    assert set(costs) == {name for name, _ in STEPS}
    assert all(value > 0 for value in costs.values())
