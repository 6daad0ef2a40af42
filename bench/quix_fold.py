"""Quix Streams beside the analytics fold, in `crm bench analytics-fold`.

Quix Streams folds the same events the analytics fold reads (the customer, sales and
interaction topics, the same messages, JSON envelopes keyed by customer id) with a
stateful per-key aggregation, as a Quix application does it: a `StreamingDataFrame`
per topic, the three concatenated (`concat`: one state store for the three topics, read
aligned by timestamp), and `.apply(fn, stateful=True)` keeping per customer what a
profile holds in the shape of a counter: events, purchases and their amounts per
currency, the last purchase's date, interactions (`fold_event`). Its state lives in
Quix's RocksDB store; its processing guarantee is Quix's default (at-least-once), its wait
for messages 0.05 s rather than its default 1 s (`POLL_TIMEOUT`); its own
consumer group reads from the beginning until it has processed every event, then stops.

Quix Streams is installed only by the benchmark's extra (`bench-quix` in
pyproject.toml); without it the benchmark says how to install it and leaves the row out.
"""

from __future__ import annotations

import importlib.util
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

INSTALL_HINT = (
    "Quix Streams not installed, its row is left out: "
    "install it with  .venv/bin/pip install -e '.[bench-quix]'"
)
POLL_TIMEOUT = 0.05
"""Quix's `consumer_poll_timeout`, seconds. Reading topics aligned by timestamp (`concat`),
Quix asks librdkafka for up to 10,000 messages at once and waits this long for them; at
its default, 1 s, it waits most of the time (the analytics-fold history: 6,934 events/s
against 18,813/s at 0.05 s, for the same CPU; an application reading the topics it
writes: 1,592 purchases/s against 4,161/s)."""
PURCHASE = "sales.purchase_recorded"
INTERACTION = "interaction.logged"


def quix_installed() -> bool:
    return importlib.util.find_spec("quixstreams") is not None


def fold_event(profile: dict[str, Any] | None, envelope: dict[str, Any]) -> dict[str, Any]:
    """The customer's profile after one more event (`envelope`, as published): events,
    purchases, their amounts in cents per currency (no conversion), the last purchase's
    date, interactions logged. Updates `profile` in place (a new one when None)."""
    if profile is None:
        profile = {
            "events": 0,
            "purchases": 0,
            "cents": {},
            "last_purchase_on": None,
            "interactions": 0,
        }
    profile["events"] += 1
    kind = envelope["event_type"]
    if kind == PURCHASE:
        payload = envelope["payload"]
        profile["purchases"] += 1
        cents = profile["cents"]
        currency = payload["currency"]
        cents[currency] = cents.get(currency, 0) + int(Decimal(payload["amount"]).scaleb(2))
        day = envelope["occurred_at"][:10]
        if profile["last_purchase_on"] is None or day > profile["last_purchase_on"]:
            profile["last_purchase_on"] = day
    elif kind == INTERACTION:
        profile["interactions"] += 1
    return profile


def application(servers: str, group: str, state_dir: Path, **options: Any) -> Any:
    """A Quix `Application` of consumer group `group` reading its topics from the
    beginning, its state in `state_dir` (`options`: more of its settings)."""
    from quixstreams import Application

    return Application(
        broker_address=servers,
        consumer_group=group,
        auto_offset_reset="earliest",
        state_dir=state_dir,
        loglevel="WARNING",
        **{"consumer_poll_timeout": POLL_TIMEOUT, **options},
    )


class RunClock:
    """The clock of a Quix run over `expect` messages: started by the first (`seen`), it
    stops the application at the last; `figures` once the application has stopped."""

    def __init__(self, app: Any, expect: int) -> None:
        self.app = app
        self.expect = expect
        self.seen = 0
        self.first: float | None = None
        self.first_cpu = self.last = 0.0

    def seen_one(self) -> None:
        if self.first is None:
            self.first, self.first_cpu = time.perf_counter(), time.process_time()
        self.seen += 1
        if self.seen >= self.expect:
            self.last = time.perf_counter()
            self.app.stop()

    def figures(self) -> dict[str, float]:
        """Events/s from the first message to the application stopped (its last checkpoint
        committed: state flushed, changelog produced, offsets committed), the seconds to
        the last message alone, and the CPU seconds of this process over the same time
        (Quix's consumer and producer threads and RocksDB's included)."""
        done, cpu = time.perf_counter(), time.process_time() - self.first_cpu
        if self.seen < self.expect or self.first is None:
            raise RuntimeError(f"Quix Streams stopped after {self.seen} of {self.expect} events")
        seconds = done - self.first
        return {
            "events_per_second": self.expect / seconds,
            "seconds": seconds,
            "seconds_to_last": self.last - self.first,
            "cpu": cpu,
        }


def concatenated(app: Any, topics: tuple[str, ...], value_deserializer: str) -> Any:
    """One `StreamingDataFrame` of `topics` (`concat`: one state store for them all, read
    aligned by timestamp), keyed by customer id."""
    frames = [
        app.dataframe(
            app.topic(str(name), key_deserializer="str", value_deserializer=value_deserializer)
        )
        for name in topics
    ]
    merged = frames[0]
    for frame in frames[1:]:
        merged = merged.concat(frame)
    return merged


def quix_run(
    servers: str, topics: tuple[str, ...], expect: int, state_dir: Path
) -> dict[str, float]:
    """Quix Streams folding `expect` events of `topics` from the beginning (`RunClock`'s
    figures) and the customers folded."""
    from quixstreams.state import State

    app = application(servers, "bench.quix", state_dir)
    clock = RunClock(app, expect)
    customers = 0

    def step(envelope: dict[str, Any], state: State) -> dict[str, Any]:
        nonlocal customers
        profile = state.get("profile")
        if profile is None:
            customers += 1
        profile = fold_event(profile, envelope)
        state.set("profile", profile)
        clock.seen_one()
        return profile

    concatenated(app, topics, "json").apply(step, stateful=True)
    app.run()
    return {**clock.figures(), "customers": customers}
