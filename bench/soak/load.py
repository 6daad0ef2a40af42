"""The steady mixed load of a soak, and what each request was answered.

Open loop, at fixed rates whatever the CRM answers (as independent clients would):

- HTTP commands, each with its own `Idempotency-Key`: registering a customer (customer
  service), logging an interaction and opening an opportunity for a customer registered
  earlier (interaction and sales). A command whose answer does not come (no connection,
  a timeout, 503, 409 while its first attempt is still being handled, a 500) is sent
  again with the same key until it is answered or `give_up_seconds` pass; then it is
  "in doubt": it may or may not have been recorded, and must be there at most once.
- Inbound purchases published on Kafka (`acks=all`) and sent over HTTP in batches
  (`POST /inbound/purchases`), 5 % of them exact repeats of one sent before and 10 %
  malformed, each kind with the reason the CRM must give.

Every request is kept as a `Call` (when, how long, what status) for the latency figures;
every command as a `Command` and every inbound message as an `Inbound`, with what the
CRM acknowledged, for the comparisons afterwards. Each carries a marker unique to it
(a customer's name, an interaction's subject, an opportunity's description, an order
id) by which it is found in the views.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from bench.soak.cluster import Cluster
from contracts.topics import Topic

log = logging.getLogger(__name__)

GIVE_UP_SECONDS = 120.0
"""How long a client keeps sending a command (or a batch) again before leaving it in
doubt: longer than PostgreSQL's pause and a service's restart together."""
TIMEOUT_SECONDS = 10.0
"""How long a client waits for an answer before sending again."""
CURRENCIES = ("CNY", "CNY", "CNY", "USD", "EUR", "HKD")
"""Currencies of the purchases: those `local.independent_analytics` converts."""
KAFKA_SOURCE = "soak-kafka"
HTTP_SOURCE = "soak-http"
NOT_KNOWN_YET = "register the customer first"
"""What sales and interaction answer (422) for a customer that has not reached them."""


@dataclass(frozen=True)
class Rates:
    """Requests per second of each client."""

    commands: float = 6.0
    kafka_purchases: float = 8.0
    http_batches: float = 1.0
    http_batch_size: int = 8
    duplicates: float = 0.05
    malformed: float = 0.10
    give_up_seconds: float = GIVE_UP_SECONDS


@dataclass
class Call:
    """One HTTP request: when it started and ended (monotonic seconds), and its status
    (None: no answer, the connection failed or timed out)."""

    service: str
    started: float
    ended: float
    status: int | None

    @property
    def seconds(self) -> float:
        return self.ended - self.started


@dataclass
class Command:
    kind: str
    """`register`, `interaction` or `opportunity`."""
    key: str
    marker: str
    customer_id: str | None
    outcome: str = "pending"
    """`accepted` (2xx), `in doubt` (no answer in time; `detail` says what came last),
    `not known yet` (the customer
    had not reached the service; nothing recorded), `refused` (another 4xx: a defect
    of the load or of the CRM, reported with `detail`)."""
    answered_at: float | None = None
    detail: str = ""


@dataclass
class Inbound:
    channel: str
    """`kafka` or `http`."""
    order_id: str
    key: bytes
    value: bytes
    reason: str | None
    """The dead-letter reason the CRM must give; None for a purchase that fits."""
    repeat: bool = False
    """An exact repeat of a purchase sent before."""
    acknowledged_at: float | None = None
    """When the broker acknowledged it, or the HTTP answer said `recorded` or
    `duplicate` (monotonic seconds); None if never."""
    outcome: str = ""
    """Over HTTP: `recorded`, `duplicate` or `rejected`."""
    answered_reason: str = ""


@dataclass
class Load:
    """The clients of a soak, run until `stop` is set."""

    cluster: Cluster
    rng: random.Random
    rates: Rates = field(default_factory=Rates)
    calls: list[Call] = field(default_factory=list)
    commands: list[Command] = field(default_factory=list)
    inbound: list[Inbound] = field(default_factory=list)
    customers: list[tuple[float, str]] = field(default_factory=list)
    """(accepted at, id) of every registered customer."""
    server_errors: list[str] = field(default_factory=list)
    """Each answer 500 or above other than 503: a defect."""
    failures: list[str] = field(default_factory=list)
    """What went wrong in the clients themselves (an answer they could not read)."""

    def __post_init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()
        self._sent_purchases: dict[str, list[Inbound]] = {"kafka": [], "http": []}
        self._serial = 0

    async def run(self, stop: asyncio.Event) -> None:
        """Run every client until `stop`, then wait for the requests under way to be
        answered or given up."""
        headers = {"Authorization": f"Bearer {self.cluster.token()}"}
        integration = {"Authorization": f"Bearer {self.cluster.token('integration')}"}
        limits = httpx.Limits(max_connections=200, max_keepalive_connections=50)
        async with (
            httpx.AsyncClient(timeout=TIMEOUT_SECONDS, headers=headers, limits=limits) as admin,
            httpx.AsyncClient(timeout=TIMEOUT_SECONDS, headers=integration) as feed,
        ):
            await asyncio.gather(
                self._paced(stop, self.rates.commands, lambda: self._command(admin)),
                self._paced(stop, self.rates.http_batches, lambda: self._http_batch(feed)),
                self._kafka(stop),
            )
            while self._tasks:
                await asyncio.wait(set(self._tasks))

    async def _paced(self, stop: asyncio.Event, rate: float, make: Callable[[], Any]) -> None:
        """`make()` started `rate` times a second, each in its own task, until `stop`."""
        if rate <= 0:
            return

        async def guarded() -> None:
            try:
                await make()
            except Exception as error:  # a fault of the load, reported, not hidden
                self.failures.append(f"{type(error).__name__}: {error}")

        interval, next_at = 1.0 / rate, time.monotonic()
        while not stop.is_set():
            task = asyncio.create_task(guarded())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            next_at += interval
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), max(0.0, next_at - time.monotonic()))

    # HTTP ---------------------------------------------------------------------------

    async def _post(
        self, client: httpx.AsyncClient, service: str, path: str, body: Any, key: str | None
    ) -> httpx.Response | None:
        """One attempt on a replica chosen at random; None when no answer came."""
        urls = self.cluster.urls(service)
        headers = {"Idempotency-Key": key} if key else {}
        started = time.monotonic()
        response: httpx.Response | None = None
        try:
            response = await client.post(self.rng.choice(urls) + path, json=body, headers=headers)
        except httpx.HTTPError:
            response = None
        self.calls.append(
            Call(service, started, time.monotonic(), response.status_code if response else None)
        )
        if response is not None and response.status_code >= 500 and response.status_code != 503:
            self.server_errors.append(
                f"{service} POST {path}: {response.status_code} {response.text[:300]}"
            )
        return response

    async def _until_answered(
        self, client: httpx.AsyncClient, service: str, path: str, body: Any, key: str | None
    ) -> httpx.Response | None:
        """The first answer that is not "try again" (no answer, 5xx, 409), or the last
        one once `rates.give_up_seconds` have passed; each attempt is the same request
        (same key)."""
        deadline = time.monotonic() + self.rates.give_up_seconds
        pause = 0.25
        while True:
            response = await self._post(client, service, path, body, key)
            again = response is None or response.status_code >= 500 or response.status_code == 409
            if not again or time.monotonic() > deadline:
                return response
            await asyncio.sleep(pause)
            pause = min(pause * 2, 2.0)

    def _known_customer(self) -> str | None:
        """A customer registered more than five seconds ago (so that it has most likely
        reached the sales and interaction services), chosen at random."""
        settled = time.monotonic() - 5.0
        count = next(
            (i for i in range(len(self.customers) - 1, -1, -1) if self.customers[i][0] < settled),
            -1,
        )
        return self.customers[self.rng.randint(0, count)][1] if count >= 0 else None

    async def _command(self, client: httpx.AsyncClient) -> None:
        key = uuid.uuid4().hex
        customer = self._known_customer()
        kind = self.rng.choice(("register", "register", "interaction", "opportunity"))
        if customer is None:
            kind = "register"
        marker = f"soak {kind} {key}"
        if kind == "register":
            service, path = "customer", "/customers"
            body: dict[str, Any] = {
                "name": marker,
                "kind": self.rng.choice(("consumer", "business")),
                "region": self.rng.choice(("华东", "华北", "华南", "西南")),
                "owner": "soak",
                "tags": self.rng.sample(["key-account", "wechat", "trade-show"], 1),
            }
        elif kind == "interaction":
            service, path = "interaction", "/interactions"
            body = {
                "customer_id": customer,
                "channel": self.rng.choice(("phone", "meeting", "email", "wechat")),
                "direction": "inbound",
                "duration_seconds": self.rng.randint(30, 3600),
                "subject": marker,
            }
        else:
            service, path = "sales", "/opportunities"
            body = {
                "customer_id": customer,
                "description": marker,
                "products": [{"product": "许可", "quantity": 1, "unit_price": "1000.00"}],
                "currency": "CNY",
                "expected_close_date": (datetime.now(UTC) + timedelta(days=60)).date().isoformat(),
                "owner": "soak",
            }
        command = Command(kind, key, marker, customer)
        self.commands.append(command)
        response = await self._until_answered(client, service, path, body, key)
        command.answered_at = time.monotonic()
        if response is None or response.status_code >= 500 or response.status_code == 409:
            command.outcome = "in doubt"
            command.detail = f"last answer {response.status_code if response else 'none'}"
        elif response.is_success:
            command.outcome = "accepted"
            answer = response.json()
            if answer.get("outcome") == "carried_out":  # its first run's answer was lost
                command.detail = "carried out, answer lost"
            if kind == "register":
                command.customer_id = (
                    answer.get("customer_id") or answer["changed"][0]["aggregate_id"]
                )
                self.customers.append((time.monotonic(), command.customer_id))
        elif response.status_code == 422 and NOT_KNOWN_YET in response.text:
            command.outcome = "not known yet"
        else:
            command.outcome = "refused"
            command.detail = f"{response.status_code} {response.text[:300]}"

    # purchases ----------------------------------------------------------------------

    def _purchase(self, channel: str) -> Inbound | None:
        """The next purchase for `channel`: a new one, a repeat, or a malformed one."""
        customer = self._known_customer()
        if customer is None:
            return None
        sent = [p for p in self._sent_purchases[channel][-500:] if p.reason is None]
        draw = self.rng.random()
        if sent and draw < self.rates.duplicates:
            original = self.rng.choice(sent)
            repeat = Inbound(
                channel, original.order_id, original.key, original.value, None, repeat=True
            )
            self.inbound.append(repeat)
            return repeat
        self._serial += 1
        source = KAFKA_SOURCE if channel == "kafka" else HTTP_SOURCE
        order_id = f"{channel[0].upper()}-{self._serial:07d}-{uuid.uuid4().hex[:8]}"
        when = datetime.now(UTC) - timedelta(
            days=self.rng.randint(0, 700), minutes=self.rng.randint(0, 1439)
        )
        document: dict[str, Any] = {
            "source": source,
            "order_id": order_id,
            "customer_id": customer,
            "amount": f"{self.rng.choice((9.9, 99, 299, 1299, 4999)) * self.rng.randint(1, 3):.2f}",
            "currency": self.rng.choice(CURRENCIES),
            "items": [],
            "channel": "online",
            "occurred_at": when.isoformat(),
        }
        reason = None
        spoilt: dict[str, Any] | bytes = document
        if draw < self.rates.duplicates + self.rates.malformed:
            # a batch over HTTP is one JSON array: a message in it is JSON whatever else
            kinds = MALFORMED if channel == "kafka" else MALFORMED[1:]
            reason, spoil = self.rng.choice(kinds)
            spoilt = spoil(document)
        value = spoilt if isinstance(spoilt, bytes) else orjson.dumps(spoilt)
        inbound = Inbound(channel, order_id, customer.encode(), value, reason)
        self._sent_purchases[channel].append(inbound)
        self.inbound.append(inbound)
        return inbound

    async def _kafka(self, stop: asyncio.Event) -> None:
        """Purchases published one at a time, each waited for (`acks=all`); a purchase
        that fits and was not acknowledged is published again later (its order id makes
        the repeat harmless), a malformed one is not."""

        def new_producer() -> AIOKafkaProducer:
            return AIOKafkaProducer(
                bootstrap_servers=self.cluster.bootstrap_servers,
                acks="all",
                request_timeout_ms=10_000,
                metadata_max_age_ms=2_000,
            )

        producer = new_producer()
        while not stop.is_set():
            try:
                await producer.start()
                break
            except (KafkaError, OSError):
                await producer.stop()
                await asyncio.sleep(1.0)
                producer = new_producer()
        interval, next_at = 1.0 / self.rates.kafka_purchases, time.monotonic()
        unacknowledged: list[Inbound] = []
        try:
            while not stop.is_set():
                purchase = (
                    unacknowledged.pop(0)
                    if unacknowledged and self.rng.random() < 0.5
                    else self._purchase("kafka")
                )
                if purchase is not None:
                    try:
                        await asyncio.wait_for(
                            producer.send_and_wait(
                                Topic.PURCHASES_INBOUND,
                                value=purchase.value,
                                key=purchase.key,
                            ),
                            15.0,
                        )
                        purchase.acknowledged_at = time.monotonic()
                    except (KafkaError, OSError, TimeoutError) as error:
                        log.info("purchase not acknowledged: %r", error)
                        if purchase.reason is None:
                            unacknowledged.append(purchase)
                        await asyncio.sleep(0.5)
                next_at += interval
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), max(0.0, next_at - time.monotonic()))
        finally:
            await producer.stop()

    async def _http_batch(self, client: httpx.AsyncClient) -> None:
        batch = [
            p
            for p in (self._purchase("http") for _ in range(self.rates.http_batch_size))
            if p is not None
        ]
        if not batch:
            return
        body = [orjson.loads(p.value) for p in batch]
        response = await self._until_answered(client, "sales", "/inbound/purchases", body, None)
        while response is not None and response.status_code == 422:
            # the batch is refused whole, naming the messages that do not fit: a client
            # leaves those out and sends the others again
            refused = {
                int(detail["location"][1]): detail["message"].split(": ", 1)[0]
                for detail in response.json().get("details") or ()
            }
            if not refused:
                break
            for index, reason in refused.items():
                batch[index].outcome, batch[index].answered_reason = "rejected", reason
            batch = [p for i, p in enumerate(batch) if i not in refused]
            if not batch:
                return
            body = [orjson.loads(p.value) for p in batch]
            response = await self._until_answered(client, "sales", "/inbound/purchases", body, None)
        if response is None or response.status_code != 200:
            for purchase in batch:
                purchase.outcome = (
                    f"batch answered {response.status_code}" if response else "no answer"
                )
            return
        for purchase, outcome in zip(batch, response.json()["outcomes"], strict=True):
            purchase.outcome = outcome["outcome"]
            purchase.answered_reason = outcome.get("reason") or ""
            if purchase.outcome in ("recorded", "duplicate"):
                purchase.acknowledged_at = time.monotonic()


MALFORMED: tuple[tuple[str, Callable[[dict[str, Any]], dict[str, Any] | bytes]], ...] = (
    ("malformed JSON", lambda d: orjson.dumps(d)[:-20]),
    ("missing field", lambda d: {k: v for k, v in d.items() if k != "amount"}),
    ("negative amount", lambda d: {**d, "amount": "-" + d["amount"]}),
    ("unknown currency", lambda d: {**d, "currency": "RMB"}),
    ("date in the future", lambda d: {**d, "occurred_at": "2031-01-01T09:00:00+08:00"}),
)
"""Ways a purchase does not fit, with the reason the CRM gives; each keeps the order id,
so that every malformed message is unique."""
