"""Queries on the interaction service's read models; none replays events.

Every list is paged by a cursor on its sort key, so a page is one index range scan
however deep the reader pages.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeAlias
from uuid import UUID

import asyncpg

from services.interaction.domain import CONSENT_CHANNEL
from services.interaction.textsearch import keyword_clauses, normalise
from services.runtime.http.paging import BY_MOMENT, Position, SortKey
from services.runtime.storage.filters import Where

Row = dict[str, Any]

INTERACTION_ORDER = SortKey(("started_at", "interaction_id"), BY_MOMENT)
TIMELINE_ORDER = SortKey(("at", "entry_id"), BY_MOMENT)
TICKET_ORDER = SortKey(("opened_at", "ticket_id"), BY_MOMENT)
FEEDBACK_ORDER = SortKey(("given_at", "feedback_id"), BY_MOMENT)
DUE_ORDER = SortKey(("due_at", "customer_id"), BY_MOMENT)
"""The sort keys of the lists, newest (or soonest due) first."""
Connection: TypeAlias = asyncpg.Connection | asyncpg.Pool


# Interactions ------------------------------------------------------------------------


@dataclass(frozen=True)
class InteractionQuery:
    """Filters of the interaction search; every one is optional and they combine with AND."""

    customer_id: UUID | list[UUID] | None = None
    channels: tuple[str, ...] = ()
    direction: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    participant: str | None = None
    keyword: str | None = None
    ticket_id: UUID | None = None
    opportunity_id: UUID | None = None

    def where(self) -> Where:
        where = Where()
        for column in ("customer_id", "direction", "ticket_id", "opportunity_id"):
            where.equal(f"i.{column}", getattr(self, column))
        where.add("i.channel = ANY({}::text[])", list(self.channels))
        where.compare("i.started_at", ">=", self.since)
        where.compare("i.started_at", "<", self.until)
        where.add(
            "i.participant_names @> ARRAY[{}]::text[]",
            self.participant and normalise(self.participant),
        )
        for condition, value in keyword_clauses(self.keyword or ""):
            where.add("i." + condition, value)
        return where


def search_sql(
    query: InteractionQuery, *, limit: int, after: Position | None
) -> tuple[str, list[Any]]:
    where = query.where().after(
        ("i.started_at", "i.interaction_id"), after, descending=True, casts=("", "uuid")
    )
    sql = (
        "SELECT i.interaction_id, i.customer_id, c.name AS customer_name, i.channel, "
        "i.direction, i.started_at, i.duration_seconds, i.participants, i.subject, i.notes, "
        "i.opportunity_id, i.ticket_id, i.source, i.source_id, i.version, "
        "i.correction_count, i.recorded_at, i.consent_override, i.consent_breach "
        "FROM interactions i LEFT JOIN interaction_customers c ON c.customer_id = i.customer_id "
        f"WHERE {where.sql} ORDER BY i.started_at DESC, i.interaction_id DESC "
        f"LIMIT {where.parameter(limit)}"
    )
    return sql, where.values


async def search_interactions(
    connection: Connection,
    query: InteractionQuery,
    *,
    limit: int,
    after: Position | None = None,
) -> list[Row]:
    """One page of interactions, newest first; `after` is the last (started_at, id) seen."""
    sql, values = search_sql(query, limit=limit, after=after)
    return [_decoded(r) for r in await connection.fetch(sql, *values)]


async def get_interaction(connection: Connection, interaction_id: UUID) -> Row | None:
    rows = await connection.fetch(
        "SELECT i.*, c.name AS customer_name FROM interactions i "
        "LEFT JOIN interaction_customers c ON c.customer_id = i.customer_id "
        "WHERE i.interaction_id = $1",
        interaction_id,
    )
    return _decoded(rows[0]) if rows else None


def _decoded(record: asyncpg.Record) -> Row:
    row = dict(record)
    for name in ("participants", "details", "consent_override"):
        if isinstance(row.get(name), str):
            row[name] = json.loads(row[name])
    return row


# Consent -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Consent:
    """A customer's channel preferences and opt-outs, as the customer topic last told."""

    preferred: list[str]
    opted_out: list[str]


