"""PostgreSQL access for projections: a connection pool per service schema."""

from urllib.parse import urlsplit, urlunsplit

import asyncpg

from services.runtime.metrics import DB_POOL_CONNECTIONS


async def create_pool(
    dsn: str, schema: str, *, max_size: int = 10, command_timeout: float | None = 60
) -> asyncpg.Pool:
    """A pool whose connections see the service's own schema first."""
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
    finally:
        await connection.close()
    pool = await asyncpg.create_pool(
        dsn,
        min_size=1,
        max_size=max_size,
        server_settings={"search_path": f'"{schema}",public', "application_name": schema},
        command_timeout=command_timeout,
    )
    assert pool is not None
    DB_POOL_CONNECTIONS.labels(schema=schema, state="max").set(max_size)
    return pool


def record_pool_use(pool: asyncpg.Pool, schema: str) -> None:
    DB_POOL_CONNECTIONS.labels(schema=schema, state="open").set(pool.get_size())
    DB_POOL_CONNECTIONS.labels(schema=schema, state="idle").set(pool.get_idle_size())


async def ensure_database(dsn: str) -> None:
    """Create the database named in `dsn` if the server does not have it yet.

    Services starting together on a new server take turns (an advisory lock, released
    with the session): two `CREATE DATABASE` at once fail on the catalogue's unique index
    for all but one."""
    parts = urlsplit(dsn)
    name = parts.path.lstrip("/")
    connection = await asyncpg.connect(urlunsplit(parts._replace(path="/postgres")))
    try:
        await connection.execute(
            "SELECT pg_advisory_lock(hashtextextended($1, 0))", f"crm-database:{name}"
        )
        exists = await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()


async def database_generation(pool: asyncpg.Pool) -> str:
    """An id of this incarnation of the service's database.

    A new or restored database gets a new one (backups hold only the event stores), and
    it is part of every consumer group id: such a database re-reads the topics from the
    beginning instead of resuming from offsets that belonged to its predecessor.
    """
    async with pool.acquire() as connection:
        await connection.execute(
            "INSERT INTO database_generation (generation) VALUES (gen_random_uuid()) "
            "ON CONFLICT DO NOTHING"
        )
        value = await connection.fetchval("SELECT generation FROM database_generation")
    return str(value)
