"""A consumer waiting for its partitions counts as stalled for as long as it waits, so
that a group the broker never completes fails liveness and readiness says why."""

from __future__ import annotations

import asyncio
from typing import Any

from services.runtime.messaging.consumer import BatchConsumer
from services.runtime.messaging.deadletter import DeadLetterPublisher


class NeverAssigned:
    """A subscribed Kafka consumer whose group never completes: `start` waits for good."""

    def __init__(self, *topics: str, **options: Any) -> None:
        self.stopped = False

    async def start(self) -> None:
        await asyncio.Event().wait()

    async def stop(self) -> None:
        self.stopped = True


class Handler:
    name = "customer_directory"
    group_id = "crm.projection.customer_directory"
    topics = ("crm.customer.events.v1",)

    async def prepare(self) -> None:
        return None


async def test_waiting_for_partitions_counts_as_stalled() -> None:
    consumer: BatchConsumer[Any] = BatchConsumer(
        handler=Handler(),  # type: ignore[arg-type]
        consumer_factory=NeverAssigned,
        dead_letters=DeadLetterPublisher(lambda: None, "customer"),
    )
    assert consumer.stalled_for() == 0.0
    task = asyncio.create_task(consumer.run())
    try:
        await asyncio.sleep(0.3)
        assert not consumer.measured
        assert consumer.stalled_for() >= 0.25
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert consumer.stalled_for() == 0.0  # stopped: no longer waiting
