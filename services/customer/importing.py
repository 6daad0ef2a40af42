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
   nothing;
4. the batch's events are saved in one transaction, then the import's checkpoint (the
   last row committed, in `customer_imports`) moves past the batch. A stopped import
   (Ctrl-C, a crash, a dropped upload) resumes after its checkpoint; the batch that was
   under way is done again and finds its rows applied.

Every event an import records carries the import in its metadata: `correlation_id`
`import:<import id>` and `causation_id` `import:<import id>:<row>`; the customer's history
shows it, and the envelope on the customer topic carries it.

A dry run does steps 1 to 3 and saves nothing: its report says, row by row, what would
be created, updated, left unchanged or rejected, and why. Each report line is an
`Outcome`.

Duplicate detection plugs in at step 2 (`_targets`): a row that names no customer by its
key can be matched on its exact-match keys (`normalisation.match_keys`: the normalised
e-mails and E.164 phones of its contact persons, which an `ImportRow` holds already
cleaned) and fuzzy name keys, to name an existing customer instead, or to be reported as
a possible duplicate of one.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import hashlib
import json
import re
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
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
from services.customer.domain import DEFAULT_CLASSIFICATION, Customer
from services.customer.import_files import Item, RecordStream
from services.customer.import_mapping import ImportRow, Mapping
from services.customer.metrics import IMPORT_ROWS
from services.customer.normalisation import Refused, clean_email, clean_phone
from services.customer.publishing import to_contract
from services.customer.queries import find_by_references
from services.runtime.errors import CommandRejected, Conflict, RuleViolation
from services.runtime.messaging.inbound import RecordedAggregates
from services.runtime.storage.eventstore import CommandContext, stamp

IMPORT_NAMESPACE = uuid.UUID("5b0e3f7a-9c41-4d2e-8f60-1a7c2b9d4e35")
IMPORT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
BATCH_ROWS = 1000
OUTCOMES = ("created", "updated", "unchanged", "rejected")
SAVE_ATTEMPTS = 3


class ImportRefused(CommandRejected):
    """The import cannot run as asked (its id is taken by another mapping, or it runs
    elsewhere); the message says what to do."""

    status_code = 409


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


def contact_id_for(name: str) -> str:
    """The id of an imported contact person, derived from the name: importing the same
    person again finds them."""
    return "imp-" + hashlib.sha256(name.casefold().encode()).hexdigest()[:12]


@dataclass(frozen=True)
class Outcome:
    """One line of an import's report."""

    row: int
    outcome: str
    customer_id: UUID | None = None
    key: str | None = None
    changes: tuple[str, ...] = ()
    """The event types the row records (or would record, in a dry run)."""
    reason: str | None = None
    detail: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "row": self.row,
            "outcome": self.outcome,
            "customer_id": str(self.customer_id) if self.customer_id else None,
            "key": self.key,
            "changes": list(self.changes),
            "reason": self.reason,
            "detail": self.detail,
        }


@dataclass
class Summary:
    """What an import (or its dry run) did, counted."""

    import_id: str
    dry_run: bool
    resumed_after: int = 0
    last_row: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    rejected_by_reason: Counter[str] = field(default_factory=Counter)
    stopped: bool = False

    def add(self, outcome: Outcome) -> None:
        self.counts[outcome.outcome] += 1
        self.last_row = max(self.last_row, outcome.row)
        if outcome.reason:
            self.rejected_by_reason[outcome.reason] += 1

    @property
    def rows(self) -> int:
        return sum(self.counts.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "import_id": self.import_id,
            "dry_run": self.dry_run,
            "state": "stopped" if self.stopped else "completed",
            "resumed_after_row": self.resumed_after,
            "last_row": self.last_row,
            "rows": self.rows,
            **{name: self.counts[name] for name in OUTCOMES},
            "rejected_by_reason": dict(sorted(self.rejected_by_reason.items())),
        }


# The import's record in `customer_imports` ---------------------------------------------


