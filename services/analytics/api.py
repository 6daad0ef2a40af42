"""HTTP API of the analytics service: segment definitions (commands) and views answered
from the analytics projections (JSON; CSV with `format=csv` where the answer is a list;
cursor paging with `limit` and `cursor`)."""

from __future__ import annotations

import asyncio
import base64
import csv
import io
import json
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any, Literal
from uuid import UUID

import asyncpg
import orjson
from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from services.analytics import lifecycle, matrix, rfm
from services.analytics.application import AnalyticsApplication
from services.analytics.projections import OUTBOX_TABLE
from services.analytics.rules import FIELDS, OPERATORS, RuleError, validate
from services.analytics.segments import BUILTIN_FIELDS, BUILTIN_PREFIXES, BUILTIN_SEGMENTS
from services.runtime.errors import NotFound, RuleViolation
from services.runtime.http.commands import ExpectedVersion
from services.runtime.http.security import requires
from services.runtime.service import ServiceRuntime, current_runtime

router = APIRouter(tags=["analytics"])

Runtime = Annotated[ServiceRuntime, Depends(current_runtime)]
Limit = Annotated[int, Query(ge=1, le=1000, description="Items per page.")]
Cursor = Annotated[str | None, Query(max_length=200, description="From the previous page.")]
Format = Annotated[Literal["json", "csv"], Query(description="`csv` for a CSV export.")]
SegmentKey = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{1,63}$")]


def pool_of(rt: ServiceRuntime) -> asyncpg.Pool:
    assert rt.pool is not None
    return rt.pool


def application(rt: Runtime) -> AnalyticsApplication:
    assert isinstance(rt.application, AnalyticsApplication)
    return rt.application


App = Annotated[AnalyticsApplication, Depends(application)]


# Helpers ------------------------------------------------------------------------------


def plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, str) and value[:1] in "{[":
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def record(row: asyncpg.Record) -> dict[str, Any]:
    return {k: plain(v) for k, v in dict(row).items()}


