"""Segment views: the rule language, every segment with its size and value, a segment's
definition (and each of its versions), its members now or at a past moment, and how
customers moved between segments."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Path, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from contracts.money import Money
from contracts.personal import Personal
from services.analytics.dependencies import Pool
from services.analytics.domain import builtin
from services.analytics.domain.rules import CHOICES, FIELDS, OPERATORS, describe, fields_of
from services.analytics.domain.segments import BUILTIN_PREFIXES, BUILTIN_SEGMENTS
from services.analytics.queries import segments as queries
from services.analytics.queries.records import BY_CUSTOMER
from services.analytics.queries.segments import SEGMENT_FAMILIES
from services.analytics.views.answers import (
    Cursor,
    Format,
    Limit,
    Moment,
    amounts_as_text,
    checked_moment,
    csv_of,
)
from services.runtime.errors import NotFound, RuleViolation
from services.runtime.http.authorization import requires
from services.runtime.http.parameters import Moment as MomentParameter

router = APIRouter(tags=["analytics"])

SegmentKind = Literal["built-in", "defined"]


class RuleField(BaseModel):
    type: str
    meaning: str
    choices: list[str] | None = Field(default=None, description="The values of a choice field.")


class RuleLanguage(BaseModel):
    fields: dict[str, RuleField] = Field(description="The fields a rule compares.")
    operators: dict[str, list[str]] = Field(description="Each operator and its field types.")


class SegmentSummary(BaseModel):
    segment: str
    kind: SegmentKind
    name: str
    version: int
    customers: int = Field(description="Current members.")
    customer_share: float = Field(description="Of every customer with a profile.")
    value: Money = Field(description="The members' total spend, in the reporting currency.")
    value_share: float = Field(description="Of every customer's total spend.")


class SegmentList(BaseModel):
    items: list[SegmentSummary]


class SegmentDefinitionView(BaseModel):
    """A segment's rule in the rule language, in words (`explanation`), and the `fields`
    it reads; a defined segment's also with its name, description and when this version
    was defined."""

    segment: str
    kind: SegmentKind
    version: int
    name: str | None = None
    description: str | None = None
    rule: dict[str, Any]
    explanation: str
    fields: list[str]
    defined_at: Moment | None = None


class SegmentVersions(BaseModel):
    items: list[SegmentDefinitionView]


class Member(BaseModel):
    customer_id: UUID
    name: Personal | None
    rule_version: int
    entered_at: Moment
    left_at: Moment | None
    decided_by: dict[str, Any] = Field(description="The values that decided the entry.")
    total_spend: Money | None
    value_tier: str | None


class MemberPage(BaseModel):
    items: list[Member]
    next_cursor: str | None


class Migration(BaseModel):
    from_segment: str
    to_segment: str
    customers: int


class MigrationList(BaseModel):
    items: list[Migration]


def builtin_definition(segment: str) -> SegmentDefinitionView:
    rule = builtin.RULES[segment]
    return SegmentDefinitionView(
        segment=segment,
        kind="built-in",
        version=1,
        rule=rule,
        explanation=builtin.explanation(segment),
        fields=fields_of(rule),
    )


def defined_definition(row: dict[str, Any]) -> SegmentDefinitionView:
    return SegmentDefinitionView(
        kind="defined", explanation=describe(row["rule"]), fields=fields_of(row["rule"]), **row
    )


async def definition_of(pool: Pool, segment: str) -> SegmentDefinitionView:
    """The segment's definition; 404 for a segment there is none of."""
    if segment in BUILTIN_SEGMENTS:
        return builtin_definition(segment)
    row = await queries.segment_rule(pool, segment)
    if row is None:
        raise NotFound(f"no segment {segment!r} (GET /segments lists them)")
    return defined_definition(row)


async def versions_of(pool: Pool, segment: str) -> list[SegmentDefinitionView]:
    """Every version of the segment's definition, oldest first; 404 for a segment there
    is none of."""
    if segment in BUILTIN_SEGMENTS:
        return [builtin_definition(segment)]
    rows = await queries.segment_rule_versions(pool, segment)
    if not rows:
        raise NotFound(f"no segment {segment!r} (GET /segments lists them)")
    return [defined_definition(row) for row in rows]


@router.get(
    "/segments/rule-language",
    summary="Fields and operators of segment rules",
    dependencies=[requires("analytics:read")],
)
async def rule_language() -> RuleLanguage:
    return RuleLanguage(
        fields={
            name: RuleField(type=t, meaning=m, choices=list(CHOICES.get(name, ())) or None)
            for name, (t, m) in FIELDS.items()
        },
        operators={op: list(types) for op, types in OPERATORS.items()},
    )


