"""Purchases end to end as a stream processor does it, in `crm bench purchase-ingestion`.

The job of `bench.purchase_pipeline` (inbound purchases -> sales -> first-seen customers
-> analytics profiles) as one Quix Streams application, on a broker of its own, fed the
same messages (`mixed_purchases`, published on the inbound purchases topic, keyed by the
publisher's customer reference), its state in Quix's RocksDB stores instead of
PostgreSQL:

1. a `StreamingDataFrame` on the inbound topic validates each purchase with the sales
   ingestion's parser and contract (`parse_purchase`, `PurchaseCompleted`) and resolves
   its customer as the sales ingestion does (`customer_of`: known by its reference in a
   table of the known customers' references, which the sales service keeps as its
   customer replica, here a dictionary in memory; otherwise the id derived from the
   reference); a message that does not fit goes to a dead-letter topic with its reason;
2. `group_by` re-keys the stream by customer id (Quix produces it to a repartition topic
   and reads it back), then a stateful `apply` per customer drops an order it has seen
   (state per customer: one key per order; an order resent after its reference became
   known elsewhere would not be recognised, which the sales event store does recognise)
   and produces, to the sales topic keyed by customer id, the purchase-recorded envelope
   the sales relay publishes (`contracts.sales.PurchaseRecorded` in its `EventEnvelope`,
   the event id derived from the purchase id and version 1); for a customer named by a
   reference no one knew, the first time, also the customer-registered envelope the
   customer service's relay publishes for a first-seen customer, to the customer topic;
3. a second stateful stage reads both topics (`concat`: one store, read aligned by
   timestamp) and folds each customer's events into a profile (`quix_fold.fold_event`),
   noting whether the customer was registered.

Both stages are one `Application` (one consumer group, one checkpoint for the lot), at
Quix's default processing guarantee, at-least-once, in this process or in several
(`bench.quix_processes`). It stops itself when every purchase is folded and every
first-seen customer registered. Its rate is from the first inbound message to every
purchase folded, as for our pipeline; the time to its stop (last checkpoint committed)
and its CPU until then are printed beside it.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol
from uuid import UUID

from bench.figures import PARTITIONS, allowed_rate
from bench.purchase_ingestion import publish
from bench.purchase_pipeline import KNOWN_SOURCE, TARGET, mixed_purchases
from bench.quix_fold import INSTALL_HINT, POLL_TIMEOUT, PURCHASE, application, fold_event
from contracts.customer import CustomerRegistered
from contracts.envelope import build_envelope
from contracts.references import CustomerReference, customer_id_for_reference
from contracts.registry import ContractViolation
from contracts.sales import PurchaseRecorded
from contracts.topics import Topic
from local.embedded.broker import EmbeddedBroker
from services.customer.domain import DEFAULT_CLASSIFICATION, placeholder_name
from services.runtime.messaging.envelopes import stable_event_id
from services.runtime.messaging.kafka import ensure_topics
from services.runtime.messaging.reported_facts import customer_of
from services.sales.domain import purchase_id
from services.sales.ingestion import parse_purchase

REGISTERED = "customer.registered"
DEAD_LETTERS = "bench.quix-pipeline.dead-letters.v1"
OUTPUTS = (Topic.SALES, Topic.CUSTOMER, DEAD_LETTERS)
"""The topics the application produces to (created beforehand, with `retention.ms`)."""
SALES_PRODUCER = "crm.sales"
CUSTOMER_PRODUCER = "crm.customer"


class Store(Protocol):
    """What the stages use of a Quix `State` (one customer's state)."""

    def get(self, key: str, default: Any = None) -> Any: ...

    def set(self, key: str, value: Any) -> None: ...


def resolved(raw: bytes | None, known: dict[tuple[str, str], UUID]) -> dict[str, Any]:
    """The inbound message validated by the sales contract, with the CRM id of the
    customer it names, as JSON-ready values; or why it was rejected (`rejected`)."""
    try:
        message = parse_purchase(raw)
    except ContractViolation as violation:
        return {
            "rejected": violation.reason,
            "detail": violation.detail,
            "value": (raw or b"").decode("utf-8", "replace"),
        }
    return {
        "customer_id": str(customer_of(message, known)),
        "purchase": message.model_dump(mode="json"),
    }


def recorded(value: dict[str, Any], state: Store, now: datetime) -> list[dict[str, Any]]:
    """The envelopes one resolved purchase (`resolved`) makes in its customer's state:
    none for an order seen before; else its purchase-recorded envelope and, for a
    customer named by a reference no one knew and not registered yet, the envelope of
    the customer registered as first seen there."""
    purchase = value["purchase"]
    customer_id = UUID(value["customer_id"])
    recorded_id = purchase_id(purchase["source"], purchase["order_id"])
    order = f"order:{recorded_id}"
    if state.get(order):
        return []
    state.set(order, True)
    payload = PurchaseRecorded.model_validate({**purchase, "purchase_id": recorded_id})
    envelope = build_envelope(
        payload,
        customer_id=customer_id,
        producer=SALES_PRODUCER,
        event_id=stable_event_id(recorded_id, 1),
        occurred_at=datetime.fromisoformat(purchase["occurred_at"]),
        recorded_at=now,
        aggregate_id=recorded_id,
        aggregate_version=1,
    )
    envelopes = [envelope.model_dump(mode="json")]
    reference = payload.customer_reference
    if (
        reference is not None
        and customer_id == customer_id_for_reference(reference)
        and not state.get("registered")
    ):
        state.set("registered", True)
        envelopes.append(first_seen(customer_id, reference, str(envelope.event_id), now))
    return envelopes


def first_seen(
    customer_id: UUID, reference: CustomerReference, cause: str, now: datetime
) -> dict[str, Any]:
    """The customer-registered envelope of a customer first seen in `reference`'s system
    (as the customer service registers one from a purchase without hints)."""
    payload = CustomerRegistered(
        name=placeholder_name(reference.source, reference.source_customer_id),
        kind="consumer",
        source_channel=reference.source,
        classification=DEFAULT_CLASSIFICATION,
        references=[reference],
        first_seen_in=reference.source,
    )
    return build_envelope(
        payload,
        customer_id=customer_id,
        producer=CUSTOMER_PRODUCER,
        event_id=stable_event_id(customer_id, 1),
        recorded_at=now,
        aggregate_id=customer_id,
        aggregate_version=1,
        actor=SALES_PRODUCER,
        correlation_id=cause,
        causation_id=cause,
    ).model_dump(mode="json")


def folded(profile: dict[str, Any] | None, envelope: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """The customer's profile after one more event (`fold_event`, and whether the
    customer was registered), and whether this event registered the customer."""
    registers = envelope["event_type"] == REGISTERED and not (profile or {}).get("registered")
    profile = fold_event(profile, envelope)
    if registers:
        profile["registered"] = True
    return profile, registers


def known_references(known: int, source: str) -> dict[tuple[str, str], UUID]:
    """The table of the known customers' references (`K-…` of `source`), each with a
    CRM id of its own, as the sales service's replica holds them."""
    return {(source, f"K-{n:06d}"): uuid.uuid4() for n in range(known)}


class Tally(Protocol):
    """What the application reports as it goes (`pipeline_application`)."""

    def first(self) -> None:
        """The first inbound message reached the application."""

    def folded(self, purchase: bool, registers: bool, new_profile: bool) -> None:
        """One more event folded: a purchase or not, one registering its customer or not,
        on a profile that did not exist or not."""


def pipeline_application(
    servers: str,
    known: dict[tuple[str, str], UUID],
    state_dir: Path,
    tally: Tally,
    poll_timeout: float = POLL_TIMEOUT,
) -> Any:
    """The Quix `Application` doing the job (the module's docstring), reporting to `tally`."""
    from quixstreams.state import State

    app = application(servers, "bench.quix-pipeline", state_dir, consumer_poll_timeout=poll_timeout)
    inbound = app.topic(
        str(Topic.PURCHASES_INBOUND), key_deserializer="str", value_deserializer="bytes"
    )
    outputs = {
        name: app.topic(
            str(name),
            key_serializer="str",
            value_serializer="json",
            key_deserializer="str",
            value_deserializer="json",
        )
        for name in OUTPUTS
    }
    topic_of = {PURCHASE: outputs[Topic.SALES], REGISTERED: outputs[Topic.CUSTOMER]}
    started: list[bool] = []

    def resolve(raw: bytes) -> dict[str, Any]:
        if not started:
            started.append(True)
            tally.first()
        return resolved(raw, known)

    def record(value: dict[str, Any], state: State) -> list[dict[str, Any]]:
        return recorded(value, state, datetime.now(UTC))

    def fold(envelope: dict[str, Any], state: State) -> None:
        profile = state.get("profile")
        new_profile = profile is None
        profile, registers = folded(profile, envelope)
        state.set("profile", profile)
        tally.folded(envelope["event_type"] == PURCHASE, registers, new_profile)

    checked = app.dataframe(inbound).apply(resolve)
    checked.filter(lambda value: "rejected" in value).to_topic(outputs[DEAD_LETTERS])
    (
        checked.filter(lambda value: "rejected" not in value)
        .group_by(
            lambda value: value["customer_id"],
            name="customer",
            key_serializer="str",
            key_deserializer="str",
        )
        .apply(record, stateful=True, expand=True)
        .to_topic(lambda value, key, timestamp, headers: topic_of[value["event_type"]])
    )
    events = app.dataframe(outputs[Topic.SALES]).concat(app.dataframe(outputs[Topic.CUSTOMER]))
    events.update(fold, stateful=True)
    return app


class Clock:
    """A `Tally` in one process: the counts, when the first message came, when every
    purchase and every first-seen customer was folded, stopping the application then."""

    def __init__(self, purchases: int, registered: int, at_first: Callable[[], None]) -> None:
        self.expect = {"purchases": purchases, "registered": registered}
        self.counts = {"purchases": 0, "registered": 0, "profiles": 0}
        self.times: dict[str, float] = {}
        self.at_first = at_first
        self.app: Any = None

    def first(self) -> None:
        self.times.update(first=time.perf_counter(), cpu=time.process_time())
        self.at_first()

    def folded(self, purchase: bool, registers: bool, new_profile: bool) -> None:
        counts = self.counts
        counts["purchases"] += purchase
        counts["registered"] += registers
        counts["profiles"] += new_profile
        done = True
        for name, expect in self.expect.items():
            if counts[name] >= expect:
                self.times.setdefault(name, time.perf_counter())
            else:
                done = False
        if done:
            self.app.stop()


def quix_pipeline_run(
    servers: str,
    known: dict[tuple[str, str], UUID],
    purchases: int,
    first_seen_customers: int,
    state_dir: Path,
    at_first: Callable[[], None] = lambda: None,
    poll_timeout: float = POLL_TIMEOUT,
) -> dict[str, float]:
    """The application over the inbound purchases already published: purchases/s from
    its first inbound message until every purchase was folded, the seconds until then,
    until every first-seen customer was registered in the profiles too and until its
    stop, its CPU seconds (this process: Quix, librdkafka's threads, RocksDB) and the
    profiles. `at_first` is called at the first inbound message."""
    clock = Clock(purchases, first_seen_customers, at_first)
    clock.app = pipeline_application(servers, known, state_dir, clock, poll_timeout)
    clock.app.run()
    done = time.perf_counter()
    times, counts = clock.times, clock.counts
    if "purchases" not in times or "registered" not in times:
        raise RuntimeError(
            f"Quix Streams stopped with {counts['purchases']} of {purchases} purchases and "
            f"{counts['registered']} of {first_seen_customers} customers folded"
        )
    first = times["first"]
    return {
        "purchases_per_second": purchases / (times["purchases"] - first),
        "purchases_seconds": times["purchases"] - first,
        "registered_seconds": times["registered"] - first,
        "seconds": done - first,
        "cpu": time.process_time() - times["cpu"],
        "profiles": counts["profiles"],
    }


def run_quix_pipeline(count: int, scratch: Path, processes: int = 1) -> dict[str, float]:
    """`count` purchases (`mixed_purchases`) through the application on a broker of its
    own, in this process (published first) or in `processes` processes
    (`bench.quix_processes`); its figures (`quix_…`) with the broker's CPU seconds from
    the first inbound message (or the publication) to the application stopped."""
    messages, known, unseen = mixed_purchases(count)
    table = known_references(known, KNOWN_SOURCE)
    with EmbeddedBroker() as broker:
        servers = broker.bootstrap_servers
        asyncio.run(
            ensure_topics(servers, [Topic.PURCHASES_INBOUND, *OUTPUTS], partitions=PARTITIONS)
        )
        if processes > 1:
            from bench.quix_processes import quix_in_processes

            figures = quix_in_processes(
                servers, messages, table, unseen, scratch, processes, broker.cpu_seconds
            )
        else:
            asyncio.run(publish(servers, messages))
            broker_cpu: list[float] = []
            figures = quix_pipeline_run(
                servers,
                table,
                count,
                unseen,
                scratch,
                at_first=lambda: broker_cpu.append(broker.cpu_seconds()),
            )
            figures["broker_cpu"] = broker.cpu_seconds() - broker_cpu[0]
    return {f"quix_{name}": value for name, value in figures.items()}


def print_quix_pipeline(figures: dict[str, float]) -> None:
    """The Quix Streams row beside the end-to-end figures (`print_pipeline`), or how to
    install it."""
    if "quix_purchases_per_second" not in figures:
        print("    " + INSTALL_HINT)
        return
    count, quix = figures["e2e_count"], figures["quix_purchases_per_second"]
    ours = figures["e2e_purchases_per_second"]
    processes = int(figures.get("quix_processes", 1))
    print(
        "  Quix Streams, the same job as one application (validation, customers, orders "
        "seen and profiles in RocksDB state; at-least-once)"
        + (f", in {processes} processes of one group" if processes > 1 else ", one process")
    )
    print(
        f"    {quix:9.0f} purchases/s   target {TARGET}/s ({quix / TARGET:.2f} of it); "
        f"{figures['quix_purchases_seconds']:.2f} s to every purchase in the profiles, "
        f"{figures['quix_registered_seconds']:.2f} s to the first-seen customers registered "
        f"there, {figures['quix_seconds']:.2f} s to its stop; "
        f"{figures['quix_profiles']:.0f} profiles"
    )
    quix_cpu = {"python": figures["quix_cpu"], "broker": figures["quix_broker_cpu"]}
    users = ("sales", "customer", "fold", "postgres", "broker")
    our_cpu = {name: figures[f"e2e_{name}_cpu"] for name in users}
    print(
        "    CPU per purchase: "
        + ", ".join(f"{name} {s / count * 1e6:.0f} µs ({s:.1f} s)" for name, s in quix_cpu.items())
    )
    cores = os.cpu_count() or 1
    ours_total, quix_total = sum(our_cpu.values()), sum(quix_cpu.values())
    both = figures["e2e_registered_seconds"] / figures["quix_registered_seconds"]
    print(
        f"    our pipeline / Quix Streams: {ours / quix:.2f} times the rate to every purchase "
        f"folded, {1 / both:.2f} times to every first-seen customer registered too; "
        f"{ours_total / quix_total:.2f} times the CPU "
        f"({ours_total / count * 1e6:.0f} µs against {quix_total / count * 1e6:.0f} µs "
        "per purchase, all processes)"
    )
    print(
        f"    what that CPU allows for the whole job (every purchase folded, every first-seen "
        f"customer registered) on {cores} cores, perfectly overlapped: our pipeline "
        f"{allowed_rate(spread(our_cpu, 'fold', figures['e2e_fold_processes']), count, cores):.0f}"
        f", Quix Streams {allowed_rate(spread(quix_cpu, 'python', processes), count, cores):.0f}"
        " purchases/s"
    )


def spread(cpu: dict[str, float], name: str, processes: float) -> dict[str, float]:
    """`cpu` with `name`'s seconds shared evenly by its `processes`, one entry each."""
    if name not in cpu or processes <= 1:
        return cpu
    shared = {f"{name} {n}": cpu[name] / processes for n in range(int(processes))}
    return {**{k: v for k, v in cpu.items() if k != name}, **shared}
