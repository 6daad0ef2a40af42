"""Reading several topics in event time: what is handed on, what is held, what is
committed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from aiokafka.structs import TopicPartition

from services.runtime.messaging.alignment import EventTimeAligner, Held

START = datetime(2025, 1, 1, tzinfo=UTC)
SALES = TopicPartition("sales", 0)
INTERACTION = TopicPartition("interaction", 0)
OWN = TopicPartition("own", 0)


def day(n: int) -> datetime:
    return START + timedelta(days=n)


def read(*days: int | None, first: int = 0) -> list[Held[str]]:
    """Messages at offsets from `first`, one per day given (None: without a time)."""
    return [
        Held(first + i, None if d is None else day(d), f"{first + i}@{d}")
        for i, d in enumerate(days)
    ]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def aligner(clock: Clock | None = None, capacity: int = 100) -> EventTimeAligner[str]:
    return EventTimeAligner(
        {"sales", "interaction"}, capacity=capacity, max_wait=2.0, clock=clock or Clock()
    )


def test_a_topic_read_ahead_waits_for_one_behind_to_reach_its_time() -> None:
    a = aligner()
    a.add(SALES, read(1, 5, 9, 12), read_to=4)
    a.add(INTERACTION, read(2, 6), read_to=2)
    released = a.release(behind={SALES, INTERACTION})
    assert released.items == ["0@1", "0@2", "1@5", "1@6"]
    # what was handed on is committed, and nothing held
    assert released.commits == {SALES: 2, INTERACTION: 2}
    assert a.first_held(SALES) == 2
    # interaction is read further: sales may go up to its new time
    a.add(INTERACTION, read(10, first=2), read_to=3)
    released = a.release(behind={SALES, INTERACTION})
    assert released.items == ["2@9", "2@10"]
    assert released.commits == {SALES: 3, INTERACTION: 3}


def test_a_partition_caught_up_holds_nothing_back() -> None:
    a = aligner()
    a.add(SALES, read(1, 50, 90), read_to=3)
    a.add(INTERACTION, read(2), read_to=1)
    released = a.release(behind={SALES})
    assert released.items == ["0@1", "0@2", "1@50", "2@90"]
    assert not a.holding()


def test_a_partition_behind_not_read_yet_holds_the_aligned_topics_but_not_the_others() -> None:
    a = aligner()
    a.add(SALES, read(1, 2), read_to=2)
    a.add(OWN, read(30), read_to=1)
    released = a.release(behind={SALES, INTERACTION})
    assert released.items == ["0@30"]
    assert released.commits == {SALES: 0, OWN: 1}
    assert a.holding()


def test_held_messages_are_handed_on_when_nothing_moved_for_the_longest_wait() -> None:
    clock = Clock()
    a = aligner(clock)
    a.add(SALES, read(1, 2), read_to=2)
    assert a.release(behind={SALES, INTERACTION}).items == []
    clock.now = 1.9
    assert a.release(behind={SALES, INTERACTION}).items == []
    clock.now = 2.0
    assert a.release(behind={SALES, INTERACTION}).items == ["0@1", "1@2"]


def test_a_partitions_order_is_kept_a_message_without_time_goes_with_it() -> None:
    a = aligner()
    a.add(SALES, read(None, 1, 8, None, 2), read_to=5)
    a.add(INTERACTION, read(3), read_to=1)
    released = a.release(behind={SALES, INTERACTION})
    # day 2 comes after day 8 on its partition: it waits behind it, and so does the
    # refused message between them, so that the commit covers exactly what was handed on
    assert released.items == ["0@None", "1@1", "0@3"]
    assert released.commits[SALES] == 2


def test_messages_read_again_after_a_rebalance_replace_those_held() -> None:
    a = aligner()
    a.add(SALES, read(1, 5, 9), read_to=3)
    a.add(INTERACTION, read(2), read_to=1)
    assert a.release(behind={SALES, INTERACTION}).items == ["0@1", "0@2"]
    a.add(SALES, read(5, 9, 11, first=1), read_to=4)
    a.add(INTERACTION, read(20, first=1), read_to=2)
    assert a.release(behind={SALES, INTERACTION}).items == ["1@5", "2@9", "3@11"]


def test_past_the_capacity_the_partitions_holding_any_are_named() -> None:
    a = aligner(capacity=2)
    a.add(SALES, read(5, 6), read_to=2)
    a.add(INTERACTION, read(1), read_to=1)
    a.release(behind={SALES, INTERACTION})
    assert a.full() == set()  # two held: within the capacity
    a.add(SALES, read(8, first=2), read_to=3)
    a.release(behind={SALES, INTERACTION})
    assert a.full() == {SALES}  # the partition that bounds the others holds nothing
    a.keep_only({INTERACTION})
    assert a.full() == set()
    assert a.first_held(SALES) is None
    assert not a.holding()


def test_at_most_the_limit_is_handed_on_earliest_first() -> None:
    a = aligner()
    a.add(SALES, read(1, 4, 6), read_to=3)
    a.add(INTERACTION, read(2, 3, 5), read_to=3)
    released = a.release(behind=set(), limit=4)
    assert released.items == ["0@1", "0@2", "1@3", "1@4"]
    assert released.commits == {SALES: 2, INTERACTION: 2}
    assert a.release(behind=set()).items == ["2@5", "2@6"]
