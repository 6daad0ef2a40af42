"""What the fold reads and writes of the analytics tables besides its conclusions: the
profiles (their state as JSON and the columns the views filter on), the RFM quintile
boundaries, and the segment rules defined on the analytics topic."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import asyncpg
import orjson

from contracts.envelope import EventEnvelope
from services.analytics.domain import rfm
from services.analytics.domain.matrix import quadrant
from services.analytics.domain.predictions import SCORE_FIELDS
from services.analytics.domain.profile import Profile
from services.analytics.domain.segments import Outcome, SegmentRule
from services.analytics.projections.bulk import json_default, recordset, rows_json

PROFILE_COLUMNS = (
    ("customer_id", "uuid"),
    ("state", "text"),
    ("registered", "boolean"),
    ("name", "text"),
    ("kind", "text"),
    ("industry", "text"),
    ("region", "text"),
    ("owner", "text"),
    ("importance_tier", "text"),
    ("loyalty_stage", "text"),
    ("value_behaviour", "text"),
    ("relationship_level", "text"),
    ("tags", "text[]"),
    ("purchase_count", "integer"),
    ("total_spend", "numeric"),
    ("first_purchase_at", "timestamptz"),
    ("first_spend", "numeric"),
    ("last_purchase_at", "timestamptz"),
    ("last_purchase_date", "date"),
    ("last_contact_at", "timestamptz"),
    ("csat_average", "float8"),
    ("csat_count", "integer"),
    ("nps_latest", "smallint"),
    ("complaints_open", "integer"),
    ("complaints_total", "integer"),
    ("recency_score", "smallint"),
    ("frequency_score", "smallint"),
    ("monetary_score", "smallint"),
    ("rfm_segment", "text"),
    ("lifecycle_stage", "text"),
    ("value_tier", "text"),
    ("satisfaction", "text"),
    ("quadrant", "text"),
    ("churn_risk", "boolean"),
)
DERIVED = ("rfm_segment", "lifecycle_stage", "value_tier", "satisfaction", "quadrant", "churn_risk")


MODEL_INPUTS = (
    "purchase_count",
    "total_spend",
    "first_spend",
    "first_purchase_at",
    "last_purchase_at",
)
"""What the lifetime value models read of a profile: a change to any of them marks the
customer's scores stale, to be scored again (`scoring.score_stale`)."""

_ROW_COLUMNS = (*(c for c in PROFILE_COLUMNS if c[0] != "state"), ("n", "integer"))
"""A profile's columns in the rows' JSON: all but its state, which comes apart (`$3`),
and the row's place among the states."""

_UPSERT_PROFILES = (
    "INSERT INTO profiles ("
    + ", ".join(n for n, _ in PROFILE_COLUMNS)
    + ", updated_at, scores_stale) SELECT "
    + ", ".join(
        "convert_from(s.state, 'UTF8')" if n == "state" else f"u.{n}" for n, _ in PROFILE_COLUMNS
    )
    + ", $2, u.purchase_count > 0 FROM "
    + recordset(1, _ROW_COLUMNS)
    + " JOIN unnest($3::bytea[]) WITH ORDINALITY AS s(state, n) ON s.n = u.n"
    + " ON CONFLICT (customer_id) DO UPDATE SET "
    + ", ".join(f"{n} = excluded.{n}" for n, _ in PROFILE_COLUMNS[1:])
    + ", updated_at = excluded.updated_at, scores_stale = profiles.scores_stale OR ("
    + ", ".join(f"profiles.{n}" for n in MODEL_INPUTS)
    + ") IS DISTINCT FROM ("
    + ", ".join(f"excluded.{n}" for n in MODEL_INPUTS)
    + ")"
)

_LOAD = f"""SELECT customer_id, state, recency_score, frequency_score,
                  monetary_score, rfm_segment, lifecycle_stage, value_tier, satisfaction,
                  quadrant, churn_risk, {", ".join(SCORE_FIELDS)}
           FROM profiles"""


