"""Which errors are transient: the one place that says "try the same work again later".

Every background task (consumers, relays, re-scoring, sweeps) retries what is listed here
and nothing else; any other error ends the task, and an ended task makes the process
unhealthy and then exit (`services.runtime.supervision`), so that its supervisor starts
it afresh instead of a consumer stopping without a word.

Transient, per client library in use:
- the operating system and asyncio: lost connections, refused connections, timeouts;
- asyncpg: connection and interface errors (also its internal state error on a connection
  the server dropped mid-operation), the server shutting down or refusing
  connections for now, too many connections, serialization failures and deadlocks;
- psycopg and psycopg_pool (the event stores and the keyring): `OperationalError`
  (connection lost, server shut down, pool timeout) and `InterfaceError`;
- eventsourcing: its `OperationalError` and `InterfaceError`, which wrap psycopg's;
- aiokafka: every error the library marks `retriable` (connection, leader and
  coordinator moves, request timeouts) and its client-side timeout.
"""

from __future__ import annotations

import asyncio

import aiokafka.errors
import asyncpg
import eventsourcing.persistence
import psycopg


def _retriable_kafka_errors() -> tuple[type[BaseException], ...]:
    found: list[type[BaseException]] = [aiokafka.errors.KafkaTimeoutError]
    for value in vars(aiokafka.errors).values():
        if (
            isinstance(value, type)
            and issubclass(value, aiokafka.errors.KafkaError)
            and getattr(value, "retriable", False)
        ):
            found.append(value)
    return tuple(found)


TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,  # a connection left mid-operation when the server dropped it
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.SerializationError,
    asyncpg.DeadlockDetectedError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    psycopg.OperationalError,
    psycopg.InterfaceError,
    eventsourcing.persistence.OperationalError,
    eventsourcing.persistence.InterfaceError,
    *_retriable_kafka_errors(),
)
"""Errors that say "try the same work again later", never "this input is bad"."""


def is_transient(error: BaseException) -> bool:
    """Whether retrying the same work later may succeed."""
    return isinstance(error, TRANSIENT_ERRORS)
