"""The routes of the interaction views; their response models are in `responses.py`."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse
from pydantic import AwareDatetime

from contracts.interaction_values import (
    Direction,
    FeedbackKind,
    InteractionChannel,
    Severity,
    TicketKind,
)
from services.interaction import queries
from services.interaction.dependencies import App, Pool, now
from services.interaction.projections import fold_ticket
from services.interaction.queries import (
    DUE_ORDER,
    FEEDBACK_ORDER,
    INTERACTION_ORDER,
    TICKET_ORDER,
    TIMELINE_ORDER,
    InteractionQuery,
    TicketQuery,
)
from services.interaction.views.responses import (
    ChannelConsent,
    DueContact,
    DueContactPage,
    FeedbackPage,
    FeedbackView,
    InteractionPage,
    InteractionView,
    SlaState,
    SurveyResult,
    TicketCount,
    TicketPage,
    TicketStatus,
    TicketTimes,
    TicketView,
    TimelineEntry,
    TimelinePage,
)
from services.runtime.customer_aliases import merge_group, merge_group_of
from services.runtime.errors import NotFound, RuleViolation
from services.runtime.http.answers import AsOf
from services.runtime.http.authorization import requires
from services.runtime.http.csvexport import csv_response, paged_csv, rows_csv
from services.runtime.http.parameters import Moment

router = APIRouter()

Period = Literal["day", "week", "month", "quarter", "year"]
Cursor = Annotated[str | None, Query(max_length=1000, description="From the previous page.")]
Limit = Annotated[int, Query(ge=1, le=500)]


# Filters -----------------------------------------------------------------------------


async def interaction_query(
    pool: Pool,
    customer_id: UUID | None = None,
    channel: Annotated[list[InteractionChannel] | None, Query()] = None,
    direction: Direction | None = None,
    since: Annotated[Moment | None, Query(description="From this moment on.")] = None,
    until: Annotated[Moment | None, Query(description="Before this moment.")] = None,
    participant: Annotated[
        str | None, Query(max_length=200, description="A participant's name, any case.")
    ] = None,
    keyword: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=200,
            description="Part of the subject or notes, any case; Chinese included. One or "
            "two letters or digits match a whole word.",
        ),
    ] = None,
    ticket_id: UUID | None = None,
    opportunity_id: UUID | None = None,
) -> InteractionQuery:
    _in_order(since, until)
    if keyword is not None and not keyword.strip():
        raise RuleViolation("keyword must contain more than white space")
    return InteractionQuery(
        customer_id=await merge_group_of(pool, customer_id),
        channels=tuple(c.value for c in channel or ()),
        direction=direction.value if direction else None,
        since=since,
        until=until,
        participant=participant,
        keyword=keyword,
        ticket_id=ticket_id,
        opportunity_id=opportunity_id,
    )


Filters = Annotated[InteractionQuery, Depends(interaction_query)]


def _in_order(since: datetime | None, until: datetime | None) -> None:
    if since is not None and until is not None and since >= until:
        raise RuleViolation("since must lie before until")


def period_range(
    since: AwareDatetime | None, until: AwareDatetime | None, default_days: int = 365
) -> tuple[datetime, datetime]:
    end = until or now()
    start = since or end - timedelta(days=default_days)
    _in_order(start, end)
    return start, end


# Interactions ------------------------------------------------------------------------


@router.get(
    "/interactions",
    dependencies=[requires("interactions:read")],
    summary="Search interactions, newest first",
    tags=["interactions"],
)
async def search_interactions(
    pool: Pool, filters: Filters, limit: Limit = 50, cursor: Cursor = None
) -> InteractionPage:
    rows = await queries.search_interactions(
        pool, filters, limit=limit + 1, after=INTERACTION_ORDER.after(cursor)
    )
    return InteractionPage(
        items=[InteractionView.model_validate(r) for r in rows[:limit]],
        next_cursor=INTERACTION_ORDER.next_cursor(rows, limit),
    )


INTERACTION_CSV = tuple(
    n for n in InteractionView.model_fields if n not in ("version", "recorded_at")
)


@router.get(
    "/interactions/export.csv",
    dependencies=[requires("interactions:read")],
    summary="Export every interaction matching the filters as CSV",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}}},
    tags=["interactions"],
)
async def export_interactions(pool: Pool, filters: Filters) -> StreamingResponse:
    async def fetch(after: tuple[datetime, UUID] | None) -> list[dict[str, Any]]:
        return await queries.search_interactions(pool, filters, limit=1000, after=after)

    return csv_response(paged_csv(fetch, INTERACTION_CSV, INTERACTION_ORDER), "interactions.csv")


@router.get(
    "/interactions/{interaction_id}",
    dependencies=[requires("interactions:read")],
    summary="One interaction as it is after every correction",
    tags=["interactions"],
)
async def read_interaction(interaction_id: UUID, pool: Pool) -> InteractionView:
    row = await queries.get_interaction(pool, interaction_id)
    if row is None:
        raise NotFound(f"no interaction with id {interaction_id}")
    return InteractionView.model_validate(row)


@router.get(
    "/customers/{customer_id}/timeline",
    dependencies=[requires("interactions:read")],
    summary="Everything between the customer and us, newest first",
    description="Interactions, tickets, survey answers and feedback in one list, with the "
    "customer's channel consent; an interaction's details show the reason stated for an "
    "outbound contact on an opted-out channel (`consent_override`) or flag one reported "
    "with none (`consent_breach`).",
    tags=["interactions"],
)
async def customer_timeline(
    customer_id: UUID,
    pool: Pool,
    since: Moment | None = None,
    until: Moment | None = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> TimelinePage:
    rows = await queries.customer_timeline(
        pool,
        await merge_group(pool, customer_id),
        since=since,
        until=until,
        limit=limit + 1,
        after=TIMELINE_ORDER.after(cursor),
    )
    consent = (await queries.consent_of(pool, [customer_id])).get(customer_id)
    return TimelinePage(
        consent=ChannelConsent(**vars(consent)) if consent else None,
        items=[TimelineEntry.model_validate(r) for r in rows[:limit]],
        next_cursor=TIMELINE_ORDER.next_cursor(rows, limit),
    )


TIMELINE_CSV = ("at", "entry_type", "entry_id", "channel", "title", "detail", "details")


@router.get(
    "/customers/{customer_id}/timeline/export.csv",
    dependencies=[requires("interactions:read")],
    summary="Export the customer's whole timeline as CSV",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}}},
    tags=["interactions"],
)
async def export_timeline(
    customer_id: UUID,
    pool: Pool,
    since: Moment | None = None,
    until: Moment | None = None,
) -> StreamingResponse:
    group = await merge_group(pool, customer_id)

    async def fetch(after: tuple[datetime, UUID] | None) -> list[dict[str, Any]]:
        return await queries.customer_timeline(
            pool, group, since=since, until=until, limit=1000, after=after
        )

    return csv_response(
        paged_csv(fetch, TIMELINE_CSV, TIMELINE_ORDER), f"timeline-{customer_id}.csv"
    )


# Tickets -----------------------------------------------------------------------------


async def ticket_query(
    pool: Pool,
    status: Annotated[
        list[TicketStatus] | None, Query(description="Default: open tickets only.")
    ] = None,
    severity: Severity | None = None,
    assignee: Annotated[str | None, Query(max_length=200)] = None,
    unassigned: bool = False,
    sla_state: SlaState | None = None,
    customer_id: UUID | None = None,
    kind: TicketKind | None = None,
    category: Annotated[str | None, Query(max_length=200)] = None,
) -> TicketQuery:
    return TicketQuery(
        statuses=tuple(s.value for s in status or [TicketStatus.OPEN]),
        severity=severity.value if severity else None,
        assignee=assignee,
        unassigned=unassigned,
        sla_state=sla_state.value if sla_state else None,
        customer_id=await merge_group_of(pool, customer_id),
        kind=kind.value if kind else None,
        category=category,
    )


TicketFilters = Annotated[TicketQuery, Depends(ticket_query)]


@router.get(
    "/tickets",
    dependencies=[requires("interactions:read")],
    summary="Tickets (open ones unless asked) by severity, assignee and SLA state",
    tags=["tickets"],
)
async def find_tickets(
    pool: Pool, filters: TicketFilters, limit: Limit = 50, cursor: Cursor = None
) -> TicketPage:
    rows = await queries.find_tickets(
        pool, filters, now=now(), limit=limit + 1, after=TICKET_ORDER.after(cursor)
    )
    return TicketPage(
        items=[TicketView.model_validate(r) for r in rows[:limit]],
        next_cursor=TICKET_ORDER.next_cursor(rows, limit),
    )


TICKET_CSV = tuple(TicketView.model_fields)


@router.get(
    "/tickets/export.csv",
    dependencies=[requires("interactions:read")],
    summary="Export the tickets matching the filters as CSV",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}}},
    tags=["tickets"],
)
async def export_tickets(pool: Pool, filters: TicketFilters) -> StreamingResponse:
    moment = now()

    async def fetch(after: tuple[datetime, UUID] | None) -> list[dict[str, Any]]:
        return await queries.find_tickets(pool, filters, now=moment, limit=1000, after=after)

    return csv_response(paged_csv(fetch, TICKET_CSV, TICKET_ORDER), "tickets.csv")


@router.get(
    "/tickets/times",
    dependencies=[requires("interactions:read")],
    summary="First-response and resolution times by period, channel and category",
    tags=["tickets"],
    response_model=list[TicketTimes],
)
async def ticket_times(
    pool: Pool,
    period: Period = "month",
    since: Annotated[Moment | None, Query(description="Default: a year ago.")] = None,
    until: Annotated[Moment | None, Query(description="Default: now.")] = None,
    kind: TicketKind | None = None,
    severity: Severity | None = None,
    format: Literal["json", "csv"] = "json",
) -> Any:
    start, end = period_range(since, until)
    rows = await queries.ticket_times(
        pool,
        period=period,
        since=start,
        until=end,
        kind=kind.value if kind else None,
        severity=severity.value if severity else None,
    )
    if format == "csv":
        return rows_csv(rows, tuple(TicketTimes.model_fields), "ticket-times.csv")
    return [TicketTimes.model_validate(r) for r in rows]


@router.get(
    "/tickets/summary",
    dependencies=[requires("interactions:read")],
    summary="Open tickets counted by severity, assignee and SLA state",
    tags=["tickets"],
)
async def ticket_summary(pool: Pool) -> list[TicketCount]:
    rows = await queries.ticket_summary(pool, now=now())
    return [TicketCount.model_validate(r) for r in rows]


@router.get(
    "/tickets/{ticket_id}",
    dependencies=[requires("interactions:read")],
    summary="One ticket with its SLA state, now or as it was at a past moment",
    responses={404: {"description": "No such ticket (at that moment)."}},
    tags=["tickets"],
)
async def read_ticket(
    ticket_id: UUID,
    pool: Pool,
    app: App,
    as_of: AsOf = None,
) -> TicketView:
    if as_of is not None:
        folded: dict[str, Any] | None = None
        for event in await asyncio.to_thread(app.ticket_events_until, ticket_id, as_of):
            folded = fold_ticket(folded, event)
        if folded is None:
            raise NotFound(f"no ticket with id {ticket_id}")
        return TicketView.model_validate(await queries.ticket_as_of(pool, folded, as_of))
    row = await queries.get_ticket(pool, ticket_id, now())
    if row is None:
        raise NotFound(f"no ticket with id {ticket_id}")
    return TicketView.model_validate(row)


# Satisfaction ------------------------------------------------------------------------


@router.get(
    "/survey-results",
    dependencies=[requires("interactions:read")],
    summary="CSAT average and NPS by period and channel",
    tags=["satisfaction"],
    response_model=list[SurveyResult],
)
async def survey_results(
    pool: Pool,
    period: Period = "month",
    since: Annotated[Moment | None, Query(description="Default: a year ago.")] = None,
    until: Annotated[Moment | None, Query(description="Default: now.")] = None,
    survey: Annotated[str | None, Query(max_length=200)] = None,
    channel: InteractionChannel | None = None,
    format: Literal["json", "csv"] = "json",
) -> Any:
    start, end = period_range(since, until)
    rows = await queries.survey_results(
        pool,
        period=period,
        since=start,
        until=end,
        survey=survey,
        channel=channel.value if channel else None,
    )
    if format == "csv":
        return rows_csv(rows, tuple(SurveyResult.model_fields), "survey-results.csv")
    return [SurveyResult.model_validate(r) for r in rows]


@router.get(
    "/feedback",
    dependencies=[requires("interactions:read")],
    summary="Suggestions and praise, newest first",
    tags=["satisfaction"],
)
async def find_feedback(
    pool: Pool,
    kind: FeedbackKind | None = None,
    customer_id: UUID | None = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> FeedbackPage:
    rows = await queries.find_feedback(
        pool,
        kind=kind.value if kind else None,
        customer_id=await merge_group_of(pool, customer_id),
        limit=limit + 1,
        after=FEEDBACK_ORDER.after(cursor),
    )
    return FeedbackPage(
        items=[FeedbackView.model_validate(r) for r in rows[:limit]],
        next_cursor=FEEDBACK_ORDER.next_cursor(rows, limit),
    )


# Contact plans -----------------------------------------------------------------------


@router.get(
    "/contacts-due",
    dependencies=[requires("interactions:read")],
    summary="Planned contacts due or overdue, most overdue first, respecting opt-outs",
    tags=["contact plans"],
)
async def contacts_due(
    pool: Pool,
    within_days: Annotated[
        int, Query(ge=0, le=3660, description="Also those due in the next N days.")
    ] = 0,
    owner: Annotated[str | None, Query(max_length=200)] = None,
    channel: InteractionChannel | None = None,
    include_refused: Annotated[
        bool, Query(description="Also customers who opted out of every remote channel.")
    ] = False,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> DueContactPage:
    rows = await queries.contacts_due(
        pool,
        now=now(),
        within=timedelta(days=within_days),
        owner=owner,
        channel=channel.value if channel else None,
        include_refused=include_refused,
        limit=limit + 1,
        after=DUE_ORDER.after(cursor),
    )
    return DueContactPage(
        items=[DueContact.model_validate(r) for r in rows[:limit]],
        next_cursor=DUE_ORDER.next_cursor(rows, limit),
    )


@router.get(
    "/customers/{customer_id}/contact-plan",
    dependencies=[requires("interactions:read")],
    summary="The customer's contact plan and when the next contact is due",
    tags=["contact plans"],
)
async def read_contact_plan(customer_id: UUID, pool: Pool) -> DueContact:
    row = None
    for member in await merge_group(pool, customer_id):  # the survivor's own plan first
        if (row := await queries.get_contact_plan(pool, member, now())) is not None:
            break
    if row is None:
        raise NotFound(f"customer {customer_id} has no contact plan")
    return DueContact.model_validate(row)
