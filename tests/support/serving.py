"""A service's app served in the test's own process on real infrastructure.

`serving(app)` runs `app` under uvicorn on a free port (its lifespan starts the service's
runtime on the database and broker its settings name) and yields a client of it;
`served_settings(name, infra)` are the settings of such an app.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI

from local.reference import settings_classes
from services.runtime.settings import ServiceSettings
from tests.support.auth import app_keys
from tests.support.infrastructure import Infrastructure
from tests.support.waiting import eventually


def served_settings(name: str, infra: Infrastructure, **values: Any) -> ServiceSettings:
    """The settings of service `name` on `infra`, without rate limits unless given."""
    values.setdefault("rate_limit_per_minute", 0)
    values.setdefault("rate_limit_anonymous_per_minute", 0)
    return settings_classes()[name](
        **app_keys(name),
        database_url=infra.database_url,
        kafka_bootstrap_servers=infra.bootstrap_servers,
        **values,
    )


@asynccontextmanager
async def serving(app: FastAPI, **config: Any) -> AsyncIterator[httpx.AsyncClient]:
    """`app` served by uvicorn in this process (its lifespan starts the service's runtime),
    and a client of it; `config` adds to uvicorn's settings."""
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=0, log_config=None, log_level="warning", **config
        )
    )
    serve = asyncio.create_task(server.serve())
    try:
        await eventually(
            lambda: server.started or serve.done(), timeout=60, describe="the server started"
        )
        assert server.started, serve.exception() if serve.done() else "not started"
        port = server.servers[0].sockets[0].getsockname()[1]
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            yield client
    finally:
        server.should_exit = True
        await serve
