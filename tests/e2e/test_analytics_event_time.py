"""Conclusions in event time: 18 months of history published at once give the segment
history the same history would have given arriving as it happened.

A generated history is loaded as a migration would load it: the customer records and 18
months of their purchases, won contracts, interactions, surveys and complaints, published
on their three topics at once while the analytics service is stopped, each topic in the
order its facts happened. The fold, started again, reads the topics in event time
whichever the broker serves first (`services.runtime.messaging.alignment`). Membership of
the lifecycle segments and of a defined segment as of three past dates, and the
lifecycle migration matrix between two past dates, must equal a computation written
here from the raw events in event time: as of a moment, a customer is known once
registered, and their stage and the rule are evaluated on the purchases that occurred by
then, with days counted to that date. Were the conclusions stamped with the time of
loading, every past membership would be empty.
"""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import Any

import asyncpg
import httpx
from aiokafka import AIOKafkaProducer

from contracts.topics import Topic
from local.synthetic_history import Event, history
from tests.support.infrastructure import Infrastructure
from tests.support.kafka import owner_signatures
from tests.support.waiting import eventually

CUSTOMERS = 600
MONTHS_18 = timedelta(days=548)
REGULARS = {
    "all": [
        {"field": "purchase_count", "op": "ge", "value": 2},
        {"field": "days_since_last_purchase", "op": "le", "value": 60},
    ]
}
"""A defined segment whose membership changes with facts and with time passing."""
STAGES = ("prospect", "new", "growing", "retained", "at_risk", "lapsed", "reactivated")


def purchase_day(event: Event) -> date | None:
    """The day a fact counts as a purchase on (a won contract: its signing day)."""
    d = event.document
    if d["event_type"] == "sales.purchase_recorded":
        return occurred(event).date()
    if d["event_type"] == "sales.contract_signed":
        return date.fromisoformat(d["payload"]["signed_on"])
    return None


def occurred(event: Event) -> datetime:
    return datetime.fromisoformat(event.document["occurred_at"])


class EventTimeTruth:
    """Each customer's state at a moment, from the raw events alone."""

    def __init__(self, events: list[Event]) -> None:
        self.known_since: dict[str, datetime] = {}
        self.purchases: dict[str, list[tuple[datetime, date]]] = defaultdict(list)
        for event in events:
            customer, at = str(event.customer_id), occurred(event)
            self.known_since[customer] = min(at, self.known_since.get(customer, at))
            day = purchase_day(event)
            if day is not None:
                self.purchases[customer].append((at, day))

    def days_bought(self, customer: str, moment: datetime) -> list[date]:
        return sorted(day for at, day in self.purchases[customer] if at <= moment)

    def stage(self, customer: str, moment: datetime) -> str | None:
        if self.known_since[customer] > moment:
            return None
        days, today = self.days_bought(customer, moment), moment.date()
        if not days:
            return "prospect"
        since_last = (today - days[-1]).days
        if since_last > 365:
            return "lapsed"
        if since_last > 180:
            return "at_risk"
        if len(days) >= 2 and (days[-1] - days[-2]).days > 180:
            return "reactivated"
        since_first = (today - days[0]).days
        return "new" if since_first <= 90 else "growing" if since_first <= 365 else "retained"

    def members(self, segment: str, moment: datetime) -> set[str]:
        if segment.startswith("lifecycle."):
            wanted = segment.removeprefix("lifecycle.")
            return {c for c in self.known_since if self.stage(c, moment) == wanted}
        assert segment == "regulars"
        found = set()
        for customer in self.known_since:
            days = self.days_bought(customer, moment)
            if len(days) >= 2 and (moment.date() - days[-1]).days <= 60:
                found.add(customer)
        return found

    def migration(self, start: datetime, end: datetime) -> Counter[tuple[str, str]]:
        moved: Counter[tuple[str, str]] = Counter()
        for customer in self.known_since:
            before, after = self.stage(customer, start), self.stage(customer, end)
            if before or after:
                moved[(f"lifecycle.{before}" if before else "(none)",
                       f"lifecycle.{after}" if after else "(none)")] += 1  # fmt: skip
        return moved


async def publish_in_order(bootstrap_servers: str, events: list[Event]) -> None:
    """Every event, in the order it happened, as fast as the broker takes them."""
    messages = [e.message() for e in sorted(events, key=occurred)]
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers, acks="all", linger_ms=10)
    await producer.start()
    try:
        pending = [
            await producer.send(t, value=v, key=k, headers=owner_signatures(t, [v])[0])
            for t, k, v in messages
        ]
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


async def folded(infra: Infrastructure, count: int) -> bool:
    """Whether the fold has applied `count` events of the customer, sales and interaction
    topics."""
    connection = await asyncpg.connect(infra.database_url)
    try:
        applied = await connection.fetchval(
            "SELECT count(*) FROM analytics.consumed_events "
            "WHERE projection = 'analytics_fold' AND topic <> $1",
            Topic.ANALYTICS.value,
        )
    finally:
        await connection.close()
    assert applied == count, f"{applied} of {count}"
    return True


