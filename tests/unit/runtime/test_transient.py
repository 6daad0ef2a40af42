"""Which errors the background tasks retry: every transient error of every client library
in use, and nothing that says the input or the code is wrong."""

from __future__ import annotations

import aiokafka.errors
import asyncpg
import eventsourcing.persistence
import psycopg
import psycopg_pool
import pytest

from services.runtime.transient import is_transient

TRANSIENT = [
    ConnectionRefusedError("the server is down"),
    ConnectionResetError("reset by peer"),
    TimeoutError(),
    asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
    asyncpg.InterfaceError("connection is closed"),
    asyncpg.InternalClientError("cannot switch to state 12"),
    asyncpg.CannotConnectNowError("the database system is starting up"),
    asyncpg.AdminShutdownError("terminating connection due to administrator command"),
    asyncpg.TooManyConnectionsError("sorry, too many clients already"),
    asyncpg.SerializationError("could not serialize access"),
    asyncpg.DeadlockDetectedError("deadlock detected"),
    psycopg.OperationalError("consuming input failed: server closed the connection"),
    psycopg.InterfaceError("the connection is closed"),
    psycopg_pool.PoolTimeout("couldn't get a connection after 30 sec"),
    eventsourcing.persistence.OperationalError("server closed the connection"),
    eventsourcing.persistence.InterfaceError("connection already closed"),
    aiokafka.errors.KafkaConnectionError("no connection to node"),
    aiokafka.errors.KafkaTimeoutError(),
    aiokafka.errors.RequestTimedOutError(),
    aiokafka.errors.NodeNotReadyError(),
    aiokafka.errors.NotLeaderForPartitionError(),
    aiokafka.errors.CoordinatorNotAvailableError(),
]

PERMANENT = [
    ValueError("a bug"),
    KeyError("missing"),
    asyncpg.UniqueViolationError("duplicate key value"),
    asyncpg.UndefinedTableError('relation "x" does not exist'),
    psycopg.errors.UniqueViolation("duplicate key value"),
    eventsourcing.persistence.IntegrityError("duplicate key value"),
    aiokafka.errors.MessageSizeTooLargeError(),
    aiokafka.errors.TopicAuthorizationFailedError(),
]


@pytest.mark.parametrize("error", TRANSIENT, ids=lambda e: type(e).__qualname__)
def test_transient_errors_are_retried(error: BaseException) -> None:
    assert is_transient(error)


@pytest.mark.parametrize("error", PERMANENT, ids=lambda e: type(e).__qualname__)
def test_errors_a_retry_cannot_mend_are_not(error: BaseException) -> None:
    assert not is_transient(error)
