"""Merge groups in the fold's conclusions: while customers are merged into a survivor,
the conclusions recorded for the group (segment memberships and their history,
`analytics.segment_changed`, churn warnings, and the profile columns `/profiles` lists)
are those of the group's profiles combined (`domain.merge_groups.combine`), recorded
under the survivor; the absorbed customers are in no segment and have no warning.

The stored profile of every customer stays its own, as it was folded, and keeps being
concluded on its own (its `segments` and churn reasons in `profiles.state`), only
nothing is recorded from those conclusions while its customer is in a group. The group's
recorded conclusions and its combined columns are one row of `merged_profiles` per
survivor, which undoing the last merge into it removes. So what is recorded for a
customer is always: the `merged_profiles` row of a survivor; nothing for an absorbed
customer; its own profile's conclusions for anyone else.

- `customer.merged` (on each absorbed customer): the absorbed customer leaves each of its
  segments and its churn warning is cleared, at the merge's event time, each exit with
  `merged_into` and `merge_id` as its values; the group (a new one starts from the
  survivor's own conclusions) is concluded on the combined profile at that time.
- `customer.unmerged`: the absorbed customer enters the segments of its own profile's
  conclusions (and its warning is raised again) at the undo's event time, with the
  deciding values and `merge_undone`; the survivor moves from the group's memberships to
  its own profile's (or, with others still merged into it, the group is concluded again).
- A fact folded into any member concludes the group again, fact after fact in event
  order, on the combined profile; the sweep, the re-scoring and a new definition conclude
  the groups of the customers they conclude.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from functools import partial
from typing import Any
from uuid import UUID

import asyncpg
import orjson

from contracts.envelope import EventEnvelope
from services.analytics.domain.event_time import conclude_at, day_offsets, eventful
from services.analytics.domain.merge_groups import adopt_conclusions, combine, transition
from services.analytics.domain.money import Converter
from services.analytics.domain.profile import Profile, apply
from services.analytics.domain.segments import SegmentRule
from services.analytics.projections.bulk import recordset, rows_json
from services.analytics.projections.conclusions import (
    Concluded,
    conclude_all,
    record_outcomes,
    write_outcomes,
)
from services.analytics.projections.store import (
    MODEL_INPUTS,
    PROFILE_COLUMNS,
    Bounds,
    Loaded,
    load_bounds,
    load_profiles,
    profile_rows,
)

MERGE_TYPES = frozenset({"customer.merged", "customer.unmerged"})

MERGED_PROFILES_DDL = (
    "CREATE TABLE IF NOT EXISTS merged_profiles ("
    + ", ".join(
        f"{name} {kind}{' PRIMARY KEY' if name == 'customer_id' else ''}"
        for name, kind in PROFILE_COLUMNS
    )
    + ", updated_at timestamptz NOT NULL)"
)
"""The combined profile of each merge group under its survivor's id: the columns of
`profiles` that a fold writes, `state` holding the group's recorded conclusions."""

_UPSERT = (
    "INSERT INTO merged_profiles ("
    + ", ".join(n for n, _ in PROFILE_COLUMNS)
    + ", updated_at) SELECT "
    + ", ".join(f"u.{n}" for n, _ in PROFILE_COLUMNS)
    + ", $2 FROM "
    + recordset(1, PROFILE_COLUMNS)
    + " ON CONFLICT (customer_id) DO UPDATE SET "
    + ", ".join(f"{n} = excluded.{n}" for n, _ in PROFILE_COLUMNS[1:])
    + ", updated_at = excluded.updated_at"
)


class Groups:
    """Who is in a merge group: each member's survivor (a survivor is its own)."""

    def __init__(self, aliases: Iterable[tuple[UUID, UUID]] = ()) -> None:
        self.survivor_of: dict[UUID, UUID] = {}
        self.members: dict[UUID, list[UUID]] = {}
        """survivor -> [survivor, absorbed customers by id]"""
        for absorbed, survivor in sorted(aliases):
            self.survivor_of[absorbed] = self.survivor_of[survivor] = survivor
            self.members.setdefault(survivor, [survivor]).append(absorbed)

    def __bool__(self) -> bool:
        return bool(self.members)

    def touched(self, customers: Iterable[UUID]) -> list[UUID]:
        """The survivors of the groups any of `customers` is in, by id."""
        found = {self.survivor_of[c] for c in customers if c in self.survivor_of}
        return sorted(found)


