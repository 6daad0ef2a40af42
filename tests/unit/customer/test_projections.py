"""The customer directory fold: one row per customer, from events alone."""

from __future__ import annotations

import uuid

from contracts import customer as contract
from services.customer.projections import fold
from tests.support.events import envelope


def test_fold_follows_every_kind_of_change() -> None:
    cid = uuid.uuid4()
    contact = contract.ContactPerson(contact_id="c1", name="张伟")
    events = [
        envelope(cid, 1, contract.CustomerRegistered(name="华信", kind="business", tags=["a"])),
        envelope(cid, 2, contract.CustomerProfileChanged(region="华南", changed=["region"])),
        envelope(cid, 3, contract.ContactPersonAdded(contact=contact)),
        envelope(
            cid,
            4,
            contract.ContactPersonChanged(contact=contact.model_copy(update={"title": "总监"})),
        ),
        envelope(cid, 5, contract.CustomerTagged(tags=["b"])),
        envelope(cid, 6, contract.CustomerUntagged(tag="a")),
        envelope(
            cid,
            7,
            contract.CustomerClassified(
                classification=contract.Classification(importance_tier="vip")
            ),
        ),
        envelope(
            cid,
            8,
            contract.ChannelPreferencesChanged(
                channel_preferences=contract.ChannelPreferences(opted_out=["sms"])
            ),
        ),
    ]
    row = None
    for event in events:
        row = fold(row, event)
    assert row is not None
    assert row["region"] == "华南"
    assert row["contacts"] == [
        {"contact_id": "c1", "name": "张伟", "title": "总监", "phones": [], "emails": []}
    ]
    assert row["tags"] == ["b"]
    assert row["importance_tier"] == "vip"
    assert row["opted_out_channels"] == ["sms"]
    assert row["version"] == 8
    assert row["change_count"] == 8


def test_profile_change_clears_only_named_fields() -> None:
    cid = uuid.uuid4()
    row = fold(
        None,
        envelope(
            cid,
            1,
            contract.CustomerRegistered(
                name="x", kind="consumer", region="华东", industry="retail"
            ),
        ),
    )
    row = fold(
        row, envelope(cid, 2, contract.CustomerProfileChanged(industry=None, changed=["industry"]))
    )
    assert row is not None
    assert row["industry"] is None
    assert row["region"] == "华东"


def test_events_for_an_unregistered_customer_leave_no_row() -> None:
    assert fold(None, envelope(uuid.uuid4(), 2, contract.CustomerTagged(tags=["x"]))) is None
