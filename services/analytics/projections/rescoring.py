"""Conclusions drawn again: for every customer (`reconclude_all`: a new segment
definition, the time-based sweep), and for those whose RFM scores change when the
quintile boundaries move to the current population (`rescore`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from services.analytics.domain.segments import SegmentRule
from services.analytics.projections.groups import conclude_and_write, conclude_every_group
from services.analytics.projections.store import (
    Loaded,
    fetch_profiles_after,
    load_profiles,
    load_rules,
)
from services.analytics.projections.writers import lock

CHUNK = 5000
"""Profiles concluded per step when many are."""


async def reconclude_all(
    connection: asyncpg.Connection, rules: Sequence[SegmentRule], at: datetime, now: datetime
) -> int:
    """Evaluate every customer again at event time `at` (a new definition: its time; the
    sweep: the watermark); write what changed."""
    after = UUID(int=0)
    changed = 0
    while True:
        rows = await fetch_profiles_after(connection, after, CHUNK)
        if not rows:
            return changed
        loaded = Loaded()
        loaded.add_rows(rows)
        changed += await conclude_and_write(connection, loaded, rules, at, now)
        after = rows[-1]["customer_id"]


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


async def rescore(connection: asyncpg.Connection, at: datetime | None, now: datetime) -> int:
    """Move the RFM boundaries to the current population, set-based.

    The conclusions it draws carry event time `at` (the watermark, `maintenance`), or
    with None (while the fold catches up) each customer's own clock: the boundaries move
    because other customers' facts arrived, which gives no time of this customer's.

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
    rules = await load_rules(connection)
    changed = 0
    for start in range(0, len(ids), CHUNK):
        loaded = await load_profiles(connection, ids[start : start + CHUNK])
        changed += await conclude_and_write(connection, loaded, rules, at, now)
    # a group's combined profile is scored against the boundaries too
    return changed + await conclude_every_group(connection, rules, at, now)
