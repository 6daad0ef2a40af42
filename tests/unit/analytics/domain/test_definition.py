"""Segment definitions (`services.analytics.domain.definition`): a valid rule, and a new
version only when something changed."""

from __future__ import annotations

import pytest

from services.analytics.domain.definition import SegmentDefinition
from services.analytics.domain.rules import RuleError


def test_a_segment_definition_refuses_an_invalid_rule_and_versions_changes() -> None:
    with pytest.raises(RuleError):
        SegmentDefinition(key="x", name="x", description="", rule={"field": "nope"})
    rule = {"field": "region", "op": "eq", "value": "华东"}
    definition = SegmentDefinition(key="east", name="华东", description="", rule=rule)
    assert definition.version == 1
    assert definition.change(name="华东", description="", rule=rule) is False
    assert definition.change(name="华东", description="", rule={**rule, "value": "华北"})
    assert definition.version == 2
