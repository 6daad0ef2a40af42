"""A background task that ends is a failure someone hears of: liveness fails with the
task's name and error, and a service process is asked to stop."""

from __future__ import annotations

import asyncio

import httpx

from services.runtime.http.app import Readiness, create_app
from services.runtime.http.security import RateLimiter, TokenVerifier
from services.runtime.settings import ServiceSettings
from services.runtime.supervision import Supervisor
from tests.support.auth import app_keys


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
