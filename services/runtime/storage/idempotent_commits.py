"""A command sent with an `Idempotency-Key` records its events at most once, whoever runs it.

The HTTP layer claims the key before running the command and stores the answer after
(`http/idempotency.py`). A server that stops in between leaves the key claimed without an
answer, and nothing outside the database can tell whether the command's events were
recorded. So the first `save` of such a command also writes `(actor, key)` into
`idempotent_commits`, in the same transaction as the events. That row answers the
question exactly, and its primary key makes two runs of one request (the first, slow,
and a retry that took over its key) record only once: the second to commit fails as a
whole and raises `CarriedOutElsewhere`.

The recorder is eventsourcing's PostgreSQL application recorder with one statement more
in the transaction it already opens (its `_insert_events` hook, run before the events are
inserted); the application chooses it by `APPLICATION_RECORDER_TOPIC`.

It also names the channel that each inserting transaction notifies after the schema and
the table ("customer.stored_events", not eventsourcing's "stored_events", the same in
every schema of the database), so that a commit wakes its own service's outbox relay and
no other (`messaging/wakeup.py`).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from eventsourcing.persistence import IntegrityError, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Identifier

from services.runtime.errors import Conflict
from services.runtime.messaging.wakeup import channel_of

TABLE = "idempotent_commits"
CONSTRAINT = f"{TABLE}_pkey"


@dataclass
class IdempotentCommand:
    """The command being run for one caller's `Idempotency-Key`."""

    actor: str
    key: str
    recorded: bool = False
    """Whether its events were recorded (by this run)."""
    superseded: bool = False
    """Whether another run of the same request recorded first (this run recorded nothing)."""
    changed: list[dict[str, Any]] = field(default_factory=list)


class CarriedOutElsewhere(Conflict):
    """Another run of the same request (same caller and key) recorded its events first;
    this run's events were not recorded (the HTTP layer answers with the other run's
    answer)."""


_current: ContextVar[IdempotentCommand | None] = ContextVar("idempotent_command", default=None)


@contextlib.contextmanager
def idempotent_command(actor: str, key: str) -> Iterator[IdempotentCommand]:
    """Run a command for `actor`'s `key`: the saves within mark it recorded (the context is
    copied into worker threads, and the marks land on the one object)."""
    command = IdempotentCommand(actor, key)
    token = _current.set(command)
    try:
        yield command
    finally:
        _current.reset(token)


def changed_by(stored_events: Sequence[StoredEvent]) -> list[dict[str, Any]]:
    """Each aggregate the events change, at its newest version among them."""
    newest: dict[str, int] = {}
    for event in stored_events:
        aggregate = str(event.originator_id)
        newest[aggregate] = max(newest.get(aggregate, 0), event.originator_version)
    return [{"aggregate_id": a, "version": v} for a, v in newest.items()]


class IdempotentRecorder(PostgresApplicationRecorder):
    """Records a keyed command's first events together with its mark in `idempotent_commits`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.channel_name = channel_of(self.datastore.schema, self.events_table_name)
        self.insert_columns_statement = SQL(
            "INSERT INTO {schema}.{table} AS t (originator_id, originator_version, topic, state) "
            "SELECT * FROM unnest(%b::{id_type}[], %b::bigint[], %b::text[], %b::bytea[]) "
            "RETURNING notification_id"
        ).format(
            schema=Identifier(self.datastore.schema),
            table=Identifier(self.events_table_name),
            id_type=Identifier(self.datastore.originator_id_type),
        )
        """eventsourcing's insert, with the events as four arrays (one per column, dumped
        in binary) rather than one array of a composite type (dumped as text, field by
        field, in Python): a batch of a thousand events costs a fifth as much CPU."""

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        command = _current.get()
        if command is None or command.recorded or not stored_events:
            return super().insert_events(stored_events, **kwargs)
        changed = changed_by(stored_events)
        try:
            ids = super().insert_events(stored_events, idempotent_command=command, **kwargs)
        except IntegrityError as exc:
            if getattr(getattr(exc.__cause__, "diag", None), "constraint_name", None) == (
                CONSTRAINT
            ):
                command.superseded = True
                raise CarriedOutElsewhere(
                    "another request with this Idempotency-Key was carried out first"
                ) from exc
            raise
        command.recorded = True
        command.changed = changed
        return ids

    def _insert_events(
        self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> None:
        command: IdempotentCommand | None = kwargs.get("idempotent_command")
        if command is not None:
            curs.execute(
                SQL("INSERT INTO {}.{} (actor, key, changed) VALUES (%s, %s, %s::jsonb)").format(
                    Identifier(self.datastore.schema), Identifier(TABLE)
                ),
                (command.actor, command.key, json.dumps(changed_by(stored_events))),
            )
        super()._insert_events(curs, stored_events, **kwargs)

    def _insert_stored_events(
        self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> None:
        # as PostgresApplicationRecorder: lock the table, notify, insert
        self._lock_table(curs)
        self._notify_channel(curs)
        curs.execute(
            self.insert_columns_statement,
            (
                [e.originator_id for e in stored_events],
                [e.originator_version for e in stored_events],
                [e.topic for e in stored_events],
                [e.state for e in stored_events],
            ),
        )
