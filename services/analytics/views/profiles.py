"""Profile views: analytic profiles filtered, one customer's profile, current segments
and why (or why not), segment history, and the customer 360 (profile, classification,
contact persons, segments, satisfaction, churn warning, latest interactions, open
opportunities and tickets, contracts still to be paid, recent purchases)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, ClassVar
from uuid import UUID

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field, field_validator, model_validator

from contracts.money import Money, Priced
from contracts.personal import Personal
from contracts.sales_values import DEFAULT_PROBABILITY
from services.analytics.dependencies import Pool, ReportingCurrency
from services.analytics.domain import builtin, matrix
from services.analytics.domain.money import cents
from services.analytics.domain.profile import CONTACT_WINDOW_DAYS, average_repeat_spend
from services.analytics.domain.rules import describe, explain, fields_of
from services.analytics.domain.segments import field_values, jsonable, pick
from services.analytics.queries import profiles as queries
from services.analytics.queries.merge_groups import combined_profile, group_profile
from services.analytics.queries.profiles import BY_HISTORY, PROFILE_FILTERS
from services.analytics.queries.records import BY_CUSTOMER
from services.analytics.views.answers import (
    Cursor,
    Format,
    Limit,
    Moment,
    amounts_as_text,
    csv_of,
    equality_filters,
)
from services.analytics.views.segments import SegmentDefinitionView, definition_of
from services.runtime.customer_aliases import merge_group
from services.runtime.errors import NotFound, RuleViolation
from services.runtime.http.authorization import requires

router = APIRouter(tags=["analytics"])

STAGE_DEFAULTS = {stage.value: probability for stage, probability in DEFAULT_PROBABILITY.items()}
"""The sales stages' default win probabilities (percent), shown beside the learned one."""


class ProfileView(Priced):
    """Amounts in the reporting currency, with its minor units."""

    other_currencies: ClassVar[dict[str, str]] = {
        "total_spend": "reporting_currency",
        "average_spend": "reporting_currency",
        "average_repeat_spend": "reporting_currency",
        "expected_spend": "reporting_currency",
        "lifetime_value": "reporting_currency",
    }

    customer_id: UUID
    name: Personal | None
    kind: str | None
    industry: str | None
    region: str | None
    owner: str | None
    tags: list[str]
    registered: bool
    importance_tier: str | None
    loyalty_stage: str | None
    value_behaviour: str | None
    relationship_level: str | None
    purchase_count: int
    total_spend: Money = Field(description="In the reporting currency.")
    first_purchase_at: Moment | None
    last_purchase_at: Moment | None
    last_contact_at: Moment | None
    csat_average: float | None
    csat_count: int
    nps_latest: int | None
    complaints_open: int
    complaints_total: int
    recency_score: int | None
    frequency_score: int | None
    monetary_score: int | None
    rfm_segment: str | None
    lifecycle_stage: str
    value_tier: str
    satisfaction: str
    quadrant: str | None
    churn_risk: bool
    updated_at: Moment
    reporting_currency: str
    average_spend: Money | None = Field(description="Per purchase; null without purchases.")
    repeat_purchases: int | None = Field(description="Purchases after the first.")
    average_repeat_spend: Money | None = Field(
        description="Per purchase after the first; null without a repeat purchase."
    )
    days_since_first_purchase: int | None
    days_since_last_purchase: int | None
    days_since_last_contact: int | None
    interactions_90d: int
    nps_category: str | None
    expected_purchases_30d: float | None = Field(
        description="Purchases the BG/NBD model expects in the next 30 days (null before "
        "a model scored the customer, and without purchases)."
    )
    expected_purchases_90d: float | None
    expected_purchases_365d: float | None
    probability_active: float | None = Field(
        description="The BG/NBD probability (0-1) that the customer still buys."
    )
    expected_spend: Money | None = Field(
        description="The Gamma-Gamma expected spend per purchase (reporting currency)."
    )
    lifetime_value: Money | None = Field(
        description="Discounted expected revenue over the value horizon (reporting currency)."
    )
    scored_at: Moment | None = Field(description="When the scores were computed.")
    bg_nbd_version: int | None = Field(description="The BG/NBD fit that scored them.")
    gamma_gamma_version: int | None = Field(description="The Gamma-Gamma fit that scored them.")


class ProfilePage(BaseModel):
    items: list[ProfileView]
    next_cursor: str | None


class CurrentSegment(BaseModel):
    segment: str
    rule_version: int
    entered_at: Moment
    decided_by: dict[str, Any] = Field(description="The values that decided the entry.")
    rule: dict[str, Any]
    explanation: str = Field(description="The rule in words.")


