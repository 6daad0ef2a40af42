"""The event store of a service: an `eventsourcing` application on PostgreSQL.

Who issued a command and which request it belongs to is not domain data, yet every
stored event must carry it. The `CommandContext` of the running command is kept in a
context variable and stamped onto each stored event by `MetadataStampingMapper`, so
aggregates stay free of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, TypeVar, cast
from urllib.parse import parse_qs, unquote, urlsplit
from uuid import UUID

import asyncpg
from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import (
    JSONTranscoder,
    Mapper,
    RecordConflictError,
    StoredEvent,
    Transcoding,
)
from pydantic import ValidationError

from contracts.registry import describe_validation_error
from contracts.values import reading_recorded
from services.runtime.errors import Conflict, NotFound, RuleViolation
from services.runtime.privacy.sealing import SEALED_FOR

if TYPE_CHECKING:
    from services.runtime.privacy.sealing import PersonalData

METADATA_KEY = "_meta"


@dataclass(frozen=True, kw_only=True)
class CommandContext:
    """Who asked for a change, and the request or message that carried it."""

    actor: str = "system"
    correlation_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    causation_id: str | None = None

    def metadata(self) -> dict[str, Any]:
        """As stored on each event (`dataclasses.asdict`, which costs ten times more)."""
        return {
            "actor": self.actor,
            "correlation_id": self.correlation_id,
            "causation_id": self.causation_id,
        }


_current_context: ContextVar[CommandContext | None] = ContextVar("command_context", default=None)


def current_context() -> CommandContext:
    return _current_context.get() or CommandContext()


def active_context() -> CommandContext | None:
    """The context set by the HTTP layer or a consumer, if any."""
    return _current_context.get()


def stamp(aggregate: Any, context: CommandContext, since: int = 0) -> None:
    """Record `context` on the aggregate's pending events (from the `since`th on), for
    commands saved in a batch whose items each have their own cause (e.g. one inbound
    message each)."""
    stamp_events(aggregate.pending_events[since:], context)


def stamp_events(events: Iterable[Any], context: CommandContext) -> None:
    """Record `context` on `events` (pending, not yet stored)."""
    for pending in events:
        object.__setattr__(pending, METADATA_KEY, context.metadata())


@contextlib.contextmanager
def command_context(context: CommandContext) -> Iterator[CommandContext]:
    token = _current_context.set(context)
    try:
        yield context
    finally:
        _current_context.reset(token)


def event_metadata(domain_event: object) -> dict[str, Any]:
    """The metadata stamped on a stored event, or an empty dict."""
    meta = vars(domain_event).get(METADATA_KEY)
    return dict(meta) if isinstance(meta, dict) else {}


class MetadataStampingMapper(Mapper[UUID]):
    """Stamps the command's context on each event and, once `personal` is set, keeps
    personal values sealed with the customer's key (`services.runtime.privacy.sealing`)."""

    personal: PersonalData | None = None

    def to_stored_event(self, domain_event: Any) -> StoredEvent:
        if METADATA_KEY not in vars(domain_event):
            object.__setattr__(domain_event, METADATA_KEY, current_context().metadata())
        if self.personal is not None:
            state = vars(domain_event)
            sealed = self.personal.seal_state(domain_event, state)
            if sealed is not state:
                shell = object.__new__(type(domain_event))
                object.__setattr__(shell, "__dict__", sealed)
                return super().to_stored_event(shell)
        return super().to_stored_event(domain_event)

    def to_domain_event(self, stored_event: StoredEvent) -> Any:
        domain_event = super().to_domain_event(stored_event)
        if self.personal is not None and SEALED_FOR in vars(domain_event):
            self.personal.open_state(vars(domain_event))
        return domain_event


class DateAsISO(Transcoding):
    type = date
    name = "date_iso"

    def encode(self, obj: date) -> str:
        return obj.isoformat()

    def decode(self, data: str) -> date:
        return date.fromisoformat(data)


