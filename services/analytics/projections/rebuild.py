"""What a rebuild of the analytics fold settles in the swap's transaction (`settle`): the
RFM boundaries moved to the final population, and what it keeps from the live tables.

A rebuild folds every event again into a shadow schema, where each conclusion is drawn
in event time (`domain.event_time`), and brings every customer to the time of the
rebuild. The segment history and the churn warnings are facts of their own, though:
when a customer entered or left a segment, and when a warning was raised, is what was
concluded then, and was published then. So when the shadow is about
to replace the live tables, in the swap's transaction:

- the live segment history is kept, whole, with the times it has: the rebuilt one is
  dropped, so the swap leaves the live table in place (its shape therefore changes by a
  migration, not by a rebuild);
- where the rebuilt current memberships differ from the live ones (the code of a rule
  changed, which is why one rebuilds), the difference is recorded now, as entries and
  exits with the deciding values, and published as segment changes through the live
  outbox, like any other conclusion; a membership that stays under another rule version
  takes that version, without an event;
- churn warnings keep the time they were raised; a warning the rebuilt fold raises or
  clears is published as raised or cleared.

The live writers of the analytics tables (the sweep, the re-scoring) wait for the swap
(the live schema's writer lock); the live fold is already held back by the rebuild.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from uuid import UUID

import asyncpg

from services.analytics.domain.profile import Profile
from services.analytics.domain.segments import (
    Change,
    Outcome,
    SegmentRule,
    deciding_fields,
    field_values,
    pick,
)
from services.analytics.projections.conclusions import (
    Concluded,
    membership_rows,
    write_memberships,
)
from services.analytics.projections.rescoring import reconclude_all, rescore
from services.analytics.projections.store import Loaded, load_profiles, load_rules
from services.analytics.projections.tables import OUTBOX_TABLE
from services.analytics.projections.writers import LOCK_KEY

_DIFFERENCES = """
SELECT coalesce(r.customer_id, l.customer_id) AS customer_id,
       coalesce(r.segment, l.segment) AS segment,
       r.rule_version AS rebuilt_version, l.rule_version AS live_version
FROM (SELECT customer_id, segment, rule_version FROM segment_history
      WHERE left_at IS NULL) r
FULL JOIN (SELECT customer_id, segment, rule_version FROM {live}.segment_history
           WHERE left_at IS NULL) l
  ON r.customer_id = l.customer_id AND r.segment = l.segment
WHERE r.rule_version IS DISTINCT FROM l.rule_version
"""

_CHURN_DIFFERENCES = """
SELECT coalesce(r.customer_id, l.customer_id) AS customer_id, r.customer_id IS NOT NULL AS raised
FROM churn_warnings r FULL JOIN {live}.churn_warnings l USING (customer_id)
WHERE r.customer_id IS NULL OR l.customer_id IS NULL
"""


async def settle(
    connection: asyncpg.Connection, live_schema: str, clock: Callable[[], datetime]
) -> None:
    """Bring a rebuilt state to where the live one is: RFM boundaries moved to the final
    population and every customer's conclusions brought to now (the live service does
    both in the background once caught up, as the rebuild now is), and the live segment
    history and churn warnings kept, with the differences recorded and published."""
    while await rescore(connection, clock(), clock()):
        pass
    await reconclude_all(connection, await load_rules(connection), clock(), clock())
    await keep_live_history(connection, live_schema, clock())


async def keep_live_history(connection: asyncpg.Connection, live_schema: str, now: datetime) -> int:
    """Keep the live segment history (the rebuilt one is dropped) and carry the live
    churn warnings' times over into the rebuilt table (`connection` finds the rebuilt
    tables first in its search path), recording the differences in the live history and
    publishing them. Returns how many customers differed."""
    live = _identifier(live_schema)
    await connection.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended($1 || $2, 0))", live_schema, LOCK_KEY
    )
    memberships = await connection.fetch(_DIFFERENCES.format(live=live))
    churn = {
        r["customer_id"]: r["raised"]
        for r in await connection.fetch(_CHURN_DIFFERENCES.format(live=live))
    }
    await connection.execute(
        f"""UPDATE churn_warnings c
                SET raised_at = l.raised_at, value_tier = l.value_tier, "values" = l."values"
                FROM {live}.churn_warnings l WHERE c.customer_id = l.customer_id"""
    )
    customers = list({r["customer_id"] for r in memberships} | churn.keys())
    outcomes: list[tuple[Profile, Outcome]] = []
    if customers:
        loaded = await load_profiles(connection, customers)
        outcomes = differences(loaded, memberships, churn, await load_rules(connection), now)
    # the live history stays where it is (the swap leaves a table the shadow lacks), with
    # the differences recorded in it: kept whole, however long, without being copied
    await connection.execute("DROP TABLE segment_history")
    rows = membership_rows([Concluded(p, [(now, o)]) for p, o in outcomes], now)
    await write_memberships(
        connection,
        rows,
        now,
        outbox=f"{live}.{OUTBOX_TABLE}",
        history=f"{live}.segment_history",
    )
    return len(outcomes)


def differences(
    loaded: Loaded,
    memberships: Sequence[asyncpg.Record],
    churn: dict[UUID, bool],
    rules: Sequence[SegmentRule],
    now: datetime,
) -> list[tuple[Profile, Outcome]]:
    """One outcome per customer whose rebuilt memberships or warning differ from the
    live ones: the entries, exits and new rule versions that lead from live to rebuilt."""
    outcomes: dict[UUID, Outcome] = {}

    def outcome_of(customer_id: UUID) -> Outcome:
        if customer_id not in outcomes:
            profile = loaded.get(customer_id)
            values = field_values(profile, now)
            outcomes[customer_id] = Outcome(values, [], {}, None, list(profile.churn_reasons))
        return outcomes[customer_id]

    for row in memberships:
        outcome = outcome_of(row["customer_id"])
        segment, rebuilt, live = row["segment"], row["rebuilt_version"], row["live_version"]
        decided = pick(outcome.values, deciding_fields(segment, rules))
        if rebuilt is not None:
            outcome.memberships[segment] = rebuilt
        if live is None:
            outcome.changes.append(Change(segment, "entered", rebuilt, decided))
        elif rebuilt is None:
            outcome.changes.append(Change(segment, "left", live, decided))
        else:
            outcome.revised.append(segment)
    for customer_id, raised in churn.items():
        outcome_of(customer_id).churn_event = "raised" if raised else "cleared"
    return [(loaded.get(c), o) for c, o in outcomes.items()]


def _identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