class CustomerSegments(BaseModel):
    customer_id: UUID
    segments: list[CurrentSegment]


class SegmentChange(BaseModel):
    rule_version: int
    entered_at: Moment
    decided_by: dict[str, Any]
    left_at: Moment | None
    left_because: dict[str, Any] | None = Field(description="The values when it was left.")


class FailedCondition(BaseModel):
    """A comparison of the rule that keeps the customer out, with their value now."""

    field: str
    op: str
    value: Any = Field(description="What the rule compares with.")
    actual: Any = Field(description="The customer's value now (amounts as decimal strings).")
    negated: bool = Field(description="Inside a `not`: the rule needs it not to hold.")
    explanation: str


class Why(BaseModel):
    customer_id: UUID
    segment: str
    member: bool
    definition: SegmentDefinitionView
    last_change: SegmentChange | None = Field(description="The latest entry (and exit).")
    current_values: dict[str, Any] = Field(description="The values the rule reads, now.")
    failed_conditions: list[FailedCondition] = Field(
        description="For a customer outside the segment: the conditions not met now."
    )


class SegmentHistoryEntry(BaseModel):
    id: int
    segment: str
    rule_version: int
    entered_at: Moment
    entered_values: dict[str, Any]
    left_at: Moment | None
    left_values: dict[str, Any] | None


class SegmentHistoryPage(BaseModel):
    items: list[SegmentHistoryEntry]
    next_cursor: str | None


class SurveyAnswer(BaseModel):
    survey: str
    answered_at: Moment
    csat: int | None
    nps: int | None
    channel: str | None


class CustomerSatisfaction(BaseModel):
    level: str
    csat_average: float | None
    csat_count: int
    nps_latest: int | None
    nps_category: str | None
    complaints_open: int
    complaints_total: int
    latest_answers: list[SurveyAnswer]


class OpenChurnWarning(BaseModel):
    raised_at: Moment
    reasons: list[str]


class LoggedInteraction(BaseModel):
    interaction_id: UUID
    started_at: Moment
    channel: str
    direction: str
    subject: Personal


class WinFactor(BaseModel):
    """How far one feature moved the deal's log-odds from the baseline (positive: towards
    winning)."""

    feature: str
    level: str = Field(description="The deal's value of the feature, as shown.")
    contribution: float


class OpenOpportunity(Priced):
    opportunity_id: UUID
    description: Personal | None
    stage: str | None
    expected_amount: Money | None = Field(description="In the opportunity's currency.")
    currency: str | None
    owner: str | None
    expected_close_date: date | None
    stage_probability: int | None = Field(
        default=None, description="The stage's default win probability, in percent."
    )
    win_probability: float | None = Field(
        default=None,
        description="The probability (0-1) the win model learned from the closed deals "
        "gives it; null while there is no model (the stage's default stands).",
    )
    win_baseline: float | None = Field(
        default=None, description="The learned probability of an average closed deal."
    )
    win_factors: list[WinFactor] = Field(
        default_factory=list, description="What moved it from the baseline, largest first."
    )
    win_model_version: int | None = None

    @field_validator("win_factors", mode="before")
    @classmethod
    def _none_yet(cls, value: Any) -> Any:
        return [] if value is None else value  # not scored by a model (yet)

    @model_validator(mode="after")
    def _stage_default(self) -> OpenOpportunity:
        if self.stage in STAGE_DEFAULTS:
            self.stage_probability = STAGE_DEFAULTS[self.stage]
        return self


class OpenTicket(BaseModel):
    ticket_id: UUID
    kind: str | None
    subject: Personal | None
    severity: str | None
    status: str
    opened_at: Moment | None
    resolution_due_at: Moment | None


class Classification(BaseModel):
    importance_tier: str | None
    loyalty_stage: str | None
    value_behaviour: str | None
    relationship_level: str | None


class ContactPerson(BaseModel):
    contact_id: str
    name: Personal | None
    title: str | None
    phones: list[Personal]
    emails: list[Personal]


class Consent(BaseModel):
    """The channels the customer prefers, and those they opted out of: outbound contact
    on those is refused unless the caller states why (the interaction service)."""

    preferred: list[str] = Field(default_factory=list)
    opted_out: list[str] = Field(default_factory=list)


class OutstandingContract(Priced):
    opportunity_id: UUID
    contract_id: str
    signed_on: date
    amount: Money
    paid: Money = Field(description="Payments received in the contract's currency.")
    outstanding: Money
    currency: str


