"""A background task that ends is a failure someone hears of: liveness fails with the
task's name and error, and a service process is asked to stop; a request that meets a
transient database error is answered 503 with `Retry-After`, never 500."""

from __future__ import annotations

import asyncio

import asyncpg
import eventsourcing.persistence
import httpx
import psycopg
import pytest

from services.runtime.http.app import Readiness, create_app
from services.runtime.http.authentication import TokenVerifier
from services.runtime.http.authorization import requires
from services.runtime.http.rate_limit import RateLimiter
from services.runtime.settings import ServiceSettings
from services.runtime.supervision import Supervisor
from tests.support.auth import app_keys, bearer


async def forever() -> None:
    await asyncio.Event().wait()


async def broken() -> None:
    raise RuntimeError("the fold met something it cannot handle")


async def test_an_ended_task_is_reported_and_stops_the_process() -> None:
    stops: list[str] = []
    supervisor = Supervisor(on_failure=lambda: stops.append("stop"))
    supervisor.start("consumer-customer_directory", forever())
    supervisor.start("consumer-analytics_fold", broken())
    await asyncio.sleep(0.01)
    assert supervisor.failures == [
        "background task consumer-analytics_fold ended: "
        "RuntimeError('the fold met something it cannot handle')"
    ]
    assert stops == ["stop"]
    await supervisor.stop()
    assert len(supervisor.failures) == 1, "tasks cancelled at shutdown are no failure"


async def test_liveness_names_what_failed() -> None:
    problems: list[str] = []

    async def ready() -> Readiness:
        return Readiness({"database": True})

    settings = ServiceSettings(**app_keys())
    app = create_app(
        service="probe",
        title="probe",
        description="",
        readiness=ready,
        liveness=lambda: problems,
        lifespan=None,
        verifier=TokenVerifier.from_settings(settings),
        limiter=RateLimiter(0, 1),
        max_body=settings.max_body_bytes,
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://probe") as client:
        assert (await client.get("/health/live")).json() == {"status": "alive"}
        problems.append("background task consumer-x ended: RuntimeError('boom')")
        failing = await client.get("/health/live")
    assert failing.status_code == 503
    assert failing.json()["problems"] == ["background task consumer-x ended: RuntimeError('boom')"]


@pytest.mark.parametrize(
    "error",
    [
        asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
        asyncpg.CannotConnectNowError("the database system is starting up"),
        psycopg.OperationalError("server closed the connection unexpectedly"),
        eventsourcing.persistence.OperationalError("server closed the connection"),
        ConnectionRefusedError("the database is down"),
    ],
    ids=lambda e: type(e).__qualname__,
)
async def test_a_database_blip_answers_503_with_retry_after(error: Exception) -> None:
    settings = ServiceSettings(**app_keys(), rate_limit_per_minute=0)

    async def ready() -> Readiness:
        return Readiness({"database": False})

    app = create_app(
        service="probe",
        title="probe",
        description="",
        readiness=ready,
        lifespan=None,
        verifier=TokenVerifier.from_settings(settings),
        limiter=RateLimiter(0, 1),
        max_body=settings.max_body_bytes,
    )

    @app.post("/things", dependencies=[requires("customers:write")])
    async def record() -> None:
        raise error

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://probe") as client:
        answer = await client.post("/things", headers=bearer("administrator"))
    assert answer.status_code == 503, answer.text
    assert answer.headers["Retry-After"] == "1"
    assert "briefly unavailable" in answer.json()["error"]
