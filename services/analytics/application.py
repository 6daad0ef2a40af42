"""Analytics commands: defining and changing segments (the only write side of the
service besides the conclusions its fold draws)."""

from __future__ import annotations

from typing import Any

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import RecordConflictError

from services.analytics.domain.definition import SegmentDefinition, segment_id
from services.runtime.errors import Conflict, NotFound
from services.runtime.storage.eventstore import EventSourcedApplication


class AnalyticsApplication(EventSourcedApplication):
    name = "Analytics"

    def define_segment(
        self, *, key: str, name: str, description: str, rule: dict[str, Any]
    ) -> SegmentDefinition:
        try:
            self.repository.get(segment_id(key))
        except AggregateNotFoundError:
            pass
        else:
            raise Conflict(f"segment {key!r} exists already; change it with PUT /segments/{key}")
        definition = SegmentDefinition(key=key, name=name, description=description, rule=rule)
        try:
            self.save(definition)
        except RecordConflictError:
            raise Conflict(f"segment {key!r} was defined by someone else just now") from None
        return definition

    def change_segment(
        self,
        *,
        key: str,
        name: str,
        description: str,
        rule: dict[str, Any],
        expected_version: int | None,
    ) -> SegmentDefinition:
        try:
            self.repository.get(segment_id(key))
        except AggregateNotFoundError:
            raise NotFound(f"no segment {key!r}; define it with POST /segments") from None
        try:
            return self.change(
                segment_id(key),
                expected_version,
                lambda d: d.change(name=name, description=description, rule=rule),
                kind=SegmentDefinition,
                what="segment",
            )
        except Conflict:
            raise self._conflict(key, expected_version) from None

    def _conflict(self, key: str, expected_version: int | None) -> Conflict:
        """A conflict on a segment, named as its users know it (key and name), not by the
        id of its aggregate."""
        current: SegmentDefinition = self.repository.get(segment_id(key))
        named = f"segment {key!r} ({current.name})"
        if expected_version is not None and current.version != expected_version:
            return Conflict(
                f"{named} is at version {current.version}, but the request expected version "
                f"{expected_version}; reload it and try again"
            )
        return Conflict(f"{named} was changed by someone else at the same time; try again")
