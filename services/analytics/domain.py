"""The analytics service's aggregate: a segment definition, versioned (pure, no I/O).

Each definition of a segment key is one aggregate whose id derives from the key. Its
first event defines the segment (version 1); each change of the rule, name or
description is a new event, and the aggregate version is the rule version that the
segment-change events cite. The rule is validated before it is recorded.
"""

from __future__ import annotations

import uuid
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from services.analytics.rules import validate

_NAMESPACE = UUID("0b0f5c3e-8f1d-4c84-9d3e-6a2f7c1e5b90")


def segment_id(key: str) -> UUID:
    return uuid.uuid5(_NAMESPACE, f"segment\x1f{key}")


class SegmentDefinition(Aggregate):
    @staticmethod
    def create_id(key: str) -> UUID:
        return segment_id(key)

    @event("Defined")
    def __init__(self, *, key: str, name: str, description: str, rule: dict[str, Any]) -> None:
        validate(rule)
        self.key = key
        self.name = name
        self.description = description
        self.rule = rule

    def change(self, *, name: str, description: str, rule: dict[str, Any]) -> bool:
        """Record a new version; False (no event) when nothing differs."""
        validate(rule)
        if (name, description, rule) == (self.name, self.description, self.rule):
            return False
        self._redefined(key=self.key, name=name, description=description, rule=rule)
        return True

    @event("Redefined")
    def _redefined(self, *, key: str, name: str, description: str, rule: dict[str, Any]) -> None:
        self.name = name
        self.description = description
        self.rule = rule