async def begin(
    connection: asyncpg.Connection, summary: Summary, mapping: Mapping, actor: str
) -> None:
    """Record that the import runs; a stopped one resumes: `summary` gets the row it
    resumes after and the counts so far (a new import, or one whose last run completed,
    starts at row 1). Holds the import's lock for as long as `connection`
    stays open: one run of an import at a time."""
    import_id = summary.import_id
    locked = await connection.fetchval(
        "SELECT pg_try_advisory_lock(hashtext('customer-import'), hashtext($1))", import_id
    )
    if not locked:
        raise ImportRefused(f"import {import_id} is running elsewhere; wait for it to end")
    found = await connection.fetchrow(
        "SELECT mapping_fingerprint, state, committed_row, counts FROM customer_imports "
        "WHERE import_id = $1",
        import_id,
    )
    fingerprint = mapping.fingerprint()
    if found is not None and found["state"] != "completed":
        if found["mapping_fingerprint"] != fingerprint:
            raise ImportRefused(
                f"import {import_id} was started with another mapping and stopped after row "
                f"{found['committed_row']}; resume it with the same mapping, or give "
                "another import id"
            )
        await connection.execute(
            "UPDATE customer_imports SET state = 'running', actor = $2, updated_at = now() "
            "WHERE import_id = $1",
            import_id,
            actor,
        )
        summary.resumed_after = summary.last_row = int(found["committed_row"])
        counts = found["counts"]
        counts = json.loads(counts) if isinstance(counts, str) else counts
        summary.counts.update({name: int(counts.get(name, 0)) for name in OUTCOMES})
        summary.rejected_by_reason.update(counts.get("rejected_by_reason", {}))
        return
    await connection.execute(
        """INSERT INTO customer_imports
               (import_id, mapping, mapping_fingerprint, actor, state, committed_row, counts)
           VALUES ($1, $2::jsonb, $3, $4, 'running', 0, '{}')
           ON CONFLICT (import_id) DO UPDATE SET
               mapping = excluded.mapping, mapping_fingerprint = excluded.mapping_fingerprint,
               actor = excluded.actor, state = 'running', committed_row = 0, counts = '{}',
               started_at = now(), updated_at = now()""",
        import_id,
        json.dumps(mapping.model_dump(mode="json"), ensure_ascii=False),
        fingerprint,
        actor,
    )


async def checkpoint(
    connection: asyncpg.Connection, summary: Summary, row: int, state: str = "running"
) -> None:
    """The rows up to `row` are committed; the counts so far."""
    counts = {
        **{name: summary.counts[name] for name in OUTCOMES},
        "rejected_by_reason": dict(summary.rejected_by_reason),
    }
    await connection.execute(
        "UPDATE customer_imports SET committed_row = greatest(committed_row, $2), "
        "counts = $3::jsonb, state = $4, updated_at = now() WHERE import_id = $1",
        summary.import_id,
        row,
        json.dumps(counts),
        state,
    )


