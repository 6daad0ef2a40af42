"""Bulk import of customers: records of a file, through a mapping, into customer events.

What `CustomerImport.run` does, batch after batch of rows (a thousand by default):

1. each record becomes an `ImportRow` of clean values (`Mapping.row`), or is rejected
   with a reason (`services.customer.normalisation.REASONS`);
2. each row names its customer: by its external key (`Mapping.key`: another system's
   reference), the customer the directory knows by that reference, else the one whose id
   derives from the reference (`contracts.references.customer_id_for_reference`: the
   customer an earlier row or import created, or that a purchase under that reference
   will land on); a row without a key gets an id derived from the import's id and its row
   number. So rows refer to each other and to existing customers by the key, and
   importing the same file again finds every customer it created;
3. a row naming no customer yet creates one (it needs a name and a kind); a row naming one
   changes only what it says differently (a profile field, a contact person's phones or
   e-mails, an address by label, a classification, new tags, new references): a row
   that says nothing new records nothing, so a second import of the same file changes
   nothing (`import_changes`);
4. the batch's events are saved in one transaction, then the import's checkpoint (the
   last row committed, in `customer_imports`: `import_checkpoint`) moves past the batch.
   A stopped import (Ctrl-C, a crash, a dropped upload) resumes after its checkpoint; the
   batch that was under way is done again and finds its rows applied.

Every event an import records carries the import in its metadata: `correlation_id`
`import:<import id>` and `causation_id` `import:<import id>:<row>`; the customer's history
shows it, and the envelope on the customer topic carries it.

A dry run does steps 1 to 3 and saves nothing: its report says, row by row, what would
be created, updated, left unchanged or rejected, and why. Each report line is an
`Outcome` (`import_report`).

Each row that creates a customer is checked for possible duplicates
(`duplicate_checks.import_duplicates`): the directory's customers and the other new rows
of its batch it may be the same as are listed in its report line (`possible_duplicates`),
and counted in the summary. The row still creates its customer: the queue of possible
duplicates (`GET /duplicates`) then holds the pair for review, whichever batch each
record came in.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import hashlib
import re
import uuid
from collections import Counter, deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import Any
from uuid import UUID

import asyncpg
from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import RecordConflictError
from pydantic import ValidationError

from contracts.references import CustomerReference, customer_id_for_reference
from contracts.registry import describe_validation_error
from services.customer.application import CustomerApplication
from services.customer.domain import Customer
from services.customer.duplicate_checks import import_duplicates
from services.customer.import_changes import new_customer, update_customer
from services.customer.import_checkpoint import begin, checkpoint
from services.customer.import_files import Item, RecordStream
from services.customer.import_mapping import ImportRow, Mapping
from services.customer.import_report import Outcome, Summary, key_name, rejected
from services.customer.metrics import IMPORT_ROWS
from services.customer.normalisation import Refused
from services.customer.publishing import payload_of
from services.customer.queries import find_by_references
from services.customer.settings import phone_region
from services.runtime.errors import Conflict, RuleViolation
from services.runtime.messaging.inbound import RecordedAggregates
from services.runtime.storage.eventstore import CommandContext, stamp_events

IMPORT_NAMESPACE = uuid.UUID("5b0e3f7a-9c41-4d2e-8f60-1a7c2b9d4e35")
IMPORT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
BATCH_ROWS = 1000
SAVE_ATTEMPTS = 3


def check_import_id(import_id: str) -> str:
    if not IMPORT_ID.match(import_id):
        raise RuleViolation(
            f"an import id is 1 to 64 letters, digits, '.', '_' or '-', starting with a "
            f"letter or digit; {import_id!r} is not"
        )
    return import_id


def import_id_of_file(mapping: Mapping, chunks: Iterable[bytes]) -> str:
    """An import id naming the file's content and the mapping: the same file imported
    with the same mapping is the same import."""
    digest = hashlib.sha256(mapping.fingerprint().encode())
    for chunk in chunks:
        digest.update(chunk)
    return f"file-{digest.hexdigest()[:20]}"


def customer_id_of_row(import_id: str, row: int) -> UUID:
    """The id of the customer a row without an external key creates."""
    return uuid.uuid5(IMPORT_NAMESPACE, f"{import_id}\x1f{row}")


# The import ---------------------------------------------------------------------------


@dataclass
class _Batch:
    items: list[Item]
    last_row: int


class CustomerImport:
    """One run of an import (or of its dry run) over a stream of records."""

    def __init__(
        self,
        *,
        application: CustomerApplication,
        pool: asyncpg.Pool,
        mapping: Mapping,
        import_id: str,
        actor: str,
        dry_run: bool = False,
        batch_rows: int = BATCH_ROWS,
        check_duplicates: bool = True,
    ) -> None:
        self.application = application
        self.pool = pool
        self.mapping = mapping
        self.import_id = check_import_id(import_id)
        self.actor = actor
        self.dry_run = dry_run
        self.batch_rows = batch_rows
        self.check_duplicates = check_duplicates
        self.phone_region = phone_region()
        self.summary = Summary(import_id, dry_run)
        self.import_batch: Callable[[list[Item]], Awaitable[list[Outcome]]] = self.import_share
        """What imports a batch: this process (`import_share`), or worker processes
        (`crm.import_workers`) each importing a share of it."""
        self.batches_ahead = 0
        """How many batches are handed to `import_batch` before the outcomes of the
        first are taken: none in this process; with worker processes, each importing its
        shares in the order given, the next batches are read while they import one."""
        self._recorded = RecordedAggregates(application, pool)
        self._planning: asyncpg.Connection | None = None
        """In a dry run: the connection holding the customers earlier batches create."""

    async def run(
        self,
        records: RecordStream,
        report: Callable[[Sequence[Outcome]], Awaitable[None]],
        *,
        progress: Callable[[int], None] | None = None,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> Summary:
        """Import every record after the checkpoint, each batch's outcomes given to `report`;
        `should_stop` is asked between batches (Ctrl-C): the import then reads no more,
        and stops once the batches under way (`batches_ahead`) are committed, to be
        resumed."""
        if self.dry_run:
            async with self.planning():
                await self._batches(records, report, progress, should_stop, None)
            return self.summary
        async with self.pool.acquire() as connection:
            await begin(connection, self.summary, self.mapping, self.actor)
            try:
                await self._batches(records, report, progress, should_stop, connection)
            except BaseException:
                await asyncio.shield(self._stopped(connection))
                raise
            await checkpoint(
                connection,
                self.summary,
                self.summary.last_row,
                "stopped" if self.summary.stopped else "completed",
            )
            await connection.execute(
                "SELECT pg_advisory_unlock(hashtext('customer-import'), hashtext($1))",
                self.import_id,
            )
        return self.summary

    @contextlib.asynccontextmanager
    async def planning(self) -> AsyncIterator[None]:
        """In a dry run: a connection holding what earlier batches would create, for the
        rows of later ones naming it."""
        async with self.pool.acquire() as planning:
            await planning.execute(
                "CREATE TEMPORARY TABLE IF NOT EXISTS import_dry_run "
                "(customer_id uuid PRIMARY KEY, row bigint NOT NULL)"
            )
            await planning.execute("TRUNCATE import_dry_run")
            self._planning = planning
            try:
                yield
            finally:
                self._planning = None
                await planning.execute("DROP TABLE IF EXISTS import_dry_run")

    async def import_share(self, items: list[Item]) -> list[Outcome]:
        """Import `items` (a batch, or a worker's share of one), and in a dry run note
        what they would create."""
        outcomes = await self._import_batch(items)
        if self.dry_run:
            await self._plan(outcomes)
        return outcomes

    async def _stopped(self, connection: asyncpg.Connection) -> None:
        # should this fail, the state says running: the next run resumes all the same
        with contextlib.suppress(OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            await connection.execute(
                "UPDATE customer_imports SET state = 'stopped', updated_at = now() "
                "WHERE import_id = $1",
                self.import_id,
            )

    async def _batches(
        self,
        records: RecordStream,
        report: Callable[[Sequence[Outcome]], Awaitable[None]],
        progress: Callable[[int], None] | None,
        should_stop: Callable[[], bool],
        connection: asyncpg.Connection | None,
    ) -> None:
        batches = self._read(records)
        under_way: deque[tuple[_Batch, asyncio.Future[list[Outcome]]]] = deque()
        try:
            while True:
                while len(under_way) <= self.batches_ahead and not self.summary.stopped:
                    batch = next(batches, None)
                    if batch is None:
                        break
                    under_way.append((batch, asyncio.ensure_future(self.import_batch(batch.items))))
                if not under_way:
                    return
                batch, importing = under_way.popleft()
                outcomes = await importing
                if connection is not None:
                    self.summary.last_row = batch.last_row
                    for outcome in outcomes:
                        self.summary.add(outcome)
                    await checkpoint(connection, self.summary, batch.last_row)
                    counted = Counter((o.outcome, o.reason or "") for o in outcomes)
                    for (outcome_name, reason), rows in counted.items():
                        IMPORT_ROWS.labels(outcome_name, reason).inc(rows)
                else:
                    for outcome in outcomes:
                        self.summary.add(outcome)
                    self.summary.last_row = batch.last_row
                await report(outcomes)
                if progress is not None:
                    progress(len(batch.items))
                if should_stop():
                    self.summary.stopped = True  # the batches under way are still recorded
        finally:
            for _, importing in under_way:
                importing.cancel()
            await asyncio.gather(*(i for _, i in under_way), return_exceptions=True)

    def _read(self, records: RecordStream) -> Iterator[_Batch]:
        after = self.summary.resumed_after
        items = (item for item in records if item.number > after)
        while True:
            chunk = list(islice(items, self.batch_rows))
            if not chunk:
                return
            yield _Batch(chunk, chunk[-1].number)

    async def _import_batch(self, items: list[Item]) -> list[Outcome]:
        rows = await asyncio.to_thread(self._clean, items)
        for attempt in range(SAVE_ATTEMPTS):
            targets = await self._targets([r for r in rows if isinstance(r, ImportRow)])
            try:
                outcomes = await asyncio.to_thread(self._apply, rows, targets)
            except RecordConflictError:
                if attempt == SAVE_ATTEMPTS - 1:
                    raise Conflict(
                        "other writers kept changing customers of this batch; run the "
                        "import again to resume it"
                    ) from None
                continue
            if not self.check_duplicates:
                return outcomes
            cleaned = [r for r in rows if isinstance(r, ImportRow)]
            return await import_duplicates(self.pool, cleaned, outcomes, self.phone_region)
        raise AssertionError("unreachable")

    def _clean(self, items: list[Item]) -> list[ImportRow | Outcome]:
        rows: list[ImportRow | Outcome] = []
        for item in items:
            if item.refused is not None:
                rows.append(rejected(item.number, item.refused))
                continue
            assert item.record is not None
            try:
                rows.append(self.mapping.row(item.number, item.record))
            except Refused as refused:
                key = self.mapping.key_of(item.record)
                rows.append(rejected(item.number, refused, key=key))
        return rows

    async def _plan(self, outcomes: Sequence[Outcome]) -> None:
        created = [(o.customer_id, o.row) for o in outcomes if o.outcome == "created"]
        if created and self._planning is not None:
            await self._planning.copy_records_to_table("import_dry_run", records=created)

    async def _planned(self, ids: list[UUID]) -> dict[UUID, int]:
        if self._planning is None:
            return {}
        records = await self._planning.fetch(
            "SELECT customer_id, row FROM import_dry_run WHERE customer_id = ANY($1::uuid[])", ids
        )
        return {UUID(str(r["customer_id"])): int(r["row"]) for r in records}

    async def _targets(self, rows: list[ImportRow]) -> _Targets:
        keys = list({row.key for row in rows if row.key is not None})
        try:
            known = await find_by_references(self.pool, keys)
        except asyncpg.UndefinedTableError:
            known = {}  # no directory yet: no customer is known by reference
        ids = {
            row.number: (
                known.get(row.key) or _derived(row.key)
                if row.key is not None
                else customer_id_of_row(self.import_id, row.number)
            )
            for row in rows
        }
        named = list(set(ids.values()))
        return _Targets(ids, await self._recorded.among(named), await self._planned(named))

    # Applying rows (in a worker thread) -------------------------------------------------

    def _apply(self, rows: list[ImportRow | Outcome], targets: _Targets) -> list[Outcome]:
        customers: dict[UUID, Any] = {}
        """Each customer the batch changes: a `Customer`, or the `Registered` event of one
        it creates (made a `Customer` only should a later row change it)."""
        outcomes = []
        for row in rows:
            if isinstance(row, Outcome):
                outcomes.append(row)
                continue
            customer_id = targets.ids[row.number]
            try:
                outcomes.append(self._apply_row(row, customer_id, customers, targets))
            except Refused as refused:
                outcomes.append(rejected(row.number, refused, customer_id, row.key))
        if not self.dry_run:
            self._save(list(customers.values()))
        return outcomes

    def _apply_row(
        self,
        row: ImportRow,
        customer_id: UUID,
        customers: dict[UUID, Any],
        targets: _Targets,
    ) -> Outcome:
        customer = customers.get(customer_id)
        if customer is not None and not isinstance(customer, Customer):
            customer = Customer.from_registration(customer)  # an earlier row's creation
            customers[customer_id] = customer
        if customer is None and customer_id in targets.existing:
            customer = self._load(customer_id)
            customers[customer_id] = customer
        if customer is None and customer_id in targets.planned:
            return Outcome(
                row.number,
                "updated",
                customer_id,
                key_name(row.key),
                detail=f"the customer row {targets.planned[customer_id]} creates; a dry run "
                "shows what this row changes of it only within one batch",
            )
        if customer is None:
            registered = new_customer(row, customer_id)
            events = [registered]
            changes = self._checked(events)
            customers[customer_id] = registered
            outcome = "created"
        else:
            if customer.erased:
                raise Refused("erased customer", f"customer {customer_id} was erased")
            before = copy.deepcopy(customer)
            since = len(customer.pending_events)
            try:
                update_customer(customer, row, self.mapping.default_region)
                events = customer.pending_events[since:]
                changes = self._checked(events)
            except (Refused, RuleViolation) as problem:
                customers[customer_id] = before
                if isinstance(problem, Refused):
                    raise
                raise Refused("rule violated", str(problem)) from None
            outcome = "updated" if changes else "unchanged"
        context = CommandContext(
            actor=self.actor,
            correlation_id=f"import:{self.import_id}",
            causation_id=f"import:{self.import_id}:{row.number}",
        )
        stamp_events(events, context)
        return Outcome(row.number, outcome, customer_id, key_name(row.key), tuple(changes))

    def _load(self, customer_id: UUID) -> Customer:
        try:
            found: Customer = self.application.repository.get(customer_id)
        except AggregateNotFoundError:
            raise Refused("invalid value", f"customer {customer_id} cannot be read") from None
        return found

    def _checked(self, events: list[Any]) -> list[str]:
        """The event types of a customer's new `events`; `Refused` when one would not
        make a valid event (the contract refuses a value)."""
        personal = getattr(self.application.mapper, "personal", None)
        changes = []
        for domain_event in events:
            try:
                payload = payload_of(domain_event)
            except ValidationError as exc:
                raise Refused("invalid value", describe_validation_error(exc)) from None
            if personal is not None:  # sealing the event reuses its payload
                personal.remember(domain_event, payload, domain_event.originator_id)
            if payload is not None:
                changes.append(payload.event_type)
        return changes

    def _save(self, changed: list[Any]) -> None:
        """Store the new events of `changed` (customers, and registrations of new ones)."""
        events = [
            e for c in changed for e in (c.collect_events() if isinstance(c, Customer) else (c,))
        ]
        if not events:
            return
        personal = getattr(self.application.mapper, "personal", None)
        if personal is not None:  # every new customer's key in one statement
            personal.keyring.prepare(list(dict.fromkeys(e.originator_id for e in events)))
        # one transaction for the batch; `events.put` rather than `save`, which checks
        # each object against eventsourcing's runtime protocols (see SalesApplication)
        self.application.events.put(events)


@dataclass(frozen=True)
class _Targets:
    ids: dict[int, UUID]
    """Row number → the customer it names."""
    existing: set[UUID]
    """Those of them the event store holds."""
    planned: dict[UUID, int]
    """In a dry run: those of them a row of an earlier batch creates, and that row."""


def _derived(key: tuple[str, str]) -> UUID:
    return customer_id_for_reference(CustomerReference(source=key[0], source_customer_id=key[1]))
