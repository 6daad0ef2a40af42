"""The analytics fold: contract events -> profiles, memberships, conclusions (PostgreSQL).

One projection, `analytics_fold`, reads the customer, sales, interaction and analytics
topics. For each batch, inside the consumer's transaction (with the batch's record in
`consumed_events`):

1. one advisory lock serialises every writer of the analytics tables (replicas, the RFM
   re-scoring, the sweep), so conclusions and outbox positions are drawn in one order;
   each leaves a new writer token (`profile_cache`);
2. the affected profiles are taken from what the fold last wrote when the token it found
   is its own, or else loaded with one query; the events are folded in memory
   (`profile.apply`), RFM scores given from the stored quintile boundaries, and every
   segment and churn rule evaluated (`segments.conclude`);
3. profiles are written back with one upsert (all rows in one JSON parameter read by
   `json_to_recordset`); segment entries and exits go to `segment_history`, churn
   warnings to `churn_warnings`, and each conclusion, as a contract envelope, to the
   `outbox` table that the service's relay publishes; detail rows for the views
   (interactions, surveys, tickets, opportunities) with one statement each.

PostgreSQL works while Python computes (`alongside`): the detail rows are written while
the profiles are folded and concluded, and the profiles while the segment history rows
and envelopes are made; statements on the connection still run one at a time.

A segment definition arriving on the analytics topic re-evaluates every customer in the
same transaction. RFM boundaries are re-computed set-based by `rescore` (background, at
most every `CRM_ANALYTICS_RESCORE_INTERVAL_SECONDS`), and `sweep` re-evaluates the
time-dependent rules (lifecycle, days since, churn thresholds) for everyone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import asyncpg
import orjson

from contracts.envelope import EventEnvelope
from contracts.topics import Topic
from services.analytics import rfm
from services.analytics.matrix import quadrant
from services.analytics.money import Converter
from services.analytics.profile import FOLDED_TYPES, Profile, apply
from services.analytics.profile_cache import WRITER_TOKEN_TABLE, ProfileCache, claim
from services.analytics.publishing import PRODUCER
from services.analytics.segments import CHURN_FIELDS, Outcome, SegmentRule, conclude, pick
from services.runtime.privacy.erasure import (
    ERASED_TEXT,
    PersonalColumns,
    erase_personal_columns,
    erased_customers,
)

log = logging.getLogger(__name__)

LOCK_KEY = "crm-analytics-writers"
OUTBOX_TABLE = "outbox"
CHUNK = 5000

TABLES = """
CREATE TABLE IF NOT EXISTS profiles (
    customer_id uuid PRIMARY KEY,
    state jsonb NOT NULL,
    registered boolean NOT NULL,
    name text, kind text, industry text, region text, owner text,
    tags text[] NOT NULL DEFAULT '{}',
    purchase_count integer NOT NULL,
    total_spend numeric(20, 2) NOT NULL,
    first_purchase_at timestamptz,
    last_purchase_at timestamptz,
    last_purchase_date date,
    last_contact_at timestamptz,
    csat_average double precision,
    csat_count integer NOT NULL,
    nps_latest smallint,
    complaints_open integer NOT NULL,
    complaints_total integer NOT NULL,
    recency_score smallint,
    frequency_score smallint,
    monetary_score smallint,
    rfm_segment text,
    lifecycle_stage text NOT NULL,
    value_tier text NOT NULL,
    satisfaction text NOT NULL,
    quadrant text,
    churn_risk boolean NOT NULL,
    updated_at timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS profiles_recency ON profiles (last_purchase_date)
    WHERE purchase_count > 0;
CREATE INDEX IF NOT EXISTS profiles_frequency ON profiles (purchase_count)
    WHERE purchase_count > 0;
CREATE INDEX IF NOT EXISTS profiles_monetary ON profiles (total_spend) WHERE purchase_count > 0;
CREATE INDEX IF NOT EXISTS profiles_unscored ON profiles (customer_id)
    WHERE purchase_count > 0 AND recency_score IS NULL;
CREATE TABLE IF NOT EXISTS rfm_state (
    id integer PRIMARY KEY CHECK (id = 1),
    recency date[],
    frequency integer[],
    monetary numeric[],
    dirty boolean NOT NULL DEFAULT true,
    buyers bigint NOT NULL DEFAULT 0,
    scored_at timestamptz
);
INSERT INTO rfm_state (id) VALUES (1) ON CONFLICT DO NOTHING;
CREATE TABLE IF NOT EXISTS segment_rules (
    segment text PRIMARY KEY,
    version integer NOT NULL,
    name text NOT NULL,
    description text NOT NULL,
    rule jsonb NOT NULL,
    defined_at timestamptz NOT NULL
);
CREATE TABLE IF NOT EXISTS segment_history (
    id bigserial PRIMARY KEY,
    customer_id uuid NOT NULL,
    segment text NOT NULL,
    rule_version integer NOT NULL,
    entered_at timestamptz NOT NULL,
    entered_values jsonb NOT NULL,
    left_at timestamptz,
    left_values jsonb
);
CREATE UNIQUE INDEX IF NOT EXISTS segment_current
    ON segment_history (customer_id, segment) WHERE left_at IS NULL;
CREATE INDEX IF NOT EXISTS segment_members ON segment_history (segment, customer_id)
    WHERE left_at IS NULL;
CREATE INDEX IF NOT EXISTS segment_as_of ON segment_history (segment, entered_at);
CREATE TABLE IF NOT EXISTS churn_warnings (
    customer_id uuid PRIMARY KEY,
    raised_at timestamptz NOT NULL,
    reasons text[] NOT NULL,
    value_tier text NOT NULL,
    "values" jsonb NOT NULL
);
CREATE TABLE IF NOT EXISTS interactions (
    interaction_id uuid PRIMARY KEY,
    customer_id uuid NOT NULL,
    started_at timestamptz NOT NULL,
    channel text NOT NULL,
    direction text NOT NULL,
    subject text NOT NULL
);
ALTER TABLE interactions ADD COLUMN IF NOT EXISTS version integer NOT NULL DEFAULT 1;
CREATE INDEX IF NOT EXISTS interactions_customer ON interactions (customer_id, started_at);
CREATE TABLE IF NOT EXISTS surveys (
    event_id uuid PRIMARY KEY,
    customer_id uuid NOT NULL,
    survey text NOT NULL,
    answered_at timestamptz NOT NULL,
    csat smallint,
    nps smallint,
    channel text
);
CREATE INDEX IF NOT EXISTS surveys_customer ON surveys (customer_id);
CREATE TABLE IF NOT EXISTS tickets (
    ticket_id uuid PRIMARY KEY,
    customer_id uuid NOT NULL,
    kind text,
    channel text,
    category text,
    severity text,
    subject text,
    assignee text,
    opened_at timestamptz,
    resolved_at timestamptz,
    resolution_due_at timestamptz,
    due_version integer NOT NULL DEFAULT 0,
    status text NOT NULL,
    status_version integer NOT NULL
);
CREATE INDEX IF NOT EXISTS tickets_customer ON tickets (customer_id);
CREATE TABLE IF NOT EXISTS opportunities (
    opportunity_id uuid PRIMARY KEY,
    customer_id uuid NOT NULL,
    description text,
    owner text,
    stage text,
    stage_version integer NOT NULL DEFAULT 0,
    expected_amount numeric(20, 4),
    currency text,
    expected_close_date date,
    updated_at timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS opportunities_customer ON opportunities (customer_id);
"""

PROFILE_COLUMNS = (
    ("customer_id", "uuid"),
    ("state", "jsonb"),
    ("registered", "boolean"),
    ("name", "text"),
    ("kind", "text"),
    ("industry", "text"),
    ("region", "text"),
    ("owner", "text"),
    ("tags", "text[]"),
    ("purchase_count", "integer"),
    ("total_spend", "numeric"),
    ("first_purchase_at", "timestamptz"),
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


def rows_json(rows: Sequence[dict[str, Any]]) -> str:
    """Rows for one `json_to_recordset($n::json)` parameter: a whole batch of rows in one
    JSON text, read by PostgreSQL, instead of one array per column (asyncpg checks every
    element of an array parameter in Python). UUIDs, dates and times are written by
    orjson in the forms PostgreSQL reads; decimals as their exact text."""
    return orjson.dumps(rows, default=_json_default).decode()


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal | UUID):  # asyncpg's own UUID type, too
        return str(value)
    raise TypeError(f"not serialisable: {type(value).__name__}")


def recordset(parameter: int, columns: Sequence[tuple[str, str]]) -> str:
    """`json_to_recordset($parameter::json) AS u(column type, ...)`."""
    definitions = ", ".join(f'"{name}" {kind}' for name, kind in columns)
    return f"json_to_recordset(${parameter}::json) AS u({definitions})"


_UPSERT_PROFILES = (
    "INSERT INTO profiles ("
    + ", ".join(n for n, _ in PROFILE_COLUMNS)
    + ", updated_at) SELECT "
    + ", ".join(f"u.{n}" for n, _ in PROFILE_COLUMNS)
    + ", $2 FROM "
    + recordset(1, PROFILE_COLUMNS)
    + " ON CONFLICT (customer_id) DO UPDATE SET "
    + ", ".join(f"{n} = excluded.{n}" for n, _ in PROFILE_COLUMNS[1:])
    + ", updated_at = excluded.updated_at"
)

_LOAD = """SELECT customer_id, state::text AS state, recency_score, frequency_score,
                  monetary_score, rfm_segment, lifecycle_stage, value_tier, satisfaction,
                  quadrant, churn_risk
           FROM profiles"""


def _envelope(event_type: str, customer_id: UUID, payload: dict[str, Any], now: str) -> bytes:
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
        default=_json_default,
    )


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
            self.profiles[profile.customer_id] = profile
            self.stored[profile.customer_id] = tuple(row[name] for name in DERIVED)

    def get(self, customer_id: UUID) -> Profile:
        profile = self.profiles.get(customer_id)
        if profile is None:
            profile = self.profiles[customer_id] = Profile(customer_id)
        return profile


async def load_profiles(connection: asyncpg.Connection, customers: Sequence[UUID]) -> Loaded:
    loaded = Loaded()
    loaded.add_rows(
        await connection.fetch(_LOAD + " WHERE customer_id = ANY($1::uuid[])", customers)
    )
    return loaded


class AnalyticsFold:
    name = "analytics_fold"
    kept_tables = (OUTBOX_TABLE,)
    """A rebuild keeps the live outbox: the conclusions in it were published already."""

    async def settle(self, connection: asyncpg.Connection, live_schema: str) -> None:
        """Bring a rebuilt state to where the live one is, in the rebuild's swap
        transaction: RFM boundaries moved to the final population (the live service does
        it in the background), and the live segment history and churn warnings kept, with
        the differences recorded and published (`services.analytics.rebuild`)."""
        from services.analytics.rebuild import keep_live_history  # it builds on this module

        while await rescore(connection, self.clock()):
            pass
        await keep_live_history(connection, live_schema, self.clock())

    topics: Sequence[str] = (Topic.CUSTOMER, Topic.SALES, Topic.INTERACTION, Topic.ANALYTICS)

    def __init__(
        self,
        converter: Converter,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        *,
        cache_capacity: int = 100_000,
    ) -> None:
        self.converter = converter
        self.clock = clock
        self.cache = ProfileCache(cache_capacity)

    async def create_tables(self, connection: asyncpg.Connection) -> None:
        await connection.execute(TABLES)
        await connection.execute(WRITER_TOKEN_TABLE)
        await connection.execute(
            f"""CREATE TABLE IF NOT EXISTS {OUTBOX_TABLE} (
                    position bigserial PRIMARY KEY,
                    envelope bytea NOT NULL,
                    recorded_at timestamptz NOT NULL DEFAULT now())"""
        )

    async def apply(
        self, connection: asyncpg.Connection, events: Sequence[EventEnvelope[Any]]
    ) -> None:
        cache = self.cache
        cache.follow(*await lock(connection))
        now = self.clock()
        folded = [e for e in events if e.event_type in FOLDED_TYPES]
        outcomes: list[tuple[Profile, Outcome]] = []
        bought = False
        if folded:
            customers = {e.customer_id for e in folded}
            loaded = Loaded()
            loaded.profiles = cache.take(customers)
            missing = list(customers - loaded.profiles.keys())
            rows = (
                await connection.fetch(_LOAD + " WHERE customer_id = ANY($1::uuid[])", missing)
                if missing
                else []
            )
            if cache.bounds is None or cache.rules is None:
                cache.bounds = await load_bounds(connection)
                cache.rules = await load_rules(connection)
            bounds, rules = cache.bounds, cache.rules
        # The detail rows are written while the profiles are folded and concluded.
        async with alongside(write_details(connection, events, now)):
            if folded:
                loaded.add_rows(rows)
                for event in folded:
                    apply(loaded.get(event.customer_id), event, self.converter, now)
                    bought = bought or event.event_type.startswith("sales.")
                for profile in loaded.profiles.values():
                    bounds.score(profile)
                outcomes = conclude_all(loaded, rules, now)
        # after the batch's detail rows, so that none of them writes a personal value back
        await erase_personal_columns(connection, erased_customers(events), PERSONAL_COLUMNS)
        if folded:
            await write_outcomes(connection, outcomes, now)
            cache.keep(loaded.profiles.values())
            if bought:
                await connection.execute("UPDATE rfm_state SET dirty = true WHERE NOT dirty")
        definitions = [e for e in events if e.event_type == "analytics.segment_defined"]
        if definitions:
            await define_segments(connection, definitions)
            await reconclude_all(connection, await load_rules(connection), now)
            cache.clear()  # every profile concluded again, under the new rules


PERSONAL_COLUMNS = (
    PersonalColumns("interactions", {"subject": ERASED_TEXT}),
    PersonalColumns("tickets", {"subject": ERASED_TEXT}),
    PersonalColumns("opportunities", {"description": ERASED_TEXT}),
)
"""The personal columns of the detail views behind the customer 360; the profile's name
is erased by the fold itself."""


async def lock(connection: asyncpg.Connection) -> tuple[UUID, UUID]:
    """Serialise the writers of this schema's analytics tables and outbox (a rebuild's
    shadow schema has its own lock), and leave a new writer token (`profile_cache`).
    Returns the previous token and the new one."""
    await connection.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended(current_schema() || $1, 0))", LOCK_KEY
    )
    return await claim(connection)


async def define_segments(
    connection: asyncpg.Connection, events: Sequence[EventEnvelope[Any]]
) -> None:
    for event in events:
        p: Any = event.payload
        await connection.execute(
            """INSERT INTO segment_rules (segment, version, name, description, rule, defined_at)
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


async def store(
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


@contextlib.asynccontextmanager
async def alongside(statements: Coroutine[Any, Any, None]) -> AsyncIterator[None]:
    """Run `statements` (on the transaction's connection) while the body computes.

    The statements start at once (their rows made, the first one sent); the body runs
    while PostgreSQL executes them, and must not use the connection. Leaving the block
    waits for them, and raises their error if they failed; if the body fails, they are
    still waited for (the connection is free again) and the body's error is raised."""
    task = asyncio.ensure_future(statements)
    await asyncio.sleep(0)
    try:
        yield
    except BaseException:
        await asyncio.gather(task, return_exceptions=True)
        raise
    await task


def derived_columns(profile: Profile, outcome: Outcome) -> tuple[Any, ...]:
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
                "tags": v["tags"],
                "purchase_count": profile.purchase_count,
                "total_spend": profile.total_spend,
                "first_purchase_at": profile.first_purchase_at,
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
    await connection.execute(_UPSERT_PROFILES, rows_json(rows), now)


class Memberships:
    """Rows of `segment_history` and `outbox` that a batch of outcomes makes."""

    def __init__(self) -> None:
        self.entered: list[tuple[UUID, str, int, str]] = []
        self.left: list[tuple[UUID, str, str]] = []
        self.revised: list[tuple[UUID, str, int]] = []
        self.envelopes: list[bytes] = []


def membership_rows(outcomes: Sequence[tuple[Profile, Outcome]], now: datetime) -> Memberships:
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
                _envelope(
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
                _envelope(
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
                _envelope(
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


async def reconclude_all(
    connection: asyncpg.Connection, rules: Sequence[SegmentRule], now: datetime
) -> int:
    """Evaluate every customer again (a new definition, the sweep); write what changed."""
    after = UUID(int=0)
    changed = 0
    while True:
        rows = await connection.fetch(
            _LOAD + " WHERE customer_id > $1 ORDER BY customer_id LIMIT $2", after, CHUNK
        )
        if not rows:
            return changed
        loaded = Loaded()
        loaded.add_rows(rows)
        changed += await store(connection, loaded, rules, now, only_changed=True)
        after = rows[-1]["customer_id"]


# RFM re-scoring -----------------------------------------------------------------------

_BOUNDS = """
SELECT percentile_disc(ARRAY[0.2, 0.4, 0.6, 0.8]) WITHIN GROUP (ORDER BY last_purchase_date),
       percentile_disc(ARRAY[0.2, 0.4, 0.6, 0.8]) WITHIN GROUP (ORDER BY purchase_count),
       percentile_disc(ARRAY[0.2, 0.4, 0.6, 0.8]) WITHIN GROUP (ORDER BY total_spend),
       count(*)
FROM profiles WHERE purchase_count > 0
"""

_SCORE = {
    "recency_score": ("last_purchase_date", "date"),
    "frequency_score": ("purchase_count", "integer"),
    "monetary_score": ("total_spend", "numeric"),
}


async def rescore(connection: asyncpg.Connection, now: datetime) -> int:
    """Move the RFM boundaries to the current population, set-based.

    New boundaries come from `percentile_disc` over the profile table. Every buyer's
    stored scores agree with the stored boundaries (the fold scores with them under the
    same lock), so only customers whose value lies between an old and a new boundary can
    change score: one UPDATE restricted to those ranges (indexed) re-scores those whose
    scores change and returns them; only those are re-evaluated. Returns how many
    customers' conclusions changed.
    """
    await lock(connection)
    state = await connection.fetchrow("SELECT * FROM rfm_state")
    if not state["dirty"]:
        return 0
    r_new, f_new, m_new, buyers = await connection.fetchrow(_BOUNDS)
    old = {
        "recency_score": state["recency"],
        "frequency_score": state["frequency"],
        "monetary_score": state["monetary"],
    }
    new = {"recency_score": r_new, "frequency_score": f_new, "monetary_score": m_new}
    params: list[Any] = []

    def param(value: Any, kind: str) -> str:
        params.append(value)
        return f"${len(params)}::{kind}"

    scores: dict[str, str] = {}
    ranges = []
    for score_column, (column, kind) in _SCORE.items():
        bounds = new[score_column]
        if bounds is None:
            continue
        array = param(list(bounds), f"{kind}[]")
        scores[score_column] = "1 + " + " + ".join(
            f"({column} > ({array})[{i}])::int" for i in range(1, 5)
        )
        previous = old[score_column]
        if previous is None:
            ranges = ["true"]
            continue
        for before, after in zip(previous, bounds, strict=True):
            if before != after:
                low, high = min(before, after), max(before, after)
                ranges.append(f"{column} BETWEEN {param(low, kind)} AND {param(high, kind)}")
    ids: list[UUID] = []
    if scores:
        ranges.append("recency_score IS NULL")
        # only rows whose scores change are written (and returned)
        returned = await connection.fetch(
            f"""UPDATE profiles SET {", ".join(f"{c} = {e}" for c, e in scores.items())}
                WHERE purchase_count > 0 AND ({" OR ".join(ranges)})
                  AND ({", ".join(scores)}) IS DISTINCT FROM ({", ".join(scores.values())})
                RETURNING customer_id""",
            *params,
        )
        ids = [r["customer_id"] for r in returned]
    await connection.execute(
        """UPDATE rfm_state SET recency = $1, frequency = $2, monetary = $3, dirty = false,
               buyers = $4, scored_at = $5""",
        r_new,
        f_new,
        m_new,
        buyers,
        now,
    )
    if not ids:
        return 0
    rules = await load_rules(connection)
    changed = 0
    for start in range(0, len(ids), CHUNK):
        loaded = await load_profiles(connection, ids[start : start + CHUNK])
        changed += await store(connection, loaded, rules, now, only_changed=True)
    return changed


# Detail rows for the views ------------------------------------------------------------

_INTERACTION_COLUMNS = (
    ("interaction_id", "uuid"),
    ("customer_id", "uuid"),
    ("started_at", "timestamptz"),
    ("channel", "text"),
    ("direction", "text"),
    ("subject", "text"),
)
_SURVEY_COLUMNS = (
    ("event_id", "uuid"),
    ("customer_id", "uuid"),
    ("survey", "text"),
    ("answered_at", "timestamptz"),
    ("csat", "smallint"),
    ("nps", "smallint"),
    ("channel", "text"),
)


async def write_details(
    connection: asyncpg.Connection, events: Sequence[EventEnvelope[Any]], now: datetime
) -> None:
    interactions: list[dict[str, Any]] = []
    corrections: dict[UUID, dict[str, Any]] = {}
    surveys: list[dict[str, Any]] = []
    tickets: dict[UUID, dict[str, Any]] = {}
    opportunities: dict[UUID, dict[str, Any]] = {}
    ordered = sorted(
        (e for e in events if e.event_type.startswith(("interaction.", "sales.opportunity"))),
        key=lambda e: e.aggregate_version or 0,
    )
    for event in ordered:
        kind = event.event_type
        p: Any = event.payload
        if kind == "interaction.logged":
            interactions.append(
                {"interaction_id": event.aggregate_id, "customer_id": event.customer_id,
                 "started_at": p.started_at, "channel": p.channel.value,
                 "direction": p.direction.value, "subject": p.subject}
            )  # fmt: skip
        elif kind == "interaction.corrected" and event.aggregate_id is not None:
            _correction_row(corrections, event, p)
        elif kind == "interaction.survey_answered":
            surveys.append(
                {"event_id": event.event_id, "customer_id": event.customer_id,
                 "survey": p.survey, "answered_at": p.answered_at, "csat": p.csat,
                 "nps": p.nps, "channel": p.channel.value if p.channel else None}
            )  # fmt: skip
        elif kind.startswith("interaction.ticket_") and event.aggregate_id is not None:
            _ticket_row(tickets, event, p)
        elif kind.startswith("sales.opportunity_") and event.aggregate_id is not None:
            _opportunity_row(opportunities, event, p)
    if interactions:
        await connection.execute(
            """INSERT INTO interactions
                   (interaction_id, customer_id, started_at, channel, direction, subject)
               SELECT * FROM """
            + recordset(1, _INTERACTION_COLUMNS)
            + " ON CONFLICT DO NOTHING",
            rows_json(interactions),
        )
    if corrections:
        await _write_corrections(connection, list(corrections.values()))
    if surveys:
        await connection.execute(
            "INSERT INTO surveys (event_id, customer_id, survey, answered_at, csat, nps, channel)"
            " SELECT * FROM " + recordset(1, _SURVEY_COLUMNS) + " ON CONFLICT DO NOTHING",
            rows_json(surveys),
        )
    if tickets:
        await _write_tickets(connection, list(tickets.values()))
    if opportunities:
        await _write_opportunities(connection, list(opportunities.values()), now)


_CORRECTED_FIELDS = ("channel", "direction", "started_at", "subject")


def _correction_row(
    corrections: dict[UUID, dict[str, Any]], event: EventEnvelope[Any], p: Any
) -> None:
    """The corrections of one interaction in a batch, merged in version order (the
    events come sorted by version)."""
    assert event.aggregate_id is not None
    row = corrections.setdefault(
        event.aggregate_id,
        {"interaction_id": event.aggregate_id, **dict.fromkeys(_CORRECTED_FIELDS)},
    )
    row["version"] = event.aggregate_version or 1
    for name in _CORRECTED_FIELDS:
        value = getattr(p, name)
        if name in p.changed and value is not None:
            row[name] = getattr(value, "value", value)


async def _write_corrections(connection: asyncpg.Connection, rows: list[dict[str, Any]]) -> None:
    """Corrected fields of logged interactions, unless a later version is stored. (A
    correction read before its interaction was logged is not kept: the interaction
    service publishes both on one partition, in order.)"""
    columns = (
        ("interaction_id", "uuid"),
        ("version", "integer"),
        ("channel", "text"),
        ("direction", "text"),
        ("started_at", "timestamptz"),
        ("subject", "text"),
    )
    await connection.execute(
        f"""UPDATE interactions i SET
                {", ".join(f"{c} = coalesce(u.{c}, i.{c})" for c in _CORRECTED_FIELDS)},
                version = u.version
            FROM {recordset(1, columns)}
            WHERE i.interaction_id = u.interaction_id AND i.version < u.version""",
        rows_json(rows),
    )


_TICKET_FIELDS = (
    "ticket_id",
    "customer_id",
    "kind",
    "channel",
    "category",
    "severity",
    "subject",
    "assignee",
    "opened_at",
    "resolved_at",
    "resolution_due_at",
    "due_version",
    "status",
    "status_version",
)
_TICKET_TYPES = (
    ("uuid", "uuid") + ("text",) * 6 + ("timestamptz",) * 3 + ("integer", "text", "integer")
)


def _ticket_row(tickets: dict[UUID, dict[str, Any]], event: EventEnvelope[Any], p: Any) -> None:
    assert event.aggregate_id is not None
    version = event.aggregate_version or 1
    row = tickets.setdefault(
        event.aggregate_id,
        {
            **dict.fromkeys(_TICKET_FIELDS),
            "ticket_id": event.aggregate_id,
            "customer_id": event.customer_id,
            "due_version": 0,
            "status": "open",
            "status_version": 0,
        },
    )
    kind = event.event_type.removeprefix("interaction.ticket_")
    if kind == "opened":
        row.update(
            kind=p.kind.value,
            channel=p.channel.value,
            category=p.category,
            severity=p.severity.value,
            subject=p.subject,
            opened_at=p.opened_at,
        )
    if kind == "assigned":
        row["assignee"] = p.assignee
    if kind == "escalated":
        row["severity"] = p.severity.value
    if kind in ("opened", "escalated", "reopened") and version >= row["due_version"]:
        row.update(resolution_due_at=p.resolution_due_at, due_version=version)
    if kind == "resolved":
        row["resolved_at"] = p.resolved_at
    status = {"opened": "open", "reopened": "open", "resolved": "resolved", "closed": "closed"}
    if kind in status and version >= row["status_version"]:
        row.update(status=status[kind], status_version=version)


async def _write_tickets(connection: asyncpg.Connection, rows: list[dict[str, Any]]) -> None:
    keep = ("kind", "channel", "category", "severity", "subject", "assignee", "opened_at")
    await connection.execute(
        f"""INSERT INTO tickets AS t ({", ".join(_TICKET_FIELDS)})
            SELECT {", ".join(f"u.{c}" for c in _TICKET_FIELDS)}
            FROM {recordset(1, tuple(zip(_TICKET_FIELDS, _TICKET_TYPES, strict=True)))}
            ON CONFLICT (ticket_id) DO UPDATE SET
            {", ".join(f"{c} = coalesce(excluded.{c}, t.{c})" for c in keep)},
            resolved_at = greatest(excluded.resolved_at, t.resolved_at),
            resolution_due_at = CASE WHEN excluded.due_version >= t.due_version
                THEN coalesce(excluded.resolution_due_at, t.resolution_due_at)
                ELSE t.resolution_due_at END,
            due_version = greatest(excluded.due_version, t.due_version),
            status = CASE WHEN excluded.status_version >= t.status_version
                          AND excluded.status_version > 0
                THEN excluded.status ELSE t.status END,
            status_version = greatest(excluded.status_version, t.status_version)""",
        rows_json(rows),
    )


def _opportunity_row(
    opportunities: dict[UUID, dict[str, Any]], event: EventEnvelope[Any], p: Any
) -> None:
    assert event.aggregate_id is not None
    row = opportunities.setdefault(
        event.aggregate_id,
        {
            "opportunity_id": event.aggregate_id,
            "customer_id": event.customer_id,
            "description": None,
            "owner": None,
            "stage": None,
            "stage_version": 0,
            "expected_amount": None,
            "currency": None,
            "expected_close_date": None,
        },
    )
    version = event.aggregate_version or 1
    kind = event.event_type
    if kind == "sales.opportunity_opened":
        row.update(
            description=p.description,
            owner=p.owner,
            expected_amount=p.expected_amount,
            currency=p.currency.value,
            expected_close_date=p.expected_close_date,
        )
    if kind in ("sales.opportunity_opened", "sales.opportunity_stage_changed"):
        stage = p.stage if kind == "sales.opportunity_opened" else p.to_stage
        if version >= row["stage_version"]:
            row.update(stage=stage.value, stage_version=version)
    elif kind == "sales.opportunity_amount_changed":
        row.update(expected_amount=p.expected_amount, currency=p.currency.value)
    elif kind == "sales.opportunity_owner_changed":
        row["owner"] = p.owner
    elif kind == "sales.opportunity_close_date_changed":
        row["expected_close_date"] = p.expected_close_date


async def _write_opportunities(
    connection: asyncpg.Connection, rows: list[dict[str, Any]], now: datetime
) -> None:
    fields = (
        ("opportunity_id", "uuid"),
        ("customer_id", "uuid"),
        ("description", "text"),
        ("owner", "text"),
        ("stage", "text"),
        ("stage_version", "integer"),
        ("expected_amount", "numeric"),
        ("currency", "text"),
        ("expected_close_date", "date"),
    )
    keep = ("description", "owner", "expected_amount", "currency", "expected_close_date")
    await connection.execute(
        f"""INSERT INTO opportunities AS o ({", ".join(n for n, _ in fields)}, updated_at)
            SELECT {", ".join(f"u.{n}" for n, _ in fields)}, $2::timestamptz
            FROM {recordset(1, fields)}
            ON CONFLICT (opportunity_id) DO UPDATE SET
            {", ".join(f"{c} = coalesce(excluded.{c}, o.{c})" for c in keep)},
            stage = CASE WHEN excluded.stage_version >= o.stage_version
                THEN coalesce(excluded.stage, o.stage) ELSE o.stage END,
            stage_version = greatest(excluded.stage_version, o.stage_version),
            updated_at = excluded.updated_at""",
        rows_json(rows),
        now,
    )
