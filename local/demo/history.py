"""Demo purchase and survey history, published as a shop and a survey tool would.

`await publish(bootstrap_servers, customer_ids)` sends eighteen months of completed
purchases on the inbound purchases topic and satisfaction answers on the inbound survey
topic, keyed by customer id, with a plain Kafka producer. The customers follow a few
patterns, so that the analytics views have something to say: frequent big buyers,
loyal regulars, big buyers who stopped coming, unhappy big buyers, new buyers,
occasional small buyers, and some who have not bought for a year. Dates are relative to
today; order and answer ids are derived from the customer and the date, so publishing
twice records nothing twice.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from contracts.topics import Topic

SEED = 20261123
SHOP = "shop-cn"
SURVEY_TOOL = "survey-tool"
PRODUCTS = (
    ("LIC-ENT-1Y", "企业版年度许可"),
    ("LIC-STD-1Y", "标准版年度许可"),
    ("SVC-IMPL", "实施服务"),
    ("SVC-TRAIN", "培训服务"),
    ("HW-POS", "收银终端"),
)


@dataclass(frozen=True)
class Pattern:
    """How a kind of customer buys and how satisfied they say they are."""

    name: str
    every_days: int
    since_days: int
    stopped_days: int
    amount: tuple[int, int]
    csat: int | None
    nps: int | None


PATTERNS = (
    Pattern("frequent big buyer", 20, 540, 3, (6_000, 20_000), 5, 10),
    Pattern("loyal regular", 35, 540, 8, (2_000, 6_000), 4, 8),
    Pattern("big buyer who stopped", 25, 540, 200, (10_000, 30_000), 3, 5),
    Pattern("new buyer", 0, 10, 10, (1_500, 4_000), 4, 9),
    Pattern("occasional small buyer", 60, 300, 40, (200, 800), 3, 7),
    Pattern("gone quiet a year ago", 120, 540, 380, (300, 1_200), None, None),
    Pattern("unhappy big buyer", 30, 400, 6, (8_000, 18_000), 2, 3),
    Pattern("prospect", 0, 0, 0, (0, 0), 4, None),
)


def purchase_dates(pattern: Pattern, today: datetime, rng: random.Random) -> list[datetime]:
    if pattern.amount == (0, 0):
        return []
    if pattern.every_days == 0:
        return [today - timedelta(days=pattern.since_days)]
    dates = []
    moment = today - timedelta(days=pattern.since_days)
    last = today - timedelta(days=pattern.stopped_days)
    while moment <= last:
        dates.append(moment)
        moment += timedelta(days=max(1, round(pattern.every_days * rng.uniform(0.7, 1.3))))
    return dates


def history(
    customer_ids: list[str], today: datetime | None = None
) -> list[tuple[str, str, dict[str, Any]]]:
    """(topic, key, message) of every purchase and survey answer, oldest first."""
    now = (today or datetime.now(UTC)).replace(microsecond=0)
    rng = random.Random(SEED)
    messages: list[tuple[datetime, str, str, dict[str, Any]]] = []
    for n, customer_id in enumerate(customer_ids):
        pattern = PATTERNS[n % len(PATTERNS)]
        dates = purchase_dates(pattern, now - timedelta(hours=1), rng)
        for moment in dates:
            sku, name = rng.choice(PRODUCTS)
            amount = rng.randint(*pattern.amount)
            usd = n % 11 == 3
            messages.append(
                (
                    moment,
                    Topic.PURCHASES_INBOUND,
                    customer_id,
                    {
                        "source": SHOP,
                        "order_id": f"SO-{customer_id[:8]}-{moment:%Y%m%d}",
                        "customer_id": customer_id,
                        "amount": f"{amount / 7 if usd else amount:.2f}",
                        "currency": "USD" if usd else "CNY",
                        "items": [{"sku": sku, "name": name, "quantity": 1}],
                        "channel": rng.choice(("online", "store")),
                        "occurred_at": moment.isoformat(),
                    },
                )
            )
        if pattern.csat is not None or pattern.nps is not None:
            answered = now - timedelta(days=rng.randint(2, 20), hours=2)
            answer: dict[str, Any] = {
                "source": SURVEY_TOOL,
                "answer_id": f"A-{customer_id[:8]}-{answered:%Y%m%d}",
                "survey": "quarterly-satisfaction",
                "customer_id": customer_id,
                "channel": rng.choice(("email", "wechat", "phone")),
                "answered_at": answered.isoformat(),
            }
            if pattern.csat is not None:
                answer["csat"] = pattern.csat
            if pattern.nps is not None:
                answer["nps"] = pattern.nps
            messages.append((answered, Topic.SURVEY_ANSWERS_INBOUND, customer_id, answer))
    messages.sort(key=lambda m: m[0])
    return [(topic, key, message) for _, topic, key, message in messages]


async def publish(bootstrap_servers: str, customer_ids: list[str]) -> int:
    """Publish the history; returns how many messages were sent."""
    messages = history(customer_ids)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers, acks="all", linger_ms=5)
    await producer.start()
    try:
        for topic, key, message in messages:
            await producer.send(topic, orjson.dumps(message), key=key.encode())
        await producer.flush()
    finally:
        await producer.stop()
    return len(messages)
