"""Limits that hold on a running service (real database and broker): connections that
do not finish their request headers are closed after `http_header_timeout_seconds`,
silent keep-alive connections after `http_idle_timeout_seconds`, and the live feed
serves at most `stream_limit_per_subject` streams to one caller and
`stream_limit_total` to all."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import httpx

from services.runtime.http.server import server_options
from tests.support.auth import bearer
from tests.support.infrastructure import Infrastructure
from tests.support.routes import DEFINITIONS, app_of
from tests.support.serving import served_settings, serving
from tests.support.waiting import eventually

SOCKETS = 200


async def closed_by_server(reader: asyncio.StreamReader) -> bool:
    """True once the server has closed the connection (after what it still had to send)."""
    while await reader.read(1024):
        continue
    return True


async def test_connections_that_do_not_finish_their_headers_are_closed(
    infra: Infrastructure,
) -> None:
    settings = served_settings(
        "customer", infra, http_header_timeout_seconds=2, http_idle_timeout_seconds=2
    )
    app = app_of(DEFINITIONS["customer"], settings)
    async with serving(app, **server_options(settings)) as client:
        port = int(str(client.base_url.port))
        connections = []
        for number in range(SOCKETS):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            partial = b"GET /customers HTTP/1.1\r\nHost: x\r\n" if number % 2 else b""
            writer.write(partial + b"X-Slow: ")  # never ends its headers
            await writer.drain()
            connections.append((reader, writer))
        # one that finished a request and then stays silent
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n")
        await writer.drain()
        assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 200")
        connections.append((reader, writer))
        closing = [asyncio.ensure_future(closed_by_server(r)) for r, _ in connections]
        await eventually(
            lambda: all(task.done() for task in closing),
            timeout=30,
            describe=f"the server closed all {len(closing)} connections",
        )
        assert all(task.result() for task in closing)
        # and the service still answers
        assert (await client.get("/health/live")).status_code == 200
        for _, writer in connections:
            writer.close()


@contextlib.asynccontextmanager
async def feed(client: httpx.AsyncClient, subject: str) -> AsyncIterator[httpx.Response]:
    async with client.stream("GET", "/feed", headers=bearer("manager", subject)) as response:
        yield response


async def test_the_feed_serves_a_capped_number_of_streams(infra: Infrastructure) -> None:
    settings = served_settings("analytics", infra, stream_limit_per_subject=2, stream_limit_total=3)
    app = app_of(DEFINITIONS["analytics"], settings)
    async with serving(app) as client, contextlib.AsyncExitStack() as streams:
        first = [await streams.enter_async_context(feed(client, "ann")) for _ in range(2)]
        assert [r.status_code for r in first] == [200, 200]
        async with feed(client, "ann") as third:
            await third.aread()
            assert third.status_code == 429
            assert "streams open" in third.json()["error"] and third.headers["Retry-After"]
        other = await streams.enter_async_context(feed(client, "bob"))
        assert other.status_code == 200
        async with feed(client, "cid") as beyond_total:
            await beyond_total.aread()
            assert beyond_total.status_code == 429
        await streams.aclose()  # every stream ends: its slots are given back

        async def a_slot_is_free() -> bool:
            async with feed(client, "ann") as again:
                return again.status_code == 200

        await eventually(a_slot_is_free, timeout=30, describe="the slots were given back")
