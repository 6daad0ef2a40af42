"""The analytics service's aggregate: a segment definition, versioned (pure, no I/O).

Each definition of a segment key is one aggregate whose id derives from the key. Its
first event defines the segment (version 1); each change of the rule, name or
description is a new event, and the aggregate version is the rule version that the
segment-change events cite. The rule is validated before it is recorded.

Stored events name their class by a topic. The aggregate lived in
`services/analytics/domain.py` when its first events were stored, so its topics are
explicit and keep that module's name: events stored before and after the move read alike.
"""

from __future__ import annotations

import uuid
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from services.analytics.domain.rules import validate

_NAMESPACE = UUID("0b0f5c3e-8f1d-4c84-9d3e-6a2f7c1e5b90")


def segment_id(key: str) -> UUID:
    return uuid.uuid5(_NAMESPACE, f"segment\x1f{key}")


STORED_TOPIC = "services.analytics.domain:SegmentDefinition"
"""The topic stored with the aggregate's events (see the module's docstring)."""


class SegmentDefinition(Aggregate):
    TOPIC = STORED_TOPIC

    class Event(Aggregate.Event):
        TOPIC = f"{STORED_TOPIC}.Event"

    class Created(Event, Aggregate.Created):
        TOPIC = f"{STORED_TOPIC}.Created"

    @staticmethod
    def create_id(key: str) -> UUID:
        return segment_id(key)

    @event("Defined", topic=f"{STORED_TOPIC}.Defined")
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

    @event("Redefined", topic=f"{STORED_TOPIC}.Redefined")
    def _redefined(self, *, key: str, name: str, description: str, rule: dict[str, Any]) -> None:
        self.name = name
        self.description = description
        self.rule = rule