class RecentPurchase(Priced):
    """A purchase or a won contract (dated on its signing day)."""

    other_currencies: ClassVar[dict[str, str]] = {"reporting_amount": "reporting_currency"}

    kind: str = Field(description="purchase or contract")
    reference: str = Field(description="The purchase id, or the contract's id.")
    source: str | None
    occurred_at: Moment
    amount: Money
    currency: str
    reporting_amount: Money
    reporting_currency: str


class Customer360(BaseModel):
    profile: ProfileView
    classification: Classification
    contact_persons: list[ContactPerson]
    consent: Consent
    segments: list[CurrentSegment]
    satisfaction: CustomerSatisfaction
    churn_warning: OpenChurnWarning | None
    last_interactions: list[LoggedInteraction]
    open_opportunities: list[OpenOpportunity]
    open_tickets: list[OpenTicket]
    contracts_outstanding: list[OutstandingContract] = Field(
        description="Signed contracts not yet paid in full."
    )
    recent_purchases: list[RecentPurchase] = Field(description="The latest, newest first.")


def _days_since(moment: datetime | None, today: date) -> int | None:
    return (today - moment.date()).days if moment is not None else None


def profile_view(row: dict[str, Any], currency: str) -> ProfileView:
    """A profile row (`queries.profiles`) with what follows from it today."""
    now = datetime.now(UTC)
    today = now.date()
    fields = dict(row)
    recent = fields.pop("recent", None) or []
    horizon = now - timedelta(days=CONTACT_WINDOW_DAYS)
    count = fields["purchase_count"]
    first_spend = fields.pop("first_spend", None)
    return ProfileView(
        **fields,
        reporting_currency=currency,
        average_spend=cents(fields["total_spend"] / count) if count else None,
        repeat_purchases=count - 1 if count else None,
        average_repeat_spend=average_repeat_spend(count, fields["total_spend"], first_spend),
        days_since_first_purchase=_days_since(fields["first_purchase_at"], today),
        days_since_last_purchase=_days_since(fields["last_purchase_at"], today),
        days_since_last_contact=_days_since(fields["last_contact_at"], today),
        interactions_90d=sum(1 for m in recent if datetime.fromisoformat(m) >= horizon),
        nps_category=matrix.nps_category(fields["nps_latest"]),
    )


async def profile_row(pool: Pool, customer_id: UUID) -> dict[str, Any]:
    """The customer's profile row; the survivor of merges combines its group's."""
    row = await group_profile(pool, customer_id)
    if row is None:
        raise NotFound(f"analytics knows no customer with id {customer_id}")
    return row


profile_filters = equality_filters(PROFILE_FILTERS, "profiles")
"""The equality filters of `/profiles`."""


@router.get(
    "/profiles",
    summary="Analytic profiles, filtered",
    dependencies=[requires("analytics:read")],
    response_model=ProfilePage,
)
async def profiles(
    request: Request,
    pool: Pool,
    currency: ReportingCurrency,
    filters: Annotated[dict[str, str], Depends(profile_filters)],
    segment: str | None = None,
    churn_risk: bool | None = None,
    limit: Limit = 100,
    cursor: Cursor = None,
    format: Format = "json",
) -> ProfilePage | StreamingResponse:
    known = {*PROFILE_FILTERS, "segment", "churn_risk", "limit", "cursor", "format"}
    unknown = set(request.query_params) - known
    if unknown:
        raise RuleViolation(
            f"unknown filter(s) {sorted(unknown)}; filters: {', '.join(PROFILE_FILTERS)}, "
            "segment, churn_risk"
        )
    rows = await queries.profiles(
        pool, filters, churn_risk, segment, BY_CUSTOMER.after(cursor), limit + 1
    )
    items = [profile_view(r, currency) for r in rows[:limit]]
    if format == "csv":
        return csv_of(items, ProfileView, "profiles.csv")
    return ProfilePage(items=items, next_cursor=BY_CUSTOMER.next_cursor(rows, limit))


@router.get(
    "/profiles/{customer_id}",
    summary="One customer's analytic profile",
    dependencies=[requires("analytics:read")],
)
async def profile(customer_id: UUID, pool: Pool, currency: ReportingCurrency) -> ProfileView:
    return profile_view(await profile_row(pool, customer_id), currency)


async def current_segments(pool: Pool, customer_id: UUID) -> list[CurrentSegment]:
    segments = []
    for row in await queries.current_segments(pool, customer_id):
        if row["rule"] is None:  # a built-in segment
            row["rule"] = builtin.RULES.get(row["segment"], {})
            row["explanation"] = builtin.explanation(row["segment"]) if row["rule"] else ""
        else:
            row["explanation"] = describe(row["rule"])
        segments.append(CurrentSegment.model_validate(amounts_as_text(row, "decided_by")))
    return segments