async def rule_folded(infra: Infrastructure, segment: str) -> bool:
    """Whether the fold has stored the rule of `segment`."""
    connection = await asyncpg.connect(infra.database_url)
    try:
        stored = await connection.fetchval(
            "SELECT count(*) FROM analytics.segment_rules WHERE segment = $1", segment
        )
    finally:
        await connection.close()
    assert stored, f"no rule of {segment} stored yet"
    return True


async def members_as_of(client: httpx.AsyncClient, segment: str, moment: datetime) -> set[str]:
    found: set[str] = set()
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"as_of": moment.isoformat(), "limit": 500}
        if cursor:
            params["cursor"] = cursor
        answer = await client.get(f"/segments/{segment}/members", params=params)
        assert answer.status_code == 200, answer.text
        page = answer.json()
        found.update(item["customer_id"] for item in page["items"])
        cursor = page["next_cursor"]
        if not cursor:
            return found


async def test_a_history_loaded_at_once_is_concluded_in_event_time(infra: Infrastructure) -> None:
    now = datetime.now(UTC)
    start = now - MONTHS_18
    generated = history(CUSTOMERS, now=now, seed=18)
    registered = {
        e.customer_id: occurred(e)
        for e in generated
        if e.document["event_type"] == "customer.registered"
    }
    customers = [e for e in generated if e.document["event_type"] == "customer.registered"]
    facts = [
        e
        for e in generated
        if e.document["event_type"] != "customer.registered"
        and occurred(e) >= max(start, registered[e.customer_id])
    ]
    events = customers + facts
    assert min(occurred(e) for e in facts) < start + timedelta(days=7)
    truth = EventTimeTruth(events)
    dates = [
        now - timedelta(days=400, hours=5),
        now - timedelta(days=210),
        now - timedelta(days=45),
    ]
    segments = [*(f"lifecycle.{s}" for s in STAGES), "regulars"]
    service = infra.service(
        "analytics",
        CRM_ANALYTICS_RESCORE_INTERVAL_SECONDS="0.5",
        # the wall clock taken once the history has stopped for this long: more than
        # a loaded machine may stall this test's producer
        CRM_ANALYTICS_HISTORY_QUIET_SECONDS="30",
    )
    await asyncio.to_thread(service.start)
    try:
        async with service.client(timeout=30) as client:
            defined = await client.post(
                "/segments", json={"segment": "regulars", "name": "常客", "rule": REGULARS}
            )
            assert defined.status_code == 201, defined.text
        await eventually(partial(rule_folded, infra, "regulars"), describe="the rule folded")
        # the whole history on the three topics while the fold is stopped, as a migration
        # loads it: the fold then reads them in event time, whichever it is served first
        await asyncio.to_thread(service.stop)
        await publish_in_order(infra.bootstrap_servers, events)
        await asyncio.to_thread(service.start)
        async with service.client(timeout=30) as client:

            async def prospects(count: int) -> bool:
                answer = await client.get("/segments")
                sizes = {s["segment"]: s["customers"] for s in answer.json()["items"]}
                return sizes.get("lifecycle.prospect", 0) == count

            await eventually(
                partial(folded, infra, len(events)),
                timeout=120,
                describe=f"{len(events)} events folded",
            )
            buyers = {e.customer_id for e in facts if purchase_day(e)}
            await eventually(
                lambda: prospects(len(customers) - len(buyers)), timeout=120, describe="the history"
            )

            async def as_of_equal() -> bool:
                for moment in dates:
                    for segment in segments:
                        got = await members_as_of(client, segment, moment)
                        want = truth.members(segment, moment)
                        assert got == want, (
                            f"{segment} as of {moment:%Y-%m-%d %H:%M}: "
                            f"{len(got - want)} too many, e.g. {sorted(got - want)[:3]}; "
                            f"{len(want - got)} missing, e.g. {sorted(want - got)[:3]}"
                        )
                return True

            # the sweep brings customers without later facts up to now once the fold
            # has caught up: their time-dependent changes are recorded when they held
            await eventually(as_of_equal, timeout=90, interval=2.0, describe="memberships")
            assert all(truth.members(s, dates[1]) for s in ("lifecycle.new", "regulars"))

            answer = await client.get(
                "/segment-migration",
                params={"family": "lifecycle", "from": dates[0].isoformat(),
                        "to": dates[2].isoformat()},
            )  # fmt: skip
            assert answer.status_code == 200, answer.text
            got = Counter(
                {
                    (r["from_segment"], r["to_segment"]): r["customers"]
                    for r in answer.json()["items"]
                }
            )
            want = truth.migration(dates[0], dates[2])
            assert got == want
            assert sum(n for (a, b), n in want.items() if a != b and a != "(none)") > 10
    finally:
        await asyncio.to_thread(service.stop)
