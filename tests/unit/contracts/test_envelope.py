"""Envelopes built by another system with `contracts.build_envelope`."""

from __future__ import annotations

import uuid

from contracts import (
    build_envelope,
    parse_event,
    serialize_event,
)
from contracts import customer as contract


def test_build_envelope_makes_a_valid_event() -> None:
    customer_id = uuid.uuid4()
    event = build_envelope(
        contract.CustomerTagged(tags=["vip"]), customer_id=customer_id, producer="erp"
    )
    assert (event.event_type, event.schema_version) == ("customer.tagged", 2)
    assert event.occurred_at == event.recorded_at
    assert parse_event(serialize_event(event)) == event