async def consent_of(connection: Connection, customer_ids: Sequence[UUID]) -> dict[UUID, Consent]:
    """The consent of those of `customer_ids` the customer topic has told of, in one query."""
    records = await connection.fetch(
        """SELECT customer_id, preferred_channels, opted_out_channels
           FROM interaction_customers WHERE customer_id = ANY($1::uuid[])""",
        list(set(customer_ids)),
    )
    # asyncpg's own UUID type is not the standard one the event store can serialise
    return {
        UUID(str(r["customer_id"])): Consent(
            list(r["preferred_channels"]), list(r["opted_out_channels"])
        )
        for r in records
    }


async def opted_out_channels(connection: Connection, customer_id: UUID) -> list[str]:
    """The channels the customer opted out of (none for a customer not known here)."""
    found = (await consent_of(connection, [customer_id])).get(customer_id)
    return found.opted_out if found is not None else []


# Timeline ----------------------------------------------------------------------------

TIMELINE_SQL = """
SELECT * FROM (
    SELECT 'interaction' AS entry_type, interaction_id AS entry_id, started_at AS at,
           channel, subject AS title, notes AS detail,
           jsonb_build_object('direction', direction, 'duration_seconds', duration_seconds,
                              'participants', participants, 'ticket_id', ticket_id,
                              'opportunity_id', opportunity_id,
                              'correction_count', correction_count,
                              'consent_override', consent_override,
                              'consent_breach', consent_breach) AS details
    FROM interactions WHERE customer_id = ANY($1::uuid[])
    UNION ALL
    SELECT 'ticket', ticket_id, opened_at, channel, subject, description,
           jsonb_build_object('kind', kind, 'category', category, 'severity', severity,
                              'status', status, 'assignee', assignee,
                              'resolved_at', resolved_at)
    FROM tickets WHERE customer_id = ANY($1::uuid[])
    UNION ALL
    SELECT 'survey_answer', answer_id, answered_at, channel, survey, comment,
           jsonb_build_object('csat', csat, 'nps', nps, 'interaction_id', interaction_id,
                              'ticket_id', ticket_id)
    FROM survey_answers WHERE customer_id = ANY($1::uuid[])
    UNION ALL
    SELECT 'feedback', feedback_id, given_at, channel, kind, text,
           jsonb_build_object('interaction_id', interaction_id)
    FROM feedback WHERE customer_id = ANY($1::uuid[])
) entries
WHERE at >= $2 AND at < $3 AND (at, entry_id) < ($4, $5::uuid)
ORDER BY at DESC, entry_id DESC
LIMIT $6
"""

_FAR_PAST = datetime(1900, 1, 1).astimezone()
_FAR_FUTURE = datetime(9000, 1, 1).astimezone()
_MAX_UUID = UUID(int=(1 << 128) - 1)


async def customer_timeline(
    connection: Connection,
    customer_ids: list[UUID],
    *,
    since: datetime | None,
    until: datetime | None,
    limit: int,
    after: Position | None = None,
) -> list[Row]:
    """Everything that passed between the customers (one, or a merge group) and us,
    newest first."""
    before_at, before_id = after or (_FAR_FUTURE, _MAX_UUID)
    records = await connection.fetch(
        TIMELINE_SQL,
        customer_ids,
        since or _FAR_PAST,
        until or _FAR_FUTURE,
        before_at,
        before_id,
        limit,
    )
    return [_decoded(r) for r in records]


# Tickets -----------------------------------------------------------------------------

SLA_STATE = """CASE
    WHEN t.response_breached OR t.resolution_breached
      OR (t.status = 'open' AND t.first_responded_at IS NULL AND t.response_due_at < {now})
      OR (t.status = 'open' AND t.resolution_due_at < {now}) THEN 'breached'
    WHEN t.status <> 'open' THEN 'met'
    WHEN (t.first_responded_at IS NULL AND t.response_warn_at < {now})
      OR t.resolution_warn_at < {now} THEN 'at_risk'
    ELSE 'on_track' END"""


