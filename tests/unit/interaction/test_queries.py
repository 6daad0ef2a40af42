"""Contact plans' channel choice (`services.interaction.queries`): a refused channel is
replaced by one the customer allows."""

from __future__ import annotations

from services.interaction.queries import channel_to_use


def test_a_refused_channel_is_replaced_by_one_the_customer_allows() -> None:
    assert channel_to_use("phone", [], []) == "phone"
    assert channel_to_use("phone", ["wechat"], ["phone"]) == "wechat"
    assert channel_to_use("email", [], ["email", "phone"]) == "sms"
    assert channel_to_use("phone", [], ["phone", "sms", "email", "wechat"]) is None
    assert channel_to_use("visit", [], ["phone", "sms", "email", "wechat"]) == "visit"