async def load_groups(
    connection: asyncpg.Connection, customers: Sequence[UUID] | None = None
) -> Groups:
    """Every merge group, or those any of `customers` is in."""
    if customers is None:
        rows = await connection.fetch("SELECT customer_id, survivor_id FROM customer_aliases")
    else:
        rows = await connection.fetch(
            """SELECT customer_id, survivor_id FROM customer_aliases
               WHERE survivor_id = ANY($1::uuid[]) OR survivor_id IN (
                   SELECT survivor_id FROM customer_aliases WHERE customer_id = ANY($1::uuid[]))""",
            list(customers),
        )
    return Groups((r["customer_id"], r["survivor_id"]) for r in rows)


async def recorded_states(
    connection: asyncpg.Connection, survivors: Sequence[UUID]
) -> dict[UUID, Profile]:
    """The combined profiles stored for these survivors' groups, with the group's
    recorded conclusions."""
    rows = await connection.fetch(
        "SELECT customer_id, state::text AS state FROM merged_profiles"
        " WHERE customer_id = ANY($1::uuid[])",
        list(survivors),
    )
    return {
        r["customer_id"]: Profile.from_state(r["customer_id"], orjson.loads(r["state"]))
        for r in rows
    }


def combined_of(
    members: Sequence[UUID],
    profiles: Mapping[UUID, Profile],
    recorded: Profile | None,
    bounds: Bounds,
) -> Profile:
    """The group's profiles combined, with the group's recorded conclusions (a new group:
    the survivor's own), scored against the boundaries."""
    survivor = members[0]
    own = profiles.get(survivor) or Profile(survivor)
    combined = combine(own, [profiles[m] for m in members[1:] if m in profiles])
    adopt_conclusions(combined, recorded or own)
    bounds.score(combined)
    return combined


async def write_groups(
    connection: asyncpg.Connection, concluded: Sequence[Concluded], now: datetime
) -> None:
    """The groups' combined profiles stored, their conclusions recorded under their
    survivors."""
    if concluded:
        survivors = [c.profile.customer_id for c in concluded]
        before = await _purchases(connection, survivors)
        rows = profile_rows([(c.profile, c.final) for c in concluded])
        await connection.execute(_UPSERT, rows_json(rows), now)
        await record_outcomes(connection, concluded, now)
        after = await _purchases(connection, survivors)
        await _scores_stale(connection, [s for s in survivors if before.get(s) != after.get(s)])


async def _purchases(
    connection: asyncpg.Connection, survivors: Sequence[UUID]
) -> dict[UUID, tuple[Any, ...]]:
    """What the lifetime value models read of each group (`scoring.SCORED`)."""
    rows = await connection.fetch(
        f"SELECT customer_id, {', '.join(MODEL_INPUTS)} FROM merged_profiles"
        " WHERE customer_id = ANY($1::uuid[])",
        survivors,
    )
    return {r["customer_id"]: tuple(r)[1:] for r in rows}


async def _scores_stale(connection: asyncpg.Connection, survivors: Sequence[UUID]) -> None:
    """Have the survivors scored again: their groups' purchases changed (or the group
    ended, and their own purchases are theirs again)."""
    if survivors:
        await connection.execute(
            "UPDATE profiles SET scores_stale = true WHERE customer_id = ANY($1::uuid[])",
            list(survivors),
        )


async def fold_groups(
    connection: asyncpg.Connection,
    groups: Groups,
    before: Mapping[UUID, Profile],
    events: Sequence[EventEnvelope[Any]],
    rules: Sequence[SegmentRule],
    bounds: Bounds,
    converter: Converter,
    now: datetime,
) -> None:
    """Conclude the groups the batch's facts touch: each group's profiles as they were
    before the batch (`before`, and the stored ones of members without a fact) combined,
    and every fact of a member folded into the combination in event order, concluded at
    its time, as `conclusions.fold_all` does for one customer."""
    survivors = groups.touched(before)
    members = [m for s in survivors for m in groups.members[s]]
    stored = await load_profiles(connection, [m for m in members if m not in before])
    profiles = {**stored.profiles, **before}
    states = await recorded_states(connection, survivors)
    offsets = day_offsets(rules)
    concluded = []
    for survivor in survivors:
        combined = combined_of(groups.members[survivor], profiles, states.get(survivor), bounds)
        done = Concluded(combined)
        facts = [e for e in events if groups.survivor_of.get(e.customer_id) == survivor]
        facts.sort(key=lambda e: (e.occurred_at, e.event_id.int))
        for event in facts:
            fold = partial(_fold_member, combined, event, converter, bounds)
            done.conclude_fact(event.occurred_at, rules, offsets, fold)
        concluded.append(done)
    await write_groups(connection, concluded, now)


def _fold_member(
    combined: Profile,
    event: EventEnvelope[Any],
    converter: Converter,
    bounds: Bounds,
    moment: datetime,
) -> None:
    """A member's fact folded into the combined profile; the customer's own fields are
    the survivor's, so another member's customer events leave them."""
    if event.customer_id == combined.customer_id or not event.event_type.startswith("customer."):
        apply(combined, event, converter, moment)
    bounds.score(combined)


