"""What the fold concludes, written: each profile concluded (`domain.segments.conclude`),
its entries and exits recorded in `segment_history`, its churn warning in
`churn_warnings`, and each conclusion, as a contract envelope (`contracts.analytics`),
in the outbox that the service's relay publishes."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg
import orjson

from services.analytics.domain.profile import Profile
from services.analytics.domain.segments import CHURN_FIELDS, Outcome, SegmentRule, conclude, pick
from services.analytics.projections.bulk import alongside, json_default
from services.analytics.projections.store import Loaded, derived_columns, write_profiles
from services.analytics.projections.tables import OUTBOX_TABLE
from services.analytics.publishing import PRODUCER


def envelope(event_type: str, customer_id: UUID, payload: dict[str, Any], now: str) -> bytes:
    """A contract envelope (`contracts.analytics`), serialised without a model round-trip
    (orjson writes the ids itself)."""
    return orjson.dumps(
        {
            "event_id": uuid.uuid4(),
            "event_type": event_type,
            "schema_version": 1,
            "customer_id": customer_id,
            "aggregate_id": None,
            "aggregate_version": None,
            "occurred_at": now,
            "recorded_at": now,
            "producer": PRODUCER,
            "actor": "analytics",
            "correlation_id": None,
            "causation_id": None,
            "payload": payload,
        },
        default=json_default,
    )


async def conclude_and_write(
    connection: asyncpg.Connection,
    loaded: Loaded,
    rules: Sequence[SegmentRule],
    now: datetime,
    *,
    only_changed: bool = False,
) -> int:
    """Conclude every loaded profile and write what follows. Returns how many changed."""
    outcomes = conclude_all(loaded, rules, now, only_changed=only_changed)
    await write_outcomes(connection, outcomes, now)
    return len(outcomes)


def conclude_all(
    loaded: Loaded, rules: Sequence[SegmentRule], now: datetime, *, only_changed: bool = False
) -> list[tuple[Profile, Outcome]]:
    """Conclude every loaded profile; with `only_changed`, keep those with something new."""
    outcomes: list[tuple[Profile, Outcome]] = []
    for profile in loaded.profiles.values():
        before_segments = dict(profile.segments)
        before_churn = list(profile.churn_reasons)
        outcome = conclude(profile, now, rules)
        derived = derived_columns(profile, outcome)
        if (
            only_changed
            and not outcome.changes
            and not outcome.revised
            and before_segments == profile.segments
            and before_churn == profile.churn_reasons
            and loaded.stored.get(profile.customer_id) == derived
        ):
            continue
        outcomes.append((profile, outcome))
    return outcomes


async def write_outcomes(
    connection: asyncpg.Connection, outcomes: Sequence[tuple[Profile, Outcome]], now: datetime
) -> None:
    """Profiles, memberships, churn warnings and conclusions of `outcomes`. The membership
    rows and envelopes are made while PostgreSQL writes the profiles."""
    if not outcomes:
        return
    async with alongside(write_profiles(connection, outcomes, now)):
        memberships = membership_rows(outcomes, now)
    await write_memberships(connection, memberships, now)
    await write_churn(connection, outcomes, now)


class Memberships:
    """Rows of `segment_history` and `outbox` that a batch of outcomes makes."""

    def __init__(self) -> None:
        self.entered: list[tuple[UUID, str, int, str]] = []
        self.left: list[tuple[UUID, str, str]] = []
        self.revised: list[tuple[UUID, str, int]] = []
        self.envelopes: list[bytes] = []


def membership_rows(outcomes: Sequence[tuple[Profile, Outcome]], now: datetime) -> Memberships:
    """The history rows and contract envelopes of the outcomes' entries, exits, new rule
    versions and churn warnings raised or cleared."""
    moment = now.isoformat()
    rows = Memberships()
    entered, left, revised, envelopes = rows.entered, rows.left, rows.revised, rows.envelopes
    for profile, outcome in outcomes:
        for change in outcome.changes:
            values = orjson.dumps(change.values).decode()
            if change.direction == "entered":
                entered.append((profile.customer_id, change.segment, change.rule_version, values))
            else:
                left.append((profile.customer_id, change.segment, values))
            envelopes.append(
                envelope(
                    "analytics.segment_changed",
                    profile.customer_id,
                    {
                        "segment": change.segment,
                        "direction": change.direction,
                        "rule_version": change.rule_version,
                        "values": change.values,
                    },
                    moment,
                )
            )
        for segment in outcome.revised:
            revised.append((profile.customer_id, segment, outcome.memberships[segment][0]))
        if outcome.churn_event == "raised":
            envelopes.append(
                envelope(
                    "analytics.churn_risk_raised",
                    profile.customer_id,
                    {
                        "reasons": outcome.churn_reasons,
                        "value_tier": outcome.values["value_tier"],
                        "values": pick(outcome.values, CHURN_FIELDS),
                    },
                    moment,
                )
            )
        elif outcome.churn_event == "cleared":
            envelopes.append(
                envelope(
                    "analytics.churn_risk_cleared",
                    profile.customer_id,
                    {
                        "value_tier": outcome.values["value_tier"],
                        "values": pick(outcome.values, CHURN_FIELDS),
                    },
                    moment,
                )
            )
    return rows


async def write_memberships(
    connection: asyncpg.Connection, rows: Memberships, now: datetime, *, outbox: str = OUTBOX_TABLE
) -> None:
    entered, left, revised, envelopes = rows.entered, rows.left, rows.revised, rows.envelopes
    if left:
        await connection.execute(
            """UPDATE segment_history h SET left_at = $4, left_values = u.v::jsonb
               FROM unnest($1::uuid[], $2::text[], $3::text[]) AS u(c, s, v)
               WHERE h.customer_id = u.c AND h.segment = u.s AND h.left_at IS NULL""",
            *zip(*left, strict=True),
            now,
        )
    if entered:
        await connection.execute(
            """INSERT INTO segment_history
                   (customer_id, segment, rule_version, entered_at, entered_values)
               SELECT u.c, u.s, u.r, $5, u.v::jsonb
               FROM unnest($1::uuid[], $2::text[], $3::int[], $4::text[]) AS u(c, s, r, v)""",
            *zip(*entered, strict=True),
            now,
        )
    if revised:
        await connection.execute(
            """UPDATE segment_history h SET rule_version = u.r
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


async def write_churn(
    connection: asyncpg.Connection, outcomes: Sequence[tuple[Profile, Outcome]], now: datetime
) -> None:
    at_risk = [(p, o) for p, o in outcomes if o.churn_reasons]
    cleared = [p.customer_id for p, o in outcomes if o.churn_event == "cleared"]
    if at_risk:
        await connection.execute(
            """INSERT INTO churn_warnings (customer_id, raised_at, reasons, value_tier, "values")
               SELECT u.c, $5, string_to_array(u.r, ','), u.t, u.v::jsonb
               FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[]) AS u(c, r, t, v)
               ON CONFLICT (customer_id) DO UPDATE SET reasons = excluded.reasons,
                   value_tier = excluded.value_tier, "values" = excluded."values"
               """,
            [p.customer_id for p, _ in at_risk],
            [",".join(o.churn_reasons) for _, o in at_risk],
            [o.values["value_tier"] for _, o in at_risk],
            [orjson.dumps(pick(o.values, CHURN_FIELDS)).decode() for _, o in at_risk],
            now,
        )
    if cleared:
        await connection.execute(
            "DELETE FROM churn_warnings WHERE customer_id = ANY($1::uuid[])", cleared
        )
