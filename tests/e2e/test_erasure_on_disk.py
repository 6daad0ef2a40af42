"""Erasure that reaches the disk: after a customer is erased and every service has
compacted, none of their personal values is left in any file of the database's data
directory (tables, indexes, statistics, the write-ahead log, the server log), in any
service's log, or in any message of the topics the CRM writes.

The test runs its own PostgreSQL cluster, so that the files it searches hold this
test's data alone. Before the erasure it checks that the search finds the values (in the
tables, their indexes and the WAL), so that finding nothing afterwards means something.
What the documented guarantee allows to remain is what other systems published on the
inbound topics, in plain text, for those topics' retention.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterable
from functools import partial
from pathlib import Path

import asyncpg
import pytest

from contracts.personal import ERASED
from local.embedded.postgres import EmbeddedPostgres
from local.embedded.processes import EmbeddedError
from local.launcher import ServiceProcess
from tests.support.http import wait_for
from tests.support.infrastructure import Infrastructure, started_infrastructure
from tests.support.metrics import scrape, total
from tests.support.personal_data import (
    forms,
    personal_values,
    spread,
    topic_messages,
)
from tests.support.waiting import eventually

SERVICES = ("customer", "sales", "interaction", "analytics")


@pytest.fixture
async def infra(tmp_path: Path) -> AsyncIterator[Infrastructure]:
    """A broker and a PostgreSQL cluster of this test's own."""
    for attempt in range(3):
        # a free port chosen can be taken by another process before the server binds it
        postgres = EmbeddedPostgres(tmp_path / "postgres")
        try:
            await asyncio.to_thread(postgres.start)
            break
        except EmbeddedError:
            if attempt == 2:
                raise
    try:
        async for infrastructure in started_infrastructure(postgres, tmp_path):
            yield infrastructure
    finally:
        await asyncio.to_thread(postgres.stop)


@pytest.fixture
async def services(infra: Infrastructure) -> AsyncIterator[dict[str, ServiceProcess]]:
    """Every service, compacting erasures a second after they happen."""
    started: dict[str, ServiceProcess] = {}
    try:
        for name in SERVICES:
            service = infra.service(name, CRM_ERASURE_COMPACTION_INTERVAL_SECONDS="1")
            await asyncio.to_thread(service.start)
            started[name] = service
        yield started
    finally:
        for service in started.values():
            await asyncio.to_thread(service.stop)


def files_holding(root: Path, values: Iterable[str]) -> dict[str, list[str]]:
    """Each file under `root` that holds one of `values`, relative to `root`, with the
    values found in it."""
    patterns = {form: value for value in values for form in forms([value])}
    found: dict[str, list[str]] = {}
    for path in sorted(root.rglob("*")):
        if not path.is_file():
            continue
        try:
            content = path.read_bytes()
        except (PermissionError, FileNotFoundError):  # a WAL segment removed meanwhile
            continue
        hits = sorted({value for form, value in patterns.items() if form in content})
        if hits:
            found[str(path.relative_to(root))] = hits
    return found


async def write_everything_down(database_url: str) -> None:
    """Statistics gathered and every page on disk: the worst case for an erasure, with
    the values in `pg_statistic` and in data files, not only in the WAL."""
    connection = await asyncpg.connect(database_url)
    try:
        await connection.execute("ANALYZE")
        await connection.execute("CHECKPOINT")
    finally:
        await connection.close()


async def compacted(service: ServiceProcess) -> bool:
    """The service has rewritten its tables since the erasure and has none pending."""
    async with service.client() as client:
        metrics = await scrape(client)
    done = total(metrics, "crm_erasure_compactions_total", outcome="done")
    return done >= 1 and total(metrics, "crm_erasures_pending_compaction") == 0


async def test_an_erased_customer_leaves_nothing_on_disk(
    infra: Infrastructure, services: dict[str, ServiceProcess], tmp_path: Path
) -> None:
    forgotten = personal_values(uuid.uuid4().hex[:10])
    kept = personal_values(uuid.uuid4().hex[:10])
    async with (
        services["customer"].client(timeout=15) as customers,
        services["sales"].client(timeout=15) as sales,
        services["interaction"].client(timeout=15) as interactions,
        services["analytics"].client(timeout=15) as analytics,
    ):
        clients = {"customer": customers, "sales": sales, "interaction": interactions}
        customer_id = await spread(clients, infra.bootstrap_servers, forgotten)
        await spread(clients, infra.bootstrap_servers, kept)
        # looked up by the reference: the path is in the access log and the audit log
        found = await customers.get(f"/customers/by-reference/callcentre/{forgotten['reference']}")
        assert found.status_code == 200, found.text
        await wait_for(
            analytics,
            f"/profiles/{customer_id}",
            lambda p: p.get("name") == forgotten["name"] and p.get("csat_average") == 2,
            timeout=30,
        )
        await wait_for(
            sales, f"/customers/{customer_id}/purchases", lambda body: len(body["items"]) == 1
        )
        await write_everything_down(infra.database_url)

        # The search finds them where a database keeps them: tables, indexes, the WAL.
        before = files_holding(infra.postgres.data_dir, forgotten.values())
        assert any(path.startswith("pg_wal/") for path in before), before
        assert any(path.startswith("base/") for path in before), before
        assert forgotten["name"] in {v for values in before.values() for v in values}

        erased = await customers.post(f"/customers/{customer_id}/erasure", json={})
        assert erased.status_code == 200, erased.text
        await wait_for(analytics, f"/profiles/{customer_id}", lambda p: p["name"] == ERASED)
        for service in services.values():
            await eventually(
                partial(compacted, service),
                timeout=60,
                describe=f"{service} compacted its tables after the erasure",
            )

    # Nothing of theirs on disk: data directory (tables, indexes, statistics, WAL,
    # server log), the services' and the broker's logs, every topic the CRM writes.
    assert files_holding(tmp_path, forgotten.values()) == {}
    leaked = [
        m for m in await topic_messages(infra.bootstrap_servers)
        if any(p in m for p in forms(forgotten.values()))
    ]  # fmt: skip
    assert leaked == []
    # The other customer's data is still there.
    assert files_holding(infra.postgres.data_dir, [kept["name"], kept["email"]])
