"""The queue of possible duplicates over the whole directory, kept by the directory's
projection (`CustomerDirectory.apply` calls `refresh` in its transaction), and the
lookup of a new record's possible duplicates in the directory.

Why a projection and not a periodic scan: the queue is then current as customers
change (a pair appears when the second record is folded, and leaves when a change
makes the records differ), is rebuilt with the directory from the customer topic
(`crm rebuild customer`), and costs a few index probes per changed customer instead of a
scan of the directory every so often. Its tables:

- `duplicate_profiles`: each customer's profile (`duplicates.Profile`: its normalised
  values), so that a candidate is compared without normalising its values again;
- `duplicate_keys`: each customer's blocking keys (`duplicates.blocking_keys`); the
  customers sharing a key with a changed one are its candidates, unless more than
  `MAX_BLOCK` customers share that key;
- `duplicate_pairs`: each pair scoring at least `THRESHOLD`, its smaller id first, with
  the score and the evidence;
- `duplicate_dismissals`: the pairs someone dismissed (`customer.duplicate_dismissed`,
  recorded on the customer with the smaller id), which never enter the queue again;
  folded from the events, so they survive a rebuild.

An erased customer leaves the queue (and its profile and keys, which held personal
values), and so does a customer merged into another (`customer_aliases`), while the merge
holds: its values are the survivor's now.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from uuid import UUID

import asyncpg
import orjson

from contracts.envelope import EventEnvelope
from contracts.personal import ERASED
from services.customer.duplicates import (
    MAX_BLOCK,
    THRESHOLD,
    WEAK_KEYS,
    Match,
    Profile,
    are_candidates,
    blocking_keys,
    compare,
    may_match,
    profile_of_row,
)
from services.customer.metrics import DUPLICATE_PAIRS_FOUND
from services.runtime.storage.filters import Where

Row = dict[str, Any]

DDL = """
CREATE TABLE IF NOT EXISTS duplicate_keys (
    key text NOT NULL,
    customer_id uuid NOT NULL,
    PRIMARY KEY (key, customer_id)
);
CREATE INDEX IF NOT EXISTS duplicate_keys_customer ON duplicate_keys (customer_id);
CREATE TABLE IF NOT EXISTS duplicate_profiles (
    customer_id uuid PRIMARY KEY,
    profile jsonb NOT NULL
);
CREATE TABLE IF NOT EXISTS duplicate_pairs (
    customer_a uuid NOT NULL,
    customer_b uuid NOT NULL,
    score numeric(4, 3) NOT NULL,
    rank integer NOT NULL,
    evidence jsonb NOT NULL,
    PRIMARY KEY (customer_a, customer_b)
);
CREATE INDEX IF NOT EXISTS duplicate_pairs_queue
    ON duplicate_pairs (rank, customer_a, customer_b);
CREATE INDEX IF NOT EXISTS duplicate_pairs_b ON duplicate_pairs (customer_b);
CREATE TABLE IF NOT EXISTS duplicate_dismissals (
    customer_a uuid NOT NULL,
    customer_b uuid NOT NULL,
    actor text,
    dismissed_at timestamptz NOT NULL,
    PRIMARY KEY (customer_a, customer_b)
);
"""

DISMISSED = "customer.duplicate_dismissed"


def ordered(first: UUID, second: UUID) -> tuple[UUID, UUID]:
    """A pair as the queue names it: the smaller id first."""
    return (first, second) if first < second else (second, first)


def rank_of(score: float) -> int:
    """The queue's order: the best score first."""
    return 1000 - round(score * 1000)


async def record_dismissals(
    connection: asyncpg.Connection, events: Sequence[EventEnvelope[Any]]
) -> None:
    """Fold the dismissals among `events`: the pair leaves the queue for good."""
    dismissed = [
        (*ordered(e.customer_id, e.payload.other_customer_id), e.actor, e.occurred_at)
        for e in events
        if e.event_type == DISMISSED
    ]
    if not dismissed:
        return
    await connection.executemany(
        "INSERT INTO duplicate_dismissals (customer_a, customer_b, actor, dismissed_at) "
        "VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        dismissed,
    )
    await connection.executemany(
        "DELETE FROM duplicate_pairs WHERE customer_a = $1 AND customer_b = $2",
        [d[:2] for d in dismissed],
    )


