"""Talking to a running service over HTTP in tests."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from typing import Any

import httpx
from fastapi import FastAPI

from tests.support.waiting import DEFAULT_TIMEOUT, eventually


async def wait_for(
    client: httpx.AsyncClient,
    path: str,
    check: Callable[[Any], bool],
    timeout: float = DEFAULT_TIMEOUT,
    **params: Any,
) -> Any:
    """GET `path` until it answers 200 with a body `check` accepts (projections are
    eventually consistent), and return that body; on timeout, fail with the last answer
    and the service's readiness."""

    async def accepted() -> tuple[Any]:
        response = await client.get(path, params=params)
        assert response.status_code == 200, f"{response.status_code} {response.text[:2000]}"
        body = response.json()
        assert check(body), f"200 {response.text[:2000]}"
        return (body,)  # truthy even when the body is not

    try:
        (body,) = await eventually(accepted, timeout=timeout, describe=f"GET {path} {params}")
    except AssertionError as failure:
        ready = (await client.get("/health/ready")).text
        raise AssertionError(f"{failure}\nreadiness: {ready}") from failure.__cause__
    return body


def in_process_client(app: FastAPI, *, raise_app_exceptions: bool = True) -> httpx.AsyncClient:
    """An HTTP client of `app` built in this process: no server, and no lifespan (a
    service's runtime is not started, so a route that needs the database fails). The
    client's address is `testclient`, as Starlette's test client gives it."""
    transport = httpx.ASGITransport(
        app=app, raise_app_exceptions=raise_app_exceptions, client=("testclient", 50000)
    )
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


def csv_rows(response: httpx.Response) -> list[dict[str, str]]:
    """The rows of a CSV download, which must start with the UTF-8 byte order mark that
    makes spreadsheets read it as UTF-8."""
    assert response.headers["content-type"].startswith("text/csv"), response.text[:200]
    assert response.content.startswith(b"\xef\xbb\xbf"), "a CSV download starts with a BOM"
    return list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))


async def every_page(client: httpx.AsyncClient, path: str, **params: Any) -> list[dict[str, Any]]:
    """The items of every page of a list, followed by `next_cursor`, 1000 a page."""
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        response = await client.get(
            path, params={**params, "limit": 1000, **({"cursor": cursor} if cursor else {})}
        )
        assert response.status_code == 200, response.text[:500]
        page = response.json()
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items