LIBPQ_TLS = {
    "sslmode": "PGSSLMODE",
    "sslrootcert": "PGSSLROOTCERT",
    "sslcert": "PGSSLCERT",
    "sslkey": "PGSSLKEY",
}


def libpq_tls_environment(database_url: str) -> dict[str, str]:
    """The TLS parameters of a `postgresql://` URL as libpq's variables (PGSSLMODE...).

    eventsourcing connects with host, port and credentials only; libpq takes the rest
    from these variables of the process, so the event store uses TLS as the URL says
    (asyncpg and the keyring read the URL's parameters themselves)."""
    query = parse_qs(urlsplit(database_url).query)
    return {LIBPQ_TLS[k]: v[-1] for k, v in query.items() if k in LIBPQ_TLS}


def postgres_environment(database_url: str, schema: str) -> dict[str, str]:
    """eventsourcing's PostgreSQL settings for a `postgresql://` URL and a schema."""
    parts = urlsplit(database_url)
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        # records a keyed command's mark with its events (storage/idempotent_commits.py)
        "APPLICATION_RECORDER_TOPIC": "services.runtime.storage.idempotent_commits:"
        "IdempotentRecorder",
        "POSTGRES_DBNAME": (parts.path or "/postgres").lstrip("/"),
        "POSTGRES_HOST": parts.hostname or "127.0.0.1",
        "POSTGRES_PORT": str(parts.port or 5432),
        "POSTGRES_USER": unquote(parts.username or "postgres"),
        "POSTGRES_PASSWORD": unquote(parts.password or ""),
        "POSTGRES_SCHEMA": schema,
        "POSTGRES_POOL_SIZE": "5",
        "POSTGRES_MAX_OVERFLOW": "5",
        "POSTGRES_CONNECT_TIMEOUT": "5",
        "POSTGRES_PRE_PING": "y",
        "CREATE_TABLE": "y",
    }


AggregateT = TypeVar("AggregateT")