async def refresh(connection: asyncpg.Connection, rows: Iterable[Row], region: str) -> None:
    """Bring the queue up to date with the directory rows just written: their profiles
    and keys, and their pairs with every customer sharing a key with them."""
    rows = list(rows)
    if not rows:
        return
    ids = [UUID(str(r["customer_id"])) for r in rows]
    merged = {
        r["customer_id"]
        for r in await connection.fetch(
            "SELECT customer_id FROM customer_aliases WHERE customer_id = ANY($1::uuid[])", ids
        )
    }
    profiles = {
        customer_id: profile_of_row(r, region)
        for r in rows
        if r["name"] != ERASED and (customer_id := UUID(str(r["customer_id"]))) not in merged
    }
    await _store(connection, ids, profiles)
    before = {
        (r["customer_a"], r["customer_b"])
        for r in await connection.fetch(
            "DELETE FROM duplicate_pairs WHERE customer_a = ANY($1::uuid[]) "
            "OR customer_b = ANY($1::uuid[]) RETURNING customer_a, customer_b",
            ids,
        )
    }
    candidates = await connection.fetch(
        """SELECT least(m.customer_id, o.customer_id) AS a,
                  greatest(m.customer_id, o.customer_id) AS b
           FROM duplicate_keys m
           CROSS JOIN LATERAL (
               SELECT count(*) AS n FROM (
                   SELECT 1 FROM duplicate_keys s WHERE s.key = m.key LIMIT $2 + 1
               ) AS block
           ) AS size
           JOIN duplicate_keys o ON o.key = m.key AND o.customer_id <> m.customer_id
           WHERE m.customer_id = ANY($1::uuid[]) AND size.n <= $2
             AND NOT EXISTS (
                 SELECT 1 FROM duplicate_dismissals d
                 WHERE d.customer_a = least(m.customer_id, o.customer_id)
                   AND d.customer_b = greatest(m.customer_id, o.customer_id))
           GROUP BY 1, 2
           HAVING count(DISTINCT m.key) >= 2
               OR bool_or(NOT starts_with(m.key, $3) AND NOT starts_with(m.key, $4))
           ORDER BY 1, 2""",
        ids,
        MAX_BLOCK,
        *WEAK_KEYS,
    )
    if not candidates:
        return
    pairs = [(c["a"], c["b"]) for c in candidates]
    known = await stored_profiles(connection, {i for pair in pairs for i in pair} - set(profiles))
    known.update(profiles)
    found = []
    for a, b in pairs:
        if a not in known or b not in known:
            continue
        if not may_match(known[a], known[b]):
            continue
        match = compare(known[a], known[b])
        if match.score >= THRESHOLD:
            found.append((a, b, match))
    await connection.executemany(
        "INSERT INTO duplicate_pairs (customer_a, customer_b, score, rank, evidence) "
        "VALUES ($1, $2, $3, $4, $5::jsonb)",
        [
            (a, b, m.score, rank_of(m.score), json.dumps(m.evidence_dicts(), ensure_ascii=False))
            for a, b, m in found
        ],
    )
    new = sum((a, b) not in before for a, b, _ in found)
    if new:
        DUPLICATE_PAIRS_FOUND.inc(new)


async def _store(
    connection: asyncpg.Connection,
    ids: list[UUID],
    profiles: dict[UUID, Profile],
) -> None:
    """Replace the profiles and keys of `ids` (an erased customer keeps none)."""
    await connection.execute("DELETE FROM duplicate_keys WHERE customer_id = ANY($1::uuid[])", ids)
    await connection.execute(
        "DELETE FROM duplicate_profiles WHERE customer_id = ANY($1::uuid[])", ids
    )
    keys = [(key, i) for i, p in profiles.items() for key in blocking_keys(p)]
    await connection.execute(
        "INSERT INTO duplicate_keys (key, customer_id) "
        "SELECT * FROM unnest($1::text[], $2::uuid[]) ON CONFLICT DO NOTHING",
        [k for k, _ in keys],
        [i for _, i in keys],
    )
    await connection.execute(
        "INSERT INTO duplicate_profiles (customer_id, profile) "
        "SELECT * FROM unnest($1::uuid[], $2::jsonb[])",
        list(profiles),
        [orjson.dumps(p.as_dict()).decode() for p in profiles.values()],
    )


