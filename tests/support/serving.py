"""A service's app served by uvicorn inside the test process, with its runtime started
on the test's real database and broker, and requests as the route tests send them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI

from tests.support.waiting import eventually


@asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """`app` served by uvicorn in this process (its lifespan starts the service's runtime),
    and a client of it."""
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, log_level="warning")
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


async def call(
    client: httpx.AsyncClient, method: str, path: str, headers: dict[str, str]
) -> httpx.Response:
    """The answer to a request with the test's inputs: an empty JSON body where a body
    goes. A stream of server-sent events (it does not end) is answered by its headers."""
    body: dict[str, Any] | None = None if method in ("GET", "HEAD", "DELETE") else {}
    async with client.stream(method, path, json=body, headers=headers) as response:
        if not response.headers.get("content-type", "").startswith("text/event-stream"):
            await response.aread()
    return response
