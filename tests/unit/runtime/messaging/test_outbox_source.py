"""A stored event that no contract reads does not stop the relay: it is skipped, counted
and logged, and the events after it are published."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import pytest
from pydantic import BaseModel

from services.runtime.messaging.outbox import NotificationLogSource
from services.runtime.metrics import UNPUBLISHABLE


@dataclass
class Notification:
    id: int
    event: str


class Recorder:
    def __init__(self, notifications: list[Notification]) -> None:
        self.notifications = notifications

    def select_notifications(self, start: int, limit: int) -> list[Notification]:
        return [n for n in self.notifications if n.id >= start][:limit]


class Mapper:
    def to_domain_event(self, notification: Notification) -> str:
        return notification.event


class Strict(BaseModel):
    source: str


def translate(event: str) -> Any:
    Strict.model_validate({"source": None if event == "unreadable" else event})
    return f"envelope of {event}"


class Application:
    def __init__(self, events: list[str]) -> None:
        self.recorder = Recorder([Notification(i, e) for i, e in enumerate(events, 1)])
        self.mapper = Mapper()


def test_an_event_no_contract_reads_is_skipped_and_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    source = NotificationLogSource(
        Application(["first", "unreadable", "third"]),  # type: ignore[arg-type]
        translate,
        name="crm.test.events.v1",
    )
    before = UNPUBLISHABLE.labels(topic="crm.test.events.v1")._value.get()
    pending = asyncio.run(source.read(None, 0, 10))
    assert [(p.position, p.envelope) for p in pending] == [
        (1, "envelope of first"),
        (2, None),
        (3, "envelope of third"),
    ]
    assert UNPUBLISHABLE.labels(topic="crm.test.events.v1")._value.get() == before + 1
    assert "notification 2" in caplog.text
