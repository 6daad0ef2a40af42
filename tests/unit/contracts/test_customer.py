"""customer.tagged went from version 1 (one `tag`) to version 2 (`tags`): a version-1
message is read as version 2 and folds alike; a bad one is refused naming its version.
(The event store side: `tests/unit/customer/test_domain.py`.)"""

from __future__ import annotations

import uuid

import pytest

from contracts import ContractViolation, parse_event
from contracts import customer as contract
from services.customer.projections import fold
from tests.support.events import envelope


def v1_message(customer_id: uuid.UUID, version: int, tag: str) -> bytes:
    return (
        envelope(customer_id, version, contract.CustomerTaggedV1(tag=tag))
        .model_dump_json()
        .encode()
    )


def test_a_version_1_message_is_read_as_version_2() -> None:
    event = parse_event(v1_message(uuid.uuid4(), 2, "vip"))
    assert event.schema_version == 2
    assert isinstance(event.payload, contract.CustomerTagged)
    assert event.payload.tags == ["vip"]


def test_version_1_and_2_fold_alike() -> None:
    customer_id = uuid.uuid4()
    registered = envelope(customer_id, 1, contract.CustomerRegistered(name="x", kind="consumer"))
    old = parse_event(v1_message(customer_id, 2, "老客户"))
    new = parse_event(
        envelope(customer_id, 3, contract.CustomerTagged(tags=["vip", "老客户"]))
        .model_dump_json()
        .encode()
    )
    row = None
    for event in (registered, old, new):
        row = fold(row, event)
    assert row is not None and row["tags"] == ["老客户", "vip"]


def test_a_bad_version_1_payload_is_rejected_naming_its_version() -> None:
    raw = v1_message(uuid.uuid4(), 2, "x").replace(b'"tag":"x"', b'"tag":""')
    with pytest.raises(ContractViolation) as rejected:
        parse_event(raw)
    assert "version 1" in rejected.value.detail
