"""What the fold concludes, written: each profile concluded (`domain.segments.conclude`),
its entries and exits recorded in `segment_history`, its churn warning in
`churn_warnings`, and each conclusion, as a contract envelope (`contracts.analytics`),
in the outbox that the service's relay publishes."""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any
from uuid import UUID

import asyncpg
import orjson

from contracts.envelope import EventEnvelope
from services.analytics.domain.event_time import (
    Conclusion,
    Offsets,
    conclude_at,
    concluded_moment,
    day_offsets,
    eventful,
)
from services.analytics.domain.money import Converter
from services.analytics.domain.profile import Profile, apply
from services.analytics.domain.segments import CHURN_FIELDS, Outcome, SegmentRule, pick, settle
from services.analytics.projections.bulk import (
    alongside,
    json_default,
    json_parameter,
    rows_json,
)
from services.analytics.projections.store import Bounds, Loaded, derived_columns, write_profiles
from services.analytics.projections.tables import OUTBOX_TABLE
from services.analytics.publishing import PRODUCER


class RandomIds:
    """Random (version 4) UUIDs as text, drawn from the operating system's random source
    256 at a time: `uuid.uuid4` asks it once per id, and a batch of the fold draws tens of
    thousands of conclusions. A forked process draws afresh, never ids of its parent."""

    DRAWN = 256

    def __init__(self) -> None:
        self._hex = ""
        self._at = 0
        os.register_at_fork(after_in_child=self.forget)

    def forget(self) -> None:
        self._hex, self._at = "", 0

    def next(self) -> str:
        at = self._at
        if at >= len(self._hex):
            self._hex, at = os.urandom(16 * self.DRAWN).hex(), 0
        self._at = at + 32
        h = self._hex
        variant = "89ab"[int(h[at + 16], 16) & 3]
        return (
            f"{h[at : at + 8]}-{h[at + 8 : at + 12]}-4{h[at + 13 : at + 16]}"
            f"-{variant}{h[at + 17 : at + 20]}-{h[at + 20 : at + 32]}"
        )


_EVENT_IDS = RandomIds()


def envelope(
    event_type: str, customer_id: UUID, payload: dict[str, Any], occurred: str, recorded: str
) -> bytes:
    """A contract envelope (`contracts.analytics`), serialised without a model round-trip
    (orjson writes the ids itself): `occurred` is the event time the conclusion carries,
    `recorded` when it was drawn."""
    return orjson.dumps(
        {
            "event_id": _EVENT_IDS.next(),
            "event_type": event_type,
            "schema_version": 1,
            "customer_id": customer_id,
            "aggregate_id": None,
            "aggregate_version": None,
            "occurred_at": occurred,
            "recorded_at": recorded,
            "producer": PRODUCER,
            "actor": "analytics",
            "correlation_id": None,
            "causation_id": None,
            "payload": payload,
        },
        default=json_default,
    )


@dataclass
class Concluded:
    """A customer's conclusions drawn in one step, each with the event time it carries,
    in the order drawn (`domain.event_time`)."""

    profile: Profile
    drawn: list[Conclusion] = field(default_factory=list)

    def conclude_fact(
        self,
        at: datetime,
        rules: Sequence[SegmentRule],
        offsets: Offsets,
        fold: Callable[[datetime], None],
    ) -> None:
        """Fold a fact of the profile (`fold`) and conclude it at its event time `at`
        (`event_time.conclude_at`). A conclusion drawn before, at a later moment than the
        fact is concluded at, would stay the latest (`final`): its values are settled
        before the profile changes (`segments.FieldValues`). (With the facts in event
        order there is none: a later conclusion recorded something, and the next fact is
        concluded no earlier than that.)"""
        profile = self.profile
        clock = profile.concluded_at
        if clock is not None and self.drawn:
            moment = concluded_moment(profile, at)
            if moment < clock:
                for when, outcome in self.drawn:
                    if when > moment:
                        settle(outcome.values)
        self.drawn.extend(conclude_at(profile, at, rules, offsets, fold))

    @property
    def final(self) -> Outcome:
        """The conclusion at the latest moment: what the profile's columns show."""
        latest, found = self.drawn[0]
        for moment, outcome in self.drawn:
            if moment >= latest:
                latest, found = moment, outcome
        return found


def fold_all(
    loaded: Loaded,
    events: Sequence[EventEnvelope[Any]],
    rules: Sequence[SegmentRule],
    bounds: Bounds,
    converter: Converter,
) -> list[Concluded]:
    """Fold the events into the loaded profiles, each customer's in event-time order,
    and conclude each at the time of the fact that causes it (`event_time.conclude_at`)."""
    offsets = day_offsets(rules)
    # keyed by the ids' integers: hashing a uuid.UUID runs Python code, an int's does not
    by_customer: dict[int, list[EventEnvelope[Any]]] = {}
    for event in events:
        facts = by_customer.get(event.customer_id.int)
        if facts is None:
            by_customer[event.customer_id.int] = [event]
        else:
            facts.append(event)
    concluded = []
    for facts in by_customer.values():
        profile = loaded.get(facts[0].customer_id)
        done = Concluded(profile)
        facts.sort(key=lambda e: (e.occurred_at, e.event_id.int))
        for event in facts:
            fold = partial(_fold_one, profile, event, converter, bounds)
            done.conclude_fact(event.occurred_at, rules, offsets, fold)
        concluded.append(done)
    return concluded


