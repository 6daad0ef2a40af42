"""A generated history of customers, purchases, won contracts, interactions, surveys and
complaints, as the contract events the customer, sales and interaction services publish.

Used by `crm bench analytics-fold` and by the analytics integration tests. Dates are
relative to `now`. Messages are (topic, key, value) with JSON values built directly
(they follow `contracts/`; the tests parse a sample with the contract models).
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from contracts.topics import Topic

REGIONS = ("华东", "华北", "华南", "西南")
INDUSTRIES = ("制造", "零售", "金融", "教育")
OWNERS = ("li.na", "wang.fang", "zhang.wei")
CURRENCIES = ("CNY", "CNY", "CNY", "USD", "EUR", "HKD")
TAGS = ["key-account", "wechat", "trade-show"]
CHANNELS = ("phone", "email", "wechat", "meeting", "visit")


@dataclass(frozen=True)
class Event:
    topic: str
    customer_id: uuid.UUID
    document: dict[str, Any]

    def message(self) -> tuple[str, bytes, bytes]:
        return self.topic, str(self.customer_id).encode(), orjson.dumps(self.document)


def _envelope(
    event_type: str,
    customer_id: uuid.UUID,
    payload: dict[str, Any],
    *,
    at: datetime,
    producer: str,
    aggregate_id: uuid.UUID | None = None,
    aggregate_version: int | None = None,
    schema_version: int = 1,
) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "event_type": event_type,
        "schema_version": schema_version,
        "customer_id": str(customer_id),
        "aggregate_id": str(aggregate_id) if aggregate_id else None,
        "aggregate_version": aggregate_version,
        "occurred_at": at.isoformat(),
        "recorded_at": at.isoformat(),
        "producer": producer,
        "actor": "generator",
        "correlation_id": None,
        "causation_id": None,
        "payload": payload,
    }


def _registration(
    rng: random.Random, n: int, customer: uuid.UUID, registered_at: datetime
) -> Event:
    return Event(
        Topic.CUSTOMER,
        customer,
        _envelope(
            "customer.registered",
            customer,
            {
                "name": f"客户 {n:06d}",
                "kind": rng.choice(("consumer", "business")),
                "industry": rng.choice(INDUSTRIES),
                "region": rng.choice(REGIONS),
                "owner": rng.choice(OWNERS),
                "tags": rng.sample(["key-account", "wechat", "trade-show"], rng.randint(0, 2)),
            },
            at=registered_at,
            producer="crm.customer",
            aggregate_id=customer,
            aggregate_version=1,
        ),
    )


def _purchase(
    customer: uuid.UUID, payload: dict[str, Any], at: datetime, aggregate_id: uuid.UUID
) -> Event:
    return Event(
        Topic.SALES,
        customer,
        _envelope(
            "sales.purchase_recorded",
            customer,
            payload,
            at=at,
            producer="crm.sales",
            aggregate_id=aggregate_id,
            aggregate_version=1,
        ),
    )


def registered_buyers(
    customers: int, *, seed: int = 7, now: datetime | None = None
) -> Iterator[Event]:
    """For each of `customers` customers, their registration and one purchase (in CNY),
    generated as they are consumed: a population far larger than `history` holds in
    memory (`crm bench fold-memory`)."""
    rng = random.Random(seed)
    now = now or datetime.now(UTC)
    for n in range(customers):
        customer = uuid.UUID(int=rng.getrandbits(128), version=4)
        registered_at = now - timedelta(days=rng.randint(30, 900))
        yield _registration(rng, n, customer, registered_at)
        at = registered_at + timedelta(days=rng.randint(0, 29))
        payload = {
            "purchase_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "source": "shop-cn",
            "order_id": f"SO-{rng.getrandbits(48):x}",
            "amount": f"{rng.choice((9.9, 99, 299, 1299, 4999)):.2f}",
            "currency": "CNY",
            "items": [],
            "channel": "online",
        }
        yield _purchase(customer, payload, at, uuid.UUID(int=rng.getrandbits(128), version=4))


def history(
    customers: int, *, seed: int = 7, now: datetime | None = None, corrected: float = 0.0
) -> list[Event]:
    """Events for `customers` customers, in the order each service would publish them.

    With `corrected`, that share of the interactions is corrected afterwards: its start
    time moved into the last 60 days (`interaction.corrected`, version 2)."""
    rng = random.Random(seed)
    now = now or datetime.now(UTC)
    events: list[Event] = []
    for n in range(customers):
        customer = uuid.UUID(int=rng.getrandbits(128), version=4)
        registered_at = now - timedelta(days=rng.randint(30, 900))
        events.append(_registration(rng, n, customer, registered_at))
        buyer = rng.random() < 0.8
        for _ in range(rng.choice((1, 1, 2, 3, 4, 6, 9)) if buyer else 0):
            at = now - timedelta(days=rng.randint(0, 700), minutes=rng.randint(0, 1439))
            amount = f"{rng.choice((9.9, 99, 299, 1299, 4999, 12000)) * rng.randint(1, 3):.2f}"
            currency = rng.choice(CURRENCIES)
            if rng.random() < 0.85:
                payload = {
                    "purchase_id": str(uuid.uuid4()),
                    "source": "shop-cn",
                    "order_id": f"SO-{rng.getrandbits(48):x}",
                    "amount": amount,
                    "currency": currency,
                    "items": [],
                    "channel": "online",
                }
                events.append(_purchase(customer, payload, at, uuid.uuid4()))
            else:
                opportunity = uuid.uuid4()
                payload = {
                    "opportunity_id": str(opportunity),
                    "contract_id": f"HT-{rng.getrandbits(32):x}",
                    "amount": amount,
                    "currency": currency,
                    "signed_on": at.date().isoformat(),
                }
                events.append(
                    Event(
                        Topic.SALES,
                        customer,
                        _envelope(
                            "sales.contract_signed",
                            customer,
                            payload,
                            at=at,
                            producer="crm.sales",
                            aggregate_id=opportunity,
                            aggregate_version=5,
                        ),
                    )
                )
        for _ in range(rng.randint(0, 5)):
            at = now - timedelta(days=rng.randint(0, 200), minutes=rng.randint(0, 1439))
            interaction = uuid.uuid4()
            events.append(
                Event(
                    Topic.INTERACTION,
                    customer,
                    _envelope(
                        "interaction.logged",
                        customer,
                        {
                            "channel": rng.choice(CHANNELS),
                            "direction": rng.choice(("inbound", "outbound")),
                            "started_at": at.isoformat(),
                            "subject": "回访",
                        },
                        at=at,
                        producer="crm.interaction",
                        aggregate_id=interaction,
                        aggregate_version=1,
                    ),
                )
            )
            if corrected and rng.random() < corrected:
                events.append(_correction(rng, customer, interaction, now))
        for _ in range(rng.choice((0, 0, 1, 1, 2, 3))):
            at = now - timedelta(days=rng.randint(0, 300), minutes=rng.randint(0, 1439))
            answer: dict[str, Any] = {"survey": "post-contact", "answered_at": at.isoformat()}
            if rng.random() < 0.8:
                answer["csat"] = rng.randint(1, 5)
            if rng.random() < 0.7:
                answer["nps"] = rng.randint(0, 10)
            answer["channel"] = rng.choice(CHANNELS)
            events.append(
                Event(
                    Topic.INTERACTION,
                    customer,
                    _envelope(
                        "interaction.survey_answered",
                        customer,
                        answer,
                        at=at,
                        producer="crm.interaction",
                        aggregate_id=uuid.uuid4(),
                        aggregate_version=1,
                    ),
                )
            )
        for _ in range(rng.choice((0, 0, 0, 1, 1, 2))):
            events.extend(_ticket(rng, customer, now))
    return events


def _correction(
    rng: random.Random, customer: uuid.UUID, interaction: uuid.UUID, now: datetime
) -> Event:
    at = now - timedelta(days=rng.randint(0, 60), minutes=rng.randint(0, 1439))
    return Event(
        Topic.INTERACTION,
        customer,
        _envelope(
            "interaction.corrected",
            customer,
            {"started_at": at.isoformat(), "changed": ["started_at"], "reason": "时间记错"},
            at=now,
            producer="crm.interaction",
            aggregate_id=interaction,
            aggregate_version=2,
        ),
    )


def _ticket(rng: random.Random, customer: uuid.UUID, now: datetime) -> list[Event]:
    ticket = uuid.uuid4()
    opened = now - timedelta(days=rng.randint(0, 60), hours=rng.randint(0, 23))
    due = opened + timedelta(days=rng.choice((1, 3, 30, 90)))
    kind = rng.choice(("complaint", "complaint", "service_request"))
    channel = rng.choice(CHANNELS)
    events = [
        Event(
            Topic.INTERACTION,
            customer,
            _envelope(
                "interaction.ticket_opened",
                customer,
                {
                    "kind": kind,
                    "channel": channel,
                    "category": "质量",
                    "severity": "high",
                    "subject": "投诉",
                    "opened_at": opened.isoformat(),
                    "response_due_at": (opened + timedelta(hours=1)).isoformat(),
                    "resolution_due_at": due.isoformat(),
                },
                at=opened,
                producer="crm.interaction",
                aggregate_id=ticket,
                aggregate_version=1,
            ),
        )
    ]
    if rng.random() < 0.6:
        resolved = opened + timedelta(hours=rng.randint(1, 200))
        events.append(
            Event(
                Topic.INTERACTION,
                customer,
                _envelope(
                    "interaction.ticket_resolved",
                    customer,
                    {"resolved_at": resolved.isoformat(), "resolution": "已处理"},
                    at=resolved,
                    producer="crm.interaction",
                    aggregate_id=ticket,
                    aggregate_version=2,
                ),
            )
        )
    return events