def _ticket_row(record: asyncpg.Record, now: datetime) -> Row:
    """A ticket as of `now`: a target the clock has passed without an answer (or a
    resolution) is breached already, not only once the late answer comes."""
    row = dict(record)
    still_open = row["status"] == "open"
    row["response_breached"] = row["response_breached"] or (
        still_open and row["first_responded_at"] is None and row["response_due_at"] < now
    )
    row["resolution_breached"] = row["resolution_breached"] or (
        still_open and row["resolution_due_at"] < now
    )
    return row


@dataclass(frozen=True)
class TicketQuery:
    statuses: tuple[str, ...] = ("open",)
    severity: str | None = None
    assignee: str | None = None
    unassigned: bool = False
    sla_state: str | None = None
    customer_id: UUID | list[UUID] | None = None
    kind: str | None = None
    category: str | None = None


async def find_tickets(
    connection: Connection,
    query: TicketQuery,
    *,
    now: datetime,
    limit: int,
    after: Position | None = None,
) -> list[Row]:
    """One page of tickets, oldest first, with each one's service-level state at `now`."""
    where = Where()
    state = SLA_STATE.format(now=where.parameter(now))
    where.add("t.status = ANY({}::text[])", list(query.statuses))
    for column in ("severity", "assignee", "customer_id", "kind", "category"):
        where.equal(f"t.{column}", getattr(query, column))
    if query.unassigned:
        where.condition("t.assignee IS NULL")
    where.add(f"({state}) = {{}}", query.sla_state)
    where.after(("t.opened_at", "t.ticket_id"), after, casts=("", "uuid"))
    records = await connection.fetch(
        f"SELECT t.*, c.name AS customer_name, {state} AS sla_state "
        "FROM tickets t LEFT JOIN interaction_customers c ON c.customer_id = t.customer_id "
        f"WHERE {where.sql} ORDER BY t.opened_at, t.ticket_id "
        f"LIMIT {where.parameter(limit)}",
        *where.values,
    )
    return [_ticket_row(r, now) for r in records]


async def ticket_summary(connection: Connection, *, now: datetime) -> list[Row]:
    """Open tickets counted by severity, assignee and SLA state, with the oldest of each."""
    records = await connection.fetch(
        f"""SELECT t.severity, t.assignee, {SLA_STATE.format(now="$1")} AS sla_state,
                   count(*) AS tickets, min(t.opened_at) AS oldest_opened_at
            FROM tickets t WHERE t.status = 'open'
            GROUP BY 1, 2, 3
            ORDER BY array_position(ARRAY['critical', 'high', 'medium', 'low'], t.severity),
                     2 NULLS FIRST, 3""",
        now,
    )
    return [dict(r) for r in records]


async def get_ticket(connection: Connection, ticket_id: UUID, now: datetime) -> Row | None:
    records = await connection.fetch(
        f"SELECT t.*, c.name AS customer_name, {SLA_STATE.format(now='$2')} AS sla_state "
        "FROM tickets t LEFT JOIN interaction_customers c ON c.customer_id = t.customer_id "
        "WHERE t.ticket_id = $1",
        ticket_id,
        now,
    )
    return _ticket_row(records[0], now) if records else None


AS_OF_TICKET = f"""
SELECT c.name AS customer_name, {SLA_STATE.format(now="$1")} AS sla_state
FROM (SELECT $2::uuid AS customer_id, $3::text AS status, $4::boolean AS response_breached,
             $5::boolean AS resolution_breached, $6::timestamptz AS first_responded_at,
             $7::timestamptz AS response_due_at, $8::timestamptz AS response_warn_at,
             $9::timestamptz AS resolution_due_at, $10::timestamptz AS resolution_warn_at) t
LEFT JOIN interaction_customers c ON c.customer_id = t.customer_id
"""


