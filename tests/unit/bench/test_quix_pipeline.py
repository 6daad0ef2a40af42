"""The stages Quix Streams runs in `crm bench purchase-ingestion`: each purchase validated,
its customer resolved, recorded once per order, a customer no one knew registered once,
and both folded into the customer's profile."""

from typing import Any
from uuid import UUID, uuid4

import orjson
import pytest

from bench.figures import allowed_rate
from bench.purchase_ingestion import purchase
from bench.quix_fold import INSTALL_HINT
from bench.quix_pipeline import (
    Clock,
    folded,
    print_quix_pipeline,
    recorded,
    resolved,
    spread,
)
from contracts.customer import CustomerRegistered
from contracts.envelope import EventEnvelope
from contracts.references import CustomerReference, customer_id_for_reference
from contracts.registry import parse_event
from contracts.sales import PurchaseRecorded
from services.sales.domain import purchase_id
from services.sales.ingestion import new_purchase, parse_purchase
from services.sales.publishing import to_contract

KNOWN = UUID("5d1f2a3b-4c5d-4e6f-8a7b-9c0d1e2f3a4b")
TABLE = {("erp", "K-000001"): KNOWN}
NOW = parse_purchase(purchase(0, "erp", "K-1")[1]).occurred_at


class State:
    """One customer's state, as a Quix `State` keeps it."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def set(self, key: str, value: Any) -> None:
        self.values[key] = value


def through(state: State, *messages: tuple[bytes, bytes]) -> list[EventEnvelope[Any]]:
    """The envelopes the messages make in `state`, as the topics' consumers parse them
    (values round-tripped through JSON, as Quix produces them)."""
    made = []
    for _, value in messages:
        resolved_value = orjson.loads(orjson.dumps(resolved(value, TABLE)))
        made += recorded(resolved_value, state, NOW)
    return [parse_event(orjson.dumps(envelope)) for envelope in made]


def test_a_purchase_by_a_known_customer_is_recorded_on_that_customer_once() -> None:
    message = purchase(7, "erp", "K-000001")
    state = State()

    first = through(state, message)
    again = through(state, message)

    assert [e.event_type for e in first] == ["sales.purchase_recorded"]
    envelope = first[0]
    assert envelope.customer_id == KNOWN
    assert isinstance(envelope.payload, PurchaseRecorded)
    assert envelope.payload.purchase_id == purchase_id("shop-cn", "SO-00000007")
    assert str(envelope.payload.amount) == "16.90"
    assert again == []


def test_the_first_purchase_by_an_unseen_customer_registers_that_customer_once() -> None:
    state = State()
    reference = CustomerReference(source="shop-cn", source_customer_id="N-00000001")

    first = through(state, purchase(1, "shop-cn", "N-00000001"))
    second = through(state, purchase(3, "shop-cn", "N-00000001"))

    derived = customer_id_for_reference(reference)
    assert [e.event_type for e in first] == ["sales.purchase_recorded", "customer.registered"]
    assert {e.customer_id for e in first + second} == {derived}
    registered = first[1]
    assert isinstance(registered.payload, CustomerRegistered)
    assert registered.payload.references == [reference]
    assert registered.payload.first_seen_in == "shop-cn"
    assert registered.causation_id == str(first[0].event_id)
    assert [e.event_type for e in second] == ["sales.purchase_recorded"]


def test_the_purchase_envelope_is_the_one_the_sales_relay_publishes() -> None:
    message = parse_purchase(purchase(2, "erp", "K-000001")[1])
    relayed = to_contract(new_purchase(message, KNOWN).aggregate().collect_events()[0])
    assert relayed is not None

    [made] = through(State(), purchase(2, "erp", "K-000001"))

    different = {"recorded_at"}  # when each recorded it
    assert made.model_dump(exclude=different) == relayed.model_dump(exclude=different)


def test_a_message_that_does_not_fit_the_contract_is_rejected_with_its_reason() -> None:
    value = purchase(5, "erp", "K-000001")[1].replace(b'"amount":"14.90"', b'"amount":"-1"')

    rejected = resolved(value, TABLE)

    assert rejected["rejected"] == "negative amount"
    assert "amount" in rejected["detail"]
    assert rejected["value"] == value.decode()


def test_the_profile_counts_purchases_and_the_registration_once() -> None:
    state = State()
    envelopes = [
        orjson.loads(orjson.dumps(e.model_dump(mode="json")))
        for e in through(state, purchase(1, "shop-cn", "N-1"), purchase(3, "shop-cn", "N-1"))
    ]
    registration = next(e for e in envelopes if e["event_type"] == "customer.registered")
    profile = None
    registrations = 0
    for envelope in [*envelopes, registration]:  # the registration delivered twice
        profile, registers = folded(profile, envelope)
        registrations += registers

    assert profile is not None
    assert profile["purchases"] == 2
    assert profile["cents"] == {"CNY": 1090 + 1290}
    assert profile["registered"] is True
    assert registrations == 1


def test_an_unknown_reference_is_not_resolved_to_a_known_customer() -> None:
    unknown = uuid4()
    value = resolved(purchase(4, "erp", "K-999999")[1], {("erp", "K-000002"): unknown})
    assert value["customer_id"] == str(
        customer_id_for_reference(CustomerReference(source="erp", source_customer_id="K-999999"))
    )


def test_without_quix_streams_the_row_says_how_to_install_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    print_quix_pipeline({"e2e_count": 20_000.0, "e2e_purchases_per_second": 4000.0})

    assert capsys.readouterr().out.strip() == INSTALL_HINT


def test_cpu_shared_by_processes_allows_them_to_run_at_once() -> None:
    cpu = {"python": 8.0, "broker": 1.0}

    one = allowed_rate(spread(cpu, "python", 1), 20_000, 2)
    two = allowed_rate(spread(cpu, "python", 2), 20_000, 2)

    assert one == 20_000 / 8.0  # one process: bound by its own core
    assert two == 20_000 / 4.5  # two: bound by the two cores, 9 s of CPU in all


class App:
    stopped = 0

    def stop(self) -> None:
        self.stopped += 1


def test_the_application_stops_once_every_purchase_and_customer_is_folded() -> None:
    clock = Clock(purchases=2, registered=1, at_first=lambda: None)
    clock.app = app = App()
    clock.first()

    clock.folded(purchase=True, registers=False, new_profile=True)
    clock.folded(purchase=False, registers=True, new_profile=False)
    assert app.stopped == 0 and "registered" in clock.times and "purchases" not in clock.times
    clock.folded(purchase=True, registers=False, new_profile=True)

    assert app.stopped == 1
    assert clock.counts == {"purchases": 2, "registered": 1, "profiles": 2}
    assert clock.times["first"] <= clock.times["registered"] <= clock.times["purchases"]
