"""Merging customers field by field and undoing the merge, on the in-memory event store."""

from __future__ import annotations

from typing import Any

import pytest

from services.customer import merges
from services.customer.application import CustomerApplication
from services.customer.merging import MergeRule
from services.customer.publishing import to_contract
from services.runtime.errors import Conflict, RuleViolation

CLASSIFICATION = {
    "importance_tier": "ordinary",
    "loyalty_stage": "new",
    "value_behaviour": None,
    "relationship_level": "basic",
}


def register(app: CustomerApplication, **fields: Any) -> Any:
    return app.register(**{"kind": "business", "classification": dict(CLASSIFICATION), **fields}).id


def comparable(state: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in state.items() if k not in ("version", "updated_at")}


@pytest.fixture
def app() -> CustomerApplication:
    return CustomerApplication()


def test_the_survivor_keeps_its_values_and_takes_what_it_lacks(app: CustomerApplication) -> None:
    survivor = register(
        app,
        name="华信贸易",
        tags=["vip"],
        contacts=[{"contact_id": "c1", "name": "张伟", "phones": ["+86 138"], "emails": []}],
    )
    absorbed = register(
        app,
        name="华信",
        industry="贸易",
        tags=["vip", "shop"],
        contacts=[
            {"contact_id": "c1", "name": "刘洋", "phones": [], "emails": []},
            {"contact_id": "c2", "name": "张伟", "phones": ["+86 138"], "emails": []},
        ],
        addresses=[{"label": "office", "line1": "天河路 1 号", "city": "广州", "country": "CN"}],
        references=[{"source": "shop-cn", "source_customer_id": "U-1"}],
        channel_preferences={"preferred": [], "opted_out": ["sms"]},
    )
    _, merged = merges.merge(app, survivor, [absorbed])
    state = merged.as_dict()
    assert state["name"] == "华信贸易" and state["industry"] == "贸易"
    assert state["tags"] == ["vip", "shop"]
    # the same person is not carried twice; a contact id in use is carried under another
    assert [(c["contact_id"], c["name"]) for c in state["contacts"]] == [
        ("c1", "张伟"),
        (f"{absorbed.hex[:8]}-c1", "刘洋"),
    ]
    assert state["addresses"][0]["label"] == "office"
    assert state["references"] == [{"source": "shop-cn", "source_customer_id": "U-1"}]
    assert state["channel_preferences"]["opted_out"] == ["sms"]
    assert app.customer(absorbed).merged_into == survivor
    published = [to_contract(e) for e in app.events.get(absorbed)]
    assert published[-1] is not None and published[-1].event_type == "customer.merged"
    assert str(published[-1].payload.survivor_id) == str(survivor)


def test_a_persons_choice_and_the_newest_rule(app: CustomerApplication) -> None:
    survivor = register(app, name="老名字", owner="李娜", region="华东")
    absorbed = register(app, name="新名字", owner="王芳", region="华南")
    _, merged = merges.merge(app, survivor, [absorbed], MergeRule.NEWEST, {"region": survivor})
    assert (merged.name, merged.owner, merged.region) == ("新名字", "王芳", "华东")
    with pytest.raises(RuleViolation, match="not in this merge"):
        other = register(app, name="甲")
        merges.merge(app, other, [register(app, name="乙")], choices={"name": survivor})


def test_undoing_restores_the_survivor_and_frees_the_absorbed(app: CustomerApplication) -> None:
    survivor = register(app, name="华信贸易", tags=["vip"])
    absorbed = register(app, name="华信", industry="贸易", tags=["shop"])
    before = comparable(app.customer(survivor).as_dict())
    record, _ = merges.merge(app, survivor, [absorbed])
    with pytest.raises(Conflict, match="merged into"):
        app.tag(absorbed, ["x"])
    _, undone = merges.unmerge(app, record.id)
    assert comparable(undone.as_dict()) == before
    assert app.customer(absorbed).merged_into is None
    app.tag(absorbed, ["x"])  # its own customer again
    with pytest.raises(Conflict, match="undone already"):
        merges.unmerge(app, record.id)


def test_a_change_made_during_the_merge_stays(app: CustomerApplication) -> None:
    survivor = register(app, name="华信贸易")
    absorbed = register(app, name="华信", industry="贸易", tags=["shop"])
    record, _ = merges.merge(app, survivor, [absorbed])
    app.change_profile(survivor, {"industry": "零售"})
    app.tag(survivor, ["new"])
    _, undone = merges.unmerge(app, record.id)
    assert undone.industry == "零售"
    assert undone.tags == ["new"]


def test_merges_that_cannot_be_made_are_refused(app: CustomerApplication) -> None:
    a, b, c = (register(app, name=n) for n in ("甲", "乙", "丙"))
    with pytest.raises(RuleViolation, match="itself"):
        merges.merge(app, a, [a])
    merges.merge(app, a, [b])
    with pytest.raises(RuleViolation, match="merged into"):
        merges.merge(app, c, [b])
    with pytest.raises(RuleViolation, match="survivor of merge"):
        merges.merge(app, c, [a])


def test_a_merged_customer_can_still_be_erased(app: CustomerApplication) -> None:
    survivor, absorbed = register(app, name="甲"), register(app, name="乙")
    merges.merge(app, survivor, [absorbed])
    assert app.erase(absorbed, "DSR-1").erased