@router.get(
    "/customers/{customer_id}/segments",
    summary="Current segments and why",
    dependencies=[requires("analytics:read")],
)
async def customer_segments(customer_id: UUID, pool: Pool) -> CustomerSegments:
    await profile_row(pool, customer_id)
    return CustomerSegments(
        customer_id=customer_id, segments=await current_segments(pool, customer_id)
    )


@router.get(
    "/customers/{customer_id}/segments/{segment}/why",
    summary="Why the customer is (or is not) in a segment: the rule and the values",
    dependencies=[requires("analytics:read")],
    response_model_exclude_unset=True,
)
async def why(customer_id: UUID, segment: str, pool: Pool) -> Why:
    profile = await combined_profile(pool, await merge_group(pool, customer_id))
    if profile is None:
        raise NotFound(f"analytics knows no customer with id {customer_id}")
    definition = await definition_of(pool, segment)
    row = await queries.last_change(pool, customer_id, segment)
    change = None
    if row is not None:
        change = SegmentChange.model_validate(amounts_as_text(row, "decided_by", "left_because"))
    member = row is not None and row["left_at"] is None
    values = field_values(profile, datetime.now(UTC))
    held, checks = explain(definition.rule, values)
    return Why(
        customer_id=customer_id,
        segment=segment,
        member=member,
        definition=definition,
        last_change=change,
        current_values=pick(values, fields_of(definition.rule)),
        failed_conditions=[] if held else [
            FailedCondition(
                field=check.field, op=check.op, value=check.value,
                actual=jsonable(check.actual), negated=not check.wanted,
                explanation=check.text,
            )
            for check in checks
        ],
    )  # fmt: skip


@router.get(
    "/customers/{customer_id}/segment-history",
    summary="Segments entered and left",
    dependencies=[requires("analytics:read")],
    response_model=SegmentHistoryPage,
)
async def segment_history(
    customer_id: UUID, pool: Pool, limit: Limit = 100, cursor: Cursor = None,
    format: Format = "json",
) -> SegmentHistoryPage | StreamingResponse:  # fmt: skip
    rows = await queries.segment_history(pool, customer_id, BY_HISTORY.after(cursor), limit + 1)
    items = [
        SegmentHistoryEntry.model_validate(amounts_as_text(row, "entered_values", "left_values"))
        for row in rows[:limit]
    ]
    if format == "csv":
        return csv_of(items, SegmentHistoryEntry, "segment-history.csv")
    return SegmentHistoryPage(items=items, next_cursor=BY_HISTORY.next_cursor(rows, limit))


@router.get(
    "/customers/{customer_id}/360",
    summary="Everything analytics knows of a customer",
    dependencies=[requires("analytics:read")],
)
async def customer_360(customer_id: UUID, pool: Pool, currency: ReportingCurrency) -> Customer360:
    view = profile_view(await profile_row(pool, customer_id), currency)
    details = await queries.customer_details(pool, await merge_group(pool, customer_id))
    return Customer360(
        profile=view,
        classification=Classification.model_validate(view, from_attributes=True),
        contact_persons=[ContactPerson.model_validate(r) for r in details.contact_persons],
        consent=Consent.model_validate(details.consent or {}),
        segments=await current_segments(pool, customer_id),
        satisfaction=CustomerSatisfaction(
            level=view.satisfaction,
            csat_average=view.csat_average,
            csat_count=view.csat_count,
            nps_latest=view.nps_latest,
            nps_category=view.nps_category,
            complaints_open=view.complaints_open,
            complaints_total=view.complaints_total,
            latest_answers=[SurveyAnswer.model_validate(r) for r in details.latest_answers],
        ),
        churn_warning=(
            OpenChurnWarning.model_validate(details.churn_warning)
            if details.churn_warning
            else None
        ),
        last_interactions=[LoggedInteraction.model_validate(r) for r in details.last_interactions],
        open_opportunities=[OpenOpportunity.model_validate(r) for r in details.open_opportunities],
        open_tickets=[OpenTicket.model_validate(r) for r in details.open_tickets],
        contracts_outstanding=[
            OutstandingContract.model_validate(r) for r in details.contracts_outstanding
        ],
        recent_purchases=[
            RecentPurchase.model_validate({**r, "reporting_currency": currency})
            for r in details.recent_purchases
        ],
    )