async def ticket_as_of(connection: Connection, row: Row, moment: datetime) -> Row:
    """A ticket row folded from the event store up to `moment`, with its service-level
    state at that moment by the very rule the read model answers with."""
    record = await connection.fetchrow(
        AS_OF_TICKET,
        moment,
        *(
            row[c]
            for c in (
                "customer_id",
                "status",
                "response_breached",
                "resolution_breached",
                "first_responded_at",
                "response_due_at",
                "response_warn_at",
                "resolution_due_at",
                "resolution_warn_at",
            )
        ),
    )
    assert record is not None
    return _ticket_row({**row, **dict(record)}, moment)


async def ticket_times(
    connection: Connection,
    *,
    period: str,
    since: datetime,
    until: datetime,
    kind: str | None,
    severity: str | None,
) -> list[Row]:
    """First-response and resolution times of the tickets opened in [since, until), by
    period of opening, channel and category. Times are in minutes."""
    records = await connection.fetch(
        """SELECT date_trunc($1, opened_at, 'UTC') AS period_start, channel, category,
               count(*) AS opened,
               count(first_responded_at) AS responded,
               avg(extract(epoch FROM first_responded_at - opened_at) / 60)
                   AS avg_first_response_minutes,
               percentile_cont(0.5) WITHIN GROUP
                   (ORDER BY extract(epoch FROM first_responded_at - opened_at) / 60)
                   AS median_first_response_minutes,
               count(resolved_at) AS resolved,
               avg(extract(epoch FROM resolved_at - opened_at) / 60) AS avg_resolution_minutes,
               percentile_cont(0.5) WITHIN GROUP
                   (ORDER BY extract(epoch FROM resolved_at - opened_at) / 60)
                   AS median_resolution_minutes,
               count(*) FILTER (WHERE response_breached OR (first_responded_at IS NULL
                   AND response_due_at < now())) AS response_breaches,
               count(*) FILTER (WHERE resolution_breached OR (resolved_at IS NULL
                   AND status = 'open' AND resolution_due_at < now())) AS resolution_breaches
           FROM tickets
           WHERE opened_at >= $2 AND opened_at < $3
             AND ($4::text IS NULL OR kind = $4) AND ($5::text IS NULL OR severity = $5)
           GROUP BY 1, 2, 3 ORDER BY 1, 2, 3""",
        period,
        since,
        until,
        kind,
        severity,
    )
    return [dict(r) for r in records]


# Satisfaction ------------------------------------------------------------------------


async def survey_results(
    connection: Connection,
    *,
    period: str,
    since: datetime,
    until: datetime,
    survey: str | None,
    channel: str | None,
) -> list[Row]:
    """CSAT average and NPS (% promoters - % detractors) by period and channel."""
    records = await connection.fetch(
        """SELECT date_trunc($1, answered_at, 'UTC') AS period_start, channel,
               count(*) AS answers,
               count(csat) AS csat_answers,
               round(avg(csat), 2)::float8 AS csat_average,
               count(nps) AS nps_answers,
               count(*) FILTER (WHERE nps >= 9) AS promoters,
               count(*) FILTER (WHERE nps BETWEEN 7 AND 8) AS passives,
               count(*) FILTER (WHERE nps <= 6) AS detractors
           FROM survey_answers
           WHERE answered_at >= $2 AND answered_at < $3
             AND ($4::text IS NULL OR survey = $4) AND ($5::text IS NULL OR channel = $5)
           GROUP BY 1, 2 ORDER BY 1, 2 NULLS LAST""",
        period,
        since,
        until,
        survey,
        channel,
    )
    rows = []
    for record in records:
        row = dict(record)
        answered = row["nps_answers"]
        row["nps"] = (
            round(100 * (row["promoters"] - row["detractors"]) / answered, 1) if answered else None
        )
        rows.append(row)
    return rows