class Bounds:
    """The stored RFM quintile boundaries (None until somebody bought)."""

    def __init__(self, recency: list[date] | None, frequency: list[int] | None, monetary: Any):
        self.recency = recency
        self.frequency = frequency
        self.monetary = [Decimal(m) for m in monetary] if monetary else None

    def score(self, profile: Profile) -> None:
        if not profile.purchase_count or profile.last_purchase_at is None:
            profile.recency_score = profile.frequency_score = profile.monetary_score = None
            return
        profile.recency_score = rfm.score(profile.last_purchase_at.date(), self.recency)
        profile.frequency_score = rfm.score(profile.purchase_count, self.frequency)
        profile.monetary_score = rfm.score(profile.total_spend, self.monetary)

    def as_dict(self) -> dict[str, Any]:
        return {
            "recency": [d.isoformat() for d in self.recency] if self.recency else None,
            "frequency": self.frequency,
            "monetary": [str(m) for m in self.monetary] if self.monetary else None,
        }


async def load_bounds(connection: asyncpg.Connection) -> Bounds:
    row = await connection.fetchrow("SELECT recency, frequency, monetary FROM rfm_state")
    return Bounds(row["recency"], row["frequency"], row["monetary"])


async def bounds_are_stale(connection: asyncpg.Connection) -> None:
    """Purchases were folded: the boundaries are to be moved (`rescoring.rescore`)."""
    await connection.execute("UPDATE rfm_state SET dirty = true WHERE NOT dirty")


async def load_rules(connection: asyncpg.Connection) -> list[SegmentRule]:
    rows = await connection.fetch(
        "SELECT segment, version, name, rule::text AS rule FROM segment_rules ORDER BY segment"
    )
    return [
        SegmentRule.of(r["segment"], r["version"], r["name"], orjson.loads(r["rule"])) for r in rows
    ]


class Loaded:
    """Profiles read for a batch, with what was stored of their derived columns."""

    def __init__(self) -> None:
        self.profiles: dict[UUID, Profile] = {}
        self.stored: dict[UUID, tuple[Any, ...]] = {}

    def add_rows(self, rows: Iterable[asyncpg.Record]) -> None:
        for row in rows:
            profile = Profile.from_state(row["customer_id"], orjson.loads(row["state"]))
            profile.recency_score = row["recency_score"]
            profile.frequency_score = row["frequency_score"]
            profile.monetary_score = row["monetary_score"]
            for name in SCORE_FIELDS:
                setattr(profile, name, row[name])
            self.profiles[profile.customer_id] = profile
            self.stored[profile.customer_id] = tuple(row[name] for name in DERIVED)

    def get(self, customer_id: UUID) -> Profile:
        profile = self.profiles.get(customer_id)
        if profile is None:
            profile = self.profiles[customer_id] = Profile(customer_id)
        return profile


async def fetch_profiles(
    connection: asyncpg.Connection, customers: Sequence[UUID]
) -> list[asyncpg.Record]:
    """The stored rows of these customers' profiles (for `Loaded.add_rows`)."""
    rows: list[asyncpg.Record] = await connection.fetch(
        _LOAD + " WHERE customer_id = ANY($1::uuid[])", customers
    )
    return rows


async def fetch_profiles_after(
    connection: asyncpg.Connection, after: UUID, limit: int
) -> list[asyncpg.Record]:
    """The stored rows of the next `limit` profiles by customer id (to go through all)."""
    rows: list[asyncpg.Record] = await connection.fetch(
        _LOAD + " WHERE customer_id > $1 ORDER BY customer_id LIMIT $2", after, limit
    )
    return rows


async def load_profiles(connection: asyncpg.Connection, customers: Sequence[UUID]) -> Loaded:
    loaded = Loaded()
    loaded.add_rows(await fetch_profiles(connection, customers))
    return loaded


