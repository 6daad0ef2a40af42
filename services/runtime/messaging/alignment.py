"""Reading several topics in event time: a message is handed on only once every
partition still behind has been read up to its time.

A consumer of several topics reads each partition in its own order, as fast as the broker
serves it. When a history arrives at once (a migration, a backfill, a replay), one topic
can be read months ahead of another, and a consumer that concludes in event time (the
analytics fold) would then take the other topic's facts as late. Kafka Streams merges the
partitions of a task by timestamp for the same reason: it picks the message with the
earliest time among the partitions' heads, and waits a little (`max.task.idle.ms`) for a
partition that is behind and has nothing buffered. This is that rule, for a batch
consumer:

- each partition has a time: the latest event time read from it (its messages are
  assumed to come in the order they happened, as the relays and a loaded history
  publish them);
- the bound is the earliest time of the aligned partitions that are still behind (the
  broker holds messages of theirs not read yet); a partition that is caught up bounds
  nothing, so that a live stream is never held back;
- what is held is handed on up to the bound, earliest first, each partition in its
  order: the first message later than the bound holds back every later one of its
  partition, so that committing the offset of the first message held commits exactly
  what was handed on, and a crash reads the held messages again;
- a partition behind that has not been read at all holds every aligned message back;
- when nothing has been handed on for `max_wait` seconds while messages are held (a
  partition said to be behind that the broker does not serve), the held messages are
  handed on as they are, and what comes later of the others counts as late facts;
- while more than `capacity` messages are held in all, the partitions holding any are to
  be paused, so that memory stays bounded while the others catch up.

Messages without a time of their own (refused ones, on their way to the dead-letter
topic) go with their partition's order. Pure: the consumer does the fetching, pausing
and committing.
"""

from __future__ import annotations

import heapq
import time
from collections import deque
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

from aiokafka.structs import TopicPartition

I = TypeVar("I")  # noqa: E741 - the item a consumer holds (a parsed or refused message)


@dataclass(frozen=True, slots=True)
class Held(Generic[I]):
    offset: int
    time: datetime | None
    """When what it says happened; None for a message without a time (a refused one)."""
    item: I


@dataclass(slots=True)
class Released(Generic[I]):
    items: list[I] = field(default_factory=list)
    """What may be handled now, each partition's in its order."""
    commits: dict[TopicPartition, int] = field(default_factory=dict)
    """The offset to commit, per partition whose offset moved, once `items` are handled."""


def _sort_key(message: Held[Any]) -> float:
    """Earliest first; a message without a time goes at once."""
    return float("-inf") if message.time is None else message.time.timestamp()


class EventTimeAligner(Generic[I]):
    def __init__(
        self,
        topics: Collection[str],
        *,
        capacity: int,
        max_wait: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._topics = frozenset(topics)
        self._capacity = capacity
        self._max_wait = max_wait
        self._clock = clock
        self._held: dict[TopicPartition, deque[Held[I]]] = {}
        self._read_to: dict[TopicPartition, int] = {}
        """The offset after the last message read from each partition."""
        self._partition_time: dict[TopicPartition, datetime] = {}
        self._committed: dict[TopicPartition, int] = {}
        self._blocked_since: float | None = None

    def add(self, partition: TopicPartition, read: Iterable[Held[I]], read_to: int) -> None:
        """Hold what was read from `partition` (in offset order), up to offset `read_to`
        (exclusive; messages skipped before they were parsed are counted in it)."""
        held = self._held.setdefault(partition, deque())
        for message in read:
            while held and held[-1].offset >= message.offset:
                held.pop()  # read again from an earlier offset (a rebalance gave it back)
            held.append(message)
            if message.time is not None:
                latest = self._partition_time.get(partition)
                if latest is None or message.time > latest:
                    self._partition_time[partition] = message.time
        self._read_to[partition] = read_to

    def release(self, behind: Collection[TopicPartition], limit: int | None = None) -> Released[I]:
        """What may be handled (at most `limit` messages, earliest first), given the
        partitions that are still `behind` (the broker holds messages of theirs not
        read yet), and the offsets to commit once it is."""
        waited = self._blocked_since is not None and (
            self._clock() - self._blocked_since >= self._max_wait
        )
        unread, bound = self._bound(behind)

        def ready(partition: TopicPartition, message: Held[I]) -> bool:
            return (
                partition.topic not in self._topics
                or waited
                or message.time is None
                or (not unread and (bound is None or message.time <= bound))
            )

        # the partitions' heads merged by time, each partition in its order
        heads = [
            (_sort_key(held[0]), n, partition)
            for n, (partition, held) in enumerate(self._held.items())
            if held and ready(partition, held[0])
        ]
        heapq.heapify(heads)
        released: Released[I] = Released()
        while heads and (limit is None or len(released.items) < limit):
            _, n, partition = heapq.heappop(heads)
            held = self._held[partition]
            released.items.append(held.popleft().item)
            if held and ready(partition, held[0]):
                heapq.heappush(heads, (_sort_key(held[0]), n, partition))
        if released.items or not any(self._held.values()):
            self._blocked_since = None
        elif self._blocked_since is None:
            self._blocked_since = self._clock()
        for partition, read_to in self._read_to.items():
            first = self.first_held(partition)
            offset = read_to if first is None else first
            if self._committed.get(partition) != offset:
                self._committed[partition] = offset
                released.commits[partition] = offset
        return released

    def _bound(self, behind: Collection[TopicPartition]) -> tuple[bool, datetime | None]:
        """Whether an aligned partition behind has not been read at all yet (then nothing
        aligned may be handed on), and the latest time that may be (None: no bound)."""
        bound: datetime | None = None
        for partition in behind:
            if partition.topic not in self._topics:
                continue
            latest = self._partition_time.get(partition)
            if latest is None:
                return True, None
            if bound is None or latest < bound:
                bound = latest
        return False, bound

    def first_held(self, partition: TopicPartition) -> int | None:
        """The offset of the first message of `partition` held back, if any."""
        held = self._held.get(partition)
        return held[0].offset if held else None

    def holding(self) -> bool:
        """Whether anything is held back."""
        return any(self._held.values())

    def full(self) -> set[TopicPartition]:
        """While more than `capacity` messages are held in all, the partitions holding
        any: pause them until they drain. The partitions that bound the others hold
        nothing they may not hand on, so what is held keeps draining, and a partition
        that holds nothing is read on."""
        if sum(len(held) for held in self._held.values()) <= self._capacity:
            return set()
        return {p for p, held in self._held.items() if held}

    def keep_only(self, assigned: Collection[TopicPartition]) -> None:
        """Forget the partitions this consumer no longer holds (a rebalance moved them:
        their next owner reads what was held from the offset committed)."""
        for partition in [p for p in self._held if p not in assigned]:
            del self._held[partition]
            self._read_to.pop(partition, None)
            self._committed.pop(partition, None)
            self._partition_time.pop(partition, None)