async def stored_profiles(
    connection: asyncpg.Connection | asyncpg.Pool, ids: Iterable[UUID]
) -> dict[UUID, Profile]:
    """The stored profiles of `ids` (those neither erased nor merged)."""
    records = await connection.fetch(
        "SELECT customer_id, profile FROM duplicate_profiles WHERE customer_id = ANY($1::uuid[])",
        list(ids),
    )
    # asyncpg's UUIDs are UUIDs (a subclass), equal to and hashed as the standard ones
    return {r["customer_id"]: Profile.from_dict(_json(r["profile"])) for r in records}


def _json(value: Any) -> Any:
    return orjson.loads(value) if isinstance(value, str) else value


# New records against the directory ----------------------------------------------------


async def directory_matches(
    connection: asyncpg.Connection | asyncpg.Pool,
    profiles: Sequence[Profile],
    region: str,
    *,
    limit: int = 5,
    keys: Mapping[str, set[str]] | None = None,
) -> dict[str, list[tuple[Match, Row]]]:
    """For each of `profiles` (records not in the directory yet: a registration, an
    import's rows), the customers of the directory it may duplicate, best first (at most
    `limit`), each with its id and name (`customer_id`, `name`); `keys`: each profile's
    `blocking_keys` by its ref, when the caller has them already."""
    if keys is None:
        keys = {p.ref: blocking_keys(p) for p in profiles}
    every_key = sorted({k for ks in keys.values() for k in ks})
    if not every_key:
        return {}
    try:
        records = await connection.fetch(
            """SELECT k.key, k.customer_id FROM unnest($1::text[]) AS w(key)
               CROSS JOIN LATERAL (
                   SELECT array_agg(customer_id) AS members FROM (
                       SELECT customer_id FROM duplicate_keys
                       WHERE key = w.key LIMIT $2 + 1
                   ) AS block
               ) AS b
               JOIN duplicate_keys k ON k.key = w.key
               WHERE cardinality(b.members) <= $2""",
            every_key,
            MAX_BLOCK,
        )
    except asyncpg.UndefinedTableError:
        return {}  # no directory yet
    holders: dict[str, set[UUID]] = {}
    for record in records:
        holders.setdefault(record["key"], set()).add(UUID(str(record["customer_id"])))
    known = await stored_profiles(connection, {i for ids in holders.values() for i in ids})
    found: dict[str, list[tuple[Match, Row]]] = {}
    for profile in profiles:
        shared: dict[UUID, list[str]] = {}
        for key in keys[profile.ref]:
            for holder in holders.get(key, ()):
                shared.setdefault(holder, []).append(key)
        others = {i for i, common in shared.items() if are_candidates(common)}
        matches = [
            (compare(profile, known[i]), i)
            for i in others
            if i in known and str(i) != profile.ref and may_match(profile, known[i])
        ]
        best = sorted(
            ((m, i) for m, i in matches if m.score >= THRESHOLD),
            key=lambda mi: (-mi[0].score, str(mi[1])),
        )
        if best:
            found[profile.ref] = [
                (m, {"customer_id": i, "name": known[i].display_name}) for m, i in best[:limit]
            ]
    return found


# The queue, as the API reads it -------------------------------------------------------


async def queue_page(
    connection: asyncpg.Connection | asyncpg.Pool,
    *,
    customer_id: UUID | None,
    limit: int,
    after: tuple[Any, ...] | None,
) -> list[Row]:
    """One page of the queue, the best score first; `customer_id`: only its pairs."""
    where = Where()
    where.add("(p.customer_a = {0} OR p.customer_b = {0})", customer_id)
    where.after(
        ("p.rank", "p.customer_a", "p.customer_b"), after, casts=("integer", "uuid", "uuid")
    )
    records = await connection.fetch(
        f"""SELECT p.customer_a, p.customer_b, p.score, p.rank, p.evidence,
                   a.name AS name_a, b.name AS name_b
            FROM duplicate_pairs p
            JOIN customer_directory a ON a.customer_id = p.customer_a
            JOIN customer_directory b ON b.customer_id = p.customer_b
            WHERE {where.sql}
            ORDER BY p.rank, p.customer_a, p.customer_b LIMIT {where.parameter(limit)}""",
        *where.values,
    )
    rows = []
    for record in records:
        row = dict(record)
        if isinstance(row["evidence"], str):
            row["evidence"] = json.loads(row["evidence"])
        rows.append(row)
    return rows
