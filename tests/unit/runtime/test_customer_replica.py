"""The customer replica a service keeps from the customer topic
(`services.runtime.customer_replica`): names and opt-outs."""

from __future__ import annotations

import uuid

from contracts import customer as customer_contract
from services.runtime.customer_replica import fold_customer
from tests.support.events import envelope

CUSTOMER = uuid.uuid4()


def test_the_customer_row_follows_names_and_opt_outs() -> None:
    registered = customer_contract.CustomerRegistered.model_validate(
        {"name": "华信", "kind": "business", "channel_preferences": {"opted_out": ["sms"]}}
    )
    row = fold_customer(None, envelope(CUSTOMER, 1, registered))
    assert row is not None and row["opted_out_channels"] == ["sms"]
    changed = customer_contract.ChannelPreferencesChanged.model_validate(
        {"channel_preferences": {"preferred": ["wechat"], "opted_out": ["phone", "email"]}}
    )
    row = fold_customer(row, envelope(CUSTOMER, 2, changed))
    assert row is not None
    assert (row["preferred_channels"], row["opted_out_channels"]) == (
        ["wechat"],
        ["phone", "email"],
    )
    renamed = customer_contract.CustomerProfileChanged(name="华信贸易", changed=["name"])
    assert fold_customer(row, envelope(CUSTOMER, 3, renamed))["name"] == "华信贸易"  # type: ignore[index]
    assert fold_customer(None, envelope(CUSTOMER, 2, changed)) is None
