"""What a soak compares once its load has ended.

- `account`: every command accepted (2xx) and every inbound message acknowledged (by the
  broker, or answered `recorded`/`duplicate` over HTTP) is in the views exactly once,
  by its marker; a command in doubt is there at most once; every malformed purchase the
  broker acknowledged is a dead letter with its reason, and every one sent over HTTP was
  answered `rejected` with it. A purchase acknowledged by the broker before it was
  killed and missing afterwards existed only in the in-memory broker: counted apart.
- `rebuild_differences`: each service's projection tables before and after `crm
  rebuild` of that service, which builds them afresh from the topics.
- `analytics_differences`: the analytic profiles against `local.independent_analytics`
  over every event on the customer, sales and interaction topics.
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg
import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from bench.soak.cluster import Cluster
from bench.soak.load import HTTP_SOURCE, KAFKA_SOURCE, Command, Inbound, Load
from contracts.topics import Topic
from local.independent_analytics import distinct_events, expected, mismatches
from local.launcher import REPO
from local.synthetic_history import Event
from services import SERVICE_NAMES
from services.analytics.domain.predictions import SCORE_FIELDS
from services.sales.domain import purchase_id

COMMAND_VIEWS: dict[str, tuple[tuple[str, str], ...]] = {
    "register": (("customer.customer_directory", "name"),),
    "interaction": (("interaction.interactions", "subject"), ("analytics.interactions", "subject")),
    "opportunity": (
        ("sales.opportunities", "description"),
        ("analytics.opportunities", "description"),
    ),
}
"""Where each kind of command shows, by the column that holds its marker."""
CUSTOMER_VIEWS = (
    "sales.sales_customers",
    "interaction.interaction_customers",
    "analytics.profiles",
)
"""Where every registered customer shows besides the directory, by id."""
PURCHASE_VIEWS = (("sales.purchases", "order_id"), ("analytics.purchases", "reference"))
"""Where every recorded purchase shows: by its order id in sales, by the purchase's id
(derived from the source and order id) in analytics."""


@dataclass
class Accounting:
    accepted: Counter[str] = field(default_factory=Counter)
    """Commands answered 2xx, by kind."""
    in_doubt: int = 0
    in_doubt_recorded: int = 0
    """Of the commands in doubt, those the views hold (once)."""
    acknowledged: Counter[str] = field(default_factory=Counter)
    """Inbound purchases acknowledged, by channel (`kafka`, `http`), repeats included."""
    lost: list[str] = field(default_factory=list)
    doubled: list[str] = field(default_factory=list)
    only_in_broker: list[str] = field(default_factory=list)
    """Acknowledged by the broker before it was killed, and not in the views."""
    dead_letters: int = 0
    """Malformed purchases the broker acknowledged that are a dead letter, once, with
    their reason."""
    unexplained: list[str] = field(default_factory=list)
    """Malformed purchases without their dead letter or rejection, purchases that fit
    refused, commands refused."""


async def _marker_counts(
    connection: asyncpg.Connection, table: str, column: str, prefix: str
) -> Counter[str]:
    rows = await connection.fetch(
        f"SELECT {column} AS marker, count(*) AS n FROM {table} "
        f"WHERE {column} LIKE $1 GROUP BY {column}",
        prefix + "%",
    )
    return Counter({r["marker"]: r["n"] for r in rows})


async def account(
    database_url: str, load: Load, broker_killed_at: Iterable[float] = ()
) -> Accounting:
    result = Accounting()
    broker_kills = sorted(broker_killed_at)
    connection = await asyncpg.connect(database_url)
    try:
        await _account_commands(connection, load.commands, result)
        await _account_purchases(connection, load.inbound, broker_kills, result)
    finally:
        await connection.close()
    return result


async def _account_commands(
    connection: asyncpg.Connection, commands: list[Command], result: Accounting
) -> None:
    for kind, views in COMMAND_VIEWS.items():
        mine = [c for c in commands if c.kind == kind]
        for table, column in views:
            counts = await _marker_counts(connection, table, column, f"soak {kind} ")
            for command in mine:
                found = counts[command.marker]
                if found > 1:
                    result.doubled.append(f"{kind} {command.key}: {found} times in {table}")
                if command.outcome == "accepted" and found == 0:
                    result.lost.append(f"{kind} {command.key}: not in {table}")
                if command.outcome == "in doubt" and found and table == views[0][0]:
                    result.in_doubt_recorded += 1
        for command in mine:
            if command.outcome == "accepted":
                result.accepted[kind] += 1
            elif command.outcome == "in doubt":
                result.in_doubt += 1
            elif command.outcome == "refused":
                result.unexplained.append(f"{kind} {command.key} refused: {command.detail}")
    registered = [
        c.customer_id for c in commands if c.kind == "register" and c.outcome == "accepted"
    ]
    for table in CUSTOMER_VIEWS:
        known = {
            str(r["customer_id"])
            for r in await connection.fetch(f"SELECT customer_id FROM {table}")
        }
        result.lost += [f"customer {c}: not in {table}" for c in registered if c not in known]


async def _account_purchases(
    connection: asyncpg.Connection,
    inbound: list[Inbound],
    broker_kills: list[float],
    result: Accounting,
) -> None:
    for purchase in inbound:
        if purchase.acknowledged_at is not None:
            result.acknowledged[purchase.channel] += 1
    fitting = [p for p in inbound if p.reason is None]
    for table, column in PURCHASE_VIEWS:
        rows = await connection.fetch(
            f"SELECT {column} AS order_id, count(*) AS n FROM {table} "
            "WHERE source = ANY($1::text[]) GROUP BY 1",
            [KAFKA_SOURCE, HTTP_SOURCE],
        )
        counts = Counter({r["order_id"]: r["n"] for r in rows})
        orders: dict[str, list[Inbound]] = {}
        for purchase in fitting:
            orders.setdefault(purchase.order_id, []).append(purchase)
        for order_id, sent in orders.items():
            found = counts[order_id if column == "order_id" else _purchase_id(sent[0])]
            if found > 1:
                result.doubled.append(f"purchase {order_id}: {found} times in {table}")
            acknowledged = [p.acknowledged_at for p in sent if p.acknowledged_at is not None]
            if found or not acknowledged:
                continue
            first = min(acknowledged)
            if sent[0].channel == "kafka" and any(first < kill for kill in broker_kills):
                result.only_in_broker.append(f"purchase {order_id}: not in {table}")
            else:
                result.lost.append(f"purchase {order_id} ({sent[0].channel}): not in {table}")
        spoilt = {
            p.order_id if column == "order_id" else _purchase_id(p)
            for p in inbound
            if p.reason is not None
        }
        result.unexplained += [f"malformed purchase {o} in {table}" for o in counts if o in spoilt]
    letters = Counter(
        (bytes(r["value"]), r["reason"])
        for r in await connection.fetch(
            "SELECT value, reason FROM sales.dead_letters WHERE source_topic = $1",
            str(Topic.PURCHASES_INBOUND),
        )
    )
    for purchase in inbound:
        if purchase.reason is None:
            continue
        if purchase.channel == "http":
            if purchase.outcome and purchase.answered_reason != purchase.reason:
                result.unexplained.append(
                    f"purchase {purchase.order_id} over HTTP: {purchase.outcome} "
                    f"{purchase.answered_reason!r}, expected rejected {purchase.reason!r}"
                )
            continue
        if purchase.acknowledged_at is None:
            continue
        found = letters[(purchase.value, purchase.reason)]
        if found == 1:
            result.dead_letters += 1
            continue
        missing = f"dead letter of {purchase.order_id} ({purchase.reason}): {found}"
        if found > 1:
            result.doubled.append(missing)
        elif any(purchase.acknowledged_at < kill for kill in broker_kills):
            result.only_in_broker.append(missing)
        else:
            result.lost.append(missing)
    for purchase in fitting:
        if purchase.channel == "http" and purchase.outcome == "rejected":
            result.unexplained.append(
                f"purchase {purchase.order_id} over HTTP rejected: {purchase.answered_reason}"
            )


def _purchase_id(purchase: Inbound) -> str:
    source = KAFKA_SOURCE if purchase.channel == "kafka" else HTTP_SOURCE
    return str(purchase_id(source, purchase.order_id))


# Rebuilds ---------------------------------------------------------------------------

NOT_FACTS = {"analytics": ("writer_token",)}
"""Tables a rebuild writes that hold no facts: the token the last writer of the analytics
tables left (whether its cache of profiles is still valid)."""
WRITTEN_AT = {"analytics": ("updated_at", "scored_at")}
"""Columns that say when the projection wrote the row or last moved the RFM boundaries
(the analytics fold's clock), which a rebuild writes anew."""
MODEL_SCORES = {
    "analytics": frozenset({*SCORE_FIELDS, "scores_stale", "bg_nbd_version", "gamma_gamma_version"})
}
"""Fields the lifetime value models give a profile (and a churn warning's `values`), and
the versions of the models that gave them: a model fitted at a moment scores them in
the background, not the events, so a rebuild leaves them to the next scoring."""
MODEL_REASONS = frozenset({"probably_inactive"})
"""The churn reason the models give (`domain.churn`): it comes with their scores, which a
rebuild leaves to the next scoring, so a warning is compared on its other reasons (and
one standing on that reason alone is left out)."""
CLOCKS = {"analytics": frozenset({"concluded_at", "changed_at"})}
"""A profile's event clock (`services.analytics.domain.event_time`): the time up to which
its conclusions are drawn, which the live fold's last sweep set to the wall clock then
and a rebuild sets to its own (its conclusions are the same, and the live segment
history is kept)."""

JSON_TEXT = {("analytics", "profiles"): "state", ("analytics", "merged_profiles"): "state"}
"""Columns holding a JSON document as text (a profile's state, which the fold writes and
reads whole), by schema and table: compared as documents, whatever their keys' order."""


def _without(value: Any, keys: frozenset[str]) -> Any:
    if isinstance(value, dict):
        return {k: _without(v, keys) for k, v in value.items() if k not in keys}
    if isinstance(value, list):
        return [_without(v, keys) for v in value]
    return value


def _without_model_reasons(row: dict[str, Any]) -> dict[str, Any] | None:
    """A churn warning or a profile as the events alone conclude it (`MODEL_REASONS`);
    None for a warning that stands on a model's reason alone."""
    if "reasons" in row and "raised_at" in row:  # a churn warning
        reasons = [r for r in row["reasons"] if r not in MODEL_REASONS]
        return {**row, "reasons": reasons} if reasons else None
    state = row.get("state")
    if isinstance(state, dict) and "churn_reasons" in state:
        reasons = [r for r in state["churn_reasons"] if r not in MODEL_REASONS]
        return {**row, "churn_risk": bool(reasons), "state": {**state, "churn_reasons": reasons}}
    return row


async def snapshot(
    database_url: str, schema: str, tables: Iterable[str] | None = None
) -> dict[str, Counter[str]]:
    """Every row of `tables` (default: every table) of `schema`, as JSON text without the
    columns of `WRITTEN_AT`, the models' scores and the event clock, and with the churn
    reasons the events give, counted."""
    connection = await asyncpg.connect(database_url)
    try:
        if tables is None:
            tables = [
                r["tablename"]
                for r in await connection.fetch(
                    "SELECT tablename FROM pg_tables WHERE schemaname = $1", schema
                )
            ]
        scores = MODEL_SCORES.get(schema, frozenset()) | CLOCKS.get(schema, frozenset())
        snapshots: dict[str, Counter[str]] = {}
        for table in tables:
            rows = await connection.fetch(
                f'SELECT (to_jsonb(t) - $1::text[])::text AS row FROM "{schema}"."{table}" t',
                list(WRITTEN_AT.get(schema, ())),
            )
            found: Counter[str] = Counter()
            for r in rows:
                row = orjson.loads(r["row"])
                document = JSON_TEXT.get((schema, table))
                if document is not None and isinstance(row.get(document), str):
                    row[document] = orjson.loads(row[document])
                row = _without(row, scores)
                if schema in MODEL_SCORES:
                    row = _without_model_reasons(row)
                if row is not None:
                    found[orjson.dumps(row, option=orjson.OPT_SORT_KEYS).decode()] += 1
            snapshots[table] = found
        return snapshots
    finally:
        await connection.close()


async def rebuild(cluster: Cluster, service: str) -> list[str]:
    """`crm rebuild SERVICE`; the tables it says it rebuilt."""
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "crm.cli", "rebuild", service),
        cwd=REPO,
        env=cluster.crm_environment(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"crm rebuild {service} failed:\n{out.decode()}{err.decode()[-3000:]}")
    return rebuilt_tables(out.decode())


