"""What a purchase costs in Python on its way through the sales service, step by step:
the last lines of `crm bench purchase-ingestion`.

The same purchases as the end-to-end run go, in this process and without I/O, through
what the sales service does to each: the inbound message validated (`parse_purchase`),
the purchase made (`new_purchase`), the aggregate and its event made (one aggregate per
purchase: `Purchase`, eventsourcing's aggregate machinery), the event mapped and encoded
for the event store (eventsourcing's mapper and JSON transcoder, with the CRM's metadata);
then, as the relay does, the stored event decoded back into a domain event, translated
to its contract (`to_contract`, validated by pydantic) and serialised for the topic. Beside
them, the floor of the encoding: the purchase's fields as one JSON document by orjson.
Each step's figure is the median of `rounds` timings, in µs per purchase, with the
garbage collector tuned as the services' consumers tune it.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import orjson

from bench.purchase_ingestion import purchase
from contracts.references import customer_id_for_reference
from contracts.registry import serialize_event
from services.runtime.messaging.consumer import tune_garbage_collector
from services.sales.application import NewPurchase, SalesApplication
from services.sales.ingestion import new_purchase, parse_purchase
from services.sales.publishing import to_contract

STEPS = (
    ("validate", "inbound message validated"),
    ("purchase", "purchase made"),
    ("aggregate", "aggregate and its event made"),
    ("encode", "event mapped and encoded for the store"),
    ("floor", "  (floor: the fields as JSON by orjson)"),
    ("decode", "relay: stored event decoded"),
    ("translate", "relay: translated to the contract"),
    ("serialise", "relay: serialised for the topic"),
)


def recording_costs(count: int = 5000, rounds: int = 3) -> dict[str, float]:
    """µs per purchase of each step (`STEPS`), the median of `rounds`."""
    tune_garbage_collector()  # as every service's consumers do
    application = SalesApplication()  # in memory: only its mapper is used
    mapper = application.mapper
    messages = [value for _, value in (purchase(i, "shop-cn", f"U-{i:06d}") for i in range(count))]
    timings: dict[str, list[float]] = {name: [] for name, _ in STEPS}

    def step(name: str, work: Callable[[Any], Any], items: list[Any]) -> list[Any]:
        started = time.perf_counter()
        done = [work(item) for item in items]
        timings[name].append((time.perf_counter() - started) / count * 1e6)
        return done

    def made(message: Any) -> NewPurchase:
        return new_purchase(message, customer_id_for_reference(message.customer_reference))

    for _ in range(rounds):
        parsed = step("validate", parse_purchase, messages)
        purchases = step("purchase", made, parsed)
        events = step("aggregate", lambda p: p.aggregate().collect_events()[0], purchases)
        stored = step("encode", mapper.to_stored_event, events)
        step("floor", lambda p: orjson.dumps(p, default=str), purchases)
        decoded = step("decode", mapper.to_domain_event, stored)
        envelopes = step("translate", to_contract, decoded)
        step("serialise", serialize_event, envelopes)
    return {name: statistics.median(values) for name, values in timings.items()}


def print_recording_costs(costs: dict[str, float]) -> None:
    steps = [name for name, _ in STEPS if name != "floor"]
    print(
        "  Python per purchase in the sales service, without I/O (µs): "
        f"{sum(costs[n] for n in steps):.0f} in all"
    )
    for name, label in STEPS:
        print(f"    {label:45s} {costs[name]:6.1f}")