async def store_rules(connection: asyncpg.Connection, events: Sequence[EventEnvelope[Any]]) -> None:
    """Keep the segment definitions of `analytics.segment_defined` events: every version,
    and the newest as the segment's rule."""
    for event in events:
        p: Any = event.payload
        await connection.execute(
            """WITH kept AS (
                   INSERT INTO segment_rule_versions
                       (segment, version, name, description, rule, defined_at)
                   VALUES ($1, $2, $3, $4, $5::jsonb, $6) ON CONFLICT DO NOTHING)
               INSERT INTO segment_rules (segment, version, name, description, rule, defined_at)
               VALUES ($1, $2, $3, $4, $5::jsonb, $6)
               ON CONFLICT (segment) DO UPDATE SET version = excluded.version,
                   name = excluded.name, description = excluded.description,
                   rule = excluded.rule, defined_at = excluded.defined_at
               WHERE segment_rules.version < excluded.version""",
            p.segment,
            p.version,
            p.name,
            p.description,
            orjson.dumps(p.rule).decode(),
            event.recorded_at,
        )


def derived_columns(profile: Profile, outcome: Outcome) -> tuple[Any, ...]:
    """The profile's columns that follow from its conclusion (`DERIVED`), to tell whether
    a conclusion changed anything stored."""
    v = outcome.values
    return (
        v["rfm_segment"],
        v["lifecycle_stage"],
        v["value_tier"],
        v["satisfaction"],
        quadrant(v["value_tier"], v["satisfaction"]),
        bool(outcome.churn_reasons),
    )


async def write_profiles(
    connection: asyncpg.Connection, outcomes: Sequence[tuple[Profile, Outcome]], now: datetime
) -> None:
    """Upsert the concluded profiles, every row in one JSON parameter and their states
    in an array beside it: PostgreSQL reads each state once, as `jsonb`, rather than
    once within the rows' JSON and again as `jsonb`."""
    rows = profile_rows(outcomes)
    states = []
    for n, row in enumerate(rows, 1):
        states.append(orjson.dumps(row.pop("state"), default=json_default))
        row["n"] = n
    await connection.execute(_UPSERT_PROFILES, rows_json(rows), now, states)


def profile_rows(outcomes: Sequence[tuple[Profile, Outcome]]) -> list[dict[str, Any]]:
    """The `PROFILE_COLUMNS` of each concluded profile."""
    rows = []
    for profile, outcome in outcomes:
        v = outcome.values
        rfm_segment, stage, tier, level, quad, risk = derived_columns(profile, outcome)
        rows.append(
            {
                "customer_id": profile.customer_id,
                "state": profile.to_state(),
                "registered": profile.registered,
                "name": profile.name,
                "kind": profile.kind,
                "industry": profile.industry,
                "region": profile.region,
                "owner": profile.owner,
                "importance_tier": profile.importance_tier,
                "loyalty_stage": profile.loyalty_stage,
                "value_behaviour": profile.value_behaviour,
                "relationship_level": profile.relationship_level,
                "tags": v["tags"],
                "purchase_count": profile.purchase_count,
                "total_spend": profile.total_spend,
                "first_purchase_at": profile.first_purchase_at,
                "first_spend": profile.first_spend,
                "last_purchase_at": profile.last_purchase_at,
                "last_purchase_date": v["last_purchase_date"],
                "last_contact_at": profile.last_contact_at,
                "csat_average": v["csat_average"],
                "csat_count": profile.csat_count,
                "nps_latest": profile.nps_latest,
                "complaints_open": v["complaints_open"],
                "complaints_total": v["complaints_total"],
                "recency_score": profile.recency_score,
                "frequency_score": profile.frequency_score,
                "monetary_score": profile.monetary_score,
                "rfm_segment": rfm_segment,
                "lifecycle_stage": stage,
                "value_tier": tier,
                "satisfaction": level,
                "quadrant": quad,
                "churn_risk": risk,
            }
        )
    return rows