async def import_record(pool: asyncpg.Pool, import_id: str) -> dict[str, Any] | None:
    record = await pool.fetchrow(
        "SELECT import_id, actor, state, committed_row, counts, mapping, started_at, "
        "updated_at FROM customer_imports WHERE import_id = $1",
        import_id,
    )
    if record is None:
        return None
    found = dict(record)
    for name in ("counts", "mapping"):
        if isinstance(found[name], str):
            found[name] = json.loads(found[name])
    return found


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
    ) -> None:
        self.application = application
        self.pool = pool
        self.mapping = mapping
        self.import_id = check_import_id(import_id)
        self.actor = actor
        self.dry_run = dry_run
        self.batch_rows = batch_rows
        self.summary = Summary(import_id, dry_run)
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
        `should_stop` is asked between batches (Ctrl-C): the import then stops after its
        last committed batch, to be resumed."""
        if self.dry_run:
            async with self.pool.acquire() as planning:
                # what earlier batches would create, for the rows of later ones naming it
                await planning.execute(
                    "CREATE TEMPORARY TABLE IF NOT EXISTS import_dry_run "
                    "(customer_id uuid PRIMARY KEY, row bigint NOT NULL)"
                )
                await planning.execute("TRUNCATE import_dry_run")
                self._planning = planning
                try:
                    await self._batches(records, report, progress, should_stop, None)
                finally:
                    self._planning = None
                    await planning.execute("DROP TABLE IF EXISTS import_dry_run")
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
        for batch in self._read(records):
            outcomes = await self._import_batch(batch.items)
            if connection is not None:
                self.summary.last_row = batch.last_row
                for outcome in outcomes:
                    self.summary.add(outcome)
                await checkpoint(connection, self.summary, batch.last_row)
                for outcome in outcomes:
                    IMPORT_ROWS.labels(outcome.outcome, outcome.reason or "").inc()
            else:
                for outcome in outcomes:
                    self.summary.add(outcome)
                self.summary.last_row = batch.last_row
                await self._plan(outcomes)
            await report(outcomes)
            if progress is not None:
                progress(len(batch.items))
            if should_stop():
                self.summary.stopped = True
                return

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
                return await asyncio.to_thread(self._apply, rows, targets)
            except RecordConflictError:
                if attempt == SAVE_ATTEMPTS - 1:
                    raise Conflict(
                        "other writers kept changing customers of this batch; run the "
                        "import again to resume it"
                    ) from None
        raise AssertionError("unreachable")

    def _clean(self, items: list[Item]) -> list[ImportRow | Outcome]:
        rows: list[ImportRow | Outcome] = []
        for item in items:
            if item.refused is not None:
                rows.append(_rejected(item.number, item.refused))
                continue
            assert item.record is not None
            try:
                rows.append(self.mapping.row(item.number, item.record))
            except Refused as refused:
                key = self.mapping.key_of(item.record)
                rows.append(_rejected(item.number, refused, key=key))
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
        customers: dict[UUID, Customer] = {}
        outcomes = []
        for row in rows:
            if isinstance(row, Outcome):
                outcomes.append(row)
                continue
            customer_id = targets.ids[row.number]
            try:
                outcomes.append(self._apply_row(row, customer_id, customers, targets))
            except Refused as refused:
                outcomes.append(_rejected(row.number, refused, customer_id, row))
        if not self.dry_run:
            self._save([c for c in customers.values() if c.pending_events])
        return outcomes

    def _apply_row(
        self,
        row: ImportRow,
        customer_id: UUID,
        customers: dict[UUID, Customer],
        targets: _Targets,
    ) -> Outcome:
        customer = customers.get(customer_id)
        if customer is None and customer_id in targets.existing:
            customer = self._load(customer_id)
            customers[customer_id] = customer
        since = 0
        if customer is None and customer_id in targets.planned:
            return Outcome(
                row.number,
                "updated",
                customer_id,
                _key(row),
                detail=f"the customer row {targets.planned[customer_id]} creates; a dry run "
                "shows what this row changes of it only within one batch",
            )
        if customer is None:
            created = _new_customer(row, customer_id)
            changes = self._checked(created, 0)
            customers[customer_id] = created
            outcome = "created"
        else:
            if customer.erased:
                raise Refused("erased customer", f"customer {customer_id} was erased")
            before = copy.deepcopy(customer)
            since = len(customer.pending_events)
            try:
                _update(customer, row, self.mapping.default_region)
                changes = self._checked(customer, since)
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
        stamp(customers[customer_id], context, since=since)
        return Outcome(row.number, outcome, customer_id, _key(row), tuple(changes))

    def _load(self, customer_id: UUID) -> Customer:
        try:
            found: Customer = self.application.repository.get(customer_id)
        except AggregateNotFoundError:
            raise Refused("invalid value", f"customer {customer_id} cannot be read") from None
        return found

    @staticmethod
    def _checked(customer: Customer, since: int) -> list[str]:
        """The event types of the customer's events from the `since`th on; `Refused`
        when one would not make a valid event (the contract refuses a value)."""
        changes = []
        for domain_event in customer.pending_events[since:]:
            try:
                envelope = to_contract(domain_event)
            except ValidationError as exc:
                raise Refused("invalid value", describe_validation_error(exc)) from None
            if envelope is not None:
                changes.append(envelope.event_type)
        return changes

    def _save(self, changed: list[Customer]) -> None:
        if not changed:
            return
        personal = getattr(self.application.mapper, "personal", None)
        if personal is not None:  # every new customer's key in one statement
            personal.keyring.prepare([c.id for c in changed])
        # one transaction for the batch; `events.put` rather than `save`, which checks
        # each object against eventsourcing's runtime protocols (see SalesApplication)
        self.application.events.put([e for c in changed for e in c.collect_events()])


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


def _key(row: ImportRow) -> str | None:
    return _named_key(row.key)


def _named_key(key: tuple[str, str] | None) -> str | None:
    return f"{key[0]}/{key[1]}" if key else None


def _rejected(
    number: int,
    refused: Refused,
    customer_id: UUID | None = None,
    row: ImportRow | None = None,
    key: tuple[str, str] | None = None,
) -> Outcome:
    return Outcome(
        number,
        "rejected",
        customer_id,
        _key(row) if row else _named_key(key),
        reason=refused.reason,
        detail=refused.detail,
    )


def _contacts(row: ImportRow) -> list[dict[str, Any]]:
    """The row's contact persons, one per name (two columns naming one person merge)."""
    merged: dict[str, dict[str, Any]] = {}
    for contact in row.contacts:
        contact_id = contact_id_for(contact["name"])
        found = merged.get(contact_id)
        if found is None:
            merged[contact_id] = {**contact, "contact_id": contact_id}
        else:
            found["title"] = found["title"] or contact["title"]
            found["phones"] = list(dict.fromkeys([*found["phones"], *contact["phones"]]))
            found["emails"] = list(dict.fromkeys([*found["emails"], *contact["emails"]]))
    return list(merged.values())