def _fold_one(
    profile: Profile,
    event: EventEnvelope[Any],
    converter: Converter,
    bounds: Bounds,
    moment: datetime,
) -> None:
    """Fold one fact into the profile as of `moment` and score it with the boundaries."""
    apply(profile, event, converter, moment)
    bounds.score(profile)


def conclude_all(
    loaded: Loaded,
    rules: Sequence[SegmentRule],
    at: datetime | None,
    now: datetime,
    *,
    only_changed: bool = False,
) -> list[Concluded]:
    """Conclude every loaded profile at event time `at`, or with None at the customer's
    own clock (`now` for a profile that has none); with `only_changed`, keep those with
    something new."""
    offsets = day_offsets(rules)
    concluded: list[Concluded] = []
    for profile in loaded.profiles.values():
        before_segments = dict(profile.segments)
        before_churn = list(profile.churn_reasons)
        moment = at or profile.concluded_at or now
        done = Concluded(profile, conclude_at(profile, moment, rules, offsets))
        if (
            only_changed
            and not any(eventful(o) or o.revised for _, o in done.drawn)
            and before_segments == profile.segments
            and before_churn == profile.churn_reasons
            and loaded.stored.get(profile.customer_id) == derived_columns(profile, done.final)
        ):
            continue
        concluded.append(done)
    return concluded


async def write_outcomes(
    connection: asyncpg.Connection,
    concluded: Sequence[Concluded],
    now: datetime,
    *,
    unrecorded: Collection[UUID] = (),
) -> None:
    """Profiles, memberships, churn warnings and conclusions of `concluded`. The
    membership rows and envelopes are made while PostgreSQL writes the profiles.

    Customers in `unrecorded` (members of a merge group) have their profiles written
    but nothing recorded: their group's conclusions are (`groups`)."""
    if not concluded:
        return
    finals = [(c.profile, c.final) for c in concluded]
    if unrecorded:
        concluded = [c for c in concluded if c.profile.customer_id not in unrecorded]
    async with alongside(write_profiles(connection, finals, now)):
        memberships = membership_rows(concluded, now)
    await write_memberships(connection, memberships, now)
    await write_churn(connection, concluded)


async def record_outcomes(
    connection: asyncpg.Connection, concluded: Sequence[Concluded], now: datetime
) -> None:
    """Memberships, churn warnings and conclusions of `concluded`, no profile written."""
    if concluded:
        await write_memberships(connection, membership_rows(concluded, now), now)
        await write_churn(connection, concluded)


class Memberships:
    """Rows of `segment_history` and `outbox` that a batch of conclusions makes."""

    def __init__(self) -> None:
        self.closed: list[dict[str, Any]] = []
        """Memberships recorded before, left: customer, segment, values, when (`c`, `s`,
        `v`, `t`)."""
        self.opened: list[dict[str, Any]] = []
        """Memberships entered: customer, segment, rule version, values, when, and the
        values and time of their exit if they were left in the same batch (`c`, `s`, `r`,
        `v`, `t`, `lv`, `lt`)."""
        self.revised: list[tuple[UUID, str, int]] = []
        self.envelopes: list[bytes] = []


def membership_rows(concluded: Sequence[Concluded], now: datetime) -> Memberships:
    """The history rows and contract envelopes of the conclusions' entries, exits, new
    rule versions and churn warnings raised or cleared, each at its event time."""
    recorded = now.isoformat()
    rows = Memberships()
    envelopes = rows.envelopes
    for done in concluded:
        customer = done.profile.customer_id
        open_here: dict[str, dict[str, Any]] = {}
        for when, outcome in done.drawn:
            moment = when.isoformat()
            written: dict[int, bytes] = {}  # an entry and an exit may share their values
            for change in outcome.changes:
                raw = written.get(id(change.values))
                if raw is None:
                    raw = written[id(change.values)] = orjson.dumps(change.values)
                values = orjson.Fragment(raw)
                if change.direction == "entered":
                    row: dict[str, Any] = {
                        "c": customer,
                        "s": change.segment,
                        "r": change.rule_version,
                        "v": values,
                        "t": when,
                        "lv": None,
                        "lt": None,
                    }
                    open_here[change.segment] = row
                    rows.opened.append(row)
                elif change.segment in open_here:
                    left = open_here.pop(change.segment)
                    left["lv"], left["lt"] = values, when
                else:
                    rows.closed.append({"c": customer, "s": change.segment, "v": values, "t": when})
                envelopes.append(
                    envelope(
                        "analytics.segment_changed",
                        customer,
                        {
                            "segment": change.segment,
                            "direction": change.direction,
                            "rule_version": change.rule_version,
                            "values": values,
                        },
                        moment,
                        recorded,
                    )
                )
            for segment in outcome.revised:
                rows.revised.append((customer, segment, outcome.memberships[segment]))
            if outcome.churn_event == "raised":
                payload = {
                    "reasons": outcome.churn_reasons,
                    "value_tier": outcome.values["value_tier"],
                    "values": pick(outcome.values, CHURN_FIELDS),
                }
                envelopes.append(
                    envelope("analytics.churn_risk_raised", customer, payload, moment, recorded)
                )
            elif outcome.churn_event == "cleared":
                payload = {
                    "value_tier": outcome.values["value_tier"],
                    "values": pick(outcome.values, CHURN_FIELDS),
                }
                envelopes.append(
                    envelope("analytics.churn_risk_cleared", customer, payload, moment, recorded)
                )
    return rows