async def conclude_groups(
    connection: asyncpg.Connection,
    groups: Groups,
    survivors: Sequence[UUID],
    rules: Sequence[SegmentRule],
    at: datetime | None,
    now: datetime,
) -> int:
    """Conclude these groups at event time `at` (None: at each group's own clock) on their
    combined profiles, from what is stored; returns how many recorded something."""
    if not survivors:
        return 0
    members = [m for s in survivors for m in groups.members[s]]
    loaded = await load_profiles(connection, members)
    states = await recorded_states(connection, survivors)
    bounds = await load_bounds(connection)
    offsets = day_offsets(rules)
    concluded = []
    for survivor in survivors:
        group = groups.members[survivor]
        combined = combined_of(group, loaded.profiles, states.get(survivor), bounds)
        moment = at or combined.concluded_at or now
        concluded.append(Concluded(combined, conclude_at(combined, moment, rules, offsets)))
    await write_groups(connection, concluded, now)
    return sum(1 for c in concluded if any(eventful(o) for _, o in c.drawn))


async def conclude_and_write(
    connection: asyncpg.Connection,
    loaded: Loaded,
    rules: Sequence[SegmentRule],
    at: datetime | None,
    now: datetime,
) -> int:
    """Conclude every loaded profile at event time `at` (None: at each customer's own
    clock) and write what changed; members of merge groups have their own profiles
    written and their groups concluded and recorded. Returns how many changed."""
    groups = await load_groups(connection, list(loaded.profiles))
    concluded = conclude_all(loaded, rules, at, now, only_changed=True)
    await write_outcomes(connection, concluded, now, unrecorded=groups.survivor_of.keys())
    changed = len(concluded)
    if groups:
        survivors = groups.touched(loaded.profiles)
        changed += await conclude_groups(connection, groups, survivors, rules, at, now)
    return changed


async def conclude_every_group(
    connection: asyncpg.Connection, rules: Sequence[SegmentRule], at: datetime | None, now: datetime
) -> int:
    """Every merge group concluded again (the RFM boundaries moved)."""
    groups = await load_groups(connection)
    return await conclude_groups(connection, groups, list(groups.members), rules, at, now)


async def follow_merges(
    connection: asyncpg.Connection,
    events: Sequence[EventEnvelope[Any]],
    rules: Sequence[SegmentRule],
    bounds: Bounds,
    now: datetime,
) -> None:
    """The conclusions `customer.merged` and `customer.unmerged` change, in order (the
    alias table already follows them)."""
    offsets = day_offsets(rules)
    for event in events:
        absorbed, survivor = event.customer_id, event.payload.survivor_id
        at, merge_id = event.occurred_at, str(event.payload.merge_id)
        groups = await load_groups(connection, [survivor, absorbed])
        members = groups.members.get(survivor, [survivor])
        loaded = await load_profiles(connection, list(dict.fromkeys([*members, absorbed])))
        states = await recorded_states(connection, [survivor, absorbed])
        moved: list[Concluded] = []
        if event.event_type == "customer.merged":
            before = states.get(absorbed) or loaded.get(absorbed)
            moment = _not_before(at, before)
            note = {"merged_into": str(survivor), "merge_id": merge_id}
            outcome = transition(before, None, moment, rules, note)
            moved.append(Concluded(Profile(absorbed), [(moment, outcome)]))
            await _forget(connection, absorbed)
        else:
            own = loaded.get(absorbed)
            outcome = transition(Profile(absorbed), own, at, rules, {"merge_undone": merge_id})
            moved.append(Concluded(copy.deepcopy(own), [(at, outcome)]))
        if len(members) > 1:
            combined = combined_of(members, loaded.profiles, states.get(survivor), bounds)
            group = Concluded(combined, conclude_at(combined, at, rules, offsets))
            await write_groups(connection, [group], now)
        elif survivor in states:  # the last merge into it undone: its own conclusions
            own = loaded.get(survivor)
            moment = _not_before(at, states[survivor])
            outcome = transition(states[survivor], own, moment, rules, {"merge_undone": merge_id})
            moved.append(Concluded(copy.deepcopy(own), [(moment, outcome)]))
            await _forget(connection, survivor)
        await record_outcomes(connection, moved, now)


def _not_before(at: datetime, recorded: Profile) -> datetime:
    """`at`, or the latest recorded conclusion if later (`domain.event_time`)."""
    return at if recorded.changed_at is None else max(at, recorded.changed_at)


async def _forget(connection: asyncpg.Connection, survivor: UUID) -> None:
    await connection.execute("DELETE FROM merged_profiles WHERE customer_id = $1", survivor)
    await _scores_stale(connection, [survivor])