def encode_cursor(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(plain(value)).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> Any:
    if cursor is None:
        return None
    try:
        return json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except ValueError:
        raise RuleViolation("cursor is not one this service issued; start without it") from None


def cursor_uuid(cursor: str | None) -> UUID:
    value = decode_cursor(cursor)
    if value is None:
        return UUID(int=0)
    try:
        return UUID(str(value))
    except ValueError:
        raise RuleViolation("cursor is not one this service issued; start without it") from None


def csv_cell(value: Any) -> Any:
    value = plain(value)
    if isinstance(value, list):
        return "|".join(str(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)
    return value


def as_csv(rows: Sequence[dict[str, Any]], filename: str) -> StreamingResponse:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    columns = list(rows[0]) if rows else ["(no rows)"]
    writer.writerow(columns)
    for row in rows:
        writer.writerow([csv_cell(row.get(c)) for c in columns])
    text = buffer.getvalue()

    async def body() -> AsyncIterator[str]:
        yield text

    return StreamingResponse(
        body(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def page(rows: Sequence[dict[str, Any]], limit: int, key: str, fmt: str, filename: str) -> Any:
    items = list(rows[:limit])
    if fmt == "csv":
        return as_csv(items, filename)
    more = len(rows) > limit
    return {"items": items, "next_cursor": encode_cursor(items[-1][key]) if more else None}


def listing(rows: Sequence[dict[str, Any]], fmt: str, filename: str) -> Any:
    return as_csv(rows, filename) if fmt == "csv" else {"items": list(rows)}


def moment(value: datetime | None, name: str) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise RuleViolation(f"{name} needs a UTC offset, e.g. 2026-11-23T00:00:00+00:00")
    return value


def days_since(value: Any, today: date) -> int | None:
    if value is None:
        return None
    day = value.date() if isinstance(value, datetime) else value
    return (today - day).days


PROFILE_VIEW = """customer_id, name, kind, industry, region, owner, tags, registered,
    purchase_count, total_spend, first_purchase_at, last_purchase_at, last_contact_at,
    csat_average, csat_count, nps_latest, complaints_open, complaints_total,
    recency_score, frequency_score, monetary_score, rfm_segment, lifecycle_stage,
    value_tier, satisfaction, quadrant, churn_risk, state->'recent_contacts' AS recent,
    updated_at"""


def profile_view(row: asyncpg.Record, currency: str) -> dict[str, Any]:
    now = datetime.now(UTC)
    today = now.date()
    data = record(row)
    recent = data.pop("recent", None) or []
    horizon = now - timedelta(days=90)
    count = int(data["purchase_count"])
    data["reporting_currency"] = currency
    data["average_spend"] = round(data["total_spend"] / count, 2) if count else None
    data["days_since_last_purchase"] = days_since(row["last_purchase_at"], today)
    data["days_since_last_contact"] = days_since(row["last_contact_at"], today)
    data["interactions_90d"] = sum(1 for m in recent if datetime.fromisoformat(m) >= horizon)
    data["nps_category"] = matrix.nps_category(row["nps_latest"])
    return data


def currency_of(rt: ServiceRuntime) -> str:
    return str(getattr(rt.settings, "analytics_reporting_currency", "CNY"))


# Segment definitions ------------------------------------------------------------------


class SegmentBody(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=2000)
    rule: dict[str, Any] = Field(
        description="Rule language: all/any/not and {field, op, value} comparisons.",
        examples=[
            {
                "all": [
                    {"field": "value_tier", "op": "in", "value": ["top", "high"]},
                    {"field": "csat_average", "op": "lt", "value": 3},
                ]
            }
        ],
    )


class NewSegment(SegmentBody):
    segment: SegmentKey = Field(description="Key: lower case, digits, underscore; no dot.")


def checked(rule: dict[str, Any]) -> dict[str, Any]:
    try:
        validate(rule)
    except RuleError as exc:
        raise RuleViolation(str(exc)) from None
    return rule


@router.post(
    "/segments",
    status_code=201,
    summary="Define a segment by a rule",
    dependencies=[requires("segments:write")],
)
async def define_segment(body: NewSegment, app: App, response: Response) -> dict[str, Any]:
    checked(body.rule)
    definition = await asyncio.to_thread(
        app.define_segment,
        key=body.segment,
        name=body.name,
        description=body.description,
        rule=body.rule,
    )
    response.headers["ETag"] = f'"{definition.version}"'
    response.headers["Location"] = f"/segments/{body.segment}"
    return {"segment": body.segment, "version": definition.version}


@router.put(
    "/segments/{segment}",
    summary="Change a segment's rule (a new version)",
    dependencies=[requires("segments:write")],
)
async def change_segment(
    segment: str, body: SegmentBody, app: App, version: ExpectedVersion, response: Response
) -> dict[str, Any]:
    checked(body.rule)
    definition = await asyncio.to_thread(
        app.change_segment,
        key=segment,
        name=body.name,
        description=body.description,
        rule=body.rule,
        expected_version=version,
    )
    response.headers["ETag"] = f'"{definition.version}"'
    return {"segment": segment, "version": definition.version}


@router.get(
    "/segments/rule-language",
    summary="Fields and operators of segment rules",
    dependencies=[requires("analytics:read")],
)
async def rule_language() -> dict[str, Any]:
    return {
        "fields": {name: {"type": t, "meaning": m} for name, (t, m) in FIELDS.items()},
        "operators": {op: list(types) for op, types in OPERATORS.items()},
    }


@router.get(
    "/segments",
    summary="Every segment with its size and share of value",
    dependencies=[requires("analytics:read")],
)
async def segments(rt: Runtime, format: Format = "json") -> Any:
    async with pool_of(rt).acquire() as c:
        sizes = await c.fetch(
            """SELECT h.segment, count(*) AS customers, coalesce(sum(p.total_spend), 0) AS value
               FROM segment_history h JOIN profiles p USING (customer_id)
               WHERE h.left_at IS NULL GROUP BY h.segment"""
        )
        total = await c.fetchval("SELECT coalesce(sum(total_spend), 0) FROM profiles")
        population = await c.fetchval("SELECT count(*) FROM profiles")
        defined = await c.fetch(
            "SELECT segment, version, name, description, rule::text AS rule FROM segment_rules"
        )
    by_segment = {r["segment"]: r for r in sizes}
    rows = []
    for key in [*BUILTIN_SEGMENTS, *(d["segment"] for d in defined)]:
        found = by_segment.get(key)
        definition = next((d for d in defined if d["segment"] == key), None)
        customers = found["customers"] if found else 0
        value = found["value"] if found else Decimal(0)
        rows.append(
            {
                "segment": key,
                "kind": "built-in" if key.startswith(BUILTIN_PREFIXES) else "defined",
                "name": definition["name"] if definition else key.split(".", 1)[1],
                "version": definition["version"] if definition else 1,
                "customers": customers,
                "customer_share": round(customers / population, 4) if population else 0.0,
                "value": float(value),
                "value_share": round(float(value / total), 4) if total else 0.0,
            }
        )
    return listing(rows, format, "segments.csv")


async def definition_of(rt: ServiceRuntime, segment: str) -> dict[str, Any]:
    if segment in BUILTIN_SEGMENTS:
        family = segment.split(".", 1)[0]
        return {
            "segment": segment,
            "kind": "built-in",
            "version": 1,
            "rule": f"built-in {family} segment (README: Analytics)",
            "fields": list(BUILTIN_FIELDS[family]),
        }
    row = await pool_of(rt).fetchrow(
        "SELECT segment, version, name, description, rule::text AS rule, defined_at "
        "FROM segment_rules WHERE segment = $1",
        segment,
    )
    if row is None:
        raise NotFound(f"no segment {segment!r} (GET /segments lists them)")
    return {"kind": "defined", **record(row)}


@router.get(
    "/segments/{segment}",
    summary="A segment's definition",
    dependencies=[requires("analytics:read")],
)
async def segment_definition(segment: str, rt: Runtime) -> dict[str, Any]:
    return await definition_of(rt, segment)


@router.get(
    "/segments/{segment}/members",
    summary="Members now, or as of a past moment",
    dependencies=[requires("analytics:read", personal_data=True)],
)
async def segment_members(
    segment: str,
    rt: Runtime,
    as_of: Annotated[datetime | None, Query(description="ISO 8601 with offset")] = None,
    limit: Limit = 100,
    cursor: Cursor = None,
    format: Format = "json",
) -> Any:
    await definition_of(rt, segment)
    at = moment(as_of, "as_of")
    after = cursor_uuid(cursor)
    size = 100_000 if format == "csv" else limit + 1
    if at is None:
        condition, args = "h.left_at IS NULL", []
    else:
        condition, args = "h.entered_at <= $4 AND (h.left_at IS NULL OR h.left_at > $4)", [at]
    rows = await pool_of(rt).fetch(
        f"""SELECT h.customer_id, p.name, h.rule_version, h.entered_at, h.left_at,
                   h.entered_values::text AS decided_by, p.total_spend, p.value_tier
            FROM segment_history h LEFT JOIN profiles p USING (customer_id)
            WHERE h.segment = $1 AND {condition} AND h.customer_id > $2
            ORDER BY h.customer_id LIMIT $3""",
        segment,
        after,
        size,
        *args,
    )
    return page([record(r) for r in rows], limit, "customer_id", format, f"{segment}.csv")


FAMILIES = ("rfm", "lifecycle", "tier")


@router.get(
    "/segment-migration",
    summary="How customers moved between segments",
    dependencies=[requires("analytics:read")],
)
async def migration(
    rt: Runtime,
    from_: Annotated[datetime, Query(alias="from", description="ISO 8601 with offset")],
    to: Annotated[datetime, Query(description="ISO 8601 with offset")],
    family: Annotated[
        str, Query(description="rfm, lifecycle, tier, or a defined segment's key")
    ] = "rfm",
    format: Format = "json",
) -> Any:
    start, end = moment(from_, "from"), moment(to, "to")
    if start is not None and end is not None and start > end:
        raise RuleViolation("from must not be after to")
    if family in FAMILIES:
        condition, args = "segment LIKE $2", [f"{family}.%"]
    else:
        await definition_of(rt, family)
        condition, args = "segment = $2", [family]
    rows = await pool_of(rt).fetch(
        f"""WITH a AS (SELECT customer_id, segment FROM segment_history
                       WHERE {condition} AND entered_at <= $1
                         AND (left_at IS NULL OR left_at > $1)),
                 b AS (SELECT customer_id, segment FROM segment_history
                       WHERE {condition} AND entered_at <= $3
                         AND (left_at IS NULL OR left_at > $3))
            SELECT coalesce(a.segment, '(none)') AS from_segment,
                   coalesce(b.segment, '(none)') AS to_segment, count(*) AS customers
            FROM a FULL JOIN b USING (customer_id)
            GROUP BY 1, 2 ORDER BY 1, 2""",
        start,
        *args,
        end,
    )
    return listing([record(r) for r in rows], format, f"migration-{family}.csv")


# Profiles and customers ---------------------------------------------------------------

FILTERS = (
    "lifecycle_stage",
    "value_tier",
    "rfm_segment",
    "region",
    "industry",
    "owner",
    "kind",
    "quadrant",
    "satisfaction",
)


@router.get(
    "/profiles",
    summary="Analytic profiles, filtered",
    dependencies=[requires("analytics:read", personal_data=True)],
)
async def profiles(
    request: Request,
    rt: Runtime,
    segment: str | None = None,
    churn_risk: bool | None = None,
    limit: Limit = 100,
    cursor: Cursor = None,
    format: Format = "json",
) -> Any:
    unknown = set(request.query_params) - {
        *FILTERS,
        "segment",
        "churn_risk",
        "limit",
        "cursor",
        "format",
    }
    if unknown:
        raise RuleViolation(
            f"unknown filter(s) {sorted(unknown)}; filters: {', '.join(FILTERS)}, segment, "
            "churn_risk"
        )
    conditions = ["customer_id > $1"]
    args: list[Any] = [cursor_uuid(cursor)]
    for name in FILTERS:
        if (value := request.query_params.get(name)) is not None:
            args.append(value)
            conditions.append(f"{name} = ${len(args)}")
    if churn_risk is not None:
        args.append(churn_risk)
        conditions.append(f"churn_risk = ${len(args)}")
    if segment is not None:
        args.append(segment)
        conditions.append(
            "customer_id IN (SELECT customer_id FROM segment_history "
            f"WHERE left_at IS NULL AND segment = ${len(args)})"
        )
    args.append(100_000 if format == "csv" else limit + 1)
    rows = await pool_of(rt).fetch(
        f"SELECT {PROFILE_VIEW} FROM profiles WHERE {' AND '.join(conditions)} "
        f"ORDER BY customer_id LIMIT ${len(args)}",
        *args,
    )
    currency = currency_of(rt)
    return page([profile_view(r, currency) for r in rows], limit, "customer_id", format,
                "profiles.csv")  # fmt: skip


async def profile_row(rt: ServiceRuntime, customer_id: UUID) -> asyncpg.Record:
    row = await pool_of(rt).fetchrow(
        f"SELECT {PROFILE_VIEW} FROM profiles WHERE customer_id = $1", customer_id
    )
    if row is None:
        raise NotFound(f"analytics knows no customer with id {customer_id}")
    return row


@router.get(
    "/profiles/{customer_id}",
    summary="One customer's analytic profile",
    dependencies=[requires("analytics:read", personal_data=True)],
)
async def profile(customer_id: UUID, rt: Runtime) -> dict[str, Any]:
    return profile_view(await profile_row(rt, customer_id), currency_of(rt))


async def current_segments(rt: ServiceRuntime, customer_id: UUID) -> list[dict[str, Any]]:
    rows = await pool_of(rt).fetch(
        """SELECT h.segment, h.rule_version, h.entered_at, h.entered_values::text AS decided_by,
                  r.rule::text AS rule
           FROM segment_history h LEFT JOIN segment_rules r USING (segment)
           WHERE h.customer_id = $1 AND h.left_at IS NULL ORDER BY h.segment""",
        customer_id,
    )
    out = []
    for row in rows:
        item = record(row)
        if item["rule"] is None:
            family = item["segment"].split(".", 1)[0]
            item["rule"] = f"built-in {family} segment from {', '.join(BUILTIN_FIELDS[family])}"
        out.append(item)
    return out


@router.get(
    "/customers/{customer_id}/segments",
    summary="Current segments and why",
    dependencies=[requires("analytics:read", personal_data=True)],
)
async def customer_segments(customer_id: UUID, rt: Runtime) -> dict[str, Any]:
    await profile_row(rt, customer_id)
    return {"customer_id": str(customer_id), "segments": await current_segments(rt, customer_id)}


@router.get(
    "/customers/{customer_id}/segments/{segment}/why",
    summary="Why the customer is (or is not) in a segment: the rule and the values",
    dependencies=[requires("analytics:read", personal_data=True)],
)
async def why(customer_id: UUID, segment: str, rt: Runtime) -> dict[str, Any]:
    await profile_row(rt, customer_id)
    definition = await definition_of(rt, segment)
    row = await pool_of(rt).fetchrow(
        """SELECT rule_version, entered_at, entered_values::text AS decided_by, left_at,
                  left_values::text AS left_because
           FROM segment_history WHERE customer_id = $1 AND segment = $2
           ORDER BY id DESC LIMIT 1""",
        customer_id,
        segment,
    )
    member = row is not None and row["left_at"] is None
    return {
        "customer_id": str(customer_id),
        "segment": segment,
        "member": member,
        "definition": definition,
        "last_change": record(row) if row else None,
    }


@router.get(
    "/customers/{customer_id}/segment-history",
    summary="Segments entered and left",
    dependencies=[requires("analytics:read", personal_data=True)],
)
async def segment_history(
    customer_id: UUID, rt: Runtime, limit: Limit = 100, cursor: Cursor = None,
    format: Format = "json",
) -> Any:  # fmt: skip
    after = decode_cursor(cursor) or 0
    if not isinstance(after, int):
        raise RuleViolation("cursor is not one this service issued; start without it")
    rows = await pool_of(rt).fetch(
        """SELECT id, segment, rule_version, entered_at, entered_values::text AS entered_values,
                  left_at, left_values::text AS left_values
           FROM segment_history WHERE customer_id = $1 AND id > $2 ORDER BY id LIMIT $3""",
        customer_id,
        after,
        100_000 if format == "csv" else limit + 1,
    )
    return page([record(r) for r in rows], limit, "id", format, "segment-history.csv")


@router.get(
    "/customers/{customer_id}/360",
    summary="Everything analytics knows of a customer",
    dependencies=[requires("analytics:read", personal_data=True)],
)
async def customer_360(customer_id: UUID, rt: Runtime) -> dict[str, Any]:
    view = profile_view(await profile_row(rt, customer_id), currency_of(rt))
    async with pool_of(rt).acquire() as c:
        interactions = await c.fetch(
            """SELECT interaction_id, started_at, channel, direction, subject FROM interactions
               WHERE customer_id = $1 ORDER BY started_at DESC LIMIT 10""",
            customer_id,
        )
        opportunities = await c.fetch(
            """SELECT opportunity_id, description, stage, expected_amount, currency, owner,
                      expected_close_date FROM opportunities
               WHERE customer_id = $1 AND stage NOT IN ('won', 'lost') ORDER BY updated_at""",
            customer_id,
        )
        tickets = await c.fetch(
            """SELECT ticket_id, kind, subject, severity, status, opened_at, resolution_due_at
               FROM tickets WHERE customer_id = $1 AND status = 'open' ORDER BY opened_at""",
            customer_id,
        )
        surveys = await c.fetch(
            """SELECT survey, answered_at, csat, nps, channel FROM surveys
               WHERE customer_id = $1 ORDER BY answered_at DESC LIMIT 5""",
            customer_id,
        )
        warning = await c.fetchrow(
            "SELECT raised_at, reasons FROM churn_warnings WHERE customer_id = $1", customer_id
        )
    return {
        "profile": view,
        "segments": await current_segments(rt, customer_id),
        "satisfaction": {
            "level": view["satisfaction"],
            "csat_average": view["csat_average"],
            "csat_count": view["csat_count"],
            "nps_latest": view["nps_latest"],
            "nps_category": view["nps_category"],
            "complaints_open": view["complaints_open"],
            "complaints_total": view["complaints_total"],
            "latest_answers": [record(r) for r in surveys],
        },
        "churn_warning": record(warning) if warning else None,
        "last_interactions": [record(r) for r in interactions],
        "open_opportunities": [record(r) for r in opportunities],
        "open_tickets": [record(r) for r in tickets],
    }


# Satisfaction -------------------------------------------------------------------------

GROUPS = {
    "channel": ("s.channel", "t.channel"),
    "owner": ("p.owner", "p.owner"),
    "period": (
        "to_char(date_trunc('month', s.answered_at), 'YYYY-MM')",
        "to_char(date_trunc('month', t.opened_at), 'YYYY-MM')",
    ),
    "segment": ("h.segment", "h.segment"),
}


@router.get(
    "/satisfaction",
    summary="CSAT, NPS, complaint rate and resolution times",
    dependencies=[requires("analytics:read")],
)
async def satisfaction(
    rt: Runtime,
    by: Annotated[Literal["segment", "channel", "owner", "period"], Query()] = "segment",
    family: Annotated[str | None, Query(description="with by=segment: rfm, lifecycle...")] = None,
    since: datetime | None = None,
    until: datetime | None = None,
    format: Format = "json",
) -> Any:
    start = moment(since, "since") or datetime(1970, 1, 1, tzinfo=UTC)
    end = moment(until, "until") or datetime(9999, 1, 1, tzinfo=UTC)
    survey_key, ticket_key = GROUPS[by]
    join = (
        "JOIN segment_history h ON h.customer_id = p.customer_id AND h.left_at IS NULL"
        + (" AND h.segment LIKE $3" if family else "")
        if by == "segment"
        else ""
    )
    args: list[Any] = [start, end] + ([f"{family}.%"] if family and by == "segment" else [])
    async with pool_of(rt).acquire() as c:
        answers = await c.fetch(
            f"""SELECT {survey_key} AS grp, avg(s.csat)::float AS csat_average,
                       count(s.csat) AS csat_answers, count(s.nps) AS nps_answers,
                       100.0 * (count(*) FILTER (WHERE s.nps >= 9)
                                - count(*) FILTER (WHERE s.nps <= 6))
                         / nullif(count(s.nps), 0) AS nps
                FROM surveys s JOIN profiles p ON p.customer_id = s.customer_id {join}
                WHERE s.answered_at >= $1 AND s.answered_at < $2 GROUP BY 1""",
            *args,
        )
        tickets = await c.fetch(
            f"""SELECT {ticket_key} AS grp,
                       count(*) FILTER (WHERE t.kind = 'complaint') AS complaints,
                       count(DISTINCT t.customer_id) AS customers_with_tickets,
                       avg(extract(epoch FROM t.resolved_at - t.opened_at) / 3600)
                         FILTER (WHERE t.resolved_at IS NOT NULL)::float AS resolution_hours_avg,
                       percentile_disc(0.9) WITHIN GROUP (ORDER BY
                         extract(epoch FROM t.resolved_at - t.opened_at) / 3600)
                         FILTER (WHERE t.resolved_at IS NOT NULL) AS resolution_hours_p90,
                       count(*) FILTER (WHERE t.resolved_at > t.resolution_due_at)
                         AS resolved_late
                FROM tickets t JOIN profiles p ON p.customer_id = t.customer_id {join}
                WHERE t.opened_at >= $1 AND t.opened_at < $2 GROUP BY 1""",
            *args,
        )
        if by == "owner":
            customers = await c.fetch("SELECT owner AS grp, count(*) AS n FROM profiles GROUP BY 1")
        elif by == "segment":
            customers = await c.fetch(
                """SELECT segment AS grp, count(*) AS n FROM segment_history
                   WHERE left_at IS NULL AND segment LIKE $1 GROUP BY 1""",
                f"{family}.%" if family else "%",
            )
        else:
            customers = []
    groups: dict[Any, dict[str, Any]] = {}
    for row in answers:
        groups.setdefault(row["grp"], {})
        groups[row["grp"]].update(record(row))
    for row in tickets:
        groups.setdefault(row["grp"], {})
        groups[row["grp"]].update(record(row))
    sizes = {r["grp"]: r["n"] for r in customers}
    rows = []
    for key in sorted(groups, key=lambda k: (k is None, str(k))):
        item = {by: key, **{k: v for k, v in groups[key].items() if k != "grp"}}
        for name in ("csat_average", "nps", "resolution_hours_avg", "resolution_hours_p90"):
            if item.get(name) is not None:
                item[name] = round(float(item[name]), 2)
        if sizes.get(key):
            item["customers"] = sizes[key]
            item["complaint_rate"] = round((item.get("complaints") or 0) / sizes[key], 4)
        rows.append(item)
    return listing(rows, format, f"satisfaction-by-{by}.csv")


@router.get(
    "/value-satisfaction",
    summary="The value x satisfaction matrix",
    dependencies=[requires("analytics:read", personal_data=True)],
)
async def value_satisfaction(
    rt: Runtime, sample: Annotated[int, Query(ge=0, le=100)] = 10
) -> dict[str, Any]:
    async with pool_of(rt).acquire() as c:
        total = await c.fetchval("SELECT coalesce(sum(total_spend), 0) FROM profiles")
        counts = await c.fetch(
            """SELECT quadrant, count(*) AS customers, sum(total_spend) AS value
               FROM profiles WHERE quadrant IS NOT NULL GROUP BY quadrant"""
        )
        members = await c.fetch(
            """SELECT quadrant, customer_id, name, total_spend, csat_average, nps_latest FROM (
                   SELECT *, row_number() OVER (PARTITION BY quadrant
                                                ORDER BY total_spend DESC) AS n
                   FROM profiles WHERE quadrant IS NOT NULL) x
               WHERE n <= $1 ORDER BY quadrant, n""",
            sample,
        )
        unknown = await c.fetchval(
            "SELECT count(*) FROM profiles WHERE quadrant IS NULL AND purchase_count > 0"
        )
    found = {r["quadrant"]: r for r in counts}
    quadrants = []
    for name, (value, level, strategy) in matrix.QUADRANTS.items():
        row = found.get(name)
        quadrants.append(
            {
                "quadrant": name,
                "value": value,
                "satisfaction": level,
                "strategy": strategy,
                "customers": row["customers"] if row else 0,
                "value_share": round(float(row["value"] / total), 4) if row and total else 0.0,
                "top_customers": [
                    {k: plain(v) for k, v in dict(m).items() if k != "quadrant"}
                    for m in members
                    if m["quadrant"] == name
                ],
                "customers_url": f"/value-satisfaction/{name}/customers",
            }
        )
    return {"quadrants": quadrants, "buyers_without_satisfaction_data": unknown}


@router.get(
    "/value-satisfaction/{quadrant}/customers",
    summary="Customers of a quadrant",
    dependencies=[requires("analytics:read", personal_data=True)],
)
async def quadrant_customers(
    quadrant: str, rt: Runtime, limit: Limit = 100, cursor: Cursor = None,
    format: Format = "json",
) -> Any:  # fmt: skip
    if quadrant not in matrix.QUADRANTS:
        raise NotFound(f"no quadrant {quadrant!r}; one of {', '.join(matrix.QUADRANTS)}")
    rows = await pool_of(rt).fetch(
        f"""SELECT {PROFILE_VIEW} FROM profiles WHERE quadrant = $1 AND customer_id > $2
            ORDER BY customer_id LIMIT $3""",
        quadrant,
        cursor_uuid(cursor),
        100_000 if format == "csv" else limit + 1,
    )
    currency = currency_of(rt)
    return page([profile_view(r, currency) for r in rows], limit, "customer_id", format,
                f"{quadrant}.csv")  # fmt: skip


# Churn --------------------------------------------------------------------------------


@router.get(
    "/churn-warnings",
    summary="Open churn warnings of top-tier customers",
    dependencies=[requires("analytics:read", personal_data=True)],
)
async def churn_warnings(
    rt: Runtime,
    reason: Annotated[
        Literal["overdue_purchase", "detractor", "complaint_past_target"] | None, Query()
    ] = None,
    limit: Limit = 100,
    cursor: Cursor = None,
    format: Format = "json",
) -> Any:
    rows = await pool_of(rt).fetch(
        """SELECT w.customer_id, p.name, p.owner, w.value_tier, w.reasons, w.raised_at,
                  w."values"::text AS "values", p.total_spend
           FROM churn_warnings w LEFT JOIN profiles p USING (customer_id)
           WHERE w.customer_id > $1 AND ($2::text IS NULL OR $2 = ANY(w.reasons))
           ORDER BY w.customer_id LIMIT $3""",
        cursor_uuid(cursor),
        reason,
        100_000 if format == "csv" else limit + 1,
    )
    return page([record(r) for r in rows], limit, "customer_id", format, "churn-warnings.csv")


# Overviews ----------------------------------------------------------------------------


@router.get(
    "/overview/pareto",
    summary="The 80/20 view: the top fifth and their value",
    dependencies=[requires("analytics:read")],
)
async def pareto(rt: Runtime) -> dict[str, Any]:
    row = await pool_of(rt).fetchrow(
        """WITH ranked AS (
               SELECT total_spend, row_number() OVER (ORDER BY total_spend DESC) AS n,
                      count(*) OVER () AS buyers, sum(total_spend) OVER () AS total,
                      sum(total_spend) OVER (ORDER BY total_spend DESC
                                             ROWS UNBOUNDED PRECEDING) AS running
               FROM profiles WHERE purchase_count > 0)
           SELECT max(buyers) AS buyers, max(total) AS total,
                  sum(total_spend) FILTER (WHERE n <= ceil(buyers * 0.2)) AS top_value,
                  count(*) FILTER (WHERE n <= ceil(buyers * 0.2)) AS top_customers,
                  min(n) FILTER (WHERE running >= total * 0.8) AS customers_for_80_percent
           FROM ranked"""
    )
    buyers = row["buyers"] or 0
    total = row["total"] or Decimal(0)
    return {
        "buyers": buyers,
        "total_value": float(total),
        "reporting_currency": currency_of(rt),
        "top_fifth_customers": row["top_customers"] or 0,
        "top_fifth_value_share": round(float(row["top_value"] / total), 4) if total else 0.0,
        "customers_for_80_percent_of_value": row["customers_for_80_percent"] or 0,
        "share_of_customers_for_80_percent": (
            round(row["customers_for_80_percent"] / buyers, 4) if buyers else 0.0
        ),
    }


@router.get(
    "/overview/lifecycle",
    summary="Customers per lifecycle stage",
    dependencies=[requires("analytics:read")],
)
async def lifecycle_overview(rt: Runtime, format: Format = "json") -> Any:
    rows = await pool_of(rt).fetch(
        """SELECT lifecycle_stage, count(*) AS customers, sum(total_spend) AS value
           FROM profiles GROUP BY 1"""
    )
    found = {r["lifecycle_stage"]: r for r in rows}
    items = [
        {
            "lifecycle_stage": stage,
            "customers": found[stage]["customers"] if stage in found else 0,
            "value": float(found[stage]["value"]) if stage in found else 0.0,
        }
        for stage in lifecycle.STAGES
    ]
    return listing(items, format, "lifecycle.csv")


@router.get(
    "/overview/distribution",
    summary="Customers, buyers and value by a dimension",
    dependencies=[requires("analytics:read")],
)
async def distribution(
    rt: Runtime,
    by: Annotated[Literal["region", "industry", "kind", "owner", "value_tier"], Query()] = "region",
    format: Format = "json",
) -> Any:
    rows = await pool_of(rt).fetch(
        f"""SELECT {by}, count(*) AS customers,
                   count(*) FILTER (WHERE purchase_count > 0) AS buyers,
                   count(*) FILTER (WHERE purchase_count = 0 AND last_contact_at IS NOT NULL)
                     AS interested_prospects,
                   coalesce(sum(total_spend), 0) AS value,
                   avg(total_spend) FILTER (WHERE purchase_count > 0) AS average_spend_per_buyer
            FROM profiles GROUP BY 1 ORDER BY value DESC, 1"""
    )
    return listing([record(r) for r in rows], format, f"distribution-by-{by}.csv")


@router.get(
    "/rfm",
    summary="The current RFM quintile boundaries and scoring rules",
    dependencies=[requires("analytics:read")],
)
async def rfm_view(rt: Runtime) -> dict[str, Any]:
    row = await pool_of(rt).fetchrow(
        "SELECT recency, frequency, monetary, buyers, scored_at FROM rfm_state"
    )
    return {
        "buyers": row["buyers"],
        "scored_at": plain(row["scored_at"]),
        "boundaries": {
            "recency_last_purchase_date": [plain(v) for v in row["recency"] or []],
            "frequency_purchases": row["frequency"],
            "monetary_total_spend": [float(v) for v in row["monetary"] or []],
        },
        "rule": "score = 1 + number of boundaries strictly below the value; ties take the "
        "lower score; boundaries are percentile_disc(0.2, 0.4, 0.6, 0.8) over all buyers",
        "named_segments": list(rfm.NAMED_SEGMENTS),
    }


# Live feed ----------------------------------------------------------------------------


@router.get(
    "/feed",
    summary="Server-sent events: segment changes and churn warnings as they are drawn",
    responses={200: {"content": {"text/event-stream": {}}}},
    dependencies=[requires("analytics:read")],
)
async def feed(
    request: Request,
    rt: Runtime,
    after: Annotated[int | None, Query(ge=0, description="Position to start after")] = None,
    types: Annotated[
        str | None, Query(description="Comma-separated event types to keep, e.g. analytics.x")
    ] = None,
) -> StreamingResponse:
    pool = pool_of(rt)
    wanted = {t.strip() for t in types.split(",")} if types else None
    last_id = request.headers.get("last-event-id")
    if last_id is not None:
        if not last_id.isdigit():
            raise RuleViolation("Last-Event-ID must be a position number")
        after = int(last_id)
    if after is None:
        after = int(await pool.fetchval(f"SELECT coalesce(max(position), 0) FROM {OUTBOX_TABLE}"))
    start = after

    async def events() -> AsyncIterator[bytes]:
        position = start
        yield b": analytics feed\n\n"
        idle = 0
        while not await request.is_disconnected():
            rows = await pool.fetch(
                f"SELECT position, envelope FROM {OUTBOX_TABLE} WHERE position > $1 "
                "ORDER BY position LIMIT 500",
                position,
            )
            for row in rows:
                position = row["position"]
                data = bytes(row["envelope"])
                event_type = orjson.loads(data)["event_type"]
                if wanted is None or event_type in wanted:
                    yield (f"id: {position}\nevent: {event_type}\n".encode() + b"data: " + data
                           + b"\n\n")  # fmt: skip
            if not rows:
                idle += 1
                if idle % 30 == 0:
                    yield b": keep-alive\n\n"
                await asyncio.sleep(0.5)
            else:
                idle = 0

    return StreamingResponse(
        events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
    )