@router.get(
    "/segments",
    summary="Every segment with its size and share of value",
    dependencies=[requires("analytics:read")],
    response_model=SegmentList,
)
async def segments(pool: Pool, format: Format = "json") -> SegmentList | StreamingResponse:
    figures = await queries.segment_figures(pool)
    total, population = figures.total_value, figures.population
    defined = {d["segment"]: d for d in figures.defined}
    items = []
    for key in [*BUILTIN_SEGMENTS, *defined]:
        found = figures.sizes.get(key)
        definition = defined.get(key)
        customers = found["customers"] if found else 0
        value = found["value"] if found else 0
        items.append(
            SegmentSummary(
                segment=key,
                kind="built-in" if key.startswith(BUILTIN_PREFIXES) else "defined",
                name=definition["name"] if definition else key.split(".", 1)[1],
                version=definition["version"] if definition else 1,
                customers=customers,
                customer_share=round(customers / population, 4) if population else 0.0,
                value=value,
                value_share=round(float(value / total), 4) if total else 0.0,
            )
        )
    if format == "csv":
        return csv_of(items, SegmentSummary, "segments.csv")
    return SegmentList(items=items)


@router.get(
    "/segments/{segment}",
    summary="A segment's definition",
    dependencies=[requires("analytics:read")],
    response_model_exclude_unset=True,
)
async def segment_definition(segment: str, pool: Pool) -> SegmentDefinitionView:
    return await definition_of(pool, segment)


@router.get(
    "/segments/{segment}/versions",
    summary="Every version of a segment's definition",
    dependencies=[requires("analytics:read")],
)
async def segment_versions(segment: str, pool: Pool) -> SegmentVersions:
    return SegmentVersions(items=await versions_of(pool, segment))


@router.get(
    "/segments/{segment}/versions/{version}",
    summary="One version of a segment's definition, the current one or an earlier one",
    dependencies=[requires("analytics:read")],
    response_model_exclude_unset=True,
)
async def segment_version(
    segment: str, version: Annotated[int, Path(ge=1)], pool: Pool
) -> SegmentDefinitionView:
    for found in await versions_of(pool, segment):
        if found.version == version:
            return found
    raise NotFound(f"segment {segment!r} has no version {version}")


@router.get(
    "/segments/{segment}/members",
    summary="Members now, or as of a past moment",
    dependencies=[requires("analytics:read")],
    response_model=MemberPage,
)
async def segment_members(
    segment: str,
    pool: Pool,
    as_of: Annotated[MomentParameter | None, Query(description="ISO 8601 with offset")] = None,
    limit: Limit = 100,
    cursor: Cursor = None,
    format: Format = "json",
) -> MemberPage | StreamingResponse:
    await definition_of(pool, segment)
    at = checked_moment(as_of, "as_of")
    rows = await queries.segment_members(pool, segment, at, BY_CUSTOMER.after(cursor), limit + 1)
    items = [Member.model_validate(amounts_as_text(row, "decided_by")) for row in rows[:limit]]
    if format == "csv":
        return csv_of(items, Member, f"{segment}.csv")
    return MemberPage(items=items, next_cursor=BY_CUSTOMER.next_cursor(rows, limit))


@router.get(
    "/segment-migration",
    summary="How customers moved between segments",
    dependencies=[requires("analytics:read")],
    response_model=MigrationList,
    responses={404: {"description": "No segment of that key (`family`)."}},
)
async def migration(
    pool: Pool,
    from_: Annotated[MomentParameter, Query(alias="from", description="ISO 8601 with offset")],
    to: Annotated[MomentParameter, Query(description="ISO 8601 with offset")],
    family: Annotated[
        str, Query(description="rfm, lifecycle, tier, or a defined segment's key")
    ] = "rfm",
    format: Format = "json",
) -> MigrationList | StreamingResponse:
    start, end = checked_moment(from_, "from"), checked_moment(to, "to")
    assert start is not None and end is not None
    if start > end:
        raise RuleViolation("from must not be after to")
    if family not in SEGMENT_FAMILIES:
        await definition_of(pool, family)
    items = [Migration.model_validate(r) for r in await queries.migration(pool, start, end, family)]
    if format == "csv":
        return csv_of(items, Migration, f"migration-{family}.csv")
    return MigrationList(items=items)