def _new_customer(row: ImportRow, customer_id: UUID) -> Customer:
    missing = [f"a {name}" for name in ("name", "kind") if name not in row.profile]
    if missing:
        raise Refused(
            "missing field",
            f"a new customer needs {' and '.join(missing)}; the row gives none",
        )
    profile = row.profile
    try:
        return Customer(
            requested_id=customer_id,
            name=profile["name"],
            kind=profile["kind"],
            industry=profile.get("industry"),
            region=profile.get("region"),
            source_channel=profile.get("source_channel"),
            owner=profile.get("owner"),
            tags=list(row.tags),
            contacts=_contacts(row),
            addresses=list(row.addresses),
            classification={**DEFAULT_CLASSIFICATION, **row.classification},
            channel_preferences={"preferred": [], "opted_out": []},
            references=row.all_references(),
            first_seen_in=None,
        )
    except RuleViolation as exc:
        raise Refused("rule violated", str(exc)) from None


def _same_phone(value: str, region: str) -> str:
    try:
        return clean_phone(value, region, "phone") or value
    except Refused:
        return value


def _same_email(value: str) -> str:
    try:
        return clean_email(value, "email") or value
    except Refused:
        return value


def _update(customer: Customer, row: ImportRow, region: str) -> None:
    """Change what the row says differently of an existing customer; nothing else."""
    if row.profile:
        customer.change_profile(dict(row.profile))
    if row.classification:
        customer.classify(dict(row.classification))
    if row.tags:
        customer.tag(list(row.tags))
    for address in row.addresses:
        customer.set_address(dict(address))
    for contact in _contacts(row):
        current = _contact_named(customer, contact)
        if current is None:
            customer.add_contact(contact)
            continue
        phones = list(current.get("phones", []))
        known_phones = {_same_phone(p, region) for p in phones}
        phones += [p for p in contact["phones"] if p not in known_phones]
        emails = list(current.get("emails", []))
        known_emails = {_same_email(e) for e in emails}
        emails += [e for e in contact["emails"] if e not in known_emails]
        changes: dict[str, Any] = {"phones": phones, "emails": emails}
        if contact["title"] is not None:
            changes["title"] = contact["title"]
        customer.change_contact(current["contact_id"], changes)
    for reference in row.all_references():
        customer.add_reference(reference)


def _contact_named(customer: Customer, contact: dict[str, Any]) -> dict[str, Any] | None:
    found: dict[str, Any] | None = customer.contacts.get(contact["contact_id"])
    if found is not None:
        return found
    folded = str(contact["name"]).casefold()
    for current in customer.contacts.values():
        if str(current.get("name", "")).casefold() == folded:
            return current
    return None
