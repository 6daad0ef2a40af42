"""One query on a database of the test run, on a connection of its own."""

from __future__ import annotations

from typing import Any

import asyncpg


async def fetch(database_url: str, query: str, *args: Any) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(database_url)
    try:
        return list(await connection.fetch(query, *args))
    finally:
        await connection.close()


async def fetchval(database_url: str, query: str, *args: Any) -> Any:
    rows = await fetch(database_url, query, *args)
    return rows[0][0] if rows else None