async def find_feedback(
    connection: Connection,
    *,
    kind: str | None,
    customer_id: list[UUID] | None,
    limit: int,
    after: Position | None = None,
) -> list[Row]:
    before_at, before_id = after or (_FAR_FUTURE, _MAX_UUID)
    records = await connection.fetch(
        """SELECT f.*, c.name AS customer_name FROM feedback f
           LEFT JOIN interaction_customers c ON c.customer_id = f.customer_id
           WHERE ($1::text IS NULL OR f.kind = $1)
             AND ($2::uuid[] IS NULL OR f.customer_id = ANY($2))
             AND (f.given_at, f.feedback_id) < ($3, $4::uuid)
           ORDER BY f.given_at DESC, f.feedback_id DESC LIMIT $5""",
        kind,
        customer_id,
        before_at,
        before_id,
        limit,
    )
    return [dict(r) for r in records]


# Contact plans -----------------------------------------------------------------------

CONTACTS_DUE_SQL = """
SELECT * FROM (
    SELECT p.customer_id, c.name AS customer_name, p.channel AS planned_channel,
           p.every_days, p.owner, p.note, p.starts_at,
           l.last_contacted_at, l.channel AS last_channel,
           coalesce(l.last_contacted_at + make_interval(days => p.every_days), p.starts_at)
               AS due_at,
           coalesce(c.preferred_channels, '{}') AS preferred_channels,
           coalesce(c.opted_out_channels, '{}') AS opted_out_channels
    FROM contact_plans p
    LEFT JOIN last_contacts l ON l.customer_id = p.customer_id
    LEFT JOIN interaction_customers c ON c.customer_id = p.customer_id
    WHERE ($2::text IS NULL OR p.owner = $2) AND ($3::text IS NULL OR p.channel = $3)
) plans
WHERE due_at < $1 AND (due_at, customer_id) > ($4, $5::uuid)
ORDER BY due_at, customer_id
LIMIT $6
"""


def channel_to_use(planned: str, preferred: list[str], opted_out: list[str]) -> str | None:
    """The planned channel if the customer allows it, else the first channel they prefer
    and allow, else any remote channel they allow; None when they refused them all."""
    consent = CONSENT_CHANNEL.get(planned)
    if consent is None or consent not in opted_out:
        return planned
    for channel in [*preferred, *CONSENT_CHANNEL]:
        if channel in CONSENT_CHANNEL and channel not in opted_out:
            return channel
    return None


async def contacts_due(
    connection: Connection,
    *,
    now: datetime,
    within: timedelta,
    owner: str | None,
    channel: str | None,
    include_refused: bool,
    limit: int,
    after: Position | None = None,
) -> list[Row]:
    """Planned contacts due before `now + within`, most overdue first, each with the
    channel to use given the customer's opt-outs. Customers who refused every remote
    channel are left out unless `include_refused`."""
    rows: list[Row] = []
    cursor = after or (_FAR_PAST, UUID(int=0))
    while len(rows) < limit:
        records = await connection.fetch(
            CONTACTS_DUE_SQL, now + within, owner, channel, cursor[0], cursor[1], limit
        )
        for record in records:
            row = _plan_row(record, now)
            if row["state"] == "planned":
                row["state"] = "due"
            if row["channel_to_use"] is not None or include_refused:
                rows.append(row)
        if len(records) < limit:
            break
        cursor = (records[-1]["due_at"], records[-1]["customer_id"])
    return rows[:limit]


async def get_contact_plan(connection: Connection, customer_id: UUID, now: datetime) -> Row | None:
    """The customer's plan with its next due time, or None without a plan."""
    record = await connection.fetchrow(
        CONTACTS_DUE_SQL.replace("WHERE ($2", "WHERE p.customer_id = $7 AND ($2"),
        _FAR_FUTURE,
        None,
        None,
        _FAR_PAST,
        UUID(int=0),
        1,
        customer_id,
    )
    return _plan_row(record, now) if record is not None else None


def _plan_row(record: asyncpg.Record, now: datetime) -> Row:
    row = dict(record)
    row["channel_to_use"] = channel_to_use(
        row["planned_channel"], row["preferred_channels"], row["opted_out_channels"]
    )
    row["planned_channel_refused"] = row["channel_to_use"] != row["planned_channel"]
    row["state"] = "overdue" if row["due_at"] < now else "planned"
    return row
