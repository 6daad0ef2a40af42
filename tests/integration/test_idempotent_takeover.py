"""A command whose server stopped before it answered is neither lost nor done twice.

The server's stop is represented by what it leaves in the database: a claimed key without
an answer, with or without the command's events recorded. The last test has two live runs
of one request, the first held up by a lock on the event store, so that only the commit
mark keeps the second from recording too.
"""

from __future__ import annotations

import asyncio
import json

import asyncpg
import httpx
from fastapi import FastAPI

from services.runtime.http.idempotency import REPLAYED, fingerprint
from tests.support.auth import bearer
from tests.support.infrastructure import Infrastructure
from tests.support.routes import DEFINITIONS, app_of
from tests.support.serving import served_settings, serving
from tests.support.waiting import eventually

ACTOR = "li.na"
HEADERS = {**bearer("administrator", ACTOR), "Content-Type": "application/json"}


def customer_app(infra: Infrastructure) -> FastAPI:
    """The customer service, taking over a key unanswered for a second."""
    settings = served_settings("customer", infra, idempotency_takeover_seconds=1)
    return app_of(DEFINITIONS["customer"], settings)


def registration(name: str) -> bytes:
    return json.dumps({"name": name, "kind": "business"}).encode()


async def registered(client: httpx.AsyncClient, name: str) -> list[str]:
    """The ids of the customers called `name` in the directory (after a registration
    known to be there has arrived)."""
    page = (await client.get("/customers", params={"limit": 200}, headers=HEADERS)).json()
    return [item["customer_id"] for item in page["items"] if item["name"] == name]


async def settled(client: httpx.AsyncClient, name: str, marker: str) -> list[str]:
    """The customers called `name`, once the registration of `marker`, sent after them,
    is in the directory too (the directory follows the event store in order)."""
    done = await client.post("/customers", content=registration(marker), headers=HEADERS)
    assert done.status_code == 201, done.text

    async def arrived() -> list[str]:
        assert await registered(client, marker)
        return await registered(client, name)

    return await eventually(arrived, describe=f"{marker} in the directory")


async def test_a_request_claimed_by_a_stopped_server_is_run_by_its_retry_once(
    infra: Infrastructure,
) -> None:
    app = customer_app(infra)
    body = registration("断电客户")
    key = "register-after-a-crash"
    async with serving(app) as client:
        pool = await asyncpg.connect(infra.database_url)
        try:
            await pool.execute(  # what a server killed after claiming the key leaves
                """INSERT INTO customer.idempotent_requests
                   (actor, key, fingerprint, started_at, claimed_at)
                   VALUES ($1, $2, $3, now() - interval '1 minute', now() - interval '1 minute')""",
                ACTOR,
                key,
                fingerprint({"method": "POST", "path": "/customers", "query_string": b""}, body),
            )
        finally:
            await pool.close()
        keyed = {**HEADERS, "Idempotency-Key": key}
        retried = await client.post("/customers", content=body, headers=keyed)
        assert retried.status_code == 201, retried.text
        assert retried.headers.get(REPLAYED) is None, "the retry ran the command"
        again = await client.post("/customers", content=body, headers=keyed)
        assert again.status_code == 201 and again.headers.get(REPLAYED) == "true"
        assert again.json() == retried.json()
        assert await settled(client, "断电客户", "after-1") == [retried.json()["customer_id"]]


async def test_a_request_recorded_but_not_answered_is_not_run_again(
    infra: Infrastructure,
) -> None:
    app = customer_app(infra)
    body = registration("答复丢失")
    key = "register-answer-lost"
    keyed = {**HEADERS, "Idempotency-Key": key}
    async with serving(app) as client:
        first = await client.post("/customers", content=body, headers=keyed)
        assert first.status_code == 201, first.text
        customer_id = first.json()["customer_id"]
        connection = await asyncpg.connect(infra.database_url)
        try:  # a server killed after recording the events, before storing the answer
            await connection.execute(
                """UPDATE customer.idempotent_requests
                   SET status = NULL, headers = NULL, body = NULL, answered_at = NULL,
                       claimed_at = now() - interval '1 minute'
                   WHERE actor = $1 AND key = $2""",
                ACTOR,
                key,
            )
        finally:
            await connection.close()
        retried = await client.post("/customers", content=body, headers=keyed)
        assert retried.status_code == 200, retried.text
        assert retried.headers.get(REPLAYED) == "true"
        answer = retried.json()
        assert answer["outcome"] == "carried_out"
        assert answer["changed"] == [{"aggregate_id": customer_id, "version": 1}]
        again = await client.post("/customers", content=body, headers=keyed)
        assert (again.status_code, again.json()) == (200, answer)
        assert await settled(client, "答复丢失", "after-2") == [customer_id]


async def test_two_live_runs_of_one_request_record_once(infra: Infrastructure) -> None:
    app = customer_app(infra)
    body = registration("慢请求")
    keyed = {**HEADERS, "Idempotency-Key": "register-slowly"}
    async with serving(app) as client:
        # a table lock held elsewhere stops the first run just before its events go in,
        # its commit mark written and not committed
        blocker = await asyncpg.connect(infra.database_url)
        blocking = blocker.transaction()
        await blocking.start()
        await blocker.execute("LOCK TABLE customer.customers_events IN EXCLUSIVE MODE")
        first = asyncio.create_task(client.post("/customers", content=body, headers=keyed))
        await asyncio.sleep(1.5)  # past the takeover time: the retry runs the request too
        assert not first.done()
        second = asyncio.create_task(client.post("/customers", content=body, headers=keyed))
        await asyncio.sleep(1)
        await blocking.rollback()
        await blocker.close()
        answers = await asyncio.gather(first, second)
        statuses = sorted(a.status_code for a in answers)
        assert 201 in statuses and set(statuses) <= {201, 409}, [a.text for a in answers]
        created = {a.json()["customer_id"] for a in answers if a.status_code == 201}
        assert len(created) == 1
        third = await client.post("/customers", content=body, headers=keyed)
        assert third.status_code == 201 and third.json()["customer_id"] in created
        assert await settled(client, "慢请求", "after-3") == sorted(created)
