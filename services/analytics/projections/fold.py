"""The analytics fold: contract events -> profiles, memberships, conclusions.

One projection, `analytics_fold`, reads the customer, sales, interaction and analytics
topics. For each batch, inside the consumer's transaction (with the newest relay position
of each partition, `positions.recognise`; a message without one recorded in
`consumed_events`):

1. one advisory lock serialises every writer of the analytics tables (replicas, the RFM
   re-scoring, the sweep), so conclusions and outbox positions are drawn in one order;
   each leaves a new writer token (`writers`);
2. the affected profiles are taken from what the fold last wrote when the token it found
   is its own (`cache`), or else loaded with one query (`store`); the events are folded
   in memory (`domain.profile.apply`), RFM scores given from the stored quintile
   boundaries, and every segment and churn rule evaluated (`conclusions`);
3. profiles are written back with one upsert (all rows in one JSON parameter read by
   `json_to_recordset`); segment entries and exits go to `segment_history`, churn
   warnings to `churn_warnings`, and each conclusion, as a contract envelope, to the
   `outbox` table that the service's relay publishes; detail rows for the views
   (interactions, surveys, tickets, opportunities) with one statement each (`details`);
4. customers merged into others (`groups`): a batch is cut after each merge and undone
   merge (`runs`); a member's profile is written but nothing recorded from its own
   conclusions, its group is concluded on the combined profile and recorded under the
   survivor, and the merge or undo that ends a run moves the memberships.

PostgreSQL works while Python computes (`bulk.alongside`): the detail rows are written
while the profiles are folded and concluded, and the profiles while the segment history
rows and envelopes are made; statements on the connection still run one at a time.

A segment definition arriving on the analytics topic re-evaluates every customer in the
same transaction. RFM boundaries are re-computed set-based by `rescoring.rescore`
(background, at most every `CRM_ANALYTICS_RESCORE_INTERVAL_SECONDS`), and the sweep
re-evaluates the time-dependent rules (lifecycle, days since, churn thresholds) for
everyone (`maintenance`).
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from contracts.envelope import EventEnvelope
from contracts.topics import Topic
from services.analytics.domain.money import Converter
from services.analytics.domain.profile import FOLDED_TYPES
from services.analytics.projections import rebuild
from services.analytics.projections.bulk import alongside
from services.analytics.projections.cache import ProfileCache
from services.analytics.projections.conclusions import Concluded, fold_all, write_outcomes
from services.analytics.projections.details import PERSONAL_COLUMNS, write_details
from services.analytics.projections.groups import (
    MERGE_TYPES,
    MERGED_PROFILES_DDL,
    fold_groups,
    follow_merges,
    load_groups,
)
from services.analytics.projections.reads import READER
from services.analytics.projections.rescoring import reconclude_all
from services.analytics.projections.store import (
    Loaded,
    bounds_are_stale,
    fetch_profiles,
    load_bounds,
    load_rules,
    store_rules,
)
from services.analytics.projections.tables import OUTBOX_TABLE, create_tables
from services.analytics.projections.writers import current, lock, take_turn
from services.runtime.customer_aliases import apply_aliases, create_alias_table
from services.runtime.privacy.erasure import erase_personal_columns, erased_customers

HISTORICAL_AFTER = timedelta(minutes=5)
"""A fact folded more than this after it occurred is history arriving (a load at once, a
replay, a backlog), not a fact of now."""


class FoldProgress:
    """What the fold of this process last folded, for the watermark (`maintenance`)."""

    def __init__(self) -> None:
        self.historical_at: float | None = None
        """When (monotonic) it last folded a fact that occurred long before it was folded
        (`HISTORICAL_AFTER`)."""

    def quiet_for(self) -> float:
        """Seconds since it last folded history (infinite if it never did)."""
        if self.historical_at is None:
            return math.inf
        return time.monotonic() - self.historical_at


PROGRESS = FoldProgress()
"""The progress of the folds in this process (the service runs one)."""


class AnalyticsFold:
    name = "analytics_fold"
    version = 7
    """The shape of the tables (`create_tables`); raised with every change to it (2:
    classifications, contact persons, purchases, contracts and payments, rule versions;
    3: the first purchase's amount and the lifetime value models' scores; 4: the
    activities' predictions, for the ledger of predictions; 5: the alias table of merged
    customers, `customer_aliases`; 6: the merge groups' combined profiles and recorded
    conclusions, `merged_profiles`; 7: the profiles' states kept as text, their JSON, not
    `jsonb`: the fold writes and reads each whole, and PostgreSQL took about twice as
    long to write one as `jsonb`)."""
    recognised_by_position = True
    """A message a relay published is recognised by its position, kept in the batch's
    transaction (`positions.recognise`), not by a row per event in `consumed_events`."""
    parse = staticmethod(READER.parse)
    """Each message read with the fields the fold reads, and only those (`reads`)."""
    kept_tables = (OUTBOX_TABLE,)
    """A rebuild keeps the live outbox: the conclusions in it were published already."""

    async def settle(self, connection: asyncpg.Connection, live_schema: str) -> None:
        """Bring a rebuilt state to where the live one is, in the rebuild's swap
        transaction (`rebuild.settle`)."""
        await rebuild.settle(connection, live_schema, self.clock)

    topics: Sequence[str] = (Topic.CUSTOMER, Topic.SALES, Topic.INTERACTION, Topic.ANALYTICS)
    aligned_topics: Sequence[str] = (Topic.CUSTOMER, Topic.SALES, Topic.INTERACTION)
    """The facts' topics, read in event time (`services.runtime.messaging.alignment`): a
    history loaded at once on several topics is folded in the order it happened. The
    analytics topic is not: it carries the fold's own conclusions (which follow the facts)
    and segment definitions (concluded at their own time)."""

    def __init__(
        self,
        converter: Converter,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        *,
        cache_capacity: int = 50_000,
        max_records: int = 10_000,
        progress: FoldProgress = PROGRESS,
    ) -> None:
        self.converter = converter
        self.max_records = max_records
        """Most facts folded in one transaction (`CRM_ANALYTICS_FOLD_MAX_RECORDS`)."""
        self.clock = clock
        self.cache = ProfileCache(cache_capacity)
        self.progress = progress

    async def create_tables(self, connection: asyncpg.Connection) -> None:
        await create_tables(connection)
        await create_alias_table(connection)
        await connection.execute(MERGED_PROFILES_DDL)

    co_partitioned = True
    """Partition `n` of every topic the fold reads goes to one process of the group, so
    that each customer's facts are folded by one process (`apply`)."""

    def on_assigned(self) -> None:
        """Customers of partitions given to this process may have been folded by another
        since this one last held them."""
        self.cache.clear()

    def committed(self) -> None:
        self.cache.committed()

    async def apply(
        self, connection: asyncpg.Connection, events: Sequence[EventEnvelope[Any]]
    ) -> None:
        """Fold the batch. A batch of facts about customers of this process's partitions
        alone is folded before it takes its turn among the writers (`_apply_own`), so that
        fold processes fold at once and take turns only to write; a batch with a merge or a
        segment definition, or naming a customer of a merge group (whose conclusions are
        the group's, wherever its members' facts are read), takes its turn first."""
        if not any(e.event_type in TURN_FIRST for e in events):
            try:
                async with connection.transaction():  # a savepoint, and the turn with it
                    await self._apply_own(connection, events)
                return
            except _TurnFirst:
                pass  # nothing of the try stays (`_apply_own`)
        self.cache.follow(*await lock(connection))
        now = self.clock()
        for run in runs(events):
            await self._apply_run(connection, run, now)

    async def _apply_own(
        self, connection: asyncpg.Connection, events: Sequence[EventEnvelope[Any]]
    ) -> None:
        """Fold, then take the writers' turn (`writers.take_turn`) and write, leaving the
        writer token as found. Should another writer have claimed it meanwhile (the RFM
        re-scoring, the sweep, a merge or definition folded by another process), what was
        folded may rest on what it changed: `_TurnFirst`, and the caller rolls the try back
        to its savepoint (which lets go of the turn too) and folds the batch again under
        its turn."""
        seen = await current(connection)
        cache = self.cache
        cache.found(seen)
        if cache.groups is None:
            cache.groups = await load_groups(connection)
        if cache.groups and any(e.customer_id in cache.groups.survivor_of for e in events):
            raise _TurnFirst

        async def take_turn_unchanged() -> None:
            await take_turn(connection)
            if await current(connection) != seen:
                raise _TurnFirst

        await self._apply_run(connection, events, self.clock(), take_turn_unchanged)

    async def _apply_run(
        self,
        connection: asyncpg.Connection,
        events: Sequence[EventEnvelope[Any]],
        now: datetime,
        before_writing: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """Fold a run of the batch: its facts with the merge groups as they were before
        it, then the merge or undone merge that ends it (`runs`); `before_writing` is
        awaited once the facts are folded, before anything but their detail rows is
        written."""
        cache = self.cache
        folded = [e for e in events if e.event_type in FOLDED_TYPES]
        merges = [e for e in events if e.event_type in MERGE_TYPES]
        concluded: list[Concluded] = []
        bought = False
        if folded or merges:
            if cache.bounds is None or cache.rules is None:
                cache.bounds = await load_bounds(connection)
                cache.rules = await load_rules(connection)
            bounds, rules = cache.bounds, cache.rules
        if folded:
            if min(e.occurred_at for e in folded) < now - HISTORICAL_AFTER:
                self.progress.historical_at = time.monotonic()
            # by the ids' integers: hashing a uuid.UUID runs Python code, an int's does not
            customers = set({e.customer_id.int: e.customer_id for e in folded}.values())
            loaded = Loaded()
            loaded.profiles = cache.take(customers)
            missing = list(customers - loaded.profiles.keys())
            rows = await fetch_profiles(connection, missing) if missing else []
            if cache.groups is None:
                cache.groups = await load_groups(connection)
            groups = cache.groups
            grouped = [c for c in customers if c in groups.survivor_of] if groups else []
        # The detail rows are written while the profiles are folded and concluded.
        async with alongside(write_details(connection, events, now, self.converter)):
            if folded:
                loaded.add_rows(rows)
                # the members' profiles before the batch, for their groups' conclusions
                before = {c: copy.deepcopy(loaded.get(c)) for c in grouped}
                concluded = fold_all(loaded, folded, rules, bounds, self.converter)
                bought = any(e.event_type.startswith("sales.") for e in folded)
        if before_writing is not None:
            await before_writing()
        await apply_aliases(connection, events)
        # after the batch's detail rows, so that none of them writes a personal value back
        await erase_personal_columns(connection, erased_customers(events), PERSONAL_COLUMNS)
        if folded:
            await write_outcomes(connection, concluded, now, unrecorded=before.keys())
            if before:
                await fold_groups(
                    connection, groups, before, folded, rules, bounds, self.converter, now
                )
            cache.keep(loaded.profiles.values())
            if bought:
                await bounds_are_stale(connection)
        if merges:
            await follow_merges(connection, merges, rules, bounds, now)
            cache.groups = None
        definitions = [e for e in events if e.event_type == "analytics.segment_defined"]
        if definitions:
            await store_rules(connection, definitions)
            # a definition's conclusions carry its own time (`domain.event_time`)
            defined_at = max(e.occurred_at for e in definitions)
            await reconclude_all(connection, await load_rules(connection), defined_at, now)
            cache.clear()  # every profile concluded again, under the new rules


TURN_FIRST = MERGE_TYPES | {"analytics.segment_defined"}
"""Events whose batch takes the writers' turn before folding (`AnalyticsFold.apply`)."""


class _TurnFirst(Exception):
    """The batch is to be folded again under the writers' turn (`AnalyticsFold.apply`)."""


def runs(events: Sequence[EventEnvelope[Any]]) -> list[Sequence[EventEnvelope[Any]]]:
    """The batch cut after each merge and undone merge, so that the facts before one are
    concluded with the groups as they were, and those after with the groups it makes."""
    found: list[Sequence[EventEnvelope[Any]]] = []
    start = 0
    for n, event in enumerate(events):
        if event.event_type in MERGE_TYPES:
            found.append(events[start : n + 1])
            start = n + 1
    if start < len(events) or not found:
        found.append(events[start:])
    return found