def rebuilt_tables(output: str) -> list[str]:
    """The tables `crm rebuild` says it rebuilt: one line per projection, "NAME: rebuilt
    from N messages (...) into TABLE, TABLE" (`RebuildReport.summary`)."""
    return [
        table
        for line in output.splitlines()
        if " into " in line
        for table in line.rpartition(" into ")[2].split(", ")
    ]


async def rebuild_differences(cluster: Cluster) -> dict[str, list[str]]:
    """For each service, the rows that differ between the tables of its projections and
    those `crm rebuild` builds afresh."""
    differences: dict[str, list[str]] = {}
    for service in SERVICE_NAMES:
        before = await snapshot(cluster.database_url, service)
        rebuilt = await rebuild(cluster, service)
        if not rebuilt:
            raise RuntimeError(f"crm rebuild {service} named no table it rebuilt")
        after = await snapshot(cluster.database_url, service, rebuilt)
        found = []
        for table in sorted(set(rebuilt) - set(NOT_FACTS.get(service, ()))):
            old, new = before.get(table, Counter()), after[table]
            found += [f"{table}: only before: {row}" for row in (old - new).elements()]
            found += [f"{table}: only after: {row}" for row in (new - old).elements()]
        differences[service] = found
    return differences


# Analytics --------------------------------------------------------------------------

FOLDED_TOPICS = (Topic.CUSTOMER, Topic.SALES, Topic.INTERACTION)


async def topic_events(bootstrap_servers: str) -> list[Event]:
    """Every event on the topics the analytics fold reads, each once."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers, group_id=None, enable_auto_commit=False
    )
    await consumer.start()
    events: list[Event] = []
    try:
        await consumer.topics()  # loads the cluster's metadata
        partitions = [
            TopicPartition(topic, partition)
            for topic in FOLDED_TOPICS
            for partition in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        while [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
            for records in (await consumer.getmany(timeout_ms=500, max_records=5000)).values():
                for record in records:
                    document: dict[str, Any] = orjson.loads(record.value)
                    customer = uuid.UUID(document["customer_id"])
                    events.append(Event(record.topic, customer, document))
    finally:
        await consumer.stop()
    return distinct_events(events)


async def analytics_differences(cluster: Cluster) -> list[str]:
    """Where the profiles differ from the independent computation over the topics."""
    now = datetime.now(UTC)
    want = expected(await topic_events(cluster.bootstrap_servers), now)
    connection = await asyncpg.connect(cluster.database_url)
    try:
        return await mismatches(connection, want, now)
    finally:
        await connection.close()