async def write_memberships(
    connection: asyncpg.Connection,
    rows: Memberships,
    now: datetime,
    *,
    outbox: str = OUTBOX_TABLE,
    history: str = "segment_history",
) -> None:
    """The rows into `history` and `outbox` (tables found by the search path unless
    qualified)."""
    closed, opened, revised, envelopes = rows.closed, rows.opened, rows.revised, rows.envelopes
    if closed:
        await connection.execute(
            f"""UPDATE {history} h SET left_at = u.t, left_values = u.v
               FROM json_to_recordset({json_parameter(1)})
                   AS u(c uuid, s text, v jsonb, t timestamptz)
               WHERE h.customer_id = u.c AND h.segment = u.s AND h.left_at IS NULL""",
            rows_json(closed),
        )
    if opened:
        await connection.execute(
            f"""INSERT INTO {history} (customer_id, segment, rule_version, entered_at,
                                      entered_values, left_values, left_at)
               SELECT u.c, u.s, u.r, u.t, u.v, u.lv, u.lt
               FROM json_to_recordset({json_parameter(1)}) AS u(c uuid, s text, r int,
                   v jsonb, t timestamptz, lv jsonb, lt timestamptz)""",
            rows_json(opened),
        )
    if revised:
        await connection.execute(
            f"""UPDATE {history} h SET rule_version = u.r
               FROM unnest($1::uuid[], $2::text[], $3::int[]) AS u(c, s, r)
               WHERE h.customer_id = u.c AND h.segment = u.s AND h.left_at IS NULL""",
            *zip(*revised, strict=True),
        )
    if envelopes:
        await connection.execute(
            f"""INSERT INTO {outbox} (envelope, recorded_at)
                SELECT e, $2 FROM unnest($1::bytea[]) WITH ORDINALITY AS u(e, n) ORDER BY n""",
            envelopes,
            now,
        )


async def write_churn(connection: asyncpg.Connection, concluded: Sequence[Concluded]) -> None:
    """Each customer's warning as it stands after the batch: raised at the event time of
    the latest raise (a warning raised before keeps its time), removed when cleared."""
    at_risk = []
    cleared = []
    for done in concluded:
        events = [(when, o) for when, o in done.drawn if o.churn_event is not None]
        if not events and not done.profile.churn_reasons:
            continue  # neither a warning nor a change to one
        raised_at: datetime | None = None
        raised_on: Outcome | None = None
        was_cleared = False
        for when, outcome in events:
            if outcome.churn_event == "raised":
                raised_at, raised_on = when, outcome
            elif outcome.churn_event == "cleared":
                raised_at, was_cleared = None, True
        if done.profile.churn_reasons:
            since = raised_at or max(when for when, _ in done.drawn)
            if raised_on is None:
                raised_on = done.final
            # the values it was raised on, as its event says (a warning that stands keeps
            # them): not those of whenever it was last evaluated
            at_risk.append((done.profile, raised_on, since, raised_at is not None))
        elif was_cleared:
            cleared.append(done.profile.customer_id)
    for raised in (True, False):
        rows = [r for r in at_risk if r[3] is raised]
        if not rows:
            continue
        kept = "excluded" if raised else "churn_warnings"
        await connection.execute(
            f"""INSERT INTO churn_warnings (customer_id, raised_at, reasons, value_tier, "values")
                SELECT u.c, u.a, string_to_array(u.r, ','), u.t, u.v::jsonb
                FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::timestamptz[])
                     AS u(c, r, t, v, a)
                ON CONFLICT (customer_id) DO UPDATE SET reasons = excluded.reasons,
                    value_tier = {kept}.value_tier, "values" = {kept}."values",
                    raised_at = {kept}.raised_at""",
            [p.customer_id for p, _, _, _ in rows],
            [",".join(p.churn_reasons) for p, _, _, _ in rows],
            [o.values["value_tier"] for _, o, _, _ in rows],
            [orjson.dumps(pick(o.values, CHURN_FIELDS)).decode() for _, o, _, _ in rows],
            [since for _, _, since, _ in rows],
        )
    if cleared:
        await connection.execute(
            "DELETE FROM churn_warnings WHERE customer_id = ANY($1::uuid[])", cleared
        )