class EventSourcedApplication(Application[UUID]):
    """Base of every service's application: metadata stamping, extra transcodings, and
    the load-check-change-save cycle of commands with optimistic concurrency."""

    contract_of: Callable[[Any], object] | None = None
    """The service's translation of domain events to contracts (set by the runtime):
    a changed aggregate whose new events would not make valid contracts is refused
    before anything is stored, so the outbox never meets an event it cannot publish."""

    def protect_personal_data(self, personal: PersonalData) -> None:
        """From now on, store personal values sealed and open them when reading."""
        assert isinstance(self.mapper, MetadataStampingMapper)
        self.mapper.personal = personal

    def check_publishable(self, aggregate: Any, what: str) -> None:
        if self.contract_of is None:
            return
        for domain_event in getattr(aggregate, "pending_events", ()):
            try:
                self.contract_of(domain_event)
            except ValidationError as exc:
                raise RuleViolation(
                    f"this change would make an invalid {what} event: "
                    + describe_validation_error(exc)
                ) from None

    def load(self, aggregate_id: UUID, kind: type[AggregateT], what: str) -> AggregateT:
        """The aggregate of that kind, or `NotFound` naming `what` it is ("customer")."""
        try:
            found: object = self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            raise NotFound(f"no {what} with id {aggregate_id}") from None
        if not isinstance(found, kind):
            raise NotFound(f"no {what} with id {aggregate_id}")
        return found

    def events_until(
        self, aggregate_id: UUID, moment: datetime, what: str, created: str = "created"
    ) -> list[Any]:
        """The aggregate's stored events recorded up to `moment`, none after (for reads
        "as of" a past moment); `NotFound` naming `what` ("customer") and how it comes
        to be (`created`: "registered") when there were none yet."""
        events = []
        for domain_event in self.events.get(aggregate_id):
            if getattr(domain_event, "timestamp") > moment:  # noqa: B009
                break
            events.append(domain_event)
        if not events:
            if not any(True for _ in self.events.get(aggregate_id, limit=1)):
                raise NotFound(f"no {what} with id {aggregate_id}")
            raise NotFound(f"{what} {aggregate_id} was not {created} yet at {moment.isoformat()}")
        return events

    def load_as_of(
        self,
        aggregate_id: UUID,
        kind: type[AggregateT],
        moment: datetime,
        what: str,
        created: str = "created",
    ) -> tuple[AggregateT, list[Any]]:
        """The aggregate as it was at `moment` and its events up to then
        (`events_until`)."""
        events = self.events_until(aggregate_id, moment, what, created)
        found: object = self.repository.get(aggregate_id, version=events[-1].originator_version)
        if not isinstance(found, kind):
            raise NotFound(f"no {what} with id {aggregate_id}")
        return found, events

    def change(
        self,
        aggregate_id: UUID,
        expected_version: int | None,
        command: Callable[[AggregateT], object],
        *,
        kind: type[AggregateT],
        what: str,
    ) -> AggregateT:
        """Load, check the caller's expected version, run `command`, save.

        A stale expected version, or another writer saving first, answers `Conflict`:
        no change is ever lost silently.
        """
        aggregate: Any = self.load(aggregate_id, kind, what)
        if expected_version is not None and aggregate.version != expected_version:
            raise Conflict(
                f"{what} {aggregate_id} is at version {aggregate.version}, but the request "
                f"expected version {expected_version}; reload it and try again"
            )
        command(aggregate)
        self.check_publishable(aggregate, what)
        self.save_change(aggregate, what)
        return cast(AggregateT, aggregate)

    def save_change(self, aggregate: Any, what: str) -> None:
        """Save a changed aggregate; another writer saving first answers `Conflict`."""
        try:
            self.save(aggregate)
        except RecordConflictError:
            raise Conflict(
                f"{what} {aggregate.id} was changed by someone else at the same time; "
                "reload it and try again"
            ) from None

    def change_history(
        self, aggregate_id: UUID, translate: Callable[[Any], Any], *, what: str
    ) -> list[dict[str, Any]]:
        """Every change to the aggregate as its contract tells it: what, when, by whom."""
        entries = []
        for domain_event in self.events.get(aggregate_id):
            with reading_recorded():  # stored events stay readable (contracts.values)
                envelope = translate(domain_event)
            if envelope is None:
                continue
            entries.append(
                {
                    "version": envelope.aggregate_version,
                    "event_type": envelope.event_type,
                    "recorded_at": envelope.recorded_at,
                    "actor": envelope.actor,
                    "correlation_id": envelope.correlation_id,
                    "change": envelope.payload.model_dump(mode="json"),
                }
            )
        if not entries:
            raise NotFound(f"no {what} with id {aggregate_id}")
        return entries

    def construct_mapper(self) -> Mapper[UUID]:
        return self.factory.mapper(
            transcoder=self.construct_transcoder(), mapper_class=MetadataStampingMapper
        )

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        transcoder.register(DateAsISO())


ApplicationT = TypeVar("ApplicationT", bound=EventSourcedApplication)


async def open_event_store(
    application_class: type[ApplicationT],
    database_url: str,
    schema: str,
    *,
    create_tables: bool = True,
) -> ApplicationT:
    """A service's application on its event store in `schema`, the tables made if missing.

    eventsourcing makes its tables with `CREATE TABLE IF NOT EXISTS`, which PostgreSQL
    does not make safe to run at once: replicas starting together on a new database can
    both find the table missing, and all but one fail on the catalogue's unique index.
    So the replicas take turns, one session-level advisory lock per schema, held on a
    connection of its own while the application is constructed."""
    environment = postgres_environment(database_url, schema)
    if not create_tables:
        environment["CREATE_TABLE"] = "n"
        return await asyncio.to_thread(application_class, environment)
    connection = await asyncpg.connect(database_url)
    try:
        await connection.execute(
            "SELECT pg_advisory_lock(hashtextextended($1, 0))", f"crm-event-store:{schema}"
        )
        return await asyncio.to_thread(application_class, environment)
    finally:
        await connection.close()  # the lock ends with the session
