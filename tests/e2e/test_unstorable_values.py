"""Nothing is accepted that cannot be stored and shown, and no stored value breaks a read.

- Every text, date and JSON field of every request body of every service, sent a NUL or
  another control character, or a date in the year 1 or 9999, is answered 422 naming the
  field (the fields are found by walking the body models), and the service keeps working.
  (Inbound messages with such values are in `tests/support/malformed.py`, dead-lettered
  with their reason by `test_malformed_inbound.py`.)
- Analytics, given events at the bounds of the window of dates and events recorded
  before the rules (a purchase dated in the year 1, a name holding NUL), shows the
  customer in `/profiles`, its CSV, the profile and the 360; and a profile row stored
  with a date before Christ by an older version is read too.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import asyncpg

from contracts.topics import Topic
from contracts.values import EARLIEST, LATEST, REPLACEMENT
from local.launcher import ServiceProcess
from tests.support.events import raw_envelope
from tests.support.fields import Leaf, leaves, request_bodies
from tests.support.http import csv_rows, wait_for
from tests.support.infrastructure import Infrastructure
from tests.support.kafka import publish_raw

UNSTORABLE: dict[str, list[Any]] = {
    "text": ["a\x00b", "a\x1bb", "a\x85b"],
    "day": ["0001-01-01", "9999-12-31"],
    "moment": ["0001-01-01T00:00:00+08:00", "9999-12-31T20:00:00-08:00"],
    "json": [{"field": "region", "op": "eq", "value": "华东\x00"}],
}


YEAR_1_IN_SHANGHAI = datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=8)))


def unstorable(leaf: Leaf, n: int) -> Any:
    """One of the values of the leaf's kind, taking turns along the leaves."""
    values = UNSTORABLE[leaf.kind]
    return values[n % len(values)]


async def test_every_body_field_refuses_unstorable_values_naming_it(
    all_services: dict[str, ServiceProcess],
) -> None:
    services = all_services
    sent = 0
    for n, (route, model) in enumerate(request_bodies().items()):
        service, method, template = route.split(" ", 2)
        path = re.sub(r"\{[a-z_]+\}", lambda _: str(uuid.uuid4()), template)
        # a token of its own per route: the burst a token may send is not the point here
        async with services[service].client(subject=f"values-{n}", timeout=30) as client:
            for k, leaf in enumerate(leaves(model)):
                value = unstorable(leaf, k)
                response = await client.request(method, path, json=leaf.document(value))
                described = f"{route} {leaf} = {value!r}: {response.status_code} {response.text}"
                assert response.status_code == 422, described
                locations = [d["location"] for d in response.json()["details"]]
                assert ["body", *(str(step) for step in leaf.path)] in locations, described
                sent += 1
    assert sent > 100
    async with services["customer"].client() as client:  # and the service keeps working
        registered = await client.post("/customers", json={"name": "华信", "kind": "business"})
        assert registered.status_code == 201, registered.text


def _purchase(customer: uuid.UUID, at: datetime) -> tuple[bytes, bytes]:
    payload = {
        "purchase_id": str(uuid.uuid4()),
        "source": "shop-cn",
        "order_id": uuid.uuid4().hex,
        "amount": "100.00",
        "currency": "CNY",
    }
    now = datetime.now(UTC)
    return raw_envelope("sales.purchase_recorded", customer, payload, at, recorded_at=now)


def _shown(body: Any) -> bool:
    return isinstance(body, dict) and body.get("purchase_count") == 3


async def test_no_stored_value_breaks_the_analytics_reads(
    infra: Infrastructure, analytics_service: ServiceProcess
) -> None:
    customer = uuid.uuid4()
    long_ago = datetime.now(UTC) - timedelta(days=400)
    old_registration = {"name": "客户\x00甲", "kind": "business", "region": "华东"}
    await publish_raw(
        infra.bootstrap_servers,
        Topic.CUSTOMER,
        [raw_envelope("customer.registered", customer, old_registration, long_ago,
                      aggregate_id=customer)],
    )  # fmt: skip
    await publish_raw(
        infra.bootstrap_servers,
        Topic.SALES,
        [
            _purchase(customer, EARLIEST),  # the bounds of the window
            _purchase(customer, LATEST),
            _purchase(customer, YEAR_1_IN_SHANGHAI),  # recorded before the rules
        ],
    )
    async with analytics_service.client(timeout=30) as client:
        profile = await wait_for(client, f"/profiles/{customer}", _shown, timeout=30)
        assert profile["name"] == f"客户{REPLACEMENT}甲"
        assert datetime.fromisoformat(profile["first_purchase_at"]) == EARLIEST
        assert datetime.fromisoformat(profile["last_purchase_at"]) == LATEST
        await _every_read_answers(client, customer)

        # A row an older version stored with a date before Christ (in UTC) reads too.
        connection = await asyncpg.connect(infra.database_url)
        try:
            schema = await connection.fetchval(
                "SELECT table_schema FROM information_schema.columns "
                "WHERE table_name = 'profiles' AND column_name = 'first_purchase_at'"
            )
            await connection.execute(
                f"UPDATE {schema}.profiles SET first_purchase_at = "
                "'0001-01-01 00:00:00+08'::timestamptz WHERE customer_id = $1",
                customer,
            )
        finally:
            await connection.close()
        profile = (await client.get(f"/profiles/{customer}")).json()
        assert datetime.fromisoformat(profile["first_purchase_at"]) == EARLIEST
        await _every_read_answers(client, customer)


async def _every_read_answers(client: Any, customer: uuid.UUID) -> None:
    listed = await client.get("/profiles", params={"limit": 1000})
    assert listed.status_code == 200, listed.text
    assert str(customer) in {p["customer_id"] for p in listed.json()["items"]}
    exported = await client.get("/profiles", params={"format": "csv", "limit": 1000})
    assert exported.status_code == 200, exported.text
    assert str(customer) in {row["customer_id"] for row in csv_rows(exported)}
    view = await client.get(f"/customers/{customer}/360")
    assert view.status_code == 200, view.text
